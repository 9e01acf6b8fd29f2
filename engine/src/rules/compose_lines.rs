//! Compose files as the evidence holds them: the lines where a service asks for a host port, and
//! the one-line edits that settle a conflict inside one project. Not a rule: the container rule
//! asks here so its verdict names files and lines and its fix is an edit, not a stop that the next
//! `docker compose up` undoes.

use crate::evidence::{Container, Evidence};
use crate::lint::{service_publishes, ComposeSource, LintOptions};
use crate::port::PortQuery;
use crate::remedy::{Action, ComposeCli};

/// One `ports` entry of a service that asks for the queried host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLine {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub text: String,
    pub host_ip: Option<std::net::IpAddr>,
    pub target: u16,
}

/// The lines of `c`'s compose files where its service asks for the queried port, in merge order.
/// `None` when `c` is not a compose container or a file was not read.
pub fn port_lines(ev: &Evidence, c: &Container, q: &PortQuery) -> Option<Vec<PortLine>> {
    let service = c.compose_service.as_deref()?;
    let files = ev.compose_files_of(c)?;
    let sources: Vec<ComposeSource> =
        files.iter().map(|f| ComposeSource { name: f.path.clone(), text: f.text.clone() }).collect();
    let publishes = service_publishes(&sources, &LintOptions::default()).ok()?;
    let lines = publishes
        .into_iter()
        .filter(|p| p.service == service && p.host_port == Some(q.port) && p.proto == q.proto)
        .filter_map(|p| {
            let line = p.location.line?;
            let text = files.iter().find(|f| f.path == p.location.file)?.text.lines().nth(line - 1)?;
            Some(PortLine {
                file: p.location.file,
                line,
                text: text.to_owned(),
                host_ip: p.host_ip,
                target: p.target,
            })
        })
        .collect();
    Some(lines)
}

/// The edit that gives a service's entry an ephemeral host port instead of the queried one:
/// `"8080:80"` becomes `"80"`, `"127.0.0.1:8080:80"` becomes `"127.0.0.1::80"`. Only the short
/// syntax, where the host port is written once as `PORT:`; long syntax gets no edit.
pub fn move_to_ephemeral(l: &PortLine, q: &PortQuery) -> Option<Action> {
    let (needle, with) = match l.host_ip {
        None => (format!("{}:{}", q.port, l.target), l.target.to_string()),
        Some(_) => (format!(":{}:{}", q.port, l.target), format!("::{}", l.target)),
    };
    (l.text.matches(&needle).count() == 1).then(|| Action::ComposeEdit {
        file: l.file.clone(),
        line: l.line,
        old: l.text.clone(),
        new: l.text.replacen(&needle, &with, 1),
    })
}

/// The edit that makes the override's `ports:` replace the base list rather than append to it:
/// Compose v2 only (2.24.4 and later read `!override`; v1 refuses the tag). `entry` is the
/// override's line; its `ports:` key is the nearest line above it at a lower indent.
pub fn override_ports(ev: &Evidence, entry: &PortLine, cli: &ComposeCli) -> Option<Action> {
    if cli.v1 {
        return None;
    }
    let text = &ev.compose_files.iter().find(|f| f.path == entry.file)?.text;
    let lines: Vec<&str> = text.lines().collect();
    let indent = |s: &str| s.len() - s.trim_start().len();
    let entry_indent = indent(lines.get(entry.line - 1)?);
    let (i, key) = lines[..entry.line - 1].iter().enumerate().rev().find(|(_, s)| {
        !s.trim().is_empty() && !s.trim_start().starts_with('#') && indent(s) < entry_indent
    })?;
    (key.trim() == "ports:").then(|| Action::ComposeEdit {
        file: entry.file.clone(),
        line: i + 1,
        old: (*key).to_owned(),
        new: format!("{}ports: !override", &key[..indent(key)]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::ComposeFile;

    fn line(text: &str, host_ip: Option<&str>) -> PortLine {
        PortLine {
            file: "/p/compose.yaml".into(),
            line: 5,
            text: text.into(),
            host_ip: host_ip.map(|a| a.parse().unwrap()),
            target: 80,
        }
    }

    fn edit_of(a: Option<Action>) -> Option<(usize, String, String)> {
        match a? {
            Action::ComposeEdit { line, old, new, .. } => Some((line, old, new)),
            other => panic!("not an edit: {other:?}"),
        }
    }

    #[test]
    fn a_short_entry_moves_to_an_ephemeral_port_and_keeps_its_address() {
        let q: PortQuery = "8080/tcp".parse().unwrap();
        let (_, _, new) = edit_of(move_to_ephemeral(&line("      - \"8080:80\"", None), &q)).unwrap();
        assert_eq!(new, "      - \"80\"");
        let (_, _, new) =
            edit_of(move_to_ephemeral(&line("      - 127.0.0.1:8080:80", Some("127.0.0.1")), &q)).unwrap();
        assert_eq!(new, "      - 127.0.0.1::80");
        // Long syntax writes the port on a line of its own: no one-line edit is offered.
        assert!(move_to_ephemeral(&line("        published: 8080", None), &q).is_none());
    }

    #[test]
    fn override_finds_the_ports_key_above_the_entry_and_refuses_v1() {
        let text = "services:\n  web:\n    ports:\n      # moved\n      - \"8080:8000\"\n";
        let mut ev = Evidence::new("8080/tcp".parse().unwrap());
        ev.compose_files.push(ComposeFile { path: "/p/compose.override.yaml".into(), text: text.into() });
        let mut entry = line("      - \"8080:8000\"", None);
        entry.file = "/p/compose.override.yaml".into();
        let v2 = ComposeCli::default();
        assert_eq!(
            edit_of(override_ports(&ev, &entry, &v2)),
            Some((3, "    ports:".to_owned(), "    ports: !override".to_owned()))
        );
        let v1 = ComposeCli { v1: true, files: vec![] };
        assert!(override_ports(&ev, &entry, &v1).is_none());
    }
}
