//! Every dockerd on the host, from /proc: its sockets, roots and pidfile, which one the API
//! answered from, and which of the port's holders belong to which daemon.
//!
//! A host can run two engines at once (the snap and the distribution package, a second daemon
//! for CI): a port held by the one the CLI does not talk to looks like a leftover proxy or a
//! container nobody can see. Reading every process's `comm` costs more than the rest of a
//! collection (see `procs`), so the daemons come from the usual pidfiles and from the port's
//! holders themselves (a docker-proxy's parent); every process is read only when a holder of
//! Docker's (a docker-proxy, rootlesskit, dockerd, a process in a container) belongs to none of
//! those, or none of them is the daemon portwhy asked.

use std::fs;
use std::path::{Path, PathBuf};

use super::procs;
use crate::evidence::{DaemonHold, DaemonProcess, Daemons, Listener, ProcessRef};
use crate::port::Proto;

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
const DEFAULT_CONFIG: &str = "/etc/docker/daemon.json";

/// The daemons, which one is ours, and who holds `port`/`proto` for each.
pub fn collect(
    proc_root: &Path,
    endpoint: &str,
    root_dir: Option<&str>,
    listeners: &[Listener],
    port: u16,
    proto: Proto,
) -> Daemons {
    let holders: Vec<&ProcessRef> =
        listeners.iter().flat_map(|l| l.owners.iter()).filter(|p| dockerish(p)).collect();
    // The daemons the pidfiles name, and those the holders lead to (a proxy's parent, a daemon
    // holding the port itself): enough unless a holder belongs to none of them, such as a
    // container process of a daemon with its own pidfile. Only then is every process read.
    let mut pids: Vec<u32> = procs::docker_daemons(proc_root).into_iter().map(|(pid, _)| pid).collect();
    for h in &holders {
        let line = std::iter::once(h.pid).chain(ancestors_of(proc_root, h.pid));
        pids.extend(line.filter(|&p| procs::comm(proc_root, p).as_deref() == Some("dockerd")).take(1));
    }
    pids.sort_unstable();
    pids.dedup();
    let known: Vec<DaemonProcess> = pids.iter().filter_map(|&pid| read_daemon(proc_root, pid)).collect();
    // Which daemon is ours must be known too, or every holder would look foreign to it.
    let ours_known = ours(&known, &[], endpoint, root_dir).is_some();
    let scanned_all = !holders.is_empty()
        && (!ours_known
            || holders.iter().any(|h| {
                !known.iter().any(|d| belongs(proc_root, d, h, &ancestors_of(proc_root, d.pid)).is_some())
            }));
    if scanned_all {
        pids.extend(procs::named(proc_root, &["dockerd"]).unwrap_or_default());
        pids.sort_unstable();
        pids.dedup();
    }
    let mut processes: Vec<DaemonProcess> =
        pids.iter().filter_map(|&pid| read_daemon(proc_root, pid)).collect();
    // Daemons in containers (a lab, CI runners) report their own `/var/lib/docker` and socket
    // path; the one in our mount namespace is the likelier match.
    let mount_ns = |pid: &str| fs::read_link(proc_root.join(pid).join("ns/mnt")).ok();
    let own = mount_ns("self");
    let local: Vec<u32> = processes
        .iter()
        .map(|d| d.pid)
        .filter(|p| own.is_some() && mount_ns(&p.to_string()) == own)
        .collect();
    let ours = ours(&processes, &local, endpoint, root_dir);
    for d in &mut processes {
        // rootlesskit (host side) → rootlesskit child → dockerd.
        let ancestors = ancestors_of(proc_root, d.pid);
        for p in &holders {
            let Some(via) = belongs(proc_root, d, p, &ancestors) else { continue };
            let mut hold = DaemonHold {
                pid: p.pid,
                via: via.to_owned(),
                container_id: p.container_id.clone(),
                container_name: None,
            };
            // Our daemon's containers come from its API; another's only from its files.
            if Some(d.pid) != ours {
                if via == "container" {
                    hold.container_name = hold
                        .container_id
                        .as_deref()
                        .and_then(|id| container_name(&container_file(proc_root, d, id)));
                } else if let Some((id, name)) = publisher(proc_root, d, port, proto) {
                    hold.container_id = Some(id);
                    hold.container_name = Some(name);
                } else {
                    hold.container_id = None;
                }
            }
            if !d.holds.iter().any(|h| h.pid == hold.pid) {
                d.holds.push(hold);
            }
        }
    }
    Daemons { endpoint: endpoint.to_owned(), ours, scanned_all, processes }
}

/// How the holder `p` belongs to daemon `d` (whose ancestors are given), if it does.
fn belongs(proc_root: &Path, d: &DaemonProcess, p: &ProcessRef, ancestors: &[u32]) -> Option<&'static str> {
    if p.pid == d.pid {
        Some("dockerd")
    } else if p.is_rootlesskit() && ancestors.contains(&p.pid) {
        Some("rootlesskit")
    } else if p.container_id.as_deref().is_some_and(|id| container_file(proc_root, d, id).is_file()) {
        Some("container")
    } else if ancestors_of(proc_root, p.pid).contains(&d.pid) {
        // docker-proxy, or rootlesskit-docker-proxy's child of a rootless daemon. Its cgroup may
        // still name a container id: that of the container the daemon itself runs in (a lab, a CI
        // runner), which is no container of this daemon.
        Some("docker-proxy")
    } else {
        None
    }
}

/// A process that holds ports for Docker: a proxy, rootlesskit, a daemon, a container's process.
fn dockerish(p: &ProcessRef) -> bool {
    p.is_docker_proxy() || p.is_rootlesskit() || p.is_dockerd() || p.container_id.is_some()
}

fn read_daemon(proc_root: &Path, pid: u32) -> Option<DaemonProcess> {
    let args = procs::cmdline(proc_root, pid)?;
    let rootless = procs::parent(proc_root, pid).is_some_and(|p| procs::is_rootlesskit(proc_root, p));
    let mut d = from_args(pid, &args, rootless);
    let config = flag_values(&args, &["--config-file"]).pop().unwrap_or_else(|| DEFAULT_CONFIG.to_owned());
    // The daemon reads its config file in its own mount namespace (the snap's is not on the host's /).
    if let Some(json) =
        read_in_root(proc_root, pid, &config).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    {
        if d.hosts.is_empty() {
            d.hosts = json["hosts"]
                .as_array()
                .map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
        }
        let key = |k: &str| json[k].as_str().map(str::to_owned);
        d.data_root = d.data_root.take().or_else(|| key("data-root")).or_else(|| key("graph"));
        d.exec_root = d.exec_root.take().or_else(|| key("exec-root"));
        d.pidfile = d.pidfile.take().or_else(|| key("pidfile"));
    }
    if rootless {
        // A rootless daemon's defaults come from the environment it started with, which
        // /proc/PID/environ keeps: dockerd reads it once, at start.
        let env = fs::read(proc_root.join(pid.to_string()).join("environ")).unwrap_or_default();
        apply_rootless_defaults(&mut d, &env);
    } else {
        // dockerd's own defaults for a rootful daemon.
        if d.hosts.is_empty() {
            d.hosts.push(DEFAULT_HOST.to_owned());
        }
        d.data_root.get_or_insert_with(|| "/var/lib/docker".to_owned());
        d.exec_root.get_or_insert_with(|| "/var/run/docker".to_owned());
        d.pidfile.get_or_insert_with(|| "/var/run/docker.pid".to_owned());
    }
    Some(d)
}

/// dockerd's defaults when rootless (moby's `daemon/config` for rootless mode): the socket, exec
/// root and pidfile under `$XDG_RUNTIME_DIR`, the data root `$XDG_DATA_HOME/docker` or
/// `$HOME/.local/share/docker`. `environ` is NUL-separated, as /proc gives it; what it lacks stays
/// unknown.
fn apply_rootless_defaults(d: &mut DaemonProcess, environ: &[u8]) {
    let var = |name: &str| {
        environ.split(|&b| b == 0).find_map(|kv| {
            let kv = std::str::from_utf8(kv).ok()?;
            kv.strip_prefix(name)?.strip_prefix('=').filter(|v| !v.is_empty()).map(str::to_owned)
        })
    };
    if let Some(run) = var("XDG_RUNTIME_DIR") {
        if d.hosts.is_empty() {
            d.hosts.push(format!("unix://{run}/docker.sock"));
        }
        d.exec_root.get_or_insert_with(|| format!("{run}/docker"));
        d.pidfile.get_or_insert_with(|| format!("{run}/docker.pid"));
    }
    if d.data_root.is_none() {
        d.data_root = var("XDG_DATA_HOME")
            .map(|data| format!("{data}/docker"))
            .or_else(|| var("HOME").map(|home| format!("{home}/.local/share/docker")));
    }
}

/// The daemon's flags, as Go's flag package reads them (`-H x`, `-H=x`, `--host x`, `--host=x`).
fn from_args(pid: u32, args: &[String], rootless: bool) -> DaemonProcess {
    let last = |names: &[&str]| flag_values(args, names).pop();
    DaemonProcess {
        pid,
        cmdline: args.join(" "),
        hosts: flag_values(args, &["-H", "--host"]),
        data_root: last(&["--data-root", "-g", "--graph"]),
        exec_root: last(&["--exec-root"]),
        pidfile: last(&["-p", "--pidfile"]),
        rootless,
        holds: Vec::new(),
    }
}

fn flag_values(args: &[String], names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if let Some((flag, value)) = a.split_once('=') {
            if names.contains(&flag) {
                out.push(value.to_owned());
            }
        } else if names.contains(&a.as_str()) {
            out.extend(it.next().cloned());
        }
    }
    out
}

/// The daemon behind the endpoint: the one whose data root the API reported, else the one that
/// names the endpoint's socket.
fn ours(processes: &[DaemonProcess], local: &[u32], endpoint: &str, root_dir: Option<&str>) -> Option<u32> {
    // Of several that match, one in `local` (our mount namespace) first.
    let pick = |matches: &dyn Fn(&DaemonProcess) -> bool| {
        let found: Vec<u32> = processes.iter().filter(|d| matches(d)).map(|d| d.pid).collect();
        found.iter().copied().find(|p| local.contains(p)).or(found.first().copied())
    };
    if let Some(root) = root_dir.map(normalise) {
        if let Some(pid) = pick(&|d| d.data_root.as_deref().map(normalise).as_ref() == Some(&root)) {
            return Some(pid);
        }
    }
    let want = normalise(endpoint);
    // `fd://` is systemd's socket activation: docker.socket listens on /run/docker.sock.
    let host = |h: &str| if h.starts_with("fd://") { normalise(DEFAULT_HOST) } else { normalise(h) };
    pick(&|d| d.hosts.iter().any(|h| host(h) == want))
}

/// `/var/run` is a link to `/run` on every current distribution; trailing slashes say nothing.
fn normalise(path: &str) -> String {
    let p = path.trim_end_matches('/');
    match p.split_once("/var/run/") {
        Some((head, tail)) => format!("{head}/run/{tail}"),
        None => p.to_owned(),
    }
}

fn ancestors_of(proc_root: &Path, pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = pid;
    // docker-proxy → dockerd, or docker-proxy → rootlesskit-docker-proxy → dockerd.
    for _ in 0..3 {
        match procs::parent(proc_root, cur) {
            Some(p) if p > 1 => {
                out.push(p);
                cur = p;
            }
            _ => break,
        }
    }
    out
}

/// A path as the daemon sees it, through its root (another mount namespace, a snap).
fn in_root(proc_root: &Path, pid: u32, path: &str) -> PathBuf {
    proc_root.join(pid.to_string()).join("root").join(path.trim_start_matches('/'))
}

fn read_in_root(proc_root: &Path, pid: u32, path: &str) -> Option<String> {
    fs::read_to_string(in_root(proc_root, pid, path)).ok()
}

fn container_file(proc_root: &Path, d: &DaemonProcess, id: &str) -> PathBuf {
    let root = d.data_root.as_deref().unwrap_or("/var/lib/docker");
    in_root(proc_root, d.pid, &format!("{root}/containers/{id}/config.v2.json"))
}

fn container_name(config: &Path) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(config).ok()?).ok()?;
    Some(json["Name"].as_str()?.trim_start_matches('/').to_owned())
}

/// The running container of `d` whose published ports include `port`, from its files.
fn publisher(proc_root: &Path, d: &DaemonProcess, port: u16, proto: Proto) -> Option<(String, String)> {
    let root = d.data_root.as_deref().unwrap_or("/var/lib/docker");
    let dir = in_root(proc_root, d.pid, &format!("{root}/containers"));
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(e.path().join("config.v2.json")).ok()?).ok()?;
        if json["State"]["Running"].as_bool() != Some(true) {
            return None;
        }
        let publishes = json["NetworkSettings"]["Ports"].as_object()?.iter().any(|(key, binds)| {
            key.ends_with(&format!("/{proto}"))
                && binds
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|b| b["HostPort"].as_str() == Some(&port.to_string()))
        });
        publishes.then(|| {
            (
                json["ID"].as_str().unwrap_or_default().to_owned(),
                json["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_owned(),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn a_rootless_daemons_defaults_come_from_its_environment() {
        // As dockerd-rootless.sh starts it (environ of a lab's rootless 28.5.2 dockerd, trimmed).
        let environ = b"HOME=/home/rootless\0USER=rootless\0XDG_RUNTIME_DIR=/run/user/1000\0PATH=/usr/bin\0";
        let mut d = from_args(353, &args("dockerd"), true);
        apply_rootless_defaults(&mut d, environ);
        assert_eq!(d.hosts, ["unix:///run/user/1000/docker.sock"]);
        assert_eq!(d.data_root.as_deref(), Some("/home/rootless/.local/share/docker"));
        assert_eq!(d.exec_root.as_deref(), Some("/run/user/1000/docker"));
        assert_eq!(d.pidfile.as_deref(), Some("/run/user/1000/docker.pid"));
        // Flags win over the environment; XDG_DATA_HOME over HOME; nothing set stays unknown.
        let mut d = from_args(353, &args("dockerd -H unix:///tmp/d.sock --data-root /srv/d"), true);
        apply_rootless_defaults(&mut d, b"XDG_DATA_HOME=/data\0HOME=/home/x\0");
        assert_eq!(d.hosts, ["unix:///tmp/d.sock"]);
        assert_eq!(d.data_root.as_deref(), Some("/srv/d"));
        let mut d = from_args(353, &args("dockerd"), true);
        apply_rootless_defaults(&mut d, b"XDG_DATA_HOME=/data\0HOME=/home/x\0");
        assert_eq!(d.data_root.as_deref(), Some("/data/docker"));
        assert!(d.hosts.is_empty() && d.exec_root.is_none());
    }

    #[test]
    fn flags_in_every_form_go_accepts() {
        // Composed, not read from a host: flags shaped like the snap's launcher passes, then a
        // second daemon's.
        let snap = from_args(
            812,
            &args(
                "dockerd --group docker --exec-root=/run/snap.docker \
                 --data-root=/var/snap/docker/common/var-lib-docker --pidfile=/run/snap.docker/docker.pid \
                 --config-file=/var/snap/docker/2904/config/daemon.json",
            ),
            false,
        );
        assert_eq!(snap.data_root.as_deref(), Some("/var/snap/docker/common/var-lib-docker"));
        assert_eq!(snap.exec_root.as_deref(), Some("/run/snap.docker"));
        assert_eq!(snap.pidfile.as_deref(), Some("/run/snap.docker/docker.pid"));
        assert!(snap.hosts.is_empty(), "the snap names its socket in daemon.json");
        let two = from_args(
            900,
            &args(
                "/usr/bin/dockerd -H unix:///tmp/b.sock --host=tcp://127.0.0.1:2375 -p /tmp/b.pid -g /srv/b",
            ),
            false,
        );
        assert_eq!(two.hosts, ["unix:///tmp/b.sock", "tcp://127.0.0.1:2375"]);
        assert_eq!(two.socket(), Some("unix:///tmp/b.sock"));
        assert_eq!(two.pidfile.as_deref(), Some("/tmp/b.pid"));
        assert_eq!(two.data_root.as_deref(), Some("/srv/b"));
    }

    #[test]
    fn ours_is_the_daemon_with_the_reported_data_root_else_the_endpoints_socket() {
        let d = |pid, host: &str, root: &str| DaemonProcess {
            pid,
            hosts: vec![host.to_owned()],
            data_root: Some(root.to_owned()),
            ..DaemonProcess::default()
        };
        // Both claim the default socket; only the data root tells them apart.
        let ps = vec![d(10, "unix:///var/run/docker.sock", "/var/lib/docker"), d(20, "fd://", "/srv/two")];
        assert_eq!(ours(&ps, &[], "unix:///var/run/docker.sock", Some("/srv/two/")), Some(20));
        assert_eq!(ours(&ps, &[], "unix:///run/docker.sock", None), Some(10), "/var/run is /run");
        assert_eq!(ours(&ps, &[], "unix:///tmp/none.sock", None), None);
        // A daemon in a container reports the same root and socket as the host's: ours is the
        // one in our mount namespace, whatever the pid order.
        let same = |pid| d(pid, "unix:///var/run/docker.sock", "/var/lib/docker");
        let ps = vec![same(5), same(30)];
        assert_eq!(ours(&ps, &[30], "unix:///var/run/docker.sock", Some("/var/lib/docker")), Some(30));
        assert_eq!(ours(&ps, &[], "unix:///var/run/docker.sock", Some("/var/lib/docker")), Some(5));
    }

    #[test]
    fn holders_are_given_to_the_daemon_they_belong_to() {
        use crate::evidence::Listener;
        let tmp = tempfile::tempdir().unwrap();
        let proc_root = tmp.path().join("proc");
        let fsroot = tmp.path().join("fs");
        let proc = |pid: u32, comm: &str, ppid: u32, argv: &[&str]| {
            let dir = proc_root.join(pid.to_string());
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(dir.join("stat"), format!("{pid} ({comm}) S {ppid} 1 1 0")).unwrap();
            fs::write(dir.join("cmdline"), argv.join("\0")).unwrap();
            std::os::unix::fs::symlink(&fsroot, dir.join("root")).unwrap();
        };
        proc(100, "dockerd", 1, &["dockerd", "-H", "unix:///a.sock", "--data-root", "/ra"]);
        proc(200, "dockerd", 1, &["dockerd", "-H=unix:///b.sock", "--data-root=/rb"]);
        proc(300, "docker-proxy", 200, &["docker-proxy", "-proto", "tcp", "-host-port", "8080"]);
        proc(310, "docker-proxy", 100, &["docker-proxy", "-proto", "tcp", "-host-port", "8080"]);
        proc(400, "nginx", 1, &["nginx"]);
        let id = "c".repeat(64);
        let other_id = "d".repeat(64);
        for (cid, name, running) in [(&id, "/hostnet", false), (&other_id, "/web", true)] {
            let dir = fsroot.join("rb/containers").join(cid);
            fs::create_dir_all(&dir).unwrap();
            let json = serde_json::json!({
                "ID": cid, "Name": name, "State": {"Running": running},
                "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
            });
            fs::write(dir.join("config.v2.json"), json.to_string()).unwrap();
        }
        let owner = |pid: u32, comm: &str, container_id: Option<&str>| ProcessRef {
            pid,
            comm: comm.into(),
            cmdline: comm.into(),
            container_id: container_id.map(str::to_owned),
        };
        let listener = |owners: Vec<ProcessRef>| Listener {
            proto: Proto::Tcp,
            addr: "0.0.0.0".parse().unwrap(),
            port: 8080,
            v6only: None,
            interface: None,
            inode: 1,
            uid: 0,
            netns: "host".into(),
            owners,
        };
        let listeners = [
            listener(vec![owner(300, "docker-proxy", None)]),
            listener(vec![owner(310, "docker-proxy", None)]),
            listener(vec![owner(400, "nginx", Some(&id))]),
        ];
        let d = collect(&proc_root, "unix:///a.sock", Some("/ra"), &listeners, 8080, Proto::Tcp);
        // The proxies lead to both daemons, one is ours and one owns the container: no full pass.
        assert!(!d.scanned_all);
        assert_eq!(d.ours, Some(100));
        let holds = |pid: u32| -> Vec<(u32, String, Option<String>)> {
            let p = d.processes.iter().find(|p| p.pid == pid).expect("daemon listed");
            p.holds.iter().map(|h| (h.pid, h.via.clone(), h.container_name.clone())).collect()
        };
        // The other daemon's proxy is named with the running container that publishes 8080 (not
        // the stopped one), and the host-network process with its container's own name.
        assert_eq!(
            holds(200),
            [
                (300, "docker-proxy".to_owned(), Some("web".to_owned())),
                (400, "container".to_owned(), Some("hostnet".to_owned()))
            ]
        );
        // Ours: its own proxy, its containers left to the API.
        assert_eq!(holds(100), [(310, "docker-proxy".to_owned(), None)]);
        assert_eq!(d.foreign_holder(300).map(|(p, _)| p.pid), Some(200));
        assert!(d.foreign_holder(310).is_none());

        // A host-network container of a daemon nothing else leads to: only a pass over every
        // process finds that daemon.
        proc(500, "dockerd", 1, &["dockerd", "--data-root", "/rc", "-H", "unix:///c.sock"]);
        proc(600, "redis-server", 1, &["redis-server"]);
        let third = "e".repeat(64);
        let dir = fsroot.join("rc/containers").join(&third);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.v2.json"), r#"{"Name": "/cache"}"#).unwrap();
        let listeners = [listener(vec![owner(600, "redis-server", Some(&third))])];
        let d = collect(&proc_root, "unix:///a.sock", Some("/ra"), &listeners, 8080, Proto::Tcp);
        assert!(d.scanned_all);
        assert_eq!(
            d.foreign_holder(600).map(|(p, h)| (p.pid, h.container_name.as_deref())),
            Some((500, Some("cache")))
        );
    }
}
