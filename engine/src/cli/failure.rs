//! A command's failure as the user sees it: one line naming the problem and the fix, and its
//! documented exit code.

use portwhy::exit::ExitCode;

#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: ExitCode,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self { code: ExitCode::BadInput, message: message.into() }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self { code: ExitCode::Internal, message: format!("internal error: {e}; please report it") }
    }
}
