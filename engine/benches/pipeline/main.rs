//! Benchmark: `portwhy PORT --json` against the commands a user runs today, on a loaded host.
//!
//! `cargo bench -p portwhy --bench pipeline` (root, a running dockerd, busybox-static installed)
//! loads the host like a busy server: tens of thousands of established connections held by a few
//! processes, listeners and bound UDP sockets, sleeping processes and containers on the host
//! engine. Then, for each kind of holder of the queried port (a plain host process started last,
//! a container through docker-proxy, a rootless engine's rootlesskit), it times, interleaved in the
//! same run, `portwhy PORT --json` and the pipeline `ss -tlnp; docker ps -a; iptables-save -t nat`,
//! and prints medians, their ratio, portwhy's peak memory and where the time went. Everything it
//! creates is removed at the end, on error and on Ctrl-C; containers carry the label
//! `io.portwhy.bench=1`, so a run killed with SIGKILL is swept by the next one.
//!
//! Options (after `--`): `--reps N` (15), `--connections N` (11000 connections: 22,000
//! established sockets), `--sockets N` (1000 listeners and UDP sockets), `--procs N` (2000),
//! `--containers N` (50), `--port P` (18080), `--holder host,container,rootless` (those three;
//! `host-early` adds a plain process started before the load, on P+1),
//! `--rootless-user NAME` (portwhy-bench), `--require-ratio X` (exit 1 when any holder's ratio is
//! below it).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

mod load;
mod measure;
mod rootless;

use load::*;
use measure::*;
use rootless::*;

const LABEL: &str = "io.portwhy.bench=1";
const IMAGE: &str = "portwhy-bench-busybox:local";
const PIPELINE: &str = "ss -tlnp; docker ps -a; iptables-save -t nat";
/// Sockets one process keeps: the hard RLIMIT_NOFILE here is 20000 and cannot be raised (no
/// CAP_SYS_RESOURCE), so a larger load is spread over several processes.
const SOCKETS_PER_HOLDER: usize = 5000;
const CONNECTIONS_PER_PROCESS: usize = 11_000;
/// Host ports for the containers' extra publishes, below the ephemeral range.
const CONTAINER_PORT_BASE: u16 = 20000;
/// Where Debian's docker.io puts the rootless launcher.
const ROOTLESS_LAUNCHER: &str = "/usr/share/docker.io/contrib/dockerd-rootless.sh";
const ROOTLESS_SETUP: &str = "engine/benches/rootless-setup.sh";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Who holds the queried port while it is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// A plain process on the host, started after the whole load.
    Host,
    /// The same, started before the sleepers and connections (on PORT+1): the newest-first order
    /// of the owner search is no help for it.
    HostEarly,
    /// A container of the host engine publishing the port (docker-proxy holds it).
    Container,
    /// A container of a rootless engine (rootlesskit holds it on the host).
    Rootless,
}

impl Holder {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "host" => Self::Host,
            "host-early" => Self::HostEarly,
            "container" => Self::Container,
            "rootless" => Self::Rootless,
            other => bail!("unknown holder {other:?}: use host, host-early, container or rootless"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Host => "host process",
            Self::HostEarly => "host process started before the load",
            Self::Container => "container (docker-proxy)",
            Self::Rootless => "rootless engine (rootlesskit)",
        }
    }
}

#[derive(Debug, Clone)]
struct Config {
    reps: usize,
    connections: usize,
    sockets: usize,
    procs: usize,
    containers: usize,
    port: u16,
    holders: Vec<Holder>,
    rootless_user: String,
    require_ratio: Option<f64>,
}

fn parse_args() -> Result<Config> {
    let mut cfg = Config {
        reps: 15,
        connections: 11_000,
        sockets: 1_000,
        procs: 2_000,
        containers: 50,
        port: 18080,
        holders: vec![Holder::Host, Holder::Container, Holder::Rootless],
        rootless_user: "portwhy-bench".into(),
        require_ratio: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--reps" => cfg.reps = value()?.parse()?,
            "--connections" => cfg.connections = value()?.parse()?,
            "--sockets" => cfg.sockets = value()?.parse()?,
            "--procs" => cfg.procs = value()?.parse()?,
            "--containers" => cfg.containers = value()?.parse()?,
            "--port" => cfg.port = value()?.parse()?,
            "--holder" => cfg.holders = value()?.split(',').map(Holder::parse).collect::<Result<_>>()?,
            "--rootless-user" => cfg.rootless_user = value()?,
            "--require-ratio" => cfg.require_ratio = Some(value()?.parse()?),
            other => bail!("unknown option {other}; see the header of engine/benches/pipeline/main.rs"),
        }
    }
    ensure!(cfg.reps > 0, "--reps must be at least 1");
    ensure!(!cfg.holders.is_empty(), "--holder needs at least one of host, container, rootless");
    Ok(cfg)
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--hold-sockets") => return hold_sockets(),
        Some("--hold-port") => return hold_port(),
        Some("--serve-connections") => return serve_connections(),
        Some("--open-connections") => return open_connections(),
        _ => {}
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portwhy bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut load = Load::default();
    let result = run(&cfg, &mut load);
    eprintln!("cleaning up: holders, sleepers, rootless engine, containers labelled {LABEL}");
    load.cleanup();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("portwhy bench failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cfg: &Config, load: &mut Load) -> Result<bool> {
    let portwhy = portwhy_binary()?;
    preflight()?;
    let rootless_user = if cfg.holders.contains(&Holder::Rootless) {
        Some(RootlessUser::check(&cfg.rootless_user)?)
    } else {
        None
    };
    if let Some(user) = &rootless_user {
        sweep_rootless(user);
    }
    sweep_containers(None);

    eprintln!("loading the host: {} containers ...", cfg.containers);
    load.imported_image = ensure_image(None)?;
    start_containers(cfg, load)?;
    let early_pid = if cfg.holders.contains(&Holder::HostEarly) {
        let (held, pid) = start_helper(&["--hold-port", &(cfg.port + 1).to_string()])?;
        load.holders.push(held);
        Some(pid)
    } else {
        None
    };
    eprintln!("loading the host: {} sleeping processes ...", cfg.procs);
    for _ in 0..cfg.procs {
        check_interrupt()?;
        load.sleepers.push(spawn_orphan_proof(Command::new("sleep").arg("3600").stdin(Stdio::null()))?);
    }
    eprintln!("loading the host: {} established connections ...", cfg.connections);
    let mut remaining = cfg.connections;
    while remaining > 0 {
        check_interrupt()?;
        let n = remaining.min(CONNECTIONS_PER_PROCESS);
        start_connections(n, load)?;
        remaining -= n;
    }
    eprintln!("loading the host: {} listeners and UDP sockets ...", cfg.sockets);
    let mut remaining = cfg.sockets;
    while remaining > 0 {
        check_interrupt()?;
        let n = remaining.min(SOCKETS_PER_HOLDER);
        load.holders.push(start_helper(&["--hold-sockets", &n.to_string()])?.0);
        remaining -= n;
    }

    let mut all_met = true;
    for &holder in &cfg.holders {
        check_interrupt()?;
        eprintln!("holder: {} on port {} ...", holder.name(), cfg.port);
        let target = match (holder, early_pid) {
            (Holder::HostEarly, Some(pid)) => Target {
                port: cfg.port + 1,
                docker_host: None,
                expect: format!("pid {pid}"),
                container: None,
            },
            _ => start_holder(holder, cfg, load, rootless_user.as_ref())?,
        };
        let met = measure(cfg, &portwhy, holder, &target)?;
        all_met &= met;
        stop_holder(holder, &target, load);
    }
    Ok(all_met)
}

/// What a holder's timed runs need: where the Docker API is, and what the verdict must name.
struct Target {
    port: u16,
    docker_host: Option<String>,
    /// A word the first finding's summary must contain (pid, container name, `rootlesskit`).
    expect: String,
    container: Option<String>,
}

fn start_holder(
    holder: Holder,
    cfg: &Config,
    load: &mut Load,
    user: Option<&RootlessUser>,
) -> Result<Target> {
    let port = cfg.port.to_string();
    match holder {
        Holder::Host | Holder::HostEarly => {
            let (held, pid) = start_helper(&["--hold-port", &port])?;
            load.holders.push(held);
            Ok(Target { port: cfg.port, docker_host: None, expect: format!("pid {pid}"), container: None })
        }
        Holder::Container => {
            let name = format!("portwhy-bench-{}-holder", std::process::id());
            docker_run(None, &name, Some(&format!("{port}:80")))?;
            load.containers.push(name.clone());
            Ok(Target { port: cfg.port, docker_host: None, expect: name.clone(), container: Some(name) })
        }
        Holder::Rootless => {
            let user = user.context("rootless holder without a checked user")?;
            let engine = start_rootless(user)?;
            let host = engine.socket.clone();
            load.rootless = Some(engine);
            ensure_image(Some(&host))?;
            let name = format!("portwhy-bench-{}-rootless", std::process::id());
            docker_run(Some(&host), &name, Some(&format!("{port}:80")))?;
            Ok(Target {
                port: cfg.port,
                docker_host: Some(host),
                expect: "rootlesskit".into(),
                container: Some(name),
            })
        }
    }
}

fn stop_holder(holder: Holder, target: &Target, load: &mut Load) {
    match holder {
        // Left for the cleanup at the end.
        Holder::HostEarly => {}
        // The port holder is the last helper started.
        Holder::Host => {
            if let Some((mut child, stdin)) = load.holders.pop() {
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        Holder::Container => {
            if let Some(name) = &target.container {
                let _ = quiet(Command::new("docker").args(["rm", "-f", name]));
                load.containers.retain(|c| c != name);
            }
        }
        Holder::Rootless => {
            if let Some(engine) = load.rootless.take() {
                stop_rootless(engine);
            }
        }
    }
}

/// Time portwhy and the pipeline for one holder; true when the ratio meets `--require-ratio`.
fn measure(cfg: &Config, portwhy: &Path, holder: Holder, target: &Target) -> Result<bool> {
    let docker_host = target.docker_host.as_deref();
    let observed = Observed::read()?;
    eprintln!("warming up (load average {}) ...", loadavg());
    run_portwhy(portwhy, target.port, docker_host)?;
    run_pipeline(docker_host)?;

    let mut pw = Vec::with_capacity(cfg.reps);
    let mut pipe = Vec::with_capacity(cfg.reps);
    let mut peak_kib = 0i64;
    let mut verdict = String::new();
    for i in 0..cfg.reps {
        check_interrupt()?;
        let run = run_portwhy(portwhy, target.port, docker_host)?;
        peak_kib = peak_kib.max(run.maxrss_kib);
        ensure!(
            run.verdict.contains(&target.expect),
            "portwhy's verdict does not name the holder ({}): {}",
            target.expect,
            run.verdict
        );
        verdict = run.verdict;
        pw.push(run.elapsed);
        pipe.push(run_pipeline(docker_host)?);
        eprint!("\rrun {}/{}", i + 1, cfg.reps);
    }
    eprintln!();

    let stage_reps = cfg.reps.min(5);
    let stages = stage_breakdown(target.port, stage_reps, docker_host)?;
    let (pw_med, pipe_med) = (median(&mut pw), median(&mut pipe));
    let ratio = pipe_med.as_secs_f64() / pw_med.as_secs_f64();
    let target_ratio = cfg.require_ratio.unwrap_or(10.0);
    println!();
    println!("== holder: {} ==", holder.name());
    print_table(
        cfg,
        target.port,
        &observed,
        &pw,
        &pipe,
        pw_med,
        pipe_med,
        ratio,
        peak_kib,
        &verdict,
        target_ratio,
    );
    println!();
    println!("where portwhy's time goes (the same collectors called in-process, median of {stage_reps}):");
    for (stage, d) in stages {
        println!("  {:<58} {:>10}", stage, ms(d));
    }
    println!("the pipeline's commands on their own (median of {stage_reps}):");
    for command in PIPELINE.split("; ") {
        let mut runs =
            (0..stage_reps).map(|_| time_shell(command, docker_host)).collect::<Result<Vec<_>>>()?;
        println!("  {:<58} {:>10}", command, ms(median(&mut runs)));
    }
    println!("load average during the run: {}", loadavg());
    Ok(cfg.require_ratio.is_none_or(|r| ratio >= r))
}

/// Time each collector of `portwhy PORT` on its own, so a slow run says which part to look at.
fn stage_breakdown(
    port: u16,
    reps: usize,
    docker_host: Option<&str>,
) -> Result<Vec<(&'static str, Duration)>> {
    use portwhy::collect::{docker, firewall, host, procs, sockets};
    let proc_root = Path::new("/proc");
    let mut stages: Vec<(&'static str, Vec<Duration>)> = vec![
        ("sockets: sock_diag listing of the port", Vec::new()),
        ("owners: naming Docker's processes (pidfiles, children)", Vec::new()),
        ("owners: the /proc/*/fd search (includes the above)", Vec::new()),
        ("docker: engine API (ping, info, containers, networks)", Vec::new()),
        ("firewall: NAT rules of every backend", Vec::new()),
        ("host: kernel, resolver, conntrack", Vec::new()),
        ("sockets: rootless engine's namespace (listing + owners)", Vec::new()),
    ];
    for _ in 0..reps.max(1) {
        check_interrupt()?;
        let t = Instant::now();
        let mut listeners = sockets::list(sockets::SocketTable::Netlink, proc_root, Some(port), None)
            .map_err(anyhow::Error::msg)?;
        stages[0].1.push(t.elapsed());
        let t = Instant::now();
        procs::docker_side(proc_root);
        stages[1].1.push(t.elapsed());
        let t = Instant::now();
        sockets::resolve_owners(proc_root, &mut listeners).map_err(anyhow::Error::msg)?;
        stages[2].1.push(t.elapsed());
        let t = Instant::now();
        let state = docker::collect(docker_host, proc_root, Some(port)).map_err(anyhow::Error::msg)?;
        stages[3].1.push(t.elapsed());
        if let Some(kit) = state.rootlesskit_pid {
            let t = Instant::now();
            sockets::collect_in_netns_of(proc_root, kit, port).map_err(anyhow::Error::msg)?;
            stages[6].1.push(t.elapsed());
        }
        let t = Instant::now();
        let _ = firewall::collect(proc_root, port);
        stages[4].1.push(t.elapsed());
        let t = Instant::now();
        host::collect_quick(proc_root).map_err(anyhow::Error::msg)?;
        stages[5].1.push(t.elapsed());
    }
    Ok(stages
        .into_iter()
        .filter(|(_, d)| !d.is_empty())
        .map(|(name, mut d)| (name, median(&mut d)))
        .collect())
}

fn portwhy_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PORTWHY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portwhy")));
    ensure!(path.exists(), "portwhy binary not found at {}", path.display());
    Ok(path)
}

fn preflight() -> Result<()> {
    ensure!(rustix::process::geteuid().is_root(), "run as root: ss -p, iptables-save and the load need it");
    for tool in ["ss", "iptables-save", "docker", "tar"] {
        ensure!(
            quiet(Command::new("sh").args(["-c", &format!("command -v {tool}")])).is_ok(),
            "`{tool}` is not installed"
        );
    }
    quiet(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"])).context(
        "cannot reach the Docker daemon: start it (`dockerd > /var/log/dockerd.log 2>&1 &`) and retry",
    )?;
    Ok(())
}
