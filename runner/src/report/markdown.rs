//! report.md: the matrix as a Markdown table, the failures, and each seed claim against the engines.

use std::fmt::Write as _;

use crate::outcome::{median_ms, RunResults, Status};
use crate::report::{axes, counts, find};

fn cell_text(status: Status, cause: Option<&str>) -> String {
    let mark = match status {
        Status::Pass => "pass",
        Status::Fail => "**FAIL**",
        Status::Error => "**ERROR**",
    };
    format!("{mark} {}", cause.unwrap_or(""))
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(results: &RunResults) -> String {
    let cells = &results.cells;
    let ax = axes(cells);
    let (pass, fail, error) = counts(cells);
    let mut out = String::from("# portwhy-lab report\n\n");
    let _ = writeln!(
        out,
        "Run `{}`: {} cells, {pass} passed, {fail} failed, {error} errors; wall time {:.1} s, median cell {} ms.\n",
        results.run_id,
        cells.len(),
        results.wall_ms as f64 / 1000.0,
        median_ms(cells).unwrap_or(0)
    );
    let _ = writeln!(out, "{}\n", crate::outcome::targets_line(cells, results.wall_ms));
    out.push_str("## Matrix\n\n| scenario |");
    for (name, version, backend) in &ax.columns {
        let _ = write!(out, " {name} {version} {backend} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(ax.columns.len()));
    out.push('\n');
    for s in &ax.scenarios {
        let _ = write!(out, "| {s} |");
        for (name, _, backend) in &ax.columns {
            match find(cells, s, name, *backend) {
                Some(c) => {
                    let _ = write!(
                        out,
                        " {} |",
                        cell_text(c.status, c.observed.as_ref().and_then(|o| o.cause.as_deref()))
                    );
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    let failed: Vec<_> = cells.iter().filter(|c| c.status != Status::Pass).collect();
    if !failed.is_empty() {
        out.push_str("\n## Failures\n\n");
        for c in failed {
            let _ = writeln!(out, "### {} ({} {}, {})\n", c.scenario, c.engine_name, c.engine, c.backend);
            for f in &c.failures {
                let _ = writeln!(out, "- {}", md(f));
            }
            let _ = writeln!(out, "\n```\n{}\n{}\n```\n", c.trigger.command, c.trigger.error.trim());
        }
    }
    out.push_str("\n## Seed claims against the engines\n\n| scenario | source | claim (restated) | what the engines did |\n|---|---|---|---|\n");
    for s in &ax.scenarios {
        let Some(first) = cells.iter().find(|c| &c.scenario == s) else { continue };
        let did: Vec<String> = cells
            .iter()
            .filter(|c| &c.scenario == s)
            .map(|c| {
                let t = if c.trigger.exit_code == 0 { "publish succeeded" } else { "publish failed" };
                format!(
                    "{} {}/{}: {t}, portwhy {}",
                    c.engine,
                    c.engine_name,
                    c.backend,
                    c.observed.as_ref().and_then(|o| o.cause.as_deref()).unwrap_or("-")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "| {s} | {} ({}) | {} | {} |",
            first.seed.label(),
            first.seed.file_name(),
            md(&first.claim),
            md(&did.join("; "))
        );
    }
    out
}
