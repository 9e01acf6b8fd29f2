//! Which compose files a project is made of, found the way `docker compose` finds them.
//!
//! The rules are compose-go's (`cli/options.go`, applied in the order docker/compose's
//! `toProjectOptions` gives them): `-f` files in order; else `COMPOSE_FILE`, split on
//! `COMPOSE_PATH_SEPARATOR` (default `:`); else the first of `compose.yaml`, `compose.yml`,
//! `docker-compose.yml`, `docker-compose.yaml` in the project directory (`--project-directory`, or
//! the current one), or in the nearest parent that has one, plus the first of
//! `compose.override.yml`, `compose.override.yaml`, `docker-compose.override.yml`,
//! `docker-compose.override.yaml` beside it. Relative paths are taken from the current directory.
//! Variables come from the process environment, then the `.env` of the working directory (the
//! project directory, else the first file's folder, else the current one), read once before the
//! files are known and once after: a variable already set is never replaced.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::dotenv::{parse_env_file, LintOptions};
use super::error::LintError;

/// Compose file names, most preferred first (compose-go `DefaultFileNames`).
pub const DEFAULT_FILE_NAMES: [&str; 4] =
    ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// Override file names, most preferred first (compose-go `DefaultOverrideFileNames`).
pub const DEFAULT_OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What the user asked for, as `docker compose` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRequest {
    /// `-f` files in merge order; `-` is stdin.
    pub files: Vec<PathBuf>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
}

/// A project's files in merge order and the variables its interpolation sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub files: Vec<PathBuf>,
    /// Where `.env` is read: the project directory.
    pub working_dir: PathBuf,
    pub options: LintOptions,
    /// What compose would warn about: several file names present in one folder.
    pub warnings: Vec<String>,
}

/// Find the project's files from `cwd` with the process environment `env`.
pub fn find_project(
    request: &FileRequest,
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Project, LintError> {
    let project_dir = request.project_directory.as_deref().map(|d| absolute(cwd, d));
    let read_dotenv = !env_file_disabled(env)?;
    let mut vars = env.clone();
    let mut warnings = Vec::new();
    if read_dotenv {
        merge_dotenv(&mut vars, &working_dir(project_dir.as_deref(), &request.files, cwd))?;
    }
    let files = if !request.files.is_empty() {
        request.files.clone()
    } else if let Some(list) = vars.get("COMPOSE_FILE") {
        compose_file_list(list, vars.get("COMPOSE_PATH_SEPARATOR").map(String::as_str), cwd)?
    } else {
        discover(project_dir.as_deref().unwrap_or(cwd), cwd, &mut warnings)?
    };
    let working_dir = working_dir(project_dir.as_deref(), &files, cwd);
    if read_dotenv {
        merge_dotenv(&mut vars, &working_dir)?;
    }
    Ok(Project { files, working_dir, options: LintOptions { env: vars }, warnings })
}

/// `COMPOSE_DISABLE_ENV_FILE`, read as Go's `strconv.ParseBool` reads it.
fn env_file_disabled(env: &BTreeMap<String, String>) -> Result<bool, LintError> {
    match env.get("COMPOSE_DISABLE_ENV_FILE").map(String::as_str) {
        None => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(LintError::Environment(format!(
            "COMPOSE_DISABLE_ENV_FILE is `{other}`, not a boolean: set it to true or false, or unset it"
        ))),
    }
}

/// The project directory, else the folder of the first file that is not stdin, else `cwd`.
fn working_dir(project_dir: Option<&Path>, files: &[PathBuf], cwd: &Path) -> PathBuf {
    if let Some(dir) = project_dir {
        return dir.to_path_buf();
    }
    match files.iter().find(|f| f.as_os_str() != "-") {
        Some(f) => absolute(cwd, f).parent().map_or_else(|| cwd.to_path_buf(), Path::to_path_buf),
        None => cwd.to_path_buf(),
    }
}

/// Add the variables of `dir/.env` that are not set yet.
fn merge_dotenv(vars: &mut BTreeMap<String, String>, dir: &Path) -> Result<(), LintError> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|source| LintError::Read { path: path.display().to_string(), source })?;
    for (k, v) in parse_env_file(&text) {
        vars.entry(k).or_insert(v);
    }
    Ok(())
}

fn compose_file_list(list: &str, separator: Option<&str>, cwd: &Path) -> Result<Vec<PathBuf>, LintError> {
    let sep = separator.filter(|s| !s.is_empty()).unwrap_or(":");
    let mut files = Vec::new();
    for entry in list.split(sep) {
        if entry.is_empty() {
            return Err(LintError::Environment(format!(
                "COMPOSE_FILE=`{list}` has an empty entry: list the files separated by `{sep}` \
                 (COMPOSE_PATH_SEPARATOR), or unset it"
            )));
        }
        let path = PathBuf::from(entry);
        if entry != "-" && !absolute(cwd, &path).exists() {
            return Err(LintError::Environment(format!(
                "COMPOSE_FILE names {entry}, which does not exist: fix COMPOSE_FILE (in the environment or \
                 the project's .env) or unset it"
            )));
        }
        files.push(path);
    }
    Ok(files)
}

/// The first default name in `start` or the nearest parent, with its override.
fn discover(start: &Path, cwd: &Path, warnings: &mut Vec<String>) -> Result<Vec<PathBuf>, LintError> {
    let mut dir = start.to_path_buf();
    loop {
        let found = present(&dir, &DEFAULT_FILE_NAMES);
        if let Some(first) = found.first() {
            if found.len() > 1 {
                warnings.push(several(&dir, &found, "config files"));
            }
            let mut files = vec![shown(cwd, &dir.join(first))];
            let overrides = present(&dir, &DEFAULT_OVERRIDE_FILE_NAMES);
            if let Some(o) = overrides.first() {
                if overrides.len() > 1 {
                    warnings.push(several(&dir, &overrides, "override files"));
                }
                files.push(shown(cwd, &dir.join(o)));
            }
            return Ok(files);
        }
        match dir.parent() {
            Some(parent) => dir = parent.to_path_buf(),
            None => return Err(LintError::NotFound { dir: start.display().to_string() }),
        }
    }
}

fn present(dir: &Path, names: &[&'static str]) -> Vec<&'static str> {
    names.iter().copied().filter(|n| dir.join(n).exists()).collect()
}

fn several(dir: &Path, found: &[&str], what: &str) -> String {
    format!(
        "found several {what} in {}: {}; using {}, as docker compose does",
        dir.display(),
        found.join(", "),
        found[0]
    )
}

/// A discovered path as the user would write it from `cwd`: relative inside it, absolute outside.
fn shown(cwd: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(cwd).map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// `p` from `cwd`, with `.` and `..` removed lexically, as Go's `filepath.Abs` does.
fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in cwd.join(p).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, "services: {}\n").expect("write");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn find(cwd: &Path, request: &FileRequest, vars: &[(&str, &str)]) -> Result<Project, LintError> {
        find_project(request, cwd, &env(vars))
    }

    fn names(p: &Project) -> Vec<String> {
        p.files.iter().map(|f| f.display().to_string()).collect()
    }

    #[test]
    fn default_names_in_compose_precedence() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        for n in ["docker-compose.yaml", "docker-compose.yml", "compose.yml", "compose.yaml"] {
            touch(dir, n);
        }
        let p = find(dir, &FileRequest::default(), &[]).expect("found");
        assert_eq!(names(&p), ["compose.yaml"]);
        assert!(p.warnings[0].contains("compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml"));
        std::fs::remove_file(dir.join("compose.yaml")).expect("rm");
        assert_eq!(names(&find(dir, &FileRequest::default(), &[]).expect("found")), ["compose.yml"]);
        std::fs::remove_file(dir.join("compose.yml")).expect("rm");
        // docker-compose.yml before docker-compose.yaml: compose's order is not alphabetical.
        assert_eq!(names(&find(dir, &FileRequest::default(), &[]).expect("found")), ["docker-compose.yml"]);
        std::fs::remove_file(dir.join("docker-compose.yml")).expect("rm");
        let p = find(dir, &FileRequest::default(), &[]).expect("found");
        assert_eq!(names(&p), ["docker-compose.yaml"]);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn the_override_beside_the_file_whatever_its_prefix() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        touch(dir, "docker-compose.yml");
        touch(dir, "compose.override.yaml");
        touch(dir, "docker-compose.override.yml");
        let p = find(dir, &FileRequest::default(), &[]).expect("found");
        assert_eq!(names(&p), ["docker-compose.yml", "compose.override.yaml"]);
        // .yml before .yaml for overrides.
        touch(dir, "compose.override.yml");
        let p = find(dir, &FileRequest::default(), &[]).expect("found");
        assert_eq!(names(&p), ["docker-compose.yml", "compose.override.yml"]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    }

    #[test]
    fn walks_up_to_the_nearest_folder_with_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        touch(root, "compose.yaml");
        touch(root, "a/docker-compose.yml");
        touch(root, "a/compose.override.yaml");
        std::fs::write(root.join("a/.env"), "WEB=1\nBOTH=parent\n").expect("write");
        let cwd = root.join("a/b/c");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        std::fs::write(cwd.join(".env"), "BOTH=cwd\n").expect("write");
        let p = find(&cwd, &FileRequest::default(), &[]).expect("found");
        assert_eq!(p.files, [root.join("a/docker-compose.yml"), root.join("a/compose.override.yaml")]);
        assert_eq!(p.working_dir, root.join("a"));
        // The project's .env is read, but what the current folder's .env set first stays.
        assert_eq!(p.options.env.get("WEB").map(String::as_str), Some("1"));
        assert_eq!(p.options.env.get("BOTH").map(String::as_str), Some("cwd"));
    }

    #[test]
    fn nothing_anywhere_is_bad_input_naming_the_folder() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = find(tmp.path(), &FileRequest::default(), &[])
            .expect_err("no compose file in the temp folder (is there one in a folder above it?)");
        assert_eq!(e.exit_code(), crate::exit::ExitCode::BadInput);
        let message = e.to_string();
        assert!(message.contains(&tmp.path().display().to_string()), "{message}");
        assert!(message.contains("-f"), "{message}");
    }

    #[test]
    fn compose_file_lists_files_with_its_separator() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        touch(dir, "compose.yaml");
        touch(dir, "compose.override.yaml");
        touch(dir, "base.yaml");
        touch(dir, "prod/extra.yaml");
        let p = find(dir, &FileRequest::default(), &[("COMPOSE_FILE", "base.yaml:prod/extra.yaml")])
            .expect("found");
        // COMPOSE_FILE replaces discovery: no compose.yaml, no override.
        assert_eq!(names(&p), ["base.yaml", "prod/extra.yaml"]);
        assert_eq!(p.working_dir, dir);
        let p = find(
            dir,
            &FileRequest::default(),
            &[("COMPOSE_FILE", "base.yaml;prod/extra.yaml"), ("COMPOSE_PATH_SEPARATOR", ";")],
        )
        .expect("found");
        assert_eq!(names(&p), ["base.yaml", "prod/extra.yaml"]);
        let e =
            find(dir, &FileRequest::default(), &[("COMPOSE_FILE", "base.yaml:")]).expect_err("empty entry");
        assert!(e.to_string().contains("empty entry"), "{e}");
        let e = find(dir, &FileRequest::default(), &[("COMPOSE_FILE", "gone.yaml")]).expect_err("missing");
        assert!(e.to_string().contains("COMPOSE_FILE names gone.yaml"), "{e}");
    }

    #[test]
    fn compose_file_may_come_from_the_dotenv() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        touch(dir, "compose.yaml");
        touch(dir, "other.yaml");
        std::fs::write(dir.join(".env"), "COMPOSE_FILE=other.yaml\n").expect("write");
        assert_eq!(names(&find(dir, &FileRequest::default(), &[]).expect("found")), ["other.yaml"]);
        // ... unless .env files are disabled, and the process environment wins over it.
        let off = find(dir, &FileRequest::default(), &[("COMPOSE_DISABLE_ENV_FILE", "true")]).expect("found");
        assert_eq!(names(&off), ["compose.yaml"]);
        let env_wins =
            find(dir, &FileRequest::default(), &[("COMPOSE_FILE", "compose.yaml")]).expect("found");
        assert_eq!(names(&env_wins), ["compose.yaml"]);
        let bad = find(dir, &FileRequest::default(), &[("COMPOSE_DISABLE_ENV_FILE", "maybe")]);
        assert!(matches!(bad, Err(LintError::Environment(_))));
    }

    #[test]
    fn f_files_in_order_win_over_everything() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        touch(dir, "compose.yaml");
        touch(dir, "sub/b.yaml");
        std::fs::write(dir.join("sub/.env"), "FROM=sub\n").expect("write");
        let request = FileRequest {
            files: vec![PathBuf::from("sub/b.yaml"), PathBuf::from("compose.yaml")],
            project_directory: None,
        };
        let p = find(dir, &request, &[("COMPOSE_FILE", "compose.yaml")]).expect("found");
        assert_eq!(names(&p), ["sub/b.yaml", "compose.yaml"]);
        // The first file's folder is the working directory.
        assert_eq!(p.working_dir, dir.join("sub"));
        assert_eq!(p.options.env.get("FROM").map(String::as_str), Some("sub"));
    }

    #[test]
    fn project_directory_is_where_discovery_and_dotenv_start() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        touch(dir, "compose.yaml");
        touch(dir, "app/compose.yml");
        touch(dir, "app/compose.override.yaml");
        touch(dir, "files/a.yaml");
        std::fs::write(dir.join("app/.env"), "FROM=app\n").expect("write");
        std::fs::write(dir.join("files/.env"), "FROM=files\n").expect("write");
        let request = FileRequest { files: vec![], project_directory: Some(PathBuf::from("app")) };
        let p = find(dir, &request, &[]).expect("found");
        assert_eq!(names(&p), ["app/compose.yml", "app/compose.override.yaml"]);
        assert_eq!(p.options.env.get("FROM").map(String::as_str), Some("app"));
        // With -f, the project directory still decides which .env is read.
        let request = FileRequest {
            files: vec![PathBuf::from("files/a.yaml")],
            project_directory: Some(PathBuf::from("app")),
        };
        let p = find(dir, &request, &[]).expect("found");
        assert_eq!(names(&p), ["files/a.yaml"]);
        assert_eq!(p.options.env.get("FROM").map(String::as_str), Some("app"));
    }

    #[test]
    fn process_environment_wins_over_dotenv() {
        let tmp = tempfile::tempdir().expect("tempdir");
        touch(tmp.path(), "compose.yaml");
        std::fs::write(tmp.path().join(".env"), "PORT=1\n").expect("write");
        let p = find(tmp.path(), &FileRequest::default(), &[("PORT", "2")]).expect("found");
        assert_eq!(p.options.env.get("PORT").map(String::as_str), Some("2"));
    }
}
