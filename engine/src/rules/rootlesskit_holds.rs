//! PW004 rootlesskit-holds: a rootless engine's rootlesskit holds the port for one of its containers.

use super::{describe_listener, describe_process, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::remedy::{self, Action, Remedy, Risk};

pub struct RootlesskitHolds;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::RootlesskitHolds,
    title: "rootlesskit holds the port for a rootless engine",
    what_it_detects: "A host socket on the port owned by rootlesskit, or a socket inside rootlesskit's \
        network namespace (where a rootless engine's docker-proxy and NAT rules live).",
    why_it_happens: "A rootless engine runs in its own user and network namespace. Its port driver \
        (rootlesskit's builtin driver or slirp4netns) binds the host port on the engine's behalf, so \
        `ss` shows rootlesskit, not docker-proxy, and the rootful `docker ps` knows nothing of it.",
    example: "# as user alice: docker run -d -p 8080:80 nginx   (rootless engine)\n\
        # as root: docker run -p 8080:80 nginx -> address already in use; ss shows rootlesskit",
    fix: "Publish on another port, or stop the rootless container: \
        `DOCKER_HOST=unix:///run/user/UID/docker.sock docker ps` finds it.",
};

impl Rule for RootlesskitHolds {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let mut findings = Vec::new();
        for l in cx.blocking_listeners() {
            let kit = l.owners.iter().find(|p| p.is_rootless_port_driver());
            let inside = l.netns != "host";
            if kit.is_none() && !inside {
                continue;
            }
            // Name the rootless container when the engine we talk to is that rootless engine.
            let holder =
                cx.evidence.docker.as_ref().filter(|d| d.rootless).and_then(|_| {
                    cx.containers_binding().find(|(c, _)| c.state.holds_ports()).map(|(c, _)| c)
                });
            // After a publish that worked, rootlesskit holds the port for the subject itself.
            if holder.is_some_and(|c| cx.subject == Some(c.name.as_str())) {
                continue;
            }
            let mut evidence =
                vec![EvidenceItem::new("sockets", format!("{} is bound", describe_listener(l)))];
            if let Some(p) = kit {
                evidence.push(EvidenceItem::new(
                    "process",
                    format!("{} is a rootless engine's port driver", describe_process(p)),
                ));
            }
            let uid = kit.map(|_| l.uid);
            if let Some(c) = holder {
                evidence.push(EvidenceItem::new(
                    "docker",
                    format!("rootless container {} publishes the port", c.display()),
                ));
            }
            evidence.extend(cx.error_evidence());
            let socket =
                uid.map_or("/run/user/UID/docker.sock".to_owned(), |u| format!("/run/user/{u}/docker.sock"));
            findings.push(Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
                summary: match holder {
                    Some(c) => {
                        format!("rootlesskit holds {} for rootless container {}", describe_listener(l), c.display())
                    }
                    None => format!(
                        "rootlesskit holds {} for a rootless engine's container",
                        describe_listener(l)
                    ),
                },
                evidence,
                confidence: Confidence::High,
                remedies: {
                    let docker_host = Some(format!("unix://{socket}"));
                    let mut r = vec![
                        remedy::other_port(q),
                        Remedy::check(
                            Action::ListPublishers { port: q.port, proto: q.proto, docker_host: docker_host.clone() },
                            "asks the rootless engine which of its containers publishes the port",
                        ),
                    ];
                    if let Some(c) = holder {
                        r.push(Remedy::fix(
                            Risk::Disruptive,
                            Action::StopContainer { container: c.name.clone(), docker_host },
                            format!("stops rootless container {}: what it serves goes down, and rootlesskit releases the port", c.name),
                        ));
                    }
                    r
                },
            });
        }
        findings
    }
}
