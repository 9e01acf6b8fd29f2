//! Remedy builders shared by the rules, so the same fix reads the same everywhere.

use std::net::IpAddr;

use crate::diagnosis::{Remedy, Risk};
use crate::port::PortQuery;

/// Publish on another host port: always available, never disruptive.
pub fn other_port(q: &PortQuery) -> Remedy {
    // The rules see only the sockets on the queried port, so they cannot name a free one
    // themselves: `portwhy suggest` checks the whole table and Docker's published ports.
    Remedy::new(
        Risk::Safe,
        format!("portwhy suggest {}", q),
        format!(
            "prints the free host port nearest {} for this address and protocol; publish there instead; nothing running changes",
            q.port
        ),
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
