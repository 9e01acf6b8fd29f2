//! JUnit XML: one testsuite per scenario, one testcase per cell (`engine version / backend`).

use std::fmt::Write as _;

use crate::outcome::{RunResults, Status};
use crate::report::counts;

/// Escape text for XML attributes and content; control characters (ANSI colours in daemon text)
/// are not allowed in XML 1.0 and are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

pub fn render(results: &RunResults) -> String {
    let cells = &results.cells;
    let counts = counts(cells);
    let (failed, errors, skipped) = (counts.fail, counts.error, counts.not_run);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"portwhy-lab\" tests=\"{}\" failures=\"{failed}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        cells.len(),
        results.wall_ms as f64 / 1000.0
    );
    let mut scenarios: Vec<&str> = cells.iter().map(|c| c.scenario.as_str()).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    for scenario in scenarios {
        let group: Vec<_> = cells.iter().filter(|c| c.scenario == scenario).collect();
        let f = group.iter().filter(|c| c.status == Status::Fail).count();
        let e = group.iter().filter(|c| c.status == Status::Error).count();
        let sk = group.iter().filter(|c| c.status == Status::NotRun).count();
        let time: u64 = group.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{sk}\" time=\"{:.3}\">",
            escape(scenario),
            group.len(),
            time as f64 / 1000.0
        );
        for c in group {
            let _ = write!(
                out,
                "    <testcase classname=\"portwhy-lab.{}\" name=\"{} {} ({})\" time=\"{:.3}\"",
                escape(&c.scenario),
                escape(&c.engine_name),
                escape(&c.engine),
                c.backend,
                c.duration_ms as f64 / 1000.0
            );
            let body = format!(
                "trigger: {}\nexit code: {}\nerror: {}\nverdict: {}\n",
                c.trigger.command,
                c.trigger.exit_code,
                c.trigger.error.trim(),
                c.verdict_line().unwrap_or("-")
            );
            match c.status {
                Status::Pass => out.push_str(" />\n"),
                // JUnit's <skipped> is how CI dashboards show a test that did not run, not a pass.
                Status::NotRun => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\" />\n    </testcase>",
                        escape(c.failures.first().map_or("not run", String::as_str))
                    );
                }
                Status::Fail | Status::Error => {
                    let tag = if c.status == Status::Fail { "failure" } else { "error" };
                    let _ = writeln!(
                        out,
                        ">\n      <{tag} message=\"{}\">{}</{tag}>\n      <system-out>{}</system-out>\n    </testcase>",
                        escape(c.failures.first().map_or("failed", String::as_str)),
                        escape(&c.failures.join("\n")),
                        escape(&body)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
