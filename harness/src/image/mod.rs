//! Engine images: build a Debian (or tarball) root filesystem, `docker import` it, cache by recipe hash.
//!
//! A cold build runs `debootstrap` on the host (root required) into a scratch directory, runs a short
//! post-install script in a chroot (busybox rootfs for the inner engine, a rootless user, package
//! versions), and streams `tar -C ROOT -c .` into the daemon's `POST /images/create?fromSrc=-` —
//! the endpoint behind `docker import`. bollard's `import_image` is `docker load` (a saved image
//! archive), not this, so the build uses `create_image` with a streamed body instead of the CLI.
//!
//! The image carries `io.portwhy.recipe=<sha256>`; `ensure_image` finds an image by that label and
//! builds nothing when it exists. Changing a recipe (or the post-install script) changes the hash.

mod build;
mod compose;
mod rootfs;
mod run;

use build::*;
pub use compose::Compose;
use compose::{chroot_compose, compose_plugin};
use rootfs::*;
use run::*;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListImagesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use portwhy::version::EngineVersion;

use crate::catalog::{EngineSpec, Recipe};
use crate::error::HarnessError;
use crate::labels::LABEL_RECIPE;

/// Repository part of every engine image tag.
pub const IMAGE_REPO: &str = "portwhy-engine";
pub(crate) const LABEL_ENGINE: &str = "io.portwhy.engine";
pub(crate) const LABEL_ENGINE_VERSION: &str = "io.portwhy.engine-version";
pub(crate) const LABEL_PKG_PREFIX: &str = "io.portwhy.pkg.";
/// `v1` or `v2`: which Compose the image carries (absent: none).
pub(crate) const LABEL_COMPOSE: &str = "io.portwhy.compose";
/// What `docker compose version --short` (v1: `docker-compose version --short`) printed at build time.
pub(crate) const LABEL_COMPOSE_VERSION: &str = "io.portwhy.compose-version";

/// Where the Docker CLI looks for plugins; Debian's v2 package installs there too.
const CLI_PLUGINS: &str = "usr/libexec/docker/cli-plugins";

/// Bumped by hand when the build procedure changes in a way the script text does not show.
const BUILD_FORMAT: u32 = 1;

/// Packages of a tarball recipe's base: everything but the engine itself.
const TARBALL_BASE_PACKAGES: &[&str] = &[
    "iptables",
    "nftables",
    "iproute2",
    "procps",
    "tini",
    // systemd-resolved needs a system bus; debootstrap does not resolve its `dbus-system-bus`
    // alternative by itself.
    "dbus",
    "systemd-resolved",
    "conntrack",
    "busybox-static",
    "uidmap",
    // Rootless cells: the extras carry rootlesskit and the script; slirp4netns comes from Debian.
    "slirp4netns",
];

/// Runs in a chroot of the fresh root filesystem. Its text is part of the recipe hash.
const POST_INSTALL: &str = r#"set -eu
# The inner engine has no registry either: a busybox rootfs it can `docker import` at start.
bb=$(command -v busybox)
mkdir -p /opt/portwhy/busybox-root/bin /opt/portwhy/busybox-root/tmp
cp "$bb" /opt/portwhy/busybox-root/bin/busybox
for a in $(/opt/portwhy/busybox-root/bin/busybox --list); do
  [ "$a" = busybox ] || ln -sf busybox "/opt/portwhy/busybox-root/bin/$a"
done
tar -C /opt/portwhy/busybox-root -cf /opt/portwhy/busybox.tar .
rm -rf /opt/portwhy/busybox-root
# A user for rootless dockerd, with subordinate ids (harmless where rootless is not installed).
if ! id rootless >/dev/null 2>&1; then useradd -m -u 1000 -s /bin/sh rootless; fi
grep -q '^rootless:' /etc/subuid 2>/dev/null || echo 'rootless:100000:65536' >> /etc/subuid
grep -q '^rootless:' /etc/subgid 2>/dev/null || echo 'rootless:100000:65536' >> /etc/subgid
mkdir -p /etc/docker /run/portwhy
# Package caches only make the image bigger.
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*
"#;

/// Packages whose installed versions are recorded in image labels.
const RECORDED_PACKAGES: &[&str] = &[
    "docker.io",
    "docker-cli",
    "containerd",
    "runc",
    "iptables",
    "nftables",
    "systemd-resolved",
    "rootlesskit",
    "slirp4netns",
    "busybox-static",
    "tini",
    "docker-compose",
];

/// A built (or found) engine image.
#[derive(Debug, Clone)]
pub struct EngineImage {
    /// `portwhy-engine:<name>-<hash12>`.
    pub tag: String,
    /// sha256 of the recipe, hex.
    pub recipe_hash: String,
    pub engine: EngineSpec,
    /// The Compose the image carries, from its labels; `None` when it has none.
    pub compose: Option<Compose>,
}

/// An engine image present in the daemon.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub id: String,
    pub tags: Vec<String>,
    pub recipe_hash: String,
    pub engine: String,
    /// The version the engine reported at build time.
    pub engine_version: String,
    /// Installed Debian package versions, by package name.
    pub packages: BTreeMap<String, String>,
    /// `v2 2.40.3`, `v1 1.29.2`, or empty when the image has no Compose.
    pub compose: String,
    pub created: i64,
    pub size: i64,
}

#[derive(Serialize)]
struct HashInput<'a> {
    format: u32,
    name: &'a str,
    version: &'a str,
    recipe: Recipe,
    post_install: &'a str,
    tarball_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rootless_sha256: Option<String>,
    /// A tarball engine is a layer over this base image.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<String>,
}

/// The recipe hash: what is built, not where packages come from (the mirror is left out).
pub fn recipe_hash(spec: &EngineSpec) -> Result<String, HarnessError> {
    let (recipe, tarball_sha256) = match &spec.recipe {
        Recipe::Debian { suite, packages, .. } => {
            (Recipe::Debian { suite: suite.clone(), packages: packages.clone(), mirror: None }, None)
        }
        Recipe::Tarball { base_suite, .. } => {
            let path = spec.tarball().ok_or_else(|| missing(spec))?;
            let recipe = Recipe::Tarball {
                path: PathBuf::new(),
                base_suite: base_suite.clone(),
                url: None,
                rootless_path: None,
                rootless_url: None,
                compose: match &spec.recipe {
                    Recipe::Tarball { compose, .. } => compose.clone(),
                    Recipe::Debian { .. } => None,
                },
            };
            (recipe, Some(content_sha256(&path)?))
        }
    };
    let (rootless_sha256, base) = match &spec.recipe {
        Recipe::Tarball { base_suite, .. } => (
            spec.rootless_extras().map(|p| content_sha256(&p)).transpose()?,
            Some(recipe_hash(&base_spec(base_suite))?),
        ),
        Recipe::Debian { .. } => (None, None),
    };
    let input = HashInput {
        format: BUILD_FORMAT,
        name: &spec.name,
        version: &spec.version,
        recipe,
        post_install: POST_INSTALL,
        tarball_sha256,
        rootless_sha256,
        base,
    };
    let json = serde_json::to_vec(&input).map_err(|e| HarnessError::ImageBuild {
        engine: spec.name.clone(),
        reason: format!("serialising recipe: {e}"),
    })?;
    Ok(hex(&Sha256::digest(&json)))
}

fn missing(spec: &EngineSpec) -> HarnessError {
    let how = spec.availability().err().map(|m| m.how_to_get).unwrap_or_default();
    HarnessError::ImageBuild { engine: spec.name.clone(), reason: how }
}

/// The base every tarball engine of `suite` is layered on: the suite without docker.io.
fn base_spec(suite: &str) -> EngineSpec {
    EngineSpec {
        name: format!("base-{suite}"),
        version: String::new(),
        recipe: Recipe::Debian {
            suite: suite.to_string(),
            packages: TARBALL_BASE_PACKAGES.iter().map(|s| s.to_string()).collect(),
            mirror: None,
        },
    }
}

/// sha256 of a file, or of a folder's files (relative path and bytes, in sorted order), so an
/// unpacked tarball changes the hash exactly when a file in it changes.
fn content_sha256(path: &Path) -> Result<String, HarnessError> {
    let read_err = |p: &Path| HarnessError::io(format!("reading engine binaries {}", p.display()));
    let mut h = Sha256::new();
    if path.is_file() {
        h.update(std::fs::read(path).map_err(read_err(path))?);
        return Ok(hex(&h.finalize()));
    }
    let mut stack = vec![path.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(read_err(&dir))? {
            let entry = entry.map_err(read_err(&dir))?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        h.update(f.strip_prefix(path).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).map_err(read_err(&f))?);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tag an engine image gets for a given recipe hash.
pub fn image_tag(spec: &EngineSpec, hash: &str) -> String {
    format!("{IMAGE_REPO}:{}-{}", spec.name, &hash[..12])
}

/// Finds the image for `spec` by its recipe label, or builds it (cold: 1–3 minutes).
pub async fn ensure_image(
    docker: &Docker,
    spec: &EngineSpec,
    progress: &dyn Fn(&str),
) -> Result<EngineImage, HarnessError> {
    let hash = recipe_hash(spec)?;
    let tag = image_tag(spec, &hash);
    if let Some(image) = present(docker, spec, &hash, &tag, progress).await? {
        return Ok(image);
    }
    // Test binaries and shards are separate processes that may want the same cold image at once;
    // they share the scratch folder, so one builds while the others wait, then find it present.
    let _lock = build_lock(spec, &hash, progress).await?;
    if let Some(image) = present(docker, spec, &hash, &tag, progress).await? {
        return Ok(image);
    }
    let started = Instant::now();
    match &spec.recipe {
        Recipe::Debian { .. } => {
            progress(&format!("{}: building {tag} (cold build, debootstrap takes 1-3 min)", spec.name));
            build(docker, spec, &hash, &tag, progress).await?;
        }
        Recipe::Tarball { base_suite, .. } => {
            let base = Box::pin(ensure_image(docker, &base_spec(base_suite), progress)).await?;
            progress(&format!("{}: building {tag} as a layer over {}", spec.name, base.tag));
            build_layer(docker, spec, &base, &hash, &tag, progress).await?;
        }
    }
    progress(&format!("{}: built {tag} in {:.1}s", spec.name, started.elapsed().as_secs_f64()));
    let built = images_with_label(docker, &format!("{LABEL_RECIPE}={hash}")).await?;
    let compose = built.first().and_then(|i| Compose::from_labels(&i.labels));
    Ok(EngineImage { tag, recipe_hash: hash, engine: spec.clone(), compose })
}

/// An exclusive lock on `<tmp>/portwhy-build-<engine>-<hash12>.lock`, held until dropped (the
/// kernel releases it when the process ends, so a killed build leaves no stale lock).
async fn build_lock(
    spec: &EngineSpec,
    hash: &str,
    progress: &dyn Fn(&str),
) -> Result<std::fs::File, HarnessError> {
    let path = std::env::temp_dir().join(format!("portwhy-build-{}-{}.lock", spec.name, &hash[..12]));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(HarnessError::io(format!("opening {}", path.display())))?;
    use rustix::fs::{flock, FlockOperation};
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
        return Ok(file);
    }
    progress(&format!("{}: another process is building this image; waiting for it", spec.name));
    tokio::task::spawn_blocking(move || flock(&file, FlockOperation::LockExclusive).map(|()| file))
        .await
        .expect("the lock task does not panic")
        .map_err(|e| HarnessError::io(format!("locking {}", path.display()))(e.into()))
}

/// The image built from this recipe, when the daemon has it (tagged as expected).
async fn present(
    docker: &Docker,
    spec: &EngineSpec,
    hash: &str,
    tag: &str,
    progress: &dyn Fn(&str),
) -> Result<Option<EngineImage>, HarnessError> {
    let found = images_with_label(docker, &format!("{LABEL_RECIPE}={hash}")).await?;
    if let Some(img) = found.first() {
        if !img.repo_tags.iter().any(|t| t == tag) {
            // Found by label under another tag (e.g. renamed engine): give it the expected tag.
            let (repo, t) = tag.split_once(':').unwrap_or((IMAGE_REPO, "latest"));
            docker
                .tag_image(&img.id, Some(TagImageOptionsBuilder::new().repo(repo).tag(t).build()))
                .await
                .map_err(HarnessError::docker("tag_image"))?;
        }
        progress(&format!("{}: image {tag} present (recipe {})", spec.name, &hash[..12]));
        let compose = Compose::from_labels(&img.labels);
        return Ok(Some(EngineImage {
            tag: tag.to_owned(),
            recipe_hash: hash.to_owned(),
            engine: spec.clone(),
            compose,
        }));
    }
    Ok(None)
}

async fn images_with_label(
    docker: &Docker,
    label: &str,
) -> Result<Vec<bollard::models::ImageSummary>, HarnessError> {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    docker
        .list_images(Some(ListImagesOptionsBuilder::new().filters(&filters).build()))
        .await
        .map_err(HarnessError::docker("list_images"))
}

/// All engine images in the daemon (those carrying a recipe label).
pub async fn list_images(docker: &Docker) -> Result<Vec<ImageInfo>, HarnessError> {
    let images = images_with_label(docker, LABEL_RECIPE).await?;
    Ok(images
        .into_iter()
        .map(|img| {
            let label = |k: &str| img.labels.get(k).cloned().unwrap_or_default();
            let packages = img
                .labels
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(LABEL_PKG_PREFIX).map(|p| (p.to_string(), v.clone())))
                .collect();
            ImageInfo {
                recipe_hash: label(LABEL_RECIPE),
                engine: label(LABEL_ENGINE),
                engine_version: label(LABEL_ENGINE_VERSION),
                packages,
                compose: Compose::from_labels(&img.labels)
                    .map(|c| format!("{} {}", if c.v2 { "v2" } else { "v1" }, c.version))
                    .unwrap_or_default(),
                id: img.id.clone(),
                tags: img.repo_tags.clone(),
                created: img.created,
                size: img.size,
            }
        })
        .collect())
}

/// Removes engine images whose recipe is not one of `keep`'s; returns what was removed.
pub async fn prune_images(docker: &Docker, keep: &[EngineSpec]) -> Result<Vec<String>, HarnessError> {
    let mut hashes = Vec::new();
    for spec in keep.iter().filter(|s| s.availability().is_ok()) {
        hashes.push(recipe_hash(spec)?);
        if let Recipe::Tarball { base_suite, .. } = &spec.recipe {
            hashes.push(recipe_hash(&base_spec(base_suite))?);
        }
    }
    let keep = hashes;
    let mut removed = Vec::new();
    for img in list_images(docker).await? {
        if keep.contains(&img.recipe_hash) {
            continue;
        }
        docker
            .remove_image(&img.id, Some(RemoveImageOptionsBuilder::new().force(true).build()), None)
            .await
            .map_err(HarnessError::docker("remove_image"))?;
        removed.push(img.tags.first().cloned().unwrap_or(img.id));
    }
    Ok(removed)
}

/// `Docker version 20.10.24+dfsg1, build 5d6db84` -> `20.10.24+dfsg1`.
pub(crate) fn parse_docker_version(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("Docker version ")?;
    Some(rest.split([',', ' ']).next()?.to_string())
}

/// `20.10.24+dfsg1` matches `20.10.24`; `20.10.245` does not.
pub(crate) fn version_matches(reported: &str, wanted: &str) -> bool {
    match (EngineVersion::parse(reported), EngineVersion::parse(wanted)) {
        (Ok(reported), Ok(wanted)) => reported.is_release_of(&wanted),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(packages: &[&str]) -> EngineSpec {
        EngineSpec {
            name: "bookworm".into(),
            version: "20.10.24".into(),
            recipe: Recipe::Debian {
                suite: "bookworm".into(),
                packages: packages.iter().map(|s| s.to_string()).collect(),
                mirror: None,
            },
        }
    }

    #[test]
    fn hash_changes_with_the_recipe_but_not_the_mirror() {
        let a = recipe_hash(&spec(&["docker.io"])).expect("hash");
        let b = recipe_hash(&spec(&["docker.io", "tini"])).expect("hash");
        assert_ne!(a, b);
        let mut mirrored = spec(&["docker.io"]);
        if let Recipe::Debian { mirror, .. } = &mut mirrored.recipe {
            *mirror = Some("http://example.invalid/debian".into());
        }
        assert_eq!(a, recipe_hash(&mirrored).expect("hash"));
        assert_eq!(a.len(), 64);
        assert!(image_tag(&mirrored, &a).starts_with("portwhy-engine:bookworm-"));
    }

    #[test]
    fn versions_and_mirrors_parse() {
        assert_eq!(
            parse_docker_version("Docker version 20.10.24+dfsg1, build 5d6db84\n").as_deref(),
            Some("20.10.24+dfsg1")
        );
        assert!(version_matches("20.10.24+dfsg1", "20.10.24"));
        assert!(!version_matches("20.10.245", "20.10.24"));
        assert!(!version_matches("26.1.5", "20.10.24"));
        let deb822 = "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\n";
        assert_eq!(apt_mirror_in(deb822).as_deref(), Some("http://deb.debian.org/debian"));
        let oneline = "deb [arch=amd64] http://ftp.fr.debian.org/debian/ bookworm main\n";
        assert_eq!(apt_mirror_in(oneline).as_deref(), Some("http://ftp.fr.debian.org/debian"));
        assert_eq!(apt_mirror_in("deb https://packages.cloud.google.com/apt cloud main"), None);
        assert_eq!(apt_mirror_in("URIs: http://deb.debian.org/debian-security"), None);
    }
}
