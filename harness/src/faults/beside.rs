//! What the faults that start a daemon beside the environment's own (a second rootful dockerd, a
//! rootless one) do alike: wait for it to answer, run a responder container publishing the port
//! on it, and check that the container runs and who holds the port on the host.

use std::time::Duration;

use super::{responder, sh_quote, sockets_on, wait_until, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

/// A daemon beside the environment's own.
pub(crate) struct Beside<'a> {
    /// The fault's kind, for errors.
    pub key: &'static str,
    /// The docker command that reaches it (`docker -H ...`).
    pub docker: &'a str,
    /// How errors name it ("the second daemon").
    pub what: &'a str,
    /// Its log file, whose tail an error shows when it never answers.
    pub log: &'a str,
}

impl Beside<'_> {
    /// Waits up to `timeout` for the daemon to answer, then runs container `name` publishing
    /// `port`:80 with a responder (busybox imported from the image's tarball if it lacks it).
    pub(crate) async fn serve(
        &self,
        env: &Environment,
        timeout: Duration,
        name: &str,
        port: u16,
    ) -> Result<(), HarnessError> {
        let d = self.docker;
        let up = wait_until(timeout, || async {
            Ok(env.sh(&format!("{d} version --format '{{{{.Server.Version}}}}'")).await?.success())
        })
        .await?;
        if !up {
            let log = env.sh(&format!("tail -n 20 {}", self.log)).await?.stdout;
            return Err(HarnessError::fault(self.key, format!("{} never answered:\n{log}", self.what)));
        }
        let serve: Vec<String> = responder(name, Proto::Tcp, 80).iter().map(|w| sh_quote(w)).collect();
        env.sh_ok(&format!(
            "{d} image inspect busybox:latest >/dev/null 2>&1 || {d} import /opt/portwhy/busybox.tar busybox:latest >/dev/null\n\
             {d} run -d --name {} -p {port}:80 busybox {}",
            sh_quote(name),
            serve.join(" ")
        ))
        .await?;
        Ok(())
    }

    /// Container `name` runs on the daemon and a process named `holder` holds `port` on the host.
    pub(crate) async fn check(
        &self,
        env: &Environment,
        name: &str,
        port: u16,
        holder: &str,
    ) -> Result<(), HarnessError> {
        let d = self.docker;
        let running = env.sh(&format!("{d} inspect -f '{{{{.State.Running}}}}' {}", sh_quote(name))).await?;
        if running.stdout.trim() != "true" {
            return Err(HarnessError::fault(
                self.key,
                format!("{name} is not running on {}: {}", self.what, running.stderr.trim()),
            ));
        }
        let held = sockets_on(env, Proto::Tcp, port).await?;
        if !held.iter().any(|s| s.held_by(holder)) {
            return Err(HarnessError::fault(self.key, format!("no {holder} holds {port}")));
        }
        Ok(())
    }
}
