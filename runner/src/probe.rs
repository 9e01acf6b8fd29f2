//! Traffic probes: send one line to a port from a given place and classify who answered.
//!
//! Servers in the lab identify themselves: portholder replies `portholder <name> pid=<pid>`, scenario
//! containers reply `container <name>`. Probes from inside the environment use busybox `nc`
//! (busybox-static is in every engine image); the `outside` probe is this process, connecting to the
//! environment's address from the runner's own network namespace.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portwhy::port::Proto;
use portwhy_harness::{poll, Environment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::scenario::{Answerer, TrafficSource};

/// Network the `other-network` probe runs its client container in (created on first use).
pub(crate) const OTHER_NETWORK: &str = "pw-probe-other";
const TIMEOUT: Duration = Duration::from_secs(3);

/// Who a reply came from.
pub fn classify(reply: &str) -> Answerer {
    let r = reply.trim();
    if r.is_empty() {
        Answerer::Nothing
    } else if r.lines().any(|l| {
        let l = l.trim_start();
        // Containers that cannot run busybox nc (UDP) run portholder named `container-...`.
        l.starts_with("container ") || l.starts_with("portholder container")
    }) {
        Answerer::Container
    } else {
        // portholder, or any other host service (systemd-resolved answers DNS in binary).
        Answerer::HostProcess
    }
}

/// The environment's IPv4 address on eth0 (the "host IP" of the emulated host), read when the
/// environment started.
pub fn host_ip(env: &Environment) -> Result<IpAddr, String> {
    env.host_ip().map_err(|e| e.to_string())
}

fn nc_line(addr: &str, port: u16, proto: Proto) -> String {
    match proto {
        // busybox nc has no UDP mode; bash's /dev/udp sends one datagram and reads one reply line.
        Proto::Udp => format!(
            "timeout 3 bash -c 'exec 3<>/dev/udp/{addr}/{port}; echo probe >&3; head -n1 <&3' 2>&1; true"
        ),
        // `-w 2` closes after two idle seconds; `timeout` bounds a server that never closes.
        _ => format!("echo probe | timeout 4 busybox nc -w 2 {addr} {port} 2>&1; true"),
    }
}

/// Probe `port` from `from`; returns who answered and the raw reply (or why nothing did).
/// `client` (other-network only) names an existing container to probe from.
pub async fn probe(
    env: &Environment,
    from: TrafficSource,
    client: Option<&str>,
    proto: Proto,
    port: u16,
) -> (Answerer, String) {
    let reply = match from {
        TrafficSource::Loopback4 => in_env(env, &nc_line("127.0.0.1", port, proto)).await,
        TrafficSource::Loopback6 => in_env(env, &nc_line("::1", port, proto)).await,
        TrafficSource::HostIp => match host_ip(env) {
            Ok(ip) => in_env(env, &nc_line(&ip.to_string(), port, proto)).await,
            Err(e) => Err(e),
        },
        TrafficSource::OtherNetwork => match host_ip(env) {
            Ok(ip) => {
                // busybox nc inside containers is TCP only (UDP probes from another network are not
                // offered by any scenario).
                let nc = format!("echo probe | timeout 4 nc -w 2 {ip} {port}");
                let script = match client {
                    Some(c) => format!("docker exec {c} sh -c '{nc}' 2>&1; true"),
                    None => format!(
                        "docker network inspect {OTHER_NETWORK} >/dev/null 2>&1 || docker network create {OTHER_NETWORK} >/dev/null; \
                         docker run --rm --network {OTHER_NETWORK} busybox sh -c '{nc}' 2>&1; true"
                    ),
                };
                in_env(env, &script).await
            }
            Err(e) => Err(e),
        },
        TrafficSource::Outside => match host_ip(env) {
            Ok(ip) => outside(SocketAddr::new(ip, port), proto).await,
            Err(e) => Err(e),
        },
    };
    match reply {
        Ok(r) => (classify(&strip_nc_noise(&r)), r.trim().to_owned()),
        Err(e) => (Answerer::Nothing, e),
    }
}

/// Probe `addr:port` from inside the environment (e.g. a container's own address).
pub async fn probe_address(env: &Environment, addr: &str, proto: Proto, port: u16) -> (Answerer, String) {
    match in_env(env, &nc_line(addr, port, proto)).await {
        Ok(r) => (classify(&strip_nc_noise(&r)), r.trim().to_owned()),
        Err(e) => (Answerer::Nothing, e),
    }
}

/// `probe_address` until the container answers, at most ~3 s, as `probe_until` does: the
/// containers' servers are `nc -l` loops, so one connection (the readiness check's) leaves a gap
/// until the next `nc` listens, longer on a loaded host.
pub async fn probe_address_until(
    env: &Environment,
    addr: &str,
    proto: Proto,
    port: u16,
) -> (Answerer, String) {
    retry_until(Answerer::Container, || probe_address(env, addr, proto, port)).await
}

/// One probe retried every 100 ms for at most 3 s until the answer is `want`; the last answer.
async fn retry_until<F, Fut>(want: Answerer, probe: F) -> (Answerer, String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (Answerer, String)>,
{
    // Waits on the server listening, which no event tells from outside the container; a refused
    // connect returns at once, so the interval alone sets how late the answer is seen.
    poll::until(Duration::from_secs(3), Duration::from_millis(100), probe, |(got, _)| *got == want).await
}

/// Resolve `name` as the environment's programs do (`getent ahosts`: nsswitch, then the servers
/// in /etc/resolv.conf); whether it resolved, and what getent printed or its exit code. getent
/// waits for the resolver's own timeout when a server is down, so this takes up to ~10 s then.
pub async fn lookup(env: &Environment, name: &str) -> (bool, String) {
    match env.exec(&["getent", "ahosts", name]).await {
        Ok(out) if out.success() => {
            let first = out.stdout.lines().next().unwrap_or_default().split_whitespace().next();
            (true, format!("{name} resolved to {}", first.unwrap_or("?")))
        }
        Ok(out) => (false, format!("getent ahosts {name} exited {}: no answer", out.exit_code)),
        Err(e) => (false, format!("getent ahosts {name}: {e}")),
    }
}

/// Probe until the answer is `want` (servers in fresh containers take a moment to listen), at
/// most ~3 s; returns the last answer.
pub async fn probe_until(
    env: &Environment,
    from: TrafficSource,
    client: Option<&str>,
    proto: Proto,
    port: u16,
    want: Answerer,
) -> (Answerer, String) {
    retry_until(want, || probe(env, from, client, proto, port)).await
}

/// Wait (at most ~5 s) until container `name` answers on its own address, so a probe that gets
/// nothing through the published port shows a routing fault, not a slow start.
pub async fn container_ready(env: &Environment, name: &str, port: u16, proto: Proto) -> Result<(), String> {
    let ip = env
        .exec(&["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name])
        .await
        .map_err(|e| e.to_string())?
        .stdout
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("container {name} has no address"))?;
    // A rootless engine's containers live in rootlesskit's network namespace: ask from there. Up
    // to 29.4 the rootless dockerd runs in it; from 29.5 on (`--detach-netns`) dockerd stays
    // outside and the namespace is the file rootlesskit mounts in its state folder.
    let netns = if env.options().rootless {
        // The namespace file is only mounted in dockerd's mount namespace.
        "nsenter $(p=$(cat /run/user/1000/docker.pid); f=/run/user/1000/dockerd-rootless/netns; \
         if [ -e $f ]; then echo -t $p -m -- nsenter --net=$f; else echo -t $p -n; fi) "
    } else {
        ""
    };
    let line = format!("{netns}sh -c {}", portwhy::remedy::quote(&nc_line(&ip, port, proto)));
    // As in `probe_until`: polls the container's listen, each try a refused connect at most.
    let (who, reply) = poll::until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            match in_env(env, &line).await {
                Ok(r) => (classify(&strip_nc_noise(&r)), r.trim().to_owned()),
                Err(e) => (Answerer::Nothing, e),
            }
        },
        |(who, _)| *who == Answerer::Container,
    )
    .await;
    if who == Answerer::Container {
        Ok(())
    } else {
        Err(format!("container {name} never answered on {ip}:{port}/{proto} ({reply})"))
    }
}

/// busybox nc prints connection errors on stderr (merged here); they mean nobody answered.
fn strip_nc_noise(reply: &str) -> String {
    reply
        .lines()
        .filter(|l| !l.contains("nc:") && !l.contains("Terminated") && !l.contains("timed out"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn in_env(env: &Environment, script: &str) -> Result<String, String> {
    env.sh(script).await.map(|o| format!("{}{}", o.stdout, o.stderr)).map_err(|e| e.to_string())
}

async fn outside(addr: SocketAddr, proto: Proto) -> Result<String, String> {
    let exchange = async {
        match proto {
            Proto::Udp => {
                let bind: SocketAddr =
                    if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("constant");
                let sock = tokio::net::UdpSocket::bind(bind).await?;
                sock.send_to(b"probe\n", addr).await?;
                let mut buf = [0u8; 512];
                let n = sock.recv(&mut buf).await?;
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            _ => {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(b"probe\n").await?;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 512];
                // Read until the server closes or a line arrived.
                loop {
                    let n = s.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.contains(&b'\n') {
                        break;
                    }
                }
                Ok(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    };
    match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no answer within {} s", TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_classify_by_self_identification() {
        assert_eq!(classify("container web\n"), Answerer::Container);
        assert_eq!(classify("portholder h1 pid=12"), Answerer::HostProcess);
        assert_eq!(classify("portholder container-dns pid=1"), Answerer::Container);
        assert_eq!(classify("  \n"), Answerer::Nothing);
        assert_eq!(strip_nc_noise("nc: can't connect to remote host (127.0.0.1): Connection refused"), "");
    }
}
