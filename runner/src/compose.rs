//! A compose project as a cell's trigger: its files copied into the environment, the command the
//! image's Compose takes (`docker compose` for v2, `docker-compose` for v1), the container the
//! service gets, and the publish the cell probes, read from the merged files (the same merge
//! `portwhy lint` does), never from text compose printed.

use std::path::{Path, PathBuf};

use portwhy::lint::{service_publishes, ComposeSource, LintOptions, ServicePublish};
use portwhy_harness::image::Compose;
use portwhy_harness::Environment;

use serde::{Deserialize, Serialize};

use crate::publish::PublishSpec;

/// Where a scenario's compose folder lands inside the environment.
pub const IN_ENV: &str = "/opt/portwhy/compose";

/// A compose project as the trigger: files stored in `scenarios/<name>/`, merged in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeTrigger {
    /// `-p`: the project name (container names derive from it).
    pub project: String,
    /// `-f` in order, relative to `scenarios/<name>/`.
    pub files: Vec<String>,
    /// The service whose publish the cell checks, probes and proves remedies for.
    pub service: String,
    /// Appended after `up -d` (`--force-recreate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Compose runs before the trigger, each `up -d` with these files (in the same folder) and the
    /// same project: what was deployed before the file changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<ComposeBefore>,
    /// `scenarios/<name>/`, set by the loader.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// An earlier `up -d` of the same project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeBefore {
    pub files: Vec<String>,
    /// Another project's name (default: the trigger's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// The trigger resolved for one environment.
#[derive(Debug, Clone)]
pub struct ComposeRun {
    /// `docker compose -p P -f F...` (v1: `docker-compose -p P -f F...`).
    pub base: Vec<String>,
    pub args: Vec<String>,
    /// The service's container: `P-web-1` (v2) or `P_web_1` (v1).
    pub container: String,
    /// The service's first publish after the merge.
    pub publish: PublishSpec,
    /// The earlier deployments, each an `up -d` argv.
    pub before: Vec<Vec<String>>,
    /// The scenario's files as stored: (path in the environment, name, content).
    pub files: Vec<(String, String, Vec<u8>)>,
    pub service: String,
}

impl ComposeRun {
    /// The trigger as reports show it (v2's spelling; the cell records what it ran).
    pub fn display(c: &ComposeTrigger) -> String {
        let mut words = vec!["docker".to_owned(), "compose".to_owned()];
        words.extend(project_args(c, &c.project, &c.files));
        words.extend(["up".to_owned(), "-d".to_owned()]);
        words.extend(c.args.iter().cloned());
        words.join(" ")
    }

    /// Copy the files into `env` and spell the commands for the image's Compose.
    pub async fn prepare(
        env: &Environment,
        c: &ComposeTrigger,
        compose: Option<&Compose>,
    ) -> Result<ComposeRun, String> {
        let compose = compose.ok_or(
            "the engine image has no Compose (no io.portwhy.compose label): rebuild it with \
             `portwhy-lab images build` after adding docker-compose to its recipe in engines.toml",
        )?;
        // The image's label says what it carries; the binary in the environment must agree.
        let mut version = compose.command().iter().map(|s| s.to_string()).collect::<Vec<_>>();
        version.extend(["version".to_owned(), "--short".to_owned()]);
        let words: Vec<&str> = version.iter().map(String::as_str).collect();
        let out = env.exec(&words).await.map_err(|e| format!("{}: {e}", version.join(" ")))?;
        let reported = out.stdout.trim().trim_start_matches('v');
        if !out.success() || reported != compose.version {
            return Err(format!(
                "{} printed `{}` (exit {}), the image's label says {}: rebuild the image",
                version.join(" "),
                out.stdout.trim(),
                out.exit_code,
                compose.version
            ));
        }
        let mut names: Vec<&String> = c.files.iter().collect();
        names.extend(c.before.iter().flat_map(|b| b.files.iter()));
        let mut files = Vec::new();
        for name in names {
            let host = c.dir.join(name);
            let text = std::fs::read(&host).map_err(|e| format!("reading {}: {e}", host.display()))?;
            let path = format!("{}/{name}", in_env_dir(c));
            env.write_file(&path, &text, 0o644)
                .await
                .map_err(|e| format!("copying {}: {e}", host.display()))?;
            files.push((path, name.clone(), text));
        }
        let command = |project: &str, files: &[String]| {
            let mut w: Vec<String> = compose.command().iter().map(|s| s.to_string()).collect();
            w.extend(project_args(c, project, files));
            w
        };
        let publish = first_publish(c)?;
        let sep = if compose.v2 { "-" } else { "_" };
        Ok(ComposeRun {
            base: command(&c.project, &c.files),
            args: c.args.clone(),
            container: format!("{}{sep}{}{sep}1", c.project, c.service),
            publish,
            files,
            service: c.service.clone(),
            before: c
                .before
                .iter()
                .map(|b| {
                    let mut w = command(b.project.as_deref().unwrap_or(&c.project), &b.files);
                    w.extend(["up".to_owned(), "-d".to_owned()]);
                    w
                })
                .collect(),
        })
    }

    /// Write the scenario's files back, undoing a remedy's edit.
    pub async fn restore_files(&self, env: &Environment) -> Result<(), String> {
        for (path, _, text) in &self.files {
            env.write_file(path, text, 0o644).await.map_err(|e| format!("restoring {path}: {e}"))?;
        }
        Ok(())
    }

    /// The service's first publish as the files in the environment now read (after an edit).
    pub async fn publish_in(&self, env: &Environment) -> Result<PublishSpec, String> {
        let mut sources = Vec::new();
        for w in self.base.windows(2).filter(|w| w[0] == "-f") {
            let out = env.exec(&["cat", &w[1]]).await.map_err(|e| format!("reading {}: {e}", w[1]))?;
            if !out.success() {
                return Err(format!("reading {}: {}", w[1], out.stderr.trim()));
            }
            sources.push(ComposeSource { name: w[1].clone(), text: out.stdout });
        }
        let p = service_publishes(&sources, &LintOptions::default())
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|p| p.service == self.service)
            .ok_or_else(|| format!("service `{}` publishes no port after the edit", self.service))?;
        Ok(PublishSpec {
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_port: p.target,
            proto: Some(p.proto),
        })
    }

    pub fn up(&self) -> Vec<String> {
        let mut w = self.base.clone();
        w.extend(["up".to_owned(), "-d".to_owned()]);
        w.extend(self.args.iter().cloned());
        w
    }

    /// What undoes the trigger before it is run again: the project down, its network with it.
    pub fn down(&self) -> Vec<String> {
        let mut w = self.base.clone();
        w.push("down".to_owned());
        w
    }
}

fn in_env_dir(c: &ComposeTrigger) -> String {
    let name = c.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{IN_ENV}/{name}")
}

fn project_args(c: &ComposeTrigger, project: &str, files: &[String]) -> Vec<String> {
    let mut w = vec!["-p".to_owned(), project.to_owned()];
    for f in files {
        w.extend(["-f".to_owned(), format!("{}/{f}", in_env_dir(c))]);
    }
    w
}

/// The merged publishes of the trigger's files.
pub fn publishes(c: &ComposeTrigger) -> Result<Vec<ServicePublish>, String> {
    let sources = read_sources(&c.dir, &c.files)?;
    service_publishes(&sources, &LintOptions::default()).map_err(|e| e.to_string())
}

fn read_sources(dir: &Path, files: &[String]) -> Result<Vec<ComposeSource>, String> {
    files
        .iter()
        .map(|f| {
            let p = dir.join(f);
            std::fs::read_to_string(&p)
                .map(|text| ComposeSource { name: f.clone(), text })
                .map_err(|e| format!("reading {}: {e}", p.display()))
        })
        .collect()
}

fn first_publish(c: &ComposeTrigger) -> Result<PublishSpec, String> {
    let p = publishes(c)?
        .into_iter()
        .find(|p| p.service == c.service)
        .ok_or_else(|| format!("service `{}` publishes no port in {}", c.service, c.files.join(", ")))?;
    Ok(PublishSpec {
        host_ip: p.host_ip,
        host_port: p.host_port,
        container_port: p.target,
        proto: Some(p.proto),
    })
}

/// Checked by `validate`: the files exist and merge, the service is among them and publishes.
/// `Err((message, fix))`.
pub fn validate(c: &ComposeTrigger) -> Result<(), (String, String)> {
    for p in std::iter::once(&c.project).chain(c.before.iter().filter_map(|b| b.project.as_ref())) {
        if p.is_empty()
            || !p.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_')
        {
            return Err((
                format!("compose project `{p}` is not a valid project name"),
                "use lowercase letters, digits, `-` and `_`".into(),
            ));
        }
    }
    if c.files.is_empty() {
        return Err(("the compose trigger names no files".into(), "set files = [\"compose.yaml\"]".into()));
    }
    let folder = c.dir.display().to_string();
    let mut all: Vec<&String> = c.files.iter().collect();
    all.extend(c.before.iter().flat_map(|b| b.files.iter()));
    for f in all {
        if !c.dir.join(f).is_file() {
            return Err((
                format!("compose file {folder}/{f} does not exist"),
                format!("put the compose files of this scenario in {folder}/"),
            ));
        }
    }
    for files in std::iter::once(&c.files).chain(c.before.iter().map(|b| &b.files)) {
        let sources = read_sources(&c.dir, files).map_err(|e| (e, "check the file".to_owned()))?;
        service_publishes(&sources, &LintOptions::default())
            .map_err(|e| (format!("compose files {}: {e}", files.join(", ")), "fix the YAML".to_owned()))?;
    }
    first_publish(c).map(|_| ()).map_err(|e| (e, format!("give service `{}` a `ports` entry", c.service)))
}

/// `text` with line `line` (1-based) replaced by `new`, refusing when it does not read `old`: the
/// file changed since portwhy read it, and the edit would land on the wrong line.
pub fn edit_line(text: &str, line: usize, old: &str, new: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    match lines.get(line.wrapping_sub(1)) {
        Some(l) if *l == old => {
            lines[line - 1] = new;
            Ok(lines.join("\n"))
        }
        Some(l) => {
            Err(format!("line {line} reads `{l}`, not `{old}`: the file changed since portwhy read it"))
        }
        None => Err(format!("the file has no line {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::edit_line;

    #[test]
    fn an_edit_replaces_only_the_line_that_still_reads_as_expected() {
        let text = "services:\n  web:\n    ports:\n      - \"8080:80\"\n";
        let got = edit_line(text, 3, "    ports:", "    ports: !override").unwrap();
        assert_eq!(got, "services:\n  web:\n    ports: !override\n      - \"8080:80\"\n");
        assert!(edit_line(text, 2, "    ports:", "x").unwrap_err().contains("changed"));
        assert!(edit_line(text, 40, "a", "b").is_err());
    }
}
