//! The verdict: findings with evidence and ranked remedies. This is the `--json` contract.

use serde::{Deserialize, Serialize};

use crate::cause::CauseCode;
use crate::evidence::Unavailable;
use crate::parse::error::DaemonError;
use crate::port::PortQuery;
use crate::remedy::Remedy;

/// Version of the JSON document printed by `--json`. Bump on any incompatible change.
/// 2: `code` is one of the typed cause codes and every remedy carries its typed `action` and
/// `purpose` beside the rendered `command`.
pub const SCHEMA_VERSION: u32 = 2;

/// What `portwhy ... --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub schema_version: u32,
    pub port: PortQuery,
    /// The classified daemon error text, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DaemonError>,
    /// Causes found, most likely first. A no-conflict verdict is a finding too (`PW000`).
    pub findings: Vec<Finding>,
    /// Sources that could not be read; the verdict could not see what they hold.
    pub unavailable: Vec<Unavailable>,
    /// What was looked at, so "no conflict" says what it ruled out.
    #[serde(default)]
    pub checked: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule code, e.g. `PW001`; `portwhy explain PW001` documents it.
    pub code: CauseCode,
    /// Stable kebab-case cause name, e.g. `host-process`.
    pub cause: String,
    /// One line: who or what, and why it blocks (or misroutes).
    pub summary: String,
    /// The items that prove it, each naming its source.
    pub evidence: Vec<EvidenceItem>,
    pub confidence: Confidence,
    /// Fixes first, then workarounds, then checks; lowest risk first within each.
    pub remedies: Vec<Remedy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// `sockets`, `process`, `docker`, `iptables-legacy`, `iptables-nft`, `nftables`, `error-text`, `host`.
    pub source: String,
    pub detail: String,
}

impl EvidenceItem {
    pub fn new(source: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { source: source.into(), detail: detail.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Finding {
    /// A finding of `code`; `cause` is the code's stable name.
    pub fn new(
        code: CauseCode,
        summary: impl Into<String>,
        evidence: Vec<EvidenceItem>,
        confidence: Confidence,
        remedies: Vec<Remedy>,
    ) -> Self {
        Self { code, cause: code.name().to_owned(), summary: summary.into(), evidence, confidence, remedies }
    }

    /// True when this finding explains a conflict (everything but notes and low-confidence hints).
    pub fn is_conflict(&self) -> bool {
        !self.code.is_note() && self.confidence > Confidence::Low
    }

    /// The remedies that remove the cause, lowest risk first.
    pub fn fixes(&self) -> impl Iterator<Item = &Remedy> {
        self.remedies.iter().filter(|r| r.purpose == crate::remedy::Purpose::Fix)
    }
}

impl Diagnosis {
    /// The verdict: the first finding that explains a conflict, else the first note.
    pub fn verdict(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.is_conflict()).or_else(|| self.findings.first())
    }
}
