//! When two binds of the same port collide: the kernel's rules, in one place.
//!
//! Linux refuses a second bind when the addresses overlap within the same family, or when an
//! AF_INET6 wildcard socket without IPV6_V6ONLY (dual-stack) meets any IPv4 bind. A bind with
//! no address (Docker's `-p 8080:80`) asks for `0.0.0.0` and, on engines with IPv6, `::`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::evidence::Listener;
use crate::port::PortQuery;

/// The address space a listener covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// One IPv4 address.
    V4(Ipv4Addr),
    /// Every IPv4 address (`0.0.0.0`).
    V4Any,
    /// One IPv6 address (an IPv4-mapped one covers that IPv4 address too).
    V6(Ipv6Addr),
    /// Every IPv6 address only (`[::]` with IPV6_V6ONLY).
    V6Any,
    /// Every IPv6 and every IPv4 address (`[::]` dual-stack).
    DualAny,
}

impl Coverage {
    pub fn of_addr(addr: IpAddr, v6only: Option<bool>) -> Self {
        match addr {
            IpAddr::V4(a) if a.is_unspecified() => Self::V4Any,
            IpAddr::V4(a) => Self::V4(a),
            IpAddr::V6(a) if a.is_unspecified() => {
                // The kernel default (net.ipv6.bindv6only=0) is dual-stack.
                if v6only.unwrap_or(false) {
                    Self::V6Any
                } else {
                    Self::DualAny
                }
            }
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6(a),
            },
        }
    }

    pub fn of_listener(l: &Listener) -> Self {
        Self::of_addr(l.addr, l.v6only)
    }

    /// Whether a bind covering `self` and one covering `other` on the same port and protocol collide
    /// (ignoring SO_REUSEADDR/SO_REUSEPORT, which the callers weigh separately).
    pub fn collides(self, other: Self) -> bool {
        use Coverage::*;
        match (self, other) {
            (DualAny, _) | (_, DualAny) => true,
            (V4Any, V4Any | V4(_)) | (V4(_), V4Any) => true,
            (V4(a), V4(b)) => a == b,
            (V6Any, V6Any | V6(_)) | (V6(_), V6Any) => true,
            (V6(a), V6(b)) => a == b,
            _ => false,
        }
    }

    /// Does traffic from a client to `dest` reach a socket with this coverage?
    pub fn accepts(self, dest: IpAddr) -> bool {
        match (self, dest) {
            (Self::DualAny, _) => true,
            (Self::V4Any, IpAddr::V4(_)) => true,
            (Self::V4(a), IpAddr::V4(d)) => a == d,
            (Self::V6Any, IpAddr::V6(_)) => true,
            (Self::V6(a), IpAddr::V6(d)) => a == d,
            _ => false,
        }
    }
}

/// The addresses Docker binds for a publish on `host_ip` (None: both wildcards).
pub fn docker_bind_coverages(host_ip: Option<IpAddr>) -> Vec<Coverage> {
    match host_ip {
        // Docker binds the IPv6 wildcard with IPV6_V6ONLY set (Go's "tcp6" listener does).
        None => vec![Coverage::V4Any, Coverage::V6Any],
        Some(IpAddr::V6(a)) if a.is_unspecified() => vec![Coverage::V6Any],
        Some(ip) => vec![Coverage::of_addr(ip, Some(true))],
    }
}

/// Does this listener stand in the way of the queried publish?
pub fn listener_blocks(l: &Listener, q: &PortQuery) -> bool {
    l.port == q.port
        && l.proto == q.proto
        && docker_bind_coverages(q.host_ip).into_iter().any(|c| c.collides(Coverage::of_listener(l)))
}

pub const LOOPBACK_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOOPBACK_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn cov(s: &str, v6only: Option<bool>) -> Coverage {
        Coverage::of_addr(s.parse().unwrap(), v6only)
    }

    #[rstest]
    #[case("0.0.0.0", None, "127.0.0.1", None, true)]
    #[case("127.0.0.1", None, "127.0.0.2", None, false)]
    #[case("127.0.0.1", None, "127.0.0.1", None, true)]
    #[case("::", Some(false), "0.0.0.0", None, true)]
    #[case("::", Some(true), "0.0.0.0", None, false)]
    #[case("::", Some(true), "::1", Some(true), true)]
    #[case("::1", Some(true), "127.0.0.1", None, false)]
    #[case("::ffff:127.0.0.1", Some(false), "127.0.0.1", None, true)]
    fn collisions(
        #[case] a: &str,
        #[case] a6: Option<bool>,
        #[case] b: &str,
        #[case] b6: Option<bool>,
        #[case] expected: bool,
    ) {
        assert_eq!(cov(a, a6).collides(cov(b, b6)), expected);
        assert_eq!(cov(b, b6).collides(cov(a, a6)), expected, "collision is symmetric");
    }

    #[test]
    fn dual_stack_accepts_v4_traffic() {
        assert!(cov("::", Some(false)).accepts(LOOPBACK_V4));
        assert!(!cov("::", Some(true)).accepts(LOOPBACK_V4));
        assert!(!cov("127.0.0.1", None).accepts("10.0.0.1".parse().unwrap()));
    }
}
