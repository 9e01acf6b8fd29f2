//! `portwhy signals`: monitoring signals of the whole host.

use clap::Args;
use portwhy::collect;
use portwhy::exit::ExitCode;
use portwhy::report;

use super::args::{CollectArgs, JsonArg};
use super::failure::Failure;
use super::output::Output;

#[derive(Debug, Args)]
pub(crate) struct SignalsArgs {
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    collect: CollectArgs,
}

pub(crate) fn run(args: &SignalsArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let signals = collect::signals::collect(&args.collect.options());
    if args.json.json {
        out.json(&signals)?;
    } else {
        out.text(&report::signals::render(&signals))?;
    }
    Ok(if signals.unavailable.is_empty() { ExitCode::Success } else { ExitCode::Inconclusive })
}
