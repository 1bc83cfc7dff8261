#!/usr/bin/env bash
# `make run`: starts NATS and PostgreSQL if needed, builds Foco, runs the four
# services as separate processes, applies examples/demo.yaml, sends two signed
# sample webhooks, shows the SMS they produced, then keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1;32m==>\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

mkdir -p var/log

# Local secrets, generated once and kept in var/ (never committed).
if [ ! -f var/dev.env ]; then
  rand() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
  cat >var/dev.env <<ENV
FOCO_ADMIN_API_KEY=dev_$(rand 24 | tr '+/' '-_' | tr -d '=')
FOCO_ENCRYPTION_KEY=$(rand 32)
FOCO_DEMO_TYPEFORM_SECRET=demo_typeform_$(rand 9 | tr '+/' '-_')
FOCO_DEMO_SHOPIFY_SECRET=demo_shopify_$(rand 9 | tr '+/' '-_')
ENV
fi
# Added after the file above first existed, so older var/dev.env files get it too.
if ! grep -q '^FOCO_CONSOLE_SESSION_KEY=' var/dev.env; then
  echo "FOCO_CONSOLE_SESSION_KEY=$(head -c 64 /dev/urandom | base64 | tr -d '\n')" >>var/dev.env
fi
# A database of this checkout's own: its secrets are sealed with the key
# above, which another checkout's database would not open.
if ! grep -q '^FOCO_DEV_DATABASE=' var/dev.env; then
  echo "FOCO_DEV_DATABASE=foco_dev_$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>var/dev.env
fi
set -a
# shellcheck disable=SC1091
source var/dev.env
set +a
scripts/deps.sh "$FOCO_DEV_DATABASE"
set -a
DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$FOCO_DEV_DATABASE}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
FOCO_INGRESS_LISTEN="${FOCO_INGRESS_LISTEN:-127.0.0.1:8080}"
FOCO_CONSOLE_OUTBOX="$(pwd)/var/outbox.jsonl"
FOCO_CONSOLE_PROVIDER=true
FOCO_API_KEY="$FOCO_ADMIN_API_KEY"
FOCO_LOG_FORMAT="${FOCO_LOG_FORMAT:-json}"
FOCO_CONSOLE_LISTEN="${FOCO_CONSOLE_LISTEN:-127.0.0.1:8081}"
# Plain HTTP on loopback: the session cookie cannot be Secure here.
FOCO_CONSOLE_SECURE_COOKIES=false
set +a
ingress_url="http://${FOCO_INGRESS_LISTEN/0.0.0.0/127.0.0.1}"
export FOCO_INGRESS_URL="$ingress_url"

say "building (cargo build --workspace --bins)"
cargo build --workspace --bins --quiet
bin="${CARGO_TARGET_DIR:-target}/debug"

pids=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    printf '\nstopping Foco services...\n'
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop_all INT TERM EXIT

wait_ready() {
  local name=$1 port=$2
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  tail -n 20 "var/log/$name.log" >&2
  fail "$name did not become ready (log: var/log/$name.log)"
}

# Starts foco-<name> with the shared settings plus the NAME=value arguments.
# The admin and encryption keys reach control only, as in production.
start() {
  local name=$1 admin_port=$2
  shift 2
  env -u FOCO_ADMIN_API_KEY -u FOCO_ENCRYPTION_KEY "$@" \
    FOCO_ADMIN_LISTEN="127.0.0.1:$admin_port" "$bin/foco-$name" >>"var/log/$name.log" 2>&1 &
  pids+=($!)
  wait_ready "$name" "$admin_port"
  echo "  foco-$name ready (pid $!, admin http://127.0.0.1:$admin_port, log var/log/$name.log)"
}

# A service key (scopes of that service's lookups only), valid for this session:
# what the service presents to control instead of the admin key.
service_key() {
  "$bin/foco" api-keys create --service "$1" --name "make-run-$1" --expires-in 24h | sed -n 2p
}

say "starting services"
start control 9091 FOCO_ADMIN_API_KEY="$FOCO_ADMIN_API_KEY" FOCO_ENCRYPTION_KEY="$FOCO_ENCRYPTION_KEY"
start ingress 9092 FOCO_CONTROL_API_KEY="$(service_key ingress)"
start rules 9093 FOCO_CONTROL_API_KEY="$(service_key rules)"
start sender 9094 FOCO_CONTROL_API_KEY="$(service_key sender)"
start console 9095

say "applying examples/demo.yaml"
apply_output=$("$bin/foco" apply -f examples/demo.yaml)
echo "$apply_output"
signup_url=$(echo "$apply_output" | grep -o "http[^ ]*/v1/hooks/[A-Za-z0-9_-]*" | sed -n 1p)
shop_url=$(echo "$apply_output" | grep -o "http[^ ]*/v1/hooks/[A-Za-z0-9_-]*" | sed -n 2p)
[ -n "$signup_url" ] && [ -n "$shop_url" ] || fail "foco apply did not print two webhook URLs"

sign_b64() { openssl dgst -sha256 -hmac "$1" -binary "$2" | base64 | tr -d '\n'; }
outbox_lines() { [ -f var/outbox.jsonl ] && wc -l <var/outbox.jsonl || echo 0; }
before=$(outbox_lines)

say "POST a Typeform sign-up (scenario 1) to $signup_url"
# A new response id each run: Foco remembers ids for days and drops repeats.
body=var/typeform_response.json
sed "s/\"event_id\": \"LtWXD3crgy\"/\"event_id\": \"demo-$(date +%s)\"/" \
  examples/webhooks/typeform__form_response.json >"$body"
curl -sS -X POST "$signup_url" -H 'Content-Type: application/json' \
  -H "Typeform-Signature: sha256=$(sign_b64 "$FOCO_DEMO_TYPEFORM_SECRET" "$body")" \
  --data-binary @"$body"
echo

say "POST a Shopify order (scenario 4) to $shop_url"
# A new order token each run: Shopify signs the body alone, so Foco tells events
# apart by their bodies and drops a body it has seen (a replay) for days.
body=var/shopify_order.json
sed "s/\"token\": \"123456abcd\"/\"token\": \"demo-$(date +%s)\"/" \
  examples/webhooks/shopify__orders_create.json >"$body"
curl -sS -X POST "$shop_url" -H 'Content-Type: application/json' \
  -H 'X-Shopify-Topic: orders/create' -H "X-Shopify-Event-Id: demo-$(date +%s)" \
  -H "X-Shopify-Hmac-Sha256: $(sign_b64 "$FOCO_DEMO_SHOPIFY_SECRET" "$body")" \
  --data-binary @"$body"
echo

say "waiting for the SMS (console provider → var/outbox.jsonl)"
for _ in $(seq 1 100); do
  [ "$(outbox_lines)" -ge $((before + 2)) ] && break
  sleep 0.1
done
tail -n +$((before + 1)) var/outbox.jsonl 2>/dev/null || true
[ "$(outbox_lines)" -ge $((before + 2)) ] || echo "(fewer SMS than expected; see var/log/*.log)"

say "foco messages list"
"$bin/foco" messages list --account tienda-ale --limit 5

# A key of the demo account for the console, valid for this session only.
console_key=$("$bin/foco" api-keys create --account tienda-ale --description "make run: console demo" \
  --expires-in 12h | sed -n 2p)
console_url="http://${FOCO_CONSOLE_LISTEN/0.0.0.0/127.0.0.1}"
say "the owner's console: $console_url"
echo "  sign in with this API key of account tienda-ale (valid 12 hours):"
echo "  $console_key"

cat <<INFO

Foco is running. Try another sale (a new order token makes each one new):

  body=var/try_order.json
  sed "s/\"token\": \"123456abcd\"/\"token\": \"try-\$RANDOM\"/" examples/webhooks/shopify__orders_create.json >\$body
  curl -X POST '$shop_url' -H 'Content-Type: application/json' \\
    -H 'X-Shopify-Topic: orders/create' -H "X-Shopify-Event-Id: try-\$RANDOM" \\
    -H "X-Shopify-Hmac-Sha256: \$(openssl dgst -sha256 -hmac '$FOCO_DEMO_SHOPIFY_SECRET' -binary \$body | base64)" \\
    --data-binary @\$body

  $bin/foco messages list --account tienda-ale     (FOCO_API_KEY is in var/dev.env)
  tail -f var/outbox.jsonl var/log/*.log

Press Ctrl-C to stop.
INFO
wait
