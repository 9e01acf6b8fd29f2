//! PWL008 host-network-ports: `network_mode: host` with `ports`, which the engine discards.

use crate::lint::finding::{LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct HostNetworkPorts;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
    code: "PWL008",
    name: "host-network-ports",
    severity: Severity::Warning,
    what_it_detects: "A service with `network_mode: host` that also lists `ports`.",
    why_it_happens: "With host networking the engine discards published ports: the program binds \
        host ports itself, so the mappings are misleading and this check cannot see what it binds.",
    example: "services:\n  proxy:\n    network_mode: host\n    ports: [\"8080:80\"]",
    fix: "Drop `ports:` from the service, or leave host networking.",
};

impl LintRule for HostNetworkPorts {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        model
            .services
            .iter()
            .filter(|(_, svc)| !svc.claims.is_empty())
            .filter_map(|(name, svc)| Some((name, svc.host_network.as_ref()?)))
            .map(|(name, loc)| LintFinding {
                code: DOC.code.into(),
                name: DOC.name.into(),
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
                fix: "drop `ports:` from this service, or leave host networking and keep the mappings".into(),
            })
            .collect()
    }
}
