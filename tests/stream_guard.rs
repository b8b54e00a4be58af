//! Guarded streams (feature `stream`) on `ManualClock`: per item (`guard_stream`,
//! `guard_stream_with`) and one call for the whole stream (`guard_stream_run`,
//! `guard_stream_run_with`), under `futures::executor::block_on`, a hand-polled no-op waker and
//! tokio.
#![cfg(feature = "stream")]

use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, Outcome, Recorded, State};
use futures::executor::block_on;
use futures::stream::{self, FusedStream, Stream, StreamExt};

const OPEN_FOR: Duration = Duration::from_secs(10);

/// `fail_max` 2, open for 10 s, one trial call at a time.
fn breaker(clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new(
        "stream",
        Config::new().fail_max(2).reset_timeout(OPEN_FOR),
        clock,
    )
}

/// Trips `b` and lets its open period pass: the next admitted call is a half-open trial.
fn ready_for_trial(b: &CircuitBreaker<&ManualClock>, clock: &ManualClock) {
    b.open();
    clock.advance(OPEN_FOR);
}

/// One `poll_next` with a no-op waker.
fn poll_next<S: Stream + ?Sized>(s: Pin<&mut S>) -> Poll<Option<S::Item>> {
    s.poll_next(&mut Context::from_waker(Waker::noop()))
}

/// A stream that is pending until `open` is set, then yields `Ok(1)`, `Ok(2)`, ... forever.
fn gated<'a>(
    open: &'a AtomicBool,
    polls: &'a AtomicUsize,
) -> impl Stream<Item = Result<u32, &'static str>> + 'a {
    let mut next = 0;
    stream::poll_fn(move |_| {
        polls.fetch_add(1, Ordering::SeqCst);
        if open.load(Ordering::SeqCst) {
            next += 1;
            Poll::Ready(Some(Ok(next)))
        } else {
            Poll::Pending
        }
    })
}

fn failed<T, E>(error: E, tripped: bool) -> Option<Result<T, Error<E>>> {
    Some(Err(Error::Failed { error, tripped }))
}

// ------------------------------------------------------------------ per item

#[test]
fn trips_mid_way_rejects_without_polling_and_recovers_after_the_open_period() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let pulled = AtomicUsize::new(0);
    let source = stream::iter([Ok(1), Err("a"), Err("b"), Ok(2), Ok(3)]).inspect(|_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    });
    let mut s = pin!(b.guard_stream(source));
    block_on(async {
        assert_eq!(s.next().await, Some(Ok(1)));
        assert_eq!(s.next().await, failed("a", false));
        assert_eq!(s.next().await, failed("b", true));
        assert_eq!(b.state(), State::Open);
        for _ in 0..3 {
            match s.next().await {
                Some(Err(Error::Rejected(r))) => assert_eq!(r.retry_after, Some(OPEN_FOR)),
                other => panic!("expected a rejection, got {other:?}"),
            }
        }
        assert_eq!(pulled.load(Ordering::SeqCst), 3, "not polled while open");
        assert!(!s.is_terminated(), "a rejection does not end the stream");

        clock.advance(OPEN_FOR);
        assert_eq!(s.next().await, Some(Ok(2)), "the trial");
        assert_eq!(b.state(), State::Closed);
        assert_eq!(s.next().await, Some(Ok(3)));
        assert_eq!(s.next().await, None);
        assert!(s.is_terminated());
        b.open();
        assert_eq!(s.next().await, None, "ended for good");
    });
}

#[test]
fn a_pending_item_keeps_one_permit_and_its_arrival_is_the_trial() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut s = pin!(b.guard_stream(gated(&open, &polls)));
    assert_eq!(poll_next(s.as_mut()), Poll::Pending);
    assert_eq!(b.trial_calls(), 1);
    // Polled again while pending: the same permit, not a second one (which HalfOpen with one
    // slot would refuse).
    assert_eq!(poll_next(s.as_mut()), Poll::Pending);
    assert_eq!(b.trial_calls(), 1);
    assert_eq!(polls.load(Ordering::SeqCst), 2);
    open.store(true, Ordering::SeqCst);
    assert_eq!(poll_next(s.as_mut()), Poll::Ready(Some(Ok(1))));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn dropping_a_stream_waiting_for_an_item_frees_the_trial_slot_and_counts_nothing() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    {
        let mut s = pin!(b.guard_stream(gated(&open, &polls)));
        assert_eq!(poll_next(s.as_mut()), Poll::Pending);
        assert_eq!(b.trial_calls(), 1);
    }
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.success_counter(), 0);
    assert_eq!(
        b.call(|| Ok::<_, ()>(1)),
        Ok(1),
        "the next caller is the trial"
    );
}

#[test]
fn the_classifier_variant_counts_as_told() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let classify = |r: &Result<u32, &str>| match r {
        Err("404") => Outcome::Ignored,
        r => Outcome::of(r),
    };
    let s = b.guard_stream_with(classify, stream::iter([Err("404"), Err("503"), Err("404")]));
    let got: Vec<_> = block_on(s.collect());
    assert_eq!(got.len(), 3);
    assert_eq!(b.fail_counter(), 1);
}

#[tokio::test]
async fn tokio_stream_trips_mid_way_and_recovers() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let source = stream::unfold(0u32, |n| async move {
        tokio::task::yield_now().await;
        let item = if (2..4).contains(&n) {
            Err("flaky")
        } else {
            Ok(n)
        };
        (n < 6).then_some((item, n + 1))
    });
    let s = b.guard_stream(source);
    let mut s = pin!(s);
    let mut log = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(n) => log.push(format!("ok {n}")),
            Err(Error::Failed { error, tripped }) => log.push(format!("{error} {tripped}")),
            Err(Error::Rejected(_)) => {
                log.push("rejected".into());
                clock.advance(OPEN_FOR); // wait out the open period
            }
        }
    }
    assert_eq!(
        log,
        [
            "ok 0",
            "ok 1",
            "flaky false",
            "flaky true",
            "rejected",
            "ok 4",
            "ok 5"
        ]
    );
    assert_eq!(b.state(), State::Closed);
}

// ------------------------------------------------------------------ the whole stream as one call

#[test]
fn a_stream_run_that_ends_is_one_success_and_its_first_failure_ends_it() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let _ = b.call(|| Err::<(), _>("earlier"));
    let got: Vec<_> = block_on(
        b.guard_stream_run(stream::iter([Ok::<_, &str>(1), Ok(2)]))
            .collect(),
    );
    assert_eq!(got, [Ok(1), Ok(2)]);
    assert_eq!(b.fail_counter(), 0, "one success");

    let pulled = AtomicUsize::new(0);
    let source = stream::iter([Ok(1), Err("a"), Ok(2)]).inspect(|_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    });
    let mut s = pin!(b.guard_stream_run(source));
    block_on(async {
        assert_eq!(s.next().await, Some(Ok(1)));
        assert_eq!(s.next().await, failed("a", false));
        assert!(s.is_terminated());
        assert_eq!(s.next().await, None);
    });
    assert_eq!(pulled.load(Ordering::SeqCst), 2);
    assert_eq!(b.fail_counter(), 1);
}

#[test]
fn a_rejected_stream_run_is_one_rejection_then_the_end() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.open();
    let (open, polls) = (AtomicBool::new(true), AtomicUsize::new(0));
    let mut s = pin!(b.guard_stream_run(gated(&open, &polls)));
    assert!(matches!(
        poll_next(s.as_mut()),
        Poll::Ready(Some(Err(Error::Rejected(_))))
    ));
    assert_eq!(poll_next(s.as_mut()), Poll::Ready(None));
    assert_eq!(polls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_stream_run_dropped_while_pending_counts_nothing_and_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let (open, polls) = (AtomicBool::new(true), AtomicUsize::new(0));
    {
        let mut s = pin!(b.guard_stream_run(gated(&open, &polls)));
        assert_eq!(poll_next(s.as_mut()), Poll::Ready(Some(Ok(1))));
        open.store(false, Ordering::SeqCst);
        assert_eq!(poll_next(s.as_mut()), Poll::Pending);
        assert_eq!(b.trial_calls(), 1);
    }
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.success_counter(), 0);
}

#[test]
fn finish_reports_a_stream_run_stopped_early_as_a_success() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let (open, polls) = (AtomicBool::new(true), AtomicUsize::new(0));
    let mut s = pin!(b.guard_stream_run(gated(&open, &polls)));
    assert_eq!(poll_next(s.as_mut()), Poll::Ready(Some(Ok(1))));
    assert_eq!(s.as_mut().finish(), Some(Recorded::Closed));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(poll_next(s.as_mut()), Poll::Ready(None));
    assert_eq!(s.as_mut().finish(), None);
}
