//! User code that panics inside the breaker: the clock (inside the CAS helper's step), the
//! classifier of `call_with`. A panic must leave every count and slot as if the operation had
//! not started, or as documented. The map's keys and listeners are in `tests/map.rs`, the
//! tower layer's services, futures and classifiers in `tests/tower.rs`; TESTING.md ("User
//! code that panics") lists every place. Time comes from a `ManualClock` only.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Clock, Config, FailureRate, ManualClock, State};

/// A `ManualClock` whose `n`-th next reading panics (`0`: disarmed).
#[derive(Default)]
struct ArmedClock {
    time: ManualClock,
    panic_at: AtomicUsize,
}

impl ArmedClock {
    /// The next reading panics.
    fn arm(&self) {
        self.panic_at.store(1, Ordering::Relaxed);
    }

    /// Whether the armed reading was taken (and disarms).
    fn fired(&self) -> bool {
        self.panic_at.swap(0, Ordering::Relaxed) == 0
    }
}

impl Clock for ArmedClock {
    fn now_ms(&self) -> u64 {
        let armed = self
            .panic_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if armed == Ok(1) {
            panic!("the clock panicked on demand");
        }
        self.time.now_ms()
    }
}

const OPEN_FOR: Duration = Duration::from_secs(10);
const LEASE: Duration = Duration::from_secs(60);

fn breaker(clock: &ArmedClock, fail_max: u32) -> CircuitBreaker<&ArmedClock> {
    CircuitBreaker::new(
        "db",
        Config::new()
            .fail_max(fail_max)
            .reset_timeout(OPEN_FOR)
            .trial_lease(LEASE),
        clock,
    )
}

fn panics<R>(f: impl FnOnce() -> R) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn a_clock_that_panics_in_allow_while_open_changes_nothing() {
    let clock = ArmedClock::default();
    let b = breaker(&clock, 1);
    let _ = b.call(|| Err::<(), _>("down"));
    let before = b.snapshot();
    clock.arm();
    assert!(panics(|| b.allow().map(|p| p.success())));
    assert!(clock.fired());
    assert_eq!(b.snapshot(), before);
    // After the period: admitted as a trial, which closes it.
    clock.time.advance(OPEN_FOR);
    assert!(b.call(|| Ok::<_, ()>(())).is_ok());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_clock_that_panics_in_a_trial_admission_changes_nothing() {
    let clock = ArmedClock::default();
    let b = breaker(&clock, 1);
    assert!(b.open());
    clock.time.advance(OPEN_FOR);
    let before = b.snapshot();
    // The move to HalfOpen reads the clock (in `open_rejects`, then in the step): either
    // reading panicking happens before the CAS.
    clock.arm();
    assert!(panics(|| b.allow().map(|p| p.success())));
    assert!(clock.fired());
    assert_eq!(b.snapshot(), before);
    assert_eq!(b.trial_calls(), 0);
    let trial = b.allow().unwrap();
    assert!(trial.is_trial());
    trial.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_clock_that_panics_in_a_tripping_report_loses_only_that_report() {
    let clock = ArmedClock::default();
    let b = breaker(&clock, 2);
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.fail_counter(), 1);
    // The trip reads the clock for its deadline, before its CAS: the report is lost, as if it
    // had not started, and nothing else moves.
    clock.arm();
    assert!(panics(|| b.call(|| Err::<(), _>("down"))));
    assert!(clock.fired());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 1);
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_after(), Some(OPEN_FOR));
}

/// Opens `b` and lets its period pass, then admits one trial and fails it with the clock
/// panicking at the re-opening (the only clock reading of that report, before its CAS).
fn fail_a_trial_with_a_panicking_clock(clock: &ArmedClock, b: &CircuitBreaker<&ArmedClock>) {
    assert!(b.open());
    clock.time.advance(OPEN_FOR);
    let trial = b.allow().unwrap();
    assert!(trial.is_trial());
    clock.arm();
    assert!(panics(move || trial.failure()));
    assert!(clock.fired());
}

/// As documented on `Clock`: the permit was consumed by `failure()` before the clock panicked,
/// so nothing gives its slot back; the trial lease (the recovery for a lost permit) re-arms the
/// trial after 60 s.
#[test]
fn a_clock_that_panics_in_a_trials_report_holds_its_slot_until_the_lease() {
    let clock = ArmedClock::default();
    let b = breaker(&clock, 1);
    fail_a_trial_with_a_panicking_clock(&clock, &b);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 1, "the slot is still claimed");
    assert!(b.allow().is_err());
    clock.time.advance(LEASE);
    let trial = b.allow().unwrap();
    trial.success();
    assert_eq!(b.state(), State::Closed);
}

/// Rate mode: the window's CAS counts the failure before the trip reads the clock, so the
/// panicking report stays in the window and the trip waits for the next failure report
/// (pinned as it is; see TESTING.md, "User code that panics").
#[test]
fn a_clock_that_panics_in_a_rate_mode_trip_defers_the_trip_to_the_next_failure() {
    let clock = ArmedClock::default();
    let b = CircuitBreaker::<_>::new(
        "rate",
        Config::new()
            .reset_timeout(OPEN_FOR)
            .failure_rate(FailureRate::new(50, 4).minimum_calls(2)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    clock.arm();
    assert!(panics(|| b.call(|| Err::<(), _>("down"))));
    assert!(clock.fired());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 2, "the window kept the panicking report");
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
}

/// With `std` only: without it a permit cannot tell that its thread is panicking, and a
/// permit dropped unreported counts nothing.
#[cfg(feature = "std")]
#[test]
fn a_panicking_classifier_counts_a_failure_as_a_panicking_call_does() {
    use atomic_breaker::Outcome;
    let clock = ArmedClock::default();
    let b = breaker(&clock, 3);
    assert!(panics(|| b.call(|| -> Result<(), ()> { panic!("call") })));
    assert!(panics(|| b.call_with(
        |_: &Result<(), ()>| -> Outcome { panic!("classifier") },
        || Ok(())
    )));
    // The permit rule: a permit dropped while its thread panics counts a failure.
    assert_eq!(b.fail_counter(), 2);
    // In HalfOpen, such a trial re-opens the breaker.
    assert!(b.half_open());
    assert!(panics(|| b.call_with(
        |_: &Result<(), ()>| -> Outcome { panic!("classifier") },
        || Ok(())
    )));
    assert_eq!(b.state(), State::Open);
}
