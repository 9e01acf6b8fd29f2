//! `portwhy-lab replay` over the evidence bundles the engine recorded from real faults
//! (engine/tests/fixtures/evidence/*.json, see record.sh there): every skeleton is a valid scenario,
//! and the holders become the right faults.

use std::path::{Path, PathBuf};

use portwhy_lab::{replay, scenario};

fn bundles() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/evidence");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_recorded_bundle_replays_into_a_valid_scenario() {
    let all = bundles();
    assert!(!all.is_empty(), "no recorded bundles found");
    for path in all {
        let ev = replay::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = replay::skeleton(&ev, "replayed");
        scenario::parse(Path::new("replayed.toml"), &text)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
    }
}

#[test]
fn a_dual_stack_holder_becomes_a_v6_listener_and_the_failed_attempt_is_skipped() {
    let path =
        bundles().into_iter().find(|p| p.ends_with("host-process-dualstack.json")).expect("bundle recorded");
    let ev = replay::load(&path).unwrap();
    let s = scenario::parse(Path::new("replayed.toml"), &replay::skeleton(&ev, "replayed")).unwrap();
    assert!(s.environment.ipv6, "an IPv6 holder needs IPv6 in the environment");
    let kinds: Vec<&str> = s.faults.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["host-listener"], "the created container that failed to start is not a holder");
    assert_eq!(s.faults[0]["addr"].as_str(), Some("::"));
    assert_eq!(s.faults[0]["v6only"].as_bool(), Some(false));
    assert_eq!(s.port.port, ev.query.port);
}
