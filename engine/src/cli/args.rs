//! Option groups shared by several commands, flattened into each command's arguments.

use std::path::PathBuf;

use clap::Args;
use portwhy::collect::CollectOptions;

/// Where the collectors look.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct CollectArgs {
    /// Docker endpoint, e.g. unix:///run/user/1000/docker.sock (default: DOCKER_HOST or /var/run/docker.sock).
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// Do not talk to the Docker API.
    #[arg(long)]
    no_docker: bool,
    /// Root of procfs (for tests and containers with a host /proc mounted elsewhere).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    proc_root: PathBuf,
}

impl CollectArgs {
    pub(crate) fn options(&self) -> CollectOptions {
        CollectOptions {
            proc_root: self.proc_root.clone(),
            docker_host: self.docker_host.clone(),
            skip_docker: self.no_docker,
        }
    }
}

/// What the daemon said, and about which container.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct ErrorTextArgs {
    /// The daemon's error text (`-` reads it from stdin).
    #[arg(long, short = 'e')]
    pub(crate) error: Option<String>,
    /// The container being published: it is the subject, never blamed as the holder (use it
    /// after a publish that succeeded but whose traffic goes elsewhere).
    #[arg(long, value_name = "NAME")]
    pub(crate) container: Option<String>,
}

/// Machine-readable output.
#[derive(Debug, Args, Default, Clone, Copy)]
pub(crate) struct JsonArg {
    /// Print the versioned JSON document instead of the human screen.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Colour on the human screen.
#[derive(Debug, Args, Default, Clone, Copy)]
pub(crate) struct ColorArg {
    /// Disable colour (also NO_COLOR=1).
    #[arg(long)]
    pub(crate) no_color: bool,
}
