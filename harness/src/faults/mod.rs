//! Fault injectors: one typed fault per file, each with inject / check / undo.
//!
//! Faults are data (serde, tagged by `kind`) so scenario files embed them. `inject` creates the
//! fault inside an environment; `check` proves it is there by independent means (`ss`, the
//! firewall's save tool, `docker inspect`), and fails once `undo` has removed it. Processes a fault
//! starts are recorded in `/run/portwhy/faults/<key>.pids` inside the environment, so `undo` needs
//! only the fault's own description.

mod address_gone;
mod beside;
mod dockerd_killed;
mod duplicate_container;
mod firewall_wipe;
mod hairpin;
mod host_listener;
mod leftover_proxy;
mod orphaned_dnat;
mod rootless_conflict;
mod rootless_daemon;
mod rootless_port_driver;
mod second_daemon;
mod silent_share;
mod split_backend;
mod stale_allocation;
mod systemd_resolved;
mod wsl_look;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use address_gone::AddressGone;
pub use dockerd_killed::DockerdKilled;
pub use duplicate_container::{DuplicateContainer, HolderState};
pub use firewall_wipe::{FirewallWipe, Wipe};
pub use hairpin::Hairpin;
pub use host_listener::HostListener;
pub use leftover_proxy::LeftoverProxy;
pub use orphaned_dnat::{NatChain, OrphanedDnat};
pub use rootless_conflict::RootlessConflict;
pub use rootless_daemon::RootlessDaemon;
pub use rootless_port_driver::RootlessPortDriverFault;
pub use second_daemon::{SecondDaemon, SECOND_DAEMON_SOCKET};
pub use silent_share::SilentShare;
pub use split_backend::{SplitBackend, SplitVariant};
pub use stale_allocation::StaleAllocation;
pub use systemd_resolved::SystemdResolved;
pub use wsl_look::WslLook;

use crate::env::Environment;
use crate::error::HarnessError;
/// Quotes one word for `sh` (the engine's quoting, so what faults run reads as what remedies print).
pub(crate) use portwhy::remedy::quote as sh_quote;

/// The engine's protocol type: scenarios, faults and verdicts speak of one `Proto`.
pub use portwhy::port::Proto;

/// Declares every fault once: the enum (tagged by `kind` in scenario files) and its dispatch. A new
/// fault is a file with `inject`/`check`/`undo` and one line here.
macro_rules! faults {
    ($($variant:ident($ty:ty) = $tag:literal,)*) => {
        /// Every fault the harness can inject.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum Fault {
            $(#[serde(rename = $tag)] $variant($ty),)*
        }

        /// Every fault's `kind`, in declaration order.
        pub const FAULT_KINDS: &[&str] = &[$($tag),*];

        impl Fault {
            /// The serde tag of this fault (`host-listener`, ...).
            pub fn kind(&self) -> &'static str {
                match self { $(Fault::$variant(_) => $tag,)* }
            }

            async fn inject_inner(&self, env: &Environment) -> Result<Injected, HarnessError> {
                match self { $(Fault::$variant(f) => f.inject(env).await,)* }
            }

            /// Proves the fault is present by means independent of the injector; `Err` when it is not.
            pub async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
                match self { $(Fault::$variant(f) => f.check(env).await,)* }
            }

            /// Removes the fault (and whatever the injection created).
            pub async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
                match self { $(Fault::$variant(f) => f.undo(env).await,)* }
            }
        }
    };
}

faults! {
    HostListener(HostListener) = "host-listener",
    DuplicateContainer(DuplicateContainer) = "duplicate-container",
    OrphanedDnat(OrphanedDnat) = "orphaned-dnat",
    SplitBackend(SplitBackend) = "split-backend",
    SystemdResolved(SystemdResolved) = "systemd-resolved",
    SilentShare(SilentShare) = "silent-share",
    DockerdKilled(DockerdKilled) = "dockerd-killed",
    LeftoverProxy(LeftoverProxy) = "leftover-proxy",
    Hairpin(Hairpin) = "hairpin",
    RootlessConflict(RootlessConflict) = "rootless-conflict",
    RootlessPortDriver(RootlessPortDriverFault) = "rootless-port-driver",
    FirewallWipe(FirewallWipe) = "firewall-wipe",
    AddressGone(AddressGone) = "address-gone",
    SecondDaemon(SecondDaemon) = "second-daemon",
    RootlessDaemon(RootlessDaemon) = "rootless-daemon",
    StaleAllocation(StaleAllocation) = "stale-allocation",
    WslLook(WslLook) = "wsl-look",
}

/// What an injection did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Injected {
    /// The fault's `kind`.
    pub kind: String,
    /// One line for reports: what now holds or breaks the port.
    pub summary: String,
    /// Processes started in the environment.
    pub pids: Vec<u32>,
    /// Inner containers created.
    pub containers: Vec<String>,
    /// Wall time of the injection.
    pub elapsed: Duration,
}

impl Fault {
    /// Creates the fault in `env`.
    pub async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let started = Instant::now();
        let mut injected = self.inject_inner(env).await?;
        injected.kind = self.kind().to_string();
        injected.elapsed = started.elapsed();
        Ok(injected)
    }
}

/// One listening (TCP) or bound (UDP) socket as `ss -Hlnp` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SsSocket {
    /// Local address without brackets or `%iface` (`0.0.0.0`, `::`, `*`, `127.0.0.53`).
    pub addr: String,
    pub port: u16,
    pub processes: Vec<(String, u32)>,
}

impl SsSocket {
    /// Whether this socket is bound to `addr` (`*` is how ss shows a dual-stack `[::]`).
    pub fn is_at(&self, addr: &str) -> bool {
        let want = addr.trim_start_matches('[').trim_end_matches(']');
        self.addr == want || (self.addr == "*" && (want == "::" || want == "0.0.0.0"))
    }

    pub fn held_by(&self, process: &str) -> bool {
        self.processes.iter().any(|(name, _)| name == process)
    }

    pub fn has_pid(&self, pid: u32) -> bool {
        self.processes.iter().any(|(_, p)| *p == pid)
    }
}

/// Parses `ss -H -l -n -p` lines (`LISTEN 0 4096 [::]:80 [::]:* users:(("x",pid=1,fd=3))`).
pub(crate) fn parse_ss(text: &str) -> Vec<SsSocket> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // With -H and one protocol the columns are State Recv-Q Send-Q Local Peer [Process].
            let local = fields.get(3)?;
            let (addr, port) = local.rsplit_once(':')?;
            let port = port.parse().ok()?;
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let addr = addr.split('%').next().unwrap_or(addr).trim_end_matches(']').to_string();
            let processes = fields.get(5).map(|p| parse_users(p)).unwrap_or_default();
            Some(SsSocket { addr, port, processes })
        })
        .collect()
}

fn parse_users(field: &str) -> Vec<(String, u32)> {
    // users:(("portholder",pid=12,fd=3),("portholder",pid=13,fd=3))
    field
        .split("((")
        .nth(1)
        .unwrap_or("")
        .split("),(")
        .filter_map(|entry| {
            let mut parts = entry.split(',');
            let name = parts.next()?.trim_matches('"').to_string();
            let pid = parts.find_map(|p| p.strip_prefix("pid="))?.trim_end_matches(')').parse().ok()?;
            Some((name, pid))
        })
        .collect()
}

/// The sockets bound to `port` in the environment's own network namespace.
pub(crate) async fn sockets_on(
    env: &Environment,
    proto: Proto,
    port: u16,
) -> Result<Vec<SsSocket>, HarnessError> {
    let flag = match proto {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
        Proto::Sctp => "-S",
    };
    let out = env.exec(&["ss", "-H", "-l", "-n", "-p", flag]).await?;
    if !out.success() {
        return Err(HarnessError::fault("ss", format!("ss failed: {}", out.stderr.trim())));
    }
    Ok(parse_ss(&out.stdout).into_iter().filter(|s| s.port == port).collect())
}

/// Polls `probe` every 50 ms until it returns true, fails, or `timeout` passes.
pub(crate) async fn wait_until<F, Fut>(timeout: Duration, probe: F) -> Result<bool, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, HarnessError>>,
{
    // Each probe is an exec, so a shorter interval would mostly add load.
    crate::poll::until(timeout, Duration::from_millis(50), probe, |r| !matches!(r, Ok(false))).await
}

/// File in the environment recording the pids a fault started.
pub(crate) fn pid_file(key: &str) -> String {
    let key: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("/run/portwhy/faults/{key}.pids")
}

pub(crate) async fn save_pids(env: &Environment, key: &str, pids: &[u32]) -> Result<(), HarnessError> {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    env.sh_ok(&format!("mkdir -p /run/portwhy/faults && echo '{}' >> {}", list.join(" "), pid_file(key)))
        .await?;
    Ok(())
}

pub(crate) async fn load_pids(env: &Environment, key: &str) -> Result<Vec<u32>, HarnessError> {
    let out = env.sh(&format!("cat {} 2>/dev/null", pid_file(key))).await?;
    Ok(out.stdout.split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

/// SIGTERMs the recorded pids, waits until they are gone, forgets them.
pub(crate) async fn kill_pids(env: &Environment, key: &str) -> Result<(), HarnessError> {
    let pids = load_pids(env, key).await?;
    if !pids.is_empty() {
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        let list = list.join(" ");
        env.sh(&format!(
            "kill {list} 2>/dev/null; i=0; while [ $i -lt 100 ]; do alive=0; for p in {list}; do \
             s=$(awk '{{print $3}}' /proc/$p/stat 2>/dev/null); [ -n \"$s\" ] && [ \"$s\" != Z ] && alive=1; done; \
             [ $alive = 0 ] && break; sleep 0.05; i=$((i+1)); done; [ $alive = 0 ] || kill -9 {list} 2>/dev/null; true"
        ))
        .await?;
    }
    env.sh(&format!("rm -f {}", pid_file(key))).await?;
    Ok(())
}

/// Parses the `ready pid=N ...` lines portholder prints.
pub(crate) fn ready_pids(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter(|l| l.starts_with("ready "))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("pid="))?.parse().ok())
        .collect()
}

/// What `systemctl start UNIT` does, for the services the faults run without systemd (the
/// environment has no systemd: a remedy that stopped one of them starts it this way again).
pub async fn start_service(env: &Environment, unit: &str) -> Result<(), HarnessError> {
    match unit {
        "systemd-resolved" => SystemdResolved::default().start(env, false).await.map(|_| ()),
        other => Err(env.error(format!("no way to start service {other} in this environment"))),
    }
}

/// A busybox command line that answers every connection with `container <name>` (so traffic tests
/// can tell who answered); busybox `nc -lk -e` keeps listening.
pub(crate) fn responder(name: &str, proto: Proto, port: u16) -> Vec<String> {
    let udp = if proto == Proto::Udp { "-u " } else { "" };
    vec![
        "sh".into(),
        "-c".into(),
        format!("trap 'exit 0' TERM; while :; do echo 'container {name}' | nc {udp}-l -p {port} -w 1 >/dev/null 2>&1; done & wait"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded with `ss -H -l -n -p -u` / `-t` inside a bookworm environment (iproute2 6.1).
    const SS_UDP: &str = "UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*    users:((\"systemd-resolve\",pid=412,fd=17))\n\
UNCONN 0      0         127.0.0.54:53        0.0.0.0:*    users:((\"systemd-resolve\",pid=412,fd=19))\n";
    const SS_TCP: &str = "LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*    users:((\"portholder\",pid=77,fd=3),(\"portholder\",pid=78,fd=3))\n\
LISTEN 0      4096            [::]:8081         [::]:*    users:((\"docker-proxy\",pid=90,fd=4))\n\
LISTEN 0      4096               *:8082            *:*    users:((\"portholder\",pid=91,fd=3))\n";

    #[test]
    fn ss_lines_parse_with_zones_brackets_and_several_owners() {
        let udp = parse_ss(SS_UDP);
        assert_eq!(udp.len(), 2);
        assert!(udp[0].is_at("127.0.0.53") && udp[0].port == 53 && udp[0].held_by("systemd-resolve"));
        assert!(udp[1].is_at("127.0.0.54") && udp[1].has_pid(412));
        let tcp = parse_ss(SS_TCP);
        assert_eq!(tcp[0].processes, vec![("portholder".to_string(), 77), ("portholder".to_string(), 78)]);
        assert!(tcp[1].is_at("[::]") && tcp[1].held_by("docker-proxy") && !tcp[1].is_at("0.0.0.0"));
        assert!(tcp[2].is_at("::") && tcp[2].is_at("0.0.0.0"));
    }

    #[test]
    fn portholder_ready_lines_give_pids() {
        assert_eq!(
            ready_pids("ready pid=12 tcp 0.0.0.0:80\nnoise\nready pid=13 udp [::]:53\n"),
            vec![12, 13]
        );
    }

    #[test]
    fn faults_round_trip_through_toml_by_kind() {
        let text = r#"
            kind = "host-listener"
            proto = "udp"
            addr = "::"
            port = 5353
            v6only = true
            reuseaddr = true
        "#;
        let fault: Fault = toml::from_str(text).expect("parses");
        match &fault {
            Fault::HostListener(h) => {
                assert_eq!(
                    (h.proto, h.port, h.v6only, h.reuseaddr, h.count),
                    (Proto::Udp, 5353, Some(true), true, 1)
                )
            }
            other => panic!("wrong variant {other:?}"),
        }
        assert_eq!(fault.kind(), "host-listener");
        let again: Fault = toml::from_str(&toml::to_string(&fault).expect("serialises")).expect("parses");
        assert_eq!(again, fault);
    }
}
