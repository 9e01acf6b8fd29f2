//! portwhy-harness: real Docker engines in nested environments, and a fault injector for every
//! documented cause of a port that cannot be published.
//!
//! - [`catalog`]: the engine catalogue (`engines.toml`) as data.
//! - [`image`]: engine images built with debootstrap and `docker import`, cached by recipe hash.
//! - [`env`]: one container per environment, running its own dockerd.
//! - [`faults`]: typed fault injectors with inject / check / undo.
//! - [`docker`]: the connection to the outer daemon.
//! - [`labels`]: the label keys on everything the harness creates.
//! - [`binaries`]: the host-built binaries copied into environments.
//! - [`gc`]: sweeping leftovers by label.

pub mod binaries;
pub mod catalog;
pub mod docker;
pub mod env;
pub mod error;
pub mod faults;
pub mod gc;
pub mod image;
pub mod labels;
pub mod poll;

pub use catalog::{load_catalog, EngineSpec, Recipe};
pub use docker::connect;
pub use env::{EnvOptions, Environment, ExecOutput, FirewallMode, RootlessPortDriver, RunLabels, StartTimes};
pub use error::HarnessError;
pub use faults::{Fault, Injected};
pub use gc::{sweep, sweep_on_ctrl_c, SweepReport};
pub use image::{ensure_image, list_images, prune_images, EngineImage, ImageInfo};
