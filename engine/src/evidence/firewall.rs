//! NAT rules from every firewall backend, and which backend the `iptables` command points at.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::port::Proto;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// x_tables, read with `iptables-legacy-save`.
    IptablesLegacy,
    /// iptables rules kept in nf_tables, read with `iptables-nft-save`.
    IptablesNft,
    /// Native nftables tables (Engine 29 `--firewall-backend=nftables`: `ip docker-bridges`).
    Nftables,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IptablesLegacy => "iptables-legacy",
            Self::IptablesNft => "iptables-nft",
            Self::Nftables => "nftables",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    /// Where `/usr/sbin/iptables` points: `legacy`, `nft`, or `None` when it could not be resolved.
    pub iptables_alternative: Option<String>,
    /// Tables listed in /proc/net/ip_tables_names (legacy x_tables in use when non-empty). IPv6
    /// legacy tables are checked too, before ip6tables-legacy-save runs, but not listed here.
    #[serde(default)]
    pub legacy_tables: Vec<String>,
    /// Backends that were read successfully (so "no rule" means "none there", not "not looked").
    #[serde(default)]
    pub backends_read: Vec<Backend>,
    /// Which backends hold Docker's chains (`DOCKER` in nat, or a `docker-bridges` table).
    #[serde(default)]
    pub docker_chains_in: Vec<Backend>,
    /// DNAT rules that rewrite the queried port (every backend, both families).
    #[serde(default)]
    pub nat_rules: Vec<NatRule>,
    /// Count of DNAT rules in Docker's chains per backend (nat `DOCKER` in both families; every
    /// DNAT in `docker-bridges` tables), for the signals command.
    #[serde(default)]
    pub docker_dnat_count: Vec<(Backend, usize)>,
}

/// A DNAT rule as a port-conflict reader needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    pub backend: Backend,
    pub family: Family,
    /// Table (`nat`, `docker-bridges`) and chain (`DOCKER`, `PREROUTING`, `nat-prerouting-and-output`).
    pub table: String,
    pub chain: String,
    pub proto: Proto,
    /// Destination port matched (`--dport`).
    pub dport: u16,
    /// Destination address matched as the tool printed it (`127.0.0.1/32` for `-d 127.0.0.1/32`,
    /// `127.0.0.1` for nft's `ip daddr 127.0.0.1`), `!`-prefixed when negated; `None` for any.
    #[serde(default)]
    pub match_dest: Option<String>,
    /// Input interface: `docker0` when required with `-i docker0`, `!docker0` when excluded with
    /// `! -i docker0` (nft: `iifname != "docker0"`).
    #[serde(default)]
    pub in_iface: Option<String>,
    /// DNAT target address and port.
    pub to_addr: IpAddr,
    pub to_port: u16,
    /// The rule as the tool printed it, for evidence lines and deletion commands. iptables: the
    /// `-A CHAIN ...` line. nftables: the statements in nft's syntax followed by `# handle N`, the
    /// handle `nft delete rule FAMILY TABLE CHAIN handle N` needs.
    pub raw: String,
    /// Position in its chain, 1-based, as `--line-numbers` would print it.
    #[serde(default)]
    pub position: Option<usize>,
}
