//! `portwhy lint` proven against real Compose (feature `live`): every compose fixture of
//! `engine/tests/fixtures/compose` goes through `docker compose` inside a real environment.
//!
//! - A fixture lint rejects (`invalid-*`) is rejected by `docker compose config` too.
//! - Each error finding is reproduced: its services are started in the order lint names them (one
//!   `up -d` each, the project down in between), the last one must fail and the daemon's words must
//!   be among those the finding quotes; the ones before it must start.
//! - A fixture with no error finding starts whole (`up -d`), every container running.
//!
//! Images: the fixtures name real images (nginx, postgres...) that this machine cannot pull; each
//! name is tagged in the environment onto busybox committed with `sleep` as its command, so a
//! container holds its ports for as long as the check needs. Publishing does not depend on the
//! image. Compose v1 reads an older file format (no `!override`, no `deploy.replicas` without
//! `--compatibility`) while lint follows the Compose Specification, so only v2 engines are checked.
#![cfg(feature = "live")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portwhy::lint::{self, LintOptions, Severity};
use portwhy_harness::{EnvOptions, Environment, RunLabels};
use regex::Regex;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/compose")
}

/// The fixture's files in merge order (as engine/tests/lint.rs reads them), and whether all exist.
fn files_of(dir: &Path) -> Vec<String> {
    match std::fs::read_to_string(dir.join("files.txt")) {
        Ok(list) => list.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        Err(_) => ["compose.yaml", "compose.override.yaml"]
            .iter()
            .filter(|f| dir.join(f).exists())
            .map(|f| f.to_string())
            .collect(),
    }
}

/// The phrases a finding quotes as the daemon's words: `("port is already allocated")`.
fn quoted_phrases(message: &str) -> Vec<String> {
    let re = Regex::new(r#""([^"]{8,})""#).expect("constant pattern");
    re.captures_iter(message).map(|c| c[1].to_owned()).collect()
}

struct Checked {
    confirmed: Vec<String>,
    disagreements: Vec<String>,
}

async fn start(engine: &str) -> (Environment, Vec<&'static str>) {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let catalog =
        portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))
            .expect("engines.toml");
    let spec =
        catalog.iter().find(|s| s.name == engine).unwrap_or_else(|| panic!("{engine} not in engines.toml"));
    let image = portwhy_harness::ensure_image(&docker, spec, &|l| eprintln!("{l}"))
        .await
        .unwrap_or_else(|e| panic!("{engine}: engine image: {e}"));
    let compose = image.compose.clone().unwrap_or_else(|| panic!("{engine}: the image has no Compose"));
    assert!(compose.v2, "{engine}: Compose {} is v1; lint is checked against v2 only", compose.version);
    let opts = EnvOptions {
        ipv6: true,
        labels: RunLabels {
            run_id: format!("lint-{}", std::process::id()),
            scenario: "lint-compose".into(),
            env: engine.into(),
        },
        ..Default::default()
    };
    let env = Environment::start(&docker, &image, opts).await.unwrap_or_else(|e| panic!("{engine}: {e}"));
    eprintln!("[{engine}] Compose {} in {}", compose.version, env.name());
    (env, compose.command().to_vec())
}

/// Every `image:` the fixtures name, tagged onto busybox that sleeps.
async fn tag_images(env: &Environment, dirs: &[PathBuf]) {
    let re = Regex::new(r"(?m)^\s*image:\s*(\S+)\s*$").expect("constant pattern");
    let mut images = BTreeSet::new();
    for d in dirs {
        for f in std::fs::read_dir(d).unwrap().flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            images.extend(re.captures_iter(&text).map(|c| c[1].to_owned()));
        }
    }
    let mut script = String::from(
        "set -e; docker create --name lint-base busybox sleep 86400 >/dev/null; \
         docker commit lint-base lint-sleeper >/dev/null; \
         docker rm lint-base >/dev/null",
    );
    for i in &images {
        assert!(i.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c)), "image name {i:?}");
        script.push_str(&format!("; docker tag lint-sleeper {i}"));
    }
    let out = env.sh(&script).await.expect("exec");
    assert!(out.success(), "tagging images: {}", out.stderr);
}

async fn check_engine(engine: &str) -> Checked {
    let root = fixtures_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "expected the compose fixtures in {}", root.display());
    let (env, cli) = start(engine).await;
    tag_images(&env, &dirs).await;
    let mut out = Checked { confirmed: vec![], disagreements: vec![] };
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let files = files_of(dir);
        let in_env = format!("/opt/portwhy/lint/{name}");
        for f in std::fs::read_dir(dir).unwrap().flatten() {
            let fname = f.file_name().to_string_lossy().into_owned();
            let text = std::fs::read(f.path()).unwrap();
            env.write_file(&format!("{in_env}/{fname}"), &text, 0o644).await.expect("copy fixture");
        }
        let mut base = format!("cd {in_env} && {} -p lint", cli.join(" "));
        for f in &files {
            base.push_str(&format!(" -f {f}"));
        }
        let down = format!("{base} down -t 0 --remove-orphans >/dev/null 2>&1; true");
        let host_files: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        let report = lint::lint_files(&host_files, &LintOptions::from_dotenv(&dir.join("compose.yaml")));
        let report = match report {
            Err(e) => {
                let r = env.sh(&format!("{base} config -q 2>&1")).await.expect("exec");
                let what = format!("{name}: lint rejects it ({e}); compose config exits {}", r.exit_code);
                if r.success() {
                    out.disagreements.push(format!("{what}, accepting it"));
                } else {
                    out.confirmed.push(format!("{what}: {}", r.stdout.trim().lines().last().unwrap_or("")));
                }
                continue;
            }
            Ok(r) => r,
        };
        let errors: Vec<_> = report.findings.iter().filter(|f| f.severity == Severity::Error).collect();
        if errors.is_empty() {
            env.sh(&down).await.expect("exec");
            let r = env.sh(&format!("{base} up -d 2>&1")).await.expect("exec");
            let ps = env
                .sh(&format!("{base} ps -a --format '{{{{.Service}}}} {{{{.State}}}}' 2>&1"))
                .await
                .expect("exec");
            let not_running: Vec<&str> = ps.stdout.lines().filter(|l| !l.ends_with(" running")).collect();
            let what = format!("{name}: lint predicts no failure; up -d exits {}", r.exit_code);
            if r.success() && not_running.is_empty() && !ps.stdout.trim().is_empty() {
                out.confirmed.push(format!("{what}, {} containers running", ps.stdout.lines().count()));
            } else {
                out.disagreements.push(format!("{what}: {} / not running: {not_running:?}", r.stdout.trim()));
            }
            env.sh(&down).await.expect("exec");
            continue;
        }
        for f in errors {
            env.sh(&down).await.expect("exec");
            let what = format!("{name}: {} {:?}", f.code, f.services);
            // A finding that quotes no daemon words is checked for the failure alone.
            let phrases = quoted_phrases(&f.message);
            let (first, last) = f.services.split_at(f.services.len() - 1);
            let mut started = true;
            for s in first {
                let r = env.sh(&format!("{base} up -d {s} 2>&1")).await.expect("exec");
                if !r.success() {
                    out.disagreements
                        .push(format!("{what}: {s} should start first but: {}", r.stdout.trim()));
                    started = false;
                }
            }
            if !started {
                continue;
            }
            let r = env.sh(&format!("{base} up -d {} 2>&1", last[0])).await.expect("exec");
            let text = r.stdout.trim().to_owned();
            let said = text.lines().last().unwrap_or_default();
            match phrases.iter().find(|p| text.contains(p.as_str())) {
                Some(p) if !r.success() => out.confirmed.push(format!("{what}: {} fails, \"{p}\"", last[0])),
                None if !r.success() && phrases.is_empty() => {
                    out.confirmed.push(format!("{what}: {} fails: {said}", last[0]))
                }
                _ => out.disagreements.push(format!(
                    "{what}: {} exits {} (lint quotes {phrases:?}): {text}",
                    last[0], r.exit_code
                )),
            }
        }
        env.sh(&down).await.expect("exec");
    }
    env.teardown().await.unwrap_or_else(|e| panic!("{engine}: teardown: {e}"));
    out
}

async fn lint_agrees_with_compose(engine: &str) {
    let c = check_engine(engine).await;
    for l in &c.confirmed {
        eprintln!("[{engine}] confirmed: {l}");
    }
    for l in &c.disagreements {
        eprintln!("[{engine}] DISAGREES: {l}");
    }
    eprintln!("[{engine}] {} confirmed, {} disagreements", c.confirmed.len(), c.disagreements.len());
    assert!(
        c.disagreements.is_empty(),
        "[{engine}] lint and compose disagree:\n{}",
        c.disagreements.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_agrees_with_compose_2_26_on_trixie() {
    lint_agrees_with_compose("trixie").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_agrees_with_compose_2_40_on_forky() {
    lint_agrees_with_compose("forky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_agrees_with_compose_on_engine_29_7() {
    lint_agrees_with_compose("static-29.7.2").await;
}
