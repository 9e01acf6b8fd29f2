//! Connecting to the outer daemon, and sweeping everything the harness created by label.
//!
//! Every container, volume and network the harness creates carries `io.portwhy.run=<run id>`, so a
//! crashed or killed run leaves nothing a sweep cannot find.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use serde::Serialize;

use crate::env::LABEL_RUN;
use crate::error::HarnessError;

/// What a sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.volumes.is_empty() && self.networks.is_empty()
    }
}

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

/// Removes every container, volume and network labelled for `run_id` (all runs when `None`).
pub async fn sweep(docker: &Docker, run_id: Option<&str>) -> Result<SweepReport, HarnessError> {
    let label = match run_id {
        Some(id) => format!("{LABEL_RUN}={id}"),
        None => LABEL_RUN.to_string(),
    };
    let filters = HashMap::from([("label".to_string(), vec![label])]);
    let mut report = SweepReport::default();

    let containers = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .map_err(HarnessError::docker("list_containers"))?;
    for c in containers {
        let Some(id) = c.id else { continue };
        match docker
            .remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()))
            .await
        {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(HarnessError::Docker { call: "remove_container", source: e }),
        }
        let name = c.names.and_then(|n| n.first().cloned()).unwrap_or(id);
        report.containers.push(name.trim_start_matches('/').to_string());
    }

    let volumes = docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(HarnessError::docker("list_volumes"))?;
    for v in volumes.volumes.unwrap_or_default() {
        match docker.remove_volume(&v.name, Some(RemoveVolumeOptionsBuilder::new().force(true).build())).await
        {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(HarnessError::Docker { call: "remove_volume", source: e }),
        }
        report.volumes.push(v.name);
    }

    let networks = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(HarnessError::docker("list_networks"))?;
    for n in networks {
        let Some(id) = n.id else { continue };
        match docker.remove_network(&id).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(HarnessError::Docker { call: "remove_network", source: e }),
        }
        report.networks.push(n.name.unwrap_or(id));
    }
    Ok(report)
}

/// Spawns a task that, on Ctrl-C, sweeps `run_id`'s leftovers and exits the process with 130.
/// Binaries call this once after choosing a run id; drop handlers do not run on SIGINT.
pub fn sweep_on_ctrl_c(docker: Docker, run_id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: removing environments of run {run_id}");
            match sweep(&docker, Some(&run_id)).await {
                Ok(r) => eprintln!(
                    "removed {} containers, {} volumes, {} networks",
                    r.containers.len(),
                    r.volumes.len(),
                    r.networks.len()
                ),
                Err(e) => eprintln!("sweep failed: {e}"),
            }
            std::process::exit(130);
        }
    })
}
