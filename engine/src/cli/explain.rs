//! `portwhy explain CODE`: a rule's documentation (diagnosis `PWnnn` or lint `PWLnnn`); `--list`
//! for every code.

use clap::Args;
use portwhy::exit::ExitCode;
use portwhy::report::doc::{render_doc, DocPage};
use portwhy::{lint, rules};

use super::args::ColorArg;
use super::failure::Failure;
use super::output::{style, Output};

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// A rule code (`PW001`, `PWL002`) or cause name (`host-process`).
    code: Option<String>,
    /// List every rule, diagnosis and lint.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    color: ColorArg,
}

pub(crate) fn run(args: &ExplainArgs, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    let Some(code) = args.code.as_deref().filter(|_| !args.list) else {
        let mut text = String::new();
        for r in rules::by_code() {
            let d = r.doc();
            text.push_str(&format!("{}  {:<20} {}\n", d.code, d.code.name(), d.title));
        }
        for d in lint::rule_docs() {
            text.push_str(&format!("{} {:<20} lint ({})\n", d.code, d.name, d.severity.as_str()));
        }
        out.text(text.trim_end())?;
        return Ok(ExitCode::Success);
    };
    let page = if let Some(d) = lint::find_rule(code) {
        // Lint rules share the fixed headings; render them through the same page.
        DocPage {
            code: d.code,
            name: d.name,
            title: "compose lint rule",
            what_it_detects: d.what_it_detects,
            why_it_happens: d.why_it_happens,
            example: d.example,
            fix: d.fix,
        }
    } else {
        let rule = rules::find(code).ok_or_else(|| {
            Failure::bad_input(format!("unknown rule `{code}`: `portwhy explain --list` shows every code"))
        })?;
        DocPage::from(rule.doc())
    };
    out.text(&render_doc(&page, style(args.color)))?;
    Ok(ExitCode::Success)
}
