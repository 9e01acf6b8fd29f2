//! index.html: a static matrix (scenario x engine x backend), one colour per outcome; each cell opens
//! (`<details>`, no script) onto its error text, verdict, evidence and remedy.

use std::fmt::Write as _;

use crate::outcome::{median_ms, CellResult, RemedySource, RunResults, Status};
use crate::report::html_escape as escape;
use crate::report::{axes, counts, find};
use crate::scenario::ExpectedTrigger;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.3rem .5rem;vertical-align:top}\
td.pass{background:#d8f3dc}td.fail{background:#ffd6d6}td.error{background:#ffe8b3}td.none{background:#eee}td.not-run{background:#e0e0ff}.disagree{font-size:small;background:#ffe8b3;padding:0 .3em}\
td[data-cell]{min-width:11rem;max-width:20rem}details>summary{cursor:pointer;font-weight:600}\
details .body{max-height:18rem;overflow:auto;font-size:.8rem}pre{white-space:pre-wrap;font-size:.8rem}\
.claim{max-width:30rem}";

fn cell_html(out: &mut String, c: &CellResult) {
    let status = c.status.as_str();
    let cause = c.cause_text();
    // Failing cells open by default: the reader came for them.
    let open = if c.status == Status::Pass { "" } else { " open" };
    let _ = write!(
        out,
        "<td class=\"{status}\" data-cell=\"{}\" data-status=\"{status}\"><details{open}><summary>{} {}</summary>",
        escape(&c.id().to_string()),
        status.to_uppercase(),
        escape(cause)
    );
    out.push_str("<div class=\"body\">");
    let e = &c.expected;
    let trigger = match e.trigger {
        ExpectedTrigger::Fails { stage } => format!("fails at {}", stage.as_str()),
        ExpectedTrigger::Succeeds => "succeeds".to_owned(),
    };
    let traffic: Vec<String> =
        e.traffic.iter().map(|t| format!("{} → {}", t.from.as_str(), t.answers.as_str())).collect();
    let _ = write!(
        out,
        "<p>expected: trigger {trigger}, {}{}{}</p>",
        e.cause,
        if traffic.is_empty() { String::new() } else { format!("; traffic {}", traffic.join(", ")) },
        e.remedy.map(|r| format!("; fix {r} proven")).unwrap_or_default()
    );
    if !c.failures.is_empty() {
        out.push_str("<ul class=\"failures\">");
        for f in &c.failures {
            let _ = write!(out, "<li>{}</li>", escape(f));
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<p>trigger (exit {}):</p><pre>{}</pre><pre class=\"error-text\">{}</pre>",
        c.trigger.exit_code,
        escape(&c.trigger.command),
        escape(c.trigger.error.trim())
    );
    if let Some(d) = &c.diagnosis {
        for f in &d.findings {
            let _ = write!(
                out,
                "<p class=\"verdict\"><b>{}</b> {} ({:?})</p><ul>",
                f.code,
                escape(&f.summary),
                f.confidence
            );
            for e in &f.evidence {
                let _ = write!(out, "<li>[{}] {}</li>", escape(&e.source), escape(&e.detail));
            }
            out.push_str("</ul>");
        }
    }
    if let Some(o) = &c.observed {
        for t in &o.traffic {
            let _ = write!(
                out,
                "<p>traffic from {}: {} answered (expected {})</p>",
                t.from.as_str(),
                t.answered.as_str(),
                t.expected.as_str()
            );
        }
    }
    if !c.remedies.is_empty() {
        // A list, not a table: the cell already sits in the matrix table.
        out.push_str("<ul class=\"remedies\">");
        for r in &c.remedies {
            let _ = write!(
                out,
                "<li data-kind=\"{}\" data-outcome=\"{}\"><code>{}</code>{}: {} ({} risk), {}: {}</li>",
                r.kind,
                r.outcome.as_str(),
                escape(&r.command),
                if r.source == RemedySource::Claim { " (seed claim)" } else { "" },
                r.purpose.as_str(),
                r.risk.as_str(),
                r.outcome.as_str(),
                escape(&r.why)
            );
        }
        out.push_str("</ul>");
    }
    let _ = write!(out, "<p>{} ms</p></div></details></td>", c.duration_ms);
}

pub fn render(results: &RunResults) -> String {
    let cells = &results.cells;
    let ax = axes(cells);
    let counts = counts(cells);
    let (pass, fail, error, not_run) = (counts.pass, counts.fail, counts.error, counts.not_run);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>portwhy-lab {}</title><style>{STYLE}</style></head><body>\n",
        escape(&results.run_id)
    );
    let _ = writeln!(
        out,
        "<h1>portwhy-lab</h1><p id=\"summary\" data-pass=\"{pass}\" data-fail=\"{fail}\" data-error=\"{error}\" data-not-run=\"{not_run}\">{} cells: {}. Wall time {:.1} s, median cell {} ms.</p>",
        cells.len(),
        escape(&counts.phrase()),
        results.wall_ms as f64 / 1000.0,
        median_ms(cells).unwrap_or(0)
    );
    let absent = crate::report::not_run_engines(cells);
    if !absent.is_empty() {
        out.push_str("<ul id=\"not-run\">");
        for (engine, n, how) in absent {
            let _ = write!(out, "<li>NOT RUN: <b>{}</b> ({n} cells): {}</li>", escape(&engine), escape(&how));
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<p id=\"targets\">{}</p>",
        escape(&crate::outcome::targets_line(cells, results.wall_ms))
    );
    let phases = crate::outcome::phase_breakdown(cells);
    if !phases.is_empty() {
        out.push_str("<table id=\"phases\"><thead><tr><th>phase</th><th>cells</th><th>total s</th><th>median ms</th><th>share</th></tr></thead><tbody>");
        for r in phases {
            let _ = write!(
                out,
                "<tr data-phase=\"{p}\" data-total-ms=\"{}\"><td>{p}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{:.1}%</td></tr>",
                r.total_ms,
                r.cells,
                r.total_ms as f64 / 1000.0,
                r.median_ms,
                r.share * 100.0,
                p = r.phase.as_str()
            );
        }
        out.push_str("</tbody></table>\n");
    }
    let disagree = crate::report::disagreeing(cells);
    out.push_str("<table id=\"matrix\"><thead><tr><th>scenario</th>");
    for (name, version, backend) in &ax.columns {
        let _ = write!(out, "<th>{} {}<br>{backend}</th>", escape(name), escape(version));
    }
    out.push_str("</tr></thead><tbody>\n");
    for s in &ax.scenarios {
        let title = cells.iter().find(|c| &c.scenario == s).map_or("", |c| c.title.as_str());
        let disagree = if disagree.contains(s) {
            " <span class=\"disagree\" title=\"the engines did different things\">engines disagree</span>"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr data-disagree=\"{}\"><th title=\"{}\">{}{disagree}</th>",
            !disagree.is_empty(),
            escape(title),
            escape(s)
        );
        for (name, _, backend) in &ax.columns {
            match find(cells, s, name, *backend) {
                Some(c) => cell_html(&mut out, c),
                None => out.push_str("<td class=\"none\">-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n<h2>Seed claims against the engines</h2><table id=\"claims\"><thead><tr><th>scenario</th><th>source</th><th>claim (restated)</th><th>upheld by</th><th>refuted by</th><th>what the engines did</th></tr></thead><tbody>\n");
    for s in &ax.scenarios {
        let Some(first) = cells.iter().find(|c| &c.scenario == s) else { continue };
        let _ = write!(
            out,
            "<tr data-claim=\"{}\"><td>{}</td><td>{} <small>{}</small></td><td class=\"claim\">{}</td>",
            escape(s),
            escape(s),
            first.seed.label(),
            first.seed.title(),
            escape(&first.claim)
        );
        match crate::report::claim_verdicts(cells, s) {
            Some((upheld, refuted)) => {
                let list =
                    |v: &[String]| if v.is_empty() { "none".to_owned() } else { escape(&v.join(", ")) };
                let _ = write!(
                    out,
                    "<td class=\"upheld\">{}</td><td class=\"refuted\">{}</td>",
                    list(&upheld),
                    list(&refuted)
                );
            }
            None => out.push_str("<td>-</td><td>-</td>"),
        }
        out.push_str("<td><ul>");
        for c in cells.iter().filter(|c| &c.scenario == s) {
            let _ = write!(
                out,
                "<li>{} {}/{}: publish {}, portwhy {}</li>",
                escape(&c.engine),
                escape(&c.engine_name),
                c.backend,
                if c.trigger.exit_code == 0 { "succeeded" } else { "failed" },
                c.cause_text()
            );
        }
        out.push_str("</ul></td></tr>\n");
    }
    out.push_str("</tbody></table>\n</body></html>\n");
    out
}
