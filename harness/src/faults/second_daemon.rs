//! A second Docker daemon on the same host (a snap beside a Debian package, a test daemon left
//! running) whose container publishes the port.
//!
//! The second dockerd has its own socket, data root, exec root (so its own containerd) and bridge,
//! and programs the same firewall as the first, as two real installs do. `docker` without `-H`
//! talks to the first one and sees none of the second's containers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::beside::Beside;
use super::{sh_quote, Injected};
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
        self.beside(&d).serve(env, Duration::from_secs(30), &self.name, self.port).await?;
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
        self.beside(&self.docker()).check(env, &self.name, self.port, "docker-proxy").await
    }

    fn beside<'a>(&self, docker: &'a str) -> Beside<'a> {
        Beside { key: "second-daemon", docker, what: "the second daemon", log: "/var/log/dockerd-second.log" }
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
