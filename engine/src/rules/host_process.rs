//! PW001 host-process: a process outside Docker holds the port.

use super::{describe_listener, describe_process, owned_by_docker, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::overlap::Coverage;
use crate::parse::error::Stage;
use crate::remedy::{self, Action, Remedy, Risk};

pub struct HostProcess;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::HostProcess,
    title: "A host process holds the port",
    what_it_detects: "A socket on the host (not docker-proxy, not rootlesskit, not a resolver stub) that \
        listens on the port in an address that overlaps the publish: the same address, a wildcard of \
        the same family, or an IPv6 wildcard without IPV6_V6ONLY, which holds IPv4 too.",
    why_it_happens: "Docker publishes a port by binding it on the host (docker-proxy, the daemon itself \
        from 28.x, or rootlesskit). The kernel refuses a second bind of an overlapping address, so \
        the publish fails with `address already in use`. A `[::]` listener without v6only is the \
        classic surprise: `ss` prints it as IPv6, yet it blocks `0.0.0.0` too.",
    example: "python3 -m http.server 8080 &\ndocker run -p 8080:80 nginx\n\
        # docker: Error response from daemon: ... listen tcp4 0.0.0.0:8080: bind: address already in use.",
    fix: "Publish on another port (`portwhy suggest 8080`), or on an address the process does not hold \
        (e.g. the host's LAN IP when it holds only 127.0.0.1), or stop the process if it is not needed.",
};

impl Rule for HostProcess {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let mut findings = Vec::new();
        for l in cx.blocking_listeners() {
            // Docker's own sockets and resolver stubs have rules of their own.
            if owned_by_docker(l) || super::resolver_stub::is_resolver_stub(l) {
                continue;
            }
            // A host-network container's process is reported as that container (PW002).
            // Only ids of this engine's containers count: inside Docker-in-Docker, or under another
            // engine, every process's cgroup names some outer container.
            let known = |id: &String| cx.evidence.containers().iter().any(|c| &c.id == id);
            if l.owners.iter().any(|p| p.container_id.as_ref().is_some_and(known)) {
                continue;
            }
            let mut evidence =
                vec![EvidenceItem::new("sockets", format!("{} is bound", describe_listener(l)))];
            let who = match l.owners.as_slice() {
                [] => {
                    evidence.push(EvidenceItem::new(
                        "process",
                        format!(
                            "socket inode {} (uid {}) has no visible owner: run as root to see the process",
                            l.inode, l.uid
                        ),
                    ));
                    format!("a process of uid {}", l.uid)
                }
                owners => {
                    for p in owners {
                        evidence.push(EvidenceItem::new("process", describe_process(p)));
                    }
                    if owners.len() > 1 {
                        evidence.push(EvidenceItem::new(
                            "process",
                            format!(
                                "{} processes share the socket (fork or SO_REUSEPORT group)",
                                owners.len()
                            ),
                        ));
                    }
                    format!("{} (pid {})", owners[0].program(), owners[0].pid)
                }
            };
            evidence.extend(cx.error_evidence());
            let reuse_group = cx
                .evidence
                .listeners()
                .iter()
                .filter(|o| o.addr == l.addr && o.port == l.port && o.proto == l.proto && o.inode != l.inode)
                .count();
            if reuse_group > 0 {
                evidence.push(EvidenceItem::new(
                    "sockets",
                    format!(
                        "{} more sockets bound to the same address and port: an SO_REUSEPORT group",
                        reuse_group
                    ),
                ));
            }
            let confidence = match cx.error_stage() {
                // The allocator fires before any bind: a host socket cannot cause it.
                Some(Stage::Allocated) => Confidence::Low,
                _ if l.owners.is_empty() => Confidence::Medium,
                _ => Confidence::High,
            };
            let mut remedies = vec![remedy::other_port(q)];
            if let Some(addr) = free_address_hint(cx, l) {
                remedies.push(remedy::bind_address(
                    q,
                    addr.0,
                    &format!(
                        "{} holds only {}; publishing on {} does not overlap it. Clients of the other address do not reach the container",
                        who, addr.1, addr.0
                    ),
                ));
            }
            if !l.owners.is_empty() {
                // One action for every process sharing the socket: killing one of a fork or an
                // SO_REUSEPORT group leaves the others holding it.
                let pids: Vec<u32> = l.owners.iter().map(|p| p.pid).collect();
                let program = l.owners[0].program().to_owned();
                remedies.push(Remedy::fix(
                    Risk::Disruptive,
                    Action::StopProcess { pids: pids.clone(), program: program.clone() },
                    format!(
                        "ends {program} (pid {}): the port is free, and whatever {program} serves goes down. If a service manager started it, stop it there instead or it comes back",
                        pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            findings.push(Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
                summary: format!(
                    "{who} holds {}{}: the host refuses a second bind",
                    describe_listener(l),
                    bind_note(l)
                ),
                evidence,
                confidence,
                remedies,
            });
        }
        if findings.is_empty() && cx.evidence.sockets.is_none() {
            findings.extend(refused_unseen(cx));
        }
        findings
    }
}

/// The OS refused the bind but the sockets were not read (offline, or /proc unreadable): the text
/// alone proves a holder exists; name what to run to see it.
fn refused_unseen(cx: &Context<'_>) -> Option<Finding> {
    let e = cx.error.filter(|e| e.stage == Stage::HostBind)?;
    let q = cx.query();
    let addr = e.host_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned());
    let via = match e.reporter {
        Some(crate::parse::error::Reporter::Rootlesskit) => "rootlesskit's port driver",
        Some(crate::parse::error::Reporter::DockerDesktop) => "Docker Desktop's port forwarder",
        Some(crate::parse::error::Reporter::UserlandProxy) => "docker-proxy",
        _ => "the daemon",
    };
    Some(Finding {
        code: DOC.code,
        cause: DOC.code.name().into(),
        summary: format!(
            "the host refused {via}'s bind of {addr}:{}/{}: a socket already holds an overlapping address",
            q.port, q.proto
        ),
        evidence: cx
            .error_evidence()
            .into_iter()
            .chain([EvidenceItem::new(
                "sockets",
                "not read (offline or unreadable), so the holder is not named".to_owned(),
            )])
            .collect(),
        confidence: Confidence::Medium,
        remedies: vec![
            remedy::other_port(q),
            Remedy::check(
                Action::RunPortwhy { query: q.clone() },
                "run as root on the host where the publish failed: names the process, container or proxy holding the port",
            ),
        ],
    })
}

fn bind_note(l: &crate::evidence::Listener) -> &'static str {
    match Coverage::of_listener(l) {
        Coverage::V4(a) if a.is_loopback() => " (loopback only)",
        Coverage::V4(_) | Coverage::V6(_) => " (one address)",
        // describe_listener already says what an IPv6 wildcard covers.
        Coverage::V4Any => " (wildcard)",
        Coverage::V6Any | Coverage::DualAny => "",
    }
}

/// An address the holder leaves free: IPv4 when it holds only IPv6 (v6only), the host's first LAN
/// address when it holds only loopback.
fn free_address_hint(cx: &Context<'_>, l: &crate::evidence::Listener) -> Option<(std::net::IpAddr, String)> {
    match Coverage::of_listener(l) {
        Coverage::V6Any => Some((std::net::IpAddr::from([0, 0, 0, 0]), "IPv6 (v6only)".to_owned())),
        // A loopback publish stays on loopback: the next loopback address is free, and moving to
        // the LAN address would expose what was meant for this host only.
        Coverage::V4(a) if a.is_loopback() && cx.query().host_ip.is_some_and(|ip| ip.is_loopback()) => {
            let next = std::net::Ipv4Addr::from(u32::from(a).wrapping_add(1));
            next.is_loopback().then(|| (std::net::IpAddr::V4(next), a.to_string()))
        }
        Coverage::V4(a) if a.is_loopback() => {
            super::host_lan_v4(cx.evidence).map(|lan| (std::net::IpAddr::V4(lan), a.to_string()))
        }
        _ => None,
    }
}
