//! Cross-network hairpin: a container on network B cannot reach a port published by a container on
//! network A through the host's address, while the host itself can.
//!
//! The guide "Docker port binding: address already in use" suggests a container reaching its own published port fails;
//! on Engines 20.10, 26 and 28 that simple case works. What fails is the cross-network case with
//! `userland-proxy=false`: the DNATed packet is forwarded from B's bridge to A's and dropped by
//! DOCKER-ISOLATION. It is a reachability fault, never a bind error. `check` measures both paths.

use serde::{Deserialize, Serialize};

use super::{responder, sh_quote, Injected, Proto};
use crate::env::Environment;
use crate::error::HarnessError;

fn eighty() -> u16 {
    80
}

/// Server on network `hairpin-a` publishing `port`, client on `hairpin-b`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hairpin {
    pub port: u16,
    #[serde(default = "eighty")]
    pub container_port: u16,
}

const SERVER: &str = "hairpin-server";
const CLIENT: &str = "hairpin-client";

impl Hairpin {
    pub(crate) async fn inject(&self, env: &Environment) -> Result<Injected, HarnessError> {
        let serve: Vec<String> =
            responder(SERVER, Proto::Tcp, self.container_port).iter().map(|w| sh_quote(w)).collect();
        let script = format!(
            "set -e\n\
             docker network create hairpin-a >/dev/null\n\
             docker network create hairpin-b >/dev/null\n\
             docker run -d --name {SERVER} --network hairpin-a -p {}:{} busybox {} >/dev/null\n\
             docker run -d --name {CLIENT} --network hairpin-b busybox sleep 86400 >/dev/null",
            self.port,
            self.container_port,
            serve.join(" ")
        );
        env.sh_ok(&script).await?;
        Ok(Injected {
            summary: format!("{SERVER} on hairpin-a publishes {}; {CLIENT} on hairpin-b", self.port),
            containers: vec![SERVER.to_string(), CLIENT.to_string()],
            ..Default::default()
        })
    }

    async fn host_ip(&self, env: &Environment) -> Result<String, HarnessError> {
        let out = env.sh_ok("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").await?;
        Ok(out.stdout.trim().to_string())
    }

    /// The environment reaches the server through its own address.
    pub(crate) async fn check(&self, env: &Environment) -> Result<(), HarnessError> {
        let ip = self.host_ip(env).await?;
        // The environment has no nc of its own; busybox provides one.
        let from_host =
            env.sh(&format!("echo | busybox nc -w 2 {ip} {} 2>/dev/null", self.port)).await?.stdout;
        if !from_host.contains(SERVER) {
            return Err(HarnessError::fault(
                "hairpin",
                format!("the environment cannot reach {ip}:{} either", self.port),
            ));
        }
        // Whether CLIENT gets through is the engine's behaviour, not the fault's: 20.10 to 28 drop
        // it, 29 lets it through. The scenario's traffic probes measure it per engine.
        Ok(())
    }

    pub(crate) async fn undo(&self, env: &Environment) -> Result<(), HarnessError> {
        env.sh(&format!(
            "docker rm -f {SERVER} {CLIENT} >/dev/null 2>&1; docker network rm hairpin-a hairpin-b >/dev/null 2>&1; true"
        ))
        .await?;
        Ok(())
    }
}
