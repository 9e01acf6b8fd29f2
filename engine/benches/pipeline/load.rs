//! The busy-server load: containers on the host engine, sleepers, held connections and sockets,
//! the helper modes this binary runs in for them, and their removal.

use crate::*;
use anyhow::{ensure, Context, Result};
use rustix::process::Signal;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};

/// Everything the run created, removed by `cleanup` (also from `Drop`).
#[derive(Default)]
pub(crate) struct Load {
    pub(crate) holders: Vec<(Child, ChildStdin)>,
    pub(crate) sleepers: Vec<Child>,
    pub(crate) containers: Vec<String>,
    pub(crate) imported_image: bool,
    pub(crate) rootless: Option<RootlessEngine>,
}

impl Load {
    pub(crate) fn cleanup(&mut self) {
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

pub(crate) fn docker(host: Option<&str>) -> Command {
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.env("DOCKER_HOST", h);
    }
    cmd
}

/// Import a busybox rootfs as the containers' image; true when this run created it.
pub(crate) fn ensure_image(host: Option<&str>) -> Result<bool> {
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

pub(crate) fn docker_run(host: Option<&str>, name: &str, publish: Option<&str>) -> Result<()> {
    let mut cmd = docker(host);
    cmd.args(["run", "-d", "--label", LABEL, "--name", name]);
    if let Some(p) = publish {
        cmd.args(["-p", p]);
    }
    let out = quiet(cmd.args([IMAGE, "/bin/sleep", "3600"]));
    out.map(drop).with_context(|| format!("docker run {name}"))
}

pub(crate) fn start_containers(cfg: &Config, load: &mut Load) -> Result<()> {
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

pub(crate) fn finish_runs(running: &mut Vec<(String, Child)>) -> Result<()> {
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

pub(crate) fn sweep_containers(host: Option<&str>) {
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

/// Spawn a child that the kernel kills if this process dies, even by SIGKILL.
pub(crate) fn spawn_orphan_proof(cmd: &mut Command) -> Result<Child> {
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
pub(crate) fn start_helper(args: &[&str]) -> Result<((Child, ChildStdin), u32)> {
    let (child, stdin, line, _) = start_helper_line(args)?;
    ensure!(line.starts_with("ready"), "a helper ({args:?}) failed: {line:?}");
    let pid = child.id();
    Ok(((child, stdin), pid))
}

pub(crate) fn start_helper_line(
    args: &[&str],
) -> Result<(Child, ChildStdin, String, BufReader<ChildStdout>)> {
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
pub(crate) fn start_connections(n: usize, load: &mut Load) -> Result<()> {
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

pub(crate) fn raise_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
}

/// A signal to a whole process group; one that is already gone is no error here.
pub(crate) fn signal_group(pgid: Option<rustix::process::Pid>, sig: Signal) {
    if let Some(p) = pgid {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

pub(crate) fn say_and_wait(line: &str) -> ExitCode {
    println!("{line}");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}

/// Holder mode: bind `n` sockets on loopback (half TCP listeners, half UDP), say `ready`, and
/// keep them until stdin closes.
pub(crate) fn hold_sockets() -> ExitCode {
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
pub(crate) fn hold_port() -> ExitCode {
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
pub(crate) fn serve_connections() -> ExitCode {
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
pub(crate) fn open_connections() -> ExitCode {
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
