//! The binary's documented exit codes: 2 for bad input (a broken scenario file names file, line and
//! fix; an unknown engine), 3 when Docker is unreachable.

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
