//! Guarded futures (`call_async`, `call_async_with`, `guard`, `guard_with`) on `ManualClock`,
//! under tokio (current-thread, multi-thread, paused time), `futures::executor::block_on`, and a
//! hand-polled no-op waker, the way a `no_std` executor without a runtime drives a future.
//! Nothing sleeps: the breaker's time moves only when a test advances its clock, and tokio's
//! time only in paused mode.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_breaker::{
    CallAsync, CircuitBreaker, Config, DefaultClassifier, Error, Guarded, ManualClock, Outcome,
    State,
};
use futures::executor::block_on;

// ------------------------------------------------------------------ helpers

const OPEN_FOR: Duration = Duration::from_secs(10);

/// `fail_max` 2, open for 10 s, one trial call at a time.
fn breaker(clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new(
        "svc",
        Config::new().fail_max(2).reset_timeout(OPEN_FOR),
        clock,
    )
}

/// Trips `b` and lets its open period pass: the next admitted call is a half-open trial.
fn ready_for_trial(b: &CircuitBreaker<&ManualClock>, clock: &ManualClock) {
    assert!(b.open());
    clock.advance(OPEN_FOR);
    assert_eq!(b.state(), State::Open, "Open until a caller moves it");
}

/// One poll with a no-op waker: what a `no_std` executor without a runtime does.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A minimal busy-polling executor on the no-op waker.
fn run_to_end<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = poll_once(fut.as_mut()) {
            return v;
        }
    }
}

/// A future that is pending `n` times, then resolves to `value`.
struct Countdown<T> {
    n: usize,
    value: Option<T>,
}

fn countdown<T>(n: usize, value: T) -> Countdown<T> {
    Countdown {
        n,
        value: Some(value),
    }
}

impl<T: Unpin> Future for Countdown<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if self.n == 0 {
            Poll::Ready(self.value.take().expect("polled after completion"))
        } else {
            self.n -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// A future that is pending until `open` is set; counts its polls.
struct Gated<'a> {
    open: &'a AtomicBool,
    polls: &'a AtomicUsize,
    value: Result<u32, &'static str>,
}

impl Future for Gated<'_> {
    type Output = Result<u32, &'static str>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if self.open.load(Ordering::SeqCst) {
            Poll::Ready(self.value)
        } else {
            Poll::Pending
        }
    }
}

/// Sets its flag when dropped.
struct DropFlag<'a>(&'a AtomicBool);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn ok(v: u32) -> Result<u32, &'static str> {
    Ok(v)
}

async fn fail(e: &'static str) -> Result<u32, &'static str> {
    Err(e)
}

// ------------------------------------------------------------------ compile-time checks

/// The guarded futures are `Send` when what they hold is, so they can be spawned on a
/// multi-thread runtime.
#[allow(dead_code)]
fn guarded_futures_are_send<F, Fut, K>()
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<u8, u8>> + Send,
    K: FnOnce(&Result<u8, u8>) -> Outcome + Send,
{
    fn is_send<T: Send>() {}
    is_send::<CallAsync<'static, ManualClock, 4, F, Fut, DefaultClassifier<u8, u8>>>();
    is_send::<CallAsync<'static, &'static ManualClock, 2, F, Fut, K>>();
    is_send::<Guarded<'static, ManualClock, 4, Fut, DefaultClassifier<u8, u8>>>();
    is_send::<Guarded<'static, &'static ManualClock, 8, Fut, K>>();
    #[cfg(feature = "std")]
    {
        use atomic_breaker::StdClock;
        is_send::<CallAsync<'static, StdClock, 4, F, Fut, DefaultClassifier<u8, u8>>>();
        is_send::<Guarded<'static, StdClock, 4, Fut, DefaultClassifier<u8, u8>>>();
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

// ------------------------------------------------------------------ block_on: the basics

#[test]
fn success_passes_the_value_through_and_resets_the_failure_count() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    assert_eq!(
        block_on(b.call_async(|| fail("e"))),
        Err(Error::Failed {
            error: "e",
            tripped: false
        })
    );
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(block_on(b.call_async(|| ok(7))), Ok(7));
    assert_eq!(b.fail_counter(), 0);
    assert_eq!(block_on(b.guard(ok(8))), Ok(8));
}

#[test]
fn the_failure_that_trips_says_so() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let first = block_on(b.call_async(|| fail("a"))).unwrap_err();
    assert!(!first.tripped());
    let second = block_on(b.guard(fail("b"))).unwrap_err();
    assert!(second.tripped());
    assert_eq!(second.into_inner(), Some("b"));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.fail_counter(), 2);
}

#[test]
fn classifier_variants_count_as_told() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let not_found = |r: &Result<u32, &str>| match r {
        Err("not found") => Outcome::Ignored,
        r => Outcome::of(r),
    };
    let _ = block_on(b.call_async(|| fail("down")));
    assert_eq!(b.fail_counter(), 1);
    // Ignored: counts nothing, the error still comes back.
    let r = block_on(b.call_async_with(not_found, || fail("not found")));
    assert_eq!(r.unwrap_err().into_inner(), Some("not found"));
    assert_eq!(b.fail_counter(), 1);
    let r = block_on(b.guard_with(not_found, fail("not found")));
    assert!(r.is_err());
    assert_eq!(b.fail_counter(), 1);
    // PyBreaker's excluded exception: a success, which resets the count.
    let r = block_on(b.guard_with(|_: &Result<u32, &str>| Outcome::Success, fail("excluded")));
    assert!(r.is_err());
    assert_eq!(b.fail_counter(), 0);
    // A classifier may also call an `Ok` a failure.
    let slow_ok = |_: &Result<u32, &str>| Outcome::Failure;
    assert_eq!(block_on(b.call_async_with(slow_ok, || ok(1))), Ok(1));
    assert_eq!(b.fail_counter(), 1);
}

// ------------------------------------------------------------------ hand-polled, no runtime

#[test]
fn no_std_style_executor_success_failure_trip_and_rejection() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    assert_eq!(
        run_to_end(b.call_async(|| countdown(3, Ok::<_, &str>(1)))),
        Ok(1)
    );
    let r = run_to_end(b.guard(countdown(2, Err::<u32, _>("x"))));
    assert!(!r.unwrap_err().tripped());
    let r = run_to_end(b.call_async(|| countdown(1, Err::<u32, _>("y"))));
    assert!(r.unwrap_err().tripped());
    assert_eq!(b.state(), State::Open);

    let called = AtomicBool::new(false);
    let mut fut = pin!(b.call_async(|| {
        called.store(true, Ordering::SeqCst);
        countdown(0, Ok::<u32, &str>(1))
    }));
    // A rejection resolves at the first poll.
    match poll_once(fut.as_mut()) {
        Poll::Ready(Err(Error::Rejected(r))) => {
            assert_eq!(r.state, State::Open);
            assert_eq!(r.retry_after, Some(OPEN_FOR));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!called.load(Ordering::SeqCst), "the closure must not run");
}

#[test]
fn rejection_never_polls_the_inner_future_and_drops_it_at_once() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    b.open();
    let (open, polls, dropped) = (
        AtomicBool::new(true),
        AtomicUsize::new(0),
        AtomicBool::new(false),
    );
    let inner = Gated {
        open: &open,
        polls: &polls,
        value: Ok(1),
    };
    let flag = DropFlag(&dropped);
    let mut fut = pin!(b.guard(async move {
        let _flag = flag;
        inner.await
    }));
    assert!(matches!(
        poll_once(fut.as_mut()),
        Poll::Ready(Err(Error::Rejected(_)))
    ));
    assert_eq!(polls.load(Ordering::SeqCst), 0, "never polled");
    assert!(
        dropped.load(Ordering::SeqCst),
        "dropped at the rejection, not when the guard is"
    );
}

#[test]
fn the_permit_is_taken_at_the_first_poll_not_at_creation() {
    let clock = ManualClock::new();
    let b = breaker(&clock);

    // Created while closed, first polled after a trip: rejected.
    let mut a = pin!(b.call_async(|| ok(1)));
    let mut g = pin!(b.guard(ok(2)));
    b.open();
    assert!(matches!(
        poll_once(a.as_mut()),
        Poll::Ready(Err(Error::Rejected(_)))
    ));
    assert!(matches!(
        poll_once(g.as_mut()),
        Poll::Ready(Err(Error::Rejected(_)))
    ));

    // Created while open, first polled after it closed: runs.
    let mut a = pin!(b.call_async(|| ok(3)));
    let mut g = pin!(b.guard(ok(4)));
    b.close();
    assert_eq!(poll_once(a.as_mut()), Poll::Ready(Ok(3)));
    assert_eq!(poll_once(g.as_mut()), Poll::Ready(Ok(4)));

    // Created when a trial was due, but never polled: the breaker was not asked at all.
    ready_for_trial(&b, &clock);
    drop(b.call_async(|| ok(5)));
    drop(b.guard(ok(6)));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.trial_calls(), 0);
}

// ------------------------------------------------------------------ half-open and cancellation

#[test]
fn a_half_open_trial_runs_through_a_future() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut trial = pin!(b.guard(Gated {
        open: &open,
        polls: &polls,
        value: Ok(1),
    }));
    assert_eq!(poll_once(trial.as_mut()), Poll::Pending);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 1);
    // Still pending: the same permit is kept, not a second one asked for.
    assert_eq!(poll_once(trial.as_mut()), Poll::Pending);
    assert_eq!(b.trial_calls(), 1);

    // The only trial slot is taken: another call is rejected by HalfOpen.
    match block_on(b.call_async(|| ok(2))) {
        Err(Error::Rejected(r)) => assert_eq!(r.state, State::HalfOpen),
        other => panic!("expected a rejection, got {other:?}"),
    }

    open.store(true, Ordering::SeqCst);
    assert_eq!(poll_once(trial.as_mut()), Poll::Ready(Ok(1)));
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_failed_trial_reopens_and_says_it_tripped() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let err = block_on(b.call_async(|| countdown(2, Err::<u32, _>("still down")))).unwrap_err();
    assert!(err.tripped());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn dropping_a_pending_trial_frees_its_slot_and_counts_nothing() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new(
        "svc",
        Config::new()
            .fail_max(2)
            .reset_timeout(OPEN_FOR)
            .success_threshold(2),
        &clock,
    );
    b.open();
    clock.advance(OPEN_FOR);
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    {
        let mut trial = pin!(b.call_async(|| Gated {
            open: &open,
            polls: &polls,
            value: Ok(1),
        }));
        assert_eq!(poll_once(trial.as_mut()), Poll::Pending);
        assert_eq!(b.trial_calls(), 1);
    } // cancelled here
    assert_eq!(
        b.trial_calls(),
        0,
        "slot given back at once, not after the lease"
    );
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.success_counter(), 0, "nothing counted");

    // The next caller is admitted as the trial straight away.
    assert_eq!(block_on(b.call_async(|| ok(2))), Ok(2));
    assert_eq!(b.success_counter(), 1);
}

#[test]
fn dropping_a_pending_call_while_closed_counts_nothing() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let _ = block_on(b.call_async(|| fail("one")));
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut fut = Box::pin(b.guard(Gated {
        open: &open,
        polls: &polls,
        value: Err("never seen"),
    }));
    assert_eq!(poll_once(fut.as_mut()), Poll::Pending);
    drop(fut);
    assert_eq!(b.fail_counter(), 1);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_call_admitted_before_a_trip_cannot_close_the_half_open_breaker() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let (open, polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut slow = pin!(b.guard(Gated {
        open: &open,
        polls: &polls,
        value: Ok(1),
    }));
    assert_eq!(poll_once(slow.as_mut()), Poll::Pending); // admitted while closed
    ready_for_trial(&b, &clock);
    let (trial_open, trial_polls) = (AtomicBool::new(false), AtomicUsize::new(0));
    let mut trial = pin!(b.guard(Gated {
        open: &trial_open,
        polls: &trial_polls,
        value: Ok(2),
    }));
    assert_eq!(poll_once(trial.as_mut()), Poll::Pending);
    assert_eq!(b.state(), State::HalfOpen);

    // The slow call succeeds, but its report belongs to an older generation.
    open.store(true, Ordering::SeqCst);
    assert_eq!(poll_once(slow.as_mut()), Poll::Ready(Ok(1)));
    assert_eq!(b.state(), State::HalfOpen);
    trial_open.store(true, Ordering::SeqCst);
    assert_eq!(poll_once(trial.as_mut()), Poll::Ready(Ok(2)));
    assert_eq!(b.state(), State::Closed);
}

// ------------------------------------------------------------------ panics

/// Runs a guarded future that panics after one pending poll; returns what `catch_unwind` caught.
fn panic_after_one_poll(
    b: &CircuitBreaker<&ManualClock>,
) -> std::thread::Result<Result<u32, Error<&'static str>>> {
    catch_unwind(AssertUnwindSafe(|| {
        block_on(b.call_async(|| async {
            countdown(1, ()).await;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<u32, &str>(1)
        }))
    }))
}

/// With `std`, a permit dropped during a panic counts a failure.
#[cfg(feature = "std")]
#[test]
fn a_panic_in_the_inner_future_counts_as_a_failure() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    assert!(panic_after_one_poll(&b).is_err());
    assert_eq!(b.fail_counter(), 1);

    // A panic in the closure that makes the future, too.
    let r = catch_unwind(AssertUnwindSafe(|| {
        block_on(b.call_async(|| -> std::future::Ready<Result<u32, &str>> { panic!("boom") }))
    }));
    assert!(r.is_err());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn debug_shows_the_breaker_and_the_stage() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut fut = pin!(b.guard(countdown(1, Ok::<u32, &str>(1))));
    let shown = format!("{fut:?}");
    assert!(
        shown.contains("\"svc\"") && shown.contains("waiting"),
        "{shown}"
    );
    assert_eq!(poll_once(fut.as_mut()), Poll::Pending);
    assert!(format!("{fut:?}").contains("running"));
    assert!(format!("{:?}", b.call_async(|| ok(1))).contains("waiting"));
}

/// Without `std` there is no way to tell a panic from a cancellation: the permit only gives
/// back its trial slot.
#[cfg(not(feature = "std"))]
#[test]
fn without_std_a_panic_in_the_inner_future_only_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    assert!(panic_after_one_poll(&b).is_err());
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
}

/// Polling a resolved guard again is `Pending`, never a panic (a panic is fatal on firmware),
/// and reports nothing more.
#[test]
fn polling_after_completion_is_pending_and_reports_nothing() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut fut = pin!(b.call_async(|| std::future::ready(Err::<u32, &str>("down"))));
    assert!(matches!(poll_once(fut.as_mut()), Poll::Ready(Err(_))));
    let failures = b.fail_counter();
    assert_eq!(failures, 1);
    for _ in 0..3 {
        assert_eq!(poll_once(fut.as_mut()), Poll::Pending);
    }
    let mut guarded = pin!(b.guard(std::future::ready(Ok::<u32, &str>(2))));
    assert_eq!(poll_once(guarded.as_mut()), Poll::Ready(Ok(2)));
    assert_eq!(poll_once(guarded.as_mut()), Poll::Pending);
    assert_eq!(b.fail_counter(), 0);
    // A rejected guard, polled again, is Pending too.
    b.force_open();
    let mut rejected = pin!(b.guard(std::future::ready(Ok::<u32, &str>(3))));
    assert!(matches!(poll_once(rejected.as_mut()), Poll::Ready(Err(e)) if e.is_rejected()));
    assert_eq!(poll_once(rejected.as_mut()), Poll::Pending);
}

#[cfg(feature = "stream")]
#[test]
fn guarded_futures_are_fused() {
    use futures::future::FusedFuture;
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let mut fut = pin!(b.call_async(|| ok(1)));
    assert!(!fut.is_terminated());
    assert_eq!(poll_once(fut.as_mut()), Poll::Ready(Ok(1)));
    assert!(fut.is_terminated());
    b.open();
    let mut fut = pin!(b.guard(ok(1)));
    assert!(poll_once(fut.as_mut()).is_ready());
    assert!(fut.is_terminated());
}

// ------------------------------------------------------------------ tokio

#[tokio::test]
async fn tokio_current_thread_success_failure_trip_and_rejection() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let io = |v: Result<u32, &'static str>| async move {
        tokio::task::yield_now().await;
        v
    };
    assert_eq!(b.call_async(|| io(Ok(1))).await, Ok(1));
    assert!(!b.guard(io(Err("a"))).await.unwrap_err().tripped());
    assert!(b.call_async(|| io(Err("b"))).await.unwrap_err().tripped());
    let called = AtomicBool::new(false);
    let r = b
        .call_async(|| {
            called.store(true, Ordering::SeqCst);
            io(Ok(2))
        })
        .await;
    assert!(r.unwrap_err().is_rejected());
    assert!(!called.load(Ordering::SeqCst));

    clock.advance(OPEN_FOR);
    assert_eq!(b.call_async(|| io(Ok(3))).await, Ok(3));
    assert_eq!(b.state(), State::Closed);
}

static MT_CLOCK: ManualClock = ManualClock::new();
static MT: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "mt",
    Config::new().fail_max(3).reset_timeout(OPEN_FOR),
    &MT_CLOCK,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_multi_thread_static_breaker_shared_by_spawned_tasks() {
    let ok_tasks: Vec<_> = (0..32u32)
        .map(|i| {
            tokio::spawn(assert_send(MT.call_async(move || async move {
                tokio::task::yield_now().await;
                Ok::<_, &str>(i)
            })))
        })
        .collect();
    for (i, t) in ok_tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), Ok(i as u32));
    }
    assert_eq!(MT.fail_counter(), 0);

    // Three concurrent failures: all admitted while closed, exactly one trips.
    let failing: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(MT.guard(async {
                tokio::task::yield_now().await;
                Err::<u32, _>("down")
            }))
        })
        .collect();
    let mut tripped = 0;
    for t in failing {
        if t.await.unwrap().unwrap_err().tripped() {
            tripped += 1;
        }
    }
    assert_eq!(tripped, 1);
    assert_eq!(MT.state(), State::Open);

    let r = tokio::spawn(MT.call_async(|| async { Ok::<u32, &str>(0) }))
        .await
        .unwrap();
    assert!(r.unwrap_err().is_rejected());
    MT_CLOCK.advance(OPEN_FOR);
    let r = tokio::spawn(MT.call_async(|| async { Ok::<u32, &str>(1) }))
        .await
        .unwrap();
    assert_eq!(r, Ok(1));
    assert_eq!(MT.state(), State::Closed);
}

/// With `std`, a permit dropped during a panic counts a failure.
#[cfg(feature = "std")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_counts_a_failure_like_a_panicking_call() {
    static CLOCK: ManualClock = ManualClock::new();
    static B: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("panicky", Config::new().fail_max(2), &CLOCK);
    // tokio catches the panic, and drops the task later, outside the unwind: the permit was
    // already dropped during it.
    let join = tokio::spawn(B.call_async(|| async {
        tokio::task::yield_now().await;
        if B.name() == "panicky" {
            panic!("boom");
        }
        Ok::<u32, &str>(1)
    }))
    .await;
    assert!(join.unwrap_err().is_panic());
    assert_eq!(B.fail_counter(), 1);
}

#[tokio::test]
async fn a_borrowed_breaker_is_shared_by_many_futures() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let calls = (0..16u32).map(|i| {
        b.call_async(move || async move {
            tokio::task::yield_now().await;
            Ok::<_, &str>(i * 2)
        })
    });
    let results = futures::future::join_all(calls).await;
    assert_eq!(results, (0..16).map(|i| Ok(i * 2)).collect::<Vec<_>>());

    let (x, y) = tokio::join!(b.guard(ok(1)), b.guard(fail("e")));
    assert_eq!(x, Ok(1));
    assert_eq!(b.fail_counter(), 1);
    assert!(y.is_err());
}

#[test]
fn a_borrowed_breaker_is_shared_by_threads_each_running_an_executor() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new("threads", Config::new().fail_max(100), &clock);
    let succeeded = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (b, succeeded) = (&b, &succeeded);
            s.spawn(move || {
                for i in 0..50 {
                    let r = block_on(b.call_async(|| countdown(1, Ok::<_, ()>(t * 100 + i))));
                    assert_eq!(r, Ok(t * 100 + i));
                    succeeded.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(succeeded.load(Ordering::Relaxed), 200);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_around_a_guarded_future_frees_the_trial_slot_and_counts_nothing() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    ready_for_trial(&b, &clock);
    let hung = b.call_async(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<u32, &str>(1)
    });
    let r = tokio::time::timeout(Duration::from_secs(1), hung).await;
    assert!(r.is_err(), "timed out");
    assert_eq!(b.state(), State::HalfOpen, "the trial was admitted");
    assert_eq!(b.trial_calls(), 0, "and its slot given back");
    assert_eq!(b.success_counter(), 0);

    // The next caller is the trial, at once.
    assert_eq!(b.call_async(|| ok(2)).await, Ok(2));
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_outside_counts_nothing_a_timeout_inside_is_a_failure() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<u32, &str>(1)
    };
    // Outside: the call is cancelled, the breaker learns nothing.
    let r = tokio::time::timeout(Duration::from_secs(1), b.call_async(slow)).await;
    assert!(r.is_err());
    assert_eq!(b.fail_counter(), 0);

    // Inside: the timeout is the call's error.
    let r = b
        .call_async(|| async {
            tokio::time::timeout(Duration::from_secs(1), slow())
                .await
                .map_err(|_| "timed out")?
        })
        .await;
    assert_eq!(
        r,
        Err(Error::Failed {
            error: "timed out",
            tripped: false
        })
    );
    assert_eq!(b.fail_counter(), 1);
}
