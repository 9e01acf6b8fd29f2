//! Multi-machine runs: shards balanced by recorded cell times, and shard results merged into one.
//!
//! Balancing is greedy longest-processing-time: cells in descending recorded time (ties by cell
//! id), each to the shard with the least time so far (ties to the lowest shard). It is
//! deterministic, so every machine computes the same split from the same timings, and its
//! largest shard is at most the mean shard time plus the longest cell. Cells without a recorded
//! time count as the median of the recorded ones.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outcome::{CellId, RunResults, RESULTS_SCHEMA_VERSION};
use crate::scenario::BackendName;

/// Recorded time of each cell, in milliseconds.
pub type Timings = HashMap<CellId, u64>;

/// The committed timings file, found from the working directory up (see `ci/timings.json`).
pub const DEFAULT_TIMINGS: &str = "ci/timings.json";

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error(
        "{} has results schema version {found}, {} has {expected}: merge shards of one portwhy-lab version (re-run the older shard)",
        path.display(), first.display()
    )]
    SchemaMismatch { path: PathBuf, found: u32, first: PathBuf, expected: u32 },
    #[error(
        "{} is results schema version {found}, this portwhy-lab reads {RESULTS_SCHEMA_VERSION}: render it with the portwhy-lab that wrote it",
        path.display()
    )]
    UnknownSchema { path: PathBuf, found: u32 },
    #[error(
        "cell {cell} is in both {} and {}: shards must not overlap (run each with the same --shard N and --timings)",
        first.display(), second.display()
    )]
    Overlap { cell: CellId, first: PathBuf, second: PathBuf },
    #[error("no results file given")]
    Empty,
}

/// A timings file: any JSON with `cells: [{scenario, engine_name, backend, duration_ms}]`, so a
/// results.json of an earlier run serves as well as the committed file.
#[derive(Debug, Deserialize)]
struct TimingsFile {
    cells: Vec<TimedCell>,
}

#[derive(Debug, Deserialize)]
struct TimedCell {
    scenario: String,
    engine_name: String,
    backend: BackendName,
    duration_ms: u64,
}

/// Read a timings file (or a results.json).
pub fn read_timings(path: &Path) -> Result<Timings, ShardError> {
    let fail = |message: String| ShardError::Read { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let file: TimingsFile = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    Ok(file
        .cells
        .into_iter()
        .map(|c| {
            (CellId { scenario: c.scenario, engine_name: c.engine_name, backend: c.backend }, c.duration_ms)
        })
        .collect())
}

/// The shard (0-based) of each cell, in the order given.
pub fn balance(cells: &[CellId], timings: &Timings, shards: usize) -> Vec<usize> {
    let shards = shards.max(1);
    let mut known: Vec<u64> = timings.values().copied().collect();
    known.sort_unstable();
    let median = if known.is_empty() { 1 } else { known[known.len() / 2] };
    let cost = |c: &CellId| timings.get(c).copied().unwrap_or(median);
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by(|&a, &b| cost(&cells[b]).cmp(&cost(&cells[a])).then_with(|| cells[a].cmp(&cells[b])));
    let mut load = vec![0u64; shards];
    let mut assigned = vec![0; cells.len()];
    for i in order {
        let (lightest, _) =
            load.iter().enumerate().min_by_key(|&(k, &t)| (t, k)).expect("at least one shard");
        load[lightest] += cost(&cells[i]);
        assigned[i] = lightest;
    }
    assigned
}

/// Merge the results of several shards into one run. Refuses different schema versions and
/// overlapping cells.
pub fn merge(parts: Vec<(PathBuf, RunResults)>) -> Result<RunResults, ShardError> {
    let Some((first_path, first)) = parts.first() else { return Err(ShardError::Empty) };
    if first.schema_version != RESULTS_SCHEMA_VERSION {
        return Err(ShardError::UnknownSchema { path: first_path.clone(), found: first.schema_version });
    }
    let mut seen: HashMap<CellId, PathBuf> = HashMap::new();
    let mut run_ids: BTreeSet<String> = BTreeSet::new();
    let mut cells = Vec::new();
    let mut wall_ms = 0;
    for (path, r) in &parts {
        if r.schema_version != first.schema_version {
            return Err(ShardError::SchemaMismatch {
                path: path.clone(),
                found: r.schema_version,
                first: first_path.clone(),
                expected: first.schema_version,
            });
        }
        for c in &r.cells {
            if let Some(other) = seen.insert(c.id(), path.clone()) {
                return Err(ShardError::Overlap { cell: c.id(), first: other, second: path.clone() });
            }
        }
        cells.extend(r.cells.iter().cloned());
        run_ids.insert(r.run_id.clone());
        // Shards run side by side on different machines: the run took as long as the slowest.
        wall_ms = wall_ms.max(r.wall_ms);
    }
    cells.sort_by_key(|c| c.id());
    Ok(RunResults {
        schema_version: first.schema_version,
        run_id: run_ids.into_iter().collect::<Vec<_>>().join("+"),
        wall_ms,
        cells,
    })
}
