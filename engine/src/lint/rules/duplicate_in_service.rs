//! PWL004 duplicate-in-service: one service, after the merge, publishes a host port twice.

use std::collections::BTreeSet;

use crate::lint::collision::{collisions, declared_groups};
use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct DuplicateInService;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
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
};

impl LintRule for DuplicateInService {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        let groups = declared_groups(model);
        collisions(&groups)
            .iter()
            .filter(|c| c.same_service())
            .map(|c| {
                let files: BTreeSet<&str> = c.locations.iter().map(|l| l.file.as_str()).collect();
                let merged = if files.len() > 1 {
                    " An override file appends to `ports` rather than replacing it (compose merges ports by \
                     address, container port, host port and protocol)."
                } else {
                    ""
                };
                let (severity, outcome) = if c.picks_one() {
                    (Severity::Warning, "its container may fail to start, depending on the port the range picks")
                } else {
                    (Severity::Error, "its container cannot start (\"port is already allocated\" or \"address already in use\")")
                };
                c.finding(
                    &DOC,
                    severity,
                    format!(
                        "service `{}` publishes {} twice, as `{}` and `{}`: {outcome}.{merged}",
                        c.a.service,
                        c.at,
                        model.spec(c.a),
                        model.spec(c.b)
                    ),
                    if merged.is_empty() {
                        "remove one of the two entries".into()
                    } else {
                        "write `ports: !override` in the override file to replace the list, or remove the entry from \
                         one file"
                            .into()
                    },
                )
            })
            .collect()
    }
}
