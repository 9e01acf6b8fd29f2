//! One snapshot per recorded cell (scenario x engine x backend): verdict and remedy, redacted.
//!
//! The cells come from tests/fixtures/results.json, recorded by a real matrix run (see
//! tests/fixtures/README.md). The live matrix (tests/live.rs) asserts the same snapshots, so a change
//! in what an engine or `portwhy` does shows up as a snapshot diff.

mod common;

use std::path::Path;

#[test]
fn every_recorded_cell_matches_its_snapshot() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json");
    let results = portwhy_lab::report::read_results(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!results.cells.is_empty());
    common::assert_all_cell_snapshots(&results.cells);
}

/// Issue-level promise: every cause portwhy can name is met on a real engine's evidence in the fast
/// layer, from a lab cell of the recorded run or from a bundle recorded on a real daemon
/// (engine/tests/fixtures/evidence, with its `_recorded` line). A rule with neither fails here.
#[test]
fn every_cause_is_met_in_a_recorded_real_bundle() {
    use std::collections::BTreeMap;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = portwhy_lab::report::read_results(&root.join("tests/fixtures/results.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut met: BTreeMap<&str, String> = BTreeMap::new();
    for c in &results.cells {
        let d = portwhy_lab::recording::rediagnose(c).unwrap_or_else(|e| panic!("{e}"));
        for f in &d.findings {
            met.entry(f.code.code()).or_insert_with(|| format!("cell {}", c.id()));
        }
    }
    let dir = root.join("../engine/tests/fixtures/evidence");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let ev = portwhy_lab::replay::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let err = path.with_extension("error.txt");
        let error = std::fs::read_to_string(&err).ok().map(|t| {
            portwhy::parse::error::classify(&t).unwrap_or_else(|e| panic!("{}: {e}", err.display()))
        });
        for f in portwhy::rules::diagnose(&ev, error.as_ref()).findings {
            met.entry(f.code.code()).or_insert_with(|| format!("bundle {}", path.display()));
        }
    }
    let missing: Vec<&str> =
        portwhy::cause::CauseCode::ALL.iter().map(|c| c.code()).filter(|c| !met.contains_key(c)).collect();
    assert!(missing.is_empty(), "no recorded real bundle meets {missing:?}; met: {met:#?}");
}
