//! portwhy-lab: runs every scenario across engines and backends, proves verdicts and remedies, reports.
//!
//! Data flow: `scenario` files are expanded into cells (`matrix`), each cell runs in its own
//! environment (`cell`), emits `event::Event`s on one channel, and every `report` consumes them.

pub mod cell;
pub mod cli;
pub mod compose;
pub mod event;
pub mod matrix;
pub mod outcome;
pub mod probe;
pub mod proof;
pub mod publish;
pub mod recording;
pub mod redact;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod verdict;
