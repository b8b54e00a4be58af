//! Fuzz target: the `SavedState` decoder on arbitrary bytes. It must never panic; whatever it
//! accepts must encode back to the same bytes, and restore into a breaker (its clock starting
//! anywhere, with or without an elapsed time, both taken from the bytes after the first 16)
//! whose state, counters and time left agree with what was saved, and that saves back to a
//! state that decodes.
//!
//! `cargo +nightly fuzz run saved_state` from this directory; `.ci/steps/30-fuzz.sh` runs it in
//! CI, from the seeds in `corpus/saved_state` (which `tests/saved.rs` also decodes).
#![no_main]

use core::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, ManualClock, SavedState, State, MAX_PERIOD};
use libfuzzer_sys::fuzz_target;

fn u64_at(rest: &[u8], at: usize) -> Option<u64> {
    rest.get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

fuzz_target!(|data: &[u8]| {
    // The whole input: anything but exactly 16 well-formed bytes is an error, never a panic.
    if let Ok(s) = SavedState::from_bytes(data) {
        assert_eq!(s.to_bytes().as_slice(), data);
    }
    let Some((enc, rest)) = data.split_first_chunk::<{ SavedState::LEN }>() else {
        return;
    };
    let Ok(s) = SavedState::from_bytes(enc) else {
        return;
    };
    assert_eq!(&s.to_bytes(), enc);
    assert!(s.count() <= 127 && s.backoff_level() <= 7 && s.remaining() <= MAX_PERIOD);

    // Anywhere, but 24 h short of `u64::MAX`: `ManualClock` saturates there, and the target
    // advances it past the time left.
    let start = u64_at(rest, 0).unwrap_or(0).min(u64::MAX - 86_400_000);
    let elapsed = u64_at(rest, 8).map(|ms| Duration::from_millis(ms % (2 * 86_400_000)));
    let knobs = rest.get(16).copied().unwrap_or(0);
    let fail_max = u32::from(knobs % 127) + 1;
    let threshold = u32::from(knobs / 2 % 127) + 1;
    let clock = ManualClock::starting_at(start);
    let b: CircuitBreaker<_> = CircuitBreaker::new(
        "fuzz",
        Config::new()
            .fail_max(fail_max)
            .success_threshold(threshold)
            .half_open_max_calls(2),
        &clock,
    );
    assert!(b.restore(s, elapsed), "a fresh breaker is Closed: restore applies");

    let left = s
        .remaining()
        .saturating_sub(elapsed.unwrap_or(Duration::ZERO));
    let snap = b.snapshot();
    assert_eq!(snap.trial_calls, 0, "no trial survives a restart");
    match s.state() {
        State::Closed => {
            assert_eq!(snap.state, State::Closed);
            assert_eq!(snap.fail_counter, s.count().min(fail_max - 1));
        }
        State::Open => {
            assert_eq!(snap.state, State::Open);
            assert_eq!(snap.fail_counter, s.count());
            assert_eq!(u32::from(snap.backoff_level), s.backoff_level());
            assert_eq!(snap.retry_after, Some(left));
        }
        State::HalfOpen if !left.is_zero() => {
            assert_eq!(snap.state, State::Open);
            assert_eq!(snap.retry_after, Some(left));
        }
        State::HalfOpen => {
            assert_eq!(snap.state, State::HalfOpen);
            assert_eq!(snap.success_counter, s.count().min(threshold - 1));
        }
        state => assert_eq!(snap.state, state),
    }
    // What it saves back decodes, and once the time left has passed a call runs (or, in the
    // management states, is decided) without trouble.
    let again = b.saved_state();
    assert_eq!(SavedState::from_bytes(&again.to_bytes()), Ok(again));
    clock.advance(left);
    let ran = b.call(|| Ok::<_, ()>(())).is_ok();
    assert_eq!(ran, s.state() != State::ForcedOpen);
});
