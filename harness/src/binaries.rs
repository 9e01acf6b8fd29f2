//! The host-built binaries the lab copies into environments (`portwhy`, `portholder`): one finder
//! and one rule for both, so a stale build of one profile never shadows a fresh build of the other.
//!
//! The rule: a path the user names (a flag or its environment variable) is used as given, and must
//! be a file. Otherwise the candidates are the folder of the running executable, its parent (test
//! binaries run from target/PROFILE/deps), and target/release and target/debug of this workspace;
//! of those that exist, the one modified last wins.

use std::path::{Path, PathBuf};

use crate::error::HarnessError;

/// Finds `name` by the rule above; `explicit` is the user's path, if any.
pub fn find(name: &str, explicit: Option<&Path>) -> Result<PathBuf, HarnessError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(HarnessError::BinaryMissing { name: name.to_string(), searched: path.display().to_string() })
        };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = candidates(name, std::env::current_exe().ok().as_deref(), &workspace);
    newest(&candidates).ok_or_else(|| HarnessError::BinaryMissing {
        name: name.to_string(),
        searched: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

/// `portholder`: PORTWHY_PORTHOLDER, else by the rule.
pub fn portholder() -> Result<PathBuf, HarnessError> {
    let explicit = std::env::var_os("PORTWHY_PORTHOLDER").map(PathBuf::from);
    find("portholder", explicit.as_deref())
}

fn candidates(name: &str, exe: Option<&Path>, workspace: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        out.push(dir.join(name));
        if let Some(up) = dir.parent() {
            out.push(up.join(name));
        }
    }
    for profile in ["release", "debug"] {
        out.push(workspace.join("target").join(profile).join(name));
    }
    out
}

fn newest(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .filter(|p| p.is_file())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .cloned()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn touch(path: &Path, age: Duration) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let f = std::fs::File::create(path).expect("create");
        f.set_modified(SystemTime::now() - age).expect("set mtime");
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("portwhy-binaries-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_build_modified_last_wins_whichever_profile_it_is() {
        let ws = scratch("newest");
        touch(&ws.join("target/release/portholder"), Duration::from_secs(3600));
        touch(&ws.join("target/debug/portholder"), Duration::from_secs(5));
        let found = newest(&candidates("portholder", None, &ws));
        assert_eq!(found, Some(ws.join("target/debug/portholder")));

        touch(&ws.join("target/release/portholder"), Duration::from_secs(0));
        let found = newest(&candidates("portholder", None, &ws));
        assert_eq!(found, Some(ws.join("target/release/portholder")));
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn a_test_binary_in_deps_finds_the_build_beside_its_folder() {
        let ws = scratch("deps");
        let exe = ws.join("target/debug/deps/live-0123");
        touch(&exe, Duration::from_secs(0));
        touch(&ws.join("target/debug/portwhy"), Duration::from_secs(60));
        let c = candidates("portwhy", Some(&exe), &ws);
        assert_eq!(c[1], ws.join("target/debug/portwhy"));
        assert_eq!(newest(&c), Some(ws.join("target/debug/portwhy")));
        let _ = std::fs::remove_dir_all(&ws);
    }

    #[test]
    fn a_named_path_that_is_not_a_file_is_an_error_naming_it() {
        let err = find("portwhy", Some(Path::new("/nonexistent/portwhy"))).expect_err("missing");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/portwhy"), "{text}");
        assert!(text.contains("cargo build -p portwhy"), "{text}");
    }
}
