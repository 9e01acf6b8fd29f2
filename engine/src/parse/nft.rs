//! Pure, lenient parser of `nft -j list ruleset`: DNAT statements, Docker's native tables, and which
//! tables iptables-nft manages.
//!
//! The JSON is walked as a `serde_json::Value`; expressions it does not know are ignored, never an
//! error, because nft grows new expressions faster than any reader.
//!
//! Tables written by iptables-nft also appear here (`table ip nat` with Docker's `DOCKER` chain),
//! but their DNAT targets are opaque compat (`xt`) expressions without the destination. Those are
//! read through `iptables-nft-save` instead, so this parser marks them `xtables` and the collector
//! skips their rules. A table is taken as iptables-nft's when a rule in it uses an `xt`
//! expression (the test nft itself uses for its "managed by iptables-nft" warning), or when it has
//! an iptables table name in family ip/ip6 and every base chain carries an iptables built-in
//! name (`PREROUTING`, `OUTPUT`, ...). A hand-written `table ip nat { chain prerouting { ... } }`
//! is therefore native, as is Engine 29's `docker-bridges`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::iptables::{DnatEntry, PortSet};
use crate::evidence::Family;
use crate::port::Proto;

/// The table name Engine 29's nftables firewall backend uses in families `ip` and `ip6`.
pub const DOCKER_TABLE: &str = "docker-bridges";

const XTABLES_NAMES: &[&str] = &["filter", "nat", "mangle", "raw", "security"];
const XTABLES_BUILTIN_CHAINS: &[&str] = &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// A table of the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    /// `ip`, `ip6`, `inet`, `arp`, `bridge`, `netdev`.
    pub family: String,
    pub name: String,
    /// Written by iptables-nft (see the module docs for how that is told).
    pub xtables: bool,
    /// Docker's own native table (`docker-bridges`).
    pub docker: bool,
}

/// A DNAT statement found in a rule, with the table it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftDnat {
    pub table_family: String,
    /// Rule handle, for `nft delete rule FAMILY TABLE CHAIN handle N`.
    pub handle: Option<u64>,
    pub entry: DnatEntry,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NftRuleset {
    pub tables: Vec<NftTable>,
    /// DNAT statements in every table, iptables-nft's included (check `table(...).xtables`).
    pub dnat: Vec<NftDnat>,
}

impl NftRuleset {
    pub fn table(&self, family: &str, name: &str) -> Option<&NftTable> {
        self.tables.iter().find(|t| t.family == family && t.name == name)
    }

    /// DNAT statements in tables iptables-nft does not manage.
    pub fn native_dnat(&self) -> impl Iterator<Item = &NftDnat> {
        self.dnat.iter().filter(|d| self.table(&d.table_family, &d.entry.table).is_none_or(|t| !t.xtables))
    }

    pub fn docker_tables(&self) -> impl Iterator<Item = &NftTable> {
        self.tables.iter().filter(|t| t.docker)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NftParseError {
    #[error("nft output is not JSON: {0}")]
    NotJson(String),
    #[error("nft JSON has no `nftables` array")]
    NoRuleset,
}

/// Parse the whole `nft -j list ruleset` document.
pub fn parse_ruleset(json: &str) -> Result<NftRuleset, NftParseError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| NftParseError::NotJson(e.to_string()))?;
    let items = doc.get("nftables").and_then(Value::as_array).ok_or(NftParseError::NoRuleset)?;

    #[derive(Default)]
    struct TableFacts {
        has_xt: bool,
        base_chains: Vec<String>,
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut facts: BTreeMap<(String, String), TableFacts> = BTreeMap::new();
    let mut positions: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut dnat = Vec::new();

    for item in items {
        if let Some(t) = item.get("table") {
            let key = (str_of(t, "family"), str_of(t, "name"));
            if !facts.contains_key(&key) {
                order.push(key.clone());
            }
            facts.entry(key).or_default();
        } else if let Some(c) = item.get("chain") {
            let key = (str_of(c, "family"), str_of(c, "table"));
            if c.get("hook").is_some() {
                facts.entry(key).or_default().base_chains.push(str_of(c, "name"));
            }
        } else if let Some(r) = item.get("rule") {
            let (family, table, chain) = (str_of(r, "family"), str_of(r, "table"), str_of(r, "chain"));
            let exprs = r.get("expr").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if exprs.iter().any(|e| e.get("xt").is_some()) {
                facts.entry((family.clone(), table.clone())).or_default().has_xt = true;
            }
            let position = positions.entry((family.clone(), table.clone(), chain.clone())).or_insert(0);
            *position += 1;
            let handle = r.get("handle").and_then(Value::as_u64);
            for entry in rule_dnat(&family, &table, &chain, *position, handle, exprs) {
                dnat.push(NftDnat { table_family: family.clone(), handle, entry });
            }
        }
    }

    let tables = order
        .into_iter()
        .map(|(family, name)| {
            let f = facts.remove(&(family.clone(), name.clone())).unwrap_or_default();
            let xt_shaped = matches!(family.as_str(), "ip" | "ip6")
                && XTABLES_NAMES.contains(&name.as_str())
                && !f.base_chains.is_empty()
                && f.base_chains.iter().all(|c| XTABLES_BUILTIN_CHAINS.contains(&c.as_str()));
            let docker = name == DOCKER_TABLE;
            NftTable { xtables: f.has_xt || xt_shaped, docker, family, name }
        })
        .collect();
    Ok(NftRuleset { tables, dnat })
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// What the statements before a `dnat` matched.
#[derive(Default)]
struct Matches {
    protos: Vec<Proto>,
    ports: Option<PortSet>,
    match_dest: Option<String>,
    in_iface: Option<String>,
    text: Vec<String>,
}

fn rule_dnat(
    family: &str,
    table: &str,
    chain: &str,
    position: usize,
    handle: Option<u64>,
    exprs: &[Value],
) -> Vec<DnatEntry> {
    let mut m = Matches::default();
    let mut out = Vec::new();
    for expr in exprs {
        if let Some(mat) = expr.get("match") {
            read_match(mat, &mut m);
        } else if let Some(d) = expr.get("dnat") {
            // A map key (`dnat to tcp dport map { ... }`) names the protocol when no match did.
            let key_proto = d
                .pointer("/addr/map/key/payload/protocol")
                .and_then(Value::as_str)
                .and_then(|p| p.parse().ok());
            if let (Some(p), true) = (key_proto, m.protos.is_empty()) {
                m.protos = vec![p];
            }
            let suffix = handle.map(|h| format!(" # handle {h}")).unwrap_or_default();
            let base = |to_addr: IpAddr, to_port: Option<u16>, ports: PortSet, stmt: String| {
                let mut text = m.text.clone();
                text.push(stmt);
                DnatEntry {
                    family: family_of(family, to_addr),
                    table: table.to_owned(),
                    chain: chain.to_owned(),
                    position,
                    protos: m.protos.clone(),
                    ports,
                    match_dest: m.match_dest.clone(),
                    in_iface: m.in_iface.clone(),
                    to_addr,
                    to_port,
                    raw: format!("{}{suffix}", text.join(" ")),
                }
            };
            match d.get("addr") {
                Some(Value::String(a)) => {
                    let Ok(to_addr) = a.parse::<IpAddr>() else { continue };
                    let to_port = d.get("port").and_then(port_of);
                    let stmt = match (to_port, to_addr) {
                        (Some(p), IpAddr::V6(_)) => format!("dnat to [{to_addr}]:{p}"),
                        (Some(p), IpAddr::V4(_)) => format!("dnat to {to_addr}:{p}"),
                        (None, _) => format!("dnat to {to_addr}"),
                    };
                    out.push(base(to_addr, to_port, m.ports.clone().unwrap_or(PortSet::Any), stmt));
                }
                // `dnat to tcp dport map { 8080 : 172.17.0.2 . 80 }`: one entry per element.
                Some(addr) => {
                    for (key, to_addr, to_port) in map_elements(addr) {
                        let target = to_port.map_or(to_addr.to_string(), |p| format!("{to_addr} . {p}"));
                        let stmt = format!(
                            "dnat to {} map {{ {key} : {target} }}",
                            render_value(&addr["map"]["key"])
                        );
                        out.push(base(to_addr, to_port, PortSet::one(key), stmt));
                    }
                }
                None => {}
            }
        } else if let Some(text) = render_other(expr) {
            m.text.push(text);
        }
    }
    out
}

fn read_match(mat: &Value, m: &mut Matches) {
    let negated = mat.get("op").and_then(Value::as_str) == Some("!=");
    let (Some(left), Some(right)) = (mat.get("left"), mat.get("right")) else { return };
    let op = if negated { "!= " } else { "" };
    if let Some(p) = left.get("payload") {
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or_default();
        let field = p.get("field").and_then(Value::as_str).unwrap_or_default();
        match field {
            "dport" => {
                if let Ok(pr) = proto.parse::<Proto>() {
                    m.protos = vec![pr];
                }
                let ranges = port_ranges(right);
                m.ports = Some(if negated { PortSet::Except(ranges) } else { PortSet::Ranges(ranges) });
                m.text.push(format!("{proto} dport {op}{}", render_value(right)));
            }
            "daddr" => {
                let dest = render_value(right);
                m.match_dest = Some(if negated { format!("!{dest}") } else { dest.clone() });
                m.text.push(format!("{proto} daddr {op}{dest}"));
            }
            "protocol" | "nexthdr" => {
                m.protos = protos_of(right);
                m.text.push(format!("{proto} {field} {op}{}", render_value(right)));
            }
            _ => m.text.push(format!("{proto} {field} {op}{}", render_value(right))),
        }
    } else if let Some(key) = left.get("meta").and_then(|x| x.get("key")).and_then(Value::as_str) {
        match key {
            "l4proto" | "protocol" if !negated => m.protos = protos_of(right),
            "iifname" => {
                let name = render_value(right);
                m.in_iface = Some(if negated { format!("!{name}") } else { name });
            }
            _ => {}
        }
        m.text.push(match key {
            "iifname" | "oifname" => format!("{key} {op}\"{}\"", render_value(right)),
            _ => format!("meta {key} {op}{}", render_value(right)),
        });
    } else {
        m.text.push(format!("{} {op}{}", render_value(left), render_value(right)));
    }
}

fn family_of(table_family: &str, to_addr: IpAddr) -> Family {
    match table_family {
        "ip" => Family::Ipv4,
        "ip6" => Family::Ipv6,
        // inet (and anything newer): the target address says which family is rewritten.
        _ if to_addr.is_ipv6() => Family::Ipv6,
        _ => Family::Ipv4,
    }
}

fn port_of(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        // A port range in `dnat to A:P1-P2` keeps its first port.
        Value::Object(o) => {
            o.get("range").and_then(Value::as_array).and_then(|r| r.first()).and_then(port_of)
        }
        _ => None,
    }
}

fn port_ranges(v: &Value) -> Vec<(u16, u16)> {
    if let Some(p) = port_of(v).filter(|_| !v.is_object()) {
        return vec![(p, p)];
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        if let (Some(lo), Some(hi)) = (r.first().and_then(port_of), r.get(1).and_then(port_of)) {
            return vec![(lo, hi)];
        }
    }
    if let Some(items) = v.get("set").and_then(Value::as_array) {
        return items.iter().flat_map(port_ranges).collect();
    }
    Vec::new()
}

fn protos_of(v: &Value) -> Vec<Proto> {
    match v {
        Value::String(s) => s.parse().map(|p| vec![p]).unwrap_or_default(),
        Value::Object(o) => o
            .get("set")
            .and_then(Value::as_array)
            .map(|items| items.iter().flat_map(protos_of).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Elements of a `dnat to <key> map { K : ADDR }` or `{ K : ADDR . PORT }` with a scalar port key.
fn map_elements(addr: &Value) -> Vec<(u16, IpAddr, Option<u16>)> {
    let Some(elems) =
        addr.get("map").and_then(|m| m.get("data")).and_then(|d| d.get("set")).and_then(Value::as_array)
    else {
        return Vec::new();
    };
    elems
        .iter()
        .filter_map(|pair| {
            let pair = pair.as_array()?;
            let key = port_of(pair.first()?)?;
            let data = pair.get(1)?;
            match data {
                Value::String(a) => Some((key, a.parse().ok()?, None)),
                _ => {
                    let parts = data.get("concat")?.as_array()?;
                    let to_addr = parts.first()?.as_str()?.parse().ok()?;
                    Some((key, to_addr, parts.get(1).and_then(port_of)))
                }
            }
        })
        .collect()
}

/// A statement other than match/dnat, in nft's words, for the `raw` line; `None` when unknown.
fn render_other(expr: &Value) -> Option<String> {
    let obj = expr.as_object()?;
    let (key, val) = obj.iter().next()?;
    Some(match key.as_str() {
        "counter" => "counter".to_owned(),
        "accept" | "drop" | "return" | "masquerade" => key.clone(),
        "jump" | "goto" => format!("{key} {}", val.get("target")?.as_str()?),
        "xt" => format!("xt {} {}", val.get("type")?.as_str()?, val.get("name")?.as_str()?),
        _ => return None,
    })
}

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                format!("{}/{}", str_of(p, "addr"), p.get("len").map(Value::to_string).unwrap_or_default())
            } else if let Some(r) = o.get("range").and_then(Value::as_array) {
                r.iter().map(render_value).collect::<Vec<_>>().join("-")
            } else if let Some(s) = o.get("set").and_then(Value::as_array) {
                format!("{{ {} }}", s.iter().map(render_value).collect::<Vec<_>>().join(", "))
            } else if let Some(m) = o.get("meta").and_then(|m| m.get("key")).and_then(Value::as_str) {
                format!("meta {m}")
            } else if let Some(p) = o.get("payload") {
                format!("{} {}", str_of(p, "protocol"), str_of(p, "field"))
            } else if let Some(f) = o.get("fib") {
                format!("fib {}", render_value(f.get("flags").unwrap_or(&Value::Null)))
            } else {
                v.to_string()
            }
        }
        Value::Array(a) => a.iter().map(render_value).collect::<Vec<_>>().join(" . "),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_json_is_an_error_and_unknown_items_are_not() {
        assert!(matches!(parse_ruleset("table ip nat {"), Err(NftParseError::NotJson(_))));
        assert_eq!(parse_ruleset("{}"), Err(NftParseError::NoRuleset));
        let odd = r#"{"nftables":[{"metainfo":{}},{"flowtable":{"name":"f"}},{"rule":{"family":"ip",
            "table":"t","chain":"c","expr":[{"quota":{"val":1}},{"dnat":{"addr":"10.0.0.1","port":80}}]}}]}"#;
        let rs = parse_ruleset(odd).unwrap();
        assert_eq!(rs.dnat.len(), 1);
        assert_eq!(rs.dnat[0].entry.ports, PortSet::Any);
        assert_eq!(rs.dnat[0].entry.to_port, Some(80));
    }
}
