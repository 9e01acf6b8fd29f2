//! What a lint rule is: fixed-heading documentation and a pure check over the merged model.

use super::finding::{LintFinding, Severity};
use super::model::Model;

/// Documentation of one lint rule, printed by `portwhy explain PWL001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintRuleDoc {
    pub code: &'static str,
    pub name: &'static str,
    /// The severity its findings usually have (some rules lower it case by case).
    pub severity: Severity,
    pub what_it_detects: &'static str,
    pub why_it_happens: &'static str,
    pub example: &'static str,
    pub fix: &'static str,
}

/// A lint rule: reads the model every file was merged into, returns its findings.
pub(crate) trait LintRule: Sync {
    fn doc(&self) -> &'static LintRuleDoc;
    fn check(&self, model: &Model) -> Vec<LintFinding>;
}
