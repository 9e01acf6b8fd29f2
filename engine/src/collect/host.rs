//! Host facts: kernel, WSL, resolver, conntrack, unprivileged port start, addresses.
//!
//! Only the kernel release is required; every other fact is `None` or empty when it cannot be read,
//! because each one only sharpens a verdict.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use super::procs;
use crate::evidence::HostInfo;

/// `comm` of systemd-resolved: the kernel keeps 15 characters of `systemd-resolved`.
const RESOLVED_COMM: &str = "systemd-resolve";

pub fn collect(proc_root: &Path) -> Result<HostInfo, String> {
    let mut info = collect_quick(proc_root)?;
    if info.systemd_resolved_pid.is_none() {
        info.systemd_resolved_pid =
            procs::named(proc_root, &[RESOLVED_COMM]).ok().and_then(|p| p.first().copied());
    }
    Ok(info)
}

/// The same without a pass over every process: systemd-resolved is found through its systemd
/// unit's cgroup only. A resolver started outside systemd is then named by the socket owners of
/// port 53, which is the only port where it matters.
pub fn collect_quick(proc_root: &Path) -> Result<HostInfo, String> {
    let osrelease = proc_root.join("sys/kernel/osrelease");
    let kernel = fs::read_to_string(&osrelease)
        .map_err(|e| format!("cannot read {}: {e}; mount procfs", osrelease.display()))?
        .trim()
        .to_owned();
    Ok(HostInfo {
        wsl: is_wsl(&kernel, proc_root),
        nameservers: fs::read_to_string("/etc/resolv.conf").map(|t| nameservers(&t)).unwrap_or_default(),
        systemd_resolved_pid: resolved_from_cgroup(proc_root),
        conntrack_count: number(proc_root, "sys/net/netfilter/nf_conntrack_count"),
        conntrack_max: number(proc_root, "sys/net/netfilter/nf_conntrack_max"),
        unprivileged_port_start: number(proc_root, "sys/net/ipv4/ip_unprivileged_port_start"),
        addresses: interface_addresses(),
        kernel,
    })
}

/// The pid of systemd-resolved from its unit's cgroup (v2, then the v1 systemd hierarchy),
/// checked against its `comm`.
fn resolved_from_cgroup(proc_root: &Path) -> Option<u32> {
    const UNIT: &str = "system.slice/systemd-resolved.service/cgroup.procs";
    ["/sys/fs/cgroup", "/sys/fs/cgroup/systemd"]
        .iter()
        .filter_map(|root| fs::read_to_string(Path::new(root).join(UNIT)).ok())
        .flat_map(|text| text.lines().filter_map(|l| l.trim().parse::<u32>().ok()).collect::<Vec<_>>())
        .find(|&pid| procs::comm(proc_root, pid).as_deref() == Some(RESOLVED_COMM))
}

/// A number from a one-value proc file, `None` when absent (e.g. nf_conntrack not loaded).
fn number<T: std::str::FromStr>(proc_root: &Path, rel: &str) -> Option<T> {
    fs::read_to_string(proc_root.join(rel)).ok()?.trim().parse().ok()
}

/// WSL kernels say so in their release (`5.15.153.1-microsoft-standard-WSL2`); WSL also registers
/// a binfmt_misc interop handler (`WSLInterop`, `WSLInterop-late` on newer builds).
fn is_wsl(kernel: &str, proc_root: &Path) -> bool {
    kernel.to_ascii_lowercase().contains("microsoft")
        || kernel.contains("WSL")
        || ["WSLInterop", "WSLInterop-late"]
            .iter()
            .any(|f| proc_root.join("sys/fs/binfmt_misc").join(f).exists())
}

/// `nameserver ADDR` lines of a resolv.conf.
pub(crate) fn nameservers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten().map(str::to_owned)
        })
        .collect()
}

/// Every IPv4 and IPv6 address on this namespace's interfaces, as `ADDR/PREFIX IFACE`.
fn interface_addresses() -> Vec<String> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let ip = |a: Option<nix::sys::socket::SockaddrStorage>| -> Option<IpAddr> {
        let a = a?;
        a.as_sockaddr_in()
            .map(|v4| IpAddr::V4(v4.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
    };
    addrs
        .filter_map(|ifa| {
            let addr = ip(ifa.address)?;
            let prefix = match ip(ifa.netmask) {
                Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
                Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
                None if addr.is_ipv4() => 32,
                None => 128,
            };
            Some(format!("{addr}/{prefix} {}", ifa.interface_name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_only() {
        let text =
            "# generated\nsearch lan\nnameserver 127.0.0.53\noptions edns0\nnameserver ::1\nnameserver\n";
        assert_eq!(nameservers(text), ["127.0.0.53", "::1"]);
    }

    #[test]
    fn fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let write = |rel: &str, text: &str| {
            let path = p.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n");
        write("sys/net/netfilter/nf_conntrack_count", "17\n");
        write("sys/net/netfilter/nf_conntrack_max", "262144\n");
        write("sys/net/ipv4/ip_unprivileged_port_start", "1024\n");
        write("42/comm", "bash\n");
        write("377/comm", "systemd-resolve\n");
        let h = collect(p).unwrap();
        assert_eq!(h.kernel, "5.15.153.1-microsoft-standard-WSL2");
        assert!(h.wsl);
        assert_eq!(h.systemd_resolved_pid, Some(377));
        assert_eq!((h.conntrack_count, h.conntrack_max), (Some(17), Some(262144)));
        assert_eq!(h.unprivileged_port_start, Some(1024));
    }

    #[test]
    fn absent_facts_are_none_and_interop_marks_wsl() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("sys/kernel")).unwrap();
        fs::write(p.join("sys/kernel/osrelease"), "6.1.0-18-amd64\n").unwrap();
        let h = collect(p).unwrap();
        assert!(!h.wsl);
        assert_eq!((h.conntrack_count, h.conntrack_max, h.systemd_resolved_pid), (None, None, None));
        fs::create_dir_all(p.join("sys/fs/binfmt_misc")).unwrap();
        fs::write(p.join("sys/fs/binfmt_misc/WSLInterop"), "enabled\n").unwrap();
        assert!(collect(p).unwrap().wsl);
    }

    #[test]
    fn missing_osrelease_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = collect(dir.path()).unwrap_err();
        assert!(err.contains("osrelease") && err.contains("mount procfs"), "{err}");
    }

    #[test]
    fn loopback_is_listed() {
        assert!(
            interface_addresses().iter().any(|a| a.starts_with("127.0.0.1/8 ")),
            "{:?}",
            interface_addresses()
        );
    }
}
