//! PWL005 unresolved-variable: a port entry uses a variable with no value and no default.

use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::{Model, Reading};
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct UnresolvedVariable;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
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
};

impl LintRule for UnresolvedVariable {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        model
            .unresolved
            .iter()
            .map(|u| {
                let spec = &u.spec;
                let outcome = match (&u.reading, u.required.is_empty()) {
                    (_, false) => format!("compose refuses to start without it ({})", u.required.join("; ")),
                    (Reading::Ephemeral, true) => {
                        format!("compose substitutes an empty string, giving `{spec}`: an ephemeral host port")
                    }
                    (Reading::Publishes, true) => format!("compose substitutes an empty string, giving `{spec}`"),
                    (Reading::Refused(e), true) => {
                        format!("compose substitutes an empty string, giving `{spec}`, which it refuses: {e}")
                    }
                };
                LintFinding {
                    code: DOC.code.into(),
                    name: DOC.name.into(),
                    severity: Severity::Warning,
                    message: format!(
                        "`{}` of service `{}` uses {} that is not set here; {outcome}. \
                         Host ports that depend on it were not checked.",
                        u.written,
                        u.service,
                        u.names.iter().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
                    ),
                    locations: vec![u.location.clone()],
                    services: vec![u.service.clone()],
                    host_ip: None,
                    ports: None,
                    proto: None,
                    fix: format!(
                        "set {} in the environment or the project's .env file, or give a default: `${{{}:-8080}}`",
                        u.names.join(", "),
                        u.names[0]
                    ),
                }
            })
            .collect()
    }
}
