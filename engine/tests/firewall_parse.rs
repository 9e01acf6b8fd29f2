//! The iptables-save and nft JSON parsers over recorded dumps: exact NatRule fields per port.
//!
//! Where each fixture came from is written in tests/fixtures/{iptables,nft}/README.md: the
//! `nft-2010-*` and `iptables-nft-2010-*` dumps are Docker Engine 20.10.24's own rules on a Debian
//! bookworm host (iptables-nft 1.8.9, nft 1.0.6); the `*-crafted*` ones were typed into a throwaway
//! network namespace to cover iptables-legacy, IPv6 and native nftables shapes.

use std::net::IpAddr;

use portwhy::evidence::{Backend, Family, NatRule};
use portwhy::parse::iptables::{parse_save, PortSet};
use portwhy::parse::nft::{parse_ruleset, NftRuleset};
use portwhy::port::Proto;
use rstest::rstest;

fn fixture(rel: &str) -> String {
    let path = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A NatRule in the order its fields read in an iptables line.
#[expect(clippy::too_many_arguments, reason = "one argument per NatRule field keeps the cases readable")]
fn rule(
    backend: Backend,
    family: Family,
    chain: &str,
    position: usize,
    proto: Proto,
    dport: u16,
    match_dest: Option<&str>,
    in_iface: Option<&str>,
    to: &str,
    to_port: u16,
    raw: &str,
) -> NatRule {
    NatRule {
        backend,
        family,
        table: if backend == Backend::Nftables { "docker-bridges".into() } else { "nat".into() },
        chain: chain.into(),
        proto,
        dport,
        match_dest: match_dest.map(Into::into),
        in_iface: in_iface.map(Into::into),
        to_addr: to.parse::<IpAddr>().unwrap(),
        to_port,
        raw: raw.into(),
        position: Some(position),
    }
}

use Backend::{IptablesLegacy as Legacy, IptablesNft as XtNft, Nftables as Native};
use Family::{Ipv4 as V4, Ipv6 as V6};
use Proto::{Tcp, Udp};

#[rstest]
// Engine 20.10.24 on iptables-nft: `-p 28080:80` and `-p 127.0.0.1:28081:81/udp`, after three
// ports another container published first.
#[case::nft_published_any_addr("iptables/nft-2010-published.v4.txt", XtNft, V4, 28080, vec![
    rule(XtNft, V4, "DOCKER", 6, Tcp, 28080, None, Some("!docker0"), "172.17.0.3", 80,
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 28080 -j DNAT --to-destination 172.17.0.3:80"),
])]
#[case::nft_published_loopback_udp("iptables/nft-2010-published.v4.txt", XtNft, V4, 28081, vec![
    rule(XtNft, V4, "DOCKER", 5, Udp, 28081, Some("127.0.0.1/32"), Some("!docker0"), "172.17.0.3", 81,
        "-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p udp -m udp --dport 28081 -j DNAT --to-destination 172.17.0.3:81"),
])]
#[case::nft_port_not_published("iptables/nft-2010-published.v4.txt", XtNft, V4, 28082, vec![])]
// 20.10 without `ipv6: true` publishes [::] through docker-proxy only: no ip6 DNAT at all.
#[case::nft_v6_has_no_dnat("iptables/nft-2010-published.v6.txt", XtNft, V6, 28080, vec![])]
// Legacy: an orphan typed into PREROUTING ahead of Docker's own rule for the same port.
#[case::legacy_orphan_and_docker_rule("iptables/legacy-crafted.v4.txt", Legacy, V4, 28080, vec![
    rule(Legacy, V4, "PREROUTING", 1, Tcp, 28080, None, None, "172.17.0.99", 80,
        "-A PREROUTING -p tcp -m tcp --dport 28080 -j DNAT --to-destination 172.17.0.99:80"),
    rule(Legacy, V4, "DOCKER", 2, Tcp, 28080, None, Some("!docker0"), "172.17.0.9", 80,
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 28080 -j DNAT --to-destination 172.17.0.9:80"),
])]
#[case::legacy_counters_do_not_change_rules("iptables/legacy-crafted-counters.v4.txt", Legacy, V4, 28090, vec![
    rule(Legacy, V4, "DOCKER", 4, Tcp, 28090, None, Some("!docker0"), "172.17.0.10", 8080,
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 28090 -j DNAT --to-destination 172.17.0.10:8080"),
])]
#[case::legacy_v6_bracketed_target("iptables/legacy-crafted.v6.txt", Legacy, V6, 28080, vec![
    rule(Legacy, V6, "DOCKER", 2, Tcp, 28080, None, Some("!docker0"), "fd00:dead::9", 80,
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 28080 -j DNAT --to-destination [fd00:dead::9]:80"),
])]
#[case::legacy_v6_loopback("iptables/legacy-crafted.v6.txt", Legacy, V6, 28082, vec![
    rule(Legacy, V6, "DOCKER", 3, Tcp, 28082, Some("::1/128"), Some("!docker0"), "fd00:dead::9", 82,
        "-A DOCKER -d ::1/128 ! -i docker0 -p tcp -m tcp --dport 28082 -j DNAT --to-destination [fd00:dead::9]:82"),
])]
#[case::ip6tables_nft_crafted("iptables/nft-crafted.v6.txt", XtNft, V6, 28080, vec![
    rule(XtNft, V6, "DOCKER", 1, Tcp, 28080, None, Some("!docker0"), "fd00:beef::3", 80,
        "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 28080 -j DNAT --to-destination [fd00:beef::3]:80"),
])]
fn iptables_save_rules_for_port(
    #[case] file: &str,
    #[case] backend: Backend,
    #[case] family: Family,
    #[case] port: u16,
    #[case] expected: Vec<NatRule>,
) {
    let dump = parse_save(&fixture(file), family);
    assert!(dump.unreadable.is_empty(), "{:?}", dump.unreadable);
    assert_eq!(dump.rules_for(backend, port), expected);
}

#[rstest]
#[case::nft_2010("iptables/nft-2010-published.v4.txt", V4, true, 5)]
#[case::nft_2010_v6("iptables/nft-2010-published.v6.txt", V6, false, 0)]
#[case::legacy_v4("iptables/legacy-crafted.v4.txt", V4, true, 3)]
#[case::legacy_v6("iptables/legacy-crafted.v6.txt", V6, true, 2)]
fn docker_chain_and_dnat_count(
    #[case] file: &str,
    #[case] family: Family,
    #[case] docker_chain: bool,
    #[case] count: usize,
) {
    let dump = parse_save(&fixture(file), family);
    assert_eq!((dump.docker_chain, dump.docker_dnat_count), (docker_chain, count));
}

#[test]
fn filter_table_rules_are_not_nat() {
    let text =
        "*filter\n:DOCKER - [0:0]\n-A DOCKER -p tcp --dport 80 -j DNAT --to-destination 1.2.3.4:80\nCOMMIT\n";
    let dump = parse_save(text, V4);
    assert!(!dump.docker_chain && dump.dnat.is_empty());
}

#[test]
fn ranges_multiport_and_portless_targets() {
    let text = "*nat\n\
        -A PREROUTING -p tcp -m tcp --dport 28000:28100 -j DNAT --to-destination 10.0.0.1\n\
        -A PREROUTING -p udp -m multiport --dports 53,28050 -j DNAT --to-destination 10.0.0.2:5353\n\
        -A PREROUTING -d 192.0.2.1/32 -j DNAT --to-destination 10.0.0.3\n\
        -A PREROUTING -p tcp ! --dport 22 -j DNAT --to-destination 10.0.0.4:8080\n\
        -A PREROUTING -p tcp --dport 28050 -j DNAT --to-destination not-an-address\n\
        COMMIT\n";
    let dump = parse_save(text, V4);
    assert_eq!(dump.unreadable.len(), 1);
    let got: Vec<(usize, Proto, String, u16)> = dump
        .rules_for(Legacy, 28050)
        .into_iter()
        .map(|r| (r.position.unwrap(), r.proto, r.to_addr.to_string(), r.to_port))
        .collect();
    assert_eq!(
        got,
        vec![
            // No port in the target: DNAT keeps the destination port.
            (1, Tcp, "10.0.0.1".into(), 28050),
            (2, Udp, "10.0.0.2".into(), 5353),
            // No `-p`: the rule rewrites both protocols.
            (3, Tcp, "10.0.0.3".into(), 28050),
            (3, Udp, "10.0.0.3".into(), 28050),
            (4, Tcp, "10.0.0.4".into(), 8080),
        ]
    );
    assert!(dump.rules_for(Legacy, 22).iter().all(|r| r.position != Some(4)), "`! --dport 22` skips 22");
}

fn ruleset(file: &str) -> NftRuleset {
    parse_ruleset(&fixture(file)).expect("recorded nft JSON parses")
}

#[test]
fn iptables_nft_tables_are_recognised_in_nft_json() {
    // Docker 20.10.24 on iptables-nft: every table is iptables-nft's, so nothing is native.
    let rs = ruleset("nft/iptables-nft-2010-published.json");
    let tables: Vec<(&str, &str, bool, bool)> =
        rs.tables.iter().map(|t| (t.family.as_str(), t.name.as_str(), t.xtables, t.docker)).collect();
    assert_eq!(tables, vec![("ip", "nat", true, false), ("ip", "filter", true, false)]);
    assert_eq!(rs.native_dnat().count(), 0);
    assert_eq!(rs.docker_tables().count(), 0);
}

#[test]
fn native_tables_are_told_from_iptables_nft_ones() {
    let rs = ruleset("nft/native-crafted.json");
    let tables: Vec<(&str, &str, bool, bool)> =
        rs.tables.iter().map(|t| (t.family.as_str(), t.name.as_str(), t.xtables, t.docker)).collect();
    assert_eq!(
        tables,
        vec![
            ("ip", "docker-bridges", false, true),
            ("ip6", "docker-bridges", false, true),
            // Hand-written, lowercase base chain, no compat expressions: native.
            ("ip", "nat", false, false),
            ("inet", "filter", false, false),
            // ip6tables-nft's: its DNAT is an `xt` target.
            ("ip6", "nat", true, false),
        ]
    );
}

fn native_rules(port: u16) -> Vec<NatRule> {
    ruleset("nft/native-crafted.json").native_dnat().flat_map(|d| d.entry.rules_for(Native, port)).collect()
}

#[test]
fn docker_bridges_dnat_both_families() {
    let mut hand_nat = rule(
        Native,
        V4,
        "prerouting",
        1,
        Tcp,
        28080,
        None,
        None,
        "10.99.0.5",
        8080,
        r#"meta l4proto { tcp, udp } th dport 28080 dnat to 10.99.0.5:8080 # handle 3"#,
    );
    hand_nat.table = "nat".into();
    let hand_nat_udp = NatRule { proto: Udp, ..hand_nat.clone() };
    assert_eq!(
        native_rules(28080),
        vec![
            rule(
                Native,
                V4,
                "nat-prerouting-and-output",
                1,
                Tcp,
                28080,
                None,
                Some("!docker0"),
                "172.17.0.2",
                80,
                r#"iifname != "docker0" tcp dport 28080 counter dnat to 172.17.0.2:80 # handle 6"#
            ),
            rule(
                Native,
                V6,
                "nat-prerouting-and-output",
                1,
                Tcp,
                28080,
                None,
                Some("!docker0"),
                "fd00:dead::2",
                80,
                r#"iifname != "docker0" tcp dport 28080 counter dnat to [fd00:dead::2]:80 # handle 4"#
            ),
            hand_nat,
            hand_nat_udp,
        ]
    );
}

#[test]
fn docker_bridges_loopback_udp() {
    assert_eq!(
        native_rules(28081),
        vec![rule(
            Native,
            V4,
            "nat-prerouting-and-output",
            2,
            Udp,
            28081,
            Some("127.0.0.1"),
            Some("!docker0"),
            "172.17.0.2",
            81,
            r#"ip daddr 127.0.0.1 iifname != "docker0" udp dport 28081 counter dnat to 172.17.0.2:81 # handle 7"#
        )]
    );
}

#[rstest]
// `tcp dport { 28085, 28086 } dnat to 10.99.0.6`: a set, and a target without a port.
#[case::set(28086, 2, "10.99.0.6", 28086)]
// `tcp dport 28100-28110 dnat to 10.99.0.7:9000`: a range.
#[case::range(28105, 3, "10.99.0.7", 9000)]
// `dnat to tcp dport map { 28120 : 10.99.0.8 }`: a map keyed by port.
#[case::map(28120, 4, "10.99.0.8", 28120)]
fn hand_written_nat_shapes(
    #[case] port: u16,
    #[case] position: usize,
    #[case] to: &str,
    #[case] to_port: u16,
) {
    let got = native_rules(port);
    assert_eq!(got.len(), 1, "{got:#?}");
    let r = &got[0];
    assert_eq!(
        (r.table.as_str(), r.chain.as_str(), r.position, r.proto, r.to_addr, r.to_port),
        ("nat", "prerouting", Some(position), Tcp, to.parse().unwrap(), to_port)
    );
}

#[test]
fn xtables_dnat_is_not_reported_as_native() {
    // ip6 nat (ip6tables-nft) rewrites 28080 to fd00:beef::3, but only iptables-nft-save can say
    // where: the JSON parser must not invent a native rule for it.
    assert!(native_rules(28080).iter().all(|r| r.to_addr != "fd00:beef::3".parse::<IpAddr>().unwrap()));
    let ports =
        ruleset("nft/native-crafted.json").dnat.iter().map(|d| d.entry.ports.clone()).collect::<Vec<_>>();
    assert!(ports.contains(&PortSet::Ranges(vec![(28085, 28085), (28086, 28086)])), "{ports:?}");
}
