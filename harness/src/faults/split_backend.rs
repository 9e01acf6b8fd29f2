//! The `iptables` alternative switched to the other backend under (or across a restart of) dockerd.
//!
//! dockerd execs `/usr/sbin/iptables` for every change. Switching the alternative while it runs means
//! the next publish goes to a backend without Docker's chains (`No chain/target/match by that
//! name`). Switching and then restarting dockerd strands the rules of containers that were running
//! in the old backend: they keep forwarding traffic nobody can see with the current `iptables`.

use serde::{Deserialize, Serialize};

use super::{sh_quote, Injected};
use crate::env::{Environment, FirewallMode};
use crate::error::HarnessError;

fn stale_port() -> u16 {
    18080
}

/// Which split to create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitVariant {
    /// Switch the alternative; dockerd keeps running with its chains in the old backend.
    #[default]
    SwitchUnderDaemon,
    /// Publish `port` in a container, switch, restart dockerd: the old rules stay in the old backend.
    StaleAfterRestart,
}

/// Splits the firewall backend away from the environment's `backend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitBackend {
    #[serde(default)]
    pub variant: SplitVariant,
    /// Port published before the switch (stale-after-restart only).
    #[serde(default = "stale_port")]
    pub port: u16,
}

const STALE_CONTAINER: &str = "split-stale";

async fn select(env: &Environment, mode: FirewallMode) -> Result<(), HarnessError> {
    let b = mode.suffix();
    env.sh_ok(&format!(
        "update-alternatives --quiet --set iptables /usr/sbin/iptables-{b} && \
         update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-{b}"
    ))
    .await?;
    Ok(())
}

impl SplitBackend {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let original = env.options().backend;
        let other = original.other();
        let mut containers = Vec::new();
        if self.variant == SplitVariant::StaleAfterRestart {
            let serve =
                format!("docker run -d --name {STALE_CONTAINER} -p {}:80 busybox sleep 86400", self.port);
            env.sh_ok(&serve).await?;
            containers.push(STALE_CONTAINER.to_string());
        }
        select(env, other).await?;
        if self.variant == SplitVariant::StaleAfterRestart {
            env.restart_dockerd().await?;
        }
        Ok(Injected {
            summary: format!(
                "iptables now points at {} while dockerd {} {}",
                other.suffix(),
                if self.variant == SplitVariant::StaleAfterRestart {
                    "restarted; old rules stranded in"
                } else {
                    "programs"
                },
                original.suffix()
            ),
            containers,
            ..Default::default()
        })
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let original = env.options().backend;
        let other = original.other();
        let current = env.sh_ok("readlink /etc/alternatives/iptables").await?.stdout;
        if !current.trim().ends_with(&format!("-{}", other.suffix())) {
            return Err(HarnessError::fault(
                "split-backend",
                format!("iptables points at {}", current.trim()),
            ));
        }
        let old = env.exec(&[&format!("iptables-{}-save", original.suffix()), "-t", "nat"]).await?.stdout;
        match self.variant {
            SplitVariant::SwitchUnderDaemon => {
                let new =
                    env.exec(&[&format!("iptables-{}-save", other.suffix()), "-t", "nat"]).await?.stdout;
                if !old.contains(":DOCKER ") || new.contains(":DOCKER ") {
                    return Err(HarnessError::fault(
                        "split-backend",
                        format!("expected Docker's chains only in {}", original.suffix()),
                    ));
                }
            }
            SplitVariant::StaleAfterRestart => {
                if !old
                    .lines()
                    .any(|l| l.contains("-j DNAT") && l.contains(&format!("--dport {}", self.port)))
                {
                    return Err(HarnessError::fault(
                        "split-backend",
                        format!("no stale DNAT for {} left in {}", self.port, original.suffix()),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        let original = env.options().backend;
        let other = original.other().suffix();
        env.sh(&format!("docker rm -f {} >/dev/null 2>&1", sh_quote(STALE_CONTAINER))).await?;
        select(env, original).await?;
        if self.variant == SplitVariant::StaleAfterRestart {
            // Whatever dockerd wrote through the other backend meanwhile goes; restarting on the
            // original backend rebuilds its chains and drops the stranded rules.
            env.sh(&format!(
                "for t in iptables-{other} ip6tables-{other}; do for tb in nat filter; do \
                 $t -w -t $tb -F; $t -w -t $tb -X; done; done 2>/dev/null; true"
            ))
            .await?;
            env.restart_dockerd().await?;
            let old = env.exec(&[&format!("iptables-{}-save", original.suffix()), "-t", "nat"]).await?.stdout;
            if old.lines().any(|l| l.contains("-j DNAT") && l.contains(&format!("--dport {}", self.port))) {
                // Docker rebuilt DOCKER but a stale rule survived: remove it explicitly.
                env.sh(&format!(
                    "iptables-{0}-save -t nat | grep -- '--dport {1} ' | grep DNAT | sed 's/^-A/-D/' | \
                     while read -r r; do eval iptables-{0} -w -t nat $r; done",
                    original.suffix(),
                    self.port
                ))
                .await?;
            }
        }
        Ok(())
    }
}
