//! Times the socket collectors with many sockets open: netlink sock_diag vs /proc/net vs `ss`.
//!
//! Opens N TCP listeners and N UDP sockets on 127.0.0.1 (N = first argument, default 10000), then
//! prints how long each way of finding one port's holders takes. Run it in a scratch network
//! namespace so the ports it takes are nobody else's:
//!
//! ```text
//! unshare -n sh -c 'ip link set lo up; target/release/examples/socket_census 9900'
//! ```
//!
//! It needs 2N + 64 descriptors within the RLIMIT_NOFILE hard limit (9900 fits a limit of 20000).

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use portwhy::collect::sockets::{self, SocketTable};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    raise_nofile(2 * n as u64 + 64)?;
    let mut tcp = Vec::with_capacity(n);
    let mut udp = Vec::with_capacity(n);
    for _ in 0..n {
        tcp.push(TcpListener::bind("127.0.0.1:0")?);
        udp.push(UdpSocket::bind("127.0.0.1:0")?);
    }
    let port = tcp[n / 2].local_addr()?.port();
    let proc_root = Path::new("/proc");
    println!("{n} TCP listeners + {n} UDP sockets open; looking for port {port}");

    let (t, found) = best_of(5, || sockets::collect(proc_root, port).expect("collect"));
    report("sockets::collect (netlink + owners of matches)", t, found.len());
    let (t, found) =
        best_of(5, || sockets::list(SocketTable::Netlink, proc_root, Some(port), None).expect("netlink"));
    report("netlink sock_diag, one port (no owners)", t, found.len());
    let (t, found) =
        best_of(5, || sockets::list(SocketTable::ProcNet, proc_root, Some(port), None).expect("procnet"));
    report("/proc/net/{tcp,tcp6,udp,udp6}, one port", t, found.len());
    let (t, found) = best_of(5, || sockets::collect_all(proc_root, None, false).expect("collect_all"));
    report("collect_all via netlink, every port (no owners)", t, found.len());
    let (t, found) = best_of(3, || sockets::collect_all(proc_root, None, true).expect("collect_all owners"));
    report("collect_all via netlink, every port, with owners", t, found.len());
    let (t, lines) = best_of(3, || {
        let out = Command::new("ss").arg("-ltnup").output().expect("run ss");
        String::from_utf8_lossy(&out.stdout).lines().count().saturating_sub(1)
    });
    report("ss -ltnup (every port, with owners)", t, lines);
    Ok(())
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one run"))
}

fn report(what: &str, t: Duration, n: usize) {
    println!("{:>10.2} ms  {what}: {n} sockets", t.as_secs_f64() * 1000.0);
}

/// Raise the soft limit toward `want`, within the hard limit (raising that needs CAP_SYS_RESOURCE).
fn raise_nofile(want: u64) -> anyhow::Result<()> {
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let max = lim.maximum.unwrap_or(u64::MAX);
    if max < want {
        anyhow::bail!("RLIMIT_NOFILE hard limit {max} is below the {want} descriptors needed");
    }
    lim.current = Some(want);
    rustix::process::setrlimit(rustix::process::Resource::Nofile, lim)
        .map_err(|e| anyhow::anyhow!("cannot raise RLIMIT_NOFILE to {want}: {e}"))?;
    Ok(())
}
