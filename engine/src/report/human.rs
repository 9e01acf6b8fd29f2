//! The one-screen human verdict: who holds the port, the evidence, and the fix, lowest risk first.

use std::fmt::Write as _;

use crate::diagnosis::{Confidence, Diagnosis};
use crate::remedy::{Purpose, Risk};
use crate::rules::RuleDoc;

/// Whether to colour. Colour only on a terminal, never with NO_COLOR set (no-color.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn detect(no_color_flag: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color_flag && !no_color_env && crate::cli::is_tty() }
    }

    pub const PLAIN: Self = Self { color: false };

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(self, t: &str) -> String {
        self.paint("2", t)
    }
    fn red(self, t: &str) -> String {
        self.paint("1;31", t)
    }
    fn green(self, t: &str) -> String {
        self.paint("1;32", t)
    }
    fn yellow(self, t: &str) -> String {
        self.paint("33", t)
    }
    fn cyan(self, t: &str) -> String {
        self.paint("36", t)
    }
}

pub fn render(d: &Diagnosis, s: Style) -> String {
    let mut o = String::new();
    let conflict = d.findings.iter().any(|f| f.is_conflict());
    let headline = if conflict {
        s.red("conflict found")
    } else if d.unavailable.is_empty() {
        s.green("no conflict found")
    } else {
        s.yellow("inconclusive")
    };
    let _ = writeln!(o, "{} {} — {headline}", s.bold("portwhy"), s.bold(&d.port.to_string()));
    if let Some(e) = &d.error {
        let versions = match (&e.engine_versions.min, &e.engine_versions.max) {
            (None, None) => String::new(),
            (lo, hi) => {
                // A bare major ("28") is a whole release line.
                let v = |s: &Option<String>| match s.as_deref() {
                    None => "…".to_owned(),
                    Some(v) if !v.contains('.') => format!("{v}.x"),
                    Some(v) => v.to_owned(),
                };
                format!(", wording of Engine {}–{}", v(lo), v(hi))
            }
        };
        let _ = writeln!(o, "{}", s.dim(&format!("error stage: {}{versions}", e.stage.as_str())));
    }
    for f in &d.findings {
        let _ = writeln!(o);
        let conf = match f.confidence {
            Confidence::High => s.red("high"),
            Confidence::Medium => s.yellow("medium"),
            Confidence::Low => s.dim("low"),
        };
        let marker = if f.is_conflict() { s.red("●") } else { s.dim("○") };
        let _ = writeln!(o, "{marker} {} {} ({conf})", s.bold(f.code.code()), s.cyan(&f.cause));
        let _ = writeln!(o, "  {}", f.summary);
        if !f.evidence.is_empty() {
            let _ = writeln!(o, "  {}", s.bold("evidence"));
            for e in &f.evidence {
                let _ = writeln!(o, "    {:<16} {}", s.dim(&e.source), e.detail);
            }
        }
        // Fixes, workarounds and checks under their own headings, lowest risk first in each.
        for (purpose, heading) in [
            (Purpose::Fix, "fix (lowest risk first)"),
            (Purpose::Workaround, "workaround (the cause stays)"),
            (Purpose::Check, "check"),
        ] {
            let mut remedies = f.remedies.iter().filter(|r| r.purpose == purpose).peekable();
            if remedies.peek().is_none() {
                continue;
            }
            let _ = writeln!(o, "  {}", s.bold(heading));
            for r in remedies {
                let risk = match r.risk {
                    Risk::Safe => s.green("safe"),
                    Risk::Disruptive => s.yellow("disruptive"),
                    Risk::Destructive => s.red("destructive"),
                };
                // Pad on the plain word so colour codes do not break alignment.
                let pad = " ".repeat(12usize.saturating_sub(r.risk.as_str().len()));
                let _ = writeln!(o, "    {risk}{pad}{}", r.command);
                let _ = writeln!(o, "    {}{}", " ".repeat(12), s.dim(&r.effect));
            }
        }
    }
    if !d.unavailable.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", s.yellow("could not read:"));
        for u in &d.unavailable {
            let _ = writeln!(o, "  {:<16} {}", u.source, u.reason);
        }
    }
    if !d.checked.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{} {}", s.dim("checked:"), s.dim(&d.checked.join("; ")));
    }
    o.trim_end().to_owned()
}

/// `portwhy explain CODE`: the rule's documentation under fixed headings.
pub fn render_doc(d: &RuleDoc, s: Style) -> String {
    render_page(
        d.code.code(),
        d.code.name(),
        d.title,
        [d.what_it_detects, d.why_it_happens, d.example, d.fix],
        s,
    )
}

/// A documentation page under the fixed headings (What it detects, Why it happens, Example, Fix):
/// diagnosis rules and lint rules print through the same template.
pub fn render_page(code: &str, name: &str, title: &str, bodies: [&str; 4], s: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} {} — {}", s.bold(code), s.cyan(name), s.bold(title));
    let headings = ["What it detects", "Why it happens", "Example", "Fix"];
    for (heading, body) in headings.into_iter().zip(bodies) {
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
