//! The port a user asks about: `8080`, `:8080`, `8080/udp`, `127.0.0.1:8080`, `[::]:8080/tcp`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortSyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "tcp4" | "tcp6" => Ok(Self::Tcp),
            "udp" | "udp4" | "udp6" => Ok(Self::Udp),
            "sctp" => Ok(Self::Sctp),
            other => Err(PortSyntaxError::UnknownProto(other.to_owned())),
        }
    }
}

/// The port under diagnosis. `host_ip = None` means "any address", as `-p 8080:80` does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortQuery {
    /// The address as the user wrote it (`::` for `[::]:P`), `None` when absent.
    pub host_ip: Option<IpAddr>,
    pub port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSyntaxError {
    #[error("empty port: give a number such as 8080, 127.0.0.1:8080 or 8080/udp")]
    Empty,
    #[error("`{0}` is not a port number between 1 and 65535")]
    BadNumber(String),
    #[error("unknown protocol `{0}`: use tcp or udp (e.g. 8080/udp)")]
    UnknownProto(String),
    #[error("`{0}` is not an IP address: write 127.0.0.1:8080, [::1]:8080 or just 8080")]
    BadAddress(String),
}

impl FromStr for PortQuery {
    type Err = PortSyntaxError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(PortSyntaxError::Empty);
        }
        let (spec, proto) = match s.rsplit_once('/') {
            Some((spec, proto)) => (spec, proto.parse()?),
            None => (s, Proto::Tcp),
        };
        let (addr, port) = split_addr_port(spec)?;
        let port = parse_port(port)?;
        Ok(Self { host_ip: addr, port, proto })
    }
}

fn split_addr_port(spec: &str) -> Result<(Option<IpAddr>, &str), PortSyntaxError> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (addr, tail) =
            rest.split_once(']').ok_or_else(|| PortSyntaxError::BadAddress(spec.to_owned()))?;
        let port = tail.strip_prefix(':').ok_or_else(|| PortSyntaxError::BadNumber(spec.to_owned()))?;
        let ip = parse_ip(addr)?;
        return Ok((Some(ip), port));
    }
    // `:::8080` is how Go and ss print the IPv6 wildcard.
    if let Some(port) = spec.strip_prefix(":::") {
        return Ok((Some(IpAddr::from([0u16; 8])), port));
    }
    match spec.matches(':').count() {
        0 => Ok((None, spec)),
        1 => {
            let (addr, port) = spec.split_once(':').expect("one colon");
            if addr.is_empty() {
                Ok((None, port))
            } else {
                Ok((Some(parse_ip(addr)?), port))
            }
        }
        // A bare IPv6 address with a port and no brackets: the last colon separates the port.
        _ => {
            let (addr, port) = spec.rsplit_once(':').expect("colons");
            Ok((Some(parse_ip(addr)?), port))
        }
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, PortSyntaxError> {
    // Drop a zone (`127.0.0.53%lo`, `fe80::1%eth0`): it names an interface, not an address.
    let bare = s.split('%').next().unwrap_or(s);
    bare.parse().map_err(|_| PortSyntaxError::BadAddress(s.to_owned()))
}

fn parse_port(s: &str) -> Result<u16, PortSyntaxError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(PortSyntaxError::BadNumber(s.to_owned())),
    }
}

impl fmt::Display for PortQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}/{}", self.port, self.proto),
            Some(ip) => write!(f, "{ip}:{}/{}", self.port, self.proto),
            None => write!(f, "{}/{}", self.port, self.proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("8080", None, 8080, Proto::Tcp)]
    #[case(":8080", None, 8080, Proto::Tcp)]
    #[case("8080/udp", None, 8080, Proto::Udp)]
    #[case("8080/TCP", None, 8080, Proto::Tcp)]
    #[case("127.0.0.1:8080", Some("127.0.0.1"), 8080, Proto::Tcp)]
    #[case("[::]:8080", Some("::"), 8080, Proto::Tcp)]
    #[case(":::8080", Some("::"), 8080, Proto::Tcp)]
    #[case("[::1]:53/udp", Some("::1"), 53, Proto::Udp)]
    #[case("127.0.0.53%lo:53/udp", Some("127.0.0.53"), 53, Proto::Udp)]
    #[case(" 0.0.0.0:80 ", Some("0.0.0.0"), 80, Proto::Tcp)]
    fn parses(#[case] input: &str, #[case] ip: Option<&str>, #[case] port: u16, #[case] proto: Proto) {
        let q: PortQuery = input.parse().unwrap();
        assert_eq!(q.host_ip, ip.map(|s| s.parse().unwrap()));
        assert_eq!(q.port, port);
        assert_eq!(q.proto, proto);
    }

    #[rstest]
    #[case("", PortSyntaxError::Empty)]
    #[case("0", PortSyntaxError::BadNumber("0".into()))]
    #[case("65536", PortSyntaxError::BadNumber("65536".into()))]
    #[case("http", PortSyntaxError::BadNumber("http".into()))]
    #[case("8080/icmp", PortSyntaxError::UnknownProto("icmp".into()))]
    #[case("localhost:8080", PortSyntaxError::BadAddress("localhost".into()))]
    #[case("[::1:8080", PortSyntaxError::BadAddress("[::1:8080".into()))]
    fn rejects(#[case] input: &str, #[case] expected: PortSyntaxError) {
        assert_eq!(input.parse::<PortQuery>().unwrap_err(), expected);
    }

    #[test]
    fn displays_round_trip() {
        for s in ["8080/tcp", "127.0.0.1:53/udp", "[::]:8080/tcp"] {
            assert_eq!(s.parse::<PortQuery>().unwrap().to_string(), s);
        }
    }
}
