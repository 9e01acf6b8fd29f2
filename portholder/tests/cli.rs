//! portholder's command line end to end: real sockets on loopback, real daemonizing.

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn holds_a_tcp_port_answers_with_its_name_and_exits_98_on_conflict() {
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_portholder");
    let out = Command::new(bin)
        .args(["--daemon", "--tcp", "--addr", "127.0.0.1", "--port", &port.to_string(), "--name", "t1"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let pid: i32 =
        line.split_whitespace().find_map(|w| w.strip_prefix("pid=")).expect("pid").parse().expect("num");
    let mut reply = String::new();
    TcpStream::connect(("127.0.0.1", port)).expect("connect").read_to_string(&mut reply).expect("read");
    assert_eq!(reply, format!("portholder t1 pid={pid}\n"));
    let second = Command::new(bin)
        .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(second.status.code(), Some(98));
    assert!(String::from_utf8_lossy(&second.stderr).contains("Address already in use"));
    // The daemon this test started.
    assert!(Command::new("kill").arg(pid.to_string()).status().expect("kill").success());
}

#[test]
fn udp_reuseaddr_sockets_share_a_port_and_reply() {
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_portholder");
    let out = Command::new(bin)
        .args([
            "--daemon",
            "--udp",
            "--addr",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--reuseaddr",
            "--count",
            "2",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid=").map(String::from))
        .expect("pid")
        .parse()
        .expect("num");
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client.set_read_timeout(Some(std::time::Duration::from_secs(2))).expect("timeout");
    client.send_to(b"hi", ("127.0.0.1", port)).expect("send");
    let mut buf = [0u8; 128];
    let n = client.recv(&mut buf).expect("reply");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("portholder udp-"));
    // The daemon this test started.
    assert!(Command::new("kill").arg(pid.to_string()).status().expect("kill").success());
}
