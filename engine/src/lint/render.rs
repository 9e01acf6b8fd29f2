//! The lint report as a person reads it in a terminal; what the files say (service names, entries)
//! is escaped, as anything written by someone else.

use std::fmt::Write as _;

use super::finding::{plural, LintReport, Severity};
use crate::report::text::printable;

pub fn render_human(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let head =
            f.locations.first().map(|l| format!("{}: ", printable(&l.to_string()))).unwrap_or_default();
        let _ =
            writeln!(out, "{head}{}[{}] {}: {}", f.severity.as_str(), f.code, f.name, printable(&f.message));
        for l in f.locations.iter().skip(1) {
            let _ = writeln!(out, "    also: {}", printable(&l.to_string()));
        }
        let _ = writeln!(out, "    fix: {}", printable(&f.fix));
    }
    let (e, w, i) =
        (report.count(Severity::Error), report.count(Severity::Warning), report.count(Severity::Info));
    let scope = format!(
        "{} service{}, {} published port{} ({})",
        report.services,
        plural(report.services),
        report.publishes,
        plural(report.publishes),
        printable(&report.files.join(" + "))
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "no host port conflicts in {scope}");
    } else {
        let _ = writeln!(
            out,
            "{e} error{}, {w} warning{}, {i} note{} in {scope}",
            plural(e),
            plural(w),
            plural(i)
        );
    }
    out
}
