//! Scenario tests: one test per PyBreaker behaviour (and per behaviour this crate adds), on
//! `ManualClock`. Nothing here sleeps; time moves only when a test advances the clock.
//!
//! Events are recorded by the `record` listener into one process-wide log. Tests run in
//! parallel, so every test gives its breaker its own name and reads back only the events
//! carrying that name.

#[cfg(feature = "std")]
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Clock, Config, ConfigError, Error, Event, EventKind, EventRecord,
    ListenerTableFull, ManualClock, Outcome, Recorded, Rejected, Snapshot, State, MAX_PERIOD,
};

// ------------------------------------------------------------------ helpers

static LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());

/// The listener every test breaker carries: appends the event to [`LOG`].
fn record(e: &Event) {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(EventRecord::new(e));
}

/// Removes and returns the events of breaker `name`, oldest first.
fn take_events(name: &str) -> Vec<EventKind<'static>> {
    let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let mut mine = Vec::new();
    log.retain(|e| {
        if e.name() == name {
            mine.push(e.event().kind);
            false
        } else {
            true
        }
    });
    mine
}

/// Removes the events of breaker `name` and returns only its state changes.
fn take_state_changes(name: &str) -> Vec<(State, State)> {
    take_events(name)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::StateChange { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect()
}

/// A breaker named `name` on `clock`, recording its events.
fn breaker<'c>(
    name: &'static str,
    config: Config,
    clock: &'c ManualClock,
) -> CircuitBreaker<&'c ManualClock> {
    CircuitBreaker::new(name, config, clock).with_listener(record)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn fail(b: &CircuitBreaker<&ManualClock>) -> Result<(), Error<&'static str>> {
    b.call(|| Err("boom"))
}

fn succeed(b: &CircuitBreaker<&ManualClock>) -> Result<u32, Error<&'static str>> {
    b.call(|| Ok(7))
}

/// Trips a `fail_max(1)` breaker.
fn trip(b: &CircuitBreaker<&ManualClock>) {
    assert!(fail(b).unwrap_err().tripped());
    assert_eq!(b.state(), State::Open);
}

/// A breaker named `name` with `fail_max(1)` and a 1 s open period on top of `config`, tripped,
/// with its open period over: the next call is the first trial.
fn after_trip<'c>(
    name: &'static str,
    config: Config,
    clock: &'c ManualClock,
) -> CircuitBreaker<&'c ManualClock> {
    let b = breaker(name, config.fail_max(1).reset_timeout(secs(1)), clock);
    trip(&b);
    clock.advance(secs(1));
    b
}

/// `Error::Rejected` with this state and retry-after.
fn rejected<E>(
    b: &CircuitBreaker<&ManualClock>,
    state: State,
    retry: Option<Duration>,
) -> Error<E> {
    Error::Rejected(Rejected {
        name: b.name(),
        state,
        retry_after: retry,
    })
}

// ------------------------------------------------------------------ closed state

#[test]
fn success_returns_the_value() {
    let clock = ManualClock::new();
    let b = breaker("success_returns_the_value", Config::new(), &clock);
    assert_eq!(b.call(|| Ok::<_, &str>(vec![1, 2, 3])), Ok(vec![1, 2, 3]));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 0);
}

#[test]
fn failure_counts_and_re_raises_the_callers_error() {
    #[derive(Debug, PartialEq)]
    struct Timeout {
        after_ms: u32,
    }
    let clock = ManualClock::new();
    let b = breaker(
        "failure_counts_and_re_raises_the_callers_error",
        Config::new().fail_max(3),
        &clock,
    );
    let err = b
        .call(|| Err::<(), _>(Timeout { after_ms: 250 }))
        .unwrap_err();
    assert!(!err.is_rejected());
    assert!(!err.tripped());
    assert_eq!(err.inner(), Some(&Timeout { after_ms: 250 }));
    assert_eq!(err.into_inner(), Some(Timeout { after_ms: 250 }));
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(b.state(), State::Closed);
    let err = b
        .call(|| Err::<(), _>(Timeout { after_ms: 9 }))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Failed {
            error: Timeout { after_ms: 9 },
            tripped: false
        }
    );
    assert_eq!(b.fail_counter(), 2);
}

#[test]
fn success_resets_the_failure_count() {
    let clock = ManualClock::new();
    let b = breaker(
        "success_resets_the_failure_count",
        Config::new().fail_max(3),
        &clock,
    );
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    assert_eq!(b.fail_counter(), 2);
    assert_eq!(succeed(&b), Ok(7));
    assert_eq!(b.fail_counter(), 0);
    // Failures must be consecutive: two more do not trip, the third does.
    assert!(!fail(&b).unwrap_err().tripped());
    assert!(!fail(&b).unwrap_err().tripped());
    assert_eq!(b.state(), State::Closed);
    assert!(fail(&b).unwrap_err().tripped());
}

#[test]
fn fail_max_th_failure_trips_and_is_marked() {
    let clock = ManualClock::starting_at(5_000);
    let b = breaker(
        "fail_max_th_failure_trips_and_is_marked",
        Config::new().fail_max(3).reset_timeout(secs(30)),
        &clock,
    );
    assert_eq!(
        fail(&b),
        Err(Error::Failed {
            error: "boom",
            tripped: false
        })
    );
    assert_eq!(
        fail(&b),
        Err(Error::Failed {
            error: "boom",
            tripped: false
        })
    );
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.opened_at(), None);
    let err = fail(&b).unwrap_err();
    assert!(err.tripped());
    assert_eq!(err.into_inner(), Some("boom"));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.fail_counter(), 3);
    assert_eq!(b.opened_at(), Some(5_000));
    assert_eq!(b.retry_after(), Some(secs(30)));
}

#[test]
fn dropping_an_unreported_permit_in_closed_counts_nothing() {
    let clock = ManualClock::new();
    let b = breaker(
        "dropping_an_unreported_permit_in_closed_counts_nothing",
        Config::new().fail_max(2),
        &clock,
    );
    fail(&b).unwrap_err();
    let p = b.allow().unwrap();
    assert!(!p.is_trial());
    drop(p);
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(b.state(), State::Closed);
}

// ------------------------------------------------------------------ open state

#[test]
fn open_breaker_never_runs_the_function() {
    let clock = ManualClock::new();
    let b = breaker(
        "open_breaker_never_runs_the_function",
        Config::new().fail_max(1).reset_timeout(secs(10)),
        &clock,
    );
    trip(&b);
    let runs = AtomicUsize::new(0);
    for _ in 0..20 {
        let r = b.call(|| {
            runs.fetch_add(1, Ordering::Relaxed);
            Ok::<_, &str>(())
        });
        let err = r.unwrap_err();
        assert!(err.is_rejected());
        assert_eq!(err.inner(), None);
        clock.advance(ms(499));
    }
    assert_eq!(clock.now_ms(), 20 * 499);
    assert_eq!(runs.load(Ordering::Relaxed), 0);
    assert!(b.allow().is_err());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn rejection_retry_after_shrinks_as_the_clock_advances() {
    let clock = ManualClock::new();
    let b = breaker(
        "rejection_retry_after_shrinks_as_the_clock_advances",
        Config::new().fail_max(1).reset_timeout(secs(30)),
        &clock,
    );
    trip(&b);
    for (advance, left) in [(0, 30_000), (10_000, 20_000), (19_999, 1)] {
        clock.advance(ms(advance));
        let expected = rejected(&b, State::Open, Some(ms(left)));
        assert_eq!(succeed(&b), Err(expected));
        assert_eq!(b.retry_after(), Some(ms(left)));
        assert_eq!(b.allow().unwrap_err().retry_after, Some(ms(left)));
    }
    clock.advance(ms(1));
    // The period is over; the breaker reads Open (with nothing left to wait) until a caller
    // moves it to HalfOpen.
    assert_eq!(b.retry_after(), Some(Duration::ZERO));
    assert_eq!(succeed(&b), Ok(7));
}

#[test]
fn rejection_fires_a_rejected_event() {
    let clock = ManualClock::new();
    let name = "rejection_fires_a_rejected_event";
    let b = breaker(
        name,
        Config::new().fail_max(1).reset_timeout(secs(5)),
        &clock,
    );
    trip(&b);
    clock.advance(secs(2));
    take_events(name);
    assert!(succeed(&b).unwrap_err().is_rejected());
    assert_eq!(
        take_events(name),
        [EventKind::Rejected {
            state: State::Open,
            retry_after: Some(secs(3))
        }]
    );
}

// ------------------------------------------------------------------ recovery

#[test]
fn after_the_timeout_a_failing_trial_re_opens() {
    let clock = ManualClock::new();
    let name = "after_the_timeout_a_failing_trial_re_opens";
    let b = breaker(
        name,
        Config::new().fail_max(2).reset_timeout(secs(10)),
        &clock,
    );
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    clock.advance(secs(10));
    let runs = AtomicUsize::new(0);
    let err = b
        .call(|| {
            runs.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("still down")
        })
        .unwrap_err();
    assert_eq!(runs.load(Ordering::Relaxed), 1, "the trial ran");
    // The trial's failure re-opened the breaker: it is marked as the one that tripped it.
    assert_eq!(
        err,
        Error::Failed {
            error: "still down",
            tripped: true
        }
    );
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_after(), Some(secs(10)), "a full new period");
    assert_eq!(b.opened_at(), Some(10_000));
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open)
        ]
    );
}

#[test]
fn after_the_timeout_a_succeeding_trial_closes() {
    let clock = ManualClock::new();
    let name = "after_the_timeout_a_succeeding_trial_closes";
    let b = breaker(
        name,
        Config::new().fail_max(2).reset_timeout(secs(10)),
        &clock,
    );
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    clock.advance(ms(9_999));
    assert!(succeed(&b).unwrap_err().is_rejected());
    clock.advance(ms(1));
    assert_eq!(succeed(&b), Ok(7));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(b.opened_at(), None);
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    // Counting starts afresh.
    fail(&b).unwrap_err();
    assert_eq!(b.state(), State::Closed);
}

// ------------------------------------------------------------------ management

#[test]
fn manual_open_half_open_close_fire_their_state_changes_in_order() {
    let clock = ManualClock::new();
    let name = "manual_open_half_open_close_fire_their_state_changes_in_order";
    let b = breaker(name, Config::new().reset_timeout(secs(20)), &clock);
    fail(&b).unwrap_err();
    take_events(name);

    assert!(b.open());
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.fail_counter(),
        0,
        "a manual open has no failures on record"
    );
    assert_eq!(b.retry_after(), Some(secs(20)));
    assert!(succeed(&b).unwrap_err().is_rejected());

    assert!(b.half_open());
    assert_eq!(b.state(), State::HalfOpen);
    let p = b.allow().unwrap();
    assert!(p.is_trial(), "after half_open() the next caller is a trial");
    drop(p);

    assert!(b.close());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    assert!(b.half_open());
    assert!(b.open());
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::HalfOpen),
            (State::HalfOpen, State::Open)
        ]
    );
}

#[test]
fn open_on_an_open_breaker_does_not_extend_it_and_fires_nothing() {
    let clock = ManualClock::new();
    let name = "open_on_an_open_breaker_does_not_extend_it_and_fires_nothing";
    let b = breaker(
        name,
        Config::new().fail_max(1).reset_timeout(secs(30)),
        &clock,
    );
    trip(&b);
    clock.advance(secs(20));
    take_events(name);
    assert!(!b.open());
    assert_eq!(b.retry_after(), Some(secs(10)));
    assert_eq!(b.opened_at(), Some(0));
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(take_events(name), []);
    clock.advance(secs(10));
    assert_eq!(succeed(&b), Ok(7));
}

#[test]
fn close_on_a_closed_breaker_fires_nothing_but_clears_the_count() {
    let clock = ManualClock::new();
    let name = "close_on_a_closed_breaker_fires_nothing_but_clears_the_count";
    let b = breaker(name, Config::new().fail_max(3), &clock);
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    take_events(name);
    // Like PyBreaker's close(), it clears the failure count; no state change, so no event.
    assert!(!b.close());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(take_events(name), []);
    // So the next two failures do not trip (three would be needed).
    fail(&b).unwrap_err();
    assert!(!fail(&b).unwrap_err().tripped());
    assert_eq!(b.state(), State::Closed);
    take_events(name);
    // With nothing to clear it is a plain no-op.
    assert!(!b.close());
    assert!(!b.close());
    assert_eq!(b.fail_counter(), 0);
    // The other management moves are no-ops in their own state too.
    assert!(b.half_open());
    assert!(!b.half_open());
    assert!(b.force_open());
    assert!(!b.force_open());
    assert!(b.disable());
    assert!(!b.disable());
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::HalfOpen),
            (State::HalfOpen, State::ForcedOpen),
            (State::ForcedOpen, State::Disabled)
        ]
    );
}

// ------------------------------------------------------------------ listener order

#[test]
fn before_call_then_success_listener_order() {
    let clock = ManualClock::new();
    let name = "before_call_then_success_listener_order";
    let b = breaker(name, Config::new(), &clock);
    assert_eq!(succeed(&b), Ok(7));
    assert_eq!(
        take_events(name),
        [EventKind::BeforeCall, EventKind::Success { failures: 0 }]
    );
    let p = b.allow().unwrap();
    assert_eq!(take_events(name), [EventKind::BeforeCall]);
    assert_eq!(p.success(), Recorded::Counted);
    assert_eq!(take_events(name), [EventKind::Success { failures: 0 }]);
}

#[test]
fn before_call_then_failure_then_state_change_listener_order() {
    let clock = ManualClock::new();
    let name = "before_call_then_failure_then_state_change_listener_order";
    let b = breaker(
        name,
        Config::new().fail_max(2).reset_timeout(secs(1)),
        &clock,
    );
    fail(&b).unwrap_err();
    assert_eq!(
        take_events(name),
        [
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 1,
                error: None
            }
        ]
    );
    fail(&b).unwrap_err();
    assert_eq!(
        take_events(name),
        [
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 2,
                error: None
            },
            EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 2,
                retry_after: Some(secs(1))
            }
        ]
    );
    // A trial: the move to HalfOpen comes before the call, the close after its success.
    clock.advance(secs(1));
    succeed(&b).unwrap();
    assert_eq!(
        take_events(name),
        [
            EventKind::StateChange {
                from: State::Open,
                to: State::HalfOpen,
                failures: 2,
                retry_after: None
            },
            EventKind::BeforeCall,
            EventKind::Success { failures: 0 },
            EventKind::StateChange {
                from: State::HalfOpen,
                to: State::Closed,
                failures: 0,
                retry_after: None
            }
        ]
    );
}

// ------------------------------------------------------------------ ignored and excluded errors

#[derive(Debug, PartialEq)]
enum ApiError {
    /// The dependency is unwell.
    Unavailable,
    /// The caller's own fault: says nothing about the dependency.
    NotFound,
}

fn classify_ignoring_not_found(r: &Result<u32, ApiError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(ApiError::NotFound) => Outcome::Ignored,
        Err(ApiError::Unavailable) => Outcome::Failure,
    }
}

/// PyBreaker's excluded exceptions: they count as a success there.
fn classify_pybreaker_excluded(r: &Result<u32, ApiError>) -> Outcome {
    match r {
        Ok(_) | Err(ApiError::NotFound) => Outcome::Success,
        Err(ApiError::Unavailable) => Outcome::Failure,
    }
}

#[test]
fn ignored_errors_count_nothing_and_do_not_reset_the_count() {
    let clock = ManualClock::new();
    let name = "ignored_errors_count_nothing_and_do_not_reset_the_count";
    let b = breaker(name, Config::new().fail_max(3), &clock);
    let unavailable = || Err(ApiError::Unavailable);
    let not_found = || Err(ApiError::NotFound);
    b.call_with(classify_ignoring_not_found, unavailable)
        .unwrap_err();
    b.call_with(classify_ignoring_not_found, unavailable)
        .unwrap_err();
    take_events(name);
    for _ in 0..10 {
        // The caller still gets its error back.
        assert_eq!(
            b.call_with(classify_ignoring_not_found, not_found),
            Err(Error::Failed {
                error: ApiError::NotFound,
                tripped: false
            })
        );
    }
    assert_eq!(
        b.fail_counter(),
        2,
        "ignored errors neither count nor reset"
    );
    assert_eq!(
        take_events(name)[..2],
        [EventKind::BeforeCall, EventKind::Ignored { error: None }]
    );
    assert_eq!(b.allow().unwrap().ignore(), Recorded::Counted);
    assert_eq!(b.fail_counter(), 2);
    let err = b
        .call_with(classify_ignoring_not_found, unavailable)
        .unwrap_err();
    assert!(err.tripped());
}

#[test]
fn ignored_error_in_half_open_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(
        "ignored_error_in_half_open_frees_the_trial_slot",
        Config::new().fail_max(1).reset_timeout(secs(1)),
        &clock,
    );
    trip(&b);
    clock.advance(secs(1));
    let r = b.call_with(classify_ignoring_not_found, || Err(ApiError::NotFound));
    assert_eq!(
        r,
        Err(Error::Failed {
            error: ApiError::NotFound,
            tripped: false
        })
    );
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.success_counter(), 0);
    // The slot is free: the next caller is a trial, and its success closes.
    assert_eq!(b.call_with(classify_ignoring_not_found, || Ok(1)), Ok(1));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn excluded_errors_pybreaker_style_count_as_success_and_reset_the_count() {
    let clock = ManualClock::new();
    let name = "excluded_errors_pybreaker_style_count_as_success_and_reset_the_count";
    let b = breaker(name, Config::new().fail_max(3), &clock);
    b.call_with(classify_pybreaker_excluded, || Err(ApiError::Unavailable))
        .unwrap_err();
    b.call_with(classify_pybreaker_excluded, || Err(ApiError::Unavailable))
        .unwrap_err();
    assert_eq!(b.fail_counter(), 2);
    take_events(name);
    assert_eq!(
        b.call_with(classify_pybreaker_excluded, || Err(ApiError::NotFound)),
        Err(Error::Failed {
            error: ApiError::NotFound,
            tripped: false
        })
    );
    assert_eq!(
        b.fail_counter(),
        0,
        "an excluded error resets, as in PyBreaker"
    );
    assert_eq!(
        take_events(name),
        [EventKind::BeforeCall, EventKind::Success { failures: 0 }]
    );
}

// ------------------------------------------------------------------ half-open

#[test]
fn success_threshold_1_closes_on_the_first_trial_success() {
    let clock = ManualClock::new();
    let b = after_trip(
        "success_threshold_1_closes_on_the_first_trial_success",
        Config::new().success_threshold(1),
        &clock,
    );
    let p = b.allow().unwrap();
    assert!(p.is_trial());
    assert_eq!(p.success(), Recorded::Closed);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn success_threshold_3_stays_half_open_after_1_and_2_successes_and_closes_on_3() {
    let clock = ManualClock::new();
    let name = "success_threshold_3_stays_half_open_after_1_and_2_successes_and_closes_on_3";
    let b = after_trip(name, Config::new().success_threshold(3), &clock);
    for n in 1..=2 {
        let p = b.allow().unwrap();
        assert!(p.is_trial());
        assert_eq!(p.success(), Recorded::Counted);
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.success_counter(), n);
    }
    assert_eq!(b.allow().unwrap().success(), Recorded::Closed);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.success_counter(), 0);
    assert_eq!(
        take_state_changes(name),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

#[test]
fn success_threshold_3_failure_after_2_successes_re_opens() {
    let clock = ManualClock::new();
    let b = after_trip(
        "success_threshold_3_failure_after_2_successes_re_opens",
        Config::new().success_threshold(3),
        &clock,
    );
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    assert_eq!(b.success_counter(), 2);
    assert!(fail(&b).unwrap_err().tripped());
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.success_counter(), 0);
    assert_eq!(b.retry_after(), Some(secs(1)));
    // The next recovery needs three fresh successes.
    clock.advance(secs(1));
    succeed(&b).unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.success_counter(), 1);
}

#[test]
fn half_open_max_calls_2_rejects_a_third_concurrent_trial() {
    let clock = ManualClock::new();
    let name = "half_open_max_calls_2_rejects_a_third_concurrent_trial";
    let b = after_trip(
        name,
        Config::new().half_open_max_calls(2).trial_lease(secs(30)),
        &clock,
    );
    let p1 = b.allow().unwrap();
    clock.advance(ms(100));
    let p2 = b.allow().unwrap();
    assert!(p1.is_trial() && p2.is_trial());
    assert_eq!(b.trial_calls(), 2);
    take_events(name);
    let runs = AtomicUsize::new(0);
    let third = b.call(|| {
        runs.fetch_add(1, Ordering::Relaxed);
        Ok::<_, &str>(())
    });
    // Rejected until the newest trial's lease runs out (or a slot frees sooner).
    assert_eq!(third, Err(rejected(&b, State::HalfOpen, Some(secs(30)))));
    assert_eq!(runs.load(Ordering::Relaxed), 0);
    assert_eq!(
        take_events(name),
        [EventKind::Rejected {
            state: State::HalfOpen,
            retry_after: Some(secs(30))
        }]
    );

    // Dropping an unreported permit frees its slot and counts nothing.
    drop(p1);
    assert_eq!(b.trial_calls(), 1);
    assert_eq!(b.success_counter(), 0);
    assert_eq!(b.state(), State::HalfOpen);
    let p3 = b.allow().unwrap();
    assert!(p3.is_trial());
    assert!(b.allow().is_err());

    assert_eq!(p2.success(), Recorded::Closed);
    // p3 was admitted in the half-open generation, which is over.
    assert_eq!(p3.success(), Recorded::Dropped);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn trial_lease_frees_a_slot_whose_permit_is_never_reported() {
    let clock = ManualClock::new();
    let b = breaker(
        "trial_lease_frees_a_slot_whose_permit_is_never_reported",
        Config::new()
            .fail_max(1)
            .reset_timeout(secs(10))
            .trial_lease(secs(5)),
        &clock,
    );
    trip(&b);
    clock.advance(secs(10));
    let stale = b.allow().unwrap();
    assert!(stale.is_trial());
    clock.advance(ms(4_999));
    assert_eq!(
        b.allow().unwrap_err(),
        Rejected {
            name: b.name(),
            state: State::HalfOpen,
            retry_after: Some(ms(1))
        }
    );
    clock.advance(ms(1));
    let fresh = b
        .allow()
        .expect("the lease is over: a new trial is admitted");
    assert!(fresh.is_trial());
    assert_eq!(b.trial_calls(), 1);
    // The stale permit's late report is dropped, even a failure.
    assert_eq!(stale.failure(), Recorded::Dropped);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(fresh.success(), Recorded::Closed);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn results_from_an_earlier_generation_are_dropped() {
    let clock = ManualClock::new();
    let b = breaker(
        "results_from_an_earlier_generation_are_dropped",
        Config::new().fail_max(2).reset_timeout(secs(1)),
        &clock,
    );
    // A slow call admitted while Closed...
    let slow = b.allow().unwrap();
    // ...meanwhile the breaker trips and recovers.
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    clock.advance(secs(1));
    succeed(&b).unwrap();
    assert_eq!(b.state(), State::Closed);
    // The slow call's failure belongs to a closed period that is over.
    assert_eq!(slow.failure(), Recorded::Dropped);
    assert_eq!(b.fail_counter(), 0);

    // Same for a permit taken in Closed and reported while Open: it cannot re-trip or extend.
    let slow = b.allow().unwrap();
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    clock.advance(ms(500));
    assert_eq!(slow.failure(), Recorded::Dropped);
    assert_eq!(b.retry_after(), Some(ms(500)));
}

// ------------------------------------------------------------------ modes

#[test]
fn forced_open_rejects_even_after_a_long_advance_without_retry_after() {
    let clock = ManualClock::new();
    let name = "forced_open_rejects_even_after_a_long_advance_without_retry_after";
    let b = breaker(name, Config::new().reset_timeout(secs(1)), &clock);
    assert!(b.force_open());
    clock.advance(secs(10 * 365 * 24 * 3600));
    let runs = AtomicUsize::new(0);
    let r = b.call(|| {
        runs.fetch_add(1, Ordering::Relaxed);
        Ok::<_, &str>(())
    });
    assert_eq!(r, Err(rejected(&b, State::ForcedOpen, None)));
    assert_eq!(runs.load(Ordering::Relaxed), 0);
    assert_eq!(b.state(), State::ForcedOpen);
    assert_eq!(b.retry_after(), None);
    assert_eq!(
        take_events(name),
        [
            EventKind::StateChange {
                from: State::Closed,
                to: State::ForcedOpen,
                failures: 0,
                retry_after: None
            },
            EventKind::Rejected {
                state: State::ForcedOpen,
                retry_after: None
            }
        ]
    );
    assert!(b.close());
    assert_eq!(succeed(&b), Ok(7));
}

#[test]
fn disabled_admits_everything_and_records_nothing() {
    let clock = ManualClock::new();
    let name = "disabled_admits_everything_and_records_nothing";
    let b = breaker(name, Config::new().fail_max(1), &clock);
    trip(&b);
    assert!(b.disable());
    let runs = AtomicUsize::new(0);
    for _ in 0..10 {
        let r = b.call(|| {
            runs.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("boom")
        });
        assert_eq!(
            r,
            Err(Error::Failed {
                error: "boom",
                tripped: false
            })
        );
    }
    assert_eq!(runs.load(Ordering::Relaxed), 10);
    assert_eq!(b.state(), State::Disabled);
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(b.allow().unwrap().failure(), Recorded::Dropped);
    assert!(b.close());
    assert_eq!(b.fail_counter(), 0);
    assert!(fail(&b).unwrap_err().tripped());
}

#[test]
fn trip_for_opens_for_exactly_the_duration() {
    let clock = ManualClock::starting_at(123);
    let name = "trip_for_opens_for_exactly_the_duration";
    let b = breaker(name, Config::new().reset_timeout(secs(60)), &clock);
    b.trip_for(secs(7)).unwrap();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_after(), Some(secs(7)));
    assert_eq!(take_state_changes(name), [(State::Closed, State::Open)]);
    clock.advance(ms(6_999));
    assert_eq!(
        b.allow().unwrap_err().retry_after,
        Some(ms(1)),
        "rejected at d - 1 ms"
    );
    clock.advance(ms(1));
    let p = b.allow().expect("admitted at exactly d");
    assert!(p.is_trial());
}

#[test]
fn trip_for_on_an_open_breaker_sets_the_new_deadline() {
    let clock = ManualClock::new();
    let name = "trip_for_on_an_open_breaker_sets_the_new_deadline";
    let b = breaker(
        name,
        Config::new().fail_max(1).reset_timeout(secs(60)),
        &clock,
    );
    trip(&b);
    clock.advance(secs(10));
    take_events(name);
    // Shorter than what is left...
    b.trip_for(secs(5)).unwrap();
    assert_eq!(b.retry_after(), Some(secs(5)));
    // ...and longer.
    b.trip_for(secs(90)).unwrap();
    assert_eq!(b.retry_after(), Some(secs(90)));
    assert_eq!(b.state(), State::Open);
    assert_eq!(take_state_changes(name), [], "Open to Open is not a change");
    // Too long for the state word: refused, nothing changes.
    let too_long = MAX_PERIOD + ms(1);
    assert_eq!(b.trip_for(too_long), Err(ConfigError::TripPeriod(too_long)));
    assert_eq!(b.retry_after(), Some(secs(90)));
    clock.advance(secs(90));
    assert_eq!(succeed(&b), Ok(7));
}

#[test]
fn backoff_doubles_on_re_trips_and_resets_on_close() {
    let clock = ManualClock::new();
    let b = breaker(
        "backoff_doubles_on_re_trips_and_resets_on_close",
        Config::new()
            .fail_max(1)
            .reset_timeout(secs(1))
            .backoff(Backoff::exponential(secs(10))),
        &clock,
    );
    trip(&b);
    let mut periods = Vec::new();
    let mut levels = Vec::new();
    for _ in 0..5 {
        let period = b.retry_after().unwrap();
        periods.push(period.as_secs());
        levels.push(b.snapshot().backoff_level);
        clock.advance(period);
        // The trial fails: re-trip with a longer period.
        assert!(fail(&b).unwrap_err().tripped());
    }
    assert_eq!(periods, [1, 2, 4, 8, 10]);
    assert_eq!(levels, [0, 1, 2, 3, 4]);
    clock.advance(b.retry_after().unwrap());
    assert_eq!(succeed(&b), Ok(7));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.snapshot().backoff_level, 0);
    trip(&b);
    assert_eq!(b.retry_after(), Some(secs(1)), "reset on close");
}

// ------------------------------------------------------------------ run-time configuration

#[test]
fn set_fail_max_applies_to_the_running_count() {
    let clock = ManualClock::new();
    let b = breaker(
        "set_fail_max_applies_to_the_running_count",
        Config::new().fail_max(5),
        &clock,
    );
    assert_eq!(b.fail_max(), 5);
    fail(&b).unwrap_err();
    fail(&b).unwrap_err();
    b.set_fail_max(3).unwrap();
    assert_eq!(b.fail_max(), 3);
    assert!(
        fail(&b).unwrap_err().tripped(),
        "the third failure trips now"
    );
    b.close();

    // A count already above the new value trips on the next failure.
    b.set_fail_max(10).unwrap();
    for _ in 0..4 {
        fail(&b).unwrap_err();
    }
    b.set_fail_max(2).unwrap();
    assert_eq!(
        b.state(),
        State::Closed,
        "lowering fail_max alone does not trip"
    );
    assert!(fail(&b).unwrap_err().tripped());

    assert_eq!(b.set_fail_max(0), Err(ConfigError::FailMax(0)));
    assert_eq!(b.set_fail_max(128), Err(ConfigError::FailMax(128)));
    assert_eq!(b.fail_max(), 2, "a refused value changes nothing");
    assert_eq!(b.set_fail_max(127), Ok(()));
}

#[test]
fn set_reset_timeout_applies_from_the_next_trip() {
    let clock = ManualClock::new();
    let b = breaker(
        "set_reset_timeout_applies_from_the_next_trip",
        Config::new().fail_max(1).reset_timeout(secs(60)),
        &clock,
    );
    trip(&b);
    b.set_reset_timeout(secs(10)).unwrap();
    assert_eq!(b.reset_timeout(), secs(10));
    assert_eq!(
        b.retry_after(),
        Some(secs(60)),
        "the running period does not move"
    );
    clock.advance(secs(60));
    assert!(fail(&b).unwrap_err().tripped());
    assert_eq!(b.retry_after(), Some(secs(10)));

    let too_long = MAX_PERIOD + ms(1);
    assert_eq!(
        b.set_reset_timeout(too_long),
        Err(ConfigError::ResetTimeout(too_long))
    );
    assert_eq!(b.reset_timeout(), secs(10));

    // With backoff, the timeout may not exceed the cap.
    let b = breaker(
        "set_reset_timeout_applies_from_the_next_trip/backoff",
        Config::new()
            .reset_timeout(secs(1))
            .backoff(Backoff::exponential(secs(30))),
        &clock,
    );
    assert_eq!(
        b.set_reset_timeout(secs(31)),
        Err(ConfigError::ResetTimeout(secs(31)))
    );
    assert_eq!(b.set_reset_timeout(secs(30)), Ok(()));
}

#[test]
fn set_success_threshold_applies_in_half_open() {
    let clock = ManualClock::new();
    let b = after_trip(
        "set_success_threshold_applies_in_half_open",
        Config::new().success_threshold(5),
        &clock,
    );
    succeed(&b).unwrap();
    succeed(&b).unwrap();
    assert_eq!(b.success_counter(), 2);
    b.set_success_threshold(3).unwrap();
    assert_eq!(b.success_threshold(), 3);
    assert_eq!(b.allow().unwrap().success(), Recorded::Closed);
    assert_eq!(
        b.set_success_threshold(0),
        Err(ConfigError::SuccessThreshold(0))
    );
    assert_eq!(
        b.set_success_threshold(128),
        Err(ConfigError::SuccessThreshold(128))
    );
    assert_eq!(b.success_threshold(), 3);
}

// ------------------------------------------------------------------ listeners

static ORDER: Mutex<Vec<(&'static str, char)>> = Mutex::new(Vec::new());

fn order(e: &Event, tag: char) {
    ORDER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((e.name, tag));
}
fn listener_a(e: &Event) {
    order(e, 'a');
}
fn listener_b(e: &Event) {
    order(e, 'b');
}
fn listener_c(e: &Event) {
    order(e, 'c');
}

fn take_order(name: &str) -> String {
    let mut log = ORDER.lock().unwrap_or_else(PoisonError::into_inner);
    let mine = log
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .collect();
    log.retain(|(n, _)| *n != name);
    mine
}

#[test]
fn listeners_run_in_insertion_order_even_after_slot_reuse() {
    let clock = ManualClock::new();
    let name = "listeners_run_in_insertion_order_even_after_slot_reuse";
    let b: CircuitBreaker<&ManualClock, 3> =
        CircuitBreaker::new(name, Config::new(), &clock).with_listener(listener_a);
    let id_b = b.add_listener(listener_b).unwrap();
    let _id_c = b.add_listener(listener_c).unwrap();
    assert_eq!(b.listener_count(), 3);
    assert_eq!(
        b.add_listener(listener_a),
        Err(ListenerTableFull { capacity: 3 })
    );

    succeed_n(&b);
    // BeforeCall then Success, each to a, b, c in that order.
    assert_eq!(take_order(name), "abcabc");

    assert!(b.remove_listener(id_b));
    assert!(!b.remove_listener(id_b), "already removed");
    assert_eq!(b.listener_count(), 2);
    succeed_n(&b);
    assert_eq!(take_order(name), "acac", "a removed listener is not called");

    // b comes back into its old slot, but runs after c: it was added after c.
    let id_b2 = b.add_listener(listener_b).unwrap();
    assert!(
        !b.remove_listener(id_b),
        "a stale id does not remove the new b"
    );
    succeed_n(&b);
    assert_eq!(take_order(name), "acbacb");
    assert!(b.remove_listener(id_b2));
}

#[test]
fn outcome_events_go_only_to_calls_admitted_while_a_listener_was_registered() {
    let clock = ManualClock::new();
    let name = "outcome_events_go_only_to_calls_admitted_while_a_listener_was_registered";
    let b: CircuitBreaker<&ManualClock, 2> =
        CircuitBreaker::new(name, Config::new().fail_max(1), &clock);

    // Admitted with no listener: a listener added mid-call sees neither start nor outcome...
    let permit = b.allow().unwrap();
    let id = b.add_listener(listener_a).unwrap();
    assert_eq!(permit.success(), Recorded::Counted);
    assert_eq!(take_order(name), "");
    // ...but it does see the state change a report makes.
    let permit = {
        b.remove_listener(id);
        let p = b.allow().unwrap();
        b.add_listener(listener_a).unwrap();
        p
    };
    assert_eq!(permit.failure(), Recorded::Tripped);
    assert_eq!(take_order(name), "a", "the Closed -> Open change only");

    // Admitted while a listener was registered: start and outcome both arrive.
    b.close();
    take_order(name);
    let permit = b.allow().unwrap();
    assert_eq!(take_order(name), "a");
    assert_eq!(permit.success(), Recorded::Counted);
    assert_eq!(take_order(name), "a");

    // A breaker without a listener table (L = 0) works and refuses listeners.
    let bare: CircuitBreaker<&ManualClock, 0> =
        CircuitBreaker::new("bare", Config::new().fail_max(1), &clock);
    assert_eq!(
        bare.add_listener(listener_a),
        Err(ListenerTableFull { capacity: 0 })
    );
    assert_eq!(bare.call(|| Ok::<_, ()>(1)), Ok(1));
    assert!(bare.call(|| Err::<(), _>(())).unwrap_err().tripped());
    assert!(bare.allow().is_err());
}

fn succeed_n<const L: usize>(b: &CircuitBreaker<&ManualClock, L>) {
    assert_eq!(b.call(|| Ok::<_, ()>(1)), Ok(1));
}

#[cfg(feature = "std")]
fn explode(e: &Event) {
    panic!("listener exploded on {:?}", e.kind);
}

/// Needs `std`: listener panics are caught, and a permit knows its thread is panicking.
#[cfg(feature = "std")]
#[test]
fn panicking_listener_does_not_stop_the_trip() {
    let clock = ManualClock::new();
    let name = "panicking_listener_does_not_stop_the_trip";
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        name,
        Config::new().fail_max(1).reset_timeout(secs(5)),
        &clock,
    )
    .with_listener(explode)
    .with_listener(record);
    let err = fail_any(&b).unwrap_err();
    assert_eq!(
        err,
        Error::Failed {
            error: "boom",
            tripped: true
        },
        "the caller gets its own error"
    );
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.retry_after(), Some(secs(5)));
    // BeforeCall, Failure and the state change each made `explode` panic...
    assert_eq!(b.listener_panics(), 3);
    // ...and the listener after it still saw all three.
    assert_eq!(
        take_events(name),
        [
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 1,
                error: None
            },
            EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 1,
                retry_after: Some(secs(5))
            }
        ]
    );
    // The breaker still works.
    clock.advance(secs(5));
    assert_eq!(b.call(|| Ok::<_, &str>(1)), Ok(1));
    assert_eq!(b.state(), State::Closed);
}

#[cfg(feature = "std")]
fn fail_any<const L: usize>(
    b: &CircuitBreaker<&ManualClock, L>,
) -> Result<(), Error<&'static str>> {
    b.call(|| Err("boom"))
}

/// Needs `std`: listener panics are caught, and a permit knows its thread is panicking.
#[cfg(feature = "std")]
#[test]
fn permit_dropped_while_panicking_counts_as_a_failure() {
    let clock = ManualClock::new();
    let name = "permit_dropped_while_panicking_counts_as_a_failure";
    let b = breaker(
        name,
        Config::new().fail_max(2).reset_timeout(secs(1)),
        &clock,
    );
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _permit = b.allow().unwrap();
        panic!("the call blew up");
    }));
    assert!(r.is_err());
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(
        take_events(name),
        [
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 1,
                error: None
            }
        ]
    );

    // Same through call(): the closure panics with the permit alive.
    let r = catch_unwind(AssertUnwindSafe(|| {
        b.call(|| -> Result<(), &str> { panic!("the call blew up") })
    }));
    assert!(r.is_err());
    assert_eq!(
        b.state(),
        State::Open,
        "the second panic tripped the breaker"
    );

    // A trial that panics re-opens.
    clock.advance(secs(1));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let permit = b.allow().unwrap();
        assert!(permit.is_trial());
        panic!("the trial blew up");
    }));
    assert!(r.is_err());
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.trial_calls(), 0);
}

// ------------------------------------------------------------------ monitoring, errors, config

#[test]
fn snapshot_reports_every_field() {
    let clock = ManualClock::starting_at(1_000);
    let name = "snapshot_reports_every_field";
    let b = breaker(
        name,
        Config::new()
            .fail_max(3)
            .reset_timeout(secs(30))
            .success_threshold(2)
            .half_open_max_calls(2),
        &clock,
    );
    let closed = Snapshot {
        name,
        state: State::Closed,
        fail_counter: 0,
        success_counter: 0,
        trial_calls: 0,
        generation: 0,
        backoff_level: 0,
        retry_after: None,
        opened_at: None,
        fail_max: 3,
        success_threshold: 2,
        half_open_max_calls: 2,
        reset_timeout: secs(30),
    };
    assert_eq!(b.snapshot(), closed);
    fail(&b).unwrap_err();
    assert_eq!(
        b.snapshot(),
        Snapshot {
            fail_counter: 1,
            ..closed
        }
    );
    fail(&b).unwrap_err();
    clock.advance(secs(2));
    fail(&b).unwrap_err();
    clock.advance(secs(10));
    let open = Snapshot {
        state: State::Open,
        fail_counter: 3,
        generation: 1,
        retry_after: Some(secs(20)),
        opened_at: Some(3_000),
        ..closed
    };
    assert_eq!(b.snapshot(), open);
    clock.advance(secs(20));
    let p = b.allow().unwrap();
    let half_open = Snapshot {
        state: State::HalfOpen,
        fail_counter: 0,
        trial_calls: 1,
        generation: 2,
        retry_after: None,
        ..open
    };
    assert_eq!(b.snapshot(), half_open);
    assert_eq!(p.success(), Recorded::Counted);
    assert_eq!(
        b.snapshot(),
        Snapshot {
            success_counter: 1,
            trial_calls: 0,
            ..half_open
        }
    );
    // The single getters agree with the snapshot.
    let s = b.snapshot();
    assert_eq!(
        (
            b.state(),
            b.fail_counter(),
            b.success_counter(),
            b.trial_calls(),
            b.opened_at(),
            b.retry_after()
        ),
        (
            s.state,
            s.fail_counter,
            s.success_counter,
            s.trial_calls,
            s.opened_at,
            s.retry_after
        )
    );
    b.set_fail_max(9).unwrap();
    assert_eq!(b.snapshot().fail_max, 9);
    assert_eq!(b.allow().unwrap().success(), Recorded::Closed);
    assert_eq!(
        b.snapshot(),
        Snapshot {
            generation: 3,
            fail_max: 9,
            ..closed
        }
    );
}

#[test]
fn display_of_error_and_rejected() {
    let open = Rejected {
        name: "db",
        state: State::Open,
        retry_after: Some(ms(1_500)),
    };
    assert_eq!(
        open.to_string(),
        "circuit breaker 'db' is open; retry in 1.5s"
    );
    let forced = Rejected {
        name: "db",
        state: State::ForcedOpen,
        retry_after: None,
    };
    assert_eq!(forced.to_string(), "circuit breaker 'db' is forced-open");
    let full = Rejected {
        name: "db",
        state: State::HalfOpen,
        retry_after: Some(secs(60)),
    };
    assert_eq!(
        full.to_string(),
        "circuit breaker 'db' is half-open; retry in 60s"
    );

    let e: Error<&str> = Error::Rejected(open);
    assert_eq!(e.to_string(), open.to_string());
    let e: Error<&str> = Error::from(forced);
    assert_eq!(e.to_string(), "circuit breaker 'db' is forced-open");
    let e: Error<&str> = Error::Failed {
        error: "connection refused",
        tripped: false,
    };
    assert_eq!(e.to_string(), "connection refused");
    let e: Error<&str> = Error::Failed {
        error: "connection refused",
        tripped: true,
    };
    assert_eq!(
        e.to_string(),
        "connection refused (this failure tripped the circuit breaker)"
    );

    // `source()` is the caller's error for an executed failure, nothing for a rejection.
    use std::error::Error as _;
    let io = std::io::Error::other("disk on fire");
    let e = Error::Failed {
        error: io,
        tripped: false,
    };
    assert_eq!(e.source().unwrap().to_string(), "disk on fire");
    let e: Error<std::io::Error> = Error::Rejected(open);
    assert!(e.source().is_none());
    let boxed: Box<dyn std::error::Error> = Box::new(open);
    assert_eq!(boxed.to_string(), open.to_string());

    // The error from a real rejection reads the same.
    let clock = ManualClock::new();
    let b = breaker(
        "display_of_error_and_rejected",
        Config::new().fail_max(1).reset_timeout(secs(30)),
        &clock,
    );
    trip(&b);
    assert_eq!(
        succeed(&b).unwrap_err().to_string(),
        "circuit breaker 'display_of_error_and_rejected' is open; retry in 30s"
    );
}

#[test]
fn try_new_returns_config_error_for_bad_config() {
    let clock = ManualClock::new();
    let try_new = |c: Config| {
        CircuitBreaker::<&ManualClock>::try_new("try_new", c, &clock).map(|b| b.fail_max())
    };
    let c = Config::new();
    assert_eq!(try_new(c), Ok(5));
    assert_eq!(try_new(c.fail_max(0)).unwrap_err(), ConfigError::FailMax(0));
    assert_eq!(
        try_new(c.fail_max(128)).unwrap_err(),
        ConfigError::FailMax(128)
    );
    assert_eq!(
        try_new(c.success_threshold(0)).unwrap_err(),
        ConfigError::SuccessThreshold(0)
    );
    assert_eq!(
        try_new(c.half_open_max_calls(0)).unwrap_err(),
        ConfigError::HalfOpenMaxCalls(0)
    );
    assert_eq!(
        try_new(c.half_open_max_calls(32)).unwrap_err(),
        ConfigError::HalfOpenMaxCalls(32)
    );
    let too_long = MAX_PERIOD + ms(1);
    assert_eq!(
        try_new(c.reset_timeout(too_long)).unwrap_err(),
        ConfigError::ResetTimeout(too_long)
    );
    assert_eq!(
        try_new(c.trial_lease(Duration::ZERO)).unwrap_err(),
        ConfigError::TrialLease(Duration::ZERO)
    );
    assert_eq!(
        try_new(c.backoff(Backoff::exponential(secs(59)))).unwrap_err(),
        ConfigError::BackoffMax(secs(59))
    );
    assert_eq!(
        try_new(c.backoff(Backoff::exponential(secs(60)).jitter_percent(101))).unwrap_err(),
        ConfigError::Jitter(101)
    );
    assert_eq!(
        ConfigError::FailMax(0).to_string(),
        "fail_max must be between 1 and 127 (got 0)"
    );
}
