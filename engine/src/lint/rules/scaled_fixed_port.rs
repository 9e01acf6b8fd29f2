//! PWL006 scaled-fixed-port: replicas above 1 with a fixed host port, or a range narrower than them.

use crate::lint::finding::{plural, LintFinding, Severity};
use crate::lint::model::Model;
use crate::lint::rule::{LintRule, LintRuleDoc};

pub(crate) struct ScaledFixedPort;

pub(crate) static DOC: LintRuleDoc = LintRuleDoc {
    code: "PWL006",
    name: "scaled-fixed-port",
    severity: Severity::Error,
    what_it_detects: "A service with `scale` or `deploy.replicas` above 1 publishes a fixed host port, \
        or a host range smaller than the number of replicas.",
    why_it_happens: "Every replica asks for the same host port; the first gets it and the others fail \
        with \"port is already allocated\". With a range (one container port on any port of it), the \
        replicas past its width fail with \"all ports are allocated\" (measured with Compose 2.26.1 and 2.40.3 on Engine 26.1, 28.5 and 29.7).",
    example: "services:\n  worker:\n    scale: 3\n    ports: [\"8080:80\"]",
    fix: "Publish a range at least as wide as the replica count with one container port \
        (\"8080-8082:80\"), or drop the host port.",
};

impl LintRule for ScaledFixedPort {
    fn doc(&self) -> &'static LintRuleDoc {
        &DOC
    }

    fn check(&self, model: &Model) -> Vec<LintFinding> {
        let mut out = Vec::new();
        for g in model.groups() {
            let Some((n, loc)) = &model.services[&g.service].replicas else { continue };
            let n = *n;
            let capacity = if g.picks_one { g.span.count() } else { 1 };
            if n <= capacity {
                continue;
            }
            let what = if g.picks_one {
                format!("the host range {} holds only {capacity} port{}", g.span, plural(capacity as usize))
            } else {
                format!(
                    "every replica asks for the same host port{} {}",
                    plural(g.span.count() as usize),
                    g.span
                )
            };
            let mut locations = vec![loc.clone()];
            locations.extend(g.locations.iter().cloned());
            out.push(LintFinding {
                code: DOC.code.into(),
                name: DOC.name.into(),
                severity: Severity::Error,
                message: format!(
                    "service `{}` runs {n} replicas and publishes `{}`: {what}, so only {} and the others \
                     fail with \"{}\"",
                    g.service,
                    model.spec(&g),
                    if capacity == 1 { "one starts".to_owned() } else { format!("{capacity} start") },
                    // The allocator's words when no port of the range is left (portallocator's
                    // ErrAllPortsAllocated), as compose printed them for a range.
                    if g.picks_one { "all ports are allocated" } else { "port is already allocated" }
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
                    model.target_of(&g)
                ),
            });
        }
        out
    }
}
