//! Zero allocations per call, on every path, proven with a counting global allocator.
//!
//! The allocator wraps `std::alloc::System` and counts every allocation, reallocation and
//! deallocation in process-wide atomics (no thread-locals: the allocator must not allocate).
//! Because the counters are process-wide, this binary holds a single `#[test]` that runs every
//! check in sequence: a second test running in parallel would allocate (thread start, captured
//! output) inside our measuring windows. Nothing is printed inside a window either. The test
//! harness's main thread allocates a few times when it starts waiting for the test's result
//! (its channel registers a waiter), so the test first waits until the counter stands still.
//!
//! Each path is run many times on a fresh breaker, from its very first call, so a lazy one-time
//! allocation would be caught as well as a per-call one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[cfg(feature = "std")]
use atomic_breaker::StdClock;
use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, ManualClock, Outcome, Recorded, State,
};

// ------------------------------------------------------------------------- the allocator

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static DEALLOCS: AtomicUsize = AtomicUsize::new(0);

/// `System`, counting.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it upholds
// `GlobalAlloc`'s contract exactly as `System` does; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        DEALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, deallocations) so far.
fn counts() -> (usize, usize) {
    (
        ALLOCS.load(Ordering::SeqCst),
        DEALLOCS.load(Ordering::SeqCst),
    )
}

/// Runs `op` `runs` times and returns the allocations and deallocations it made.
fn measure(runs: usize, mut op: impl FnMut()) -> (usize, usize) {
    let (a0, d0) = counts();
    for _ in 0..runs {
        op();
    }
    let (a1, d1) = counts();
    (a1 - a0, d1 - d0)
}

/// Each path runs this many times.
const RUNS: usize = 1_000;

/// Collects the paths that allocated, so one run reports all of them.
#[derive(Default)]
struct Report {
    checked: Vec<&'static str>,
    failed: Vec<String>,
}

impl Report {
    fn check(&mut self, path: &'static str, op: impl FnMut()) {
        let (allocs, deallocs) = measure(RUNS, op);
        self.checked.push(path);
        if allocs != 0 || deallocs != 0 {
            self.failed.push(format!(
                "{path}: {allocs} allocations, {deallocs} deallocations in {RUNS} runs"
            ));
        }
    }
}

/// Polls `fut` to completion on the current thread with a no-op waker (no executor, which
/// would allocate its own task storage).
fn poll_to_end<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A future that is pending once, then ready with its value: exercises the guard's state across
/// polls, as a real I/O future would.
struct PendingOnce<T>(Option<T>, bool);

impl<T> PendingOnce<T> {
    fn new(v: T) -> Self {
        PendingOnce(Some(v), false)
    }
}

impl<T: Unpin> Future for PendingOnce<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.0.take().expect("polled after completion"))
    }
}

/// Waits until no thread has allocated for 50 ms: the harness's main thread is parked.
fn wait_for_quiet() {
    for _ in 0..100 {
        let before = counts();
        std::thread::sleep(Duration::from_millis(50));
        if counts() == before {
            return;
        }
    }
    panic!("something keeps allocating in the background; the counts would mean nothing");
}

// ------------------------------------------------------------------------- fixtures

/// Discards what is formatted into it: formatting without a `String`.
struct Sink;

impl fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        black_box(s);
        Ok(())
    }
}

static EVENTS: AtomicUsize = AtomicUsize::new(0);
static STATE_CHANGES: AtomicUsize = AtomicUsize::new(0);

fn count_events(e: &Event) {
    EVENTS.fetch_add(1, Ordering::SeqCst);
    if let EventKind::StateChange { .. } = e.kind {
        STATE_CHANGES.fetch_add(1, Ordering::SeqCst);
    }
}

fn other_listener(e: &Event) {
    black_box(e);
}

const HOUR: Duration = Duration::from_secs(3600);

fn manual(config: Config) -> CircuitBreaker<ManualClock, 4> {
    CircuitBreaker::new("alloc", config, ManualClock::new())
}

/// Trips `b` with `fail_max` failures through `call`.
fn trip<C: atomic_breaker::Clock>(b: &CircuitBreaker<C, 4>) {
    for _ in 0..b.fail_max() {
        let _ = black_box(b.call(|| Err::<(), _>("down")));
    }
}

// ------------------------------------------------------------------------- the test

#[test]
fn no_path_allocates() {
    let mut r = Report::default();
    wait_for_quiet();

    // The counter counts: a Box allocates once and frees once.
    let (allocs, deallocs) = measure(1, || drop(black_box(Box::new(black_box(7u64)))));
    assert!(
        allocs >= 1 && deallocs >= 1,
        "the counting allocator missed a Box"
    );

    // ---- closed path
    let b = manual(Config::new());
    r.check("closed: allow + success", || {
        let p = black_box(&b).allow().unwrap();
        assert_eq!(p.success(), Recorded::Counted);
    });
    r.check("closed: call Ok", || {
        assert_eq!(black_box(&b).call(|| Ok::<_, &str>(1)), Ok(1));
    });
    r.check("closed: allow + ignore, call_with Ignored", || {
        let _ = b.allow().unwrap().ignore();
        let _ = b.call_with(|_| Outcome::Ignored, || Err::<(), _>("not counted"));
    });
    r.check(
        "closed: call Err then call Ok (count written, then reset)",
        || {
            let e = b.call(|| Err::<(), _>("down")).unwrap_err();
            assert!(!e.tripped());
            assert_eq!(b.fail_counter(), 1);
            assert_eq!(b.call(|| Ok::<_, &str>(())), Ok(()));
            assert_eq!(b.fail_counter(), 0);
        },
    );
    r.check("closed: permit dropped unreported", || {
        drop(black_box(b.allow().unwrap()));
    });
    assert_eq!(b.state(), State::Closed);

    // ---- trip, open rejection, half-open, closing
    let b = manual(
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_secs(10)),
    );
    r.check("trip (call Err) and manual close", || {
        let e = b.call(|| Err::<(), _>("down")).unwrap_err();
        assert!(e.tripped());
        assert!(b.close());
    });
    let b = manual(Config::new().fail_max(1).reset_timeout(HOUR));
    trip(&b);
    assert_eq!(b.state(), State::Open);
    r.check(
        "open: allow rejected and call rejected (ManualClock)",
        || {
            let rejected = b.allow().map(|_| ()).unwrap_err();
            assert_eq!(rejected.state, State::Open);
            let e = b.call(|| Ok::<_, &str>(())).unwrap_err();
            assert!(e.is_rejected() && e.retry_after().is_some());
        },
    );
    #[cfg(feature = "std")]
    {
        let s = CircuitBreaker::<StdClock, 4>::new(
            "alloc",
            Config::new().fail_max(1).reset_timeout(HOUR),
            StdClock,
        );
        r.check("trip and open rejection (StdClock)", || {
            trip(&s);
            assert!(s.allow().is_err());
            assert!(s.call(|| Ok::<_, &str>(())).unwrap_err().is_rejected());
            assert!(s.close());
        });
    }

    let b = manual(
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_secs(10)),
    );
    r.check("open -> half-open claim -> trial success closes", || {
        trip(&b);
        b.clock().advance(Duration::from_secs(10));
        assert_eq!(b.call(|| Ok::<_, &str>(())), Ok(()));
        assert_eq!(b.state(), State::Closed);
    });
    r.check("half-open trial failure re-opens", || {
        trip(&b);
        b.clock().advance(Duration::from_secs(10));
        let e = b.call(|| Err::<(), _>("still down")).unwrap_err();
        assert!(e.tripped());
        assert_eq!(b.state(), State::Open);
        assert!(b.close());
    });

    // Failure-rate mode: the window's updates, its trip, its close, its monitoring.
    let rated: CircuitBreaker<ManualClock> = CircuitBreaker::new(
        "alloc-rate",
        Config::new()
            .reset_timeout(Duration::from_secs(10))
            .failure_rate(atomic_breaker::FailureRate::new(50, 4)),
        ManualClock::new(),
    );
    r.check(
        "rate mode: window updates, trip, close, fail_counter",
        || {
            assert!(rated.call(|| Ok::<_, ()>(1)).is_ok());
            let _ = rated.call(|| Err::<(), _>(()));
            let _ = rated.call(|| Err::<(), _>(()));
            assert!(rated.fail_counter() >= 1);
            let e = rated.call(|| Err::<(), _>(())).unwrap_err();
            assert!(e.tripped());
            assert_eq!(rated.snapshot().fail_counter, 3);
            assert!(rated.close());
            assert!(!rated.close());
            assert_eq!(rated.failure_window(), Some((0, 0)));
        },
    );

    let b = manual(
        Config::new()
            .fail_max(1)
            .half_open_max_calls(2)
            .success_threshold(2)
            .trial_lease(Duration::from_secs(1)),
    );
    r.check(
        "half-open: two slots claimed, third rejected, both succeed",
        || {
            assert!(b.half_open());
            let p1 = b.allow().unwrap();
            let p2 = b.allow().unwrap();
            assert!(p1.is_trial() && p2.is_trial());
            assert!(b.allow().is_err());
            assert_eq!(p1.success(), Recorded::Counted);
            assert_eq!(p2.success(), Recorded::Closed);
        },
    );
    r.check("half-open: trial permit dropped frees its slot", || {
        assert!(b.half_open());
        drop(b.allow().unwrap());
        drop(b.allow().unwrap());
        assert_eq!(b.trial_calls(), 0);
        assert!(b.close());
    });
    r.check(
        "half-open: lease expiry re-arms, late reports dropped",
        || {
            assert!(b.half_open());
            let p1 = b.allow().unwrap();
            let p2 = b.allow().unwrap();
            b.clock().advance(Duration::from_secs(2));
            let p3 = b.allow().unwrap();
            assert_eq!(p1.success(), Recorded::Dropped);
            drop(p2);
            assert_eq!(p3.failure(), Recorded::Tripped);
            assert!(b.close());
        },
    );

    let b = manual(
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_secs(1))
            .backoff(Backoff::exponential(Duration::from_secs(60)).jitter_percent(20)),
    );
    r.check("backoff with jitter: re-trips from half-open", || {
        trip(&b);
        for _ in 0..3 {
            b.clock().advance(Duration::from_secs(60));
            assert!(b.call(|| Err::<(), _>("down")).unwrap_err().tripped());
        }
        assert!(b.close());
    });

    // ---- management
    let b = manual(Config::new());
    r.check(
        "manual ops: open, close, half_open, trip_for, force_open, disable",
        || {
            assert!(b.open());
            assert!(!b.open());
            assert!(b.half_open());
            b.trip_for(Duration::from_millis(1500)).unwrap();
            assert!(b.force_open());
            assert!(b.allow().is_err());
            assert!(b.disable());
            assert!(b.call(|| Err::<(), _>("not recorded")).is_err());
            assert_eq!(b.allow().unwrap().failure(), Recorded::Dropped);
            assert!(b.close());
            assert!(!b.close());
        },
    );
    r.check("configuration setters", || {
        b.set_fail_max(3).unwrap();
        b.set_reset_timeout(Duration::from_secs(5)).unwrap();
        b.set_success_threshold(2).unwrap();
        assert!(b.set_fail_max(0).is_err());
        assert!(b.trip_for(Duration::MAX).is_err());
    });

    // ---- listeners
    let b = manual(
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_secs(1)),
    );
    r.check("listener add and remove", || {
        let id = b.add_listener(other_listener).unwrap();
        assert!(b.remove_listener(id));
        assert!(!b.remove_listener(id));
    });
    let mut ids = [None; 4];
    for (i, id) in ids.iter_mut().enumerate() {
        let f = if i == 0 { count_events } else { other_listener };
        *id = Some(b.add_listener(f).unwrap());
    }
    r.check("listener table full", || {
        assert!(b.add_listener(other_listener).is_err());
    });
    assert!(b.remove_listener(ids[3].unwrap()));
    let events = EVENTS.load(Ordering::SeqCst);
    let changes = STATE_CHANGES.load(Ordering::SeqCst);
    r.check("listener dispatch: every event kind, 3 listeners", || {
        assert_eq!(b.call(|| Ok::<_, &str>(())), Ok(()));
        let _ = b.call_with(|_| Outcome::Ignored, || Err::<(), _>("ignored"));
        trip(&b); // before-call, failure, closed -> open
        assert!(b.allow().is_err()); // rejected
        b.clock().advance(Duration::from_secs(1));
        assert_eq!(b.call(|| Ok::<_, &str>(())), Ok(())); // open -> half-open -> closed
    });
    assert!(
        EVENTS.load(Ordering::SeqCst) - events >= RUNS * 10,
        "the listener was not called"
    );
    assert_eq!(STATE_CHANGES.load(Ordering::SeqCst) - changes, RUNS * 3);
    r.check("static listener table (with_listener) dispatch", {
        let s: CircuitBreaker<ManualClock, 2> =
            CircuitBreaker::new("alloc", Config::new(), ManualClock::new())
                .with_listener(other_listener)
                .with_listener(count_events);
        move || {
            assert_eq!(s.call(|| Ok::<_, &str>(())), Ok(()));
        }
    });

    // ---- monitoring
    let b = manual(Config::new().fail_max(1));
    trip(&b);
    r.check("monitoring: snapshot, state, counters, retry_after", || {
        let snap = black_box(b.snapshot());
        assert_eq!(snap.state, State::Open);
        black_box((
            b.state(),
            b.fail_counter(),
            b.success_counter(),
            b.trial_calls(),
            b.opened_at(),
            b.retry_after(),
            b.listener_count(),
            b.listener_panics(),
        ));
    });
    r.check("formatting into a fmt::Write: Debug, Display", || {
        let rejected = b.allow().map(|_| ()).unwrap_err();
        write!(Sink, "{b:?} {rejected} {rejected:?} {:?}", b.snapshot()).unwrap();
        let e = b.call(|| Ok::<_, &str>(())).unwrap_err();
        write!(Sink, "{e} {e:?}").unwrap();
    });

    // ---- guarded futures, iterators and streams (issue 5), polled by hand
    let b = manual(Config::new().fail_max(3));
    r.check(
        "guarded futures: call_async, guard across a pending poll, cancellation",
        || {
            assert_eq!(
                poll_to_end(b.call_async(|| async { Ok::<_, &str>(1) })),
                Ok(1)
            );
            let out = poll_to_end(b.guard(PendingOnce::new(Err::<u32, _>("down"))));
            assert_eq!(out.unwrap_err().into_inner(), Some("down"));
            assert_eq!(
                poll_to_end(b.guard(PendingOnce::new(Ok::<_, &str>(2)))),
                Ok(2)
            );
            // Admitted on the first poll, then dropped while pending: cancelled.
            let mut cx = Context::from_waker(Waker::noop());
            let mut cancelled = pin!(b.guard(PendingOnce::new(Ok::<u32, &str>(3))));
            assert!(cancelled.as_mut().poll(&mut cx).is_pending());
        },
    );
    let tripped = manual(Config::new().fail_max(1));
    trip(&tripped);
    r.check(
        "guarded future rejected without polling the inner future",
        || {
            let out = poll_to_end(tripped.call_async(|| async { Ok::<u32, &str>(1) }));
            assert!(out.unwrap_err().is_rejected());
        },
    );
    r.check("guarded iterators: per item and whole run", || {
        let items = [Ok::<u32, &str>(1), Err("down"), Ok(2)];
        assert_eq!(b.guard_iter(items).filter(Result::is_ok).count(), 2);
        assert_eq!(
            b.guard_iter_run(items).count(),
            2,
            "the run ends at its error"
        );
    });
    assert_eq!(b.state(), State::Closed);
    #[cfg(feature = "stream")]
    r.check("guarded stream: per item", || {
        use futures::StreamExt as _;
        let items = [Ok::<u32, &str>(1), Err("down"), Ok(2)];
        let mut s = pin!(b.guard_stream(futures::stream::iter(items)));
        let mut ok = 0;
        while let Some(item) = poll_to_end(s.next()) {
            ok += usize::from(item.is_ok());
        }
        assert_eq!(ok, 2);
    });

    // ---- owned permits and the tower layer (issue 9)
    let b = manual(Config::new().fail_max(3));
    let shared = std::sync::Arc::new(manual(Config::new().fail_max(3)));
    r.check(
        "owned permit: & and Arc handles, reported and dropped",
        || {
            let p = CircuitBreaker::allow_owned(&b).unwrap();
            assert_eq!(p.success(), Recorded::Counted);
            let p = atomic_breaker::OwnedPermit::allow(shared.clone()).unwrap();
            assert_eq!(p.ignore(), Recorded::Counted);
            drop(CircuitBreaker::allow_owned(shared.clone()).unwrap());
        },
    );
    #[cfg(feature = "tower")]
    {
        use atomic_breaker::tower::{BoxError, BreakerLayer};
        use tower::{Layer as _, Service as _};

        let mut cx = Context::from_waker(Waker::noop());
        let ok = |n: u32| std::future::ready(Ok::<u32, BoxError>(n));
        let mut svc = BreakerLayer::new(shared.clone()).layer(tower::service_fn(ok));
        r.check(
            "tower layer, closed (Arc handle): poll_ready + call + poll, Ok",
            || {
                assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
                assert_eq!(poll_to_end(svc.call(7)).unwrap(), 7);
            },
        );
        let mut pending = BreakerLayer::new(&b).layer(tower::service_fn(|n: u32| {
            PendingOnce::new(Ok::<u32, BoxError>(n))
        }));
        r.check(
            "tower layer (& handle): across a pending poll, clone, cancellation",
            || {
                assert!(pending.poll_ready(&mut cx).is_ready());
                assert_eq!(poll_to_end(pending.call(1)).unwrap(), 1);
                let mut twin = pending.clone();
                assert!(twin.poll_ready(&mut cx).is_ready());
                let mut cancelled = pin!(twin.call(2));
                assert!(cancelled.as_mut().poll(&mut cx).is_pending());
            },
        );
        let trial = manual(
            Config::new()
                .fail_max(1)
                .reset_timeout(Duration::from_secs(1)),
        );
        let mut svc = BreakerLayer::new(&trial).layer(tower::service_fn(ok));
        r.check(
            "tower layer: half-open trial admitted, success closes",
            || {
                assert!(trial.open());
                trial.clock().advance(Duration::from_secs(1));
                assert!(svc.poll_ready(&mut cx).is_ready());
                assert_eq!(poll_to_end(svc.call(3)).unwrap(), 3);
                assert_eq!(trial.state(), State::Closed);
            },
        );
    }

    // ---- sizes, for the README
    let manual_size = size_of::<CircuitBreaker<ManualClock, 4>>();
    println!("size_of::<CircuitBreaker<ManualClock, 4>>() = {manual_size}");
    #[cfg(feature = "std")]
    let std_size = size_of::<CircuitBreaker<StdClock, 4>>();
    #[cfg(feature = "std")]
    println!("size_of::<CircuitBreaker<StdClock, 4>>() = {std_size}");
    println!("checked without allocation, {RUNS} runs each:");
    for path in &r.checked {
        println!("  {path}");
    }
    assert!(
        r.failed.is_empty(),
        "paths that allocated:\n  {}",
        r.failed.join("\n  ")
    );
    // The README states these; update it when they change.
    #[cfg(target_pointer_width = "64")]
    {
        assert_eq!(manual_size, 216, "update the README's size_of line");
        #[cfg(feature = "std")]
        assert_eq!(std_size, 208, "update the README's size_of line");
    }
}
