//! Another container publishes the port: running, crash-looping, or only created/stopped.
//!
//! Running and restarting containers hold their published ports; created and stopped (exited) ones
//! do not, so those two states must not block a new publish. The injector still creates them, so a
//! diagnosis can be checked for not blaming them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{responder, sh_quote, wait_until, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

fn eighty() -> u16 {
    80
}

/// The state the holder container is left in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HolderState {
    #[default]
    Running,
    /// `--restart=always`, its first run exiting 1 at once and every later run 30 s long: in its
    /// restart loop, and running when the trigger comes.
    Restarting,
    /// `docker create` only.
    Created,
    /// Ran, then `docker stop`: exited.
    Stopped,
}

/// An inner container publishing `[host_ip:]port:container_port/proto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateContainer {
    pub port: u16,
    #[serde(default)]
    pub proto: Proto,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(default = "eighty")]
    pub container_port: u16,
    #[serde(default)]
    pub state: HolderState,
    /// Container name; defaults to `holder-<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl DuplicateContainer {
    pub(crate) fn container_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("holder-{}", self.port))
    }

    pub(crate) fn publish_spec(&self) -> String {
        let ip = match &self.host_ip {
            Some(ip) if ip.contains(':') && !ip.starts_with('[') => format!("[{ip}]:"),
            Some(ip) => format!("{ip}:"),
            None => String::new(),
        };
        format!("{ip}{}:{}/{}", self.port, self.container_port, self.proto.as_str())
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let name = self.container_name();
        let p = sh_quote(&self.publish_spec());
        let n = sh_quote(&name);
        let serve: Vec<String> =
            responder(&name, self.proto, self.container_port).iter().map(|w| sh_quote(w)).collect();
        let serve = serve.join(" ");
        let script = match self.state {
            HolderState::Running => format!("docker run -d --name {n} -p {p} busybox {serve}"),
            HolderState::Restarting => {
                // Measured on 20.10, 26 and 28: the port is held only while the container runs; in
                // the backoff between runs ("restarting") another publish takes it. So the first run
                // exits at once (the marker in the container's own layer survives restarts) and
                // the next one runs 30 s: the trigger, the diagnosis and every remedy come inside
                // that run, never in a backoff, and the container is in its loop (RestartCount 1).
                // `docker stop` ends it at once: the shell exits on SIGTERM.
                format!(
                    "docker run -d --restart=always --name {n} -p {p} busybox sh -c \
                     '[ -e /ran-once ] || {{ touch /ran-once; exit 1; }}; trap \"exit 143\" TERM; sleep 30 & wait; exit 1'"
                )
            }
            HolderState::Created => format!("docker create --name {n} -p {p} busybox {serve}"),
            HolderState::Stopped => {
                format!("docker run -d --name {n} -p {p} busybox {serve} && docker stop -t 1 {n}")
            }
        };
        let out = env.sh(&script).await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "duplicate-container",
                format!("`{script}` exited {}: {}", out.exit_code, out.stderr.trim()),
            ));
        }
        if self.state == HolderState::Restarting {
            // Wait for the first crash and the restart after it, so the container is in its loop
            // and running (holding the port) when the trigger comes.
            let looping = wait_until(Duration::from_secs(15), || async {
                let (status, restarts) = self.inspect(env).await?;
                Ok(restarts >= 1 && status == "running")
            })
            .await?;
            if !looping {
                return Err(HarnessError::fault("duplicate-container", format!("{name} never restarted")));
            }
        }
        Ok(Injected {
            summary: format!("container {name} ({:?}) publishes {}", self.state, self.publish_spec()),
            containers: vec![name],
            ..Default::default()
        })
    }

    /// (status, restart count) from `docker inspect`.
    async fn inspect(&self, env: &Environment) -> Result<(String, u32), HarnessError> {
        let out = env
            .exec(&["docker", "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &self.container_name()])
            .await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "duplicate-container",
                format!("inspect: {}", out.stderr.trim()),
            ));
        }
        let mut words = out.stdout.split_whitespace();
        let status = words.next().unwrap_or_default().to_string();
        let restarts = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        Ok((status, restarts))
    }

    /// The container exists in the wanted state, and its port binding is live exactly when the state
    /// holds ports (`docker port` lists bindings only for running/restarting containers).
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let (status, restarts) = self.inspect(env).await?;
        let ok = match self.state {
            HolderState::Running => status == "running",
            HolderState::Restarting => (status == "restarting" || status == "running") && restarts >= 1,
            HolderState::Created => status == "created",
            HolderState::Stopped => status == "exited",
        };
        if !ok {
            return Err(HarnessError::fault(
                "duplicate-container",
                format!(
                    "{} is {status} (restarts {restarts}), wanted {:?}",
                    self.container_name(),
                    self.state
                ),
            ));
        }
        let bindings = env.exec(&["docker", "port", &self.container_name()]).await?;
        let bound = bindings.success() && bindings.stdout.contains(&format!(":{}", self.port));
        let should_bind = self.state == HolderState::Running;
        // A crash-looping container's binding comes and goes with each restart; status suffices.
        if self.state != HolderState::Restarting && bound != should_bind {
            return Err(HarnessError::fault(
                "duplicate-container",
                format!(
                    "docker port {} shows {:?}; expected bound={should_bind}",
                    self.container_name(),
                    bindings.stdout.trim()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        let out = env.exec(&["docker", "rm", "-f", &self.container_name()]).await?;
        if !out.success() && !out.stderr.contains("No such container") {
            return Err(HarnessError::fault("duplicate-container", format!("rm: {}", out.stderr.trim())));
        }
        Ok(())
    }
}
