//! The prevention commands: `lint`, `suggest` and `signals`, over the same collectors as diagnosis.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{write_out, ExitCode, Failure};
use crate::collect::{docker, firewall, host, sockets, CollectOptions};
use crate::evidence::{Backend, Unavailable};
use crate::port::PortQuery;

/// Signals for monitoring, as `portwhy signals --json` prints them.
#[derive(Debug, Serialize)]
pub struct Signals {
    pub schema_version: u32,
    /// Listening sockets grouped by the program that owns them.
    pub listeners_by_owner: Vec<OwnerSockets>,
    /// Host ports published by running containers.
    pub published: Vec<PublishedPorts>,
    /// DNAT rules in Docker's chains against the bindings that should have them.
    pub nat: Vec<NatDrift>,
    pub conntrack: Option<Conntrack>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Serialize)]
pub struct OwnerSockets {
    pub owner: String,
    pub pids: Vec<u32>,
    pub sockets: usize,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishedPorts {
    pub container: String,
    pub state: String,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NatDrift {
    pub backend: Backend,
    pub docker_dnat_rules: usize,
    /// IPv4 host bindings of running containers: each should have one DNAT rule.
    pub published_bindings: usize,
    /// Rules minus bindings: above zero means orphans (or rules of another engine sharing the backend).
    pub drift: i64,
}

#[derive(Debug, Serialize)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
    pub ratio: f64,
}

pub fn collect_signals(o: &CollectOptions) -> Signals {
    let mut unavailable = Vec::new();
    let mut by_owner: BTreeMap<String, OwnerSockets> = BTreeMap::new();
    match sockets::collect_all(&o.proc_root, None, true) {
        Ok(listeners) => {
            for l in listeners {
                let owner = l.owners.first().map_or_else(
                    || format!("(uid {}, owner not visible)", l.uid),
                    |p| p.program().to_owned(),
                );
                let entry = by_owner.entry(owner.clone()).or_insert_with(|| OwnerSockets {
                    owner,
                    pids: Vec::new(),
                    sockets: 0,
                    ports: Vec::new(),
                });
                entry.sockets += 1;
                for p in &l.owners {
                    if !entry.pids.contains(&p.pid) {
                        entry.pids.push(p.pid);
                    }
                }
                let port = format!("{}/{}", l.port, l.proto);
                if !entry.ports.contains(&port) {
                    entry.ports.push(port);
                }
            }
        }
        Err(e) => unavailable.push(Unavailable { source: "sockets".into(), reason: e }),
    }
    let docker_state = if o.skip_docker {
        unavailable.push(Unavailable { source: "docker".into(), reason: "skipped (--no-docker)".into() });
        None
    } else {
        match docker::collect(o.docker_host.as_deref(), &o.proc_root, None) {
            Ok(d) => Some(d),
            Err(e) => {
                unavailable.push(Unavailable { source: "docker".into(), reason: e });
                None
            }
        }
    };
    let published: Vec<PublishedPorts> = docker_state
        .iter()
        .flat_map(|d| d.containers.iter())
        .filter(|c| c.state.holds_ports() && !c.actual.is_empty())
        .map(|c| PublishedPorts {
            container: c.display(),
            state: c.state.as_str().to_owned(),
            ports: c
                .actual
                .iter()
                .map(|b| {
                    format!(
                        "{}:{}->{}/{}",
                        b.host_ip.map_or("*".into(), |i| i.to_string()),
                        b.host_port,
                        b.container_port,
                        b.proto
                    )
                })
                .collect(),
        })
        .collect();
    let v4_bindings = docker_state
        .iter()
        .flat_map(|d| d.containers.iter())
        .filter(|c| c.state.holds_ports())
        .flat_map(|c| c.actual.iter())
        .filter(|b| b.host_port != 0 && b.host_ip.is_none_or(|ip| ip.is_ipv4()))
        .count();
    // Port 0 matches no rule: only the per-backend counts of Docker's DNAT rules are wanted here.
    let (fw, fw_unavailable) = firewall::collect(&o.proc_root, 0);
    unavailable.extend(fw_unavailable);
    let nat = fw
        .docker_dnat_count
        .iter()
        .map(|(backend, rules)| NatDrift {
            backend: *backend,
            docker_dnat_rules: *rules,
            published_bindings: v4_bindings,
            drift: *rules as i64 - v4_bindings as i64,
        })
        .collect();
    let conntrack = match host::collect(&o.proc_root) {
        Ok(h) => match (h.conntrack_count, h.conntrack_max) {
            (Some(count), Some(max)) if max > 0 => {
                Some(Conntrack { count, max, ratio: count as f64 / max as f64 })
            }
            _ => None,
        },
        Err(e) => {
            unavailable.push(Unavailable { source: "host".into(), reason: e });
            None
        }
    };
    let mut listeners_by_owner: Vec<OwnerSockets> = by_owner.into_values().collect();
    listeners_by_owner.sort_by(|a, b| b.sockets.cmp(&a.sockets).then(a.owner.cmp(&b.owner)));
    Signals { schema_version: 1, listeners_by_owner, published, nat, conntrack, unavailable }
}

pub fn signals(o: &CollectOptions, json: bool, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    let s = collect_signals(o);
    if json {
        write_out(
            out,
            &serde_json::to_string_pretty(&s)
                .map_err(|e| Failure { code: ExitCode::Internal, message: e.to_string() })?,
        )?;
    } else {
        let mut t = String::from("listening sockets per owner\n");
        for o in &s.listeners_by_owner {
            let mut ports = o.ports.clone();
            let more = ports.len().saturating_sub(8);
            ports.truncate(8);
            let tail = if more > 0 { format!(" (+{more} more)") } else { String::new() };
            t.push_str(&format!("  {:<24} {:>6} sockets  {}{tail}\n", o.owner, o.sockets, ports.join(" ")));
        }
        t.push_str("published ports per container\n");
        for p in &s.published {
            t.push_str(&format!("  {:<32} {:<10} {}\n", p.container, p.state, p.ports.join(" ")));
        }
        t.push_str("Docker DNAT rules vs published IPv4 bindings\n");
        for n in &s.nat {
            let flag = if n.drift > 0 { "  <- drift: orphaned rules?" } else { "" };
            t.push_str(&format!(
                "  {:<16} {} rules, {} bindings, drift {}{flag}\n",
                n.backend.as_str(),
                n.docker_dnat_rules,
                n.published_bindings,
                n.drift
            ));
        }
        match &s.conntrack {
            Some(c) => t.push_str(&format!("conntrack {} / {} ({:.1}%)\n", c.count, c.max, c.ratio * 100.0)),
            None => t.push_str("conntrack: not loaded\n"),
        }
        for u in &s.unavailable {
            t.push_str(&format!("unavailable: {}: {}\n", u.source, u.reason));
        }
        write_out(out, t.trim_end())?;
    }
    Ok(if s.unavailable.is_empty() { ExitCode::NoConflict } else { ExitCode::Inconclusive })
}

pub fn lint(files: &[PathBuf], json: bool, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    let first = files.first().map(PathBuf::as_path).unwrap_or(Path::new("compose.yaml"));
    let report = crate::lint::lint_files(files, &crate::lint::LintOptions::from_environment(first))
        .map_err(|e| Failure { code: ExitCode::BadInput, message: e.to_string() })?;
    if json {
        write_out(out, &serde_json::to_string_pretty(&report).map_err(internal)?)?;
    } else {
        write_out(out, crate::lint::render_human(&report).trim_end())?;
    }
    Ok(if report.exit_code() == 0 { ExitCode::NoConflict } else { ExitCode::ConflictFound })
}

/// What `portwhy suggest --json` prints.
#[derive(Debug, Serialize)]
pub struct Suggestion {
    pub schema_version: u32,
    pub port: PortQuery,
    /// The nearest free port (the asked one when it is free); `None` when none is free.
    pub suggested: Option<u16>,
    /// The next few candidates, nearest first.
    pub alternatives: Vec<u16>,
    pub unavailable: Vec<Unavailable>,
}

pub fn suggest(
    q: &PortQuery,
    privileged: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<ExitCode, Failure> {
    let o = CollectOptions::default();
    let mut unavailable = Vec::new();
    let listeners = sockets::collect_all(&o.proc_root, Some(q.proto), false).unwrap_or_else(|e| {
        unavailable.push(Unavailable { source: "sockets".into(), reason: e });
        Vec::new()
    });
    let containers = match docker::collect(None, &o.proc_root, None) {
        Ok(d) => d.containers,
        Err(e) => {
            unavailable.push(Unavailable { source: "docker".into(), reason: e });
            Vec::new()
        }
    };
    // DNAT rules for every port would need a full dump; the ones for the asked port are what
    // decide whether it is free, and the candidates above it are checked against sockets and containers.
    let (fw, fw_unavailable) = firewall::collect(&o.proc_root, q.port);
    unavailable.extend(fw_unavailable);
    let claims = crate::suggest::claims_from(&listeners, &containers, &fw.nat_rules);
    let ephemeral = std::fs::read_to_string(o.proc_root.join("sys/net/ipv4/ip_local_port_range"))
        .ok()
        .and_then(|t| crate::suggest::parse_local_port_range(&t).ok());
    let reserved = crate::suggest::Reserved {
        ephemeral: ephemeral.or(crate::suggest::Reserved::default().ephemeral),
        allow_privileged: privileged,
    };
    let mut ports = crate::suggest::nearest_free_n(q, &claims, &reserved, 4);
    let suggested = if ports.is_empty() { None } else { Some(ports.remove(0)) };
    let s = Suggestion { schema_version: 1, port: q.clone(), suggested, alternatives: ports, unavailable };
    if json {
        write_out(out, &serde_json::to_string_pretty(&s).map_err(internal)?)?;
    } else {
        for u in &s.unavailable {
            eprintln!("portwhy: warning: {} unavailable: {}", u.source, u.reason);
        }
        let addr = match q.host_ip {
            Some(std::net::IpAddr::V6(a)) => format!("[{a}]:"),
            Some(a) => format!("{a}:"),
            None => String::new(),
        };
        let proto = if q.proto == crate::port::Proto::Tcp { String::new() } else { format!("/{}", q.proto) };
        match s.suggested {
            Some(p) if p == q.port => {
                write_out(out, &format!("{q} is free: -p {addr}{p}:<container-port>{proto}"))?
            }
            Some(p) => write_out(
                out,
                &format!(
                    "{q} is taken; nearest free: {p}  (-p {addr}{p}:<container-port>{proto}); also free: {}",
                    s.alternatives.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ),
            )?,
            None => write_out(out, &format!("no free port near {q}"))?,
        }
    }
    Ok(match s.suggested {
        Some(p) if p == q.port => ExitCode::NoConflict,
        Some(_) => ExitCode::ConflictFound,
        None => ExitCode::Inconclusive,
    })
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure { code: ExitCode::Internal, message: format!("internal error: {e}; please report it") }
}
