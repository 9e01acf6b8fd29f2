//! Which processes hold a set of socket inodes, reading as few descriptor tables as possible.
//!
//! No kernel interface maps a socket to its processes without BPF: sock_diag knows a socket's
//! inode and uid, not who holds it, and `/proc/PID/fdinfo` is one read per descriptor, dearer than
//! the link. So owners come from descriptor links under /proc/PID/fd, one readlink each; a server
//! holding 11,000 connections costs 40-70 ms on its own. The search keeps that for last:
//!
//! 1. Docker's own processes first (daemons named by their pidfiles, their children, a rootless
//!    daemon's rootlesskit): they hold every published port.
//! 2. Every other process newest first (by distance back from the last pid handed out), with
//!    one `stat` of its /proc/PID/fd, which reports the number of open descriptors as its size
//!    (kernel 6.2+) and the process's effective uid as its owner. A likely table is read at once:
//!    its uid is a queried socket's own uid (sock_diag reports it), it has more than stdin,
//!    stdout and stderr (a listener is one of those only for an inetd-style service) and at most
//!    64 descriptors. So a port taken lately costs the processes newer than its holder.
//! 3. The others, deferred, are read after that in order: the socket's uid first, standard-only
//!    tables last, smaller tables first by powers of two, the newest first within one. On older
//!    kernels the size is 0: everything is deferred and only the uid and age order remain.
//! 4. Those are read on a few threads, and the search stops the moment every socket has an owner.
//!    The first pass skips descriptors 0-2 (a listener is there only for an inetd-style service);
//!    a second pass reads just those three of each process if a socket is still unowned.
//!    Reading one process stops there too: its descriptors are listed in fd order and a listener
//!    usually has a low number, so a busy server holding the port costs a few links, not 11,000.
//!    pid 1 does not end the search: init holds every socket it activates for a service, and the
//!    service is the owner worth naming.
//! 5. Forks share a socket (a prefork server's workers, a service and the init that activated it):
//!    the parent chain of each owner, and the children of each owner (except init's), are read in
//!    full, so every process of a fork family is listed.
//!
//! What stopping early gives up, precisely: a socket handed to an unrelated process over a unix
//! socket (SCM_RIGHTS), or shared by siblings whose common parent no longer holds it, is
//! attributed to the holders found first and their fork family only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use rustix::fs::{openat, readlinkat_raw, statat, AtFlags, Mode, OFlags, RawDir, CWD};

use super::procs;

/// init: it holds the sockets it activates; see the module doc.
const INIT: u32 = 1;
/// Readers of the search: the machines this runs on have 2-8 cores, and the other collectors run
/// beside it.
const MAX_READERS: usize = 4;
/// Below this many candidates one reader is quicker than starting threads.
const PARALLEL_FROM: usize = 64;
/// The largest table the newest-first walk reads at once (a larger one waits for the ordered pass).
const SMALL_TABLE: u64 = 64;

/// (not of a socket's uid, only standard descriptors, size class, age rank, pid): the order of
/// the deferred pass.
type OrderKey = (bool, bool, u32, usize, u32);

/// What was read of one process: the queried sockets it holds (by slot) and whether its whole
/// table was read (an early stop may leave later descriptors unread).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holdings {
    pub slots: Vec<usize>,
    pub complete: bool,
}

/// The owners of each inode in `inodes` (same order): pids in ascending order. `uids` are the
/// sockets' own uids, used to read the likeliest processes first.
pub(crate) fn find(proc_root: &Path, inodes: &[u64], uids: &[u32]) -> Result<Vec<Vec<u32>>, String> {
    let slot_of: HashMap<u64, usize> = inodes.iter().enumerate().map(|(i, &ino)| (ino, i)).collect();
    let proc_dir =
        openat(CWD, proc_root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("cannot read {}: {e}; run as root or mount procfs", proc_root.display()))?;
    let search = Search {
        proc_dir: &proc_dir,
        slot_of: &slot_of,
        found: (0..inodes.len()).map(|_| AtomicBool::new(false)).collect(),
        unfound: AtomicUsize::new(inodes.len()),
        read: Mutex::new(BTreeMap::new()),
    };
    let docker_side = procs::docker_side(proc_root);
    for &pid in &docker_side {
        search.read_and_record(pid, false);
    }
    if search.unfound.load(Ordering::SeqCst) > 0 {
        let clock = PidClock::read(proc_root);
        let mut by_age = list_pids(proc_root, &docker_side)?;
        by_age.sort_by_key(|&p| clock.age(p));
        let uids: BTreeSet<u32> = uids.iter().copied().collect();
        let mut deferred = search.newest_first(&by_age, &uids, sized(&proc_dir));
        if search.unfound.load(Ordering::SeqCst) > 0 {
            deferred.sort_unstable();
            let ordered: Vec<u32> = deferred.into_iter().map(|(.., pid)| pid).collect();
            search.run_pass(&ordered, Descriptors::AboveStandard);
            search.run_pass(&by_age, Descriptors::Standard);
        }
    }
    search.fork_family(proc_root);
    let read = search.read.into_inner().expect("no reader panicked");
    let mut owners = vec![Vec::new(); inodes.len()];
    for (pid, h) in read {
        for slot in h.slots {
            owners[slot].push(pid);
        }
    }
    Ok(owners)
}

struct Search<'a> {
    proc_dir: &'a OwnedFd,
    slot_of: &'a HashMap<u64, usize>,
    found: Vec<AtomicBool>,
    unfound: AtomicUsize,
    read: Mutex<BTreeMap<u32, Holdings>>,
}

impl Search<'_> {
    /// Read one process (in full when `full`, else until every socket has an owner) and note it.
    fn read_and_record(&self, pid: u32, full: bool) -> Holdings {
        self.read_part(pid, full, Descriptors::All)
    }

    fn read_part(&self, pid: u32, full: bool, which: Descriptors) -> Holdings {
        let stop = || !full && self.unfound.load(Ordering::SeqCst) == 0;
        let h = holdings(self.proc_dir, pid, self.slot_of, which, |slot| self.mark(pid, slot), stop);
        let mut read = self.read.lock().expect("no reader panicked");
        let entry = read.entry(pid).or_default();
        for &s in &h.slots {
            if !entry.slots.contains(&s) {
                entry.slots.push(s);
            }
        }
        entry.complete |= h.complete;
        entry.clone()
    }

    fn mark(&self, pid: u32, slot: usize) {
        if pid != INIT && !self.found[slot].swap(true, Ordering::SeqCst) {
            self.unfound.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Go through `by_age`, newest first, on a few threads, with one `stat` of each table: a likely
    /// one (of a socket's uid, more than the three standard descriptors, at most `SMALL_TABLE`)
    /// is read at once, any other is deferred with its ordering key (see the module doc). Stops
    /// when every socket has an owner, so a port taken lately costs the processes newer than its
    /// holder, not the whole host.
    fn newest_first(&self, by_age: &[u32], uids: &BTreeSet<u32>, sized: bool) -> Vec<OrderKey> {
        let next = AtomicUsize::new(0);
        let deferred = Mutex::new(Vec::new());
        let reader = || {
            while self.unfound.load(Ordering::SeqCst) > 0 {
                let rank = next.fetch_add(1, Ordering::SeqCst);
                let Some(&pid) = by_age.get(rank) else { break };
                let Ok(st) = statat(self.proc_dir, FdDirName::default().fd_dir(pid), AtFlags::empty()) else {
                    continue;
                };
                let fds = if sized { st.st_size.max(0) as u64 } else { 0 };
                // Kernel threads and zombies hold no descriptors.
                if sized && fds == 0 {
                    continue;
                }
                let uid_miss = !uids.contains(&st.st_uid);
                // Only stdin, stdout and stderr: a listener is one of those only for an
                // inetd-style service, so such processes (a busy host's sleepers, shells'
                // children) come after the others.
                let standard_only = sized && fds <= 3;
                if sized && !uid_miss && !standard_only && fds <= SMALL_TABLE {
                    self.read_part(pid, false, Descriptors::AboveStandard);
                } else {
                    // Tables within a power of two cost about the same to read; within one, the
                    // newest first.
                    let size_class = if sized { fds.ilog2() } else { 0 };
                    let key = (uid_miss, standard_only, size_class, rank, pid);
                    deferred.lock().expect("no reader panicked").push(key);
                }
            }
        };
        let threads = if by_age.len() < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_READERS)
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(reader);
            }
            reader();
        });
        deferred.into_inner().expect("no reader panicked")
    }

    /// Read `order` (the descriptors `which` names) on a few threads until every socket has an
    /// owner.
    fn run_pass(&self, order: &[u32], which: Descriptors) {
        let next = AtomicUsize::new(0);
        let reader = || {
            while self.unfound.load(Ordering::SeqCst) > 0 {
                let Some(&pid) = order.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                self.read_part(pid, false, which);
            }
        };
        let threads = if order.len() < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_READERS)
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(reader);
            }
            reader();
        });
    }

    /// Add the fork family of every owner found: parents while they hold a queried socket, and
    /// children of every holder, each read in full.
    fn fork_family(&self, proc_root: &Path) {
        let owners: Vec<u32> = {
            let read = self.read.lock().expect("no reader panicked");
            read.iter().filter(|(_, h)| !h.slots.is_empty()).map(|(&pid, _)| pid).collect()
        };
        let mut queue: Vec<u32> = Vec::new();
        let mut seen: HashSet<u32> = HashSet::new();
        for &pid in &owners {
            seen.insert(pid);
            queue.push(pid);
            let mut child = pid;
            while let Some(parent) = procs::parent(proc_root, child).filter(|&p| p != 0) {
                if !seen.insert(parent) {
                    break;
                }
                if self.full(parent).slots.is_empty() {
                    break;
                }
                queue.push(parent);
                child = parent;
            }
        }
        while let Some(pid) = queue.pop() {
            if pid == INIT {
                continue;
            }
            for child in procs::children(proc_root, pid) {
                if seen.insert(child) && !self.full(child).slots.is_empty() {
                    queue.push(child);
                }
            }
        }
        // An owner whose read stopped early may hold a queried socket further down its table that
        // another process was found holding first: only a relative can (they share it), and
        // relatives were read in full above. Owners with no relative among the holders keep what
        // was read.
    }

    /// What `pid` holds, reading the rest of its table unless that was done already.
    fn full(&self, pid: u32) -> Holdings {
        let known = self.read.lock().expect("no reader panicked").get(&pid).cloned();
        match known {
            Some(h) if h.complete => h,
            _ => self.read_and_record(pid, true),
        }
    }
}

/// Every pid under the proc root but those in `skip`.
fn list_pids(proc_root: &Path, skip: &[u32]) -> Result<Vec<u32>, String> {
    let entries = std::fs::read_dir(proc_root)
        .map_err(|e| format!("cannot read {}: {e}; run as root or mount procfs", proc_root.display()))?;
    Ok(entries
        .flatten()
        .filter_map(|e| procs::pid_of(e.file_name().as_bytes()))
        .filter(|pid| !skip.contains(pid))
        .collect())
}

/// Whether `stat` of /proc/PID/fd reports the number of open descriptors (kernel 6.2+): it does
/// when ours is not 0.
fn sized(proc_dir: &OwnedFd) -> bool {
    statat(proc_dir, "self/fd", AtFlags::empty()).is_ok_and(|s| s.st_size > 0)
}

/// Pids are handed out cyclically up to pid_max: the distance back from the last one given out
/// orders processes by age, across a wrap too (a process that outlived a whole cycle looks
/// younger than it is; the order is a prior, not a proof).
struct PidClock {
    last: u64,
    max: u64,
}

impl PidClock {
    fn read(proc_root: &Path) -> Self {
        let number = |name: &str| -> Option<u64> {
            std::fs::read_to_string(proc_root.join("sys/kernel").join(name)).ok()?.trim().parse().ok()
        };
        match (number("ns_last_pid"), number("pid_max")) {
            (Some(last), Some(max)) if max > 0 => Self { last, max },
            // Without them (a fixture tree): the highest pid is the newest.
            _ => Self { last: u64::from(u32::MAX), max: u64::from(u32::MAX) + 1 },
        }
    }

    fn age(&self, pid: u32) -> u64 {
        (self.last + self.max - u64::from(pid) % self.max) % self.max
    }
}

/// `PID/fd` relative to the proc root, built on the stack.
#[derive(Default)]
struct FdDirName {
    buf: [u8; 20],
}

impl FdDirName {
    fn fd_dir(&mut self, pid: u32) -> &[u8] {
        let mut w = &mut self.buf[..];
        write!(w, "{pid}/fd").expect("a u32 and `/fd` fit in 20 bytes");
        let left = w.len();
        &self.buf[..20 - left]
    }
}

/// Read `pid`'s descriptor links, calling `hit` with the slot of every queried socket it holds,
/// until the table ends or `stop` says every socket has an owner. An unreadable table (the
/// process exited, or belongs to another user without root) holds nothing.
fn holdings(
    proc_dir: &OwnedFd,
    pid: u32,
    slot_of: &HashMap<u64, usize>,
    which: Descriptors,
    mut hit: impl FnMut(usize),
    stop: impl Fn() -> bool,
) -> Holdings {
    if which == Descriptors::Standard {
        return standard_holdings(proc_dir, pid, slot_of, hit);
    }
    let mut path = FdDirName::default();
    let Ok(dir) = openat(
        proc_dir,
        path.fd_dir(pid),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Holdings { slots: Vec::new(), complete: true };
    };
    // A small buffer: /proc instantiates an entry for every descriptor a getdents call returns, so
    // an early stop in a large table pays for ~150 entries, not a whole 32 KiB batch.
    let mut entries = [MaybeUninit::<u8>::uninit(); 4096];
    let mut link = [0u8; 64];
    let mut slots = Vec::new();
    let mut iter = RawDir::new(&dir, &mut entries);
    while let Some(entry) = iter.next() {
        let Ok(entry) = entry else { break };
        // Another reader may have found the last socket while this table is read.
        if stop() {
            return Holdings { slots, complete: false };
        }
        let name = entry.file_name().to_bytes();
        if name.first() == Some(&b'.') || (which == Descriptors::AboveStandard && is_standard(name)) {
            continue;
        }
        // `socket:[N]` fits in 64 bytes; a longer target is a path, never a socket.
        let len = match readlinkat_raw(&dir, name, &mut link[..]) {
            Ok(len) => len,
            // The table can be listed but not followed (measured: the VM's own init as pid 1
            // refuses root): no link of it will read.
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => break,
            Err(_) => continue,
        };
        if let Some(&slot) = socket_inode(&link[..len]).and_then(|ino| slot_of.get(&ino)) {
            if !slots.contains(&slot) {
                slots.push(slot);
                hit(slot);
            }
        }
    }
    Holdings { slots, complete: which == Descriptors::All }
}

/// Which descriptors of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Descriptors {
    All,
    /// Everything but stdin, stdout and stderr: the first pass of the search.
    AboveStandard,
    /// Only those three: the second pass, for inetd-style services.
    Standard,
}

fn is_standard(name: &[u8]) -> bool {
    matches!(name, b"0" | b"1" | b"2")
}

/// Descriptors 0, 1 and 2 of `pid`, read by name without listing the table.
fn standard_holdings(
    proc_dir: &OwnedFd,
    pid: u32,
    slot_of: &HashMap<u64, usize>,
    mut hit: impl FnMut(usize),
) -> Holdings {
    let mut link = [0u8; 64];
    let mut slots = Vec::new();
    for fd in 0..3 {
        let mut name = [0u8; 24];
        let mut w = &mut name[..];
        write!(w, "{pid}/fd/{fd}").expect("fits in 24 bytes");
        let used = 24 - w.len();
        let Ok(len) = readlinkat_raw(proc_dir, &name[..used], &mut link[..]) else { continue };
        if let Some(&slot) = socket_inode(&link[..len]).and_then(|ino| slot_of.get(&ino)) {
            if !slots.contains(&slot) {
                slots.push(slot);
                hit(slot);
            }
        }
    }
    Holdings { slots, complete: false }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let inner = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fake proc tree: `(pid, ppid, sockets held)`. Each process gets stat, comm, children and
    /// an fd directory of links, two plain files first so a socket is never the first entry.
    fn tree(processes: &[(u32, u32, &[u64])]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for &(pid, ppid, sockets) in processes {
            let dir = root.path().join(pid.to_string());
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::create_dir_all(dir.join("task").join(pid.to_string())).unwrap();
            fs::write(dir.join("comm"), "proc\n").unwrap();
            fs::write(dir.join("stat"), format!("{pid} (proc) S {ppid} 1 1 0")).unwrap();
            let kids: Vec<String> =
                processes.iter().filter(|p| p.1 == pid && p.0 != pid).map(|p| p.0.to_string()).collect();
            fs::write(dir.join("task").join(pid.to_string()).join("children"), kids.join(" ")).unwrap();
            symlink("/dev/null", dir.join("fd/0")).unwrap();
            symlink("pipe:[7]", dir.join("fd/1")).unwrap();
            for (i, ino) in sockets.iter().enumerate() {
                symlink(format!("socket:[{ino}]"), dir.join("fd").join((3 + i).to_string())).unwrap();
            }
        }
        root
    }

    #[test]
    fn socket_link_targets() {
        assert_eq!(socket_inode(b"socket:[51352]"), Some(51352));
        assert_eq!(socket_inode(b"pipe:[51352]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn every_process_of_a_fork_family_is_found() {
        // 20 created the socket and forked 30, which forked 40; 10 and 50 are unrelated. The
        // fake tree has no fd counts, so the search goes newest first: 50, then 40, which holds
        // it; its parents 30 and 20 share it, 10 does not.
        let root = tree(&[(10, 0, &[]), (20, 10, &[900]), (30, 20, &[900]), (40, 30, &[900]), (50, 10, &[])]);
        assert_eq!(find(root.path(), &[900], &[0]).unwrap(), vec![vec![20, 30, 40]]);
    }

    #[test]
    fn an_owner_found_below_its_parents_brings_them_in() {
        // Newest first: 95 holds nothing, 90 holds the socket; its parents 70 and 80 and its
        // child 5 share it, 80's parent 95 does not.
        let root =
            tree(&[(5, 90, &[900]), (70, 80, &[900]), (80, 95, &[900]), (95, 0, &[]), (90, 70, &[900])]);
        assert_eq!(find(root.path(), &[900], &[0]).unwrap(), vec![vec![5, 70, 80, 90]]);
    }

    #[test]
    fn each_socket_of_a_reuseport_group_gets_its_own_owner() {
        // Two unrelated processes, one socket each, on the same port: the search goes on after
        // the first until both are owned.
        let root = tree(&[(10, 0, &[]), (20, 0, &[901]), (30, 0, &[]), (40, 0, &[902])]);
        assert_eq!(find(root.path(), &[901, 902], &[0, 0]).unwrap(), vec![vec![20], vec![40]]);
    }

    #[test]
    fn init_does_not_end_the_search() {
        // init holds the socket it activated for service 60. Met first (as when init's table is
        // the smaller one), it does not count as the owner, so the search goes on to 60.
        let root = tree(&[(1, 0, &[900]), (30, 1, &[]), (60, 1, &[900])]);
        let dir = openat(CWD, root.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let slot_of: HashMap<u64, usize> = [(900, 0)].into();
        let search = Search {
            proc_dir: &dir,
            slot_of: &slot_of,
            found: vec![AtomicBool::new(false)],
            unfound: AtomicUsize::new(1),
            read: Mutex::new(BTreeMap::new()),
        };
        search.run_pass(&[1, 30, 60], Descriptors::AboveStandard);
        assert_eq!(search.unfound.load(Ordering::SeqCst), 0);
        let read = search.read.lock().unwrap();
        assert_eq!(read.keys().copied().collect::<Vec<_>>(), vec![1, 30, 60], "every table up to 60 read");
        assert_eq!(read[&60].slots, vec![0]);
        assert_eq!(read[&1].slots, vec![0]);
        drop(read);
        assert_eq!(find(root.path(), &[900], &[0]).unwrap(), vec![vec![1, 60]]);
    }

    #[test]
    fn an_inetd_style_listener_on_stdin_is_found_by_the_second_pass() {
        let root = tree(&[(10, 0, &[]), (20, 0, &[])]);
        let fd0 = root.path().join("10/fd/0");
        fs::remove_file(&fd0).unwrap();
        symlink("socket:[900]", &fd0).unwrap();
        assert_eq!(find(root.path(), &[900], &[0]).unwrap(), vec![vec![10]]);
    }

    #[test]
    fn a_socket_nobody_holds_has_no_owner() {
        let root = tree(&[(10, 0, &[901]), (20, 10, &[])]);
        assert_eq!(find(root.path(), &[900, 901], &[0, 0]).unwrap(), vec![vec![], vec![10]]);
    }

    #[test]
    fn an_unreadable_proc_root_is_an_error_naming_it() {
        let err = find(Path::new("/nonexistent/proc"), &[1], &[0]).unwrap_err();
        assert!(err.contains("/nonexistent/proc") && err.contains("procfs"), "{err}");
    }

    #[test]
    fn holdings_stop_early_only_when_asked() {
        let root = tree(&[(10, 0, &[900, 901])]);
        let dir = openat(CWD, root.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let slots: HashMap<u64, usize> = [(900, 0), (901, 1)].into();
        let whole = holdings(&dir, 10, &slots, Descriptors::All, |_| {}, || false);
        assert_eq!(whole, Holdings { slots: vec![0, 1], complete: true });
        let hits = std::cell::Cell::new(0);
        let first =
            holdings(&dir, 10, &slots, Descriptors::All, |_| hits.set(hits.get() + 1), || hits.get() >= 1);
        assert_eq!(first.slots.len(), 1);
        assert!(!first.complete);
        assert_eq!(
            holdings(&dir, 11, &slots, Descriptors::All, |_| {}, || false),
            Holdings { slots: vec![], complete: true }
        );
    }
}
