//! PW016 chains-missing: a firewall reload or flush wiped the chains and rules Docker programmed.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{Backend, FirewallState};
use crate::parse::error::{FirewallErrorKind, Stage};
use crate::remedy;

pub struct ChainsMissing;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::ChainsMissing,
    title: "A firewall reload wiped Docker's chains",
    what_it_detects: "Containers publish ports but the firewall backend Docker programs holds no \
        `DOCKER` chain, or no DNAT rule for their ports; or the daemon's text says the chain it \
        appends to is gone (`iptables: No chain/target/match by that name.`, `Chain 'DOCKER' does \
        not exist`) while both iptables backends agree (no split backend).",
    why_it_happens: "dockerd creates its chains once, at start, and adds one rule per published port \
        as containers start. Anything that rewrites the whole ruleset afterwards takes them away: \
        `firewall-cmd --reload` (unless dockerd saw firewalld when it started), `nft flush \
        ruleset`, `iptables -t nat -F` / `-X`, `iptables-restore` of a saved file, a distribution's \
        firewall service starting after Docker. Running containers lose their NAT rules (traffic \
        from other hosts reaches them only through docker-proxy, if at all), and the next publish \
        fails because the chain it appends to no longer exists.",
    example: "iptables -t nat -F && iptables -t nat -X\ndocker run -p 8080:80 nginx\n\
        # ... (iptables failed: iptables --wait -t nat -A DOCKER -p tcp -d 0/0 --dport 8080 -j DNAT \
        --to-destination 172.17.0.3:80 ! -i docker0: iptables: No chain/target/match by that name.",
    fix: "Restart the daemon (`systemctl restart docker`): it creates its chains again and \
        re-programs the rules of the containers it starts. Without live-restore every running \
        container stops and only those with a restart policy come back. To keep it from recurring, \
        start dockerd after the firewall service, or have the firewall tool keep Docker's chains \
        (firewalld's `docker` zone; no `flush ruleset` in nftables.conf).",
};

/// Whether the firewall evidence shows Docker's rules split across two iptables backends (the
/// split-backend explanation of the same error text).
pub fn split_evidence(fw: &FirewallState) -> bool {
    let active = match fw.iptables_alternative.as_deref() {
        Some("legacy") => Some(Backend::IptablesLegacy),
        Some("nft") => Some(Backend::IptablesNft),
        _ => None,
    };
    let iptables: Vec<Backend> =
        fw.docker_chains_in.iter().copied().filter(|b| *b != Backend::Nftables).collect();
    iptables.len() > 1 || matches!((active, iptables.as_slice()), (Some(a), [only]) if *only != a)
}

/// The backend Docker writes to: native nftables when the engine says so (28.1 on), else the one
/// `/usr/sbin/iptables` points at (dockerd runs that command).
fn docker_backend(cx: &Context<'_>, fw: &FirewallState) -> Option<Backend> {
    if cx.evidence.docker.as_ref().and_then(|d| d.firewall_backend.as_deref()) == Some("nftables") {
        return Some(Backend::Nftables);
    }
    match fw.iptables_alternative.as_deref() {
        Some("legacy") => Some(Backend::IptablesLegacy),
        Some("nft") => Some(Backend::IptablesNft),
        _ => None,
    }
}

impl Rule for ChainsMissing {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        // A rootless engine's rules live in rootlesskit's namespace, and Docker Desktop's in its
        // VM: the host's tables say nothing about them.
        if cx.rootless()
            || cx.evidence.docker.as_ref().is_some_and(|d| d.operating_system.contains("Docker Desktop"))
        {
            return Vec::new();
        }
        // A daemon told not to touch the firewall has no chains by design.
        let ours = cx.evidence.daemons.as_ref().and_then(|d| {
            let pid = d.ours?;
            d.processes.iter().find(|p| p.pid == pid)
        });
        if ours.is_some_and(|d| d.cmdline.split_whitespace().any(|a| a == "--iptables=false")) {
            return Vec::new();
        }
        let fw = cx.evidence.firewall.as_ref();
        if fw.is_some_and(split_evidence) {
            return Vec::new();
        }
        let said_missing = cx
            .error
            .filter(|e| e.stage == Stage::Firewall)
            .and_then(|e| e.firewall_error.as_ref())
            .filter(|f| f.kind == FirewallErrorKind::ChainMissing);
        let q = cx.query();
        let mut evidence: Vec<EvidenceItem> = Vec::new();
        let mut seen_gone = false;
        let mut backend_name = "the firewall".to_owned();
        if let Some((fw, backend)) = fw.and_then(|fw| Some((fw, docker_backend(cx, fw)?))) {
            if fw.backends_read.contains(&backend) {
                backend_name = backend.as_str().to_owned();
                let dnat =
                    fw.docker_dnat_count.iter().filter(|(b, _)| *b == backend).map(|(_, n)| n).sum::<usize>();
                let chains = fw.docker_chains_in.contains(&backend);
                let mut published: Vec<String> = cx
                    .evidence
                    .containers()
                    .iter()
                    .filter(|c| c.state.holds_ports() && c.network_mode != "host")
                    .flat_map(|c| {
                        c.actual
                            .iter()
                            .filter(|b| b.host_port != 0)
                            .map(move |b| format!("{} publishes {}/{}", c.name, b.host_port, b.proto))
                    })
                    .collect();
                // Both families of one publish are one binding each; say each port once.
                published.dedup();
                let port_published = cx
                    .containers_binding()
                    .any(|(c, b)| c.state.holds_ports() && !c.actual.is_empty() && b.host_port == q.port);
                let port_dnat = fw.nat_rules.iter().any(|r| r.dport == q.port && r.proto == q.proto);
                if !chains {
                    evidence.push(EvidenceItem::new(
                        backend.as_str(),
                        format!(
                            "no Docker chain (nat DOCKER, or a docker-bridges table) in {}",
                            backend.as_str()
                        ),
                    ));
                } else if dnat == 0 && !published.is_empty() {
                    evidence.push(EvidenceItem::new(
                        backend.as_str(),
                        format!("Docker's chains are in {} but hold no DNAT rule", backend.as_str()),
                    ));
                } else if port_published && !port_dnat {
                    evidence.push(EvidenceItem::new(
                        backend.as_str(),
                        format!("no DNAT rule for port {}/{} in any backend", q.port, q.proto),
                    ));
                }
                // Chains that are gone matter only when Docker should have put something there:
                // a running publisher, or the daemon itself failing to append.
                let expected = !published.is_empty() || said_missing.is_some();
                seen_gone = !evidence.is_empty() && expected;
                if seen_gone && !published.is_empty() {
                    let shown: Vec<&str> = published.iter().take(5).map(String::as_str).collect();
                    evidence.push(EvidenceItem::new(
                        "docker",
                        format!(
                            "{} published port(s) of running containers, e.g. {}",
                            published.len(),
                            shown.join(", ")
                        ),
                    ));
                } else if !seen_gone {
                    evidence.clear();
                }
            }
        }
        if !seen_gone && said_missing.is_none() {
            return Vec::new();
        }
        evidence.extend(cx.error_evidence());
        // Both together are certain. The daemon's words alone could be a split backend the
        // evidence does not show; the rules gone with nothing failed yet could be a daemon run with
        // `--iptables=false`, which has none by design.
        let confidence =
            if seen_gone && said_missing.is_some() { Confidence::High } else { Confidence::Medium };
        let summary = match said_missing.and_then(|f| f.chain.as_deref()) {
            Some(chain) => format!(
                "the {chain} chain Docker appends to is gone from {backend_name}: a firewall reload or flush wiped Docker's chains after the daemon started"
            ),
            None => format!(
                "Docker's chains or rules are gone from {backend_name} while containers publish ports: a firewall reload or flush wiped them after the daemon started"
            ),
        };
        vec![Finding::new(
            DOC.code,
            summary,
            evidence,
            confidence,
            // No workaround: another port needs the same missing chain.
            vec![remedy::restart_daemon(
                cx.rootless(),
                cx.live_restore(),
                "creates its chains again and re-programs the rules of the containers it runs",
            )],
        )]
    }
}

/// Whether the daemon's chain-missing text is explained by wiped chains rather than a split backend.
pub fn explains(cx: &Context<'_>) -> bool {
    !ChainsMissing.check(cx).is_empty()
}
