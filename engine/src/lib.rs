//! portwhy: explains why Docker cannot publish a host port.
//!
//! The library is pure and synchronous at its core: `Evidence` in, `Diagnosis` out
//! (`rules::diagnose`). Collectors in `collect` read a live host and fail soft; everything else is
//! parsers, rules and renderers. The `portwhy` command line is the binary's own module tree
//! (`src/cli/`, compiled only into `src/main.rs`) over this library.

pub mod cause;
pub mod collect;
pub mod diagnosis;
pub mod evidence;
pub mod exit;
pub mod lint;
pub mod overlap;
pub mod parse;
pub mod port;
pub mod remedy;
pub mod report;
pub mod rules;
pub mod signals;
pub mod suggest;
pub mod version;
