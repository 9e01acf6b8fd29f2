//! Benchmark: `portwhy PORT --json` against the commands a user runs today, on a loaded host.
//!
//! `cargo bench -p portwhy --bench pipeline` (root, a running dockerd, busybox-static installed)
//! loads the host with listening sockets, sleeping processes and containers on the host engine,
//! then times, interleaved in the same run, `portwhy PORT --json` and the pipeline
//! `ss -tlnp; docker ps -a; iptables-save -t nat`, and prints medians, their ratio and portwhy's
//! peak memory. Everything it creates is removed at the end, on error and on Ctrl-C; containers
//! carry the label `io.portwhy.bench=1`, so a run killed with SIGKILL is swept by the next one.
//!
//! Options (after `--`): `--reps N` (15), `--sockets N` (20000), `--procs N` (2000),
//! `--containers N` (50), `--port P` (18080), `--require-ratio X` (exit 1 below it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

const LABEL: &str = "io.portwhy.bench=1";
const IMAGE: &str = "portwhy-bench-busybox:local";
const PIPELINE: &str = "ss -tlnp; docker ps -a; iptables-save -t nat";
/// Sockets one holder process keeps: the hard RLIMIT_NOFILE here is 20000 and cannot be raised
/// (no CAP_SYS_RESOURCE), so the load is spread over several processes.
const SOCKETS_PER_HOLDER: usize = 5000;
/// Host ports for the containers' extra publishes, below the ephemeral range.
const CONTAINER_PORT_BASE: u16 = 20000;

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

#[derive(Debug, Clone)]
struct Config {
    reps: usize,
    sockets: usize,
    procs: usize,
    containers: usize,
    port: u16,
    require_ratio: Option<f64>,
}

fn parse_args() -> Result<Config> {
    let mut cfg =
        Config { reps: 15, sockets: 20_000, procs: 2_000, containers: 50, port: 18080, require_ratio: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--reps" => cfg.reps = value()?.parse()?,
            "--sockets" => cfg.sockets = value()?.parse()?,
            "--procs" => cfg.procs = value()?.parse()?,
            "--containers" => cfg.containers = value()?.parse()?,
            "--port" => cfg.port = value()?.parse()?,
            "--require-ratio" => cfg.require_ratio = Some(value()?.parse()?),
            other => bail!("unknown option {other}; see the header of engine/benches/pipeline.rs"),
        }
    }
    ensure!(cfg.reps > 0, "--reps must be at least 1");
    Ok(cfg)
}

/// Everything the run created, removed by `cleanup` (also from `Drop`).
#[derive(Default)]
struct Load {
    holders: Vec<(Child, ChildStdin)>,
    sleepers: Vec<Child>,
    containers: Vec<String>,
    imported_image: bool,
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
        if !self.containers.is_empty() {
            self.containers.clear();
            sweep_containers();
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
    if std::env::args().nth(1).as_deref() == Some("--hold-sockets") {
        return hold_sockets();
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
    eprintln!("cleaning up: holders, sleepers, containers labelled {LABEL}");
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
    sweep_containers();

    eprintln!("loading the host: {} containers ...", cfg.containers);
    load.imported_image = ensure_image()?;
    start_containers(cfg, load)?;
    eprintln!("loading the host: {} sleeping processes ...", cfg.procs);
    for _ in 0..cfg.procs {
        check_interrupt()?;
        load.sleepers.push(spawn_orphan_proof(Command::new("sleep").arg("3600").stdin(Stdio::null()))?);
    }
    eprintln!("loading the host: {} sockets ...", cfg.sockets);
    let mut remaining = cfg.sockets;
    while remaining > 0 {
        check_interrupt()?;
        let n = remaining.min(SOCKETS_PER_HOLDER);
        load.holders.push(start_holder(n)?);
        remaining -= n;
    }
    let observed = Observed::read()?;

    eprintln!("warming up (load average {}) ...", loadavg());
    run_portwhy(&portwhy, cfg.port)?;
    run_pipeline()?;

    let mut pw = Vec::with_capacity(cfg.reps);
    let mut pipe = Vec::with_capacity(cfg.reps);
    let mut peak_kib = 0i64;
    let mut verdict = String::new();
    for i in 0..cfg.reps {
        check_interrupt()?;
        let run = run_portwhy(&portwhy, cfg.port)?;
        peak_kib = peak_kib.max(run.maxrss_kib);
        verdict = run.verdict;
        pw.push(run.elapsed);
        pipe.push(run_pipeline()?);
        eprint!("\rrun {}/{}", i + 1, cfg.reps);
    }
    eprintln!();

    let stages = stage_breakdown(cfg.port, cfg.reps.min(5))?;

    let (pw_med, pipe_med) = (median(&mut pw), median(&mut pipe));
    let ratio = pipe_med.as_secs_f64() / pw_med.as_secs_f64();
    let target = cfg.require_ratio.unwrap_or(10.0);
    print_table(cfg, &observed, &pw, &pipe, pw_med, pipe_med, ratio, peak_kib, &verdict, target);
    println!();
    println!(
        "where portwhy's time goes (the same collectors called in-process, median of {}):",
        cfg.reps.min(5)
    );
    for (stage, d) in stages {
        println!("  {:<58} {:>10}", stage, ms(d));
    }
    println!("the pipeline's commands on their own (median of {}):", cfg.reps.min(5));
    for command in PIPELINE.split("; ") {
        let mut runs = (0..cfg.reps.min(5)).map(|_| time_shell(command)).collect::<Result<Vec<_>>>()?;
        println!("  {:<58} {:>10}", command, ms(median(&mut runs)));
    }
    println!("load average during the run: {}", loadavg());
    Ok(cfg.require_ratio.is_none_or(|r| ratio >= r))
}

/// Time each collector of `portwhy PORT` on its own, so a slow run says which part to look at.
fn stage_breakdown(port: u16, reps: usize) -> Result<Vec<(&'static str, Duration)>> {
    use portwhy::collect::{docker, firewall, host, procs, sockets};
    let proc_root = Path::new("/proc");
    let mut stages: Vec<(&'static str, Vec<Duration>)> = vec![
        ("sockets: sock_diag listing of the port", Vec::new()),
        ("owners: naming Docker's processes (pidfiles, children)", Vec::new()),
        ("owners: the /proc/*/fd walk, Docker's first (includes the above)", Vec::new()),
        ("docker: engine API (ping, info, containers, networks)", Vec::new()),
        ("firewall: NAT rules of every backend", Vec::new()),
        ("host: kernel, resolver, conntrack", Vec::new()),
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
        docker::collect(None, proc_root, None).map_err(anyhow::Error::msg)?;
        stages[3].1.push(t.elapsed());
        let t = Instant::now();
        let _ = firewall::collect(proc_root, port);
        stages[4].1.push(t.elapsed());
        let t = Instant::now();
        host::collect_quick(proc_root).map_err(anyhow::Error::msg)?;
        stages[5].1.push(t.elapsed());
    }
    Ok(stages.into_iter().map(|(name, mut d)| (name, median(&mut d))).collect())
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
    // SAFETY: geteuid has no preconditions.
    ensure!(unsafe { libc::geteuid() } == 0, "run as root: ss -p, iptables-save and the load need it");
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

/// Import a busybox rootfs as the containers' image; true when this run created it.
fn ensure_image() -> Result<bool> {
    if quiet(Command::new("docker").args(["image", "inspect", IMAGE])).is_ok() {
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
    let status =
        Command::new("docker").args(["import", "-", IMAGE]).stdin(tar_out).stdout(Stdio::null()).status()?;
    ensure!(tar.wait()?.success() && status.success(), "docker import of the busybox rootfs failed");
    Ok(true)
}

fn start_containers(cfg: &Config, load: &mut Load) -> Result<()> {
    let mut running: Vec<(String, Child)> = Vec::new();
    for i in 0..cfg.containers {
        check_interrupt()?;
        let name = format!("portwhy-bench-{}-{i}", std::process::id());
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--label", LABEL, "--name", &name]);
        // The first container holds the queried port, so portwhy has a conflict to explain;
        // half of the rest publish too, alternating loopback-only and every-address publishes.
        let host_port = CONTAINER_PORT_BASE + i as u16;
        match i {
            0 => cmd.args(["-p", &format!("{}:80", cfg.port)]),
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

fn sweep_containers() {
    let Ok(ids) = quiet(Command::new("docker").args(["ps", "-aq", "--filter", &format!("label={LABEL}")]))
    else {
        return;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = quiet(Command::new("docker").args(["rm", "-f"]).args(&ids));
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

fn start_holder(n: usize) -> Result<(Child, ChildStdin)> {
    let exe = std::env::current_exe()?;
    let mut child = spawn_orphan_proof(
        Command::new(exe)
            .args(["--hold-sockets", &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    )?;
    let stdin = child.stdin.take().context("holder stdin")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("holder stdout")?).read_line(&mut line)?;
    ensure!(line.starts_with("ready"), "a socket holder failed: {line:?}");
    Ok((child, stdin))
}

/// Holder mode: bind `n` sockets on loopback (half TCP listeners, half UDP), say `ready`, and
/// keep them until stdin closes.
fn hold_sockets() -> ExitCode {
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
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
    println!("ready {}", tcp.len() + udp.len());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}

/// What the load looks like from /proc, so the table reports the host as measured.
struct Observed {
    tcp_listen: usize,
    udp: usize,
    processes: usize,
    containers: usize,
}

impl Observed {
    fn read() -> Result<Self> {
        let count = |file: &str, listen_only: bool| -> Result<usize> {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
            Ok(text
                .lines()
                .skip(1)
                .filter(|l| !listen_only || l.split_whitespace().nth(3) == Some("0A"))
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
            tcp_listen: count("/proc/net/tcp", true)? + count("/proc/net/tcp6", true)?,
            udp: count("/proc/net/udp", false)? + count("/proc/net/udp6", false)?,
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

fn run_portwhy(bin: &Path, port: u16) -> Result<PortwhyRun> {
    let errors = tempfile::tempfile()?;
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args([&port.to_string(), "--json"])
        .stdout(Stdio::piped())
        .stderr(errors)
        .spawn()?;
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

fn run_pipeline() -> Result<Duration> {
    time_shell(PIPELINE)
}

/// Wall time of `sh -c script`, its output read and discarded as a terminal would.
fn time_shell(script: &str) -> Result<Duration> {
    check_interrupt()?;
    let start = Instant::now();
    let mut child =
        Command::new("sh").args(["-c", script]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
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
        "host load: {} TCP listeners, {} UDP sockets, {} processes, {} bench containers ({} requested)",
        o.tcp_listen, o.udp, o.processes, o.containers, cfg.containers
    );
    println!("runs: {} of each, interleaved; verdict: {verdict}", cfg.reps);
    println!();
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", "command", "median", "min", "max");
    println!("|{:-<50}|{:->12}|{:->12}|{:->12}|", "", "", "", "");
    let pw_cmd = format!("portwhy {} --json", cfg.port);
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", pw_cmd, ms(pw_med), ms(min(pw)), ms(max(pw)));
    println!("| {:<48} | {:>10} | {:>10} | {:>10} |", PIPELINE, ms(pipe_med), ms(min(pipe)), ms(max(pipe)));
    println!();
    println!(
        "ratio (pipeline / portwhy, medians): {ratio:.1}x  (target >= {target:.0}x: {})",
        if ratio >= target { "met" } else { "NOT met" }
    );
    println!("portwhy peak RSS (wait4 ru_maxrss): {:.1} MiB", peak_kib as f64 / 1024.0);
}
