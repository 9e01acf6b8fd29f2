//! The real systemd-resolved holding udp+tcp 127.0.0.53%lo:53 and 127.0.0.54:53.
//!
//! It runs as root without systemd as PID 1. It refuses to start when /run/systemd/resolve already
//! exists owned by root, so undo removes that directory.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{kill_pids, save_pids, sockets_on, wait_until, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

/// systemd-resolved's stub listeners: the real binary, configured as shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdResolved {
    /// /etc/resolv.conf names the stub (`nameserver 127.0.0.53`), as Ubuntu and Fedora ship it, so
    /// the host's own lookups go through systemd-resolved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolv_conf: bool,
}

const KEY: &str = "systemd-resolved";
/// The environment's own resolv.conf while the fault's stands in its place. Written in place,
/// not renamed: Docker bind-mounts /etc/resolv.conf into the environment.
const SAVED_RESOLV_CONF: &str = "/run/portwhy-resolv.conf.orig";
const STUB_RESOLV_CONF: &str = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";

impl SystemdResolved {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let pid = self.start(env, true).await?;
        save_pids(env, KEY, &[pid]).await?;
        if self.resolv_conf {
            env.sh_ok(&format!(
                "[ -e {SAVED_RESOLV_CONF} ] || cp /etc/resolv.conf {SAVED_RESOLV_CONF}; \
                 printf '{STUB_RESOLV_CONF}' > /etc/resolv.conf"
            ))
            .await?;
        }
        Ok(Injected {
            summary: format!(
                "systemd-resolved pid {pid} holds 127.0.0.53:53 and 127.0.0.54:53 (udp+tcp){}",
                if self.resolv_conf { "; /etc/resolv.conf names 127.0.0.53" } else { "" }
            ),
            pids: vec![pid],
            ..Default::default()
        })
    }

    /// Starts the real binary as root (no systemd) and waits until it runs, and with `stub` until
    /// its stub listeners are up (a configuration may turn them off); its pid.
    pub(crate) async fn start(&self, env: &Environment, stub: bool) -> Result<u32, HarnessError> {
        // A stale state directory from a killed instance makes it refuse to start.
        env.sh("rm -rf /run/systemd/resolve").await?;
        let out = env
            .sh_ok(
                // It creates /run/systemd/resolve but not its parent (/run is a fresh tmpfs here).
                "mkdir -p /run/systemd; \
                 bin=/usr/lib/systemd/systemd-resolved; [ -x $bin ] || bin=/lib/systemd/systemd-resolved; \
                 setsid $bin </dev/null >>/var/log/systemd-resolved.log 2>&1 & echo $!",
            )
            .await?;
        let pid: u32 = out
            .stdout
            .trim()
            .parse()
            .map_err(|_| HarnessError::fault(KEY, format!("no pid from {:?}", out.stdout)))?;
        let up = wait_until(Duration::from_secs(10), || async {
            Ok(if stub {
                Self::check_listeners(env).await.is_ok()
            } else {
                // Started and serving: its state directory appears once it has read its config.
                env.sh(&format!("kill -0 {pid} && [ -e /run/systemd/resolve/resolv.conf ]")).await?.success()
            })
        })
        .await?;
        if !up {
            let log = env.sh("tail -n 20 /var/log/systemd-resolved.log").await?.stdout;
            return Err(HarnessError::fault(KEY, format!("stub listeners did not appear; log:\n{log}")));
        }
        Ok(pid)
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        if self.resolv_conf && !env.sh("grep -qx 'nameserver 127.0.0.53' /etc/resolv.conf").await?.success() {
            return Err(HarnessError::fault(KEY, "/etc/resolv.conf does not name 127.0.0.53"));
        }
        Self::check_listeners(env).await
    }

    async fn check_listeners(env: &Environment) -> Result<(), HarnessError> {
        for proto in [Proto::Udp, Proto::Tcp] {
            let sockets = sockets_on(env, proto, 53).await?;
            for addr in ["127.0.0.53", "127.0.0.54"] {
                if !sockets.iter().any(|s| s.is_at(addr) && s.held_by("systemd-resolve")) {
                    return Err(HarnessError::fault(
                        KEY,
                        format!("ss shows no systemd-resolve on {}/{addr}:53", proto.as_str()),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        kill_pids(env, KEY).await?;
        env.sh("rm -rf /run/systemd/resolve").await?;
        if self.resolv_conf {
            env.sh(&format!(
                "[ ! -e {SAVED_RESOLV_CONF} ] || {{ cat {SAVED_RESOLV_CONF} > /etc/resolv.conf && rm {SAVED_RESOLV_CONF}; }}"
            ))
            .await?;
        }
        Ok(())
    }
}
