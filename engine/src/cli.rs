//! The `portwhy` command line: argument parsing, the documented exit codes, and dispatch.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::collect::{CollectOptions, EvidenceSource, LiveHost};
use crate::diagnosis::Diagnosis;
use crate::evidence::{Evidence, BUNDLE_SCHEMA_VERSION};
use crate::parse::error::{classify, DaemonError};
use crate::port::{PortQuery, Proto};
use crate::report::human::{self, Style};
use crate::rules;

/// Exit codes. A verdict is data, not an error: "conflict found" has its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Diagnosis complete: nothing stands in the way of the publish (or lint clean).
    NoConflict = 0,
    /// Diagnosis complete: a cause was found (or lint findings).
    ConflictFound = 1,
    /// Bad input: port syntax, empty error text, unreadable or wrong-version bundle, bad arguments.
    BadInput = 2,
    /// Inconclusive: no cause found, but some sources could not be read (Docker unreachable, not root).
    Inconclusive = 3,
    /// portwhy itself failed (a bug: please report it).
    Internal = 4,
}

/// Explain why Docker cannot publish a host port: who holds it, the evidence, and the fix.
#[derive(Debug, Parser)]
#[command(name = "portwhy", version, args_conflicts_with_subcommands = true, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Shorthand for `portwhy diagnose PORT`.
    #[command(flatten)]
    diagnose: DiagnoseArgs,
}

const EXIT_CODES_HELP: &str = "Exit codes: 0 no conflict, 1 conflict found, 2 bad input, 3 inconclusive (sources unavailable), 4 internal error.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose a port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`.
    Diagnose(DiagnoseArgs),
    /// Save all evidence about a port as a JSON bundle (replay with `diagnose --evidence`).
    Collect {
        port: String,
        #[command(flatten)]
        collect: CollectArgs,
    },
    /// Document a rule: `portwhy explain PW001`, or `--list`.
    Explain {
        code: Option<String>,
        #[arg(long)]
        list: bool,
    },
    /// Find duplicate and overlapping host ports in compose files (with overrides, in order).
    Lint {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Propose the nearest free host port for that address and protocol.
    Suggest {
        port: String,
        /// Allow ports below 1024.
        #[arg(long)]
        privileged: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print monitoring signals: listeners per owner, published ports, NAT drift, conntrack.
    Signals {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        collect: CollectArgs,
    },
}

#[derive(Debug, Args, Default)]
struct DiagnoseArgs {
    /// The port: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080`. Optional with --error.
    port: Option<String>,
    /// The daemon's error text (`-` reads it from stdin).
    #[arg(long, short = 'e')]
    error: Option<String>,
    /// Collect nothing: classify the error text alone (no Docker, no root needed).
    #[arg(long)]
    offline: bool,
    /// The container being published: it is the subject, never blamed as the holder (use it
    /// after a publish that succeeded but whose traffic goes elsewhere).
    #[arg(long, value_name = "NAME")]
    container: Option<String>,
    /// Replay a bundle written by `portwhy collect` instead of reading this host.
    #[arg(long, value_name = "FILE", conflicts_with = "offline")]
    evidence: Option<PathBuf>,
    /// Print the versioned JSON document instead of the human screen.
    #[arg(long)]
    json: bool,
    /// Disable colour (also NO_COLOR=1).
    #[arg(long)]
    no_color: bool,
    #[command(flatten)]
    collect: CollectArgs,
}

#[derive(Debug, Args, Default, Clone)]
struct CollectArgs {
    /// Docker endpoint, e.g. unix:///run/user/1000/docker.sock (default: DOCKER_HOST or /var/run/docker.sock).
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
    /// Do not talk to the Docker API.
    #[arg(long)]
    no_docker: bool,
    /// Root of procfs (for tests and containers with a host /proc mounted elsewhere).
    #[arg(long, value_name = "DIR", default_value = "/proc", hide = true)]
    proc_root: PathBuf,
}

impl CollectArgs {
    fn options(&self) -> CollectOptions {
        CollectOptions {
            proc_root: self.proc_root.clone(),
            docker_host: self.docker_host.clone(),
            skip_docker: self.no_docker,
        }
    }
}

/// A user-facing failure: one line naming the problem and the fix, and its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub message: String,
}

impl Failure {
    fn bad_input(message: impl Into<String>) -> Self {
        Self { code: ExitCode::BadInput, message: message.into() }
    }
}

/// Parse arguments, run, print; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli, &mut std::io::stdout().lock()) {
        Ok(code) => code as i32,
        Err(f) => {
            eprintln!("portwhy: {}", f.message);
            f.code as i32
        }
    }
}

pub fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    match cli.command {
        None if cli.diagnose.port.is_none()
            && cli.diagnose.error.is_none()
            && cli.diagnose.evidence.is_none() =>
        {
            Err(Failure::bad_input("give a port to diagnose, e.g. `portwhy 8080` (see `portwhy --help`)"))
        }
        None => diagnose(&cli.diagnose, out),
        Some(Command::Diagnose(args)) => diagnose(&args, out),
        Some(Command::Collect { port, collect }) => {
            let query = parse_port(&port)?;
            let evidence = LiveHost { options: collect.options() }.gather(&query);
            warn_unavailable(&evidence);
            write_out(out, &serde_json::to_string_pretty(&evidence).map_err(internal)?)?;
            Ok(ExitCode::NoConflict)
        }
        Some(Command::Explain { code, list }) => explain(code.as_deref(), list, out),
        Some(Command::Lint { files, json }) => crate::commands::lint(&files, json, out),
        Some(Command::Suggest { port, privileged, json }) => {
            crate::commands::suggest(&parse_port(&port)?, privileged, json, out)
        }
        Some(Command::Signals { json, collect }) => crate::commands::signals(&collect.options(), json, out),
    }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure { code: ExitCode::Internal, message: format!("internal error: {e}; please report it") }
}

pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    match writeln!(out, "{text}") {
        Ok(()) => Ok(()),
        // A closed pipe (`portwhy 8080 | head -1`) is the reader's choice, not our failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(internal(e)),
    }
}

fn parse_port(s: &str) -> Result<PortQuery, Failure> {
    s.parse::<PortQuery>().map_err(|e| Failure::bad_input(format!("bad port `{s}`: {e}")))
}

fn read_error_text(arg: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        Failure::bad_input(format!("cannot read the error text from stdin: {e}; pass it with --error TEXT"))
    })?;
    Ok(text)
}

fn diagnose(args: &DiagnoseArgs, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    let error: Option<DaemonError> = match &args.error {
        Some(raw) => {
            let text = read_error_text(raw)?;
            Some(classify(&text).map_err(|e| Failure::bad_input(e.to_string()))?)
        }
        None => None,
    };
    if let Some(e) = &error {
        if !e.is_recognised() && args.port.is_none() {
            return Err(Failure::bad_input(
                "the error text names no port and no known Docker wording: pass the port too (`portwhy diagnose 8080 --error ...`) or paste the daemon's whole message",
            ));
        }
    }
    let mut evidence = match &args.evidence {
        Some(path) => load_bundle(path)?,
        None => {
            let query = query_from(args.port.as_deref(), error.as_ref())?;
            if args.offline {
                let mut ev = Evidence::new(query);
                ev.mark_unavailable("all", "offline: nothing was collected (--offline)");
                ev
            } else {
                let ev = LiveHost { options: args.collect.options() }.gather(&query);
                warn_unavailable(&ev);
                ev
            }
        }
    };
    if args.evidence.is_some() {
        if let Some(p) = &args.port {
            // Replaying with another port re-targets the question; the bundle only holds that port's sockets.
            let q = parse_port(p)?;
            if q.port != evidence.query.port {
                return Err(Failure::bad_input(format!(
                    "the bundle was collected for port {}, not {}: collect again with `portwhy collect {}`",
                    evidence.query.port, q.port, q.port
                )));
            }
            evidence.query = q;
        }
    }
    let diagnosis = rules::diagnose_for(&evidence, error.as_ref(), args.container.as_deref());
    if args.json {
        write_out(out, &serde_json::to_string_pretty(&diagnosis).map_err(internal)?)?;
    } else {
        let style = Style::detect(args.no_color);
        write_out(out, &human::render(&diagnosis, style))?;
    }
    Ok(exit_code(&diagnosis))
}

/// The exit code a verdict maps to.
pub fn exit_code(d: &Diagnosis) -> ExitCode {
    if d.findings.iter().any(|f| f.is_conflict()) {
        ExitCode::ConflictFound
    } else if d.unavailable.is_empty() {
        ExitCode::NoConflict
    } else {
        ExitCode::Inconclusive
    }
}

/// The question: the port as given, completed by the address and protocol the error text names.
fn query_from(port: Option<&str>, error: Option<&DaemonError>) -> Result<PortQuery, Failure> {
    let mut q = match (port, error.and_then(|e| e.host_port)) {
        (Some(p), _) => parse_port(p)?,
        (None, Some(p)) => PortQuery { port: p, ..PortQuery::default() },
        (None, None) => return Err(Failure::bad_input("give the port: the error text names none")),
    };
    if let Some(e) = error {
        if let Some(p) = e.host_port {
            if p != q.port {
                eprintln!("portwhy: warning: the error text names port {p}, but you asked about {}", q.port);
                return Ok(q);
            }
        }
        if q.host_ip.is_none() {
            q.host_ip = e.host_ip.as_deref().and_then(|ip| ip.parse().ok());
        }
        if e.proto_stated && port.is_none_or(|p| !p.contains('/')) {
            q.proto = e.proto;
        }
    }
    if q.proto == Proto::Sctp {
        return Err(Failure::bad_input("sctp ports are not supported yet: use tcp or udp"));
    }
    Ok(q)
}

fn load_bundle(path: &std::path::Path) -> Result<Evidence, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::bad_input(format!(
            "cannot read bundle {}: {e}; create one with `portwhy collect PORT > bundle.json`",
            path.display()
        ))
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::bad_input(format!("{} is not a portwhy bundle (invalid JSON at line {}, column {}): re-collect it with `portwhy collect PORT`", path.display(), e.line(), e.column()))
    })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(BUNDLE_SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(Failure::bad_input(format!(
                "{} has bundle schema_version {v}; this portwhy reads version {BUNDLE_SCHEMA_VERSION}: collect it again with this portwhy",
                path.display()
            )))
        }
        None => {
            return Err(Failure::bad_input(format!(
                "{} has no schema_version: it is not a bundle written by `portwhy collect`",
                path.display()
            )))
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Failure::bad_input(format!("{} is not a valid portwhy bundle: {e}", path.display())))
}

fn warn_unavailable(ev: &Evidence) {
    for u in &ev.unavailable {
        eprintln!("portwhy: warning: {} unavailable: {}", u.source, u.reason);
    }
}

fn explain(code: Option<&str>, list: bool, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    if list || code.is_none() {
        let mut text = String::new();
        for r in rules::by_code() {
            let d = r.doc();
            text.push_str(&format!("{}  {:<20} {}\n", d.code, d.code.name(), d.title));
        }
        for d in crate::lint::rule_docs() {
            text.push_str(&format!("{} {:<20} lint ({})\n", d.code, d.name, d.severity.as_str()));
        }
        write_out(out, text.trim_end())?;
        return Ok(ExitCode::NoConflict);
    }
    let code = code.unwrap_or_default();
    if let Some(d) = crate::lint::find_rule(code) {
        // Lint rules share the fixed headings; render them through the same template.
        let page = human::render_page(
            d.code,
            d.name,
            "compose lint rule",
            [d.what_it_detects, d.why_it_happens, d.example, d.fix],
            Style::detect(false),
        );
        write_out(out, &page)?;
        return Ok(ExitCode::NoConflict);
    }
    let rule = rules::find(code).ok_or_else(|| {
        Failure::bad_input(format!("unknown rule `{code}`: `portwhy explain --list` shows every code"))
    })?;
    write_out(out, &human::render_doc(rule.doc(), Style::detect(false)))?;
    Ok(ExitCode::NoConflict)
}

pub(crate) fn is_tty() -> bool {
    std::io::stdout().is_terminal()
}
