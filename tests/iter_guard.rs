//! Guarded iterators on `ManualClock`: per item (`guard_iter`, `guard_iter_with`) and one call
//! for the whole run, as PyBreaker guards a generator (`guard_iter_run`, `guard_iter_run_with`).

use std::cell::Cell;
#[cfg(feature = "std")]
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, Outcome, Recorded, State};

const OPEN_FOR: Duration = Duration::from_secs(10);

/// `fail_max` 2, open for 10 s, one trial call at a time.
fn breaker(clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new(
        "iter",
        Config::new().fail_max(2).reset_timeout(OPEN_FOR),
        clock,
    )
}

/// Trips `b` and lets its open period pass: the next admitted call is a half-open trial.
fn ready_for_trial(b: &CircuitBreaker<&ManualClock>, clock: &ManualClock) {
    b.open();
    clock.advance(OPEN_FOR);
}

fn rejected<T, E>(item: Option<Result<T, Error<E>>>) -> bool {
    matches!(item, Some(Err(Error::Rejected(_))))
}

fn failed<T, E>(error: E, tripped: bool) -> Option<Result<T, Error<E>>> {
    Some(Err(Error::Failed { error, tripped }))
}

// ------------------------------------------------------------------ per item

#[test]
fn each_item_is_one_call() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut it = b.guard_iter([Ok(1), Err("a"), Ok(2)]);
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(it.next(), failed("a", false));
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(it.next(), Some(Ok(2)));
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(it.next(), None);
}

#[test]
fn trips_mid_way_rejects_without_pulling_and_recovers_after_the_open_period() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let pulled = Cell::new(0);
    let items = [Ok(1), Err("a"), Err("b"), Ok(2), Ok(3)];
    let mut it = b.guard_iter(items.into_iter().inspect(|_| pulled.set(pulled.get() + 1)));

    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.next(), failed("a", false));
    assert_eq!(it.next(), failed("b", true));
    assert_eq!(b.state(), State::Open);

    // Rejections do not end the iteration, and do not pull.
    for _ in 0..3 {
        match it.next() {
            Some(Err(Error::Rejected(r))) => assert_eq!(r.retry_after, Some(OPEN_FOR)),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    assert_eq!(pulled.get(), 3);

    clock.advance(OPEN_FOR);
    assert_eq!(it.next(), Some(Ok(2)), "the trial");
    assert_eq!(b.state(), State::Closed);
    assert_eq!(it.next(), Some(Ok(3)));
    assert_eq!(it.next(), None);
    assert_eq!(pulled.get(), 5);
}

#[test]
fn take_while_stops_at_the_first_rejection_and_the_items_stay_in_the_source() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut source = [Err("a"), Err("b"), Ok(1), Ok(2)].into_iter();
    let got: Vec<_> = b
        .guard_iter(source.by_ref())
        .take_while(|r| !matches!(r, Err(Error::Rejected(_))))
        .collect();
    assert_eq!(
        got,
        [failed("a", false).unwrap(), failed("b", true).unwrap()]
    );
    assert_eq!(source.len(), 2);
    clock.advance(OPEN_FOR);
    let rest: Vec<_> = b.guard_iter(source).collect();
    assert_eq!(rest, [Ok(1), Ok(2)]);
}

#[test]
fn the_end_counts_nothing_and_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let mut it = b.guard_iter(std::iter::empty::<Result<u32, &str>>());
    assert_eq!(it.next(), None);
    // That `next()` was admitted as the trial (the breaker moved to HalfOpen), found the end,
    // and gave the slot back without counting anything.
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.success_counter(), 0);
    assert_eq!(b.call(|| Ok::<_, &str>(1)), Ok(1));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn after_the_end_it_stays_ended_even_when_the_breaker_rejects() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut it = b.guard_iter([Ok::<_, &str>(1)]);
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.next(), None);
    b.open();
    assert_eq!(it.next(), None);
    assert_eq!(it.size_hint(), (0, Some(0)));
}

#[test]
fn the_classifier_variant_counts_as_told() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let classify = |r: &Result<u32, &str>| match r {
        Err("404") => Outcome::Ignored,
        r => Outcome::of(r),
    };
    let got: Vec<_> = b
        .guard_iter_with(classify, [Err("503"), Err("404"), Err("404"), Ok(1)])
        .collect();
    assert_eq!(got.len(), 4);
    assert_eq!(b.state(), State::Closed, "one failure, then ignored ones");
    assert_eq!(b.fail_counter(), 0, "the last Ok reset it");
}

/// With `std`, a permit dropped during a panic counts a failure.
#[cfg(feature = "std")]
#[test]
fn a_panic_in_the_inner_iterator_counts_as_a_failure() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut it = b.guard_iter((0..).map(|i| -> Result<u32, &str> {
        if i == 1 {
            panic!("boom")
        }
        Ok(i)
    }));
    assert_eq!(it.next(), Some(Ok(0)));
    assert!(catch_unwind(AssertUnwindSafe(|| it.next())).is_err());
    assert_eq!(b.fail_counter(), 1);
}

static CLOCK: ManualClock = ManualClock::new();
static SENSOR: CircuitBreaker<&ManualClock> =
    CircuitBreaker::new("sensor", Config::new().fail_max(1), &CLOCK);

#[test]
fn a_static_breaker_guards_iterators() {
    let sum: u32 = SENSOR
        .guard_iter((1..=4).map(Ok::<u32, ()>))
        .map(Result::unwrap)
        .sum();
    assert_eq!(sum, 10);
    let mut run = SENSOR.guard_iter_run([Ok::<u32, ()>(1)]);
    assert_eq!(run.next(), Some(Ok(1)));
    assert_eq!(run.next(), None);
}

// ------------------------------------------------------------------ the whole run as one call

#[test]
fn a_run_that_ends_is_one_success() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new(
        "run",
        Config::new().reset_timeout(OPEN_FOR).success_threshold(2),
        &clock,
    );
    ready_for_trial(&b, &clock);
    let got: Vec<_> = b.guard_iter_run([Ok::<_, &str>(1), Ok(2), Ok(3)]).collect();
    assert_eq!(got, [Ok(1), Ok(2), Ok(3)]);
    // Three items, one call: one trial success of the two needed.
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.success_counter(), 1);
    assert_eq!(b.trial_calls(), 0);

    // An empty run is a call that succeeded too.
    assert_eq!(
        b.guard_iter_run(std::iter::empty::<Result<u8, &str>>())
            .next(),
        None
    );
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn the_first_failure_of_a_run_is_one_failure_and_ends_the_run() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let pulled = Cell::new(0);
    let items = [Ok(1), Err("a"), Ok(2), Err("b")];
    let mut run = b.guard_iter_run(items.into_iter().inspect(|_| pulled.set(pulled.get() + 1)));
    assert_eq!(run.next(), Some(Ok(1)));
    assert_eq!(run.next(), failed("a", false));
    assert_eq!(run.next(), None);
    assert_eq!(run.next(), None);
    assert_eq!(pulled.get(), 2, "nothing pulled after the failure");
    assert_eq!(b.fail_counter(), 1, "one call, one failure");

    // The failure that trips says so.
    let got: Vec<_> = b.guard_iter_run([Err("c"), Ok(1)]).collect();
    assert_eq!(got, [failed("c", true).unwrap()]);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_rejected_run_is_one_rejection_then_the_end_without_pulling() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.open();
    let pulled = Cell::new(0);
    let mut run = b.guard_iter_run(
        [Ok::<_, &str>(1), Ok(2)]
            .into_iter()
            .inspect(|_| pulled.set(pulled.get() + 1)),
    );
    assert_eq!(run.size_hint(), (0, Some(2)));
    assert!(rejected(run.next()));
    assert_eq!(run.next(), None);
    assert_eq!(pulled.get(), 0);
}

#[test]
fn a_run_asks_at_its_first_next_not_at_creation() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut run = b.guard_iter_run([Ok::<_, &str>(1)]);
    b.open();
    assert!(rejected(run.next()));

    let mut run = b.guard_iter_run([Ok::<_, &str>(2)]);
    b.close();
    assert_eq!(run.next(), Some(Ok(2)));
}

#[test]
fn a_run_dropped_early_counts_nothing_and_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    {
        let mut run = b.guard_iter_run([Ok::<_, &str>(1), Ok(2)]);
        assert_eq!(run.next(), Some(Ok(1)));
        // The run holds the trial slot between items.
        assert_eq!(b.trial_calls(), 1);
        assert!(rejected(b.guard_iter([Ok::<_, &str>(9)]).next()));
    }
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.success_counter(), 0);
}

#[test]
fn finish_reports_a_run_stopped_early_as_a_success() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let mut run = b.guard_iter_run((1..).map(Ok::<u32, &str>));
    assert_eq!(run.next(), Some(Ok(1)));
    assert_eq!(run.finish(), Some(Recorded::Closed));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(run.next(), None);
    assert_eq!(run.finish(), None, "already reported");

    // Nothing to report before the run started.
    let mut run = b.guard_iter_run([Ok::<u32, &str>(1)]);
    assert_eq!(run.finish(), None);
    assert_eq!(run.next(), None);
}

#[test]
fn a_run_passes_errors_classified_as_not_failures_and_goes_on() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let _ = b.call(|| Err::<(), _>("earlier"));
    assert_eq!(b.fail_counter(), 1);
    let classify = |r: &Result<u32, &str>| match r {
        Err("skip") => Outcome::Ignored,
        Err("excluded") => Outcome::Success,
        r => Outcome::of(r),
    };
    let got: Vec<_> = b
        .guard_iter_run_with(classify, [Ok(1), Err("skip"), Err("excluded"), Ok(2)])
        .collect();
    assert_eq!(
        got,
        [
            Ok(1),
            failed("skip", false).unwrap(),
            failed("excluded", false).unwrap(),
            Ok(2)
        ]
    );
    assert_eq!(b.fail_counter(), 0, "the run ended: one success");
}

/// With `std`, a permit dropped during a panic counts a failure.
#[cfg(feature = "std")]
#[test]
fn a_panic_in_a_run_counts_as_its_failure() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut run = b.guard_iter_run((0..).map(|i| -> Result<u32, &str> {
        if i == 2 {
            panic!("boom")
        }
        Ok(i)
    }));
    assert_eq!(run.next(), Some(Ok(0)));
    assert_eq!(run.next(), Some(Ok(1)));
    assert!(catch_unwind(AssertUnwindSafe(|| run.next())).is_err());
    drop(run);
    assert_eq!(b.fail_counter(), 1);
}

#[test]
fn into_inner_gives_back_the_items_not_pulled() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut it = b.guard_iter([Ok::<_, &str>(1), Ok(2), Ok(3)]);
    assert_eq!(it.next(), Some(Ok(1)));
    assert_eq!(it.into_inner().collect::<Vec<_>>(), [Ok(2), Ok(3)]);
    let it = b.guard_iter_run([Ok::<_, &str>(1)]);
    assert!(format!("{it:?}").contains("Idle"));
}
