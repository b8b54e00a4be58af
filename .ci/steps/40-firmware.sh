#!/usr/bin/env bash
# Firmware: the breaker on Cortex-M3 and Cortex-M0 under QEMU (sync, interrupts, async on embassy), the interrupt-hazard negative
# control on Cortex-M4, the no-panic link check, flash size, and the firmware example.
# Installs what it needs (qemu-system-arm, the thumb targets, llvm-tools); see docs/FIRMWARE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

say() { echo; echo "---- $*"; }

say "tools"
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq qemu-system-arm >/dev/null
fi
qemu-system-arm --version | head -n 1
rustup target add thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf
rustup component add llvm-tools
HOST=$(rustc -vV | sed -n 's/^host: //p')
LLVM_BIN="$(rustc --print sysroot)/lib/rustlib/$HOST/bin"
SIZE="$LLVM_BIN/llvm-size"
OBJDUMP="$LLVM_BIN/llvm-objdump"
NM="$LLVM_BIN/llvm-nm"

# Each firmware package is its own workspace with its own target directory.
FW_TARGET="$ROOT/firmware/target"
fw() { (cd "$ROOT/firmware" && CARGO_TARGET_DIR="$FW_TARGET" "$@"); }

# Runs a firmware binary in QEMU with a time limit; a failed check exits 1, a hang 124.
run_fw() {
  local target=$1 bin=$2
  fw cargo build --release --target "$target" --bin "$bin"
  echo "running $bin on $target"
  fw timeout 120 cargo run -q --release --target "$target" --bin "$bin"
}

say "scenarios, the thread-mode + interrupt storm, async on embassy: lm3s6965evb (Cortex-M3, unsafe-assume-single-core)"
start=$SECONDS
run_fw thumbv7m-none-eabi scenarios
run_fw thumbv7m-none-eabi storm
run_fw thumbv7m-none-eabi async_embassy
# A breaker saved to no-init RAM survives SCB::sys_reset (QEMU resets the core and keeps RAM;
# no -no-reboot in the runner), restored at boot; a cold boot's garbage starts it Closed.
run_fw thumbv7m-none-eabi reset
echo "Cortex-M3 runs took $((SECONDS - start)) s (builds included)"

say "scenarios, the storm, async on embassy: microbit (Cortex-M0, critical-section)"
start=$SECONDS
run_fw thumbv6m-none-eabi scenarios
run_fw thumbv6m-none-eabi storm
run_fw thumbv6m-none-eabi async_embassy
run_fw thumbv6m-none-eabi reset
echo "Cortex-M0 runs took $((SECONDS - start)) s (builds included)"

say "negative control: on mps2-an386 (Cortex-M4) with the default seqlock fallback, the storm must hang"
# The SysTick-timed scenarios run first and must pass (the timer works on this board); then the
# storm, with the breaker in both thread mode and the SysTick handler, must deadlock.
fw cargo build --release --target thumbv7em-none-eabihf --bin scenarios
set +e
fw timeout 20 cargo run -q --release --target thumbv7em-none-eabihf --bin scenarios 2>&1 | tee "$FW_TARGET/negative-control.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 124 ] ||
  ! grep -q "scenario: listeners at run time" "$FW_TARGET/negative-control.log" ||
  ! grep -q "scenario: thread mode and the SysTick handler" "$FW_TARGET/negative-control.log"; then
  echo "expected the timer scenarios to pass and the storm to deadlock (status 124); got status $status"
  exit 1
fi
echo "reproduced: the SysTick handler deadlocked on portable-atomic's seqlock fallback (timeout)"

say "no-panic link check (thumbv7m, release): the panic handler calls an undefined symbol"
if ! fw cargo build --release --target thumbv7m-none-eabi --bin nopanic; then
  echo "the breaker's public operations still contain a panic path; the callers of core::panicking:"
  fw cargo build -q --release --target thumbv7m-none-eabi --bin nopanic --features locate-panics
  "$OBJDUMP" -d --demangle "$FW_TARGET/thumbv7m-none-eabi/release/nopanic" |
    awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 } /bl.*<core::(panicking|slice::index)/ { print fn }' |
    grep -v '^<core::' | sort | uniq -c
  exit 1
fi
echo "linked: no panic path in the breaker's public operations"
fw timeout 120 cargo run -q --release --target thumbv7m-none-eabi --bin nopanic
echo "and it runs"
fw cargo build -q --release --target thumbv6m-none-eabi --bin nopanic
echo "thumbv6m links too"

say "the check itself: one call that can panic must make the link fail"
set +e
out=$(fw cargo build --release --target thumbv7m-none-eabi --bin nopanic --features prove-the-check-fails 2>&1)
status=$?
set -e
if [ "$status" -eq 0 ] || ! grep -q "undefined symbol: atomic_breaker_has_a_panic_path" <<<"$out"; then
  echo "$out" | tail -n 20
  echo "the no-panic check did not catch a panicking call"
  exit 1
fi
echo "the link failed as it should: undefined symbol: atomic_breaker_has_a_panic_path"

say "flash (.text) the breaker adds, opt-level = \"s\", LTO"
# Budgets for the typical use (bytes), per target: the figures of docs/FIRMWARE.md ("Flash size")
# plus a small margin, and never above the 2048-byte target. `size_table` (the same with the
# default listener capacity of 4) has a looser ceiling, to catch regressions only.
BUDGET_V6M=${BREAKER_TEXT_BUDGET_V6M:-1960}
BUDGET_V7M=${BREAKER_TEXT_BUDGET_V7M:-1740}
TABLE_CEILING=${BREAKER_TABLE_TEXT_CEILING:-3072}
# typical: a static breaker (listener capacity 0) guarding one call plus a state check; table: the
# same with the default capacity of 4 and no listener; embassy: typical on EmbassyClock; all:
# every operation; rate: typical in failure-rate mode (not held to the budget: it is opt-in);
# saved: typical plus save and restore through no-init RAM (opt-in too; typical must not grow by it).
printf '%-20s %9s %9s %9s %9s %9s %10s %9s\n' target baseline "+typical" "+table" "+embassy" "+all ops" "+rate mode" "+saved"
over=0
for target in thumbv6m-none-eabi thumbv7m-none-eabi; do
  fw cargo build -q --release --target "$target" --bin size_base --bin size_typical --bin size_table \
    --bin size_embassy --bin size_all --bin size_rate --bin size_saved
  text() { "$SIZE" -A "$FW_TARGET/$target/release/$1" | awk '$1 == ".text" { print $2 }'; }
  base=$(text size_base)
  typical=$(text size_typical)
  table=$(text size_table)
  embassy=$(text size_embassy)
  all=$(text size_all)
  rate=$(text size_rate)
  saved=$(text size_saved)
  printf '%-20s %9s %9s %9s %9s %9s %10s %9s\n' "$target" "$base" "+$((typical - base))" "+$((table - base))" \
    "+$((embassy - base))" "+$((all - base))" "+$((rate - base))" "+$((saved - base))"
  case $target in
    thumbv6m-*) budget=$BUDGET_V6M ;;
    *) budget=$BUDGET_V7M ;;
  esac
  if [ $((typical - base)) -gt "$budget" ]; then
    echo "typical use on $target: +$((typical - base)) B, over its budget of $budget B"
    over=1
  fi
  if [ $((table - base)) -gt "$TABLE_CEILING" ]; then
    echo "typical use with the default listener table on $target: +$((table - base)) B, over $TABLE_CEILING B"
    over=1
  fi
  # EmbassyClock converts ticks to ms without dividing: no 64-bit division routine may be linked.
  # (The control: nopanic, built above, links one through EmbeddedTimeClock's conversion, so
  # the pattern does match those routines.)
  div='uldivmod|udivmoddi4|u64_div_rem'
  embassy_syms=$("$NM" "$FW_TARGET/$target/release/size_embassy")
  if grep -Eq "$div" <<<"$embassy_syms"; then
    echo "EmbassyClock linked a 64-bit division routine on $target"
    exit 1
  fi
  # Typical use links no division routine at all, and no 64-bit multiply routine (Cortex-M0 has
  # neither instruction; `ms_to_duration` and the jitter are written so as to need none).
  typical_syms=$("$NM" "$FW_TARGET/$target/release/size_typical")
  if grep -Eq "$div|__aeabi_uidiv|u32_div_rem|__aeabi_lmul|__muldi3" <<<"$typical_syms"; then
    echo "typical use linked a division or 64-bit multiply routine on $target:"
    grep -E "$div|__aeabi_uidiv|u32_div_rem|__aeabi_lmul|__muldi3" <<<"$typical_syms"
    exit 1
  fi
done
# The symbol list is read whole before grep: `nm | grep -q` under pipefail fails when grep quits at
# the first match and nm dies of SIGPIPE, which made this control fail although the pattern matched.
nopanic_syms=$("$NM" "$FW_TARGET/thumbv7m-none-eabi/release/nopanic")
if ! grep -Eq "$div" <<<"$nopanic_syms"; then
  echo "the 64-bit division pattern matched nothing in nopanic: the check above cannot see a division"
  exit 1
fi
echo "no 64-bit division routine in the EmbassyClock firmware (and the pattern finds nopanic's)"
if [ "$over" -ne 0 ]; then
  echo "the breaker's flash grew past its budget (see above and docs/FIRMWARE.md, \"Flash size\")"
  exit 1
fi

say "examples/firmware-sensor: the one-command QEMU example"
for target in thumbv7m-none-eabi thumbv6m-none-eabi; do
  (cd "$ROOT/examples/firmware-sensor" &&
    CARGO_TARGET_DIR="$ROOT/examples/firmware-sensor/target" cargo build -q --release --target "$target" &&
    CARGO_TARGET_DIR="$ROOT/examples/firmware-sensor/target" timeout 120 cargo run -q --release --target "$target" | tail -n 3)
done

say "firmware: all green"
