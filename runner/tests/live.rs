//! The scenario matrix in real Docker-in-Docker environments (feature `live`).
//!
//! Every cell must pass, and its redacted verdict and remedy must match snapshots/. Without a
//! reachable Docker daemon this test fails with the harness's explanation; it never skips.
//! Select cells with PORTWHY_LAB_ENGINE / PORTWHY_LAB_SCENARIO (comma-separated) and the
//! parallelism with PORTWHY_LAB_JOBS.
#![cfg(feature = "live")]

mod common;

use std::path::Path;

use portwhy_lab::matrix::{self, Selection};
use portwhy_lab::outcome::Status;
use portwhy_lab::run::{self, RunConfig};
use portwhy_lab::scenario;

fn list(var: &str) -> Vec<String> {
    std::env::var(var)
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_matrix_passes_and_matches_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("{e}"));
    docker
        .ping()
        .await
        .unwrap_or_else(|e| panic!("Docker is not reachable: {e}; start dockerd or set DOCKER_HOST"));
    let scenarios = scenario::select(&root.join("scenarios"), &list("PORTWHY_LAB_SCENARIO"))
        .unwrap_or_else(|e| panic!("{e}"));
    let engines = portwhy_harness::load_catalog(&root.join("engines.toml")).unwrap_or_else(|e| panic!("{e}"));
    let sel = Selection { engines: list("PORTWHY_LAB_ENGINE"), backends: vec![], shard: None, timings: None };
    let plans = matrix::plan(&scenarios, &engines, &sel).unwrap_or_else(|e| panic!("{e}"));
    let paths = portwhy_lab::cli::Paths {
        catalog: None,
        scenario_dir: None,
        portwhy: std::env::var_os("PORTWHY_BIN").map(Into::into),
    };
    let portwhy_bin = paths.portwhy_bin().unwrap_or_else(|e| panic!("{e}"));
    let jobs = std::env::var("PORTWHY_LAB_JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(2);
    let cfg = RunConfig {
        run_id: run::new_run_id(),
        jobs,
        keep: false,
        prove: true,
        privileged: false,
        portwhy_bin,
    };
    let reporters: Vec<Box<dyn portwhy_lab::report::Reporter>> =
        vec![Box::new(portwhy_lab::report::terminal::TerminalReporter::new(false))];
    let (results, _) = run::run(docker, plans, cfg, reporters).await.unwrap_or_else(|e| panic!("{e}"));
    // The whole report stays behind, so a failed run can be read (and its results.json recorded).
    let report_dir = root.join("target/live-report");
    portwhy_lab::report::write_folder(&report_dir, &results).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("live matrix report: {}", report_dir.display());
    let failed: Vec<String> = results
        .cells
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Error))
        .map(|c| format!("{}: {}", c.id(), c.failures.join("; ")))
        .collect();
    // An engine whose tarball is absent is reported, and is a failure when it is required (CI
    // requires 29.x through PORTWHY_LAB_REQUIRE_ENGINE).
    let required = list("PORTWHY_LAB_REQUIRE_ENGINE");
    let mut missing = Vec::new();
    for (engine, n, how) in portwhy_lab::report::not_run_engines(&results.cells) {
        let version =
            engines.iter().find(|e| e.name == engine).map(|e| e.version.as_str()).unwrap_or_default();
        let key = scenario::EngineKey { name: &engine, version };
        let line = format!("{engine}: {n} cells NOT RUN: {how}");
        eprintln!("{line}");
        if required.iter().any(|w| scenario::engine_matches(w, key)) {
            missing.push(line);
        }
    }
    let ran: Vec<_> = results.cells.iter().filter(|c| c.status != Status::NotRun).cloned().collect();
    // Check the snapshots first but report failed cells before snapshot differences.
    let snapshots = std::panic::catch_unwind(|| common::assert_all_cell_snapshots(&ran));
    assert!(failed.is_empty(), "{} cell(s) failed:\n{}", failed.len(), failed.join("\n"));
    assert!(missing.is_empty(), "required engines did not run:\n{}", missing.join("\n"));
    assert!(snapshots.is_ok(), "cells passed but their snapshots differ (see the diffs above)");
}
