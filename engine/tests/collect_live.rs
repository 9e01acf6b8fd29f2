//! Live tests of the socket, firewall and host collectors on this machine (feature `live`, root).
//!
//! Sockets: the test process holds its own ports and the collectors must find them with the right
//! address, IPV6_V6ONLY and owner. Firewall: the no-change tests snapshot every backend before and
//! after a full gather and require byte equality, and that legacy x_tables were not created.
#![cfg(feature = "live")]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;

use portwhy::collect::sockets::{self, SocketTable};
use portwhy::collect::{firewall, LiveHost};
use portwhy::evidence::{Backend, Family, Listener, NatRule};
use portwhy::port::Proto;
use regex::Regex;
use socket2::{Domain, Socket, Type};

const PROC: &str = "/proc";

/// Sockets held by this test: v4 TCP and UDP on loopback, and two AF_INET6 TCP listeners on one
/// port, `[::1]` with v6only and `[::]` dual-stack on another.
struct Held {
    tcp4: TcpListener,
    udp4: UdpSocket,
    tcp6_only: TcpListener,
    tcp6_dual: TcpListener,
    udp6_only: UdpSocket,
    /// Bound to `lo` with SO_BINDTODEVICE, as systemd-resolved binds 127.0.0.53%lo.
    tcp4_on_lo: TcpListener,
}

fn v6_listener(addr: Ipv6Addr, v6only: bool) -> TcpListener {
    let s = Socket::new(Domain::IPV6, Type::STREAM, None).expect("AF_INET6 socket");
    s.set_only_v6(v6only).expect("IPV6_V6ONLY");
    s.bind(&SocketAddr::new(IpAddr::V6(addr), 0).into()).expect("bind AF_INET6 (is IPv6 enabled on lo?)");
    s.listen(16).expect("listen");
    s.into()
}

fn hold() -> Held {
    Held {
        tcp4: TcpListener::bind("127.0.0.1:0").expect("bind tcp 127.0.0.1:0"),
        udp4: UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0"),
        tcp6_only: v6_listener(Ipv6Addr::LOCALHOST, true),
        tcp6_dual: v6_listener(Ipv6Addr::UNSPECIFIED, false),
        udp6_only: {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("AF_INET6 datagram socket");
            s.set_only_v6(true).expect("IPV6_V6ONLY");
            s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0).into()).expect("bind udp [::1]:0");
            s.into()
        },
        tcp4_on_lo: {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("AF_INET socket");
            s.bind_device(Some(b"lo")).expect("SO_BINDTODEVICE lo (root needed)");
            s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind 127.0.0.1:0");
            s.listen(16).expect("listen");
            s.into()
        },
    }
}

fn port_of(addr: std::io::Result<SocketAddr>) -> u16 {
    addr.expect("local_addr").port()
}

fn one<'a>(found: &'a [Listener], proto: Proto, addr: &str) -> &'a Listener {
    let addr: IpAddr = addr.parse().unwrap();
    let hits: Vec<&Listener> = found.iter().filter(|l| l.proto == proto && l.addr == addr).collect();
    assert_eq!(hits.len(), 1, "expected one {proto} listener on {addr}, got {found:#?}");
    hits[0]
}

fn assert_owned_by_me(l: &Listener) {
    let me = std::process::id();
    assert!(
        l.owners.iter().any(|o| o.pid == me && o.cmdline.contains("collect_live")),
        "listener {}:{} should be owned by this test (pid {me}), owners: {:?}",
        l.addr,
        l.port,
        l.owners
    );
}

#[test]
fn netlink_finds_the_test_sockets_with_v6only_and_owner() {
    let held = hold();
    let p4 = port_of(held.tcp4.local_addr());
    let found = sockets::collect(Path::new(PROC), p4).expect("collect");
    let l = one(&found, Proto::Tcp, "127.0.0.1");
    assert_eq!((l.port, l.v6only, l.netns.as_str()), (p4, None, "host"));
    assert_eq!(l.uid, effective_uid());
    assert_owned_by_me(l);

    let pu = port_of(held.udp4.local_addr());
    let found = sockets::collect(Path::new(PROC), pu).expect("collect udp");
    let u = one(&found, Proto::Udp, "127.0.0.1");
    assert_eq!(u.port, pu);
    assert_owned_by_me(u);

    let p6 = port_of(held.tcp6_only.local_addr());
    let found = sockets::collect(Path::new(PROC), p6).expect("collect v6only");
    let l6 = one(&found, Proto::Tcp, "::1");
    assert_eq!(l6.v6only, Some(true), "[::1] was made with IPV6_V6ONLY=1");
    assert_owned_by_me(l6);

    let pd = port_of(held.tcp6_dual.local_addr());
    let found = sockets::collect(Path::new(PROC), pd).expect("collect dual-stack");
    let ld = one(&found, Proto::Tcp, "::");
    assert_eq!(ld.v6only, Some(false), "[::] was made dual-stack (IPV6_V6ONLY=0)");
    assert_owned_by_me(ld);
    // Every listener returned is on the port asked for: the kernel-side filter held.
    assert!(found.iter().all(|l| l.port == pd), "{found:#?}");
    assert!(found.iter().all(|l| l.interface.is_none()), "no device binding: {found:#?}");

    let pu6 = port_of(held.udp6_only.local_addr());
    let found = sockets::collect(Path::new(PROC), pu6).expect("collect udp6");
    let u6 = one(&found, Proto::Udp, "::1");
    assert_eq!(u6.v6only, Some(true), "UDP answers carry IPV6_V6ONLY too");
    assert_owned_by_me(u6);

    let plo = port_of(held.tcp4_on_lo.local_addr());
    let found = sockets::collect(Path::new(PROC), plo).expect("collect bound to lo");
    assert_eq!(one(&found, Proto::Tcp, "127.0.0.1").interface.as_deref(), Some("lo"));
}

/// The effective uid of this process, read from /proc so the test needs no unsafe block.
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid: line");
    line.split_whitespace().nth(2).and_then(|u| u.parse().ok()).expect("euid")
}

#[test]
fn procnet_fallback_agrees_with_netlink() {
    let held = hold();
    let proc_root = Path::new(PROC);
    for port in [
        port_of(held.tcp4.local_addr()),
        port_of(held.udp4.local_addr()),
        port_of(held.tcp6_only.local_addr()),
        port_of(held.tcp6_dual.local_addr()),
        port_of(held.udp6_only.local_addr()),
        port_of(held.tcp4_on_lo.local_addr()),
    ] {
        let nl = sockets::list(SocketTable::Netlink, proc_root, Some(port), None).expect("netlink");
        let pn = sockets::list(SocketTable::ProcNet, proc_root, Some(port), None).expect("procnet");
        let key = |l: &Listener| (l.proto, l.addr, l.port, l.inode, l.uid);
        assert!(!nl.is_empty(), "netlink found nothing on {port}");
        assert_eq!(nl.iter().map(key).collect::<Vec<_>>(), pn.iter().map(key).collect::<Vec<_>>());
        assert!(pn.iter().all(|l| l.v6only.is_none()), "the /proc tables cannot know v6only");
    }
}

#[test]
fn collect_all_lists_every_port_and_filters_by_protocol() {
    let held = hold();
    let all = sockets::collect_all(Path::new(PROC), None, false).expect("collect_all");
    let tcp = sockets::collect_all(Path::new(PROC), Some(Proto::Tcp), true).expect("collect_all tcp");
    let p4 = port_of(held.tcp4.local_addr());
    let pu = port_of(held.udp4.local_addr());
    assert!(all.iter().any(|l| l.port == p4 && l.proto == Proto::Tcp));
    assert!(all.iter().any(|l| l.port == pu && l.proto == Proto::Udp));
    assert!(all.iter().all(|l| l.owners.is_empty()), "owners only when asked");
    assert!(tcp.iter().all(|l| l.proto == Proto::Tcp));
    assert_owned_by_me(one(
        &tcp.iter().filter(|l| l.port == p4).cloned().collect::<Vec<_>>(),
        Proto::Tcp,
        "127.0.0.1",
    ));
}

#[test]
fn netns_of_own_pid_sees_the_same_sockets() {
    let held = hold();
    let me = std::process::id();
    let p6 = port_of(held.tcp6_only.local_addr());
    let found = sockets::collect_in_netns_of(Path::new(PROC), me, p6).expect("collect_in_netns_of");
    let l = one(&found, Proto::Tcp, "::1");
    assert_eq!(l.netns, format!("rootlesskit(pid {me})"));
    assert_eq!(l.v6only, Some(true), "read with sock_diag from inside the namespace, which knows v6only");
    assert_owned_by_me(l);
}

/// Children of `pid`, waiting up to 5 s for at least `want` of them.
fn children_of(pid: u32, want: usize) -> Vec<u32> {
    for _ in 0..100 {
        let kids: Vec<u32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if kids.len() >= want {
            return kids;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("pid {pid} did not start {want} child process(es) within 5 s");
}

#[test]
fn a_socket_shared_by_fork_lists_every_process_holding_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = port_of(listener.local_addr());
    // Let the listener survive exec, as a prefork server's socket does: `sh` and the `sleep` it
    // forks both inherit it.
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).expect("clear FD_CLOEXEC");
    let mut sh = Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().expect("spawn sh");
    let sleep = children_of(sh.id(), 1)[0];
    let found = sockets::collect(Path::new(PROC), port).expect("collect");
    let _ = Command::new("kill").arg(sleep.to_string()).status();
    let _ = sh.kill();
    let _ = sh.wait();
    let l = one(&found, Proto::Tcp, "127.0.0.1");
    let mut pids: Vec<u32> = l.owners.iter().map(|o| o.pid).collect();
    pids.sort_unstable();
    let mut want = vec![std::process::id(), sh.id(), sleep];
    want.sort_unstable();
    assert_eq!(pids, want, "the test, its sh and the sh's sleep all hold the socket: {:?}", l.owners);
}

#[test]
fn a_socket_of_a_process_with_ten_thousand_descriptors_is_found() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    // The soft limit raised to the hard one.
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    setrlimit(Resource::Nofile, lim).expect("raise RLIMIT_NOFILE");
    let files: Vec<std::fs::File> = (0..10_000)
        .map(|_| std::fs::File::open("/dev/null").expect("open /dev/null (NOFILE >= 10k?)"))
        .collect();
    // Bound after the 10,000 files, so the socket sits at the end of the table.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let found = sockets::collect(Path::new(PROC), port_of(listener.local_addr())).expect("collect");
    assert_eq!(files.len(), 10_000);
    assert_owned_by_me(one(&found, Proto::Tcp, "127.0.0.1"));
}

#[test]
fn empty_proc_root_is_an_error_naming_it() {
    let held = hold();
    let dir = tempfile::tempdir().unwrap();
    let err = sockets::collect(dir.path(), port_of(held.tcp4.local_addr())).unwrap_err();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(err.contains("run as root or mount procfs"), "{err}");
    let err = sockets::collect_in_netns_of(dir.path(), 1, 80).unwrap_err();
    assert!(err.starts_with("cannot read"), "{err}");
}

/// Output of a command that must succeed.
fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Set in the child a test re-executes under `unshare --net`.
const NETNS_CHILD: &str = "PORTWHY_TEST_IN_FRESH_NETNS";

/// Run `test` again in a fresh network namespace (nobody else's rules, no legacy tables) and
/// return `true` there; in the parent, require the child to pass and return `false`.
fn in_fresh_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("unshare")
        .args(["--net", "--"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_CHILD, "1")
        .output()
        .expect("cannot run unshare (util-linux): needed to test in a fresh network namespace");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test} failed in a fresh network namespace (root needed):\n{text}");
    assert!(text.contains("1 passed"), "{test} did not run in the child:\n{text}");
    false
}

/// Everything the firewall collector could possibly change, in a comparable form: nf_tables
/// through nft and iptables-nft (counters and timestamps masked), and the legacy table lists.
fn firewall_snapshot() -> Vec<(&'static str, String)> {
    let counters = Regex::new(r"packets \d+ bytes \d+|\[\d+:\d+\]").unwrap();
    let mask = |t: String| {
        let kept: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
        counters.replace_all(&kept.join("\n"), "[counters]").into_owned()
    };
    vec![
        ("nft list tables", run("nft", &["list", "tables"])),
        ("nft list ruleset", mask(run("nft", &["list", "ruleset"]))),
        ("iptables-nft-save", mask(run("iptables-nft-save", &[]))),
        ("ip6tables-nft-save", mask(run("ip6tables-nft-save", &[]))),
        ("ip_tables_names", legacy_names("ip_tables_names")),
        ("ip6_tables_names", legacy_names("ip6_tables_names")),
    ]
}

fn legacy_names(file: &str) -> String {
    std::fs::read_to_string(Path::new(PROC).join("net").join(file)).unwrap_or_default()
}

fn assert_same(before: &[(&str, String)], after: &[(&str, String)], during: &str) {
    for ((what, a), (_, b)) in before.iter().zip(after) {
        assert_eq!(a, b, "{what} changed during {during}");
    }
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().expect("sh");
    assert!(out.status.success(), "{script}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// THE NO-CHANGE TEST. In a fresh namespace holding Docker-shaped rules in iptables-nft and in a
/// native `docker-bridges` table, a full gather and a firewall collect leave every backend byte
/// for byte as they were, and create no legacy table.
#[test]
fn gather_changes_no_firewall_state() {
    if !in_fresh_netns("gather_changes_no_firewall_state") {
        return;
    }
    sh("iptables-nft -t nat -N DOCKER
        iptables-nft -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
        iptables-nft -t nat -A DOCKER -i docker0 -j RETURN
        iptables-nft -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 172.17.0.2:80
        printf '%s\n' 'table ip docker-bridges {' \
          'chain nat-prerouting-and-output {' \
          'iifname != \"docker0\" tcp dport 18080 counter dnat to 172.17.0.5:80' '}' '}' | nft -f -");
    assert_eq!(legacy_names("ip_tables_names"), "", "a fresh namespace has no legacy tables");
    assert_eq!(legacy_names("ip6_tables_names"), "");

    let before = firewall_snapshot();
    let ev = LiveHost::default().gather(&"18080".parse().unwrap());
    let after_gather = firewall_snapshot();
    assert_same(&before, &after_gather, "LiveHost::gather");
    let (fw, unavailable) = firewall::collect(Path::new(PROC), 18080);
    assert_same(&before, &firewall_snapshot(), "firewall::collect");
    assert_eq!(legacy_names("ip_tables_names"), "", "legacy IPv4 tables were created");
    assert_eq!(legacy_names("ip6_tables_names"), "", "legacy IPv6 tables were created");

    // And the reads saw what was seeded.
    assert!(unavailable.is_empty(), "{unavailable:?}");
    assert_eq!(Some(&fw), ev.firewall.as_ref(), "gather and collect read the same state");
    assert_eq!(fw.backends_read, [Backend::IptablesLegacy, Backend::IptablesNft, Backend::Nftables]);
    assert_eq!(fw.docker_chains_in, [Backend::IptablesNft, Backend::Nftables]);
    assert_eq!(
        fw.docker_dnat_count,
        [(Backend::IptablesLegacy, 0), (Backend::IptablesNft, 1), (Backend::Nftables, 1)]
    );
    let got: Vec<(Backend, &str, &str, String, u16)> = fw
        .nat_rules
        .iter()
        .map(|r: &NatRule| (r.backend, r.table.as_str(), r.chain.as_str(), r.to_addr.to_string(), r.to_port))
        .collect();
    assert_eq!(
        got,
        [
            (Backend::IptablesNft, "nat", "DOCKER", "172.17.0.2".to_owned(), 80),
            (Backend::Nftables, "docker-bridges", "nat-prerouting-and-output", "172.17.0.5".to_owned(), 80),
        ]
    );
}

/// Where legacy tables exist, only the nat table is read and no other legacy table appears.
#[test]
fn legacy_nat_is_read_without_creating_other_tables() {
    if !in_fresh_netns("legacy_nat_is_read_without_creating_other_tables") {
        return;
    }
    sh("iptables-legacy -t nat -N DOCKER
        iptables-legacy -t nat -A DOCKER ! -i docker0 -p udp -m udp --dport 18081 -j DNAT --to-destination 172.17.0.7:53");
    assert_eq!(legacy_names("ip_tables_names").trim(), "nat");
    let before = firewall_snapshot();
    let (fw, unavailable) = firewall::collect(Path::new(PROC), 18081);
    assert_same(&before, &firewall_snapshot(), "firewall::collect with legacy tables");
    assert!(unavailable.is_empty(), "{unavailable:?}");
    assert_eq!(fw.legacy_tables, ["nat"]);
    assert_eq!(fw.docker_chains_in, [Backend::IptablesLegacy]);
    let legacy: Vec<&NatRule> =
        fw.nat_rules.iter().filter(|r| r.backend == Backend::IptablesLegacy).collect();
    assert_eq!(legacy.len(), 1, "{:#?}", fw.nat_rules);
    assert_eq!(
        (
            legacy[0].family,
            legacy[0].proto,
            legacy[0].to_addr.to_string(),
            legacy[0].to_port,
            legacy[0].position
        ),
        (Family::Ipv4, Proto::Udp, "172.17.0.7".to_owned(), 53, Some(1))
    );
}

/// Where `iptables` points, as dpkg's alternatives (or the link chain) say.
fn expected_alternative() -> Option<String> {
    let target = std::fs::canonicalize("/usr/sbin/iptables").ok()?;
    let name = target.file_name()?.to_str()?.to_owned();
    let link = std::fs::read_link("/etc/alternatives/iptables").ok();
    let text = link.map(|l| l.display().to_string()).unwrap_or(name);
    if text.contains("legacy") {
        Some("legacy".into())
    } else if text.contains("nft") {
        Some("nft".into())
    } else {
        None
    }
}

/// On this host, with Docker publishing a port now: the collector finds Docker's DNAT rule, and
/// the set of nf_tables tables and the legacy table lists are the same afterwards. Other programs
/// may change rules on a shared host meanwhile, so the fresh-namespace tests above are the ones
/// that compare every byte and prove that no legacy table appears where none existed.
#[test]
fn host_firewall_shows_a_port_docker_publishes_now() {
    let legacy_before = (legacy_names("ip_tables_names"), legacy_names("ip6_tables_names"));
    let tables_before = run("nft", &["list", "tables"]);
    let container = PublishedContainer::start();

    let (fw, unavailable) = firewall::collect(Path::new(PROC), container.port);
    assert!(unavailable.is_empty(), "{unavailable:?}");
    assert_eq!(fw.iptables_alternative, expected_alternative());
    assert!(fw.backends_read.contains(&Backend::IptablesNft), "{fw:?}");
    let docker_backend = match fw.iptables_alternative.as_deref() {
        Some("legacy") => Backend::IptablesLegacy,
        _ => Backend::IptablesNft,
    };
    assert!(fw.docker_chains_in.contains(&docker_backend), "{fw:?}");
    let mine: Vec<&NatRule> = fw.nat_rules.iter().filter(|r| r.dport == container.port).collect();
    assert_eq!(mine.len(), 1, "{:#?}", fw.nat_rules);
    let r = mine[0];
    assert_eq!((r.backend, r.chain.as_str(), r.proto), (docker_backend, "DOCKER", Proto::Tcp));
    assert_eq!(r.match_dest.as_deref(), Some("127.0.0.1/32"));
    assert_eq!(r.to_addr.to_string(), container.ip, "DNAT goes to the container");
    assert_eq!(r.to_port, 80);
    drop(container);

    assert_eq!(run("nft", &["list", "tables"]), tables_before, "nf_tables tables changed");
    assert_eq!((legacy_names("ip_tables_names"), legacy_names("ip6_tables_names")), legacy_before);
}

/// A container publishing `127.0.0.1:<free port>:80`, removed on drop.
struct PublishedContainer {
    name: String,
    port: u16,
    ip: String,
}

const TEST_IMAGE: &str = "portwhy-test-busybox:local";

impl PublishedContainer {
    fn start() -> Self {
        let docker = |args: &[&str]| {
            Command::new("docker").args(args).output().unwrap_or_else(|e| {
                panic!("cannot run docker: {e}; this live test needs the docker CLI and a running dockerd")
            })
        };
        let ping = docker(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            ping.status.success(),
            "Docker is not reachable ({}): start dockerd to run the live firewall tests",
            String::from_utf8_lossy(&ping.stderr).trim()
        );
        if !docker(&["image", "inspect", TEST_IMAGE]).status.success() {
            // No registry here: import a one-binary rootfs.
            sh(&format!(
                "d=$(mktemp -d); cp \"$(command -v busybox)\" \"$d/busybox\"; \
                 tar -C \"$d\" -c . | docker import --change 'LABEL io.portwhy.test=collect_live' - {TEST_IMAGE}; \
                 rm -rf \"$d\""
            ));
        }
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("find a free port");
            port_of(probe.local_addr())
        };
        let name = format!("portwhy-collect-live-{}", std::process::id());
        let out = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "io.portwhy.test=collect_live",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            TEST_IMAGE,
            "/busybox",
            "sleep",
            "120",
        ]);
        let mut guard = Self { name, port, ip: String::new() };
        assert!(out.status.success(), "docker run failed: {}", String::from_utf8_lossy(&out.stderr));
        let ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &guard.name]);
        guard.ip = String::from_utf8_lossy(&ip.stdout).trim().to_owned();
        guard
    }
}

impl Drop for PublishedContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}
