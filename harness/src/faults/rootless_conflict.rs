//! A port conflict under rootless dockerd: a process in the environment's namespace holds the port
//! rootlesskit's port driver must bind, so the publish fails in the rootless port manager.
//!
//! Only for environments started with `rootless: true` (forky/sid images carry rootlesskit,
//! slirp4netns and uidmap). Published ports of a rootless daemon are held by `rootlesskit` in the
//! environment's namespace; docker-proxy and DNAT live inside rootlesskit's own namespace.

use serde::{Deserialize, Serialize};

use super::{HostListener, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

/// A host listener on `0.0.0.0:port` next to a rootless daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootlessConflict {
    pub port: u16,
    #[serde(default)]
    pub proto: Proto,
}

impl RootlessConflict {
    fn holder(&self) -> HostListener {
        HostListener {
            proto: self.proto,
            addr: "0.0.0.0".into(),
            port: self.port,
            v6only: None,
            reuseaddr: false,
            reuseport: false,
            count: 1,
            name: Some(format!("rootless-{}", self.port)),
        }
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        if !env.options().rootless {
            return Err(HarnessError::fault(
                "rootless-conflict",
                "the environment does not run dockerd rootless",
            ));
        }
        self.holder().inject(env).await
    }

    /// The holder is in `ss`, and the daemon answering is rootless (`docker info` security options).
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        self.holder().check(env).await?;
        let info = env.exec(&["docker", "info", "--format", "{{json .SecurityOptions}}"]).await?;
        if !info.stdout.contains("rootless") {
            return Err(HarnessError::fault(
                "rootless-conflict",
                format!("daemon is not rootless: {}", info.stdout.trim()),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        self.holder().undo(env).await
    }
}
