//! Finding processes by what they are, without reading every process.
//!
//! Reading the `comm` of every pid costs ~18 ms on a host with 2,000 processes, more than any
//! other collector step. Docker's own processes are named for free: each daemon writes a pidfile,
//! and docker-proxy is a child of its daemon. The full table (`ProcTable`, one pass over
//! `/proc/*/comm`, shared by whoever needs it) is the fallback for what pidfiles cannot name.

use std::ffi::CStr;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Processes by pid, in pid order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcTable {
    entries: Vec<(u32, Box<str>)>,
}

impl ProcTable {
    /// Read the pid and `comm` of every process under `proc_root`. Processes that exit during the
    /// pass, or whose `comm` cannot be read, are listed with an empty name: they may still own a
    /// socket found later by the descriptor walk.
    pub fn scan(proc_root: &Path) -> Result<Self, String> {
        let unreadable = |e: std::io::Error| {
            format!("cannot read {}: {e}; run as root or mount procfs", proc_root.display())
        };
        let dir = fs::File::open(proc_root).map_err(unreadable)?;
        let mut entries: Vec<(u32, Box<str>)> = fs::read_dir(proc_root)
            .map_err(unreadable)?
            .flatten()
            .filter_map(|e| pid_of(e.file_name().as_bytes()))
            .map(|pid| (pid, read_comm(&dir, pid).unwrap_or_default()))
            .collect();
        entries.sort_unstable_by_key(|(pid, _)| *pid);
        Ok(Self { entries })
    }

    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|(pid, _)| *pid)
    }

    /// `(pid, comm)` in pid order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.entries.iter().map(|(pid, comm)| (*pid, &**comm))
    }

    /// Pids whose `comm` is one of `names`, in pid order.
    pub fn named<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = u32> + 'a {
        self.iter().filter(|(_, comm)| names.contains(comm)).map(|(pid, _)| pid)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
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
        out.extend(children(proc_root, daemon));
        if rootless {
            let mut pid = daemon;
            // rootlesskit (host side, holds the ports) → rootlesskit child → dockerd.
            for _ in 0..2 {
                match parent(proc_root, pid) {
                    Some(p) if comm(proc_root, p).as_deref() == Some("rootlesskit") => {
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

/// A /proc entry name that is a pid.
pub(crate) fn pid_of(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// `comm` of one pid, opened relative to the already open /proc directory: no path is built or
/// resolved from the root for each of thousands of processes.
fn read_comm(proc_dir: &fs::File, pid: u32) -> Option<Box<str>> {
    let mut rel = [0u8; 32];
    let path = format!("{pid}/comm\0");
    rel[..path.len()].copy_from_slice(path.as_bytes());
    let rel = CStr::from_bytes_until_nul(&rel).ok()?;
    // SAFETY: rel is NUL-terminated and proc_dir an open directory; the fd is owned below.
    let fd = unsafe { libc::openat(proc_dir.as_raw_fd(), rel.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    let mut file = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // comm is at most 16 bytes with its newline.
    let mut buf = [0u8; 64];
    let n = file.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(buf[..n].trim_ascii_end()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_the_table_with_its_name() {
        let t = ProcTable::scan(Path::new("/proc")).expect("procfs");
        let me = std::process::id();
        let comm = fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(t.iter().any(|(pid, c)| pid == me && c == comm.trim_end()), "{me} missing");
        assert!(t.pids().collect::<Vec<_>>().windows(2).all(|w| w[0] < w[1]), "not in pid order");
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
    fn fake_tree_names_and_unreadable_root() {
        let root = std::env::temp_dir().join(format!("pw-procs-{}", std::process::id()));
        for (pid, comm) in [("7", "docker-proxy\n"), ("12", "nginx\n"), ("3", "dockerd\n")] {
            fs::create_dir_all(root.join(pid)).unwrap();
            fs::write(root.join(pid).join("comm"), comm).unwrap();
        }
        fs::create_dir_all(root.join("self")).unwrap();
        let t = ProcTable::scan(&root).unwrap();
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![(3, "dockerd"), (7, "docker-proxy"), (12, "nginx")]);
        assert_eq!(t.named(&["docker-proxy", "dockerd"]).collect::<Vec<_>>(), vec![3, 7]);
        fs::remove_dir_all(&root).unwrap();
        let err = ProcTable::scan(&root).unwrap_err();
        assert!(err.contains(&root.display().to_string()) && err.contains("procfs"), "{err}");
    }
}
