//! PW014 address-unavailable: the publish names an address this host does not have, or a family it has switched off.

use std::net::IpAddr;

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::{BindError, Stage};
use crate::remedy::{self, Action, BindAddress, Remedy, Risk};

pub struct AddressUnavailable;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::AddressUnavailable,
    title: "The address is not on this host",
    what_it_detects: "A publish on a specific address that the host cannot bind: no interface has \
        the address (`cannot assign requested address`, EADDRNOTAVAIL), or its family is switched \
        off (`address family not supported by protocol`, IPv6 disabled). Nothing holds the port; \
        this is never a conflict with another program.",
    why_it_happens: "`-p ADDR:PORT:...` binds exactly ADDR, so the address must be on one of the \
        host's interfaces when the container starts. Usual reasons it is not: the host's address \
        changed (a new DHCP lease, a moved VM) while a compose file or script still names the old \
        one; the interface is not up yet at boot, and a container with a restart policy starts \
        before the network is (dockerd does not wait for every address); the engine runs in Docker \
        Desktop's VM, which has none of the host OS's addresses; or IPv6 is disabled in the kernel \
        and the publish asks for `[::]`.",
    example: "docker run -p 192.168.2.2:443:80 nginx\n\
        # ... listen tcp4 192.168.2.2:443: bind: cannot assign requested address",
    fix: "Publish on an address the host has (`ip -br addr` lists them), or on all addresses \
        (`-p 443:80`). If the address is only late at boot, order the engine after the network \
        (`After=network-online.target` for docker.service) or publish on 0.0.0.0 and filter with \
        the firewall. For `address family not supported`, publish on IPv4 or enable IPv6.",
};

/// One of the host's addresses, `ADDR/PREFIX IFACE`, as the host evidence lists them.
struct HostAddress<'a> {
    ip: IpAddr,
    prefix: u8,
    iface: &'a str,
    written: &'a str,
}

fn host_addresses<'a>(cx: &Context<'a>) -> Option<Vec<HostAddress<'a>>> {
    let host = cx.evidence.host.as_ref()?;
    Some(
        host.addresses
            .iter()
            .filter_map(|a| {
                let mut words = a.split_whitespace();
                let cidr = words.next()?;
                let (ip, prefix) = cidr.split_once('/').unwrap_or((cidr, "128"));
                Some(HostAddress {
                    ip: ip.parse().ok()?,
                    prefix: prefix.parse().ok()?,
                    iface: words.next().unwrap_or("?"),
                    written: a.as_str(),
                })
            })
            .collect(),
    )
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether `want` lies in the subnet of `have`.
fn same_subnet(have: &HostAddress<'_>, want: IpAddr) -> bool {
    let bits = |ip: IpAddr| -> (u128, u8) {
        match ip {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    };
    let ((h, width), (w, want_width)) = (bits(have.ip), bits(want));
    if width != want_width || have.prefix == 0 || have.prefix > width {
        return false;
    }
    let shift = u32::from(width - have.prefix);
    (h >> shift) == (w >> shift)
}

impl Rule for AddressUnavailable {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(e) = cx.error.filter(|e| e.stage == Stage::AddressUnavailable) else { return Vec::new() };
        let q = cx.query();
        let family_off = e.bind_error == Some(BindError::FamilyNotSupported);
        let wanted: Option<IpAddr> = e.host_ip.as_deref().and_then(|a| a.split('%').next()?.parse().ok());
        let mut evidence: Vec<EvidenceItem> = cx.error_evidence().into_iter().collect();
        let mut summary = match (family_off, &e.host_ip) {
            (true, Some(a)) => {
                format!("the host cannot open an IPv6 socket for {a}:{}: IPv6 is switched off", q.port)
            }
            (true, None) => {
                "the host cannot open a socket of that address family: IPv6 is switched off".to_owned()
            }
            (false, Some(a)) => {
                format!("{a} is not an address of this host, so nothing can bind {a}:{}", q.port)
            }
            (false, None) => "the address asked for is not on this host".to_owned(),
        };
        let mut remedies = Vec::new();
        match (host_addresses(cx), wanted) {
            (Some(addrs), Some(want)) if !family_off => {
                // Link-local addresses and veth ends cannot carry a published address; leave them out.
                let list: Vec<&str> = addrs
                    .iter()
                    .filter(|a| !a.iface.starts_with("veth") && !is_link_local(a.ip))
                    .map(|a| a.written)
                    .collect();
                evidence.push(EvidenceItem::new(
                    "host",
                    if list.is_empty() {
                        "the host lists no addresses".to_owned()
                    } else {
                        format!("the host's addresses: {}", list.join(", "))
                    },
                ));
                if let Some(now) = addrs.iter().find(|a| a.ip == want) {
                    // It is there now: it was not when the container started.
                    summary = format!(
                        "{want} is on {} now, but was not when the publish ran: the address came up late or was re-assigned",
                        now.iface
                    );
                    evidence.push(EvidenceItem::new("host", format!("{} carries {want} now", now.iface)));
                    remedies.push(Remedy::fix(
                        Risk::Safe,
                        Action::Publish { address: BindAddress::Ip(want), port: q.port, proto: q.proto },
                        "publishes again on the same address, which the host has now",
                    ));
                } else if let Some(net) = addrs.iter().find(|a| same_subnet(a, want)) {
                    evidence.push(EvidenceItem::new(
                        "host",
                        format!(
                            "{} ({}) is on {want}'s subnet: that interface would carry it, but {want} is not assigned",
                            net.iface, net.written
                        ),
                    ));
                    remedies.push(Remedy::fix(
                        Risk::Disruptive,
                        Action::AddAddress {
                            address: want,
                            prefix: net.prefix,
                            interface: net.iface.to_owned(),
                        },
                        format!(
                            "gives {} the address back, so the same publish binds it; if another machine on \
                             the network has {want} now, traffic to it breaks for both (check first with \
                             `arping -D -I {} {want}`), and an address added by hand is gone at reboot \
                             unless the network configuration names it",
                            net.iface, net.iface
                        ),
                    ));
                    remedies.push(remedy::bind_address(
                        q,
                        net.ip,
                        &format!("publishes on {}'s own address instead of the missing one", net.iface),
                    ));
                } else {
                    evidence.push(EvidenceItem::new(
                        "host",
                        format!("no interface is on a subnet that holds {want}: it belongs to another host or network"),
                    ));
                }
            }
            (None, _) => evidence.push(EvidenceItem::new(
                "host",
                "the host's addresses were not read (offline or unreadable)".to_owned(),
            )),
            _ => {}
        }
        // The wildcard of the same family, or IPv4's when IPv6 is off.
        let any = match wanted {
            Some(IpAddr::V6(_)) if !family_off => IpAddr::from([0u16; 8]),
            _ => IpAddr::from([0, 0, 0, 0]),
        };
        remedies.push(remedy::bind_address(
            q,
            any,
            if family_off {
                "publishes on IPv4 only, which the host supports"
            } else {
                "publishes on every address the host has, so it no longer depends on one being there"
            },
        ));
        remedies.push(Remedy::check(
            Action::ShowAddresses,
            "lists each interface's addresses: the one to publish on",
        ));
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary,
            evidence,
            confidence: Confidence::High,
            remedies,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &'static str) -> HostAddress<'static> {
        let (cidr, iface) = s.split_once(' ').expect("ADDR/PREFIX IFACE");
        let (ip, prefix) = cidr.split_once('/').expect("a prefix");
        HostAddress {
            ip: ip.parse().expect("ip"),
            prefix: prefix.parse().expect("prefix"),
            iface,
            written: s,
        }
    }

    #[test]
    fn subnets() {
        let lan = addr("192.0.2.2/24 eth0");
        assert!(same_subnet(&lan, "192.0.2.10".parse().unwrap()));
        assert!(!same_subnet(&lan, "192.168.2.2".parse().unwrap()));
        assert!(!same_subnet(&lan, "fd00::2".parse().unwrap()));
        let v6 = addr("fd00::2/64 eth0");
        assert!(same_subnet(&v6, "fd00::99".parse().unwrap()));
        assert!(!same_subnet(&addr("10.0.0.1/0 odd"), "192.0.2.1".parse().unwrap()));
    }
}
