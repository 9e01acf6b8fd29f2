//! `portwhy suggest`: the free port as a person reads it, with the `-p` to publish it.

use std::net::IpAddr;

use crate::port::Proto;
use crate::suggest::Suggestion;

pub fn render(s: &Suggestion) -> String {
    let q = &s.port;
    let addr = match q.host_ip {
        Some(IpAddr::V6(a)) => format!("[{a}]:"),
        Some(a) => format!("{a}:"),
        None => String::new(),
    };
    let proto = if q.proto == Proto::Tcp { String::new() } else { format!("/{}", q.proto) };
    match s.suggested {
        Some(p) if p == q.port => format!("{q} is free: -p {addr}{p}:<container-port>{proto}"),
        Some(p) => format!(
            "{q} is taken; nearest free: {p}  (-p {addr}{p}:<container-port>{proto}); also free: {}",
            s.alternatives.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        ),
        None => format!("no free port near {q}"),
    }
}
