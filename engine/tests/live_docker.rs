//! Live layer: real holders on the real host engine, diagnosed by the real `portwhy` binary.
//!
//! Needs root and a running dockerd (`ci/setup.sh` provides both). A test that cannot reach
//! Docker fails with the reason; it never passes silently.
#![cfg(feature = "live")]

use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output};

const IMAGE: &str = "portwhy-live-busybox:local";

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("sh")
}

/// A busybox image made from the host's busybox-static: there is no registry to pull from.
fn ensure_docker_and_image() {
    let info = sh("docker info --format '{{.ServerVersion}}'");
    assert!(
        info.status.success(),
        "the live tests need a running Docker daemon (run ci/setup.sh): {}",
        String::from_utf8_lossy(&info.stderr)
    );
    if !sh(&format!("docker image inspect {IMAGE}")).status.success() {
        let o = sh(&format!(
            "d=$(mktemp -d) && cp /bin/busybox $d/ && tar -C $d -c . | docker import - {IMAGE} && rm -rf $d"
        ));
        assert!(o.status.success(), "cannot import busybox (apt-get install busybox-static): {o:?}");
    }
}

/// Containers named by a test are removed when it ends, pass or fail.
struct Containers(Vec<String>);
impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = sh(&format!("docker rm -f {c}"));
        }
    }
}

fn diagnose(args: &[&str]) -> (serde_json::Value, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_portwhy")).args(args).arg("--json").output().expect("portwhy");
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("portwhy printed no JSON ({e}): {}", String::from_utf8_lossy(&o.stderr)));
    (v, o.status.code().unwrap_or(-1))
}

fn codes(d: &serde_json::Value) -> Vec<String> {
    d["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn live_host_process_is_named_with_the_real_error() {
    ensure_docker_and_image();
    let holder = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let _c = Containers(vec![format!("pwlive-hp-{port}")]);
    let run = sh(&format!("docker run --name pwlive-hp-{port} -p {port}:80 {IMAGE} /busybox true"));
    assert!(!run.status.success(), "the publish must fail while the port is held");
    let text = String::from_utf8_lossy(&run.stderr).into_owned();
    let (d, code) = diagnose(&["diagnose", &port.to_string(), "--error", &text]);
    assert_eq!(code, 1);
    assert_eq!(d["error"]["stage"], "host-bind", "{text}");
    assert_eq!(codes(&d)[0], "PW001", "{d:#}");
    let me = std::process::id().to_string();
    assert!(d["findings"][0]["summary"].as_str().unwrap().contains(&me), "names this test process: {d:#}");
    // The failed container stays Created and is ruled out, not blamed.
    assert!(codes(&d).contains(&"PW011".to_owned()), "{d:#}");
}

#[test]
fn live_udp_holder_is_named() {
    ensure_docker_and_image();
    let holder = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let (d, code) = diagnose(&[&format!("{port}/udp")]);
    assert_eq!(code, 1);
    assert_eq!(codes(&d)[0], "PW001");
    assert!(d["findings"][0]["summary"].as_str().unwrap().starts_with("live_docker"), "{d:#}");
}

#[test]
fn live_container_holder_is_named_and_stopped_ones_are_not() {
    ensure_docker_and_image();
    let port = TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port();
    let (a, b, c) = (format!("pwlive-a-{port}"), format!("pwlive-b-{port}"), format!("pwlive-c-{port}"));
    let _c = Containers(vec![a.clone(), b.clone(), c.clone()]);
    // A created container that publishes the port holds nothing...
    assert!(sh(&format!("docker create --name {c} -p {port}:80 {IMAGE} /busybox sleep 60")).status.success());
    let (d, code) = diagnose(&[&port.to_string()]);
    assert_eq!(code, 0, "{d:#}");
    assert_eq!(codes(&d), ["PW000", "PW011"], "{d:#}");
    // ...a running one does, and the allocator refuses the next.
    assert!(sh(&format!("docker run -d --name {a} -p {port}:80 {IMAGE} /busybox sleep 60")).status.success());
    let run = sh(&format!("docker run --name {b} -p {port}:80 {IMAGE} /busybox true"));
    let text = String::from_utf8_lossy(&run.stderr).into_owned();
    let (d, code) = diagnose(&["diagnose", &port.to_string(), "--error", &text]);
    assert_eq!(code, 1);
    assert_eq!(d["error"]["stage"], "allocated", "{text}");
    assert_eq!(codes(&d)[0], "PW002");
    assert!(d["findings"][0]["summary"].as_str().unwrap().contains(&a), "{d:#}");
}

/// An orphaned DNAT rule in a network namespace of our own: the host's firewall is not touched.
#[test]
fn live_orphaned_dnat_in_a_namespace() {
    ensure_docker_and_image();
    let ns = format!("pwlive{}", std::process::id());
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = sh(&format!("ip netns del {}", self.0));
        }
    }
    assert!(sh(&format!("ip netns add {ns}")).status.success());
    let _ns = Netns(ns.clone());
    let add = sh(&format!(
        "ip netns exec {ns} iptables-nft -t nat -A PREROUTING -p tcp --dport 18777 -j DNAT --to-destination 10.123.0.9:80"
    ));
    assert!(add.status.success(), "{add:?}");
    let o = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_portwhy"), "18777", "--json"])
        .output()
        .unwrap();
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "PW005")
        .unwrap_or_else(|| panic!("{d:#}"));
    assert_eq!(f["confidence"], "high", "Docker answered, so no container has the target: {f:#}");
    assert!(f["summary"].as_str().unwrap().contains("10.123.0.9"));
    let fix = f["remedies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "fix")
        .and_then(|r| r["command"].as_str())
        .expect("a deletion command");
    // The first fix names the rule by its full specification, which stays right when rules move;
    // deleting by line number is offered after it, as the destructive one.
    assert_eq!(fix, "iptables-nft -t nat -D PREROUTING -p tcp -m tcp --dport 18777 -j DNAT --to-destination 10.123.0.9:80");
    // The printed command really deletes that rule.
    assert!(sh(&format!("ip netns exec {ns} {fix}")).status.success());
    let after = sh(&format!("ip netns exec {ns} iptables-nft-save -t nat"));
    assert!(!String::from_utf8_lossy(&after.stdout).contains("10.123.0.9"));
}
