//! Reading an evidence bundle written by `portwhy collect`: the schema version first, so a bundle
//! from another portwhy is refused with a reason instead of misread.

use super::{Evidence, BUNDLE_SCHEMA_VERSION};

/// Why a text is not a bundle this portwhy reads. Each message reads after the bundle's name
/// ("bundle.json has no schema_version: ...").
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("is not a portwhy bundle (invalid JSON at line {line}, column {column}): re-collect it with `portwhy collect PORT`")]
    Json { line: usize, column: usize },
    #[error("has bundle schema_version {found}; this portwhy reads version {BUNDLE_SCHEMA_VERSION}: collect it again with this portwhy")]
    Version { found: u64 },
    #[error("has no schema_version: it is not a bundle written by `portwhy collect`")]
    NoVersion,
    #[error("is not a valid portwhy bundle: {0}")]
    Invalid(serde_json::Error),
}

/// Parse a bundle's text.
pub fn read_bundle(text: &str) -> Result<Evidence, BundleError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BundleError::Json { line: e.line(), column: e.column() })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(BUNDLE_SCHEMA_VERSION) => {}
        Some(found) => return Err(BundleError::Version { found }),
        None => return Err(BundleError::NoVersion),
    }
    serde_json::from_value(value).map_err(BundleError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_the_fields() {
        assert!(matches!(read_bundle("{\"schema_version\": 2}"), Err(BundleError::Version { found: 2 })));
        assert!(matches!(read_bundle("{\"query\": {}}"), Err(BundleError::NoVersion)));
        assert!(matches!(read_bundle("nope"), Err(BundleError::Json { line: 1, .. })));
        assert!(matches!(read_bundle("{\"schema_version\": 1}"), Err(BundleError::Invalid(_))));
        let ev = read_bundle("{\"schema_version\": 1, \"query\": {\"port\": 80, \"proto\": \"tcp\"}}")
            .expect("minimal bundle");
        assert_eq!(ev.query.port, 80);
    }
}
