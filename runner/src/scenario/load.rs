//! Reading scenario files: TOML into the schema, errors with the file, the line of the key they
//! are about (from the parser's spans) and the fix.

use std::path::{Path, PathBuf};

use super::validate::validate;
use super::Scenario;

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// TOML syntax or a field of the wrong type: toml's message already shows the line and a caret.
    #[error("{}:{line}:{column}: {message}\n  fix: {fix}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String, fix: String },
    /// Parsed, but breaks a rule of the schema.
    #[error("{}:{line}: {message}\n  fix: {fix}", path.display())]
    Invalid { path: PathBuf, line: usize, message: String, fix: String },
    #[error("no scenario named `{name}` in {}: known: {known}", dir.display())]
    Unknown { name: String, dir: PathBuf, known: String },
}

impl ScenarioError {
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Syntax { path, .. } | Self::Invalid { path, .. } => path,
            Self::Unknown { dir, .. } => dir,
        }
    }
}

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

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// 1-based line of the key at `path` (e.g. `["expect", "engine", "29", "cause"]`), from the TOML
/// parser's spans; when the key is absent, the line of the deepest table on the path that exists
/// (a missing key is reported where it belongs), and line 1 when not even that exists.
pub(super) fn line_at(text: &str, path: &[&str]) -> usize {
    let Ok(doc) = toml_edit::ImDocument::parse(text) else { return 1 };
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut array: Option<&toml_edit::ArrayOfTables> = None;
    let mut line = 1;
    for seg in path {
        // A number picks one table of an array of tables (`[[expect.claims]]`).
        if let (Ok(i), Some(list)) = (seg.parse::<usize>(), array.take()) {
            let Some(t) = list.get(i) else { break };
            if let Some(span) = t.span() {
                line = line_col(text, span.start).0;
            }
            table = t;
            continue;
        }
        let Some((key, item)) = table.get_key_value(seg) else { break };
        if let Some(span) = key.span().or_else(|| item.span()) {
            line = line_col(text, span.start).0;
        }
        if let Some(list) = item.as_array_of_tables() {
            array = Some(list);
            continue;
        }
        match item.as_table_like() {
            Some(t) => table = t,
            None => break,
        }
    }
    line
}

/// A hint for the most common mistakes, from toml's message.
fn fix_for(message: &str) -> String {
    if message.contains("unknown variant") {
        return "use one of the values the message lists (spelling and case matter)".into();
    }
    if message.contains("unknown field") {
        return "remove or rename the key: the message lists the keys this table accepts".into();
    }
    if message.starts_with("missing field") {
        return "add the missing key (see scenarios/README.md for the schema)".into();
    }
    if message.contains("invalid type") {
        return "give the value the type the message asks for (a string needs quotes, a list needs [ ])"
            .into();
    }
    "fix the TOML at that position (see scenarios/README.md for the schema)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_at_names_the_key_of_the_table_it_is_about() {
        let text = "name = \"x\"\n[expect]\ncause = \"PW001\"\n\n[expect.engine.\"29\"]\ncause = \"PW008\"\n\n[[expect.claims]]\nnote = \"a\"\n[[expect.claims]]\neffects = []\n";
        assert_eq!(line_at(text, &["expect", "cause"]), 3);
        assert_eq!(line_at(text, &["expect", "engine", "29", "cause"]), 6);
        assert_eq!(line_at(text, &["expect", "claims", "1", "effects"]), 11);
        // A missing key is reported at the deepest table that exists.
        assert_eq!(line_at(text, &["expect", "engine", "29", "stage"]), 5);
        assert_eq!(line_at("not = [toml", &["name"]), 1);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\nd", 4), (2, 3));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
