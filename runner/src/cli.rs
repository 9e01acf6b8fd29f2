//! The `portwhy-lab` command line: clap derive, and the mapping of every failure to an exit code.
//!
//! Exit codes: 0 every cell passed (or the command succeeded), 1 some cell failed, 2 bad input
//! (scenario file, flag, missing binary), 3 the environment or Docker is unavailable.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use portwhy_harness::{connect, list_images, load_catalog, prune_images, sweep, EngineSpec};

use crate::matrix::{self, Selection};
use crate::outcome::Status;
use crate::report::{self, FolderReporter, JsonStdoutReporter, JunitReporter, Reporter};
use crate::run::{self, RunConfig};
use crate::scenario::{self, BackendName};

#[derive(Debug, Parser)]
#[command(
    name = "portwhy-lab",
    version,
    about = "Run portwhy's scenario matrix in real Docker engines and report."
)]
pub struct Cli {
    #[command(flatten)]
    pub paths: Paths,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the data lives; defaults are found from the current directory up to the workspace root.
#[derive(Debug, Args)]
pub struct Paths {
    /// Engine catalogue.
    #[arg(long, global = true, env = "PORTWHY_ENGINES")]
    pub catalog: Option<PathBuf>,
    /// Directory of scenario files.
    #[arg(long = "scenarios", global = true, env = "PORTWHY_SCENARIOS")]
    pub scenario_dir: Option<PathBuf>,
    /// The host-built `portwhy` binary copied into environments (default: target/release or target/debug).
    #[arg(long, global = true, env = "PORTWHY_BIN")]
    pub portwhy: Option<PathBuf>,
}

/// Which cells.
#[derive(Debug, Args, Clone)]
pub struct CellFilter {
    /// Engine name (`bookworm`) or version prefix (`28`); repeatable.
    #[arg(long = "engine", id = "engine")]
    pub engines: Vec<String>,
    /// `legacy`, `nft` or `nftables` (29.0+ engines only); repeatable.
    #[arg(long = "backend", id = "backend")]
    pub backends: Vec<BackendName>,
    /// Scenario name; repeatable; default all.
    #[arg(long = "scenario", id = "scenario")]
    pub scenarios: Vec<String>,
    /// Use `--privileged --cgroupns private` environments (CI runners with cgroup v2).
    #[arg(long)]
    pub privileged: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the matrix.
    Run {
        #[command(flatten)]
        filter: CellFilter,
        /// Cells run in parallel. Default: the machine's cores + 1 (a cell spends much of its
        /// time waiting on the engines), capped by available memory at 512 MiB a cell; the start
        /// of the run says which.
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard I of N (1-based), e.g. `--shard 2/4`, balanced by recorded cell times.
        #[arg(long, value_parser = matrix::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Cell times to balance shards by: a results.json or ci/timings.json (the default when
        /// found); cells not in it count as the median.
        #[arg(long)]
        timings: Option<PathBuf>,
        /// Print results.json on stdout.
        #[arg(long)]
        json: bool,
        /// Write results.json, report.md and index.html into DIR.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write JUnit XML to FILE.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Leave environments running (remove them with `portwhy-lab gc`).
        #[arg(long)]
        keep: bool,
        /// Fail (exit 4) when a cell of this engine (name or version prefix, `29`) did not run
        /// because its tarball is absent; repeatable, or comma-separated in the variable.
        #[arg(long = "require-engine", env = "PORTWHY_LAB_REQUIRE_ENGINE", value_delimiter = ',')]
        require_engine: Vec<String>,
    },
    /// Bring one cell up and leave it, fault in place, to look around.
    Repro {
        scenario: String,
        #[arg(long)]
        engine: String,
        #[arg(long, default_value = "legacy")]
        backend: BackendName,
        #[arg(long)]
        privileged: bool,
    },
    /// Remove what `repro` left running.
    Down {
        /// Run id to remove (default: the last `repro`).
        #[arg(long)]
        run: Option<String>,
    },
    /// Turn a `portwhy collect` evidence bundle into a scenario (TOML on stdout, or a file with --write).
    Replay {
        bundle: PathBuf,
        /// Scenario name (default: from the port and the bundle's verdict, `replay-8080-host-process`).
        #[arg(long)]
        name: Option<String>,
        /// Write NAME.toml into this folder (e.g. `scenarios`) instead of printing it; never overwrites.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Engine images: build, list or prune.
    Images {
        #[command(subcommand)]
        action: ImagesAction,
    },
    /// Remove every labelled leftover (containers, volumes, networks) of any run.
    Gc,
    /// Check every scenario file (no Docker needed).
    Validate,
    /// Render a report folder from results.json files; several (shards) are merged into one.
    Report {
        #[arg(required = true)]
        results: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        junit: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// Build (or find) every engine image in the catalogue.
    Build {
        #[arg(long = "engine")]
        engines: Vec<String>,
    },
    List,
    /// Remove engine images whose recipe is no longer in the catalogue.
    Prune,
}

/// Every failure the binary expects, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0} cell(s) failed")]
    CellsFailed(usize),
    #[error("required engine(s) did not run: {0}")]
    EngineMissing(String),
}

impl LabError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::CellsFailed(_) => 1,
            Self::BadInput(_) => 2,
            Self::Unavailable(_) => 3,
            Self::EngineMissing(_) => 4,
        }
    }
}

/// Look for `rel` in the current directory and its parents, then next to this crate.
fn find_up(rel: &str) -> PathBuf {
    if let Ok(mut dir) = std::env::current_dir() {
        loop {
            let p = dir.join(rel);
            if p.exists() {
                return p;
            }
            if !dir.pop() {
                break;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

impl Paths {
    fn catalog(&self) -> PathBuf {
        self.catalog.clone().unwrap_or_else(|| find_up("engines.toml"))
    }

    fn scenarios(&self) -> PathBuf {
        self.scenario_dir.clone().unwrap_or_else(|| find_up("scenarios"))
    }

    /// The `portwhy` binary (`--portwhy`/PORTWHY_BIN, else the newest build), or how to build it.
    pub fn portwhy_bin(&self) -> Result<PathBuf, LabError> {
        portwhy_harness::binaries::find("portwhy", self.portwhy.as_deref())
            .map_err(|e| LabError::BadInput(e.to_string()))
    }
}

fn engines(paths: &Paths) -> Result<Vec<EngineSpec>, LabError> {
    load_catalog(&paths.catalog()).map_err(|e| LabError::BadInput(e.to_string()))
}

fn docker() -> Result<bollard::Docker, LabError> {
    connect().map_err(|e| LabError::Unavailable(e.to_string()))
}

/// Where `repro` records its run id for `down`.
fn repro_state() -> PathBuf {
    std::env::temp_dir().join("portwhy-lab-repro.run")
}

pub async fn main(cli: Cli) -> Result<(), LabError> {
    let paths = &cli.paths;
    match cli.command {
        Command::Validate => {
            let all =
                scenario::load_dir(&paths.scenarios()).map_err(|e| LabError::BadInput(e.to_string()))?;
            for (path, s) in &all {
                println!("ok  {:<32} {}", s.name, path.display());
            }
            println!("{} scenario files valid", all.len());
            Ok(())
        }
        Command::Run {
            filter,
            jobs,
            shard,
            timings,
            json,
            report: report_dir,
            junit,
            keep,
            require_engine,
        } => {
            let scenarios = scenario::select(&paths.scenarios(), &filter.scenarios)
                .map_err(|e| LabError::BadInput(e.to_string()))?;
            let catalog = engines(paths)?;
            let timings = match (shard, timings) {
                (None, _) => None,
                (Some(_), Some(path)) => Some(path),
                (Some(_), None) => Some(find_up(crate::shard::DEFAULT_TIMINGS)).filter(|p| p.exists()),
            };
            let timings = timings
                .map(|p| crate::shard::read_timings(&p))
                .transpose()
                .map_err(|e| LabError::BadInput(e.to_string()))?;
            let sel = Selection {
                engines: filter.engines.clone(),
                backends: filter.backends.clone(),
                shard,
                timings,
            };
            let plans =
                matrix::plan(&scenarios, &catalog, &sel).map_err(|e| LabError::BadInput(e.to_string()))?;
            let portwhy_bin = paths.portwhy_bin()?;
            let docker = docker()?;
            let run_id = run::new_run_id();
            let _guard = portwhy_harness::sweep_on_ctrl_c(docker.clone(), run_id.clone());
            let mut reporters: Vec<Box<dyn Reporter>> =
                vec![Box::new(report::terminal::TerminalReporter::new(!json))];
            if json {
                reporters.push(Box::new(JsonStdoutReporter));
            }
            if let Some(dir) = report_dir {
                reporters.push(Box::new(FolderReporter { dir }));
            }
            if let Some(path) = junit {
                reporters.push(Box::new(JunitReporter { path }));
            }
            let jobs = match jobs {
                Some(n) => n,
                None => {
                    let (n, why) = run::default_jobs();
                    eprintln!("--jobs {n}: {why}");
                    n
                }
            };
            let cfg =
                RunConfig { run_id, jobs, keep, prove: true, privileged: filter.privileged, portwhy_bin };
            let (results, _) = run::run(docker, plans, cfg, reporters).await.map_err(|e| match e {
                run::RunError::Environment(m) => LabError::Unavailable(m),
                other => LabError::BadInput(other.to_string()),
            })?;
            let bad =
                results.cells.iter().filter(|c| matches!(c.status, Status::Fail | Status::Error)).count();
            if results.cells.iter().all(|c| c.status == Status::Error) {
                return Err(LabError::Unavailable(
                    "no cell could start an environment (see the errors above)".into(),
                ));
            }
            if bad > 0 {
                return Err(LabError::CellsFailed(bad));
            }
            let missing: Vec<String> = report::not_run_engines(&results.cells)
                .into_iter()
                .filter(|(name, _, _)| {
                    let version =
                        results.cells.iter().find(|c| &c.engine_name == name).map(|c| c.engine.as_str());
                    let key = scenario::EngineKey { name, version: version.unwrap_or_default() };
                    require_engine.iter().any(|w| scenario::engine_matches(w, key))
                })
                .map(|(name, _, how)| format!("{name} ({how})"))
                .collect();
            if !missing.is_empty() {
                return Err(LabError::EngineMissing(missing.join("; ")));
            }
            Ok(())
        }
        Command::Repro { scenario: name, engine, backend, privileged } => {
            let scenarios = scenario::select(&paths.scenarios(), &[name])
                .map_err(|e| LabError::BadInput(e.to_string()))?;
            let query = scenarios.first().map(|s| s.port.to_string()).unwrap_or_default();
            let catalog = engines(paths)?;
            let sel =
                Selection { engines: vec![engine], backends: vec![backend], shard: None, timings: None };
            let mut plans =
                matrix::plan(&scenarios, &catalog, &sel).map_err(|e| LabError::BadInput(e.to_string()))?;
            plans.truncate(1);
            let portwhy_bin = paths.portwhy_bin()?;
            let docker = docker()?;
            let run_id = run::new_run_id();
            let _ = std::fs::write(repro_state(), &run_id);
            let cfg = RunConfig {
                run_id: run_id.clone(),
                jobs: 1,
                keep: true,
                // The point of a repro is the fault in place: no remedy may touch it.
                prove: false,
                privileged,
                portwhy_bin,
            };
            let reporters: Vec<Box<dyn Reporter>> =
                vec![Box::new(report::terminal::TerminalReporter::new(true))];
            let (_, kept) = run::run(docker, plans, cfg, reporters)
                .await
                .map_err(|e| LabError::Unavailable(e.to_string()))?;
            for k in kept {
                if let Some(name) = k.env_name {
                    println!("\nThe environment is up, faults in place (run {run_id}). Enter it with:\n  docker exec -it {name} sh\nInside: docker ps -a; ss -ltnup; portwhy diagnose {} --json\nRemove it with: portwhy-lab down", query);
                }
            }
            Ok(())
        }
        Command::Down { run } => {
            let run_id = match run {
                Some(r) => r,
                None => std::fs::read_to_string(repro_state())
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| LabError::BadInput("no repro recorded: pass --run RUN_ID".into()))?,
            };
            let docker = docker()?;
            let report =
                sweep(&docker, Some(&run_id)).await.map_err(|e| LabError::Unavailable(e.to_string()))?;
            println!(
                "removed {} containers, {} volumes, {} networks of run {run_id}",
                report.containers.len(),
                report.volumes.len(),
                report.networks.len()
            );
            let _ = std::fs::remove_file(repro_state());
            Ok(())
        }
        Command::Gc => {
            let docker = docker()?;
            let report = sweep(&docker, None).await.map_err(|e| LabError::Unavailable(e.to_string()))?;
            println!(
                "removed {} containers, {} volumes, {} networks",
                report.containers.len(),
                report.volumes.len(),
                report.networks.len()
            );
            Ok(())
        }
        Command::Replay { bundle, name, write } => {
            let ev = crate::replay::load(&bundle).map_err(|e| LabError::BadInput(e.to_string()))?;
            let name = name.unwrap_or_else(|| crate::replay::default_name(&ev));
            let text = crate::replay::skeleton(&ev, &name);
            match write {
                Some(dir) => {
                    let path = crate::replay::write_into(&dir, &name, &text)
                        .map_err(|e| LabError::BadInput(e.to_string()))?;
                    println!("wrote {} (run it: portwhy-lab run --scenario {name})", path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Images { action } => {
            let docker = docker()?;
            match action {
                ImagesAction::Build { engines: want } => {
                    let catalog = engines(paths)?;
                    for e in catalog.iter().filter(|e| {
                        want.is_empty()
                            || want.iter().any(|w| {
                                scenario::engine_matches(
                                    w,
                                    scenario::EngineKey { name: &e.name, version: &e.version },
                                )
                            })
                    }) {
                        let started = std::time::Instant::now();
                        let img = portwhy_harness::ensure_image(&docker, e, &|m: &str| eprintln!("{m}"))
                            .await
                            .map_err(|err| LabError::Unavailable(err.to_string()))?;
                        println!("{}  {}  ({:.1} s)", e.name, img.tag, started.elapsed().as_secs_f64());
                    }
                }
                ImagesAction::List => {
                    for i in list_images(&docker).await.map_err(|e| LabError::Unavailable(e.to_string()))? {
                        println!("{:<40} {:<10} {}", i.tags.join(","), i.engine, i.engine_version);
                    }
                }
                ImagesAction::Prune => {
                    let catalog = engines(paths)?;
                    for id in prune_images(&docker, &catalog)
                        .await
                        .map_err(|e| LabError::Unavailable(e.to_string()))?
                    {
                        println!("removed {id}");
                    }
                }
            }
            Ok(())
        }
        Command::Report { results, out, junit } => {
            let merging = results.len() > 1;
            let mut parts = Vec::new();
            for path in results {
                let r = report::read_results(&path).map_err(|e| LabError::BadInput(e.to_string()))?;
                parts.push((path, r));
            }
            let r = crate::shard::merge(parts).map_err(|e| LabError::BadInput(e.to_string()))?;
            report::write_folder(&out, &r).map_err(|e| LabError::BadInput(e.to_string()))?;
            // Merged shards also get their one JUnit file beside the page.
            let junit = junit.or_else(|| merging.then(|| out.join("junit.xml")));
            if let Some(j) = junit {
                std::fs::write(&j, report::junit::render(&r))
                    .map_err(|e| LabError::BadInput(format!("{}: {e}", j.display())))?;
            }
            print!("{}", report::terminal::summary_table(&r.cells, r.wall_ms));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "portwhy-lab",
            "run",
            "--scenario",
            "a",
            "--engine",
            "28",
            "--shard",
            "1/2",
        ])
        .unwrap();
        match cli.command {
            Command::Run { filter, shard, .. } => {
                assert_eq!(filter.scenarios, vec!["a"]);
                assert_eq!(shard, Some((1, 2)));
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}
