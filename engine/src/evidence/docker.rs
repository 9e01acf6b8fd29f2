//! The Docker engine as its API reports it: version, mode, containers and their port bindings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::port::Proto;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerState {
    /// Engine version, e.g. `28.5.2` or `20.10.24+dfsg1`.
    pub version: String,
    pub api_version: String,
    /// `docker info` SecurityOptions lists `name=rootless`.
    pub rootless: bool,
    /// `docker info` FirewallBackend.Driver (`iptables`, `nftables`; reported from 28.1 on).
    #[serde(default)]
    pub firewall_backend: Option<String>,
    /// `docker info` OperatingSystem; `Docker Desktop` marks a VM-backed engine.
    #[serde(default)]
    pub operating_system: String,
    /// `docker info` LiveRestoreEnabled: whether containers survive a daemon restart. `None` in
    /// bundles recorded before it was collected.
    #[serde(default)]
    pub live_restore: Option<bool>,
    /// `docker info` DockerRootDir: the data root of the daemon that answered, which tells it
    /// apart from other daemons on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_root_dir: Option<String>,
    /// Every container, including created, exited and restarting ones.
    pub containers: Vec<Container>,
    /// docker-proxy processes found on the host (or in rootlesskit's namespace), parsed from argv.
    #[serde(default)]
    pub proxies: Vec<ProxyProcess>,
    /// A pid inside a rootless engine's network namespace (rootlesskit's child, or the rootless
    /// dockerd), used to read the sockets that live there; `None` without a rootless engine.
    #[serde(default)]
    pub rootlesskit_pid: Option<u32>,
    /// RootlessKit's `--port-driver` (`builtin`, `slirp4netns`) from its command line; `None`
    /// without a rootless engine or in bundles recorded before it was collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_port_driver: Option<String>,
    /// Docker networks: name, bridge interface and subnets (used to tell which DNAT targets are Docker's).
    #[serde(default)]
    pub networks: Vec<DockerNetwork>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerNetwork {
    pub name: String,
    pub id: String,
    /// Bridge interface (`docker0`, `br-<id12>`), when the driver is bridge.
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub subnets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Removing,
    Dead,
}

impl ContainerState {
    /// Whether a container in this state holds its published host ports. Measured on 20.10/26/28:
    /// running (and paused) containers do; created, exited and dead ones do not. A restarting one
    /// holds them whenever it runs, but not in the backoff between two runs (another publish then
    /// takes the port, and the loop's next start fails): it counts as a holder because it keeps
    /// coming back for the port.
    pub fn holds_ports(self) -> bool {
        matches!(self, Self::Running | Self::Restarting | Self::Paused)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Removing => "removing",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    /// `State.Error`: the daemon's text when the last start failed (e.g. the bind error).
    #[serde(default)]
    pub error: Option<String>,
    /// `HostConfig.NetworkMode`: `default`, `bridge`, `host`, a network name, `container:<id>`.
    #[serde(default)]
    pub network_mode: String,
    /// Compose project and service, from `com.docker.compose.*` labels.
    #[serde(default)]
    pub compose_project: Option<String>,
    #[serde(default)]
    pub compose_service: Option<String>,
    #[serde(default)]
    pub restart_policy: Option<String>,
    /// `RestartCount`: how often the daemon restarted it (inspected containers only).
    #[serde(default)]
    pub restart_count: Option<u64>,
    /// What the user asked for (`HostConfig.PortBindings`).
    #[serde(default)]
    pub requested: Vec<PortBinding>,
    /// What the daemon bound (`NetworkSettings.Ports`); empty unless the container runs.
    #[serde(default)]
    pub actual: Vec<PortBinding>,
    /// IP addresses of the container on its networks, network name → address.
    #[serde(default)]
    pub addresses: BTreeMap<String, IpAddr>,
    /// Selected labels (compose ones and `io.portwhy.*`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Container {
    /// The compose files that made it, in merge order, from `com.docker.compose.project.config_files`.
    pub fn compose_config_files(&self) -> Vec<String> {
        compose_config_files(&self.labels)
    }
}

/// The `com.docker.compose.project.config_files` label split into paths (comma-separated).
pub fn compose_config_files(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels
        .get("com.docker.compose.project.config_files")
        .map(|f| f.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// One published port mapping: host side and container side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Host address; `None` when the user wrote none (Docker then binds 0.0.0.0 and ::).
    pub host_ip: Option<IpAddr>,
    /// 0 means "any free port" (`-p 80` or `-p :80`).
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// A docker-proxy process, parsed from its command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyProcess {
    pub pid: u32,
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// Namespace the process lives in (`host`, or rootlesskit's).
    #[serde(default)]
    pub netns: Option<String>,
}

impl Container {
    /// Restarting now, or running under a restart policy after the daemon restarted it: a crash
    /// loop, caught between two restarts or in one.
    pub fn crash_looping(&self) -> bool {
        self.state == ContainerState::Restarting
            || (self.state == ContainerState::Running
                && self.restart_policy.is_some()
                && self.restart_count.is_some_and(|n| n > 0))
    }

    /// Short id as `docker ps` prints it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// `name` plus the compose project/service when labelled, for verdict lines.
    pub fn display(&self) -> String {
        match (&self.compose_project, &self.compose_service) {
            (Some(p), Some(s)) => format!("{} (compose project {p}, service {s})", self.name),
            (Some(p), None) => format!("{} (compose project {p})", self.name),
            _ => self.name.clone(),
        }
    }
}
