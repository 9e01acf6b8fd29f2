//! The binary's documented exit codes: 2 for bad input (a broken scenario file names file, line and
//! fix; an unknown engine), 3 when Docker is unreachable, 4 when a required engine did not run.

use std::path::Path;
use std::process::Command;

fn lab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portwhy-lab"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    c
}

#[test]
fn a_broken_scenario_file_exits_2_naming_file_line_and_fix() {
    let out = lab().args(["--scenarios", "runner/tests/fixtures/scenarios", "validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Files load in name order: invalid-bad-port.toml comes first, its port is on line 4.
    assert!(err.contains("invalid-bad-port.toml:4:"), "{err}");
    assert!(err.contains("`http` is not a port number") && err.contains("fix:"), "{err}");
}

#[test]
fn the_shipped_scenarios_validate() {
    let out = lab().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("scenario files valid"));
}

#[test]
fn an_unknown_engine_exits_2() {
    let out = lab().args(["run", "--engine", "99"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--engine 99"));
}

#[test]
fn unreachable_docker_exits_3_with_the_fix() {
    let me = std::env::current_exe().unwrap();
    let out = lab()
        .args(["run", "--scenario", "no-conflict-control", "--engine", "forky", "--backend", "nft"])
        .arg("--portwhy")
        .arg(me)
        .env("DOCKER_HOST", "unix:///nonexistent/portwhy-lab-test.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOCKER_HOST"));
}

/// An engine whose tarball is absent: its cells are NOT RUN with the download URL, the run exits 0,
/// and 4 once that engine is required. Nothing is built and no environment starts.
#[test]
fn an_absent_tarball_engine_is_not_run_and_exit_4_when_required() {
    let dir = std::env::temp_dir().join(format!("portwhy-lab-absent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("engines.toml");
    std::fs::write(
        &catalog,
        r#"[[engine]]
name = "static-29.9.9"
version = "29.9.9"
recipe = { kind = "tarball", path = "docker-29.9.9.tgz", base_suite = "bookworm", url = "https://download.docker.com/linux/static/stable/x86_64/docker-29.9.9.tgz" }
"#,
    )
    .unwrap();
    let me = std::env::current_exe().unwrap();
    let run = |extra: &[&str]| {
        let mut c = lab();
        c.arg("--catalog").arg(&catalog).arg("--portwhy").arg(&me);
        c.args(["run", "--scenario", "host-listener-wildcard", "--report"]).arg(dir.join("report"));
        c.args(extra).env_remove("PORTWHY_LAB_REQUIRE_ENGINE").output().unwrap()
    };
    let out = run(&[]);
    // Progress goes to stderr, the summary table to stdout.
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("NOT RUN: static-29.9.9 (3 cells)") && err.contains("download.docker.com"), "{err}");
    assert!(err.contains("3 NOT RUN"), "the summary counts them apart from passes: {err}");
    let md = std::fs::read_to_string(dir.join("report/report.md")).unwrap();
    assert!(md.contains("**NOT RUN: static-29.9.9**"), "{md}");
    let out = run(&["--require-engine", "29"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("required engine(s) did not run"));
    std::fs::remove_dir_all(&dir).unwrap();
}
