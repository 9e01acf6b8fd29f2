#!/usr/bin/env bash
# Installs what portwhy's tests and matrix need on a fresh Debian/Ubuntu machine and starts dockerd.
# Idempotent: a second run installs nothing and leaves a running daemon alone.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian package names (Ubuntu has the same ones). chromium renders the HTML report in a test;
# busybox-static is the inner image of every environment; debootstrap builds the engine images.
PACKAGES=(docker.io iptables nftables debootstrap iproute2 conntrack busybox-static procps
          ca-certificates python3 chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/setup.sh: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The test command checks formatting and lints; minimal rustup profiles lack both components.
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi

# cargo-nextest runs the test groups that limit concurrent Docker environments.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "ci/setup.sh: installing cargo-nextest from crates.io"
  cargo install cargo-nextest --locked
fi

# A daemon is needed for the live layer. Use the one that runs; otherwise start dockerd directly
# (CI containers and fresh VMs often have no systemd to ask).
if ! docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
fi
if ! docker info >/dev/null 2>&1; then
  echo "ci/setup.sh: starting dockerd (log: /var/log/portwhy-dockerd.log)"
  $SUDO sh -c 'nohup dockerd >/var/log/portwhy-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi
docker info >/dev/null 2>&1 || { echo "ci/setup.sh: dockerd did not start; see /var/log/portwhy-dockerd.log" >&2; exit 1; }
echo "ci/setup.sh: Docker $(docker version --format '{{.Server.Version}}') is up"
