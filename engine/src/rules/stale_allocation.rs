//! PW015 stale-allocation: the allocator refuses a port that no container, proxy or socket holds.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::Stage;
use crate::remedy::{self, Action, Remedy};

pub struct StaleAllocation;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::StaleAllocation,
    title: "The daemon still counts a port nothing holds",
    what_it_detects: "`Bind for IP:P failed: port is already allocated` while the Docker API answers \
        and no running container publishes P, and nothing but docker-proxies left by an earlier \
        daemon (forwarding to no container) is bound to it: the refusal comes from the daemon's own bookkeeping, not from anything that holds \
        the port. Certain when no stopped or created container asks for P either (one that is \
        still being torn down could be what the allocator counts).",
    why_it_happens: "The engine keeps a table of allocated host ports in memory and rebuilds it \
        from the endpoints it restores at start. A daemon killed mid-start or mid-cleanup, an \
        unclean shutdown, or a live-restore that brings back an endpoint whose container is gone \
        leaves an allocation behind that no container owns. Measured on 20.10.24: a --live-restore \
        daemon restarted under a running container keeps that container's allocation after the \
        container is stopped and removed, and the old docker-proxies stay too; killing them does \
        not free the port, a daemon restart does. `docker ps -a` shows nothing on the port, yet \
        every publish of it is refused.",
    example: "docker run -p 8080:80 nginx\n\
        # Bind for 0.0.0.0:8080 failed: port is already allocated\n\
        docker ps -a --filter publish=8080   # empty\nss -ltn 'sport = :8080'            # empty",
    fix: "Restart the daemon (`systemctl restart docker`): it rebuilds the table from the containers \
        it runs. Without live-restore every running container stops and only those with a restart \
        policy come back. If the refusal survives a restart, the stale endpoint is stored on disk \
        (`/var/lib/docker/network/files/local-kv.db`); stop the daemon, move that file aside, and \
        start it again. Until then, publish on another port.",
};

impl Rule for StaleAllocation {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        if cx.error_stage() != Some(Stage::Allocated) {
            return Vec::new();
        }
        let q = cx.query();
        let failed = cx.failed_container().map(|c| c.id.as_str());
        let publishers: Vec<_> =
            cx.containers_binding().filter(|(c, _)| Some(c.id.as_str()) != failed).map(|(c, _)| c).collect();
        // The failed container asking for the port twice is refused by its own first mapping:
        // nothing is stale (container-holds names it).
        if publishers.iter().any(|c| c.state.holds_ports()) || cx.failed_asks_twice() {
            return Vec::new();
        }
        // docker-proxies a daemon restart left behind (live-restore keeps them, the new daemon
        // does not adopt them) do not explain the refusal: killing them leaves the allocator
        // refusing just the same (measured on 20.10.24, stale-allocation.json). Any other holder
        // does, and its own rule names it.
        let leftover = |pid: u32| {
            cx.evidence.docker.iter().flat_map(|d| d.proxies.iter()).any(|p| {
                p.pid == pid
                    && cx.running_container_at(p.container_ip).is_none()
                    && !super::other_daemon::foreign(cx, pid)
            })
        };
        let proxies: Vec<&crate::evidence::ProxyProcess> = cx
            .evidence
            .docker
            .iter()
            .flat_map(|d| d.proxies.iter())
            .filter(|p| p.host_port == q.port && p.proto == q.proto)
            .collect();
        if proxies.iter().any(|p| !leftover(p.pid))
            || cx
                .blocking_listeners()
                .any(|l| l.owners.is_empty() || !l.owners.iter().all(|o| leftover(o.pid)))
        {
            return Vec::new();
        }
        let mut evidence: Vec<EvidenceItem> = cx.error_evidence().into_iter().collect();
        let Some(docker) = &cx.evidence.docker else {
            // The API did not answer (or was not asked): the holder may be a container it would
            // have named, so this stays the less likely reading beside container-holds.
            if cx.unavailable("all") {
                return Vec::new();
            }
            evidence.push(EvidenceItem::new(
                "docker",
                "the Docker API could not be read: whether a container publishes the port is unknown",
            ));
            return vec![finding(cx, evidence, Confidence::Low)];
        };
        evidence.push(EvidenceItem::new(
            "docker",
            format!(
                "none of the {} containers on Docker Engine {} holds {}:{}/{}",
                docker.containers.len(),
                docker.version,
                q.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string()),
                q.port,
                q.proto
            ),
        ));
        for c in &publishers {
            evidence.push(EvidenceItem::new(
                "docker",
                format!(
                    "container {} is {} and asks for the port, but a container that does not run holds none",
                    c.display(),
                    c.state.as_str()
                ),
            ));
        }
        if proxies.is_empty() {
            evidence.push(EvidenceItem::new(
                "process",
                format!("no docker-proxy forwards port {}/{}", q.port, q.proto),
            ));
        }
        for p in &proxies {
            evidence.push(EvidenceItem::new(
                "process",
                format!(
                    "docker-proxy pid {} still forwards {}:{}/{} to {}, where no container runs: a leftover of an earlier daemon, which the allocator's refusal outlives",
                    p.pid, p.host_ip, p.host_port, p.proto, p.container_ip
                ),
            ));
        }
        let sockets_read = cx.evidence.sockets.is_some();
        evidence.push(EvidenceItem::new(
            "sockets",
            match (sockets_read, proxies.is_empty()) {
                (false, _) => "the listening sockets could not be read".to_owned(),
                (true, true) => format!("no socket is bound to port {}/{}", q.port, q.proto),
                (true, false) => format!("only those docker-proxies hold port {}/{}", q.port, q.proto),
            },
        ));
        // A stopped publisher may be one the daemon is still tearing down; unread sockets may hide
        // a holder. Either leaves the allocator's state the likeliest reading, not a certain one.
        let confidence =
            if publishers.is_empty() && sockets_read { Confidence::High } else { Confidence::Medium };
        vec![finding(cx, evidence, confidence)]
    }
}

fn finding(cx: &Context<'_>, evidence: Vec<EvidenceItem>, confidence: Confidence) -> Finding {
    let q = cx.query();
    Finding::new(
        DOC.code,
        format!(
            "the daemon still counts {q} as allocated, but no running container holds it: state left by a crash, an unclean shutdown or a daemon restart under live-restore"
        ),
        evidence,
        confidence,
        vec![
            remedy::restart_daemon(
                cx.rootless(),
                cx.live_restore(),
                "rebuilds its table of allocated ports from the containers it runs",
            ),
            remedy::other_port(q),
            Remedy::check(
                Action::ListPublishers { port: q.port, proto: q.proto, docker_host: None },
                "lists the containers that publish the port, stopped ones included: empty when the allocation is stale",
            ),
        ],
    )
}

/// Whether the allocator's refusal is explained as stale state (Docker answered, nothing holds the
/// port): container-holds then has no holder to name and stays silent.
pub fn explains(cx: &Context<'_>) -> bool {
    cx.evidence.docker.is_some() && !StaleAllocation.check(cx).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{Container, ContainerState, DockerState, Evidence, PortBinding};
    use crate::parse::error::classify;
    use crate::port::Proto;

    const TEXT: &str = "docker: Error response from daemon: driver failed programming external connectivity on endpoint web (0123): Bind for 0.0.0.0:8080 failed: port is already allocated.";

    fn container(name: &str, state: ContainerState, port: u16) -> Container {
        Container {
            id: format!("{name}0123456789abcdef"),
            name: name.into(),
            image: "busybox".into(),
            state,
            error: None,
            network_mode: "default".into(),
            compose_project: None,
            compose_service: None,
            restart_policy: None,
            restart_count: None,
            requested: vec![PortBinding {
                host_ip: None,
                host_port: port,
                container_port: 80,
                proto: Proto::Tcp,
            }],
            actual: Vec::new(),
            addresses: Default::default(),
            labels: Default::default(),
        }
    }

    fn evidence(containers: Vec<Container>) -> Evidence {
        let mut ev = Evidence::new("8080".parse().expect("query"));
        ev.sockets = Some(Vec::new());
        ev.docker = Some(DockerState { version: "20.10.24".into(), containers, ..DockerState::default() });
        ev
    }

    fn check(ev: &Evidence) -> Vec<Finding> {
        let e = classify(TEXT).expect("classifies");
        StaleAllocation.check(&Context { evidence: ev, error: Some(&e), subject: None })
    }

    #[test]
    fn certain_only_when_nothing_at_all_asks_for_the_port() {
        // The failed container itself asks for 8080: it is the subject, not a publisher.
        let ev = evidence(vec![container("web", ContainerState::Created, 8080)]);
        let f = check(&ev);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].confidence, Confidence::High);
        assert_eq!(f[0].remedies[0].action, Action::RestartDaemon { rootless: false });

        let ev = evidence(vec![
            container("web", ContainerState::Created, 8080),
            container("old", ContainerState::Exited, 8080),
        ]);
        assert_eq!(check(&ev)[0].confidence, Confidence::Medium, "a stopped publisher lowers it");

        let mut running = container("live", ContainerState::Running, 8080);
        running.actual = running.requested.clone();
        let ev = evidence(vec![container("web", ContainerState::Created, 8080), running]);
        assert!(check(&ev).is_empty(), "a running publisher is container-holds");
    }
}
