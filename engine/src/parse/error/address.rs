//! The address, port and protocol a line names, in each release's wording.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::*;

/// Where a text names the host side of the publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostAddr {
    pub(super) ip: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) proto: Option<Proto>,
}

/// The shapes that carry the host address, most specific first. Each knows how to read its match.
pub(super) struct AddrPattern {
    pub(super) re: Regex,
    pub(super) read: fn(&Captures<'_>) -> Option<HostAddr>,
}

pub(super) static ENDPOINT: LazyLock<Regex> =
    LazyLock::new(|| re(r"on endpoint ([^\s():]+)(?: \(([0-9a-fA-F]{12,64})\))?"));
pub(super) static PATTERNS: LazyLock<Vec<AddrPattern>> = LazyLock::new(|| {
    vec![
        // 29.x: `failed to bind host port 0.0.0.0:8080/tcp` (a netip.AddrPort, IPv6 in brackets).
        AddrPattern { re: re(r"failed to bind host port (\S+?)/(tcp|udp|sctp)\b"), read: read_addr_proto },
        // 28.x: `failed to bind host port for 0.0.0.0:8080:172.17.0.2:80/tcp`, or with a range,
        // `failed to bind host port 8081 for 0.0.0.0:8080-8090:172.17.0.2:80/tcp`.
        AddrPattern {
            re: re(r"failed to bind host port (?:(\d+) )?for (\S+?)/(tcp|udp|sctp)\b"),
            read: read_binding_spec,
        },
        // 27.x: `failed to bind port 0.0.0.0:8080/tcp: Error starting userland proxy: ...`.
        AddrPattern { re: re(r"failed to bind port (\S+?)/(tcp|udp|sctp)\b"), read: read_addr_proto },
        // The allocator, all versions: `Bind for 0.0.0.0:8080 failed`, `Bind for :::8080 failed`.
        AddrPattern { re: re(r"(?i)bind for (\S+?) failed: port is already allocated"), read: read_addr },
        // Docker Desktop: `exposing port TCP 0.0.0.0:8080 -> 0.0.0.0:0`.
        AddrPattern { re: re(r"(?i)exposing port (tcp|udp) (\S+?) ->"), read: read_proto_addr },
        // Go's net.OpError: `listen tcp4 0.0.0.0:8080: bind: ...`, `listen tcp [::]:8080: ...`.
        AddrPattern {
            re: re(r"listen (tcp|udp|sctp)(?:4|6)? (\[[^\]\s]*\]:\d+|[^\s\[\]]*:\d+)\b"),
            read: read_proto_addr,
        },
        // Docker for Mac before "Ports are not available": `Bind for 0.0.0.0:80: unexpected error`.
        AddrPattern { re: re(r"(?i)bind for (\S+?): unexpected error"), read: read_addr },
        // RootlessKit: `cannot expose privileged port 80, ...` names only the port.
        AddrPattern {
            re: re(r"cannot expose privileged port (\d+)"),
            read: |c| Some(HostAddr { ip: None, port: port(&c[1]), proto: None }),
        },
        // 29.x, before the bind: `failed to create socket for [::]:8080/tcp: address family ...`.
        AddrPattern {
            re: re(r"failed to create socket for ([^\s/]+)/(tcp|udp|sctp)\b"),
            read: read_addr_proto,
        },
        // 28.x, the same step: `failed to create socket for userland proxy for [::]:8080:...`.
        AddrPattern {
            re: re(r"failed to create socket for userland proxy for (?:(\d+) )?(\S+?)/(tcp|udp|sctp)\b"),
            read: read_binding_spec,
        },
    ]
});
/// The DNAT rule iptables refused: `-p tcp -d 0/0 --dport 8080 -j DNAT --to-destination 172.17.0.2:80`.
/// The `--to-destination` address is the container's, never the host's.
pub(super) static FW_DPORT: LazyLock<Regex> = LazyLock::new(|| re(r"--dport (\d+)"));
pub(super) static NFT_DPORT: LazyLock<Regex> = LazyLock::new(|| re(r"\b(tcp|udp|sctp) dport (\d+)\b"));
pub(super) static FW_DEST: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-d (\S+)"));
pub(super) static FW_PROTO: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-p (tcp|udp|sctp)\b"));
/// Last resort for unknown wordings: the first `IPv4:port` or `[IPv6]:port`.
pub(super) static ANY_ADDR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[^\w.:])(\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}|\[[0-9A-Fa-f:.]+(?:%\w+)?\]:\d{1,5})\b")
});
/// Words that make an errno phrase about a socket bind rather than, say, an IP address lease.
pub(super) static BIND_CONTEXT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:bind|listen|ports?)\b"));

pub(super) fn port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

pub(super) fn proto(s: &str) -> Option<Proto> {
    s.parse().ok()
}

/// Split `0.0.0.0:8080`, `[::]:8080`, `:::8080`, `::1:8080`, `:8080` into the address as written
/// (brackets dropped; empty means "no address") and the port.
pub(super) fn split_addr(s: &str) -> Option<(Option<String>, Option<u16>)> {
    let (host, p) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, tail) = rest.split_once(']')?;
            (h, tail.strip_prefix(':')?)
        }
        None => s.rsplit_once(':')?,
    };
    let p = p.parse::<u16>().ok()?;
    if host.is_empty() {
        return Some((None, port_nonzero(p)));
    }
    valid_ip(host).then(|| (Some(host.to_owned()), port_nonzero(p)))
}

pub(super) fn port_nonzero(p: u16) -> Option<u16> {
    (p != 0).then_some(p)
}

pub(super) fn valid_ip(s: &str) -> bool {
    s.split('%').next().is_some_and(|a| a.parse::<IpAddr>().is_ok())
}

pub(super) fn read_addr(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[1])?;
    Some(HostAddr { ip, port, proto: None })
}

pub(super) fn read_addr_proto(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[1])?;
    Some(HostAddr { ip, port, proto: proto(&c[2]) })
}

pub(super) fn read_proto_addr(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[2])?;
    Some(HostAddr { ip, port, proto: proto(&c[1]) })
}

/// 28.x prints libnetwork's PortBinding, `HostIP:HostPort:ContainerIP:ContainerPort`: IPv6 addresses
/// are bracketed in the releases read, but the split below also copes with bare ones (`:::8080:...`).
pub(super) fn read_binding_spec(c: &Captures<'_>) -> Option<HostAddr> {
    let spec = &c[2];
    let proto = proto(&c[3]);
    let explicit = c.get(1).and_then(|m| port(m.as_str()));
    let (ip, rest) = if let Some(inner) = spec.strip_prefix('[') {
        let (h, tail) = inner.split_once(']')?;
        (h.to_owned(), tail.strip_prefix(':')?)
    } else {
        // The first colon after which a port (or range) and another field follow, with a valid
        // address before it.
        spec.match_indices(':').find_map(|(i, _)| {
            let (h, tail) = (&spec[..i], &spec[i + 1..]);
            let digits = tail.split(':').next()?;
            let ok = valid_ip(h) && tail.contains(':') && digits.split('-').all(|d| d.parse::<u16>().is_ok());
            ok.then(|| (h.to_owned(), tail))
        })?
    };
    if !valid_ip(&ip) {
        return None;
    }
    let host_port = rest.split(':').next()?.split('-').next().and_then(port);
    Some(HostAddr { ip: Some(ip), port: explicit.or(host_port), proto })
}
