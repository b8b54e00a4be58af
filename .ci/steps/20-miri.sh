#!/usr/bin/env bash
# miri: the library's unit tests, the single-threaded and static-breaker scenario tests and the
# BreakerMap tests (tests/map.rs, feature `map`) and failure-rate mode's scenarios (tests/rate.rs,
# about 40 s on x86_64 under load), on
# x86_64 and on powerpc-unknown-linux-gnu (32-bit, big-endian, no native 64-bit atomics, so the
# state word goes through portable-atomic's fallback). Stress and property tests are left out:
# far too slow under miri. About 6 to 7 minutes from scratch on a busy 2-core machine (plus the
# nightly download), about 1 minute when cached.
set -euo pipefail
cd "$(dirname "$0")/../.."

# RUSTUP_AUTO_INSTALL=0 on these machines: install the toolchain explicitly.
rustup toolchain install nightly --profile minimal --component miri,rust-src

export CARGO_TARGET_DIR="$PWD/target/miri"
# Stricter than the default: no integer-to-pointer casts anywhere. StdClock reads the monotonic
# clock, which miri provides under isolation, so isolation stays on.
export MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance"
# criterion (a dev-dependency) pulls in `alloca`, whose build script compiles a little C for the
# target. miri never links native code, so the host C compiler is enough for powerpc; this
# avoids needing a powerpc cross gcc.
export CC_powerpc_unknown_linux_gnu="${CC_powerpc_unknown_linux_gnu:-cc}"
export AR_powerpc_unknown_linux_gnu="${AR_powerpc_unknown_linux_gnu:-ar}"

# Test targets that exist (other tests may be added later; a missing one is skipped).
targets=(--lib)
for t in scenarios static_breaker map rate; do
  if [ -f "tests/$t.rs" ]; then
    targets+=(--test "$t")
  else
    echo "miri: tests/$t.rs not found, skipped"
  fi
done

for target in x86_64-unknown-linux-gnu powerpc-unknown-linux-gnu; do
  start=$SECONDS
  # `map`: tests/map.rs (BreakerMap) needs its feature; the other targets are unaffected by it.
  cargo +nightly miri test --target "$target" --features map "${targets[@]}"
  echo "miri $target: $((SECONDS - start)) s"
done
