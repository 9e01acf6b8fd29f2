//! The `portwhy` binary as a user runs it: bad input, exit codes, offline classification,
//! bundle replay, and a Docker endpoint that does not answer.

use std::process::{Command, Output};

fn portwhy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portwhy")).args(args).env("NO_COLOR", "1").output().expect("run portwhy")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_port_syntax_is_exit_2_with_the_fix() {
    for (arg, needle) in [
        ("0", "between 1 and 65535"),
        ("70000", "between 1 and 65535"),
        ("8080/icmp", "use tcp or udp"),
        ("localhost:8080", "not an IP address"),
        ("[::1:8080", "not an IP address"),
    ] {
        let o = portwhy(&[arg]);
        assert_eq!(o.status.code(), Some(2), "{arg}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{arg}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
    }
}

#[test]
fn no_port_at_all_is_exit_2() {
    let o = portwhy(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("portwhy 8080"));
}

#[test]
fn empty_error_text_is_exit_2() {
    let o = portwhy(&["diagnose", "--offline", "--error", "  "]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("error text is empty"));
}

#[test]
fn garbled_error_text_without_port_is_exit_2() {
    let o = portwhy(&["diagnose", "--offline", "--error", "something went wrong somewhere"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("names no port"));
}

#[test]
fn offline_classification_needs_no_docker() {
    let text = "docker: Error response from daemon: driver failed programming external connectivity on endpoint web2 \
        (3f1e0c0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d): Bind for 0.0.0.0:8080 failed: port is already allocated.";
    let o = portwhy(&[
        "diagnose",
        "--offline",
        "--json",
        "--error",
        text,
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    ]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(d["schema_version"], 2);
    assert_eq!(d["error"]["stage"], "allocated");
    assert_eq!(d["error"]["host_port"], 8080);
    assert_eq!(d["error"]["container"], "web2");
    assert_eq!(d["findings"][0]["code"], "PW002");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn error_text_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portwhy"))
        .args(["diagnose", "--offline", "--json", "--error", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Error starting userland proxy: listen udp4 0.0.0.0:53: bind: address already in use\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(d["error"]["stage"], "host-bind");
    assert_eq!(d["port"]["port"], 53);
    assert_eq!(d["port"]["proto"], "udp");
}

#[test]
fn unreadable_or_foreign_bundles_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let o = portwhy(&["diagnose", "--evidence", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("portwhy collect"), "{}", stderr(&o));

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let o = portwhy(&["diagnose", "--evidence", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid JSON at line 1"), "{}", stderr(&o));

    let future = dir.path().join("future.json");
    std::fs::write(&future, r#"{"schema_version": 99, "query": {"port": 80}}"#).unwrap();
    let o = portwhy(&["diagnose", "--evidence", future.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("schema_version 99"), "{}", stderr(&o));
}

#[test]
fn replaying_a_bundle_for_another_port_is_refused() {
    let bundle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/evidence/host-process-v4.json");
    let o = portwhy(&["diagnose", "9999", "--evidence", bundle]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("collected for port 18401"), "{}", stderr(&o));
    let o = portwhy(&["diagnose", "--evidence", bundle, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn explain_prints_fixed_headings_and_rejects_unknown_codes() {
    let o = portwhy(&["explain", "PW005"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for heading in ["What it detects", "Why it happens", "Example", "Fix"] {
        assert!(out.contains(heading), "{heading} missing:\n{out}");
    }
    let list = portwhy(&["explain", "--list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), portwhy::rules::all().len() + portwhy::lint::rule_docs().len());
    let o = portwhy(&["explain", "PWL002"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("What it detects"));
    let o = portwhy(&["explain", "PW999"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Docker unreachable is not a crash: the verdict says what it could not see, exit 3 when nothing
/// else explains the port.
#[test]
fn docker_unreachable_is_reported_not_fatal() {
    let o = portwhy(&["diagnose", "1", "--json", "--docker-host", "unix:///nonexistent/docker.sock"]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let docker = d["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["source"] == "docker")
        .expect("docker unavailable");
    assert!(docker["reason"].as_str().unwrap().contains("start dockerd"), "{docker}");
    assert!(stderr(&o).contains("docker unavailable"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stdout));
}

/// `portwhy lint` in `dir` with no COMPOSE_* variables from the test's own environment.
fn lint_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portwhy"));
    cmd.arg("lint").args(args).current_dir(dir).env("NO_COLOR", "1");
    for var in ["COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR", "COMPOSE_DISABLE_ENV_FILE"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).output().expect("run portwhy lint")
}

const DUPLICATE: &str = "services:\n  a:\n    ports: [\"8080:80\"]\n  b:\n    ports: [\"8080:81\"]\n";
const CLEAN: &str = "services:\n  a:\n    ports: [\"8080:80\"]\n";

#[test]
fn lint_without_files_finds_the_project_in_a_parent_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), CLEAN).unwrap();
    std::fs::write(dir.path().join("compose.override.yaml"), "services:\n  b:\n    ports: [\"8080:81\"]\n")
        .unwrap();
    let sub = dir.path().join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let o = lint_in(&sub, &["--json"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let files: Vec<&str> = report["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("/compose.yaml") && files[1].ends_with("/compose.override.yaml"), "{files:?}");
    assert_eq!(report["findings"][0]["code"], "PWL001");
}

#[test]
fn lint_with_no_compose_file_anywhere_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = lint_in(dir.path(), &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no compose file in"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
}

#[test]
fn lint_takes_compose_file_and_its_separator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), DUPLICATE).unwrap();
    std::fs::write(dir.path().join("one.yaml"), CLEAN).unwrap();
    std::fs::write(dir.path().join("two.yaml"), CLEAN).unwrap();
    let o = lint_in(dir.path(), &[], &[("COMPOSE_FILE", "one.yaml:two.yaml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(one.yaml + two.yaml)"));
    let o = lint_in(
        dir.path(),
        &[],
        &[("COMPOSE_FILE", "one.yaml,compose.yaml"), ("COMPOSE_PATH_SEPARATOR", ",")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn lint_f_is_repeatable_and_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), CLEAN).unwrap();
    std::fs::write(dir.path().join("over.yaml"), "services:\n  a:\n    ports: [\"8080:8000\"]\n").unwrap();
    let o = lint_in(dir.path(), &["-f", "over.yaml", "--file", "base.yaml", "--json"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["files"], serde_json::json!(["over.yaml", "base.yaml"]));
    assert_eq!(report["findings"][0]["code"], "PWL004");
    assert!(report["findings"][0]["locations"][0]["file"] == "over.yaml", "{}", report["findings"][0]);
}

#[test]
fn lint_project_directory_is_searched_instead_of_the_current_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/docker-compose.yml"),
        "services:\n  a:\n    ports: [\"${P}:80\", \"8080:81\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("app/.env"), "P=8080\n").unwrap();
    let o = lint_in(dir.path(), &["--project-directory", "app", "--json"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["files"], serde_json::json!(["app/docker-compose.yml"]));
    // P comes from app/.env: the two entries meet on 8080.
    assert_eq!(report["findings"][0]["code"], "PWL004");
}

/// What the user typed is quoted back escaped: the failure stays one line on stderr.
#[test]
fn bad_input_quoting_a_newline_stays_on_one_line() {
    let o = portwhy(&["80\n80"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
    assert!(stderr(&o).contains(r"80\n80"), "{}", stderr(&o));
}

const ALLOCATED_18999: &str =
    "docker: Error response from daemon: driver failed programming external connectivity on \
    endpoint web2 (3f1e0c0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d): Bind for 0.0.0.0:18999 \
    failed: port is already allocated.";

/// The commit `git` names for this checkout, or what build.rs falls back to without it.
fn built_commit() -> String {
    let git = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    std::env::var("PORTWHY_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or(git)
        .unwrap_or_else(|| "unknown".into())
}

/// `collect --error --container` keeps the text and the subject; `diagnose --evidence` replays
/// them: the same verdict as giving them again, without Docker.
#[test]
fn collect_then_replay_keeps_the_daemon_text_and_subject() {
    let o = portwhy(&["collect", "--error", ALLOCATED_18999, "--container", "web2", "--no-docker"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bundle: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON bundle");
    assert_eq!(bundle["schema_version"], 1);
    assert_eq!(bundle["query"]["port"], 18999, "the port comes from the text");
    assert_eq!(bundle["error_text"], ALLOCATED_18999);
    assert_eq!(bundle["subject"], "web2");
    assert_eq!(bundle["collected_by"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(bundle["collected_by"]["commit"], built_commit());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, &o.stdout).unwrap();
    let path = path.to_str().unwrap();
    let replay = portwhy(&["diagnose", "--evidence", path, "--json"]);
    let again = portwhy(&[
        "diagnose",
        "--evidence",
        path,
        "--json",
        "--error",
        ALLOCATED_18999,
        "--container",
        "web2",
    ]);
    assert_eq!(replay.status.code(), again.status.code(), "{}", stderr(&replay));
    assert_eq!(String::from_utf8_lossy(&replay.stdout), String::from_utf8_lossy(&again.stdout));
    let d: serde_json::Value = serde_json::from_slice(&replay.stdout).expect("json");
    assert_eq!(d["error"]["stage"], "allocated");
    assert_eq!(d["error"]["host_port"], 18999);
    assert_eq!(d["error"]["container"], "web2");

    // Without the kept text the replay has no error to explain: the verdict differs.
    let mut bare = bundle.clone();
    bare.as_object_mut().unwrap().remove("error_text");
    std::fs::write(dir.path().join("bare.json"), serde_json::to_vec(&bare).unwrap()).unwrap();
    let bare = portwhy(&["diagnose", "--evidence", dir.path().join("bare.json").to_str().unwrap(), "--json"]);
    let d: serde_json::Value = serde_json::from_slice(&bare.stdout).expect("json");
    assert!(d.get("error").is_none(), "{d}");
}

#[test]
fn collect_reads_the_text_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portwhy"))
        .args(["collect", "--no-docker", "--error", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = "Error starting userland proxy: listen udp4 0.0.0.0:18998: bind: address already in use\n";
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bundle: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON bundle");
    assert_eq!(bundle["error_text"], text);
    assert_eq!(bundle["query"]["proto"], "udp");
    assert!(bundle.get("subject").is_none(), "{bundle}");
}

#[test]
fn collect_needs_a_port_or_a_text_and_refuses_a_bad_text() {
    let o = portwhy(&["collect", "--no-docker"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--error"), "{}", stderr(&o));
    let o = portwhy(&["collect", "--no-docker", "--error", "  "]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error text is empty"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing collected");
}

#[test]
fn version_names_the_commit() {
    let o = portwhy(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.trim(), format!("portwhy {} ({})", env!("CARGO_PKG_VERSION"), built_commit()));
}
