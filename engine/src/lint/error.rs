//! Why compose files could not be linted at all: bad input, exit code 2.

use super::finding::SourceLocation;
use crate::exit::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("no compose file given: pass compose.yaml, then any override files in merge order")]
    NoFiles,
    #[error("no compose file in {dir} or any folder above it (compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml): pass one with -f, or run portwhy lint in the project's folder")]
    NotFound { dir: String },
    /// `COMPOSE_FILE` and its relatives, as the environment or the project's `.env` set them.
    #[error("{0}")]
    Environment(String),
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
