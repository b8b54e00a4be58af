//! Deterministic tests for the promises of issue 15: stale reports across many generations, the
//! clock near `u64::MAX` and far past a deadline, and the listener protocol. Everything on
//! `ManualClock`; nothing sleeps.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_breaker::{
    CircuitBreaker, Clock, Config, ConfigError, Event, EventKind, EventRecord, ManualClock,
    Recorded, State, MAX_PERIOD,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Breaker<'c> = CircuitBreaker<&'c ManualClock>;

/// `n` state changes by management calls, alternating `open` and `close`, starting with `open`
/// (so an even `n` from Closed ends Closed).
fn churn(b: &Breaker<'_>, n: u32) {
    for i in 0..n {
        let changed = if i % 2 == 0 { b.open() } else { b.close() };
        assert!(changed, "change {i} did nothing");
    }
}

// ------------------------------------------------------------------ 1. generations

/// A success admitted while Closed reports 64 changes later, while a real trial is running in
/// HalfOpen: it must not close the breaker (a 6-bit generation took it for the trial's).
#[test]
fn a_stale_closed_success_cannot_close_a_half_open_breaker() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "stale-success",
        Config::new().fail_max(1).reset_timeout(ms(1_000)),
        &clock,
    );
    let slow = b.allow().unwrap(); // generation 0
    churn(&b, 62); // Closed, generation 62
    let _ = b.call(|| Err::<(), _>("down")); // trips: generation 63
    clock.advance(ms(1_000));
    let trial = b.allow().unwrap(); // HalfOpen: generation 64
    assert!(trial.is_trial());
    assert_eq!(b.snapshot().generation, 64);
    assert_eq!(slow.success(), Recorded::Dropped);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 1);
    assert_eq!(trial.success(), Recorded::Closed);
}

/// A future that stays pending until its result is set.
struct Slow<'a>(&'a Cell<Option<Result<u32, &'static str>>>);

impl Future for Slow<'_> {
    type Output = Result<u32, &'static str>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.take() {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

/// The same through `guard(fut)`: the guarded future admitted while Closed completes 64 changes
/// later, during a trial.
#[test]
fn a_stale_guarded_future_cannot_close_a_half_open_breaker() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "stale-guard",
        Config::new().fail_max(1).reset_timeout(ms(1_000)),
        &clock,
    );
    let result = Cell::new(None);
    let mut guarded = std::pin::pin!(b.guard(Slow(&result)));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(guarded.as_mut().poll(&mut cx).is_pending()); // admitted in generation 0
    churn(&b, 62);
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance(ms(1_000));
    let trial = b.allow().unwrap();
    result.set(Some(Ok(5)));
    assert_eq!(guarded.as_mut().poll(&mut cx), Poll::Ready(Ok(5)));
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "a stale success closed the breaker"
    );
    assert_eq!(b.trial_calls(), 1);
    assert_eq!(trial.failure(), Recorded::Tripped);
}

/// A trial permit from 64 changes ago, dropped unreported, must not free the slot of the trial
/// running now: with `half_open_max_calls(1)` a second trial would run beside it.
#[test]
fn a_stale_trial_dropped_unreported_frees_no_current_slot() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "stale-drop",
        Config::new()
            .fail_max(1)
            .reset_timeout(ms(1_000))
            .half_open_max_calls(1),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance(ms(1_000));
    let old = b.allow().unwrap();
    assert!(old.is_trial());
    for _ in 0..32 {
        assert!(b.open());
        assert!(b.half_open());
    }
    let current = b.allow().unwrap();
    assert!(current.is_trial());
    drop(old);
    assert_eq!(b.trial_calls(), 1);
    let second = b.allow();
    assert!(
        second.is_err(),
        "two trials in flight with half_open_max_calls 1"
    );
    drop(second);
    assert_eq!(current.success(), Recorded::Closed);
}

/// A failure admitted while Closed, reported 64 (and 256) changes later in a Closed breaker,
/// must not count, let alone trip.
#[test]
fn a_stale_closed_failure_does_not_trip() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("stale-fail", Config::new().fail_max(1), &clock);
    for changes in [64, 256] {
        let slow = b.allow().unwrap();
        churn(&b, changes);
        assert_eq!(slow.failure(), Recorded::Dropped, "after {changes} changes");
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.fail_counter(), 0);
    }
}

/// The documented bound, exactly: a report is dropped after 65,534 changes and counted only
/// after 65,536 (the generation is 16 bits).
#[test]
fn a_stale_report_counts_only_after_65536_changes() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("wrap-bound", Config::new().fail_max(1), &clock);
    let a = b.allow().unwrap();
    let c = b.allow().unwrap();
    churn(&b, 65_534);
    assert_eq!(b.snapshot().generation, 65_534);
    assert_eq!(a.failure(), Recorded::Dropped);
    churn(&b, 2);
    assert_eq!(b.snapshot().generation, 0);
    // 2^16 changes: the generation is back where it was, and the report counts.
    assert_eq!(c.failure(), Recorded::Tripped);
}

// ------------------------------------------------------------------ 2. clock edges

/// A 60 s trip near the end of the clock says 60 s, not the few ms left before `u64::MAX`.
#[test]
fn a_trip_near_u64_max_rejects_for_the_whole_period() {
    let clock = ManualClock::starting_at(u64::MAX - 10);
    let b: Breaker<'_> = CircuitBreaker::new(
        "near-max",
        Config::new().fail_max(1).reset_timeout(ms(60_000)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.retry_after(), Some(ms(60_000)));
    let r = b.allow().unwrap_err();
    assert_eq!(r.retry_after, Some(ms(60_000)));
    clock.advance(ms(10)); // now u64::MAX, where the clock saturates
    assert_eq!(b.retry_after(), Some(ms(59_990)));
    assert!(b.allow().is_err());
}

/// At `u64::MAX` (where `ManualClock` and `StdClock` saturate) a trip still rejects: time has
/// stopped, so it rejects for good, always saying the full period is left.
#[test]
fn a_trip_at_u64_max_rejects() {
    let clock = ManualClock::starting_at(u64::MAX);
    let b: Breaker<'_> = CircuitBreaker::new(
        "at-max",
        Config::new().fail_max(1).reset_timeout(ms(1_000)),
        &clock,
    );
    assert!(b.call(|| Err::<(), _>("down")).unwrap_err().tripped());
    for _ in 0..3 {
        let r = b.allow().unwrap_err();
        assert_eq!((r.state, r.retry_after), (State::Open, Some(ms(1_000))));
        clock.advance(ms(500)); // saturates: no time passes
    }
    assert_eq!(b.opened_at(), Some(u64::MAX - 1));
    b.trip_for(ms(5)).unwrap();
    assert_eq!(b.retry_after(), Some(ms(5)));
}

/// `retry_after` never exceeds the longest period, however long the breaker sat in Open; and a
/// deadline is passed at exactly its instant.
#[test]
fn retry_after_never_exceeds_the_maximum_period() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "far-past",
        Config::new().fail_max(1).reset_timeout(ms(60_000)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance(ms(59_999));
    assert_eq!(b.retry_after(), Some(ms(1)));
    clock.advance(ms(1));
    assert_eq!(b.retry_after(), Some(Duration::ZERO));
    // Sampled over years: whatever the reading, never more than MAX_PERIOD.
    let mut step = 7_777_777u64;
    for _ in 0..2_000 {
        clock.advance(ms(step));
        let left = b.retry_after().unwrap();
        assert!(left <= MAX_PERIOD, "{left:?} at {}", clock.now_ms());
        step = step.wrapping_mul(6364136223846793005).wrapping_add(1) % (1 << 31);
    }
}

/// Idle times at which the 29-bit deadline alone reads wrong (the last 24 h of each 2^29 ms
/// cycle after the deadline), and their neighbours, for cycles 1 to 3 and far beyond.
fn idle_times_around_the_2_29_cycles(deadline: u64) -> Vec<u64> {
    const CYCLE: u64 = 1 << 29;
    let max = MAX_PERIOD.as_millis() as u64;
    let mut at = Vec::new();
    for k in 1..=3u64 {
        let wrap = deadline + k * CYCLE;
        at.extend([
            wrap - max - 1,
            wrap - max,
            wrap - max + 1,
            wrap - 1_000,
            wrap - 1,
            wrap,
        ]);
    }
    at.extend([deadline + (1 << 33) - 1, deadline + (1 << 40) - 1, u64::MAX]);
    at
}

/// Issue 20, 2: an Open breaker left without any call reads its passed deadline as passed for
/// any idle time (it used to read as Open again, for up to 24 h, in the last 24 h of each 2^29
/// ms cycle after its deadline, from about 5.2 days on), and admits a trial then.
#[test]
fn an_untouched_open_breaker_reads_its_deadline_right_for_any_idle_time() {
    for at in idle_times_around_the_2_29_cycles(1_000) {
        let clock = ManualClock::new();
        let b: Breaker<'_> = CircuitBreaker::new(
            "untouched",
            Config::new().fail_max(1).reset_timeout(ms(1_000)),
            &clock,
        );
        let _ = b.call(|| Err::<(), _>("down")); // deadline at 1_000
        clock.set(999);
        assert_eq!(b.retry_after(), Some(ms(1)));
        assert!(b.allow().is_err());
        clock.set(at);
        assert_eq!(b.retry_after(), Some(Duration::ZERO), "idle until {at}");
        let permit = b
            .allow()
            .unwrap_or_else(|e| panic!("rejected at {at}: {e:?}"));
        assert!(permit.is_trial());
        assert_eq!(permit.success(), Recorded::Closed);
    }
}

/// The same for a HalfOpen breaker whose every trial slot is claimed and whose trials never
/// report: the lease's passed deadline re-arms the trial whatever the idle time.
#[test]
fn an_untouched_half_open_breaker_re_arms_its_trial_for_any_idle_time() {
    for at in idle_times_around_the_2_29_cycles(1_500) {
        let clock = ManualClock::new();
        let b: Breaker<'_> = CircuitBreaker::new(
            "untouched",
            Config::new()
                .fail_max(1)
                .reset_timeout(ms(1_000))
                .trial_lease(ms(500)),
            &clock,
        );
        let _ = b.call(|| Err::<(), _>("down"));
        clock.set(1_000);
        let stuck = b.allow().unwrap(); // the trial's lease ends at 1_500
        assert!(stuck.is_trial());
        assert!(b.allow().is_err());
        clock.set(at);
        let again = b
            .allow()
            .unwrap_or_else(|e| panic!("rejected at {at}: {e:?}"));
        assert!(again.is_trial());
        drop(stuck);
        assert_eq!(again.success(), Recorded::Closed);
    }
}

/// A pending deadline is never taken for a passed one, however long the breaker was Closed
/// (and so untouched) before it tripped, and near the top of the clock.
#[test]
fn a_fresh_deadline_after_a_long_quiet_period_reads_pending_to_the_millisecond() {
    let period = MAX_PERIOD.as_millis() as u64;
    for start in [0, (1 << 29) - 5, 1 << 33, u64::MAX - (1 << 34) - 3 * period] {
        let clock = ManualClock::starting_at(start);
        let b: Breaker<'_> = CircuitBreaker::new(
            "fresh",
            Config::new().fail_max(1).reset_timeout(MAX_PERIOD),
            &clock,
        );
        let _ = b.call(|| Err::<(), _>("down"));
        clock.advance(ms(1 << 34)); // long quiet: the next trip starts from an old ARMED_AT
        assert!(b.close());
        let _ = b.call(|| Err::<(), _>("down again"));
        let tripped = clock.now_ms();
        clock.set(tripped + period - 1);
        assert_eq!(b.retry_after(), Some(ms(1)), "start {start}");
        assert!(b.allow().is_err(), "start {start}");
        clock.set(tripped + period);
        assert!(b.allow().unwrap().is_trial(), "start {start}");
    }
}

/// The longest period is accepted and anything longer is refused, everywhere a period is set.
#[test]
fn periods_longer_than_the_maximum_are_refused() {
    let c = Config::new();
    let over = MAX_PERIOD + ms(1);
    assert_eq!(MAX_PERIOD, Duration::from_secs(24 * 60 * 60));
    assert_eq!(c.reset_timeout(MAX_PERIOD).validate(), Ok(()));
    assert_eq!(
        c.reset_timeout(over).validate(),
        Err(ConfigError::ResetTimeout(over))
    );
    assert_eq!(c.trial_lease(MAX_PERIOD).validate(), Ok(()));
    assert_eq!(
        c.trial_lease(over).validate(),
        Err(ConfigError::TrialLease(over))
    );
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("max-period", c, &clock);
    assert_eq!(b.trip_for(over), Err(ConfigError::TripPeriod(over)));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.trip_for(MAX_PERIOD), Ok(()));
    assert_eq!(b.retry_after(), Some(MAX_PERIOD));
    assert_eq!(
        b.set_reset_timeout(over),
        Err(ConfigError::ResetTimeout(over))
    );
    // Zero stays valid: the next call after a trip is a trial.
    assert_eq!(c.reset_timeout(Duration::ZERO).validate(), Ok(()));
}

// ------------------------------------------------------------------ 3. listener promises

/// Events per breaker name, in order, from every listener below.
static LOG: Mutex<Vec<(char, EventRecord)>> = Mutex::new(Vec::new());

fn log(tag: char, e: &Event) {
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((tag, EventRecord::new(e)));
}
fn listener_a(e: &Event) {
    log('a', e);
}
fn listener_b(e: &Event) {
    log('b', e);
}

/// The events listener `tag` saw from breaker `name`, removed from the log.
fn seen(name: &str, tag: char) -> Vec<EventKind<'static>> {
    let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let mut mine = Vec::new();
    log.retain(|(t, e)| {
        if e.name() == name && *t == tag {
            mine.push(e.event().kind);
            false
        } else {
            true
        }
    });
    mine
}

/// A listener added while a call is in flight sees neither that call's `BeforeCall` nor its
/// outcome, even though another listener was registered at admission; it still sees the state
/// change the report causes.
#[test]
fn a_listener_added_mid_call_gets_no_outcome_without_its_before_call() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("mid-call", Config::new().fail_max(2), &clock)
        .with_listener(listener_a);
    let first = b.allow().unwrap();
    let second = b.allow().unwrap();
    let id = b.add_listener(listener_b).unwrap();
    assert_eq!(first.success(), Recorded::Counted);
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(second.failure(), Recorded::Tripped);
    assert_eq!(
        seen("mid-call", 'a'),
        [
            EventKind::BeforeCall,
            EventKind::BeforeCall,
            EventKind::Success { failures: 0 },
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 1,
                error: None
            },
            EventKind::Failure {
                failures: 2,
                error: None
            },
            EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 2,
                retry_after: Some(Duration::from_secs(60))
            },
        ]
    );
    assert_eq!(
        seen("mid-call", 'b'),
        [
            EventKind::BeforeCall,
            EventKind::Failure {
                failures: 1,
                error: None
            },
            EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 2,
                retry_after: Some(Duration::from_secs(60))
            },
        ]
    );
    assert!(b.remove_listener(id));
}

/// An in-flight counter built on `BeforeCall` and the outcome events never goes negative, while
/// listeners come and go between admissions and reports.
#[test]
fn an_in_flight_counter_on_before_call_and_outcomes_never_goes_negative() {
    static IN_FLIGHT: AtomicI64 = AtomicI64::new(0);
    static LOWEST: AtomicI64 = AtomicI64::new(0);
    fn count(e: &Event) {
        if e.name != "in-flight" {
            return;
        }
        let d = match e.kind {
            EventKind::BeforeCall => 1,
            EventKind::Success { .. } | EventKind::Failure { .. } | EventKind::Ignored { .. } => -1,
            _ => 0,
        };
        let now = IN_FLIGHT.fetch_add(d, Ordering::SeqCst) + d;
        LOWEST.fetch_min(now, Ordering::SeqCst);
    }
    let clock = ManualClock::new();
    let b: Breaker<'_> =
        CircuitBreaker::new("in-flight", Config::new(), &clock).with_listener(listener_a);
    let mut held = Vec::new();
    let mut id = None;
    for i in 0..200u32 {
        match i % 5 {
            0 | 3 => held.push(b.allow().unwrap()),
            1 => {
                if let Some(id) = id.take() {
                    assert!(b.remove_listener(id));
                } else {
                    id = Some(b.add_listener(count).unwrap());
                }
            }
            _ => {
                if !held.is_empty() {
                    let p = held.remove(i as usize % held.len());
                    let _ = if i % 2 == 0 { p.success() } else { p.ignore() };
                }
            }
        }
    }
    drop(held);
    assert_eq!(LOWEST.load(Ordering::SeqCst), 0);
    seen("in-flight", 'a');
}

/// `trip_for` is a manual move like `open`: it releases `ForcedOpen` (and `Disabled`), as
/// documented on `force_open`.
#[test]
fn trip_for_releases_forced_open_as_documented() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("trip-forced", Config::new(), &clock);
    assert!(b.force_open());
    b.trip_for(ms(100)).unwrap();
    assert_eq!(b.state(), State::Open);
    clock.advance(ms(100));
    assert!(b.allow().unwrap().is_trial());
}

/// A listener that re-enters the breaker and changes its state: the nested change is delivered
/// (to every listener) before the remaining listeners hear of the outer one, as documented.
/// A listener tracking the state should read `state()` rather than trust the order of events.
#[test]
fn a_reentrant_listener_nests_events_as_documented() {
    static B: CircuitBreaker<ManualClock> =
        CircuitBreaker::new("reentrant", Config::new().fail_max(1), ManualClock::new())
            .with_listener(close_on_open)
            .with_listener(listener_b);
    fn close_on_open(e: &Event) {
        if let EventKind::StateChange {
            to: State::Open, ..
        } = e.kind
        {
            B.close();
        }
    }
    let _ = B.call(|| Err::<(), _>("down"));
    assert_eq!(B.state(), State::Closed);
    let changes: Vec<_> = seen("reentrant", 'b')
        .into_iter()
        .filter(|k| matches!(k, EventKind::StateChange { .. }))
        .collect();
    assert_eq!(
        changes,
        [
            EventKind::StateChange {
                from: State::Open,
                to: State::Closed,
                failures: 1,
                retry_after: None
            },
            EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 1,
                retry_after: Some(Duration::from_secs(60))
            },
        ]
    );
}

// ------------------------------------------------------------------ 4. what a PyBreaker user meets

/// `fail_counter()` as the README's table says: the failures that tripped it while Open, 0 in
/// HalfOpen, and 1 after a failed trial (PyBreaker would read 3, 3 and 4).
#[test]
fn fail_counter_differs_from_pybreaker_as_documented() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "fail-counter",
        Config::new().fail_max(3).reset_timeout(ms(1_000)),
        &clock,
    );
    for _ in 0..3 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    assert_eq!((b.state(), b.fail_counter()), (State::Open, 3));
    clock.advance(ms(1_000));
    let trial = b.allow().unwrap();
    assert_eq!((b.state(), b.fail_counter()), (State::HalfOpen, 0));
    assert_eq!(trial.failure(), Recorded::Tripped);
    assert_eq!((b.state(), b.fail_counter()), (State::Open, 1));
    assert!(b.open() || b.state() == State::Open);
    assert!(b.close());
    assert!(b.open());
    assert_eq!(b.fail_counter(), 0); // a manual open
}

/// `?` between `allow` and the report drops the permit unreported: nothing is counted. The
/// pattern the README shows (report, then propagate) counts the failure.
#[test]
fn question_mark_in_a_permit_scope_counts_nothing_and_the_safe_pattern_counts() {
    fn fetch() -> Result<u32, &'static str> {
        Err("timeout")
    }
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("question-mark", Config::new(), &clock);
    let careless = || -> Result<u32, &'static str> {
        let permit = b.allow().map_err(|_| "rejected")?;
        let v = fetch()?;
        permit.success();
        Ok(v)
    };
    assert!(careless().is_err());
    assert_eq!(b.fail_counter(), 0);
    let careful = || -> Result<u32, &'static str> {
        let permit = b.allow().map_err(|_| "rejected")?;
        let result = fetch();
        permit.report(atomic_breaker::Outcome::of(&result));
        result
    };
    assert!(careful().is_err());
    assert_eq!(b.fail_counter(), 1);
}
