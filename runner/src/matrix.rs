//! Expanding scenarios into cells (scenario x engine x backend), filtering and sharding them.

use std::sync::Arc;

use portwhy_harness::EngineSpec;

use crate::outcome::CellId;
use crate::scenario::{engine_matches, BackendName, EngineKey, Expectation, Scenario};

/// One cell to run.
#[derive(Debug, Clone)]
pub struct CellPlan {
    pub scenario: Arc<Scenario>,
    pub engine: EngineSpec,
    pub backend: BackendName,
    pub expectation: Expectation,
}

impl CellPlan {
    pub fn id(&self) -> CellId {
        CellId {
            scenario: self.scenario.name.clone(),
            engine_name: self.engine.name.clone(),
            backend: self.backend,
        }
    }
}

/// Which cells a run selects.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Engine names or version prefixes; empty = every engine in the catalogue.
    pub engines: Vec<String>,
    pub backends: Vec<BackendName>,
    /// `(index, count)`, 1-based index: keep the cells of shard `index` out of `count`.
    pub shard: Option<(usize, usize)>,
    /// Recorded cell times: shards are balanced by them (`shard::balance`). Without them, every
    /// cell whose position modulo `count` is `index - 1`.
    pub timings: Option<crate::shard::Timings>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--engine {0}: no engine in the catalogue has that name or version (known: {1})")]
    UnknownEngine(String, String),
    #[error("{scenario}: {message}")]
    Expectation { scenario: String, message: String },
    #[error("the selection holds no cell: check --engine, --backend and --scenario")]
    Empty,
}

/// Parse `--shard I/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: write the shard as I/N, e.g. 1/4"))?;
    let (i, n): (usize, usize) = (
        i.parse().map_err(|_| format!("`{i}` is not a number"))?,
        n.parse().map_err(|_| format!("`{n}` is not a number"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("shard {i}/{n}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

/// Every cell of `scenarios` x `engines` x backends that the selection keeps, in a stable order.
pub fn plan(
    scenarios: &[Scenario],
    engines: &[EngineSpec],
    sel: &Selection,
) -> Result<Vec<CellPlan>, PlanError> {
    for want in &sel.engines {
        let known =
            engines.iter().any(|e| engine_matches(want, EngineKey { name: &e.name, version: &e.version }));
        if !known {
            let names: Vec<String> = engines.iter().map(|e| format!("{} ({})", e.name, e.version)).collect();
            return Err(PlanError::UnknownEngine(want.clone(), names.join(", ")));
        }
    }
    let mut cells = Vec::new();
    for s in scenarios {
        let s = Arc::new(s.clone());
        for e in engines {
            let key = EngineKey { name: &e.name, version: &e.version };
            if !s.runs_on(key) {
                continue;
            }
            if !sel.engines.is_empty() && !sel.engines.iter().any(|w| engine_matches(w, key)) {
                continue;
            }
            for b in &s.environment.backends {
                if (!sel.backends.is_empty() && !sel.backends.contains(b)) || !b.applies_to(&e.version) {
                    continue;
                }
                let expectation = s
                    .expectation_for_cell(key, Some(*b))
                    .map_err(|message| PlanError::Expectation { scenario: s.name.clone(), message })?;
                cells.push(CellPlan {
                    scenario: s.clone(),
                    engine: e.clone(),
                    backend: *b,
                    expectation: expectation.clone(),
                });
            }
        }
    }
    if let Some((i, n)) = sel.shard {
        cells = match &sel.timings {
            Some(timings) => {
                let ids: Vec<CellId> = cells.iter().map(CellPlan::id).collect();
                let shard_of = crate::shard::balance(&ids, timings, n);
                cells.into_iter().zip(shard_of).filter(|(_, s)| *s == i - 1).map(|(c, _)| c).collect()
            }
            None => cells.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|(_, c)| c).collect(),
        };
    }
    if cells.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_reject_nonsense() {
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("x").is_err());
    }
}
