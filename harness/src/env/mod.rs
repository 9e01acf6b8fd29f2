//! Environments: one container per environment, running its own dockerd from an engine image.
//!
//! The container is started through testcontainers (`GenericImage` plus a host-config modifier for
//! the two fields it cannot express). Exec, copy and teardown use bollard directly by container id:
//! they need exit codes, uploads and volume removal, which testcontainers does not expose in that
//! form. Set `TESTCONTAINERS_COMMAND=keep` to keep environments after a run for debugging.

mod container;
mod dockerd;

use container::*;
pub(crate) use dockerd::{rootless_start_script, ROOTLESS_SOCKET};

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::models::{ExecConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use testcontainers::core::{AccessMode, CgroupnsMode, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::error::HarnessError;
use crate::image::{version_matches, EngineImage, IMAGE_REPO};
use crate::labels::{LABEL_ENV, LABEL_RUN, LABEL_SCENARIO};

/// Where dockerd writes its rules: through `iptables` (the alternative points at iptables-legacy or
/// iptables-nft when dockerd starts), or natively into nftables (`firewall-backend: nftables`,
/// Engine 29.0 and later; the user's `iptables` then is iptables-nft and sees none of Docker's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirewallMode {
    Legacy,
    Nft,
    Nftables,
}

impl FirewallMode {
    /// `legacy` / `nft`: the suffix of `/usr/sbin/iptables-<suffix>` the alternative points at.
    pub fn suffix(self) -> &'static str {
        match self {
            FirewallMode::Legacy => "legacy",
            FirewallMode::Nft | FirewallMode::Nftables => "nft",
        }
    }

    /// The other `iptables` alternative (a split needs dockerd to use iptables at all).
    pub fn other(self) -> Self {
        match self {
            FirewallMode::Legacy => FirewallMode::Nft,
            FirewallMode::Nft | FirewallMode::Nftables => FirewallMode::Legacy,
        }
    }

    /// The first Engine with `firewall-backend: nftables`.
    pub const NFTABLES_SINCE: &'static str = "29.0.0";
}

/// RootlessKit's port driver for a rootless dockerd (`DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootlessPortDriver {
    /// dockerd-rootless.sh's default.
    #[default]
    Builtin,
    Slirp4netns,
}

impl RootlessPortDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Slirp4netns => "slirp4netns",
        }
    }
}

/// Labels identifying what an environment belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLabels {
    pub run_id: String,
    pub scenario: String,
    pub env: String,
}

impl RunLabels {
    pub(crate) fn as_map(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), self.run_id.clone()),
            (LABEL_SCENARIO.to_string(), self.scenario.clone()),
            (LABEL_ENV.to_string(), self.env.clone()),
        ])
    }
}

/// How to start an environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvOptions {
    /// Firewall backend selected before dockerd starts.
    pub backend: FirewallMode,
    /// daemon.json `userland-proxy`.
    pub userland_proxy: bool,
    /// Run dockerd rootless (user `rootless`, rootlesskit + slirp4netns; forky's packages or a
    /// tarball engine with its rootless extras).
    pub rootless: bool,
    /// `--privileged --cgroupns private` (cgroup v2 CI runners) instead of the explicit capability set.
    pub privileged: bool,
    /// Re-enable IPv6 on lo/eth0 (the outer engine disables it) so `::1` and `[::]` listeners work.
    pub ipv6: bool,
    /// Extra daemon.json keys, merged over the ones derived from the fields above.
    pub daemon_json: serde_json::Value,
    pub labels: RunLabels,
    /// Host files bind-mounted read-only at `/usr/local/bin/<file name>`: the run's own copies of
    /// the binaries under test, in place the moment the container starts instead of uploaded into
    /// every environment. `portholder` is copied in when it is not among them.
    #[serde(default)]
    pub bind_binaries: Vec<PathBuf>,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            backend: FirewallMode::Legacy,
            userland_proxy: true,
            rootless: false,
            privileged: false,
            ipv6: false,
            daemon_json: serde_json::Value::Object(Default::default()),
            labels: RunLabels::default(),
            bind_binaries: Vec::new(),
        }
    }
}

/// What a command inside an environment printed and how it exited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// How long each step of `Environment::start` took: where an environment's start-up goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartTimes {
    /// The data-root volume created and the container started.
    pub container: Duration,
    /// Backend, daemon.json and start script written, dockerd started until it answered.
    pub dockerd: Duration,
    /// busybox imported into the inner engine (and the host address read in the same exec).
    pub image_import: Duration,
    /// portholder uploaded (zero when it is bind-mounted).
    pub binaries: Duration,
}

/// A running environment: a container with its own dockerd.
pub struct Environment {
    docker: Docker,
    container: Option<ContainerAsync<GenericImage>>,
    id: String,
    name: String,
    volume: String,
    engine_version: String,
    opts: EnvOptions,
    ready_after: Duration,
    start_times: StartTimes,
    host_ip: Option<IpAddr>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("engine_version", &self.engine_version)
            .finish_non_exhaustive()
    }
}

/// Container names allow `[a-zA-Z0-9_.-]`; the name also becomes a cgroup path component.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect()
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:06x}", (nanos ^ std::process::id().rotate_left(16)) & 0xff_ffff)
}

impl Environment {
    /// Starts the container, selects the firewall backend, starts dockerd and waits until it answers,
    /// imports `busybox:latest` into the inner engine and copies `portholder` in.
    pub async fn start(docker: &Docker, image: &EngineImage, opts: EnvOptions) -> Result<Self, HarnessError> {
        let started = Instant::now();
        let l = &opts.labels;
        let mut name = sanitize(&format!("portwhy-{}-{}-{}", l.run_id, l.scenario, l.env));
        name.truncate(50);
        name = format!("{}-{}", name.trim_end_matches('-'), unique_suffix());
        let volume = format!("{name}-var-lib-docker");
        let labels = opts.labels.as_map();

        // overlay2 on overlay fails: the inner engine's data root must be a real volume, labelled so
        // a sweep finds it after a crash (named volumes outlive their container).
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(HarnessError::docker("create_volume"))?;

        let container = match start_container(image, &opts, &name, &volume, labels).await {
            Ok(c) => c,
            Err(e) => {
                let _ = docker
                    .remove_volume(&volume, None::<bollard::query_parameters::RemoveVolumeOptions>)
                    .await;
                return Err(e);
            }
        };
        let id = container.id().to_string();
        let mut env = Environment {
            docker: docker.clone(),
            container: Some(container),
            id,
            name,
            volume,
            engine_version: String::new(),
            opts,
            ready_after: Duration::ZERO,
            start_times: StartTimes { container: started.elapsed(), ..Default::default() },
            host_ip: None,
        };
        // Any failure from here on drops `env`, which removes the container and volume.
        let lap = Instant::now();
        env.prepare().await?;
        env.start_dockerd().await?;
        let version = env.wait_ready().await?;
        env.start_times.dockerd = lap.elapsed();
        if !version_matches(&version, &image.engine.version) {
            return Err(env.error(format!(
                "inner engine reports {version}, the catalogue says {} for {}",
                image.engine.version, image.engine.name
            )));
        }
        env.engine_version = version;
        let lap = Instant::now();
        // The eth0 address is read in the same exec: every probe of the host address needs it, and
        // nothing in a cell changes eth0.
        let out = env
            .sh_ok(
                "docker import /opt/portwhy/busybox.tar busybox:latest >/dev/null && \
                 ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -n1",
            )
            .await?;
        env.host_ip = out.stdout.trim().parse().ok();
        env.start_times.image_import = lap.elapsed();
        let lap = Instant::now();
        let bound = env.opts.bind_binaries.iter().any(|p| p.file_name().is_some_and(|n| n == "portholder"));
        if !bound {
            let holder = crate::binaries::portholder()?;
            env.copy_in(&holder, "/usr/local/bin").await?;
        }
        env.start_times.binaries = lap.elapsed();
        env.ready_after = started.elapsed();
        Ok(env)
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> HarnessError {
        HarnessError::Environment { env: self.name.clone(), reason: reason.into() }
    }

    /// Runs `argv` in the environment (as root; `DOCKER_HOST` points at the rootless socket in a
    /// rootless environment).
    pub async fn exec(&self, argv: &[&str]) -> Result<ExecOutput, HarnessError> {
        let env = self.opts.rootless.then(|| vec![format!("DOCKER_HOST={ROOTLESS_SOCKET}")]);
        exec_in(&self.docker, &self.id, argv, env).await
    }

    /// Runs `sh -c script` in the environment.
    pub async fn sh(&self, script: &str) -> Result<ExecOutput, HarnessError> {
        self.exec(&["sh", "-c", script]).await
    }

    /// Like `sh`, but a non-zero exit is an error carrying stderr.
    pub async fn sh_ok(&self, script: &str) -> Result<ExecOutput, HarnessError> {
        let out = self.sh(script).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(HarnessError::CommandFailed {
                env: self.name.clone(),
                command: script.to_string(),
                exit_code: out.exit_code,
                stderr: format!(
                    "{}{}",
                    out.stderr.trim(),
                    if out.stdout.is_empty() { "" } else { " (stdout: ...)" }
                ),
            })
        }
    }

    /// Copies one host file into `dest_dir` in the environment, keeping its mode.
    pub async fn copy_in(&self, host_path: &Path, dest_dir: &str) -> Result<(), HarnessError> {
        let data = tokio::fs::read(host_path)
            .await
            .map_err(HarnessError::io(format!("reading {}", host_path.display())))?;
        let mode = file_mode(host_path);
        let file_name = host_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| self.error(format!("{} has no file name", host_path.display())))?;
        let archive = single_file_tar(&file_name, mode, &data).map_err(|e| self.error(e))?;
        self.sh_ok(&format!("mkdir -p '{dest_dir}'")).await?;
        self.docker
            .upload_to_container(
                &self.id,
                Some(UploadToContainerOptionsBuilder::new().path(dest_dir).build()),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(HarnessError::docker("upload_to_container"))
    }

    /// Writes a file in the environment (creating or replacing it), with `mode`.
    pub async fn write_file(&self, path: &str, content: &[u8], mode: u32) -> Result<(), HarnessError> {
        let (dir, name) = path
            .rsplit_once('/')
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| self.error(format!("{path} is not a file path")))?;
        let dir = if dir.is_empty() { "/" } else { dir };
        let archive = single_file_tar(name, mode, content).map_err(|e| self.error(e))?;
        self.exec(&["mkdir", "-p", dir]).await?;
        self.docker
            .upload_to_container(
                &self.id,
                Some(UploadToContainerOptionsBuilder::new().path(dir).build()),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(HarnessError::docker("upload_to_container"))
    }

    /// What `systemctl stop` does, without systemd: SIGTERM every process named `process` (the
    /// kernel's 15-byte comm) and wait until they are gone.
    pub async fn stop_service(&self, process: &str) -> Result<(), HarnessError> {
        let comm: String = process.chars().take(15).collect();
        // A poll, not a fixed sleep: the loop ends the moment the last one has exited (another
        // process's exit has no event a shell can wait on).
        let script = format!(
            "pkill -TERM -x {comm} 2>/dev/null; i=0; while pgrep -x {comm} >/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
             ! pgrep -x {comm} >/dev/null || {{ echo \"{comm} still runs after SIGTERM\" >&2; exit 1; }}"
        );
        self.sh_ok(&script).await.map(|_| ())
    }

    pub fn container_id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The inner engine's server version as `docker version` reported it (checked against the catalogue).
    pub fn engine_version(&self) -> &str {
        &self.engine_version
    }

    /// The options this environment was started with.
    pub fn options(&self) -> &EnvOptions {
        &self.opts
    }

    /// Time from `start` being called to a ready inner engine with busybox and portholder in place.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// How long each step of `start` took.
    pub fn start_times(&self) -> StartTimes {
        self.start_times
    }

    /// The environment's IPv4 address on eth0 (the emulated host's own address), read at start.
    pub fn host_ip(&self) -> Result<IpAddr, HarnessError> {
        self.host_ip.ok_or_else(|| self.error("no IPv4 address on eth0"))
    }

    /// Removes the container and its volume.
    pub async fn teardown(mut self) -> Result<(), HarnessError> {
        if let Some(c) = self.container.take() {
            // rm() marks the testcontainers handle as dropped, so its Drop does nothing more.
            if let Err(e) = c.rm().await {
                // Already gone is fine; anything else is retried through the API below.
                let _ = e;
            }
        }
        remove_env(&self.docker, &self.id, &self.volume).await
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let Some(container) = self.container.take() else { return };
        if std::env::var("TESTCONTAINERS_COMMAND").is_ok_and(|v| v == "keep") {
            std::mem::forget(container);
            return;
        }
        // testcontainers removes the container in its own Drop (blocking until done).
        drop(container);
        // The volume needs its own runtime: this may run inside (or outside) any tokio runtime,
        // and a client bound to the caller's runtime could deadlock while it is blocked here.
        let volume = self.volume.clone();
        let id = self.id.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(docker) = crate::docker::connect() {
                    let _ = remove_env(&docker, &id, &volume).await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_reads_back_as_the_one_file_with_its_mode() {
        let tar = single_file_tar("portholder", 0o755, b"hello").expect("tar");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive.entries().expect("entries");
        let mut entry = entries.next().expect("one entry").expect("readable");
        assert_eq!(entry.path().expect("path").to_str(), Some("portholder"));
        assert_eq!(entry.header().mode().expect("mode"), 0o755);
        let mut body = String::new();
        std::io::Read::read_to_string(&mut entry, &mut body).expect("body");
        assert_eq!(body, "hello");
        drop(entry);
        assert!(entries.next().is_none(), "only one entry");
    }

    #[test]
    fn names_are_safe_for_containers_and_cgroups() {
        assert_eq!(sanitize("run 1/host:listener"), "run-1-host-listener");
    }
}
