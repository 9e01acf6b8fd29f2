//! The connection to the outer daemon, the one every environment runs on.

use std::time::Duration;

use bollard::Docker;

use crate::error::HarnessError;

/// Connects to DOCKER_HOST (or the local socket), negotiates the API version down to the daemon's
/// (Engine 20.10 speaks 1.41; bollard defaults to a newer one the old daemon refuses) and checks
/// that the daemon answers. A daemon that does not answer is `HarnessError::DockerUnreachable`.
pub fn connect() -> Result<Docker, HarnessError> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
    let unreachable = |reason: String| HarnessError::DockerUnreachable { host: host.clone(), reason };
    if let Some(path) = host.strip_prefix("unix://") {
        if !std::path::Path::new(path).exists() {
            return Err(unreachable(format!("socket {path} does not exist")));
        }
    }
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    // negotiate_version is async, connect is not: run it on a private runtime in its own thread so
    // this works from sync code and from inside any runtime alike.
    let negotiated = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        rt.block_on(async {
            match tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 10s".to_string()),
            }
        })
    })
    .join()
    .map_err(|_| unreachable("version negotiation panicked".into()))?;
    negotiated.map_err(unreachable)
}
