//! The daemon error-text classifier over recorded and composed fixtures: typed fields, one JSON
//! snapshot per fixture, and no panic on any truncated or mangled fixture.
//!
//! Fixtures live in `tests/fixtures/errors/<engine>-<case>.txt`. Their leading `#` lines say where the
//! text came from (a recorded run on this project's host, or moby's format string it was composed
//! from); everything after them is the text, byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use portwhy::parse::error::{classify, BindError, ErrorTextError, Reporter, Stage};
use portwhy::port::Proto;
use rstest::rstest;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors")
}

/// The fixture's text without its leading comment lines.
fn fixture_text(path: &Path) -> String {
    let raw =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let mut lines = raw.split_inclusive('\n').peekable();
    while lines.peek().is_some_and(|l| l.starts_with('#')) {
        lines.next();
    }
    lines.collect()
}

fn fixture(name: &str) -> String {
    fixture_text(&fixture_dir().join(format!("{name}.txt")))
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("tests/fixtures/errors exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    out.sort();
    out
}

const TCP: Proto = Proto::Tcp;
const UDP: Proto = Proto::Udp;
use Stage::{AccessDenied, Allocated, Firewall, HostBind, Unknown};

/// Every fixture with the fields a rule relies on. Cases are named after their fixture file.
#[rustfmt::skip]
#[rstest]
// Recorded on Engine 20.10.24.
#[case("20.10.24-host-bind-tcp4", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-v4"))]
#[case("20.10.24-host-bind-tcp6", HostBind, Some("::"), Some(18081), TCP, false, Some("pw-h1-v6"))]
#[case("20.10.24-host-bind-udp4", HostBind, Some("0.0.0.0"), Some(18082), UDP, false, Some("pw-h1-udp4"))]
#[case("20.10.24-host-bind-udp6", HostBind, Some("::"), Some(18084), UDP, false, Some("pw-h1-udp6"))]
#[case("20.10.24-host-bind-loopback", HostBind, Some("127.0.0.1"), Some(18083), TCP, false, Some("pw-h1-lo"))]
#[case("20.10.24-host-bind-v6-loopback", HostBind, Some("::1"), Some(18096), TCP, false, Some("pw-h1-v6lo"))]
#[case("20.10.24-allocated", Allocated, Some("0.0.0.0"), Some(18090), TCP, false, Some("pw-h1-alloc"))]
#[case("20.10.24-allocated-udp", Allocated, Some("0.0.0.0"), Some(18091), TCP, false, Some("pw-h1-allocudp"))]
#[case("20.10.24-allocated-loopback", Allocated, Some("127.0.0.1"), Some(18092), TCP, false, Some("pw-h1-alloclo"))]
#[case("20.10.24-allocated-v6-wildcard", Allocated, Some("::"), Some(18090), TCP, false, Some("pw-h1-allocv6"))]
#[case("20.10.24-allocated-v6-loopback", Allocated, Some("::1"), Some(18095), TCP, false, Some("pw-h1-alloc6lo"))]
#[case("20.10.24-start-host-bind", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-v4"))]
#[case("20.10.24-start-two-containers", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-v4"))]
#[case("20.10.24-start-allocated", Allocated, Some("0.0.0.0"), Some(18090), TCP, false, Some("pw-h1-created"))]
#[case("20.10.24-start-attach-allocated", Allocated, Some("0.0.0.0"), Some(18090), TCP, false, Some("pw-h1-created"))]
#[case("20.10.24-state-error", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-v4"))]
#[case("20.10.24-cli20-detached-combined", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-c20-v4"))]
#[case("20.10.24-cli20-attached-logline", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-c20-fg"))]
#[case("20.10.24-cli20-tty-allocated", Allocated, Some("0.0.0.0"), Some(18090), TCP, false, Some("pw-h1-c20-tty"))]
#[case("20.10.24-cli20-start-attach", HostBind, Some("0.0.0.0"), Some(18080), TCP, false, Some("pw-h1-c20-fg"))]
#[case("20.10.24-cli20-udp6", HostBind, Some("::"), Some(18084), UDP, false, Some("pw-h1-c20-udp6"))]
#[case("20.10.24-compose-v1-two-services", Allocated, Some("0.0.0.0"), Some(18090), TCP, false, Some("pwh1_web_1"))]
#[case("20.10.24-cli-socket-permission-denied", Unknown, None, None, TCP, false, None)]
#[case("20.10.24-cli20-socket-permission-denied", Unknown, None, None, TCP, false, None)]
// Composed from moby's format strings: 20.10.0-1 and older.
#[case("19.03-host-bind-see-help", HostBind, Some("0.0.0.0"), Some(4222), TCP, false, Some("nats"))]
#[case("20.10.0-host-bind-cannot-assign", HostBind, Some("192.0.2.10"), Some(443), TCP, false, Some("proj_web_1"))]
#[case("20.10.1-host-bind-listen-tcp", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
#[case("20.10.1-host-bind-listen-tcp-v6", HostBind, Some("::"), Some(8080), TCP, false, Some("drupal"))]
#[case("20.10.1-userland-proxy-false", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
// 20.10.2-26.x.
#[case("20.10.6-family-not-supported", HostBind, Some("::"), Some(5432), TCP, false, Some("sleepy_wilson"))]
#[case("26.1-userland-proxy-false", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
#[case("26.1-userland-proxy-false-udp6", HostBind, Some("::"), Some(5353), UDP, false, Some("dns"))]
// 27.x.
#[case("27.5-host-bind", HostBind, Some("127.0.0.1"), Some(2375), TCP, false, Some("dockerproxy"))]
// 28.x.
#[case("28.0.0-host-bind", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
#[case("28.5-host-bind", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
#[case("28.5-host-bind-v6", HostBind, Some("::"), Some(8080), TCP, false, Some("web6"))]
#[case("28.5-host-bind-udp", HostBind, Some("0.0.0.0"), Some(5353), UDP, false, Some("dns"))]
#[case("28.5-host-bind-range", HostBind, Some("0.0.0.0"), Some(8085), TCP, false, Some("web"))]
#[case("28.5-start-host-bind", HostBind, Some("127.0.0.1"), Some(8080), TCP, false, Some("web"))]
#[case("28.5-start-single-line", HostBind, Some("0.0.0.0"), Some(3306), TCP, false, Some("db"))]
#[case("28.5-compose-v2", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("proj-web-1"))]
#[case("28.5-proxy-start-failed", Unknown, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
// 29.x.
#[case("29.1-host-bind", HostBind, Some("0.0.0.0"), Some(8080), TCP, false, Some("web"))]
#[case("29.1-host-bind-v6-udp", HostBind, Some("::"), Some(5353), UDP, false, Some("dns"))]
#[case("29.1-permission-denied", AccessDenied, Some("0.0.0.0"), Some(80), TCP, false, Some("web"))]
// Rootless.
#[case("20.10-rootless-privileged", AccessDenied, Some("0.0.0.0"), Some(80), TCP, true, Some("focused_swanson"))]
#[case("27.5-rootless-privileged", AccessDenied, Some("0.0.0.0"), Some(80), TCP, true, Some("nginx"))]
#[case("28.5-rootless-host-bind", HostBind, Some("0.0.0.0"), Some(8080), TCP, true, Some("web"))]
#[case("28.5-rootless-privileged", AccessDenied, Some("0.0.0.0"), Some(80), TCP, true, Some("wordpress-wordpress-1"))]
// Firewall: the host port comes from --dport, never from the container's --to-destination.
#[case("18.09-firewall-nf-tables", Firewall, Some("0.0.0.0"), Some(8100), TCP, false, Some("docs"))]
#[case("19.03-firewall-split-backend", Firewall, Some("127.0.0.1"), Some(5353), UDP, false, Some("web"))]
#[case("28.5-firewall-dnat", Firewall, Some("0.0.0.0"), Some(5000), TCP, false, Some("registry"))]
// Docker Desktop.
#[case("desktop-mac-in-use", HostBind, Some("0.0.0.0"), Some(5000), TCP, false, None)]
#[case("desktop-mac-vpnkit", HostBind, Some("0.0.0.0"), Some(80), TCP, false, Some("phpapp_nginx_1"))]
#[case("desktop-mac-vpnkit-allocated", Allocated, Some("0.0.0.0"), Some(5000), TCP, false, Some("registry"))]
#[case("desktop-windows-forbidden", AccessDenied, Some("0.0.0.0"), Some(50070), TCP, false, None)]
#[case("desktop-windows-in-use", HostBind, Some("0.0.0.0"), Some(50001), TCP, false, None)]
// Garbled and unknown.
#[case("garbled-compose-v1-interleaved", HostBind, Some("0.0.0.0"), Some(80), TCP, false, Some("compose-sample-2_proxy_1"))]
#[case("garbled-truncated", Unknown, None, None, TCP, false, Some("pw-h1-v4"))]
#[case("garbled-noise", Unknown, None, None, TCP, false, None)]
#[case("garbled-help-only", Unknown, None, None, TCP, false, None)]
#[case("unknown-address-in-use-no-port", Unknown, None, None, TCP, false, None)]
fn classifies_fixture(
    #[case] name: &str,
    #[case] stage: Stage,
    #[case] host_ip: Option<&str>,
    #[case] host_port: Option<u16>,
    #[case] proto: Proto,
    #[case] rootless: bool,
    #[case] container: Option<&str>,
) {
    let text = fixture(name);
    let got = classify(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(got.stage, stage, "{name}: stage of {:?}", got.text);
    assert_eq!(got.host_ip.as_deref(), host_ip, "{name}: host_ip");
    assert_eq!(got.host_port, host_port, "{name}: host_port");
    assert_eq!(got.proto, proto, "{name}: proto");
    assert_eq!(got.rootless, rootless, "{name}: rootless");
    assert_eq!(got.container.as_deref(), container, "{name}: container");
    assert_eq!(got.is_recognised(), stage != Unknown || host_port.is_some(), "{name}: is_recognised");
    insta::with_settings!({
        info => &text,
        description => format!("classify(tests/fixtures/errors/{name}.txt)"),
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, got);
    });
}

/// The releases each wording pins down, per the table in moby's source (see parse/error.rs).
#[rustfmt::skip]
#[rstest]
#[case("20.10.24-host-bind-tcp4", Some("20.10.2"), Some("26"))]
#[case("20.10.24-cli20-udp6", Some("20.10.2"), Some("26"))]
#[case("26.1-userland-proxy-false", Some("20.10.2"), Some("26"))]
#[case("20.10.6-family-not-supported", Some("20.10.2"), Some("26"))]
#[case("20.10.1-host-bind-listen-tcp", None, Some("20.10.1"))]
#[case("20.10.1-userland-proxy-false", None, Some("20.10.1"))]
#[case("27.5-host-bind", Some("27.0.0"), Some("27"))]
#[case("27.5-rootless-privileged", Some("27.0.0"), Some("27"))]
#[case("28.0.0-host-bind", Some("28.0.0"), Some("28"))]
#[case("28.5-host-bind", Some("28.0.1"), Some("28"))]
#[case("28.5-host-bind-range", Some("28.0.1"), Some("28"))]
#[case("28.5-rootless-host-bind", Some("28.0.1"), None)]
#[case("28.5-proxy-start-failed", Some("28.0.1"), None)]
#[case("29.1-host-bind", Some("29.0.0"), None)]
#[case("29.1-host-bind-v6-udp", Some("29.0.0"), None)]
// Rootless: RootlessKit's own `listen tcp` says nothing about the engine; the proxy phrase does.
#[case("20.10-rootless-privileged", None, Some("26"))]
// The allocator's wording is the same on every release.
#[case("20.10.24-allocated", None, None)]
#[case("desktop-mac-in-use", None, None)]
fn engine_versions_follow_the_wording(
    #[case] name: &str,
    #[case] min: Option<&str>,
    #[case] max: Option<&str>,
) {
    let got = classify(&fixture(name)).unwrap();
    assert_eq!(got.engine_versions.min.as_ref().map(ToString::to_string).as_deref(), min, "{name}: min");
    assert_eq!(got.engine_versions.max.as_ref().map(ToString::to_string).as_deref(), max, "{name}: max");
}

/// The measured engine must lie in the range its own texts imply.
#[test]
fn recorded_texts_admit_the_engine_that_printed_them() {
    for path in all_fixtures() {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !name.starts_with("20.10.24-") {
            continue;
        }
        let got = classify(&fixture_text(&path)).unwrap();
        assert!(got.engine_versions.admits("20.10.24+dfsg1"), "{name}: {:?}", got.engine_versions);
        if got.engine_versions.max.is_some() {
            // Every bounded range from a 20.10.24 text ends before the daemon bound sockets itself.
            assert!(!got.engine_versions.admits("28.5.2"), "{name}: {:?}", got.engine_versions);
        }
    }
}

#[rustfmt::skip]
#[rstest]
#[case("20.10.24-host-bind-tcp4", Some(Reporter::UserlandProxy), Some(BindError::AddressInUse))]
#[case("20.10.24-allocated", Some(Reporter::Allocator), None)]
#[case("26.1-userland-proxy-false", Some(Reporter::Daemon), Some(BindError::AddressInUse))]
#[case("28.5-host-bind", Some(Reporter::Daemon), Some(BindError::AddressInUse))]
#[case("29.1-permission-denied", Some(Reporter::Daemon), Some(BindError::PermissionDenied))]
#[case("28.5-rootless-host-bind", Some(Reporter::Rootlesskit), Some(BindError::AddressInUse))]
#[case("28.5-rootless-privileged", Some(Reporter::Rootlesskit), Some(BindError::PermissionDenied))]
#[case("20.10.0-host-bind-cannot-assign", Some(Reporter::UserlandProxy), Some(BindError::AddressNotAvailable))]
#[case("20.10.6-family-not-supported", Some(Reporter::UserlandProxy), Some(BindError::FamilyNotSupported))]
#[case("desktop-windows-forbidden", Some(Reporter::DockerDesktop), Some(BindError::PermissionDenied))]
#[case("desktop-windows-in-use", Some(Reporter::DockerDesktop), Some(BindError::AddressInUse))]
#[case("desktop-mac-vpnkit", Some(Reporter::DockerDesktop), Some(BindError::AddressInUse))]
#[case("28.5-firewall-dnat", Some(Reporter::Iptables), None)]
#[case("garbled-noise", None, None)]
fn reporter_and_os_reason(
    #[case] name: &str,
    #[case] reporter: Option<Reporter>,
    #[case] bind_error: Option<BindError>,
) {
    let got = classify(&fixture(name)).unwrap();
    assert_eq!(got.reporter, reporter, "{name}: reporter");
    assert_eq!(got.bind_error, bind_error, "{name}: bind_error");
}

#[test]
fn allocator_wording_does_not_state_the_protocol() {
    // Recorded: a UDP conflict in the allocator reads exactly like a TCP one.
    let udp = classify(&fixture("20.10.24-allocated-udp")).unwrap();
    let tcp = classify(&fixture("20.10.24-allocated")).unwrap();
    assert!(!udp.proto_stated && !tcp.proto_stated);
    assert!(classify(&fixture("20.10.24-host-bind-udp4")).unwrap().proto_stated);
}

#[test]
fn text_is_the_daemon_message_without_cli_noise() {
    let got = classify(&fixture("20.10.24-cli20-tty-allocated")).unwrap();
    assert_eq!(
        got.text,
        "driver failed programming external connectivity on endpoint pw-h1-c20-tty \
         (76c063b104093ed19fcab9f7a94a41871955e581fec752f4f49170167a075096): \
         Bind for 0.0.0.0:18090 failed: port is already allocated"
    );
    assert_eq!(
        got.endpoint_id.as_deref(),
        Some("76c063b104093ed19fcab9f7a94a41871955e581fec752f4f49170167a075096")
    );
    // A `docker start` tail pasted onto the same line is not part of the daemon's message.
    let start = classify(&fixture("28.5-start-single-line")).unwrap();
    assert!(start.text.ends_with("/tcp: address already in use"), "{}", start.text);
    let fw = classify(&fixture("28.5-firewall-dnat")).unwrap();
    assert!(fw.text.starts_with("failed to set up container networking: "), "{}", fw.text);
    assert!(fw.text.ends_with("by that name. (exit status 1))"), "{}", fw.text);
}

/// The table above must name every fixture: a fixture nobody asserts on proves nothing.
#[test]
fn every_fixture_is_asserted() {
    let source = include_str!("error_text.rs");
    let table = &source[..source.find("fn classifies_fixture(").unwrap_or(0)];
    for path in all_fixtures() {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        assert!(
            table.contains(&format!("#[case(\"{name}\", ")),
            "fixture {name} has no row in classifies_fixture"
        );
        assert!(
            fs::read_to_string(&path).unwrap().starts_with("# "),
            "fixture {name} must open with a comment saying where it came from"
        );
    }
    assert!(all_fixtures().len() >= 40, "the fixture directory went missing");
}

#[rstest]
#[case("")]
#[case("   \n\t \r\n")]
fn blank_text_is_an_error(#[case] text: &str) {
    assert_eq!(classify(text), Err(ErrorTextError::Empty));
}

/// Tiny deterministic generator so the mangling below is the same on every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_total(input: &str, origin: &str) {
    match classify(input) {
        Err(ErrorTextError::Empty) => {
            assert!(input.trim().is_empty(), "{origin}: non-blank input called empty")
        }
        Ok(e) => {
            assert!(!input.trim().is_empty(), "{origin}: blank input accepted");
            assert!(!e.text.is_empty(), "{origin}: empty text for {input:?}");
            assert!(e.host_port != Some(0), "{origin}: port 0 is no port");
        }
    }
}

/// classify never panics: every prefix and suffix of every fixture (cut at each character), and
/// deterministic byte-level mangling of each.
#[test]
fn never_panics_on_truncated_or_mangled_fixtures() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut inputs = 0usize;
    for path in all_fixtures() {
        let text = fixture_text(&path);
        let name = path.display().to_string();
        for (i, _) in text.char_indices() {
            check_total(&text[..i], &format!("{name} prefix {i}"));
            check_total(&text[i..], &format!("{name} suffix {i}"));
            inputs += 2;
        }
        for round in 0..200 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.next() % 8 {
                if bytes.is_empty() {
                    break;
                }
                let at = (rng.next() % bytes.len() as u64) as usize;
                match rng.next() % 4 {
                    0 => bytes[at] = (rng.next() % 256) as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, b":[]/.0123456789"[(rng.next() % 15) as usize]),
                    _ => bytes.truncate(at),
                }
            }
            check_total(&String::from_utf8_lossy(&bytes), &format!("{name} mangled round {round}"));
            inputs += 1;
        }
    }
    assert!(inputs > 10_000, "only {inputs} inputs were tried");
}
