#!/usr/bin/env bash
# Release readiness: what a user sees on crates.io and docs.rs.
#  1. docs built the way docs.rs builds them (nightly, each crate's [package.metadata.docs.rs]:
#     its features and rustdoc-args, so `--cfg docsrs`), warnings denied, and the "Available on
#     crate feature X" badges present on the feature-gated items;
#  2. a feature matrix: every feature of every published crate alone (and on top of the defaults)
#     on the host, and the no_std-capable ones alone on thumbv7m and thumbv6m, so a feature that
#     builds only in combination with another fails here;
#  3. `cargo package` of every published crate, which builds each crate from its own tarball.
# Features and crates are read from `cargo metadata`, so a new feature or crate is covered without
# editing this file; a new host-only feature must be added to HOST_ONLY below (the thumb builds
# fail loudly until it is).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never

# Features that need std: the crate's own `std`, `tower` (tower-service is a std crate),
# `metrics` (the metrics facade is a std crate), and `map` (`RwLock`, `Arc`).
HOST_ONLY=" std tower metrics map "
# no_std features that need native compare-and-swap, so not thumbv6m: `tracing` (tracing-core's
# dispatcher uses AtomicUsize::compare_exchange, which thumbv6m lacks). Checked on thumbv7m only.
NEEDS_CAS=" tracing "

say() { echo; echo "---- $* ($(date +%H:%M:%S))"; }
start=$SECONDS

# The same nightly line as the miri step, so neither drops the components the other needs.
rustup toolchain install nightly --profile minimal --component miri,rust-src
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi

# One line per published workspace crate: name, manifest path, docs.rs features flags, rustdoc args.
meta=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
members = set(m["workspace_members"])
for p in m["packages"]:
    if p["id"] not in members or p["publish"] == []:
        continue
    d = ((p.get("metadata") or {}).get("docs") or {}).get("rs")
    if d is None:
        sys.exit(p["name"] + ": no [package.metadata.docs.rs]; docs.rs would build default features only")
    flags = []
    if d.get("all-features"):
        flags.append("--all-features")
    if d.get("features"):
        flags += ["--features", ",".join(d["features"])]
    if d.get("no-default-features"):
        flags.append("--no-default-features")
    feats = sorted(f for f in p["features"] if f != "default")
    print(p["name"], " ".join(flags) or "-", " ".join(d.get("rustdoc-args", [])) or "-", ",".join(feats) or "-", sep="\t")
')
echo "$meta"

say "docs as docs.rs builds them"
while IFS=$'\t' read -r name flags rdargs _; do
  [ "$flags" = "-" ] && flags=""
  [ "$rdargs" = "-" ] && rdargs=""
  # shellcheck disable=SC2086
  RUSTDOCFLAGS="$rdargs -D warnings" cargo +nightly doc --no-deps -p "$name" $flags
done <<<"$meta"

# Feature badges: each feature-gated item of the core crate names its feature on its page.
badge() {
  local page=target/doc/atomic_breaker/$1 feature=$2
  if ! grep -q "crate feature <code>$feature</code>" "$page"; then
    echo "no 'Available on crate feature $feature' badge in $page" >&2
    exit 1
  fi
}
badge struct.StdClock.html std
badge struct.EmbeddedTimeClock.html embedded-time
badge struct.EventQueue.html heapless
badge fn.defmt_event_logger.html defmt
badge type.GuardedStream.html stream
badge struct.EmbassyClock.html embassy
badge tower/index.html tower
badge tower/struct.BreakerLayer.html tower
badge map/struct.BreakerMap.html map
badge metrics_listener/index.html metrics
badge metrics_listener/fn.listener.html metrics
badge tracing_listener/index.html tracing
badge tracing_listener/fn.listener.html tracing
badge serde_support/index.html serde
echo "feature badges present"

say "feature matrix on the host"
while IFS=$'\t' read -r name _ _ feats; do
  [ "$feats" = "-" ] && continue
  cargo check -q -p "$name" --lib --no-default-features
  cargo check -q -p "$name" --lib --all-features
  for f in ${feats//,/ }; do
    echo "$name: --no-default-features --features $f"
    cargo check -q -p "$name" --lib --no-default-features --features "$f"
    cargo check -q -p "$name" --lib --features "$f"
  done
done <<<"$meta"

say "no_std features alone on thumbv7m and thumbv6m (critical-section)"
core_feats=$(awk -F'\t' '$1 == "atomic-breaker" { print $4 }' <<<"$meta")
for f in ${core_feats//,/ }; do
  case "$HOST_ONLY" in *" $f "*) continue ;; esac
  echo "thumbv7m: --features $f"
  cargo check -q -p atomic-breaker --lib --no-default-features --features "$f" --target thumbv7m-none-eabi
  case "$NEEDS_CAS" in *" $f "*) echo "thumbv6m: $f needs native CAS, not built"; continue ;; esac
  echo "thumbv6m: --features $f,critical-section"
  cargo check -q -p atomic-breaker --lib --no-default-features --features "$f,critical-section" \
    --target thumbv6m-none-eabi
done

say "cargo package: every published crate builds from its own tarball"
pkgs=()
while IFS=$'\t' read -r name _ _ _; do pkgs+=(-p "$name"); done <<<"$meta"
cargo package --allow-dirty "${pkgs[@]}"
for crate in target/package/*.crate; do
  echo "$crate: $(tar -tzf "$crate" | wc -l) files"
done

echo "release step: $((SECONDS - start)) s"
