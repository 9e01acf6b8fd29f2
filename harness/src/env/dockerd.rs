//! The environment's own dockerd: its configuration and start script, readiness, restart, kill,
//! and an engine installed over the image's.

use super::*;

/// The outer engine bind-mounts /etc/resolv.conf into every container; a host has a plain file (or
/// systemd-resolved's symlink) there, which remedies replace. Keep the content, drop the mount.
pub(super) const RESOLV_CONF_AS_ON_A_HOST: &str = "if mountpoint -q /etc/resolv.conf 2>/dev/null || grep -q ' /etc/resolv.conf ' /proc/self/mounts; then \
     cp /etc/resolv.conf /run/portwhy-resolv.conf && umount /etc/resolv.conf && cat /run/portwhy-resolv.conf > /etc/resolv.conf; fi";

/// The outer engine sets net.ipv4.ip_unprivileged_port_start=0 in every container; a host keeps
/// the kernel's default, 1024, which is what stops a rootless engine below it.
pub(super) const UNPRIVILEGED_PORTS_AS_ON_A_HOST: &str =
    "sysctl -qw net.ipv4.ip_unprivileged_port_start=1024";

/// Where the inner engine's socket is for a rootless environment.
pub(crate) const ROOTLESS_SOCKET: &str = "unix:///run/user/1000/docker.sock";
/// Where the start script writes the pid of the environment's own dockerd (or its rootlesskit).
pub(super) const DOCKERD_PID: &str = "/run/portwhy/dockerd.pid";
/// How long the inner engine may take to answer after (re)start.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Environment {
    /// Backend alternatives, daemon.json, IPv6 and the dockerd start script, before dockerd runs.
    pub(super) async fn prepare(&self) -> Result<(), HarnessError> {
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

    pub(super) fn rootful_start_script(&self) -> String {
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

    pub(super) async fn start_dockerd(&self) -> Result<(), HarnessError> {
        // setsid + background: the exec session ends, dockerd is re-parented to tini (PID 1).
        self.sh_ok("setsid sh /run/portwhy/dockerd.sh </dev/null >/dev/null 2>&1 &").await.map(|_| ())
    }

    /// Waits inside one exec until the server answers `docker version`; returns its version. The
    /// loop runs in the environment's shell, so a poll costs a `stat` of the socket, not an exec
    /// round trip through the outer engine; `docker version` runs once the socket exists.
    pub(super) async fn wait_ready(&self) -> Result<String, HarnessError> {
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

    pub(super) async fn signal_dockerd(&self, signal: &str, wait: Duration) -> Result<(), HarnessError> {
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
