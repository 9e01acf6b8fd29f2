//! Scenario files: the versioned TOML schema (here), the loader (`load`) and the rules a parsed
//! file must meet (`validate`).
//!
//! A scenario is data: which faults to inject, what to run, which port to ask `portwhy` about and
//! what real engines do. Expectations are enums so the comparison in `verdict.rs` is an exhaustive
//! `match`, never a substring check. A broken file is a `ScenarioError` naming the file, the line
//! and the fix.

use std::collections::BTreeMap;
use std::fmt;

use portwhy::cause::CauseCode;
use portwhy::parse::error::Stage;
use portwhy::port::{PortQuery, Proto};
use portwhy::remedy::{Action, ActionKind};
use portwhy::version::EngineVersion;
use serde::{Deserialize, Serialize};

pub use crate::compose::{ComposeBefore, ComposeTrigger};
pub use error::ScenarioError;
pub use load::{load, load_dir, parse, select};

mod error;
mod load;
mod validate;

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
}
