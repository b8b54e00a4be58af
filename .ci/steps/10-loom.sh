#!/usr/bin/env bash
# loom: model checks of every CAS transition and of the listener table (src/loom_tests.rs).
# Two-thread checks are exhaustive; three-thread checks use LOOM_MAX_PREEMPTIONS (3 here).
# From scratch about 3 to 6 minutes on 2 cores, mostly the release build of the dev-dependencies;
# the checks themselves take 1 to 3 minutes (176 s on a loaded 2-core machine, 2026-12-08). Stable toolchain. Its own target dir, so the
# `--cfg loom` build never invalidates the main one.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="$PWD/target/loom"
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"

# The library builds under loom with every feature (constructors become plain fns, statics go).
cargo clippy --lib --all-features -- -D warnings
# The loom checks themselves, linted as the test build that contains them.
cargo clippy --lib --profile test -- -D warnings

cargo test --release --lib --no-run
start=$SECONDS
# Every unit test runs under cfg(loom); the loom_tests module prints one line per check
# (threads, bound, iterations, time).
cargo test --release --lib -- --nocapture
echo "loom: tests ran in $((SECONDS - start)) s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
