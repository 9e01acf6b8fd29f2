//! Sweeping everything the harness created, by label.
//!
//! Every container, volume and network the harness creates carries `io.portwhy.run=<run id>`, so a
//! crashed or killed run leaves nothing a sweep cannot find.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, WaitContainerOptionsBuilder,
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
        remove_container(docker, &id).await?;
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

/// How long a removal someone else started may take before the sweep gives up on it.
const REMOVAL_IN_PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Removes container `id`; when its removal is already under way (a cell's teardown runs in the
/// background while the run is interrupted), waits until the engine reports it removed, so the
/// volumes after it are no longer in use.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), HarnessError> {
    match docker
        .remove_container(id, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()))
        .await
    {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
            let wait = docker
                .wait_container(id, Some(WaitContainerOptionsBuilder::new().condition("removed").build()));
            // The stream ends (or errs with 404) once the container is gone; only gone counts.
            let _ = tokio::time::timeout(REMOVAL_IN_PROGRESS_TIMEOUT, wait.collect::<Vec<_>>()).await;
            match docker.inspect_container(id, None).await {
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                Ok(_) => Err(HarnessError::Environment {
                    env: id.to_owned(),
                    reason: format!(
                        "still being removed after {}s; run `portwhy-lab gc` once it is gone",
                        REMOVAL_IN_PROGRESS_TIMEOUT.as_secs()
                    ),
                }),
                Err(e) => Err(HarnessError::Docker { call: "inspect_container", source: e }),
            }
        }
        Err(e) => Err(HarnessError::Docker { call: "remove_container", source: e }),
    }
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
