//! PW002 container-holds: another container publishes the port (running, restarting, or host network).

use super::{describe_listener, describe_process, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::Container;
use crate::parse::error::Stage;
use crate::remedy::{self, Action, Remedy, Risk};

pub struct ContainerHolds;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::ContainerHolds,
    title: "Another container holds the port",
    what_it_detects: "A running, paused or restarting container whose published ports overlap the \
        publish, or a `--network host` container whose process listens on the port. Names the \
        container and its compose project and service when labelled.",
    why_it_happens: "The engine keeps its own table of allocated host ports: a second container asking \
        for the same host address and port is refused before any bind (`port is already allocated`). \
        A crash-looping container (`--restart=always`) keeps its allocation between restarts. A \
        host-network container binds like any host process and gives `address already in use`.",
    example: "docker run -d --name web1 -p 8080:80 nginx\ndocker run -d --name web2 -p 8080:80 nginx\n\
        # Bind for 0.0.0.0:8080 failed: port is already allocated",
    fix: "Publish the new container on another port, or stop the holder (`docker stop web1`; with \
        compose, `docker compose -p PROJECT stop SERVICE`). Created and stopped containers never \
        hold ports: removing them frees nothing.",
};

impl Rule for ContainerHolds {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let failed = cx.failed_container().map(|c| c.id.clone());
        let mut findings = Vec::new();
        let mut named = Vec::new();
        for (c, b) in cx.containers_binding() {
            if !c.state.holds_ports() || Some(&c.id) == failed.as_ref() || named.contains(&c.id) {
                continue;
            }
            named.push(c.id.clone());
            let host = b.host_ip.map_or("0.0.0.0 and ::".to_owned(), |ip| ip.to_string());
            let mut evidence = vec![EvidenceItem::new(
                "docker",
                format!(
                    "container {} ({}) is {} and publishes {host}:{} -> {}/{}",
                    c.display(),
                    c.short_id(),
                    c.state.as_str(),
                    b.host_port,
                    b.container_port,
                    b.proto
                ),
            )];
            if c.crash_looping() {
                evidence.push(EvidenceItem::new(
                    "docker",
                    format!(
                        "{} is crash-looping (restart policy {}, restarted {} times): it keeps its port between restarts",
                        c.name,
                        c.restart_policy.as_deref().unwrap_or("unknown"),
                        c.restart_count.map_or("an unknown number of".to_owned(), |n| n.to_string())
                    ),
                ));
            }
            for p in cx.evidence.docker.iter().flat_map(|d| d.proxies.iter()) {
                if p.host_port == q.port
                    && p.proto == q.proto
                    && c.addresses.values().any(|a| *a == p.container_ip)
                {
                    evidence.push(EvidenceItem::new(
                        "process",
                        format!(
                            "docker-proxy pid {} holds {}:{} for {}",
                            p.pid, p.host_ip, p.host_port, c.name
                        ),
                    ));
                }
            }
            evidence.extend(cx.error_evidence());
            findings.push(finding(
                cx,
                c,
                evidence,
                format!("container {} holds {host}:{}/{}", c.display(), b.host_port, b.proto),
            ));
        }
        // Host-network containers: their process owns the socket directly.
        for l in cx.blocking_listeners() {
            for p in &l.owners {
                let Some(cid) = &p.container_id else { continue };
                let Some(c) = cx.evidence.containers().iter().find(|c| &c.id == cid) else { continue };
                if named.contains(&c.id) {
                    continue;
                }
                named.push(c.id.clone());
                let mut evidence = vec![
                    EvidenceItem::new("sockets", format!("{} is bound", describe_listener(l))),
                    EvidenceItem::new(
                        "process",
                        format!(
                            "{} runs in container {} (network mode {})",
                            describe_process(p),
                            c.display(),
                            c.network_mode
                        ),
                    ),
                ];
                evidence.extend(cx.error_evidence());
                findings.push(finding(
                    cx,
                    c,
                    evidence,
                    format!(
                        "container {} ({} network) listens on {}",
                        c.display(),
                        c.network_mode,
                        describe_listener(l)
                    ),
                ));
            }
        }
        // The allocator's refusal names no holder; say so when no container was found.
        // Unless Docker answered and nothing holds the port at all: then the refusal is the
        // allocator's own stale state (stale-allocation), and no container is to blame.
        if findings.is_empty()
            && cx.error_stage() == Some(Stage::Allocated)
            && !super::stale_allocation::explains(cx)
        {
            let mut evidence = Vec::new();
            evidence.extend(cx.error_evidence());
            evidence.push(EvidenceItem::new(
                "docker",
                if cx.evidence.docker.is_some() {
                    "no running container publishes this port now: the engine's allocator still counts it \
                     (a container that just stopped, or state left by a daemon crash)"
                        .to_owned()
                } else if cx.unavailable("all") {
                    "containers were not read (offline), so the holder is not named".to_owned()
                } else {
                    "the Docker API could not be read, so the holder cannot be named".to_owned()
                },
            ));
            findings.push(Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
                summary: format!("the engine's allocator says another container holds {}", q),
                evidence,
                confidence: Confidence::Medium,
                remedies: vec![
                    remedy::other_port(q),
                    Remedy::check(
                        Action::ListPublishers { port: q.port, proto: q.proto, docker_host: None },
                        "lists the containers that publish the port, stopped ones included",
                    ),
                ],
            });
        }
        findings
    }
}

fn finding(cx: &Context<'_>, c: &Container, evidence: Vec<EvidenceItem>, summary: String) -> Finding {
    let q = cx.query();
    let mut remedies = vec![remedy::other_port(q)];
    if c.crash_looping() {
        remedies.push(Remedy::fix(
            Risk::Disruptive,
            Action::StopRestartLoop { container: c.name.clone() },
            format!("ends {}'s crash loop and frees the port; it stays stopped until started again", c.name),
        ));
    } else {
        let (action, who) = match (&c.compose_project, &c.compose_service) {
            (Some(p), Some(s)) => (
                Action::ComposeStop {
                    project: p.clone(),
                    service: s.clone(),
                    cli: remedy::ComposeCli::from_labels(&c.labels),
                },
                format!("service {s} of compose project {p}"),
            ),
            _ => (Action::StopContainer { container: c.name.clone(), docker_host: None }, c.name.clone()),
        };
        remedies.push(Remedy::fix(
            Risk::Disruptive,
            action,
            format!(
                "stops {who}: what it serves goes down; the port is freed and it can be started again later"
            ),
        ));
    }
    remedies.push(Remedy::fix(
        Risk::Destructive,
        Action::RemoveContainer { container: c.name.clone() },
        format!("removes {} and its writable layer (volumes stay); only if it is not needed", c.name),
    ));
    let confidence = match cx.error_stage() {
        None | Some(Stage::Allocated) | Some(Stage::HostBind) => Confidence::High,
        _ => Confidence::Medium,
    };
    Finding::new(DOC.code, summary, evidence, confidence, remedies)
}
