//! Scenario files: the versioned TOML schema, the loader and the validation rules.
//!
//! A scenario is data: which faults to inject, what to run, which port to ask `portwhy` about and
//! what real engines do. Expectations are enums so the comparison in `verdict.rs` is an exhaustive
//! `match`, never a substring check. A broken file is a `ScenarioError` naming the file, the line
//! and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use portwhy::cause::CauseCode;
use portwhy::parse::error::Stage;
use portwhy::port::{PortQuery, Proto};
use portwhy::remedy::{Action, ActionKind};
use portwhy::version::EngineVersion;
use serde::{Deserialize, Serialize};

pub use crate::compose::{ComposeBefore, ComposeTrigger};

/// A harness fault, typed as the harness declares it (`kind` picks the fault, the other keys are
/// its fields): a misspelt kind or field is a load error at its line.
pub use portwhy_harness::Fault;

/// The only schema version this runner reads. Bump on any incompatible change of the file format.
pub const SCHEMA_VERSION: u32 = 1;

/// One scenario file, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub schema_version: u32,
    /// Kebab-case id; must equal the file stem so `--scenario NAME` finds the file.
    pub name: String,
    pub title: String,
    pub seed_claim: SeedClaim,
    /// Faults injected in order before the trigger.
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub environment: EnvironmentSpec,
    pub trigger: Trigger,
    /// The query handed to `portwhy diagnose` (`8080`, `127.0.0.1:8080`, `53/udp`).
    #[serde(with = "query_text")]
    pub port: PortQuery,
    /// When `portwhy` looks: after the trigger (default) or before it, for controls where the trigger
    /// itself would become the holder.
    #[serde(default)]
    pub diagnose: DiagnoseWhen,
    pub expect: ExpectSpec,
}

/// The seed's claim this scenario tests, restated in our own words.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClaim {
    pub source: SeedSource,
    /// Short restatement; never the seed's own sentences.
    pub claim: String,
    /// What the claim says the engine does, so each cell upholds or refutes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicts: Option<Prediction>,
}

/// A claim's prediction for the trigger: whether the publish fails and, optionally, the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    pub trigger: TriggerResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<CauseCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedSource {
    /// "Docker port binding: address already in use", the guide to Docker bind errors.
    #[serde(rename = "seed 1")]
    Seed1,
    /// "Understanding Port Sharing and SO_REUSEADDR in Docker".
    #[serde(rename = "seed 2")]
    Seed2,
    /// No seed claims this; the project adds it (controls, measured engine behaviour).
    #[serde(rename = "portwhy")]
    Project,
}

impl SeedSource {
    /// The document's title, as reports cite it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Seed1 => "Docker port binding: address already in use",
            Self::Seed2 => "Understanding Port Sharing and SO_REUSEADDR in Docker",
            Self::Project => "-",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Seed1 => "seed 1",
            Self::Seed2 => "seed 2",
            Self::Project => "portwhy",
        }
    }
}

/// Which environments the scenario runs in; the matrix is engines x backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[serde(default = "all_backends")]
    pub backends: Vec<BackendName>,
    #[serde(default = "yes")]
    pub userland_proxy: bool,
    #[serde(default)]
    pub rootless: bool,
    /// Re-enable IPv6 on lo/eth0 (needed for `::1` traffic and v6-only listeners).
    #[serde(default)]
    pub ipv6: bool,
    /// daemon.json `live-restore`: containers keep running while dockerd restarts.
    #[serde(default)]
    pub live_restore: bool,
    /// Engine names from engines.toml (`bookworm`) or version prefixes (`28`, `20.10`); empty = all.
    #[serde(default)]
    pub engines: Vec<String>,
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        Self {
            backends: all_backends(),
            userland_proxy: true,
            rootless: false,
            ipv6: false,
            live_restore: false,
            engines: vec![],
        }
    }
}

/// Every backend; `nftables` runs only on engines that have it (matrix::plan leaves the others out).
fn all_backends() -> Vec<BackendName> {
    vec![BackendName::Legacy, BackendName::Nft, BackendName::Nftables]
}

fn yes() -> bool {
    true
}

/// The `iptables` alternative selected before dockerd starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    /// dockerd writes through `iptables`, which points at iptables-legacy.
    Legacy,
    /// dockerd writes through `iptables`, which points at iptables-nft.
    Nft,
    /// `firewall-backend: nftables` (Engine 29.0+): tables `ip docker-bridges`/`ip6 docker-bridges`.
    Nftables,
}

impl BackendName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Nft => "nft",
            Self::Nftables => "nftables",
        }
    }

    /// Whether an engine of this version has the backend.
    pub fn applies_to(self, engine_version: &str) -> bool {
        match self {
            Self::Legacy | Self::Nft => true,
            Self::Nftables => match (
                EngineVersion::parse(engine_version),
                EngineVersion::parse(portwhy_harness::FirewallMode::NFTABLES_SINCE),
            ) {
                (Ok(v), Ok(since)) => v >= since,
                _ => false,
            },
        }
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackendName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(Self::Legacy),
            "nft" => Ok(Self::Nft),
            "nftables" => Ok(Self::Nftables),
            other => Err(format!("unknown backend `{other}`: use legacy, nft or nftables")),
        }
    }
}

/// What the scenario runs to publish the port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Done after the faults, before the trigger (e.g. bring a killed daemon back, as systemd would).
    #[serde(default)]
    pub before: Vec<BeforeStep>,
    /// Full argv, starting with `docker run`; must name the container (`--name`) and detach (`-d`).
    /// `{host_ip}` stands for the environment's own address. Empty when `compose` is the trigger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<String>,
    /// `docker compose -p PROJECT -f FILE... up -d ARGS` instead of `docker run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeTrigger>,
}

/// A step the runner takes between the faults and the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BeforeStep {
    /// Start dockerd again (stopping it first if it runs), and wait until it answers.
    RestartDockerd,
}

impl Trigger {
    /// The `--name` value (validated to exist).
    pub fn container_name(&self) -> Option<&str> {
        let mut it = self.run.iter();
        while let Some(a) = it.next() {
            if a == "--name" {
                return it.next().map(String::as_str);
            }
            if let Some(v) = a.strip_prefix("--name=") {
                return Some(v);
            }
        }
        None
    }

    /// Every `-p`/`--publish` value, in order.
    pub fn publishes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut it = self.run.iter();
        while let Some(a) = it.next() {
            if a == "-p" || a == "--publish" {
                if let Some(v) = it.next() {
                    out.push(v.as_str());
                }
            } else if let Some(v) = a.strip_prefix("--publish=") {
                out.push(v);
            }
        }
        out
    }

    /// The text shown in reports and attached to snapshots (compose: as v2 spells it).
    pub fn display(&self) -> String {
        match &self.compose {
            Some(c) => crate::compose::ComposeRun::display(c),
            None => self.run.join(" "),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnoseWhen {
    #[default]
    AfterTrigger,
    BeforeTrigger,
}

/// The expectation as written: a base plus per-engine overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    pub trigger: TriggerResult,
    /// Required when the trigger fails; forbidden when it succeeds.
    #[serde(default)]
    pub stage: Option<Stage>,
    pub cause: CauseCode,
    /// Causes that must also appear among the findings (notes such as PW011 beside PW000).
    #[serde(default)]
    pub also: Vec<CauseCode>,
    /// For silent cases: who answers on the port, from where.
    #[serde(default)]
    pub traffic: Vec<TrafficCheck>,
    /// The remedy that must be proven: the lowest-risk fix portwhy proposes that removes the cause,
    /// run in the environment, then the same publish on the same port works. Required unless the
    /// cause is a note (PW000, PW011).
    #[serde(default)]
    pub remedy: Option<ActionKind>,
    /// Remedies a document claims would work, tried first as the user would run them: each states
    /// whether it removes the cause, as measured.
    #[serde(default)]
    pub claims: Vec<RemedyClaim>,
    /// Keyed by engine name or version prefix (`"28"`, `"20.10"`, `"sid"`): fields replace the base.
    #[serde(default)]
    pub engine: BTreeMap<String, ExpectOverride>,
    /// Keyed by backend (`nftables`): fields replace the base and the engine's override. Only for
    /// what one backend does differently on every engine that has it.
    #[serde(default)]
    pub backend: BTreeMap<BackendName, ExpectOverride>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectOverride {
    pub trigger: Option<TriggerResult>,
    pub stage: Option<Stage>,
    pub cause: Option<CauseCode>,
    pub also: Option<Vec<CauseCode>>,
    pub traffic: Option<Vec<TrafficCheck>>,
    pub remedy: Option<ActionKind>,
    pub claims: Option<Vec<RemedyClaim>>,
    /// Why this engine differs (a moby issue, a measured change); shown in reports.
    pub note: Option<String>,
}

impl ExpectOverride {
    /// `self`'s fields, falling back to `under`'s.
    fn over(self, under: ExpectOverride) -> ExpectOverride {
        let trigger_set = self.trigger.is_some();
        ExpectOverride {
            trigger: self.trigger.or(under.trigger),
            // A trigger flipped here must not inherit the stage beneath it.
            stage: if trigger_set { self.stage } else { self.stage.or(under.stage) },
            cause: self.cause.or(under.cause),
            also: self.also.or(under.also),
            traffic: self.traffic.or(under.traffic),
            remedy: self.remedy.or(under.remedy),
            claims: self.claims.or(under.claims),
            note: self.note.or(under.note),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerResult {
    Fails,
    Succeeds,
}

/// A remedy a seed document recommends, tested as a claim: the action as the user would run it, and
/// whether it removes the cause on this engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemedyClaim {
    pub action: Action,
    /// What was measured: true when, after it, the same publish works with the traffic probes.
    pub removes_cause: bool,
    /// The backends this measurement is for; empty = every backend the scenario runs on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendName>,
    /// Faults injected just before the action runs: what changes on a host between the user
    /// reading what the claim tells them to read and running the command (another tool inserting a
    /// rule ahead of the one they meant). Undone after the trial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meanwhile: Vec<Fault>,
    /// What else the action changes on the host, measured before and after it: a name that resolves
    /// before the action and, as measured, does or does not after it (the claim that stopping
    /// systemd-resolved breaks local DNS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<EffectCheck>,
    /// The claim in our own words and what the measurement showed.
    pub note: String,
}

/// A side effect of a claim's action: `lookup` is a name resolved the way the host's programs
/// resolve names (`getent ahosts NAME`: nsswitch, then the servers in /etc/resolv.conf); it must
/// resolve before the action, and `works` says whether it still does after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectCheck {
    pub lookup: String,
    pub works: bool,
}

/// The expected outcome of the trigger, stage included only when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "lowercase")]
pub enum ExpectedTrigger {
    Fails { stage: Stage },
    Succeeds,
}

/// One traffic probe: send a line to the port from `from`, see who answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficCheck {
    pub from: TrafficSource,
    #[serde(default)]
    pub proto: Proto,
    /// Defaults to the queried port.
    #[serde(default)]
    pub port: Option<u16>,
    /// `other-network` only: an existing container to probe from (e.g. the client a fault created),
    /// instead of a fresh one on a network of the runner's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub answers: Answerer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrafficSource {
    /// 127.0.0.1 inside the environment (the host's own loopback).
    #[serde(rename = "127.0.0.1")]
    Loopback4,
    /// ::1 inside the environment (needs `environment.ipv6 = true`).
    #[serde(rename = "::1")]
    Loopback6,
    /// The environment's own eth0 address, from inside it (a local client using the LAN address).
    #[serde(rename = "host-ip")]
    HostIp,
    /// Another network namespace: the runner's host, connecting to the environment's address.
    #[serde(rename = "outside")]
    Outside,
    /// A container on another user-defined network inside the environment, connecting to the
    /// environment's address (the cross-network hairpin path).
    #[serde(rename = "other-network")]
    OtherNetwork,
}

impl TrafficSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback4 => "127.0.0.1",
            Self::Loopback6 => "::1",
            Self::HostIp => "host-ip",
            Self::Outside => "outside",
            Self::OtherNetwork => "other-network",
        }
    }
}

/// Who answered a probe. Servers identify themselves: portholder replies `portholder ...`, scenario
/// containers reply `container ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answerer {
    Container,
    HostProcess,
    Nothing,
}

impl Answerer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::HostProcess => "host-process",
            Self::Nothing => "nothing",
        }
    }
}

/// The expectation for one engine, overrides applied and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub trigger: ExpectedTrigger,
    pub cause: CauseCode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<CauseCode>,
    pub traffic: Vec<TrafficCheck>,
    /// The fix that must be proven (`None` for notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<ActionKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<RemedyClaim>,
    /// The override's note, when one applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An engine as the expectation resolver needs it.
#[derive(Debug, Clone, Copy)]
pub struct EngineKey<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

/// True when `key` names this engine: its name, or a dotted prefix of its version (`28` matches
/// `28.5.2`, `20.10` matches `20.10.24+dfsg1`, `2` matches nothing but `2.x`).
pub fn engine_matches(key: &str, engine: EngineKey<'_>) -> bool {
    if key == engine.name {
        return true;
    }
    match (EngineVersion::parse(key), EngineVersion::parse(engine.version)) {
        (Ok(series), Ok(version)) => version.in_series(&series),
        _ => false,
    }
}

impl Scenario {
    /// Whether the scenario runs on this engine.
    pub fn runs_on(&self, engine: EngineKey<'_>) -> bool {
        self.environment.engines.is_empty()
            || self.environment.engines.iter().any(|k| engine_matches(k, engine))
    }

    /// The expectation for one engine: the most specific matching override wins (longest key).
    pub fn expectation_for(&self, engine: EngineKey<'_>) -> Result<Expectation, String> {
        self.expectation_for_cell(engine, None)
    }

    /// The expectation for one cell: the engine's override, then the backend's over it.
    pub fn expectation_for_cell(
        &self,
        engine: EngineKey<'_>,
        backend: Option<BackendName>,
    ) -> Result<Expectation, String> {
        let e = &self.expect;
        let by_engine = e
            .engine
            .iter()
            .filter(|(k, _)| engine_matches(k, engine))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let ov = match backend.and_then(|b| e.backend.get(&b)) {
            Some(b) => b.clone().over(by_engine),
            None => by_engine,
        };
        let trigger_result = ov.trigger.unwrap_or(e.trigger);
        let stage = match (ov.trigger, ov.stage) {
            // An override that flips the trigger must not inherit the base stage.
            (Some(_), s) => s,
            (None, Some(s)) => Some(s),
            (None, None) => e.stage,
        };
        let trigger = match (trigger_result, stage) {
            (TriggerResult::Fails, Some(stage)) => ExpectedTrigger::Fails { stage },
            (TriggerResult::Fails, None) => {
                return Err("`trigger = \"fails\"` needs `stage` (allocated, host-bind, access-denied, address-unavailable, firewall, unknown)".into())
            }
            (TriggerResult::Succeeds, None) => ExpectedTrigger::Succeeds,
            (TriggerResult::Succeeds, Some(_)) => {
                return Err("`trigger = \"succeeds\"` must not have a `stage`: remove it".into())
            }
        };
        Ok(Expectation {
            trigger,
            cause: ov.cause.unwrap_or(e.cause),
            also: ov.also.unwrap_or_else(|| e.also.clone()),
            traffic: ov.traffic.unwrap_or_else(|| e.traffic.clone()),
            // An override that makes the cause a note leaves no cause for the base's remedy.
            remedy: if ov.cause.is_some_and(|c| c.is_note()) { ov.remedy } else { ov.remedy.or(e.remedy) },
            claims: ov.claims.unwrap_or_else(|| e.claims.clone()),
            note: ov.note,
        })
    }
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// TOML syntax or a field of the wrong type: toml's message already shows the line and a caret.
    #[error("{}:{line}:{column}: {message}\n  fix: {fix}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String, fix: String },
    /// Parsed, but breaks a rule of the schema.
    #[error("{}:{line}: {message}\n  fix: {fix}", path.display())]
    Invalid { path: PathBuf, line: usize, message: String, fix: String },
    #[error("no scenario named `{name}` in {}: known: {known}", dir.display())]
    Unknown { name: String, dir: PathBuf, known: String },
}

impl ScenarioError {
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Syntax { path, .. } | Self::Invalid { path, .. } => path,
            Self::Unknown { dir, .. } => dir,
        }
    }
}

/// Load and validate one file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// Parse and validate text that came from `path` (used in messages).
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let mut scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let message = e.message().trim().to_owned();
        ScenarioError::Syntax { path: path.to_owned(), line, column, fix: fix_for(&message), message }
    })?;
    if let Some(c) = &mut scenario.trigger.compose {
        c.dir = path.with_extension("");
    }
    validate(path, text, &scenario)?;
    Ok(scenario)
}

/// Every `*.toml` in `dir`, sorted by file name; the first broken file stops the load.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, ScenarioError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ScenarioError::Read { path: dir.to_owned(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| load(&p).map(|s| (p, s))).collect()
}

/// The scenarios named in `names` (all when empty).
pub fn select(dir: &Path, names: &[String]) -> Result<Vec<Scenario>, ScenarioError> {
    let all = load_dir(dir)?;
    if names.is_empty() {
        return Ok(all.into_iter().map(|(_, s)| s).collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|(_, s)| &s.name == n).map(|(_, s)| s.clone()).ok_or_else(|| {
                ScenarioError::Unknown {
                    name: n.clone(),
                    dir: dir.to_owned(),
                    known: all.iter().map(|(_, s)| s.name.as_str()).collect::<Vec<_>>().join(", "),
                }
            })
        })
        .collect()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// 1-based line of the key at `path` (e.g. `["expect", "engine", "29", "cause"]`), from the TOML
/// parser's spans; when the key is absent, the line of the deepest table on the path that exists
/// (a missing key is reported where it belongs), and line 1 when not even that exists.
fn line_at(text: &str, path: &[&str]) -> usize {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else { return 1 };
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut array: Option<&toml_edit::ArrayOfTables> = None;
    let mut line = 1;
    for seg in path {
        // A number picks one table of an array of tables (`[[expect.claims]]`).
        if let (Ok(i), Some(list)) = (seg.parse::<usize>(), array.take()) {
            let Some(t) = list.get(i) else { break };
            if let Some(span) = t.span() {
                line = line_col(text, span.start).0;
            }
            table = t;
            continue;
        }
        let Some((key, item)) = table.get_key_value(seg) else { break };
        if let Some(span) = key.span().or_else(|| item.span()) {
            line = line_col(text, span.start).0;
        }
        if let Some(list) = item.as_array_of_tables() {
            array = Some(list);
            continue;
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    line
}

/// `table` (a path of keys) with `field` appended.
fn at<'a>(table: &[&'a str], field: &'a str) -> Vec<&'a str> {
    let mut p = table.to_vec();
    p.push(field);
    p
}

/// A hint for the most common mistakes, from toml's message.
fn fix_for(message: &str) -> String {
    if message.contains("unknown variant") {
        return "use one of the values the message lists (spelling and case matter)".into();
    }
    if message.contains("unknown field") {
        return "remove or rename the key: the message lists the keys this table accepts".into();
    }
    if message.starts_with("missing field") {
        return "add the missing key (see scenarios/README.md for the schema)".into();
    }
    if message.contains("invalid type") {
        return "give the value the type the message asks for (a string needs quotes, a list needs [ ])"
            .into();
    }
    "fix the TOML at that position (see scenarios/README.md for the schema)".into()
}

fn validate(path: &Path, text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |key: &[&str], message: String, fix: &str| ScenarioError::Invalid {
        path: path.to_owned(),
        line: line_at(text, key),
        message,
        fix: fix.to_owned(),
    };
    if s.schema_version != SCHEMA_VERSION {
        return Err(invalid(
            &["schema_version"],
            format!(
                "schema_version {} is not supported (this portwhy-lab reads {SCHEMA_VERSION})",
                s.schema_version
            ),
            "set `schema_version = 1` and follow scenarios/README.md",
        ));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if s.name != stem {
        return Err(invalid(
            &["name"],
            format!("name `{}` differs from the file name `{stem}.toml`", s.name),
            "rename the file or the `name` so they match",
        ));
    }
    if s.seed_claim.claim.trim().len() < 20 {
        return Err(invalid(
            &["seed_claim", "claim"],
            "the seed claim is empty or too short to say what is being tested".into(),
            "restate the claim in one sentence of your own words",
        ));
    }
    if let Some(c) = &s.trigger.compose {
        if !s.trigger.run.is_empty() {
            return Err(invalid(
                &["trigger", "run"],
                "the trigger has both `run` and `compose`".into(),
                "keep one: `run` for docker run, `compose` for a compose project",
            ));
        }
        return crate::compose::validate(c)
            .map_err(|(message, fix)| invalid(&["trigger", "compose"], message, &fix))
            .and_then(|()| validate_rest(path, text, s));
    }
    let run = &s.trigger.run;
    if run.len() < 3 || run[0] != "docker" || run[1] != "run" {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger must be a `docker run ...` argv".into(),
            "write run = [\"docker\", \"run\", \"-d\", \"--name\", \"web\", \"-p\", \"8080:80\", \"busybox\", ...]",
        ));
    }
    if s.trigger.container_name().is_none() {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger does not name its container".into(),
            "add \"--name\", \"<name>\" so the runner can remove it before re-triggering",
        ));
    }
    if !run.iter().any(|a| a == "-d" || a == "--detach") {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger does not detach".into(),
            "add \"-d\" after \"run\"",
        ));
    }
    if s.trigger.publishes().is_empty() {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger publishes no port".into(),
            "add \"-p\", \"HOST:CONTAINER\"",
        ));
    }
    validate_rest(path, text, s)
}

/// What every trigger kind shares: claims, overrides, expectations.
fn validate_rest(path: &Path, text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |key: &[&str], message: String, fix: &str| ScenarioError::Invalid {
        path: path.to_owned(),
        line: line_at(text, key),
        message,
        fix: fix.to_owned(),
    };
    // Each list of claims with the path of its table, so a bad effect is reported on its line.
    let mut lists: Vec<(Vec<String>, &[RemedyClaim])> = vec![(vec!["expect".into()], &s.expect.claims)];
    for (k, o) in &s.expect.engine {
        lists.extend(o.claims.as_deref().map(|c| (vec!["expect".into(), "engine".into(), k.clone()], c)));
    }
    for (b, o) in &s.expect.backend {
        lists
            .extend(o.claims.as_deref().map(|c| (vec!["expect".into(), "backend".into(), b.to_string()], c)));
    }
    for (table, claims) in lists {
        for (i, c) in claims.iter().enumerate() {
            for e in &c.effects {
                // getent takes one argument; a name with spaces or a leading '-' would be read otherwise.
                let ok = !e.lookup.is_empty()
                    && !e.lookup.starts_with('-')
                    && e.lookup.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
                if !ok {
                    let index = i.to_string();
                    let mut key: Vec<&str> = table.iter().map(String::as_str).collect();
                    key.extend(["claims", index.as_str(), "effects"]);
                    return Err(invalid(
                        &key,
                        format!("a claim's effect looks up {:?}, which is not a host name", e.lookup),
                        "name a host name: letters, digits, '.', '_' and '-', not starting with '-'",
                    ));
                }
            }
        }
    }
    if s.environment.backends.is_empty() {
        return Err(invalid(
            &["environment", "backends"],
            "no backend to run on".into(),
            "list legacy, nft, nftables or several",
        ));
    }
    let mut keys: Vec<(&str, Option<BackendName>)> = vec![("", None)];
    keys.extend(s.expect.engine.keys().map(|k| (k.as_str(), None)));
    keys.extend(s.expect.backend.keys().map(|b| ("", Some(*b))));
    for (key, backend) in keys {
        // Resolve as if the engine were the key itself, so every override is checked.
        let engine = EngineKey { name: key, version: key };
        let label = match (key, backend) {
            (_, Some(b)) => format!("[expect.backend.{b}]"),
            ("", None) => "[expect]".to_owned(),
            (k, None) => format!("[expect.engine.\"{k}\"]"),
        };
        let backend_key = backend.map(|b| b.to_string());
        let table: Vec<&str> = match (key, &backend_key) {
            (_, Some(b)) => vec!["expect", "backend", b.as_str()],
            ("", None) => vec!["expect"],
            (k, None) => vec!["expect", "engine", k],
        };
        let e = s.expectation_for_cell(engine, backend).map_err(|m| {
            invalid(
                &at(&table, "stage"),
                format!("{label}: {m}"),
                "pair `trigger = \"fails\"` with a `stage`",
            )
        })?;
        if e.trigger == ExpectedTrigger::Succeeds
            && !e.cause.is_note()
            && e.traffic.is_empty()
            && !e.cause.silent()
        {
            return Err(invalid(
                &at(&table, "cause"),
                format!("{label}: a trigger that succeeds cannot be blocked by {}", e.cause),
                "expect a silent cause (PW005, PW008, PW010, PW011) or PW000, or `trigger = \"fails\"`",
            ));
        }
        if e.cause.silent() && e.traffic.is_empty() {
            return Err(invalid(
                &at(&table, "cause"),
                format!("{label}: {} is silent: only traffic shows it", e.cause),
                "add [[expect.traffic]] checks (from, answers)",
            ));
        }
        match (e.cause.is_note(), e.remedy) {
            (false, None) => {
                return Err(invalid(
                    &at(&table, "cause"),
                    format!("{label}: {} needs the remedy that must be proven", e.cause),
                    "add `remedy = \"<action kind>\"` (e.g. \"stop-process\", \"delete-nat-rule\"): the lowest-risk fix portwhy proposes for this cause",
                ))
            }
            (true, Some(r)) => {
                return Err(invalid(
                    &at(&table, "remedy"),
                    format!("{label}: {} is a note: there is no cause for `{r}` to remove", e.cause),
                    "remove `remedy`",
                ))
            }
            _ => {}
        }
        if e.traffic.iter().any(|t| t.client.is_some() && t.from != TrafficSource::OtherNetwork) {
            return Err(invalid(
                &at(&table, "traffic"),
                format!("{label}: `client` only applies to probes from other-network"),
                "remove `client` or set `from = \"other-network\"`",
            ));
        }
        if e.traffic.iter().any(|t| t.from == TrafficSource::Loopback6) && !s.environment.ipv6 {
            return Err(invalid(
                &at(&table, "traffic"),
                format!("{label}: a probe from ::1 needs IPv6 in the environment"),
                "set `ipv6 = true` under [environment]",
            ));
        }
    }
    Ok(())
}

/// Serde for `port = "8080/udp"`: the same syntax `portwhy` accepts.
mod query_text {
    use super::PortQuery;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(q: &PortQuery, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(q)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PortQuery, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes_match_on_dot_boundaries() {
        let e = EngineKey { name: "sid", version: "28.5.2" };
        assert!(engine_matches("28", e));
        assert!(engine_matches("28.5", e));
        assert!(engine_matches("sid", e));
        assert!(!engine_matches("2", e));
        assert!(!engine_matches("28.50", e));
        let old = EngineKey { name: "bookworm", version: "20.10.24+dfsg1" };
        assert!(engine_matches("20.10.24", old));
        assert!(!engine_matches("20.1", old));
    }

    #[test]
    fn line_at_names_the_key_of_the_table_it_is_about() {
        let text = "name = \"x\"\n[expect]\ncause = \"PW001\"\n\n[expect.engine.\"29\"]\ncause = \"PW008\"\n\n[[expect.claims]]\nnote = \"a\"\n[[expect.claims]]\neffects = []\n";
        assert_eq!(line_at(text, &["expect", "cause"]), 3);
        assert_eq!(line_at(text, &["expect", "engine", "29", "cause"]), 6);
        assert_eq!(line_at(text, &["expect", "claims", "1", "effects"]), 11);
        // A missing key is reported at the deepest table that exists.
        assert_eq!(line_at(text, &["expect", "engine", "29", "stage"]), 5);
        assert_eq!(line_at("not = [toml", &["name"]), 1);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\nd", 4), (2, 3));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
