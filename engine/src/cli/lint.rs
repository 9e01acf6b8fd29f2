//! `portwhy lint`: host ports the services of a compose project would fight over. Without files
//! it finds them as `docker compose` does (`COMPOSE_FILE`, then compose.yaml and its override in
//! this folder or the nearest parent).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use portwhy::exit::ExitCode;
use portwhy::lint::{self, FileRequest};

use super::args::JsonArg;
use super::failure::Failure;
use super::output::{warn, Output};

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Compose files in merge order (the base file first, then overrides); the same as `-f`.
    #[arg(value_name = "FILE", conflicts_with = "file")]
    files: Vec<PathBuf>,
    /// A compose file, repeatable, merged in the order given (`-` reads stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
    /// The project's folder: where the files are looked for and `.env` is read (default: the
    /// first file's folder, else the nearest folder from here up that holds compose.yaml).
    #[arg(long, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    #[command(flatten)]
    json: JsonArg,
}

pub(crate) fn run(args: &LintArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let request = FileRequest {
        files: if args.file.is_empty() { args.files.clone() } else { args.file.clone() },
        project_directory: args.project_directory.clone(),
    };
    let cwd = std::env::current_dir().map_err(|e| {
        Failure::bad_input(format!(
            "cannot read the current folder: {e}; run portwhy lint from a folder that exists"
        ))
    })?;
    // Variables that are not UTF-8 cannot appear in a compose file's interpolation: leave them out.
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let bad = |e: lint::LintError| Failure { code: e.exit_code(), message: e.to_string() };
    let project = lint::find_project(&request, &cwd, &env).map_err(bad)?;
    for w in &project.warnings {
        warn(w);
    }
    let report = lint::lint_files(&project.files, &project.options).map_err(bad)?;
    if args.json.json {
        out.json(&report)?;
    } else {
        out.text(lint::render_human(&report).trim_end())?;
    }
    Ok(report.exit_code())
}
