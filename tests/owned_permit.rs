//! `OwnedPermit`: the rules of `Permit` (report, drop, generation, panic) through an owned
//! handle, an `Arc` or a `&'static`, on `ManualClock`.

#[cfg(feature = "std")]
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, ManualClock, OwnedPermit, Recorded, State};

const OPEN_FOR: Duration = Duration::from_secs(10);

type Breaker = CircuitBreaker<&'static ManualClock>;

fn setup(fail_max: u32) -> (&'static ManualClock, Arc<Breaker>) {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let b = CircuitBreaker::new(
        "owned",
        Config::new().fail_max(fail_max).reset_timeout(OPEN_FOR),
        clock,
    );
    (clock, Arc::new(b))
}

#[test]
fn reports_count_as_with_a_borrowed_permit() {
    let (_, b) = setup(2);
    let p = CircuitBreaker::allow_owned(b.clone()).unwrap();
    assert!(!p.is_trial());
    assert_eq!(p.failure(), Recorded::Counted);
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(
        CircuitBreaker::allow_owned(b.clone()).unwrap().ignore(),
        Recorded::Counted
    );
    assert_eq!(b.fail_counter(), 1, "ignored counts nothing");
    assert_eq!(
        OwnedPermit::allow(b.clone()).unwrap().success(),
        Recorded::Counted
    );
    assert_eq!(b.fail_counter(), 0);
    let _ = OwnedPermit::allow(b.clone()).unwrap().failure();
    assert_eq!(
        OwnedPermit::allow(b.clone()).unwrap().failure(),
        Recorded::Tripped
    );
    let r = OwnedPermit::allow(b.clone()).unwrap_err();
    assert_eq!(r.retry_after, Some(OPEN_FOR));
    assert_eq!(
        Arc::strong_count(&b),
        1,
        "every permit gave its handle back"
    );
}

#[test]
fn dropped_unreported_trial_gives_its_slot_back_and_counts_nothing() {
    let (clock, b) = setup(1);
    b.open();
    clock.advance(OPEN_FOR);
    let p = OwnedPermit::allow(b.clone()).unwrap();
    assert!(p.is_trial());
    assert_eq!(b.trial_calls(), 1);
    assert!(OwnedPermit::allow(b.clone()).is_err(), "one slot");
    drop(p);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        OwnedPermit::allow(b.clone()).unwrap().success(),
        Recorded::Closed
    );
}

#[test]
fn report_from_an_earlier_generation_is_dropped() {
    let (clock, b) = setup(1);
    b.open();
    clock.advance(OPEN_FOR);
    let trial = OwnedPermit::allow(b.clone()).unwrap();
    b.open(); // the breaker moves on while the trial runs
    assert_eq!(trial.success(), Recorded::Dropped);
    assert_eq!(b.state(), State::Open);
}

/// With `std` only: without it a permit cannot tell that its thread is panicking.
#[cfg(feature = "std")]
#[test]
fn dropped_while_panicking_counts_as_failure() {
    let (_, b) = setup(1);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _permit = OwnedPermit::allow(b.clone()).unwrap();
        panic!("the call blew up");
    }));
    assert!(r.is_err());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn moves_to_another_thread_with_its_handle() {
    let (_, b) = setup(1);
    let p = OwnedPermit::allow(b.clone()).unwrap();
    let recorded = thread::spawn(move || p.failure()).join().unwrap();
    assert_eq!(recorded, Recorded::Tripped);
    assert_eq!(b.state(), State::Open);
}

static CLOCK: ManualClock = ManualClock::new();
static STATIC: Breaker = CircuitBreaker::new("static", Config::new().fail_max(1), &CLOCK);

#[test]
fn works_with_a_static_reference() {
    let p: OwnedPermit<&'static Breaker> = CircuitBreaker::allow_owned(&STATIC).unwrap();
    assert_eq!(p.breaker().name(), "static");
    let debug = format!("{p:?}");
    assert!(
        debug.contains("static") && debug.contains("trial: false"),
        "{debug}"
    );
    assert_eq!(p.success(), Recorded::Counted);
}

static OUTCOMES: [std::sync::atomic::AtomicU32; 2] = [
    std::sync::atomic::AtomicU32::new(0),
    std::sync::atomic::AtomicU32::new(0),
];

fn count_outcome(i: usize, e: &atomic_breaker::Event) {
    use atomic_breaker::EventKind;
    if e.name == "listened" && matches!(e.kind, EventKind::Success { .. }) {
        OUTCOMES[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// An owned permit hands its `BeforeCall`'s listener numbers to its report, as a borrowed one
/// does: every listener that saw the call gets its outcome (mutation testing: a ticket whose
/// `observed` read 1 sent the outcome to the first listener only).
#[test]
fn every_listener_that_saw_the_call_gets_the_owned_permits_outcome() {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let b = Arc::new(
        CircuitBreaker::<_>::new("listened", Config::new(), clock)
            .with_listener(|e| count_outcome(0, e))
            .with_listener(|e| count_outcome(1, e)),
    );
    let p = CircuitBreaker::allow_owned(b.clone()).unwrap();
    assert_eq!(p.success(), Recorded::Counted);
    let seen = OUTCOMES
        .each_ref()
        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(seen, [1, 1]);
}
