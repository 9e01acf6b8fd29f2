//! A cold build: debootstrap into a scratch folder, the post-install chroot, a tarball engine's
//! binaries laid over its base image, and the apt mirror and .deb cache the build reads.

use super::*;

/// The mirror for a Debian build: recipe, then PORTWHY_MIRROR, then the host's apt sources.
pub(crate) fn mirror_for(recipe_mirror: Option<&str>) -> String {
    if let Some(m) = recipe_mirror {
        return m.to_string();
    }
    if let Ok(m) = std::env::var("PORTWHY_MIRROR") {
        if !m.is_empty() {
            return m;
        }
    }
    host_apt_mirror().unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// First Debian archive URI in the host's apt sources (deb822 or one-line format).
pub(super) fn host_apt_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut extra: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        extra.sort();
        files.extend(extra);
    }
    files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).find_map(|text| apt_mirror_in(&text))
}

pub(crate) fn apt_mirror_in(text: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|line| {
        let uri = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().next()
        } else if let Some(rest) = line.strip_prefix("deb ") {
            rest.split_whitespace().find(|w| !w.starts_with('['))
        } else {
            None
        }?;
        // Security and third-party archives do not carry the suites' docker.io.
        let main_archive = uri.trim_end_matches('/').ends_with("/debian") && !uri.contains("security");
        main_archive.then(|| uri.trim_end_matches('/').to_string())
    })
}

/// Where debootstrap keeps downloaded .debs between builds (PORTWHY_DEB_CACHE overrides).
pub(super) fn deb_cache_dir(suite: &str) -> Option<PathBuf> {
    let base = std::env::var_os("PORTWHY_DEB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/portwhy/debs"));
    let dir = base.join(suite);
    std::fs::create_dir_all(&dir).ok().map(|_| dir)
}

pub(super) async fn build(
    docker: &Docker,
    spec: &EngineSpec,
    hash: &str,
    tag: &str,
    progress: &dyn Fn(&str),
) -> Result<(), HarnessError> {
    let fail = |reason: String| HarnessError::ImageBuild { engine: spec.name.clone(), reason };
    if effective_uid() != 0 {
        return Err(fail("cold builds run debootstrap and chroot, which need root".into()));
    }
    let scratch = std::env::temp_dir().join(format!("portwhy-build-{}-{}", spec.name, &hash[..12]));
    let root = scratch.join("rootfs");
    if scratch.exists() {
        unmount_under(&root).await;
        std::fs::remove_dir_all(&scratch)
            .map_err(|e| fail(format!("clearing {}: {e}", scratch.display())))?;
    }
    std::fs::create_dir_all(&scratch).map_err(|e| fail(format!("creating {}: {e}", scratch.display())))?;
    let result = build_in(docker, spec, hash, tag, &root, progress).await;
    unmount_under(&root).await;
    if let Err(e) = std::fs::remove_dir_all(&scratch) {
        progress(&format!("{}: could not remove {}: {e}", spec.name, scratch.display()));
    }
    result
}

pub(super) fn effective_uid() -> u32 {
    // /proc/self/status avoids a libc dependency for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// debootstrap mounts /proc and /sys in the target; a failed run can leave them behind, and
/// deleting the tree through a live /sys mount must never happen.
pub(super) async fn unmount_under(root: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else { return };
    let prefix = root.to_string_lossy().to_string();
    let mut targets: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = Command::new("umount").arg("-l").arg(t).status().await;
    }
}

pub(super) async fn build_in(
    docker: &Docker,
    spec: &EngineSpec,
    hash: &str,
    tag: &str,
    root: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), HarnessError> {
    let fail = |reason: String| HarnessError::ImageBuild { engine: spec.name.clone(), reason };
    let (suite, packages, mirror) = match &spec.recipe {
        Recipe::Debian { suite, packages, mirror } => {
            (suite.clone(), packages.clone(), mirror_for(mirror.as_deref()))
        }
        Recipe::Tarball { .. } => return Err(fail("a tarball engine is built as a layer".into())),
    };
    // A tarball base has no engine of its own to check.
    let is_base = spec.version.is_empty();
    if which::which("debootstrap").is_err() {
        return Err(fail("debootstrap is not installed (apt-get install debootstrap)".into()));
    }
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase").arg(format!("--include={}", packages.join(",")));
    if let Some(cache) = deb_cache_dir(&suite) {
        cmd.arg(format!("--cache-dir={}", cache.display()));
    }
    cmd.arg(&suite).arg(root).arg(&mirror);
    // debootstrap on an older host may not know a newer suite by name; they all share sid's script.
    if !Path::new("/usr/share/debootstrap/scripts").join(&suite).exists() {
        cmd.arg("/usr/share/debootstrap/scripts/sid");
    }
    progress(&format!("{}: debootstrap {suite} from {mirror}", spec.name));
    run_logged(cmd, &spec.name, progress).await.map_err(|e| fail(format!("debootstrap: {e}")))?;

    let mut post = Command::new("chroot");
    post.arg(root).arg("/bin/sh").arg("-c").arg(POST_INSTALL);
    run_logged(post, &spec.name, progress).await.map_err(|e| fail(format!("post-install: {e}")))?;

    let engine_version = if is_base {
        String::new()
    } else {
        let reported = chroot_output(root, &["dockerd", "--version"]).await.map_err(fail)?;
        let engine_version = parse_docker_version(&reported)
            .ok_or_else(|| fail(format!("cannot read a version from `dockerd --version`: {reported}")))?;
        if !version_matches(&engine_version, &spec.version) {
            return Err(fail(format!(
                "the suite installed Engine {engine_version}, the catalogue says {}: update engines.toml \
                 (Debian suites move)",
                spec.version
            )));
        }
        progress(&format!("{}: engine reports {engine_version}", spec.name));
        engine_version
    };

    let compose = if is_base { None } else { chroot_compose(root).await };
    if let Some(c) = &compose {
        progress(&format!("{}: compose {} {}", spec.name, if c.v2 { "v2" } else { "v1" }, c.version));
    }
    let mut query = vec!["dpkg-query", "-W", "-f", "${Package}=${Version}\\n"];
    query.extend(RECORDED_PACKAGES);
    // dpkg-query exits 1 when some listed package is absent; what it prints is still right.
    let versions = chroot_output_lenient(root, &query).await;
    let mut changes = vec![
        format!("LABEL {LABEL_RECIPE}={hash}"),
        format!("LABEL {LABEL_ENGINE}={}", spec.name),
        format!("LABEL {LABEL_ENGINE_VERSION}={engine_version}"),
        format!("LABEL io.portwhy.suite={suite}"),
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ];
    for (k, v) in compose.iter().flat_map(Compose::labels) {
        changes.push(format!("LABEL {k}={v}"));
    }
    for line in versions.lines() {
        if let Some((pkg, ver)) = line.split_once('=') {
            if !ver.is_empty() {
                changes.push(format!("LABEL {LABEL_PKG_PREFIX}{pkg}={ver}"));
            }
        }
    }
    import_rootfs(docker, root, tag, changes, &spec.name, progress).await.map_err(fail)?;

    let found = images_with_label(docker, &format!("{LABEL_RECIPE}={hash}")).await?;
    if found.is_empty() {
        return Err(fail(format!("imported {tag} but it does not carry {LABEL_RECIPE}={hash}")));
    }
    Ok(())
}

/// A tarball engine: its binaries (and the rootless extras) copied into /usr/local/bin of a
/// container of the base image, committed. Only the binaries move, so a cold layer takes seconds
/// and every tarball engine of a suite shares one debootstrap.
pub(super) async fn build_layer(
    docker: &Docker,
    spec: &EngineSpec,
    base: &EngineImage,
    hash: &str,
    tag: &str,
    progress: &dyn Fn(&str),
) -> Result<(), HarnessError> {
    let fail = |reason: String| HarnessError::ImageBuild { engine: spec.name.clone(), reason };
    let scratch = std::env::temp_dir().join(format!("portwhy-layer-{}-{}", spec.name, &hash[..12]));
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .map_err(|e| fail(format!("clearing {}: {e}", scratch.display())))?;
    }
    std::fs::create_dir_all(&scratch).map_err(|e| fail(format!("creating {}: {e}", scratch.display())))?;
    let result = layer_in(docker, spec, base, hash, tag, &scratch, progress).await.map_err(fail);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

pub(super) async fn layer_in(
    docker: &Docker,
    spec: &EngineSpec,
    base: &EngineImage,
    hash: &str,
    tag: &str,
    scratch: &Path,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let tarball = spec.tarball().ok_or_else(|| missing(spec).to_string())?;
    let engine = binaries(&tarball, "docker", "dockerd", &scratch.join("engine"), progress).await?;
    let extras = match spec.rootless_extras() {
        Some(p) => Some(
            binaries(&p, "docker-rootless-extras", "rootlesskit", &scratch.join("extras"), progress).await?,
        ),
        None => None,
    };
    // The static dockerd runs on the host as well: its version is checked before anything is built.
    let out = Command::new(engine.join("dockerd"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {}/dockerd --version: {e}", engine.display()))?;
    let reported = String::from_utf8_lossy(&out.stdout);
    let engine_version = parse_docker_version(&reported)
        .ok_or_else(|| format!("cannot read a version from `dockerd --version`: {reported}"))?;
    if !version_matches(&engine_version, &spec.version) {
        return Err(format!(
            "{} holds Engine {engine_version}, the catalogue says {}: fix engines.toml or the file",
            tarball.display(),
            spec.version
        ));
    }
    progress(&format!("{}: engine reports {engine_version}", spec.name));
    let compose = match &spec.recipe {
        Recipe::Tarball { compose: Some(deb), .. } => {
            Some(compose_plugin(deb, &scratch.join("compose"), progress).await?)
        }
        _ => None,
    };

    let name = format!("portwhy-layer-{}-{}", spec.name, &hash[..12]);
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    // A crashed earlier build may have left its container behind.
    let _ = docker.remove_container(&name, Some(force.clone())).await;
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            ContainerCreateBody {
                image: Some(base.tag.clone()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("creating {name} from {}: {e}", base.tag))?;
    let result = async {
        if let Some((root, _)) = &compose {
            progress(&format!("{}: copying the compose plugin into /{CLI_PLUGINS}", spec.name));
            let (mut tar, body) = tar_stream(root, true)?;
            docker
                .upload_to_container(
                    &name,
                    Some(UploadToContainerOptionsBuilder::new().path("/").build()),
                    bollard::body_try_stream(body),
                )
                .await
                .map_err(|e| format!("copying the compose plugin: {e}"))?;
            finish_tar(&mut tar).await?;
        }
        for dir in std::iter::once(&engine).chain(extras.iter()) {
            progress(&format!("{}: copying {} into /usr/local/bin", spec.name, dir.display()));
            let (mut tar, body) = tar_stream(dir, true)?;
            docker
                .upload_to_container(
                    &name,
                    Some(UploadToContainerOptionsBuilder::new().path("/usr/local/bin").build()),
                    bollard::body_try_stream(body),
                )
                .await
                .map_err(|e| format!("copying {}: {e}", dir.display()))?;
            finish_tar(&mut tar).await?;
        }
        let (repo, t) = tag.split_once(':').ok_or("tag without ':'")?;
        let mut labels = HashMap::from([
            (LABEL_RECIPE.to_string(), hash.to_string()),
            (LABEL_ENGINE.to_string(), spec.name.clone()),
            (LABEL_ENGINE_VERSION.to_string(), engine_version.clone()),
            (format!("{LABEL_PKG_PREFIX}docker-static"), engine_version.clone()),
        ]);
        if let (Some((_, c)), Recipe::Tarball { compose: Some(deb), .. }) = (&compose, &spec.recipe) {
            labels.extend(c.labels());
            labels.insert(
                format!("{LABEL_PKG_PREFIX}docker-compose"),
                format!("{} ({})", deb.version, deb.suite),
            );
        }
        docker
            .commit_container(
                CommitContainerOptionsBuilder::new().container(&name).repo(repo).tag(t).build(),
                bollard::models::ContainerConfig { labels: Some(labels), ..Default::default() },
            )
            .await
            .map_err(|e| format!("committing {name}: {e}"))?;
        Ok::<(), String>(())
    }
    .await;
    let _ = docker.remove_container(&name, Some(force)).await;
    result?;
    let found =
        images_with_label(docker, &format!("{LABEL_RECIPE}={hash}")).await.map_err(|e| e.to_string())?;
    if found.is_empty() {
        return Err(format!("committed {tag} but it does not carry {LABEL_RECIPE}={hash}"));
    }
    Ok(())
}

/// The folder holding `marker`: `src` unpacked into `scratch` when it is an archive, then
/// `<inner>/` inside it (the layout of Docker's tarballs) or the folder itself.
pub(super) async fn binaries(
    src: &Path,
    inner: &str,
    marker: &str,
    scratch: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, String> {
    let root = if src.is_file() {
        std::fs::create_dir_all(scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        let mut tar = Command::new("tar");
        tar.arg("-xzf").arg(src).arg("-C").arg(scratch);
        progress(&format!("unpacking {}", src.display()));
        run_logged(tar, inner, progress).await.map_err(|e| format!("unpacking {}: {e}", src.display()))?;
        scratch.to_path_buf()
    } else {
        src.to_path_buf()
    };
    [root.join(inner), root.clone()]
        .into_iter()
        .find(|d| d.join(marker).is_file())
        .ok_or_else(|| format!("{} holds no {inner}/{marker}: is it Docker's static tarball?", src.display()))
}
