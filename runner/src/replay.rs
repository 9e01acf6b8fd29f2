//! `portwhy-lab replay bundle.json`: turn a user's evidence bundle into a scenario skeleton.
//!
//! The bundle is what `portwhy collect PORT` wrote (`portwhy::evidence::Evidence`). Every holder it
//! shows becomes a harness fault: non-Docker listeners → `host-listener`, running or stopped
//! containers with the port → `duplicate-container`, DNAT rules to addresses no container has →
//! `orphaned-dnat`, a docker-proxy with no container → `leftover-proxy`, systemd-resolved on 53 →
//! `systemd-resolved`. The expectation is left for a run to confirm: the skeleton says so.

use std::fmt::Write as _;
use std::net::IpAddr;

use portwhy::evidence::{ContainerState, Evidence};
use portwhy::port::Proto;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a portwhy evidence bundle: {message} (make one with `portwhy collect PORT > bundle.json`)")]
    Parse { path: String, message: String },
}

pub fn load(path: &std::path::Path) -> Result<Evidence, ReplayError> {
    let p = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| ReplayError::Read { path: p.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| ReplayError::Parse { path: p, message: e.to_string() })
}

fn proto(p: Proto) -> &'static str {
    match p {
        Proto::Udp => "udp",
        _ => "tcp",
    }
}

/// The scenario skeleton for `ev`, named `name`.
pub fn skeleton(ev: &Evidence, name: &str) -> String {
    let q = &ev.query;
    let port = q.port;
    let mut faults = String::new();
    let container_ips: Vec<IpAddr> =
        ev.containers().iter().flat_map(|c| c.addresses.values().copied()).collect();
    for l in ev.listeners() {
        let docker_owned =
            l.owners.iter().any(|o| o.is_docker_proxy() || o.is_rootlesskit() || o.is_dockerd());
        let resolved = l.owners.iter().any(|o| o.comm.starts_with("systemd-resolve"));
        if resolved {
            continue;
        }
        if docker_owned {
            if l.owners.iter().any(|o| o.is_docker_proxy())
                && ev.containers().iter().all(|c| !c.state.holds_ports())
            {
                let _ = writeln!(
                    faults,
                    "\n# docker-proxy pid(s) {:?} hold {}:{} with no running container\n[[faults]]\nkind = \"leftover-proxy\"\nproto = \"{}\"\nport = {}",
                    l.owners.iter().map(|o| o.pid).collect::<Vec<_>>(),
                    l.addr,
                    l.port,
                    proto(l.proto),
                    l.port
                );
            }
            continue;
        }
        let owner =
            l.owners.first().map_or("unknown".to_owned(), |o| format!("{} (pid {})", o.program(), o.pid));
        let _ = writeln!(faults, "\n# {owner} held {}:{}\n[[faults]]\nkind = \"host-listener\"\nproto = \"{}\"\naddr = \"{}\"\nport = {}", l.addr, l.port, proto(l.proto), l.addr, l.port);
        if let Some(v) = l.v6only {
            let _ = writeln!(faults, "v6only = {v}");
        }
    }
    if ev.host.as_ref().and_then(|h| h.systemd_resolved_pid).is_some() && port == 53 {
        faults.push_str("\n# systemd-resolved runs on this host\n[[faults]]\nkind = \"systemd-resolved\"\n");
    }
    for c in ev.containers() {
        // A created container whose start failed is the user's own failed attempt, not a holder.
        if c.state == ContainerState::Created && c.error.as_deref().is_some_and(|e| !e.is_empty()) {
            continue;
        }
        let Some(b) = c.requested.iter().find(|b| b.host_port == port && b.proto == q.proto) else {
            continue;
        };
        let state = match c.state {
            ContainerState::Running | ContainerState::Paused => "running",
            ContainerState::Restarting => "restarting",
            ContainerState::Created => "created",
            _ => "stopped",
        };
        let _ = writeln!(
            faults,
            "\n# container {} ({}) publishes {}\n[[faults]]\nkind = \"duplicate-container\"\nname = \"{}\"\nstate = \"{state}\"\nport = {}\nproto = \"{}\"\ncontainer_port = {}",
            c.name,
            c.state.as_str(),
            port,
            c.name,
            port,
            proto(b.proto),
            b.container_port
        );
    }
    for r in ev.nat_rules() {
        if r.dport != port || container_ips.contains(&r.to_addr) {
            continue;
        }
        let chain = if r.chain.eq_ignore_ascii_case("PREROUTING") { "prerouting" } else { "docker" };
        let _ = writeln!(
            faults,
            "\n# {} rule `{}` points at {}, which no container has\n[[faults]]\nkind = \"orphaned-dnat\"\nchain = \"{chain}\"\nproto = \"{}\"\nport = {}\nto = \"{}:{}\"",
            r.backend.as_str(),
            r.raw,
            r.to_addr,
            proto(r.proto),
            port,
            r.to_addr,
            r.to_port
        );
    }
    let engine = ev.docker.as_ref().map(|d| d.version.as_str()).unwrap_or("unknown");
    let rootless = ev.docker.as_ref().is_some_and(|d| d.rootless);
    // IPv6 listeners (and `::1` probes) need IPv6 back on in the environment.
    let ipv6 = ev.listeners().iter().any(|l| l.addr.is_ipv6()) || q.host_ip.is_some_and(|ip| ip.is_ipv6());
    let publish = match (q.host_ip, q.proto) {
        (Some(ip @ IpAddr::V6(_)), p) => format!("[{ip}]:{port}:{port}/{}", proto(p)),
        (Some(ip), p) => format!("{ip}:{port}:{port}/{}", proto(p)),
        (None, p) => format!("{port}:{port}/{}", proto(p)),
    };
    // The bundle's own verdict is the starting guess for the expectation.
    let d = portwhy::rules::diagnose(ev, None);
    let verdict = d.verdict();
    let cause = verdict.map_or(portwhy::cause::CauseCode::HostProcess, |f| f.code);
    let remedy = verdict
        .and_then(|f| f.fixes().next())
        .map(|r| format!("remedy = \"{}\"\n", r.kind()))
        .unwrap_or_default();
    // A silent cause means the publish succeeded; only probes can show it (the guess: other hosts
    // should reach the container).
    let (trigger, traffic) = if cause.silent() {
        ("trigger = \"succeeds\"\n", "\n[[expect.traffic]]\nfrom = \"outside\"\nanswers = \"container\"\n")
    } else {
        ("trigger = \"fails\"\nstage = \"host-bind\"\n", "")
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "# Scenario skeleton replayed from an evidence bundle (Engine {engine}).\n\
         # Check every fault, then run `portwhy-lab run --scenario {name}` and set `expect` to what the\n\
         # engines did; the expectation below is a starting guess.\n\
         schema_version = 1\nname = \"{name}\"\ntitle = \"Replayed: port {q}\"\nport = \"{q}\"\n\n\
         [seed_claim]\nsource = \"portwhy\"\nclaim = \"A conflict reported from a real host, replayed from its evidence bundle.\"\n\n\
         [environment]\nrootless = {rootless}\nipv6 = {ipv6}\n{faults}\n\
         [trigger]\nrun = [\"docker\", \"run\", \"-d\", \"--name\", \"web\", \"-p\", \"{publish}\", \"busybox\", \"sh\", \"-c\", \"while :; do echo container web | nc -l -p {port}; done\"]\n\n\
         [expect]\n{trigger}cause = \"{cause}\"\n{remedy}{traffic}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use portwhy::evidence::{Listener, ProcessRef};

    #[test]
    fn a_host_listener_becomes_a_fault_and_the_skeleton_parses() {
        let mut ev = Evidence::new("8080".parse().unwrap());
        ev.sockets = Some(vec![Listener {
            proto: Proto::Tcp,
            addr: "0.0.0.0".parse().unwrap(),
            port: 8080,
            v6only: None,
            interface: None,
            inode: 1,
            uid: 0,
            netns: "host".into(),
            owners: vec![ProcessRef {
                pid: 42,
                comm: "nginx".into(),
                cmdline: "/usr/sbin/nginx".into(),
                container_id: None,
            }],
        }]);
        let text = skeleton(&ev, "replayed");
        assert!(text.contains("kind = \"host-listener\"") && text.contains("nginx (pid 42)"), "{text}");
        let s = crate::scenario::parse(std::path::Path::new("replayed.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.faults.len(), 1);
        assert_eq!(s.port.port, 8080);
    }
}
