//! The `-p` specs of a scenario's trigger argv, typed: read them, change the address or the port,
//! and write the argv back. This is the scenario's own data, never text `portwhy` printed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use portwhy::port::Proto;

/// One `docker run -p` value: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSpec {
    /// The address as written, without brackets (`127.0.0.1`, `::`); `None` = every address.
    pub host_ip: Option<IpAddr>,
    /// `None` = Docker picks an ephemeral port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    /// `None` when the spec does not name one (TCP).
    pub proto: Option<Proto>,
}

impl PublishSpec {
    pub fn proto(&self) -> Proto {
        self.proto.unwrap_or(Proto::Tcp)
    }
}

impl FromStr for PublishSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("publish spec `{s}`: {why}");
        let (body, proto) = match s.rsplit_once('/') {
            Some((b, p)) => (b, Some(p.parse::<Proto>().map_err(|e| bad(&e.to_string()))?)),
            None => (s, None),
        };
        // An IPv6 host address comes in brackets: `[::1]:8080:80`.
        let (host_ip, rest) = if let Some(after) = body.strip_prefix('[') {
            let (ip, rest) = after.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let rest = rest.strip_prefix(':').ok_or_else(|| bad("expected `:` after `]`"))?;
            (Some(ip.parse::<IpAddr>().map_err(|e| bad(&e.to_string()))?), rest)
        } else {
            match body.matches(':').count() {
                0 | 1 => (None, body),
                2 => {
                    let (ip, rest) = body.split_once(':').unwrap_or_default();
                    (Some(ip.parse::<IpAddr>().map_err(|e| bad(&e.to_string()))?), rest)
                }
                _ => return Err(bad("write IPv6 host addresses in brackets")),
            }
        };
        let port = |p: &str| {
            p.parse::<u16>().map_err(|_| bad(&format!("`{p}` is not a port (ranges are not supported here)")))
        };
        let (host_port, container_port) = match rest.split_once(':') {
            Some(("", c)) => (None, port(c)?),
            Some((h, c)) => (Some(port(h)?), port(c)?),
            None => (None, port(rest)?),
        };
        Ok(Self { host_ip, host_port, container_port, proto })
    }
}

impl fmt::Display for PublishSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(a) => write!(f, "{a}:")?,
            None => {}
        }
        match (self.host_ip, self.host_port) {
            (_, Some(p)) => write!(f, "{p}:")?,
            (Some(_), None) => f.write_str(":")?,
            (None, None) => {}
        }
        write!(f, "{}", self.container_port)?;
        if let Some(p) = self.proto {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// Index (of the value) and spec of every `-p`/`--publish` in `argv`.
fn specs(argv: &[String]) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        if (a == "-p" || a == "--publish") && i + 1 < argv.len() {
            out.push((i + 1, argv[i + 1].as_str()));
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix("--publish=") {
            out.push((i, v));
        }
        i += 1;
    }
    out
}

/// The trigger's first publish.
pub fn first(argv: &[String]) -> Result<PublishSpec, String> {
    let (_, spec) = specs(argv).into_iter().next().ok_or("the trigger publishes no port")?;
    spec.parse()
}

/// The argv with its first publish replaced by `spec` (a `--publish=` form keeps its form).
pub fn with_first(argv: &[String], spec: &PublishSpec) -> Vec<String> {
    let mut out = argv.to_vec();
    if let Some((i, _)) = specs(argv).into_iter().next() {
        out[i] =
            if out[i].starts_with("--publish=") { format!("--publish={spec}") } else { spec.to_string() };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn specs_parse_and_print_as_docker_writes_them() {
        for text in [
            "80",
            "8080:80",
            "127.0.0.1:8080:80",
            "127.0.0.1::80",
            "[::1]:53:53/udp",
            "0.0.0.0:9999:9999/udp",
        ] {
            let spec: PublishSpec = text.parse().expect(text);
            assert_eq!(spec.to_string(), text);
        }
        let s: PublishSpec = "[::]:8080:80/tcp".parse().expect("v6");
        assert_eq!(
            (s.host_ip, s.host_port, s.container_port),
            (Some("::".parse().expect("ip")), Some(8080), 80)
        );
        assert!("::1:8080:80".parse::<PublishSpec>().unwrap_err().contains("brackets"));
        assert!("8080-8081:80-81".parse::<PublishSpec>().unwrap_err().contains("ranges"));
    }

    #[test]
    fn the_first_publish_is_replaced_in_place() {
        let a = argv(&["docker", "run", "-d", "--name", "web", "-p", "8080:80", "busybox"]);
        let mut spec = first(&a).expect("spec");
        spec.host_ip = Some("10.0.0.2".parse().expect("ip"));
        assert_eq!(with_first(&a, &spec)[6], "10.0.0.2:8080:80");
        let b = argv(&["docker", "run", "--publish=53:53/udp", "x"]);
        let mut spec = first(&b).expect("spec");
        spec.host_port = Some(5300);
        assert_eq!(with_first(&b, &spec)[2], "--publish=5300:53/udp");
    }
}
