//! Live tests: every fault injector on every engine, in real nested environments.
//!
//! Enabled by the `live` feature (`cargo nextest run -p portwhy-harness --features live`); the
//! nextest `docker` test group runs at most two at once. A test that cannot reach Docker fails with
//! `DockerUnreachable`, never passes. Each test injects a fault, proves it with independent tools
//! (`check`), shows its effect on a real `docker run -p`, undoes it and proves it gone. Timings are
//! printed, not asserted.
#![cfg(feature = "live")]

use std::path::Path;
use std::time::Instant;

use portwhy_harness::faults::{
    DockerdKilled, DuplicateContainer, Hairpin, HolderState, HostListener, LeftoverProxy, NatChain,
    OrphanedDnat, Proto, RootlessConflict, SilentShare, SplitBackend, SplitVariant, SystemdResolved,
};
use portwhy_harness::{EnvOptions, Environment, Fault, FirewallMode, RunLabels};

async fn start(engine: &str, scenario: &str, tweak: impl FnOnce(&mut EnvOptions)) -> Environment {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let catalog =
        portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))
            .expect("engines.toml");
    let spec = catalog.iter().find(|s| s.name == engine).expect("engine in catalogue");
    let t = Instant::now();
    let image =
        portwhy_harness::ensure_image(&docker, spec, &|l| eprintln!("{l}")).await.expect("engine image");
    eprintln!("[{engine}] image {} ready in {:.2}s", image.tag, t.elapsed().as_secs_f64());
    let mut opts = EnvOptions {
        labels: RunLabels {
            run_id: format!("live-{}", std::process::id()),
            scenario: scenario.into(),
            env: engine.into(),
        },
        ..Default::default()
    };
    tweak(&mut opts);
    let env = Environment::start(&docker, &image, opts).await.expect("environment starts");
    eprintln!(
        "[{engine}] {scenario}: environment {} ready in {:.2}s",
        env.name(),
        env.ready_after().as_secs_f64()
    );
    assert!(env.engine_version().starts_with(&spec.version), "{} vs {}", env.engine_version(), spec.version);
    env
}

/// `docker run -d -p SPEC busybox sleep`: (exit code, stderr).
async fn publish(env: &Environment, spec: &str) -> (i64, String) {
    let out = env.exec(&["docker", "run", "-d", "-p", spec, "busybox", "sleep", "600"]).await.expect("exec");
    (out.exit_code, out.stderr.trim().to_string())
}

async fn clear_containers(env: &Environment) {
    env.sh("docker rm -f $(docker ps -aq) >/dev/null 2>&1; true").await.expect("exec");
}

/// inject, check, (effect), undo, check fails. Returns the effect's result for the caller to assert.
async fn cycle<T, F, Fut>(env: &Environment, fault: &Fault, effect: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let injected = fault.inject(env).await.unwrap_or_else(|e| panic!("inject {}: {e}", fault.kind()));
    eprintln!("  injected {} in {:.3}s: {}", fault.kind(), injected.elapsed.as_secs_f64(), injected.summary);
    fault.check(env).await.unwrap_or_else(|e| panic!("{} not observable after inject: {e}", fault.kind()));
    let result = effect().await;
    fault.undo(env).await.unwrap_or_else(|e| panic!("undo {}: {e}", fault.kind()));
    assert!(fault.check(env).await.is_err(), "{} still observable after undo", fault.kind());
    result
}

async fn host_listener(engine: &str) {
    let env = start(engine, "host-listener", |o| o.ipv6 = true).await;
    // IPv4 wildcard TCP: the publish must fail with a bind error.
    let tcp = Fault::HostListener(HostListener {
        proto: Proto::Tcp,
        addr: "0.0.0.0".into(),
        port: 8080,
        v6only: None,
        reuseaddr: false,
        reuseport: false,
        count: 1,
        name: None,
    });
    let (code, err) = cycle(&env, &tcp, || publish(&env, "8080:80")).await;
    eprintln!("  publish 8080 under a host listener: exit {code}: {err}");
    assert_ne!(code, 0, "publish succeeded although portholder held 0.0.0.0:8080");
    assert!(err.contains("address already in use"), "{err}");
    clear_containers(&env).await;
    let (code, err) = publish(&env, "8080:80").await;
    assert_eq!(code, 0, "port still blocked after undo: {err}");
    clear_containers(&env).await;
    // IPv6 v6-only UDP with SO_REUSEADDR: observable and undoable.
    let udp = Fault::HostListener(HostListener {
        proto: Proto::Udp,
        addr: "::".into(),
        port: 5353,
        v6only: Some(true),
        reuseaddr: true,
        reuseport: false,
        count: 2,
        name: Some("mdns".into()),
    });
    let (code, err) = cycle(&env, &udp, || publish(&env, "0.0.0.0:5353:5353/udp")).await;
    eprintln!("  v4 UDP publish beside a v6-only holder: exit {code}: {err}");
    assert_eq!(code, 0, "a v6-only holder must not block an IPv4 publish: {err}");
    env.teardown().await.expect("teardown");
}

async fn duplicate_container(engine: &str) {
    let env = start(engine, "duplicate-container", |_| {}).await;
    for (state, blocks) in [
        (HolderState::Running, Some(true)),
        (HolderState::Created, Some(false)),
        (HolderState::Stopped, Some(false)),
        (HolderState::Restarting, None),
    ] {
        let fault = Fault::DuplicateContainer(DuplicateContainer {
            port: 8080,
            proto: Proto::Tcp,
            host_ip: None,
            container_port: 80,
            state,
            name: None,
        });
        let (code, err) = cycle(&env, &fault, || async {
            let r = publish(&env, "8080:80").await;
            clear_containers_except(&env, "holder-8080").await;
            r
        })
        .await;
        eprintln!("  publish beside a {state:?} holder: exit {code}: {err}");
        match blocks {
            Some(true) => assert!(code != 0 && err.contains("port is already allocated"), "{state:?}: {err}"),
            Some(false) => assert_eq!(code, 0, "a {state:?} container must not hold the port: {err}"),
            None => {}
        }
    }
    env.teardown().await.expect("teardown");
}

async fn clear_containers_except(env: &Environment, keep: &str) {
    env.sh(&format!("docker ps -a --format '{{{{.Names}}}}' | grep -vx {keep} | xargs -r docker rm -f >/dev/null 2>&1; true"))
        .await
        .expect("exec");
}

async fn orphaned_dnat(engine: &str, backend: FirewallMode) {
    let env = start(engine, "orphaned-dnat", |o| o.backend = backend).await;
    for chain in [NatChain::Docker, NatChain::Prerouting] {
        let fault = Fault::OrphanedDnat(OrphanedDnat {
            port: 8080,
            proto: Proto::Tcp,
            to: "172.17.0.250:80".into(),
            chain,
            backend: None,
        });
        let (code, err) = cycle(&env, &fault, || publish(&env, "8080:80")).await;
        eprintln!("  [{backend:?}] publish beside an orphaned DNAT in {chain:?}: exit {code}: {err}");
        // Seed 1 says this blocks the publish; the engines do not: it succeeds.
        assert_eq!(code, 0, "orphaned DNAT caused a publish error: {err}");
        clear_containers(&env).await;
    }
    env.teardown().await.expect("teardown");
}

async fn systemd_resolved(engine: &str) {
    let env = start(engine, "systemd-resolved", |_| {}).await;
    let fault = Fault::SystemdResolved(SystemdResolved::default());
    let (code, err) = cycle(&env, &fault, || publish(&env, "53:53/udp")).await;
    eprintln!("  publish 53/udp beside systemd-resolved: exit {code}: {err}");
    env.teardown().await.expect("teardown");
}

async fn silent_share(engine: &str) {
    let env = start(engine, "silent-share", |o| o.ipv6 = true).await;
    // TCP across families: a v6-only [::]:8080 holder and an IPv4-only publish.
    let fault = Fault::SilentShare(SilentShare {
        holder: HostListener {
            proto: Proto::Tcp,
            addr: "::".into(),
            port: 8080,
            v6only: Some(true),
            reuseaddr: false,
            reuseport: false,
            count: 1,
            name: None,
        },
        publish: DuplicateContainer {
            port: 8080,
            proto: Proto::Tcp,
            host_ip: Some("0.0.0.0".into()),
            container_port: 80,
            state: HolderState::Running,
            name: Some("share-tcp".into()),
        },
    });
    cycle(&env, &fault, || async {}).await;
    // UDP with SO_REUSEADDR on both sides: silent on 28.x only.
    let udp = Fault::SilentShare(SilentShare {
        holder: HostListener {
            proto: Proto::Udp,
            addr: "0.0.0.0".into(),
            port: 5300,
            v6only: None,
            reuseaddr: true,
            reuseport: false,
            count: 1,
            name: None,
        },
        publish: DuplicateContainer {
            port: 5300,
            proto: Proto::Udp,
            host_ip: None,
            container_port: 53,
            state: HolderState::Running,
            name: Some("share-udp".into()),
        },
    });
    match udp.inject(&env).await {
        Ok(i) => {
            eprintln!("  [{engine}] UDP SO_REUSEADDR share is silent: {}", i.summary);
            udp.check(&env).await.expect("observable");
            udp.undo(&env).await.expect("undo");
            assert!(udp.check(&env).await.is_err());
        }
        Err(e) => eprintln!("  [{engine}] UDP SO_REUSEADDR share refused: {e}"),
    }
    env.teardown().await.expect("teardown");
}

async fn split_backend(engine: &str) {
    let env = start(engine, "split-backend", |o| o.backend = FirewallMode::Legacy).await;
    let switch = Fault::SplitBackend(SplitBackend { variant: SplitVariant::SwitchUnderDaemon, port: 18080 });
    let (code, err) = cycle(&env, &switch, || publish(&env, "8080:80")).await;
    eprintln!("  publish after switching the backend under dockerd: exit {code}: {err}");
    assert_ne!(code, 0, "publish worked through a backend without Docker's chains");
    clear_containers(&env).await;
    let stale = Fault::SplitBackend(SplitBackend { variant: SplitVariant::StaleAfterRestart, port: 18080 });
    let (code, err) = cycle(&env, &stale, || publish(&env, "18080:80")).await;
    eprintln!("  publish of the stranded port after restart on the other backend: exit {code}: {err}");
    env.teardown().await.expect("teardown");
}

async fn hairpin(engine: &str) {
    let env = start(engine, "hairpin", |o| o.userland_proxy = false).await;
    let fault = Fault::Hairpin(Hairpin { port: 8080, container_port: 80 });
    cycle(&env, &fault, || async {}).await;
    env.teardown().await.expect("teardown");
}

async fn dockerd_killed(engine: &str) {
    let env = start(engine, "dockerd-killed", |_| {}).await;
    let fault = Fault::DockerdKilled(DockerdKilled { port: 8080, proto: Proto::Tcp });
    let proxies = cycle(&env, &fault, || async {
        env.sh("ps -eo comm | grep -c '^docker-proxy$'").await.expect("exec").stdout.trim().to_string()
    })
    .await;
    eprintln!("  docker-proxy processes left after SIGKILL of dockerd: {proxies}");
    let (code, err) = publish(&env, "8080:80").await;
    assert_eq!(code, 0, "dockerd did not recover after undo: {err}");
    env.teardown().await.expect("teardown");
}

async fn leftover_proxy(engine: &str) {
    let env = start(engine, "leftover-proxy", |_| {}).await;
    let fault = Fault::LeftoverProxy(LeftoverProxy {
        port: 8080,
        proto: Proto::Tcp,
        host_ip: "0.0.0.0".into(),
        container_ip: "172.17.0.99".into(),
        container_port: 80,
    });
    let (code, err) = cycle(&env, &fault, || publish(&env, "8080:80")).await;
    eprintln!("  publish beside a leftover docker-proxy: exit {code}: {err}");
    assert!(code != 0 && err.contains("address already in use"), "{err}");
    env.teardown().await.expect("teardown");
}

async fn rootless(engine: &str) {
    let env = start(engine, "rootless-conflict", |o| o.rootless = true).await;
    let fault = Fault::RootlessConflict(RootlessConflict { port: 8080, proto: Proto::Tcp });
    let (code, err) = cycle(&env, &fault, || publish(&env, "8080:80")).await;
    eprintln!("  rootless publish beside a holder: exit {code}: {err}");
    assert!(code != 0, "rootless publish succeeded beside a holder");
    env.teardown().await.expect("teardown");
}

macro_rules! engine_tests {
    ($engine:ident) => {
        mod $engine {
            use super::*;
            const E: &str = stringify!($engine);
            #[tokio::test(flavor = "multi_thread")]
            async fn live_host_listener() {
                host_listener(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_duplicate_container() {
                duplicate_container(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_orphaned_dnat_legacy() {
                orphaned_dnat(E, FirewallMode::Legacy).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_orphaned_dnat_nft() {
                orphaned_dnat(E, FirewallMode::Nft).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_systemd_resolved() {
                systemd_resolved(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_silent_share() {
                silent_share(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_split_backend() {
                split_backend(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_hairpin() {
                hairpin(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_dockerd_killed() {
                dockerd_killed(E).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn live_leftover_proxy() {
                leftover_proxy(E).await
            }
        }
    };
}

engine_tests!(bookworm);
engine_tests!(trixie);
engine_tests!(forky);

#[tokio::test(flavor = "multi_thread")]
async fn live_forky_rootless_conflict() {
    rootless("forky").await
}
