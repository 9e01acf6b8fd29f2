//! PW010 hairpin-isolation: with userland-proxy off, containers on other networks cannot reach the published port.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::remedy::{Action, Remedy, Risk};
use crate::version::EngineVersion;

/// The first Engine where the cross-network path through a published port works (measured on 29.x).
static FIRST_WITHOUT_DROP: std::sync::LazyLock<EngineVersion> =
    std::sync::LazyLock::new(|| EngineVersion::parse("29.0.0").expect("a valid version"));

pub struct Hairpin;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::HairpinIsolation,
    title: "Cross-network hairpin dropped (not a bind conflict)",
    what_it_detects: "A port published by a running container with no docker-proxy behind it \
        (userland-proxy off), while running containers sit on other bridge networks: those \
        containers cannot reach HOST_IP:PORT.",
    why_it_happens: "Without the proxy, a container's connection to the host's published port is \
        DNATed to the target container on another bridge, and DOCKER-ISOLATION drops traffic between \
        bridges. The guide \"Docker port binding: address already in use\" describes a container failing to reach its own \
        published port; that did not reproduce on Engine 20.10, 26 or 28. What does reproduce is \
        the cross-network case above. On Engine 29 (29.1.1, 29.1.2, 29.7.2; iptables-legacy, \
        iptables-nft and the nftables backend) the same client reaches HOST_IP:PORT: 29 accepts \
        DNATed traffic between bridges, so the rule stays silent from 29.0.0 on.",
    example: "dockerd --userland-proxy=false\ndocker network create a; docker network create b\n\
        docker run -d --network a -p 8080:80 nginx\n\
        docker run --network b busybox wget -qO- http://HOST_IP:8080   # hangs",
    fix: "Connect the client to the server's network (`docker network connect NET CLIENT`): measured \
        on 20.10, 26 and 28, the client then reaches HOST_IP:PORT and the server by name.",
};

impl Rule for Hairpin {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let Some(docker) = &cx.evidence.docker else { return Vec::new() };
        if EngineVersion::parse(&docker.version).is_ok_and(|v| v >= *FIRST_WITHOUT_DROP) {
            return Vec::new();
        }
        if cx.error.is_some_and(|e| e.stage != crate::parse::error::Stage::Unknown) {
            return Vec::new();
        }
        let Some((server, _)) =
            cx.containers_binding().find(|(c, _)| c.state.holds_ports() && !c.actual.is_empty())
        else {
            return Vec::new();
        };
        let proxied = docker.proxies.iter().any(|p| p.host_port == q.port && p.proto == q.proto);
        let dnat = cx.evidence.nat_rules().any(|r| r.dport == q.port && r.proto == q.proto);
        if proxied || !dnat {
            return Vec::new();
        }
        let server_nets: Vec<&String> = server.addresses.keys().collect();
        let others: Vec<(String, String)> = docker
            .containers
            .iter()
            .filter(|c| c.state.holds_ports() && c.id != server.id)
            .filter_map(|c| {
                let net = c.addresses.keys().find(|n| !server_nets.contains(n))?;
                (!c.addresses.keys().any(|n| server_nets.contains(&n))).then(|| (c.name.clone(), net.clone()))
            })
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let mut evidence = vec![
            EvidenceItem::new(
                "docker",
                format!(
                    "container {} publishes port {}/{} on network(s) {}",
                    server.display(),
                    q.port,
                    q.proto,
                    join(&server_nets)
                ),
            ),
            EvidenceItem::new(
                "process",
                format!("no docker-proxy serves port {}: userland-proxy is off", q.port),
            ),
        ];
        for (name, net) in &others {
            evidence.push(EvidenceItem::new("docker", format!("container {name} runs on network {net}: its traffic to HOST_IP:{} is dropped by DOCKER-ISOLATION", q.port)));
        }
        let server_net = server_nets.first().map(|s| s.as_str()).unwrap_or("bridge");
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: format!(
                "containers on other networks ({}) cannot reach port {} of {}: without userland-proxy, bridge isolation drops the hairpin",
                others.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", "),
                q.port,
                server.name
            ),
            evidence,
            confidence: Confidence::Medium,
            remedies: vec![
                Remedy::fix(
                    // Nothing stops; the client gains a route to one more network.
                    Risk::Safe,
                    Action::ConnectNetwork { network: server_net.to_owned(), container: others[0].0.clone() },
                    format!(
                        "puts {} on {}'s network as well: it reaches the published port through the host address again (and {} directly by name). Nothing stops, but the two networks are no longer isolated for that container",
                        others[0].0, server.name, server.name
                    ),
                ),
            ],
        }]
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}
