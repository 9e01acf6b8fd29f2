//! The `portwhy` binary: a thin shell over `portwhy::cli`.

fn main() {
    std::process::exit(portwhy::cli::main())
}
