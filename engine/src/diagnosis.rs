//! The verdict: findings with evidence and ranked remedies. This is the `--json` contract.

use serde::{Deserialize, Serialize};

use crate::evidence::Unavailable;
use crate::parse::error::DaemonError;
use crate::port::PortQuery;

/// Version of the JSON document printed by `--json`. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

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
    pub code: String,
    /// Stable kebab-case cause name, e.g. `host-process`.
    pub cause: String,
    /// One line: who or what, and why it blocks (or misroutes).
    pub summary: String,
    /// The items that prove it, each naming its source.
    pub evidence: Vec<EvidenceItem>,
    pub confidence: Confidence,
    /// Lowest risk first.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Changes nothing that is running (pick another port, bind another address).
    Safe,
    /// Stops or restarts something (a service, a container, the daemon).
    Disruptive,
    /// Removes state that cannot be brought back by restarting (delete a container, a rule).
    Destructive,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Disruptive => "disruptive",
            Self::Destructive => "destructive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remedy {
    /// A shell command a user can run as is.
    pub command: String,
    /// What it does and what it costs.
    pub effect: String,
    pub risk: Risk,
}

impl Remedy {
    pub fn new(risk: Risk, command: impl Into<String>, effect: impl Into<String>) -> Self {
        Self { command: command.into(), effect: effect.into(), risk }
    }
}

impl Finding {
    /// True when this finding explains a conflict (everything but the no-conflict verdict and notes).
    pub fn is_conflict(&self) -> bool {
        self.code != crate::rules::NO_CONFLICT_CODE && self.confidence > Confidence::Low
    }
}
