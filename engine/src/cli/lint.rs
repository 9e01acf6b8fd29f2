//! `portwhy lint FILE...`: host ports the services of a compose project would fight over.

use std::path::PathBuf;

use clap::Args;
use portwhy::exit::ExitCode;
use portwhy::lint;

use super::args::JsonArg;
use super::failure::Failure;
use super::output::Output;

#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Compose files, in merge order (the base file first, then overrides).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    json: JsonArg,
}

pub(crate) fn run(args: &LintArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let first = args.files.first().map(PathBuf::as_path).unwrap_or(std::path::Path::new("compose.yaml"));
    let report = lint::lint_files(&args.files, &lint::LintOptions::from_environment(first))
        .map_err(|e| Failure { code: e.exit_code(), message: e.to_string() })?;
    if args.json.json {
        out.json(&report)?;
    } else {
        out.text(lint::render_human(&report).trim_end())?;
    }
    Ok(report.exit_code())
}
