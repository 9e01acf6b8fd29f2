//! The merge: compose files read in order into one `Model`, the way `docker compose -f a -f b`
//! merges them (compose-spec `13-merge.md`), every `ports` entry parsed and interpolated as
//! compose does. A file compose itself would refuse is a `LintError`.

use std::fmt::Write as _;

use serde_yaml_ng::Value;

use super::error::LintError;
use super::finding::SourceLocation;
use super::interpolate;
use super::model::{Claim, Entry, Model, Reading, UnresolvedPort};
use super::source::LineIndex;
use super::spec::{self, Publish, SpecError};

/// One compose file's name (as it should be reported) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSource {
    pub name: String,
    pub text: String,
}

/// Looks a variable up for interpolation.
pub(crate) type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl Model {
    /// Merge the files in order; variables are looked up with `lookup`.
    pub(crate) fn merge(sources: &[ComposeSource], lookup: &Lookup<'_>) -> Result<Self, LintError> {
        let mut model = Self::default();
        for source in sources {
            model.merge_file(source, lookup)?;
        }
        Ok(model)
    }

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
            let reading = match &result {
                Ok(p) if p.iter().all(|p| p.published.is_none()) => Reading::Ephemeral,
                Ok(_) => Reading::Publishes,
                Err(e) => Reading::Refused(e.to_string()),
            };
            self.unresolved.push(UnresolvedPort {
                service: service.to_owned(),
                written,
                spec: spec.clone(),
                location: loc,
                names: unresolved.iter().map(|u| u.name.clone()).collect(),
                required: unresolved.iter().filter_map(|u| u.required.clone()).collect(),
                reading,
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
