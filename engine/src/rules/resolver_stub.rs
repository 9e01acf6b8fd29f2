//! PW007 resolver-stub: systemd-resolved (or another stub resolver) holds port 53 on loopback.

use std::net::IpAddr;

use super::{describe_listener, describe_process, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::Listener;
use crate::port::Proto;
use crate::remedy::{self, Action, BindAddress, ForeignOs, Remedy, Risk};

pub struct ResolverStub;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::ResolverStub,
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
            return unseen(cx).into_iter().collect();
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
        // Publishing on the host's own address is the fix here: the stub keeps 127.0.0.53 by design,
        // and the point is to leave that address to it while the container takes the rest.
        let address = super::host_lan_v4(cx.evidence)
            .map_or(BindAddress::HostIp, |lan| BindAddress::Ip(IpAddr::V4(lan)));
        let mut remedies = vec![Remedy::fix(
            Risk::Safe,
            Action::Publish { address, port: q.port, proto: q.proto },
            "publishes DNS on the host's own address only; 127.0.0.53 stays with the stub, so the host's own DNS keeps working",
        )];
        remedies.push(remedy::other_port(q));
        remedies.push(Remedy::fix(
            Risk::Disruptive,
            Action::DisableResolverStub,
            "turns off the stub listener and points the host's resolv.conf at the upstream servers directly; host lookups fail for the moment of the restart",
        ));
        if let Some(stub) =
            stubs.iter().flat_map(|l| l.owners.first()).find(|p| p.comm.starts_with("systemd-resolve"))
        {
            remedies.push(Remedy::fix(
                Risk::Disruptive,
                Action::StopService { unit: "systemd-resolved".into(), process: stub.comm.clone() },
                "stops systemd-resolved: the port is free, but /etc/resolv.conf still names 127.0.0.53, so every lookup on the host fails until it starts again",
            ));
        }
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
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

/// Port 53 refused but the sockets were not read (offline, or /proc unreadable): a local resolver
/// is the usual holder; name the likely ones and the command that shows each.
fn unseen(cx: &Context<'_>) -> Option<Finding> {
    let e = cx.error.filter(|e| e.stage == crate::parse::error::Stage::HostBind)?;
    if cx.evidence.sockets.is_some() {
        return None;
    }
    let q = cx.query();
    let evidence = cx
        .error_evidence()
        .into_iter()
        .chain([EvidenceItem::new(
            "sockets",
            "not read (offline or unreadable): the holder is the usual one for port 53, not a seen one"
                .to_owned(),
        )])
        .collect();
    let remedies = vec![
        Remedy::check(
            Action::ShowListeners { port: 53, proto: q.proto },
            "names the program on port 53: systemd-resolved on 127.0.0.53/127.0.0.54, dnsmasq (libvirt, NetworkManager, Pi-hole) on its addresses",
        ),
        Remedy::check(
            Action::ServiceStatus { unit: "systemd-resolved".into() },
            "says whether systemd-resolved runs; its stub listener is on by default (DNSStubListener=yes)",
        ),
        Remedy::check(
            Action::Foreign { os: ForeignOs::Macos, line: "sudo lsof -nP -i :53".to_owned() },
            "on macOS: names the holder, usually mDNSResponder, which Docker Desktop's own DNS can start",
        ),
        Remedy::workaround(
            Action::Publish { address: BindAddress::HostIp, port: q.port, proto: q.proto },
            "publishes DNS on the host's own address only, which does not overlap a loopback stub",
        ),
        remedy::other_port(q),
    ];
    let via = if e.proto_stated { format!("53/{}", q.proto) } else { "53".to_owned() };
    Some(Finding {
        code: DOC.code,
        cause: DOC.code.name().into(),
        summary: format!(
            "port {via} is refused: on most hosts a local resolver holds it (systemd-resolved, dnsmasq; mDNSResponder on macOS)"
        ),
        evidence,
        confidence: Confidence::Medium,
        remedies,
    })
}
