//! Reporters: every one consumes the same event stream; file reporters render at the end.

pub mod html;
pub mod junit;
pub mod markdown;
pub mod terminal;

use std::collections::{BTreeMap, BTreeSet};
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
    // Oldest engine first; a backend column only where some cell ran on it (nftables: 29.0+).
    engines.sort_by_cached_key(|(n, v)| (portwhy::version::EngineVersion::parse(v).ok(), n.clone()));
    let columns = engines
        .into_iter()
        .flat_map(|(n, v)| backends.iter().map(move |b| (n.clone(), v.clone(), *b)))
        .filter(|(n, _, b)| cells.iter().any(|c| &c.engine_name == n && c.backend == *b))
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

/// Cells per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub not_run: usize,
}

impl Counts {
    /// `N passed, N failed, N errors` and, when some engine was absent, `, N not run`.
    pub fn phrase(&self) -> String {
        let mut s = format!("{} passed, {} failed, {} errors", self.pass, self.fail, self.error);
        if self.not_run > 0 {
            s.push_str(&format!(", {} NOT RUN", self.not_run));
        }
        s
    }
}

pub fn counts(cells: &[CellResult]) -> Counts {
    let n = |s: Status| cells.iter().filter(|c| c.status == s).count();
    Counts {
        pass: n(Status::Pass),
        fail: n(Status::Fail),
        error: n(Status::Error),
        not_run: n(Status::NotRun),
    }
}

/// Engines whose cells did not run, each with how to get it (one line per engine).
pub fn not_run_engines(cells: &[CellResult]) -> Vec<(String, usize, String)> {
    let mut out: Vec<(String, usize, String)> = Vec::new();
    for c in cells.iter().filter(|c| c.status == Status::NotRun) {
        match out.iter_mut().find(|(e, _, _)| *e == c.engine_name) {
            Some(entry) => entry.1 += 1,
            None => out.push((c.engine_name.clone(), 1, c.failures.first().cloned().unwrap_or_default())),
        }
    }
    out.sort();
    out
}

/// Scenarios whose engines did different things: the publish's result, the cause portwhy named,
/// or who answered a probe differs between two cells that ran.
pub fn disagreeing(cells: &[CellResult]) -> BTreeSet<String> {
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in cells {
        if let Some(k) = c.outcome_key() {
            seen.entry(c.scenario.as_str()).or_default().insert(k);
        }
    }
    seen.into_iter().filter(|(_, k)| k.len() > 1).map(|(s, _)| s.to_owned()).collect()
}

/// For a scenario whose seed claim predicts an outcome: the engines whose cells uphold it and the
/// ones whose cells refute it. An engine is named once when all its backends agree, otherwise as
/// `version/backend` per cell.
pub fn claim_verdicts(cells: &[CellResult], scenario: &str) -> Option<(Vec<String>, Vec<String>)> {
    // Keyed by the parsed version first, so engines list oldest first.
    type EngineKey = (Option<portwhy::version::EngineVersion>, String);
    let mut by_engine: BTreeMap<EngineKey, Vec<(&CellResult, bool)>> = BTreeMap::new();
    for c in cells.iter().filter(|c| c.scenario == scenario) {
        if let Some(v) = c.upholds_claim() {
            let key = (portwhy::version::EngineVersion::parse(&c.engine).ok(), c.engine.clone());
            by_engine.entry(key).or_default().push((c, v));
        }
    }
    if by_engine.is_empty() {
        return None;
    }
    let (mut upheld, mut refuted) = (Vec::new(), Vec::new());
    for ((_, version), group) in by_engine {
        if group.iter().all(|(_, v)| *v == group[0].1) {
            if group[0].1 {
                upheld.push(version)
            } else {
                refuted.push(version)
            }
        } else {
            for (c, v) in group {
                let label = format!("{version}/{}", c.backend);
                if v {
                    upheld.push(label)
                } else {
                    refuted.push(label)
                }
            }
        }
    }
    Some((upheld, refuted))
}

/// Text for HTML content and quoted attributes; control characters (ANSI colours in daemon text)
/// are dropped, as a browser would show them as boxes.
pub(crate) fn html_escape(s: &str) -> String {
    let printable: String = s.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
    html_escape::encode_quoted_attribute(&printable).into_owned()
}
