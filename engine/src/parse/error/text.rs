//! The pasted text to lines: terminal noise, the CLI's and compose's wrapping, JSON bodies.

use std::sync::LazyLock;

use regex::Regex;

use super::*;

/// nft prints the rule it refused on the line after its complaint: that line names the table,
/// chain and port, so it belongs to the complaint.
pub(super) fn join_nft_echo(lines: Vec<Line>) -> Vec<Line> {
    let mut out: Vec<Line> = Vec::with_capacity(lines.len());
    for l in lines {
        let echo = l.body.starts_with("add rule ") || l.body.starts_with("insert rule ");
        match out.last_mut() {
            Some(prev)
                if echo
                    && prev
                        .body
                        .to_lowercase()
                        .ends_with("could not process rule: no such file or directory") =>
            {
                prev.body.push_str(": ");
                prev.body.push_str(&l.body);
            }
            _ => out.push(l),
        }
    }
    out
}

/// One line of the pasted text that survived the noise filter.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// The daemon's message with the CLI's and compose's wrapping removed.
    pub(super) body: String,
    /// A container named by the wrapping itself (`ERROR: for NAME`, `Container NAME`,
    /// `failed to start containers: NAME`), used when the daemon's message names none.
    pub(super) container: Option<String>,
}

pub(super) static ANSI: LazyLock<Regex> =
    LazyLock::new(|| re(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]"));
/// Lines that never carry the daemon's message.
pub(super) static NOISE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"(?i)^(?:",
        // The CLI's tails: 20.10 (`See 'docker run --help'.`) and 23+ (`Run 'docker run --help' ...`).
        r"run '[^']*--help' for more information\.?",
        r"|see '[^']*--help'\.?",
        // The CLI's log line when an attached run fails, as a TTY shows it and as a pipe does.
        r"|erro\[\d+\].*",
        r#"|time="[^"]*" level=\w+ msg=.*"#,
        // `docker run -d` prints the new container's id before the start fails (seen with 2>&1).
        r"|[0-9a-f]{64}",
        // docker-compose v1 progress and summary lines.
        r"|(?:creating|starting|recreating|stopping|removing|pulling) \S+ \.\.\.(?: (?:done|error))?",
        r#"|creating network "[^"]*" with (?:the default|driver) .*"#,
        r"|(?:error: )?encountered errors while bringing up the project\.?",
        r"|host is already in use by another container",
        // docker compose v2 progress: `[+] Running 1/2` and lines for steps that did not fail.
        r"|\[\+\] .*",
        r"|\S{0,2} *(?:network|volume|image|container) \S+\s+(?:created|creating|started|starting|running|waiting|healthy|recreate|recreated|stopping|stopped|removed|removing|pulling|pulled|built|building|exited)\b.*",
        r")$",
    ))
});
/// `Error: failed to start containers: a, b` (`docker start`): not the cause, but it names the container.
pub(super) static START_FAILED: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)^error: failed to start containers?: ([\w.-]+)"));
/// Wrapping removed from the front of a line, repeatedly, each with the container it may name.
pub(super) static PREFIXES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // `docker: `, `/usr/bin/docker-current: `, `docker.exe: `.
        r"^\S*docker(?:-current)?(?:\.exe)?: ",
        r"(?i)^error response from daemon: ",
        // docker-compose v1: `ERROR: for NAME  Cannot start service SVC: ...`.
        r"(?i)^error: for (?P<c>\S+)\s+(?:cannot start service \S+: )?",
        // docker compose v2: ` ✘ Container NAME  Error response ...`.
        r"^\S{0,2}\s*Container (?P<c>\S+)\s+",
        // Docker 1.x: `Cannot start container ID: ...`.
        r"(?i)^cannot start container (?P<c>[0-9a-f]+): ",
        r"(?i)^error starting container (?P<c>[\w.-]+): ",
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});
/// API clients print the daemon's JSON body (`{"message":"..."}`) or wrap it (`Internal Server Error ("...")`).
pub(super) static JSON_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| re(r#""message"\s*:\s*"((?:[^"\\]|\\.)*)""#));
pub(super) static QUOTED_REASON: LazyLock<Regex> = LazyLock::new(|| re(r#"Server Error \("(.*)"\)\s*$"#));
pub(super) static COMPOSE_DURATION: LazyLock<Regex> = LazyLock::new(|| re(r"\s{2,}\d+(?:\.\d+)?s$"));
/// The same `docker start` tail when a paste lost the line break before it.
pub(super) static START_FAILED_INLINE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\s+error: failed to start containers?: ([\w.-]+)[\w., -]*$"));
pub(super) static ERROR_STARTING: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)error starting container ([\w.-]+)"));

/// ANSI colours and carriage returns out; CRLF and bare CR (compose v1 redraws) become line breaks.
pub(super) fn strip_terminal(input: &str) -> String {
    ANSI.replace_all(input, "").replace("\r\n", "\n").replace('\r', "\n")
}

pub(super) fn clean_lines(input: &str) -> Vec<Line> {
    let plain = strip_terminal(input);
    // iptables' own output ends with a newline, so the daemon's `(exit status 1)` lands on the next line.
    let mut joined: Vec<String> = Vec::new();
    for raw in plain.split('\n') {
        let t = raw.trim();
        match joined.last_mut() {
            Some(prev) if t.starts_with("(exit status") => {
                prev.push(' ');
                prev.push_str(t);
            }
            _ => joined.push(t.to_owned()),
        }
    }
    let mut out = Vec::new();
    for line in joined {
        if line.is_empty() || NOISE.is_match(&line) {
            continue;
        }
        if let Some(c) = START_FAILED.captures(&line) {
            out.push(Line { body: String::new(), container: Some(c[1].to_owned()) });
            continue;
        }
        out.push(unwrap_line(&line));
    }
    out
}

pub(super) fn unwrap_line(line: &str) -> Line {
    let mut body = line.to_owned();
    let mut container = None;
    if let Some(m) = JSON_MESSAGE.captures(&body).map(|c| unescape_json(&c[1])) {
        body = m;
    } else if let Some(m) = QUOTED_REASON.captures(&body).map(|c| c[1].to_owned()) {
        body = m;
    }
    let mut stripped = true;
    while stripped {
        stripped = false;
        for p in PREFIXES.iter() {
            if let Some(c) = p.captures(&body) {
                if container.is_none() {
                    container = c.name("c").map(|m| m.as_str().to_owned());
                }
                body = body[c.get(0).map_or(0, |m| m.end())..].to_owned();
                stripped = true;
            }
        }
    }
    if let Some(c) = START_FAILED_INLINE.captures(&body) {
        let name = c[1].to_owned();
        body.truncate(c.get(0).map_or(body.len(), |m| m.start()));
        container = container.or(Some(name));
    }
    if container.is_none() {
        container = ERROR_STARTING.captures(&body).map(|c| c[1].to_owned());
    }
    let body = COMPOSE_DURATION.replace(&body, "");
    let body =
        body.trim().trim_matches(|c| matches!(c, '"' | '\'' | '`')).trim_end_matches(['.', '。']).trim();
    Line { body: body.to_owned(), container }
}

pub(super) fn unescape_json(s: &str) -> String {
    serde_json::from_str::<String>(&format!("\"{s}\"")).unwrap_or_else(|_| s.replace("\\n", "\n"))
}
