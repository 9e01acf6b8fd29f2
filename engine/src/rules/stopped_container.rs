//! PW011 stopped-container: created or stopped containers that publish the port, and do NOT hold it.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::remedy::{Action, Remedy};

pub struct StoppedContainer;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::StoppedContainer,
    title: "Created or stopped containers do not hold the port",
    what_it_detects: "Containers in the created, exited or dead state whose configuration publishes the \
        port. They are listed so they can be ruled out: this is a note, not a cause.",
    why_it_happens: "Ports are allocated when a container starts and released when it stops; a created \
        or exited container holds nothing. The guide \"Docker port binding: address already in use\" suggests a stopped \
        container may keep its port in some configurations; on Engine 20.10, 26 and 28 it did not. \
        A container whose start failed on the port stays `Created` with the daemon's error in \
        `State.Error`: that is the victim, not the holder.",
    example: "docker ps -a --filter publish=8080\n# web1  Exited (0)   <- holds nothing\n# web2  Created      <- its start failed on 8080",
    fix: "Nothing to free here: look at the findings above for the holder. Remove the failed container \
        only to tidy up.",
};

impl Rule for StoppedContainer {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut evidence = Vec::new();
        let mut names = Vec::new();
        for (c, b) in cx.containers_binding() {
            if c.state.holds_ports() || names.contains(&c.name) {
                continue;
            }
            names.push(c.name.clone());
            let host = b.host_ip.map_or("0.0.0.0 and ::".to_owned(), |ip| ip.to_string());
            let mut line = format!(
                "container {} is {} and asks for {host}:{}/{}: it holds nothing",
                c.display(),
                c.state.as_str(),
                b.host_port,
                b.proto
            );
            if let Some(err) = &c.error {
                line.push_str(&format!("; its last start failed: {err}"));
            }
            evidence.push(EvidenceItem::new("docker", line));
        }
        if evidence.is_empty() {
            return Vec::new();
        }
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: format!(
                "{} created/stopped container(s) publish this port but do not hold it: {}",
                names.len(),
                names.join(", ")
            ),
            evidence,
            confidence: Confidence::Low,
            remedies: vec![Remedy::check(
                Action::ListPublishers { port: cx.query().port, proto: cx.query().proto, docker_host: None },
                "lists every container that publishes the port and its state",
            )],
        }]
    }
}
