//! The one-screen human verdict: who holds the port, the evidence, and the fix, lowest risk first.

use std::fmt::Write as _;

use super::style::Style;
use super::text::printable;
use crate::diagnosis::{Confidence, Diagnosis, EvidenceItem};
use crate::remedy::{Purpose, Risk};

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
        let versions = if e.engine_versions.is_open() {
            String::new()
        } else {
            // Bounds parsed from a bundle may carry any suffix: escape it like the rest.
            format!(", wording of Engine {}", printable(&e.engine_versions.to_string()))
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
        let _ = writeln!(o, "  {}", printable(&f.summary));
        let evidence: Vec<&EvidenceItem> = f.evidence.iter().filter(|e| !shown_below(d, e)).collect();
        if !evidence.is_empty() {
            let _ = writeln!(o, "  {}", s.bold("evidence"));
            for e in evidence {
                let _ = writeln!(o, "    {:<16} {}", s.dim(&printable(&e.source)), printable(&e.detail));
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
                let _ = writeln!(o, "    {risk}{pad}{}", printable(&r.command));
                let _ = writeln!(o, "    {}{}", " ".repeat(12), s.dim(&printable(&r.effect)));
            }
        }
    }
    if !d.unavailable.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", s.yellow("could not read:"));
        for u in &d.unavailable {
            let _ = writeln!(o, "  {:<16} {}", printable(&u.source), printable(&u.reason));
        }
    }
    if !d.checked.is_empty() {
        let _ = writeln!(o);
        let checked: Vec<_> = d.checked.iter().map(|c| printable(c)).collect();
        let _ = writeln!(o, "{} {}", s.dim("checked:"), s.dim(&checked.join("; ")));
    }
    o.trim_end().to_owned()
}

/// Whether an evidence item repeats a fact the screen prints in its own section: the no-conflict
/// verdict lists what was checked and what could not be read, and so do `checked:` and
/// `could not read:` below it (the JSON keeps both: each is part of its object).
fn shown_below(d: &Diagnosis, e: &EvidenceItem) -> bool {
    match e.source.as_str() {
        "checked" => d.checked.contains(&e.detail),
        "unavailable" => d.unavailable.iter().any(|u| e.detail == format!("{}: {}", u.source, u.reason)),
        _ => false,
    }
}
