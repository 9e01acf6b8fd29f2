//! Causes that live in the daemon's own state rather than in a holder: an allocation the daemon
//! kept (PW015), chains a firewall reload wiped (PW016), a second daemon holding the port (PW017).
//!
//! Each runs over bundles recorded from private 20.10.24 daemons (fixtures/evidence/record-daemons.sh),
//! and PW015's holder-free path over the recorded container-holds bundle with the holder taken away.

use std::path::PathBuf;

use portwhy::cause::CauseCode;
use portwhy::diagnosis::{Confidence, Diagnosis};
use portwhy::evidence::{Evidence, FirewallState};
use portwhy::parse::error::classify;
use portwhy::remedy::{Action, Purpose};
use portwhy::rules::diagnose;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn bundle(case: &str) -> Evidence {
    let text = std::fs::read_to_string(fixture(&format!("evidence/{case}.json"))).expect("bundle");
    portwhy::evidence::bundle::read_bundle(&text).unwrap_or_else(|e| panic!("{case}.json {e}"))
}

fn error_of(case: &str) -> portwhy::parse::error::DaemonError {
    let text = std::fs::read_to_string(fixture(&format!("evidence/{case}.error.txt"))).expect("error text");
    classify(&text).expect("classifies")
}

fn codes(d: &Diagnosis) -> Vec<CauseCode> {
    d.findings.iter().map(|f| f.code).collect()
}

fn finding(d: &Diagnosis, code: CauseCode) -> &portwhy::diagnosis::Finding {
    d.findings.iter().find(|f| f.code == code).unwrap_or_else(|| panic!("no {code}: {:#?}", d.findings))
}

// ---- PW015 stale-allocation ----

#[test]
fn a_live_restore_restart_leaves_an_allocation_that_killing_the_proxies_does_not_free() {
    // Recorded: kept (-p 18514) outlived a daemon restart under live-restore, was stopped and
    // removed; its old docker-proxies stayed and the allocator refused fresh's publish.
    let ev = bundle("stale-allocation");
    let d = diagnose(&ev, Some(&error_of("stale-allocation")));
    let top = &d.findings[0];
    assert_eq!(top.code, CauseCode::StaleAllocation, "{:?}", codes(&d));
    assert_eq!(top.confidence, Confidence::High);
    let proxies: Vec<u32> = ev.docker.as_ref().expect("engine").proxies.iter().map(|p| p.pid).collect();
    assert_eq!(proxies.len(), 2, "the two leftover proxies of the recording");
    for pid in &proxies {
        assert!(
            top.evidence
                .iter()
                .any(|e| e.detail.starts_with(&format!("docker-proxy pid {pid} still forwards"))),
            "{:#?}",
            top.evidence
        );
    }
    // Killing them was measured not to free the port: no finding offers it as the fix.
    assert!(!codes(&d).contains(&CauseCode::StaleProxy), "{:?}", codes(&d));
    let fix = top.fixes().next().expect("a fix");
    assert_eq!(fix.action, Action::RestartDaemon { rootless: false });
    assert!(
        fix.effect.contains("live-restore is on"),
        "the recording's daemon ran with live-restore: {}",
        fix.effect
    );
    assert!(!codes(&d).contains(&CauseCode::ContainerHolds), "{:?}", codes(&d));
}

/// The recorded container-holds bundle (pwfx-a publishes 18403, pwfx-b's publish was refused by
/// the allocator) with pwfx-a, its proxies and its sockets gone: Docker answers, and nothing but
/// the allocator's table can be holding 18403.
fn nothing_holds() -> (Evidence, portwhy::parse::error::DaemonError) {
    let mut ev = bundle("container-holds");
    let d = ev.docker.as_mut().expect("the bundle read the engine");
    assert!(d.containers.iter().any(|c| c.name == "pwfx-a"), "the recorded holder is pwfx-a");
    d.containers.retain(|c| c.name != "pwfx-a");
    d.proxies.clear();
    ev.sockets = Some(Vec::new());
    (ev, error_of("container-holds"))
}

#[test]
fn an_allocation_nothing_holds_is_the_daemons_state_and_not_a_container() {
    let (ev, e) = nothing_holds();
    let d = diagnose(&ev, Some(&e));
    let top = &d.findings[0];
    assert_eq!(top.code, CauseCode::StaleAllocation, "{:?}", codes(&d));
    assert_eq!(top.confidence, Confidence::High);
    assert!(!codes(&d).contains(&CauseCode::ContainerHolds), "no container is to blame: {:?}", codes(&d));
    let fix = top.fixes().next().expect("a fix");
    assert_eq!(fix.action, Action::RestartDaemon { rootless: false });
    // The bundle predates the live-restore field, so the restart's cost is said conditionally.
    assert_eq!(ev.docker.as_ref().and_then(|d| d.live_restore), None);
    assert!(fix.effect.contains("stops unless live-restore is on"), "{}", fix.effect);
    assert!(top
        .remedies
        .iter()
        .any(|r| r.purpose == Purpose::Workaround && r.command.starts_with("portwhy suggest")));
}

#[test]
fn with_the_api_unreachable_a_container_stays_the_likelier_holder() {
    let (mut ev, e) = nothing_holds();
    ev.docker = None;
    ev.mark_unavailable("docker", "cannot reach the Docker API at unix:///var/run/docker.sock");
    let d = diagnose(&ev, Some(&e));
    assert_eq!(d.findings[0].code, CauseCode::ContainerHolds, "{:?}", codes(&d));
    assert_eq!(d.findings[0].confidence, Confidence::Medium);
    let stale = finding(&d, CauseCode::StaleAllocation);
    assert!(stale.confidence < d.findings[0].confidence, "stale state is the less likely reading here");
}

#[test]
fn a_running_publisher_is_never_called_stale() {
    let ev = bundle("container-holds");
    let d = diagnose(&ev, Some(&error_of("container-holds")));
    assert_eq!(d.findings[0].code, CauseCode::ContainerHolds);
    assert!(!codes(&d).contains(&CauseCode::StaleAllocation), "{:?}", codes(&d));
}

// ---- PW016 chains-missing ----

#[test]
fn wiped_chains_are_named_with_the_restart_that_restores_them() {
    let ev = bundle("chains-missing");
    let d = diagnose(&ev, Some(&error_of("chains-missing")));
    let top = &d.findings[0];
    assert_eq!(top.code, CauseCode::ChainsMissing, "{:?}", codes(&d));
    assert_eq!(top.confidence, Confidence::High);
    assert!(top.summary.contains("DOCKER chain"), "{}", top.summary);
    let details: Vec<&str> = top.evidence.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        details.iter().any(|d| d.starts_with("no Docker chain") && d.contains("iptables-nft")),
        "{details:#?}"
    );
    // web kept running with its publish of 18511 while its rules went.
    assert!(details.iter().any(|d| d.contains("web publishes 18511/tcp")), "{details:#?}");
    // Another port needs the same chain: the one remedy is the restart (the recording proved it).
    let actions: Vec<&Action> = top.remedies.iter().map(|r| &r.action).collect();
    assert_eq!(actions, [&Action::RestartDaemon { rootless: false }]);
    assert!(!codes(&d).contains(&CauseCode::SplitBackend), "both backends agree: {:?}", codes(&d));
}

#[test]
fn rules_gone_before_anything_failed_are_a_suspicion() {
    let ev = bundle("chains-missing-silent");
    let d = diagnose(&ev, None);
    // web still holds 18511 through docker-proxy; that stays the verdict for the port.
    assert_eq!(d.findings[0].code, CauseCode::ContainerHolds);
    assert_eq!(finding(&d, CauseCode::ChainsMissing).confidence, Confidence::Medium);
}

#[test]
fn a_flushed_chain_or_a_lost_rule_is_named_as_such() {
    use portwhy::evidence::Backend;
    // `iptables -t nat -F DOCKER`: the chain stays, its rules go.
    let mut ev = bundle("chains-missing-silent");
    let fw = ev.firewall.as_mut().expect("firewall read");
    fw.docker_chains_in = vec![Backend::IptablesNft];
    let d = diagnose(&ev, None);
    let f = finding(&d, CauseCode::ChainsMissing);
    assert!(f.evidence.iter().any(|e| e.detail.contains("hold no DNAT rule")), "{:#?}", f.evidence);

    // Other ports keep their rules but 18511's is gone.
    let fw = ev.firewall.as_mut().expect("firewall read");
    fw.docker_dnat_count = vec![(Backend::IptablesNft, 3)];
    let d = diagnose(&ev, None);
    let f = finding(&d, CauseCode::ChainsMissing);
    assert!(
        f.evidence.iter().any(|e| e.detail == "no DNAT rule for port 18511/tcp in any backend"),
        "{:#?}",
        f.evidence
    );

    // With its rule back there is nothing to say.
    let web = ev.docker.as_ref().and_then(|d| d.containers.iter().find(|c| c.name == "web")).expect("web");
    let addr = *web.addresses.values().next().expect("web's address");
    ev.firewall.as_mut().expect("firewall").nat_rules.push(portwhy::evidence::NatRule {
        backend: Backend::IptablesNft,
        family: portwhy::evidence::Family::Ipv4,
        table: "nat".into(),
        chain: "DOCKER".into(),
        proto: portwhy::port::Proto::Tcp,
        dport: 18511,
        match_dest: None,
        in_iface: Some("!docker0".into()),
        to_addr: addr,
        to_port: 80,
        raw: format!("-A DOCKER ! -i docker0 -p tcp -m tcp --dport 18511 -j DNAT --to-destination {addr}:80"),
        position: Some(2),
    });
    let d = diagnose(&ev, None);
    assert!(!codes(&d).contains(&CauseCode::ChainsMissing), "{:?}", codes(&d));
}

#[test]
fn a_daemon_run_without_iptables_has_no_chains_to_miss() {
    let mut ev = bundle("chains-missing-silent");
    let daemons = ev.daemons.get_or_insert_with(Default::default);
    daemons.processes.push(portwhy::evidence::DaemonProcess {
        pid: 4242,
        cmdline: "dockerd --iptables=false".into(),
        ..Default::default()
    });
    daemons.ours = Some(4242);
    let d = diagnose(&ev, None);
    assert!(!codes(&d).contains(&CauseCode::ChainsMissing), "{:?}", codes(&d));
}

#[test]
fn a_split_backend_keeps_the_same_text() {
    let mut ev = bundle("chains-missing");
    // Docker's chains in iptables-legacy while `iptables` points at nft: the other explanation.
    let fw = ev.firewall.get_or_insert_with(FirewallState::default);
    assert_eq!(fw.iptables_alternative.as_deref(), Some("nft"));
    fw.docker_chains_in = vec![portwhy::evidence::Backend::IptablesLegacy];
    let d = diagnose(&ev, Some(&error_of("chains-missing")));
    assert_eq!(d.findings[0].code, CauseCode::SplitBackend, "{:?}", codes(&d));
    assert!(!codes(&d).contains(&CauseCode::ChainsMissing));
}

#[test]
fn the_daemons_words_alone_name_the_missing_chain() {
    for name in
        ["20.10.24-firewall-chains-wiped", "29.7-firewall-chain-missing", "29.1-nftables-chain-missing"]
    {
        let raw = std::fs::read_to_string(fixture(&format!("errors/{name}.txt"))).expect("fixture");
        let text: String = raw.split_inclusive('\n').skip_while(|l| l.starts_with('#')).collect();
        let e = classify(&text).expect("classifies");
        let mut ev = Evidence::new(format!("{}/tcp", e.host_port.expect("a port")).parse().expect("query"));
        ev.mark_unavailable("all", "offline: nothing was collected (--offline)");
        let d = diagnose(&ev, Some(&e));
        let top = &d.findings[0];
        assert_eq!(top.code, CauseCode::ChainsMissing, "{name}: {:?}", codes(&d));
        assert_eq!(top.confidence, Confidence::Medium, "{name}: a split backend is not ruled out offline");
        let chain =
            e.firewall_error.as_ref().and_then(|f| f.chain.clone()).expect("the text names the chain");
        assert!(top.summary.contains(&chain), "{name}: {}", top.summary);
    }
}

// ---- PW017 other-daemon ----

#[test]
fn a_port_held_for_another_daemon_names_that_daemon_and_its_container() {
    let ev = bundle("other-daemon");
    let d = diagnose(&ev, Some(&error_of("other-daemon")));
    let daemons = ev.daemons.as_ref().expect("the bundle lists the daemons");
    let ours = daemons.ours.expect("the daemon portwhy asked was found");
    let other = daemons
        .processes
        .iter()
        .find(|p| p.cmdline.contains("--bridge pwbr2"))
        .expect("the second daemon of the recording");
    assert_ne!(other.pid, ours);
    let socket = other.socket().expect("its socket").to_owned();
    assert!(socket.ends_with("/2/docker.sock"), "{socket}");

    let top = &d.findings[0];
    assert_eq!(top.code, CauseCode::OtherDaemon, "{:?}", codes(&d));
    assert!(top.summary.contains("container other-web"), "{}", top.summary);
    assert!(
        top.summary.contains(&format!("pid {}", other.pid)) && top.summary.contains(&socket),
        "{}",
        top.summary
    );
    let stop = Action::StopContainer { container: "other-web".into(), docker_host: Some(socket.clone()) };
    assert_eq!(top.fixes().map(|r| &r.action).collect::<Vec<_>>(), [&stop]);
    assert_eq!(
        top.fixes().next().map(|r| r.command.as_str()),
        Some(format!("docker -H {socket} stop other-web").as_str())
    );
    assert!(top
        .remedies
        .iter()
        .any(|r| r.command == format!("docker -H {socket} ps -a --filter 'publish=18513/tcp'")));
    // Its proxy is neither a leftover nor its DNAT rule an orphan: both are the other daemon's.
    for wrong in [CauseCode::StaleProxy, CauseCode::OrphanedDnat, CauseCode::HostProcess] {
        assert!(!codes(&d).contains(&wrong), "{wrong}: {:?}", codes(&d));
    }
}

#[test]
fn without_the_daemons_the_same_holder_reads_as_a_leftover_proxy() {
    // What portwhy said before it looked at every daemon: the evidence is what changes the verdict.
    let mut ev = bundle("other-daemon");
    ev.daemons = None;
    let d = diagnose(&ev, Some(&error_of("other-daemon")));
    assert_eq!(d.findings[0].code, CauseCode::StaleProxy, "{:?}", codes(&d));
    assert!(!codes(&d).contains(&CauseCode::OtherDaemon));
}

#[test]
fn when_ours_is_unknown_no_daemon_is_called_foreign() {
    let mut ev = bundle("other-daemon");
    ev.daemons.as_mut().expect("daemons").ours = None;
    let d = diagnose(&ev, Some(&error_of("other-daemon")));
    assert!(!codes(&d).contains(&CauseCode::OtherDaemon), "{:?}", codes(&d));
}

#[test]
fn bundles_without_the_new_fields_still_read() {
    // Recorded before `daemons` and `docker_root_dir` existed.
    let ev = bundle("container-holds");
    assert!(ev.daemons.is_none());
    assert!(ev.docker.as_ref().is_some_and(|d| d.docker_root_dir.is_none()));
    // And the new ones survive a round trip.
    let ev = bundle("other-daemon");
    let back: Evidence = serde_json::from_str(&serde_json::to_string(&ev).expect("json")).expect("parse");
    assert_eq!(back, ev);
}
