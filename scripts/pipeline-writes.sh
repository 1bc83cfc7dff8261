#!/usr/bin/env bash
# How many writes ingress, rules and the sender make per webhook or SMS in the
# closed loop of the pipeline benchmark: whether what the services send to
# NATS goes out together or one write per message. writev is what the NATS
# client, hyper and axum write with; write is mostly waking a runtime thread.
#
#   scripts/pipeline-writes.sh            # the release build in target/release
#   FOCO_BENCH_BIN_DIR=/tmp/other scripts/pipeline-writes.sh
#
# Runs `FOCO_BENCH_MODES=closed foco-bench-pipeline`, waits until rules has
# been busy for three seconds (the load, not the warm-up; closed-loop.sh), then counts each
# service's writev(2) and write(2) calls with `perf stat` for
# FOCO_WRITES_SECONDS [8] and divides by the webhooks accepted (ingress, rules)
# or SMS delivered (the sender) meanwhile, at the bench's rates during the
# load. Needs perf with syscall tracepoints (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/closed-loop.sh
source scripts/closed-loop.sh
seconds="${FOCO_WRITES_SECONDS:-8}"

command -v perf >/dev/null || { echo "pipeline-writes: perf is not installed" >&2; exit 1; }

start_closed_loop
wait_for_load
rules=$(pgrep -x foco-rules)
ingress=$(pgrep -x foco-ingress)
sender=$(pgrep -x foco-sender)

for service in ingress rules sender; do
  perf stat -x, -e syscalls:sys_enter_writev,syscalls:sys_enter_write \
    -p "${!service}" -- sleep "$seconds" 2>"$work/$service.perf" &
done
wait %2 %3 %4
wait "$bench"

accepted=$(closed_loop_rate accepted)
delivered=$(closed_loop_rate delivered)
echo "closed loop: $accepted webhooks/s accepted, $delivered SMS/s delivered during the load"
echo "calls over ${seconds} s of it, per accepted webhook (ingress, rules) or delivered SMS (sender):"
for service in ingress rules sender; do
  count() { awk -F, -v e="syscalls:sys_enter_$1" '$3 == e {print $1}' "$work/$service.perf"; }
  if [ "$service" = sender ]; then rate=$delivered; else rate=$accepted; fi
  awk -v s="$service" -v v="$(count writev)" -v w="$(count write)" -v r="$rate" -v t="$seconds" \
    'BEGIN { printf "  %-8s writev %5.2f  write %5.2f  (%d and %d calls)\n", s, v / (r * t), w / (r * t), v, w }'
done
