//! The Evidence model: everything the rules may look at, as plain serialisable data.
//!
//! Collectors fill it on a live host; `portwhy collect` writes it to a bundle and
//! `portwhy diagnose --evidence` reads it back, so every field here is part of the bundle format.
//! A source that could not be read is `None` plus an entry in `unavailable`, never a crash.

pub mod bundle;
mod daemons;
mod docker;
mod firewall;
mod host;
mod sockets;

pub use daemons::*;
pub use docker::*;
pub use firewall::*;
pub use host::*;
pub use sockets::*;

use serde::{Deserialize, Serialize};

use crate::port::PortQuery;

/// Version of the bundle format written by `portwhy collect`. Bump on any incompatible change;
/// optional fields (`collected_by`, `error_text`, `subject`, `daemons`) were added within version 1.
pub const BUNDLE_SCHEMA_VERSION: u32 = 1;

/// All evidence gathered about one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub schema_version: u32,
    /// Which portwhy wrote the bundle (absent from bundles of portwhy before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_by: Option<Collector>,
    /// The port the user asked about.
    pub query: PortQuery,
    /// The daemon's error text as given to `portwhy collect --error`: a replay classifies it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_text: Option<String>,
    /// The container being published (`portwhy collect --container`): the subject of the
    /// question, never blamed as the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Listening sockets (TCP listen, bound UDP) on the queried port, every address and family.
    pub sockets: Option<Vec<Listener>>,
    /// The Docker engine as its API reports it.
    pub docker: Option<DockerState>,
    /// NAT rules and the firewall backends in use.
    pub firewall: Option<FirewallState>,
    /// Host facts: kernel, WSL, Docker Desktop, resolver, conntrack.
    pub host: Option<HostInfo>,
    /// Every dockerd process and which one the API answered from (absent from bundles of
    /// portwhy before it was collected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemons: Option<Daemons>,
    /// The compose files named by the labels of the containers that ask for the queried port,
    /// as read when collected: a verdict names the file and line, and a fix edits that line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose_files: Vec<ComposeFile>,
    /// Sources that could not be read, with the reason; the verdict names them.
    #[serde(default)]
    pub unavailable: Vec<Unavailable>,
}

/// One compose file, by the path compose recorded in `com.docker.compose.project.config_files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeFile {
    pub path: String,
    pub text: String,
}

/// The portwhy that collected a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collector {
    /// portwhy's version, e.g. `0.1.0`.
    pub version: String,
    /// The git commit it was built from (short hash), or `unknown` when built outside git.
    pub commit: String,
}

impl Collector {
    /// This portwhy.
    pub fn current() -> Self {
        Self { version: env!("CARGO_PKG_VERSION").to_owned(), commit: env!("PORTWHY_GIT_COMMIT").to_owned() }
    }
}

/// One evidence source that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// Source name: `sockets`, `processes`, `docker`, `iptables-legacy`, `iptables-nft`, `nftables`, `host`.
    pub source: String,
    /// Why, in words a user can act on.
    pub reason: String,
}

impl Evidence {
    pub fn new(query: PortQuery) -> Self {
        Self { schema_version: BUNDLE_SCHEMA_VERSION, query, ..Self::default() }
    }

    pub fn mark_unavailable(&mut self, source: &str, reason: impl Into<String>) {
        self.unavailable.push(Unavailable { source: source.to_owned(), reason: reason.into() });
    }

    pub fn listeners(&self) -> &[Listener] {
        self.sockets.as_deref().unwrap_or(&[])
    }

    pub fn containers(&self) -> &[Container] {
        self.docker.as_ref().map(|d| d.containers.as_slice()).unwrap_or(&[])
    }

    /// A container's compose files in merge order, when every one of them was read.
    pub fn compose_files_of(&self, c: &Container) -> Option<Vec<&ComposeFile>> {
        let paths = c.compose_config_files();
        if paths.is_empty() {
            return None;
        }
        paths.iter().map(|p| self.compose_files.iter().find(|f| &f.path == p)).collect()
    }

    pub fn nat_rules(&self) -> impl Iterator<Item = &NatRule> {
        self.firewall.iter().flat_map(|f| f.nat_rules.iter())
    }
}
