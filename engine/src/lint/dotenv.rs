//! The variables interpolation sees: the project's `.env` file under the process environment.

use std::collections::BTreeMap;
use std::path::Path;

/// The variables interpolation may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintOptions {
    pub env: BTreeMap<String, String>,
}

impl LintOptions {
    /// What `docker compose` would see: the project's `.env` file (beside the first compose file),
    /// overridden by the process environment.
    pub fn from_environment(first_file: &Path) -> Self {
        let mut options = Self::from_dotenv(first_file);
        // A variable that is not UTF-8 cannot be interpolated into a compose file: leave it out
        // (`std::env::vars` would panic on it).
        options.env.extend(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        );
        options
    }

    /// Only the project's `.env` file beside `first_file` (empty when there is none).
    pub fn from_dotenv(first_file: &Path) -> Self {
        let dir = first_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let env = std::fs::read_to_string(dir.join(".env")).map(|t| parse_env_file(&t)).unwrap_or_default();
        Self { env }
    }
}

/// `KEY=VALUE` lines of a compose `.env` file (comments, `export ` and surrounding quotes allowed).
///
/// Kept by hand: a dozen lines for the subset port values need, with compose's own reader
/// (compose-go `dotenv`) as the reference rather than a Rust crate's reading.
pub(crate) fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let env = parse_env_file("# c\nexport A=1\nB = \"two\"\nC='3'\nnot a pair\n");
        assert_eq!(env.get("A").map(String::as_str), Some("1"));
        assert_eq!(env.get("B").map(String::as_str), Some("two"));
        assert_eq!(env.get("C").map(String::as_str), Some("3"));
        assert_eq!(env.len(), 3);
    }
}
