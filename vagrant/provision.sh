#!/usr/bin/env bash
# Provisioning of one VM: provision.sh NAME IP. Everything swarm-specific is the project's
# own scripts (scripts/install-deps --node, scripts/install-swarm), the same that CI runs;
# this adds only what a bare VM lacks: names for the other VMs and a Rust toolchain.
set -euo pipefail
name="$1" ip="$2"

# m1, w1, w2 by name (for `swarm join ... m1:2377`).
sed -i '/# swarm-vagrant$/d' /etc/hosts
while read -r line; do echo "$line # swarm-vagrant" >> /etc/hosts; done <<< "$SWARM_HOSTS"

/swarm/scripts/install-deps --node

if ! command -v cargo >/dev/null && [ ! -x /root/.cargo/bin/cargo ]; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
export PATH=/root/.cargo/bin:$PATH

/swarm/scripts/install-swarm \
  --target-dir /var/cache/swarm-build \
  --hostname "$name" \
  --listen-addr "$ip:2377" \
  --advertise-addr "$ip:2377" \
  --runtime containerd

echo "$name ($ip): swarmd.service $(systemctl is-active swarmd)"
