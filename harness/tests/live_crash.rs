//! A process that created environments is SIGKILLed mid-run, and `sweep` must remove everything it
//! left; or it gets Ctrl-C (SIGINT), and must remove its environments itself before exiting.
#![cfg(feature = "live")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};

/// `cargo test` and nextest build examples next to the test binaries: target/<profile>/examples.
fn hold_env_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let bin = profile_dir.join("examples").join("hold_env");
    assert!(bin.is_file(), "{} missing: run `cargo build -p portwhy-harness --examples`", bin.display());
    bin
}

type Filters = std::collections::HashMap<String, Vec<String>>;

fn run_filter(run_id: &str) -> Filters {
    Filters::from([("label".to_string(), vec![format!("io.portwhy.run={run_id}")])])
}

/// Labelled containers, volumes and networks of a run.
async fn count(docker: bollard::Docker, filters: Filters) -> (usize, usize, usize) {
    let c = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("list containers")
        .len();
    let v = docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build()))
        .await
        .expect("list volumes")
        .volumes
        .unwrap_or_default()
        .len();
    let n = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .expect("list networks")
        .len();
    (c, v, n)
}

/// Starts hold_env for `run_id` and waits for its `ready` line.
fn start_holder(run_id: &str) -> std::process::Child {
    let mut child = Command::new(hold_env_binary())
        .arg(run_id)
        .arg("bookworm")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hold_env");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read ready line");
    assert!(line.starts_with("ready "), "hold_env did not become ready: {line:?}");
    child
}

#[tokio::test(flavor = "multi_thread")]
async fn live_ctrl_c_removes_the_runs_environments_before_exiting() {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let run_id = format!("ctrlc-{}", std::process::id());
    let mut child = start_holder(&run_id);
    let filters = run_filter(&run_id);
    assert_eq!(count(docker.clone(), filters.clone()).await.0, 1, "the environment is not up");
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("run kill");
    assert!(sent.success(), "kill -INT failed");
    let status = child.wait().expect("reap hold_env");
    assert_eq!(status.code(), Some(130), "Ctrl-C should exit 130 after the sweep: {status}");
    assert_eq!(
        count(docker, filters).await,
        (0, 0, 0),
        "Ctrl-C left labelled containers, volumes or networks"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_sweep_removes_everything_a_killed_run_left() {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let run_id = format!("crash-{}", std::process::id());
    let mut child = start_holder(&run_id);
    // SIGKILL: no destructor, no signal handler runs.
    child.kill().expect("kill hold_env");
    child.wait().expect("reap hold_env");

    let filters = run_filter(&run_id);
    let before = count(docker.clone(), filters.clone()).await;
    assert_eq!((before.0, before.1), (1, 1), "the killed run should have left its container and volume");

    let report = portwhy_harness::sweep(&docker, Some(&run_id)).await.expect("sweep");
    eprintln!("sweep removed {report:?}");
    assert_eq!(report.containers.len(), 1);
    assert_eq!(report.volumes.len(), 1);
    assert_eq!(count(docker, filters).await, (0, 0, 0), "labelled leftovers remain after sweep");
}

/// Ctrl-C while a cell's teardown runs in the background: the sweep meets a container whose
/// removal is under way, and must still leave nothing (no 409 abort, no volume left in use).
#[tokio::test(flavor = "multi_thread")]
async fn live_sweep_during_a_teardown_still_removes_everything() {
    let docker = portwhy_harness::connect().unwrap_or_else(|e| panic!("live tests need Docker: {e}"));
    let run_id = format!("overlap-{}", std::process::id());
    let catalog = portwhy_harness::load_catalog(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"),
    )
    .expect("catalogue");
    let spec = catalog.iter().find(|s| s.name == "bookworm").expect("bookworm in the catalogue");
    let image = portwhy_harness::ensure_image(&docker, spec, &|l| eprintln!("{l}")).await.expect("image");
    let opts = portwhy_harness::EnvOptions {
        labels: portwhy_harness::RunLabels {
            run_id: run_id.clone(),
            scenario: "overlap".into(),
            env: "bookworm".into(),
        },
        ..Default::default()
    };
    let env = portwhy_harness::Environment::start(&docker, &image, opts).await.expect("environment");
    let filters = run_filter(&run_id);
    assert_eq!(count(docker.clone(), filters.clone()).await.0, 1, "the environment is not up");
    let teardown = tokio::spawn(env.teardown());
    let swept = portwhy_harness::sweep(&docker, Some(&run_id)).await;
    let torn = teardown.await.expect("teardown task");
    assert!(swept.is_ok(), "the sweep failed beside a teardown: {swept:?} (teardown: {torn:?})");
    assert_eq!(count(docker, filters).await, (0, 0, 0), "labelled leftovers remain after sweep and teardown");
}
