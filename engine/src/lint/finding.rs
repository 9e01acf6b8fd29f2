//! What `portwhy lint` reports: findings with their places, and the report (`--json`, versioned).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::spec::PortSpan;
use crate::exit::ExitCode;
use crate::port::Proto;

/// Version of the JSON document `portwhy lint --json` prints. Bump on any incompatible change.
pub const LINT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not change the exit code.
    Info,
    /// May fail depending on start order or on the deploy environment.
    Warning,
    /// Will fail: one of the containers cannot start.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Where something was written: a file and, when the layout allows, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceLocation {
    pub file: String,
    pub line: Option<usize>,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One problem found in the merged compose model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LintFinding {
    /// Stable code, `PWL001`...; `lint::find_rule` documents it.
    pub code: String,
    /// Stable kebab-case name of the rule.
    pub name: String,
    pub severity: Severity,
    /// One or two sentences: what collides and what the engine will do about it.
    pub message: String,
    /// Every place that contributes, in the order the files declare them.
    pub locations: Vec<SourceLocation>,
    pub services: Vec<String>,
    /// The contested address as written (`None`: every address, as an entry without one asks).
    pub host_ip: Option<String>,
    pub ports: Option<PortSpan>,
    pub proto: Option<Proto>,
    /// What to change.
    pub fix: String,
}

/// The result of linting one compose project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LintReport {
    pub schema_version: u32,
    /// The files, in merge order.
    pub files: Vec<String>,
    /// Services after the merge.
    pub services: usize,
    /// Published host ports after the merge (one per container port; ephemeral ones included).
    pub publishes: usize,
    /// Most severe first.
    pub findings: Vec<LintFinding>,
}

impl LintReport {
    /// No conflict when clean (or only `info` findings), conflict found on any warning or error.
    pub fn exit_code(&self) -> ExitCode {
        if self.findings.iter().any(|f| f.severity >= Severity::Warning) {
            ExitCode::ConflictFound
        } else {
            ExitCode::NoConflict
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }
}

/// The plural `s` of a count in a message.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
