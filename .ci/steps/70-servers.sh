#!/usr/bin/env bash
# Servers (issue 9): the `tower` feature and the unpublished `servers/` workspace member (axum,
# hyper, tonic, tower-resilience), kept out of the library's dev-dependencies so that miri and
# the no-default-features steps never compile them.
# - its clippy and tests (a real axum proxy on loopback in front of a flaky upstream, seen by a
#   hyper client: 200s, 503 + Retry-After, recovery; tonic's Status mapping) run in .ci/run with
#   the rest of the workspace; here its bench runs in criterion's test mode (one quick pass);
# - the demo, run for real (real clock, about 3 s, bounded by `timeout`), and the health
#   example (under a second once built);
# - the `tower`, `metrics` and `tracing` features on the MSRV toolchain (installed by .ci/run).
# About 4 minutes from scratch on a busy 2-core machine (mostly compiling axum, hyper, tonic),
# under 1 minute when cached.
set -euo pipefail
cd "$(dirname "$0")/../.."

t0=$SECONDS
lap() { echo "servers: $1 done at +$((SECONDS - t0)) s"; }

cargo test -p atomic-breaker-servers --benches
lap "bench in test mode"

out=$(mktemp)
timeout 120 cargo run -q -p atomic-breaker-servers --example axum_breaker | tee "$out"
grep -q 'breaker state: closed' "$out" || {
  echo "servers: the demo did not end with the breaker closed" >&2
  exit 1
}
lap "demo run"

# The health view (issue 11): /health JSON and /metrics Prometheus text for three breakers,
# fetched by the example itself over loopback; its exact lines are checked by tests/health.rs.
timeout 120 cargo run -q -p atomic-breaker-servers --example health | tee "$out"
grep -qF 'circuit_breaker_state{name="payments",state="open"} 1' "$out" || {
  echo "servers: the health example did not show payments open in /metrics" >&2
  exit 1
}
grep -qF '"status": "DEGRADED"' "$out" || {
  echo "servers: the health example's /health did not say DEGRADED" >&2
  exit 1
}
lap "health example run"

MSRV=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[[ "$MSRV" == *.*.* ]] || MSRV="$MSRV.0"
if [ "${CI:-}" = "true" ] || rustup run "$MSRV" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$MSRV" --profile minimal
  cargo "+$MSRV" build --features tower,metrics,tracing
  lap "MSRV $MSRV build with the tower, metrics and tracing features"
else
  echo "servers: SKIPPED the MSRV $MSRV build (toolchain not installed; CI installs it)" >&2
fi
