//! Starts one environment labelled with the given run id, prints `ready <name>`, then blocks.
//!
//! The crash-cleanup test SIGKILLs this process mid-run and checks that `sweep` removes what it
//! left; the Ctrl-C test sends SIGINT and checks that the process swept before exiting:
//! `cargo run -p portwhy-harness --example hold_env -- RUN_ID [ENGINE]`.

use std::path::Path;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let run_id = args.next().ok_or_else(|| anyhow::anyhow!("usage: hold_env RUN_ID [ENGINE]"))?;
    let engine = args.next().unwrap_or_else(|| "bookworm".to_string());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let docker = portwhy_harness::connect()?;
        // As the runner does: Ctrl-C removes this run's environments, then exits 130.
        let _sweeper = portwhy_harness::sweep_on_ctrl_c(docker.clone(), run_id.clone());
        let catalog =
            portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))?;
        let spec = catalog
            .iter()
            .find(|s| s.name == engine)
            .ok_or_else(|| anyhow::anyhow!("engine {engine} not in the catalogue"))?;
        let image = portwhy_harness::ensure_image(&docker, spec, &|l| eprintln!("{l}")).await?;
        let opts = portwhy_harness::EnvOptions {
            labels: portwhy_harness::RunLabels { run_id, scenario: "hold".into(), env: engine.clone() },
            ..Default::default()
        };
        let env = portwhy_harness::Environment::start(&docker, &image, opts).await?;
        println!("ready {}", env.name());
        std::future::pending::<()>().await;
        drop(env);
        Ok(())
    })
}
