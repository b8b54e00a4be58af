//! What events carry: the caller's error (lent, never copied), the failure counts, the open
//! period; `EventRecord`; equality of borrowed errors.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, EventRecord, ManualClock, OwnedPermit,
    Recorded, State,
};

/// (breaker name, event without its error, the error's `Debug` rendering if it had one).
type Seen = (&'static str, EventKind<'static>, Option<String>);

static LOG: Mutex<Vec<(EventRecord, Option<String>)>> = Mutex::new(Vec::new());

fn record(e: &Event) {
    let error = e.kind.error().map(|err| format!("{err:?}"));
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((EventRecord::new(e), error));
}

/// Removes and returns the events of breaker `name`.
fn take(name: &str) -> Vec<Seen> {
    let mut log = LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let mut mine = Vec::new();
    log.retain(|(r, err)| {
        if r.name() == name {
            let e = r.event();
            mine.push((e.name, e.kind, err.clone()));
            false
        } else {
            true
        }
    });
    mine
}

fn failure(failures: u32) -> EventKind<'static> {
    EventKind::Failure {
        failures,
        error: None,
    }
}

fn breaker<'c>(name: &'static str, config: Config, clock: &'c ManualClock) -> B<'c> {
    CircuitBreaker::new(name, config, clock).with_listener(record)
}

type B<'c> = CircuitBreaker<&'c ManualClock>;

#[derive(Debug)]
#[allow(dead_code)] // read only through `Debug`
struct Timeout {
    after_ms: u32,
}

/// With `std` (without it nothing is lent: see `without_std_guarded_calls_lend_no_error`).
#[cfg(feature = "std")]
#[test]
fn call_lends_its_error_to_the_failure_event() {
    let clock = ManualClock::new();
    let name = "call_lends_its_error";
    let b = breaker(name, Config::new().fail_max(3), &clock);
    let r = b.call(|| Err::<(), _>(Timeout { after_ms: 250 }));
    assert!(r.is_err());
    let _ = b.call(|| Ok::<_, Timeout>(()));
    assert_eq!(
        take(name),
        [
            (name, EventKind::BeforeCall, None),
            (
                name,
                failure(1),
                Some("Timeout { after_ms: 250 }".to_string())
            ),
            (name, EventKind::BeforeCall, None),
            (name, EventKind::Success { failures: 0 }, None),
        ]
    );
}

/// With `std` (without it nothing is lent: see `without_std_guarded_calls_lend_no_error`).
#[cfg(feature = "std")]
#[test]
fn an_ignored_error_is_lent_too_and_an_excluded_one_reports_a_plain_success() {
    let clock = ManualClock::new();
    let name = "ignored_error_is_lent";
    let b = breaker(name, Config::new(), &clock);
    let _ = b.call_with(|_| atomic_breaker::Outcome::Ignored, || Err::<(), _>("404"));
    let _ = b.call_with(|_| atomic_breaker::Outcome::Success, || Err::<(), _>("409"));
    assert_eq!(
        take(name),
        [
            (name, EventKind::BeforeCall, None),
            (
                name,
                EventKind::Ignored { error: None },
                Some("\"404\"".to_string())
            ),
            (name, EventKind::BeforeCall, None),
            (name, EventKind::Success { failures: 0 }, None),
        ]
    );
}

/// Without `std`, `call` lends no error (it would link the error's `Debug` into firmware), but
/// still reports the failure and its count; a permit still lends one when asked.
#[cfg(not(feature = "std"))]
#[test]
fn without_std_guarded_calls_lend_no_error() {
    let clock = ManualClock::new();
    let name = "without_std_no_error";
    let b = breaker(name, Config::new().fail_max(3), &clock);
    let _ = b.call(|| Err::<(), _>(Timeout { after_ms: 250 }));
    assert_eq!(b.allow().unwrap().failure_with(&7), Recorded::Counted);
    assert_eq!(
        take(name),
        [
            (name, EventKind::BeforeCall, None),
            (name, failure(1), None),
            (name, EventKind::BeforeCall, None),
            (name, failure(2), Some("7".to_string())),
        ]
    );
}

#[test]
fn permits_lend_an_error_only_when_given_one() {
    let clock = ManualClock::new();
    let name = "permits_lend_an_error";
    let b = breaker(name, Config::new().fail_max(4), &clock);
    let err = std::io::Error::other("reset by peer");
    assert_eq!(b.allow().unwrap().failure_with(&err), Recorded::Counted);
    assert_eq!(b.allow().unwrap().failure(), Recorded::Counted);
    assert_eq!(
        b.allow().unwrap().ignore_with(&"bad request"),
        Recorded::Counted
    );
    let owned = OwnedPermit::allow(&b).unwrap();
    assert_eq!(owned.failure_with(&503u16), Recorded::Counted);
    let events = take(name);
    let failures: Vec<_> = events
        .iter()
        .filter(|(_, k, _)| *k != EventKind::BeforeCall)
        .map(|(_, k, e)| (*k, e.clone()))
        .collect();
    assert_eq!(
        failures,
        [
            (failure(1), Some(format!("{err:?}"))),
            (failure(2), None),
            (
                EventKind::Ignored { error: None },
                Some("\"bad request\"".to_string())
            ),
            (failure(3), Some("503".to_string())),
        ]
    );
}

/// With `std` (without it nothing is lent: see `without_std_guarded_calls_lend_no_error`).
#[cfg(feature = "std")]
#[test]
fn call_async_and_guarded_iterators_lend_their_errors() {
    let clock = ManualClock::new();
    let name = "async_and_iter_lend_errors";
    let b = breaker(name, Config::new().fail_max(5), &clock);
    let r = futures::executor::block_on(b.call_async(|| async { Err::<(), _>("async down") }));
    assert!(r.is_err());
    let items = [Ok(1), Err("item down")];
    let got: Vec<_> = b.guard_iter(items).collect();
    assert_eq!(got.len(), 2);
    let errors: Vec<_> = take(name)
        .into_iter()
        .filter(|(_, k, _)| matches!(k, EventKind::Failure { .. }))
        .map(|(_, k, e)| (k, e))
        .collect();
    assert_eq!(
        errors,
        [
            (failure(1), Some("\"async down\"".to_string())),
            // The item before it succeeded and reset the count.
            (failure(1), Some("\"item down\"".to_string())),
        ]
    );
}

/// A listener reading `fail_counter()` while it handles a `Failure` reads the event's count.
#[test]
fn failures_is_what_fail_counter_reads_when_the_listener_runs() {
    static CLOCK: ManualClock = ManualClock::new();
    static B: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("fail_counter_agrees", Config::new().fail_max(3), &CLOCK)
            .with_listener(check);
    static CHECKED: Mutex<Vec<(u32, u32)>> = Mutex::new(Vec::new());
    fn check(e: &Event) {
        if let EventKind::Failure { failures, .. } = e.kind {
            CHECKED.lock().unwrap().push((failures, B.fail_counter()));
        }
    }
    for _ in 0..3 {
        let _ = B.call(|| Err::<(), _>(()));
    }
    assert_eq!(B.state(), State::Open);
    let checked = CHECKED.lock().unwrap().clone();
    assert_eq!(checked, [(1, 1), (2, 2), (3, 3)]);
}

#[test]
fn state_changes_carry_the_count_at_the_change_and_the_open_period() {
    let clock = ManualClock::new();
    let name = "state_changes_carry_counts";
    let reset = Duration::from_millis(100);
    let b = breaker(
        name,
        Config::new()
            .fail_max(2)
            .reset_timeout(reset)
            .backoff(Backoff::exponential(Duration::from_secs(10))),
        &clock,
    );
    let change = |from, to, failures, retry_after| EventKind::StateChange {
        from,
        to,
        failures,
        retry_after,
    };
    let changes = |name| -> Vec<EventKind<'static>> {
        take(name)
            .into_iter()
            .map(|(_, k, _)| k)
            .filter(|k| matches!(k, EventKind::StateChange { .. }))
            .collect()
    };
    // A trip: the failures that tripped it and the open period.
    let _ = b.call(|| Err::<(), _>(()));
    let _ = b.call(|| Err::<(), _>(()));
    // The period passes: the move to HalfOpen keeps the count it had; the failed trial
    // re-opens with 1 failure and a doubled period (backoff).
    clock.advance(reset);
    let _ = b.call(|| Err::<(), _>(()));
    assert_eq!(b.retry_after(), Some(reset * 2));
    assert_eq!(
        changes(name),
        [
            change(State::Closed, State::Open, 2, Some(reset)),
            change(State::Open, State::HalfOpen, 2, None),
            change(State::HalfOpen, State::Open, 1, Some(reset * 2)),
        ]
    );
    // Manual moves: close() reports the count it clears; open() the period it starts;
    // trip_for() the period it was given.
    assert!(b.close());
    let _ = b.call(|| Err::<(), _>(()));
    assert!(b.open());
    assert!(b.close());
    b.trip_for(Duration::from_secs(7)).unwrap();
    assert!(b.force_open());
    assert_eq!(
        changes(name),
        [
            change(State::Open, State::Closed, 1, None),
            change(State::Closed, State::Open, 1, Some(reset)),
            change(State::Open, State::Closed, 0, None),
            change(State::Closed, State::Open, 0, Some(Duration::from_secs(7))),
            change(State::Open, State::ForcedOpen, 0, None),
        ]
    );
}

#[test]
fn equal_errors_are_those_that_render_the_same() {
    fn ev(error: Option<&dyn core::fmt::Debug>) -> EventKind<'_> {
        EventKind::Failure { failures: 1, error }
    }
    let a = String::from("timeout");
    assert_eq!(
        ev(Some(&"timeout")),
        ev(Some(&a)),
        "same rendering, other types"
    );
    assert_ne!(ev(Some(&"timeout")), ev(Some(&"timeouts")));
    assert_ne!(ev(Some(&"timeout")), ev(None));
    assert_eq!(ev(None), ev(None));
    assert_ne!(
        ev(Some(&"x")),
        EventKind::Failure {
            failures: 2,
            error: Some(&"x")
        }
    );
    // Renderings longer than the comparison window, differing late, or only in length.
    let long: String = "ab".repeat(100);
    let mut late = long.clone();
    late.replace_range(150..151, "z");
    assert_eq!(ev(Some(&long)), ev(Some(&long.clone())));
    assert_ne!(ev(Some(&long)), ev(Some(&late)));
    assert_ne!(ev(Some(&long)), ev(Some(&format!("{long}a"))));
    // Lengths at a window boundary (multiples of 32 bytes, quotes included).
    let edge = "e".repeat(62);
    assert_eq!(ev(Some(&edge)), ev(Some(&edge.clone())));
    assert_ne!(ev(Some(&edge)), ev(Some(&format!("{edge}e"))));
    assert_eq!(
        EventKind::Ignored { error: Some(&42) },
        EventKind::Ignored { error: Some(&42u8) }
    );
    assert_ne!(EventKind::Ignored { error: None }, failure(0));
}

#[test]
fn without_error_and_records_keep_everything_but_the_error() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<EventRecord>();
    let err = "boom";
    let e = Event {
        name: "n",
        kind: EventKind::Failure {
            failures: 4,
            error: Some(&err),
        },
    };
    let stripped = Event {
        name: "n",
        kind: failure(4),
    };
    assert_eq!(e.without_error(), stripped);
    assert_eq!(EventRecord::new(&e).event(), stripped);
    assert_eq!(EventRecord::from(&e).name(), "n");
    assert_eq!(
        e.kind.error().map(|d| format!("{d:?}")),
        Some("\"boom\"".into())
    );
    let change = EventKind::StateChange {
        from: State::HalfOpen,
        to: State::Open,
        failures: 1,
        retry_after: Some(Duration::from_millis(5)),
    };
    let r = EventRecord::new(&Event {
        name: "n",
        kind: change,
    });
    assert_eq!(r.event().kind, change);
    assert!(change.error().is_none());
}
