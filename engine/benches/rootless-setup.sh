#!/bin/sh
# One-time setup for the pipeline benchmark's rootless holder (run as root; idempotent):
# Debian's rootlesskit, slirp4netns and uidmap, an unprivileged user with subordinate ids that the
# rootless engine runs as, and a /dev/net/tun that user may open (slirp4netns needs it; the
# device's usual mode is 0666).
#   sudo engine/benches/rootless-setup.sh [USER]   # default portwhy-bench
set -eu
user="${1:-portwhy-bench}"
if [ "$(id -u)" != 0 ]; then
    echo "rootless-setup: run as root" >&2
    exit 2
fi
missing=""
for tool in rootlesskit slirp4netns newuidmap; do
    command -v "$tool" >/dev/null 2>&1 || missing="yes"
done
if [ -n "$missing" ]; then
    apt-get install -y --no-install-recommends rootlesskit slirp4netns uidmap
fi
if [ ! -x /usr/share/docker.io/contrib/dockerd-rootless.sh ]; then
    echo "rootless-setup: /usr/share/docker.io/contrib/dockerd-rootless.sh is missing (Debian's docker.io ships it)" >&2
    exit 2
fi
# useradd adds the subordinate uid and gid ranges when uidmap is installed.
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
grep -q "^$user:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$user"
if [ ! -e /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod /dev/net/tun c 10 200
fi
chmod 0666 /dev/net/tun
echo "rootless-setup: user $user ($(id -u "$user")) is ready for --holder rootless"
