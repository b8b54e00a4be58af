//! Breakers declared as `static`s (built by `const` constructors, listeners included) and shared
//! by several threads without any wrapper: no `Arc`, no `lazy_static`, no `OnceLock`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

#[cfg(feature = "std")]
use atomic_breaker::StdClock;
use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, ManualClock, Recorded, State,
};

const THREADS: usize = 8;

// ------------------------------------------------------------------ ManualClock

static CLOCK: ManualClock = ManualClock::new();

const CONFIG: Config = Config::new()
    .fail_max(3)
    .reset_timeout(Duration::from_secs(10))
    .success_threshold(1)
    .backoff(Backoff::exponential(Duration::from_secs(60)));

static CHANGES: Mutex<Vec<(State, State)>> = Mutex::new(Vec::new());
static CALLS: AtomicUsize = AtomicUsize::new(0);

fn on_state_change(e: &Event) {
    if let EventKind::StateChange { from, to, .. } = e.kind {
        CHANGES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((from, to));
    }
}

fn on_before_call(e: &Event) {
    if e.kind == EventKind::BeforeCall {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Built entirely at compile time, listeners included.
static BREAKER: CircuitBreaker<&'static ManualClock, 4> =
    CircuitBreaker::new("static-manual", CONFIG, &CLOCK)
        .with_listener(on_state_change)
        .with_listener(on_before_call);

fn changes() -> Vec<(State, State)> {
    CHANGES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Runs `f` on `THREADS` threads released together; returns their results in thread order.
fn on_all_threads<T: Send>(f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn static_breaker_on_manual_clock_shared_by_threads() {
    assert_eq!(BREAKER.name(), "static-manual");
    assert_eq!(BREAKER.listener_count(), 2);
    assert_eq!(BREAKER.fail_max(), 3);

    // Closed: every thread's calls run.
    let sums = on_all_threads(|t| {
        (0..100)
            .map(|i| BREAKER.call(|| Ok::<_, ()>(t * 1000 + i)).unwrap())
            .sum::<usize>()
    });
    for (t, sum) in sums.iter().enumerate() {
        assert_eq!(*sum, t * 100_000 + 4950);
    }
    assert_eq!(CALLS.load(Ordering::Relaxed), THREADS * 100);
    assert_eq!(BREAKER.state(), State::Closed);

    // All threads fail at once: the breaker trips exactly once, and exactly one caller is told
    // that its failure tripped it. The others' failures either counted before the trip, came
    // from the closed period the trip ended (dropped), or were rejected without running.
    let results = on_all_threads(|_| BREAKER.call(|| Err::<(), _>("down")));
    let tripped = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.tripped()))
        .count();
    assert_eq!(tripped, 1);
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(BREAKER.state(), State::Open);
    assert_eq!(BREAKER.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(changes(), [(State::Closed, State::Open)]);

    // The period passes; the threads race for the trial. Exactly one wins the move to
    // HalfOpen; its success closes the breaker.
    CLOCK.advance(Duration::from_secs(10));
    let results = on_all_threads(|_| match BREAKER.allow() {
        Ok(p) => {
            let trial = p.is_trial();
            (trial, Some(p.success()))
        }
        Err(rejected) => {
            assert_eq!(rejected.state, State::HalfOpen);
            (false, None)
        }
    });
    let trials = results.iter().filter(|(trial, _)| *trial).count();
    assert_eq!(trials, 1, "one trial slot: one trial");
    assert_eq!(
        results
            .iter()
            .filter(|(_, r)| *r == Some(Recorded::Closed))
            .count(),
        1
    );
    assert_eq!(BREAKER.state(), State::Closed);
    assert_eq!(
        changes(),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );

    // Management through the shared reference, from another thread.
    thread::spawn(|| assert!(BREAKER.force_open()))
        .join()
        .unwrap();
    assert!(BREAKER.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    assert!(BREAKER.close());
}

// ------------------------------------------------------------------ StdClock

#[cfg(feature = "std")]
static STD_BREAKER: CircuitBreaker<StdClock> = CircuitBreaker::new(
    "static-std",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::from_secs(3600)),
    StdClock,
);

#[cfg(feature = "std")]
#[test]
fn static_breaker_on_std_clock_shared_by_threads() {
    let counted = on_all_threads(|t| {
        (0..50)
            .filter(|i| STD_BREAKER.call(|| Ok::<_, ()>(t + i)).is_ok())
            .count()
    });
    assert_eq!(counted, [50; THREADS]);
    assert_eq!(STD_BREAKER.fail_counter(), 0);

    let results = on_all_threads(|_| STD_BREAKER.call(|| Err::<(), _>("down")));
    assert_eq!(
        results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|e| e.tripped()))
            .count(),
        1
    );
    assert_eq!(STD_BREAKER.state(), State::Open);
    // Real time has passed since the trip, but nowhere near an hour.
    let left = STD_BREAKER.retry_after().unwrap();
    assert!(left <= Duration::from_secs(3600));
    assert!(left > Duration::from_secs(3000), "{left:?}");
    let rejected = on_all_threads(|_| STD_BREAKER.call(|| Ok::<_, ()>(())));
    assert!(rejected.iter().all(|r| r
        .as_ref()
        .is_err_and(|e| e.is_rejected() && e.retry_after().is_some())));
    assert!(STD_BREAKER.opened_at().is_some());
}

// ------------------------------------------------------------------ ids of const listeners

static ID_CLOCK: ManualClock = ManualClock::new();
static ID_STATE: AtomicUsize = AtomicUsize::new(0);
static ID_CALLS: AtomicUsize = AtomicUsize::new(0);
static ID_LATE: AtomicUsize = AtomicUsize::new(0);

fn id_state(_: &Event) {
    ID_STATE.fetch_add(1, Ordering::Relaxed);
}
fn id_calls(_: &Event) {
    ID_CALLS.fetch_add(1, Ordering::Relaxed);
}
fn id_late(_: &Event) {
    ID_LATE.fetch_add(1, Ordering::Relaxed);
}

static WITH_IDS: CircuitBreaker<&'static ManualClock, 2> = CircuitBreaker::new(
    "static-ids",
    Config::new()
        .fail_max(1)
        .reset_timeout(Duration::from_secs(1)),
    &ID_CLOCK,
)
.with_listener_for(atomic_breaker::Interest::STATE_CHANGES, id_state)
.with_listener_for(atomic_breaker::Interest::CALLS, id_calls);

/// Listeners built into a `static` are removed by the ids `const_listener_id` gives, like
/// run-time ones: a removed one hears nothing more, and its id never removes a listener added
/// later in its slot.
#[test]
fn const_listeners_have_ids_and_can_be_removed() {
    let ids: Vec<_> = WITH_IDS.const_listener_ids().collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(WITH_IDS.const_listener_id(0), Some(ids[0]));
    assert_eq!(WITH_IDS.const_listener_id(1), Some(ids[1]));
    assert_eq!(WITH_IDS.const_listener_id(2), None);
    assert_ne!(ids[0], ids[1]);

    assert_eq!(WITH_IDS.call(|| Ok::<_, ()>(())), Ok(()));
    assert_eq!(
        ID_CALLS.load(Ordering::Relaxed),
        2,
        "BeforeCall and Success"
    );

    // The per-call listener goes: calls dispatch nothing more.
    assert!(WITH_IDS.remove_listener(ids[1]));
    assert!(!WITH_IDS.remove_listener(ids[1]));
    assert_eq!(WITH_IDS.listener_count(), 1);
    assert_eq!(WITH_IDS.call(|| Ok::<_, ()>(())), Ok(()));
    assert_eq!(ID_CALLS.load(Ordering::Relaxed), 2);

    // A run-time listener takes the freed slot (the table holds 2); the stale id leaves it.
    let late = WITH_IDS.add_listener(id_late).unwrap();
    assert!(!WITH_IDS.remove_listener(ids[1]));
    assert_eq!(
        WITH_IDS.const_listener_id(1),
        Some(ids[1]),
        "ids do not change"
    );
    let _ = WITH_IDS.call(|| Err::<(), _>(()));
    assert_eq!(WITH_IDS.state(), State::Open);
    assert_eq!(ID_STATE.load(Ordering::Relaxed), 1, "the trip");
    assert_eq!(
        ID_LATE.load(Ordering::Relaxed),
        3,
        "BeforeCall, Failure, the trip"
    );

    // The state listener goes too; the run-time one stays until its own id removes it.
    assert!(WITH_IDS.remove_listener(ids[0]));
    assert!(WITH_IDS.close());
    assert_eq!(ID_STATE.load(Ordering::Relaxed), 1);
    assert_eq!(ID_LATE.load(Ordering::Relaxed), 4);
    assert!(WITH_IDS.remove_listener(late));
    assert_eq!(WITH_IDS.listener_count(), 0);
    assert_eq!(
        WITH_IDS.const_listener_ids().count(),
        2,
        "removed ones keep their ids"
    );
}
