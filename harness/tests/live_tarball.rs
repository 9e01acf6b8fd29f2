//! The tarball recipe end to end: docker binaries copied out of the trixie engine image into a
//! static-style tarball (`docker/dockerd`, `docker/docker`, ...), laid over a trixie base without
//! docker.io, started as an environment that must report the same Engine version.
#![cfg(feature = "live")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use portwhy_harness::faults::{HostListener, Proto};
use portwhy_harness::{EngineSpec, EnvOptions, Environment, Fault, Recipe, RunLabels};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Deterministic (sorted, fixed mtimes and owners) so a second run hashes the same and builds nothing.
fn tarball_from_image(tag: &str, dir: &Path) -> PathBuf {
    let stage = dir.join("docker");
    std::fs::create_dir_all(&stage).expect("stage dir");
    let id = run(Command::new("docker").args(["create", tag, "true"]));
    for (src, name) in [
        ("/usr/sbin/dockerd", "dockerd"),
        ("/usr/bin/docker", "docker"),
        ("/usr/bin/containerd", "containerd"),
        ("/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2"),
        ("/usr/bin/ctr", "ctr"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/sbin/docker-proxy", "docker-proxy"),
    ] {
        run(Command::new("docker").arg("cp").arg(format!("{id}:{src}")).arg(stage.join(name)));
    }
    run(Command::new("docker").args(["rm", &id]));
    let tgz = dir.join("docker-26.1.5.tgz");
    run(Command::new("sh").arg("-c").arg(format!(
        "tar -C {} --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c docker | gzip -n > {}",
        dir.display(),
        tgz.display()
    )));
    tgz
}

#[tokio::test(flavor = "multi_thread")]
async fn live_tarball_engine_builds_starts_and_blocks_a_port() {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let catalog =
        portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))
            .expect("engines.toml");
    let trixie = catalog.iter().find(|s| s.name == "trixie").expect("trixie");
    let trixie_image =
        portwhy_harness::ensure_image(&docker, trixie, &|l| eprintln!("{l}")).await.expect("trixie");
    let dir = std::env::temp_dir().join("portwhy-tarball-engine");
    let tgz = tarball_from_image(&trixie_image.tag, &dir);

    let spec = EngineSpec {
        name: "tarball-26".into(),
        version: "26.1.5".into(),
        recipe: Recipe::Tarball {
            path: tgz,
            base_suite: "trixie".into(),
            url: None,
            rootless_path: None,
            rootless_url: None,
            compose: None,
        },
    };
    let t = Instant::now();
    let image =
        portwhy_harness::ensure_image(&docker, &spec, &|l| eprintln!("{l}")).await.expect("tarball image");
    eprintln!("tarball image {} in {:.1}s", image.tag, t.elapsed().as_secs_f64());
    let infos = portwhy_harness::list_images(&docker).await.expect("list");
    let info = infos.iter().find(|i| i.recipe_hash == image.recipe_hash).expect("labelled image");
    assert!(
        !info.packages.contains_key("docker.io"),
        "the tarball base must not carry docker.io: {:?}",
        info.packages
    );

    let opts = EnvOptions {
        labels: RunLabels {
            run_id: format!("live-{}", std::process::id()),
            scenario: "tarball".into(),
            env: spec.name.clone(),
        },
        ..Default::default()
    };
    let env = Environment::start(&docker, &image, opts).await.expect("environment starts");
    eprintln!(
        "tarball environment ready in {:.2}s, engine {}",
        env.ready_after().as_secs_f64(),
        env.engine_version()
    );
    assert!(env.engine_version().starts_with("26.1.5"));
    let which = env.sh_ok("command -v dockerd").await.expect("which").stdout;
    assert_eq!(which.trim(), "/usr/local/bin/dockerd");

    let fault = Fault::HostListener(HostListener {
        proto: Proto::Tcp,
        addr: "0.0.0.0".into(),
        port: 8080,
        v6only: None,
        reuseaddr: false,
        reuseport: false,
        count: 1,
        name: None,
    });
    fault.inject(&env).await.expect("inject");
    fault.check(&env).await.expect("observable");
    let out =
        env.exec(&["docker", "run", "-d", "-p", "8080:80", "busybox", "sleep", "60"]).await.expect("exec");
    assert!(out.exit_code != 0 && out.stderr.contains("address already in use"), "{}", out.stderr);
    fault.undo(&env).await.expect("undo");
    env.teardown().await.expect("teardown");
}
