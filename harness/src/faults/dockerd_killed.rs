//! dockerd SIGKILLed while a container publishes a port: stale state without a daemon.
//!
//! After the kill the docker-proxy processes die with it, while the container (its shim) and its
//! DNAT rule stay. On restart the daemon stops the old container after about 10 s. The injector
//! leaves dockerd dead; `undo` starts it again and removes the container.

use serde::{Deserialize, Serialize};

use super::{DuplicateContainer, HolderState, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

/// A running container publishing `port`, then `kill -9` of dockerd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerdKilled {
    pub port: u16,
    #[serde(default)]
    pub proto: Proto,
}

impl DockerdKilled {
    fn holder(&self) -> DuplicateContainer {
        DuplicateContainer {
            port: self.port,
            proto: self.proto,
            host_ip: None,
            container_port: 80,
            state: HolderState::Running,
            name: Some(format!("killed-{}", self.port)),
        }
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let holder = self.holder().inject(env).await?;
        env.kill_dockerd().await?;
        Ok(Injected {
            summary: format!("dockerd SIGKILLed while {}", holder.summary),
            containers: holder.containers,
            ..Default::default()
        })
    }

    /// No dockerd, a containerd shim still running, and the container's DNAT rule still in nat.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        if env.dockerd_running().await? {
            return Err(HarnessError::fault("dockerd-killed", "dockerd is running"));
        }
        let shims = env.sh("ps -eo args | grep -c '^[c]ontainerd-shim\\|/[c]ontainerd-shim'").await?;
        if shims.stdout.trim().parse::<u32>().unwrap_or(0) == 0 {
            return Err(HarnessError::fault(
                "dockerd-killed",
                "no containerd shim left: the container died too",
            ));
        }
        // With the nftables backend the rule is in `ip docker-bridges`, which no iptables tool shows.
        let native = env.options().backend == crate::env::FirewallMode::Nftables;
        let found = if native {
            let nat = env.exec(&["nft", "list", "table", "ip", "docker-bridges"]).await?.stdout;
            nat.lines().any(|l| l.contains("dnat to") && l.contains(&format!("dport {} ", self.port)))
        } else {
            let nat = env.exec(&["iptables-save", "-t", "nat"]).await?.stdout;
            nat.lines().any(|l| l.contains("-j DNAT") && l.contains(&format!("--dport {}", self.port)))
        };
        if !found {
            return Err(HarnessError::fault(
                "dockerd-killed",
                format!("no DNAT rule for {} survived", self.port),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        if !env.dockerd_running().await? {
            env.restart_dockerd().await?;
        }
        self.holder().undo(env).await
    }
}
