//! PWL003 overlapping-range: a host port range intersects another service's publish.

use crate::lint::collision::{collisions, declared_groups, Collision, OTHER_PORT_FIX};
use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct OverlappingRange;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
    code: "PWL003",
    name: "overlapping-range",
    severity: Severity::Error,
    what_it_detects: "A host port range intersects another service's publish. When a range maps to \
        one container port (\"9090-9091:8080\") the engine takes any one free port of it, so the clash \
        depends on start order and is a warning, unless the other publish covers the whole range.",
    why_it_happens: "A range \"8000-8005:80-85\" publishes every port in it; any port of it published \
        elsewhere is claimed twice. A pick-one range takes the first free port at start, which may be \
        the one a later service asked for by number.",
    example: "services:\n  app:\n    ports: [\"8000-8005:80-85\"]\n  metrics:\n    ports: [\"8003:9100\"]",
    fix: "Give the range and the other publish disjoint host ports.",
};

impl LintRule for OverlappingRange {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        let groups = declared_groups(model);
        collisions(&groups)
            .iter()
            .filter(|c| !c.same_service() && (c.picks_one() || !c.same_span()))
            .map(|c| if c.picks_one() { pick_one(model, c) } else { spans(model, c) })
            .collect()
    }
}

/// A range the engine picks one free port of, against another publish.
fn pick_one(model: &Model, c: &Collision<'_>) -> LintFinding {
    let (range, fixed) = if c.a.picks_one { (c.a, c.b) } else { (c.b, c.a) };
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
    c.finding(
        &DOC,
        severity,
        format!(
            "`{}` publishes `{}` (any one free port of {}) and `{}` publishes `{}`; they meet on {}: {outcome}.",
            range.service,
            model.spec(range),
            range.span,
            fixed.service,
            model.spec(fixed),
            c.at
        ),
        "give the range and the other publish disjoint host ports".into(),
    )
}

/// Two publishes of every port in their spans, the spans different but intersecting.
fn spans(model: &Model, c: &Collision<'_>) -> LintFinding {
    c.finding(
        &DOC,
        Severity::Error,
        format!(
            "`{}` publishes `{}` and `{}` publishes `{}`: both claim {}, so the second to start \
             fails (\"port is already allocated\").",
            c.a.service,
            model.spec(c.a),
            c.b.service,
            model.spec(c.b),
            c.at
        ),
        OTHER_PORT_FIX.into(),
    )
}
