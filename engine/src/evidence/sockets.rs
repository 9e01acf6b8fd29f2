//! Listening sockets and the processes that own them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::port::Proto;

/// A socket that holds a port: a TCP socket in LISTEN or a bound UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: Proto,
    /// The bound address as the kernel reports it (`0.0.0.0`, `::`, `127.0.0.1`, ...).
    pub addr: IpAddr,
    pub port: u16,
    /// IPV6_V6ONLY of an AF_INET6 socket; `None` for AF_INET. A `[::]` socket with
    /// `v6only = false` (dual-stack) also holds `0.0.0.0` of the same port.
    pub v6only: Option<bool>,
    /// Interface the socket is bound to with SO_BINDTODEVICE or a scope (`lo` for `127.0.0.53%lo`).
    #[serde(default)]
    pub interface: Option<String>,
    pub inode: u64,
    pub uid: u32,
    /// Network namespace the socket was seen in: `host`, or `rootlesskit(pid N)` for a rootless engine.
    #[serde(default = "default_netns")]
    pub netns: String,
    /// Processes holding a file descriptor to this socket (several after fork or SO_REUSEPORT groups).
    #[serde(default)]
    pub owners: Vec<ProcessRef>,
}

fn default_netns() -> String {
    "host".to_owned()
}

/// A process, as far as /proc tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    /// `comm` (kernel's 15-character name).
    pub comm: String,
    /// Full command line, arguments joined by spaces.
    pub cmdline: String,
    /// Container id when the process's cgroup names one (a `--network host` container, a shim).
    #[serde(default)]
    pub container_id: Option<String>,
}

impl ProcessRef {
    /// The program name: argv[0]'s file name, falling back to comm.
    pub fn program(&self) -> &str {
        self.cmdline
            .split_whitespace()
            .next()
            .and_then(|a| a.rsplit('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.comm)
    }

    pub fn is_docker_proxy(&self) -> bool {
        self.program() == "docker-proxy" || self.comm == "docker-proxy"
    }

    pub fn is_rootlesskit(&self) -> bool {
        self.program() == "rootlesskit" || self.comm == "rootlesskit"
    }

    /// RootlessKit's slirp4netns port driver: slirp4netns itself listens on the host port.
    pub fn is_slirp4netns(&self) -> bool {
        self.program() == "slirp4netns" || self.comm == "slirp4netns"
    }

    /// The process a rootless engine's port driver binds host ports with: rootlesskit (builtin
    /// driver) or slirp4netns (slirp4netns driver).
    pub fn is_rootless_port_driver(&self) -> bool {
        self.is_rootlesskit() || self.is_slirp4netns()
    }

    pub fn is_dockerd(&self) -> bool {
        self.program() == "dockerd" || self.comm == "dockerd"
    }
}
