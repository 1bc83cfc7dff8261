#!/usr/bin/env bash
# Fails when a crate of the workspace declares a dependency it does not use
# (cargo-machete, from crates.io; installed on first use). A dependency that is
# used where cargo-machete cannot see it (generated code, a renamed import) is
# listed under [package.metadata.cargo-machete] in its crate's Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.9.2
if ! cargo machete --version 2>/dev/null | grep -q "$version"; then
  echo "unused-deps: installing cargo-machete $version" >&2
  cargo install --quiet --locked cargo-machete --version "$version"
fi
cargo machete
