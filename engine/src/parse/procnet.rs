//! Pure parsers of /proc text: the socket tables in /proc/net/{tcp,tcp6,udp,udp6}, and a cgroup file.
//!
//! The socket tables are what `collect::sockets` falls back to when netlink sock_diag is refused,
//! and what it reads for another process's network namespace (/proc/PID/net). They carry no
//! IPV6_V6ONLY flag and no bound interface: only sock_diag reports those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `st` of a TCP socket in LISTEN (the kernel's TCP_LISTEN).
pub const TCP_LISTEN: u8 = 0x0A;
/// `st` of an unconnected bound UDP socket (the kernel reuses TCP_CLOSE).
pub const UDP_UNCONNECTED: u8 = 0x07;

/// One line of a /proc/net socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNetSocket {
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub remote_addr: IpAddr,
    pub remote_port: u16,
    /// Kernel socket state (`TCP_LISTEN`, `UDP_UNCONNECTED`, 0x01 established, ...).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcNetError {
    #[error("line {line} of a /proc/net socket table: {reason}: `{text}`")]
    BadLine { line: usize, reason: &'static str, text: String },
}

/// Parse a whole table (header line included). Both families are recognised by the address width.
///
/// The kernel prints each 32-bit word of an address with `%08X` after loading it in host byte
/// order, so the words are decoded with `to_ne_bytes`: correct for the machine that produced the
/// text, which is the only machine that reads its own /proc.
pub fn parse_table(text: &str) -> Result<Vec<ProcNetSocket>, ProcNetError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        // The header starts with `sl`; skip it and any blank line.
        if trimmed.is_empty() || trimmed.starts_with("sl ") {
            continue;
        }
        let bad = |reason| ProcNetError::BadLine { line: idx + 1, reason, text: trimmed.to_owned() };
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        if fields.len() < 10 {
            return Err(bad("fewer than 10 fields"));
        }
        let (local_addr, local_port) = parse_endpoint(fields[1]).ok_or_else(|| bad("bad local address"))?;
        let (remote_addr, remote_port) =
            parse_endpoint(fields[2]).ok_or_else(|| bad("bad remote address"))?;
        let state = u8::from_str_radix(fields[3], 16).map_err(|_| bad("bad state"))?;
        let uid = fields[7].parse().map_err(|_| bad("bad uid"))?;
        let inode = fields[9].parse().map_err(|_| bad("bad inode"))?;
        out.push(ProcNetSocket { local_addr, local_port, remote_addr, remote_port, state, uid, inode });
    }
    Ok(out)
}

/// `0100007F:1F90` or the 32-digit IPv6 form, port in host-order hex.
fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// One `%08X` word back into the four bytes the kernel stored.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// The container id a process's cgroup file names: the 64-hex id after `docker-` (systemd driver,
/// `docker-<id>.scope`) or `/docker/` (cgroupfs driver). The first such id wins, which for a nested
/// engine is the outermost container.
pub fn container_id_from_cgroup(text: &str) -> Option<String> {
    for line in text.lines() {
        for marker in ["/docker/", "docker-"] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                let candidate = &rest[at + marker.len()..];
                if let Some(id) = candidate.get(..64) {
                    let ends = candidate[64..].chars().next().is_none_or(|c| !c.is_ascii_hexdigit());
                    if ends && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Some(id.to_ascii_lowercase());
                    }
                }
                rest = &rest[at + marker.len()..];
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tables under tests/fixtures/procnet were recorded on this project's x86_64 build host
    // (kernel 6.18) in a fresh network namespace running tests/fixtures/procnet/make-sockets.py; the
    // words are little-endian, so these cases only hold on little-endian machines.
    #[cfg(target_endian = "little")]
    mod recorded {
        use super::super::*;

        const TCP: &str = include_str!("../../tests/fixtures/procnet/tcp");
        const TCP6: &str = include_str!("../../tests/fixtures/procnet/tcp6");
        const UDP: &str = include_str!("../../tests/fixtures/procnet/udp");
        const UDP6: &str = include_str!("../../tests/fixtures/procnet/udp6");

        fn sock(local: &str, port: u16, state: u8, inode: u64) -> (IpAddr, u16, u8, u64) {
            (local.parse().unwrap(), port, state, inode)
        }

        fn key(s: &ProcNetSocket) -> (IpAddr, u16, u8, u64) {
            (s.local_addr, s.local_port, s.state, s.inode)
        }

        #[test]
        fn tcp_v4_listeners_and_established_pair() {
            let got: Vec<_> = parse_table(TCP).unwrap().iter().map(key).collect();
            assert_eq!(
                got,
                vec![
                    sock("0.0.0.0", 28080, TCP_LISTEN, 51352),
                    sock("127.0.0.1", 28081, TCP_LISTEN, 51353),
                    sock("127.0.0.1", 28081, 0x01, 51363),
                    sock("127.0.0.1", 36340, 0x01, 51362),
                ]
            );
            let established = &parse_table(TCP).unwrap()[2];
            assert_eq!(established.remote_addr, IpAddr::from([127, 0, 0, 1]));
            assert_eq!(established.remote_port, 36340);
        }

        #[test]
        fn tcp_v6_words_are_decoded_in_host_order() {
            let got: Vec<_> = parse_table(TCP6).unwrap().iter().map(key).collect();
            assert_eq!(
                got,
                vec![
                    sock("::1", 28082, TCP_LISTEN, 51355),
                    sock("::", 28083, TCP_LISTEN, 51356),
                    sock("::", 28080, TCP_LISTEN, 51354),
                    sock("::ffff:127.0.0.1", 28084, TCP_LISTEN, 51357),
                ]
            );
        }

        #[test]
        fn udp_bound_and_connected() {
            let got: Vec<_> = parse_table(UDP).unwrap().iter().map(key).collect();
            assert_eq!(
                got,
                vec![
                    sock("127.0.0.53", 28053, UDP_UNCONNECTED, 51358),
                    sock("0.0.0.0", 28085, UDP_UNCONNECTED, 51359),
                    sock("127.0.0.1", 28087, 0x01, 51361),
                ]
            );
            let v6: Vec<_> = parse_table(UDP6).unwrap().iter().map(key).collect();
            assert_eq!(v6, vec![sock("::", 28086, UDP_UNCONNECTED, 51360)]);
        }
    }

    #[test]
    fn truncated_line_is_an_error_naming_the_line() {
        let text = "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A\n";
        let err = parse_table(text).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn bad_address_width_is_an_error() {
        let text = "0: 0100:1F90 00000000:0000 0A 0:0 0:0 0 1000 0 99 1\n";
        assert!(matches!(parse_table(text), Err(ProcNetError::BadLine { reason: "bad local address", .. })));
    }

    #[test]
    fn uid_and_inode_are_read() {
        let text =
            "0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 424242 1\n";
        let s = &parse_table(text).unwrap()[0];
        assert_eq!((s.uid, s.inode, s.local_port), (1000, 424242, 8080));
    }

    #[test]
    fn container_id_from_both_cgroup_drivers() {
        let id = "3f4e2c1b0a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
        let systemd = format!("0::/system.slice/docker-{id}.scope\n");
        let cgroupfs = format!("12:memory:/docker/{id}\n11:cpu:/docker/{id}\n");
        assert_eq!(container_id_from_cgroup(&systemd).as_deref(), Some(id));
        assert_eq!(container_id_from_cgroup(&cgroupfs).as_deref(), Some(id));
        assert_eq!(container_id_from_cgroup("0::/user.slice/session-2.scope\n"), None);
        // `docker-compose` in a unit name is no container id.
        assert_eq!(container_id_from_cgroup("0::/system.slice/docker-compose@web.service\n"), None);
        // A 65th hex digit means this is not a 64-hex id.
        assert_eq!(container_id_from_cgroup(&format!("0::/docker/{id}a\n")), None);
    }
}
