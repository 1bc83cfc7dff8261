# Foco: the two commands are `make run` and `make test`.
SHELL := /usr/bin/env bash
CARGO ?= cargo

# The revision `--version` and `foco_build_info` report, for the binaries this
# Makefile builds to run (not for `make test`: a stamp that changes with every
# commit would rebuild the whole workspace each time).
GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null)

.PHONY: run test deps fmt fmt-check lint unit-test k8s-check build bench bench-rules bench-sender bench-ingress bench-pipeline faults console-screenshots console-axe

## Start NATS, PostgreSQL, the four services and a demo; keep running.
run:
	@FOCO_GIT_REVISION=$(GIT_REVISION) scripts/run-local.sh

## Everything CI checks: formatting, clippy, every test, manifests.
test: deps console-axe fmt-check lint unit-test k8s-check

deps:
	@scripts/deps.sh

build:
	FOCO_GIT_REVISION=$(GIT_REVISION) $(CARGO) build --workspace --bins

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@scripts/unused-deps.sh

unit-test:
	@scripts/test.sh

k8s-check:
	@scripts/k8s-check.sh

## axe-core (pinned in services/console/tests/axe/package-lock.json, from the npm
## registry) for the accessibility checks of the console's browser scenario,
## installed into its git-ignored node_modules/. Without npm the scenario says
## that it skips them.
console-axe:
	@if command -v npm >/dev/null; then \
		npm ci --prefix services/console/tests/axe --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm not found: the console's accessibility checks (axe-core) will be skipped" >&2; \
	fi

## PNG screenshots of the console's pages in var/screenshots/ (not committed), taken
## by the browser scenario in headless Chromium (Debian's chromium and
## chromium-driver); it starts control, ingress, rules, sender and the console itself.
console-screenshots: deps console-axe
	FOCO_CONSOLE_SCREENSHOTS="$(CURDIR)/var/screenshots" $(CARGO) test -p foco-console --test it browser:: -- --nocapture
	@ls -1 var/screenshots/*.png

## Every benchmark (release builds; they print figures, they do not assert).
bench: bench-rules bench-sender bench-ingress bench-pipeline

## CPU time of the rule engine's Engine::plan per event (conditions, templates,
## recipients, encoding) on one thread, for three rules and payloads.
## FOCO_BENCH_EVENTS [100000] a round. Seconds; no NATS or Postgres.
bench-rules:
	$(CARGO) bench -p foco-rule-engine --bench plan

## Jobs/s through the sender to a fake provider vs the bare consume+ack ceiling.
## FOCO_BENCH_JOBS [50000], FOCO_BENCH_CONCURRENCY [1024]; needs local NATS and Postgres.
bench-sender: deps
	$(CARGO) bench -p foco-sender --bench throughput

## Signed webhooks/s through ingress vs a bare publish-and-ack handler, with latency
## percentiles and the ratio. FOCO_BENCH_CONNECTIONS [64], FOCO_BENCH_REQUESTS [20000],
## FOCO_BENCH_ROUNDS [5]; starts NATS and Postgres on loopback if they are not running.
bench-ingress: deps
	$(CARGO) bench -p foco-ingress --bench ingress

## The four services as release processes, end to end (signed webhooks in, SMS to a
## fake provider), against a bare publish-consume-call pipe and a floor pipe (the
## bare pipe plus what Foco's promises take) in the same run: closed loop, open
## loop at fixed rates, delayed jobs, CPU per SMS, exactly-once check.
## FOCO_BENCH_MODES [all: closed,open,delayed,api,bare,floor], FOCO_BENCH_SECONDS
## [15], FOCO_BENCH_RATES [1000,3000,5000,8000], FOCO_BENCH_CONNECTIONS [64], more
## in bench/pipeline/src/main.rs. About 6 minutes with the defaults.
bench-pipeline: deps
	$(CARGO) build --release --bins
	"$${CARGO_TARGET_DIR:-target}/release/foco-bench-pipeline"

## The fault suite: the four services as release processes under steady signed
## webhooks while each is killed in turn, NATS is stopped, PostgreSQL goes away
## (closed, then silent), the provider fails and throttles, and a rules replica
## dies with delayed jobs pending; prints accepted/delivered/lost/duplicated/
## unknown per fault and fails on any lost or duplicated SMS. FOCO_FAULTS_RATE
## [100], FOCO_FAULTS_SECONDS [40], FOCO_FAULTS_OUTAGE [20],
## FOCO_FAULTS_PROVIDER_OUTAGE [60]. About 12 minutes; a fast subset runs in
## `make test`.
faults: deps
	$(CARGO) build --release --bins
	FOCO_NATS_CLUSTER_SERVER="$${FOCO_NATS_CLUSTER_SERVER:-$$(scripts/nats-server.sh)}" \
		"$${CARGO_TARGET_DIR:-target}/release/foco-faults"
