//! PW004 rootlesskit-holds: a rootless engine's rootlesskit holds the port for one of its containers.

use super::{describe_listener, describe_process, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{Listener, ProcessRef};
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
        // Every socket of one rootless engine on the port (rootlesskit's on the host, the
        // docker-proxies inside its namespace) is one cause: one finding, host side first.
        let mut held: Vec<(&Listener, Option<&ProcessRef>)> = cx
            .blocking_listeners()
            .map(|l| (l, l.owners.iter().find(|p| p.is_rootless_port_driver())))
            .filter(|(l, kit)| kit.is_some() || l.netns != "host")
            .collect();
        if held.is_empty() {
            return Vec::new();
        }
        held.sort_by_key(|(l, kit)| (kit.is_none(), l.netns != "host"));
        // The rootless daemon behind these sockets, when its process was read: its socket and the
        // container its files name.
        let daemon = cx.evidence.daemons.as_ref().and_then(|ds| {
            ds.processes.iter().filter(|d| d.rootless && Some(d.pid) != ds.ours).find(|d| {
                held.iter().flat_map(|(l, _)| &l.owners).any(|p| d.holds.iter().any(|h| h.pid == p.pid))
            })
        });
        // Name the rootless container when the engine we talk to is that rootless engine, else
        // from the rootless daemon's own files.
        let ours = cx
            .evidence
            .docker
            .as_ref()
            .filter(|d| d.rootless)
            .and_then(|_| cx.containers_binding().find(|(c, _)| c.state.holds_ports()).map(|(c, _)| c));
        // After a publish that worked, rootlesskit holds the port for the subject itself.
        if ours.is_some_and(|c| cx.subject == Some(c.name.as_str())) {
            return Vec::new();
        }
        let holder: Option<String> = ours
            .map(|c| c.name.clone())
            .or_else(|| daemon.and_then(|d| d.holds.iter().find_map(|h| h.container_name.clone())));
        let mut evidence: Vec<EvidenceItem> = held
            .iter()
            .map(|(l, _)| EvidenceItem::new("sockets", format!("{} is bound", describe_listener(l))))
            .collect();
        let kit = held.iter().find_map(|(_, kit)| *kit);
        if let Some(p) = kit {
            evidence.push(EvidenceItem::new(
                "process",
                format!("{} is a rootless engine's port driver", describe_process(p)),
            ));
        }
        if let Some(d) = daemon {
            evidence.push(EvidenceItem::new("process", format!("rootless dockerd {}", d.describe())));
        }
        if let Some(c) = ours {
            evidence.push(EvidenceItem::new(
                "docker",
                format!("rootless container {} publishes the port", c.display()),
            ));
        } else if let Some(name) = &holder {
            evidence.push(EvidenceItem::new(
                "docker",
                format!("container {name} of the rootless engine publishes the port (its config in that data root)"),
            ));
        }
        evidence.extend(cx.error_evidence());
        let socket = daemon.and_then(|d| d.socket()).map(str::to_owned).unwrap_or_else(|| {
            let uid = kit.map(|_| held[0].0.uid);
            uid.map_or("unix:///run/user/UID/docker.sock".to_owned(), |u| {
                format!("unix:///run/user/{u}/docker.sock")
            })
        });
        let first = describe_listener(held[0].0);
        let summary = match &holder {
            Some(name) => format!("rootlesskit holds {first} for rootless container {name}"),
            None => format!("rootlesskit holds {first} for a rootless engine's container"),
        };
        // Talking to the rootless engine already, the plain `docker` reaches it.
        let docker_host = if ours.is_some() { None } else { Some(socket) };
        let mut remedies = Vec::new();
        if let Some(name) = &holder {
            remedies.push(Remedy::fix(
                Risk::Disruptive,
                Action::StopContainer { container: name.clone(), docker_host: docker_host.clone() },
                format!("stops rootless container {name}: what it serves goes down, and rootlesskit releases the port"),
            ));
        }
        remedies.push(remedy::other_port(q));
        remedies.push(Remedy::check(
            Action::ListPublishers { port: q.port, proto: q.proto, docker_host },
            "asks the rootless engine which of its containers publishes the port",
        ));
        vec![Finding::new(DOC.code, summary, evidence, Confidence::High, remedies)]
    }
}
