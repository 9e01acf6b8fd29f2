//! The engine catalogue: which Docker Engine versions exist and how to build each one, as data.
//!
//! The catalogue lives in `engines.toml` at the repository root. Each entry names an engine, the
//! version its image must report, and a recipe: a Debian suite (debootstrap + `docker import`) or a
//! local static tarball of docker binaries laid over a Debian base (how a user tests 27.x or 29.x,
//! which no Debian suite carries).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::HarnessError;

/// One engine the harness can build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    /// Short name used in image tags and reports (`bookworm`, `trixie`, `forky`, `tarball-29`).
    pub name: String,
    /// The Engine version the built image must report (`20.10.24`); checked after every build.
    pub version: String,
    /// How to build it.
    pub recipe: Recipe,
}

/// How an engine image is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Recipe {
    /// `debootstrap --variant=minbase --include=PACKAGES SUITE DIR MIRROR`, then `docker import`.
    Debian {
        suite: String,
        packages: Vec<String>,
        /// Overrides the mirror for this engine; otherwise `PORTWHY_MIRROR` or the host's apt source.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mirror: Option<String>,
    },
    /// A static tarball (`docker/dockerd`, `docker/docker`, `docker/containerd`, ...) laid over a
    /// Debian base of `base_suite` built without docker.io.
    Tarball {
        /// `docker-X.Y.Z.tgz` as Docker's download site serves it, or the folder it unpacks to
        /// (`docker-X.Y.Z/`, holding `docker/`). Resolved against the catalogue file's directory
        /// when relative; when the `.tgz` is absent, the folder of the same name without `.tgz` is used.
        path: PathBuf,
        base_suite: String,
        /// Where a user downloads `path` (shown when it is absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// `docker-rootless-extras-X.Y.Z.tgz` (or its folder): `dockerd-rootless.sh` and
        /// `rootlesskit`, for rootless cells. Without it the engine runs rootful cells only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rootless_path: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rootless_url: Option<String>,
        /// Docker's static tarballs carry no Compose: the plugin binary of this Debian package is
        /// laid into `/usr/libexec/docker/cli-plugins` (pinned by version and checksum).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compose: Option<ComposeDeb>,
    },
}

/// A Debian `docker-compose` (v2) package: where the tarball engines' Compose comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeDeb {
    /// The suite whose package it is (`forky`): shown in reports, and the cache folder it is kept in.
    pub suite: String,
    /// The package version (`2.40.3-3`); the file is `pool/main/d/docker-compose/docker-compose_<version>_amd64.deb`.
    pub version: String,
    /// sha256 of the .deb, checked before anything is unpacked.
    pub sha256: String,
}

impl ComposeDeb {
    /// The .deb's path under a Debian mirror.
    pub fn pool_path(&self) -> String {
        format!("pool/main/d/docker-compose/{}", self.file_name())
    }

    pub fn file_name(&self) -> String {
        format!("docker-compose_{}_amd64.deb", self.version)
    }
}

/// Why an engine of the catalogue cannot be built on this machine, and how to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub engine: String,
    /// One sentence: what is absent and where to put it.
    pub how_to_get: String,
}

impl EngineSpec {
    /// `Err` when the engine's tarball is neither at its path nor unpacked beside it.
    pub fn availability(&self) -> Result<(), Missing> {
        match &self.recipe {
            Recipe::Debian { .. } => Ok(()),
            Recipe::Tarball { path, url, .. } => match existing(path) {
                Some(_) => Ok(()),
                None => Err(Missing {
                    engine: self.name.clone(),
                    how_to_get: format!(
                        "{} is absent: download {} into {} (or unpack it there as {})",
                        path.display(),
                        url.as_deref().unwrap_or("the engine's static tarball"),
                        path.parent().unwrap_or(Path::new(".")).display(),
                        unpacked_dir(path).display()
                    ),
                }),
            },
        }
    }

    /// The engine's tarball or unpacked folder, whichever exists.
    pub fn tarball(&self) -> Option<PathBuf> {
        match &self.recipe {
            Recipe::Tarball { path, .. } => existing(path),
            Recipe::Debian { .. } => None,
        }
    }

    /// The rootless extras' tarball or folder, whichever exists.
    pub fn rootless_extras(&self) -> Option<PathBuf> {
        match &self.recipe {
            Recipe::Tarball { rootless_path: Some(p), .. } => existing(p),
            _ => None,
        }
    }
}

/// `engines/docker-29.1.2.tgz` -> `engines/docker-29.1.2` (what `tar -xzf` into a folder of that
/// name gives, and how Docker's own archives are named inside).
pub fn unpacked_dir(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".tgz").or_else(|| name.strip_suffix(".tar.gz")).unwrap_or(&name);
    path.with_file_name(stem)
}

fn existing(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    let dir = unpacked_dir(path);
    dir.is_dir().then_some(dir)
}

#[derive(Debug, Deserialize)]
struct CatalogFile {
    #[serde(rename = "engine", default)]
    engines: Vec<EngineSpec>,
}

/// Reads and validates the catalogue at `path`.
pub fn load_catalog(path: &Path) -> Result<Vec<EngineSpec>, HarnessError> {
    let err = |reason: String| HarnessError::Catalog { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_catalog(&text, base).map_err(err)
}

/// Parses catalogue text; relative tarball paths are resolved against `base`.
pub(crate) fn parse_catalog(text: &str, base: &Path) -> Result<Vec<EngineSpec>, String> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
    if file.engines.is_empty() {
        return Err("no [[engine]] entries".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut engines = file.engines;
    for e in &mut engines {
        if e.name.is_empty() || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return Err(format!("engine name {:?} must be non-empty [A-Za-z0-9.-]", e.name));
        }
        if !seen.insert(e.name.clone()) {
            return Err(format!("engine {:?} appears twice", e.name));
        }
        if e.version.is_empty() {
            return Err(format!("engine {:?} has an empty version", e.name));
        }
        match &mut e.recipe {
            Recipe::Debian { suite, packages, .. } => {
                if suite.is_empty() || packages.is_empty() {
                    return Err(format!("engine {:?}: a debian recipe needs a suite and packages", e.name));
                }
            }
            Recipe::Tarball { path, rootless_path, .. } => {
                for p in std::iter::once(path).chain(rootless_path.iter_mut()) {
                    if p.is_relative() {
                        *p = base.join(&*p);
                    }
                }
            }
        }
    }
    Ok(engines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_catalogue_parses_and_names_the_three_suites() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml");
        let engines = load_catalog(&path).expect("engines.toml must parse");
        let names: Vec<_> = engines.iter().map(|e| e.name.as_str()).collect();
        for want in ["bookworm", "trixie", "forky"] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let bookworm = engines.iter().find(|e| e.name == "bookworm").expect("bookworm");
        assert_eq!(bookworm.version, "20.10.24");
        match &bookworm.recipe {
            Recipe::Debian { packages, .. } => assert!(packages.iter().any(|p| p == "docker.io")),
            other => panic!("bookworm should be a debian recipe, got {other:?}"),
        }
    }

    #[test]
    fn relative_tarball_paths_resolve_against_the_catalogue() {
        let text = r#"
            [[engine]]
            name = "static-26"
            version = "26.1.5"
            recipe = { kind = "tarball", path = "engines/docker-26.tgz", base_suite = "bookworm" }
        "#;
        let engines = parse_catalog(text, Path::new("/repo")).expect("parses");
        assert_eq!(
            engines[0].recipe,
            Recipe::Tarball {
                path: "/repo/engines/docker-26.tgz".into(),
                base_suite: "bookworm".into(),
                url: None,
                rootless_path: None,
                rootless_url: None,
                compose: None,
            }
        );
    }

    #[test]
    fn an_absent_tarball_says_where_to_put_it_and_an_unpacked_folder_counts() {
        let dir = std::env::temp_dir().join(format!("portwhy-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = r#"
            [[engine]]
            name = "static-29.1.2"
            version = "29.1.2"
            recipe = { kind = "tarball", path = "docker-29.1.2.tgz", base_suite = "bookworm", url = "https://download.docker.com/linux/static/stable/x86_64/docker-29.1.2.tgz" }
        "#;
        let e = parse_catalog(text, &dir).unwrap().remove(0);
        let missing = e.availability().unwrap_err();
        assert!(missing.how_to_get.contains("https://download.docker.com/"), "{missing:?}");
        assert!(missing.how_to_get.contains(&dir.join("docker-29.1.2").display().to_string()), "{missing:?}");
        assert_eq!(e.tarball(), None);
        std::fs::create_dir_all(dir.join("docker-29.1.2/docker")).unwrap();
        assert_eq!(e.availability(), Ok(()));
        assert_eq!(e.tarball(), Some(dir.join("docker-29.1.2")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duplicate_names_and_bad_kinds_are_rejected() {
        let dup = r#"
            [[engine]]
            name = "a"
            version = "1"
            recipe = { kind = "debian", suite = "bookworm", packages = ["docker.io"] }
            [[engine]]
            name = "a"
            version = "1"
            recipe = { kind = "debian", suite = "bookworm", packages = ["docker.io"] }
        "#;
        assert!(parse_catalog(dup, Path::new("/")).unwrap_err().contains("twice"));
        let bad = r#"
            [[engine]]
            name = "a"
            version = "1"
            recipe = { kind = "rpm", suite = "x" }
        "#;
        assert!(parse_catalog(bad, Path::new("/")).is_err());
    }
}
