//! The result of one matrix cell: what `results.json` holds and every reporter reads.

use std::collections::BTreeMap;

use portwhy::cause::CauseCode;
use portwhy::diagnosis::Diagnosis;
use portwhy::parse::error::Stage;
use portwhy::remedy::{ActionKind, Purpose, Risk};
use serde::{Deserialize, Serialize};

use crate::scenario::{
    Answerer, BackendName, Expectation, Prediction, SeedSource, TrafficSource, TriggerResult,
};

/// Version of the results.json document. Bump on any incompatible change.
/// 2: typed causes, every remedy tried with its outcome (`remedies`), and the evidence bundle
/// each cell's verdict was made from (`bundle`, `portwhy`).
pub const RESULTS_SCHEMA_VERSION: u32 = 2;

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
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every expectation held and the remedy was proven.
    Pass,
    /// The engine, `portwhy` or the remedy did something other than expected.
    Fail,
    /// The cell could not run (environment, injection or harness failure).
    Error,
    /// The engine is not on this machine (its tarball is absent); `failures` says how to get it.
    /// Never a pass: a run with such cells says so in every reporter.
    NotRun,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::NotRun => "not-run",
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

/// The daemon's text and the subject container handed to `portwhy diagnose` with the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnoseInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Where a tried remedy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemedySource {
    /// One of portwhy's remedies for the verdict's finding.
    Portwhy,
    /// A remedy a seed document recommends (the scenario's `claims`).
    Claim,
}

/// What trying a remedy showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrialOutcome {
    /// It ran, and the publish it aims at then worked with the probes to show it (for a check: it
    /// ran and exited 0).
    Proven,
    /// It ran, and the publish still failed or the traffic still went elsewhere.
    Failed,
    /// Not run; `why` says why (a lower-risk fix was proven first, it needs another OS, ...).
    NotTried,
}

impl TrialOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proven => "proven",
            Self::Failed => "failed",
            Self::NotTried => "not tried",
        }
    }
}

/// One remedy and what trying it in the environment showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemedyTrial {
    pub source: RemedySource,
    pub kind: ActionKind,
    pub purpose: Purpose,
    pub risk: Risk,
    /// The line a user copies, as portwhy (or the claim) rendered it.
    pub command: String,
    pub outcome: TrialOutcome,
    /// What the runner ran, step by step (the lab has no systemd: a service stop is a signal to its
    /// process, a daemon restart is the environment's own), then the re-trigger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ran: Vec<String>,
    /// Why it is proven or not: the re-trigger's exit code and error, the probes after it.
    pub why: String,
    /// The side effects a claim states, measured before and after its action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectObserved>,
}

/// A claim's side effect as measured: whether the name resolved before and after the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectObserved {
    pub lookup: String,
    pub before: bool,
    pub after: bool,
    /// What the lookup printed after the action (the address, or getent's exit code).
    pub detail: String,
}

/// What the cell observed, in the same terms as the expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub trigger: TriggerResult,
    /// `portwhy`'s classification of the error text.
    pub stage: Option<Stage>,
    /// `portwhy`'s verdict: its first conflict finding (its first finding when none is a conflict).
    pub cause: Option<CauseCode>,
    /// Codes of every finding, in order.
    #[serde(default)]
    pub findings: Vec<CauseCode>,
    pub traffic: Vec<TrafficObservation>,
}

/// One matrix cell, as results.json stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub scenario: String,
    pub title: String,
    pub seed: SeedSource,
    pub claim: String,
    /// The seed claim's prediction, when the scenario states one: the cell upholds or refutes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicts: Option<Prediction>,
    /// The inner engine's server version, e.g. `28.5.2`.
    pub engine: String,
    pub engine_name: String,
    pub backend: BackendName,
    pub options: CellOptions,
    pub trigger: TriggerRecord,
    /// `portwhy diagnose --json` output, when it ran and parsed: made from `bundle`.
    pub diagnosis: Option<Diagnosis>,
    /// The evidence bundle `portwhy collect` took in the environment after the trigger; the fast
    /// layer re-diagnoses it with today's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<serde_json::Value>,
    /// `portwhy --version` of the binary that collected and diagnosed (version and commit).
    #[serde(default)]
    pub portwhy: String,
    /// What `portwhy diagnose` was given beside the bundle, so a replay asks the same question.
    #[serde(default)]
    pub diagnose_input: DiagnoseInput,
    pub expected: Expectation,
    pub observed: Option<Observed>,
    /// Every remedy tried (workarounds, claims, fixes, checks) with its outcome.
    #[serde(default)]
    pub remedies: Vec<RemedyTrial>,
    pub status: Status,
    /// Every way the cell differed from the expectation, or why it could not run.
    pub failures: Vec<String>,
    /// From the cell's start until its result was known. The environment's teardown runs after
    /// that, beside the next cells; its time is `phases.teardown`.
    pub duration_ms: u64,
    /// Where the cell's time went, in ms per phase (absent in results recorded before phases were
    /// timed; those still load). A phase the cell never reached is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<Phase, u64>,
}

/// A timed step of a cell, in the order a cell runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The data-root volume created and the environment's container started.
    EnvStart,
    /// Backend and daemon.json set, dockerd started until it answered.
    DockerdReady,
    /// busybox imported into the inner engine.
    ImageImport,
    /// The binaries under test put in place (zero when they are bind-mounted).
    Binaries,
    /// The scenario's faults injected and checked.
    Faults,
    /// The trigger (and its `before` steps) run.
    Trigger,
    /// `portwhy collect` and `portwhy diagnose` inside the environment.
    Diagnose,
    /// The scenario's traffic probes, after waiting for the container to answer.
    Probes,
    /// Every remedy tried: its steps, the faults injected again, the re-trigger and its probes.
    Remedies,
    /// The environment removed with its volume.
    Teardown,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::EnvStart,
        Phase::DockerdReady,
        Phase::ImageImport,
        Phase::Binaries,
        Phase::Faults,
        Phase::Trigger,
        Phase::Diagnose,
        Phase::Probes,
        Phase::Remedies,
        Phase::Teardown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::EnvStart => "env-start",
            Phase::DockerdReady => "dockerd-ready",
            Phase::ImageImport => "image-import",
            Phase::Binaries => "binaries",
            Phase::Faults => "faults",
            Phase::Trigger => "trigger",
            Phase::Diagnose => "diagnose",
            Phase::Probes => "probes",
            Phase::Remedies => "remedies",
            Phase::Teardown => "teardown",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One phase summed over the cells that timed it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRow {
    pub phase: Phase,
    /// Cells that recorded this phase.
    pub cells: usize,
    pub total_ms: u64,
    /// The median over those cells (the upper one of an even count, as for cells).
    pub median_ms: u64,
    /// This phase's share of the time of every phase, 0.0 to 1.0.
    pub share: f64,
}

/// Where the run's cell time went, phase by phase in cell order; empty when no cell timed phases.
pub fn phase_breakdown(cells: &[CellResult]) -> Vec<PhaseRow> {
    let all: u64 = cells.iter().flat_map(|c| c.phases.values()).sum();
    Phase::ALL
        .iter()
        .filter_map(|&phase| {
            let mut times: Vec<u64> = cells.iter().filter_map(|c| c.phases.get(&phase).copied()).collect();
            if times.is_empty() {
                return None;
            }
            times.sort_unstable();
            let total_ms: u64 = times.iter().sum();
            Some(PhaseRow {
                phase,
                cells: times.len(),
                total_ms,
                median_ms: times[times.len() / 2],
                share: if all == 0 { 0.0 } else { total_ms as f64 / all as f64 },
            })
        })
        .collect()
}

impl CellResult {
    pub fn id(&self) -> CellId {
        CellId {
            scenario: self.scenario.clone(),
            engine_name: self.engine_name.clone(),
            backend: self.backend,
        }
    }

    /// The cause `portwhy` named first.
    pub fn observed_cause(&self) -> Option<CauseCode> {
        self.observed.as_ref().and_then(|o| o.cause)
    }

    /// The fix that was proven (portwhy's own, not a claim).
    pub fn proven_fix(&self) -> Option<&RemedyTrial> {
        self.remedies.iter().find(|r| {
            r.source == RemedySource::Portwhy
                && r.purpose == Purpose::Fix
                && r.outcome == TrialOutcome::Proven
        })
    }

    /// The verdict's code, or `-`.
    pub fn cause_text(&self) -> &'static str {
        self.observed_cause().map_or("-", |c| c.code())
    }

    /// One phrase for tables: which fix was proven, or that none was.
    pub fn remedy_text(&self) -> String {
        if self.remedies.is_empty() {
            return "-".to_owned();
        }
        match self.proven_fix() {
            Some(t) => format!("{} proven ({})", t.kind, t.risk.as_str()),
            None => "no fix proven".to_owned(),
        }
    }

    /// Whether the cell upholds its seed claim's prediction (`None`: no prediction, or not run).
    pub fn upholds_claim(&self) -> Option<bool> {
        let p = self.predicts?;
        let observed = self.observed.as_ref()?;
        Some(observed.trigger == p.trigger && p.cause.is_none_or(|c| observed.cause == Some(c)))
    }

    /// What the engine did, in the terms the matrix compares engines by: the publish, the cause,
    /// and who answered each probe.
    pub fn outcome_key(&self) -> Option<String> {
        let o = self.observed.as_ref()?;
        let answers: Vec<String> =
            o.traffic.iter().map(|t| format!("{}>{}", t.from.as_str(), t.answered.as_str())).collect();
        let trigger = if o.trigger == TriggerResult::Succeeds { "published" } else { "failed" };
        Some(format!("{trigger} {} {}", self.cause_text(), answers.join(",")))
    }

    /// The one-line verdict of the verdict's finding.
    pub fn verdict_line(&self) -> Option<&str> {
        self.diagnosis.as_ref().and_then(|d| d.verdict()).map(|f| f.summary.as_str())
    }
}

/// Median cell duration in ms, for the "targets measured" line.
/// The run's speed targets against what this run measured, one line for every reporter.
pub fn targets_line(cells: &[CellResult], wall_ms: u64) -> String {
    const MEDIAN_TARGET_MS: u64 = 2_500;
    const WALL_TARGET_MS: u64 = 300_000;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let median = median_ms(cells).unwrap_or(0);
    format!(
        "Targets: median cell <= 2.5 s: {} ({:.1} s); whole run <= 5 min warm on 2 cores: {} ({:.0} s for {} cells).",
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
