//! Environments: one container per environment, running its own dockerd from an engine image.
//!
//! The container is started through testcontainers (`GenericImage` plus a host-config modifier for
//! the two fields it cannot express). Exec, copy and teardown use bollard directly by container id:
//! they need exit codes, uploads and volume removal, which testcontainers does not expose in that
//! form. Set `TESTCONTAINERS_COMMAND=keep` to keep environments after a run for debugging.

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

/// The outer engine bind-mounts /etc/resolv.conf into every container; a host has a plain file (or
/// systemd-resolved's symlink) there, which remedies replace. Keep the content, drop the mount.
const RESOLV_CONF_AS_ON_A_HOST: &str = "if mountpoint -q /etc/resolv.conf 2>/dev/null || grep -q ' /etc/resolv.conf ' /proc/self/mounts; then \
     cp /etc/resolv.conf /run/portwhy-resolv.conf && umount /etc/resolv.conf && cat /run/portwhy-resolv.conf > /etc/resolv.conf; fi";

/// The outer engine sets net.ipv4.ip_unprivileged_port_start=0 in every container; a host keeps
/// the kernel's default, 1024, which is what stops a rootless engine below it.
const UNPRIVILEGED_PORTS_AS_ON_A_HOST: &str = "sysctl -qw net.ipv4.ip_unprivileged_port_start=1024";

/// Where the inner engine's socket is for a rootless environment.
pub(crate) const ROOTLESS_SOCKET: &str = "unix:///run/user/1000/docker.sock";
/// Where the start script writes the pid of the environment's own dockerd (or its rootlesskit).
const DOCKERD_PID: &str = "/run/portwhy/dockerd.pid";
/// How long the inner engine may take to answer after (re)start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// Backend alternatives, daemon.json, IPv6 and the dockerd start script, before dockerd runs.
    async fn prepare(&self) -> Result<(), HarnessError> {
        let b = self.opts.backend.suffix();
        let mut daemon = serde_json::json!({ "userland-proxy": self.opts.userland_proxy });
        if self.opts.backend == FirewallMode::Nftables {
            daemon["firewall-backend"] = "nftables".into();
        }
        if let (Some(d), Some(extra)) = (daemon.as_object_mut(), self.opts.daemon_json.as_object()) {
            for (k, v) in extra {
                d.insert(k.clone(), v.clone());
            }
        }
        let daemon =
            serde_json::to_string_pretty(&daemon).map_err(|e| self.error(format!("daemon.json: {e}")))?;
        let ipv6 = if self.opts.ipv6 {
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
             net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0\n"
        } else {
            ""
        };
        let start = if self.opts.rootless {
            rootless_start_script(RootlessPortDriver::default(), DOCKERD_PID)
        } else {
            self.rootful_start_script()
        };
        let config_dir = if self.opts.rootless { "/home/rootless/.config/docker" } else { "/etc/docker" };
        let script = format!(
            "set -e\n\
             {RESOLV_CONF_AS_ON_A_HOST}\n\
             {UNPRIVILEGED_PORTS_AS_ON_A_HOST}\n\
             update-alternatives --quiet --set iptables /usr/sbin/iptables-{b}\n\
             update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-{b}\n\
             mkdir -p {config_dir} /run/portwhy/faults\n\
             cat > {config_dir}/daemon.json <<'PORTWHY_EOF'\n{daemon}\nPORTWHY_EOF\n\
             {ipv6}\
             cat > /run/portwhy/dockerd.sh <<'PORTWHY_EOF'\n{start}\nPORTWHY_EOF\n"
        );
        self.sh_ok(&script).await.map(|_| ())
    }

    fn rootful_start_script(&self) -> String {
        // --cgroup-parent: with cgroupns=host every environment shares the host's cgroup tree, so each
        // inner engine needs its own parent to keep containers of different environments apart.
        let cgroup =
            if self.opts.privileged { String::new() } else { format!(" --cgroup-parent=/{}", self.name) };
        format!("echo $$ > {DOCKERD_PID}\nexec dockerd{cgroup} >>/var/log/dockerd.log 2>&1")
    }

    /// Restarts a rootless dockerd with another port driver (what a user does by editing the
    /// systemd unit's environment): rewrites the start script, stops dockerd, starts it, waits.
    pub async fn set_rootless_port_driver(&self, driver: RootlessPortDriver) -> Result<(), HarnessError> {
        if !self.opts.rootless {
            return Err(self.error("the port driver is a rootless setting; this environment is rootful"));
        }
        let script = rootless_start_script(driver, DOCKERD_PID);
        // /run is a tmpfs, which the archive API does not write into: the shell writes it.
        self.sh_ok(&format!("cat > /run/portwhy/dockerd.sh <<'PORTWHY_EOF'\n{script}\nPORTWHY_EOF\n"))
            .await?;
        self.restart_dockerd().await
    }

    async fn start_dockerd(&self) -> Result<(), HarnessError> {
        // setsid + background: the exec session ends, dockerd is re-parented to tini (PID 1).
        self.sh_ok("setsid sh /run/portwhy/dockerd.sh </dev/null >/dev/null 2>&1 &").await.map(|_| ())
    }

    /// Waits inside one exec until the server answers `docker version`; returns its version. The
    /// loop runs in the environment's shell, so a poll costs a `stat` of the socket, not an exec
    /// round trip through the outer engine; `docker version` runs once the socket exists.
    async fn wait_ready(&self) -> Result<String, HarnessError> {
        let socket = if self.opts.rootless { "/run/user/1000/docker.sock" } else { "/var/run/docker.sock" };
        let polls = READY_TIMEOUT.as_millis() / 20;
        let script = format!(
            "i=0; while [ $i -lt {polls} ]; do\n\
               if [ -S {socket} ] && v=$(docker version --format '{{{{.Server.Version}}}}' 2>/run/portwhy/ready.err) \
                  && [ -n \"$v\" ]; then echo \"$v\"; exit 0; fi\n\
               sleep 0.02; i=$((i+1)); done\n\
             cat /run/portwhy/ready.err >&2; exit 1"
        );
        let out = self.sh(&script).await?;
        if out.success() {
            return Ok(out.stdout.trim().to_string());
        }
        let log = self.sh("tail -n 30 /var/log/dockerd.log").await.map(|o| o.stdout).unwrap_or_default();
        Err(self.error(format!(
            "inner dockerd did not answer within {}s: {}\n--- dockerd.log ---\n{log}",
            READY_TIMEOUT.as_secs(),
            out.stderr.trim()
        )))
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

    /// Stops dockerd gracefully (SIGTERM), starts it again and waits until it answers.
    pub async fn restart_dockerd(&self) -> Result<(), HarnessError> {
        self.signal_dockerd("TERM", Duration::from_secs(30)).await?;
        self.start_dockerd().await?;
        self.wait_ready().await.map(|_| ())
    }

    /// What upgrading the engine in place does: stops dockerd, puts the binaries of `image` (a
    /// tarball engine: its /usr/local/bin) over this environment's, starts dockerd again and
    /// returns the version it then reports. Containers and their state stay on the data root.
    pub async fn install_engine(&self, image: &EngineImage) -> Result<String, HarnessError> {
        let name = format!("{}-upgrade", self.name);
        let force = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = self.docker.remove_container(&name, Some(force.clone())).await;
        self.docker
            .create_container(
                Some(bollard::query_parameters::CreateContainerOptionsBuilder::new().name(&name).build()),
                bollard::models::ContainerCreateBody {
                    image: Some(image.tag.clone()),
                    cmd: Some(vec!["true".into()]),
                    labels: Some(self.opts.labels.as_map()),
                    ..Default::default()
                },
            )
            .await
            .map_err(HarnessError::docker("create_container"))?;
        let result = async {
            use futures_util::TryStreamExt;
            let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
                .path("/usr/local/bin")
                .build();
            let tar: Vec<u8> = self
                .docker
                .download_from_container(&name, Some(opts))
                .map_ok(|b| b.to_vec())
                .try_concat()
                .await
                .map_err(HarnessError::docker("download_from_container"))?;
            self.signal_dockerd("TERM", Duration::from_secs(30)).await?;
            // The archive's entries are `bin/...`: unpacked at /usr/local they replace the binaries.
            self.docker
                .upload_to_container(
                    &self.id,
                    Some(
                        bollard::query_parameters::UploadToContainerOptionsBuilder::new()
                            .path("/usr/local")
                            .build(),
                    ),
                    bollard::body_full(tar.into()),
                )
                .await
                .map_err(HarnessError::docker("upload_to_container"))?;
            self.start_dockerd().await?;
            self.wait_ready().await
        }
        .await;
        let _ = self.docker.remove_container(&name, Some(force)).await;
        result
    }

    /// SIGKILLs dockerd (no cleanup: containers, shims and DNAT rules stay); does not restart it.
    pub async fn kill_dockerd(&self) -> Result<(), HarnessError> {
        self.signal_dockerd("KILL", Duration::from_secs(10)).await
    }

    /// Whether the dockerd this environment started is alive.
    pub async fn dockerd_running(&self) -> Result<bool, HarnessError> {
        // A zombie answers `kill -0` until tini reaps it: only a live state counts.
        let script = format!(
            "s=$(awk '{{print $3}}' /proc/\"$(cat {DOCKERD_PID})\"/stat 2>/dev/null) && [ -n \"$s\" ] && [ \"$s\" != Z ]"
        );
        Ok(self.sh(&script).await?.success())
    }

    async fn signal_dockerd(&self, signal: &str, wait: Duration) -> Result<(), HarnessError> {
        let secs = wait.as_secs().max(1) * 20;
        // A rootless engine is rootlesskit (the pid), its child in the other namespace, dockerd and
        // containerd: the child and dockerd outlive the parent for a moment and keep answering on
        // the socket, so a restart waits for the whole tree.
        let rest = if self.opts.rootless {
            format!(
                "i=0; while pgrep -u rootless -x 'rootlesskit|dockerd|containerd' >/dev/null && [ $i -lt {secs} ]; do \
                 sleep 0.05; i=$((i+1)); done\n"
            )
        } else {
            String::new()
        };
        // Polls at 50 ms until the process is gone; zombies count as gone (tini reaps them).
        let script = format!(
            "pid=$(cat {DOCKERD_PID}) || exit 3\n\
             kill -{signal} \"$pid\" 2>/dev/null || {{ {rest} exit 0; }}\n\
             i=0; while [ $i -lt {secs} ]; do\n\
               s=$(awk '{{print $3}}' /proc/$pid/stat 2>/dev/null) || {{ {rest} exit 0; }}\n\
               [ -z \"$s\" ] || [ \"$s\" = Z ] && {{ {rest} exit 0; }}\n\
               sleep 0.05; i=$((i+1)); done\n\
             echo \"dockerd $pid still alive after SIG{signal}\" >&2; exit 1"
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

async fn remove_env(docker: &Docker, id: &str, volume: &str) -> Result<(), HarnessError> {
    match docker
        .remove_container(id, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()))
        .await
    {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => return Err(HarnessError::Docker { call: "remove_container", source: e }),
    }
    match docker.remove_volume(volume, Some(RemoveVolumeOptionsBuilder::new().force(true).build())).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(HarnessError::Docker { call: "remove_volume", source: e }),
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

async fn start_container(
    image: &EngineImage,
    opts: &EnvOptions,
    name: &str,
    volume: &str,
    labels: HashMap<String, String>,
) -> Result<ContainerAsync<GenericImage>, HarnessError> {
    let tag = image.tag.strip_prefix(&format!("{IMAGE_REPO}:")).unwrap_or(&image.tag).to_string();
    // tini as PID 1 (-s: subreaper even if not PID 1) so dockerd can be killed and restarted inside
    // and orphaned processes (docker-proxy, portholder --daemon) are reaped.
    let base = GenericImage::new(IMAGE_REPO.to_string(), tag).with_entrypoint("/usr/bin/tini");
    let mut req = base
        .with_cmd(["-s", "--", "sleep", "infinity"])
        .with_container_name(name)
        .with_hostname(name.chars().take(63).collect::<String>())
        .with_labels(labels)
        // /run must be fresh on every start (pid files, systemd-resolved refuses a stale
        // /run/systemd/resolve) and writable for sockets.
        .with_mount(Mount::tmpfs_mount("/run"))
        // A real filesystem for the inner data root: overlay2 on the outer overlay fails.
        .with_mount(Mount::volume_mount(volume, "/var/lib/docker"))
        .with_startup_timeout(Duration::from_secs(60));
    for bin in &opts.bind_binaries {
        let Some(file) = bin.file_name() else { continue };
        let target = format!("/usr/local/bin/{}", file.to_string_lossy());
        req = req.with_mount(
            Mount::bind_mount(bin.display().to_string(), target).with_access_mode(AccessMode::ReadOnly),
        );
    }
    if opts.privileged {
        // The usual form on CI runners with cgroup v2 and a full capability bounding set.
        req = req.with_privileged(true).with_cgroupns_mode(CgroupnsMode::Private);
    } else {
        req = req
            // dockerd needs nearly every capability (NET_ADMIN for iptables, SYS_ADMIN for mounts,
            // MKNOD for /dev/net/tun, ...). SYS_RESOURCE is outside this host's bounding set, which
            // is why --privileged fails here.
            .with_cap_add("ALL")
            .with_cap_drop("SYS_RESOURCE")
            // runc inside needs syscalls (unshare, pivot_root, keyctl...) the default profile blocks.
            .with_security_opt("seccomp=unconfined")
            // The default AppArmor profile denies mounts the inner engine makes.
            .with_security_opt("apparmor=unconfined")
            // With cgroup v1 the inner engine must see the real hierarchy to create cgroups.
            .with_cgroupns_mode(CgroupnsMode::Host)
            .with_mount(Mount::bind_mount("/sys/fs/cgroup", "/sys/fs/cgroup"))
            // = `--security-opt systempaths=unconfined`, a CLI-only flag: the inner engine writes
            // /proc/sys (ip_forward, route_localnet, IPv6 sysctls), which the outer engine masks or
            // mounts read-only by default.
            .with_host_config_modifier(|hc| {
                hc.masked_paths = Some(Vec::new());
                hc.readonly_paths = Some(Vec::new());
            });
    }
    req.start()
        .await
        .map_err(|e| HarnessError::ContainerStart { name: name.to_string(), reason: e.to_string() })
}

pub(crate) async fn exec_in(
    docker: &Docker,
    id: &str,
    argv: &[&str],
    env: Option<Vec<String>>,
) -> Result<ExecOutput, HarnessError> {
    let created = docker
        .create_exec(
            id,
            ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(argv.iter().map(|s| s.to_string()).collect()),
                env,
                ..Default::default()
            },
        )
        .await
        .map_err(HarnessError::docker("create_exec"))?;
    let mut out = ExecOutput::default();
    match docker.start_exec(&created.id, None).await.map_err(HarnessError::docker("start_exec"))? {
        bollard::exec::StartExecResults::Attached { mut output, .. } => {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(HarnessError::docker("exec output"))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message))
                    }
                    other => out.stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
                }
            }
        }
        bollard::exec::StartExecResults::Detached => {}
    }
    let inspect = docker.inspect_exec(&created.id).await.map_err(HarnessError::docker("inspect_exec"))?;
    out.exit_code = inspect.exit_code.unwrap_or(-1);
    Ok(out)
}

fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o755)
}

/// A tar archive holding one regular file (what the archive upload endpoint expects).
pub(crate) fn single_file_tar(name: &str, mode: u32, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut header = tar::Header::new_ustar();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    let mtime =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    header.set_mtime(mtime);
    let mut builder = tar::Builder::new(Vec::with_capacity(data.len() + 2048));
    builder.append_data(&mut header, name, data).map_err(|e| format!("archiving {name}: {e}"))?;
    builder.into_inner().map_err(|e| format!("archiving {name}: {e}"))
}

/// The script that runs dockerd rootless as user `rootless` (uid 1000), writing its shell's pid to
/// `pidfile`: the environment's own engine when it is rootless, or a rootless engine beside a
/// rootful one (the `rootless-daemon` fault).
pub(crate) fn rootless_start_script(driver: RootlessPortDriver, pidfile: &str) -> String {
    // rootlesskit needs a TUN device for slirp4netns; the environment has none by default.
    // The rootless data root goes on the environment's volume: 29's containerd snapshotter
    // cannot mount overlayfs on the container's own overlay root.
    // dockerd-rootless.sh sets up rootlesskit with the slirp4netns network; the port driver is
    // the environment's. A tarball engine's extras put the script in /usr/local/bin, Debian's
    // docker.io in its contrib folder.
    format!(
        "[ -e /dev/net/tun ] || {{ mkdir -p /dev/net; mknod /dev/net/tun c 10 200; chmod 666 /dev/net/tun; }}\n\
         mkdir -p /run/user/1000 && chown rootless:rootless /run/user/1000 && chmod 700 /run/user/1000\n\
         chown -R rootless:rootless /home/rootless/.config\n\
         mkdir -p /var/lib/docker/rootless /home/rootless/.local/share\n\
         chown rootless:rootless /var/lib/docker/rootless /home/rootless/.local /home/rootless/.local/share\n\
         [ -L /home/rootless/.local/share/docker ] || {{ rm -rf /home/rootless/.local/share/docker; \
         ln -s /var/lib/docker/rootless /home/rootless/.local/share/docker; }}\n\
         script=/usr/local/bin/dockerd-rootless.sh\n\
         [ -x $script ] || script=/usr/share/docker.io/contrib/dockerd-rootless.sh\n\
         echo $$ > {pidfile}\n\
         exec setpriv --reuid=1000 --regid=1000 --init-groups env HOME=/home/rootless USER=rootless \
         XDG_RUNTIME_DIR=/run/user/1000 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
         DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER={} \
         sh $script >>/var/log/dockerd{log}.log 2>&1",
        driver.as_str(),
        log = if pidfile == DOCKERD_PID { "" } else { "-rootless" },
    )
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
