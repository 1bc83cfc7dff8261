# Sourced by the scripts that watch the pipeline benchmark's closed loop from
# outside (pipeline-writes.sh, pipeline-statements.sh): runs
# `FOCO_BENCH_MODES=closed foco-bench-pipeline` in the background and tells
# when its load is under way.
#
# Sets $target (the Cargo target directory) and $work (a temporary directory,
# removed on exit); `start_closed_loop` sets $bench (the benchmark's pid) and
# writes its output to $work/bench.log. With `pipe=floor` set before sourcing,
# the load watched is the floor pipe's closed loop (`FOCO_BENCH_MODES=closed,floor`,
# which runs it after Foco's) instead of Foco's.

target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pipe="${pipe:-foco}"
case "$pipe" in
  foco) modes=closed busy_process=(-x foco-rules) phase_name=foco ;;
  floor) modes=closed,floor busy_process=(-f foco-bench-floor-pipe) phase_name="floor pipe" ;;
  *) echo "closed-loop: pipe is foco or floor, not $pipe" >&2; exit 1 ;;
esac

start_closed_loop() {
  FOCO_BENCH_MODES=$modes "$target/release/foco-bench-pipeline" >"$work/bench.log" 2>&1 &
  bench=$!
}

# CPU ticks so far of the process that shows the load (rules, or the floor
# pipe), following the process the phase runs (a process that ends, such as a
# short check before the phase, is looked up again).
busy_ticks() {
  local pid
  for pid in $(pgrep "${busy_process[@]}"); do
    awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null && return 0
  done
  echo 0
}

# Returns once that process has been busy (a tenth of a core or more) three
# seconds in a row: the load, not the warm-up. Exits if the benchmark ends first.
wait_for_load() {
  local ticks busy previous current
  ticks=$(getconf CLK_TCK)
  busy=0
  previous=$(busy_ticks)
  while [ "$busy" -lt 3 ]; do
    sleep 1
    kill -0 "$bench" 2>/dev/null || { cat "$work/bench.log" >&2; exit 1; }
    current=$(busy_ticks)
    if [ $((current - previous)) -gt $((ticks / 10)) ]; then busy=$((busy + 1)); else busy=0; fi
    previous=$current
  done
}

# The closed loop's rates during the load, from the benchmark's output once it
# has ended: `closed_loop_rate accepted` (webhooks/s) or `delivered` (SMS/s).
closed_loop_rate() {
  local phase
  phase=$(grep -m1 -A2 -- "--- closed loop on $phase_name " "$work/bench.log")
  case "$1" in
    accepted) sed -n 's/.* accepted (\([0-9]*\)\/s).*/\1/p' <<<"$phase" ;;
    delivered) sed -n 's/.* during the load (\([0-9]*\)\/s).*/\1/p' <<<"$phase" ;;
  esac
}
