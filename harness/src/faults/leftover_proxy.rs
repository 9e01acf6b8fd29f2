//! A docker-proxy process with no container behind it, holding the host port.
//!
//! Started by hand with the arguments dockerd would pass for a container, the way a proxy outlives
//! its container after a crash of the daemon's bookkeeping. It binds the port itself (no
//! `-use-listen-fd`), so to `ss` it looks exactly like a proxy dockerd started. docker-proxy reports
//! readiness on fd 3 and then closes it; started without an fd 3, that fd is its own listening
//! socket, which it would close under itself (`accept4: bad file descriptor`), so fd 3 is given.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{kill_pids, save_pids, sockets_on, wait_until, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

fn any_v4() -> String {
    "0.0.0.0".to_string()
}
fn gone_container() -> String {
    "172.17.0.99".to_string()
}
fn eighty() -> u16 {
    80
}

/// `docker-proxy -proto P -host-ip H -host-port N -container-ip C -container-port M`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeftoverProxy {
    pub port: u16,
    #[serde(default)]
    pub proto: Proto,
    #[serde(default = "any_v4")]
    pub host_ip: String,
    #[serde(default = "gone_container")]
    pub container_ip: String,
    #[serde(default = "eighty")]
    pub container_port: u16,
}

impl LeftoverProxy {
    fn key(&self) -> String {
        format!("leftover-proxy-{}-{}", self.proto.as_str(), self.port)
    }

    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let cmd = format!(
            "bin=$(command -v docker-proxy || echo /usr/libexec/docker/docker-proxy); \
             setsid $bin -proto {} -host-ip {} -host-port {} -container-ip {} -container-port {} \
             </dev/null >>/var/log/leftover-proxy.log 2>&1 3>/dev/null & echo $!",
            self.proto.as_str(),
            self.host_ip,
            self.port,
            self.container_ip,
            self.container_port
        );
        let out = env.sh_ok(&cmd).await?;
        let pid: u32 = out
            .stdout
            .trim()
            .parse()
            .map_err(|_| HarnessError::fault("leftover-proxy", format!("no pid in {:?}", out.stdout)))?;
        save_pids(env, &self.key(), &[pid]).await?;
        let up = wait_until(Duration::from_secs(5), || async { Ok(self.check(env).await.is_ok()) }).await?;
        if !up {
            let log = env.sh("tail -n 5 /var/log/leftover-proxy.log").await?.stdout;
            return Err(HarnessError::fault("leftover-proxy", format!("docker-proxy did not bind: {log}")));
        }
        Ok(Injected {
            summary: format!(
                "docker-proxy pid {pid} holds {}/{}:{} for no container",
                self.proto.as_str(),
                self.host_ip,
                self.port
            ),
            pids: vec![pid],
            ..Default::default()
        })
    }

    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let pids = super::load_pids(env, &self.key()).await?;
        let sockets = sockets_on(env, self.proto, self.port).await?;
        if !sockets.iter().any(|s| s.held_by("docker-proxy") && pids.iter().any(|p| s.has_pid(*p))) {
            return Err(HarnessError::fault(
                "leftover-proxy",
                format!("ss shows no leftover docker-proxy on {}", self.port),
            ));
        }
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        kill_pids(env, &self.key()).await
    }
}
