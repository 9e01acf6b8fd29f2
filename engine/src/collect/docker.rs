//! The Docker engine through its API (bollard), plus docker-proxy and rootlesskit from /proc.
//!
//! bollard is async; the engine is not. A current-thread tokio runtime lives only for the
//! duration of `collect`, so nothing async leaks into rules or the CLI.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary, ContainerSummaryStateEnum,
    EndpointSettings, PortMap, PortSummaryTypeEnum,
};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use futures_util::stream::{self, StreamExt};

use super::procs;
use crate::evidence::{Container, ContainerState, DockerNetwork, DockerState, PortBinding, ProxyProcess};
use crate::parse::proxy::parse_proxy_cmdline;
use crate::port::Proto;

/// How long to wait for the daemon before calling it unreachable.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent inspects: enough to hide latency with 50+ containers, few enough not to load the daemon.
const INSPECT_CONCURRENCY: usize = 16;

/// Reads the engine. Running containers come from the list alone, except those publishing `focus`
/// (the queried port): they are inspected too, for the restart policy and count that tell a crash
/// loop from a container that merely runs.
pub fn collect(
    docker_host: Option<&str>,
    proc_root: &Path,
    focus: Option<u16>,
) -> Result<DockerState, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an async runtime for the Docker API: {e}"))?;
    let mut state = runtime.block_on(async {
        tokio::time::timeout(API_TIMEOUT, query_engine(docker_host, focus))
            .await
            .map_err(|_| unreachable_reason(docker_host, "no answer within 10 s"))?
    })?;
    let (proxies, rootlesskit) = scan_processes(proc_root, state.rootless);
    state.proxies = proxies;
    state.rootlesskit_pid = rootlesskit;
    if state.rootless {
        state.rootless_port_driver = rootless_port_driver(proc_root, rootlesskit);
    }
    Ok(state)
}

/// The `--port-driver` of the rootless engine's rootlesskit. The pid `scan_processes` found is
/// rootlesskit's child or the rootless dockerd; the child and its parent carry the flag, so those
/// are read first and the whole of /proc only when neither names it (a busy host has thousands).
fn rootless_port_driver(proc_root: &Path, inside: Option<u32>) -> Option<String> {
    let from = |pid: u32| procs::cmdline(proc_root, pid).and_then(|a| port_driver_arg(&a));
    let mut near = inside.into_iter().flat_map(|p| {
        let parent = procs::parent(proc_root, p);
        std::iter::once(p).chain(parent).chain(parent.and_then(|q| procs::parent(proc_root, q)))
    });
    near.find_map(from).or_else(|| procs::named(proc_root, &["rootlesskit"]).ok()?.into_iter().find_map(from))
}

/// `--port-driver=slirp4netns` or `--port-driver slirp4netns` (rootlesskit's flag parser takes both).
fn port_driver_arg(args: &[String]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--port-driver") {
        Some(rest) if rest.starts_with('=') => Some(rest[1..].to_owned()),
        Some("") => args.get(i + 1).cloned(),
        _ => None,
    })
}

/// A client speaking the engine's API version, and that version.
///
/// Older engines (20.10 speaks API 1.41) refuse a newer client, so the version is negotiated down.
/// On a unix socket `/_ping` names it in a header for well under a millisecond, where bollard's
/// negotiation asks `/version`, which takes the daemon about as long as `/info`
/// (15-20 ms measured on 20.10). Other transports negotiate the usual way.
async fn connect(docker_host: Option<&str>) -> Result<(Docker, String), String> {
    let host = endpoint(docker_host);
    let fail = |e: &dyn std::fmt::Display| unreachable_reason(docker_host, &e.to_string());
    if let Some(path) = host.strip_prefix("unix://") {
        let server = ping_api_version(Path::new(path)).map_err(|e| fail(&e))?;
        if let Some((major, minor)) = parse_api_version(&server) {
            let default = bollard::API_DEFAULT_VERSION;
            let ours = (default.major_version, default.minor_version);
            let (major_version, minor_version) = ours.min((major, minor));
            let version = bollard::ClientVersion { major_version, minor_version };
            let docker =
                Docker::connect_with_unix(&host, API_TIMEOUT.as_secs(), &version).map_err(|e| fail(&e))?;
            return Ok((docker, server));
        }
    }
    let docker = Docker::connect_with_host(&host).map_err(|e| fail(&e))?;
    let docker = docker.negotiate_version().await.map_err(|e| fail(&e))?;
    let v = docker.client_version();
    Ok((docker, format!("{}.{}", v.major_version, v.minor_version)))
}

/// The `Api-Version` header of `GET /_ping` on a unix socket; empty when the engine sends none.
fn ping_api_version(socket: &Path) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(API_TIMEOUT))?;
    stream.set_write_timeout(Some(API_TIMEOUT))?;
    // HTTP/1.0: the daemon closes the connection after the answer, so reading to the end is safe.
    stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    Ok(api_version_header(&text).unwrap_or_default().to_owned())
}

fn api_version_header(response: &str) -> Option<&str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("api-version").then(|| value.trim())
    })
}

/// `1.41` → (1, 41).
fn parse_api_version(v: &str) -> Option<(usize, usize)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A docker-proxy that is not a child of a running daemon (its dockerd was killed or restarted)
/// still shows up as the owner of a socket: read its forwarding from the command line.
pub fn orphan_proxy(p: &crate::evidence::ProcessRef) -> Option<ProxyProcess> {
    if p.comm != "docker-proxy" {
        return None;
    }
    let args: Vec<String> = p.cmdline.split_whitespace().map(str::to_owned).collect();
    Some(parse_proxy_cmdline(&args)?.into_process(p.pid, None))
}

/// The endpoint that will be used, for error messages.
pub fn endpoint(docker_host: Option<&str>) -> String {
    docker_host
        .map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}

fn unreachable_reason(docker_host: Option<&str>, why: &str) -> String {
    format!(
        "cannot reach the Docker API at {}: {why}; start dockerd (or `systemctl start docker`), \
         or point DOCKER_HOST / --docker-host at the right socket",
        endpoint(docker_host)
    )
}

async fn query_engine(docker_host: Option<&str>, focus: Option<u16>) -> Result<DockerState, String> {
    let (docker, api_version) = connect(docker_host).await?;
    // Independent requests: one round trip of latency instead of three. `/info` also carries the
    // server version, so `/version` (as slow as `/info` on 20.10) is not asked.
    let list_options = ListContainersOptionsBuilder::default().all(true).build();
    let (info, summaries, networks) =
        tokio::join!(docker.info(), docker.list_containers(Some(list_options)), docker.list_networks(None));
    let info = info.map_err(|e| unreachable_reason(docker_host, &format!("docker info failed: {e}")))?;
    let summaries = summaries.map_err(|e| format!("listing containers failed: {e}"))?;
    let networks = networks.map_err(|e| format!("listing networks failed: {e}"))?;
    // The list already carries what a running container holds (state, bound ports, addresses,
    // labels). Only the others need an inspect: their requested bindings and `State.Error` are not
    // in the list, and a restarting container's restart policy explains why it keeps its port.
    let mut containers = Vec::new();
    let mut to_inspect = Vec::new();
    for summary in summaries {
        match container_from_summary(&summary) {
            Some(c) if !focus.is_some_and(|p| c.actual.iter().any(|b| b.host_port == p)) => {
                containers.push(c)
            }
            _ => to_inspect.extend(summary.id),
        }
    }
    let inspected: Vec<ContainerInspectResponse> = stream::iter(to_inspect)
        .map(|id| {
            let docker = docker.clone();
            async move { docker.inspect_container(&id, None).await.ok() }
        })
        .buffered(INSPECT_CONCURRENCY)
        .filter_map(|c| async move { c })
        .collect()
        .await;
    containers.extend(inspected.into_iter().filter_map(container_from));
    containers.sort_by(|a, b| a.name.cmp(&b.name));

    let security = info.security_options.unwrap_or_default();
    Ok(DockerState {
        version: info.server_version.unwrap_or_default(),
        api_version,
        rootless: security.iter().any(|s| s.contains("name=rootless")),
        firewall_backend: info.firewall_backend.and_then(|f| f.driver),
        operating_system: info.operating_system.unwrap_or_default(),
        live_restore: info.live_restore_enabled,
        docker_root_dir: info.docker_root_dir.filter(|d| !d.is_empty()),
        containers,
        proxies: Vec::new(),
        rootlesskit_pid: None,
        rootless_port_driver: None,
        networks: networks
            .into_iter()
            .map(|n| {
                let id = n.id.unwrap_or_default();
                let bridge = if n.driver.as_deref() == Some("bridge") {
                    let named =
                        n.options.as_ref().and_then(|o| o.get("com.docker.network.bridge.name")).cloned();
                    Some(named.unwrap_or_else(|| format!("br-{}", &id[..id.len().min(12)])))
                } else {
                    None
                };
                DockerNetwork {
                    name: n.name.unwrap_or_default(),
                    subnets: n
                        .ipam
                        .and_then(|i| i.config)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|c| c.subnet)
                        .collect(),
                    id,
                    bridge,
                }
            })
            .collect(),
    })
}

/// Network name → the container's address on it; networks without an address are left out.
fn addresses_on(networks: Option<&HashMap<String, EndpointSettings>>) -> BTreeMap<String, IpAddr> {
    networks
        .into_iter()
        .flatten()
        .filter_map(|(name, ep)| {
            let ip = ep.ip_address.as_deref().filter(|s| !s.is_empty())?.parse::<IpAddr>().ok()?;
            Some((name.clone(), ip))
        })
        .collect()
}

/// Only the labels a verdict can use: compose's and ours.
fn kept_labels(labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .filter(|(k, _)| k.starts_with("com.docker.compose.") || k.starts_with("io.portwhy."))
        .collect()
}

/// A running or paused container straight from the list endpoint; `None` asks for an inspect.
fn container_from_summary(c: &ContainerSummary) -> Option<Container> {
    let state = match c.state? {
        ContainerSummaryStateEnum::RUNNING => ContainerState::Running,
        ContainerSummaryStateEnum::PAUSED => ContainerState::Paused,
        _ => return None,
    };
    let labels: BTreeMap<String, String> = c.labels.clone().unwrap_or_default().into_iter().collect();
    let actual: Vec<PortBinding> = {
        let mut v: Vec<PortBinding> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                let host_port = p.public_port?;
                let proto = match p.typ {
                    Some(PortSummaryTypeEnum::UDP) => Proto::Udp,
                    Some(PortSummaryTypeEnum::SCTP) => Proto::Sctp,
                    _ => Proto::Tcp,
                };
                let host_ip = p.ip.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
                Some(PortBinding { host_ip, host_port, container_port: p.private_port, proto })
            })
            .collect();
        v.sort_by_key(|b| (b.host_port, b.proto, b.host_ip));
        v
    };
    let addresses = addresses_on(c.network_settings.as_ref().and_then(|n| n.networks.as_ref()));
    Some(Container {
        id: c.id.clone()?,
        name: c.names.as_ref()?.first()?.trim_start_matches('/').to_owned(),
        image: c.image.clone().unwrap_or_default(),
        state,
        error: None,
        network_mode: c.host_config.as_ref().and_then(|h| h.network_mode.clone()).unwrap_or_default(),
        compose_project: labels.get("com.docker.compose.project").cloned(),
        compose_service: labels.get("com.docker.compose.service").cloned(),
        restart_policy: None,
        restart_count: None,
        // A running container holds what it was given; the list does not repeat the request.
        requested: actual.clone(),
        actual,
        addresses,
        labels: kept_labels(labels),
    })
}

fn container_from(c: ContainerInspectResponse) -> Option<Container> {
    let state = c.state.as_ref();
    let status = state.and_then(|s| s.status);
    let state_enum = match status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        _ => ContainerState::Exited,
    };
    let labels: BTreeMap<String, String> =
        c.config.as_ref().and_then(|cfg| cfg.labels.clone()).unwrap_or_default().into_iter().collect();
    let host_config = c.host_config.as_ref();
    let addresses = addresses_on(c.network_settings.as_ref().and_then(|n| n.networks.as_ref()));
    Some(Container {
        id: c.id?,
        name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
        image: c.config.as_ref().and_then(|cfg| cfg.image.clone()).unwrap_or_default(),
        state: state_enum,
        error: state.and_then(|s| s.error.clone()).filter(|e| !e.is_empty()),
        network_mode: host_config.and_then(|h| h.network_mode.clone()).unwrap_or_default(),
        compose_project: labels.get("com.docker.compose.project").cloned(),
        compose_service: labels.get("com.docker.compose.service").cloned(),
        restart_policy: host_config
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty() && n != "no"),
        restart_count: c.restart_count.and_then(|n| u64::try_from(n).ok()),
        requested: bindings(host_config.and_then(|h| h.port_bindings.as_ref())),
        actual: bindings(c.network_settings.as_ref().and_then(|n| n.ports.as_ref())),
        addresses,
        labels: kept_labels(labels),
    })
}

/// Flatten a PortMap (`"80/tcp" → [{HostIp, HostPort}]`) into bindings; unpublished exposes are skipped.
fn bindings(map: Option<&PortMap>) -> Vec<PortBinding> {
    let mut out = Vec::new();
    for (key, binds) in map.into_iter().flatten() {
        let (cport, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let (Ok(container_port), Ok(proto)) = (cport.parse::<u16>(), proto.parse::<Proto>()) else {
            continue;
        };
        for b in binds.iter().flatten() {
            let host_ip = b.host_ip.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
            let host_port = b.host_port.as_deref().and_then(|p| p.parse().ok()).unwrap_or(0);
            out.push(PortBinding { host_ip, host_port, container_port, proto });
        }
    }
    // PortMap is a map: without the container port in the key, ties keep its random order.
    out.sort_by_key(|b| (b.host_port, b.proto, b.host_ip, b.container_port));
    out
}

/// docker-proxy processes (children of each daemon named by its pidfile), and the process whose
/// network namespace a rootless engine publishes from. Nothing else in /proc is read unless the
/// engine is rootless and no pidfile named it.
fn scan_processes(proc_root: &Path, rootless: bool) -> (Vec<ProxyProcess>, Option<u32>) {
    let own_netns = fs::read_link(proc_root.join("self/ns/net")).ok();
    let in_other_netns = |pid: u32| {
        let ns = fs::read_link(proc_root.join(pid.to_string()).join("ns/net")).ok();
        ns.is_some() && ns != own_netns
    };
    let daemons = procs::docker_daemons(proc_root);
    let mut proxies: Vec<ProxyProcess> = daemons
        .iter()
        .flat_map(|&(daemon, rootless)| procs::daemon_children(proc_root, daemon, rootless))
        .filter(|&pid| procs::comm(proc_root, pid).as_deref() == Some("docker-proxy"))
        .filter_map(|pid| {
            let args = procs::cmdline(proc_root, pid)?;
            Some(parse_proxy_cmdline(&args)?.into_process(pid, None))
        })
        .collect();
    // The rootless dockerd lives in rootlesskit's namespace, where docker-proxy and the DNAT
    // rules are.
    let mut rootlesskit =
        daemons.iter().filter(|(_, r)| *r).map(|(pid, _)| *pid).find(|&p| in_other_netns(p));
    if rootlesskit.is_none() && rootless {
        // The API says rootless but no pidfile named the daemon (a custom --pidfile): look by name.
        // The parent rootlesskit listens in our namespace; its child (also `rootlesskit`) and the
        // rootless dockerd live in the other one.
        let inside: Vec<u32> = procs::named(proc_root, &["rootlesskit", "dockerd"])
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| in_other_netns(p))
            .collect();
        let is_kit = |p: &u32| procs::comm(proc_root, *p).as_deref() == Some("rootlesskit");
        rootlesskit = inside.iter().copied().find(is_kit).or(inside.first().copied());
    }
    proxies.sort_by_key(|p| p.pid);
    (proxies, rootlesskit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_driver_comes_from_the_found_pids_parent_or_else_by_name() {
        let root = std::env::temp_dir().join(format!("portwhy-portdriver-{}", std::process::id()));
        let proc_ = |pid: u32, ppid: u32, comm: &str, argv: &[&str]| {
            let d = root.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cmdline"), argv.join("\0")).unwrap();
            fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(d.join("stat"), format!("{pid} ({comm}) S {ppid} 0 0 0")).unwrap();
        };
        // rootlesskit (9) -> its child (10, re-exec'd as /proc/self/exe) -> the rootless dockerd (11).
        // At first 9's comm is one a search by name cannot find: only the walk up from 11 reaches it.
        let kit = ["rootlesskit", "--net=slirp4netns", "--port-driver=slirp4netns", "dockerd-rootless.sh"];
        proc_(9, 1, "rk-renamed", &kit);
        proc_(10, 9, "exe", &["/proc/self/exe", "--port-driver=slirp4netns"]);
        proc_(11, 10, "dockerd", &["dockerd"]);
        assert_eq!(rootless_port_driver(&root, Some(11)).as_deref(), Some("slirp4netns"));
        assert_eq!(rootless_port_driver(&root, None), None);
        // Without a pid to start from, rootlesskit is found by name.
        proc_(9, 1, "rootlesskit", &kit);
        assert_eq!(rootless_port_driver(&root, None).as_deref(), Some("slirp4netns"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_port_driver_is_read_in_both_flag_forms() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        // dockerd-rootless.sh's own form.
        assert_eq!(
            port_driver_arg(&argv("rootlesskit --net=slirp4netns --port-driver=slirp4netns --copy-up=/etc")),
            Some("slirp4netns".into())
        );
        assert_eq!(
            port_driver_arg(&argv("rootlesskit --port-driver builtin dockerd")),
            Some("builtin".into())
        );
        assert_eq!(port_driver_arg(&argv("rootlesskit --net=slirp4netns dockerd")), None);
        assert_eq!(port_driver_arg(&argv("rootlesskit --port-driver-x=1")), None);
    }

    #[test]
    fn api_version_comes_from_the_ping_header() {
        // Headers as Engine 20.10.24 sent them (recorded with curl on the host engine).
        let answer =
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\n\
                      Server: Docker/20.10.24+dfsg1 (linux)\r\nContent-Length: 2\r\n\r\nOK";
        assert_eq!(api_version_header(answer), Some("1.41"));
        assert_eq!(parse_api_version("1.41"), Some((1, 41)));
        // A body that looks like a header is not read as one.
        assert_eq!(api_version_header("HTTP/1.1 200 OK\r\n\r\nApi-Version: 9.9"), None);
        assert_eq!(parse_api_version("garbage"), None);
    }
}
