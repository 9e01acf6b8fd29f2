//! A DNAT rule for the port pointing at an address no container has.
//!
//! The guide "Docker port binding: address already in use" treats a stale DNAT rule as a cause of the bind error. On
//! Engines 20.10, 26 and 28 it is not: `docker run -p` succeeds, Docker adds its own rule after the
//! orphan, and traffic to the host address is sent to the dead address by whichever rule comes
//! first. This injector reproduces that real behaviour: the symptom is unreachable, not unbindable.
//! An orphan in the nat DOCKER chain vanishes when dockerd restarts (it rebuilds the chain); one in
//! PREROUTING survives.
//!
//! With `firewall-backend: nftables` (29.0+) Docker's DNAT rules live in chain
//! `nat-prerouting-and-output` of `table ip docker-bridges`; the orphan for the `docker` chain goes
//! there, written with `nft` (no iptables tool shows it). The `prerouting` orphan is what a user
//! writes with their own `iptables`, which is iptables-nft on such a host.

use serde::{Deserialize, Serialize};

use super::{Injected, Proto};
use crate::env::{Environment, FirewallMode};
use crate::error::HarnessError;

fn dead_address() -> String {
    "172.17.0.250:80".to_string()
}

/// Which nat chain the orphan goes into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatChain {
    /// Docker's own `DOCKER` chain, in the exact form Docker writes (`! -i docker0`).
    #[default]
    Docker,
    /// `PREROUTING`, ahead of the jump to `DOCKER`: survives a dockerd restart.
    Prerouting,
}

/// Docker's native nftables table and the chain its DNAT rules go into (moby's nftabler).
const NFT_TABLE: &str = "docker-bridges";
const NFT_DNAT_CHAIN: &str = "nat-prerouting-and-output";

/// `-j DNAT --to-destination <to>` for `--dport <port>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanedDnat {
    pub port: u16,
    #[serde(default)]
    pub proto: Proto,
    /// `ip:port` no container has.
    #[serde(default = "dead_address")]
    pub to: String,
    #[serde(default)]
    pub chain: NatChain,
    /// The iptables flavour to write with; `None` uses the environment's backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<FirewallMode>,
}

impl OrphanedDnat {
    fn tool(&self, env: &Environment) -> String {
        format!("iptables-{}", self.backend.unwrap_or(env.options().backend).suffix())
    }

    /// Whether the orphan goes into Docker's own nftables table.
    fn native(&self, env: &Environment) -> bool {
        self.chain == NatChain::Docker
            && self.backend.unwrap_or(env.options().backend) == FirewallMode::Nftables
    }

    /// The nft rule Docker itself would write for the port (moby's nftabler form).
    fn nft_rule(&self) -> String {
        format!("{} dport {} counter dnat to {}", self.proto.as_str(), self.port, self.to)
    }

    /// Handles of the orphan's copies in the native chain.
    async fn nft_handles(&self, env: &Environment) -> Result<Vec<u64>, HarnessError> {
        let out = env.exec(&["nft", "-a", "list", "chain", "ip", NFT_TABLE, NFT_DNAT_CHAIN]).await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "orphaned-dnat",
                format!("nft list chain: {}", out.stderr.trim()),
            ));
        }
        let needle = format!("dport {} ", self.port);
        Ok(out
            .stdout
            .lines()
            .filter(|l| l.contains(&needle) && l.contains(&format!("dnat to {}", self.to)))
            .filter_map(|l| l.rsplit_once("# handle ").and_then(|(_, h)| h.trim().parse().ok()))
            .collect())
    }

    fn rule(&self) -> (&'static str, String) {
        let p = self.proto.as_str();
        match self.chain {
            NatChain::Docker => (
                "DOCKER",
                format!(
                    "! -i docker0 -p {p} -m {p} --dport {} -j DNAT --to-destination {}",
                    self.port, self.to
                ),
            ),
            NatChain::Prerouting => (
                "PREROUTING",
                format!("-p {p} -m {p} --dport {} -j DNAT --to-destination {}", self.port, self.to),
            ),
        }
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        if self.native(env) {
            let rule = self.nft_rule();
            let out = env.sh(&format!("nft insert rule ip {NFT_TABLE} {NFT_DNAT_CHAIN} {rule}")).await?;
            if !out.success() {
                return Err(HarnessError::fault("orphaned-dnat", format!("nft: {}", out.stderr.trim())));
            }
            return Ok(Injected {
                summary: format!("nft ip {NFT_TABLE} {NFT_DNAT_CHAIN}: {rule}"),
                ..Default::default()
            });
        }
        let (chain, rule) = self.rule();
        let tool = self.tool(env);
        let out = env.sh(&format!("{tool} -w -t nat -I {chain} 1 {rule}")).await?;
        if !out.success() {
            return Err(HarnessError::fault("orphaned-dnat", format!("{tool}: {}", out.stderr.trim())));
        }
        Ok(Injected { summary: format!("{tool} nat {chain}: {rule}"), ..Default::default() })
    }

    /// The save tool of the same backend lists the rule.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        if self.native(env) {
            if self.nft_handles(env).await?.is_empty() {
                return Err(HarnessError::fault(
                    "orphaned-dnat",
                    format!("nft ip {NFT_TABLE} {NFT_DNAT_CHAIN} shows no DNAT to {}", self.to),
                ));
            }
            return Ok(());
        }
        let (chain, _) = self.rule();
        let save = format!("{}-save", self.tool(env));
        let out = env.exec(&[&save, "-t", "nat"]).await?;
        if !out.success() {
            return Err(HarnessError::fault("orphaned-dnat", format!("{save}: {}", out.stderr.trim())));
        }
        let found = out.stdout.lines().any(|l| {
            l.starts_with(&format!("-A {chain} "))
                && l.contains(&format!("--dport {}", self.port))
                && l.contains(&format!("--to-destination {}", self.to))
        });
        if !found {
            return Err(HarnessError::fault(
                "orphaned-dnat",
                format!("{save} -t nat shows no DNAT to {} in {chain}", self.to),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        if self.native(env) {
            // A restart rebuilds the table; whatever copy is left goes by handle.
            for h in self.nft_handles(env).await.unwrap_or_default() {
                env.sh(&format!("nft delete rule ip {NFT_TABLE} {NFT_DNAT_CHAIN} handle {h}")).await?;
            }
            return Ok(());
        }
        let (chain, rule) = self.rule();
        let tool = self.tool(env);
        // Delete every copy (a restart may have left one; -D removes one per call).
        env.sh(&format!("while {tool} -w -t nat -D {chain} {rule} 2>/dev/null; do :; done")).await?;
        Ok(())
    }
}
