#!/usr/bin/env bash
# Fuzzing: the `model` target (fuzz/fuzz_targets/model.rs) checks the breaker against the
# reference model in tests/model/ for about 60 s; the `saved_state` target
# (fuzz/fuzz_targets/saved_state.rs) feeds arbitrary bytes to `SavedState::from_bytes` and
# restores what it accepts, for about 30 s. Any finding (a crash, a timeout, running out
# of memory) fails the step; libFuzzer leaves the input in fuzz/artifacts/<target>/.
# It runs on a copy of the committed seed corpus, so CI never writes into fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"

# What it needs, installed only when missing: installing over an existing nightly would update
# it (and race any other step using it), so look at the list rather than run the toolchain.
if ! rustup toolchain list | grep '^nightly-' >/dev/null; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

seconds="${FUZZ_SECONDS:-60}"
corpus="$(mktemp -d)"
saved_corpus="$(mktemp -d)"
trap 'rm -rf "$corpus" "$saved_corpus"' EXIT
cp corpus/model/* "$corpus/"
cp corpus/saved_state/* "$saved_corpus/"

# Build first, so the time budget goes to fuzzing.
cargo +nightly fuzz build model
cargo +nightly fuzz build saved_state
cargo +nightly fuzz run model "$corpus" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
cargo +nightly fuzz run saved_state "$saved_corpus" -- \
  -max_total_time="${FUZZ_SAVED_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
