//! A firewall reload wiped Docker's chains: what `firewall-cmd --reload`, `nft flush ruleset` or
//! `iptables -t nat -F && iptables -t nat -X` does to a running engine.
//!
//! dockerd creates its chains once, at start; nothing puts them back until it restarts. `undo`
//! restarts dockerd, which is also the remedy the scenarios prove.

use serde::{Deserialize, Serialize};

use super::Injected;
use crate::env::{Environment, FirewallMode};
use crate::error::HarnessError;

/// The command that wipes the rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wipe {
    /// `iptables -t nat -F && iptables -t nat -X`: every nat rule and user chain, in the backend
    /// `iptables` points at.
    #[default]
    IptablesNat,
    /// `nft flush ruleset`: every nftables table, iptables-nft's included (iptables-legacy's are
    /// not nftables and stay).
    NftFlushRuleset,
}

impl Wipe {
    pub fn command(self) -> &'static str {
        match self {
            Wipe::IptablesNat => "iptables -t nat -F && iptables -t nat -X",
            Wipe::NftFlushRuleset => "nft flush ruleset",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallWipe {
    #[serde(default)]
    pub how: Wipe,
}

impl FirewallWipe {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let out = env.sh(self.how.command()).await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "firewall-wipe",
                format!("`{}` exited {}: {}", self.how.command(), out.exit_code, out.stderr.trim()),
            ));
        }
        Ok(Injected { summary: format!("`{}` while dockerd runs", self.how.command()), ..Default::default() })
    }

    /// Docker's NAT chain is gone from the backend dockerd programs.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let (argv, what): (&[&str], &str) = if env.options().backend == FirewallMode::Nftables {
            (
                &["nft", "list", "chain", "ip", "docker-bridges", "nat-prerouting-and-output"],
                "ip docker-bridges",
            )
        } else {
            (&["iptables", "-t", "nat", "-S", "DOCKER"], "the nat DOCKER chain")
        };
        let out = env.exec(argv).await?;
        if out.success() {
            return Err(HarnessError::fault(
                "firewall-wipe",
                format!("{what} is still there after `{}`", self.how.command()),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        // The daemon recreates its chains only at start.
        env.restart_dockerd().await
    }
}
