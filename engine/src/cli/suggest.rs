//! `portwhy suggest PORT`: the nearest free host port for that address and protocol.

use clap::Args;
use portwhy::collect::claims;
use portwhy::exit::ExitCode;
use portwhy::report;
use portwhy::suggest::Suggestion;

use super::args::{CollectArgs, JsonArg};
use super::failure::Failure;
use super::input::parse_port;
use super::output::{warn_unavailable, Output};

#[derive(Debug, Args)]
pub(crate) struct SuggestArgs {
    /// The port: `8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`.
    port: String,
    /// Allow ports below 1024.
    #[arg(long)]
    privileged: bool,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    collect: CollectArgs,
}

pub(crate) fn run(args: &SuggestArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let query = parse_port(&args.port)?;
    let host = claims::collect(&args.collect.options(), &query, args.privileged);
    let suggestion = Suggestion::new(&query, &host.claims, &host.reserved, host.unavailable);
    if args.json.json {
        out.json(&suggestion)?;
    } else {
        warn_unavailable(&suggestion.unavailable);
        out.text(&report::suggest::render(&suggestion))?;
    }
    Ok(suggestion.exit_code())
}
