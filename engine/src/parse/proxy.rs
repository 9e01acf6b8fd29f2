//! docker-proxy's command line: which host address a proxy process holds and where it forwards.
//!
//! The daemon starts one docker-proxy per published address (`-proto tcp -host-ip 0.0.0.0
//! -host-port 8080 -container-ip 172.17.0.2 -container-port 80`; 28.x adds `-use-listen-fd`);
//! rootless 20.10 engines start `rootlesskit-docker-proxy` with the same flags. The proxy parses its
//! arguments with Go's `flag` package, so this reads them the way that package does: `-flag value`,
//! `-flag=value`, either with one or two dashes, bool flags without a value, parsing stopping at the
//! first argument that is not a flag or at `--`, the last occurrence of a flag winning.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::evidence::ProxyProcess;
use crate::port::Proto;

/// What one docker-proxy process forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyArgs {
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// `-use-listen-fd` (28.x): the daemon bound the socket and handed it over on fd 4.
    pub use_listen_fd: bool,
}

impl ProxyArgs {
    /// The evidence record for the process these arguments came from.
    pub fn into_process(self, pid: u32, netns: Option<String>) -> ProxyProcess {
        ProxyProcess {
            pid,
            proto: self.proto,
            host_ip: self.host_ip,
            host_port: self.host_port,
            container_ip: self.container_ip,
            container_port: self.container_port,
            netns,
        }
    }
}

/// Flags docker-proxy declares as bool: they never take the next argument as their value.
const BOOL_FLAGS: &[&str] = &["use-listen-fd", "v", "version"];
/// Flags that take a value: the next argument is theirs even when it starts with `-`, as in Go.
const VALUE_FLAGS: &[&str] = &["proto", "host-ip", "host-port", "container-ip", "container-port"];

/// Parse a docker-proxy argv (program name first, as `/proc/PID/cmdline` gives it; a list that starts
/// with a flag is read as arguments only). `None` when the program is not a docker-proxy, when either
/// port is missing or invalid, when a value does not parse, or for a `-version` query.
pub fn parse_proxy_cmdline(args: &[String]) -> Option<ProxyArgs> {
    let rest = match args.first() {
        Some(first) if !first.starts_with('-') => {
            let base = first.rsplit('/').next().unwrap_or(first);
            if !base.ends_with("docker-proxy") {
                return None;
            }
            &args[1..]
        }
        _ => args,
    };
    let flags = go_flags(rest);
    if flags.get("v").or_else(|| flags.get("version")).is_some_and(|v| go_bool(v) == Some(true)) {
        return None;
    }
    let value = |name: &str| flags.get(name).map(String::as_str);
    // Go's defaults for the flags docker-proxy declares: tcp, 0.0.0.0, and no port.
    Some(ProxyArgs {
        proto: value("proto").unwrap_or("tcp").parse().ok()?,
        host_ip: value("host-ip").map_or(Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), str::parse).ok()?,
        host_port: value("host-port")?.parse().ok()?,
        container_ip: value("container-ip").map_or(Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), str::parse).ok()?,
        container_port: value("container-port")?.parse().ok()?,
        use_listen_fd: value("use-listen-fd").is_some_and(|v| go_bool(v) == Some(true)),
    })
}

/// Read flags as Go's `flag.Parse` does. A flag this parser does not know takes the next argument as
/// its value unless that argument is itself a flag, so a newer docker-proxy's extra flag cannot hide
/// the ones that matter.
fn go_flags(args: &[String]) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" || arg == "-" || !arg.starts_with('-') {
            break;
        }
        let name = arg.strip_prefix("--").unwrap_or_else(|| &arg[1..]);
        if let Some((k, v)) = name.split_once('=') {
            flags.insert(k.to_owned(), v.to_owned());
        } else if BOOL_FLAGS.contains(&name) {
            flags.insert(name.to_owned(), "true".to_owned());
        } else {
            let next = args.get(i + 1);
            let takes_next = VALUE_FLAGS.contains(&name) || next.is_some_and(|n| !n.starts_with('-'));
            match next {
                Some(v) if takes_next => {
                    flags.insert(name.to_owned(), v.clone());
                    i += 1;
                }
                _ => {
                    flags.insert(name.to_owned(), "true".to_owned());
                }
            }
        }
        i += 1;
    }
    flags
}

/// Go's strconv.ParseBool.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    // Recorded from /proc/PID/cmdline of the docker-proxy processes Engine 20.10.24 started for
    // `docker run -p 18090:80 -p 18091:80/udp -p 127.0.0.1:18092:80 ...` and `-p [::1]:18095:80`.
    #[rstest]
    #[case::v4_wildcard(
        "/usr/sbin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 18090 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp, "0.0.0.0", 18090, "172.17.0.2", 80, false
    )]
    #[case::v6_wildcard(
        "/usr/sbin/docker-proxy -proto tcp -host-ip :: -host-port 18090 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp, "::", 18090, "172.17.0.2", 80, false
    )]
    #[case::udp(
        "/usr/sbin/docker-proxy -proto udp -host-ip 0.0.0.0 -host-port 18091 -container-ip 172.17.0.2 -container-port 80",
        Proto::Udp, "0.0.0.0", 18091, "172.17.0.2", 80, false
    )]
    #[case::loopback(
        "/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 18092 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp, "127.0.0.1", 18092, "172.17.0.2", 80, false
    )]
    // 28.x passes the bound socket (moby cmd/docker-proxy/main_linux.go declares `-use-listen-fd`).
    #[case::listen_fd(
        "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.18.0.2 -container-port 80 -use-listen-fd",
        Proto::Tcp, "0.0.0.0", 8080, "172.18.0.2", 80, true
    )]
    #[case::listen_fd_first(
        "docker-proxy -use-listen-fd -proto udp -host-ip ::1 -host-port 53 -container-ip fd00::2 -container-port 53",
        Proto::Udp, "::1", 53, "fd00::2", 53, true
    )]
    #[case::equals_and_double_dash(
        "docker-proxy --proto=tcp --host-ip=10.0.0.5 --host-port=443 --container-ip=172.17.0.3 --container-port=8443",
        Proto::Tcp, "10.0.0.5", 443, "172.17.0.3", 8443, false
    )]
    #[case::mixed_forms(
        "docker-proxy -proto=udp --host-ip 0.0.0.0 -host-port=5353 --container-ip=172.17.0.4 -container-port 53 -use-listen-fd=false",
        Proto::Udp, "0.0.0.0", 5353, "172.17.0.4", 53, false
    )]
    // Go's defaults: tcp on 0.0.0.0 when the flags are absent.
    #[case::defaults(
        "docker-proxy -host-port 8080 -container-port 80",
        Proto::Tcp,
        "0.0.0.0",
        8080,
        "0.0.0.0",
        80,
        false
    )]
    // Rootless 20.10 engines start this wrapper with the same flags.
    #[case::rootless_wrapper(
        "/usr/bin/rootlesskit-docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp, "0.0.0.0", 8080, "172.17.0.2", 80, false
    )]
    #[case::last_wins(
        "docker-proxy -host-port 1 -host-port 2 -container-port 80",
        Proto::Tcp,
        "0.0.0.0",
        2,
        "0.0.0.0",
        80,
        false
    )]
    #[case::unknown_flag_with_value(
        "docker-proxy -future-flag x -proto tcp -host-ip 0.0.0.0 -host-port 80 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp, "0.0.0.0", 80, "172.17.0.2", 80, false
    )]
    #[case::args_only(
        "-proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80",
        Proto::Tcp,
        "0.0.0.0",
        8080,
        "172.17.0.2",
        80,
        false
    )]
    fn parses(
        #[case] line: &str,
        #[case] proto: Proto,
        #[case] host_ip: &str,
        #[case] host_port: u16,
        #[case] container_ip: &str,
        #[case] container_port: u16,
        #[case] use_listen_fd: bool,
    ) {
        let got = parse_proxy_cmdline(&argv(line)).expect("a docker-proxy command line");
        assert_eq!(
            got,
            ProxyArgs {
                proto,
                host_ip: host_ip.parse().unwrap(),
                host_port,
                container_ip: container_ip.parse().unwrap(),
                container_port,
                use_listen_fd,
            }
        );
    }

    #[rstest]
    #[case::not_a_proxy("/usr/sbin/nginx -host-port 80 -container-port 80")]
    #[case::no_host_port(
        "docker-proxy -proto tcp -host-ip 0.0.0.0 -container-ip 172.17.0.2 -container-port 80"
    )]
    #[case::no_container_port(
        "docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 80 -container-ip 172.17.0.2"
    )]
    #[case::negative_port("docker-proxy -host-port -1 -container-port 80")]
    #[case::port_too_big("docker-proxy -host-port 70000 -container-port 80")]
    #[case::bad_ip("docker-proxy -host-ip localhost -host-port 80 -container-port 80")]
    #[case::bad_proto("docker-proxy -proto icmp -host-port 80 -container-port 80")]
    // Parsing stops at the first non-flag argument, so the ports after it are not flags any more.
    #[case::stops_at_positional("docker-proxy -proto tcp extra -host-port 80 -container-port 80")]
    #[case::stops_at_double_dash("docker-proxy -proto tcp -- -host-port 80 -container-port 80")]
    #[case::version_query("docker-proxy -version")]
    #[case::empty("")]
    fn rejects(#[case] line: &str) {
        assert_eq!(parse_proxy_cmdline(&argv(line)), None);
    }

    #[test]
    fn evidence_record_keeps_every_field() {
        let args = parse_proxy_cmdline(&argv(
            "docker-proxy -proto udp -host-ip :: -host-port 53 -container-ip 172.17.0.9 -container-port 5353",
        ))
        .unwrap();
        let p = args.into_process(4242, Some("rootlesskit".into()));
        assert_eq!(p.pid, 4242);
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.host_ip, "::".parse::<IpAddr>().unwrap());
        assert_eq!(p.host_port, 53);
        assert_eq!(p.container_ip, "172.17.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(p.container_port, 5353);
        assert_eq!(p.netns.as_deref(), Some("rootlesskit"));
    }
}
