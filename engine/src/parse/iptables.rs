//! Pure parser of `iptables-save` output (legacy or nft flavour) into DNAT rules, and the DNAT model
//! the nft JSON parser shares.
//!
//! Only the nat table matters for port publishing. Every DNAT rule is kept with what it matches
//! (protocol, destination port set, destination address, input interface) so the caller can ask
//! "which rules rewrite port P" with `DnatEntry::applies_to`. Unknown options are skipped: the parser
//! never fails, and a DNAT rule whose target it cannot read is listed in `NatDump::unreadable`.

use std::net::IpAddr;

use crate::evidence::{Backend, Family, NatRule};
use crate::port::Proto;

/// Destination ports a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSet {
    /// No port match: the rule rewrites every port.
    Any,
    /// Inclusive ranges (a single port is `(p, p)`), as `--dport`, `--dports` or an nft set gives them.
    Ranges(Vec<(u16, u16)>),
    /// `! --dport ...`: every port except these.
    Except(Vec<(u16, u16)>),
}

impl PortSet {
    pub fn one(port: u16) -> Self {
        Self::Ranges(vec![(port, port)])
    }

    pub fn contains(&self, port: u16) -> bool {
        let within = |r: &[(u16, u16)]| r.iter().any(|&(lo, hi)| (lo..=hi).contains(&port));
        match self {
            Self::Any => true,
            Self::Ranges(r) => within(r),
            Self::Except(r) => !within(r),
        }
    }
}

/// One DNAT rule, before it is narrowed to the queried port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnatEntry {
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// 1-based position in its chain.
    pub position: usize,
    /// Protocols matched; empty means "any" (no `-p`, no `meta l4proto`).
    pub protos: Vec<Proto>,
    pub ports: PortSet,
    /// `-d` / `ip daddr` as printed, `!` prefixed when negated.
    pub match_dest: Option<String>,
    /// `-i` / `iifname`, `!` prefixed when negated (`!docker0` for `! -i docker0`).
    pub in_iface: Option<String>,
    pub to_addr: IpAddr,
    /// `None` when the target names no port: DNAT then keeps the destination port.
    pub to_port: Option<u16>,
    pub raw: String,
}

impl DnatEntry {
    /// Does this rule rewrite traffic to `port` over `proto`?
    pub fn applies_to(&self, port: u16, proto: Proto) -> bool {
        self.ports.contains(port) && (self.protos.is_empty() || self.protos.contains(&proto))
    }

    /// The rule as evidence for `port`, once per protocol it rewrites (TCP and UDP when it names none).
    pub fn rules_for(&self, backend: Backend, port: u16) -> Vec<NatRule> {
        let protos: &[Proto] = if self.protos.is_empty() { &[Proto::Tcp, Proto::Udp] } else { &self.protos };
        protos
            .iter()
            .filter(|&&p| self.applies_to(port, p))
            .map(|&proto| NatRule {
                backend,
                family: self.family,
                table: self.table.clone(),
                chain: self.chain.clone(),
                proto,
                dport: port,
                match_dest: self.match_dest.clone(),
                in_iface: self.in_iface.clone(),
                to_addr: self.to_addr,
                to_port: self.to_port.unwrap_or(port),
                raw: self.raw.clone(),
                position: Some(self.position),
            })
            .collect()
    }
}

/// What one `iptables-save` dump says about NAT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatDump {
    /// The nat table declares Docker's `DOCKER` chain (`:DOCKER - [0:0]`).
    pub docker_chain: bool,
    /// DNAT rules in the nat `DOCKER` chain (one per published port and address family, normally).
    pub docker_dnat_count: usize,
    /// Every DNAT rule in the nat table, any chain.
    pub dnat: Vec<DnatEntry>,
    /// DNAT rules whose target could not be read, as printed.
    pub unreadable: Vec<String>,
}

impl NatDump {
    /// DNAT rules that rewrite `port`, as evidence.
    pub fn rules_for(&self, backend: Backend, port: u16) -> Vec<NatRule> {
        self.dnat.iter().flat_map(|d| d.rules_for(backend, port)).collect()
    }
}

/// Parse `iptables-save` (or `ip6tables-save`) output, any flavour, with or without `-c` counters
/// and with or without `-t nat`. `family` says which tool printed it.
pub fn parse_save(text: &str, family: Family) -> NatDump {
    let mut dump = NatDump::default();
    let mut table = String::new();
    let mut positions: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_owned();
            positions.clear();
            continue;
        }
        if table != "nat" {
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            if decl.split_whitespace().next() == Some("DOCKER") {
                dump.docker_chain = true;
            }
            continue;
        }
        // `-c` puts `[packets:bytes]` before the rule.
        let rule = match line.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or(line, |(_, r)| r.trim_start()),
            None => line,
        };
        let Some(parsed) = parse_rule(rule) else { continue };
        let position = bump(&mut positions, &parsed.chain);
        if parsed.target.as_deref() != Some("DNAT") {
            continue;
        }
        if parsed.chain == "DOCKER" {
            dump.docker_dnat_count += 1;
        }
        let Some((to_addr, to_port)) = parsed.to_destination.as_deref().and_then(|t| parse_to(t, family))
        else {
            dump.unreadable.push(rule.to_owned());
            continue;
        };
        dump.dnat.push(DnatEntry {
            family,
            table: table.clone(),
            chain: parsed.chain,
            position,
            protos: parsed.protos,
            ports: parsed.ports,
            match_dest: parsed.match_dest,
            in_iface: parsed.in_iface,
            to_addr,
            to_port,
            raw: rule.to_owned(),
        });
    }
    dump
}

fn bump(positions: &mut Vec<(String, usize)>, chain: &str) -> usize {
    match positions.iter_mut().find(|(c, _)| c == chain) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            positions.push((chain.to_owned(), 1));
            1
        }
    }
}

struct ParsedRule {
    chain: String,
    protos: Vec<Proto>,
    ports: PortSet,
    match_dest: Option<String>,
    in_iface: Option<String>,
    target: Option<String>,
    to_destination: Option<String>,
}

/// One `-A CHAIN ...` line; `None` for anything else.
fn parse_rule(line: &str) -> Option<ParsedRule> {
    let tokens = tokenize(line);
    let mut it = tokens.iter().map(String::as_str);
    if !matches!(it.next(), Some("-A" | "--append")) {
        return None;
    }
    let mut rule = ParsedRule {
        chain: it.next()?.to_owned(),
        protos: Vec::new(),
        ports: PortSet::Any,
        match_dest: None,
        in_iface: None,
        target: None,
        to_destination: None,
    };
    let mut negate = false;
    while let Some(tok) = it.next() {
        if tok == "!" {
            negate = true;
            continue;
        }
        let neg = std::mem::take(&mut negate);
        let prefixed = |v: &str| if neg { format!("!{v}") } else { v.to_owned() };
        match tok {
            "-p" | "--protocol" => {
                // `! -p tcp` matches everything but TCP: treat it as "any", the safe over-approximation.
                if let (Some(p), false) = (it.next(), neg) {
                    rule.protos = p.parse().map(|p| vec![p]).unwrap_or_default();
                }
            }
            "-d" | "--destination" => rule.match_dest = it.next().map(prefixed),
            "-i" | "--in-interface" => rule.in_iface = it.next().map(prefixed),
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                if let Some(ranges) = it.next().and_then(parse_port_list) {
                    rule.ports = if neg { PortSet::Except(ranges) } else { PortSet::Ranges(ranges) };
                }
            }
            "-j" | "--jump" => rule.target = it.next().map(str::to_owned),
            // Several targets were allowed on old kernels; the first one decides.
            "--to-destination" if rule.to_destination.is_none() => {
                rule.to_destination = it.next().map(str::to_owned)
            }
            _ => {}
        }
    }
    Some(rule)
}

/// Split like iptables-save quotes: double quotes group, backslash escapes the next character.
fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_token = true;
            }
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    out.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                cur.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        out.push(cur);
    }
    out
}

/// `8080`, `8000:8100`, `80,443,8000:8100` (multiport).
fn parse_port_list(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|part| match part.split_once(':') {
            Some((lo, hi)) => {
                let lo = if lo.is_empty() { 0 } else { lo.parse().ok()? };
                let hi = if hi.is_empty() { u16::MAX } else { hi.parse().ok()? };
                Some((lo, hi))
            }
            None => part.parse().ok().map(|p| (p, p)),
        })
        .collect()
}

/// `--to-destination` forms: `A`, `A:P`, `A:P1-P2`, `A1-A2:P`, `[V6]:P`, `[V6]`, bare `V6`.
/// A range keeps its first address and port: that is where a single flow to a fresh host lands.
pub(crate) fn parse_to(s: &str, family: Family) -> Option<(IpAddr, Option<u16>)> {
    let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        (addr, tail.strip_prefix(':'))
    } else if family == Family::Ipv6 {
        (s, None)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let first_addr = addr.split('-').next()?;
    let to_addr: IpAddr = first_addr.parse().ok()?;
    let to_port = match port {
        Some(p) => Some(p.split('-').next()?.parse().ok()?),
        None => None,
    };
    Some((to_addr, to_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_comment_is_one_token() {
        let toks = tokenize(r#"-A DOCKER -m comment --comment "a \"b\" c" -j RETURN"#);
        assert_eq!(toks, ["-A", "DOCKER", "-m", "comment", "--comment", r#"a "b" c"#, "-j", "RETURN"]);
    }

    #[test]
    fn to_destination_forms() {
        let v4 = Family::Ipv4;
        let v6 = Family::Ipv6;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_to("172.17.0.2:80", v4), Some((ip("172.17.0.2"), Some(80))));
        assert_eq!(parse_to("172.17.0.2", v4), Some((ip("172.17.0.2"), None)));
        assert_eq!(parse_to("10.0.0.1-10.0.0.9:80-89", v4), Some((ip("10.0.0.1"), Some(80))));
        assert_eq!(parse_to("[fd00::2]:8080", v6), Some((ip("fd00::2"), Some(8080))));
        assert_eq!(parse_to("[fd00::2]", v6), Some((ip("fd00::2"), None)));
        assert_eq!(parse_to("fd00::2", v6), Some((ip("fd00::2"), None)));
        assert_eq!(parse_to("nonsense:80", v4), None);
    }

    #[test]
    fn port_lists_and_negation() {
        assert_eq!(parse_port_list("80,443,8000:8100"), Some(vec![(80, 80), (443, 443), (8000, 8100)]));
        assert_eq!(parse_port_list("1024:"), Some(vec![(1024, u16::MAX)]));
        let except = PortSet::Except(vec![(22, 22)]);
        assert!(except.contains(8080) && !except.contains(22));
    }
}
