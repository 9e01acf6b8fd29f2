//! The rules: one file per cause, each a documented rule with a stable code and a pure check.
//!
//! A rule reads `Context` (evidence plus the classified error text) and returns findings. No I/O
//! here: everything a rule needs is in the evidence, so every rule runs the same on a live host
//! and on a replayed bundle.

use crate::cause::CauseCode;
use crate::diagnosis::{Diagnosis, Finding, SCHEMA_VERSION};
use crate::evidence::Evidence;
use crate::parse::error::DaemonError;

/// What a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub evidence: &'a Evidence,
    pub error: Option<&'a DaemonError>,
    /// The container the user is publishing (`--container`, or the one the error text names):
    /// it is the subject of the question, never reported as the holder.
    pub subject: Option<&'a str>,
}

/// Fixed-heading documentation of a rule, printed by `portwhy explain CODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    /// The code of every finding the rule emits; its `name()` is the finding's `cause`.
    pub code: CauseCode,
    pub title: &'static str,
    pub what_it_detects: &'static str,
    pub why_it_happens: &'static str,
    pub example: &'static str,
    pub fix: &'static str,
}

/// A diagnosis rule.
pub trait Rule: Sync {
    fn doc(&self) -> &'static RuleDoc;
    fn check(&self, cx: &Context<'_>) -> Vec<Finding>;
}

mod address_unavailable;
mod chains_missing;
mod compose_lines;
mod container_holds;
mod hairpin;
mod host_process;
mod no_conflict;
mod orphaned_dnat;
mod other_daemon;
mod platform;
mod privileged_port;
mod resolver_stub;
mod rootless_regression;
mod rootlesskit_holds;
mod silent_share;
mod split_backend;
mod stale_allocation;
mod stale_proxy;
mod stopped_container;

/// Every rule. The order is the tie-break between findings of equal confidence, so the more
/// specific explanation comes first (a silent share before the container that takes part in it).
pub fn all() -> &'static [&'static dyn Rule] {
    &[
        &resolver_stub::ResolverStub,
        &silent_share::SilentShare,
        // Before the proxy and rootlesskit rules: the same holder, named with the daemon it serves.
        &other_daemon::OtherDaemon,
        &rootlesskit_holds::RootlesskitHolds,
        &stale_proxy::StaleProxy,
        &stale_allocation::StaleAllocation,
        &container_holds::ContainerHolds,
        &host_process::HostProcess,
        &orphaned_dnat::OrphanedDnat,
        &chains_missing::ChainsMissing,
        &split_backend::SplitBackend,
        &address_unavailable::AddressUnavailable,
        // Before the permission rule: a Windows wording is the platform's first.
        &platform::Platform,
        &privileged_port::PrivilegedPort,
        &rootless_regression::RootlessRegression,
        &hairpin::Hairpin,
        &stopped_container::StoppedContainer,
        &no_conflict::NoConflict,
    ]
}

/// Rules in code order, for `portwhy explain --list`.
pub fn by_code() -> Vec<&'static dyn Rule> {
    let mut v = all().to_vec();
    v.sort_by_key(|r| r.doc().code);
    v
}

/// The rule of a code (`PW001`, any case) or a cause name (`host-process`).
pub fn find(code: &str) -> Option<&'static dyn Rule> {
    let code = CauseCode::lookup(code)?;
    all().iter().copied().find(|r| r.doc().code == code)
}

/// Run every rule and assemble the verdict.
pub fn diagnose(evidence: &Evidence, error: Option<&DaemonError>) -> Diagnosis {
    diagnose_for(evidence, error, None)
}

/// The same, for a publish of a named container: after a publish that succeeded, that container
/// holds the port itself, and the question is why its traffic goes elsewhere.
pub fn diagnose_for(evidence: &Evidence, error: Option<&DaemonError>, subject: Option<&str>) -> Diagnosis {
    let cx = Context { evidence, error, subject };
    let mut findings: Vec<Finding> = all().iter().flat_map(|r| r.check(&cx)).collect();
    // A silent share means the publish succeeded beside the host socket: "the host refuses a second
    // bind" about that socket would contradict it (the share finding already names the process).
    if findings.iter().any(|f| f.code == CauseCode::SilentShare) {
        findings.retain(|f| f.code != CauseCode::HostProcess);
    }
    if let Some(none) = no_conflict::verdict(&cx, &findings) {
        findings.push(none);
    }
    // Highest confidence first; the stable sort keeps rule order between equals.
    findings.sort_by_key(|f| std::cmp::Reverse(f.confidence));
    for f in &mut findings {
        f.remedies.sort_by_key(|r| (r.purpose, r.risk));
    }
    Diagnosis {
        schema_version: SCHEMA_VERSION,
        port: evidence.query.clone(),
        error: error.cloned(),
        findings,
        unavailable: evidence.unavailable.clone(),
        checked: checked(evidence),
    }
}

pub(crate) fn checked(evidence: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &evidence.sockets {
        out.push(format!(
            "{} listening sockets on port {} (all addresses, both families)",
            s.len(),
            evidence.query.port
        ));
    }
    if let Some(d) = &evidence.docker {
        out.push(format!(
            "{} containers on Docker Engine {} (created and stopped included)",
            d.containers.len(),
            d.version
        ));
    }
    if let Some(f) = &evidence.firewall {
        let read: Vec<&str> = f.backends_read.iter().map(|b| b.as_str()).collect();
        out.push(format!(
            "NAT rules in {}",
            if read.is_empty() { "no backend".to_owned() } else { read.join(", ") }
        ));
    }
    if evidence.host.is_some() {
        out.push("host: kernel, WSL, resolver, conntrack".to_owned());
    }
    // One daemon is the usual case and says nothing; more are worth knowing even when none holds the port.
    if let Some(d) = evidence.daemons.as_ref().filter(|d| d.processes.len() > 1) {
        let pids: Vec<String> = d.processes.iter().map(|p| p.pid.to_string()).collect();
        out.push(format!(
            "{} dockerd processes (pids {}{}); portwhy asked {}",
            pids.len(),
            pids.join(", "),
            if d.scanned_all { "" } else { ", from pidfiles and the port's holders" },
            d.endpoint
        ));
    }
    out
}

// ---- Shared helpers: the vocabulary every rule speaks, written once. ----

use crate::evidence::{Container, Listener, ProcessRef};
use crate::overlap::{docker_bind_coverages, Coverage};
use crate::port::PortQuery;
use std::net::IpAddr;

impl Context<'_> {
    pub fn query(&self) -> &PortQuery {
        &self.evidence.query
    }

    /// Listeners on the queried port and protocol that collide with the publish.
    pub fn blocking_listeners(&self) -> impl Iterator<Item = &Listener> {
        let q = self.query();
        self.evidence.listeners().iter().filter(move |l| crate::overlap::listener_blocks(l, q))
    }

    /// Containers whose published bindings collide with the queried publish, whatever their state.
    pub fn containers_binding(&self) -> impl Iterator<Item = (&Container, &crate::evidence::PortBinding)> {
        let q = self.query().clone();
        self.evidence.containers().iter().flat_map(move |c| {
            let q = q.clone();
            let source = if c.state.holds_ports() && !c.actual.is_empty() { &c.actual } else { &c.requested };
            source.iter().filter(move |b| binding_collides(b, &q)).map(move |b| (c, b))
        })
    }

    /// The container named in the error text (the one whose publish failed), if known.
    pub fn failed_container(&self) -> Option<&Container> {
        let name = self.subject.or_else(|| self.error?.container.as_deref())?;
        self.evidence.containers().iter().find(|c| c.name == name || c.id.starts_with(name))
    }

    /// The failing container's mappings of the queried port, one per container port: the same
    /// container port on 0.0.0.0 and on :: is one ask (the engine binds both families for it).
    pub fn own_asks(&self, f: &Container) -> Vec<&crate::evidence::PortBinding> {
        let mut out: Vec<&crate::evidence::PortBinding> = Vec::new();
        for (_, b) in self.containers_binding().filter(|(c, _)| c.id == f.id) {
            if !out.iter().any(|o| o.container_port == b.container_port && o.proto == b.proto) {
                out.push(b);
            }
        }
        // In container-port order whatever order the bundle lists them in (older recordings
        // kept the engine's map order).
        out.sort_by_key(|b| (b.container_port, b.proto));
        out
    }

    /// Whether the failing container asks for the queried port more than once.
    pub fn failed_asks_twice(&self) -> bool {
        self.failed_container().is_some_and(|f| self.own_asks(f).len() > 1)
    }

    /// Whether a running container owns this address (a DNAT target, a proxy's container-ip).
    pub fn running_container_at(&self, addr: IpAddr) -> Option<&Container> {
        self.evidence
            .containers()
            .iter()
            .filter(|c| c.state.holds_ports())
            .find(|c| c.addresses.values().any(|a| *a == addr))
    }

    pub fn engine_version(&self) -> Option<&str> {
        self.evidence.docker.as_ref().map(|d| d.version.as_str())
    }

    /// `docker info`'s LiveRestoreEnabled, when the engine was read.
    pub fn live_restore(&self) -> Option<bool> {
        self.evidence.docker.as_ref().and_then(|d| d.live_restore)
    }

    pub fn rootless(&self) -> bool {
        self.evidence.docker.as_ref().is_some_and(|d| d.rootless) || self.error.is_some_and(|e| e.rootless)
    }

    /// The daemon's own words, quoted as evidence in every finding that explains them.
    pub fn error_evidence(&self) -> Option<crate::diagnosis::EvidenceItem> {
        self.error.map(|e| {
            crate::diagnosis::EvidenceItem::new("error-text", format!("the daemon reported: {}", e.text))
        })
    }

    pub fn error_stage(&self) -> Option<crate::parse::error::Stage> {
        self.error.map(|e| e.stage)
    }

    pub fn unavailable(&self, source: &str) -> bool {
        self.evidence.unavailable.iter().any(|u| u.source == source)
    }
}

/// Does a published binding (host side) collide with the queried publish?
pub fn binding_collides(b: &crate::evidence::PortBinding, q: &PortQuery) -> bool {
    b.host_port == q.port
        && b.proto == q.proto
        && docker_bind_coverages(b.host_ip)
            .into_iter()
            .any(|held| docker_bind_coverages(q.host_ip).into_iter().any(|want| want.collides(held)))
}

/// `tcp 0.0.0.0:8080`, `udp [::]:53 (v6only)`, `tcp [::]:8080 (dual-stack: also holds 0.0.0.0)`.
pub fn describe_listener(l: &Listener) -> String {
    let addr = match l.addr {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let iface = l.interface.as_deref().map(|i| format!("%{i}")).unwrap_or_default();
    let stack = match (Coverage::of_listener(l), l.v6only) {
        (Coverage::DualAny, Some(false)) => " (dual-stack: also holds 0.0.0.0)",
        (Coverage::DualAny, None) => {
            " (IPv6 wildcard, v6only unknown: dual-stack by default, also holds 0.0.0.0)"
        }
        (Coverage::V6Any, _) => " (v6only: IPv4 stays free)",
        _ => "",
    };
    let ns = if l.netns == "host" { String::new() } else { format!(" in {}", l.netns) };
    format!("{} {addr}{iface}:{}{stack}{ns}", l.proto, l.port)
}

/// `pid 123 nginx (nginx: master process /usr/sbin/nginx)`.
pub fn describe_process(p: &ProcessRef) -> String {
    let cmd = p.cmdline.trim();
    if cmd.is_empty() || cmd == p.comm {
        format!("pid {} {}", p.pid, p.comm)
    } else {
        let short: String = cmd.chars().take(80).collect();
        format!("pid {} {} ({short})", p.pid, p.comm)
    }
}

/// Whether any owner of the listener is part of Docker's own machinery. slirp4netns counts: with
/// the slirp4netns port driver it is what binds a rootless engine's published ports.
pub fn owned_by_docker(l: &Listener) -> bool {
    l.owners.iter().any(|p| p.is_docker_proxy() || p.is_rootless_port_driver() || p.is_dockerd())
}

/// The host's own LAN address: the first IPv4 address on an interface that is not loopback, link
/// local, or one of Docker's bridges (`docker0`, `br-*`, the networks' bridges) or veth ends. A
/// bridge address is the host too, but other hosts do not reach it.
pub fn host_lan_v4(evidence: &Evidence) -> Option<std::net::Ipv4Addr> {
    let bridges: Vec<&str> =
        evidence.docker.iter().flat_map(|d| d.networks.iter().filter_map(|n| n.bridge.as_deref())).collect();
    let docker_iface = |iface: &str| {
        iface == "docker0"
            || iface.starts_with("br-")
            || iface.starts_with("veth")
            || bridges.contains(&iface)
    };
    evidence.host.as_ref()?.addresses.iter().find_map(|a| {
        let mut words = a.split_whitespace();
        let ip: std::net::Ipv4Addr = words.next()?.split('/').next()?.parse().ok()?;
        let iface = words.next().unwrap_or("");
        (!ip.is_loopback() && !ip.is_link_local() && !docker_iface(iface)).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::HostInfo;

    #[test]
    fn the_lan_address_skips_loopback_and_docker_bridges() {
        // Interface order as `ip -o addr` lists them inside a lab environment: the bridge of a user
        // network came up before eth0 was listed.
        let mut ev = Evidence::new("8080".parse().expect("query"));
        ev.host = Some(HostInfo {
            addresses: vec![
                "127.0.0.1/8 lo".into(),
                "172.18.0.1/16 br-3f9a2c1d7e0b".into(),
                "172.17.0.1/16 docker0".into(),
                "169.254.3.1/16 eth1".into(),
                "172.21.0.4/16 eth0".into(),
            ],
            ..HostInfo::default()
        });
        assert_eq!(host_lan_v4(&ev), Some(std::net::Ipv4Addr::new(172, 21, 0, 4)));
    }
}
