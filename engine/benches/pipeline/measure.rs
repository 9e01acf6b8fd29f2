//! Timing one run of each side (portwhy reaped with wait4 for its peak RSS), medians, the host as
//! observed from /proc, and the printed table.

use crate::*;
use anyhow::{ensure, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// What the load looks like from /proc, so the table reports the host as measured.
pub(crate) struct Observed {
    pub(crate) tcp_listen: usize,
    pub(crate) tcp_established: usize,
    pub(crate) udp: usize,
    pub(crate) processes: usize,
    pub(crate) containers: usize,
}

impl Observed {
    pub(crate) fn read() -> Result<Self> {
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

pub(crate) struct PortwhyRun {
    pub(crate) elapsed: Duration,
    pub(crate) maxrss_kib: i64,
    pub(crate) verdict: String,
}

pub(crate) fn run_portwhy(bin: &Path, port: u16, docker_host: Option<&str>) -> Result<PortwhyRun> {
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

pub(crate) fn run_pipeline(docker_host: Option<&str>) -> Result<Duration> {
    time_shell(PIPELINE, docker_host)
}

/// Wall time of `sh -c script`, its output read and discarded as a terminal would. A rootless
/// engine's user points the docker CLI at it with DOCKER_HOST, as portwhy is.
pub(crate) fn time_shell(script: &str, docker_host: Option<&str>) -> Result<Duration> {
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
pub(crate) fn wait_rusage(child: &Child) -> Result<(i32, i64)> {
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

pub(crate) fn quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::piped()).stdout(Stdio::piped()).output()?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[expect(clippy::too_many_arguments, reason = "one table, printed once")]
pub(crate) fn print_table(
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
