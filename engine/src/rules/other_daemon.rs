//! PW017 other-daemon: the port is held for a second Docker daemon, not the one the CLI talks to.

use super::{describe_listener, Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::evidence::{DaemonHold, DaemonProcess};
use crate::remedy::{self, Action, Remedy, Risk};

pub struct OtherDaemon;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::OtherDaemon,
    title: "Another Docker daemon holds the port",
    what_it_detects: "A docker-proxy, dockerd or container process holding the port that belongs \
        to a rootful dockerd other than the one the CLI and portwhy talk to (another socket, \
        another data root; a rootless engine's holds are PW004's). Names that daemon by pid, socket and data root, and the container \
        when the daemon's files name it.",
    why_it_happens: "Two engines can run on one host: the snap and the distribution's package \
        (`snap install docker` beside `apt install docker.io`), a second daemon started for CI with its own `-H` and `--data-root`. Each keeps \
        its own containers and its own port table, so `docker ps` on one shows nothing of the \
        other's, while both bind the same host ports. The holder then looks like a leftover proxy \
        or an invisible container.",
    example: "docker ps --filter publish=8080                          # empty\n\
        ss -ltnp 'sport = :8080'   # docker-proxy pid 4121, child of dockerd pid 812\n\
        docker -H unix:///run/docker-ci.sock ps --filter publish=8080   # web",
    fix: "Ask the other daemon: `docker -H unix:///THAT.sock ps --filter publish=PORT`, then stop \
        its container there (`docker -H unix:///THAT.sock stop NAME`), or publish on another port. \
        If the second engine is not wanted, remove it (`snap remove docker`, or stop and disable \
        its service) so one daemon owns the host's ports.",
};

impl Rule for OtherDaemon {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(daemons) = &cx.evidence.daemons else { return Vec::new() };
        let q = cx.query();
        // Which daemon the API answered from must be known, or every daemon would look foreign.
        // With no answer at all, none of them serves the endpoint.
        if daemons.ours.is_none() && cx.evidence.docker.is_some() {
            return Vec::new();
        }
        let mut by_daemon: Vec<(&DaemonProcess, Vec<(&DaemonHold, String)>)> = Vec::new();
        for l in cx.blocking_listeners() {
            for p in &l.owners {
                let Some((d, hold)) = daemons.foreign_holder(p.pid) else { continue };
                // A rootless engine's holds are PW004's, which names them in rootless terms.
                if d.rootless {
                    continue;
                }
                let line =
                    format!("{} holds {} ({} of that daemon)", who(hold), describe_listener(l), hold.via);
                match by_daemon.iter_mut().find(|(known, _)| known.pid == d.pid) {
                    Some((_, holds)) => holds.push((hold, line)),
                    None => by_daemon.push((d, vec![(hold, line)])),
                }
            }
        }
        by_daemon
            .into_iter()
            .map(|(d, holds)| {
                let socket = d.socket().map(str::to_owned);
                let mut evidence: Vec<EvidenceItem> =
                    holds.iter().map(|(_, line)| EvidenceItem::new("process", line.clone())).collect();
                evidence.push(EvidenceItem::new("process", format!("dockerd {}: {}", d.pid, d.cmdline)));
                evidence.push(EvidenceItem::new(
                    "docker",
                    match daemons.ours.and_then(|pid| daemons.processes.iter().find(|o| o.pid == pid)) {
                        Some(o) => format!("portwhy asked {}, served by dockerd {}", daemons.endpoint, o.describe()),
                        None => format!("no running dockerd serves {}, the endpoint portwhy asked", daemons.endpoint),
                    },
                ));
                let shared = socket.as_deref().is_some_and(|s| s == daemons.endpoint);
                if shared {
                    evidence.push(EvidenceItem::new(
                        "docker",
                        format!(
                            "both daemons name {}: the one started last owns the socket file, so `-H` cannot reach the other",
                            daemons.endpoint
                        ),
                    ));
                }
                evidence.extend(cx.error_evidence());
                let mut names: Vec<&str> = holds.iter().filter_map(|(h, _)| h.container_name.as_deref()).collect();
                // One container holds both families through two proxies.
                names.dedup();
                let summary = format!(
                    "{} holds {q} for another Docker daemon, {}, not the one at {}",
                    holds.first().map_or_else(String::new, |(h, _)| who(h)),
                    d.describe(),
                    daemons.endpoint
                );
                let host = socket.clone().filter(|_| !shared);
                let mut remedies = Vec::new();
                for name in names {
                    remedies.push(Remedy::fix(
                        Risk::Disruptive,
                        Action::StopContainer { container: name.to_owned(), docker_host: host.clone() },
                        format!(
                            "stops {name} on the daemon that runs it (dockerd {}): what it serves goes down and the port is freed",
                            d.pid
                        ),
                    ));
                }
                remedies.push(remedy::other_port(q));
                remedies.push(Remedy::check(
                    Action::ListPublishers { port: q.port, proto: q.proto, docker_host: host },
                    format!("lists the containers of dockerd {} that publish the port", d.pid),
                ));
                Finding::new(DOC.code, summary, evidence, Confidence::High, remedies)
            })
            .collect()
    }
}

/// `container web (docker-proxy pid 4121)`, `docker-proxy pid 4121`, `dockerd pid 812`.
fn who(h: &DaemonHold) -> String {
    let process =
        if h.via == "container" { format!("pid {}", h.pid) } else { format!("{} pid {}", h.via, h.pid) };
    match &h.container_name {
        Some(name) => format!("container {name} ({process})"),
        None => process,
    }
}

/// Whether a docker-proxy of another daemon forwards the port to `addr`: a DNAT rule to that
/// address is that daemon's, not an orphan.
pub fn serves_address(cx: &Context<'_>, addr: std::net::IpAddr) -> bool {
    cx.evidence.listeners().iter().flat_map(|l| l.owners.iter()).any(|p| {
        p.is_docker_proxy()
            && foreign(cx, p.pid)
            && crate::parse::proxy::parse_proxy_cmdline(
                &p.cmdline.split_whitespace().map(str::to_owned).collect::<Vec<_>>(),
            )
            .is_some_and(|a| a.into_process(p.pid, None).container_ip == addr)
    })
}

/// Whether `pid` holds the port for a daemon other than ours: the rules that would call it a
/// leftover or a stranger leave it to this one.
pub fn foreign(cx: &Context<'_>, pid: u32) -> bool {
    cx.evidence
        .daemons
        .as_ref()
        .filter(|d| d.ours.is_some() || cx.evidence.docker.is_none())
        .is_some_and(|d| d.foreign_holder(pid).is_some())
}
