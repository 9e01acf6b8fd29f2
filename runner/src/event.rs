//! The event stream of a run: cells emit events on one channel, every reporter consumes them.

use portwhy::cause::CauseCode;

use crate::outcome::{CellId, CellResult, Phase, TrialOutcome};

/// Something that happened in a cell. Reporters see them in the order the cell emitted them;
/// cells running in parallel interleave.
#[derive(Debug, Clone)]
pub enum Event {
    /// A run begins: how many cells it has.
    RunStarted {
        total: usize,
        run_id: String,
    },
    Started {
        cell: CellId,
    },
    EnvReady {
        cell: CellId,
        engine_version: String,
        ms: u64,
    },
    FaultInjected {
        cell: CellId,
        kind: String,
    },
    Triggered {
        cell: CellId,
        exit_code: i64,
        error: String,
    },
    Diagnosed {
        cell: CellId,
        cause: Option<CauseCode>,
    },
    /// One remedy was tried (or skipped).
    Remedied {
        cell: CellId,
        command: String,
        outcome: TrialOutcome,
    },
    /// A phase of a cell ended, and how long it took (a phase entered twice reports twice).
    PhaseDone {
        cell: CellId,
        phase: Phase,
        ms: u64,
    },
    Finished {
        result: Box<CellResult>,
    },
    /// Free-form progress (image builds), shown on a terminal, ignored by file reporters.
    Progress {
        message: String,
    },
}

impl Event {
    /// The cell this event belongs to, if any.
    pub fn cell(&self) -> Option<&CellId> {
        match self {
            Self::Started { cell }
            | Self::EnvReady { cell, .. }
            | Self::FaultInjected { cell, .. }
            | Self::Triggered { cell, .. }
            | Self::Diagnosed { cell, .. }
            | Self::Remedied { cell, .. }
            | Self::PhaseDone { cell, .. } => Some(cell),
            Self::Finished { .. } | Self::RunStarted { .. } | Self::Progress { .. } => None,
        }
    }

    /// One line for logs and the progress bar.
    pub fn describe(&self) -> String {
        match self {
            Self::RunStarted { total, run_id } => format!("run {run_id}: {total} cells"),
            Self::Started { cell } => format!("{cell}: starting environment"),
            Self::EnvReady { cell, engine_version, ms } => {
                format!("{cell}: Engine {engine_version} ready in {ms} ms")
            }
            Self::FaultInjected { cell, kind } => format!("{cell}: injected {kind}"),
            Self::Triggered { cell, exit_code, .. } => format!("{cell}: trigger exited {exit_code}"),
            Self::Diagnosed { cell, cause } => {
                format!("{cell}: portwhy says {}", cause.map_or("nothing", |c| c.code()))
            }
            Self::Remedied { cell, command, outcome } => {
                format!("{cell}: remedy `{command}` {}", outcome.as_str())
            }
            Self::PhaseDone { cell, phase, ms } => format!("{cell}: {phase} took {ms} ms"),
            Self::Finished { result } => {
                format!("{}: {} in {} ms", result.id(), result.status.as_str(), result.duration_ms)
            }
            Self::Progress { message } => message.clone(),
        }
    }
}
