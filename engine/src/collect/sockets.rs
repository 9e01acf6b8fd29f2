//! Listening sockets via netlink sock_diag (v6only included), owners from /proc for matching inodes only.
//!
//! sock_diag is asked for one source port, so the kernel filters and the cost stays flat with tens
//! of thousands of sockets. It is also the only source of IPV6_V6ONLY, which decides whether a
//! `[::]:P` listener also holds `0.0.0.0:P`. When netlink is refused (an old kernel, a seccomp
//! profile), /proc/net/{tcp,tcp6,udp,udp6} are parsed instead and `v6only` stays `None`: those
//! tables do not carry the flag.
//!
//! Owners come from descriptor links under /proc/*/fd, read only for the inodes of the sockets
//! found and in an order that leaves the largest descriptor tables for last (`owners`), because
//! that walk, not the socket listing, is the expensive part.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::thread::LinkNameSpaceType;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{owners, procs};
use crate::evidence::{Listener, ProcessRef};
use crate::parse::procnet::{self, ProcNetSocket, TCP_LISTEN};
use crate::port::Proto;

/// Where a socket listing comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketTable {
    /// netlink NETLINK_SOCK_DIAG: filtered in the kernel, knows IPV6_V6ONLY and the bound interface.
    Netlink,
    /// /proc/net/{tcp,tcp6,udp,udp6} under a proc root: no v6only, no interface.
    ProcNet,
}

/// TCP listeners and bound UDP sockets on `port`, both families, in this process's network namespace.
pub fn collect(proc_root: &Path, port: u16) -> Result<Vec<Listener>, String> {
    check_procfs(proc_root)?;
    if port == 0 {
        return Ok(Vec::new());
    }
    let mut listeners = list_with_fallback(proc_root, Some(port), None)?;
    resolve_owners(proc_root, &mut listeners)?;
    Ok(listeners)
}

/// The same, in the network namespace of `pid` (rootlesskit): sock_diag from a thread that
/// joined that namespace, else /proc/PID/net.
///
/// /proc/PID/net/tcp walks every TCP socket of the host to print the few of one namespace
/// (measured: 1.4-1.7 ms per file for a namespace holding two listeners, 15 ms for the four files
/// beside 22,000 established host connections); sock_diag asked for listeners on one port only
/// walks the listening hash.
pub fn collect_in_netns_of(proc_root: &Path, pid: u32, port: u16) -> Result<Vec<Listener>, String> {
    check_procfs(proc_root)?;
    let netns = format!("rootlesskit(pid {pid})");
    let mut listeners = match list_in_netns(proc_root, pid, port) {
        Ok(found) => found,
        Err(_) => read_procnet(&proc_root.join(pid.to_string()).join("net"), Some(port), None, &netns)?,
    };
    for l in &mut listeners {
        l.netns = netns.clone();
    }
    sort(&mut listeners);
    resolve_owners(proc_root, &mut listeners)?;
    Ok(listeners)
}

/// sock_diag in `pid`'s network namespace. `setns` changes only the calling thread's namespace,
/// so a short-lived thread joins it and nothing else of this process moves; it needs root
/// (CAP_SYS_ADMIN over the namespace's owner), the caller falls back without it.
fn list_in_netns(proc_root: &Path, pid: u32, port: u16) -> Result<Vec<Listener>, String> {
    let ns = fs::File::open(proc_root.join(pid.to_string()).join("ns/net")).map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // Affects only this thread, which ends here.
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| io::Error::from(e).to_string())?;
            netlink::list(Some(port), None).map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the namespace reader panicked".to_owned()))
    })
}

/// Every listener on every port (for `portwhy suggest` and `portwhy signals`). Owners only when
/// asked: the /proc walk costs far more than the listing.
pub fn collect_all(
    proc_root: &Path,
    proto: Option<Proto>,
    with_owners: bool,
) -> Result<Vec<Listener>, String> {
    if with_owners {
        check_procfs(proc_root)?;
    }
    let mut listeners = list_with_fallback(proc_root, None, proto)?;
    if with_owners {
        resolve_owners(proc_root, &mut listeners)?;
    }
    Ok(listeners)
}

/// Listeners from one source, without owners. `port = None` lists every port.
pub fn list(
    table: SocketTable,
    proc_root: &Path,
    port: Option<u16>,
    proto: Option<Proto>,
) -> Result<Vec<Listener>, String> {
    let mut out = match table {
        SocketTable::Netlink => netlink::list(port, proto).map_err(|e| format!("netlink sock_diag: {e}"))?,
        SocketTable::ProcNet => read_procnet(&proc_root.join("net"), port, proto, "host")?,
    };
    sort(&mut out);
    Ok(out)
}

fn list_with_fallback(
    proc_root: &Path,
    port: Option<u16>,
    proto: Option<Proto>,
) -> Result<Vec<Listener>, String> {
    list(SocketTable::Netlink, proc_root, port, proto).or_else(|netlink_err| {
        list(SocketTable::ProcNet, proc_root, port, proto)
            .map_err(|proc_err| format!("{netlink_err}; and the fallback failed: {proc_err}"))
    })
}

fn sort(listeners: &mut [Listener]) {
    listeners.sort_by(|a, b| {
        (a.proto, a.port, a.addr.is_ipv6(), a.addr, a.inode).cmp(&(
            b.proto,
            b.port,
            b.addr.is_ipv6(),
            b.addr,
            b.inode,
        ))
    });
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> String {
    format!("cannot read {}: {e}; run as root or mount procfs", path.display())
}

/// A proc root that lists no process at all cannot name any owner: say so instead of answering
/// "nobody holds it".
fn check_procfs(proc_root: &Path) -> Result<(), String> {
    let dir = fs::read_dir(proc_root).map_err(|e| unreadable(proc_root, e))?;
    let has_pid = dir.flatten().any(|e| procs::pid_of(e.file_name().as_bytes()).is_some());
    if has_pid {
        Ok(())
    } else {
        Err(unreadable(proc_root, "no process directories in it"))
    }
}

fn wanted(proto: Proto, filter: Option<Proto>) -> bool {
    filter.is_none_or(|f| f == proto)
}

/// Parse the four tables in `net_dir`. IPv6 tables are missing when the kernel has no IPv6.
fn read_procnet(
    net_dir: &Path,
    port: Option<u16>,
    proto: Option<Proto>,
    netns: &str,
) -> Result<Vec<Listener>, String> {
    let mut out = Vec::new();
    for (file, p, v6) in [
        ("tcp", Proto::Tcp, false),
        ("tcp6", Proto::Tcp, true),
        ("udp", Proto::Udp, false),
        ("udp6", Proto::Udp, true),
    ] {
        if !wanted(p, proto) {
            continue;
        }
        let path = net_dir.join(file);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if v6 && e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(unreadable(&path, e)),
        };
        let sockets = procnet::parse_table(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        out.extend(sockets.iter().filter(|s| holds_port(s, p, port)).map(|s| Listener {
            proto: p,
            addr: s.local_addr,
            port: s.local_port,
            // The tables do not carry IPV6_V6ONLY; only sock_diag knows it.
            v6only: None,
            interface: None,
            inode: s.inode,
            uid: s.uid,
            netns: netns.to_owned(),
            owners: Vec::new(),
        }));
    }
    sort(&mut out);
    Ok(out)
}

fn holds_port(s: &ProcNetSocket, proto: Proto, port: Option<u16>) -> bool {
    let state_ok = match proto {
        Proto::Tcp => s.state == TCP_LISTEN,
        // Any bound UDP socket holds its port, connected or not.
        _ => true,
    };
    state_ok && s.local_port != 0 && port.is_none_or(|p| p == s.local_port)
}

/// Fill `owners` of each listener from /proc/*/fd, reading as few descriptor tables as possible
/// (see `owners`). Unreadable processes are skipped (they exited, or belong to another user when
/// not root).
pub fn resolve_owners(proc_root: &Path, listeners: &mut [Listener]) -> Result<(), String> {
    let mut inodes: Vec<u64> = Vec::new();
    let mut uids: Vec<u32> = Vec::new();
    for l in listeners.iter().filter(|l| l.inode != 0) {
        if !inodes.contains(&l.inode) {
            inodes.push(l.inode);
            uids.push(l.uid);
        }
    }
    if inodes.is_empty() {
        return Ok(());
    }
    let slot_of: HashMap<u64, usize> = inodes.iter().enumerate().map(|(i, &ino)| (ino, i)).collect();
    let owners = owners::find(proc_root, &inodes, &uids)?;
    let mut described: HashMap<u32, ProcessRef> = HashMap::new();
    for l in listeners.iter_mut() {
        let Some(&slot) = slot_of.get(&l.inode) else { continue };
        for &pid in &owners[slot] {
            let p = described.entry(pid).or_insert_with(|| describe(proc_root, pid));
            l.owners.push(p.clone());
        }
    }
    Ok(())
}

fn describe(proc_root: &Path, pid: u32) -> ProcessRef {
    let dir = proc_root.join(pid.to_string());
    let comm = fs::read_to_string(dir.join("comm")).map(|s| s.trim_end().to_owned()).unwrap_or_default();
    let cmdline = fs::read(dir.join("cmdline"))
        .map(|raw| {
            let text = String::from_utf8_lossy(&raw);
            text.trim_end_matches('\0').replace('\0', " ")
        })
        .unwrap_or_default();
    let container_id =
        fs::read_to_string(dir.join("cgroup")).ok().and_then(|c| procnet::container_id_from_cgroup(&c));
    ProcessRef { pid, comm, cmdline, container_id }
}

/// Raw NETLINK_SOCK_DIAG: one dump request per (family, protocol), `inet_diag_req_v2` built by
/// hand so no crate is needed.
mod netlink {
    use super::*;
    use rustix::net::netdevice::index_to_name;
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    use rustix::net::{
        netlink::{self, SocketAddrNetlink},
        recvfrom, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType,
    };

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    /// Attribute carrying IPV6_V6ONLY; the kernel adds it to every AF_INET6 answer unasked (its
    /// number, 11, does not fit the 8-bit `idiag_ext` request mask anyway).
    const INET_DIAG_SKV6ONLY: u16 = 11;
    const NLMSG_HDRLEN: usize = 16;
    const REQ_LEN: usize = NLMSG_HDRLEN + 56;
    const MSG_LEN: usize = 72;
    const TCPF_LISTEN: u32 = 1 << 10;
    /// Receive buffer: the kernel caps a dump batch at 32 KiB, so this always holds a whole batch.
    const RECV_BUF: usize = 64 * 1024;

    pub(super) fn list(port: Option<u16>, proto: Option<Proto>) -> io::Result<Vec<Listener>> {
        let sock = open()?;
        let mut names: HashMap<u32, Option<String>> = HashMap::new();
        let mut out = Vec::new();
        let mut seq = 0u32;
        for (p, ipproto, states) in [
            (Proto::Tcp, libc::IPPROTO_TCP, TCPF_LISTEN),
            // Bound UDP sockets hold their port in every state (unconnected and connected).
            (Proto::Udp, libc::IPPROTO_UDP, u32::MAX),
        ] {
            if !wanted(p, proto) {
                continue;
            }
            for family in [libc::AF_INET, libc::AF_INET6] {
                seq += 1;
                let req = request(family as u8, ipproto as u8, states, port.unwrap_or(0), seq);
                send(&sock, &req)?;
                receive(&sock, seq, |msg, attrs| {
                    if let Some(l) = listener(&sock, p, msg, attrs, &mut names) {
                        if port.is_none_or(|want| want == l.port) && l.port != 0 {
                            out.push(l);
                        }
                    }
                })?;
            }
        }
        Ok(out)
    }

    fn open() -> io::Result<OwnedFd> {
        let sock = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::SOCK_DIAG),
        )?;
        // Never hang a diagnosis on a kernel that does not answer.
        set_socket_timeout(&sock, Timeout::Recv, Some(Duration::from_secs(5)))?;
        Ok(sock)
    }

    /// nlmsghdr + inet_diag_req_v2, native byte order except the port (network order, `__be16`).
    fn request(family: u8, protocol: u8, states: u32, sport: u16, seq: u32) -> [u8; REQ_LEN] {
        let mut b = [0u8; REQ_LEN];
        b[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
        b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        b[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        // nlmsg_pid 0: the kernel fills in our port id.
        let r = NLMSG_HDRLEN;
        b[r] = family;
        b[r + 1] = protocol;
        // idiag_ext (b[r + 2]) stays 0: nothing optional is needed, see INET_DIAG_SKV6ONLY.
        b[r + 4..r + 8].copy_from_slice(&states.to_ne_bytes());
        // id.idiag_sport: the kernel's dump skips sockets on other ports (0 means any).
        b[r + 8..r + 10].copy_from_slice(&sport.to_be_bytes());
        b
    }

    fn send(sock: &OwnedFd, req: &[u8]) -> io::Result<()> {
        // Port id 0 addresses the kernel.
        sendto(sock, req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;
        Ok(())
    }

    /// Read the dump answering `seq` until NLMSG_DONE, calling `each` with every inet_diag_msg and
    /// its attributes.
    fn receive(sock: &OwnedFd, seq: u32, mut each: impl FnMut(&[u8], &[u8])) -> io::Result<()> {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let (n, from) = match recvfrom(sock, &mut buf[..], RecvFlags::empty()) {
                Ok((n, _, from)) => (n, from),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            // Only the kernel (port id 0) answers dumps; ignore anything else.
            if from.and_then(|a| SocketAddrNetlink::try_from(a).ok()).is_none_or(|a| a.pid() != 0) {
                continue;
            }
            let mut rest = &buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let msg_len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let msg_type = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                let msg_seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if msg_len < NLMSG_HDRLEN || msg_len > rest.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
                }
                let payload = &rest[NLMSG_HDRLEN..msg_len];
                if msg_seq == seq {
                    match msg_type as i32 {
                        libc::NLMSG_DONE => return Ok(()),
                        libc::NLMSG_ERROR => {
                            let errno = payload
                                .get(0..4)
                                .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                                .unwrap_or(0);
                            if errno != 0 {
                                return Err(io::Error::from_raw_os_error(-errno));
                            }
                        }
                        _ if msg_type == SOCK_DIAG_BY_FAMILY && payload.len() >= MSG_LEN => {
                            each(&payload[..MSG_LEN], &payload[MSG_LEN..]);
                        }
                        _ => {}
                    }
                }
                let aligned = (msg_len + 3) & !3;
                rest = rest.get(aligned..).unwrap_or_default();
            }
        }
    }

    /// inet_diag_msg → Listener (owners not yet known).
    fn listener(
        sock: &OwnedFd,
        proto: Proto,
        msg: &[u8],
        attrs: &[u8],
        names: &mut HashMap<u32, Option<String>>,
    ) -> Option<Listener> {
        let family = i32::from(msg[0]);
        let port = u16::from_be_bytes([msg[4], msg[5]]);
        let src: [u8; 16] = msg[8..24].try_into().ok()?;
        let ifindex = u32::from_ne_bytes(msg[40..44].try_into().ok()?);
        let uid = u32::from_ne_bytes(msg[64..68].try_into().ok()?);
        let inode = u32::from_ne_bytes(msg[68..72].try_into().ok()?);
        let addr = match family {
            libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
            libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(src)),
            _ => return None,
        };
        let v6only = if family == libc::AF_INET6 {
            attribute_u8(attrs, INET_DIAG_SKV6ONLY).map(|v| v != 0)
        } else {
            None
        };
        let interface = if ifindex == 0 {
            None
        } else {
            names.entry(ifindex).or_insert_with(|| index_to_name(sock, ifindex).ok()).clone()
        };
        Some(Listener {
            proto,
            addr,
            port,
            v6only,
            interface,
            inode: u64::from(inode),
            uid,
            netns: "host".to_owned(),
            owners: Vec::new(),
        })
    }

    /// First byte of the rtattr of type `kind`.
    fn attribute_u8(mut attrs: &[u8], kind: u16) -> Option<u8> {
        while attrs.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
            let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3FFF;
            if len < 4 || len > attrs.len() {
                return None;
            }
            if ty == kind {
                return attrs.get(4).copied();
            }
            attrs = attrs.get((len + 3) & !3..).unwrap_or_default();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_proc_root_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_procfs(dir.path()).unwrap_err();
        assert!(err.starts_with(&format!("cannot read {}", dir.path().display())), "{err}");
        assert!(err.contains("mount procfs"), "{err}");
        let missing = dir.path().join("absent");
        let err = check_procfs(&missing).unwrap_err();
        assert!(err.contains("No such file or directory"), "{err}");
    }
}
