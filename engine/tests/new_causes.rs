//! The rules for the causes the error text alone can name: an address the host does not have
//! (PW014), Windows' own refusals (PW013 before PW012), rootless signs (PW009 without the engine)
//! and port 53 without the sockets (PW007). Inputs are the error-text fixtures, diagnosed the way
//! `portwhy diagnose --offline --error TEXT` does, plus host evidence where a rule reads it.

use std::path::Path;
use std::process::Command;

use portwhy::cause::CauseCode;
use portwhy::diagnosis::{Confidence, Diagnosis};
use portwhy::evidence::{Evidence, HostInfo};
use portwhy::parse::error::{classify, DaemonError};
use portwhy::port::PortQuery;
use portwhy::remedy::{Action, ForeignOs, Purpose};
use portwhy::rules::diagnose;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/errors/{name}.txt"));
    let raw =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    raw.split_inclusive('\n').skip_while(|l| l.starts_with('#')).collect()
}

/// The question the text asks: its address, port and protocol.
fn query_of(e: &DaemonError) -> PortQuery {
    let port = e.host_port.unwrap_or_else(|| panic!("the text names no port: {}", e.text));
    let text = match e.host_ip.as_deref() {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{port}/{}", e.proto),
        Some(ip) => format!("{ip}:{port}/{}", e.proto),
        None => format!("{port}/{}", e.proto),
    };
    text.parse().unwrap_or_else(|err| panic!("{text}: {err:?}"))
}

/// What `diagnose --offline --error TEXT` decides, with optional host evidence.
fn verdict(name: &str, host: Option<HostInfo>) -> Diagnosis {
    let e = classify(&fixture(name)).expect("classifies");
    let mut ev = Evidence::new(query_of(&e));
    match host {
        Some(h) => ev.host = Some(h),
        None => ev.mark_unavailable("all", "offline: nothing was collected (--offline)"),
    }
    diagnose(&ev, Some(&e))
}

fn codes(d: &Diagnosis) -> Vec<CauseCode> {
    d.findings.iter().map(|f| f.code).collect()
}

fn commands(d: &Diagnosis, code: CauseCode) -> Vec<String> {
    d.findings
        .iter()
        .filter(|f| f.code == code)
        .flat_map(|f| f.remedies.iter().map(|r| r.command.clone()))
        .collect()
}

#[test]
fn an_address_the_host_lacks_is_its_own_cause_and_never_a_holder() {
    for name in [
        "20.10.24-address-not-available",
        "20.10.0-host-bind-cannot-assign",
        "28.5-address-not-available",
        "29.1-address-not-available",
        "29.1-family-not-supported",
        "20.10.6-family-not-supported",
    ] {
        let d = verdict(name, None);
        let top = &d.findings[0];
        assert_eq!(top.code, CauseCode::AddressUnavailable, "{name}: {:?}", codes(&d));
        assert!(top.is_conflict(), "{name}: a failed publish must not read as no conflict");
        assert!(!codes(&d).contains(&CauseCode::HostProcess), "{name}: nothing holds the port");
        assert!(commands(&d, CauseCode::AddressUnavailable).contains(&"ip -br addr".to_owned()), "{name}");
    }
}

#[test]
fn live_it_names_the_interface_on_the_wanted_subnet() {
    let host = |addrs: &[&str]| HostInfo {
        addresses: addrs.iter().map(|s| (*s).to_owned()).collect(),
        ..HostInfo::default()
    };
    // 192.168.2.2 wanted; the host is on 192.168.2.0/24 through wlan0 with another address.
    let d =
        verdict("20.10.24-address-not-available", Some(host(&["127.0.0.1/8 lo", "192.168.2.40/24 wlan0"])));
    let f = &d.findings[0];
    assert_eq!(f.code, CauseCode::AddressUnavailable);
    let said: Vec<&str> = f.evidence.iter().map(|e| e.detail.as_str()).collect();
    assert!(said.iter().any(|s| s.contains("192.168.2.40/24 wlan0") && s.contains("subnet")), "{said:?}");
    assert!(
        f.remedies.iter().any(|r| r.command.starts_with("docker run -p 192.168.2.40:443:")),
        "{:?}",
        f.remedies
    );
    // The address came up after the container tried: publish again on it.
    let d = verdict("20.10.24-address-not-available", Some(host(&["192.168.2.2/24 eth0"])));
    assert!(d.findings[0].summary.contains("on eth0 now"), "{}", d.findings[0].summary);
    assert_eq!(d.findings[0].remedies[0].purpose, Purpose::Fix);
    // Another network altogether.
    let d = verdict("20.10.24-address-not-available", Some(host(&["10.1.0.5/16 eth0"])));
    assert!(d.findings[0].evidence.iter().any(|e| e.detail.contains("another host or network")));
}

#[test]
fn windows_wordings_rank_the_platform_first_with_its_commands() {
    let d = verdict("desktop-windows-forbidden", None);
    assert_eq!(d.findings[0].code, CauseCode::Platform, "{:?}", codes(&d));
    assert_eq!(d.findings[0].confidence, Confidence::High);
    // Port 50070 is above the unprivileged start and the engine is not rootless.
    assert!(!codes(&d).contains(&CauseCode::PrivilegedPort), "{:?}", codes(&d));
    let cmds = commands(&d, CauseCode::Platform);
    for want in [
        "netsh interface ipv4 show excludedportrange protocol=tcp",
        "net stop winnat && net start winnat",
        "netstat -ano | findstr :50070",
        "tasklist /FI \"PID eq N\"",
    ] {
        assert!(cmds.iter().any(|c| c == want), "{want} missing from {cmds:?}");
    }
    let windows_only = d.findings[0]
        .remedies
        .iter()
        .filter(|r| matches!(r.action, Action::Foreign { os: ForeignOs::Windows, .. }))
        .count();
    assert_eq!(windows_only, 4);
    // A port held by a Windows program: who holds it comes before the reservation.
    let d = verdict("desktop-windows-in-use", None);
    assert_eq!(d.findings[0].code, CauseCode::Platform, "{:?}", codes(&d));
    let cmds = commands(&d, CauseCode::Platform);
    let at = |s: &str| cmds.iter().position(|c| c.starts_with(s)).unwrap_or(usize::MAX);
    assert!(at("netstat -ano") < at("netsh interface"), "{cmds:?}");
}

#[test]
fn rootless_signs_name_the_regression_without_the_engine() {
    let d = verdict("29.1-rootless-slirp4netns", None);
    let f = &d.findings[0];
    assert_eq!(f.code, CauseCode::RootlessRegression, "{:?}", codes(&d));
    assert_eq!(f.confidence, Confidence::High);
    assert!(
        f.summary.contains("29.0.0–29.1.1")
            && f.summary.contains("moby#51591")
            && f.summary.contains("29.1.2"),
        "{}",
        f.summary
    );
    assert!(f.remedies.iter().any(|r| r.action == Action::UpgradeEngine { to: "29.1.2".into() }));

    let d = verdict("27.5-rootless-missing-proxy", None);
    let f = &d.findings[0];
    assert_eq!(f.code, CauseCode::RootlessRegression, "{:?}", codes(&d));
    assert!(f.remedies.iter().any(|r| r.action == Action::RestartDaemon { rootless: true }));

    // RootlessKit's port manager on 28.0.1 or later fits no known bug: no PW009 there.
    let d = verdict("28.5-rootless-host-bind", None);
    assert!(!codes(&d).contains(&CauseCode::RootlessRegression), "{:?}", codes(&d));
}

#[test]
fn port_53_without_sockets_names_the_usual_resolvers() {
    for name in ["28.5-host-bind-port-53", "20.10.24-host-bind-port-53-udp"] {
        let d = verdict(name, None);
        assert_eq!(d.findings[0].code, CauseCode::ResolverStub, "{name}: {:?}", codes(&d));
        assert_eq!(d.findings[0].confidence, Confidence::Medium, "{name}");
        let cmds = commands(&d, CauseCode::ResolverStub);
        let proto_flag = if name.ends_with("udp") { "ss -lunp" } else { "ss -lntp" };
        for want in [proto_flag, "systemctl status systemd-resolved", "sudo lsof -nP -i :53"] {
            assert!(cmds.iter().any(|c| c.starts_with(want)), "{name}: {want} missing from {cmds:?}");
        }
        assert!(d.findings[0].summary.contains("mDNSResponder"), "{name}");
    }
}

#[test]
fn the_cli_exits_1_after_a_publish_that_failed_for_a_missing_address() {
    let text = fixture("20.10.24-address-not-available");
    let out = Command::new(env!("CARGO_BIN_EXE_portwhy"))
        .args(["diagnose", "--offline", "--json", "--error", &text])
        .env("NO_COLOR", "1")
        .output()
        .expect("run portwhy");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["findings"][0]["code"], "PW014");
    assert_eq!(json["error"]["stage"], "address-unavailable");
}

/// With every source read and nothing holding the port, a missing address is still a failed
/// publish: the verdict must not say "no conflict" (exit 0).
#[test]
fn a_missing_address_is_a_conflict_even_when_every_source_was_read() {
    for name in ["20.10.24-address-not-available", "29.1-family-not-supported"] {
        let e = classify(&fixture(name)).expect("classifies");
        // Evidence with nothing unavailable: empty sources, as a clean host gives them.
        let ev = Evidence::new(query_of(&e));
        let d = diagnose(&ev, Some(&e));
        assert!(ev.unavailable.is_empty());
        assert_eq!(d.exit_code(), portwhy::exit::ExitCode::ConflictFound, "{name}: {:?}", codes(&d));
    }
}
