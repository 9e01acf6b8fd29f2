//! Multi-machine runs over the recorded run (runner/tests/fixtures/results.json): shards balanced
//! by its cell times, and shard results merged back by `portwhy-lab report a.json b.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use portwhy_lab::outcome::{CellId, RunResults};
use portwhy_lab::report::read_results;
use portwhy_lab::shard::{balance, read_timings};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> PathBuf {
    repo().join("runner/tests/fixtures/results.json")
}

fn recorded() -> RunResults {
    read_results(&fixture()).expect("the recorded run runner/tests/fixtures/results.json")
}

fn lab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portwhy-lab"));
    c.current_dir(repo());
    c
}

/// The recorded run cut into `n` shard files by the balancer, written into `dir`.
fn shard_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let whole = recorded();
    let ids: Vec<CellId> = whole.cells.iter().map(|c| c.id()).collect();
    let shard_of = balance(&ids, &read_timings(&fixture()).unwrap(), n);
    (0..n)
        .map(|k| {
            let part = RunResults {
                run_id: format!("{}-{k}", whole.run_id),
                cells: whole
                    .cells
                    .iter()
                    .zip(&shard_of)
                    .filter(|(_, s)| **s == k)
                    .map(|(c, _)| c.clone())
                    .collect(),
                ..whole.clone()
            };
            let path = dir.join(format!("shard-{k}.json"));
            std::fs::write(&path, serde_json::to_string(&part).unwrap()).unwrap();
            path
        })
        .collect()
}

fn ids(r: &RunResults) -> BTreeSet<CellId> {
    r.cells.iter().map(|c| c.id()).collect()
}

#[test]
fn merging_two_shards_gives_back_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let files = shard_files(dir.path(), 2);
    let out = dir.path().join("merged");
    let run = lab().arg("report").args(&files).arg("--out").arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let merged = read_results(&out.join("results.json")).unwrap();
    assert_eq!(ids(&merged), ids(&recorded()));
    assert_eq!(merged.cells.len(), recorded().cells.len(), "no cell twice");
    for page in ["report.md", "index.html", "junit.xml"] {
        assert!(out.join(page).is_file(), "{page} missing from the merged report");
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), recorded().cells.len(), "one JUnit case per cell");
}

#[test]
fn overlapping_shards_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let files = shard_files(dir.path(), 2);
    let run = lab()
        .arg("report")
        .args([&files[0], &files[1], &files[0]])
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("is in both") && err.contains("shard-0.json"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing written on a refused merge");
}

#[test]
fn shards_of_different_schema_versions_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let files = shard_files(dir.path(), 2);
    let mut newer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    newer["schema_version"] = serde_json::json!(99);
    std::fs::write(&files[1], newer.to_string()).unwrap();
    let run = lab().arg("report").args(&files).arg("--out").arg(dir.path().join("out")).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn balanced_shards_stay_within_the_list_scheduling_bound_of_the_recorded_times() {
    let whole = recorded();
    let ids: Vec<CellId> = whole.cells.iter().map(|c| c.id()).collect();
    let timings = read_timings(&fixture()).unwrap();
    let times: Vec<u64> = whole.cells.iter().map(|c| c.duration_ms).collect();
    let total: u64 = times.iter().sum();
    let longest = *times.iter().max().unwrap();
    for n in [2, 3, 4, 6] {
        let shard_of = balance(&ids, &timings, n);
        assert_eq!(shard_of, balance(&ids, &timings, n), "the split is deterministic");
        let mut load = vec![0u64; n];
        for (k, t) in shard_of.iter().zip(&times) {
            load[*k] += t;
        }
        // Any greedy assignment to the least-loaded shard ends with its largest shard at most the
        // mean plus the longest cell (the last cell added to it started below the mean).
        let bound = total / n as u64 + longest;
        let max = *load.iter().max().unwrap();
        assert!(max <= bound, "{n} shards: largest {max} ms > mean + longest cell = {bound} ms ({load:?})");
        assert!(load.iter().all(|&l| l > 0), "{n} shards: an empty shard ({load:?})");
    }
}

#[test]
fn cells_without_a_recorded_time_count_as_the_median() {
    let whole = recorded();
    let mut ids: Vec<CellId> = whole.cells.iter().map(|c| c.id()).collect();
    let timings = read_timings(&fixture()).unwrap();
    ids.push(CellId {
        scenario: "not-recorded".into(),
        engine_name: "bookworm".into(),
        backend: portwhy_lab::scenario::BackendName::Legacy,
    });
    let shard_of = balance(&ids, &timings, 2);
    assert_eq!(shard_of.len(), ids.len());
    let mut sorted: Vec<u64> = timings.values().copied().collect();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let mut load = [0u64; 2];
    for (id, k) in ids.iter().zip(&shard_of) {
        load[*k] += timings.get(id).copied().unwrap_or(median);
    }
    let total: u64 = load.iter().sum();
    assert!(load.iter().all(|&l| l <= total / 2 + sorted[sorted.len() - 1]), "{load:?}");
}

#[test]
fn the_committed_timings_are_the_recorded_run() {
    assert_eq!(
        read_timings(&repo().join("ci/timings.json")).unwrap(),
        read_timings(&fixture()).unwrap(),
        "ci/timings.json must be derived from runner/tests/fixtures/results.json"
    );
}

#[test]
fn balanced_plans_partition_the_matrix() {
    use portwhy_lab::matrix::{self, Selection};
    let scenarios: Vec<_> = portwhy_lab::scenario::load_dir(&repo().join("scenarios"))
        .unwrap()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let engines = portwhy_harness::load_catalog(&repo().join("engines.toml")).unwrap();
    let timings = read_timings(&repo().join("ci/timings.json")).unwrap();
    let all: BTreeSet<CellId> =
        matrix::plan(&scenarios, &engines, &Selection::default()).unwrap().iter().map(|c| c.id()).collect();
    let mut seen = Vec::new();
    for i in 1..=3 {
        let sel = Selection { shard: Some((i, 3)), timings: Some(timings.clone()), ..Selection::default() };
        seen.extend(matrix::plan(&scenarios, &engines, &sel).unwrap().iter().map(|c| c.id()));
    }
    assert_eq!(seen.len(), all.len(), "no cell in two shards");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all, "every cell in one shard");
}
