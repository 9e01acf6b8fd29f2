//! Where a command's output goes: the result on stdout, warnings on stderr, and whether the
//! human screen is coloured (decided here, passed to the renderers).

use std::io::{IsTerminal, Write};

use portwhy::evidence::Unavailable;
use portwhy::report::text::printable;
use portwhy::report::Style;
use serde::Serialize;

use super::args::ColorArg;
use super::failure::Failure;

/// The result stream of one command.
pub(crate) struct Output<'a> {
    out: &'a mut dyn Write,
}

impl<'a> Output<'a> {
    pub(crate) fn new(out: &'a mut dyn Write) -> Self {
        Self { out }
    }

    /// One block of text, newline-terminated.
    pub(crate) fn text(&mut self, text: &str) -> Result<(), Failure> {
        match writeln!(self.out, "{text}") {
            Ok(()) => Ok(()),
            // A closed pipe (`portwhy 8080 | head -1`) is the reader's choice, not our failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Failure::internal(e)),
        }
    }

    /// A model as its versioned JSON document.
    pub(crate) fn json<T: Serialize>(&mut self, value: &T) -> Result<(), Failure> {
        self.text(&serde_json::to_string_pretty(value).map_err(Failure::internal)?)
    }
}

/// Colour only on a terminal, never with NO_COLOR set (no-color.org) or `--no-color`.
pub(crate) fn style(arg: ColorArg) -> Style {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Style { color: !arg.no_color && !no_color_env && std::io::stdout().is_terminal() }
}

/// A warning on stderr, on one line: the run goes on.
pub(crate) fn warn(message: &str) {
    eprintln!("portwhy: warning: {}", printable(message));
}

/// The failure's one line on stderr (it may quote what the user or the host wrote).
pub(crate) fn fail(message: &str) {
    eprintln!("portwhy: {}", printable(message));
}

pub(crate) fn warn_unavailable(unavailable: &[Unavailable]) {
    for u in unavailable {
        warn(&format!("{} unavailable: {}", u.source, u.reason));
    }
}
