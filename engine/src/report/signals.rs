//! `portwhy signals`: the monitoring signals as a person reads them (owners and container names
//! escaped, as the host wrote them).

use super::text::printable;
use crate::signals::Signals;

pub fn render(s: &Signals) -> String {
    let mut t = String::from("listening sockets per owner\n");
    for o in &s.listeners_by_owner {
        let mut ports = o.ports.clone();
        let more = ports.len().saturating_sub(8);
        ports.truncate(8);
        let tail = if more > 0 { format!(" (+{more} more)") } else { String::new() };
        t.push_str(&format!(
            "  {:<24} {:>6} sockets  {}{tail}\n",
            printable(&o.owner),
            o.sockets,
            ports.join(" ")
        ));
    }
    t.push_str("published ports per container\n");
    for p in &s.published {
        t.push_str(&format!("  {:<32} {:<10} {}\n", printable(&p.container), p.state, p.ports.join(" ")));
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
        t.push_str(&format!("unavailable: {}: {}\n", printable(&u.source), printable(&u.reason)));
    }
    t.trim_end().to_owned()
}
