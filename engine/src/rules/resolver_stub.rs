//! PW007 resolver-stub: systemd-resolved (or another stub resolver) holds port 53 on loopback.

use std::net::IpAddr;

use super::{describe_listener, describe_process, Context, Rule, RuleDoc};
use crate::diagnosis::{Confidence, EvidenceItem, Finding, Remedy, Risk};
use crate::evidence::Listener;
use crate::port::Proto;
use crate::remedy;

pub struct ResolverStub;

pub static DOC: RuleDoc = RuleDoc {
    code: "PW007",
    cause: "resolver-stub",
    title: "A stub resolver holds port 53",
    what_it_detects: "systemd-resolved's stub listeners (127.0.0.53 and 127.0.0.54, port 53, UDP and TCP) \
        or another local resolver (dnsmasq, unbound) on loopback port 53, when a container publishes 53.",
    why_it_happens: "`-p 53:53` asks for 0.0.0.0:53, which overlaps every IPv4 address, 127.0.0.53 \
        included. TCP fails with `address already in use`. UDP differs by engine: systemd-resolved \
        sets SO_REUSEADDR, and Engine 28.x binds UDP with it too, so the publish succeeds and both \
        sockets share the port (moby#50669, fixed in 29.0.0); DNS answers then depend on which \
        socket the kernel picks.",
    example: "docker run -p 53:53/udp -p 53:53/tcp pihole/pihole\n\
        # ... listen tcp4 0.0.0.0:53: bind: address already in use",
    fix: "Publish on the host's own address (`-p 192.168.1.10:53:53/udp`), which does not overlap \
        127.0.0.53; or turn off the stub listener (`DNSStubListener=no` in \
        /etc/systemd/resolved.conf) after pointing /etc/resolv.conf at a real resolver.",
};

/// Whether this socket is a resolver's loopback stub on port 53.
pub fn is_resolver_stub(l: &Listener) -> bool {
    l.port == 53
        && match l.addr {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback(),
        }
        && (l.owners.is_empty()
            || l.owners.iter().any(|p| {
                matches!(p.program(), "systemd-resolved" | "dnsmasq" | "unbound" | "named" | "coredns")
                    || p.comm.starts_with("systemd-resolve")
            }))
}

impl Rule for ResolverStub {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        if q.port != 53 {
            return Vec::new();
        }
        let stubs: Vec<&Listener> = cx.blocking_listeners().filter(|l| is_resolver_stub(l)).collect();
        if stubs.is_empty() {
            return Vec::new();
        }
        let mut evidence: Vec<EvidenceItem> = stubs
            .iter()
            .map(|l| EvidenceItem::new("sockets", format!("{} is bound", describe_listener(l))))
            .collect();
        let mut owners: Vec<String> =
            stubs.iter().flat_map(|l| l.owners.iter().map(describe_process)).collect();
        owners.dedup();
        for o in &owners {
            evidence.push(EvidenceItem::new("process", o.clone()));
        }
        if let Some(pid) = cx.evidence.host.as_ref().and_then(|h| h.systemd_resolved_pid) {
            evidence.push(EvidenceItem::new("host", format!("systemd-resolved runs as pid {pid}")));
        }
        let silent_udp = q.proto == Proto::Udp
            && cx.error.is_none()
            && cx.containers_binding().any(|(c, _)| c.state.holds_ports());
        if silent_udp {
            evidence.push(EvidenceItem::new(
                "docker",
                "a container publishes 53/udp beside the stub: both sockets hold the port (SO_REUSEADDR); the stub keeps the queries sent to its own address, and every other address (the host IP from outside included) reaches the container".to_owned(),
            ));
        }
        evidence.extend(cx.error_evidence());
        let mut remedies = Vec::new();
        if let Some(lan) = super::host_lan_v4(cx.evidence) {
            remedies.push(remedy::bind_address(
                q,
                IpAddr::V4(lan),
                "publishes DNS on the host's own address only; 127.0.0.53 stays with the stub, the host's DNS keeps working",
            ));
        } else {
            remedies.push(Remedy::new(
                Risk::Safe,
                format!("docker run -p <host-ip>:53:53/{} ...", q.proto),
                "publishes on the host's own address only, which does not overlap 127.0.0.53".to_owned(),
            ));
        }
        remedies.push(remedy::other_port(q));
        remedies.push(Remedy::new(
            Risk::Disruptive,
            "mkdir -p /etc/systemd/resolved.conf.d && printf '[Resolve]\\nDNSStubListener=no\\n' > /etc/systemd/resolved.conf.d/no-stub.conf && ln -sf /run/systemd/resolve/resolv.conf /etc/resolv.conf && systemctl restart systemd-resolved".to_owned(),
            "turns off the stub listener and points the host at the upstream resolvers directly; host DNS blips during the restart".to_owned(),
        ));
        vec![Finding {
            code: DOC.code.into(),
            cause: DOC.cause.into(),
            summary: if silent_udp {
                "a resolver stub and a container share 53/udp silently: DNS answers depend on which socket gets the query".to_owned()
            } else {
                format!(
                    "{} holds {} on loopback, inside the 0.0.0.0:53 that the publish asks for",
                    stubs
                        .iter()
                        .flat_map(|l| l.owners.first())
                        .map(|p| p.program().to_owned())
                        .next()
                        .unwrap_or_else(|| "a stub resolver".to_owned()),
                    stubs.iter().map(|l| l.addr.to_string()).collect::<Vec<_>>().join(" and ")
                )
            },
            evidence,
            confidence: Confidence::High,
            remedies,
        }]
    }
}
