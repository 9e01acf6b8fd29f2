//! PWL002 overlapping-address: the same port and protocol on different addresses that overlap.

use std::net::IpAddr;

use crate::lint::collision::{collisions, declared_groups, narrower, OTHER_PORT_FIX};
use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};
use crate::overlap::Coverage;

pub(crate) struct OverlappingAddress;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
    code: "PWL002",
    name: "overlapping-address",
    severity: Severity::Error,
    what_it_detects: "Two services publish the same host port and protocol on different addresses \
        that overlap: no address (every address) or 0.0.0.0 against 127.0.0.1, or :: against ::1.",
    why_it_happens: "An entry without an address is published on 0.0.0.0 and on ::. 0.0.0.0 covers \
        every IPv4 address and :: every IPv6 address, so binding 127.0.0.1 or ::1 on the same port \
        fails (\"address already in use\" from the userland proxy, or \"port is already allocated\" \
        when both sides end up on ::). Explicit 0.0.0.0 and :: do not overlap: the engine binds :: \
        IPv6-only.",
    example: "services:\n  web:\n    ports: [\"8080:80\"]\n  debug:\n    ports: [\"127.0.0.1:8080:80\"]",
    fix: "Use another host port for one of them, or give both specific, distinct addresses.",
};

impl LintRule for OverlappingAddress {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        let groups = declared_groups(model);
        collisions(&groups)
            .iter()
            .filter(|c| !c.same_service() && !c.picks_one() && c.same_span() && !c.same_address())
            .map(|c| {
                c.finding(
                    &DOC,
                    Severity::Error,
                    format!(
                        "`{}` publishes `{}` and `{}` publishes `{}`: {}, so the second to start fails to bind \
                         (\"address already in use\" or \"port is already allocated\").",
                        c.a.service,
                        model.spec(c.a),
                        c.b.service,
                        model.spec(c.b),
                        overlap_reason(c.a.host_ip, c.b.host_ip)
                    ),
                    OTHER_PORT_FIX.into(),
                )
            })
            .collect()
    }
}

/// Why two different addresses still collide, in words.
fn overlap_reason(a: Option<IpAddr>, b: Option<IpAddr>) -> String {
    let wording = |ip: Option<IpAddr>| match ip {
        None => "an entry without an address is published on 0.0.0.0 and on :: (every IPv4 and IPv6 address)"
            .to_owned(),
        Some(ip) => match Coverage::of_addr(ip, Some(true)) {
            Coverage::V4Any => "0.0.0.0 covers every IPv4 address".to_owned(),
            Coverage::V6Any | Coverage::DualAny => ":: covers every IPv6 address".to_owned(),
            _ => format!("{ip} is inside it"),
        },
    };
    let (wide, narrow) = if narrower(a, b) == b { (a, b) } else { (b, a) };
    match narrow {
        Some(ip) if !ip.is_unspecified() => format!("{}; {ip} is one of them", wording(wide)),
        _ => wording(wide),
    }
}
