//! Host facts that change the verdict: kernel, WSL, Docker Desktop, resolver, conntrack.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub kernel: String,
    /// /proc/sys/kernel/osrelease mentions Microsoft (WSL2) or WSL interop is present.
    pub wsl: bool,
    /// Nameservers from /etc/resolv.conf.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Pid of a running systemd-resolved, if any.
    #[serde(default)]
    pub systemd_resolved_pid: Option<u32>,
    /// nf_conntrack_count and nf_conntrack_max, when the module is loaded.
    #[serde(default)]
    pub conntrack_count: Option<u64>,
    #[serde(default)]
    pub conntrack_max: Option<u64>,
    /// net.ipv4.ip_unprivileged_port_start (rootless engines cannot bind below it).
    #[serde(default)]
    pub unprivileged_port_start: Option<u16>,
    /// Addresses configured on the host's interfaces (to say where traffic to "the host IP" goes),
    /// each `ADDR/PREFIX IFACE`, e.g. `192.168.1.5/24 eth0`, `::1/128 lo`.
    #[serde(default)]
    pub addresses: Vec<String>,
}
