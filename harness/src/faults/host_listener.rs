//! A non-Docker process holding the port, with exact socket options (portholder).
//!
//! The family follows the address (`::`, `::1` are IPv6). `v6only` matters only for IPv6: a
//! dual-stack `[::]:P` also blocks `0.0.0.0:P`, a v6-only one does not. `reuseaddr` on a UDP socket
//! is what lets Engine 28 share a port silently (see `silent_share`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{kill_pids, ready_pids, save_pids, sh_quote, sockets_on, wait_until, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

fn one() -> u32 {
    1
}

/// A host socket bound to `addr:port` before Docker tries to publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostListener {
    #[serde(default)]
    pub proto: Proto,
    /// `0.0.0.0`, `127.0.0.1`, `::`, `::1`, or an address of the environment.
    pub addr: String,
    pub port: u16,
    /// IPV6_V6ONLY for IPv6 sockets; `None` keeps the kernel default (dual-stack on Debian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
    #[serde(default)]
    pub reuseaddr: bool,
    #[serde(default)]
    pub reuseport: bool,
    /// Sockets bound by the one holder process (more than one needs `reuseport`).
    #[serde(default = "one")]
    pub count: u32,
    /// Reply name (`portholder <name> pid=N`); defaults to `host-<proto>-<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl HostListener {
    pub(crate) fn holder_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("host-{}-{}", self.proto.as_str(), self.port))
    }

    fn key(&self) -> String {
        format!("host-listener-{}", self.holder_name())
    }

    pub(crate) fn is_v6(&self) -> bool {
        self.addr.contains(':')
    }

    pub(crate) fn command(&self) -> String {
        let mut cmd = format!(
            "portholder --daemon --{} --{} --addr {} --port {} --count {} --name {}",
            self.proto.as_str(),
            if self.is_v6() { "v6" } else { "v4" },
            sh_quote(self.addr.trim_start_matches('[').trim_end_matches(']')),
            self.port,
            self.count,
            sh_quote(&self.holder_name())
        );
        if let Some(v) = self.v6only {
            cmd.push_str(&format!(" --v6only {v}"));
        }
        if self.reuseaddr {
            cmd.push_str(" --reuseaddr");
        }
        if self.reuseport {
            cmd.push_str(" --reuseport");
        }
        cmd
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let out = env.sh(&self.command()).await?;
        if !out.success() {
            return Err(HarnessError::fault(
                "host-listener",
                format!("portholder exited {}: {}", out.exit_code, out.stderr.trim()),
            ));
        }
        let pids = ready_pids(&out.stdout);
        if pids.is_empty() {
            return Err(HarnessError::fault("host-listener", format!("no ready line in {:?}", out.stdout)));
        }
        save_pids(env, &self.key(), &pids).await?;
        Ok(Injected {
            summary: format!(
                "portholder pid {} holds {}/{}:{}",
                pids[0],
                self.proto.as_str(),
                self.addr,
                self.port
            ),
            pids,
            ..Default::default()
        })
    }

    /// `ss` shows a portholder socket of ours on `addr:port`.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let pids = super::load_pids(env, &self.key()).await?;
        let sockets = sockets_on(env, self.proto, self.port).await?;
        let ours =
            sockets.iter().filter(|s| s.is_at(&self.addr) && pids.iter().any(|p| s.has_pid(*p))).count();
        if ours == 0 {
            return Err(HarnessError::fault(
                "host-listener",
                format!(
                    "ss shows no portholder on {}/{}:{} (sockets on the port: {sockets:?})",
                    self.proto.as_str(),
                    self.addr,
                    self.port
                ),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        kill_pids(env, &self.key()).await?;
        let (proto, port, addr) = (self.proto, self.port, self.addr.clone());
        wait_until(Duration::from_secs(5), || {
            let addr = addr.clone();
            async move {
                Ok(!sockets_on(env, proto, port)
                    .await?
                    .iter()
                    .any(|s| s.is_at(&addr) && s.held_by("portholder")))
            }
        })
        .await?;
        Ok(())
    }
}
