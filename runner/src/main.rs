//! The `portwhy-lab` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = portwhy_lab::cli::Cli::parse();
    if let Err(e) = portwhy_lab::cli::main(cli).await {
        eprintln!("portwhy-lab: {e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}
