//! Docker Compose in an engine image: what the image carries (from its labels or a fresh root
//! filesystem) and the v2 plugin laid into tarball engines from a Debian package.

use super::*;

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

    pub(super) fn from_labels(labels: &HashMap<String, String>) -> Option<Self> {
        let v2 = match labels.get(LABEL_COMPOSE)?.as_str() {
            "v2" => true,
            "v1" => false,
            _ => return None,
        };
        Some(Compose { v2, version: labels.get(LABEL_COMPOSE_VERSION).cloned().unwrap_or_default() })
    }

    pub(super) fn labels(&self) -> [(String, String); 2] {
        [
            (LABEL_COMPOSE.to_string(), if self.v2 { "v2" } else { "v1" }.to_string()),
            (LABEL_COMPOSE_VERSION.to_string(), self.version.clone()),
        ]
    }
}

/// The Compose in a fresh root filesystem: the v2 plugin first (what `docker compose` runs), then v1.
pub(super) async fn chroot_compose(root: &Path) -> Option<Compose> {
    if let Ok(v) = chroot_output(root, &["docker", "compose", "version", "--short"]).await {
        return Some(Compose { v2: true, version: v.trim().trim_start_matches('v').to_string() });
    }
    let v = chroot_output(root, &["docker-compose", "version", "--short"]).await.ok()?;
    Some(Compose { v2: false, version: v.trim().to_string() })
}

/// The Compose v2 plugin of a Debian package, laid out under `scratch` as it lands in the image
/// (`usr/libexec/docker/cli-plugins/docker-compose`). The .deb comes from the suite's debootstrap
/// cache when an earlier build left it there, else from the mirror; its checksum is checked either way.
pub(super) async fn compose_plugin(
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
