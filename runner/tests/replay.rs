//! `portwhy-lab replay` over the evidence bundles the engine recorded from real faults
//! (engine/tests/fixtures/evidence/*.json, see record.sh there): every skeleton is a valid scenario,
//! and the holders become the right faults.

use std::path::{Path, PathBuf};

use portwhy_lab::scenario::Fault;
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
    assert_eq!(kinds(&s), ["host-listener"], "the created container that failed to start is not a holder");
    let Fault::HostListener(h) = &s.faults[0] else { panic!("{:?}", s.faults[0]) };
    assert_eq!((h.addr.as_str(), h.v6only), ("::", Some(false)));
    assert_eq!(s.port.port, ev.query.port);
}

fn replayed(bundle: &str) -> scenario::Scenario {
    let path =
        bundles().into_iter().find(|p| p.ends_with(bundle)).unwrap_or_else(|| panic!("{bundle} recorded"));
    let mut ev = replay::load(&path).unwrap();
    // Bundles recorded before `collect --error` kept the daemon's text beside them; put it where
    // `portwhy collect --error` now stores it.
    if ev.error_text.is_none() {
        ev.error_text = std::fs::read_to_string(path.with_extension("error.txt")).ok();
    }
    let name = replay::default_name(&ev);
    let text = replay::skeleton(&ev, &name);
    scenario::parse(Path::new(&format!("{name}.toml")), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn kinds(s: &scenario::Scenario) -> Vec<&str> {
    s.faults.iter().map(Fault::kind).collect()
}

#[test]
fn causes_without_a_holder_replay_into_the_fault_that_leaves_that_state() {
    // Recorded by record-daemons.sh from real 20.10.24 daemons (see each bundle's `_recorded`).
    let other = replayed("other-daemon.json");
    assert_eq!(other.name, "replay-0-0-0-0-18513-other-daemon");
    assert_eq!(kinds(&other), ["second-daemon"], "the other daemon's container is the holder");
    let Fault::SecondDaemon(d) = &other.faults[0] else { panic!("{:?}", other.faults[0]) };
    assert_eq!(d.name, "other-web");
    assert_eq!(other.expect.remedy.map(|k| k.as_str()), Some("stop-container"));

    let stale = replayed("stale-allocation.json");
    assert_eq!(kinds(&stale), ["stale-allocation"]);
    assert!(stale.environment.live_restore, "the allocation outlives a restart only under live-restore");
    assert_eq!(
        stale.expect.stage,
        Some(portwhy::parse::error::Stage::Allocated),
        "the stage is the daemon's text's"
    );

    let wiped = replayed("chains-missing.json");
    assert!(kinds(&wiped).contains(&"firewall-wipe"), "{:?}", kinds(&wiped));
    assert_eq!(wiped.expect.stage, Some(portwhy::parse::error::Stage::Firewall));

    let gone = replayed("address-unavailable.json");
    assert_eq!(kinds(&gone), ["address-gone"]);
    let Fault::AddressGone(a) = &gone.faults[0] else { panic!("{:?}", gone.faults[0]) };
    assert_eq!(a.gone, "192.0.2.10");
    assert_eq!(gone.expect.stage, Some(portwhy::parse::error::Stage::AddressUnavailable));
}
