//! Reporters: every one consumes the same event stream; file reporters render at the end.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod terminal;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::event::Event;
use crate::outcome::{CellResult, RunResults, Status};

/// A consumer of the run's events.
pub trait Reporter: Send {
    fn event(&mut self, event: &Event);
    /// Called once, after the last cell finished.
    fn finish(&mut self, results: &RunResults) -> Result<(), ReportError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read results {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.to_owned(), source })?;
    }
    std::fs::write(path, text).map_err(|source| ReportError::Write { path: path.to_owned(), source })
}

/// Read a results.json written by a run (or a recorded fixture).
pub fn read_results(path: &Path) -> Result<RunResults, ReportError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ReportError::Read { path: path.to_owned(), message: e.to_string() })?;
    serde_json::from_str(&text)
        .map_err(|e| ReportError::Read { path: path.to_owned(), message: e.to_string() })
}

/// The report folder: results.json, report.md and index.html.
#[derive(Debug)]
pub struct FolderReporter {
    pub dir: PathBuf,
}

impl Reporter for FolderReporter {
    fn event(&mut self, _event: &Event) {}

    fn finish(&mut self, results: &RunResults) -> Result<(), ReportError> {
        write_folder(&self.dir, results)
    }
}

/// Write the three report files into `dir`.
pub fn write_folder(dir: &Path, results: &RunResults) -> Result<(), ReportError> {
    let json = serde_json::to_string_pretty(results).expect("results serialise: plain data");
    write(&dir.join("results.json"), &json)?;
    write(&dir.join("report.md"), &markdown::render(results))?;
    write(&dir.join("index.html"), &html::render(results))
}

/// JUnit XML in one file.
#[derive(Debug)]
pub struct JunitReporter {
    pub path: PathBuf,
}

impl Reporter for JunitReporter {
    fn event(&mut self, _event: &Event) {}

    fn finish(&mut self, results: &RunResults) -> Result<(), ReportError> {
        write(&self.path, &junit::render(results))
    }
}

/// results.json on stdout (`--json`).
#[derive(Debug, Default)]
pub struct JsonStdoutReporter;

impl Reporter for JsonStdoutReporter {
    fn event(&mut self, _event: &Event) {}

    fn finish(&mut self, results: &RunResults) -> Result<(), ReportError> {
        println!("{}", serde_json::to_string_pretty(results).expect("results serialise: plain data"));
        Ok(())
    }
}

/// The matrix axes present in a run: rows are scenarios, columns engine x backend, in first-seen order
/// of engines (catalogue order) and sorted backends.
pub(crate) struct Axes {
    pub scenarios: Vec<String>,
    pub columns: Vec<(String, String, crate::scenario::BackendName)>,
}

pub(crate) fn axes(cells: &[CellResult]) -> Axes {
    let mut scenarios: Vec<String> = Vec::new();
    let mut engines: Vec<(String, String)> = Vec::new();
    let mut backends = BTreeSet::new();
    for c in cells {
        if !scenarios.contains(&c.scenario) {
            scenarios.push(c.scenario.clone());
        }
        if !engines.iter().any(|(n, _)| n == &c.engine_name) {
            engines.push((c.engine_name.clone(), c.engine.clone()));
        }
        backends.insert(c.backend);
    }
    scenarios.sort();
    let columns = engines
        .into_iter()
        .flat_map(|(n, v)| backends.iter().map(move |b| (n.clone(), v.clone(), *b)))
        .collect();
    Axes { scenarios, columns }
}

pub(crate) fn find<'a>(
    cells: &'a [CellResult],
    scenario: &str,
    engine_name: &str,
    backend: crate::scenario::BackendName,
) -> Option<&'a CellResult> {
    cells.iter().find(|c| c.scenario == scenario && c.engine_name == engine_name && c.backend == backend)
}

/// Counts per status.
pub fn counts(cells: &[CellResult]) -> (usize, usize, usize) {
    let n = |s: Status| cells.iter().filter(|c| c.status == s).count();
    (n(Status::Pass), n(Status::Fail), n(Status::Error))
}
