//! A rootless engine beside the rootful one: user `rootless` runs dockerd-rootless.sh, and one of
//! its containers publishes the port, so rootlesskit holds it on the host while the rootful
//! daemon, the one `docker` talks to, knows nothing of it.
//!
//! Only in rootful environments on images that carry the rootless extras (forky's packages, the
//! tarball engines' docker-rootless-extras): the same start script as a rootless environment's
//! own engine, with its own pid file and log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::beside::Beside;
use super::{sh_quote, Injected};
use crate::env::{rootless_start_script, Environment, RootlessPortDriver, ROOTLESS_SOCKET};
use crate::error::HarnessError;

const KEY: &str = "rootless-daemon";
const PIDFILE: &str = "/run/portwhy/dockerd-rootless.pid";
const SCRIPT: &str = "/run/portwhy/dockerd-rootless.sh";

fn api() -> String {
    "api".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootlessDaemon {
    /// The port its container publishes (`-p PORT:80`).
    pub port: u16,
    /// The rootless container's name.
    #[serde(default = "api")]
    pub name: String,
}

impl RootlessDaemon {
    fn docker(&self) -> String {
        format!("docker -H {ROOTLESS_SOCKET}")
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        if env.options().rootless {
            return Err(HarnessError::fault(
                KEY,
                "the environment's own engine is rootless; this fault puts a rootless engine beside a rootful one",
            ));
        }
        let extras = env
            .sh("id -u rootless >/dev/null 2>&1 && command -v rootlesskit >/dev/null && \
                 { [ -x /usr/local/bin/dockerd-rootless.sh ] || [ -x /usr/share/docker.io/contrib/dockerd-rootless.sh ]; }")
            .await?;
        if !extras.success() {
            return Err(HarnessError::fault(
                KEY,
                "this engine image has no rootless extras (user rootless, rootlesskit, dockerd-rootless.sh): \
                 run the scenario on forky or a tarball engine",
            ));
        }
        let script = rootless_start_script(RootlessPortDriver::default(), PIDFILE);
        // Its data root is /var/lib/docker/rootless (the environment's volume: overlayfs cannot
        // sit on the container's own overlay root), and the rootful daemon made /var/lib/docker
        // 0710: the rootless user needs to pass through it (0711: still nothing to list or read).
        env.sh_ok(&format!(
            "mkdir -p /run/portwhy /home/rootless/.config/docker && chmod o+x /var/lib/docker\n\
             cat > {SCRIPT} <<'PORTWHY_EOF'\n{script}\nPORTWHY_EOF\n\
             setsid sh {SCRIPT} </dev/null >/dev/null 2>&1 &"
        ))
        .await?;
        let d = self.docker();
        self.beside(&d).serve(env, Duration::from_secs(60), &self.name, self.port).await?;
        Ok(Injected {
            summary: format!(
                "a rootless dockerd ({ROOTLESS_SOCKET}, user rootless) runs {} publishing {}:80",
                self.name, self.port
            ),
            containers: vec![self.name.clone()],
            ..Default::default()
        })
    }

    /// The rootless daemon runs the container, and rootlesskit holds the port on the host.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        self.beside(&self.docker()).check(env, &self.name, self.port, "rootlesskit").await
    }

    fn beside<'a>(&self, docker: &'a str) -> Beside<'a> {
        Beside { key: KEY, docker, what: "the rootless daemon", log: "/var/log/dockerd-rootless.log" }
    }

    /// Removes the container and stops the rootless engine: rootlesskit (the pid), then waits until
    /// none of the user's rootlesskit, dockerd or containerd processes is left.
    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        let d = self.docker();
        env.sh(&format!(
            "{d} rm -f {} >/dev/null 2>&1\n\
             pid=$(cat {PIDFILE} 2>/dev/null) && kill \"$pid\" 2>/dev/null\n\
             i=0; while pgrep -u rootless -x 'rootlesskit|dockerd|containerd' >/dev/null && [ $i -lt 300 ]; do \
             sleep 0.05; i=$((i+1)); done\n\
             rm -f {PIDFILE}; true",
            sh_quote(&self.name)
        ))
        .await
        .map(|_| ())
    }
}
