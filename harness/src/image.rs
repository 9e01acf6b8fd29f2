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

/// Docker Compose inside an engine image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compose {
    /// v2 is the CLI plugin (`docker compose`); v1 the Python program (`docker-compose`).
    pub v2: bool,
    /// As `version --short` printed it (`2.40.3`, `1.29.2`).
    pub version: String,
}

impl Compose {
    /// The words a user types before `-p PROJECT ...`.
    pub fn command(&self) -> &'static [&'static str] {
        if self.v2 {
            &["docker", "compose"]
        } else {
            &["docker-compose"]
        }
    }

    fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        let v2 = match labels.get(LABEL_COMPOSE)?.as_str() {
            "v2" => true,
            "v1" => false,
            _ => return None,
        };
        Some(Compose { v2, version: labels.get(LABEL_COMPOSE_VERSION).cloned().unwrap_or_default() })
    }

    fn labels(&self) -> [(String, String); 2] {
        [
            (LABEL_COMPOSE.to_string(), if self.v2 { "v2" } else { "v1" }.to_string()),
            (LABEL_COMPOSE_VERSION.to_string(), self.version.clone()),
        ]
    }
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
    let found = images_with_label(docker, &format!("{LABEL_RECIPE}={hash}")).await?;
    if let Some(img) = found.first() {
        if !img.repo_tags.iter().any(|t| t == &tag) {
            // Found by label under another tag (e.g. renamed engine): give it the expected tag.
            let (repo, t) = tag.split_once(':').unwrap_or((IMAGE_REPO, "latest"));
            docker
                .tag_image(&img.id, Some(TagImageOptionsBuilder::new().repo(repo).tag(t).build()))
                .await
                .map_err(HarnessError::docker("tag_image"))?;
        }
        progress(&format!("{}: image {tag} present (recipe {})", spec.name, &hash[..12]));
        let compose = Compose::from_labels(&img.labels);
        return Ok(EngineImage { tag, recipe_hash: hash, engine: spec.clone(), compose });
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
fn host_apt_mirror() -> Option<String> {
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
fn deb_cache_dir(suite: &str) -> Option<PathBuf> {
    let base = std::env::var_os("PORTWHY_DEB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/portwhy/debs"));
    let dir = base.join(suite);
    std::fs::create_dir_all(&dir).ok().map(|_| dir)
}

async fn build(
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

fn effective_uid() -> u32 {
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
async fn unmount_under(root: &Path) {
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

async fn build_in(
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
async fn build_layer(
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

async fn layer_in(
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
async fn binaries(
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

type TarBody = std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// `tar -c .` of `dir` as a byte stream; `as_root` makes root own every file (binaries unpacked
/// by another user), otherwise owners are kept (a root filesystem).
fn tar_stream(dir: &Path, as_root: bool) -> Result<(tokio::process::Child, TarBody), String> {
    let owner: &[&str] = if as_root { &["--owner=0", "--group=0"] } else { &[] };
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("--numeric-owner")
        .args(owner)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn tar: {e}"))?;
    let stdout = tar.stdout.take().ok_or("tar has no stdout")?;
    Ok((tar, Box::pin(byte_stream(stdout))))
}

fn byte_stream(
    r: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 1 << 20];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

async fn finish_tar(tar: &mut tokio::process::Child) -> Result<(), String> {
    let status = tar.wait().await.map_err(|e| format!("tar: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut s) = tar.stderr.take() {
        let _ = s.read_to_string(&mut err).await;
    }
    Err(format!("tar exited {status}: {err}"))
}

/// The Compose in a fresh root filesystem: the v2 plugin first (what `docker compose` runs), then v1.
async fn chroot_compose(root: &Path) -> Option<Compose> {
    if let Ok(v) = chroot_output(root, &["docker", "compose", "version", "--short"]).await {
        return Some(Compose { v2: true, version: v.trim().trim_start_matches('v').to_string() });
    }
    let v = chroot_output(root, &["docker-compose", "version", "--short"]).await.ok()?;
    Some(Compose { v2: false, version: v.trim().to_string() })
}

/// The Compose v2 plugin of a Debian package, laid out under `scratch` as it lands in the image
/// (`usr/libexec/docker/cli-plugins/docker-compose`). The .deb comes from the suite's debootstrap
/// cache when an earlier build left it there, else from the mirror; its checksum is checked either way.
async fn compose_plugin(
    deb: &crate::catalog::ComposeDeb,
    scratch: &Path,
    progress: &dyn Fn(&str),
) -> Result<(PathBuf, Compose), String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let cached = deb_cache_dir(&deb.suite).map(|d| d.join(deb.file_name()));
    let file = match cached.filter(|p| p.is_file()) {
        Some(p) => p,
        None => {
            let url = format!("{}/{}", mirror_for(None), deb.pool_path());
            let dest =
                deb_cache_dir(&deb.suite).unwrap_or_else(|| scratch.to_path_buf()).join(deb.file_name());
            progress(&format!("downloading {url}"));
            let mut curl = Command::new("curl");
            curl.args(["-fsSL", "--retry", "3", "-o"]).arg(&dest).arg(&url);
            run_logged(curl, "compose", progress).await.map_err(|e| {
                format!(
                    "downloading {url}: {e} (the suite may have moved on: set `compose.version` and \
                     `compose.sha256` in engines.toml to what `apt-cache show docker-compose` gives for {})",
                    deb.suite
                )
            })?;
            dest
        }
    };
    let bytes = std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let got = hex(&Sha256::digest(&bytes));
    if got != deb.sha256 {
        let _ = std::fs::remove_file(&file);
        return Err(format!(
            "{} has sha256 {got}, engines.toml says {}: the file was removed; check the version and checksum",
            file.display(),
            deb.sha256
        ));
    }
    let unpacked = scratch.join("deb");
    let mut x = Command::new("dpkg-deb");
    x.arg("-x").arg(&file).arg(&unpacked);
    run_logged(x, "compose", progress).await.map_err(|e| format!("dpkg-deb -x {}: {e}", file.display()))?;
    let plugin = unpacked.join(CLI_PLUGINS).join("docker-compose");
    let out = Command::new(&plugin)
        .args(["version", "--short"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running {} version: {e}", plugin.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_string();
    if !out.status.success() || version.is_empty() {
        return Err(format!("{} version --short printed nothing", plugin.display()));
    }
    let root = scratch.join("root");
    let dir = root.join(CLI_PLUGINS);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::copy(&plugin, dir.join("docker-compose"))
        .map_err(|e| format!("copying {}: {e}", plugin.display()))?;
    Ok((root, Compose { v2: true, version }))
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

/// Runs a command, passing its milestone lines to `progress`; the error carries its last lines.
async fn run_logged(mut cmd: Command, engine: &str, progress: &dyn Fn(&str)) -> Result<(), String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut out = BufReader::new(stdout).lines();
    let mut err = BufReader::new(stderr).lines();
    let mut tail: Vec<String> = Vec::new();
    let (mut out_done, mut err_done) = (false, false);
    while !(out_done && err_done) {
        let line = tokio::select! {
            l = out.next_line(), if !out_done => match l { Ok(Some(l)) => l, _ => { out_done = true; continue } },
            l = err.next_line(), if !err_done => match l { Ok(Some(l)) => l, _ => { err_done = true; continue } },
        };
        if is_milestone(&line) {
            progress(&format!("{engine}: {line}"));
        }
        tail.push(line);
        if tail.len() > 20 {
            tail.remove(0);
        }
    }
    let status = child.wait().await.map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}; last output:\n{}", tail.join("\n")))
    }
}

/// debootstrap prints hundreds of lines; these mark its phases.
fn is_milestone(line: &str) -> bool {
    const PHASES: &[&str] = &[
        "I: Retrieving Release",
        "I: Resolving dependencies of base",
        "I: Found additional base dependencies",
        "I: Installing core packages",
        "I: Unpacking the base system",
        "I: Configuring the base system",
        "I: Base system installed successfully",
        "E:",
        "W: Failure",
    ];
    PHASES.iter().any(|p| line.starts_with(p))
}

async fn chroot_output(root: &Path, argv: &[&str]) -> Result<String, String> {
    let out = Command::new("chroot")
        .arg(root)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("chroot {}: {e}", argv.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "chroot {} exited {}: {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn chroot_output_lenient(root: &Path, argv: &[&str]) -> String {
    match Command::new("chroot").arg(root).args(argv).stdin(Stdio::null()).output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(_) => String::new(),
    }
}

/// Streams `tar -C root -c .` into `POST /images/create?fromSrc=-` (what `docker import` does).
async fn import_rootfs(
    docker: &Docker,
    root: &Path,
    tag: &str,
    changes: Vec<String>,
    engine: &str,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let (mut tar, body) = tar_stream(root, false)?;
    let (repo, t) = tag.split_once(':').ok_or("tag without ':'")?;
    let options = CreateImageOptionsBuilder::new().from_src("-").repo(repo).tag(t).changes(changes).build();
    progress(&format!("{engine}: importing root filesystem as {tag}"));
    let mut stream = docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut last_err = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    last_err = Some(detail);
                }
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    let tar_result = finish_tar(&mut tar).await;
    if let Some(e) = last_err {
        return Err(format!("import: {e}"));
    }
    tar_result
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
