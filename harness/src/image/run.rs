//! Processes a build runs on the host: logged with their milestones, or their output in a chroot.

use super::*;

/// Runs a command, passing its milestone lines to `progress`; the error carries its last lines.
pub(super) async fn run_logged(
    mut cmd: Command,
    engine: &str,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut out = BufReader::new(stdout).lines();
    let mut err = BufReader::new(stderr).lines();
    let mut tail: Vec<String> = Vec::new();
    let (mut out_done, mut err_done) = (false, false);
    while !(out_done && err_done) {
        let line = tokio::select! {
            l = out.next_line(), if !out_done => match l { Ok(Some(l)) => l, _ => { out_done = true; continue } },
            l = err.next_line(), if !err_done => match l { Ok(Some(l)) => l, _ => { err_done = true; continue } },
        };
        if is_milestone(&line) {
            progress(&format!("{engine}: {line}"));
        }
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().await.map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}; last output:\n{}", tail.join("\n")))
    }
}

/// debootstrap prints hundreds of lines; these mark its phases.
pub(super) fn is_milestone(line: &str) -> bool {
    const PHASES: &[&str] = &[
        "I: Retrieving Release",
        "I: Resolving dependencies of base",
        "I: Found additional base dependencies",
        "I: Installing core packages",
        "I: Unpacking the base system",
        "I: Configuring the base system",
        "I: Base system installed successfully",
        "E:",
        "W: Failure",
    ];
    PHASES.iter().any(|p| line.starts_with(p))
}

pub(super) async fn chroot_output(root: &Path, argv: &[&str]) -> Result<String, String> {
    let out = Command::new("chroot")
        .arg(root)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("chroot {}: {e}", argv.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "chroot {} exited {}: {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) async fn chroot_output_lenient(root: &Path, argv: &[&str]) -> String {
    match Command::new("chroot").arg(root).args(argv).stdin(Stdio::null()).output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => String::new(),
    }
}
