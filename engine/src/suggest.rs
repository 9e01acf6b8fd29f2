//! `portwhy suggest PORT`: the nearest port nothing on this host claims for that address and protocol.
//!
//! Pure: the caller gathers what is in use (listeners, container bindings, DNAT rules) and the
//! ports to stay away from; this module only decides. "Claims" uses the same address rules as the
//! diagnosis (`overlap`), so a port held on 127.0.0.1 is free for a publish on 127.0.0.2 but not
//! for one on every address.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::evidence::{Container, Family, Listener, NatRule, PortBinding};
use crate::overlap::{docker_bind_coverages, Coverage};
use crate::port::{PortQuery, Proto};

/// Something that holds, or will take, a host port on some addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortClaim {
    pub coverage: Coverage,
    pub port: u16,
    pub proto: Proto,
}

impl PortClaim {
    pub fn from_listener(l: &Listener) -> Self {
        Self { coverage: Coverage::of_listener(l), port: l.port, proto: l.proto }
    }

    /// The binds the engine makes for a published port (both wildcards when no address is given).
    pub fn from_binding(b: &PortBinding) -> Vec<Self> {
        if b.host_port == 0 {
            return Vec::new();
        }
        docker_bind_coverages(b.host_ip)
            .into_iter()
            .map(|coverage| Self { coverage, port: b.host_port, proto: b.proto })
            .collect()
    }

    /// A DNAT rule does not hold a socket, but traffic to its port goes to its target, not to a
    /// new publish: treat the addresses it matches as taken.
    pub fn from_nat_rule(r: &NatRule) -> Self {
        let dest =
            r.match_dest.as_deref().and_then(|d| d.split('/').next()).and_then(|a| a.parse::<IpAddr>().ok());
        let coverage = match (dest, r.family) {
            (Some(ip), _) => Coverage::of_addr(ip, Some(true)),
            (None, Family::Ipv4) => Coverage::V4Any,
            (None, Family::Ipv6) => Coverage::V6Any,
        };
        Self { coverage, port: r.dport, proto: r.proto }
    }
}

/// Every claim in the evidence a live host gives: listeners, container publishes, DNAT rules.
///
/// Containers count whatever their state: a stopped container takes its ports back when it
/// starts, so suggesting one of them would only move the conflict to the next restart.
pub fn claims_from(
    listeners: &[Listener],
    containers: &[Container],
    nat_rules: &[NatRule],
) -> Vec<PortClaim> {
    let mut out: Vec<PortClaim> = listeners.iter().map(PortClaim::from_listener).collect();
    for c in containers {
        for b in c.requested.iter().chain(&c.actual) {
            out.extend(PortClaim::from_binding(b));
        }
    }
    out.extend(nat_rules.iter().map(PortClaim::from_nat_rule));
    out
}

/// Version of the JSON document `portwhy suggest --json` prints. Bump on any incompatible change.
pub const SUGGEST_SCHEMA_VERSION: u32 = 1;

/// What `portwhy suggest --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub schema_version: u32,
    pub port: PortQuery,
    /// The nearest free port (the asked one when it is free); `None` when none is free.
    pub suggested: Option<u16>,
    /// The next few candidates, nearest first.
    pub alternatives: Vec<u16>,
    pub unavailable: Vec<crate::evidence::Unavailable>,
}

impl Suggestion {
    /// The nearest free port and three alternatives, given what holds ports on the host.
    pub fn new(
        query: &PortQuery,
        in_use: &[PortClaim],
        reserved: &Reserved,
        unavailable: Vec<crate::evidence::Unavailable>,
    ) -> Self {
        let mut ports = nearest_free_n(query, in_use, reserved, 4);
        let suggested = if ports.is_empty() { None } else { Some(ports.remove(0)) };
        Self {
            schema_version: SUGGEST_SCHEMA_VERSION,
            port: query.clone(),
            suggested,
            alternatives: ports,
            unavailable,
        }
    }

    /// Free when the asked port is the suggestion; taken when another is; inconclusive when none is.
    pub fn exit_code(&self) -> crate::exit::ExitCode {
        use crate::exit::ExitCode;
        match self.suggested {
            Some(p) if p == self.port.port => ExitCode::NoConflict,
            Some(_) => ExitCode::ConflictFound,
            None => ExitCode::Inconclusive,
        }
    }
}

/// Ports a suggestion stays away from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    /// The kernel's ephemeral range (net.ipv4.ip_local_port_range): outgoing connections take
    /// ports from it, so a service published there can collide with them at any time.
    pub ephemeral: Option<(u16, u16)>,
    /// Allow ports below 1024 (they need root, or a lowered ip_unprivileged_port_start).
    pub allow_privileged: bool,
}

impl Default for Reserved {
    fn default() -> Self {
        // The kernel default range, used when /proc cannot be read.
        Self { ephemeral: Some((32768, 60999)), allow_privileged: false }
    }
}

impl Reserved {
    pub fn is_reserved(&self, port: u16) -> bool {
        (!self.allow_privileged && port < 1024)
            || self.ephemeral.is_some_and(|(lo, hi)| (lo..=hi).contains(&port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ip_local_port_range reads `{0}`; expected two port numbers such as `32768 60999`")]
pub struct PortRangeError(String);

/// Parse the text of /proc/sys/net/ipv4/ip_local_port_range (`32768\t60999`).
pub fn parse_local_port_range(text: &str) -> Result<(u16, u16), PortRangeError> {
    let bad = || PortRangeError(text.trim().to_owned());
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= hi => Ok((lo, hi)),
        _ => Err(bad()),
    }
}

/// The nearest port to `query.port` that no claim holds for the query's address and protocol:
/// the port itself when free, else the first free one above it, else below it, never a reserved
/// one. `None` when every candidate is taken.
pub fn nearest_free(query: &PortQuery, in_use: &[PortClaim], reserved: &Reserved) -> Option<u16> {
    candidates(query, in_use, reserved).next()
}

/// The `n` nearest free ports, in the order `nearest_free` would try them.
pub fn nearest_free_n(query: &PortQuery, in_use: &[PortClaim], reserved: &Reserved, n: usize) -> Vec<u16> {
    candidates(query, in_use, reserved).take(n).collect()
}

fn candidates<'a>(
    query: &'a PortQuery,
    in_use: &[PortClaim],
    reserved: &'a Reserved,
) -> impl Iterator<Item = u16> + 'a {
    let taken = taken_ports(query, in_use);
    let free = move |p: &u16| !taken[usize::from(*p)];
    let own = std::iter::once(query.port).filter(|&p| p != 0);
    let above: RangeInclusive<u16> = query.port.saturating_add(1)..=u16::MAX;
    let below = (1..query.port).rev();
    let above = above.filter(move |&p| p > query.port);
    own.chain(above.filter(move |&p| !reserved.is_reserved(p)))
        .chain(below.filter(move |&p| !reserved.is_reserved(p)))
        .filter(free)
}

/// One flag per port number: does any claim collide with a publish like `query`?
fn taken_ports(query: &PortQuery, in_use: &[PortClaim]) -> Vec<bool> {
    let wanted = docker_bind_coverages(query.host_ip);
    let mut taken = vec![false; usize::from(u16::MAX) + 1];
    taken[0] = true;
    for c in in_use {
        if c.proto == query.proto && wanted.iter().any(|w| w.collides(c.coverage)) {
            taken[usize::from(c.port)] = true;
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::ContainerState;

    fn q(s: &str) -> PortQuery {
        s.parse().unwrap()
    }

    fn listener(addr: &str, port: u16, proto: Proto, v6only: Option<bool>) -> PortClaim {
        PortClaim { coverage: Coverage::of_addr(addr.parse().unwrap(), v6only), port, proto }
    }

    fn none_reserved() -> Reserved {
        Reserved { ephemeral: None, allow_privileged: true }
    }

    #[test]
    fn the_port_itself_when_free() {
        assert_eq!(nearest_free(&q("8080"), &[], &Reserved::default()), Some(8080));
    }

    #[test]
    fn next_above_when_taken_on_any_address() {
        let used =
            [listener("0.0.0.0", 8080, Proto::Tcp, None), listener("127.0.0.1", 8081, Proto::Tcp, None)];
        // An address-less publish binds 0.0.0.0, so 127.0.0.1:8081 blocks it too.
        assert_eq!(nearest_free(&q("8080"), &used, &Reserved::default()), Some(8082));
        assert_eq!(nearest_free_n(&q("8080"), &used, &Reserved::default(), 3), [8082, 8083, 8084]);
    }

    #[test]
    fn a_distinct_address_is_free() {
        let used = [listener("127.0.0.1", 8080, Proto::Tcp, None)];
        assert_eq!(nearest_free(&q("127.0.0.2:8080"), &used, &Reserved::default()), Some(8080));
        assert_eq!(nearest_free(&q("127.0.0.1:8080"), &used, &Reserved::default()), Some(8081));
    }

    #[test]
    fn udp_does_not_block_tcp() {
        let used = [listener("0.0.0.0", 53, Proto::Udp, None)];
        assert_eq!(nearest_free(&q("53/tcp"), &used, &none_reserved()), Some(53));
        assert_eq!(nearest_free(&q("53/udp"), &used, &none_reserved()), Some(54));
    }

    #[test]
    fn v6only_wildcard_blocks_addressless_but_not_v4_address() {
        let v6only = [listener("::", 8080, Proto::Tcp, Some(true))];
        // Docker binds :: for an address-less publish, so a v6-only [::]:8080 still blocks it.
        assert_eq!(nearest_free(&q("8080"), &v6only, &Reserved::default()), Some(8081));
        assert_eq!(nearest_free(&q("127.0.0.1:8080"), &v6only, &Reserved::default()), Some(8080));
        let dual = [listener("::", 8080, Proto::Tcp, Some(false))];
        assert_eq!(nearest_free(&q("127.0.0.1:8080"), &dual, &Reserved::default()), Some(8081));
    }

    #[test]
    fn skips_ephemeral_and_privileged_ranges() {
        let reserved = Reserved { ephemeral: Some((8081, 8090)), allow_privileged: false };
        let used = [listener("0.0.0.0", 8080, Proto::Tcp, None)];
        assert_eq!(nearest_free(&q("8080"), &used, &reserved), Some(8091));
        let used = [listener("0.0.0.0", 80, Proto::Tcp, None)];
        assert_eq!(nearest_free(&q("80"), &used, &Reserved::default()), Some(1024));
        let allow = Reserved { ephemeral: None, allow_privileged: true };
        assert_eq!(nearest_free(&q("80"), &used, &allow), Some(81));
    }

    #[test]
    fn searches_below_when_nothing_above_is_free() {
        let mut used: Vec<PortClaim> =
            (65530..=u16::MAX).map(|p| listener("0.0.0.0", p, Proto::Tcp, None)).collect();
        used.push(listener("0.0.0.0", 65529, Proto::Tcp, None));
        assert_eq!(nearest_free(&q("65530"), &used, &none_reserved()), Some(65528));
    }

    #[test]
    fn none_when_everything_is_taken() {
        let used: Vec<PortClaim> = (1..=u16::MAX).map(|p| listener("0.0.0.0", p, Proto::Tcp, None)).collect();
        assert_eq!(nearest_free(&q("8080"), &used, &none_reserved()), None);
    }

    #[test]
    fn containers_and_nat_rules_claim_ports() {
        let container = Container {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            image: "nginx".into(),
            state: ContainerState::Exited,
            error: None,
            network_mode: "bridge".into(),
            compose_project: None,
            compose_service: None,
            restart_policy: None,
            restart_count: None,
            requested: vec![PortBinding {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                proto: Proto::Tcp,
            }],
            actual: vec![],
            addresses: Default::default(),
            labels: Default::default(),
        };
        let rule = NatRule {
            backend: crate::evidence::Backend::IptablesNft,
            family: Family::Ipv4,
            table: "nat".into(),
            chain: "DOCKER".into(),
            proto: Proto::Tcp,
            dport: 8081,
            match_dest: Some("127.0.0.1/32".into()),
            in_iface: None,
            to_addr: "172.17.0.2".parse().unwrap(),
            to_port: 80,
            raw: String::new(),
            position: None,
        };
        let claims = claims_from(&[], &[container], &[rule]);
        assert_eq!(nearest_free(&q("8080"), &claims, &Reserved::default()), Some(8082));
        // The rule matches 127.0.0.1 only: 127.0.0.2:8081 stays free.
        assert_eq!(nearest_free(&q("127.0.0.2:8081"), &claims, &Reserved::default()), Some(8081));
    }

    #[test]
    fn parses_the_proc_range() {
        assert_eq!(parse_local_port_range("32768\t60999\n"), Ok((32768, 60999)));
        assert!(parse_local_port_range("60999 32768").is_err());
        assert!(parse_local_port_range("1").is_err());
    }
}
