//! A host socket and a published container port sharing one port number without any error.
//!
//! TCP never shares silently within one address family; a silent TCP share always involves
//! disjoint addresses or families (a v6-only `[::]` listener and a v4 publish, `127.0.0.1` and the
//! environment's address). For UDP, Engine 28 binds published ports with SO_REUSEADDR, so a host
//! UDP socket that also set it coexists with `-p P:P/udp` (fixed in 29.0.0, moby#50669); 20.10 and
//! 26 refuse it. The injection fails when the engine refuses: that share is then not silent there.

use serde::{Deserialize, Serialize};

use super::{DuplicateContainer, HolderState, HostListener, Injected};
use crate::env::Environment;
use crate::error::HarnessError;

/// `holder` binds first, then `publish` is published (as a running container); both must succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilentShare {
    pub holder: HostListener,
    pub publish: DuplicateContainer,
}

impl SilentShare {
    fn publish(&self) -> DuplicateContainer {
        DuplicateContainer { state: HolderState::Running, ..self.publish.clone() }
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let held = self.holder.inject(env).await?;
        let published = match self.publish().inject(env).await {
            Ok(p) => p,
            Err(e) => {
                self.holder.undo(env).await?;
                return Err(HarnessError::fault("silent-share", format!("the engine refused to share: {e}")));
            }
        };
        Ok(Injected {
            summary: format!("{} and {} share the port", held.summary, published.summary),
            pids: held.pids,
            containers: published.containers,
            ..Default::default()
        })
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        self.holder.check(env).await?;
        self.publish().check(env).await
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        self.publish().undo(env).await?;
        self.holder.undo(env).await
    }
}
