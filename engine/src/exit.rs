//! The documented exit codes of `portwhy`, and the one each verdict maps to.
//!
//! A verdict is data, not an error: "conflict found" has its own code, distinct from "could not
//! diagnose" (inconclusive) and "bad input". The README's exit-code table is this enum. Two
//! outcomes share code 0 but not a name, so a command says which one it means: `collect` and
//! `explain` succeed, a diagnosis finds no conflict.

use crate::diagnosis::Diagnosis;

/// What a run of `portwhy` ended with; [`ExitCode::code`] is the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: the command did what was asked (`collect` wrote a bundle, `explain` printed a rule,
    /// `signals` read every source).
    Success,
    /// 0: nothing stands in the way of the publish (lint: clean; suggest: the port is free).
    NoConflict,
    /// 1: a cause was found (lint: a warning or an error; suggest: the port is taken and a free
    /// one is printed).
    ConflictFound,
    /// 2: bad input: port syntax, empty or portless error text, an unreadable bundle or compose
    /// file, a wrong bundle schema version, bad arguments. Nothing was collected.
    BadInput,
    /// 3: no cause found, but some sources could not be read (Docker unreachable, not root).
    Inconclusive,
    /// 4: portwhy itself failed (a bug: please report it).
    Internal,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Success | Self::NoConflict => 0,
            Self::ConflictFound => 1,
            Self::BadInput => 2,
            Self::Inconclusive => 3,
            Self::Internal => 4,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        Self::from(code.code())
    }
}

impl Diagnosis {
    /// The exit code this verdict maps to: a conflict, else no conflict when every source was
    /// read, else inconclusive.
    pub fn exit_code(&self) -> ExitCode {
        if self.findings.iter().any(|f| f.is_conflict()) {
            ExitCode::ConflictFound
        } else if self.unavailable.is_empty() {
            ExitCode::NoConflict
        } else {
            ExitCode::Inconclusive
        }
    }
}
