//! Sweeping everything the harness created, by label.
//!
//! Every container, volume and network the harness creates carries `io.portwhy.run=<run id>`, so a
//! crashed or killed run leaves nothing a sweep cannot find.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use serde::Serialize;

use crate::error::HarnessError;
use crate::labels::LABEL_RUN;

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
