//! PW000 no-conflict: nothing holds or misroutes the port; says what was checked.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};

pub struct NoConflict;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::NoConflict,
    title: "No conflict found",
    what_it_detects: "No socket, container, proxy, NAT rule or firewall state stands in the way of \
        publishing the port. The verdict lists every source it read and every source it could not.",
    why_it_happens: "The port is free now. If a publish failed a moment ago, the holder may have gone, \
        or it lives where portwhy could not look (another network namespace, the host OS of Docker \
        Desktop, a source listed as unavailable).",
    example: "portwhy 8080\n# no conflict: 0 listening sockets, 3 containers, NAT rules in iptables-nft",
    fix: "Publish. If it still fails, run `portwhy diagnose 8080 --error \"<the daemon's text>\"` as root \
        right after the failure.",
};

/// Runs after the others: `diagnose` calls it with what they found.
pub fn verdict(cx: &Context<'_>, others: &[Finding]) -> Option<Finding> {
    if others.iter().any(Finding::is_conflict) {
        return None;
    }
    let q = cx.query();
    let mut evidence: Vec<EvidenceItem> =
        super::checked(cx.evidence).into_iter().map(|c| EvidenceItem::new("checked", c)).collect();
    for u in &cx.evidence.unavailable {
        evidence.push(EvidenceItem::new("unavailable", format!("{}: {}", u.source, u.reason)));
    }
    if let Some(e) = cx.error {
        evidence.push(EvidenceItem::new(
            "error-text",
            format!(
                "the daemon reported ({}): {} — but nothing holds the port now",
                e.stage.as_str(),
                e.text
            ),
        ));
    }
    let complete = cx.evidence.unavailable.is_empty();
    Some(Finding {
        code: DOC.code,
        cause: DOC.code.name().into(),
        summary: if complete {
            format!("no conflict found for {q}")
        } else {
            format!(
                "no conflict found for {q} in what could be read ({} source(s) unavailable)",
                cx.evidence.unavailable.len()
            )
        },
        evidence,
        confidence: if complete && cx.error.is_none() { Confidence::High } else { Confidence::Low },
        remedies: Vec::new(),
    })
}

impl Rule for NoConflict {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    /// The real work happens in `verdict`, which needs the other rules' findings.
    fn check(&self, _cx: &Context<'_>) -> Vec<Finding> {
        Vec::new()
    }
}
