//! The harness's error type: every failure says what was attempted and, where one exists, the fix.

use std::path::PathBuf;

/// Everything that can go wrong while building engines, running environments or injecting faults.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The outer Docker daemon did not answer; nothing live can run.
    #[error(
        "Docker is unreachable at {host}: {reason}. Start the daemon (`dockerd > /var/log/dockerd.log 2>&1 &` \
         or `systemctl start docker`) or point DOCKER_HOST at a reachable daemon (e.g. unix:///var/run/docker.sock)"
    )]
    DockerUnreachable { host: String, reason: String },

    /// A Docker API call failed after the daemon was reached.
    #[error("Docker API call `{call}` failed: {source}")]
    Docker {
        call: &'static str,
        #[source]
        source: bollard::errors::Error,
    },

    /// testcontainers could not create or start the environment container.
    #[error("starting container {name} failed: {reason}")]
    ContainerStart { name: String, reason: String },

    /// The engine catalogue could not be read or is invalid.
    #[error("engine catalogue {path}: {reason}")]
    Catalog { path: PathBuf, reason: String },

    /// A cold image build failed.
    #[error("building engine image `{engine}` failed: {reason}")]
    ImageBuild { engine: String, reason: String },

    /// The environment started but its inner engine did not become ready or is the wrong version.
    #[error("environment {env}: {reason}")]
    Environment { env: String, reason: String },

    /// A command inside an environment exited non-zero where success was required.
    #[error("`{command}` in {env} exited {exit_code}: {stderr}")]
    CommandFailed { env: String, command: String, exit_code: i64, stderr: String },

    /// A fault could not be injected, or is not observable after injection.
    #[error("fault {fault}: {reason}")]
    Fault { fault: String, reason: String },

    /// A host-built binary copied into environments (`portwhy`, `portholder`) was not found.
    #[error(
        "{name} binary not found (looked in: {searched}). Build it with `cargo build -p {name}` \
         or name its path (--portwhy / PORTWHY_BIN, PORTWHY_PORTHOLDER)"
    )]
    BinaryMissing { name: String, searched: String },

    /// Local I/O on the host failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl HarnessError {
    pub(crate) fn docker(call: &'static str) -> impl FnOnce(bollard::errors::Error) -> Self {
        move |source| HarnessError::Docker { call, source }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| HarnessError::Io { context, source }
    }

    pub(crate) fn fault(fault: impl Into<String>, reason: impl Into<String>) -> Self {
        HarnessError::Fault { fault: fault.into(), reason: reason.into() }
    }
}
