//! Finding processes by what they are, without reading every process.
//!
//! Reading the `comm` of every pid costs ~18 ms on a host with 2,000 processes, more than any
//! other collector step. Docker's own processes are named for free: each daemon writes a pidfile,
//! and docker-proxy is a child of its daemon. A pass over every `comm` (`named`) is only the
//! fallback for what pidfiles cannot name.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Pids whose `comm` is one of `names`, in pid order: one pass over every process. Only the
/// fallbacks use it (a rootless daemon no pidfile names, `portwhy signals`), never `portwhy PORT`.
pub fn named(proc_root: &Path, names: &[&str]) -> Result<Vec<u32>, String> {
    let entries = fs::read_dir(proc_root)
        .map_err(|e| format!("cannot read {}: {e}; run as root or mount procfs", proc_root.display()))?;
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| pid_of(e.file_name().as_bytes()))
        .filter(|&pid| comm(proc_root, pid).is_some_and(|c| names.contains(&c.as_str())))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Pidfiles of Docker daemons: rootful (`--pidfile` default) and rootless (`$XDG_RUNTIME_DIR`).
const ROOTFUL_PIDFILES: &[&str] = &["/var/run/docker.pid", "/run/docker.pid"];
const ROOTLESS_RUNTIME_DIRS: &str = "/run/user";

/// Running Docker daemons named by their pidfiles, each checked against its `comm` (a pidfile
/// left by a dead daemon may name a recycled pid). Rootless ones are flagged.
pub fn docker_daemons(proc_root: &Path) -> Vec<(u32, bool)> {
    let rootless_files = fs::read_dir(ROOTLESS_RUNTIME_DIRS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.path().join("docker.pid"), true));
    let mut out: Vec<(u32, bool)> = ROOTFUL_PIDFILES
        .iter()
        .map(|p| (PathBuf::from(p), false))
        .chain(rootless_files)
        .filter_map(|(file, rootless)| {
            let pid: u32 = fs::read_to_string(file).ok()?.trim().parse().ok()?;
            (comm(proc_root, pid).as_deref() == Some("dockerd")).then_some((pid, rootless))
        })
        .collect();
    // /var/run is usually a link to /run: one daemon, two pidfile paths.
    out.sort_unstable();
    out.dedup_by_key(|(pid, _)| *pid);
    out
}

/// Direct children of `pid`, from `/proc/PID/task/*/children` (each thread lists the children it
/// forked).
pub fn children(proc_root: &Path, pid: u32) -> Vec<u32> {
    let tasks = proc_root.join(pid.to_string()).join("task");
    let mut out: Vec<u32> = fs::read_dir(tasks)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The processes a daemon starts that can hold a port: its children, and for a rootless daemon
/// the docker-proxy below each `rootlesskit-docker-proxy` child (measured on 20.10.24 rootless:
/// dockerd → rootlesskit-docker-proxy → docker-proxy).
pub fn daemon_children(proc_root: &Path, daemon: u32, rootless: bool) -> Vec<u32> {
    let mut out = children(proc_root, daemon);
    if rootless {
        let grandchildren: Vec<u32> = out
            .iter()
            // `comm` is cut at 15 bytes: `rootlesskit-doc`.
            .filter(|&&c| comm(proc_root, c).is_some_and(|n| n.starts_with("rootlesskit-doc")))
            .flat_map(|&c| children(proc_root, c))
            .collect();
        out.extend(grandchildren);
        out.sort_unstable();
    }
    out
}

/// The argv of one process, from `/proc/PID/cmdline` (NUL-separated; empty words dropped).
pub fn cmdline(proc_root: &Path, pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(proc_root.join(pid.to_string()).join("cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// `comm` of one process.
pub fn comm(proc_root: &Path, pid: u32) -> Option<String> {
    fs::read_to_string(proc_root.join(pid.to_string()).join("comm")).ok().map(|c| c.trim_end().to_owned())
}

/// Parent pid, from `/proc/PID/stat` (the field after the parenthesised comm, which may hold
/// spaces or parentheses itself).
pub fn parent(proc_root: &Path, pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The processes that can hold a published port, without a pass over every process: each daemon,
/// its children (docker-proxy), and for a rootless daemon the rootlesskit processes above it.
pub fn docker_side(proc_root: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    for (daemon, rootless) in docker_daemons(proc_root) {
        out.push(daemon);
        out.extend(daemon_children(proc_root, daemon, rootless));
        if rootless {
            let mut pid = daemon;
            // rootlesskit (host side, holds the ports) → rootlesskit child → dockerd.
            for _ in 0..2 {
                match parent(proc_root, pid) {
                    Some(p) if is_rootlesskit(proc_root, p) => {
                        out.push(p);
                        pid = p;
                    }
                    _ => break,
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// rootlesskit by name, or by its executable: its child re-executes `/proc/self/exe`, so that
/// one's `comm` is `exe` (measured with rootlesskit 1.1.0).
pub(crate) fn is_rootlesskit(proc_root: &Path, pid: u32) -> bool {
    comm(proc_root, pid).as_deref() == Some("rootlesskit")
        || fs::read_link(proc_root.join(pid.to_string()).join("exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "rootlesskit"))
}

/// A /proc entry name that is a pid.
pub(crate) fn pid_of(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_its_name() {
        let me = std::process::id();
        let name = comm(Path::new("/proc"), me).expect("own comm");
        assert!(named(Path::new("/proc"), &[&name]).expect("procfs").contains(&me), "{me} ({name}) missing");
    }

    #[test]
    fn parent_and_children_of_this_process() {
        let root = Path::new("/proc");
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let kids = children(root, me);
        let parent_of_child = parent(root, child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&child.id()), "{kids:?} lacks {}", child.id());
        assert_eq!(parent_of_child, Some(me));
        assert_eq!(
            comm(root, me).as_deref(),
            Some(fs::read_to_string("/proc/self/comm").unwrap().trim_end())
        );
    }

    #[test]
    fn rootlesskit_child_named_exe_is_recognised_by_its_executable() {
        let root = tempfile::tempdir().unwrap();
        for (pid, comm, exe) in [
            ("7", "exe\n", "/usr/bin/rootlesskit"),
            ("8", "exe\n", "/usr/bin/python3"),
            ("9", "rootlesskit\n", "/x"),
        ] {
            fs::create_dir_all(root.path().join(pid)).unwrap();
            fs::write(root.path().join(pid).join("comm"), comm).unwrap();
            std::os::unix::fs::symlink(exe, root.path().join(pid).join("exe")).unwrap();
        }
        assert!(is_rootlesskit(root.path(), 7));
        assert!(!is_rootlesskit(root.path(), 8));
        assert!(is_rootlesskit(root.path(), 9));
        assert!(!is_rootlesskit(root.path(), 10));
    }

    #[test]
    fn fake_tree_names_and_unreadable_root() {
        let root = std::env::temp_dir().join(format!("pw-procs-{}", std::process::id()));
        for (pid, comm) in [("7", "docker-proxy\n"), ("12", "nginx\n"), ("3", "dockerd\n")] {
            fs::create_dir_all(root.join(pid)).unwrap();
            fs::write(root.join(pid).join("comm"), comm).unwrap();
        }
        fs::create_dir_all(root.join("self")).unwrap();
        assert_eq!(named(&root, &["docker-proxy", "dockerd"]).unwrap(), vec![3, 7]);
        assert_eq!(named(&root, &["nginx"]).unwrap(), vec![12]);
        fs::remove_dir_all(&root).unwrap();
        let err = named(&root, &["dockerd"]).unwrap_err();
        assert!(err.contains(&root.display().to_string()) && err.contains("procfs"), "{err}");
    }
}
