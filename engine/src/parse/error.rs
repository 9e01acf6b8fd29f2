//! Classifier for the daemon's error text: which stage refused the port, and the address it names.
//!
//! Pure: text in, `DaemonError` out. Every wording in the project's facts must classify.

use serde::{Deserialize, Serialize};

use crate::port::Proto;

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

/// Engine versions whose wording matches the text (inclusive bounds; `None` = open).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRange {
    pub min: Option<String>,
    pub max: Option<String>,
}

/// The operating system's reason for refusing a bind, as the text words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindError {
    /// EADDRINUSE: "address already in use"; Windows: "Only one usage of each socket address".
    AddressInUse,
    /// EADDRNOTAVAIL: "cannot assign requested address" (the host has no such address).
    AddressNotAvailable,
    /// EAFNOSUPPORT: "address family not supported by protocol" (IPv6 disabled on the host).
    FamilyNotSupported,
    /// EACCES: "permission denied"; Windows: "forbidden by its access permissions".
    PermissionDenied,
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
            text: String::new(),
        }
    }
}

/// Why the text could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorTextError {
    #[error("the error text is empty: paste the daemon's message, e.g. --error \"$(docker run -p 8080:80 img 2>&1)\"")]
    Empty,
}

/// Classify the daemon's error text.
pub fn classify(text: &str) -> Result<DaemonError, ErrorTextError> {
    let _ = text;
    todo!("implemented in parse/error.rs")
}
