//! One compose `ports` entry, short or long syntax, parsed the way compose parses it.
//!
//! Compose hands short syntax to docker/go-connections `nat.ParsePortSpec`, so this follows its
//! reading: split on `:`; with more than three parts everything before the last two is the address
//! (so `:::8080:80` means `[::]:8080:80`, while `::8080:80` leaves the address `:` and is refused);
//! brackets around an IPv6 address are removed; the protocol follows the container port after `/`;
//! a host range must be as long as the container range, except that a range with a single
//! container port means "any one free port of this range".

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::port::Proto;

/// An inclusive range of ports; a single port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortSpan {
    pub start: u16,
    pub end: u16,
}

impl PortSpan {
    pub fn single(port: u16) -> Self {
        Self { start: port, end: port }
    }

    /// How many ports the span holds.
    pub fn count(self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    pub fn is_single(self) -> bool {
        self.start == self.end
    }

    pub fn intersect(self, other: Self) -> Option<Self> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start <= end).then_some(Self { start, end })
    }

    pub fn contains_span(self, other: Self) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

impl fmt::Display for PortSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// One container port's publish, as compose expands an entry (a range gives one per port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    /// The address as written; `None` when absent (Docker then binds `0.0.0.0` and `::`).
    pub host_ip: Option<IpAddr>,
    /// Host side: `None` for an ephemeral port, a span of several ports for "any one of these".
    pub published: Option<PortSpan>,
    pub target: u16,
    pub proto: Proto,
    /// `host` or `ingress` (long syntax); swarm only, recorded for the report.
    pub mode: Option<String>,
}

impl Publish {
    /// Whether the host side is a range from which the engine picks one free port.
    pub(crate) fn picks_one(&self) -> bool {
        self.published.is_some_and(|p| !p.is_single())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpecError {
    #[error("no container port: write HOST:CONTAINER such as \"8080:80\"")]
    NoContainerPort,
    #[error("unknown protocol `{0}`: compose accepts tcp, udp and sctp (\"53:53/udp\")")]
    BadProto(String),
    #[error("`{0}` is not an IP address: write \"127.0.0.1:8080:80\" or \"[::1]:8080:80\"")]
    BadAddress(String),
    #[error("`{0}` is not a port or a range START-END of ports between 1 and 65535")]
    BadPort(String),
    #[error("host range {host} and container range {container} differ in length: give ranges of equal length, or one container port to publish on any one port of the host range")]
    RangeMismatch { host: PortSpan, container: PortSpan },
    #[error("a long-syntax entry needs `target` (the container port)")]
    NoTarget,
}

/// Parse a short-syntax entry (after interpolation) into one publish per container port.
pub(crate) fn parse_short(spec: &str) -> Result<Vec<Publish>, SpecError> {
    // `rsplitn(3)` leaves every colon before the last two in the address, as go-connections does.
    let mut parts = spec.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let ip = parts.next().unwrap_or_default();
    let (container, proto) = match container.split_once('/') {
        Some((c, p)) => (c, parse_proto(p)?),
        None => (container, Proto::Tcp),
    };
    if container.is_empty() {
        return Err(SpecError::NoContainerPort);
    }
    let host_ip = parse_host_ip(ip)?;
    let target = parse_span(container)?;
    let published = if host.is_empty() { None } else { Some(parse_span(host)?) };
    expand(host_ip, published, target, proto, None)
}

/// Parse a long-syntax entry whose scalar fields were already interpolated into strings.
pub(crate) fn parse_long(
    target: Option<&str>,
    published: Option<&str>,
    host_ip: Option<&str>,
    protocol: Option<&str>,
    mode: Option<&str>,
) -> Result<Vec<Publish>, SpecError> {
    let target = parse_span(target.ok_or(SpecError::NoTarget)?)?;
    let published = match published {
        Some(p) if !p.is_empty() => Some(parse_span(p)?),
        _ => None,
    };
    let proto = match protocol {
        Some(p) if !p.is_empty() => parse_proto(p)?,
        _ => Proto::Tcp,
    };
    let host_ip = parse_host_ip(host_ip.unwrap_or_default())?;
    expand(host_ip, published, target, proto, mode.map(str::to_owned))
}

fn expand(
    host_ip: Option<IpAddr>,
    published: Option<PortSpan>,
    target: PortSpan,
    proto: Proto,
    mode: Option<String>,
) -> Result<Vec<Publish>, SpecError> {
    if let Some(host) = published {
        if host.count() != target.count() && !target.is_single() {
            return Err(SpecError::RangeMismatch { host, container: target });
        }
    }
    let out = (target.start..=target.end)
        .enumerate()
        .map(|(i, t)| Publish {
            host_ip,
            published: published.map(|h| {
                if target.is_single() {
                    h
                } else {
                    // Equal lengths (checked above): the i-th host port maps to the i-th container port.
                    PortSpan::single(h.start + i as u16)
                }
            }),
            target: t,
            proto,
            mode: mode.clone(),
        })
        .collect();
    Ok(out)
}

fn parse_proto(p: &str) -> Result<Proto, SpecError> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "sctp" => Ok(Proto::Sctp),
        _ => Err(SpecError::BadProto(p.to_owned())),
    }
}

fn parse_host_ip(ip: &str) -> Result<Option<IpAddr>, SpecError> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = match ip.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(|| SpecError::BadAddress(ip.to_owned()))?,
        None => ip,
    };
    bare.parse().map(Some).map_err(|_| SpecError::BadAddress(ip.to_owned()))
}

fn parse_span(s: &str) -> Result<PortSpan, SpecError> {
    let bad = || SpecError::BadPort(s.to_owned());
    let one = |p: &str| p.trim().parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(bad);
    match s.split_once('-') {
        Some((a, b)) => {
            let span = PortSpan { start: one(a)?, end: one(b)? };
            if span.start > span.end {
                return Err(bad());
            }
            Ok(span)
        }
        None => Ok(PortSpan::single(one(s)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn one(spec: &str) -> Publish {
        let mut v = parse_short(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec} expands to one publish");
        v.remove(0)
    }

    #[rstest]
    #[case("8080", None, None, 8080, Proto::Tcp)]
    #[case("8080:80", None, Some("8080"), 80, Proto::Tcp)]
    #[case("127.0.0.1:8080:80", Some("127.0.0.1"), Some("8080"), 80, Proto::Tcp)]
    #[case("[::1]:8080:80", Some("::1"), Some("8080"), 80, Proto::Tcp)]
    #[case(":::8080:80", Some("::"), Some("8080"), 80, Proto::Tcp)]
    #[case("::1:8080:80", Some("::1"), Some("8080"), 80, Proto::Tcp)]
    #[case("6060:6060/udp", None, Some("6060"), 6060, Proto::Udp)]
    #[case("6060:6060/UDP", None, Some("6060"), 6060, Proto::Udp)]
    #[case("9090-9091:8080", None, Some("9090-9091"), 8080, Proto::Tcp)]
    #[case(":80", None, None, 80, Proto::Tcp)]
    fn short_single(
        #[case] spec: &str,
        #[case] ip: Option<&str>,
        #[case] published: Option<&str>,
        #[case] target: u16,
        #[case] proto: Proto,
    ) {
        let p = one(spec);
        assert_eq!(p.host_ip, ip.map(|s| s.parse().unwrap()));
        assert_eq!(p.published.map(|s| s.to_string()).as_deref(), published);
        assert_eq!(p.target, target);
        assert_eq!(p.proto, proto);
    }

    #[test]
    fn ranges_expand_pairwise() {
        let v = parse_short("8000-8005:80-85").unwrap();
        assert_eq!(v.len(), 6);
        assert_eq!(v[3].published, Some(PortSpan::single(8003)));
        assert_eq!(v[3].target, 83);
        assert!(!v[3].picks_one());
        assert!(one("9090-9091:8080").picks_one());
    }

    #[rstest]
    #[case("::8080:80", SpecError::BadAddress(":".into()))]
    #[case("localhost:8080:80", SpecError::BadAddress("localhost".into()))]
    #[case("8080:", SpecError::NoContainerPort)]
    #[case("8080:80/icmp", SpecError::BadProto("icmp".into()))]
    #[case("70000:80", SpecError::BadPort("70000".into()))]
    #[case("8005-8000:80", SpecError::BadPort("8005-8000".into()))]
    #[case("http:80", SpecError::BadPort("http".into()))]
    #[case("8000-8002:80-81", SpecError::RangeMismatch {
        host: PortSpan { start: 8000, end: 8002 }, container: PortSpan { start: 80, end: 81 } })]
    fn short_rejects(#[case] spec: &str, #[case] expected: SpecError) {
        assert_eq!(parse_short(spec).unwrap_err(), expected);
    }

    #[test]
    fn long_syntax() {
        let v =
            parse_long(Some("80"), Some("8000-8001"), Some("127.0.0.1"), Some("udp"), Some("host")).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].picks_one());
        assert_eq!(v[0].proto, Proto::Udp);
        assert_eq!(v[0].mode.as_deref(), Some("host"));
        assert_eq!(parse_long(None, Some("80"), None, None, None).unwrap_err(), SpecError::NoTarget);
        assert_eq!(parse_long(Some("80"), None, None, None, None).unwrap()[0].published, None);
    }
}
