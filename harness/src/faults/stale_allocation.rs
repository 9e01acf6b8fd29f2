//! The daemon's port allocator remembers a port no one holds: a container publishing it survives a
//! daemon restart under live-restore, and is then stopped and removed.
//!
//! Needs `live-restore` in daemon.json (the scenario's environment). Whether the restored
//! endpoint's port is released when the container goes is the engine's business: the scenarios
//! record what each engine does.

use serde::{Deserialize, Serialize};

use super::{sockets_on, DuplicateContainer, HolderState, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleAllocation {
    pub port: u16,
}

impl StaleAllocation {
    fn kept(&self) -> DuplicateContainer {
        DuplicateContainer {
            port: self.port,
            proto: Proto::Tcp,
            host_ip: None,
            container_port: 80,
            state: HolderState::Running,
            name: Some(format!("kept-{}", self.port)),
        }
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let live = env.sh("grep -q '\"live-restore\": true' /etc/docker/daemon.json").await?;
        if !live.success() {
            return Err(HarnessError::fault(
                "stale-allocation",
                "daemon.json has no \"live-restore\": true (set `live_restore = true` in the scenario's [environment])",
            ));
        }
        let kept = self.kept();
        kept.inject(env).await?;
        env.restart_dockerd().await?;
        let name = kept.container_name();
        env.sh_ok(&format!("docker stop -t 0 {name} >/dev/null && docker rm {name} >/dev/null")).await?;
        Ok(Injected {
            summary: format!(
                "{name} published {}, survived a dockerd restart (live-restore), then was stopped and removed",
                self.port
            ),
            ..Default::default()
        })
    }

    /// Nothing holds the port and no container publishes it.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let held = sockets_on(env, Proto::Tcp, self.port).await?;
        if let Some(s) = held.first() {
            return Err(HarnessError::fault(
                "stale-allocation",
                format!("{}:{} is held by {:?}", s.addr, s.port, s.processes),
            ));
        }
        let out = env.exec(&["docker", "ps", "-aq", "--filter", &format!("publish={}", self.port)]).await?;
        if !out.stdout.trim().is_empty() {
            return Err(HarnessError::fault("stale-allocation", "a container still publishes the port"));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        // A restart rebuilds the allocator from the containers that exist.
        env.restart_dockerd().await?;
        self.kept().undo(env).await
    }
}
