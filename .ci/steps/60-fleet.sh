#!/usr/bin/env bash
# The fleet crate (atomic-breaker-redis/): the README's demo and the bench in test mode. Its clippy,
# docs and tests (each test starts its own redis-server on a free loopback port and kills it) run
# in .ci/run with the rest of the workspace; this step re-checks the server is there.
# Installs redis-server with apt if missing; with CI=true a missing redis-server is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
t() { echo "[60-fleet] $* (+$(( $(date +%s) - start ))s)"; }

if ! command -v redis-server >/dev/null 2>&1; then
  t "installing redis-server"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null || true
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "[60-fleet] FAIL: redis-server is not installed and could not be installed" >&2
    exit 1
  fi
  echo "[60-fleet] SKIPPED outside CI: install redis-server (apt-get install redis-server)" >&2
  exit 0
fi
t "$(redis-server --version)"

cargo test -p atomic-breaker-redis --benches
t "bench in test mode done"
cargo run -q -p atomic-breaker-redis --example fleet_demo
t "demo done"
