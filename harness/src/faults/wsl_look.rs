//! Make the environment look like WSL2 as far as a Linux tool reading /proc can tell.
//!
//! A WSL2 kernel names itself in its release (`5.15.153.1-microsoft-standard-WSL2`); the injector
//! bind-mounts a file saying so over /proc/sys/kernel/osrelease, in the environment's own mount
//! namespace (the host's /proc is untouched). What it cannot fake: uname(2), which still reports the
//! real kernel; the `WSLInterop` binfmt_misc handler, which is global to the kernel; the Windows side
//! (its processes, excluded port ranges and the localhost forwarder).

use serde::{Deserialize, Serialize};

use super::{sh_quote, Injected};
use crate::env::Environment;
use crate::error::HarnessError;

fn wsl2_release() -> String {
    "5.15.153.1-microsoft-standard-WSL2".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WslLook {
    #[serde(default = "wsl2_release")]
    pub release: String,
}

const FAKE: &str = "/run/portwhy/wsl-osrelease";
const PROC: &str = "/proc/sys/kernel/osrelease";

impl WslLook {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        env.sh_ok(&format!(
            "mkdir -p /run/portwhy && printf '%s\\n' {} > {FAKE} && mount --bind {FAKE} {PROC}",
            sh_quote(&self.release)
        ))
        .await?;
        Ok(Injected { summary: format!("{PROC} reads {}", self.release), ..Default::default() })
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let got = env.exec(&["cat", PROC]).await?.stdout;
        if got.trim() != self.release {
            return Err(HarnessError::fault("wsl-look", format!("{PROC} reads {}", got.trim())));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        env.sh(&format!(
            "while grep -q ' {PROC} ' /proc/self/mountinfo; do umount {PROC} || break; done; true"
        ))
        .await
        .map(|_| ())
    }
}
