//! Engine 29's native nftables backend, live: an orphaned DNAT rule in `ip docker-bridges` is
//! named by `portwhy`, every ruleset is byte-identical before and after the diagnosis (portwhy is
//! read-only), and the command it prints deletes exactly that rule.
//!
//! Needs the static-29.7.2 engine (engines/docker-29.7.2.tgz or its folder, see engines.toml) and
//! PORTWHY_BIN (ci/test.sh sets it); without either the test fails and says so.
#![cfg(feature = "live")]

use std::path::{Path, PathBuf};

use portwhy_harness::faults::{NatChain, OrphanedDnat, Proto};
use portwhy_harness::{EnvOptions, Environment, Fault, FirewallMode, RunLabels};

const ENGINE: &str = "static-29.7.2";
/// Every ruleset a diagnosis could touch, in one text.
const RULESETS: &str = "nft list ruleset; for t in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do echo \"== $t\"; $t 2>&1 | grep -v '^#' || true; done";

#[tokio::test(flavor = "multi_thread")]
async fn live_orphan_in_docker_bridges_is_diagnosed_without_touching_any_ruleset() {
    let portwhy = PathBuf::from(std::env::var_os("PORTWHY_BIN").expect(
        "PORTWHY_BIN must name the portwhy binary to copy into the environment (ci/test.sh sets it)",
    ));
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let catalog =
        portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))
            .expect("engines.toml");
    let spec = catalog.iter().find(|s| s.name == ENGINE).expect("static-29.7.2 in engines.toml");
    if let Err(m) = spec.availability() {
        panic!("{ENGINE} is needed for this test: {}", m.how_to_get);
    }
    let image = portwhy_harness::ensure_image(&docker, spec, &|l| eprintln!("{l}")).await.expect("image");
    let opts = EnvOptions {
        backend: FirewallMode::Nftables,
        labels: RunLabels {
            run_id: format!("live-{}", std::process::id()),
            scenario: "nftables-orphan".into(),
            env: ENGINE.into(),
        },
        ..Default::default()
    };
    let env = Environment::start(&docker, &image, opts).await.expect("environment starts");
    env.copy_in(&portwhy, "/usr/local/bin").await.expect("portwhy copied in");
    let fault = Fault::OrphanedDnat(OrphanedDnat {
        port: 18095,
        proto: Proto::Tcp,
        to: "172.17.0.250:80".into(),
        chain: NatChain::Docker,
        backend: None,
    });
    fault.inject(&env).await.expect("orphan written into ip docker-bridges");
    fault.check(&env).await.expect("nft lists the orphan");
    // No iptables tool shows it: the user's `iptables -t nat -L` is blind to this backend.
    let iptables = env.sh_ok("iptables -t nat -S; iptables-legacy -t nat -S").await.expect("iptables").stdout;
    assert!(!iptables.contains("172.17.0.250"), "an iptables tool shows the native rule:\n{iptables}");

    let before = env.sh_ok(RULESETS).await.expect("rulesets").stdout;
    let out = env.exec(&["portwhy", "18095", "--json"]).await.expect("portwhy runs");
    let after = env.sh_ok(RULESETS).await.expect("rulesets").stdout;
    assert_eq!(before, after, "the diagnosis changed a ruleset");

    let d: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let finding = d["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "PW005"))
        .unwrap_or_else(|| panic!("no PW005 for the orphan in docker-bridges: {d:#}"));
    assert!(finding["summary"].as_str().unwrap_or_default().contains("172.17.0.250"), "{finding:#}");
    let handle = env
        .sh_ok("nft -a list chain ip docker-bridges nat-prerouting-and-output | grep 172.17.0.250 | sed 's/.*# handle //'")
        .await
        .expect("handle")
        .stdout
        .trim()
        .to_string();
    let fix = finding["remedies"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["purpose"] == "fix"))
        .and_then(|r| r["command"].as_str())
        .expect("a fix command");
    assert_eq!(fix, format!("nft delete rule ip docker-bridges nat-prerouting-and-output handle {handle}"));

    // The printed command removes the orphan and nothing else of Docker's table.
    env.sh_ok(fix).await.expect("the fix runs");
    assert!(fault.check(&env).await.is_err(), "the orphan is still listed after the fix");
    let left = env.sh_ok("nft list table ip docker-bridges").await.expect("table").stdout;
    assert!(left.contains("chain nat-prerouting-and-output"), "Docker's chain went with the rule:\n{left}");
    env.teardown().await.expect("teardown");
}
