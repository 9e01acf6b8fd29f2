//! What is wrong with a scenario file, and where: the line of the key an error is about (from the
//! TOML parser's spans) and a fix for the common mistakes.

use std::path::{Path, PathBuf};

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
pub(super) fn fix_for(message: &str) -> String {
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
