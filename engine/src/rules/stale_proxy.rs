//! PW003 stale-proxy: a docker-proxy holds the port for a container that no longer runs.

use super::{describe_listener, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::remedy::{self, Action, Remedy, Risk};

pub struct StaleProxy;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::StaleProxy,
    title: "A leftover docker-proxy holds the port",
    what_it_detects: "A docker-proxy process bound to the port whose target address belongs to no \
        running container, or that runs while the daemon does not answer.",
    why_it_happens: "docker-proxy is a child of dockerd that holds the host port and forwards to the \
        container. When the daemon dies uncleanly or a container's cleanup fails, the proxy can \
        outlive the container: `docker ps` shows nothing on the port, yet the bind fails.",
    example:
        "ss -ltnp | grep 8080\n# LISTEN 0 4096 0.0.0.0:8080 ... users:((\"docker-proxy\",pid=2835,...))\n\
        docker ps --filter publish=8080   # empty",
    fix: "Stop the orphaned proxy (`kill PID`): it forwards to nothing, so nothing loses traffic. \
        Restarting dockerd also cleans up, at the cost of restarting containers without live-restore.",
};

impl Rule for StaleProxy {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let Some(docker) = &cx.evidence.docker else {
            return daemon_down(cx);
        };
        // The allocator refusing a port only leftover proxies hold is its own stale state: killing
        // the proxies does not free it (stale-allocation).
        if super::stale_allocation::explains(cx) {
            return Vec::new();
        }
        let mut findings = Vec::new();
        for p in &docker.proxies {
            if p.host_port != q.port || p.proto != q.proto {
                continue;
            }
            // A proxy of another live daemon forwards to that daemon's container (other-daemon).
            if cx.running_container_at(p.container_ip).is_some() || super::other_daemon::foreign(cx, p.pid) {
                continue;
            }
            let mut evidence = vec![
                EvidenceItem::new(
                    "process",
                    format!(
                        "docker-proxy pid {} forwards {}:{}/{} to {}:{}",
                        p.pid, p.host_ip, p.host_port, p.proto, p.container_ip, p.container_port
                    ),
                ),
                EvidenceItem::new("docker", format!("no running container has address {}", p.container_ip)),
            ];
            evidence.extend(cx.error_evidence());
            findings.push(Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
                summary: format!(
                    "a leftover docker-proxy (pid {}) holds {}:{}/{} for {}, where no container runs",
                    p.pid, p.host_ip, p.host_port, p.proto, p.container_ip
                ),
                evidence,
                confidence: Confidence::High,
                remedies: vec![
                    Remedy::fix(
                        // It forwards to no container, so no one is served through it.
                        Risk::Safe,
                        Action::StopProcess { pids: vec![p.pid], program: "docker-proxy".into() },
                        "ends a proxy that forwards to no container: the port is free and nothing running loses traffic",
                    ),
                    remedy::other_port(q),
                    remedy::restart_daemon(
                        cx.rootless(),
                        docker.live_restore,
                        "starts fresh proxies for the containers it runs and none for the others",
                    ),
                ],
            });
        }
        findings
    }
}

/// docker-proxy sockets while the daemon does not answer: it cannot be asked who they are for.
fn daemon_down(cx: &Context<'_>) -> Vec<Finding> {
    let q = cx.query();
    cx.blocking_listeners()
        .filter(|l| {
            l.owners.iter().any(|p| p.is_docker_proxy() && !super::other_daemon::foreign(cx, p.pid))
        })
        .map(|l| {
            let pids: Vec<String> =
                l.owners.iter().filter(|p| p.is_docker_proxy()).map(|p| p.pid.to_string()).collect();
            Finding {
                code: DOC.code,
                cause: DOC.code.name().into(),
                summary: format!(
                    "docker-proxy (pid {}) holds {} while the Docker API does not answer",
                    pids.join(", "),
                    describe_listener(l)
                ),
                evidence: vec![
                    EvidenceItem::new(
                        "sockets",
                        format!("{} is held by docker-proxy pid {}", describe_listener(l), pids.join(", ")),
                    ),
                    EvidenceItem::new(
                        "docker",
                        "the Docker API could not be read: the proxy's container cannot be checked"
                            .to_owned(),
                    ),
                ],
                confidence: Confidence::Medium,
                remedies: vec![
                    Remedy::fix(
                        Risk::Disruptive,
                        Action::StartDaemon { rootless: cx.rootless() },
                        "starts the daemon, which cleans up or re-adopts its proxies; containers with a restart policy start too",
                    ),
                    Remedy::fix(
                        Risk::Disruptive,
                        Action::StopProcess {
                            pids: l.owners.iter().filter(|p| p.is_docker_proxy()).map(|p| p.pid).collect(),
                            program: "docker-proxy".into(),
                        },
                        "ends the proxy; a container behind it, if one still runs, loses its published port",
                    ),
                    remedy::other_port(q),
                ],
            }
        })
        .collect()
}
