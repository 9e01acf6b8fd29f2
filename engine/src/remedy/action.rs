//! The typed actions a remedy carries, and how each becomes the steps a machine runs and the line
//! a person copies.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::step::{argv, backend_tool, docker_argv, printf_escape, run, BindAddress, ForeignOs, Step};

use crate::evidence::{Backend, Family};
use crate::port::{PortQuery, Proto};

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

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        self.into()
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
