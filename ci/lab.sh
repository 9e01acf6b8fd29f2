#!/usr/bin/env bash
# The main job: the whole scenario matrix (every scenario x engine x backend) in real
# Docker-in-Docker environments, with a report in ./report (index.html, report.md,
# results.json, junit.xml). Extra arguments go to `portwhy-lab run` (e.g. --engine 28.5.2).
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --release -p portwhy -p portholder -p portwhy-lab
export PORTWHY_BIN="$PWD/target/release/portwhy"
export PORTWHY_PORTHOLDER="$PWD/target/release/portholder"
exec target/release/portwhy-lab run --report report --junit report/junit.xml "$@"
