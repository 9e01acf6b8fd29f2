//! Signals for monitoring, as `portwhy signals --json` prints them: listening sockets per owner,
//! published ports per container, Docker's DNAT rules against the bindings that should have them,
//! and conntrack usage. `collect::signals` fills it from the live host.

use serde::Serialize;

use crate::evidence::{Backend, Unavailable};

/// Version of the JSON document `portwhy signals --json` prints. Bump on any incompatible change.
pub const SIGNALS_SCHEMA_VERSION: u32 = 1;

/// Signals for monitoring, as `portwhy signals --json` prints them.
#[derive(Debug, Serialize)]
pub struct Signals {
    pub schema_version: u32,
    /// Listening sockets grouped by the program that owns them.
    pub listeners_by_owner: Vec<OwnerSockets>,
    /// Host ports published by running containers.
    pub published: Vec<PublishedPorts>,
    /// DNAT rules in Docker's chains against the bindings that should have them.
    pub nat: Vec<NatDrift>,
    pub conntrack: Option<Conntrack>,
    pub unavailable: Vec<Unavailable>,
}

#[derive(Debug, Serialize)]
pub struct OwnerSockets {
    pub owner: String,
    pub pids: Vec<u32>,
    pub sockets: usize,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PublishedPorts {
    pub container: String,
    pub state: String,
    pub ports: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NatDrift {
    pub backend: Backend,
    pub docker_dnat_rules: usize,
    /// IPv4 host bindings of running containers: each should have one DNAT rule.
    pub published_bindings: usize,
    /// Rules minus bindings: above zero means orphans (or rules of another engine sharing the backend).
    pub drift: i64,
}

#[derive(Debug, Serialize)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
    pub ratio: f64,
}
