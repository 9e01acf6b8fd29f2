#!/usr/bin/env bash
# Runs every test: the fast layer (parsers, rules, reporters) and the live layer (real engines,
# real faults, the scenario matrix). Installs and starts what it needs through ci/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh

# The binaries that are copied into environments are built once, in release, and named
# explicitly so no stale build is picked up.
cargo build --release -p portwhy -p portholder
export PORTWHY_BIN="$PWD/target/release/portwhy"
export PORTWHY_PORTHOLDER="$PWD/target/release/portholder"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# Snapshots are compared, never written, in a test run (review workflow: see README).
export INSTA_UPDATE=no
# Cells mostly wait on engines and probes; three at a time keeps the 290-cell matrix inside CI's
# budget on two cores (measured: README, "What the matrix measured here").
export PORTWHY_LAB_JOBS="${PORTWHY_LAB_JOBS:-3}"
cargo nextest run --workspace --all-features --profile ci --no-tests=fail "$@"
