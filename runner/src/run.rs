//! A matrix run: build images, run cells `jobs` at a time, feed every event to every reporter.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bollard::Docker;
use futures_util::stream::{self, StreamExt};
use portwhy_harness::{ensure_image, EngineSpec};
use tokio::sync::mpsc;

use crate::cell::{self, KeptCell, Lab};
use crate::event::Event;
use crate::matrix::CellPlan;
use crate::outcome::{RunResults, RESULTS_SCHEMA_VERSION};
use crate::report::{ReportError, Reporter};

/// How to run.
pub struct RunConfig {
    pub run_id: String,
    pub jobs: usize,
    pub keep: bool,
    /// Try and prove remedies (off for `repro`, which leaves the fault in place).
    pub prove: bool,
    pub privileged: bool,
    pub portwhy_bin: PathBuf,
}

/// A fresh run id: short, lowercase, unique enough for labels (`pw-` + base36 time and pid).
pub fn new_run_id() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut n = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    let mut s = String::new();
    for _ in 0..8 {
        let d = (n % 36) as u32;
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    format!("pw-{s}")
}

/// Build (or find) the image of every engine the plans use, reporting progress as events.
pub async fn ensure_images(
    docker: &Docker,
    engines: &[&EngineSpec],
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<HashMap<String, portwhy_harness::EngineImage>, portwhy_harness::HarnessError> {
    let mut out = HashMap::new();
    for e in engines {
        if out.contains_key(&e.name) {
            continue;
        }
        let tx2 = tx.clone();
        let progress = move |m: &str| {
            let _ = tx2.send(Event::Progress { message: m.to_owned() });
        };
        let image = ensure_image(docker, e, &progress).await?;
        out.insert(e.name.clone(), image);
    }
    Ok(out)
}

/// Run every plan; returns the results and whatever the reporters reported as errors.
pub async fn run(
    docker: Docker,
    plans: Vec<CellPlan>,
    cfg: RunConfig,
    mut reporters: Vec<Box<dyn Reporter>>,
) -> Result<(RunResults, Vec<KeptCell>), RunError> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    // One consumer task: reporters see every event in emission order.
    let consumer = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            for r in reporters.iter_mut() {
                r.event(&ev);
            }
        }
        reporters
    });
    let _ = tx.send(Event::RunStarted { total: plans.len(), run_id: cfg.run_id.clone() });
    // Work on a private copy: the shared target dir may be rebuilt while the run copies the binary
    // into environments, and every cell must test the same portwhy.
    let snapshot = tempfile_dir(&cfg.run_id).map_err(|e| RunError::Internal(e.to_string()))?;
    let portwhy_bin = snapshot.join("portwhy");
    std::fs::copy(&cfg.portwhy_bin, &portwhy_bin)
        .map_err(|e| RunError::Internal(format!("copying {}: {e}", cfg.portwhy_bin.display())))?;
    // A debug build carries ~130 MB of debug info that every cell would upload; drop it from the
    // copy when binutils' strip is there (best effort: the unstripped copy works the same).
    let stripped = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg(&portwhy_bin)
        .status()
        .is_ok_and(|s| s.success());
    let _ = tx.send(Event::Progress {
        message: format!(
            "portwhy under test: {}{}",
            cfg.portwhy_bin.display(),
            if stripped { " (debug info stripped from the copy)" } else { "" }
        ),
    });
    // An engine whose tarball is absent gets its cells reported as not run, with how to get it.
    let (plans, absent): (Vec<CellPlan>, Vec<CellPlan>) =
        plans.into_iter().partition(|p| p.engine.availability().is_ok());
    let mut not_run = Vec::new();
    for p in &absent {
        let how = p.engine.availability().err().map(|m| m.how_to_get).unwrap_or_default();
        let result = cell::not_run(p, how);
        let _ = tx.send(Event::Finished { result: Box::new(result.clone()) });
        not_run.push(result);
    }
    let engines: Vec<&EngineSpec> = plans.iter().map(|p| &p.engine).collect();
    let images =
        ensure_images(&docker, &engines, &tx).await.map_err(|e| RunError::Environment(e.to_string()))?;
    let lab = Arc::new(Lab {
        docker,
        run_id: cfg.run_id.clone(),
        portwhy_bin,
        keep: cfg.keep,
        prove: cfg.prove,
        privileged: cfg.privileged,
        images,
    });
    let kept: Vec<KeptCell> = stream::iter(plans.into_iter().map(|p| {
        let lab = lab.clone();
        let tx = tx.clone();
        async move { cell::run(&lab, &p, &tx).await }
    }))
    .buffer_unordered(cfg.jobs.max(1))
    .collect()
    .await;
    drop(tx);
    let mut reporters = consumer.await.map_err(|e| RunError::Internal(format!("reporter task: {e}")))?;
    let mut cells: Vec<_> = kept.iter().map(|k| k.result.clone()).chain(not_run).collect();
    cells.sort_by_key(|a| a.id());
    let results = RunResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        run_id: cfg.run_id,
        wall_ms: started.elapsed().as_millis() as u64,
        cells,
    };
    for r in reporters.iter_mut() {
        r.finish(&results)?;
    }
    let _ = std::fs::remove_dir_all(&snapshot);
    Ok((results, kept))
}

fn tempfile_dir(run_id: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("portwhy-lab-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("environment: {0}")]
    Environment(String),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("internal: {0}")]
    Internal(String),
}
