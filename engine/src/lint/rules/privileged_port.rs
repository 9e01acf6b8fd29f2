//! PWL007 privileged-port: a host port below 1024 (a note: only rootless engines refuse it).

use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct PrivilegedPort;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
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
};

impl LintRule for PrivilegedPort {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        model
            .groups()
            .into_iter()
            .filter(|g| g.span.start < 1024)
            .map(|g| LintFinding {
                code: DOC.code.into(),
                name: DOC.name.into(),
                severity: Severity::Info,
                message: format!(
                    "service `{}` publishes {}/{}, below 1024: a rootless engine refuses it \
                     (\"cannot expose privileged port\") unless net.ipv4.ip_unprivileged_port_start allows it",
                    g.service, g.span, g.proto
                ),
                locations: g.locations.clone(),
                services: vec![g.service.clone()],
                host_ip: g.host_ip.map(|ip| ip.to_string()),
                ports: Some(g.span),
                proto: Some(g.proto),
                fix: "with a rootless engine, publish a port of 1024 or above (e.g. 8080:80)".into(),
            })
            .collect()
    }
}
