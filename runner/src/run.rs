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

/// What a cell needs at most while it runs: its environment's dockerd, containerd, a few inner
/// containers and the probes (about 200-350 MiB measured with `docker stats`), with room to spare.
const MEMORY_PER_JOB: u64 = 512 * 1024 * 1024;

/// The `--jobs` default and why: cores + 1, capped by available memory at 512 MiB a cell.
pub fn default_jobs() -> (usize, String) {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_available(&m));
    jobs_for(cores, available)
}

fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn jobs_for(cores: usize, available: Option<u64>) -> (usize, String) {
    let by_cores = cores + 1;
    let plural = if cores == 1 { "" } else { "s" };
    match available {
        None => (by_cores, format!("{cores} core{plural} + 1; available memory unknown (no /proc/meminfo)")),
        Some(bytes) => {
            let by_memory = (bytes / MEMORY_PER_JOB).max(1) as usize;
            let gib = bytes as f64 / (1u64 << 30) as f64;
            if by_memory < by_cores {
                (by_memory, format!("{gib:.1} GiB available allows {by_memory} at 512 MiB each (fewer than {cores} core{plural} + 1)"))
            } else {
                (by_cores, format!("{cores} core{plural} + 1; {gib:.1} GiB available allows {by_memory}"))
            }
        }
    }
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
    // One `portwhy --version` for the run: every cell runs this very file. Asked only when a cell
    // will run, so a run whose engines are all absent needs no working binary.
    let portwhy_version = if plans.is_empty() {
        String::new()
    } else {
        std::process::Command::new(&portwhy_bin)
            .arg("--version")
            .output()
            .map_err(|e| RunError::Internal(format!("running {} --version: {e}", portwhy_bin.display())))
            .and_then(|o| {
                let v = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                if o.status.success() && !v.is_empty() {
                    Ok(v)
                } else {
                    Err(RunError::Internal(format!(
                        "{} --version exited {}: {}",
                        portwhy_bin.display(),
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    )))
                }
            })?
    };
    let holder = portwhy_harness::binaries::portholder().map_err(|e| RunError::Internal(e.to_string()))?;
    let holder_bin = snapshot.join("portholder");
    std::fs::copy(&holder, &holder_bin)
        .map_err(|e| RunError::Internal(format!("copying {}: {e}", holder.display())))?;
    let _ = tx.send(Event::Progress {
        message: format!(
            "portwhy under test: {} ({portwhy_version}){}; portholder: {}",
            cfg.portwhy_bin.display(),
            if stripped { ", debug info stripped from the copy" } else { "" },
            holder.display()
        ),
    });
    let engines: Vec<&EngineSpec> = plans.iter().map(|p| &p.engine).collect();
    let images =
        ensure_images(&docker, &engines, &tx).await.map_err(|e| RunError::Environment(e.to_string()))?;
    let lab = Arc::new(Lab {
        docker,
        run_id: cfg.run_id.clone(),
        portwhy_version,
        binaries: vec![portwhy_bin, holder_bin],
        teardowns: Arc::new(tokio::sync::Semaphore::new(cfg.jobs.max(1))),
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
    let mut kept = kept;
    // Every environment is gone before the run reports: its teardown time joins the cell's phases.
    for k in &mut kept {
        let Some(handle) = k.teardown.take() else { continue };
        match handle.await {
            Ok(Ok(took)) => {
                k.result.phases.insert(crate::outcome::Phase::Teardown, took.as_millis() as u64);
            }
            Ok(Err(e)) => {
                let _ =
                    tx.send(Event::Progress { message: format!("{}: teardown failed: {e}", k.result.id()) });
            }
            Err(e) => {
                let _ =
                    tx.send(Event::Progress { message: format!("{}: teardown task: {e}", k.result.id()) });
            }
        }
    }
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
    // Kept environments (`repro`) still have the binaries bind-mounted from here.
    if !cfg.keep {
        let _ = std::fs::remove_dir_all(&snapshot);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_cores_plus_one_unless_memory_is_short() {
        let gib = 1u64 << 30;
        assert_eq!(jobs_for(2, Some(20 * gib)), (3, "2 cores + 1; 20.0 GiB available allows 40".to_owned()));
        assert_eq!(jobs_for(8, Some(gib)).0, 2);
        assert_eq!(jobs_for(1, Some(gib / 4)).0, 1, "always at least one");
        assert_eq!(jobs_for(4, None).0, 5);
    }

    #[test]
    fn available_memory_is_read_from_meminfo() {
        let m = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2097152 kB\n";
        assert_eq!(mem_available(m), Some(2 * (1u64 << 30)));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }
}
