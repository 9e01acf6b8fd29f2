//! PW005 orphaned-dnat: a DNAT rule for the port points at an address no container owns.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{Backend, NatRule};
use crate::remedy::{self, Action, Remedy, Risk, RuleRef};

pub struct OrphanedDnat;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::OrphanedDnat,
    title: "An orphaned DNAT rule misroutes the port",
    what_it_detects: "A DNAT rule in iptables-legacy, iptables-nft or native nftables that rewrites the \
        port to an address where no running container lives.",
    why_it_happens: "Docker adds a DNAT rule per published port and removes it with the container. A \
        daemon crash, a firewall reload or a hand-made rule can leave one behind. It does not make \
        the publish fail: on 20.10, 26 and 28 `docker run` succeeds and appends its own rule after \
        the orphan, so the first match wins and traffic to the host's address goes to the dead \
        target. (The guide \"Docker port binding: address already in use\" says an orphaned rule makes Docker refuse the \
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
                // Another daemon's container, reached through its own proxy (other-daemon).
                || super::other_daemon::serves_address(cx, rule.to_addr)
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
            let mut remedies = vec![Remedy::fix(
                // Nothing runs behind the target, so deleting the rule cannot cut anyone off.
                Risk::Safe,
                delete_action(rule),
                format!(
                    "deletes exactly this rule from {} (by its {}, which stays right when other rules move); traffic to the port reaches Docker's own rule again. Nothing running loses traffic: no container has {}",
                    rule.backend.as_str(),
                    if rule.backend == Backend::Nftables { "handle" } else { "full specification" },
                    rule.to_addr
                ),
            )];
            if rule.chain == "DOCKER" && rule.backend != Backend::Nftables {
                remedies.push(remedy::restart_daemon(
                    cx.rootless(),
                    cx.live_restore(),
                    "flushes and rebuilds its nat DOCKER chain, dropping the orphan with it",
                ));
            }
            if let Some(position) = rule.position {
                remedies.push(Remedy::fix(
                    Risk::Destructive,
                    Action::DeleteNatRule {
                        backend: rule.backend,
                        family: rule.family,
                        table: rule.table.clone(),
                        chain: rule.chain.clone(),
                        rule: RuleRef::Position(position),
                    },
                    format!(
                        "deletes rule #{position} of {}: right only while no rule before it comes or goes. Docker adds and removes rules as containers start and stop, so by the time this runs #{position} may be another container's rule",
                        rule.chain
                    ),
                ));
            }
            remedies.push(remedy::other_port(q));
            findings.push(Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
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

/// The action that deletes exactly this rule: by its nft handle, or by iptables-save's spec.
pub(crate) fn delete_action(rule: &NatRule) -> Action {
    let by = match rule.backend {
        // The nft parser ends `raw` with `# handle N`: the only stable way to name one rule.
        Backend::Nftables => rule
            .raw
            .rsplit_once("# handle ")
            .and_then(|(_, h)| h.trim().parse::<u64>().ok())
            .map(RuleRef::Handle),
        // iptables-save prints `-A CHAIN spec`; the same spec after `-D CHAIN` deletes that rule.
        _ => rule
            .raw
            .trim()
            .strip_prefix(&format!("-A {} ", rule.chain))
            .map(|spec| RuleRef::Spec(spec.to_owned())),
    };
    Action::DeleteNatRule {
        backend: rule.backend,
        family: rule.family,
        table: rule.table.clone(),
        chain: rule.chain.clone(),
        rule: by.unwrap_or(RuleRef::Position(rule.position.unwrap_or(1))),
    }
}
