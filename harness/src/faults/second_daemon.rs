//! A second Docker daemon on the same host (a snap beside a Debian package, a test daemon left
//! running) whose container publishes the port.
//!
//! The second dockerd has its own socket, data root, exec root (so its own containerd) and bridge,
//! and programs the same firewall as the first, as two real installs do. `docker` without `-H`
//! talks to the first one and sees none of the second's containers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{responder, sh_quote, sockets_on, wait_until, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

/// Where the second daemon listens: what `docker -H` (or DOCKER_HOST) must name to reach it.
pub const SECOND_DAEMON_SOCKET: &str = "unix:///run/docker-second.sock";
const BRIDGE: &str = "pwbr2";

fn other_web() -> String {
    "other-web".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondDaemon {
    /// The port its container publishes (`-p PORT:80`).
    pub port: u16,
    #[serde(default = "other_web")]
    pub name: String,
}

impl SecondDaemon {
    fn docker(&self) -> String {
        format!("docker -H {SECOND_DAEMON_SOCKET}")
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        // Its own cgroup parent, as the first daemon has, so the two keep their containers apart.
        let cgroup = if env.options().privileged {
            String::new()
        } else {
            format!(" --cgroup-parent=/{}-second", env.name())
        };
        let start = format!(
            "ip link show {BRIDGE} >/dev/null 2>&1 || {{ ip link add {BRIDGE} type bridge && \
             ip addr add 10.99.2.1/24 dev {BRIDGE} && ip link set {BRIDGE} up; }}\n\
             mkdir -p /run/docker-second\n\
             setsid dockerd --data-root /var/lib/docker/second --exec-root /run/docker-second \
             -H {SECOND_DAEMON_SOCKET} --pidfile /run/docker-second.pid --bridge {BRIDGE}{cgroup} \
             >>/var/log/dockerd-second.log 2>&1 </dev/null &"
        );
        env.sh_ok(&start).await?;
        let d = self.docker();
        let up = wait_until(Duration::from_secs(30), || async {
            Ok(env.sh(&format!("{d} version --format '{{{{.Server.Version}}}}'")).await?.success())
        })
        .await?;
        if !up {
            let log = env.sh("tail -n 20 /var/log/dockerd-second.log").await?.stdout;
            return Err(HarnessError::fault(
                "second-daemon",
                format!("the second dockerd never answered:\n{log}"),
            ));
        }
        let serve: Vec<String> = responder(&self.name, Proto::Tcp, 80).iter().map(|w| sh_quote(w)).collect();
        env.sh_ok(&format!(
            "{d} image inspect busybox:latest >/dev/null 2>&1 || {d} import /opt/portwhy/busybox.tar busybox:latest >/dev/null\n\
             {d} run -d --name {} -p {}:80 busybox {}",
            sh_quote(&self.name),
            self.port,
            serve.join(" ")
        ))
        .await?;
        Ok(Injected {
            summary: format!(
                "a second dockerd ({SECOND_DAEMON_SOCKET}) runs {} publishing {}:80",
                self.name, self.port
            ),
            containers: vec![self.name.clone()],
            ..Default::default()
        })
    }

    /// The second daemon answers, runs the container, and a docker-proxy holds the port.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let d = self.docker();
        let running =
            env.sh(&format!("{d} inspect -f '{{{{.State.Running}}}}' {}", sh_quote(&self.name))).await?;
        if running.stdout.trim() != "true" {
            return Err(HarnessError::fault(
                "second-daemon",
                format!("{} is not running on the second daemon: {}", self.name, running.stderr.trim()),
            ));
        }
        let held = sockets_on(env, Proto::Tcp, self.port).await?;
        if !held.iter().any(|s| s.held_by("docker-proxy")) {
            return Err(HarnessError::fault("second-daemon", format!("no docker-proxy holds {}", self.port)));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        let d = self.docker();
        env.sh(&format!(
            "{d} rm -f {} >/dev/null 2>&1\n\
             pid=$(cat /run/docker-second.pid 2>/dev/null) && kill \"$pid\" 2>/dev/null && \
             {{ i=0; while [ -d /proc/$pid ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; }}\n\
             ip link del {BRIDGE} 2>/dev/null; true",
            sh_quote(&self.name)
        ))
        .await
        .map(|_| ())
    }
}
