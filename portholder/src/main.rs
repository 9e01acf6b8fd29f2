//! portholder: binds exactly the socket it is told to (options set before bind), reports when it is
//! bound, and answers every TCP connection or UDP datagram with `portholder <name> pid=<pid>`.
//!
//! ```text
//! portholder [--tcp|--udp] [--v4|--v6] --addr A --port P [--v6only true|false]
//!            [--reuseaddr] [--reuseport] [--count N] [--name NAME] [--daemon]
//! ```
//! Prints `ready pid=<pid> proto=.. addr=.. port=.. count=.. name=..` once every socket is bound.
//! A bind failure exits 98 with the OS error. `--daemon` starts the server as a child of its own,
//! prints the server's pid and returns, so `docker exec` does not wait on it. Runs until SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{exit, Command, Stdio};

use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug)]
struct Options {
    udp: bool,
    addr: IpAddr,
    port: u16,
    v6only: Option<bool>,
    reuseaddr: bool,
    reuseport: bool,
    count: u32,
    name: String,
    daemon: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("portholder: {msg}");
    eprintln!(
        "usage: portholder [--tcp|--udp] [--v4|--v6] --addr A --port P [--v6only true|false] \
         [--reuseaddr] [--reuseport] [--count N] [--name NAME] [--daemon]"
    );
    exit(2)
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut args = args.peekable();
    let (mut udp, mut family6, mut addr, mut port) = (false, None, None, None);
    let (mut v6only, mut reuseaddr, mut reuseport, mut count, mut name, mut daemon) =
        (None, false, false, 1u32, None, false);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--tcp" => udp = false,
            "--udp" => udp = true,
            "--v4" => family6 = Some(false),
            "--v6" => family6 = Some(true),
            "--addr" => {
                let v = value("--addr")?;
                let v = v.trim_start_matches('[').trim_end_matches(']');
                addr = Some(v.parse::<IpAddr>().map_err(|e| format!("--addr {v}: {e}"))?);
            }
            "--port" => port = Some(value("--port")?.parse::<u16>().map_err(|e| format!("--port: {e}"))?),
            "--v6only" => {
                v6only = Some(match value("--v6only")?.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(format!("--v6only takes true or false, not {other}")),
                })
            }
            "--reuseaddr" => reuseaddr = true,
            "--reuseport" => reuseport = true,
            "--count" => count = value("--count")?.parse().map_err(|e| format!("--count: {e}"))?,
            "--name" => name = Some(value("--name")?),
            "--daemon" => daemon = true,
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let addr = addr.ok_or("--addr is required")?;
    let port = port.ok_or("--port is required")?;
    if let Some(six) = family6 {
        if six != addr.is_ipv6() {
            return Err(format!("--v{} does not match address {addr}", if six { 6 } else { 4 }));
        }
    }
    if v6only.is_some() && addr.is_ipv4() {
        return Err("--v6only applies to IPv6 addresses only".into());
    }
    if count == 0 {
        return Err("--count must be at least 1".into());
    }
    let name = name.unwrap_or_else(|| format!("{}-{port}", if udp { "udp" } else { "tcp" }));
    Ok(Options { udp, addr, port, v6only, reuseaddr, reuseport, count, name, daemon })
}

/// One socket with the options applied before bind. Err carries the OS error text.
fn bind_one(o: &Options) -> Result<Socket, String> {
    let domain = if o.addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let (kind, proto) = if o.udp { (Type::DGRAM, Protocol::UDP) } else { (Type::STREAM, Protocol::TCP) };
    let sock = Socket::new(domain, kind, Some(proto)).map_err(|e| format!("socket: {e}"))?;
    if o.reuseaddr {
        sock.set_reuse_address(true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    }
    if o.reuseport {
        sock.set_reuse_port(true).map_err(|e| format!("SO_REUSEPORT: {e}"))?;
    }
    if let Some(v) = o.v6only {
        sock.set_only_v6(v).map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
    }
    let addr = SocketAddr::new(o.addr, o.port);
    sock.bind(&addr.into()).map_err(|e| format!("bind {addr}: {e}"))?;
    if !o.udp {
        sock.listen(128).map_err(|e| format!("listen: {e}"))?;
    }
    Ok(sock)
}

fn ready_line(o: &Options, pid: u32) -> String {
    format!(
        "ready pid={pid} proto={} addr={} port={} count={} name={}",
        if o.udp { "udp" } else { "tcp" },
        o.addr,
        o.port,
        o.count,
        o.name
    )
}

/// Starts this program again without `--daemon`, in a process group of its own and with its
/// stdio off the caller's, and relays its ready line (or its bind error and exit code): the
/// server is that child, so `docker exec` returns at once. A re-exec instead of a double fork
/// needs no unsafe code and binds in the process that keeps the sockets.
fn daemonize() -> ! {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--daemon").collect();
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(1, &format!("cannot find myself: {e}")));
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| fail(1, &format!("cannot start the server: {e}")));
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.starts_with("ready ") {
        print!("{line}");
        exit(0);
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    eprint!("{err}");
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(1);
    exit(if code == 0 { 1 } else { code })
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("portholder: {msg}");
    exit(code)
}

/// One thread per socket, each blocking on its socket: answers every connection or datagram.
fn serve(o: &Options, socks: Vec<Socket>) -> ! {
    let reply = format!("portholder {} pid={}\n", o.name, std::process::id());
    let udp = o.udp;
    let threads: Vec<_> = socks
        .into_iter()
        .map(|sock| {
            let reply = reply.clone();
            std::thread::spawn(move || {
                if udp {
                    let sock = UdpSocket::from(sock);
                    let mut buf = [0u8; 2048];
                    loop {
                        if let Ok((_, from)) = sock.recv_from(&mut buf) {
                            let _ = sock.send_to(reply.as_bytes(), from);
                        }
                    }
                } else {
                    let listener = TcpListener::from(sock);
                    for mut conn in listener.incoming().flatten() {
                        let _ = conn.write_all(reply.as_bytes());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    exit(1)
}

fn main() {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => usage(&e),
    };
    if o.daemon {
        daemonize();
    }
    let mut socks = Vec::new();
    for _ in 0..o.count {
        match bind_one(&o) {
            Ok(s) => socks.push(s),
            Err(e) => fail(98, &e),
        }
    }
    println!("{}", ready_line(&o, std::process::id()));
    let _ = std::io::stdout().flush();
    serve(&o, socks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Options, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments_parse_and_reject_mismatches() {
        let o = args("--udp --v6 --addr :: --port 53 --v6only true --reuseaddr --count 2 --name dns")
            .expect("ok");
        assert!(o.udp && o.addr.is_ipv6() && o.v6only == Some(true) && o.reuseaddr && o.count == 2);
        assert_eq!(o.name, "dns");
        assert!(args("--v4 --addr ::1 --port 1").is_err());
        assert!(args("--addr 127.0.0.1 --port 1 --v6only true").is_err());
        assert!(args("--addr 127.0.0.1").is_err());
        assert_eq!(args("--addr [::1] --port 80").expect("ok").name, "tcp-80");
    }
}
