//! Rules over evidence bundles recorded from real faults on a Docker 20.10.24 host
//! (engine/tests/fixtures/evidence/record.sh re-records them; record-daemons.sh those that need
//! daemons of their own): the verdict, its first cause, the
//! exit code, and a snapshot of the whole JSON document per bundle.

use portwhy::cause::CauseCode;
use std::path::PathBuf;

use portwhy::diagnosis::Diagnosis;
use portwhy::evidence::Evidence;
use portwhy::exit::ExitCode;
use portwhy::parse::error::classify;
use rstest::rstest;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/evidence").join(name)
}

fn diagnose(case: &str) -> (Diagnosis, Option<String>) {
    let bundle = std::fs::read_to_string(fixture(&format!("{case}.json"))).expect("bundle");
    let evidence: Evidence = serde_json::from_str(&bundle).expect("bundle parses");
    let error_text = std::fs::read_to_string(fixture(&format!("{case}.error.txt"))).ok();
    let error = error_text.as_deref().map(|t| classify(t).expect("error text classifies"));
    (portwhy::rules::diagnose(&evidence, error.as_ref()), error_text)
}

#[rstest]
#[case::host_process_v4("host-process-v4", "PW001", ExitCode::ConflictFound)]
#[case::host_process_dualstack("host-process-dualstack", "PW001", ExitCode::ConflictFound)]
#[case::host_process_udp("host-process-udp", "PW001", ExitCode::ConflictFound)]
#[case::container_holds("container-holds", "PW002", ExitCode::ConflictFound)]
#[case::stopped_control("stopped-control", "PW000", ExitCode::NoConflict)]
#[case::silent_share_v6only("silent-share-v6only", "PW008", ExitCode::ConflictFound)]
#[case::silent_share_udp_reuseaddr("silent-share-udp-reuseaddr", "PW008", ExitCode::ConflictFound)]
#[case::address_unavailable("address-unavailable", "PW014", ExitCode::ConflictFound)]
#[case::stale_allocation("stale-allocation", "PW015", ExitCode::ConflictFound)]
#[case::chains_missing("chains-missing", "PW016", ExitCode::ConflictFound)]
#[case::other_daemon("other-daemon", "PW017", ExitCode::ConflictFound)]
#[case::rootlesskit_beside_rootful("rootlesskit-beside-rootful", "PW004", ExitCode::ConflictFound)]
fn verdict(#[case] case: &str, #[case] first: &str, #[case] exit: ExitCode) {
    let (d, text) = diagnose(case);
    assert_eq!(d.findings.first().map(|f| f.code.code()), Some(first), "{case}: {:#?}", d.findings);
    assert_eq!(d.exit_code(), exit, "{case}");
    for f in &d.findings {
        assert!(!f.evidence.is_empty(), "{case}: {} has no evidence", f.code);
        assert!(
            f.remedies.windows(2).all(|w| (w[0].purpose, w[0].risk) <= (w[1].purpose, w[1].risk)),
            "{case}: remedies not ranked fixes first, then by risk"
        );
    }
    insta::with_settings!({ info => &text.unwrap_or_default(), snapshot_suffix => case }, {
        insta::assert_json_snapshot!(d);
    });
}

#[test]
fn dualstack_listener_is_explained_as_holding_ipv4() {
    let (d, _) = diagnose("host-process-dualstack");
    assert!(d.findings[0].summary.contains("dual-stack: also holds 0.0.0.0"), "{}", d.findings[0].summary);
}

#[test]
fn container_holder_is_named_with_its_proxy() {
    let (d, _) = diagnose("container-holds");
    let f = &d.findings[0];
    assert!(f.summary.contains("pwfx-a"), "{}", f.summary);
    assert!(f.evidence.iter().any(|e| e.detail.starts_with("docker-proxy pid")), "{:#?}", f.evidence);
    // The container whose start failed is the victim, not the holder.
    assert!(!d.findings.iter().any(|f| f.code == CauseCode::ContainerHolds && f.summary.contains("pwfx-b")));
}

#[test]
fn stopped_and_created_containers_are_ruled_out() {
    let (d, _) = diagnose("stopped-control");
    let note = d.findings.iter().find(|f| f.code == CauseCode::StoppedContainer).expect("PW011 note");
    assert!(!note.is_conflict());
    assert!(note.evidence.iter().any(|e| e.detail.contains("is created")));
    assert!(note.evidence.iter().any(|e| e.detail.contains("is exited")));
}

#[test]
fn silent_share_says_where_each_client_goes() {
    let (d, _) = diagnose("silent-share-v6only");
    let traffic: Vec<&str> =
        d.findings[0].evidence.iter().filter(|e| e.source == "traffic").map(|e| e.detail.as_str()).collect();
    assert!(
        traffic.iter().any(|t| t.starts_with("to 127.0.0.1") && t.contains("container pwfx-a")),
        "{traffic:#?}"
    );
    assert!(
        traffic.iter().any(|t| t.starts_with("to ::1") && t.contains("host process python3")),
        "{traffic:#?}"
    );
}

/// Engine 28.x lets docker-proxy bind a UDP port a host process already holds (both SO_REUSEADDR);
/// the lab measured the container answering on 127.0.0.1, so the verdict must say so, and must not
/// also claim the host refused the bind.
#[test]
fn udp_reuseaddr_share_sends_datagrams_to_the_socket_bound_last() {
    let (d, _) = diagnose("silent-share-udp-reuseaddr");
    let share = &d.findings[0];
    let traffic: Vec<&str> =
        share.evidence.iter().filter(|e| e.source == "traffic").map(|e| e.detail.as_str()).collect();
    assert!(
        traffic.iter().any(|t| t.starts_with("to 127.0.0.1") && t.contains("container udp")),
        "{traffic:#?}"
    );
    assert!(share.summary.contains("receives none"), "{}", share.summary);
    assert!(d.findings.iter().all(|f| f.code != CauseCode::HostProcess), "{:#?}", d.findings);
}

#[test]
fn a_missing_address_names_the_interface_on_its_subnet() {
    // Recorded with eth0 at 192.0.2.2/24 and the publish on 192.0.2.10.
    let (d, _) = diagnose("address-unavailable");
    let f = &d.findings[0];
    assert!(f.summary.contains("192.0.2.10 is not an address of this host"), "{}", f.summary);
    assert!(
        f.evidence.iter().any(|e| e.detail.contains("eth0 (192.0.2.2/24 eth0) is on 192.0.2.10's subnet")),
        "{:#?}",
        f.evidence
    );
    assert!(!d.findings.iter().any(|f| f.code == CauseCode::HostProcess), "nothing holds the port");
}

/// rootlesskit-beside-rootful comes from the lab, not record.sh: run pw-evt0kail,
/// rootlesskit-holds/forky/legacy (a rootless 28.5.2 engine beside the rootful one, its container
/// `api` publishing 8080), collected by portwhy 0.1.0 (879d4f1).
#[test]
fn a_rootless_engine_beside_the_rootful_one_is_one_cause_named_in_rootless_terms() {
    let (d, _) = diagnose("rootlesskit-beside-rootful");
    let conflicts: Vec<_> = d.findings.iter().filter(|f| !f.code.is_note()).collect();
    // rootlesskit's two host sockets and the two docker-proxies inside its namespace: one cause.
    assert_eq!(conflicts.len(), 1, "{:#?}", d.findings);
    let f = conflicts[0];
    assert_eq!(f.code, CauseCode::RootlesskitHolds);
    assert!(!d.findings.iter().any(|f| f.code == CauseCode::OtherDaemon), "{:#?}", d.findings);
    assert!(
        f.summary.contains("0.0.0.0:8080") && f.summary.contains("rootless container api"),
        "{}",
        f.summary
    );
    let fix = f.remedies.first().expect("a remedy");
    assert_eq!(fix.command, "docker -H unix:///run/user/1000/docker.sock stop api");
}
