//! Failure-rate mode (issue 13): scenario tests on `ManualClock`. Nothing here sleeps.
//!
//! Events are recorded into one process-wide log; every test gives its breaker its own name
//! and reads back only its own events.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use atomic_breaker::{
    CircuitBreaker, Config, ConfigError, Error, Event, EventKind, EventRecord, FailureRate,
    ManualClock, Outcome, Recorded, State, MAX_WINDOW,
};

// `Event` borrows the caller's error: the log keeps `EventRecord`s (`'static`, no error).
static LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());

fn record(e: &Event) {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(EventRecord::new(e));
}

fn state_changes(name: &str) -> Vec<(State, State)> {
    let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let mut mine = Vec::new();
    log.retain(|r| {
        if r.name() != name {
            return true;
        }
        if let EventKind::StateChange { from, to, .. } = r.event().kind {
            mine.push((from, to));
        }
        false
    });
    mine
}

fn rate(threshold: u32, window: u32, minimum: u32) -> Config {
    Config::new()
        .reset_timeout(Duration::from_secs(10))
        .failure_rate(FailureRate::new(threshold, window).minimum_calls(minimum))
}

fn breaker<'c>(
    name: &'static str,
    config: Config,
    clock: &'c ManualClock,
) -> CircuitBreaker<&'c ManualClock> {
    CircuitBreaker::new(name, config, clock).with_listener(record)
}

fn ok(b: &CircuitBreaker<&ManualClock>) -> Result<(), Error<()>> {
    b.call(|| Ok::<(), ()>(()))
}

fn fail(b: &CircuitBreaker<&ManualClock>) -> Result<(), Error<()>> {
    b.call(|| Err::<(), ()>(()))
}

/// istio/api#3766: every other call fails. Consecutive mode never sees two failures in a row;
/// rate mode trips as soon as the minimum number of calls is in the window.
#[test]
fn interleaved_half_failures_trip_rate_mode_and_not_consecutive_mode() {
    let clock = ManualClock::new();
    let consecutive = breaker("interleaved-consecutive", Config::new().fail_max(2), &clock);
    for _ in 0..1_000 {
        assert!(ok(&consecutive).is_ok());
        assert!(matches!(
            fail(&consecutive),
            Err(Error::Failed { tripped: false, .. })
        ));
    }
    assert_eq!(consecutive.state(), State::Closed);
    assert_eq!(state_changes("interleaved-consecutive"), vec![]);

    let b = breaker("interleaved-rate", rate(50, 20, 10), &clock);
    let mut calls = 0;
    let tripped_at = loop {
        calls += 1;
        let r = if calls % 2 == 0 { fail(&b) } else { ok(&b) };
        if let Err(Error::Failed { tripped: true, .. }) = r {
            break calls;
        }
        assert_eq!(b.state(), State::Closed, "call {calls}");
        assert!(calls < 100, "never tripped");
    };
    // Call 10 is the 10th in the window (the minimum), a failure, and 5 of 10 failed: 50%.
    assert_eq!(tripped_at, 10);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.fail_counter(),
        5,
        "while Open: the failures in the tripping window"
    );
    assert_eq!(
        state_changes("interleaved-rate"),
        vec![(State::Closed, State::Open)]
    );
    // Open rejects without running, as in consecutive mode.
    assert!(matches!(
        b.call(|| -> Result<(), ()> { unreachable!() }),
        Err(Error::Rejected(_))
    ));
}

/// Failures below `minimum_calls` never trip, whatever their rate.
#[test]
fn minimum_calls_are_respected() {
    let clock = ManualClock::new();
    let b = breaker("minimum", rate(50, 10, 8), &clock);
    for i in 1..8 {
        assert!(matches!(
            fail(&b),
            Err(Error::Failed { tripped: false, .. })
        ));
        assert_eq!(b.failure_window(), Some((i, i)));
        assert_eq!(b.fail_counter(), i);
    }
    assert_eq!(
        b.state(),
        State::Closed,
        "7 of 7 failed, but 8 calls are needed"
    );
    // The 8th call reaches the minimum: 7 of 8 failed, so even a success trips.
    let permit = b.allow().unwrap();
    assert_eq!(permit.success(), Recorded::Tripped);
    assert_eq!(b.state(), State::Open);

    // Below the threshold at the minimum: no trip.
    let b = breaker("minimum-below", rate(50, 10, 4), &clock);
    for r in [false, true, false, false] {
        let _ = if r { fail(&b) } else { ok(&b) };
    }
    assert_eq!(b.failure_window(), Some((4, 1)));
    assert_eq!(b.state(), State::Closed);
}

/// The window keeps only the last `window` calls: old failures slide out, so a burst that was
/// diluted never trips later, and a new burst is judged on the last calls alone.
#[test]
fn the_window_slides() {
    let clock = ManualClock::new();
    let b = breaker("slides", rate(60, 5, 5), &clock);
    // F F S S S: 2 of 5 (40%) < 60%.
    for r in [true, true, false, false, false] {
        let _ = if r { fail(&b) } else { ok(&b) };
    }
    assert_eq!(b.failure_window(), Some((5, 2)));
    // One more failure: the oldest F slides out, window F S S S F: still 2 of 5.
    assert!(matches!(
        fail(&b),
        Err(Error::Failed { tripped: false, .. })
    ));
    assert_eq!(b.failure_window(), Some((5, 2)));
    // Another: S S S F F (the second old F gone): 2 of 5.
    assert!(matches!(
        fail(&b),
        Err(Error::Failed { tripped: false, .. })
    ));
    assert_eq!(b.failure_window(), Some((5, 2)));
    // A third: S S F F F: 3 of 5 = 60%, trips.
    assert!(matches!(fail(&b), Err(Error::Failed { tripped: true, .. })));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.fail_counter(), 3);
}

/// Half-open follows the same rules as in consecutive mode (`success_threshold` successes
/// close, any failure re-opens), and recovery starts a new, empty window.
#[test]
fn half_open_and_recovery_in_rate_mode() {
    let clock = ManualClock::new();
    let b = breaker(
        "recovery",
        rate(50, 4, 4).success_threshold(2).half_open_max_calls(2),
        &clock,
    );
    for _ in 0..4 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Open);
    let gen_open = b.snapshot().generation;
    clock.advance(Duration::from_secs(10));
    // A failed trial re-opens.
    let t = b.allow().unwrap();
    assert!(t.is_trial());
    assert_eq!(t.failure(), Recorded::Tripped);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.fail_counter(),
        1,
        "a failed trial records 1, as in consecutive mode"
    );
    clock.advance(Duration::from_secs(10));
    // Two trial successes close.
    let t1 = b.allow().unwrap();
    let t2 = b.allow().unwrap();
    assert!(b.allow().is_err(), "half_open_max_calls is 2");
    assert_eq!(b.trial_calls(), 2);
    assert_eq!(t1.success(), Recorded::Counted);
    assert_eq!(b.success_counter(), 1);
    assert_eq!(t2.success(), Recorded::Closed);
    assert_eq!(b.state(), State::Closed);
    assert!(b.snapshot().generation != gen_open);
    // The new Closed period starts with an empty window: the old failures are gone.
    assert_eq!(b.failure_window(), Some((0, 0)));
    assert_eq!(b.fail_counter(), 0);
    for _ in 0..3 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Closed, "3 calls, the minimum is 4");
    assert!(matches!(fail(&b), Err(Error::Failed { tripped: true, .. })));
    assert_eq!(
        state_changes("recovery"),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed),
            (State::Closed, State::Open),
        ]
    );
}

/// A permit admitted before a trip reports into no window: its generation is gone. After the
/// breaker recovers, the stale report is dropped and the new window stays empty.
#[test]
fn outcomes_of_an_old_generation_do_not_count_in_the_new_window() {
    let clock = ManualClock::new();
    let b = breaker("stale", rate(50, 4, 2), &clock);
    let slow = b.allow().unwrap();
    let _ = fail(&b);
    assert!(matches!(fail(&b), Err(Error::Failed { tripped: true, .. })));
    clock.advance(Duration::from_secs(10));
    assert!(ok(&b).is_ok());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(slow.failure(), Recorded::Dropped);
    assert_eq!(b.failure_window(), Some((0, 0)));
    let _ = state_changes("stale");
}

/// Management is the same as in consecutive mode; `close()` of a Closed breaker empties the
/// window (a new generation) and drops reports of calls admitted before it.
#[test]
fn management_in_rate_mode() {
    let clock = ManualClock::new();
    let b = breaker("manage", rate(50, 10, 2), &clock);
    let _ = ok(&b);
    let _ = ok(&b);
    let _ = fail(&b);
    assert_eq!(b.failure_window(), Some((3, 1)));
    let before = b.allow().unwrap();
    assert!(!b.close(), "already Closed: no state change");
    assert_eq!(b.failure_window(), Some((0, 0)));
    assert_eq!(before.failure(), Recorded::Dropped);
    assert_eq!(b.failure_window(), Some((0, 0)));
    assert!(b.open());
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.fail_counter(), 0, "a manual open records no failure");
    assert!(b.close());
    assert!(b.force_open());
    assert!(b.call(|| Ok::<_, ()>(1)).is_err());
    assert!(b.disable());
    for _ in 0..20 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Disabled, "Disabled records nothing");
    assert!(b.close());
    assert_eq!(b.failure_window(), Some((0, 0)));
    b.trip_for(Duration::from_secs(3)).unwrap();
    assert_eq!(b.retry_after(), Some(Duration::from_secs(3)));
    // Ignored outcomes are not calls.
    assert!(b.close());
    let _ = b.call_with(|_| Outcome::Ignored, || Err::<(), ()>(()));
    assert_eq!(b.failure_window(), Some((0, 0)));
    assert_eq!(
        state_changes("manage"),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::Closed),
            (State::Closed, State::ForcedOpen),
            (State::ForcedOpen, State::Disabled),
            (State::Disabled, State::Closed),
            (State::Closed, State::Open),
            (State::Open, State::Closed),
        ]
    );
    // Consecutive mode has no window.
    let c = CircuitBreaker::<_>::new("plain", Config::new(), &clock);
    assert_eq!(c.failure_window(), None);
}

/// Listeners: per-call events still go only to listeners that want them, and a rate-mode
/// breaker keeps taking its slow path after such a listener is removed.
#[test]
fn rate_mode_survives_listener_churn() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new("churn", rate(50, 4, 4), &clock);
    let id = b.add_listener(record).unwrap();
    assert!(b.remove_listener(id));
    for _ in 0..4 {
        let _ = fail(&b);
    }
    assert_eq!(b.state(), State::Open, "every report reached the window");
    let _ = state_changes("churn");
}

/// Configuration errors, at run time; the same errors are compile errors in a `static` (see
/// the doctest on `FailureRate`).
#[test]
fn rate_configuration_is_validated() {
    let clock = ManualClock::new();
    let r = |c: Config| CircuitBreaker::<_>::try_new("bad", c, &clock).map(|_| ());
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(50, 0))),
        Err(ConfigError::Window(0))
    );
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(50, MAX_WINDOW + 1))),
        Err(ConfigError::Window(MAX_WINDOW + 1))
    );
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(0, 10))),
        Err(ConfigError::FailureRateThreshold(0))
    );
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(101, 10))),
        Err(ConfigError::FailureRateThreshold(101))
    );
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(50, 10).minimum_calls(11))),
        Err(ConfigError::MinimumCalls(11))
    );
    assert_eq!(
        r(Config::new().failure_rate(FailureRate::new(50, 10).minimum_calls(0))),
        Err(ConfigError::MinimumCalls(0))
    );
}

/// A `static` rate-mode breaker: `const`-constructed.
static STATIC_CLOCK: ManualClock = ManualClock::new();
static STATIC_RATE: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "static-rate",
    Config::new().failure_rate(FailureRate::new(100, 3)),
    &STATIC_CLOCK,
);

#[test]
fn a_static_rate_breaker_trips() {
    for _ in 0..2 {
        let _ = STATIC_RATE.call(|| Err::<(), ()>(()));
    }
    assert_eq!(STATIC_RATE.state(), State::Closed);
    let _ = STATIC_RATE.call(|| Ok::<(), ()>(()));
    assert_eq!(STATIC_RATE.failure_window(), Some((3, 2)));
    for _ in 0..3 {
        let _ = STATIC_RATE.call(|| Err::<(), ()>(()));
    }
    assert_eq!(STATIC_RATE.state(), State::Open);
}

/// Two threads hammer a rate-mode breaker with a fixed failure share well above the threshold:
/// it trips exactly once (one `Tripped` among all reports), and never with fewer calls than the
/// minimum.
#[test]
fn concurrent_reports_trip_once() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new("concurrent", rate(50, 40, 20), &clock);
    let tripped = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (b, tripped) = (&b, &tripped);
            s.spawn(move || {
                for i in 0..200 {
                    let Ok(permit) = b.allow() else { continue };
                    // A success can trip too: the one that brings the window to its minimum.
                    let r = if (i + t) % 4 == 0 {
                        permit.success()
                    } else {
                        permit.failure()
                    };
                    if r == Recorded::Tripped {
                        tripped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(tripped.into_inner(), 1);
    assert_eq!(b.state(), State::Open);
    assert!(b.fail_counter() >= 10, "at least 50% of at least 20 calls");
}

/// A breaker without listeners (the wrap tests run hundreds of thousands of changes).
fn quiet(config: Config, clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new("quiet", config, clock)
}

/// Issue 20, 1: a dependency that stays down for 16,383 failed half-open trials (32,766
/// generations in which nothing writes the window), then recovers: the window still counts its
/// failures and trips. It used to take every later report for an older generation's, return
/// `Recorded::Dropped`, read `failure_window()` as (0, 0) and never trip again. Also past
/// 16,384 and twice round the 16-bit tag.
#[test]
#[cfg_attr(
    miri,
    ignore = "tens of thousands of state changes: too slow under miri"
)]
fn the_window_counts_after_any_number_of_failed_trials() {
    for trials in [16_383u32, 16_384, 16_385, 32_767, 32_768, 65_536, 65_537] {
        let clock = ManualClock::new();
        let b = quiet(
            Config::new()
                .reset_timeout(Duration::ZERO)
                .failure_rate(FailureRate::new(50, 4).minimum_calls(2)),
            &clock,
        );
        assert!(ok(&b).is_ok());
        assert!(matches!(fail(&b), Err(Error::Failed { tripped: true, .. })));
        for _ in 0..trials {
            let p = b.allow().expect("the open period is 0");
            assert!(p.is_trial());
            assert_eq!(p.failure(), Recorded::Tripped);
        }
        let p = b.allow().unwrap();
        assert_eq!(p.success(), Recorded::Closed, "{trials}");
        // The new Closed period: its reports count, and the window trips again.
        let p = b.allow().unwrap();
        assert_eq!(p.failure(), Recorded::Counted, "{trials}");
        assert_eq!(b.failure_window(), Some((1, 1)), "{trials}");
        let p = b.allow().unwrap();
        assert_eq!(p.failure(), Recorded::Tripped, "{trials}");
        assert_eq!(b.state(), State::Open);
    }
}

/// The same after 32,768 `close()` calls on a Closed rate-mode breaker (each starts a new,
/// empty window in a new generation, and writes nothing to the window), and at the neighbouring
/// counts, twice round the 16-bit tag.
#[test]
#[cfg_attr(
    miri,
    ignore = "tens of thousands of state changes: too slow under miri"
)]
fn the_window_counts_after_any_number_of_closes() {
    for closes in [32_767u32, 32_768, 32_769, 65_535, 65_536, 65_537, 98_304] {
        let clock = ManualClock::new();
        let b = quiet(rate(50, 4, 2), &clock);
        assert!(matches!(
            fail(&b),
            Err(Error::Failed { tripped: false, .. })
        ));
        assert_eq!(b.failure_window(), Some((1, 1)));
        for _ in 0..closes {
            assert!(!b.close(), "close() on a Closed breaker changes no state");
        }
        assert_eq!(b.failure_window(), Some((0, 0)), "a new, empty window");
        let p = b.allow().unwrap();
        assert_eq!(p.failure(), Recorded::Counted, "{closes}");
        assert_eq!(b.failure_window(), Some((1, 1)), "{closes}");
        assert_eq!(b.fail_counter(), 1);
        let p = b.allow().unwrap();
        assert_eq!(p.failure(), Recorded::Tripped, "{closes}");
    }
}

/// Only reports of earlier generations are dropped: a permit admitted before a `close()`
/// reports nothing into the new window, whatever the window's tag.
#[test]
#[cfg_attr(
    miri,
    ignore = "tens of thousands of state changes: too slow under miri"
)]
fn a_report_of_an_earlier_closed_period_is_dropped_after_the_window_restarted() {
    let clock = ManualClock::new();
    let b = quiet(rate(50, 4, 2), &clock);
    let old = b.allow().unwrap();
    for _ in 0..40_000 {
        b.close();
    }
    assert_eq!(b.allow().unwrap().success(), Recorded::Counted);
    assert_eq!(old.failure(), Recorded::Dropped);
    assert_eq!(b.failure_window(), Some((1, 0)));
}
