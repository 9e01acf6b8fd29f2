//! The container an environment lives in: started through testcontainers, exec'd and removed
//! through bollard, files uploaded as one-file tar archives.

use super::*;

pub(super) async fn remove_env(docker: &Docker, id: &str, volume: &str) -> Result<(), HarnessError> {
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

pub(super) async fn start_container(
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

pub(super) fn file_mode(path: &Path) -> u32 {
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
