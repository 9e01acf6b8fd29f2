//! Shared by the snapshot and live tests: one insta snapshot per cell, in the top-level snapshots/.

use portwhy_lab::outcome::CellResult;
use portwhy_lab::{recording, redact};

/// `scenario@engine-backend`, e.g. `host-listener-wildcard@forky-nft`.
pub fn snapshot_name(c: &CellResult) -> String {
    format!("{}@{}-{}", c.scenario, c.engine_name, c.backend)
}

/// Assert the redacted verdict (today's rules over the cell's recorded bundle) and what the cell
/// measured against snapshots/<name>.snap.
pub fn assert_cell_snapshot(c: &CellResult) {
    let verdict = recording::rediagnose(c).unwrap_or_else(|e| panic!("{e}"));
    let mut settings = insta::Settings::clone_current();
    // Relative to this file's directory: runner/tests/common → the workspace's snapshots/.
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_info(&redact::text(&c.trigger.command));
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_json_snapshot!(snapshot_name(c), redact::cell_view(c, &verdict)));
}

/// Assert every cell's snapshot, then fail once naming every cell that differed (insta stops at the
/// first mismatch otherwise, hiding the rest of the matrix).
pub fn assert_all_cell_snapshots(cells: &[CellResult]) {
    let failed: Vec<String> = cells
        .iter()
        .filter(|c| std::panic::catch_unwind(|| assert_cell_snapshot(c)).is_err())
        .map(snapshot_name)
        .collect();
    assert!(failed.is_empty(), "{} snapshot(s) differ: {}", failed.len(), failed.join(", "));
}
