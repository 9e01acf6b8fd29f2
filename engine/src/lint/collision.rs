//! Two fixed host-side publishes that claim the same port, protocol and address: the pairs the
//! rules PWL001–PWL004 tell apart (same service, a pick-one range, the same span, the same address).

use std::net::IpAddr;

use super::finding::{LintFinding, Severity, SourceLocation};
use super::model::{Group, Model};
use super::rule::LintRuleDoc;
use super::spec::PortSpan;
use crate::overlap::docker_bind_coverages;
use crate::port::Proto;

/// The fix of a collision between two services.
pub(crate) const OTHER_PORT_FIX: &str =
    "give one of them another host port (`portwhy suggest PORT` finds a free one), or bind them to \
     distinct addresses such as 127.0.0.1 and 127.0.0.2";

/// One colliding pair; `a` was declared before `b`.
#[derive(Debug)]
pub(crate) struct Collision<'a> {
    pub(crate) a: &'a Group,
    pub(crate) b: &'a Group,
    /// The ports both claim.
    pub(crate) shared: PortSpan,
    /// The narrower of the two addresses, as written (`None`: every address).
    pub(crate) host_ip: Option<String>,
    /// Where they meet, in words: `0.0.0.0:8080/tcp`, `host port 8080/tcp on every address`.
    pub(crate) at: String,
    /// Both sides' places, `a`'s first.
    pub(crate) locations: Vec<SourceLocation>,
}

/// The model's groups in declaration order, so each pair names the earlier entry first.
pub(crate) fn declared_groups(model: &Model) -> Vec<Group> {
    let mut groups = model.groups();
    groups.sort_by_key(|g| g.entry);
    groups
}

/// Every colliding pair of `groups` (in declaration order), in the order of the pairs.
pub(crate) fn collisions(groups: &[Group]) -> Vec<Collision<'_>> {
    let mut out = Vec::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            out.extend(collide(a, b));
        }
    }
    out
}

fn collide<'a>(a: &'a Group, b: &'a Group) -> Option<Collision<'a>> {
    if a.proto != b.proto {
        return None;
    }
    let shared = a.span.intersect(b.span)?;
    let collide = docker_bind_coverages(a.host_ip)
        .into_iter()
        .any(|ca| docker_bind_coverages(b.host_ip).into_iter().any(|cb| ca.collides(cb)));
    if !collide {
        return None;
    }
    let mut locations = a.locations.clone();
    locations.extend(b.locations.iter().filter(|l| !a.locations.contains(l)).cloned());
    let host_ip = narrower(a.host_ip, b.host_ip).map(|ip| ip.to_string());
    let at = describe(host_ip.as_deref().and_then(|s| s.parse().ok()), shared, a.proto);
    Some(Collision { a, b, shared, host_ip, at, locations })
}

impl Collision<'_> {
    pub(crate) fn same_service(&self) -> bool {
        self.a.service == self.b.service
    }

    /// Either side is a range the engine picks one free port of.
    pub(crate) fn picks_one(&self) -> bool {
        self.a.picks_one || self.b.picks_one
    }

    pub(crate) fn same_span(&self) -> bool {
        self.a.span == self.b.span
    }

    pub(crate) fn same_address(&self) -> bool {
        self.a.host_ip == self.b.host_ip
    }

    /// A finding of `doc`'s rule about this pair.
    pub(crate) fn finding(
        &self,
        doc: &LintRuleDoc,
        severity: Severity,
        message: String,
        fix: String,
    ) -> LintFinding {
        LintFinding {
            code: doc.code.into(),
            name: doc.name.into(),
            severity,
            message,
            locations: self.locations.clone(),
            services: if self.same_service() {
                vec![self.a.service.clone()]
            } else {
                vec![self.a.service.clone(), self.b.service.clone()]
            },
            host_ip: self.host_ip.clone(),
            ports: Some(self.shared),
            proto: Some(self.a.proto),
            fix,
        }
    }
}

/// The more specific of two addresses (a named address over a wildcard over none).
pub(crate) fn narrower(a: Option<IpAddr>, b: Option<IpAddr>) -> Option<IpAddr> {
    let rank = |ip: Option<IpAddr>| match ip {
        None => 0,
        Some(ip) if ip.is_unspecified() => 1,
        Some(_) => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn describe(ip: Option<IpAddr>, ports: PortSpan, proto: Proto) -> String {
    let port = if ports.is_single() { format!("port {ports}") } else { format!("ports {ports}") };
    match ip {
        None => format!("host {port}/{proto} on every address"),
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{ports}/{proto}"),
        Some(ip) => format!("{ip}:{ports}/{proto}"),
    }
}
