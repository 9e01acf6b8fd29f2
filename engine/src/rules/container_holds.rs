//! PW002 container-holds: another container publishes the port (running, restarting, or host network).

use super::compose_lines::{self, PortLine};
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
        container and its compose project and service when labelled, and the lines of the compose \
        files that ask for the port. Also the container that asks for the same host port twice \
        (an override's `ports` appended to the base file's): its own first mapping holds it.",
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
        if let Some(f) = twice(cx) {
            findings.push(f);
        }
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
            let summary = format!("container {} holds {host}:{}/{}", c.display(), b.host_port, b.proto);
            findings.push(match cx.failed_container().filter(|f| same_project(c, f)) {
                Some(f) => same_project_finding(cx, c, f, evidence, summary),
                None => finding(cx, c, evidence, summary),
            });
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

fn same_project(holder: &Container, failed: &Container) -> bool {
    holder.compose_project.is_some() && holder.compose_project == failed.compose_project
}

/// Where a compose container's service asks for the port, as evidence lines.
fn line_evidence(lines: &[PortLine], service: &str) -> Vec<EvidenceItem> {
    lines
        .iter()
        .map(|l| {
            EvidenceItem::new(
                "compose",
                format!("{}:{}: service {service} asks `{}`", l.file, l.line, l.text.trim()),
            )
        })
        .collect()
}

/// The holder is another service of the failing container's own project: stopping it does not
/// last (the next `docker compose up` starts it again), so the fix is an edit of the file.
fn same_project_finding(
    cx: &Context<'_>,
    c: &Container,
    failed: &Container,
    mut evidence: Vec<EvidenceItem>,
    summary: String,
) -> Finding {
    let q = cx.query();
    let project = c.compose_project.as_deref().unwrap_or_default();
    let holder = c.compose_service.as_deref().unwrap_or(&c.name);
    let asker = failed.compose_service.as_deref().unwrap_or(&failed.name);
    let holder_lines = compose_lines::port_lines(cx.evidence, c, q).unwrap_or_default();
    evidence.extend(line_evidence(&holder_lines, holder));
    evidence
        .extend(line_evidence(&compose_lines::port_lines(cx.evidence, failed, q).unwrap_or_default(), asker));
    let mut remedies = Vec::new();
    if let Some(edit) = holder_lines.last().and_then(|l| compose_lines::move_to_ephemeral(l, q)) {
        remedies.push(Remedy::fix(
            Risk::Disruptive,
            edit,
            format!(
                "then `docker compose up -d`: {holder} is recreated on a host port the engine picks                  (`docker compose port {holder} <container-port>` prints it), so its clients must change;                  {asker} gets {}",
                q.port
            ),
        ));
    }
    remedies.push(remedy::other_port(q));
    let confidence = match cx.error_stage() {
        None | Some(Stage::Allocated) | Some(Stage::HostBind) => Confidence::High,
        _ => Confidence::Medium,
    };
    Finding::new(
        DOC.code,
        format!("{summary}: services {holder} and {asker} of compose project {project} both publish it"),
        evidence,
        confidence,
        remedies,
    )
}

/// The failing container asks for the queried host port more than once (compose appended an
/// override's entry to the base file's list): its own first mapping holds the port the second
/// asks for, and nothing else does.
fn twice(cx: &Context<'_>) -> Option<Finding> {
    let q = cx.query();
    let f = cx.failed_container()?;
    let asks = cx.own_asks(f);
    if asks.len() < 2 {
        return None;
    }
    let targets: Vec<String> = asks.iter().map(|b| format!("{}/{}", b.container_port, b.proto)).collect();
    let mut evidence = vec![EvidenceItem::new(
        "docker",
        format!(
            "container {} ({}) is {} and asks for host port {} {} times, for container ports {}",
            f.display(),
            f.short_id(),
            f.state.as_str(),
            q.port,
            asks.len(),
            targets.join(" and ")
        ),
    )];
    let lines = compose_lines::port_lines(cx.evidence, f, q).unwrap_or_default();
    evidence.extend(line_evidence(&lines, f.compose_service.as_deref().unwrap_or(&f.name)));
    evidence.extend(cx.error_evidence());
    let mut remedies = Vec::new();
    // An override file's entry appended to the base file's: the override meant to replace it.
    let appended = lines.last().filter(|last| lines.first().is_some_and(|first| first.file != last.file));
    let cli = remedy::ComposeCli::from_labels(&f.labels);
    if let Some(edit) = appended.and_then(|l| compose_lines::override_ports(cx.evidence, l, &cli)) {
        remedies.push(Remedy::fix(
            Risk::Safe,
            edit,
            "then `docker compose up -d`: the override's `ports` replaces the base file's list instead of              adding to it (Compose 2.24.4 or later), so the service asks for the port once",
        ));
    }
    remedies.push(remedy::other_port(q));
    let who = match (&f.compose_project, &f.compose_service) {
        (Some(p), Some(s)) => format!("service {s} of compose project {p}"),
        _ => format!("container {}", f.name),
    };
    Some(Finding::new(
        DOC.code,
        format!(
            "{who} asks for {} twice ({}): its own first mapping holds the port",
            match asks[0].host_ip {
                Some(ip) => format!("{}/{}", std::net::SocketAddr::new(ip, q.port), q.proto),
                None => format!("{}/{} on 0.0.0.0 and ::", q.port, q.proto),
            },
            targets.join(", ")
        ),
        evidence,
        Confidence::High,
        remedies,
    ))
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
