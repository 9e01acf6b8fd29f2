//! Remedies as typed actions: what to do, the steps a machine runs, and the line a person copies.
//!
//! A rule proposes `Remedy` values. Each carries an `Action` (a typed description: which pid, which
//! rule handle, which address), the `command` rendered from it, what the command can break (`risk`,
//! `effect`) and whether it removes the cause or only steps around it (`purpose`). The lab runs the
//! same actions inside its environments by matching on them, so what is proven there is the command
//! a user would copy, and nothing ever re-parses the rendered text.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::port::PortQuery;

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

mod action;
mod step;

pub use action::*;
pub use step::*;

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
    use crate::evidence::{Backend, Family};

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
