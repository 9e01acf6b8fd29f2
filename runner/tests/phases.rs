//! The phase breakdown: where a run's cell time went, from the `phases` each cell records.
//!
//! The input is a results.json written here with phases stated by hand (three timed cells and
//! one recorded before phases existed), so every figure below follows from the input by
//! arithmetic, not from the code's own output.

use std::path::Path;

use portwhy_lab::outcome::{phase_breakdown, Phase, RunResults};
use portwhy_lab::report;

/// The recorded matrix with phases added to its first three cells, as a results.json file would
/// carry them; the fourth cell has none, as in results recorded before phases were timed.
fn results_with_phases() -> RunResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON");
    let cells = doc["cells"].as_array_mut().expect("cells");
    cells.truncate(4);
    let phases = [
        serde_json::json!({ "env-start": 1000, "dockerd-ready": 2000, "remedies": 6000, "teardown": 500 }),
        serde_json::json!({ "env-start": 3000, "dockerd-ready": 1000, "remedies": 2000, "teardown": 700 }),
        serde_json::json!({ "env-start": 2000, "dockerd-ready": 1500, "teardown": 300 }),
    ];
    for (cell, p) in cells.iter_mut().zip(phases) {
        cell["phases"] = p;
    }
    // As a cell recorded before phases were timed: the key is absent, not empty.
    cells[3].as_object_mut().expect("cell").remove("phases");
    read_back(&doc, "with")
}

/// `doc` written to a file and read through the same reader a report uses, so the field names
/// are the file's.
fn read_back(doc: &serde_json::Value, tag: &str) -> RunResults {
    let text = serde_json::to_string(doc).expect("serialise");
    let dir = std::env::temp_dir().join(format!("portwhy-phases-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("results.json");
    std::fs::write(&file, text).expect("write");
    let results = report::read_results(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    results
}

#[test]
fn results_without_phases_still_load_and_have_no_breakdown() {
    // The recorded matrix with every cell's phases taken out, as results from before phases were
    // timed carry none (the recording itself mixes older and newer cells).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON");
    for cell in doc["cells"].as_array_mut().expect("cells") {
        cell.as_object_mut().expect("cell").remove("phases");
    }
    let r = read_back(&doc, "without");
    assert!(!r.cells.is_empty());
    assert!(r.cells.iter().all(|c| c.phases.is_empty()));
    assert!(phase_breakdown(&r.cells).is_empty());
    assert!(!report::markdown::render(&r).contains("## Phases"));
}

#[test]
fn breakdown_sums_each_phase_over_the_cells_that_timed_it() {
    let r = results_with_phases();
    assert_eq!(r.cells[0].phases.get(&Phase::EnvStart), Some(&1000));
    let rows = phase_breakdown(&r.cells);
    let got: Vec<(Phase, usize, u64, u64)> =
        rows.iter().map(|r| (r.phase, r.cells, r.total_ms, r.median_ms)).collect();
    // env-start 1000+3000+2000, median 2000; dockerd-ready 2000+1000+1500, median 1500;
    // remedies in two cells, 6000+2000, the upper median 6000; teardown 500+700+300, median 500.
    assert_eq!(
        got,
        vec![
            (Phase::EnvStart, 3, 6000, 2000),
            (Phase::DockerdReady, 3, 4500, 1500),
            (Phase::Remedies, 2, 8000, 6000),
            (Phase::Teardown, 3, 1500, 500),
        ]
    );
    // Of 20,000 ms in all: 30 %, 22.5 %, 40 %, 7.5 %.
    let shares: Vec<f64> = rows.iter().map(|r| (r.share * 1000.0).round() / 10.0).collect();
    assert_eq!(shares, vec![30.0, 22.5, 40.0, 7.5]);
}

#[test]
fn every_reporter_prints_the_breakdown() {
    let r = results_with_phases();
    let md = report::markdown::render(&r);
    let section = md.split("## Phases").nth(1).expect("report.md has a Phases section");
    for row in [
        "| env-start | 3 | 6.0 | 2000 | 30.0% |",
        "| dockerd-ready | 3 | 4.5 | 1500 | 22.5% |",
        "| remedies | 2 | 8.0 | 6000 | 40.0% |",
        "| teardown | 3 | 1.5 | 500 | 7.5% |",
    ] {
        assert!(section.contains(row), "report.md lacks `{row}`:\n{section}");
    }
    assert!(
        !section.split("\n## ").next().unwrap_or_default().contains("| faults |"),
        "a phase no cell timed"
    );

    let text = report::terminal::summary_table(&r.cells, r.wall_ms);
    let remedies = text.lines().find(|l| l.trim_start().starts_with("remedies")).expect("a remedies line");
    let words: Vec<&str> = remedies.split_whitespace().collect();
    assert_eq!(words, ["remedies", "2", "8.0", "s", "6000", "ms", "40.0%"]);

    let html = report::html::render(&r);
    for (phase, total) in
        [("env-start", 6000), ("dockerd-ready", 4500), ("remedies", 8000), ("teardown", 1500)]
    {
        let needle = format!("<tr data-phase=\"{phase}\" data-total-ms=\"{total}\">");
        assert!(html.contains(&needle), "index.html lacks {needle}");
    }
}
