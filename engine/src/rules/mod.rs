//! The rules: one file per cause, each a documented rule with a stable code and a pure check.
//!
//! A rule reads `Context` (evidence plus the classified error text) and returns findings. No I/O
//! here: everything a rule needs is in the evidence, so every rule runs the same on a live host
//! and on a replayed bundle.

use crate::diagnosis::{Diagnosis, Finding, SCHEMA_VERSION};
use crate::evidence::Evidence;
use crate::parse::error::DaemonError;

/// Code of the no-conflict verdict.
pub const NO_CONFLICT_CODE: &str = "PW000";

/// What a rule may look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub evidence: &'a Evidence,
    pub error: Option<&'a DaemonError>,
}

/// Fixed-heading documentation of a rule, printed by `portwhy explain CODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    pub code: &'static str,
    /// kebab-case cause, stable: it is the `cause` of every finding the rule emits.
    pub cause: &'static str,
    pub title: &'static str,
    pub what_it_detects: &'static str,
    pub why_it_happens: &'static str,
    pub example: &'static str,
    pub fix: &'static str,
}

/// A diagnosis rule.
pub trait Rule: Sync {
    fn doc(&self) -> &'static RuleDoc;
    fn check(&self, cx: &Context<'_>) -> Vec<Finding>;
}

/// Every rule, in code order. `no_conflict` must stay last: it reads what the others found.
pub fn all() -> &'static [&'static dyn Rule] {
    &[]
}

pub fn find(code: &str) -> Option<&'static dyn Rule> {
    all().iter().copied().find(|r| r.doc().code.eq_ignore_ascii_case(code) || r.doc().cause == code)
}

/// Run every rule and assemble the verdict.
pub fn diagnose(evidence: &Evidence, error: Option<&DaemonError>) -> Diagnosis {
    let cx = Context { evidence, error };
    let mut findings: Vec<Finding> = all().iter().flat_map(|r| r.check(&cx)).collect();
    // Highest confidence first; the rule order breaks ties so output is stable.
    findings.sort_by(|a, b| b.confidence.cmp(&a.confidence));
    for f in &mut findings {
        f.remedies.sort_by_key(|r| r.risk);
    }
    Diagnosis {
        schema_version: SCHEMA_VERSION,
        port: evidence.query.clone(),
        error: error.cloned(),
        findings,
        unavailable: evidence.unavailable.clone(),
        checked: checked(evidence),
    }
}

fn checked(evidence: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &evidence.sockets {
        out.push(format!(
            "{} listening sockets on port {} (all addresses, both families)",
            s.len(),
            evidence.query.port
        ));
    }
    if let Some(d) = &evidence.docker {
        out.push(format!(
            "{} containers on Docker Engine {} (created and stopped included)",
            d.containers.len(),
            d.version
        ));
    }
    if let Some(f) = &evidence.firewall {
        let read: Vec<&str> = f.backends_read.iter().map(|b| b.as_str()).collect();
        out.push(format!(
            "NAT rules in {}",
            if read.is_empty() { "no backend".to_owned() } else { read.join(", ") }
        ));
    }
    if evidence.host.is_some() {
        out.push("host: kernel, WSL, resolver, conntrack".to_owned());
    }
    out
}
