//! A firewall command's refusal: the table and chain it names.

use std::sync::LazyLock;

use regex::Regex;

use super::*;

pub(super) static FW_TABLE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-t (\w+)"));
pub(super) static FW_CHAIN: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-[AIDCR] (\S+)"));
/// Older iptables-nft: `iptables v1.8.2 (nf_tables): Chain 'DOCKER' does not exist`.
pub(super) static FW_NO_CHAIN: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)chain '([^']+)' does not exist"));

/// The rule nft echoes under its error: `add rule ip docker-bridges nat-prerouting-and-output ...`.
pub(super) static NFT_RULE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:add|insert) rule (?:ip|ip6|inet) (\S+) (\S+)"));
/// Targets Docker's rules jump to; no chain of Docker's has these names.
pub(super) const IPTABLES_TARGETS: &[&str] =
    &["ACCEPT", "DROP", "RETURN", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"];

/// A missing chain, with the table and chain of the refused command.
pub(super) fn firewall_error(body: &str, lower: &str) -> Option<FirewallError> {
    // nft names no chain in its complaint, only in the rule it echoes: `add rule ip TABLE CHAIN ...`.
    if lower.contains("could not process rule: no such file or directory") {
        let rule = NFT_RULE.captures(body);
        return Some(FirewallError {
            kind: FirewallErrorKind::ChainMissing,
            table: rule.as_ref().map(|c| c[1].to_owned()),
            chain: rule.as_ref().map(|c| c[2].to_owned()),
        });
    }
    let named = FW_NO_CHAIN.captures(body).map(|c| c[1].to_owned());
    if named.is_none() && !lower.contains("no chain/target/match by that name") {
        return None;
    }
    let command =
        lower.contains("iptables").then(|| FW_CHAIN.captures(body).map(|c| c[1].to_owned())).flatten();
    let table = FW_TABLE
        .captures(body)
        .map(|c| c[1].to_owned())
        .or_else(|| command.as_ref().map(|_| "filter".to_owned()));
    let kind = match &named {
        Some(n) if IPTABLES_TARGETS.contains(&n.as_str()) => FirewallErrorKind::TargetMissing,
        _ => FirewallErrorKind::ChainMissing,
    };
    Some(FirewallError { kind, table, chain: named.or(command) })
}
