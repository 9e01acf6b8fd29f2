//! The stable cause codes: one per rule, with the facts about each cause that every crate shares.
//!
//! A code never changes meaning once released; `portwhy explain CODE` documents it. The runner's
//! scenario files and the JSON contract both speak these codes, so a scenario's expectation and a
//! verdict are compared as values of this one type, never as strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A cause `portwhy` can name. Serialised as its code (`"PW001"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CauseCode {
    #[serde(rename = "PW000")]
    NoConflict,
    #[serde(rename = "PW001")]
    HostProcess,
    #[serde(rename = "PW002")]
    ContainerHolds,
    #[serde(rename = "PW003")]
    StaleProxy,
    #[serde(rename = "PW004")]
    RootlesskitHolds,
    #[serde(rename = "PW005")]
    OrphanedDnat,
    #[serde(rename = "PW006")]
    SplitBackend,
    #[serde(rename = "PW007")]
    ResolverStub,
    #[serde(rename = "PW008")]
    SilentShare,
    #[serde(rename = "PW009")]
    RootlessRegression,
    #[serde(rename = "PW010")]
    HairpinIsolation,
    #[serde(rename = "PW011")]
    StoppedContainer,
    #[serde(rename = "PW012")]
    PrivilegedPort,
    #[serde(rename = "PW013")]
    Platform,
    #[serde(rename = "PW014")]
    AddressUnavailable,
    #[serde(rename = "PW015")]
    StaleAllocation,
    #[serde(rename = "PW016")]
    ChainsMissing,
    #[serde(rename = "PW017")]
    OtherDaemon,
}

impl CauseCode {
    /// Every code, in code order.
    pub const ALL: [CauseCode; 18] = [
        Self::NoConflict,
        Self::HostProcess,
        Self::ContainerHolds,
        Self::StaleProxy,
        Self::RootlesskitHolds,
        Self::OrphanedDnat,
        Self::SplitBackend,
        Self::ResolverStub,
        Self::SilentShare,
        Self::RootlessRegression,
        Self::HairpinIsolation,
        Self::StoppedContainer,
        Self::PrivilegedPort,
        Self::Platform,
        Self::AddressUnavailable,
        Self::StaleAllocation,
        Self::ChainsMissing,
        Self::OtherDaemon,
    ];

    /// `PW001`.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoConflict => "PW000",
            Self::HostProcess => "PW001",
            Self::ContainerHolds => "PW002",
            Self::StaleProxy => "PW003",
            Self::RootlesskitHolds => "PW004",
            Self::OrphanedDnat => "PW005",
            Self::SplitBackend => "PW006",
            Self::ResolverStub => "PW007",
            Self::SilentShare => "PW008",
            Self::RootlessRegression => "PW009",
            Self::HairpinIsolation => "PW010",
            Self::StoppedContainer => "PW011",
            Self::PrivilegedPort => "PW012",
            Self::Platform => "PW013",
            Self::AddressUnavailable => "PW014",
            Self::StaleAllocation => "PW015",
            Self::ChainsMissing => "PW016",
            Self::OtherDaemon => "PW017",
        }
    }

    /// The stable kebab-case name (`host-process`), the `cause` field of every finding.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoConflict => "no-conflict",
            Self::HostProcess => "host-process",
            Self::ContainerHolds => "container-holds",
            Self::StaleProxy => "stale-proxy",
            Self::RootlesskitHolds => "rootlesskit-holds",
            Self::OrphanedDnat => "orphaned-dnat",
            Self::SplitBackend => "split-backend",
            Self::ResolverStub => "resolver-stub",
            Self::SilentShare => "silent-share",
            Self::RootlessRegression => "rootless-regression",
            Self::HairpinIsolation => "hairpin-isolation",
            Self::StoppedContainer => "stopped-container",
            Self::PrivilegedPort => "privileged-port",
            Self::Platform => "platform",
            Self::AddressUnavailable => "address-unavailable",
            Self::StaleAllocation => "stale-allocation",
            Self::ChainsMissing => "chains-missing",
            Self::OtherDaemon => "other-daemon",
        }
    }

    /// The publish succeeds and only the traffic shows the cause: no error text explains it, and
    /// proving it takes probes from the addresses that matter.
    pub fn silent(self) -> bool {
        matches!(self, Self::OrphanedDnat | Self::SilentShare | Self::HairpinIsolation)
    }

    /// A note rather than a cause: nothing stands in the way, so there is nothing to fix.
    pub fn is_note(self) -> bool {
        matches!(self, Self::NoConflict | Self::StoppedContainer)
    }

    /// Looks a code up by `PW001` (any case) or by its name (`host-process`).
    pub fn lookup(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(text) || c.name() == text)
    }
}

impl fmt::Display for CauseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for CauseCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::lookup(s).ok_or_else(|| {
            format!(
                "unknown cause `{s}`: use a code PW000-PW{:03} (portwhy explain --list)",
                Self::ALL.len() - 1
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_unique_and_round_trip_through_json() {
        for (i, c) in CauseCode::ALL.iter().enumerate() {
            assert_eq!(c.code(), format!("PW{i:03}"));
            let json = serde_json::to_string(c).expect("serialise");
            assert_eq!(json, format!("\"PW{i:03}\""));
            assert_eq!(serde_json::from_str::<CauseCode>(&json).expect("parse"), *c);
            assert_eq!(CauseCode::lookup(c.name()), Some(*c));
        }
        assert_eq!("pw005".parse::<CauseCode>(), Ok(CauseCode::OrphanedDnat));
        assert!("PW999".parse::<CauseCode>().unwrap_err().contains("explain --list"));
    }
}
