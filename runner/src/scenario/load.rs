//! Reading scenario files: TOML into the schema, then the rules a parsed file must meet.

use std::path::{Path, PathBuf};

use super::error::{fix_for, line_col, ScenarioError};
use super::validate::validate;
use super::Scenario;

/// Load and validate one file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
    parse(path, &text)
}

/// Parse and validate text that came from `path` (used in messages).
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let mut scenario: Scenario = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let message = e.message().trim().to_owned();
        ScenarioError::Syntax { path: path.to_owned(), line, column, fix: fix_for(&message), message }
    })?;
    if let Some(c) = &mut scenario.trigger.compose {
        c.dir = path.with_extension("");
    }
    validate(path, text, &scenario)?;
    Ok(scenario)
}

/// Every `*.toml` in `dir`, sorted by file name; the first broken file stops the load.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, ScenarioError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ScenarioError::Read { path: dir.to_owned(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| load(&p).map(|s| (p, s))).collect()
}

/// The scenarios named in `names` (all when empty).
pub fn select(dir: &Path, names: &[String]) -> Result<Vec<Scenario>, ScenarioError> {
    let all = load_dir(dir)?;
    if names.is_empty() {
        return Ok(all.into_iter().map(|(_, s)| s).collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|(_, s)| &s.name == n).map(|(_, s)| s.clone()).ok_or_else(|| {
                ScenarioError::Unknown {
                    name: n.clone(),
                    dir: dir.to_owned(),
                    known: all.iter().map(|(_, s)| s.name.as_str()).collect::<Vec<_>>().join(", "),
                }
            })
        })
        .collect()
}
