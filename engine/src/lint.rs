//! `portwhy lint`: host ports that the services of a compose project would fight over, before deploy.
//!
//! Files are read in the order `docker compose -f a -f b` merges them, every `ports` entry is
//! expanded the way compose expands it, and each pair of publishes is checked with the same
//! address rules the diagnosis uses (`overlap::Coverage`). Bad input (unreadable file, invalid
//! YAML, a port entry compose itself would refuse) is a `LintError`; everything else is a finding.

mod interpolate;
mod source;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::overlap::{docker_bind_coverages, Coverage};
use crate::port::Proto;
use source::LineIndex;
pub use spec::PortSpan;
use spec::{Publish, SpecError};

/// Version of the JSON document `portwhy lint --json` prints. Bump on any incompatible change.
pub const LINT_SCHEMA_VERSION: u32 = 1;

/// Exit code for bad input (unreadable file, invalid YAML, a port entry compose would refuse).
pub const EXIT_BAD_INPUT: i32 = 2;

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
    /// 0 when clean (or only `info` findings), 1 when any warning or error was found.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.findings.iter().any(|f| f.severity >= Severity::Warning))
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }
}

/// Why the files could not be linted at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("no compose file given: pass compose.yaml, then any override files in merge order")]
    NoFiles,
    #[error("cannot read {path}: {source}; check the path and permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: invalid YAML: {message}; fix the syntax at that line (indentation, an unclosed quote or bracket, a tab)")]
    Yaml { location: SourceLocation, message: String },
    #[error("{location}: {message}; {fix}")]
    Invalid { location: SourceLocation, message: String, fix: String },
}

impl LintError {
    pub fn exit_code(&self) -> i32 {
        EXIT_BAD_INPUT
    }
}

/// Documentation of one lint rule, printed by `portwhy explain PWL001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintRuleDoc {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub what_it_detects: &'static str,
    pub why_it_happens: &'static str,
    pub example: &'static str,
    pub fix: &'static str,
}

/// Every lint rule, in code order.
pub fn rule_docs() -> &'static [LintRuleDoc] {
    RULES
}

/// A rule by code (`PWL001`, any case) or name (`duplicate-host-port`).
pub fn find_rule(code: &str) -> Option<&'static LintRuleDoc> {
    RULES.iter().find(|r| r.code.eq_ignore_ascii_case(code) || r.name == code)
}

/// The variables interpolation may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    pub env: BTreeMap<String, String>,
}

impl LintOptions {
    /// What `docker compose` would see: the project's `.env` file (beside the first compose file),
    /// overridden by the process environment.
    pub fn from_environment(first_file: &Path) -> Self {
        let mut options = Self::from_dotenv(first_file);
        options.env.extend(std::env::vars());
        options
    }

    /// Only the project's `.env` file beside `first_file` (empty when there is none).
    pub fn from_dotenv(first_file: &Path) -> Self {
        let dir = first_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let env = std::fs::read_to_string(dir.join(".env")).map(|t| parse_env_file(&t)).unwrap_or_default();
        Self { env }
    }
}

/// One compose file's name (as it should be reported) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSource {
    pub name: String,
    pub text: String,
}

/// Read and lint compose files, in merge order.
pub fn lint_files(paths: &[PathBuf], options: &LintOptions) -> Result<LintReport, LintError> {
    let sources = paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            std::fs::read_to_string(p)
                .map(|text| ComposeSource { name: name.clone(), text })
                .map_err(|source| LintError::Read { path: name, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    lint_sources(&sources, options)
}

/// Lint compose texts already in memory, in merge order.
pub fn lint_sources(sources: &[ComposeSource], options: &LintOptions) -> Result<LintReport, LintError> {
    if sources.is_empty() {
        return Err(LintError::NoFiles);
    }
    let lookup = |name: &str| options.env.get(name).cloned();
    let mut model = Model::default();
    for source in sources {
        model.merge_file(source, &lookup)?;
    }
    let mut findings = std::mem::take(&mut model.findings);
    findings.extend(model.check());
    // Most severe first, then by code, then by where the first location sits in merge order.
    let place = |f: &LintFinding| {
        f.locations.first().map(|l| (sources.iter().position(|s| s.name == l.file), l.line))
    };
    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| a.code.cmp(&b.code)).then_with(|| place(a).cmp(&place(b)))
    });
    findings.dedup();
    Ok(LintReport {
        schema_version: LINT_SCHEMA_VERSION,
        files: sources.iter().map(|s| s.name.clone()).collect(),
        services: model.services.len(),
        publishes: model.services.values().map(|s| s.claims.len()).sum(),
        findings,
    })
}

/// The report as a person reads it in a terminal.
pub fn render_human(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let head = f.locations.first().map(|l| format!("{l}: ")).unwrap_or_default();
        let _ = writeln!(out, "{head}{}[{}] {}: {}", f.severity.as_str(), f.code, f.name, f.message);
        for l in f.locations.iter().skip(1) {
            let _ = writeln!(out, "    also: {l}");
        }
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let (e, w, i) =
        (report.count(Severity::Error), report.count(Severity::Warning), report.count(Severity::Info));
    let scope = format!(
        "{} service{}, {} published port{} ({})",
        report.services,
        plural(report.services),
        report.publishes,
        plural(report.publishes),
        report.files.join(" + ")
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "no host port conflicts in {scope}");
    } else {
        let _ = writeln!(
            out,
            "{e} error{}, {w} warning{}, {i} note{} in {scope}",
            plural(e),
            plural(w),
            plural(i)
        );
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `KEY=VALUE` lines of a compose `.env` file (comments, `export ` and surrounding quotes allowed).
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// One published container port after the merge.
#[derive(Debug, Clone)]
struct Claim {
    publish: Publish,
    /// The entry it came from (several claims share one for a range).
    entry: usize,
    /// Extra places that declared the same publish (merged by compose's unique key).
    also: Vec<SourceLocation>,
}

/// One `ports` entry as written.
#[derive(Debug, Clone)]
struct Entry {
    spec: String,
    location: SourceLocation,
}

#[derive(Debug, Clone, Default)]
struct Service {
    claims: Vec<Claim>,
    replicas: Option<(u32, SourceLocation)>,
    host_network: Option<SourceLocation>,
}

#[derive(Default)]
struct Model {
    services: BTreeMap<String, Service>,
    entries: Vec<Entry>,
    findings: Vec<LintFinding>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl Model {
    fn merge_file(&mut self, source: &ComposeSource, lookup: &Lookup<'_>) -> Result<(), LintError> {
        let at = |line: Option<usize>| SourceLocation { file: source.name.clone(), line };
        let mut doc: Value = serde_yaml_ng::from_str(&source.text).map_err(|e| LintError::Yaml {
            location: at(e.location().map(|l| l.line())),
            message: e.to_string(),
        })?;
        doc.apply_merge().map_err(|e| LintError::Invalid {
            location: at(None),
            message: format!("a `<<` merge key cannot be applied: {e}"),
            fix: "a `<<:` key takes an alias of a mapping (`<<: *defaults`) or a list of them".into(),
        })?;
        let lines = LineIndex::new(&source.text);
        let top = match doc {
            Value::Mapping(m) => m,
            Value::Null => {
                return Err(LintError::Invalid {
                    location: at(None),
                    message: "the file is empty".into(),
                    fix: "give it a `services:` mapping, or leave it out of the file list".into(),
                })
            }
            _ => {
                return Err(LintError::Invalid {
                    location: at(Some(1)),
                    message: "the top level is not a mapping".into(),
                    fix: "a compose file starts with keys such as `services:`".into(),
                })
            }
        };
        let services = match top.get("services").map(untag) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Mapping(m)) => m,
            Some(_) => {
                return Err(LintError::Invalid {
                    location: at(None),
                    message: "`services` is not a mapping".into(),
                    fix: "write `services:` followed by one indented `name:` per service".into(),
                })
            }
        };
        for (name, body) in services {
            let Some(name) = name.as_str() else {
                return Err(LintError::Invalid {
                    location: at(None),
                    message: format!("service name {name:?} is not a string"),
                    fix: "name services with plain words such as `web`".into(),
                });
            };
            self.merge_service(name, body, &lines, &at, lookup)?;
        }
        Ok(())
    }

    fn merge_service(
        &mut self,
        name: &str,
        body: &Value,
        lines: &LineIndex,
        at: &dyn Fn(Option<usize>) -> SourceLocation,
        lookup: &Lookup<'_>,
    ) -> Result<(), LintError> {
        let svc_loc = at(lines.service(name));
        let body = match untag(body) {
            Value::Mapping(m) => m,
            Value::Null => {
                self.services.entry(name.to_owned()).or_default();
                return Ok(());
            }
            _ => {
                return Err(LintError::Invalid {
                    location: svc_loc,
                    message: format!("service `{name}` is not a mapping"),
                    fix: "give the service indented keys such as `image:` and `ports:`".into(),
                })
            }
        };

        if let Some(mode) = body.get("network_mode").and_then(scalar_string) {
            let mode =
                self.interpolate_field(name, &mode, at(lines.property(name, "network_mode")), lookup)?;
            let host = (mode == "host").then(|| at(lines.property(name, "network_mode")));
            self.services.entry(name.to_owned()).or_default().host_network = host;
        }
        let replicas = body
            .get("scale")
            .map(|v| (v, "scale"))
            .or_else(|| body.get("deploy").and_then(|d| d.get("replicas")).map(|v| (v, "deploy")));
        if let Some((value, key)) = replicas {
            let loc = at(lines.property(name, key));
            if let Some(text) = scalar_string(value) {
                let text = self.interpolate_field(name, &text, loc.clone(), lookup)?;
                let n = text.trim().parse::<u32>().map_err(|_| LintError::Invalid {
                    location: loc.clone(),
                    message: format!("`{key}` of service `{name}` is `{text}`, not a number of replicas"),
                    fix: "write a whole number such as `scale: 2`".into(),
                })?;
                self.services.entry(name.to_owned()).or_default().replicas = Some((n, loc));
            }
        }

        let Some(ports) = body.get("ports") else {
            self.services.entry(name.to_owned()).or_default();
            return Ok(());
        };
        // Compose's override tags (compose-spec 13-merge.md, "Reset value" / "Replace value"):
        // `!reset` clears the list, `!override` replaces it instead of merging.
        let (items, replace) = match ports {
            Value::Tagged(t) if t.tag == "reset" => (None, true),
            Value::Tagged(t) if t.tag == "override" => (Some(&t.value), true),
            other => (Some(other), false),
        };
        let items: &[Value] = match items.map(untag) {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(s)) => s,
            Some(_) => {
                return Err(LintError::Invalid {
                    location: at(lines.ports_key(name)),
                    message: format!("`ports` of service `{name}` is not a list"),
                    fix: "write one `- \"HOST:CONTAINER\"` entry per line under `ports:`".into(),
                })
            }
        };
        let mut parsed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let loc = at(lines.port_item(name, i));
            if let Some((spec, publishes)) = self.parse_item(name, item, loc.clone(), lookup)? {
                parsed.push((spec, loc, publishes));
            }
        }

        let service = self.services.entry(name.to_owned()).or_default();
        if replace {
            service.claims.clear();
        }
        for (spec, location, publishes) in parsed {
            let entry = self.entries.len();
            self.entries.push(Entry { spec, location: location.clone() });
            for publish in publishes {
                // Compose merges `ports` as a unique resource keyed by {ip, target, published,
                // protocol} (compose-spec 13-merge.md, "Unique resources"): an entry with the same
                // key replaces the earlier one, any other entry is appended.
                match service.claims.iter_mut().find(|c| same_key(&c.publish, &publish)) {
                    Some(existing) => {
                        if !existing.also.contains(&location) {
                            existing.also.push(location.clone());
                        }
                        existing.publish.mode = publish.mode;
                    }
                    None => service.claims.push(Claim { publish, entry, also: Vec::new() }),
                }
            }
        }
        Ok(())
    }

    /// Parse one `ports` item; `None` when an unresolved variable left nothing compose could publish.
    fn parse_item(
        &mut self,
        service: &str,
        item: &Value,
        loc: SourceLocation,
        lookup: &Lookup<'_>,
    ) -> Result<Option<(String, Vec<Publish>)>, LintError> {
        let mut unresolved = Vec::new();
        let mut field = |key: &str, value: Option<&Value>| -> Result<Option<String>, LintError> {
            match value.map(untag) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let text = scalar_string(v).ok_or_else(|| LintError::Invalid {
                        location: loc.clone(),
                        message: format!(
                            "`{key}` of a port of service `{service}` is not a string or number"
                        ),
                        fix: format!("write `{key}` as a plain value, e.g. `{key}: 8080`"),
                    })?;
                    let done = interpolate::interpolate(&text, lookup).map_err(|e| LintError::Invalid {
                        location: loc.clone(),
                        message: format!("cannot interpolate `{text}`"),
                        fix: e.to_string(),
                    })?;
                    unresolved.extend(done.unresolved);
                    Ok(Some(done.value))
                }
            }
        };
        let (spec, written, result) = match untag(item) {
            Value::Mapping(m) => {
                let target = field("target", m.get("target"))?;
                let published = field("published", m.get("published"))?;
                let host_ip = field("host_ip", m.get("host_ip"))?;
                let protocol = field("protocol", m.get("protocol"))?;
                let mode = field("mode", m.get("mode"))?;
                let spec = long_spec(&target, &published, &host_ip, &protocol);
                let written = spec.clone();
                let result = spec::parse_long(
                    target.as_deref(),
                    published.as_deref(),
                    host_ip.as_deref(),
                    protocol.as_deref(),
                    mode.as_deref(),
                );
                (spec, written, result)
            }
            v => {
                let written = scalar_string(v).ok_or_else(|| LintError::Invalid {
                    location: loc.clone(),
                    message: format!("a port of service `{service}` is neither a string nor a mapping"),
                    fix: "write \"HOST:CONTAINER\" or a mapping with `target:` and `published:`".into(),
                })?;
                let spec = field("ports", Some(v))?.unwrap_or_default();
                let result = spec::parse_short(&spec);
                (spec, written, result)
            }
        };
        if !unresolved.is_empty() {
            let names: Vec<String> = unresolved.iter().map(|u| u.name.clone()).collect();
            let required: Vec<&str> = unresolved.iter().filter_map(|u| u.required.as_deref()).collect();
            let outcome = match (&result, required.is_empty()) {
                (_, false) => format!("compose refuses to start without it ({})", required.join("; ")),
                (Ok(p), true) if p.iter().all(|p| p.published.is_none()) => {
                    format!("compose substitutes an empty string, giving `{spec}`: an ephemeral host port")
                }
                (Ok(_), true) => format!("compose substitutes an empty string, giving `{spec}`"),
                (Err(e), true) => {
                    format!("compose substitutes an empty string, giving `{spec}`, which it refuses: {e}")
                }
            };
            self.findings.push(LintFinding {
                code: "PWL005".into(),
                name: "unresolved-variable".into(),
                severity: Severity::Warning,
                message: format!(
                    "`{written}` of service `{service}` uses {} that is not set here; {outcome}. \
                     Host ports that depend on it were not checked.",
                    names.iter().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
                ),
                locations: vec![loc],
                services: vec![service.to_owned()],
                host_ip: None,
                ports: None,
                proto: None,
                fix: format!(
                    "set {} in the environment or the project's .env file, or give a default: `${{{}:-8080}}`",
                    names.join(", "),
                    names[0]
                ),
            });
            return Ok(result.ok().map(|p| (spec, p)));
        }
        match result {
            Ok(p) => Ok(Some((spec, p))),
            Err(e) => Err(LintError::Invalid {
                location: loc,
                message: format!("`{written}` in service `{service}` is not a port compose accepts"),
                fix: spec_fix(&e),
            }),
        }
    }

    fn interpolate_field(
        &mut self,
        service: &str,
        text: &str,
        loc: SourceLocation,
        lookup: &Lookup<'_>,
    ) -> Result<String, LintError> {
        let done = interpolate::interpolate(text, lookup).map_err(|e| LintError::Invalid {
            location: loc.clone(),
            message: format!("cannot interpolate `{text}` in service `{service}`"),
            fix: e.to_string(),
        })?;
        Ok(done.value)
    }

    fn check(&self) -> Vec<LintFinding> {
        let mut out = Vec::new();
        let groups = self.groups(&mut out);
        for (i, a) in groups.iter().enumerate() {
            for b in &groups[i + 1..] {
                if let Some(f) = self.conflict(a, b) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// Fold claims back into their entries (a range entry is one group) and emit per-service findings.
    fn groups(&self, out: &mut Vec<LintFinding>) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for (name, svc) in &self.services {
            if let Some(loc) = &svc.host_network {
                if !svc.claims.is_empty() {
                    out.push(LintFinding {
                        code: "PWL008".into(),
                        name: "host-network-ports".into(),
                        severity: Severity::Warning,
                        message: format!(
                            "service `{name}` uses `network_mode: host`, so the engine discards its `ports`; \
                             the program binds host ports itself and this check cannot see which"
                        ),
                        locations: vec![loc.clone()],
                        services: vec![name.clone()],
                        host_ip: None,
                        ports: None,
                        proto: None,
                        fix:
                            "drop `ports:` from this service, or leave host networking and keep the mappings"
                                .into(),
                    });
                }
                continue;
            }
            let mut by_entry: BTreeMap<usize, Group> = BTreeMap::new();
            for c in &svc.claims {
                let Some(published) = c.publish.published else { continue };
                let g = by_entry.entry(c.entry).or_insert_with(|| Group {
                    entry: c.entry,
                    service: name.clone(),
                    host_ip: c.publish.host_ip,
                    proto: c.publish.proto,
                    span: published,
                    picks_one: c.publish.picks_one(),
                    locations: vec![self.entries[c.entry].location.clone()],
                });
                g.span.start = g.span.start.min(published.start);
                g.span.end = g.span.end.max(published.end);
                for l in &c.also {
                    if !g.locations.contains(l) {
                        g.locations.push(l.clone());
                    }
                }
            }
            for g in by_entry.values() {
                if let Some((n, loc)) = &svc.replicas {
                    self.check_replicas(g, *n, loc, out);
                }
                if g.span.start < 1024 {
                    out.push(LintFinding {
                        code: "PWL007".into(),
                        name: "privileged-port".into(),
                        severity: Severity::Info,
                        message: format!(
                            "service `{name}` publishes {}/{}, below 1024: a rootless engine refuses it \
                             (\"cannot expose privileged port\") unless net.ipv4.ip_unprivileged_port_start allows it",
                            g.span, g.proto
                        ),
                        locations: g.locations.clone(),
                        services: vec![name.clone()],
                        host_ip: g.host_ip.map(|ip| ip.to_string()),
                        ports: Some(g.span),
                        proto: Some(g.proto),
                        fix: "with a rootless engine, publish a port of 1024 or above (e.g. 8080:80)".into(),
                    });
                }
            }
            groups.extend(by_entry.into_values());
        }
        // Declaration order, so each finding names the earlier entry first.
        groups.sort_by_key(|g| g.entry);
        groups
    }

    fn check_replicas(&self, g: &Group, n: u32, loc: &SourceLocation, out: &mut Vec<LintFinding>) {
        let capacity = if g.picks_one { g.span.count() } else { 1 };
        if n <= capacity {
            return;
        }
        let spec = &self.entries[g.entry].spec;
        let what = if g.picks_one {
            format!("the host range {} holds only {capacity} port{}", g.span, plural(capacity as usize))
        } else {
            format!("every replica asks for the same host port{} {}", plural(g.span.count() as usize), g.span)
        };
        let mut locations = vec![loc.clone()];
        locations.extend(g.locations.iter().cloned());
        out.push(LintFinding {
            code: "PWL006".into(),
            name: "scaled-fixed-port".into(),
            severity: Severity::Error,
            message: format!(
                "service `{}` runs {n} replicas and publishes `{spec}`: {what}, so only {} and the others \
                 fail with \"port is already allocated\"",
                g.service,
                if capacity == 1 { "one starts".to_owned() } else { format!("{capacity} start") }
            ),
            locations,
            services: vec![g.service.clone()],
            host_ip: g.host_ip.map(|ip| ip.to_string()),
            ports: Some(g.span),
            proto: Some(g.proto),
            fix: format!(
                "publish a host range at least {n} ports wide with one container port (e.g. \"{}-{}:{}\"), \
                 or drop the host port and let the engine choose",
                g.span.start,
                u32::from(g.span.start) + n - 1,
                self.target_of(g)
            ),
        });
    }

    fn target_of(&self, g: &Group) -> u16 {
        self.services[&g.service].claims.iter().find(|c| c.entry == g.entry).map_or(0, |c| c.publish.target)
    }

    fn conflict(&self, a: &Group, b: &Group) -> Option<LintFinding> {
        if a.proto != b.proto {
            return None;
        }
        let shared = a.span.intersect(b.span)?;
        let collide = docker_bind_coverages(a.host_ip)
            .into_iter()
            .any(|ca| docker_bind_coverages(b.host_ip).into_iter().any(|cb| ca.collides(cb)));
        if !collide {
            return None;
        }
        let (sa, sb) = (&self.entries[a.entry].spec, &self.entries[b.entry].spec);
        let mut locations = a.locations.clone();
        locations.extend(b.locations.iter().filter(|l| !a.locations.contains(l)).cloned());
        let host_ip = narrower(a.host_ip, b.host_ip).map(|ip| ip.to_string());
        let at = describe(host_ip.as_deref().and_then(|s| s.parse().ok()), shared, a.proto);
        let finding =
            |code: &str, name: &str, severity: Severity, message: String, fix: String| LintFinding {
                code: code.into(),
                name: name.into(),
                severity,
                message,
                locations: locations.clone(),
                services: if a.service == b.service {
                    vec![a.service.clone()]
                } else {
                    vec![a.service.clone(), b.service.clone()]
                },
                host_ip: host_ip.clone(),
                ports: Some(shared),
                proto: Some(a.proto),
                fix,
            };
        let other_port =
            "give one of them another host port (`portwhy suggest PORT` finds a free one), or bind them to \
             distinct addresses such as 127.0.0.1 and 127.0.0.2";

        if a.service == b.service {
            let files: BTreeSet<&str> = locations.iter().map(|l| l.file.as_str()).collect();
            let merged = if files.len() > 1 {
                " An override file appends to `ports` rather than replacing it (compose merges ports by \
                 address, container port, host port and protocol)."
            } else {
                ""
            };
            let (severity, outcome) = if a.picks_one || b.picks_one {
                (Severity::Warning, "its container may fail to start, depending on the port the range picks")
            } else {
                (Severity::Error, "its container cannot start (\"port is already allocated\" or \"address already in use\")")
            };
            return Some(finding(
                "PWL004",
                "duplicate-in-service",
                severity,
                format!(
                    "service `{}` publishes {at} twice, as `{sa}` and `{sb}`: {outcome}.{merged}",
                    a.service
                ),
                if merged.is_empty() {
                    "remove one of the two entries".into()
                } else {
                    "write `ports: !override` in the override file to replace the list, or remove the entry from \
                     one file"
                        .into()
                },
            ));
        }

        if a.picks_one || b.picks_one {
            let (range, fixed) = if a.picks_one { (a, b) } else { (b, a) };
            let covered = !fixed.picks_one && fixed.span.contains_span(range.span);
            let (severity, outcome) = if covered {
                (
                    Severity::Error,
                    format!("every port of that range is taken by `{}`, so one of them fails", fixed.service),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "whether both start depends on the order: the engine may give `{}` a port `{}` needs",
                        range.service, fixed.service
                    ),
                )
            };
            return Some(finding(
                "PWL003",
                "overlapping-range",
                severity,
                format!(
                    "`{}` publishes `{}` (any one free port of {}) and `{}` publishes `{}`; they meet on {at}: {outcome}.",
                    range.service,
                    self.entries[range.entry].spec,
                    range.span,
                    fixed.service,
                    self.entries[fixed.entry].spec
                ),
                "give the range and the other publish disjoint host ports".into(),
            ));
        }
        if a.span != b.span {
            return Some(finding(
                "PWL003",
                "overlapping-range",
                Severity::Error,
                format!(
                    "`{}` publishes `{sa}` and `{}` publishes `{sb}`: both claim {at}, so the second to start \
                     fails (\"port is already allocated\").",
                    a.service, b.service
                ),
                other_port.into(),
            ));
        }
        if a.host_ip == b.host_ip {
            return Some(finding(
                "PWL001",
                "duplicate-host-port",
                Severity::Error,
                format!(
                    "services `{}` and `{}` both publish {at}: the engine gives it to the first container that \
                     starts and refuses the second (\"port is already allocated\").",
                    a.service, b.service
                ),
                other_port.into(),
            ));
        }
        Some(finding(
            "PWL002",
            "overlapping-address",
            Severity::Error,
            format!(
                "`{}` publishes `{sa}` and `{}` publishes `{sb}`: {}, so the second to start fails to bind \
                 (\"address already in use\" or \"port is already allocated\").",
                a.service,
                b.service,
                overlap_reason(a.host_ip, b.host_ip)
            ),
            other_port.into(),
        ))
    }
}

/// The host side of one `ports` entry, after the merge.
#[derive(Debug, Clone)]
struct Group {
    entry: usize,
    service: String,
    host_ip: Option<IpAddr>,
    proto: Proto,
    span: PortSpan,
    picks_one: bool,
    locations: Vec<SourceLocation>,
}

fn same_key(a: &Publish, b: &Publish) -> bool {
    a.host_ip == b.host_ip && a.target == b.target && a.published == b.published && a.proto == b.proto
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A long-syntax entry in one line, for messages.
fn long_spec(
    target: &Option<String>,
    published: &Option<String>,
    host_ip: &Option<String>,
    protocol: &Option<String>,
) -> String {
    let mut s = String::new();
    if let Some(ip) = host_ip.as_deref().filter(|s| !s.is_empty()) {
        if ip.contains(':') && !ip.starts_with('[') {
            let _ = write!(s, "[{ip}]:");
        } else {
            let _ = write!(s, "{ip}:");
        }
    }
    if let Some(p) = published.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(s, "{p}:");
    }
    s.push_str(target.as_deref().unwrap_or("?"));
    if let Some(p) = protocol.as_deref().filter(|s| !s.is_empty()) {
        let _ = write!(s, "/{p}");
    }
    s
}

fn spec_fix(e: &SpecError) -> String {
    match e {
        SpecError::BadAddress(a) if a.starts_with(':') || a.contains("::") => {
            format!("{e}; an IPv6 address needs brackets, e.g. \"[::]:8080:80\"")
        }
        _ => e.to_string(),
    }
}

/// The more specific of two addresses (a named address over a wildcard over none).
fn narrower(a: Option<IpAddr>, b: Option<IpAddr>) -> Option<IpAddr> {
    let rank = |ip: Option<IpAddr>| match ip {
        None => 0,
        Some(ip) if ip.is_unspecified() => 1,
        Some(_) => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn describe(ip: Option<IpAddr>, ports: PortSpan, proto: Proto) -> String {
    let port = if ports.is_single() { format!("port {ports}") } else { format!("ports {ports}") };
    match ip {
        None => format!("host {port}/{proto} on every address"),
        Some(IpAddr::V6(ip)) => format!("[{ip}]:{ports}/{proto}"),
        Some(ip) => format!("{ip}:{ports}/{proto}"),
    }
}

/// Why two different addresses still collide, in words.
fn overlap_reason(a: Option<IpAddr>, b: Option<IpAddr>) -> String {
    let wording = |ip: Option<IpAddr>| match ip {
        None => "an entry without an address is published on 0.0.0.0 and on :: (every IPv4 and IPv6 address)"
            .to_owned(),
        Some(ip) => match Coverage::of_addr(ip, Some(true)) {
            Coverage::V4Any => "0.0.0.0 covers every IPv4 address".to_owned(),
            Coverage::V6Any | Coverage::DualAny => ":: covers every IPv6 address".to_owned(),
            _ => format!("{ip} is inside it"),
        },
    };
    let (wide, narrow) = if narrower(a, b) == b { (a, b) } else { (b, a) };
    match narrow {
        Some(ip) if !ip.is_unspecified() => format!("{}; {ip} is one of them", wording(wide)),
        _ => wording(wide),
    }
}

static RULES: &[LintRuleDoc] = &[
    LintRuleDoc {
        code: "PWL001",
        name: "duplicate-host-port",
        severity: Severity::Error,
        what_it_detects: "Two services publish the same host port, protocol and address.",
        why_it_happens: "The engine's port allocator hands a host port to one container. Compose starts \
            the services one after the other, so the first one to start gets the port and the second \
            fails with \"Bind for 0.0.0.0:8080 failed: port is already allocated\", often only at deploy.",
        example: "services:\n  web:\n    ports: [\"8080:80\"]\n  admin:\n    ports: [\"8080:8000\"]",
        fix: "Give one service another host port (`portwhy suggest 8080` finds a free one), or bind the \
            two to distinct addresses (\"127.0.0.1:8080:80\" and \"127.0.0.2:8080:8000\").",
    },
    LintRuleDoc {
        code: "PWL002",
        name: "overlapping-address",
        severity: Severity::Error,
        what_it_detects: "Two services publish the same host port and protocol on different addresses \
            that overlap: no address (every address) or 0.0.0.0 against 127.0.0.1, or :: against ::1.",
        why_it_happens: "An entry without an address is published on 0.0.0.0 and on ::. 0.0.0.0 covers \
            every IPv4 address and :: every IPv6 address, so binding 127.0.0.1 or ::1 on the same port \
            fails (\"address already in use\" from the userland proxy, or \"port is already allocated\" \
            when both sides end up on ::). Explicit 0.0.0.0 and :: do not overlap: the engine binds :: \
            IPv6-only.",
        example: "services:\n  web:\n    ports: [\"8080:80\"]\n  debug:\n    ports: [\"127.0.0.1:8080:80\"]",
        fix: "Use another host port for one of them, or give both specific, distinct addresses.",
    },
    LintRuleDoc {
        code: "PWL003",
        name: "overlapping-range",
        severity: Severity::Error,
        what_it_detects: "A host port range intersects another service's publish. When a range maps to \
            one container port (\"9090-9091:8080\") the engine takes any one free port of it, so the clash \
            depends on start order and is a warning, unless the other publish covers the whole range.",
        why_it_happens: "A range \"8000-8005:80-85\" publishes every port in it; any port of it published \
            elsewhere is claimed twice. A pick-one range takes the first free port at start, which may be \
            the one a later service asked for by number.",
        example:
            "services:\n  app:\n    ports: [\"8000-8005:80-85\"]\n  metrics:\n    ports: [\"8003:9100\"]",
        fix: "Give the range and the other publish disjoint host ports.",
    },
    LintRuleDoc {
        code: "PWL004",
        name: "duplicate-in-service",
        severity: Severity::Error,
        what_it_detects: "One service, after merging every file, publishes the same host port twice \
            (with different container ports, or with overlapping addresses).",
        why_it_happens: "Compose merges `ports` across files by appending; only an entry with the same \
            address, container port, host port and protocol replaces an earlier one. An override that \
            changes the container port therefore adds a second claim on the host port, and the engine \
            refuses the container (\"port is already allocated\").",
        example: "# compose.yaml\nservices:\n  web:\n    ports: [\"8080:80\"]\n# compose.override.yaml\n\
            services:\n  web:\n    ports: [\"8080:8000\"]",
        fix: "Use `ports: !override` in the override file to replace the list, or remove one entry.",
    },
    LintRuleDoc {
        code: "PWL005",
        name: "unresolved-variable",
        severity: Severity::Warning,
        what_it_detects: "A port entry uses a variable that is neither in the environment nor in the \
            project's .env file and has no default.",
        why_it_happens: "Compose substitutes an empty string for an unset variable and only warns, so \
            \"${PORT}:80\" silently becomes an ephemeral port; `${PORT:?}` makes compose refuse to start. \
            The linter cannot check ports it cannot resolve.",
        example: "services:\n  web:\n    ports: [\"${WEB_PORT}:80\"]",
        fix: "Set the variable where the linter runs, or write a default: \"${WEB_PORT:-8080}:80\".",
    },
    LintRuleDoc {
        code: "PWL006",
        name: "scaled-fixed-port",
        severity: Severity::Error,
        what_it_detects: "A service with `scale` or `deploy.replicas` above 1 publishes a fixed host port, \
            or a host range smaller than the number of replicas.",
        why_it_happens: "Every replica asks for the same host port; the first gets it and the others fail \
            with \"port is already allocated\".",
        example: "services:\n  worker:\n    scale: 3\n    ports: [\"8080:80\"]",
        fix: "Publish a range at least as wide as the replica count with one container port \
            (\"8080-8082:80\"), or drop the host port.",
    },
    LintRuleDoc {
        code: "PWL007",
        name: "privileged-port",
        severity: Severity::Info,
        what_it_detects: "A host port below 1024.",
        why_it_happens: "A rootless engine cannot bind it and refuses the container (\"cannot expose \
            privileged port\") unless net.ipv4.ip_unprivileged_port_start is lowered. Rootful engines \
            are unaffected, so this is a note and does not change the exit code.",
        example: "services:\n  web:\n    ports: [\"80:80\"]",
        fix: "With a rootless engine, publish 1024 or above (\"8080:80\") or lower \
            net.ipv4.ip_unprivileged_port_start.",
    },
    LintRuleDoc {
        code: "PWL008",
        name: "host-network-ports",
        severity: Severity::Warning,
        what_it_detects: "A service with `network_mode: host` that also lists `ports`.",
        why_it_happens: "With host networking the engine discards published ports: the program binds \
            host ports itself, so the mappings are misleading and this check cannot see what it binds.",
        example: "services:\n  proxy:\n    network_mode: host\n    ports: [\"8080:80\"]",
        fix: "Drop `ports:` from the service, or leave host networking.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(files: &[(&str, &str)]) -> LintReport {
        let sources: Vec<ComposeSource> =
            files.iter().map(|(n, t)| ComposeSource { name: (*n).into(), text: (*t).into() }).collect();
        lint_sources(&sources, &LintOptions::default()).unwrap()
    }

    fn codes(r: &LintReport) -> Vec<&str> {
        r.findings.iter().filter(|f| f.severity > Severity::Info).map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn explicit_v4_and_v6_wildcards_coexist() {
        // Measured on Engine 20.10.24: `-p 0.0.0.0:18081:80` and `-p [::]:18081:80` both run.
        let r = lint(&[(
            "c.yaml",
            "services:\n  a:\n    ports: [\"0.0.0.0:8080:80\"]\n  b:\n    ports: [\"[::]:8080:80\"]\n",
        )]);
        assert!(codes(&r).is_empty(), "{r:?}");
    }

    #[test]
    fn addressless_overlaps_both_families() {
        for other in ["127.0.0.1:8080:80", "[::1]:8080:80", "[::]:8080:80", "0.0.0.0:8080:80"] {
            let text = format!("services:\n  a:\n    ports: [\"8080:80\"]\n  b:\n    ports: [\"{other}\"]\n");
            let r = lint(&[("c.yaml", &text)]);
            assert_eq!(codes(&r), ["PWL002"], "{other}: {r:?}");
        }
    }

    #[test]
    fn override_same_key_is_merged_not_duplicated() {
        let base = "services:\n  web:\n    ports:\n      - \"8080:80\"\n";
        let same = "services:\n  web:\n    ports:\n      - target: 80\n        published: 8080\n";
        let r = lint(&[("a.yaml", base), ("b.yaml", same)]);
        assert!(codes(&r).is_empty(), "{r:?}");
        assert_eq!(r.publishes, 1);
        let changed = "services:\n  web:\n    ports:\n      - \"8080:8000\"\n";
        let r = lint(&[("a.yaml", base), ("b.yaml", changed)]);
        assert_eq!(codes(&r), ["PWL004"]);
        assert_eq!(r.findings[0].locations.len(), 2);
        let replaced = "services:\n  web:\n    ports: !override\n      - \"8080:8000\"\n";
        assert!(codes(&lint(&[("a.yaml", base), ("b.yaml", replaced)])).is_empty());
        let reset = "services:\n  web:\n    ports: !reset []\n";
        assert_eq!(lint(&[("a.yaml", base), ("b.yaml", reset)]).publishes, 0);
    }

    #[test]
    fn env_file_lines() {
        let env = parse_env_file("# c\nexport A=1\nB = \"two\"\nC='3'\nnot a pair\n");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("two"));
        assert_eq!(env.get("C").map(String::as_str), Some("3"));
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn every_rule_is_documented_once() {
        let codes: BTreeSet<&str> = rule_docs().iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), rule_docs().len());
        assert_eq!(find_rule("pwl004").map(|r| r.name), Some("duplicate-in-service"));
        assert_eq!(find_rule("scaled-fixed-port").map(|r| r.code), Some("PWL006"));
    }
}
