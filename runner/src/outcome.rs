//! The result of one matrix cell: what `results.json` holds and every reporter reads.

use portwhy::diagnosis::{Diagnosis, Risk};
use portwhy::parse::error::Stage;
use serde::{Deserialize, Serialize};

use crate::scenario::{Answerer, BackendName, Cause, Expectation, SeedSource, TrafficSource, TriggerResult};

/// Version of the results.json document. Bump on any incompatible change.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// The whole results.json file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub run_id: String,
    /// Wall time of the whole run.
    pub wall_ms: u64,
    pub cells: Vec<CellResult>,
}

/// Which cell: scenario x engine x backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellId {
    pub scenario: String,
    /// Engine name in engines.toml (`bookworm`, `trixie`, `sid`).
    pub engine_name: String,
    pub backend: BackendName,
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.scenario, self.engine_name, self.backend)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation held and the remedy was proven.
    Pass,
    /// The engine, `portwhy` or the remedy did something other than expected.
    Fail,
    /// The cell could not run (environment, injection or harness failure).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellOptions {
    pub userland_proxy: bool,
    pub rootless: bool,
    pub ipv6: bool,
}

/// The trigger as it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRecord {
    pub command: String,
    pub exit_code: i64,
    /// The daemon's text (stderr), empty when it succeeded.
    pub error: String,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficObservation {
    pub from: TrafficSource,
    pub expected: Answerer,
    pub answered: Answerer,
    /// The reply line, or why nothing answered.
    pub reply: String,
}

/// The remedy that was applied and whether the port then worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemedyRecord {
    /// As `portwhy` proposed it.
    pub command: String,
    pub risk: Risk,
    /// What the runner ran after filling placeholders (may differ from `command`).
    pub applied: String,
    pub verified: bool,
    /// Why it is (not) verified: the re-trigger's exit code and error, the probes after it.
    pub detail: String,
}

/// What the cell observed, in the same terms as the expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub trigger: TriggerResult,
    /// `portwhy`'s classification of the error text.
    pub stage: Option<Stage>,
    /// Code of `portwhy`'s first conflict finding (its first finding when none is a conflict).
    pub cause: Option<String>,
    /// Codes of every finding, in order.
    #[serde(default)]
    pub findings: Vec<String>,
    pub traffic: Vec<TrafficObservation>,
}

/// One matrix cell, as results.json stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub scenario: String,
    pub title: String,
    pub seed: SeedSource,
    pub claim: String,
    /// The inner engine's server version, e.g. `28.5.2`.
    pub engine: String,
    pub engine_name: String,
    pub backend: BackendName,
    pub options: CellOptions,
    pub trigger: TriggerRecord,
    /// `portwhy diagnose --json` output, when it ran and parsed.
    pub diagnosis: Option<Diagnosis>,
    pub expected: Expectation,
    pub observed: Option<Observed>,
    pub remedy: Option<RemedyRecord>,
    pub status: Status,
    /// Every way the cell differed from the expectation, or why it could not run.
    pub failures: Vec<String>,
    pub duration_ms: u64,
}

impl CellResult {
    pub fn id(&self) -> CellId {
        CellId {
            scenario: self.scenario.clone(),
            engine_name: self.engine_name.clone(),
            backend: self.backend,
        }
    }

    /// The cause `portwhy` named first, typed.
    pub fn observed_cause(&self) -> Option<Cause> {
        self.observed.as_ref().and_then(|o| o.cause.as_deref()).and_then(Cause::from_code)
    }

    /// The one-line verdict of the first finding.
    pub fn verdict_line(&self) -> Option<&str> {
        self.diagnosis.as_ref().and_then(|d| d.findings.first()).map(|f| f.summary.as_str())
    }
}

/// Median cell duration in ms, for the "targets measured" line.
/// The run's speed targets against what this run measured, one line for every reporter.
pub fn targets_line(cells: &[CellResult], wall_ms: u64) -> String {
    const MEDIAN_TARGET_MS: u64 = 5_000;
    const WALL_TARGET_MS: u64 = 300_000;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let median = median_ms(cells).unwrap_or(0);
    format!(
        "Targets: median cell <= 5 s: {} ({:.1} s); whole run <= 5 min warm on 2 cores: {} ({:.0} s for {} cells).",
        verdict(median <= MEDIAN_TARGET_MS),
        median as f64 / 1000.0,
        verdict(wall_ms <= WALL_TARGET_MS),
        wall_ms as f64 / 1000.0,
        cells.len()
    )
}

pub fn median_ms(cells: &[CellResult]) -> Option<u64> {
    let mut d: Vec<u64> = cells.iter().map(|c| c.duration_ms).collect();
    d.sort_unstable();
    d.get(d.len() / 2).copied()
}
