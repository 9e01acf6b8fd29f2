//! report.md: the matrix as a Markdown table, the failures, and each seed claim against the engines.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use portwhy::remedy::{ActionKind, Purpose};

use crate::outcome::{median_ms, CellResult, RemedySource, RunResults, Status, TrialOutcome};
use crate::report::{axes, counts, find};

fn cell_text(status: Status, cause: Option<&str>) -> String {
    let mark = match status {
        Status::Pass => "pass",
        Status::Fail => "**FAIL**",
        Status::Error => "**ERROR**",
        Status::NotRun => "not run",
    };
    format!("{mark} {}", cause.unwrap_or(""))
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(results: &RunResults) -> String {
    let cells = &results.cells;
    let ax = axes(cells);
    let counts = counts(cells);
    let mut out = String::from("# portwhy-lab report\n\n");
    let _ = writeln!(
        out,
        "Run `{}`: {} cells, {}; wall time {:.1} s, median cell {} ms.\n",
        results.run_id,
        cells.len(),
        counts.phrase(),
        results.wall_ms as f64 / 1000.0,
        median_ms(cells).unwrap_or(0)
    );
    for (engine, n, how) in crate::report::not_run_engines(cells) {
        let _ = writeln!(out, "- **NOT RUN: {engine}** ({n} cells): {}", md(&how));
    }
    let _ = writeln!(out, "{}\n", crate::outcome::targets_line(cells, results.wall_ms));
    let disagree = crate::report::disagreeing(cells);
    out.push_str("## Matrix\n\nA scenario marked **engines disagree** did different things on different engines (the publish's result, the cause, or who answered).\n\n| scenario |");
    for (name, version, backend) in &ax.columns {
        let _ = write!(out, " {name} {version} {backend} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(ax.columns.len()));
    out.push('\n');
    for s in &ax.scenarios {
        let mark = if disagree.contains(s) { " **engines disagree**" } else { "" };
        let _ = write!(out, "| {s}{mark} |");
        for (name, _, backend) in &ax.columns {
            match find(cells, s, name, *backend) {
                Some(c) => {
                    let _ = write!(out, " {} |", cell_text(c.status, c.observed_cause().map(|c| c.code())));
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    let failed: Vec<_> =
        cells.iter().filter(|c| !matches!(c.status, Status::Pass | Status::NotRun)).collect();
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
    remedies_section(&mut out, cells);
    phases_section(&mut out, cells);
    out.push_str("\n## Seed claims against the engines\n\n| scenario | source | claim (restated) | upheld by | refuted by | what the engines did |\n|---|---|---|---|---|---|\n");
    for s in &ax.scenarios {
        let Some(first) = cells.iter().find(|c| &c.scenario == s) else { continue };
        let did: Vec<String> = cells
            .iter()
            .filter(|c| &c.scenario == s)
            .map(|c| {
                let t = if c.trigger.exit_code == 0 { "publish succeeded" } else { "publish failed" };
                format!("{} {}/{}: {t}, portwhy {}", c.engine, c.engine_name, c.backend, c.cause_text())
            })
            .collect();
        let (upheld, refuted) = crate::report::claim_verdicts(cells, s)
            .map(|(u, r)| (list_or_none(&u), list_or_none(&r)))
            .unwrap_or_else(|| ("-".into(), "-".into()));
        let _ = writeln!(
            out,
            "| {s} | {} ({}) | {} | {upheld} | {refuted} | {} |",
            first.seed.label(),
            first.seed.title(),
            md(&first.claim),
            md(&did.join("; "))
        );
    }
    out
}

/// Per remedy action: in how many cells it was the proven fix, and how every other trial ended.
fn remedies_section(out: &mut String, cells: &[CellResult]) {
    #[derive(Default)]
    struct Tally {
        proven_fix: usize,
        proven_other: usize,
        failed: usize,
        not_tried: usize,
    }
    let mut by_kind: BTreeMap<(ActionKind, Purpose, bool), Tally> = BTreeMap::new();
    for c in cells {
        let fix = c.proven_fix().map(|t| (t.kind, t.command.as_str()));
        for t in &c.remedies {
            let entry = by_kind.entry((t.kind, t.purpose, t.source == RemedySource::Claim)).or_default();
            match t.outcome {
                TrialOutcome::Proven if fix == Some((t.kind, t.command.as_str())) => entry.proven_fix += 1,
                TrialOutcome::Proven => entry.proven_other += 1,
                TrialOutcome::Failed => entry.failed += 1,
                TrialOutcome::NotTried => entry.not_tried += 1,
            }
        }
    }
    if by_kind.is_empty() {
        return;
    }
    let with_fix = cells.iter().filter(|c| c.proven_fix().is_some()).count();
    let needing = cells.iter().filter(|c| c.expected.remedy.is_some()).count();
    let _ = writeln!(
        out,
        "\n## Remedies\n\n{with_fix} of {needing} cells with a cause proved a fix aimed at it on the same port. \
         A workaround (another port or address) is never the proof.\n\n\
         | action | purpose | source | the cell's proven fix | proven | failed | not tried |\n|---|---|---|---|---|---|---|"
    );
    for ((kind, purpose, claim), t) in by_kind {
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} | {} | {} |",
            purpose.as_str(),
            if claim { "seed claim" } else { "portwhy" },
            t.proven_fix,
            t.proven_other,
            t.failed,
            t.not_tried
        );
    }
}

/// Where the cells' time went, phase by phase (absent for results recorded without phases).
fn phases_section(out: &mut String, cells: &[CellResult]) {
    let rows = crate::outcome::phase_breakdown(cells);
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "\n## Phases\n\nEach cell's time by phase, summed over the cells that reached it. The teardown runs \
         beside the next cells, so it is not part of a cell's duration.\n\n\
         | phase | cells | total s | median ms | share |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {:.1}% |",
            r.phase.as_str(),
            r.cells,
            r.total_ms as f64 / 1000.0,
            r.median_ms,
            r.share * 100.0
        );
    }
}
