//! Remedy builders shared by the rules, so the same fix reads the same everywhere.

use std::net::IpAddr;

use crate::diagnosis::{Remedy, Risk};
use crate::port::PortQuery;

/// Publish on another host port: always available, never disruptive.
pub fn other_port(q: &PortQuery) -> Remedy {
    let next = q.port.checked_add(1).unwrap_or(q.port - 1);
    Remedy::new(
        Risk::Safe,
        format!("portwhy suggest {}", q),
        format!("find a free host port near {} (e.g. -p {next}:...) and publish there instead; nothing running changes", q.port),
    )
}

/// Publish on a specific address that does not overlap with the holder.
pub fn bind_address(q: &PortQuery, addr: IpAddr, why: &str) -> Remedy {
    let a = match addr {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let proto = if q.proto == crate::port::Proto::Tcp { String::new() } else { format!("/{}", q.proto) };
    Remedy::new(
        Risk::Safe,
        format!("docker run -p {a}:{}:<container-port>{proto} ...", q.port),
        why.to_owned(),
    )
}
