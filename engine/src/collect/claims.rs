//! What claims host ports on the whole host, for `portwhy suggest`: every listening socket of the
//! protocol, every container's bindings, Docker's DNAT rules for the asked port, and the kernel's
//! ephemeral range.

use super::{docker, firewall, sockets, CollectOptions};
use crate::evidence::Unavailable;
use crate::port::PortQuery;
use crate::suggest::{claims_from, parse_local_port_range, PortClaim, Reserved};

/// The claims and the ports to stay away from; sources that could not be read are listed.
#[derive(Debug, Clone)]
pub struct HostClaims {
    pub claims: Vec<PortClaim>,
    pub reserved: Reserved,
    pub unavailable: Vec<Unavailable>,
}

pub fn collect(o: &CollectOptions, q: &PortQuery, allow_privileged: bool) -> HostClaims {
    let mut unavailable = Vec::new();
    let listeners = sockets::collect_all(&o.proc_root, Some(q.proto), false).unwrap_or_else(|e| {
        unavailable.push(Unavailable { source: "sockets".into(), reason: e });
        Vec::new()
    });
    let containers = if o.skip_docker {
        unavailable.push(Unavailable { source: "docker".into(), reason: "skipped (--no-docker)".into() });
        Vec::new()
    } else {
        match docker::collect(o.docker_host.as_deref(), &o.proc_root, None) {
            Ok(d) => d.containers,
            Err(e) => {
                unavailable.push(Unavailable { source: "docker".into(), reason: e });
                Vec::new()
            }
        }
    };
    // DNAT rules for every port would need a full dump; the ones for the asked port are what
    // decide whether it is free, and the candidates above it are checked against sockets and containers.
    let (fw, fw_unavailable) = firewall::collect(&o.proc_root, q.port);
    unavailable.extend(fw_unavailable);
    let ephemeral = std::fs::read_to_string(o.proc_root.join("sys/net/ipv4/ip_local_port_range"))
        .ok()
        .and_then(|t| parse_local_port_range(&t).ok());
    let reserved = Reserved { ephemeral: ephemeral.or(Reserved::default().ephemeral), allow_privileged };
    HostClaims { claims: claims_from(&listeners, &containers, &fw.nat_rules), reserved, unavailable }
}
