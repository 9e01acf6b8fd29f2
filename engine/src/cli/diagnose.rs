//! `portwhy diagnose PORT` (and the shorthand `portwhy PORT`): read the host or a bundle, run the
//! rules, print the verdict. A bundle brings the daemon's text and the subject it was collected
//! with; `--error` and `--container` given here take their place.

use std::path::PathBuf;

use clap::Args;
use portwhy::collect::LiveHost;
use portwhy::evidence::Evidence;
use portwhy::exit::ExitCode;
use portwhy::report::human;
use portwhy::rules;

use super::args::{CollectArgs, ColorArg, ErrorTextArgs, JsonArg};
use super::failure::Failure;
use super::input::{classify_error, load_bundle, parse_port, query_from, read_error_text};
use super::output::{style, warn_unavailable, Output};

#[derive(Debug, Args, Default)]
pub(crate) struct DiagnoseArgs {
    /// The port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`. Optional with --error.
    port: Option<String>,
    #[command(flatten)]
    text: ErrorTextArgs,
    /// Collect nothing: classify the error text alone (no Docker, no root needed).
    #[arg(long)]
    offline: bool,
    /// Replay a bundle written by `portwhy collect` instead of reading this host (with the
    /// daemon's text and the container it keeps, unless --error / --container are given).
    #[arg(long, value_name = "FILE", conflicts_with = "offline")]
    evidence: Option<PathBuf>,
    #[command(flatten)]
    json: JsonArg,
    #[command(flatten)]
    color: ColorArg,
    #[command(flatten)]
    collect: CollectArgs,
}

impl DiagnoseArgs {
    /// Whether anything names a port to diagnose (`portwhy` alone does not).
    pub(crate) fn has_subject(&self) -> bool {
        self.port.is_some() || self.text.error.is_some() || self.evidence.is_some()
    }
}

pub(crate) fn run(args: &DiagnoseArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    // A bundle knows its port, so the text need not name one.
    let port_known = args.port.is_some() || args.evidence.is_some();
    let mut error = match &args.text.error {
        Some(raw) => Some(classify_error(&read_error_text(raw)?, port_known)?),
        None => None,
    };
    let mut subject = args.text.container.clone();
    let evidence = match &args.evidence {
        Some(path) => {
            let evidence = retarget(load_bundle(path)?, args.port.as_deref())?;
            // What `collect --error/--container` kept, unless given again here.
            if let (None, Some(text)) = (&error, &evidence.error_text) {
                let e = classify_error(text, true).map_err(|f| {
                    Failure::bad_input(format!(
                        "{}: the daemon's text it keeps: {}",
                        path.display(),
                        f.message
                    ))
                })?;
                error = Some(e);
            }
            subject = subject.or_else(|| evidence.subject.clone());
            evidence
        }
        None => {
            let query = query_from(args.port.as_deref(), error.as_ref())?;
            if args.offline {
                let mut ev = Evidence::new(query);
                ev.mark_unavailable("all", "offline: nothing was collected (--offline)");
                ev
            } else {
                let ev = LiveHost { options: args.collect.options() }.gather(&query);
                warn_unavailable(&ev.unavailable);
                ev
            }
        }
    };
    let diagnosis = rules::diagnose_for(&evidence, error.as_ref(), subject.as_deref());
    if args.json.json {
        out.json(&diagnosis)?;
    } else {
        out.text(&human::render(&diagnosis, style(args.color)))?;
    }
    Ok(diagnosis.exit_code())
}

/// Replaying with a port re-targets the question (another address or protocol); the bundle only
/// holds that port's sockets, so another port number is refused.
fn retarget(mut evidence: Evidence, port: Option<&str>) -> Result<Evidence, Failure> {
    if let Some(p) = port {
        let q = parse_port(p)?;
        if q.port != evidence.query.port {
            return Err(Failure::bad_input(format!(
                "the bundle was collected for port {}, not {}: collect again with `portwhy collect {}`",
                evidence.query.port, q.port, q.port
            )));
        }
        evidence.query = q;
    }
    Ok(evidence)
}
