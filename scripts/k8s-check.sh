#!/usr/bin/env bash
# Renders the kustomize base and validates every object against the Kubernetes
# schemas offline (kubectl kustomize + PyPI kubernetes-validate).
set -euo pipefail
dev_home=$([ "$(id -u)" = 0 ] && echo "${FOCO_DEV_HOME:-/var/tmp/foco-dev}" || echo "${FOCO_DEV_HOME:-$(pwd)/.foco}")
mkdir -p "$dev_home"
if [ ! -x "$dev_home/venv/bin/kubernetes-validate" ]; then
  [ -x "$dev_home/venv/bin/python" ] || python3 -m venv "$dev_home/venv"
  "$dev_home/venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
fi
if command -v kubectl >/dev/null 2>&1; then
  render=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  render=(kustomize build)
else
  echo "k8s-check: needs kubectl or kustomize on PATH" >&2; exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in k8s/base; do
  "${render[@]}" "$overlay" >"$out/rendered.yaml"
  "$dev_home/venv/bin/kubernetes-validate" --strict --kubernetes-version 1.32.0 "$out/rendered.yaml"
  echo "k8s-check: $overlay renders $(grep -c '^kind:' "$out/rendered.yaml") valid objects"
done

# The image must ship every service binary the manifests run.
for binary in $(grep -ho 'command: \["/usr/local/bin/[a-z-]*"\]' k8s/base/*.yaml | grep -o 'foco[a-z-]*' | sort -u); do
  grep -q "target/release/$binary\b" deploy/Dockerfile || { echo "k8s-check: deploy/Dockerfile does not build $binary" >&2; exit 1; }
done
echo "k8s-check: deploy/Dockerfile builds every binary the manifests run"
