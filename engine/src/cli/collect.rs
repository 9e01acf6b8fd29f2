//! `portwhy collect PORT`: every source about one port as a JSON bundle, to replay anywhere with
//! `portwhy diagnose --evidence`.

use clap::Args;
use portwhy::collect::LiveHost;
use portwhy::exit::ExitCode;

use super::args::CollectArgs;
use super::failure::Failure;
use super::input::parse_port;
use super::output::{warn_unavailable, Output};

#[derive(Debug, Args)]
pub(crate) struct CollectCmd {
    /// The port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`.
    port: String,
    #[command(flatten)]
    collect: CollectArgs,
}

pub(crate) fn run(args: &CollectCmd, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let query = parse_port(&args.port)?;
    let evidence = LiveHost { options: args.collect.options() }.gather(&query);
    warn_unavailable(&evidence.unavailable);
    out.json(&evidence)?;
    Ok(ExitCode::Success)
}
