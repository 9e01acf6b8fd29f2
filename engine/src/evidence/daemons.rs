//! The Docker daemons running on the host, found in /proc, and which of them the API answered from.

use serde::{Deserialize, Serialize};

/// Every dockerd process seen and the one portwhy talks to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daemons {
    /// The endpoint portwhy asked (`--docker-host`, DOCKER_HOST, or `unix:///var/run/docker.sock`):
    /// the one the `docker` CLI of the same shell talks to.
    pub endpoint: String,
    /// Pid of the daemon behind `endpoint`: the one whose data root the API reported, else the one
    /// listening on that socket. `None` when no dockerd process matched.
    #[serde(default)]
    pub ours: Option<u32>,
    /// Whether every process was looked at. Otherwise the list holds the daemons named by their
    /// usual pidfiles and those the port's holders lead to, which accounted for every holder and
    /// included ours.
    #[serde(default)]
    pub scanned_all: bool,
    pub processes: Vec<DaemonProcess>,
}

/// One dockerd process, from its command line (and its `--config-file` where a flag is missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonProcess {
    pub pid: u32,
    pub cmdline: String,
    /// `-H`/`--host` values (`hosts` in its daemon.json); `unix:///var/run/docker.sock` when it names none.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `--data-root` (`/var/lib/docker` by default; the snap uses `/var/snap/docker/common/var-lib-docker`).
    #[serde(default)]
    pub data_root: Option<String>,
    /// `--exec-root` (`/var/run/docker` by default).
    #[serde(default)]
    pub exec_root: Option<String>,
    /// `--pidfile` (`/var/run/docker.pid` by default).
    #[serde(default)]
    pub pidfile: Option<String>,
    /// Runs under rootlesskit (`dockerd-rootless.sh`).
    #[serde(default)]
    pub rootless: bool,
    /// The port's holders that belong to this daemon.
    #[serde(default)]
    pub holds: Vec<DaemonHold>,
}

/// A process holding the queried port on behalf of one daemon, and the container it serves when
/// the daemon's own files name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonHold {
    /// The socket owner: a docker-proxy child, rootlesskit above a rootless daemon, the daemon
    /// itself, or a process of one of its containers.
    pub pid: u32,
    /// How the process belongs to the daemon: `docker-proxy`, `rootlesskit`, `dockerd`, `container`.
    pub via: String,
    #[serde(default)]
    pub container_id: Option<String>,
    /// The container's name (from `DATA_ROOT/containers/ID/config.v2.json`).
    #[serde(default)]
    pub container_name: Option<String>,
}

impl DaemonProcess {
    /// The socket a `docker -H` reaches it on: its first unix socket, else its first host.
    pub fn socket(&self) -> Option<&str> {
        self.hosts
            .iter()
            .find(|h| h.starts_with("unix://"))
            .or_else(|| self.hosts.first())
            .map(String::as_str)
    }

    /// `pid 812 (unix:///run/docker-ci.sock, data root /srv/docker-ci)`.
    pub fn describe(&self) -> String {
        format!(
            "pid {} ({}, data root {})",
            self.pid,
            self.socket().unwrap_or("no socket named"),
            // A rootless daemon's default lives under its user's home, which only its
            // environment tells.
            self.data_root.as_deref().unwrap_or(if self.rootless { "unknown" } else { "/var/lib/docker" })
        )
    }
}

impl Daemons {
    /// The daemon other than ours that holds `pid`, with the hold.
    pub fn foreign_holder(&self, pid: u32) -> Option<(&DaemonProcess, &DaemonHold)> {
        self.processes
            .iter()
            .filter(|d| Some(d.pid) != self.ours)
            .find_map(|d| d.holds.iter().find(|h| h.pid == pid).map(|h| (d, h)))
    }
}
