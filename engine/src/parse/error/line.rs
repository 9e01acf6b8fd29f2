//! One line read: its stage, the OS reason, the rootless and platform signs, the releases.

use std::sync::LazyLock;

use regex::Regex;

use super::*;

pub(super) fn bind_error(lower: &str) -> Option<BindError> {
    if lower.contains("address already in use")
        || lower.contains("only one usage of each socket address")
        || lower.contains("eaddrinuse")
    {
        Some(BindError::AddressInUse)
    } else if lower.contains("cannot assign requested address")
        || lower.contains("the requested address is not valid in its context")
        || lower.contains("eaddrnotavail")
    {
        Some(BindError::AddressNotAvailable)
    } else if lower.contains("address family not supported") {
        Some(BindError::FamilyNotSupported)
    } else if lower.contains("permission denied")
        || lower.contains("forbidden by its access permissions")
        || lower.contains("eacces")
    {
        Some(BindError::PermissionDenied)
    } else {
        None
    }
}

pub(super) fn is_firewall(lower: &str) -> bool {
    [
        "iptables failed",
        "ip6tables failed",
        "unable to enable dnat rule",
        "no chain/target/match",
        // nft's own refusal of a rule for a table or chain that is gone.
        "could not process rule",
        "nftables",
        "nf_tables",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// Classify one unwrapped line.
pub(super) fn read_line(body: &str) -> DaemonError {
    let lower = body.to_lowercase();
    let mut e = DaemonError { text: body.to_owned(), ..DaemonError::default() };
    if let Some(c) = ENDPOINT.captures(body) {
        e.container = Some(c[1].to_owned());
        e.endpoint_id = c.get(2).map(|m| m.as_str().to_ascii_lowercase());
    }
    // RootlessKit's own port manager speaking; `rootlesskit-docker-proxy` is the proxy's name.
    let port_manager =
        lower.contains("portmanager.addport") || lower.contains("cannot expose privileged port");
    let missing_rlk_proxy = lower.contains("rootlesskit-docker-proxy")
        && ["executable file not found", "no such file or directory", "not installed"]
            .iter()
            .any(|m| lower.contains(m));
    e.rootless = lower.contains("rootlesskit") || port_manager;
    e.platform = WINDOWS_WORDING.iter().any(|w| lower.contains(w)).then_some(Platform::Windows);
    let desktop = lower.contains("ports are not available")
        || lower.contains("unexpected error (failure eaddrinuse)")
        || lower.contains("error starting userland proxy: bind for");
    let firewall = is_firewall(&lower);
    e.bind_error = bind_error(&lower);

    // The address: the first shape that matches, then the protocol from any shape that states it.
    let mut matched: Vec<usize> = Vec::new();
    let mut addr: Option<HostAddr> = None;
    for (i, p) in PATTERNS.iter().enumerate() {
        let Some(found) = p.re.captures(body).and_then(|c| (p.read)(&c)) else { continue };
        matched.push(i);
        match &mut addr {
            None => addr = Some(found),
            Some(a) => {
                a.ip = a.ip.take().or(found.ip);
                a.port = a.port.or(found.port);
                a.proto = a.proto.or(found.proto);
            }
        }
    }
    // Only the DNAT rule names the host side; the filter rules match the container's address and port.
    if firewall && addr.is_none() && body.contains("-j DNAT") {
        let dport = FW_DPORT.captures(body).and_then(|c| port(&c[1]));
        if dport.is_some() {
            // `-d 0/0` is how libnetwork writes "any address": the user published on 0.0.0.0.
            let ip = FW_DEST.captures(body).map(|c| match &c[1] {
                "0/0" | "0.0.0.0/0" => "0.0.0.0".to_owned(),
                "::/0" => "::".to_owned(),
                other => other.trim_end_matches("/32").trim_end_matches("/128").to_owned(),
            });
            let proto = FW_PROTO.captures(body).and_then(|c| proto(&c[1]));
            addr = Some(HostAddr { ip, port: dport, proto });
        }
    }
    // nft echoes the rule it refused in its own syntax: `tcp dport 8080 dnat to 172.18.0.2:80`.
    if firewall && addr.is_none() && body.contains(" dnat to ") {
        if let Some(c) = NFT_DPORT.captures(body) {
            addr = Some(HostAddr { ip: None, port: port(&c[2]), proto: proto(&c[1]) });
        }
    }
    if addr.is_none() && !firewall {
        // Unknown wordings still name an address now and then; a firewall text names the
        // container's, which must not pass for the host's.
        addr = ANY_ADDR.captures(body).and_then(|c| split_addr(&c[1])).map(|(ip, port)| HostAddr {
            ip,
            port,
            proto: None,
        });
    }
    if let Some(a) = addr {
        e.host_ip = a.ip;
        e.host_port = a.port;
        if let Some(p) = a.proto {
            e.proto = p;
            e.proto_stated = true;
        }
    }

    let about_bind = e.host_port.is_some() || BIND_CONTEXT.is_match(body);
    let daemon_bind =
        [DAEMON_29, DAEMON_28, DAEMON_29_SOCKET, DAEMON_28_SOCKET].iter().any(|i| matched.contains(i));
    let slirp_address = daemon_bind && e.host_ip.as_deref() == Some(SLIRP4NETNS_CHILD_IP);
    e.rootless |= slirp_address;
    e.stage = if lower.contains("cannot expose privileged port") {
        Stage::AccessDenied
    } else if lower.contains("port is already allocated") || lower.contains("all ports are allocated") {
        Stage::Allocated
    } else if firewall {
        Stage::Firewall
    } else {
        match e.bind_error {
            Some(BindError::PermissionDenied) if about_bind => Stage::AccessDenied,
            Some(BindError::AddressNotAvailable | BindError::FamilyNotSupported) if about_bind => {
                Stage::AddressUnavailable
            }
            Some(_) if about_bind => Stage::HostBind,
            _ if lower.contains("ports are not available") => Stage::HostBind,
            _ => Stage::Unknown,
        }
    };

    let proxy_phrase = lower.contains("starting userland proxy");
    let proxy_28 = lower.contains("failed to start userland proxy for port mapping");
    e.reporter = if missing_rlk_proxy {
        Some(Reporter::UserlandProxy)
    } else if port_manager {
        Some(Reporter::Rootlesskit)
    } else if desktop {
        Some(Reporter::DockerDesktop)
    } else {
        match e.stage {
            Stage::Allocated => Some(Reporter::Allocator),
            Stage::Firewall if lower.contains("iptables") => Some(Reporter::Iptables),
            Stage::Firewall => Some(Reporter::Nftables),
            _ if proxy_phrase || proxy_28 => Some(Reporter::UserlandProxy),
            _ if daemon_bind => Some(Reporter::Daemon),
            // `userland-proxy: false`: the daemon's own placeholder listener refused the bind.
            Stage::HostBind | Stage::AccessDenied if matched.contains(&LISTEN) => Some(Reporter::Daemon),
            _ => None,
        }
    };

    e.engine_versions = engine_versions(&lower, &matched, body, e.rootless, desktop, proxy_phrase, proxy_28);
    e.rootless_sign = if missing_rlk_proxy {
        // Only engines up to 27.x run the binary: 28.0 talks to RootlessKit's API itself.
        let up_to_27 = EngineRange::new(None, Some("27"));
        e.engine_versions = e.engine_versions.intersect(&up_to_27).unwrap_or_default();
        Some(RootlessSign {
            kind: RootlessSignKind::MissingRootlesskitDockerProxy,
            engine_versions: up_to_27,
        })
    } else if slirp_address {
        let regression = e.bind_error == Some(BindError::AddressInUse);
        Some(RootlessSign {
            kind: RootlessSignKind::Slirp4netnsAddress,
            engine_versions: if regression {
                EngineRange::new(Some("29.0.0"), Some("29.1.1"))
            } else {
                EngineRange::default()
            },
        })
    } else if port_manager {
        Some(RootlessSign { kind: RootlessSignKind::PortManager, engine_versions: e.engine_versions.clone() })
    } else {
        None
    };
    if e.stage == Stage::Firewall {
        e.firewall_error = firewall_error(body, &lower);
    }
    e
}

/// The child address RootlessKit's slirp4netns network gives its namespace (10.0.2.0/24, .100).
pub(super) const SLIRP4NETNS_CHILD_IP: &str = "10.0.2.100";

/// Winsock's sentences for WSAEACCES, WSAEADDRINUSE and WSAEADDRNOTAVAIL, lower-cased.
pub(super) const WINDOWS_WORDING: &[&str] = &[
    "forbidden by its access permissions",
    "only one usage of each socket address",
    "the requested address is not valid in its context",
];

// Indexes into PATTERNS, for the version clues.
pub(super) const DAEMON_29: usize = 0;
pub(super) const DAEMON_28: usize = 1;
pub(super) const WRAPPER_27: usize = 2;
pub(super) const LISTEN: usize = 5;
pub(super) const DAEMON_29_SOCKET: usize = 8;
pub(super) const DAEMON_28_SOCKET: usize = 9;

pub(super) static LISTEN_FAMILY: LazyLock<Regex> = LazyLock::new(|| re(r"listen (?:tcp|udp|sctp)([46]?) "));

/// Intersect the releases every version-specific phrase allows (see the table at the top).
pub(super) fn engine_versions(
    lower: &str,
    matched: &[usize],
    body: &str,
    rootless: bool,
    desktop: bool,
    proxy_phrase: bool,
    proxy_28: bool,
) -> EngineRange {
    let mut clues: Vec<EngineRange> = Vec::new();
    if lower.contains("failed to set up container networking") {
        clues.push(EngineRange::new(Some("28.0.1"), None));
    }
    if matched.contains(&DAEMON_29)
        || matched.contains(&DAEMON_29_SOCKET)
        || lower.contains("failed to listen on tcp socket")
    {
        clues.push(EngineRange::new(Some("29.0.0"), None));
    }
    if matched.contains(&DAEMON_28) || matched.contains(&DAEMON_28_SOCKET) {
        clues.push(EngineRange::new(Some("28.0.0"), Some("28")));
    }
    if proxy_28 {
        clues.push(EngineRange::new(Some("28.0.0"), None));
    }
    let wrapper_27 = matched.contains(&WRAPPER_27);
    if wrapper_27 {
        clues.push(EngineRange::new(Some("27.0.0"), Some("27")));
    } else if proxy_phrase && !proxy_28 {
        // The proxy's own phrase without 27's wrapper; 28 stopped starting proxies this way.
        clues.push(EngineRange::new(None, Some("26")));
    }
    if lower.contains("rootlesskit portmanager.addport") {
        clues.push(EngineRange::new(Some("28.0.0"), None));
    } else if lower.contains("portmanager.addport") {
        clues.push(EngineRange::new(None, Some("27")));
    }
    if !rootless && !desktop && matched.contains(&LISTEN) {
        if let Some(c) = LISTEN_FAMILY.captures(body) {
            if c[1].is_empty() {
                clues.push(EngineRange::new(None, Some("20.10.1")));
            } else {
                clues.push(EngineRange::new(Some("20.10.2"), None));
                if !wrapper_27 && !proxy_28 {
                    // Unwrapped `listen tcp4` (the proxy phrase or `userland-proxy: false`) ends with 26.
                    clues.push(EngineRange::new(None, Some("26")));
                }
            }
        }
    }
    clues.iter().try_fold(EngineRange::default(), |acc, c| acc.intersect(c)).unwrap_or_default()
}
