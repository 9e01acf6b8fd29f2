//! The inputs `diagnose` and `collect` share: the port, the daemon's error text, the question they
//! make together, and a recorded bundle.

use std::io::Read;
use std::path::Path;

use portwhy::evidence::bundle::read_bundle;
use portwhy::evidence::Evidence;
use portwhy::parse::error::{classify, DaemonError};
use portwhy::port::{PortQuery, Proto};

use super::failure::Failure;
use super::output::warn;

pub(crate) fn parse_port(s: &str) -> Result<PortQuery, Failure> {
    s.parse::<PortQuery>().map_err(|e| Failure::bad_input(format!("bad port `{s}`: {e}")))
}

/// The text of `--error TEXT`, or stdin for `--error -`.
pub(crate) fn read_error_text(arg: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        Failure::bad_input(format!("cannot read the error text from stdin: {e}; pass it with --error TEXT"))
    })?;
    Ok(text)
}

/// Classify the daemon's text; without a port, it must name one itself.
pub(crate) fn classify_error(text: &str, port_given: bool) -> Result<DaemonError, Failure> {
    let e = classify(text).map_err(|e| Failure::bad_input(e.to_string()))?;
    if !e.is_recognised() && !port_given {
        return Err(Failure::bad_input(
            "the error text names no port and no known Docker wording: pass the port too (`portwhy diagnose 8080 --error ...`) or paste the daemon's whole message",
        ));
    }
    Ok(e)
}

/// The question: the port as given, completed by the address and protocol the error text names.
pub(crate) fn query_from(port: Option<&str>, error: Option<&DaemonError>) -> Result<PortQuery, Failure> {
    let mut q = match (port, error.and_then(|e| e.host_port)) {
        (Some(p), _) => parse_port(p)?,
        (None, Some(p)) => PortQuery { port: p, ..PortQuery::default() },
        (None, None) => return Err(Failure::bad_input("give the port: the error text names none")),
    };
    if let Some(e) = error {
        if let Some(p) = e.host_port {
            if p != q.port {
                warn(&format!("the error text names port {p}, but you asked about {}", q.port));
                return Ok(q);
            }
        }
        if q.host_ip.is_none() {
            q.host_ip = e.host_ip.as_deref().and_then(|ip| ip.parse().ok());
        }
        if e.proto_stated && port.is_none_or(|p| !p.contains('/')) {
            q.proto = e.proto;
        }
    }
    if q.proto == Proto::Sctp {
        return Err(Failure::bad_input("sctp ports are not supported yet: use tcp or udp"));
    }
    Ok(q)
}

/// A bundle written by `portwhy collect`.
pub(crate) fn load_bundle(path: &Path) -> Result<Evidence, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::bad_input(format!(
            "cannot read bundle {}: {e}; create one with `portwhy collect PORT > bundle.json`",
            path.display()
        ))
    })?;
    read_bundle(&text).map_err(|e| Failure::bad_input(format!("{} {e}", path.display())))
}
