//! Classifier for the daemon's error text: which stage refused the port, and the address it names.
//!
//! Pure: text in, `DaemonError` out. Every wording in the project's facts must classify.
//!
//! A pasted text is read in three passes:
//! 1. Terminal noise goes: ANSI colours, carriage returns, the CLI's help tails, the "error waiting
//!    for container" log line, compose progress lines, the container id `docker run -d` prints.
//! 2. Of the lines left, the first one that carries a port error is classified. Compose and
//!    `docker start a b` print one error per failed container; the first is the one that stopped the
//!    run, and the others are usually the same cause on another port.
//! 3. The wording decides the stage, the address patterns give host IP, port and protocol, and every
//!    phrase that only some engine releases print narrows `engine_versions`.
//!
//! The wordings and the releases that print them (moby's source, checked against real engines):
//!
//! | wording | releases |
//! |---|---|
//! | `Bind for IP:P failed: port is already allocated` (the allocator) | all |
//! | `Error starting userland proxy: listen tcp IP:P: bind: ...` | up to 20.10.1 |
//! | `Error starting userland proxy: listen tcp4 IP:P: bind: ...` (also `tcp6`, `udp4`, `udp6`) | 20.10.2 to 26.x |
//! | `listen tcp4 IP:P: bind: ...` with no proxy phrase (`userland-proxy: false`) | 20.10.2 to 26.x |
//! | `failed to bind port IP:P/tcp: Error starting userland proxy: ...` | 27.x |
//! | `failed to bind host port for IP:P:CIP:CP/tcp: ...` | 28.x |
//! | `failed to bind host port IP:P/tcp: ...` | 29.0.0 on |
//! | prefix `failed to set up container networking: ` | 28.0.1 on |
//! | `error while calling PortManager.AddPort()` (rootless) | up to 27.x |
//! | `error while calling RootlessKit PortManager.AddPort()` (rootless) | 28.0.0 on |
//! | `failed to create socket for userland proxy for IP:P:CIP:CP/tcp: ...` | 28.x |
//! | `failed to create socket for IP:P/tcp: ...`, `failed to listen on tcp socket: ...` | 29.0.0 on |
//! | `fork/exec .../rootlesskit-docker-proxy: ...`, `rootlesskit-docker-proxy not installed` | up to 27.x |
//!
//! Signs beyond the stage:
//! - `cannot assign requested address` (EADDRNOTAVAIL) and `address family not supported`
//!   (EAFNOSUPPORT) are `address-unavailable`, never a conflict: no interface has the address, or
//!   its family is off. Nothing holds the port, so no holder must be looked for.
//! - Winsock's sentences (`forbidden by its access permissions`, `Only one usage of each socket
//!   address`, `not valid in its context`) set `platform: windows`.
//! - Rootless: RootlessKit's port manager, a missing `rootlesskit-docker-proxy`, and the daemon's
//!   own bind of `10.0.2.100` (the slirp4netns child address) set `rootless` and `rootless_sign`.
//!   Ten-dot-zero-dot-two-dot-100 is also a plausible LAN address, so only the daemon's bind
//!   wordings count, and the sign carries the regression's releases only with EADDRINUSE.
//! - A firewall text that says a chain is missing sets `firewall_error` with the command's table
//!   and chain. Engine 29's nftables backend has no such text: when its incremental update fails
//!   it reloads the whole `docker-bridges` table (moby's `internal/nftables`), so a flushed
//!   ruleset heals on the next publish. nft's own words for a rule whose table or chain is gone
//!   (`Error: Could not process rule: No such file or directory`, then the rule it echoes) are
//!   read the same way, with the table and chain taken from the echoed rule.
//! - `all ports are allocated` (a host port range with no free port) is the allocator's, like
//!   `port is already allocated`, and names no port.
//!
//! The address family suffix (`tcp4`) comes from moby/libnetwork#2604, shipped in 20.10.2, which made
//! both docker-proxy and the in-daemon "dummy" proxy used with `userland-proxy: false` listen on one
//! family. Before it both listened on plain `tcp`; from 27.x every such text is wrapped in
//! `failed to bind port`, and from 28.x the daemon binds the socket itself. So a bare `listen tcp`
//! from the engine means 20.10.1 or older, and `listen tcp4` without a wrapper means 20.10.2 to 26.x.
//! RootlessKit and Docker Desktop print their own `listen` errors; their family says nothing about
//! the engine.
//!
//! The stage comes from the cause at the end of the text, never from the wrappers in front of it.
//! `failed to set up container networking: driver failed programming external connectivity` wraps
//! every publish failure from 28.0.1 on; a trailing "address already in use" after it is the bind
//! itself failing, not a firewall step failing after a good bind (seed 1, the Docker bind-error guide,
//! reads it that way). Likewise 28.x's `failed to start userland proxy for port mapping` comes after
//! the daemon already bound the port, so it is not a bind conflict either.

use std::net::IpAddr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::port::Proto;
use crate::version::EngineRange;

/// Which part of the engine refused the publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The engine's own port allocator: "port is already allocated" (another container holds it).
    Allocated,
    /// The OS refused the bind: "address already in use" (userland proxy, the daemon, rootlesskit, Docker Desktop).
    HostBind,
    /// Permission: a privileged port in rootless mode, a Windows reserved range.
    AccessDenied,
    /// The OS refused the bind because the address cannot be used here at all: no interface has it
    /// ("cannot assign requested address") or its family is switched off ("address family not
    /// supported"). Nothing holds the port, so this is never a conflict.
    AddressUnavailable,
    /// Programming iptables/nftables failed.
    Firewall,
    Unknown,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allocated => "allocated",
            Self::HostBind => "host-bind",
            Self::AccessDenied => "access-denied",
            Self::AddressUnavailable => "address-unavailable",
            Self::Firewall => "firewall",
            Self::Unknown => "unknown",
        }
    }
}

/// The component that reported the failure, when the wording says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reporter {
    Allocator,
    UserlandProxy,
    Daemon,
    Rootlesskit,
    DockerDesktop,
    Iptables,
    Nftables,
}

/// The operating system's reason for refusing a bind, as the text words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindError {
    /// EADDRINUSE: "address already in use"; Windows: "Only one usage of each socket address".
    AddressInUse,
    /// EADDRNOTAVAIL: "cannot assign requested address" (the host has no such address); Windows:
    /// "The requested address is not valid in its context".
    AddressNotAvailable,
    /// EAFNOSUPPORT: "address family not supported by protocol" (IPv6 disabled on the host).
    FamilyNotSupported,
    /// EACCES: "permission denied"; Windows: "forbidden by its access permissions".
    PermissionDenied,
}

/// The operating system a text comes from, when only one prints its wording.
///
/// Only Windows' socket errors (Winsock's own sentences) say so; Docker Desktop on macOS and Linux
/// prints Unix errno texts that read like any Linux engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Platform {
    Windows,
}

/// What in a text says the engine runs rootless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootlessSignKind {
    /// The daemon bound `10.0.2.100`, the address RootlessKit's slirp4netns network gives the
    /// child namespace (`failed to bind host port 10.0.2.100:3000/tcp`): the slirp4netns port
    /// driver is in use. With "address already in use" it is the 29.0.0–29.1.1 regression that
    /// binds that address once per family (moby#51591, fixed in 29.1.2 by moby#51616).
    Slirp4netnsAddress,
    /// RootlessKit's port manager refused the port (`error while calling RootlessKit
    /// PortManager.AddPort()`, `cannot expose privileged port`).
    PortManager,
    /// The engine could not run `rootlesskit-docker-proxy`, the proxy rootless engines up to 27.x
    /// exec: usually binaries of an older install after an upgrade, or a daemon started before
    /// the upgrade removed the file (moby#49519, docker-library/docker#230).
    MissingRootlesskitDockerProxy,
}

/// A sign of a rootless engine and the releases it belongs to, when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootlessSign {
    pub kind: RootlessSignKind,
    /// The releases that print this sign (for the slirp4netns address with "address already in
    /// use": the regression's releases); open when any release may.
    #[serde(default, skip_serializing_if = "EngineRange::is_open")]
    pub engine_versions: EngineRange,
}

/// What the firewall step says went wrong, when the text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirewallErrorKind {
    /// The chain Docker appends to is gone (`iptables: No chain/target/match by that name.`,
    /// `Chain 'DOCKER' does not exist`): a firewall reload or flush wiped Docker's chains, or
    /// `iptables` now points at the other backend. iptables words a missing target or match the
    /// same way, but the command in Docker's text only names its own chains. nft says `Could not
    /// process rule: No such file or directory`.
    ChainMissing,
    /// iptables-nft names an unknown target as a chain (`Chain 'DNAT' does not exist`): the kernel
    /// lacks the target's module (`nft_nat`, `xt_nat`), so the rule cannot be written at all.
    TargetMissing,
}

/// The firewall's complaint and the table and chain of the command it refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallError {
    pub kind: FirewallErrorKind,
    /// `nat`, `filter` (iptables' default when the command names none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// A classified daemon error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonError {
    pub stage: Stage,
    /// Address as written in the text (`0.0.0.0`, `127.0.0.1`, `::` for `:::P` or `[::]:P`); `None` when absent.
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    /// `tcp` unless the text names another protocol; see `proto_stated`.
    pub proto: Proto,
    /// Whether the text names the protocol. The allocator's wording never does: a UDP conflict reads
    /// exactly like a TCP one (measured on 20.10.24), so `proto` is then only the default.
    #[serde(default)]
    pub proto_stated: bool,
    /// The text comes from a rootless engine (RootlessKit, "cannot expose privileged port").
    pub rootless: bool,
    /// Endpoint or container name named in the text.
    pub container: Option<String>,
    /// Endpoint id named in the text (`driver failed programming ... on endpoint NAME (ID)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Reporter>,
    /// The operating system's reason when the text carries one (`bind: address already in use`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_error: Option<BindError>,
    /// Engine versions whose wording this is.
    pub engine_versions: EngineRange,
    /// The operating system whose wording this is, when the text gives it away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The sign that made `rootless` true, with the releases it points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_sign: Option<RootlessSign>,
    /// The firewall's reason, for `stage: firewall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_error: Option<FirewallError>,
    /// The text after trimming CLI noise (`docker: Error response from daemon:`, `Run 'docker run --help'`).
    pub text: String,
}

impl Default for DaemonError {
    fn default() -> Self {
        Self {
            stage: Stage::Unknown,
            host_ip: None,
            host_port: None,
            proto: Proto::Tcp,
            proto_stated: false,
            rootless: false,
            container: None,
            endpoint_id: None,
            reporter: None,
            bind_error: None,
            engine_versions: EngineRange::default(),
            platform: None,
            rootless_sign: None,
            firewall_error: None,
            text: String::new(),
        }
    }
}

impl DaemonError {
    /// Whether the text said anything portwhy can use: a known wording or at least a port.
    pub fn is_recognised(&self) -> bool {
        self.stage != Stage::Unknown || self.host_port.is_some()
    }
}

/// Why the text could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorTextError {
    #[error("the error text is empty: paste the daemon's message, e.g. --error \"$(docker run -p 8080:80 img 2>&1)\"")]
    Empty,
}

/// Classify the daemon's error text.
pub fn classify(input: &str) -> Result<DaemonError, ErrorTextError> {
    if input.trim().is_empty() {
        return Err(ErrorTextError::Empty);
    }
    let lines = join_nft_echo(clean_lines(input));
    let read: Vec<DaemonError> = lines.iter().map(|l| read_line(&l.body)).collect();
    let pick = read
        .iter()
        .position(|r| r.stage != Stage::Unknown && r.host_port.is_some())
        .or_else(|| read.iter().position(|r| r.stage != Stage::Unknown))
        .or_else(|| read.iter().position(|r| r.host_port.is_some()));

    let mut out = match pick {
        Some(i) => read[i].clone(),
        None => {
            // Nothing port-related: keep every line that survived, or the whole input when even the
            // noise filter ate everything (a pasted help tail is still not an empty text).
            let bodies: Vec<&str> = lines.iter().map(|l| l.body.as_str()).collect();
            let mut text = bodies.join("\n");
            if text.is_empty() {
                text = strip_terminal(input).trim().to_owned();
            }
            if text.is_empty() {
                text = input.trim().to_owned();
            }
            // The first line still names what it can (an endpoint cut off before the cause), unless
            // a later one carries a rootless sign: that line says more.
            let base =
                read.iter().find(|r| r.rootless_sign.is_some()).or(read.first()).cloned().unwrap_or_default();
            let rootless = read.iter().any(|r| r.rootless);
            let platform = read.iter().find_map(|r| r.platform);
            DaemonError { text, rootless, platform, ..base }
        }
    };
    if out.container.is_none() {
        let own = pick.and_then(|i| lines[i].container.clone());
        out.container = own.or_else(|| lines.iter().find_map(|l| l.container.clone()));
    }
    Ok(out)
}

mod address;
mod firewall;
mod line;
mod text;

use address::*;
use firewall::*;
use line::*;
use text::*;

pub(super) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?} does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn contradicting_clues_leave_the_range_open() {
        // A 28.x prefix glued to a pre-27 proxy phrase cannot come from one engine.
        let e = classify(
            "failed to set up container networking: driver failed programming external connectivity on \
             endpoint web: Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address already in use",
        )
        .unwrap();
        assert_eq!(e.stage, Stage::HostBind);
        assert_eq!(e.engine_versions, EngineRange::default());
    }

    #[rstest]
    #[case("0.0.0.0:8080", Some("0.0.0.0"), Some(8080))]
    #[case("[::]:8080", Some("::"), Some(8080))]
    #[case(":::8080", Some("::"), Some(8080))]
    #[case("::1:18095", Some("::1"), Some(18095))]
    #[case(":5000", None, Some(5000))]
    #[case("[fe80::1%eth0]:80", Some("fe80::1%eth0"), Some(80))]
    #[case("0.0.0.0:0", Some("0.0.0.0"), None)]
    fn splits_addresses(#[case] s: &str, #[case] ip: Option<&str>, #[case] port: Option<u16>) {
        assert_eq!(split_addr(s), Some((ip.map(str::to_owned), port)));
    }

    #[rstest]
    #[case("localhost:80")]
    #[case("0.0.0.0:http")]
    #[case("[::1:80")]
    #[case("8080")]
    fn rejects_non_addresses(#[case] s: &str) {
        assert_eq!(split_addr(s), None);
    }

    #[rstest]
    // libnetwork's PortBinding without brackets (older String()) and with them.
    #[case("failed to bind host port for :::8080:172.17.0.2:80/tcp: address already in use", "::", 8080)]
    #[case("failed to bind host port for [::]:8080:[fd00::2]:80/tcp: address already in use", "::", 8080)]
    #[case("failed to bind host port for ::1:8080:fd00::2:80/udp: address already in use", "::1", 8080)]
    fn reads_28_bindings(#[case] text: &str, #[case] ip: &str, #[case] port: u16) {
        let e = classify(text).unwrap();
        assert_eq!((e.host_ip.as_deref(), e.host_port), (Some(ip), Some(port)), "{text}");
        assert_eq!(e.engine_versions, EngineRange::new(Some("28.0.0"), Some("28")));
    }

    #[test]
    fn api_clients_json_body_is_unwrapped() {
        // What Docker.DotNet and docker-java print: the daemon's JSON error body.
        let e = classify(
            r#"Docker API responded with status code=InternalServerError, response={"message":"failed to set up container networking: driver failed programming external connectivity on endpoint pg (0123456789ab): error while calling RootlessKit PortManager.AddPort(): listen tcp4 0.0.0.0:34294: bind: address already in use"}"#,
        )
        .unwrap();
        assert_eq!(e.stage, Stage::HostBind);
        assert!(e.rootless);
        assert_eq!(e.host_port, Some(34294));
        assert_eq!(e.container.as_deref(), Some("pg"));
        assert_eq!(e.endpoint_id.as_deref(), Some("0123456789ab"));
        assert!(e.text.starts_with("failed to set up container networking"), "{}", e.text);
    }

    #[test]
    fn docker_py_wrapper_is_unwrapped() {
        let e = classify(
            r#"500 Server Error for http+docker://localhost/v1.47/containers/abc/start: Internal Server Error ("driver failed programming external connectivity on endpoint web (0123456789abcdef): Bind for 0.0.0.0:8080 failed: port is already allocated")"#,
        )
        .unwrap();
        assert_eq!(e.stage, Stage::Allocated);
        assert_eq!(e.host_port, Some(8080));
        assert_eq!(e.container.as_deref(), Some("web"));
    }

    #[test]
    fn error_starting_container_names_the_container() {
        let e = classify(
            "Error starting container api-1: listen tcp4 0.0.0.0:9000: bind: address already in use",
        )
        .unwrap();
        assert_eq!(e.container.as_deref(), Some("api-1"));
        assert_eq!(e.stage, Stage::HostBind);
    }

    #[test]
    fn unknown_wording_still_yields_its_address() {
        let e = classify("something new happened to 10.1.2.3:7000 while publishing").unwrap();
        assert_eq!(e.stage, Stage::Unknown);
        assert_eq!((e.host_ip.as_deref(), e.host_port), (Some("10.1.2.3"), Some(7000)));
        assert!(e.is_recognised());
        let nothing = classify("the daemon is sad").unwrap();
        assert!(!nothing.is_recognised());
    }

    #[test]
    fn winsock_address_not_valid_is_windows_and_not_a_conflict() {
        // Go on Windows words WSAEADDRNOTAVAIL this way (bepass-org/oblivion-desktop#981 shows it
        // for `listen udp`); Docker Desktop passes the listener's error through.
        let e = classify(
            "Ports are not available: exposing port TCP 192.168.2.2:443 -> 0.0.0.0:0: listen tcp 192.168.2.2:443: \
             bind: The requested address is not valid in its context.",
        )
        .unwrap();
        assert_eq!(e.stage, Stage::AddressUnavailable);
        assert_eq!(e.platform, Some(Platform::Windows));
        assert_eq!(e.reporter, Some(Reporter::DockerDesktop));
    }

    #[test]
    fn the_slirp4netns_address_counts_only_in_the_daemons_bind() {
        // docker-proxy binding a LAN address that happens to be 10.0.2.100 says nothing about rootless.
        let proxy = classify(
            "driver failed programming external connectivity on endpoint web: Error starting userland proxy: \
             listen tcp4 10.0.2.100:3000: bind: address already in use",
        )
        .unwrap();
        assert!(!proxy.rootless && proxy.rootless_sign.is_none());
        // Without EADDRINUSE the sign stays, but it points at no release.
        let other = classify("failed to bind host port 10.0.2.100:3000/tcp: cannot assign requested address")
            .unwrap();
        assert!(other.rootless);
        let sign = other.rootless_sign.expect("a sign");
        assert_eq!(sign.kind, RootlessSignKind::Slirp4netnsAddress);
        assert!(sign.engine_versions.is_open());
    }

    #[test]
    fn a_listen_failure_without_an_address_is_still_a_29_bind() {
        let e = classify(
            "failed to set up container networking: driver failed programming external connectivity on endpoint \
             web: failed to listen on tcp socket: address already in use",
        )
        .unwrap();
        assert_eq!(e.stage, Stage::HostBind);
        assert_eq!(e.engine_versions, EngineRange::new(Some("29.0.0"), None));
    }

    #[test]
    fn a_chain_missing_without_a_table_is_filter() {
        let e = classify(
            "Unable to enable OPEN PORT rule: (iptables failed: iptables --wait -I DOCKER ! -i docker0 -o docker0 -p tcp \
             -d 172.17.0.2 --dport 80 -j ACCEPT: iptables: No chain/target/match by that name. (exit status 1))",
        )
        .unwrap();
        // The filter rule's `-d` and `--dport` are the container's, not the host's.
        assert_eq!((e.host_ip, e.host_port), (None, None));
        let fw = e.firewall_error.expect("a firewall reason");
        assert_eq!(
            (fw.kind, fw.table.as_deref(), fw.chain.as_deref()),
            (FirewallErrorKind::ChainMissing, Some("filter"), Some("DOCKER"))
        );
    }

    #[test]
    fn permission_denied_without_a_bind_is_not_access_denied() {
        let e = classify("open /etc/docker/daemon.json: permission denied").unwrap();
        assert_eq!(e.stage, Stage::Unknown);
    }
}
