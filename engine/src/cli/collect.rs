//! `portwhy collect PORT`: every source about one port as a JSON bundle, with the daemon's text
//! and the container being published when given, to replay anywhere with `portwhy diagnose
//! --evidence`.

use clap::Args;
use portwhy::collect::LiveHost;
use portwhy::exit::ExitCode;

use super::args::{CollectArgs, ErrorTextArgs};
use super::failure::Failure;
use super::input::{classify_error, query_from, read_error_text};
use super::output::{warn_unavailable, Output};

#[derive(Debug, Args)]
pub(crate) struct CollectCmd {
    /// The port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`. Optional with --error.
    port: Option<String>,
    #[command(flatten)]
    text: ErrorTextArgs,
    #[command(flatten)]
    collect: CollectArgs,
}

pub(crate) fn run(args: &CollectCmd, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    if args.port.is_none() && args.text.error.is_none() {
        return Err(Failure::bad_input(
            "give the port to collect, e.g. `portwhy collect 8080`, or the daemon's text with --error",
        ));
    }
    let text = args.text.error.as_deref().map(read_error_text).transpose()?;
    // Classified now so a bundle never keeps a text `diagnose` would refuse.
    let error = text.as_deref().map(|t| classify_error(t, args.port.is_some())).transpose()?;
    let query = query_from(args.port.as_deref(), error.as_ref())?;
    let mut evidence = LiveHost { options: args.collect.options() }.gather(&query);
    evidence.error_text = text;
    evidence.subject = args.text.container.clone();
    warn_unavailable(&evidence.unavailable);
    out.json(&evidence)?;
    Ok(ExitCode::Success)
}
