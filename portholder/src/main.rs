//! portholder: binds exactly the socket it is told to (options set before bind), reports when it is
//! bound, and answers every TCP connection or UDP datagram with `portholder <name> pid=<pid>`.
//!
//! ```text
//! portholder [--tcp|--udp] [--v4|--v6] --addr A --port P [--v6only true|false]
//!            [--reuseaddr] [--reuseport] [--count N] [--name NAME] [--daemon]
//! ```
//! Prints `ready pid=<pid> proto=.. addr=.. port=.. count=.. name=..` once every socket is bound.
//! A bind failure exits 98 with the OS error. `--daemon` double-forks, prints the server's pid and
//! returns, so `docker exec` does not wait on it. Runs until SIGTERM.

use std::io::Write;
use std::net::IpAddr;
use std::process::exit;

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

fn os_error(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn set_int(fd: i32, level: i32, opt: i32, value: i32, what: &str) -> Result<(), String> {
    // SAFETY: fd is a socket we own; value outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(os_error(what))
    }
}

/// One socket with the options applied before bind. Err carries the OS error text.
fn bind_one(o: &Options) -> Result<i32, String> {
    let domain = if o.addr.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    let kind = if o.udp { libc::SOCK_DGRAM } else { libc::SOCK_STREAM };
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error("socket"));
    }
    if o.reuseaddr {
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR")?;
    }
    if o.reuseport {
        set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1, "SO_REUSEPORT")?;
    }
    if let Some(v) = o.v6only {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, i32::from(v), "IPV6_V6ONLY")?;
    }
    let rc = match o.addr {
        IpAddr::V4(a) => {
            // SAFETY: zeroed sockaddr_in is a valid value; fields set below.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = o.port.to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            // SAFETY: sa is a live sockaddr_in and its size is passed.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: zeroed sockaddr_in6 is a valid value; fields set below.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = o.port.to_be();
            sa.sin6_addr.s6_addr = a.octets();
            // SAFETY: sa is a live sockaddr_in6 and its size is passed.
            unsafe {
                libc::bind(
                    fd,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc != 0 {
        return Err(os_error(&format!("bind {}", display_addr(o))));
    }
    // SAFETY: listen(2) on our bound stream socket.
    if !o.udp && unsafe { libc::listen(fd, 128) } != 0 {
        return Err(os_error("listen"));
    }
    Ok(fd)
}

fn display_addr(o: &Options) -> String {
    match o.addr {
        IpAddr::V4(a) => format!("{a}:{}", o.port),
        IpAddr::V6(a) => format!("[{a}]:{}", o.port),
    }
}

fn ready_line(o: &Options, pid: i32) -> String {
    format!(
        "ready pid={pid} proto={} addr={} port={} count={} name={}",
        if o.udp { "udp" } else { "tcp" },
        o.addr,
        o.port,
        o.count,
        o.name
    )
}

/// Double fork: the grandchild serves, detached from the caller's session and stdio; the original
/// process prints the grandchild's pid and exits 0.
fn daemonize(o: &Options) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a 2-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("portholder: {}", os_error("pipe"));
        exit(1);
    }
    // SAFETY: fork in a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("portholder: {}", os_error("fork"));
            exit(1)
        }
        0 => {
            // SAFETY: child: new session, second fork, stdio to /dev/null; only async-signal-safe
            // calls until the grandchild is running on its own.
            unsafe {
                libc::close(fds[0]);
                libc::setsid();
                match libc::fork() {
                    -1 => libc::_exit(1),
                    0 => {}
                    _ => libc::_exit(0),
                }
                let pid = libc::getpid();
                let bytes = pid.to_ne_bytes();
                libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
                libc::close(fds[1]);
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                }
            }
        }
        child => {
            let mut bytes = [0u8; 4];
            // SAFETY: reading into a 4-byte buffer from our pipe.
            let n = unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], bytes.as_mut_ptr().cast(), bytes.len())
            };
            // SAFETY: reap the intermediate child, which exits at once.
            unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            if n != 4 {
                eprintln!("portholder: daemon did not start");
                exit(1);
            }
            println!("{}", ready_line(o, i32::from_ne_bytes(bytes)));
            exit(0);
        }
    }
}

fn serve(o: &Options, fds: &[i32]) -> ! {
    // SAFETY: getpid never fails.
    let reply = format!("portholder {} pid={}\n", o.name, unsafe { libc::getpid() });
    let mut polls: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        // SAFETY: polls is a live array of pollfd of the given length.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for p in polls.iter_mut().filter(|p| p.revents & libc::POLLIN != 0) {
            p.revents = 0;
            if o.udp {
                // SAFETY: recvfrom into a local buffer and address storage of the stated sizes,
                // then sendto back to that address.
                unsafe {
                    let mut buf = [0u8; 2048];
                    let mut from: libc::sockaddr_storage = std::mem::zeroed();
                    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                    let got = libc::recvfrom(
                        p.fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&mut from as *mut libc::sockaddr_storage).cast(),
                        &mut len,
                    );
                    if got >= 0 {
                        libc::sendto(
                            p.fd,
                            reply.as_ptr().cast(),
                            reply.len(),
                            0,
                            (&from as *const libc::sockaddr_storage).cast(),
                            len,
                        );
                    }
                }
            } else {
                // SAFETY: accept on our listening socket; write a short reply and close.
                unsafe {
                    let c = libc::accept(p.fd, std::ptr::null_mut(), std::ptr::null_mut());
                    if c >= 0 {
                        libc::write(c, reply.as_ptr().cast(), reply.len());
                        libc::close(c);
                    }
                }
            }
        }
    }
}

fn main() {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => usage(&e),
    };
    let mut fds = Vec::new();
    for _ in 0..o.count {
        match bind_one(&o) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                eprintln!("portholder: {e}");
                exit(98);
            }
        }
    }
    if o.daemon {
        daemonize(&o);
    } else {
        // SAFETY: getpid never fails.
        println!("{}", ready_line(&o, unsafe { libc::getpid() }));
        let _ = std::io::stdout().flush();
    }
    serve(&o, &fds)
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
