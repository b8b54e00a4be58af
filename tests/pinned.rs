//! Behaviour pinned so that `cargo mutants` notices a change: configuration limits at their
//! exact boundaries, small getters, the fused guards' termination and size hints, the
//! listener panic count, a rejection's retry time, `StdClock`'s pace, the equality of events,
//! `Interest` unions and the full listener table's error. See TESTING.md.

use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, ConfigError, ManualClock, State, MAX_FAIL_MAX,
    MAX_HALF_OPEN_CALLS, MAX_PERIOD, MAX_SUCCESS_THRESHOLD,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_limit_holds_at_its_exact_boundary() {
    let c = Config::new();
    assert_eq!(
        (MAX_FAIL_MAX, MAX_SUCCESS_THRESHOLD, MAX_HALF_OPEN_CALLS),
        (127, 127, 31)
    );
    for (n, ok) in [(0, false), (1, true), (127, true), (128, false)] {
        assert_eq!(c.fail_max(n).validate().is_ok(), ok, "fail_max {n}");
        assert_eq!(
            c.success_threshold(n).validate().is_ok(),
            ok,
            "success_threshold {n}"
        );
    }
    for (n, ok) in [(0, false), (1, true), (31, true), (32, false)] {
        assert_eq!(
            c.half_open_max_calls(n).validate().is_ok(),
            ok,
            "half_open_max_calls {n}"
        );
    }
    let max = MAX_PERIOD;
    let over = max + ms(1);
    assert_eq!(c.reset_timeout(max).validate(), Ok(()));
    assert_eq!(
        c.reset_timeout(over).validate(),
        Err(ConfigError::ResetTimeout(over))
    );
    assert_eq!(c.trial_lease(ms(1)).validate(), Ok(()));
    // Rounded up to 1 ms, so valid.
    assert_eq!(c.trial_lease(Duration::from_nanos(1)).validate(), Ok(()));
    assert_eq!(c.trial_lease(max).validate(), Ok(()));
    assert_eq!(
        c.trial_lease(over).validate(),
        Err(ConfigError::TrialLease(over))
    );
    // The backoff cap: at least reset_timeout, at most MAX_PERIOD.
    let c = c.reset_timeout(ms(1_000));
    assert_eq!(
        c.backoff(Backoff::exponential(ms(1_000))).validate(),
        Ok(())
    );
    assert_eq!(
        c.backoff(Backoff::exponential(ms(999))).validate(),
        Err(ConfigError::BackoffMax(ms(999)))
    );
    assert_eq!(c.backoff(Backoff::exponential(max)).validate(), Ok(()));
    assert_eq!(
        c.backoff(Backoff::exponential(over)).validate(),
        Err(ConfigError::BackoffMax(over))
    );
    let b = Backoff::exponential(ms(5_000));
    assert_eq!(c.backoff(b.jitter_percent(100)).validate(), Ok(()));
    assert_eq!(
        c.backoff(b.jitter_percent(101)).validate(),
        Err(ConfigError::Jitter(101))
    );
    // The run-time setters hold the same limits.
    let clock = ManualClock::new();
    let br: CircuitBreaker<&ManualClock> = CircuitBreaker::new("limits", c.backoff(b), &clock);
    assert_eq!(br.set_reset_timeout(ms(5_000)), Ok(()));
    assert_eq!(
        br.set_reset_timeout(ms(5_001)),
        Err(ConfigError::ResetTimeout(ms(5_001)))
    );
    assert_eq!(br.set_fail_max(127), Ok(()));
    assert_eq!(br.set_fail_max(128), Err(ConfigError::FailMax(128)));
    assert_eq!(br.set_success_threshold(1), Ok(()));
    assert_eq!(
        br.set_success_threshold(0),
        Err(ConfigError::SuccessThreshold(0))
    );
    assert_eq!(br.trip_for(max), Ok(()));
    assert_eq!(br.trip_for(over), Err(ConfigError::TripPeriod(over)));
}

#[test]
fn getters_return_what_was_configured() {
    let b = Backoff::exponential(ms(7_000)).jitter_percent(35);
    assert_eq!((b.max(), b.jitter()), (ms(7_000), 35));
    let c = Config::new()
        .fail_max(9)
        .success_threshold(4)
        .half_open_max_calls(6)
        .reset_timeout(ms(300))
        .trial_lease(ms(40))
        .backoff(b);
    assert_eq!(c.get_fail_max(), 9);
    assert_eq!(c.get_success_threshold(), 4);
    assert_eq!(c.get_half_open_max_calls(), 6);
    assert_eq!(c.get_reset_timeout(), ms(300));
    assert_eq!(c.get_trial_lease(), ms(40));
    assert_eq!(c.get_backoff(), Some(b));
    let clock = ManualClock::new();
    let br: CircuitBreaker<&ManualClock> = CircuitBreaker::new("getters", c, &clock);
    assert_eq!(br.half_open_max_calls(), 6);
    assert_eq!(br.snapshot().half_open_max_calls, 6);
    assert_eq!(br.fail_max(), 9);
    assert_eq!(br.success_threshold(), 4);
    assert_eq!(br.reset_timeout(), ms(300));
    assert_eq!(br.name(), "getters");
}

#[test]
fn is_open_is_true_exactly_where_calls_are_rejected() {
    for (s, open) in [
        (State::Closed, false),
        (State::Open, true),
        (State::HalfOpen, false),
        (State::ForcedOpen, true),
        (State::Disabled, false),
    ] {
        assert_eq!(s.is_open(), open, "{s}");
    }
}

#[cfg(feature = "std")]
#[test]
fn each_panicking_listener_call_counts_once() {
    use atomic_breaker::{Event, EventKind};
    fn boom(e: &Event) {
        if e.name == "panics" && matches!(e.kind, EventKind::BeforeCall) {
            std::panic::resume_unwind(Box::new("listener"));
        }
    }
    fn quiet(_: &Event) {}
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new("panics", Config::new(), &clock)
        .with_listener(boom)
        .with_listener(quiet)
        .with_listener(boom);
    assert_eq!(b.listener_panics(), 0);
    assert_eq!(b.call(|| Ok::<_, ()>(1)).unwrap(), 1);
    assert_eq!(b.listener_panics(), 2);
    assert!(b.open());
    assert_eq!(b.listener_panics(), 2, "a state change panics nobody");
}

#[cfg(feature = "stream")]
mod fused {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use atomic_breaker::{CircuitBreaker, Config, ManualClock};
    use futures::future::FusedFuture;
    use futures::stream::{self, FusedStream, Stream};

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn guarded_futures_terminate_exactly_when_resolved() {
        let clock = ManualClock::new();
        let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new("fused", Config::new(), &clock);
        let mut f = pin!(b.call_async(|| std::future::ready(Ok::<u32, ()>(1))));
        assert!(!f.is_terminated());
        assert_eq!(poll(f.as_mut()), Poll::Ready(Ok(1)));
        assert!(f.is_terminated());
        let mut g = pin!(b.guard(std::future::ready(Ok::<u32, ()>(2))));
        assert!(!g.is_terminated());
        assert_eq!(poll(g.as_mut()), Poll::Ready(Ok(2)));
        assert!(g.is_terminated());
    }

    #[test]
    fn guarded_streams_terminate_and_hint_sizes() {
        let clock = ManualClock::new();
        let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new("fused-s", Config::new(), &clock);
        let mut cx = Context::from_waker(Waker::noop());
        let items = stream::iter([Ok::<u32, ()>(1), Ok(2), Ok(3)]);
        let mut s = pin!(b.guard_stream(items));
        // At least the inner items; no upper bound (rejections come on top).
        assert_eq!(s.size_hint(), (3, None));
        assert!(!s.is_terminated());
        for want in 1..=3 {
            assert!(matches!(s.as_mut().poll_next(&mut cx), Poll::Ready(Some(Ok(v))) if v == want));
        }
        assert_eq!(s.size_hint(), (0, None));
        assert!(matches!(s.as_mut().poll_next(&mut cx), Poll::Ready(None)));
        assert!(s.is_terminated());
        assert_eq!(s.size_hint(), (0, Some(0)));

        let items = stream::iter([Ok::<u32, ()>(1), Ok(2)]);
        let mut run = pin!(b.guard_stream_run(items));
        // Idle: up to the inner upper bound, and at least room for a rejection.
        assert_eq!(run.size_hint(), (0, Some(2)));
        assert!(!run.is_terminated());
        assert!(matches!(
            run.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(Ok(1)))
        ));
        assert_eq!(run.size_hint(), (0, Some(1)));
        assert!(matches!(
            run.as_mut().poll_next(&mut cx),
            Poll::Ready(Some(Ok(2)))
        ));
        assert!(matches!(run.as_mut().poll_next(&mut cx), Poll::Ready(None)));
        assert!(run.is_terminated());
        assert_eq!(run.size_hint(), (0, Some(0)));
        let empty = stream::iter(Vec::<Result<u32, ()>>::new());
        let run = pin!(b.guard_stream_run(empty));
        assert_eq!(run.size_hint(), (0, Some(1)));
    }
}

/// Listeners that return normally count no panic (with or without `std`).
#[test]
fn listeners_that_return_count_no_panic() {
    fn quiet(_: &atomic_breaker::Event) {}
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("no-panics", Config::new().fail_max(1), &clock)
            .with_listener(quiet)
            .with_listener(quiet);
    assert_eq!(b.call(|| Ok::<_, ()>(1)).unwrap(), 1);
    let _ = b.call(|| Err::<(), _>(()));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.listener_panics(), 0);
}

/// The iterator guards' size hints: at least the inner items and no upper bound (rejections come
/// on top) while live, exactly zero once ended; a run is bounded by the inner upper bound, and
/// while idle leaves room for one rejection.
#[test]
fn guarded_iterators_hint_sizes() {
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new("iter-hints", Config::new(), &clock);
    let mut it = b.guard_iter([Ok::<u32, ()>(1), Ok(2), Ok(3)]);
    assert_eq!(it.size_hint(), (3, None));
    assert_eq!(it.next().map(Result::ok), Some(Some(1)));
    assert_eq!(it.size_hint(), (2, None));
    assert_eq!(it.by_ref().count(), 2);
    assert_eq!(it.size_hint(), (0, Some(0)));
    let mut run = b.guard_iter_run([Ok::<u32, ()>(1), Ok(2)]);
    assert_eq!(run.size_hint(), (0, Some(2)));
    assert_eq!(run.next().map(Result::ok), Some(Some(1)));
    assert_eq!(run.size_hint(), (0, Some(1)));
    assert_eq!(run.by_ref().count(), 1);
    assert_eq!(run.size_hint(), (0, Some(0)));
    let empty = b.guard_iter_run(Vec::<Result<u32, ()>>::new());
    assert_eq!(empty.size_hint(), (0, Some(1)));
}

/// A failure-rate configuration reads back as given.
#[test]
fn failure_rate_getters_return_what_was_configured() {
    let r = atomic_breaker::FailureRate::new(35, 12).minimum_calls(6);
    assert_eq!(
        (r.threshold_percent(), r.window(), r.get_minimum_calls()),
        (35, 12, 6)
    );
    assert_eq!(Config::new().failure_rate(r).get_failure_rate(), Some(r));
}

/// A rejection says how long until a retry may be admitted (the rest of the open period); a
/// call that ran and failed carries no such time.
#[test]
fn errors_tell_the_time_to_retry_only_for_rejections() {
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "retry",
        Config::new().fail_max(1).reset_timeout(ms(30_000)),
        &clock,
    );
    let failed = b.call(|| Err::<(), _>("down")).unwrap_err();
    assert!(failed.tripped());
    assert_eq!(failed.retry_after(), None);
    clock.advance(ms(10_000));
    let rejected = b.call(|| Ok::<_, &str>(())).unwrap_err();
    assert!(rejected.is_rejected());
    assert_eq!(rejected.retry_after(), Some(ms(20_000)));
}

/// `StdClock` (the coarse clock on Linux) keeps pace with real time: it never goes back, never
/// runs ahead of `Instant` and never lags it by more than a kernel tick (at most 10 ms; 20 ms
/// allowed). Polled until it has moved 30 ms, bounded by 10 s. Each bound compares with an
/// `Instant` read on the safe side of the `StdClock` reading, so a preempted thread cannot
/// fail it.
#[cfg(feature = "std")]
#[test]
fn std_clock_keeps_pace_with_real_time() {
    use atomic_breaker::{Clock, StdClock};
    use std::time::Instant;
    let ms_since = |t: Instant| u64::try_from(t.elapsed().as_millis()).unwrap();
    let before = Instant::now();
    let start = StdClock.now_ms();
    let after = Instant::now();
    let mut last = start;
    while last < start + 30 {
        assert!(
            ms_since(before) < 10_000,
            "StdClock did not advance 30 ms in 10 s"
        );
        std::thread::yield_now();
        let at_least = ms_since(after);
        let now = StdClock.now_ms();
        let at_most = ms_since(before);
        assert!(now >= last, "StdClock went back from {last} to {now}");
        let moved = now - start;
        assert!(
            moved <= at_most + 11,
            "StdClock ran ahead: {moved} ms in {at_most} ms of real time"
        );
        assert!(
            moved + 20 >= at_least,
            "StdClock lags: {moved} ms in {at_least} ms of real time"
        );
        last = now;
    }
}

/// Events are equal only when every field is: a `StateChange`, `Rejected` or `Failure` that
/// differs in one field alone is a different event.
#[test]
fn events_differing_in_one_field_are_not_equal() {
    use atomic_breaker::EventKind;
    let change = |from, to, failures, retry_after| EventKind::StateChange {
        from,
        to,
        failures,
        retry_after,
    };
    let base = change(State::Closed, State::Open, 3, Some(ms(500)));
    assert_eq!(base, change(State::Closed, State::Open, 3, Some(ms(500))));
    for other in [
        change(State::HalfOpen, State::Open, 3, Some(ms(500))),
        change(State::Closed, State::ForcedOpen, 3, Some(ms(500))),
        change(State::Closed, State::Open, 2, Some(ms(500))),
        change(State::Closed, State::Open, 3, Some(ms(501))),
        change(State::Closed, State::Open, 3, None),
    ] {
        assert_ne!(base, other);
    }
    let rejected = |state, retry_after| EventKind::Rejected { state, retry_after };
    let base = rejected(State::Open, Some(ms(500)));
    assert_eq!(base, rejected(State::Open, Some(ms(500))));
    assert_ne!(base, rejected(State::HalfOpen, Some(ms(500))));
    assert_ne!(base, rejected(State::Open, Some(ms(499))));
    let failure = |failures| EventKind::Failure {
        failures,
        error: None,
    };
    assert_eq!(failure(2), failure(2));
    assert_ne!(failure(2), failure(3));
}

/// `|` is a set union: combining a set with classes it already holds changes nothing.
#[test]
fn interest_union_of_overlapping_sets() {
    use atomic_breaker::Interest;
    assert_eq!(Interest::ALL | Interest::CALLS, Interest::ALL);
    assert_eq!(Interest::CALLS.union(Interest::CALLS), Interest::CALLS);
    assert_eq!(
        Interest::STATE_CHANGES | Interest::REJECTIONS | Interest::CALLS,
        Interest::ALL
    );
}

/// A full listener table says so, with its capacity.
#[test]
fn a_full_listener_table_says_its_capacity() {
    fn quiet(_: &atomic_breaker::Event) {}
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock, 1> =
        CircuitBreaker::new("full", Config::new(), &clock).with_listener(quiet);
    let full = b.add_listener(quiet).unwrap_err();
    assert_eq!(full.capacity, 1);
    assert_eq!(full.to_string(), "listener table is full (capacity 1)");
}

/// Rate mode: a trip decided on a window is dropped when the breaker left that Closed period
/// before the trip's CAS. Here a listener of the tripping report's `Failure` event (which runs
/// between the window's CAS and the trip's) calls `close()`, which starts a new Closed period:
/// the trip must not open the breaker in the new one.
static CLOSING_CLOCK: ManualClock = ManualClock::new();
static CLOSING_RATE: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "closing-rate",
    Config::new().failure_rate(atomic_breaker::FailureRate::new(50, 4).minimum_calls(1)),
    &CLOSING_CLOCK,
);

#[test]
fn a_rate_trip_lands_only_in_the_closed_period_it_was_decided_in() {
    use atomic_breaker::{Event, EventKind};
    fn close_on_failure(e: &Event) {
        if matches!(e.kind, EventKind::Failure { .. }) {
            CLOSING_RATE.close();
        }
    }
    CLOSING_RATE.add_listener(close_on_failure).unwrap();
    let err = CLOSING_RATE.call(|| Err::<(), _>("down")).unwrap_err();
    assert!(!err.tripped());
    assert_eq!(CLOSING_RATE.state(), State::Closed);
    assert_eq!(CLOSING_RATE.failure_window(), Some((0, 0)));
}

/// Rate mode: leaving a Closed period empties the window, so outcomes of one Closed period
/// never count in a later one, even when the 16-bit generation comes round to the same value
/// (here after 32,768 `open()` / `close()` pairs, two generations each, none of which writes
/// the window).
#[test]
fn a_rate_window_is_emptied_when_its_closed_period_ends() {
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "wrapping-rate",
        Config::new().failure_rate(atomic_breaker::FailureRate::new(50, 4).minimum_calls(2)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.failure_window(), Some((1, 1)));
    for _ in 0..32_768 {
        assert!(b.open());
        assert!(b.close());
    }
    // Generation 0 again: the old failure must not be in this period's window.
    let err = b.call(|| Err::<(), _>("down")).unwrap_err();
    assert!(!err.tripped());
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.failure_window(), Some((1, 1)));
}

/// The backoff level survives the manual moves that keep it: `open()` from HalfOpen (as a
/// failed trial would) and `trip_for` from any state but Closed, so the periods that follow
/// stay backed off.
#[test]
fn manual_opens_keep_the_backoff_level() {
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "backoff-level",
        Config::new()
            .fail_max(1)
            .reset_timeout(ms(1_000))
            .backoff(Backoff::exponential(ms(60_000))),
        &clock,
    );
    let fail = || b.call(|| Err::<(), _>("down"));
    let _ = fail();
    clock.advance(ms(1_000));
    let _ = fail(); // the trial fails: level 1, 2 s
    assert_eq!(b.snapshot().backoff_level, 1);
    assert_eq!(b.retry_after(), Some(ms(2_000)));
    // HalfOpen by hand, then open() by hand: still level 1, 2 s.
    assert!(b.half_open());
    assert!(b.open());
    assert_eq!(b.snapshot().backoff_level, 1);
    assert_eq!(b.retry_after(), Some(ms(2_000)));
    // trip_for from Open keeps level 1; the failed trial after it moves to level 2, 4 s.
    b.trip_for(ms(500)).unwrap();
    assert_eq!(b.snapshot().backoff_level, 1);
    clock.advance(ms(500));
    let _ = fail();
    assert_eq!(b.snapshot().backoff_level, 2);
    assert_eq!(b.retry_after(), Some(ms(4_000)));
}

/// `half_open()` on a breaker already HalfOpen changes nothing: the trial successes so far
/// still count towards closing it.
#[test]
fn half_open_on_a_half_open_breaker_keeps_its_successes() {
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "half-open-again",
        Config::new()
            .fail_max(1)
            .success_threshold(2)
            .reset_timeout(ms(1_000)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance(ms(1_000));
    b.call(|| Ok::<_, &str>(())).unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.snapshot().success_counter, 1);
    assert!(!b.half_open());
    assert_eq!(b.snapshot().success_counter, 1);
    b.call(|| Ok::<_, &str>(())).unwrap();
    assert_eq!(b.state(), State::Closed);
}
