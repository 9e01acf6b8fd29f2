//! The steps a machine runs for an action, and shell rendering (quoting, joining) for the lines
//! a person copies.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::evidence::{Backend, Family};
use crate::port::{PortQuery, Proto};

/// Where a publish should bind: an address, or the host's own address (filled in where it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "ip")]
pub enum BindAddress {
    Ip(IpAddr),
    /// The host's LAN address, which the rule could not see (written `<host-ip>`).
    HostIp,
}

/// The shell a `Foreign` action is typed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForeignOs {
    /// An elevated Windows command prompt or PowerShell.
    Windows,
    /// A macOS terminal.
    Macos,
}

/// One thing a machine does to carry out an action. Everything runs as root on the host that the
/// diagnosis read; a step that needs a service manager names the service and its process, so a
/// host without systemd (a container, the lab's environments) can do the same by other means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Run this argv.
    Run { argv: Vec<String> },
    /// Write a file with this content (creating or replacing it).
    WriteFile { path: String, content: String },
    /// Replace line `line` (1-based) of `path`, which must read `old`, with `new`.
    EditLine { path: String, line: usize, old: String, new: String },
    /// Restart the Docker daemon (`systemctl [--user] restart docker`).
    RestartDaemon { rootless: bool },
    /// Start the Docker daemon.
    StartDaemon { rootless: bool },
    /// Stop a service (`systemctl stop UNIT`); `process` is its program's name.
    StopService { unit: String, process: String },
    /// Restart a service.
    RestartService { unit: String, process: String },
    /// Publish the same container again on this address and port (the user's `docker run -p`).
    Publish { address: BindAddress, port: u16, proto: Proto },
    /// Run `portwhy suggest QUERY` and publish on the port it prints.
    SuggestPort { query: PortQuery },
    /// Install another engine release and restart the daemon.
    UpgradeEngine { to: String },
    /// Restart a rootless engine with `DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=DRIVER`.
    SetRootlessPortDriver { driver: String },
    /// A line for another operating system; no Linux host can run it.
    Foreign { os: ForeignOs, line: String },
}

pub(super) fn argv<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

pub(super) fn run<const N: usize>(words: [&str; N]) -> Step {
    Step::Run { argv: argv(words) }
}

/// `docker` with `-H HOST` when the container belongs to another daemon.
pub(super) fn docker_argv(docker_host: Option<&str>, rest: &[&str]) -> Vec<String> {
    let mut out = vec!["docker".to_owned()];
    if let Some(h) = docker_host {
        out.extend(["-H".to_owned(), h.to_owned()]);
    }
    out.extend(rest.iter().map(|s| (*s).to_owned()));
    out
}

/// The tool that reads and writes one backend's rules, by family.
pub fn backend_tool(backend: Backend, family: Family) -> &'static str {
    match (backend, family) {
        (Backend::IptablesLegacy, Family::Ipv4) => "iptables-legacy",
        (Backend::IptablesLegacy, Family::Ipv6) => "ip6tables-legacy",
        (Backend::IptablesNft, Family::Ipv4) => "iptables-nft",
        (Backend::IptablesNft, Family::Ipv6) => "ip6tables-nft",
        (Backend::Nftables, _) => "nft",
    }
}

impl Step {
    /// One step as a shell line.
    pub fn render(&self) -> String {
        match self {
            Self::Run { argv } => join(argv),
            Self::WriteFile { path, content } => {
                format!("printf {} > {}", quote(&printf_escape(content)), quote(path))
            }
            // An edit a person makes in their editor; a sed line would hide it behind escaping.
            Self::EditLine { path, line, old, new } => {
                format!("edit {path} line {line}: `{}` -> `{}`", old.trim(), new.trim())
            }
            Self::RestartDaemon { rootless: false } => "systemctl restart docker".to_owned(),
            Self::RestartDaemon { rootless: true } => "systemctl --user restart docker".to_owned(),
            Self::StartDaemon { rootless: false } => "systemctl start docker".to_owned(),
            Self::StartDaemon { rootless: true } => "systemctl --user start docker".to_owned(),
            Self::StopService { unit, .. } => format!("systemctl stop {}", quote(unit)),
            Self::RestartService { unit, .. } => format!("systemctl restart {}", quote(unit)),
            Self::Publish { address, port, proto } => {
                let addr = match address {
                    BindAddress::Ip(IpAddr::V6(a)) => format!("[{a}]"),
                    BindAddress::Ip(a) => a.to_string(),
                    BindAddress::HostIp => "<host-ip>".to_owned(),
                };
                let proto = if *proto == Proto::Tcp { String::new() } else { format!("/{proto}") };
                format!("docker run -p {addr}:{port}:<container-port>{proto} ...")
            }
            Self::SuggestPort { query } => format!("portwhy suggest {query}"),
            Self::UpgradeEngine { to } => {
                format!("upgrade Docker Engine to {to} or later (https://docs.docker.com/engine/install/)")
            }
            Self::SetRootlessPortDriver { driver } => {
                format!("DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER={} dockerd-rootless.sh", quote(driver))
            }
            Self::Foreign { line, .. } => line.clone(),
        }
    }
}

/// Shell-quotes one word for a line a person copies.
pub fn quote(word: &str) -> String {
    // shlex refuses only NUL bytes, which no argument of ours can hold; fall back to a plain
    // single-quoted form rather than lose the word.
    shlex::try_quote(word)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\'', r"'\''")))
}

/// Joins an argv into one shell line.
pub fn join(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, w) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{}", quote(w));
    }
    out
}

/// Escapes text for use as a printf format: `%` and `\` literal, newlines as `\n`.
pub(super) fn printf_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "%%").replace('\n', "\\n")
}

// ---- Remedies more than one rule offers, written once so they read the same everywhere. ----
