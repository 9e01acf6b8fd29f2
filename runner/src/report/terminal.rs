//! The terminal: a progress bar on a TTY (plain lines otherwise) and the summary table at the end.

use std::fmt::Write as _;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::event::Event;
use crate::outcome::{median_ms, CellResult, RunResults, Status};
use crate::report::{counts, ReportError, Reporter};

pub struct TerminalReporter {
    bar: Option<ProgressBar>,
    /// Print the summary table on stdout (off with `--json`, which owns stdout).
    summary: bool,
}

impl TerminalReporter {
    pub fn new(summary: bool) -> Self {
        Self { bar: None, summary }
    }

    fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }
}

impl Reporter for TerminalReporter {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted { total, .. } => {
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(*total as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                        )
                        .expect("constant template"),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    self.bar = Some(bar);
                }
                self.line(&event.describe());
            }
            Event::Finished { result } => {
                let mark = match result.status {
                    Status::Pass => "PASS ",
                    Status::Fail => "FAIL ",
                    Status::Error => "ERROR",
                    Status::NotRun => "NOT RUN",
                };
                self.line(&format!("{mark} {} ({} ms)", result.id(), result.duration_ms));
                for f in &result.failures {
                    self.line(&format!("       {f}"));
                }
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
            // Ten a cell: too many for a plain log; they are in the summary's breakdown.
            Event::PhaseDone { .. } if self.bar.is_none() => {}
            other => match &self.bar {
                Some(b) => b.set_message(other.describe()),
                None => eprintln!("  {}", other.describe()),
            },
        }
    }

    fn finish(&mut self, results: &RunResults) -> Result<(), ReportError> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if self.summary {
            print!("{}", summary_table(&results.cells, results.wall_ms));
        } else {
            eprint!("{}", summary_table(&results.cells, results.wall_ms));
        }
        Ok(())
    }
}

/// The fixed-width table printed at the end of a run, plus the measured targets.
pub fn summary_table(cells: &[CellResult], wall_ms: u64) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "scenario".into(),
        "engine".into(),
        "backend".into(),
        "cause".into(),
        "remedy".into(),
        "status".into(),
    ]];
    for c in cells {
        rows.push([
            c.scenario.clone(),
            format!("{} {}", c.engine_name, c.engine),
            c.backend.to_string(),
            c.cause_text().to_owned(),
            c.remedy_text(),
            c.status.as_str().to_uppercase(),
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let counts = counts(cells);
    let _ = writeln!(
        out,
        "\n{} cells: {}. Wall time {:.1} s, median cell {} ms.",
        cells.len(),
        counts.phrase(),
        wall_ms as f64 / 1000.0,
        median_ms(cells).unwrap_or(0)
    );
    for (engine, n, how) in crate::report::not_run_engines(cells) {
        let _ = writeln!(out, "NOT RUN: {engine} ({n} cells): {how}");
    }
    out.push_str(&phases_table(cells));
    let _ = writeln!(out, "{}", crate::outcome::targets_line(cells, wall_ms));
    out
}

/// The phase breakdown as plain text; empty when no cell timed its phases.
pub fn phases_table(cells: &[CellResult]) -> String {
    let rows = crate::outcome::phase_breakdown(cells);
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("Phases (summed over cells; teardown runs beside the next cells):\n");
    let _ = writeln!(out, "  {:<14} {:>5} {:>10} {:>10} {:>6}", "phase", "cells", "total", "median", "share");
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<14} {:>5} {:>8.1} s {:>7} ms {:>5.1}%",
            r.phase.as_str(),
            r.cells,
            r.total_ms as f64 / 1000.0,
            r.median_ms,
            r.share * 100.0
        );
    }
    out
}
