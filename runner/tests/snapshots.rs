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
