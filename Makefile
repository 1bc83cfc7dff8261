# Foco: the two commands are `make run` and `make test`.
SHELL := /usr/bin/env bash
CARGO ?= cargo

.PHONY: run test deps fmt fmt-check lint unit-test k8s-check build clean-dev bench bench-sender

## Start NATS, PostgreSQL, the four services and a demo; keep running.
run:
	@scripts/run-local.sh

## Everything CI checks: formatting, clippy, every test, manifests.
test: deps fmt-check lint unit-test k8s-check

deps:
	@scripts/deps.sh

build:
	$(CARGO) build --workspace --bins

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit-test:
	@scripts/test.sh

k8s-check:
	@scripts/k8s-check.sh

clean-dev:
	@scripts/stop-local.sh || true

## Every benchmark (release builds; they print figures, they do not assert).
bench: bench-sender

## Jobs/s through the sender to a fake provider vs the bare consume+ack ceiling.
## FOCO_BENCH_JOBS [50000], FOCO_BENCH_CONCURRENCY [1024]; needs local NATS and Postgres.
bench-sender:
	$(CARGO) bench -p foco-sender --bench throughput
