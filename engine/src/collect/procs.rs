//! One pass over /proc: every pid with its `comm`, read once and shared by the collectors.
//!
//! The socket owner walk (Docker's processes first), the Docker collector (docker-proxy,
//! rootlesskit) and the host collector (systemd-resolved) all pick processes by name. Reading
//! every `comm` is most of what each of them would cost on a busy host (2,000 processes: ~20 ms),
//! so it is done once, by whichever collector needs it first, and the others wait for that pass.

use std::ffi::CStr;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// A process table scanned on first use and shared between collector threads.
#[derive(Debug)]
pub struct SharedProcs {
    proc_root: PathBuf,
    table: OnceLock<Result<ProcTable, String>>,
}

impl SharedProcs {
    pub fn new(proc_root: &Path) -> Self {
        Self { proc_root: proc_root.to_path_buf(), table: OnceLock::new() }
    }

    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The table; the first caller scans, concurrent callers block until that scan ends.
    pub fn get(&self) -> Result<&ProcTable, String> {
        self.table.get_or_init(|| ProcTable::scan(&self.proc_root)).as_ref().map_err(Clone::clone)
    }
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
