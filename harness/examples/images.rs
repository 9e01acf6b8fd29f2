//! Builds, lists or prunes engine images, or sweeps leftovers:
//! `cargo run -p portwhy-harness --example images -- build [NAME..] | list | prune | sweep [RUN_ID]`.
//!
//! `build` prints the time each `ensure_image` took (cold: debootstrap + import; warm: a label
//! lookup), so running it twice measures both.

use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new()?;
    let docker = portwhy_harness::connect()?;
    let catalog =
        portwhy_harness::load_catalog(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../engines.toml"))?;
    match args.first().map(String::as_str) {
        Some("build") => {
            let wanted = &args[1..];
            for spec in catalog.iter().filter(|s| wanted.is_empty() || wanted.contains(&s.name)) {
                let started = Instant::now();
                let image =
                    rt.block_on(portwhy_harness::ensure_image(&docker, spec, &|line| eprintln!("  {line}")))?;
                println!("{} {} {:.2}s", spec.name, image.tag, started.elapsed().as_secs_f64());
            }
        }
        Some("list") => {
            for img in rt.block_on(portwhy_harness::list_images(&docker))? {
                println!("{} {} {} {:?}", img.engine, img.engine_version, img.tags.join(","), img.packages);
            }
        }
        Some("prune") => {
            for removed in rt.block_on(portwhy_harness::prune_images(&docker, &catalog))? {
                println!("removed {removed}");
            }
        }
        Some("sweep") => {
            let report = rt.block_on(portwhy_harness::sweep(&docker, args.get(1).map(String::as_str)))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        _ => anyhow::bail!("usage: images build [NAME..] | list | prune | sweep [RUN_ID]"),
    }
    Ok(())
}
