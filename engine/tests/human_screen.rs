//! The human screen over recorded bundles: what the host wrote is shown, never obeyed (control
//! characters in command lines, comm and container names are escaped), and each fact is printed
//! once.

use std::path::PathBuf;

use portwhy::evidence::Evidence;
use portwhy::report::{human, Style};
use portwhy::rules;

fn bundle(name: &str) -> Evidence {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/evidence").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the bundle parses")
}

/// Every character a terminal would act on, other than the screen's own line breaks.
fn control_chars(screen: &str) -> Vec<char> {
    screen.chars().filter(|c| c.is_control() && *c != '\n').collect()
}

#[test]
fn multi_line_command_line_stays_on_its_line() {
    let mut ev = bundle("host-process-v4.json");
    let owner = &mut ev.sockets.as_mut().expect("sockets")[0].owners[0];
    owner.cmdline = "python3 -c import socket\nsocket.socket().bind(('0.0.0.0', 18401))\tx".into();
    owner.comm = "py\u{1b}[2Jthon".into();
    let screen = human::render(&rules::diagnose(&ev, None), Style::PLAIN);
    assert!(!screen.contains("\nsocket.socket()"), "the newline was printed raw:\n{screen}");
    assert!(screen.contains(r"import socket\nsocket.socket()"), "escaped in place:\n{screen}");
    assert!(screen.contains(r"py\u{1b}[2Jthon"), "{screen}");
    assert_eq!(control_chars(&screen), Vec::<char>::new(), "{screen}");
}

#[test]
fn container_names_are_escaped() {
    let mut ev = bundle("container-holds.json");
    for c in &mut ev.docker.as_mut().expect("docker").containers {
        c.name = format!("{}\r\u{7}", c.name);
        c.compose_project = Some("shop\nprod".into());
    }
    let screen = human::render(&rules::diagnose(&ev, None), Style::PLAIN);
    assert!(screen.contains(r"pwfx-a\r\u{7}"), "{screen}");
    assert_eq!(control_chars(&screen), Vec::<char>::new(), "{screen}");
    assert!(!screen.lines().any(|l| l.starts_with("prod")), "the newline was printed raw:\n{screen}");
}

#[test]
fn each_checked_fact_is_printed_once() {
    let ev = bundle("stopped-control.json");
    let d = rules::diagnose(&ev, None);
    assert!(!d.checked.is_empty(), "the bundle lists what it checked");
    let screen = human::render(&d, Style::PLAIN);
    for fact in &d.checked {
        assert_eq!(screen.matches(fact.as_str()).count(), 1, "`{fact}`:\n{screen}");
    }
}

#[test]
fn each_unavailable_source_is_printed_once() {
    let mut ev = bundle("stopped-control.json");
    ev.docker = None;
    ev.mark_unavailable("docker", "cannot reach the Docker API at unix:///nonexistent.sock; start dockerd");
    let d = rules::diagnose(&ev, None);
    let screen = human::render(&d, Style::PLAIN);
    assert_eq!(screen.matches("cannot reach the Docker API").count(), 1, "{screen}");
    for fact in &d.checked {
        assert_eq!(screen.matches(fact.as_str()).count(), 1, "`{fact}`:\n{screen}");
    }
}
