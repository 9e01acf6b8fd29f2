//! PW008 silent-share: a host socket and a published container share the port without any error.

use std::net::{IpAddr, Ipv6Addr};

use super::{describe_listener, owned_by_docker, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{Listener, NatRule};
use crate::overlap::{Coverage, LOOPBACK_V4, LOOPBACK_V6};
use crate::remedy::{self, Action, Remedy, Risk};

pub struct SilentShare;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::SilentShare,
    title: "A host process and a container share the port silently",
    what_it_detects: "A host socket and a container's published mapping on the same port at the same \
        time, with no error: in disjoint addresses or families (a v6only `[::]` listener beside \
        Docker's IPv4 binding, 127.0.0.1 beside the host IP, DNAT without a proxy when \
        userland-proxy is off), or two UDP sockets with SO_REUSEADDR (Engine 28.x).",
    why_it_happens: "Docker's DNAT rules catch traffic before any socket sees it, and sockets in \
        disjoint addresses never collide, so the publish succeeds and each client reaches whoever \
        owns its path. The article \"Understanding Port Sharing and SO_REUSEADDR in Docker\" blames SO_REUSEADDR for TCP sharing; on real \
        engines TCP never shares one address family, only disjoint addresses or families do.",
    example: "python3 -c 'import socket as s; x=s.socket(s.AF_INET6); x.setsockopt(s.IPPROTO_IPV6, s.IPV6_V6ONLY, 1); x.bind((\"::\", 8080)); x.listen(); input()' &\n\
        docker run -d -p 0.0.0.0:8080:80 nginx   # succeeds\ncurl -6 http://[::1]:8080   # the host process answers",
    fix: "Give one of them another port, or make the split deliberate: bind the host process and \
        the container to explicit, disjoint addresses and document who serves which.",
};

/// Who receives a client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Receiver {
    Container(String),
    HostProcess(String),
    Nobody,
}

impl Receiver {
    fn describe(&self) -> String {
        match self {
            Self::Container(c) => format!("container {c}"),
            Self::HostProcess(p) => format!("host process {p}"),
            Self::Nobody => "nothing (refused)".to_owned(),
        }
    }
}

impl Rule for SilentShare {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        // A failed publish is not a share; the other rules explain it.
        if cx.error.is_some_and(|e| e.stage != crate::parse::error::Stage::Unknown) {
            return Vec::new();
        }
        let host_sockets: Vec<&Listener> = cx
            .evidence
            .listeners()
            .iter()
            .filter(|l| l.port == q.port && l.proto == q.proto && !owned_by_docker(l) && l.netns == "host")
            .collect();
        let published: Vec<_> = cx.containers_binding().filter(|(c, _)| c.state.holds_ports()).collect();
        if host_sockets.is_empty() || published.is_empty() {
            return Vec::new();
        }
        let (container, binding) = published[0];
        let container_name = container.display();
        let dnat: Vec<&NatRule> = cx
            .evidence
            .nat_rules()
            .filter(|r| {
                r.dport == q.port && r.proto == q.proto && cx.running_container_at(r.to_addr).is_some()
            })
            .collect();
        let proxies: Vec<_> = cx
            .evidence
            .docker
            .iter()
            .flat_map(|d| d.proxies.iter())
            .filter(|p| p.host_port == q.port && p.proto == q.proto)
            .collect();

        let process_name = |l: &Listener| {
            l.owners
                .first()
                .map_or(format!("(uid {})", l.uid), |p| format!("{} (pid {})", p.program(), p.pid))
        };
        let udp = q.proto == crate::port::Proto::Udp;
        // Sockets: which host socket or proxy accepts a destination.
        let socket_for = |dest: IpAddr| -> Receiver {
            let host = host_sockets.iter().find(|l| Coverage::of_listener(l).accepts(dest));
            let proxy = proxies.iter().any(|p| Coverage::of_addr(p.host_ip, Some(true)).accepts(dest));
            match (host, proxy) {
                // Two UDP sockets on one address (both SO_REUSEADDR): Linux hands each unicast
                // datagram to the one bound last, and docker-proxy binds when the container
                // starts, after the host process. Measured on 28.5.2: the container answers.
                (Some(_), true) if udp => Receiver::Container(container_name.clone()),
                (Some(l), _) => Receiver::HostProcess(process_name(l)),
                (None, true) => Receiver::Container(container_name.clone()),
                (None, false) => Receiver::Nobody,
            }
        };
        // DNAT (PREROUTING for outside traffic, OUTPUT for local) runs before any socket.
        let dnat_for = |dest: IpAddr, local: bool| -> Option<Receiver> {
            dnat.iter()
                .find(|r| {
                    let family_ok = matches!(
                        (r.family, dest),
                        (crate::evidence::Family::Ipv4, IpAddr::V4(_))
                            | (crate::evidence::Family::Ipv6, IpAddr::V6(_))
                    );
                    let dest_ok = r
                        .match_dest
                        .as_deref()
                        .is_none_or(|d| d.split('/').next() == Some(&dest.to_string()));
                    // Docker's OUTPUT jump skips 127.0.0.0/8 unless userland-proxy is off (then a
                    // rule exists for loopback and route_localnet is set); with a proxy, loopback
                    // goes to sockets.
                    let loopback_ok = !dest.is_loopback() || proxies.is_empty();
                    family_ok && dest_ok && (loopback_ok || !local)
                })
                .and_then(|r| cx.running_container_at(r.to_addr))
                .map(|c| Receiver::Container(c.display()))
        };
        let route = |dest: IpAddr, local: bool| dnat_for(dest, local).unwrap_or_else(|| socket_for(dest));

        let host_ip = super::host_lan_v4(cx.evidence).map(IpAddr::V4);
        let mut paths: Vec<(String, Receiver)> = vec![
            ("127.0.0.1 (this host)".to_owned(), route(LOOPBACK_V4, true)),
            ("::1 (this host)".to_owned(), route(LOOPBACK_V6, true)),
        ];
        if let Some(ip) = host_ip {
            paths.push((format!("{ip} from this host"), route(ip, true)));
            paths.push((format!("{ip} from another machine"), route(ip, false)));
        }
        let v6_global: Option<IpAddr> = cx
            .evidence
            .host
            .iter()
            .flat_map(|h| h.addresses.iter())
            .filter_map(|a| a.split('/').next()?.parse::<Ipv6Addr>().ok())
            .find(|a| !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80)
            .map(IpAddr::V6);
        if let Some(ip) = v6_global {
            paths.push((format!("[{ip}] from another machine"), route(ip, false)));
        }
        let receivers: Vec<&Receiver> = paths.iter().map(|(_, r)| r).collect();
        let split = receivers.iter().any(|r| matches!(r, Receiver::Container(_)))
            && receivers.iter().any(|r| matches!(r, Receiver::HostProcess(_)));
        let same_socket_udp = udp
            && host_sockets.iter().any(|l| {
                proxies
                    .iter()
                    .any(|p| Coverage::of_addr(p.host_ip, Some(true)).collides(Coverage::of_listener(l)))
            });
        if !split && !same_socket_udp {
            return Vec::new();
        }

        let mut evidence: Vec<EvidenceItem> = host_sockets
            .iter()
            .map(|l| {
                EvidenceItem::new(
                    "sockets",
                    format!("host socket {} held by {}", describe_listener(l), process_name(l)),
                )
            })
            .collect();
        let host = binding.host_ip.map_or("0.0.0.0 and ::".to_owned(), |ip| ip.to_string());
        evidence.push(EvidenceItem::new(
            "docker",
            format!(
                "container {container_name} publishes {host}:{} -> {}/{}",
                binding.host_port, binding.container_port, binding.proto
            ),
        ));
        for r in &dnat {
            evidence
                .push(EvidenceItem::new(r.backend.as_str(), format!("{}/{}: {}", r.table, r.chain, r.raw)));
        }
        if same_socket_udp {
            evidence.push(EvidenceItem::new(
                "sockets",
                "the host socket and docker-proxy are bound to overlapping UDP addresses at once: both set SO_REUSEADDR (Engine 28.x accepts this; 29.0.0 refuses it, moby#50669), and the kernel delivers each unicast datagram to the socket bound last (docker-proxy, unless the host process was restarted after the container)".to_owned(),
            ));
        }
        for (from, r) in &paths {
            evidence
                .push(EvidenceItem::new("traffic", format!("to {from} port {}: {}", q.port, r.describe())));
        }
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: if split {
                format!(
                    "port {}/{} is shared silently by {} and container {container_name}: who answers depends on the address the client uses",
                    q.port,
                    q.proto,
                    process_name(host_sockets[0])
                )
            } else {
                let host = process_name(host_sockets[0]);
                format!(
                    "port {}/{} is shared silently by {host} and container {container_name}: the container's socket, bound last, takes the datagrams, so {host} receives none",
                    q.port,
                    q.proto,
                )
            },
            evidence,
            confidence: Confidence::High,
            remedies: {
                let mut r = Vec::new();
                // Ending the host side leaves the port to the container, as the publish intended.
                let pids: Vec<u32> =
                    host_sockets.iter().flat_map(|l| l.owners.iter().map(|p| p.pid)).collect();
                if let Some(owner) = host_sockets.iter().flat_map(|l| l.owners.first()).next() {
                    r.push(Remedy::fix(
                        Risk::Disruptive,
                        Action::StopProcess { pids: dedup(pids), program: owner.program().to_owned() },
                        format!(
                            "ends {}: every address then reaches container {container_name}, and whatever {} serves goes down",
                            owner.program(),
                            owner.program()
                        ),
                    ));
                }
                r.push(Remedy::fix(
                    Risk::Disruptive,
                    Action::StopContainer { container: container.name.clone(), docker_host: None },
                    format!(
                        "stops {}: what it serves goes down, and the host process keeps the port alone",
                        container.name
                    ),
                ));
                r.push(remedy::other_port(q));
                r
            },
        }]
    }
}

fn dedup(mut pids: Vec<u32>) -> Vec<u32> {
    pids.sort_unstable();
    pids.dedup();
    pids
}
