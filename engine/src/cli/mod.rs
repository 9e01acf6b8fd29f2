//! The `portwhy` command line: one module per command over the library, each with its own clap
//! arguments; shared option groups (`args`) are flattened into them. Output plumbing (`output`)
//! and failures (`failure`) belong to the command line alone: the library returns data and its
//! own errors, and this tree decides how they are printed and which exit code they end with.

mod args;
mod collect;
mod diagnose;
mod explain;
mod failure;
mod input;
mod lint;
mod output;
mod signals;
mod suggest;

use clap::{Parser, Subcommand};
use portwhy::exit::ExitCode;

use failure::Failure;
use output::Output;

/// `0.1.0 (abc1234)`: the version and the commit it was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PORTWHY_GIT_COMMIT"), ")");

const EXIT_CODES_HELP: &str = "Exit codes: 0 no conflict (or done), 1 conflict found, 2 bad input, 3 inconclusive (sources unavailable), 4 internal error.";

/// Explain why Docker cannot publish a host port: who holds it, the evidence, and the fix.
#[derive(Debug, Parser)]
#[command(name = "portwhy", version = VERSION, args_conflicts_with_subcommands = true, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Shorthand for `portwhy diagnose PORT`.
    #[command(flatten)]
    diagnose: diagnose::DiagnoseArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose a port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`.
    Diagnose(diagnose::DiagnoseArgs),
    /// Save all evidence about a port as a JSON bundle (replay with `diagnose --evidence`).
    Collect(collect::CollectCmd),
    /// Document a rule: `portwhy explain PW001`, or `--list`.
    Explain(explain::ExplainArgs),
    /// Find duplicate and overlapping host ports in compose files (with overrides, in order).
    Lint(lint::LintArgs),
    /// Propose the nearest free host port for that address and protocol.
    Suggest(suggest::SuggestArgs),
    /// Print monitoring signals: listeners per owner, published ports, NAT drift, conntrack.
    Signals(signals::SignalsArgs),
}

/// Parse arguments, run one command, print; the process exit code.
pub(crate) fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let mut out = Output::new(&mut stdout);
    match run(&cli, &mut out) {
        Ok(code) => code.into(),
        Err(f) => {
            output::fail(&f.message);
            f.code.into()
        }
    }
}

fn run(cli: &Cli, out: &mut Output<'_>) -> Result<ExitCode, Failure> {
    match &cli.command {
        None if !cli.diagnose.has_subject() => {
            Err(Failure::bad_input("give a port to diagnose, e.g. `portwhy 8080` (see `portwhy --help`)"))
        }
        None => diagnose::run(&cli.diagnose, out),
        Some(Command::Diagnose(args)) => diagnose::run(args, out),
        Some(Command::Collect(args)) => collect::run(args, out),
        Some(Command::Explain(args)) => explain::run(args, out),
        Some(Command::Lint(args)) => lint::run(args, out),
        Some(Command::Suggest(args)) => suggest::run(args, out),
        Some(Command::Signals(args)) => signals::run(args, out),
    }
}
