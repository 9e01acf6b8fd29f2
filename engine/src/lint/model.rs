//! The compose project after every file was merged: the services, their published ports and
//! where each was written. The lint rules read only this.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::finding::SourceLocation;
use super::spec::{PortSpan, Publish};
use crate::port::Proto;

#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) services: BTreeMap<String, Service>,
    /// Every `ports` entry, in the order the files declare them.
    pub(crate) entries: Vec<Entry>,
    /// Port entries that use a variable with no value, in declaration order.
    pub(crate) unresolved: Vec<UnresolvedPort>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Service {
    pub(crate) claims: Vec<Claim>,
    pub(crate) replicas: Option<(u32, SourceLocation)>,
    pub(crate) host_network: Option<SourceLocation>,
}

/// One published container port after the merge.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) publish: Publish,
    /// The entry it came from (several claims share one for a range).
    pub(crate) entry: usize,
    /// Extra places that declared the same publish (merged by compose's unique key).
    pub(crate) also: Vec<SourceLocation>,
}

/// One `ports` entry as written.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) spec: String,
    pub(crate) location: SourceLocation,
}

/// A port entry that uses variables the environment does not set.
#[derive(Debug, Clone)]
pub(crate) struct UnresolvedPort {
    pub(crate) service: String,
    /// The entry as written (`${WEB_PORT}:80`).
    pub(crate) written: String,
    /// The entry as compose reads it, unset variables replaced by empty strings (`:80`).
    pub(crate) spec: String,
    pub(crate) location: SourceLocation,
    pub(crate) names: Vec<String>,
    /// Messages of required variables (`${VAR:?message}`): compose refuses the file.
    pub(crate) required: Vec<String>,
    pub(crate) reading: Reading,
}

/// What compose makes of an entry once the unset variables are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Only ephemeral host ports.
    Ephemeral,
    /// Some fixed host port.
    Publishes,
    /// An entry compose refuses, with the reason.
    Refused(String),
}

/// The host side of one `ports` entry, after the merge: a range entry is one group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) entry: usize,
    pub(crate) service: String,
    pub(crate) host_ip: Option<IpAddr>,
    pub(crate) proto: Proto,
    pub(crate) span: PortSpan,
    pub(crate) picks_one: bool,
    pub(crate) locations: Vec<SourceLocation>,
}

impl Model {
    /// The groups with a fixed host side, service by service (by name), each service's in
    /// declaration order. Services on the host network publish nothing and have none.
    pub(crate) fn groups(&self) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        for (name, svc) in &self.services {
            if svc.host_network.is_some() {
                continue;
            }
            let mut by_entry: BTreeMap<usize, Group> = BTreeMap::new();
            for c in &svc.claims {
                let Some(published) = c.publish.published else { continue };
                let g = by_entry.entry(c.entry).or_insert_with(|| Group {
                    entry: c.entry,
                    service: name.clone(),
                    host_ip: c.publish.host_ip,
                    proto: c.publish.proto,
                    span: published,
                    picks_one: c.publish.picks_one(),
                    locations: vec![self.entries[c.entry].location.clone()],
                });
                g.span.start = g.span.start.min(published.start);
                g.span.end = g.span.end.max(published.end);
                for l in &c.also {
                    if !g.locations.contains(l) {
                        g.locations.push(l.clone());
                    }
                }
            }
            groups.extend(by_entry.into_values());
        }
        groups
    }

    /// The entry as written, for messages.
    pub(crate) fn spec(&self, g: &Group) -> &str {
        &self.entries[g.entry].spec
    }

    /// The container port of a group's first publish.
    pub(crate) fn target_of(&self, g: &Group) -> u16 {
        self.services[&g.service].claims.iter().find(|c| c.entry == g.entry).map_or(0, |c| c.publish.target)
    }

    /// Published host ports after the merge (one per container port; ephemeral ones included).
    pub(crate) fn publishes(&self) -> usize {
        self.services.values().map(|s| s.claims.len()).sum()
    }
}
