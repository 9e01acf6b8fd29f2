//! Why compose files could not be linted at all: bad input, exit code 2.

use super::finding::SourceLocation;
use crate::exit::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("no compose file given: pass compose.yaml, then any override files in merge order")]
    NoFiles,
    #[error("cannot read {path}: {source}; check the path and permissions")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: invalid YAML: {message}; fix the syntax at that line (indentation, an unclosed quote or bracket, a tab)")]
    Yaml { location: SourceLocation, message: String },
    #[error("{location}: {message}; {fix}")]
    Invalid { location: SourceLocation, message: String, fix: String },
}

impl LintError {
    /// Always bad input: nothing was linted.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}
