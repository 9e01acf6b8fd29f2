//! Signals for monitoring, as `portwhy signals --json` prints them: listening sockets per owner,
//! published ports per container, Docker's DNAT rules against the bindings that should have them,
//! and conntrack usage. `collect::signals` fills it from the live host.

use serde::Serialize;

use crate::evidence::{Backend, FirewallState, Unavailable};

/// Version of the JSON document `portwhy signals --json` prints. Bump on any incompatible change.
pub const SIGNALS_SCHEMA_VERSION: u32 = 1;

/// Signals for monitoring, as `portwhy signals --json` prints them.
#[derive(Debug, Serialize)]
pub struct Signals {
    pub schema_version: u32,
    /// Listening sockets grouped by the program that owns them.
    pub listeners_by_owner: Vec<OwnerSockets>,
    /// Host ports published by running containers.
    pub published: Vec<PublishedPorts>,
    /// DNAT rules in Docker's chains against the bindings that should have them.
    pub nat: Vec<NatDrift>,
    pub conntrack: Option<Conntrack>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Serialize)]
pub struct OwnerSockets {
    pub owner: String,
    pub pids: Vec<u32>,
    pub sockets: usize,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishedPorts {
    pub container: String,
    pub state: String,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NatDrift {
    pub backend: Backend,
    pub docker_dnat_rules: usize,
    /// IPv4 host bindings of running containers: each should have one DNAT rule.
    pub published_bindings: usize,
    /// Rules minus bindings: above zero means orphans (or rules of another engine sharing the backend).
    pub drift: i64,
}

#[derive(Debug, Serialize)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
    pub ratio: f64,
}

/// Rules against bindings for each backend Docker writes into (those holding its chains; every
/// backend read when none does). With `firewall-backend: nftables` the iptables tables hold none
/// of Docker's rules by design, and counting them would report every binding as missing.
pub fn nat_drift(fw: &FirewallState, published_bindings: usize) -> Vec<NatDrift> {
    fw.docker_dnat_count
        .iter()
        .filter(|(b, _)| fw.docker_chains_in.is_empty() || fw.docker_chains_in.contains(b))
        .map(|(backend, rules)| NatDrift {
            backend: *backend,
            docker_dnat_rules: *rules,
            published_bindings,
            drift: *rules as i64 - published_bindings as i64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_counts_only_the_backend_docker_writes_into() {
        // Engine 29 with firewall-backend nftables: two bindings, their two rules in docker-bridges,
        // nothing of Docker's in either iptables.
        let fw = FirewallState {
            docker_chains_in: vec![Backend::Nftables],
            docker_dnat_count: vec![
                (Backend::IptablesLegacy, 0),
                (Backend::IptablesNft, 0),
                (Backend::Nftables, 2),
            ],
            ..Default::default()
        };
        let d = nat_drift(&fw, 2);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].backend, d[0].drift), (Backend::Nftables, 0));
        // No Docker chains anywhere (a wiped firewall): every backend read is reported.
        let wiped = FirewallState { docker_chains_in: vec![], ..fw };
        assert!(nat_drift(&wiped, 2).iter().all(|d| d.drift == -2 || d.backend == Backend::Nftables));
        assert_eq!(nat_drift(&wiped, 2).len(), 3);
    }
}
