//! PWL001 duplicate-host-port: two services publish the same address, host port and protocol.

use crate::lint::collision::{collisions, declared_groups, OTHER_PORT_FIX};
use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct DuplicateHostPort;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
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
};

impl LintRule for DuplicateHostPort {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        let groups = declared_groups(model);
        collisions(&groups)
            .iter()
            .filter(|c| !c.same_service() && !c.picks_one() && c.same_span() && c.same_address())
            .map(|c| {
                c.finding(
                    &DOC,
                    Severity::Error,
                    format!(
                        "services `{}` and `{}` both publish {}: the engine gives it to the first container that \
                         starts and refuses the second (\"port is already allocated\").",
                        c.a.service, c.b.service, c.at
                    ),
                    OTHER_PORT_FIX.into(),
                )
            })
            .collect()
    }
}
