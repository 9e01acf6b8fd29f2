//! Remedies as typed actions: what to do, the steps a machine runs, and the line a person copies.
//!
//! A rule proposes `Remedy` values. Each carries an `Action` (a typed description: which pid, which
//! rule handle, which address), the `command` rendered from it, what the command can break (`risk`,
//! `effect`) and whether it removes the cause or only steps around it (`purpose`). The lab runs the
//! same actions inside its environments by matching on them, so what is proven there is the command
//! a user would copy, and nothing ever re-parses the rendered text.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::evidence::{Backend, Family};
use crate::port::{PortQuery, Proto};

/// What a command can break on a real host, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Nothing that runs loses anything: a read-only check, a rule or a proxy that serves no one,
    /// a publish on another port or address.
    Safe,
    /// Something running stops or restarts: a process and what it serves, a container, the daemon
    /// (and with it every container unless live-restore is on), host DNS.
    Disruptive,
    /// State goes that a restart does not bring back: a container's writable layer, rules that
    /// something still routes through.
    Destructive,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Disruptive => "disruptive",
            Self::Destructive => "destructive",
        }
    }
}

/// Why a remedy is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Removes the cause, so the same publish on the same port works (the lab proves these).
    Fix,
    /// Steps around the cause (another port or address); the cause stays.
    Workaround,
    /// Read-only: shows what the evidence could not, changes nothing.
    Check,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fix => "fix",
            Self::Workaround => "workaround",
            Self::Check => "check",
        }
    }
}

/// One remedy: the typed action, the line a person copies, what it does and what it can break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remedy {
    pub action: Action,
    /// `action.command()`, kept in the JSON for readers that do not know the action types.
    pub command: String,
    /// What it does and what it costs, in words.
    pub effect: String,
    pub risk: Risk,
    pub purpose: Purpose,
}

impl Remedy {
    fn new(purpose: Purpose, risk: Risk, action: Action, effect: impl Into<String>) -> Self {
        Self { command: action.command(), action, effect: effect.into(), risk, purpose }
    }

    /// A remedy that removes the cause.
    pub fn fix(risk: Risk, action: Action, effect: impl Into<String>) -> Self {
        Self::new(Purpose::Fix, risk, action, effect)
    }

    /// A remedy that steps around the cause; never disruptive by nature.
    pub fn workaround(action: Action, effect: impl Into<String>) -> Self {
        Self::new(Purpose::Workaround, Risk::Safe, action, effect)
    }

    /// A read-only check.
    pub fn check(action: Action, effect: impl Into<String>) -> Self {
        Self::new(Purpose::Check, Risk::Safe, action, effect)
    }

    pub fn kind(&self) -> ActionKind {
        self.action.kind()
    }
}

/// Where a publish should bind: an address, or the host's own address (filled in where it runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "ip")]
pub enum BindAddress {
    Ip(IpAddr),
    /// The host's LAN address, which the rule could not see (written `<host-ip>`).
    HostIp,
}

/// Which nftables rule or iptables rule to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleRef {
    /// The rule's own specification as `iptables-save` printed it, after `-A CHAIN`: deleting by
    /// specification removes exactly that rule wherever it has moved.
    Spec(String),
    /// An nftables rule handle: stable for the rule's lifetime, unlike a position.
    Handle(u64),
    /// A 1-based position in the chain: what `iptables -L --line-numbers` shows. Positions move
    /// when rules before it come and go, so this can delete the wrong rule.
    Position(usize),
}

/// A typed remedy. The tag (`kind`) is the stable name scenario files and reports use; `ActionKind`
/// (derived) names the variants without their fields, for expectations (`expect.remedy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::EnumDiscriminants)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[strum_discriminants(
    name(ActionKind),
    derive(
        Serialize,
        Deserialize,
        Hash,
        PartialOrd,
        Ord,
        strum::IntoStaticStr,
        strum::EnumIter,
        strum::Display
    ),
    serde(rename_all = "kebab-case"),
    strum(serialize_all = "kebab-case")
)]
pub enum Action {
    /// `kill PID...`: end host processes (a program, a leftover docker-proxy).
    StopProcess { pids: Vec<u32>, program: String },
    /// `docker stop NAME`.
    StopContainer {
        container: String,
        /// The daemon that owns the container, when it is not the CLI's default (`unix:///...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        docker_host: Option<String>,
    },
    /// `docker update --restart=no NAME && docker stop NAME`: end a crash loop.
    StopRestartLoop { container: String },
    /// `docker rm -f NAME`.
    RemoveContainer { container: String },
    /// `docker compose -p PROJECT stop SERVICE` (v1: `docker-compose -p PROJECT -f FILE... stop SERVICE`).
    ComposeStop {
        project: String,
        service: String,
        #[serde(default, flatten)]
        cli: ComposeCli,
    },
    /// `docker compose -p PROJECT down` (v1: `docker-compose -p PROJECT -f FILE... down`).
    ComposeDown {
        project: String,
        #[serde(default, flatten)]
        cli: ComposeCli,
    },
    /// Edit one line of a compose file (then `docker compose up -d` again): give a service another
    /// host port, or make an override replace a list (`ports: !override`) instead of appending.
    ComposeEdit {
        file: String,
        /// 1-based.
        line: usize,
        /// The line as it is now; the edit refuses a file where it no longer reads so.
        old: String,
        new: String,
    },
    /// Delete one NAT rule with the tool that owns its backend.
    DeleteNatRule { backend: Backend, family: Family, table: String, chain: String, rule: RuleRef },
    /// Flush one chain in one backend (a copy of Docker's rules stranded in the other backend).
    FlushChain { backend: Backend, family: Family, table: String, chain: String },
    /// `systemctl restart docker` (`--user` for a rootless engine).
    RestartDaemon { rootless: bool },
    /// `systemctl start docker`.
    StartDaemon { rootless: bool },
    /// Point `iptables`/`ip6tables` at one backend, then restart dockerd so it reprograms there.
    SetIptablesAlternative { backend: Backend },
    /// Publish again on this address and port: `docker run -p ADDR:PORT:<container-port> ...`.
    Publish { address: BindAddress, port: u16, proto: Proto },
    /// `portwhy suggest QUERY`: the nearest free port; publish there instead.
    SuggestPort { query: PortQuery },
    /// `docker network connect NETWORK CONTAINER`.
    ConnectNetwork { network: String, container: String },
    /// `systemctl stop UNIT` (the process is how to find the service where no systemd runs).
    StopService { unit: String, process: String },
    /// Turn systemd-resolved's stub listener off and point resolv.conf at the upstream servers.
    DisableResolverStub,
    /// Install a release that has the fix.
    UpgradeEngine { to: String },
    /// Restart a rootless engine with another rootlesskit port driver.
    SetRootlessPortDriver { driver: String },
    /// Lower `net.ipv4.ip_unprivileged_port_start` to this port, persistently.
    AllowUnprivilegedPorts { from: u16 },
    /// `docker ps -a --filter publish=PORT/PROTO`.
    ListPublishers {
        port: u16,
        proto: Proto,
        /// Ask this daemon instead of the CLI's default (a rootless engine, a second daemon).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        docker_host: Option<String>,
    },
    /// `sudo portwhy QUERY` on the host where the publish failed.
    RunPortwhy { query: PortQuery },
    /// `ip -br addr`: the addresses each interface has (read-only).
    ShowAddresses,
    /// `ip addr add ADDR/PREFIX dev IFACE`: give an interface the address a publish names back.
    AddAddress { address: IpAddr, prefix: u8, interface: String },
    /// `ss -lntp 'sport = :PORT'` (`-lunp` for UDP): who listens on the port (read-only).
    ShowListeners { port: u16, proto: Proto },
    /// `systemctl status UNIT`: whether a service runs (read-only).
    ServiceStatus { unit: String },
    /// A command for another operating system's shell (Windows, macOS), shown as is.
    Foreign { os: ForeignOs, line: String },
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

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
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

fn argv<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn run<const N: usize>(words: [&str; N]) -> Step {
    Step::Run { argv: argv(words) }
}

/// `docker` with `-H HOST` when the container belongs to another daemon.
fn docker_argv(docker_host: Option<&str>, rest: &[&str]) -> Vec<String> {
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

fn nft_family(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

/// Which Compose made a project, and the files v1 needs to act on it again, from the containers'
/// `com.docker.compose.version` and `com.docker.compose.project.config_files` labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeCli {
    /// Compose v1 (`docker-compose`, 1.x): it finds a project only through its files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub v1: bool,
    /// The project's files in merge order; v2 finds the project by its labels and needs none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl ComposeCli {
    /// From a container's labels.
    pub fn from_labels(labels: &std::collections::BTreeMap<String, String>) -> Self {
        let v1 = labels.get("com.docker.compose.version").is_some_and(|v| v.starts_with("1."));
        ComposeCli { v1, files: crate::evidence::compose_config_files(labels) }
    }

    fn argv(&self, project: &str, tail: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = if self.v1 {
            vec!["docker-compose".into(), "-p".into(), project.into()]
        } else {
            vec!["docker".into(), "compose".into(), "-p".into(), project.into()]
        };
        if self.v1 {
            for f in &self.files {
                a.extend(["-f".to_owned(), f.clone()]);
            }
        }
        a.extend(tail.iter().map(|t| (*t).to_owned()));
        a
    }
}

const RESOLVED_DROP_IN: &str = "/etc/systemd/resolved.conf.d/no-stub.conf";
const ROOTLESS_DROP_IN_DIR: &str = "~/.config/systemd/user/docker.service.d";

impl Action {
    pub fn kind(&self) -> ActionKind {
        self.into()
    }

    /// What a machine does, in order.
    pub fn steps(&self) -> Vec<Step> {
        match self {
            Self::StopProcess { pids, .. } => {
                let mut a = vec!["kill".to_owned()];
                a.extend(pids.iter().map(u32::to_string));
                vec![Step::Run { argv: a }]
            }
            Self::StopContainer { container, docker_host } => {
                vec![Step::Run { argv: docker_argv(docker_host.as_deref(), &["stop", container]) }]
            }
            Self::StopRestartLoop { container } => {
                vec![run(["docker", "update", "--restart=no", container]), run(["docker", "stop", container])]
            }
            Self::RemoveContainer { container } => vec![run(["docker", "rm", "-f", container])],
            Self::ComposeStop { project, service, cli } => {
                vec![Step::Run { argv: cli.argv(project, &["stop", service]) }]
            }
            Self::ComposeDown { project, cli } => vec![Step::Run { argv: cli.argv(project, &["down"]) }],
            Self::ComposeEdit { file, line, old, new } => {
                vec![Step::EditLine { path: file.clone(), line: *line, old: old.clone(), new: new.clone() }]
            }
            Self::DeleteNatRule { backend, family, table, chain, rule } => {
                let tool = backend_tool(*backend, *family);
                match (backend, rule) {
                    (Backend::Nftables, RuleRef::Handle(h)) => vec![run([
                        "nft",
                        "delete",
                        "rule",
                        nft_family(*family),
                        table,
                        chain,
                        "handle",
                        &h.to_string(),
                    ])],
                    (_, RuleRef::Spec(spec)) => {
                        let mut a = argv([tool, "-t", table, "-D", chain]);
                        // The spec is iptables-save's own words; split as the shell would.
                        a.extend(
                            shlex::split(spec)
                                .unwrap_or_else(|| spec.split_whitespace().map(str::to_owned).collect()),
                        );
                        vec![Step::Run { argv: a }]
                    }
                    (Backend::Nftables, RuleRef::Position(_)) => {
                        // nft has no positional delete; list with handles instead.
                        vec![run(["nft", "-a", "list", "chain", nft_family(*family), table, chain])]
                    }
                    (_, RuleRef::Position(n)) => vec![run([tool, "-t", table, "-D", chain, &n.to_string()])],
                    (_, RuleRef::Handle(h)) => vec![run([tool, "-t", table, "-D", chain, &h.to_string()])],
                }
            }
            Self::FlushChain { backend, family, table, chain } => match backend {
                Backend::Nftables => vec![run(["nft", "flush", "chain", nft_family(*family), table, chain])],
                _ => vec![run([backend_tool(*backend, *family), "-t", table, "-F", chain])],
            },
            Self::RestartDaemon { rootless } => vec![Step::RestartDaemon { rootless: *rootless }],
            Self::StartDaemon { rootless } => vec![Step::StartDaemon { rootless: *rootless }],
            Self::SetIptablesAlternative { backend } => {
                let flavour = if *backend == Backend::IptablesLegacy { "legacy" } else { "nft" };
                vec![
                    run([
                        "update-alternatives",
                        "--set",
                        "iptables",
                        &format!("/usr/sbin/iptables-{flavour}"),
                    ]),
                    run([
                        "update-alternatives",
                        "--set",
                        "ip6tables",
                        &format!("/usr/sbin/ip6tables-{flavour}"),
                    ]),
                    Step::RestartDaemon { rootless: false },
                ]
            }
            Self::Publish { address, port, proto } => {
                vec![Step::Publish { address: *address, port: *port, proto: *proto }]
            }
            Self::SuggestPort { query } => vec![Step::SuggestPort { query: query.clone() }],
            Self::ConnectNetwork { network, container } => {
                vec![run(["docker", "network", "connect", network, container])]
            }
            Self::StopService { unit, process } => {
                vec![Step::StopService { unit: unit.clone(), process: process.clone() }]
            }
            Self::DisableResolverStub => vec![
                run(["mkdir", "-p", "/etc/systemd/resolved.conf.d"]),
                Step::WriteFile {
                    path: RESOLVED_DROP_IN.to_owned(),
                    content: "[Resolve]\nDNSStubListener=no\n".to_owned(),
                },
                run(["ln", "-sf", "/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"]),
                Step::RestartService {
                    unit: "systemd-resolved".to_owned(),
                    process: "systemd-resolve".to_owned(),
                },
            ],
            Self::UpgradeEngine { to } => vec![Step::UpgradeEngine { to: to.clone() }],
            Self::SetRootlessPortDriver { driver } => {
                vec![Step::SetRootlessPortDriver { driver: driver.clone() }]
            }
            Self::AllowUnprivilegedPorts { from } => vec![
                Step::WriteFile {
                    path: "/etc/sysctl.d/50-unprivileged-ports.conf".to_owned(),
                    content: format!("net.ipv4.ip_unprivileged_port_start={from}\n"),
                },
                run(["sysctl", "-w", &format!("net.ipv4.ip_unprivileged_port_start={from}")]),
            ],
            Self::ListPublishers { port, proto, docker_host } => vec![Step::Run {
                argv: docker_argv(
                    docker_host.as_deref(),
                    &["ps", "-a", "--filter", &format!("publish={port}/{proto}")],
                ),
            }],
            Self::RunPortwhy { query } => vec![run(["portwhy", &query.to_string()])],
            Self::ShowAddresses => vec![run(["ip", "-br", "addr"])],
            Self::AddAddress { address, prefix, interface } => {
                vec![run(["ip", "addr", "add", &format!("{address}/{prefix}"), "dev", interface])]
            }
            Self::ShowListeners { port, proto } => {
                let flags = if *proto == Proto::Udp { "-lunp" } else { "-lntp" };
                vec![run(["ss", flags, &format!("sport = :{port}")])]
            }
            Self::ServiceStatus { unit } => vec![run(["systemctl", "status", unit])],
            Self::Foreign { os, line } => vec![Step::Foreign { os: *os, line: line.clone() }],
        }
    }

    /// The line a person copies: the steps, shell-quoted, joined with `&&`.
    pub fn command(&self) -> String {
        match self {
            // Written the way users are told to do it, not as two raw steps.
            Self::SetRootlessPortDriver { driver } => format!(
                "mkdir -p {ROOTLESS_DROP_IN_DIR} && printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER={}\\n' > {ROOTLESS_DROP_IN_DIR}/port-driver.conf && systemctl --user daemon-reload && systemctl --user restart docker",
                printf_escape(driver)
            ),
            _ => self.steps().iter().map(Step::render).collect::<Vec<_>>().join(" && "),
        }
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
fn printf_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "%%").replace('\n', "\\n")
}

// ---- Remedies more than one rule offers, written once so they read the same everywhere. ----

/// Publish on another host port: always possible, changes nothing running.
pub fn other_port(q: &PortQuery) -> Remedy {
    // The rules see only the sockets on the queried port, so they cannot name a free one
    // themselves: `portwhy suggest` checks the whole table and Docker's published ports.
    Remedy::workaround(
        Action::SuggestPort { query: q.clone() },
        format!(
            "prints the free host port nearest {} for this address and protocol; publish there instead. Nothing running changes, but clients must use the new port",
            q.port
        ),
    )
}

/// Publish on one address that does not overlap the holder's (a workaround: the user asked for
/// another address).
pub fn bind_address(q: &PortQuery, addr: IpAddr, why: &str) -> Remedy {
    Remedy::workaround(Action::Publish { address: BindAddress::Ip(addr), port: q.port, proto: q.proto }, why)
}

/// What a daemon restart does to running containers, from `docker info`'s LiveRestoreEnabled.
pub fn live_restore_note(live_restore: Option<bool>) -> &'static str {
    match live_restore {
        Some(true) => "live-restore is on, so running containers keep running",
        Some(false) => {
            "live-restore is off: every running container stops and only those with a restart policy come back"
        }
        None => "every running container stops unless live-restore is on (\"live-restore\": true in daemon.json)",
    }
}

/// Restart dockerd; what it breaks depends on live-restore.
pub fn restart_daemon(rootless: bool, live_restore: Option<bool>, rebuilds: &str) -> Remedy {
    Remedy::fix(
        Risk::Disruptive,
        Action::RestartDaemon { rootless },
        format!("restarts dockerd, which {rebuilds}; {}", live_restore_note(live_restore)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_shell_quoted_and_machine_steps_are_argv() {
        let stop = Action::StopContainer { container: "my web".into(), docker_host: None };
        assert_eq!(stop.command(), "docker stop 'my web'");
        assert_eq!(stop.steps(), vec![Step::Run { argv: argv(["docker", "stop", "my web"]) }]);

        let delete = Action::DeleteNatRule {
            backend: Backend::IptablesNft,
            family: Family::Ipv4,
            table: "nat".into(),
            chain: "DOCKER".into(),
            rule: RuleRef::Spec(
                "! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.250:80".into(),
            ),
        };
        assert_eq!(
            delete.command(),
            "iptables-nft -t nat -D DOCKER '!' -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.250:80"
        );
        let nft = Action::DeleteNatRule {
            backend: Backend::Nftables,
            family: Family::Ipv4,
            table: "docker-bridges".into(),
            chain: "nat-prerouting-and-output".into(),
            rule: RuleRef::Handle(12),
        };
        assert_eq!(nft.command(), "nft delete rule ip docker-bridges nat-prerouting-and-output handle 12");
    }

    #[test]
    fn files_written_by_printf_keep_their_newlines_and_percent_signs() {
        let s = Step::WriteFile { path: "/etc/x.conf".into(), content: "a=50%\nb\n".into() };
        // What the shell hands printf: a format whose escapes print the content back exactly.
        let words = shlex::split(&s.render()).expect("a valid shell line");
        assert_eq!(words, ["printf", "a=50%%\\nb\\n", ">", "/etc/x.conf"]);
        let lines = Action::DisableResolverStub.command();
        assert!(lines.starts_with("mkdir -p /etc/systemd/resolved.conf.d && printf "), "{lines}");
        assert!(lines.ends_with("systemctl restart systemd-resolved"));
    }

    #[test]
    fn actions_serialise_with_their_kind_tag() {
        let a = Action::StopProcess { pids: vec![42], program: "python3".into() };
        let json = serde_json::to_value(&a).expect("json");
        assert_eq!(json["kind"], "stop-process");
        assert_eq!(serde_json::to_value(a.kind()).expect("json"), "stop-process");
        assert_eq!(a.kind().as_str(), "stop-process");
        // The serde name and the display name are the same word for every kind.
        for kind in <ActionKind as strum::IntoEnumIterator>::iter() {
            assert_eq!(serde_json::to_value(kind).expect("json"), kind.as_str());
        }
        let back: Action = serde_json::from_value(json).expect("parse");
        assert_eq!(back, a);
    }
}
