//! PW005 orphaned-dnat: a DNAT rule for the port points at an address no container owns.

use super::{stale_proxy::restart_daemon, Context, Rule, RuleDoc};
use crate::diagnosis::{Confidence, EvidenceItem, Finding, Remedy, Risk};
use crate::evidence::{Backend, NatRule};
use crate::remedy;

pub struct OrphanedDnat;

pub static DOC: RuleDoc = RuleDoc {
    code: "PW005",
    cause: "orphaned-dnat",
    title: "An orphaned DNAT rule misroutes the port",
    what_it_detects: "A DNAT rule in iptables-legacy, iptables-nft or native nftables that rewrites the \
        port to an address where no running container lives.",
    why_it_happens: "Docker adds a DNAT rule per published port and removes it with the container. A \
        daemon crash, a firewall reload or a hand-made rule can leave one behind. It does not make \
        the publish fail: on 20.10, 26 and 28 `docker run` succeeds and appends its own rule after \
        the orphan, so the first match wins and traffic to the host's address goes to the dead \
        target. (Seed 1, 000_6f5509e30c1bb32c.txt, says an orphaned rule makes Docker refuse the \
        bind; the engines we ran did not.) Restarting dockerd rebuilds the DOCKER chain, but an \
        orphan in PREROUTING survives.",
    example: "iptables -t nat -I DOCKER -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.99:80\n\
        docker run -d -p 8080:80 nginx      # succeeds\ncurl http://HOST_IP:8080  # times out",
    fix: "Delete the orphaned rule with the same backend that holds it (the command is printed), or \
        restart dockerd when the orphan sits in Docker's own chain.",
};

impl Rule for OrphanedDnat {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let docker_known = cx.evidence.docker.is_some();
        let mut findings = Vec::new();
        for rule in cx.evidence.nat_rules() {
            if rule.dport != q.port
                || rule.proto != q.proto
                || cx.running_container_at(rule.to_addr).is_some()
            {
                continue;
            }
            let mut evidence = vec![EvidenceItem::new(
                rule.backend.as_str(),
                format!(
                    "{} {}/{} rule{}: {}",
                    rule.table,
                    rule.chain,
                    match rule.family {
                        crate::evidence::Family::Ipv4 => "ipv4",
                        crate::evidence::Family::Ipv6 => "ipv6",
                    },
                    rule.position.map(|p| format!(" #{p}")).unwrap_or_default(),
                    rule.raw
                ),
            )];
            evidence.push(EvidenceItem::new(
                "docker",
                if docker_known {
                    format!("no running container has address {}", rule.to_addr)
                } else {
                    format!(
                        "the Docker API could not be read: cannot tell whether a container has {}",
                        rule.to_addr
                    )
                },
            ));
            // Which container's traffic this rule steals: Docker's own rule for the same port, later in the chain.
            let shadowed: Vec<String> = cx
                .evidence
                .nat_rules()
                .filter(|r| {
                    r.dport == rule.dport
                        && r.proto == rule.proto
                        && r.backend == rule.backend
                        && r.family == rule.family
                        && r.to_addr != rule.to_addr
                })
                .filter_map(|r| cx.running_container_at(r.to_addr).map(|c| (r, c)))
                .map(|(r, c)| format!("{} (rule to {}:{})", c.display(), r.to_addr, r.to_port))
                .collect();
            if !shadowed.is_empty() {
                evidence.push(EvidenceItem::new(
                    rule.backend.as_str(),
                    format!(
                        "the orphan matches first, so traffic meant for {} goes to {}",
                        shadowed.join(", "),
                        rule.to_addr
                    ),
                ));
            }
            let mut remedies = vec![Remedy::new(
                Risk::Destructive,
                delete_command(rule),
                format!(
                    "deletes the orphaned rule from {}; traffic to the port reaches Docker's own rule again",
                    rule.backend.as_str()
                ),
            )];
            if rule.chain == "DOCKER" && rule.backend != Backend::Nftables {
                remedies.push(restart_daemon());
            }
            remedies.push(remedy::other_port(q));
            findings.push(Finding {
                code: DOC.code.into(),
                cause: DOC.cause.into(),
                summary: format!(
                    "an orphaned DNAT rule in {} {}/{} sends port {}/{} to {}:{}, where no container runs: traffic is misrouted (this does not make a publish fail)",
                    rule.backend.as_str(),
                    rule.table,
                    rule.chain,
                    rule.dport,
                    rule.proto,
                    rule.to_addr,
                    rule.to_port
                ),
                evidence,
                confidence: if docker_known { Confidence::High } else { Confidence::Medium },
                remedies,
            });
        }
        findings
    }
}

/// The command that deletes exactly this rule with the tool that owns its backend.
pub fn delete_command(rule: &NatRule) -> String {
    let six = matches!(rule.family, crate::evidence::Family::Ipv6);
    match rule.backend {
        Backend::IptablesLegacy | Backend::IptablesNft => {
            let tool = match (rule.backend, six) {
                (Backend::IptablesLegacy, false) => "iptables-legacy",
                (Backend::IptablesLegacy, true) => "ip6tables-legacy",
                (_, false) => "iptables-nft",
                (_, true) => "ip6tables-nft",
            };
            // iptables-save prints `-A CHAIN spec`; the same spec after `-D` deletes that rule.
            match rule.raw.trim().strip_prefix("-A ") {
                Some(spec) => format!("{tool} -t {} -D {spec}", rule.table),
                None => format!("{tool} -t {} -D {} {}", rule.table, rule.chain, rule.position.unwrap_or(1)),
            }
        }
        Backend::Nftables => {
            let fam = if six { "ip6" } else { "ip" };
            // The nft parser ends `raw` with `# handle N`: the only stable way to name one rule.
            let handle = rule
                .raw
                .rsplit_once("# handle ")
                .and_then(|(_, h)| h.trim().parse::<usize>().ok())
                .or(rule.position);
            match handle {
                Some(handle) => {
                    format!("nft delete rule {fam} {} {} handle {handle}", rule.table, rule.chain)
                }
                None => format!(
                    "nft -a list chain {fam} {} {}  # then: nft delete rule ... handle N",
                    rule.table, rule.chain
                ),
            }
        }
    }
}
