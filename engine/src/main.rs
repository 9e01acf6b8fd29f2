//! The `portwhy` binary: its command line (`cli/`) over the `portwhy` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
