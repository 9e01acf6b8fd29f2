//! A rootless engine as the bench user, whose rootlesskit holds the port: start, stop, and the
//! sweep of one left by a killed run.

use crate::*;
use anyhow::{bail, ensure, Context, Result};
use rustix::process::Signal;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A rootless engine this run started, as the bench user.
pub(crate) struct RootlessEngine {
    pub(crate) launcher: Child,
    pub(crate) socket: String,
    pub(crate) pidfile: PathBuf,
}

/// The unprivileged account a rootless engine runs as (`engine/benches/rootless-setup.sh` makes it).
pub(crate) struct RootlessUser {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: String,
}

impl RootlessUser {
    pub(crate) fn check(name: &str) -> Result<Self> {
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

    pub(crate) fn runtime_dir(&self) -> String {
        format!("/run/user/{}", self.uid)
    }
}

/// Start `dockerd-rootless.sh` as the bench user and wait until its API answers.
pub(crate) fn start_rootless(user: &RootlessUser) -> Result<RootlessEngine> {
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

pub(crate) fn stop_rootless(mut engine: RootlessEngine) {
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
pub(crate) fn sweep_rootless(user: &RootlessUser) {
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
