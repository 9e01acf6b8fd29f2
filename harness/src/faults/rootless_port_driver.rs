//! A rootless dockerd restarted with another RootlessKit port driver.
//!
//! dockerd-rootless.sh reads `DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER` (default `builtin`). The
//! slirp4netns driver is what Engine 29.0.0 to 29.1.1 broke (moby#51591): every publish on a
//! wildcard address fails with `failed to bind host port 10.0.2.100:P/tcp: address already in use`
//! while nothing holds the port. As a fault, the driver can be put back after a remedy switched it,
//! so each remedy meets the same cause.

use serde::{Deserialize, Serialize};

use super::Injected;
use crate::env::{Environment, RootlessPortDriver};
use crate::error::HarnessError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootlessPortDriverFault {
    pub driver: RootlessPortDriver,
}

impl RootlessPortDriverFault {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        env.set_rootless_port_driver(self.driver).await?;
        Ok(Injected {
            summary: format!("rootless dockerd restarted with --port-driver={}", self.driver.as_str()),
            ..Default::default()
        })
    }

    /// rootlesskit's own command line names the driver.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let out = env
            .sh("for p in $(pgrep -x rootlesskit); do tr '\\0' ' ' < /proc/$p/cmdline; echo; done")
            .await?;
        let want = format!("--port-driver={}", self.driver.as_str());
        if out.stdout.lines().any(|l| l.split(' ').any(|a| a == want)) {
            return Ok(());
        }
        Err(HarnessError::fault(
            "rootless-port-driver",
            format!("no rootlesskit runs with {want}: {}", out.stdout.trim()),
        ))
    }

    /// Back to the script's default driver.
    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        env.set_rootless_port_driver(RootlessPortDriver::default()).await
    }
}
