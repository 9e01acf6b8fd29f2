//! The monitoring signals of the whole host (`portwhy signals`): every listening socket, every
//! container's published ports, the DNAT rule counts per backend, conntrack.

use std::collections::BTreeMap;

use super::{docker, firewall, host, sockets, CollectOptions};
use crate::evidence::Unavailable;
use crate::signals::{Conntrack, OwnerSockets, PublishedPorts, Signals, SIGNALS_SCHEMA_VERSION};

/// Read every signal; a source that cannot be read is listed in `unavailable`.
pub fn collect(o: &CollectOptions) -> Signals {
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
    let nat = crate::signals::nat_drift(&fw, v4_bindings);
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
    Signals {
        schema_version: SIGNALS_SCHEMA_VERSION,
        listeners_by_owner,
        published,
        nat,
        conntrack,
        unavailable,
    }
}
