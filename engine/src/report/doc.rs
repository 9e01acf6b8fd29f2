//! `portwhy explain CODE`: a rule's documentation under the fixed headings (What it detects / Why
//! it happens / Example / Fix), the same page for diagnosis rules and lint rules.

use std::fmt::Write as _;

use super::style::Style;
use crate::rules::RuleDoc;

/// One documentation page, whichever kind of rule it documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocPage<'a> {
    pub code: &'a str,
    /// The cause (diagnosis) or the rule name (lint), kebab-case.
    pub name: &'a str,
    pub title: &'a str,
    pub what_it_detects: &'a str,
    pub why_it_happens: &'a str,
    pub example: &'a str,
    pub fix: &'a str,
}

impl<'a> From<&'a RuleDoc> for DocPage<'a> {
    fn from(d: &'a RuleDoc) -> Self {
        Self {
            code: d.code.code(),
            name: d.code.name(),
            title: d.title,
            what_it_detects: d.what_it_detects,
            why_it_happens: d.why_it_happens,
            example: d.example,
            fix: d.fix,
        }
    }
}

pub fn render_doc(d: &DocPage<'_>, s: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} {} — {}", s.bold(d.code), s.cyan(d.name), s.bold(d.title));
    for (heading, body) in [
        ("What it detects", d.what_it_detects),
        ("Why it happens", d.why_it_happens),
        ("Example", d.example),
        ("Fix", d.fix),
    ] {
        let _ = writeln!(o, "\n{}", s.bold(heading));
        for line in body.lines() {
            // Examples are commands and output: keep them as written; prose is wrapped.
            if heading == "Example" {
                let _ = writeln!(o, "  {}", line.trim_start());
            } else {
                for wrapped in wrap(line.trim_start(), 88) {
                    let _ = writeln!(o, "  {wrapped}");
                }
            }
        }
    }
    o.trim_end().to_owned()
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let cur = lines.last_mut().expect("one line at least");
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}
