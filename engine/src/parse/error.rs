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
use std::sync::LazyLock;

use regex::{Captures, Regex};
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

/// nft prints the rule it refused on the line after its complaint: that line names the table,
/// chain and port, so it belongs to the complaint.
fn join_nft_echo(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::with_capacity(lines.len());
    for l in lines {
        let echo = l.body.starts_with("add rule ") || l.body.starts_with("insert rule ");
        match out.last_mut() {
            Some(prev)
                if echo
                    && prev
                        .body
                        .to_lowercase()
                        .ends_with("could not process rule: no such file or directory") =>
            {
                prev.body.push_str(": ");
                prev.body.push_str(&l.body);
            }
            _ => out.push(l),
        }
    }
    out
}

/// One line of the pasted text that survived the noise filter.
#[derive(Debug, Clone)]
struct Line {
    /// The daemon's message with the CLI's and compose's wrapping removed.
    body: String,
    /// A container named by the wrapping itself (`ERROR: for NAME`, `Container NAME`,
    /// `failed to start containers: NAME`), used when the daemon's message names none.
    container: Option<String>,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?} does not compile: {e}"))
}

static ANSI: LazyLock<Regex> = LazyLock::new(|| re(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]"));
/// Lines that never carry the daemon's message.
static NOISE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)^(?:",
        // The CLI's tails: 20.10 (`See 'docker run --help'.`) and 23+ (`Run 'docker run --help' ...`).
        r"run '[^']*--help' for more information\.?",
        r"|see '[^']*--help'\.?",
        // The CLI's log line when an attached run fails, as a TTY shows it and as a pipe does.
        r"|erro\[\d+\].*",
        r#"|time="[^"]*" level=\w+ msg=.*"#,
        // `docker run -d` prints the new container's id before the start fails (seen with 2>&1).
        r"|[0-9a-f]{64}",
        // docker-compose v1 progress and summary lines.
        r"|(?:creating|starting|recreating|stopping|removing|pulling) \S+ \.\.\.(?: (?:done|error))?",
        r#"|creating network "[^"]*" with (?:the default|driver) .*"#,
        r"|(?:error: )?encountered errors while bringing up the project\.?",
        r"|host is already in use by another container",
        // docker compose v2 progress: `[+] Running 1/2` and lines for steps that did not fail.
        r"|\[\+\] .*",
        r"|\S{0,2} *(?:network|volume|image|container) \S+\s+(?:created|creating|started|starting|running|waiting|healthy|recreate|recreated|stopping|stopped|removed|removing|pulling|pulled|built|building|exited)\b.*",
        r")$",
    ))
});
/// `Error: failed to start containers: a, b` (`docker start`): not the cause, but it names the container.
static START_FAILED: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^error: failed to start containers?: ([\w.-]+)"));
/// Wrapping removed from the front of a line, repeatedly, each with the container it may name.
static PREFIXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // `docker: `, `/usr/bin/docker-current: `, `docker.exe: `.
        r"^\S*docker(?:-current)?(?:\.exe)?: ",
        r"(?i)^error response from daemon: ",
        // docker-compose v1: `ERROR: for NAME  Cannot start service SVC: ...`.
        r"(?i)^error: for (?P<c>\S+)\s+(?:cannot start service \S+: )?",
        // docker compose v2: ` ✘ Container NAME  Error response ...`.
        r"^\S{0,2}\s*Container (?P<c>\S+)\s+",
        // Docker 1.x: `Cannot start container ID: ...`.
        r"(?i)^cannot start container (?P<c>[0-9a-f]+): ",
        r"(?i)^error starting container (?P<c>[\w.-]+): ",
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});
/// API clients print the daemon's JSON body (`{"message":"..."}`) or wrap it (`Internal Server Error ("...")`).
static JSON_MESSAGE: LazyLock<Regex> = LazyLock::new(|| re(r#""message"\s*:\s*"((?:[^"\\]|\\.)*)""#));
static QUOTED_REASON: LazyLock<Regex> = LazyLock::new(|| re(r#"Server Error \("(.*)"\)\s*$"#));
static COMPOSE_DURATION: LazyLock<Regex> = LazyLock::new(|| re(r"\s{2,}\d+(?:\.\d+)?s$"));
/// The same `docker start` tail when a paste lost the line break before it.
static START_FAILED_INLINE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\s+error: failed to start containers?: ([\w.-]+)[\w., -]*$"));
static ERROR_STARTING: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)error starting container ([\w.-]+)"));

/// ANSI colours and carriage returns out; CRLF and bare CR (compose v1 redraws) become line breaks.
fn strip_terminal(input: &str) -> String {
    ANSI.replace_all(input, "").replace("\r\n", "\n").replace('\r', "\n")
}

fn clean_lines(input: &str) -> Vec<Line> {
    let plain = strip_terminal(input);
    // iptables' own output ends with a newline, so the daemon's `(exit status 1)` lands on the next line.
    let mut joined: Vec<String> = Vec::new();
    for raw in plain.split('\n') {
        let t = raw.trim();
        match joined.last_mut() {
            Some(prev) if t.starts_with("(exit status") => {
                prev.push(' ');
                prev.push_str(t);
            }
            _ => joined.push(t.to_owned()),
        }
    }
    let mut out = Vec::new();
    for line in joined {
        if line.is_empty() || NOISE.is_match(&line) {
            continue;
        }
        if let Some(c) = START_FAILED.captures(&line) {
            out.push(Line { body: String::new(), container: Some(c[1].to_owned()) });
            continue;
        }
        out.push(unwrap_line(&line));
    }
    out
}

fn unwrap_line(line: &str) -> Line {
    let mut body = line.to_owned();
    let mut container = None;
    if let Some(m) = JSON_MESSAGE.captures(&body).map(|c| unescape_json(&c[1])) {
        body = m;
    } else if let Some(m) = QUOTED_REASON.captures(&body).map(|c| c[1].to_owned()) {
        body = m;
    }
    let mut stripped = true;
    while stripped {
        stripped = false;
        for p in PREFIXES.iter() {
            if let Some(c) = p.captures(&body) {
                if container.is_none() {
                    container = c.name("c").map(|m| m.as_str().to_owned());
                }
                body = body[c.get(0).map_or(0, |m| m.end())..].to_owned();
                stripped = true;
            }
        }
    }
    if let Some(c) = START_FAILED_INLINE.captures(&body) {
        let name = c[1].to_owned();
        body.truncate(c.get(0).map_or(body.len(), |m| m.start()));
        container = container.or(Some(name));
    }
    if container.is_none() {
        container = ERROR_STARTING.captures(&body).map(|c| c[1].to_owned());
    }
    let body = COMPOSE_DURATION.replace(&body, "");
    let body =
        body.trim().trim_matches(|c| matches!(c, '"' | '\'' | '`')).trim_end_matches(['.', '。']).trim();
    Line { body: body.to_owned(), container }
}

fn unescape_json(s: &str) -> String {
    serde_json::from_str::<String>(&format!("\"{s}\"")).unwrap_or_else(|_| s.replace("\\n", "\n"))
}

/// Where a text names the host side of the publish.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostAddr {
    ip: Option<String>,
    port: Option<u16>,
    proto: Option<Proto>,
}

/// The shapes that carry the host address, most specific first. Each knows how to read its match.
struct AddrPattern {
    re: Regex,
    read: fn(&Captures<'_>) -> Option<HostAddr>,
}

static ENDPOINT: LazyLock<Regex> =
    LazyLock::new(|| re(r"on endpoint ([^\s():]+)(?: \(([0-9a-fA-F]{12,64})\))?"));
static PATTERNS: LazyLock<Vec<AddrPattern>> = LazyLock::new(|| {
    vec![
        // 29.x: `failed to bind host port 0.0.0.0:8080/tcp` (a netip.AddrPort, IPv6 in brackets).
        AddrPattern { re: re(r"failed to bind host port (\S+?)/(tcp|udp|sctp)\b"), read: read_addr_proto },
        // 28.x: `failed to bind host port for 0.0.0.0:8080:172.17.0.2:80/tcp`, or with a range,
        // `failed to bind host port 8081 for 0.0.0.0:8080-8090:172.17.0.2:80/tcp`.
        AddrPattern {
            re: re(r"failed to bind host port (?:(\d+) )?for (\S+?)/(tcp|udp|sctp)\b"),
            read: read_binding_spec,
        },
        // 27.x: `failed to bind port 0.0.0.0:8080/tcp: Error starting userland proxy: ...`.
        AddrPattern { re: re(r"failed to bind port (\S+?)/(tcp|udp|sctp)\b"), read: read_addr_proto },
        // The allocator, all versions: `Bind for 0.0.0.0:8080 failed`, `Bind for :::8080 failed`.
        AddrPattern { re: re(r"(?i)bind for (\S+?) failed: port is already allocated"), read: read_addr },
        // Docker Desktop: `exposing port TCP 0.0.0.0:8080 -> 0.0.0.0:0`.
        AddrPattern { re: re(r"(?i)exposing port (tcp|udp) (\S+?) ->"), read: read_proto_addr },
        // Go's net.OpError: `listen tcp4 0.0.0.0:8080: bind: ...`, `listen tcp [::]:8080: ...`.
        AddrPattern {
            re: re(r"listen (tcp|udp|sctp)(?:4|6)? (\[[^\]\s]*\]:\d+|[^\s\[\]]*:\d+)\b"),
            read: read_proto_addr,
        },
        // Docker for Mac before "Ports are not available": `Bind for 0.0.0.0:80: unexpected error`.
        AddrPattern { re: re(r"(?i)bind for (\S+?): unexpected error"), read: read_addr },
        // RootlessKit: `cannot expose privileged port 80, ...` names only the port.
        AddrPattern {
            re: re(r"cannot expose privileged port (\d+)"),
            read: |c| Some(HostAddr { ip: None, port: port(&c[1]), proto: None }),
        },
        // 29.x, before the bind: `failed to create socket for [::]:8080/tcp: address family ...`.
        AddrPattern {
            re: re(r"failed to create socket for ([^\s/]+)/(tcp|udp|sctp)\b"),
            read: read_addr_proto,
        },
        // 28.x, the same step: `failed to create socket for userland proxy for [::]:8080:...`.
        AddrPattern {
            re: re(r"failed to create socket for userland proxy for (?:(\d+) )?(\S+?)/(tcp|udp|sctp)\b"),
            read: read_binding_spec,
        },
    ]
});
/// The DNAT rule iptables refused: `-p tcp -d 0/0 --dport 8080 -j DNAT --to-destination 172.17.0.2:80`.
/// The `--to-destination` address is the container's, never the host's.
static FW_DPORT: LazyLock<Regex> = LazyLock::new(|| re(r"--dport (\d+)"));
static NFT_DPORT: LazyLock<Regex> = LazyLock::new(|| re(r"\b(tcp|udp|sctp) dport (\d+)\b"));
static FW_DEST: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-d (\S+)"));
static FW_PROTO: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-p (tcp|udp|sctp)\b"));
/// Last resort for unknown wordings: the first `IPv4:port` or `[IPv6]:port`.
static ANY_ADDR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:^|[^\w.:])(\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}|\[[0-9A-Fa-f:.]+(?:%\w+)?\]:\d{1,5})\b")
});
/// Words that make an errno phrase about a socket bind rather than, say, an IP address lease.
static BIND_CONTEXT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:bind|listen|ports?)\b"));

fn port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

fn proto(s: &str) -> Option<Proto> {
    s.parse().ok()
}

/// Split `0.0.0.0:8080`, `[::]:8080`, `:::8080`, `::1:8080`, `:8080` into the address as written
/// (brackets dropped; empty means "no address") and the port.
fn split_addr(s: &str) -> Option<(Option<String>, Option<u16>)> {
    let (host, p) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, tail) = rest.split_once(']')?;
            (h, tail.strip_prefix(':')?)
        }
        None => s.rsplit_once(':')?,
    };
    let p = p.parse::<u16>().ok()?;
    if host.is_empty() {
        return Some((None, port_nonzero(p)));
    }
    valid_ip(host).then(|| (Some(host.to_owned()), port_nonzero(p)))
}

fn port_nonzero(p: u16) -> Option<u16> {
    (p != 0).then_some(p)
}

fn valid_ip(s: &str) -> bool {
    s.split('%').next().is_some_and(|a| a.parse::<IpAddr>().is_ok())
}

fn read_addr(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[1])?;
    Some(HostAddr { ip, port, proto: None })
}

fn read_addr_proto(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[1])?;
    Some(HostAddr { ip, port, proto: proto(&c[2]) })
}

fn read_proto_addr(c: &Captures<'_>) -> Option<HostAddr> {
    let (ip, port) = split_addr(&c[2])?;
    Some(HostAddr { ip, port, proto: proto(&c[1]) })
}

/// 28.x prints libnetwork's PortBinding, `HostIP:HostPort:ContainerIP:ContainerPort`: IPv6 addresses
/// are bracketed in the releases read, but the split below also copes with bare ones (`:::8080:...`).
fn read_binding_spec(c: &Captures<'_>) -> Option<HostAddr> {
    let spec = &c[2];
    let proto = proto(&c[3]);
    let explicit = c.get(1).and_then(|m| port(m.as_str()));
    let (ip, rest) = if let Some(inner) = spec.strip_prefix('[') {
        let (h, tail) = inner.split_once(']')?;
        (h.to_owned(), tail.strip_prefix(':')?)
    } else {
        // The first colon after which a port (or range) and another field follow, with a valid
        // address before it.
        spec.match_indices(':').find_map(|(i, _)| {
            let (h, tail) = (&spec[..i], &spec[i + 1..]);
            let digits = tail.split(':').next()?;
            let ok = valid_ip(h) && tail.contains(':') && digits.split('-').all(|d| d.parse::<u16>().is_ok());
            ok.then(|| (h.to_owned(), tail))
        })?
    };
    if !valid_ip(&ip) {
        return None;
    }
    let host_port = rest.split(':').next()?.split('-').next().and_then(port);
    Some(HostAddr { ip: Some(ip), port: explicit.or(host_port), proto })
}

fn bind_error(lower: &str) -> Option<BindError> {
    if lower.contains("address already in use")
        || lower.contains("only one usage of each socket address")
        || lower.contains("eaddrinuse")
    {
        Some(BindError::AddressInUse)
    } else if lower.contains("cannot assign requested address")
        || lower.contains("the requested address is not valid in its context")
        || lower.contains("eaddrnotavail")
    {
        Some(BindError::AddressNotAvailable)
    } else if lower.contains("address family not supported") {
        Some(BindError::FamilyNotSupported)
    } else if lower.contains("permission denied")
        || lower.contains("forbidden by its access permissions")
        || lower.contains("eacces")
    {
        Some(BindError::PermissionDenied)
    } else {
        None
    }
}

fn is_firewall(lower: &str) -> bool {
    [
        "iptables failed",
        "ip6tables failed",
        "unable to enable dnat rule",
        "no chain/target/match",
        // nft's own refusal of a rule for a table or chain that is gone.
        "could not process rule",
        "nftables",
        "nf_tables",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// Classify one unwrapped line.
fn read_line(body: &str) -> DaemonError {
    let lower = body.to_lowercase();
    let mut e = DaemonError { text: body.to_owned(), ..DaemonError::default() };
    if let Some(c) = ENDPOINT.captures(body) {
        e.container = Some(c[1].to_owned());
        e.endpoint_id = c.get(2).map(|m| m.as_str().to_ascii_lowercase());
    }
    // RootlessKit's own port manager speaking; `rootlesskit-docker-proxy` is the proxy's name.
    let port_manager =
        lower.contains("portmanager.addport") || lower.contains("cannot expose privileged port");
    let missing_rlk_proxy = lower.contains("rootlesskit-docker-proxy")
        && ["executable file not found", "no such file or directory", "not installed"]
            .iter()
            .any(|m| lower.contains(m));
    e.rootless = lower.contains("rootlesskit") || port_manager;
    e.platform = WINDOWS_WORDING.iter().any(|w| lower.contains(w)).then_some(Platform::Windows);
    let desktop = lower.contains("ports are not available")
        || lower.contains("unexpected error (failure eaddrinuse)")
        || lower.contains("error starting userland proxy: bind for");
    let firewall = is_firewall(&lower);
    e.bind_error = bind_error(&lower);

    // The address: the first shape that matches, then the protocol from any shape that states it.
    let mut matched: Vec<usize> = Vec::new();
    let mut addr: Option<HostAddr> = None;
    for (i, p) in PATTERNS.iter().enumerate() {
        let Some(found) = p.re.captures(body).and_then(|c| (p.read)(&c)) else { continue };
        matched.push(i);
        match &mut addr {
            None => addr = Some(found),
            Some(a) => {
                a.ip = a.ip.take().or(found.ip);
                a.port = a.port.or(found.port);
                a.proto = a.proto.or(found.proto);
            }
        }
    }
    // Only the DNAT rule names the host side; the filter rules match the container's address and port.
    if firewall && addr.is_none() && body.contains("-j DNAT") {
        let dport = FW_DPORT.captures(body).and_then(|c| port(&c[1]));
        if dport.is_some() {
            // `-d 0/0` is how libnetwork writes "any address": the user published on 0.0.0.0.
            let ip = FW_DEST.captures(body).map(|c| match &c[1] {
                "0/0" | "0.0.0.0/0" => "0.0.0.0".to_owned(),
                "::/0" => "::".to_owned(),
                other => other.trim_end_matches("/32").trim_end_matches("/128").to_owned(),
            });
            let proto = FW_PROTO.captures(body).and_then(|c| proto(&c[1]));
            addr = Some(HostAddr { ip, port: dport, proto });
        }
    }
    // nft echoes the rule it refused in its own syntax: `tcp dport 8080 dnat to 172.18.0.2:80`.
    if firewall && addr.is_none() && body.contains(" dnat to ") {
        if let Some(c) = NFT_DPORT.captures(body) {
            addr = Some(HostAddr { ip: None, port: port(&c[2]), proto: proto(&c[1]) });
        }
    }
    if addr.is_none() && !firewall {
        // Unknown wordings still name an address now and then; a firewall text names the
        // container's, which must not pass for the host's.
        addr = ANY_ADDR.captures(body).and_then(|c| split_addr(&c[1])).map(|(ip, port)| HostAddr {
            ip,
            port,
            proto: None,
        });
    }
    if let Some(a) = addr {
        e.host_ip = a.ip;
        e.host_port = a.port;
        if let Some(p) = a.proto {
            e.proto = p;
            e.proto_stated = true;
        }
    }

    let about_bind = e.host_port.is_some() || BIND_CONTEXT.is_match(body);
    let daemon_bind =
        [DAEMON_29, DAEMON_28, DAEMON_29_SOCKET, DAEMON_28_SOCKET].iter().any(|i| matched.contains(i));
    let slirp_address = daemon_bind && e.host_ip.as_deref() == Some(SLIRP4NETNS_CHILD_IP);
    e.rootless |= slirp_address;
    e.stage = if lower.contains("cannot expose privileged port") {
        Stage::AccessDenied
    } else if lower.contains("port is already allocated") || lower.contains("all ports are allocated") {
        Stage::Allocated
    } else if firewall {
        Stage::Firewall
    } else {
        match e.bind_error {
            Some(BindError::PermissionDenied) if about_bind => Stage::AccessDenied,
            Some(BindError::AddressNotAvailable | BindError::FamilyNotSupported) if about_bind => {
                Stage::AddressUnavailable
            }
            Some(_) if about_bind => Stage::HostBind,
            _ if lower.contains("ports are not available") => Stage::HostBind,
            _ => Stage::Unknown,
        }
    };

    let proxy_phrase = lower.contains("starting userland proxy");
    let proxy_28 = lower.contains("failed to start userland proxy for port mapping");
    e.reporter = if missing_rlk_proxy {
        Some(Reporter::UserlandProxy)
    } else if port_manager {
        Some(Reporter::Rootlesskit)
    } else if desktop {
        Some(Reporter::DockerDesktop)
    } else {
        match e.stage {
            Stage::Allocated => Some(Reporter::Allocator),
            Stage::Firewall if lower.contains("iptables") => Some(Reporter::Iptables),
            Stage::Firewall => Some(Reporter::Nftables),
            _ if proxy_phrase || proxy_28 => Some(Reporter::UserlandProxy),
            _ if daemon_bind => Some(Reporter::Daemon),
            // `userland-proxy: false`: the daemon's own placeholder listener refused the bind.
            Stage::HostBind | Stage::AccessDenied if matched.contains(&LISTEN) => Some(Reporter::Daemon),
            _ => None,
        }
    };

    e.engine_versions = engine_versions(&lower, &matched, body, e.rootless, desktop, proxy_phrase, proxy_28);
    e.rootless_sign = if missing_rlk_proxy {
        // Only engines up to 27.x run the binary: 28.0 talks to RootlessKit's API itself.
        let up_to_27 = EngineRange::new(None, Some("27"));
        e.engine_versions = e.engine_versions.intersect(&up_to_27).unwrap_or_default();
        Some(RootlessSign {
            kind: RootlessSignKind::MissingRootlesskitDockerProxy,
            engine_versions: up_to_27,
        })
    } else if slirp_address {
        let regression = e.bind_error == Some(BindError::AddressInUse);
        Some(RootlessSign {
            kind: RootlessSignKind::Slirp4netnsAddress,
            engine_versions: if regression {
                EngineRange::new(Some("29.0.0"), Some("29.1.1"))
            } else {
                EngineRange::default()
            },
        })
    } else if port_manager {
        Some(RootlessSign { kind: RootlessSignKind::PortManager, engine_versions: e.engine_versions.clone() })
    } else {
        None
    };
    if e.stage == Stage::Firewall {
        e.firewall_error = firewall_error(body, &lower);
    }
    e
}

/// The child address RootlessKit's slirp4netns network gives its namespace (10.0.2.0/24, .100).
const SLIRP4NETNS_CHILD_IP: &str = "10.0.2.100";

/// Winsock's sentences for WSAEACCES, WSAEADDRINUSE and WSAEADDRNOTAVAIL, lower-cased.
const WINDOWS_WORDING: &[&str] = &[
    "forbidden by its access permissions",
    "only one usage of each socket address",
    "the requested address is not valid in its context",
];

static FW_TABLE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-t (\w+)"));
static FW_CHAIN: LazyLock<Regex> = LazyLock::new(|| re(r"(?:^|\s)-[AIDCR] (\S+)"));
/// Older iptables-nft: `iptables v1.8.2 (nf_tables): Chain 'DOCKER' does not exist`.
static FW_NO_CHAIN: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)chain '([^']+)' does not exist"));

/// The rule nft echoes under its error: `add rule ip docker-bridges nat-prerouting-and-output ...`.
static NFT_RULE: LazyLock<Regex> = LazyLock::new(|| re(r"(?:add|insert) rule (?:ip|ip6|inet) (\S+) (\S+)"));
/// Targets Docker's rules jump to; no chain of Docker's has these names.
const IPTABLES_TARGETS: &[&str] = &["ACCEPT", "DROP", "RETURN", "DNAT", "SNAT", "MASQUERADE", "REDIRECT"];

/// A missing chain, with the table and chain of the refused command.
fn firewall_error(body: &str, lower: &str) -> Option<FirewallError> {
    // nft names no chain in its complaint, only in the rule it echoes: `add rule ip TABLE CHAIN ...`.
    if lower.contains("could not process rule: no such file or directory") {
        let rule = NFT_RULE.captures(body);
        return Some(FirewallError {
            kind: FirewallErrorKind::ChainMissing,
            table: rule.as_ref().map(|c| c[1].to_owned()),
            chain: rule.as_ref().map(|c| c[2].to_owned()),
        });
    }
    let named = FW_NO_CHAIN.captures(body).map(|c| c[1].to_owned());
    if named.is_none() && !lower.contains("no chain/target/match by that name") {
        return None;
    }
    let command =
        lower.contains("iptables").then(|| FW_CHAIN.captures(body).map(|c| c[1].to_owned())).flatten();
    let table = FW_TABLE
        .captures(body)
        .map(|c| c[1].to_owned())
        .or_else(|| command.as_ref().map(|_| "filter".to_owned()));
    let kind = match &named {
        Some(n) if IPTABLES_TARGETS.contains(&n.as_str()) => FirewallErrorKind::TargetMissing,
        _ => FirewallErrorKind::ChainMissing,
    };
    Some(FirewallError { kind, table, chain: named.or(command) })
}

// Indexes into PATTERNS, for the version clues.
const DAEMON_29: usize = 0;
const DAEMON_28: usize = 1;
const WRAPPER_27: usize = 2;
const LISTEN: usize = 5;
const DAEMON_29_SOCKET: usize = 8;
const DAEMON_28_SOCKET: usize = 9;

static LISTEN_FAMILY: LazyLock<Regex> = LazyLock::new(|| re(r"listen (?:tcp|udp|sctp)([46]?) "));

/// Intersect the releases every version-specific phrase allows (see the table at the top).
fn engine_versions(
    lower: &str,
    matched: &[usize],
    body: &str,
    rootless: bool,
    desktop: bool,
    proxy_phrase: bool,
    proxy_28: bool,
) -> EngineRange {
    let mut clues: Vec<EngineRange> = Vec::new();
    if lower.contains("failed to set up container networking") {
        clues.push(EngineRange::new(Some("28.0.1"), None));
    }
    if matched.contains(&DAEMON_29)
        || matched.contains(&DAEMON_29_SOCKET)
        || lower.contains("failed to listen on tcp socket")
    {
        clues.push(EngineRange::new(Some("29.0.0"), None));
    }
    if matched.contains(&DAEMON_28) || matched.contains(&DAEMON_28_SOCKET) {
        clues.push(EngineRange::new(Some("28.0.0"), Some("28")));
    }
    if proxy_28 {
        clues.push(EngineRange::new(Some("28.0.0"), None));
    }
    let wrapper_27 = matched.contains(&WRAPPER_27);
    if wrapper_27 {
        clues.push(EngineRange::new(Some("27.0.0"), Some("27")));
    } else if proxy_phrase && !proxy_28 {
        // The proxy's own phrase without 27's wrapper; 28 stopped starting proxies this way.
        clues.push(EngineRange::new(None, Some("26")));
    }
    if lower.contains("rootlesskit portmanager.addport") {
        clues.push(EngineRange::new(Some("28.0.0"), None));
    } else if lower.contains("portmanager.addport") {
        clues.push(EngineRange::new(None, Some("27")));
    }
    if !rootless && !desktop && matched.contains(&LISTEN) {
        if let Some(c) = LISTEN_FAMILY.captures(body) {
            if c[1].is_empty() {
                clues.push(EngineRange::new(None, Some("20.10.1")));
            } else {
                clues.push(EngineRange::new(Some("20.10.2"), None));
                if !wrapper_27 && !proxy_28 {
                    // Unwrapped `listen tcp4` (the proxy phrase or `userland-proxy: false`) ends with 26.
                    clues.push(EngineRange::new(None, Some("26")));
                }
            }
        }
    }
    clues.iter().try_fold(EngineRange::default(), |acc, c| acc.intersect(c)).unwrap_or_default()
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
