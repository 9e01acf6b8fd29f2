//! Live collectors: read the host, fail soft, return `Evidence`.
//!
//! Each collector returns `Result<T, String>`; an `Err` becomes an `unavailable` entry with the
//! reason, never a crash. Nothing here writes to the host (see `firewall` for the one trap:
//! `iptables-legacy-save` creates legacy tables, so it only runs when they already exist).

pub mod claims;
pub mod daemons;
pub mod docker;
pub mod firewall;
pub mod host;
mod owners;
pub mod procs;
pub mod signals;
pub mod sockets;

use std::path::PathBuf;

use crate::evidence::Evidence;
use crate::port::PortQuery;

/// Where the collectors look. Tests point `proc_root` at a fixture tree.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Root of procfs, normally `/proc`.
    pub proc_root: PathBuf,
    /// Docker endpoint (`unix:///var/run/docker.sock`); `None` uses DOCKER_HOST or the default socket.
    pub docker_host: Option<String>,
    /// Skip the Docker API entirely (`--no-docker`).
    pub skip_docker: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self { proc_root: PathBuf::from("/proc"), docker_host: None, skip_docker: false }
    }
}

/// The live host. (A recorded bundle is read by `evidence::bundle`; the caller picks one or the
/// other, so no trait joins them.)
#[derive(Debug, Clone, Default)]
pub struct LiveHost {
    pub options: CollectOptions,
}

impl LiveHost {
    /// Every source about one port, read side by side; what cannot be read is `unavailable`.
    pub fn gather(&self, query: &PortQuery) -> Evidence {
        let o = &self.options;
        let mut ev = Evidence::new(query.clone());
        ev.collected_by = Some(crate::evidence::Collector::current());
        // The sources are independent and each waits on something else (the kernel's /proc, the
        // daemon's API, iptables/nft child processes): read them side by side.
        let (sockets, docker, (fw, fw_unavailable), host) = std::thread::scope(|s| {
            let sockets = s.spawn(|| sockets::collect(&o.proc_root, query.port));
            let docker = s.spawn(|| {
                (!o.skip_docker)
                    .then(|| docker::collect(o.docker_host.as_deref(), &o.proc_root, Some(query.port)))
            });
            let firewall = s.spawn(|| firewall::collect(&o.proc_root, query.port));
            let host = host::collect_quick(&o.proc_root);
            let join = "a collector thread panicked";
            (sockets.join().expect(join), docker.join().expect(join), firewall.join().expect(join), host)
        });
        match sockets {
            Ok(s) => ev.sockets = Some(s),
            Err(e) => ev.mark_unavailable("sockets", e),
        }
        match docker {
            None => ev.mark_unavailable("docker", "skipped (--no-docker)"),
            Some(Ok(d)) => ev.docker = Some(d),
            Some(Err(e)) => ev.mark_unavailable("docker", e),
        }
        ev.firewall = Some(fw);
        ev.unavailable.extend(fw_unavailable);
        match host {
            Ok(h) => ev.host = Some(h),
            Err(e) => ev.mark_unavailable("host", e),
        }
        // Rootless engines publish from inside rootlesskit's network namespace: look there too.
        if let Some(pid) = ev.docker.as_ref().and_then(|d| d.rootlesskit_pid) {
            match sockets::collect_in_netns_of(&o.proc_root, pid, query.port) {
                Ok(mut s) => ev.sockets.get_or_insert_with(Vec::new).append(&mut s),
                Err(e) => ev.mark_unavailable("sockets-rootlesskit", e),
            }
        }
        // What only the socket owners can tell: a docker-proxy whose daemon is gone (not a child
        // of any running dockerd), and a resolver stub started outside systemd.
        let owners: Vec<crate::evidence::ProcessRef> =
            ev.listeners().iter().flat_map(|l| l.owners.iter().cloned()).collect();
        if let Some(d) = ev.docker.as_mut() {
            for p in owners.iter().filter_map(docker::orphan_proxy) {
                if !d.proxies.iter().any(|known| known.pid == p.pid) {
                    d.proxies.push(p);
                }
            }
            d.proxies.sort_by_key(|p| p.pid);
        }
        ev.compose_files = compose_files(&ev);
        let root_dir = ev.docker.as_ref().and_then(|d| d.docker_root_dir.clone());
        ev.daemons = Some(daemons::collect(
            &o.proc_root,
            &docker::endpoint(o.docker_host.as_deref()),
            root_dir.as_deref(),
            ev.listeners(),
            query.port,
            query.proto,
        ));
        if let Some(h) = ev.host.as_mut().filter(|h| h.systemd_resolved_pid.is_none()) {
            h.systemd_resolved_pid = owners.iter().find(|p| p.comm == "systemd-resolve").map(|p| p.pid);
        }
        ev
    }
}

/// Compose files bigger than this are not read: no hand-written compose file comes near it.
const COMPOSE_FILE_MAX: u64 = 1 << 20;

/// The compose files of the containers that ask for the queried port, as their labels name them.
/// A file that cannot be read is left out (its verdict then names no line).
fn compose_files(ev: &Evidence) -> Vec<crate::evidence::ComposeFile> {
    let q = &ev.query;
    let mut out: Vec<crate::evidence::ComposeFile> = Vec::new();
    let asking = ev.containers().iter().filter(|c| {
        c.requested.iter().chain(c.actual.iter()).any(|b| b.host_port == q.port && b.proto == q.proto)
    });
    for c in asking {
        for path in c.compose_config_files() {
            if out.iter().any(|f| f.path == path) {
                continue;
            }
            let small = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= COMPOSE_FILE_MAX);
            if let Some(text) = small.then(|| std::fs::read_to_string(&path).ok()).flatten() {
                out.push(crate::evidence::ComposeFile { path, text });
            }
        }
    }
    out
}
