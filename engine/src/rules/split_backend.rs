//! PW006 split-backend: Docker's rules live in one firewall backend, the `iptables` command in another.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{Backend, Family};
use crate::parse::error::Stage;
use crate::remedy::{self, Action, Remedy, Risk};

pub struct SplitBackend;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::SplitBackend,
    title: "Split firewall backend",
    what_it_detects: "Docker's chains (nat `DOCKER`) in iptables-legacy while the `iptables` alternative \
        points at iptables-nft, or the reverse, or Docker chains in both backends at once.",
    why_it_happens: "dockerd runs `/usr/sbin/iptables` for every change. When the alternative is switched \
        under a running daemon (distribution upgrade, WSL, a manual `update-alternatives`), the \
        daemon's next change goes to the other backend, where its chains do not exist: the publish \
        fails with `iptables failed: ... No chain/target/match by that name`, and the old rules stay \
        stranded in the first backend, still routing traffic.",
    example: "update-alternatives --set iptables /usr/sbin/iptables-legacy   # daemon started on nft\n\
        docker run -p 8080:80 nginx\n# ... (iptables failed: iptables --wait -t nat -A DOCKER ...: No chain/target/match by that name.",
    fix: "Point the alternative back at the backend that holds Docker's chains and restart dockerd so \
        it programs one backend only; remove the stranded chains from the other.",
};

impl Rule for SplitBackend {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(fw) = &cx.evidence.firewall else { return Vec::new() };
        let active = match fw.iptables_alternative.as_deref() {
            Some("legacy") => Some(Backend::IptablesLegacy),
            Some("nft") => Some(Backend::IptablesNft),
            _ => None,
        };
        let iptables_chains: Vec<Backend> =
            fw.docker_chains_in.iter().copied().filter(|b| *b != Backend::Nftables).collect();
        let both = iptables_chains.len() > 1;
        let elsewhere = match (active, iptables_chains.as_slice()) {
            (Some(a), [only]) if *only != a => Some(*only),
            _ => None,
        };
        let firewall_error = cx.error_stage() == Some(Stage::Firewall);
        if !both && elsewhere.is_none() {
            // The error alone points here, but without two backends in view it stays a suspicion.
            // Wiped chains explain the same text better when both backends agree.
            if firewall_error && !super::chains_missing::explains(cx) {
                return vec![Finding {
                    code: DOC.code,
                    cause: DOC.code.name().into(),
                    summary: "the daemon failed to program the firewall; Docker's chains are missing where `iptables` looks".to_owned(),
                    evidence: cx.error_evidence().into_iter().chain([
                        EvidenceItem::new(
                            "firewall",
                            format!(
                                "iptables points at {}; Docker chains found in: {}",
                                fw.iptables_alternative.as_deref().unwrap_or("unknown"),
                                list(&fw.docker_chains_in)
                            ),
                        ),
                    ]).collect(),
                    confidence: Confidence::Medium,
                    remedies: vec![remedy::restart_daemon(
                        cx.rootless(),
                        cx.live_restore(),
                        "creates its chains again in the backend `iptables` points at",
                    )],
                }];
            }
            return Vec::new();
        }
        let mut evidence = vec![EvidenceItem::new(
            "firewall",
            format!(
                "/usr/sbin/iptables points at iptables-{}",
                fw.iptables_alternative.as_deref().unwrap_or("unknown")
            ),
        )];
        evidence.push(EvidenceItem::new(
            "firewall",
            format!("Docker's nat chains exist in: {}", list(&iptables_chains)),
        ));
        if !fw.legacy_tables.is_empty() {
            evidence.push(EvidenceItem::new(
                "iptables-legacy",
                format!("/proc/net/ip_tables_names lists: {}", fw.legacy_tables.join(", ")),
            ));
        }
        evidence.extend(cx.error_evidence());
        let target = elsewhere.or(active).unwrap_or(Backend::IptablesNft);
        let summary = if both {
            format!(
                "Docker's rules exist in both iptables-legacy and iptables-nft; `iptables` shows only {}",
                active.map_or("one of them", |a| a.as_str())
            )
        } else {
            format!(
                "split firewall backend: Docker's rules are in {} but `iptables` points at {}",
                target.as_str(),
                active.map_or("another backend", |a| a.as_str())
            )
        };
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary,
            evidence,
            confidence: if firewall_error || elsewhere.is_some() { Confidence::High } else { Confidence::Medium },
            remedies: vec![
                Remedy::fix(
                    Risk::Disruptive,
                    Action::SetIptablesAlternative { backend: target },
                    format!(
                        "points `iptables` and `ip6tables` at {} where Docker's chains are, and restarts dockerd to reprogram them; {}",
                        target.as_str(),
                        remedy::live_restore_note(cx.live_restore())
                    ),
                ),
                Remedy::fix(
                    Risk::Destructive,
                    Action::FlushChain {
                        backend: other(target),
                        family: Family::Ipv4,
                        table: "nat".into(),
                        chain: "DOCKER".into(),
                    },
                    format!(
                        "empties the stranded copy of Docker's nat chain in {}: its rules still rewrite traffic to containers that may be gone, and nothing restores them",
                        other(target).as_str()
                    ),
                ),
            ],
        }]
    }
}

fn other(b: Backend) -> Backend {
    if b == Backend::IptablesLegacy {
        Backend::IptablesNft
    } else {
        Backend::IptablesLegacy
    }
}

fn list(backends: &[Backend]) -> String {
    if backends.is_empty() {
        "none".to_owned()
    } else {
        backends.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", ")
    }
}
