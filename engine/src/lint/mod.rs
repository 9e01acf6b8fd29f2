//! `portwhy lint`: host ports that the services of a compose project would fight over, before deploy.
//!
//! Files are read in the order `docker compose -f a -f b` merges them (`merge`), every `ports`
//! entry is expanded the way compose expands it (`spec`, `interpolate`), and the rules
//! (`rules/`, one file each) check the merged `Model` with the same address rules the diagnosis
//! uses (`overlap::Coverage`). Bad input (unreadable file, invalid YAML, a port entry compose
//! itself would refuse) is a `LintError`; everything else is a finding.

mod collision;
mod discover;
mod dotenv;
mod error;
mod finding;
mod interpolate;
mod merge;
mod model;
mod render;
mod rule;
mod rules;
mod source;
mod spec;

use std::path::PathBuf;

pub use discover::{find_project, FileRequest, Project, DEFAULT_FILE_NAMES, DEFAULT_OVERRIDE_FILE_NAMES};
pub use dotenv::LintOptions;
pub use error::LintError;
pub use finding::{LintFinding, LintReport, Severity, SourceLocation, LINT_SCHEMA_VERSION};
pub use merge::ComposeSource;
pub use render::render_human;
pub use rule::LintRuleDoc;
pub use rules::{find_rule, rule_docs};
pub use spec::PortSpan;

use model::Model;

/// One host port a service publishes after the merge, and the line that asks for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServicePublish {
    pub service: String,
    /// The address as written; `None` = every address.
    pub host_ip: Option<std::net::IpAddr>,
    /// The first host port of the entry; `None` = ephemeral.
    pub host_port: Option<u16>,
    pub target: u16,
    pub proto: crate::port::Proto,
    pub location: SourceLocation,
}

/// Every publish of every service after merging `sources` as compose does, service by service
/// (by name), each in declaration order: what the lab publishes and `--compose` points at.
pub fn service_publishes(
    sources: &[ComposeSource],
    options: &LintOptions,
) -> Result<Vec<ServicePublish>, LintError> {
    if sources.is_empty() {
        return Err(LintError::NoFiles);
    }
    let lookup = |name: &str| options.env.get(name).cloned();
    let model = Model::merge(sources, &lookup)?;
    let mut out = Vec::new();
    for (name, svc) in &model.services {
        for c in &svc.claims {
            out.push(ServicePublish {
                service: name.clone(),
                host_ip: c.publish.host_ip,
                host_port: c.publish.published.map(|p| p.start),
                target: c.publish.target,
                proto: c.publish.proto,
                location: model.entries[c.entry].location.clone(),
            });
        }
    }
    Ok(out)
}

/// Read and lint compose files, in merge order; `-` is stdin, as for `docker compose -f -`.
pub fn lint_files(paths: &[PathBuf], options: &LintOptions) -> Result<LintReport, LintError> {
    let sources = paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(p)
            };
            text.map(|text| ComposeSource { name: name.clone(), text })
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
    let model = Model::merge(sources, &lookup)?;
    let mut findings = rules::check(&model);
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
        publishes: model.publishes(),
        findings,
    })
}

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
    fn every_rule_is_documented_once() {
        let codes: std::collections::BTreeSet<&str> = rule_docs().iter().map(|r| r.code).collect();
        assert_eq!(codes.len(), rule_docs().len());
        assert_eq!(find_rule("pwl004").map(|r| r.name), Some("duplicate-in-service"));
        assert_eq!(find_rule("scaled-fixed-port").map(|r| r.code), Some("PWL006"));
    }
}
