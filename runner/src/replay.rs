//! `portwhy-lab replay bundle.json`: turn a user's evidence bundle into a scenario.
//!
//! The bundle is what `portwhy collect PORT [--error TEXT]` wrote (`portwhy::evidence::Evidence`).
//! Every holder it shows becomes a typed harness fault: non-Docker listeners → `host-listener`,
//! running or stopped containers with the port → `duplicate-container`, DNAT rules to addresses no
//! container has → `orphaned-dnat`, a docker-proxy with no container → `leftover-proxy`,
//! systemd-resolved on 53 → `systemd-resolved`, a container of another dockerd → `second-daemon`;
//! and the causes with no holder become the fault that produces them: an address the host lacks →
//! `address-gone`, Docker's chains wiped → `firewall-wipe`, an allocation no one holds →
//! `stale-allocation`. The expectation is the bundle's own verdict, for a run to confirm.
//!
//! The scenario is built as a `Scenario` and serialised with the TOML crate, so every string is
//! escaped and the file parses back into the same value.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portwhy::cause::CauseCode;
use portwhy::evidence::{ContainerState, Evidence};
use portwhy::parse::error::{DaemonError, Stage};
use portwhy::port::Proto;
use portwhy_harness::faults::{self as hf, Fault};

use crate::scenario::{
    Answerer, DiagnoseWhen, EnvironmentSpec, ExpectSpec, Scenario, SeedClaim, SeedSource, TrafficCheck,
    TrafficSource, Trigger, TriggerResult, SCHEMA_VERSION,
};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a portwhy evidence bundle: {message} (make one with `portwhy collect PORT > bundle.json`)")]
    Parse { path: String, message: String },
    #[error("{path} exists: pick another name with --name, or remove the file")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("`{name}` is not a scenario name: use lowercase letters, digits and dashes")]
    BadName { name: String },
}

pub fn load(path: &Path) -> Result<Evidence, ReplayError> {
    let p = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| ReplayError::Read { path: p.clone(), source })?;
    serde_json::from_str(&text).map_err(|e| ReplayError::Parse { path: p, message: e.to_string() })
}

/// A replayed scenario: the value, and one line per fault saying what in the bundle it stands for.
pub struct Replayed {
    pub scenario: Scenario,
    pub origins: Vec<String>,
    pub engine: String,
}

fn proto(p: Proto) -> hf::Proto {
    if p == Proto::Udp {
        hf::Proto::Udp
    } else {
        hf::Proto::Tcp
    }
}

/// The daemon's text, classified, when the bundle carries it (`portwhy collect --error`).
fn daemon_error(ev: &Evidence) -> Option<DaemonError> {
    portwhy::parse::error::classify(ev.error_text.as_deref()?).ok()
}

/// The name a replay gets unless told otherwise: `replay-8080-host-process`.
pub fn default_name(ev: &Evidence) -> String {
    let err = daemon_error(ev);
    let d = portwhy::rules::diagnose(ev, err.as_ref());
    let cause = d.verdict().map_or("unknown", |f| f.code.name());
    let addr = ev
        .query
        .host_ip
        .map(|ip| format!("{}-", ip.to_string().replace(['.', ':'], "-")))
        .unwrap_or_default();
    let udp = if ev.query.proto == Proto::Udp { "-udp" } else { "" };
    format!("replay-{addr}{}{udp}-{cause}", ev.query.port)
}

/// A `/24` (or `/64`) around `ip` with an address other than `ip` for the interface to keep.
fn neighbour(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            let last = if o[3] == 1 { 2 } else { 1 };
            format!("{}.{}.{}.{last}/24", o[0], o[1], o[2])
        }
        IpAddr::V6(a) => {
            let mut s = a.segments();
            s[7] = if s[7] == 1 { 2 } else { 1 };
            format!("{}/64", std::net::Ipv6Addr::from(s))
        }
    }
}

pub fn replay(ev: &Evidence, name: &str) -> Replayed {
    let q = &ev.query;
    let port = q.port;
    let err = daemon_error(ev);
    let d = portwhy::rules::diagnose(ev, err.as_ref());
    // The first finding with a fix to prove (or a note): a scenario must name one.
    let verdict = d.findings.iter().find(|f| f.fixes().next().is_some() || f.code.is_note()).or(d.verdict());
    let cause = verdict.map_or(CauseCode::HostProcess, |f| f.code);
    let mut faults: Vec<(Fault, String)> = Vec::new();
    let mut env = EnvironmentSpec {
        rootless: ev.docker.as_ref().is_some_and(|d| d.rootless),
        // IPv6 listeners (and `::1` probes) need IPv6 back on in the environment.
        ipv6: ev.listeners().iter().any(|l| l.addr.is_ipv6()) || q.host_ip.is_some_and(|ip| ip.is_ipv6()),
        ..EnvironmentSpec::default()
    };
    let foreign = |pid: u32| ev.daemons.as_ref().and_then(|d| d.foreign_holder(pid));
    // Addresses some container has, ours or (through its docker-proxy) another daemon's: a DNAT
    // rule to one of them is not an orphan.
    let container_ips: Vec<IpAddr> = ev
        .containers()
        .iter()
        .flat_map(|c| c.addresses.values().copied())
        .chain(ev.listeners().iter().flat_map(|l| &l.owners).filter(|o| foreign(o.pid).is_some()).filter_map(
            |o| {
                let argv: Vec<String> = o.cmdline.split_whitespace().map(str::to_owned).collect();
                Some(
                    portwhy::parse::proxy::parse_proxy_cmdline(&argv)?.into_process(o.pid, None).container_ip,
                )
            },
        ))
        .collect();
    let mut second_daemon = false;
    for l in ev.listeners() {
        if l.owners.iter().any(|o| o.comm.starts_with("systemd-resolve")) {
            continue;
        }
        if let Some((daemon, hold)) = l.owners.iter().find_map(|o| foreign(o.pid)) {
            if !second_daemon {
                second_daemon = true;
                let name = hold.container_name.clone().unwrap_or_else(|| "other-web".into());
                faults.push((
                    Fault::SecondDaemon(hf::SecondDaemon { port, name: name.clone() }),
                    format!(
                        "container {name} of another dockerd (pid {}: {}) held {}:{}",
                        daemon.pid, daemon.cmdline, l.addr, l.port
                    ),
                ));
            }
            continue;
        }
        let docker_owned =
            l.owners.iter().any(|o| o.is_docker_proxy() || o.is_rootlesskit() || o.is_dockerd());
        if docker_owned {
            if l.owners.iter().any(|o| o.is_docker_proxy())
                && ev.containers().iter().all(|c| !c.state.holds_ports())
            {
                faults.push((
                    // The addresses are the fault's defaults (a container that is gone).
                    Fault::LeftoverProxy(
                        serde_json::from_value(
                            serde_json::json!({ "port": l.port, "proto": proto(l.proto) }),
                        )
                        .expect("a leftover proxy needs only its port"),
                    ),
                    format!(
                        "docker-proxy pid(s) {:?} held {}:{} with no running container",
                        l.owners.iter().map(|o| o.pid).collect::<Vec<_>>(),
                        l.addr,
                        l.port
                    ),
                ));
            }
            continue;
        }
        let owner =
            l.owners.first().map_or("unknown".to_owned(), |o| format!("{} (pid {})", o.program(), o.pid));
        faults.push((
            Fault::HostListener(hf::HostListener {
                proto: proto(l.proto),
                addr: l.addr.to_string(),
                port: l.port,
                v6only: l.v6only,
                reuseaddr: false,
                reuseport: false,
                count: 1,
                name: None,
            }),
            format!("{owner} held {}:{}", l.addr, l.port),
        ));
    }
    if ev.host.as_ref().and_then(|h| h.systemd_resolved_pid).is_some() && port == 53 {
        faults.push((
            Fault::SystemdResolved(hf::SystemdResolved::default()),
            "systemd-resolved ran on the host".into(),
        ));
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
            ContainerState::Running | ContainerState::Paused => hf::HolderState::Running,
            ContainerState::Restarting => hf::HolderState::Restarting,
            ContainerState::Created => hf::HolderState::Created,
            _ => hf::HolderState::Stopped,
        };
        faults.push((
            Fault::DuplicateContainer(hf::DuplicateContainer {
                port,
                proto: proto(b.proto),
                host_ip: None,
                container_port: b.container_port,
                state,
                name: Some(c.name.clone()),
            }),
            format!("container {} ({}) published {port}", c.name, c.state.as_str()),
        ));
    }
    for r in ev.nat_rules() {
        if r.dport != port || container_ips.contains(&r.to_addr) {
            continue;
        }
        let chain = if r.chain.eq_ignore_ascii_case("PREROUTING") {
            hf::NatChain::Prerouting
        } else {
            hf::NatChain::Docker
        };
        faults.push((
            Fault::OrphanedDnat(hf::OrphanedDnat {
                port,
                proto: proto(r.proto),
                to: format!("{}:{}", r.to_addr, r.to_port),
                chain,
                backend: None,
            }),
            format!(
                "{} rule `{}` pointed at {}, which no container has",
                r.backend.as_str(),
                r.raw,
                r.to_addr
            ),
        ));
    }
    // Causes with no holder: the fault that leaves the same state behind.
    match cause {
        CauseCode::AddressUnavailable => {
            if let Some(ip) = q.host_ip.or_else(|| err.as_ref()?.host_ip.as_deref()?.parse().ok()) {
                faults.push((
                    Fault::AddressGone(hf::AddressGone {
                        iface: "lan0".into(),
                        addr: neighbour(ip),
                        gone: ip.to_string(),
                    }),
                    format!("{ip} was on no interface of the host"),
                ));
            }
        }
        CauseCode::ChainsMissing => {
            let nftables = ev.docker.as_ref().and_then(|d| d.firewall_backend.as_deref()) == Some("nftables");
            let how = if nftables { hf::Wipe::NftFlushRuleset } else { hf::Wipe::IptablesNat };
            faults.push((
                Fault::FirewallWipe(hf::FirewallWipe { how }),
                "Docker's chains were missing from the firewall while the daemon ran".into(),
            ));
            // The backend the daemon wrote to: a wipe of one backend says nothing about another
            // (29's nftables table is rewritten whole at the next change).
            let alternative = ev.firewall.as_ref().and_then(|f| f.iptables_alternative.as_deref());
            env.backends = match (nftables, alternative) {
                (true, _) => vec![crate::scenario::BackendName::Nftables],
                (false, Some("legacy")) => vec![crate::scenario::BackendName::Legacy],
                (false, Some("nft")) => vec![crate::scenario::BackendName::Nft],
                _ => vec![crate::scenario::BackendName::Legacy, crate::scenario::BackendName::Nft],
            };
        }
        CauseCode::StaleAllocation => {
            // Its docker-proxies and DNAT rules are what the restored endpoint left; the fault
            // leaves them again.
            faults.clear();
            env.live_restore = true;
            faults.push((
                Fault::StaleAllocation(hf::StaleAllocation { port }),
                "the daemon said the port was allocated while nothing held it".into(),
            ));
        }
        _ => {}
    }
    let publish = match (q.host_ip, q.proto) {
        (Some(ip @ IpAddr::V6(_)), p) => format!("[{ip}]:{port}:{port}/{}", p.as_str()),
        (Some(ip), p) => format!("{ip}:{port}:{port}/{}", p.as_str()),
        (None, p) => format!("{port}:{port}/{}", p.as_str()),
    };
    let udp = if q.proto == Proto::Udp { "-u " } else { "" };
    let run = ["docker", "run", "-d", "--name", "web", "-p", &publish, "busybox", "sh", "-c"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("while :; do echo container web | nc {udp}-l -p {port}; done")])
        .collect();
    // A silent cause means the publish succeeded; only probes can show it (the guess: other hosts
    // should reach the container). The stage is the daemon's, when the bundle has its text.
    let (trigger, stage, traffic) = if cause.silent() {
        let outside = TrafficCheck {
            from: TrafficSource::Outside,
            proto: q.proto,
            port: None,
            client: None,
            answers: Answerer::Container,
        };
        (TriggerResult::Succeeds, None, vec![outside])
    } else {
        let stage = err.as_ref().map(|e| e.stage).filter(|s| *s != Stage::Unknown).unwrap_or(Stage::HostBind);
        (TriggerResult::Fails, Some(stage), Vec::new())
    };
    // With no fix in the bundle's verdict (a holder it could not name), its first remedy stands in
    // until a run shows which fix works.
    let remedy = verdict.and_then(|f| f.fixes().next().or(f.remedies.first())).map(|r| r.kind());
    let scenario = Scenario {
        schema_version: SCHEMA_VERSION,
        name: name.to_owned(),
        title: format!("Replayed: {} on port {q}", cause.name()),
        seed_claim: SeedClaim {
            source: SeedSource::Project,
            claim: "A conflict reported from a real host, replayed from its evidence bundle.".into(),
            predicts: None,
        },
        faults: faults.iter().map(|(f, _)| f.clone()).collect(),
        environment: env,
        trigger: Trigger { before: Vec::new(), run, compose: None },
        port: q.clone(),
        diagnose: DiagnoseWhen::AfterTrigger,
        expect: ExpectSpec {
            trigger,
            stage,
            cause,
            also: Vec::new(),
            traffic,
            remedy,
            claims: Vec::new(),
            engine: Default::default(),
            backend: Default::default(),
        },
    };
    let engine = ev.docker.as_ref().map_or_else(|| "unknown".to_owned(), |d| d.version.clone());
    Replayed {
        scenario,
        origins: faults.into_iter().map(|(f, why)| format!("{}: {why}", f.kind())).collect(),
        engine,
    }
}

/// The scenario file for `ev`, named `name`: a header saying where it came from, then the TOML.
pub fn skeleton(ev: &Evidence, name: &str) -> String {
    let r = replay(ev, name);
    let mut out = format!(
        "# Replayed from an evidence bundle (Engine {}{}).\n\
         # Run `portwhy-lab run --scenario {name}` and set `expect` to what the engines did; the\n\
         # expectation below is the bundle's own verdict.\n",
        r.engine,
        ev.collected_by.as_ref().map(|c| format!(", collected by portwhy {}", c.version)).unwrap_or_default()
    );
    for o in &r.origins {
        out.push_str(&format!("# fault {o}\n"));
    }
    out.push_str(&toml::to_string(&r.scenario).expect("a scenario serialises into TOML"));
    out
}

/// Writes the scenario into `dir` as `NAME.toml`, never over an existing file.
pub fn write_into(dir: &Path, name: &str, text: &str) -> Result<PathBuf, ReplayError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(ReplayError::BadName { name: name.to_owned() });
    }
    let path = dir.join(format!("{name}.toml"));
    let p = path.display().to_string();
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                ReplayError::Exists { path: p.clone() }
            } else {
                ReplayError::Write { path: p.clone(), source }
            }
        })?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|source| ReplayError::Write { path: p, source })?;
    Ok(path)
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
                cmdline: "/usr/sbin/nginx \"quoted\"\nsecond line".into(),
                container_id: None,
            }],
        }]);
        let name = default_name(&ev);
        assert_eq!(name, "replay-8080-host-process");
        let text = skeleton(&ev, &name);
        assert!(text.contains("kind = \"host-listener\"") && text.contains("nginx (pid 42)"), "{text}");
        let s = crate::scenario::parse(Path::new("replay-8080-host-process.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(s.faults.len(), 1);
        assert_eq!(s.port.port, 8080);
    }

    #[test]
    fn a_replay_is_never_written_over_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        write_into(dir.path(), "replay-8080-host-process", "x").unwrap();
        let e = write_into(dir.path(), "replay-8080-host-process", "y").unwrap_err();
        assert!(matches!(e, ReplayError::Exists { .. }), "{e}");
        assert!(matches!(write_into(dir.path(), "Bad Name", "y"), Err(ReplayError::BadName { .. })));
    }
}
