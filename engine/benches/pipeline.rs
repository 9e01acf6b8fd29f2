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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rustix::process::Signal;

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
            other => bail!("unknown option {other}; see the header of engine/benches/pipeline.rs"),
        }
    }
    ensure!(cfg.reps > 0, "--reps must be at least 1");
    ensure!(!cfg.holders.is_empty(), "--holder needs at least one of host, container, rootless");
    Ok(cfg)
}

/// A rootless engine this run started, as the bench user.
struct RootlessEngine {
    launcher: Child,
    socket: String,
    pidfile: PathBuf,
}

/// Everything the run created, removed by `cleanup` (also from `Drop`).
#[derive(Default)]
struct Load {
    holders: Vec<(Child, ChildStdin)>,
    sleepers: Vec<Child>,
    containers: Vec<String>,
    imported_image: bool,
    rootless: Option<RootlessEngine>,
}

impl Load {
    fn cleanup(&mut self) {
        // Closing a holder's stdin tells it to exit; kill covers one that does not listen.
        for (mut child, stdin) in self.holders.drain(..) {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
        for mut child in self.sleepers.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(engine) = self.rootless.take() {
            stop_rootless(engine);
        }
        if !self.containers.is_empty() {
            self.containers.clear();
            sweep_containers(None);
        }
        if std::mem::take(&mut self.imported_image) {
            let _ = quiet(Command::new("docker").args(["image", "rm", IMAGE]));
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.cleanup();
    }
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

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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

fn docker(host: Option<&str>) -> Command {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.env("DOCKER_HOST", h);
    }
    cmd
}

/// Import a busybox rootfs as the containers' image; true when this run created it.
fn ensure_image(host: Option<&str>) -> Result<bool> {
    if quiet(docker(host).args(["image", "inspect", IMAGE])).is_ok() {
        return Ok(false);
    }
    let busybox = Path::new("/bin/busybox");
    ensure!(busybox.exists(), "/bin/busybox is missing: apt-get install busybox-static");
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("bin"))?;
    std::fs::copy(busybox, dir.path().join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", dir.path().join("bin/sleep"))?;
    std::os::unix::fs::symlink("busybox", dir.path().join("bin/sh"))?;
    let mut tar =
        Command::new("tar").arg("-C").arg(dir.path()).args(["-c", "."]).stdout(Stdio::piped()).spawn()?;
    let tar_out = tar.stdout.take().context("tar stdout")?;
    let status = docker(host).args(["import", "-", IMAGE]).stdin(tar_out).stdout(Stdio::null()).status()?;
    ensure!(tar.wait()?.success() && status.success(), "docker import of the busybox rootfs failed");
    Ok(true)
}

fn docker_run(host: Option<&str>, name: &str, publish: Option<&str>) -> Result<()> {
    let mut cmd = docker(host);
    cmd.args(["run", "-d", "--label", LABEL, "--name", name]);
    if let Some(p) = publish {
        cmd.args(["-p", p]);
    }
    let out = quiet(cmd.args([IMAGE, "/bin/sleep", "3600"]));
    out.map(drop).with_context(|| format!("docker run {name}"))
}

fn start_containers(cfg: &Config, load: &mut Load) -> Result<()> {
    let mut running: Vec<(String, Child)> = Vec::new();
    for i in 0..cfg.containers {
        check_interrupt()?;
        let name = format!("portwhy-bench-{}-{i}", std::process::id());
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--label", LABEL, "--name", &name]);
        // Half of them publish a port (each with its docker-proxy processes and DNAT rules),
        // alternating loopback-only and every-address publishes.
        let host_port = CONTAINER_PORT_BASE + i as u16;
        match i {
            i if i % 4 == 1 => cmd.args(["-p", &format!("127.0.0.1:{host_port}:80")]),
            i if i % 4 == 3 => cmd.args(["-p", &format!("{host_port}:80")]),
            _ => &mut cmd,
        };
        cmd.args([IMAGE, "/bin/sleep", "3600"]).stdout(Stdio::null()).stderr(Stdio::piped());
        load.containers.push(name.clone());
        running.push((name, cmd.spawn()?));
        // A few `docker run` at once: the daemon serialises much of the work anyway.
        if running.len() >= 4 {
            finish_runs(&mut running)?;
        }
    }
    finish_runs(&mut running)
}

fn finish_runs(running: &mut Vec<(String, Child)>) -> Result<()> {
    for (name, child) in running.drain(..) {
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "docker run {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn sweep_containers(host: Option<&str>) {
    let Ok(ids) = quiet(docker(host).args(["ps", "-aq", "--filter", &format!("label={LABEL}")])) else {
        return;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        // Bounded: a daemon that stops answering (seen once here, with every container lock held)
        // must not hang the cleanup; the next run sweeps what is left by label.
        let mut rm = Command::new("timeout");
        rm.args(["120", "docker", "rm", "-f"]).args(&ids);
        if let Some(h) = host {
            rm.env("DOCKER_HOST", h);
        }
        if quiet(&mut rm).is_err() {
            eprintln!(
                "docker rm -f of {} bench containers failed or timed out; the next run sweeps them",
                ids.len()
            );
        }
    }
}

/// The unprivileged account a rootless engine runs as (`engine/benches/rootless-setup.sh` makes it).
struct RootlessUser {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

impl RootlessUser {
    fn check(name: &str) -> Result<Self> {
        let fix =
            format!("run `sudo {ROOTLESS_SETUP}` once, or leave rootless out with --holder host,container");
        let passwd = std::fs::read_to_string("/etc/passwd")?;
        let fields: Vec<&str> = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .with_context(|| format!("no user {name} for the rootless engine: {fix}"))?;
        ensure!(fields.len() >= 6, "/etc/passwd entry of {name} is malformed");
        for tool in ["rootlesskit", "slirp4netns", "newuidmap", ROOTLESS_LAUNCHER] {
            ensure!(
                quiet(Command::new("sh").args(["-c", &format!("command -v {tool}")])).is_ok(),
                "`{tool}` is missing for the rootless engine: {fix}"
            );
        }
        Ok(Self {
            name: name.to_owned(),
            uid: fields[2].parse()?,
            gid: fields[3].parse()?,
            home: fields[5].to_owned(),
        })
    }

    fn runtime_dir(&self) -> String {
        format!("/run/user/{}", self.uid)
    }
}

/// Start `dockerd-rootless.sh` as the bench user and wait until its API answers.
fn start_rootless(user: &RootlessUser) -> Result<RootlessEngine> {
    let runtime = user.runtime_dir();
    std::fs::create_dir_all(&runtime)?;
    std::os::unix::fs::chown(&runtime, Some(user.uid), Some(user.gid))?;
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let socket = format!("unix://{runtime}/docker.sock");
    let pidfile = PathBuf::from(format!("{runtime}/docker.pid"));
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("portwhy-bench-rootless-{}.log", user.uid)))?;
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", user.uid),
        &format!("--regid={}", user.gid),
        "--init-groups",
        "env",
        "-i",
        &format!("HOME={}", user.home),
        &format!("USER={}", user.name),
        &format!("XDG_RUNTIME_DIR={runtime}"),
        "PATH=/usr/share/docker.io/contrib:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        ROOTLESS_LAUNCHER,
        "--pidfile",
    ])
    .arg(&pidfile)
    .args(["--host", &socket])
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    // Its own process group, so stopping it reaches rootlesskit and everything below it.
    cmd.process_group(0);
    let launcher = cmd.spawn().context("starting dockerd-rootless.sh")?;
    let engine = RootlessEngine { launcher, socket, pidfile };
    let deadline = Instant::now() + Duration::from_secs(60);
    while quiet(docker(Some(&engine.socket)).args(["version", "--format", "{{.Server.Version}}"])).is_err() {
        if Instant::now() > deadline || check_interrupt().is_err() {
            stop_rootless(engine);
            bail!(
                "the rootless engine did not answer within 60 s; see {}",
                std::env::temp_dir().join(format!("portwhy-bench-rootless-{}.log", user.uid)).display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(engine)
}

fn stop_rootless(mut engine: RootlessEngine) {
    sweep_containers(Some(&engine.socket));
    // This run's own process group (setpriv → rootlesskit → dockerd ...).
    let pgid = rustix::process::Pid::from_raw(engine.launcher.id() as i32);
    signal_group(pgid, Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.launcher.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Whatever ignored SIGTERM.
    signal_group(pgid, Signal::KILL);
    let _ = engine.launcher.wait();
    let _ = std::fs::remove_file(&engine.pidfile);
}

/// A rootless engine left by a run killed with SIGKILL: its pidfile names a dockerd running as
/// the bench user; stop the rootlesskit above it.
fn sweep_rootless(user: &RootlessUser) {
    let pidfile = format!("{}/docker.pid", user.runtime_dir());
    let Some(pid) = std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok()) else {
        return;
    };
    let owned_by_user = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&user.uid.to_string()))
        })
    };
    if !owned_by_user(pid) {
        return;
    }
    sweep_containers(Some(&format!("unix://{}/docker.sock", user.runtime_dir())));
    let pgid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s[s.rfind(')')? + 1..].split_whitespace().nth(2)?.parse::<i32>().ok());
    if let Some(pgid) = pgid.filter(|&g| g > 1) {
        eprintln!("stopping a rootless engine left by an earlier run (process group {pgid})");
        // The group of a dockerd running as the bench's own user.
        let pgid = rustix::process::Pid::from_raw(pgid);
        signal_group(pgid, Signal::TERM);
        std::thread::sleep(Duration::from_secs(3));
        signal_group(pgid, Signal::KILL);
    }
}

/// Spawn a child that the kernel kills if this process dies, even by SIGKILL.
fn spawn_orphan_proof(cmd: &mut Command) -> Result<Child> {
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd.spawn()?)
}

/// This binary in one of its helper modes; returns once it printed `ready`, with its pid.
fn start_helper(args: &[&str]) -> Result<((Child, ChildStdin), u32)> {
    let (child, stdin, line, _) = start_helper_line(args)?;
    ensure!(line.starts_with("ready"), "a helper ({args:?}) failed: {line:?}");
    let pid = child.id();
    Ok(((child, stdin), pid))
}

fn start_helper_line(args: &[&str]) -> Result<(Child, ChildStdin, String, BufReader<ChildStdout>)> {
    let exe = std::env::current_exe()?;
    let mut child =
        spawn_orphan_proof(Command::new(exe).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()))?;
    let stdin = child.stdin.take().context("helper stdin")?;
    let mut out = BufReader::new(child.stdout.take().context("helper stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    Ok((child, stdin, line, out))
}

/// A server holding `n` accepted connections and a client holding their other ends.
fn start_connections(n: usize, load: &mut Load) -> Result<()> {
    let (server, server_in, line, mut server_out) =
        start_helper_line(&["--serve-connections", &n.to_string()])?;
    let addr = line.strip_prefix("listening ").map(str::trim).with_context(|| format!("server: {line:?}"))?;
    let ((client, client_in), _) = start_helper(&["--open-connections", addr, &n.to_string()])?;
    let mut ready = String::new();
    server_out.read_line(&mut ready)?;
    load.holders.push((server, server_in));
    load.holders.push((client, client_in));
    ensure!(ready.starts_with("ready"), "the connection server failed: {ready:?}");
    Ok(())
}

fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
}

/// A signal to a whole process group; one that is already gone is no error here.
fn signal_group(pgid: Option<rustix::process::Pid>, sig: Signal) {
    if let Some(p) = pgid {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

fn say_and_wait(line: &str) -> ExitCode {
    println!("{line}");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}

/// Holder mode: bind `n` sockets on loopback (half TCP listeners, half UDP), say `ready`, and
/// keep them until stdin closes.
fn hold_sockets() -> ExitCode {
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    raise_nofile();
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for i in 0..n {
        // Port 0: the kernel picks a free port from the ephemeral range, as busy hosts look.
        let bound = if i % 2 == 0 {
            TcpListener::bind("127.0.0.1:0").map(|s| tcp.push(s))
        } else {
            UdpSocket::bind("127.0.0.1:0").map(|s| udp.push(s))
        };
        if let Err(e) = bound {
            println!("error after {i} sockets: {e}");
            return ExitCode::from(1);
        }
    }
    say_and_wait(&format!("ready {}", tcp.len() + udp.len()))
}

/// Port holder mode: a plain process listening on 0.0.0.0:PORT.
fn hold_port() -> ExitCode {
    let port = std::env::args().nth(2).unwrap_or_default();
    match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => {
            let code = say_and_wait("ready");
            drop(l);
            code
        }
        Err(e) => {
            println!("error: bind 0.0.0.0:{port}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Server mode: listen on loopback, print the address, accept `n` connections, say `ready`, keep
/// them until stdin closes.
fn serve_connections() -> ExitCode {
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    raise_nofile();
    let listen = || -> std::io::Result<TcpListener> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        // A deep backlog: the client connects faster than one accept loop drains a short one.
        s.listen(4096)?;
        Ok(s.into())
    };
    let listener = match listen() {
        Ok(l) => l,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("listening {}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
    let _ = std::io::stdout().flush();
    let mut accepted = Vec::with_capacity(n);
    while accepted.len() < n {
        match listener.accept() {
            Ok((s, _)) => accepted.push(s),
            Err(e) => {
                println!("error after {} connections: {e}", accepted.len());
                return ExitCode::from(1);
            }
        }
    }
    say_and_wait(&format!("ready {}", accepted.len()))
}

/// Client mode: open `n` connections to ADDR, say `ready`, keep them until stdin closes.
fn open_connections() -> ExitCode {
    let addr = std::env::args().nth(2).unwrap_or_default();
    let n: usize = std::env::args().nth(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    raise_nofile();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match TcpStream::connect(&addr) {
            Ok(s) => conns.push(s),
            Err(e) => {
                println!("error after {i} connections: {e}");
                return ExitCode::from(1);
            }
        }
    }
    say_and_wait(&format!("ready {}", conns.len()))
}

/// What the load looks like from /proc, so the table reports the host as measured.
struct Observed {
    tcp_listen: usize,
    tcp_established: usize,
    udp: usize,
    processes: usize,
    containers: usize,
}

impl Observed {
    fn read() -> Result<Self> {
        let count = |file: &str, state: Option<&str>| -> Result<usize> {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            Ok(text
                .lines()
                .skip(1)
                .filter(|l| state.is_none_or(|s| l.split_whitespace().nth(3) == Some(s)))
                .count())
        };
        let processes = std::fs::read_dir("/proc")?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
            .count();
        let containers =
            quiet(Command::new("docker").args(["ps", "-q", "--filter", &format!("label={LABEL}")]))?
                .lines()
                .count();
        Ok(Self {
            tcp_listen: count("/proc/net/tcp", Some("0A"))? + count("/proc/net/tcp6", Some("0A"))?,
            tcp_established: count("/proc/net/tcp", Some("01"))? + count("/proc/net/tcp6", Some("01"))?,
            udp: count("/proc/net/udp", None)? + count("/proc/net/udp6", None)?,
            processes,
            containers,
        })
    }
}

struct PortwhyRun {
    elapsed: Duration,
    maxrss_kib: i64,
    verdict: String,
}

fn run_portwhy(bin: &Path, port: u16, docker_host: Option<&str>) -> Result<PortwhyRun> {
    let errors = tempfile::tempfile()?;
    let mut cmd = Command::new(bin);
    if let Some(h) = docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    let start = Instant::now();
    let mut child = cmd.args([&port.to_string(), "--json"]).stdout(Stdio::piped()).stderr(errors).spawn()?;
    let mut out = Vec::new();
    child.stdout.take().context("portwhy stdout")?.read_to_end(&mut out)?;
    let (status, maxrss_kib) = wait_rusage(&child)?;
    let elapsed = start.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&out).with_context(|| {
        format!(
            "portwhy {port} --json (exit status {status}) did not print JSON: {}",
            String::from_utf8_lossy(&out)
        )
    })?;
    let verdict = json["findings"][0]["summary"].as_str().unwrap_or("(no finding)").to_owned();
    Ok(PortwhyRun { elapsed, maxrss_kib, verdict })
}

fn run_pipeline(docker_host: Option<&str>) -> Result<Duration> {
    time_shell(PIPELINE, docker_host)
}

/// Wall time of `sh -c script`, its output read and discarded as a terminal would. A rootless
/// engine's user points the docker CLI at it with DOCKER_HOST, as portwhy is.
fn time_shell(script: &str, docker_host: Option<&str>) -> Result<Duration> {
    check_interrupt()?;
    let mut cmd = Command::new("sh");
    if let Some(h) = docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    let start = Instant::now();
    let mut child = cmd.args(["-c", script]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut out = Vec::new();
    child.stdout.take().context("pipeline stdout")?.read_to_end(&mut out)?;
    child.wait()?;
    Ok(start.elapsed())
}
/// Reap `child` with wait4 to get its own peak RSS (KiB), which `Child::wait` does not report.
fn wait_rusage(child: &Child) -> Result<(i32, i64)> {
    let pid = i32::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 writes it and the status.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 on portwhy");
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((code, usage.ru_maxrss))
}

fn quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output()?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[expect(clippy::too_many_arguments, reason = "one table, printed once")]
fn print_table(
    cfg: &Config,
    port: u16,
    o: &Observed,
    pw: &[Duration],
    pipe: &[Duration],
    pw_med: Duration,
    pipe_med: Duration,
    ratio: f64,
    peak_kib: i64,
    verdict: &str,
    target: f64,
) {
    let min = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    println!();
    println!(
        "host load: {} established TCP sockets, {} TCP listeners, {} UDP sockets, {} processes, \
         {} bench containers ({} requested besides the holder)",
        o.tcp_established, o.tcp_listen, o.udp, o.processes, o.containers, cfg.containers
    );
    println!("runs: {} of each, interleaved; verdict: {verdict}", cfg.reps);
    println!();
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", "command", "median", "min", "max");
    println!("|{:-<50}|{:->12}|{:->12}|{:->12}|", "", "", "", "");
    let pw_cmd = format!("portwhy {port} --json");
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", pw_cmd, ms(pw_med), ms(min(pw)), ms(max(pw)));
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", PIPELINE, ms(pipe_med), ms(min(pipe)), ms(max(pipe)));
    println!();
    println!(
        "ratio (pipeline / portwhy, medians): {ratio:.1}x  (target >= {target:.0}x: {})",
        if ratio >= target { "met" } else { "NOT met" }
    );
    println!("portwhy peak RSS (wait4 ru_maxrss): {:.1} MiB", peak_kib as f64 / 1024.0);
}
