#!/usr/bin/env bash
# PostgreSQL's CPU per delivered SMS in the closed loop of the pipeline
# benchmark, by the statement each backend runs: the sender's claims and
# outcomes and rules' deduplication records, the three writes every SMS makes.
#
#   scripts/pipeline-statements.sh            # the release build in target/release
#   FOCO_BENCH_BIN_DIR=/tmp/other scripts/pipeline-statements.sh
#   FOCO_STATEMENTS_PIPE=floor scripts/pipeline-statements.sh
#
# The last form measures the floor pipe's three statements instead (its claim,
# outcome and event record): what the same promises cost PostgreSQL with none
# of Foco's columns, indexes or history.
#
# Runs `FOCO_BENCH_MODES=closed foco-bench-pipeline` (`closed,floor` for the
# floor pipe), waits until rules (or the floor pipe) has been busy for three
# seconds (the load, not the warm-up), then reads the CPU time of each backend
# of the phase's database from /proc over
# FOCO_STATEMENTS_SECONDS [5], labels each backend by the statement it runs
# (pg_stat_activity, read at the end), and divides by the SMS delivered
# meanwhile, at the bench's rate during the load. Each batched writer keeps
# its connections, so a backend runs one kind of statement. Needs psql and
# the server on FOCO_TEST_DATABASE_URL (the benchmark's own default).
set -euo pipefail
cd "$(dirname "$0")/.."

pipe="${FOCO_STATEMENTS_PIPE:-foco}"
# shellcheck source=scripts/closed-loop.sh
source scripts/closed-loop.sh
seconds="${FOCO_STATEMENTS_SECONDS:-5}"
server="${FOCO_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

command -v psql >/dev/null || { echo "pipeline-statements: psql is not installed" >&2; exit 1; }

start_closed_loop
wait_for_load

database=$(psql "$server" -Atc "SELECT datname FROM pg_stat_activity
  WHERE datname LIKE 'foco_test_%' GROUP BY datname ORDER BY count(*) DESC LIMIT 1")
backends() {
  psql "$server" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$database'" |
    while read -r pid; do
      awk -v pid="$pid" '{print pid, $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
    done | sort
}
backends >"$work/before"
sleep "$seconds"
backends >"$work/after"
psql "$server" -AtF' ' -c "SELECT pid,
    CASE WHEN query LIKE '%INSERT INTO messages%' OR query LIKE '%INSERT INTO floor_messages%' THEN 'claim'
         WHEN query LIKE '%UPDATE messages m SET%' OR query LIKE '%UPDATE floor_messages m SET%' THEN 'outcome'
         WHEN query LIKE '%INSERT INTO seen_events%' OR query LIKE '%INSERT INTO floor_events%' THEN 'deduplication'
         ELSE 'other' END
  FROM pg_stat_activity WHERE datname = '$database'" | sort >"$work/labels"
wait "$bench"

delivered=$(closed_loop_rate delivered)
echo "closed loop on $phase_name: $delivered SMS/s delivered during the load"
echo "PostgreSQL backends' CPU over ${seconds} s of it, per delivered SMS, by statement:"
join "$work/before" "$work/after" | join - "$work/labels" |
  awk -v hz="$(getconf CLK_TCK)" -v sms="$((delivered * seconds))" '
    { used[$4] += $3 - $2; backends[$4]++ }
    END {
      for (label in used)
        printf "  %-14s %6.1f us  (%d backends)\n", label, used[label] / hz * 1e6 / sms, backends[label]
    }' | sort -k2 -rn
