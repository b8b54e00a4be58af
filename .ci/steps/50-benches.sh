#!/usr/bin/env bash
# Benches: compiled, not run. Running them takes minutes and their figures mean something only
# as ratios on a quiet machine; see BENCHMARKS.md for the command and the results.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo bench --no-run --all-features
