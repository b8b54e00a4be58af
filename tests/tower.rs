//! The tower layer (feature `tower`) against `tower-test` mocks on `ManualClock`: readiness is
//! never an error, an inner service pending forever does not hold up a rejection, half-open
//! admission is bounded under concurrent requests, a cancelled response future gives its trial
//! slot back, clones hold no permit, classifiers decide outcomes, and a `Buffer` in front keeps
//! working through an open period. Nothing sleeps: time moves when a test advances the clock.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use atomic_breaker::tower::{BoxError, BreakerLayer, BreakerService, ErrIsFailure, Rejected};
use atomic_breaker::{CircuitBreaker, Config, ManualClock, Outcome, State};
use tower::{Layer, Service, ServiceExt};
use tower_test::mock;

// ------------------------------------------------------------------ helpers

const OPEN_FOR: Duration = Duration::from_secs(10);

type Breaker = CircuitBreaker<&'static ManualClock>;

/// A clock of its own for each test (tests run in parallel), leaked so breakers can be `Arc`ed.
fn clock() -> &'static ManualClock {
    Box::leak(Box::new(ManualClock::new()))
}

/// `fail_max` 2, open for 10 s, `half_open` trials at once, closing after `half_open` successes.
fn breaker(clock: &'static ManualClock, half_open: u32) -> Arc<Breaker> {
    Arc::new(CircuitBreaker::new(
        "upstream",
        Config::new()
            .fail_max(2)
            .reset_timeout(OPEN_FOR)
            .half_open_max_calls(half_open)
            .success_threshold(half_open),
        clock,
    ))
}

/// Opens `b` and lets its open period pass: the next admitted calls are half-open trials.
fn ready_for_trials(b: &Breaker, clock: &ManualClock) {
    assert!(b.open());
    clock.advance(OPEN_FOR);
}

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls a future that must be ready at once.
fn now<F: Future>(fut: F) -> F::Output {
    match poll_once(pin!(fut)) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the future was pending"),
    }
}

/// The rejection inside a service error, if it is one.
fn rejection(err: &BoxError) -> Option<Rejected> {
    err.downcast_ref::<Rejected>().copied()
}

type Svc = BreakerService<mock::Mock<&'static str, u16>, Arc<Breaker>>;

/// A breaker service over a mock, on a mock task.
fn service(b: &Arc<Breaker>) -> (mock::Spawn<Svc>, mock::Handle<&'static str, u16>) {
    mock::spawn_layer(BreakerLayer::new(b.clone()))
}

/// Sends `req` through `svc` (ready at once) and answers it on the mock with `status`.
fn round_trip(
    svc: &mut mock::Spawn<Svc>,
    handle: &mut mock::Handle<&'static str, u16>,
    status: u16,
) -> Result<u16, BoxError> {
    assert!(svc.poll_ready().is_ready());
    let mut fut = pin!(svc.call("req"));
    if let Poll::Ready(r) = poll_once(fut.as_mut()) {
        return r; // rejected
    }
    let Poll::Ready(Some((_, send))) = handle.poll_request() else {
        panic!("the mock got no request")
    };
    if status == 0 {
        send.send_error("connection reset");
    } else {
        send.send_response(status);
    }
    now(fut)
}

// ------------------------------------------------------------------ readiness

#[test]
fn closed_breaker_passes_requests_and_counts_errors() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);

    assert_eq!(round_trip(&mut svc, &mut handle, 200).unwrap(), 200);
    let err = round_trip(&mut svc, &mut handle, 0).unwrap_err();
    assert!(
        rejection(&err).is_none(),
        "the inner error, not a rejection"
    );
    assert_eq!(err.to_string(), "connection reset");
    assert_eq!(b.fail_counter(), 1);
    assert!(round_trip(&mut svc, &mut handle, 0).is_err());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn open_breaker_keeps_poll_ready_ok_and_rejects_in_call() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    b.open();
    clock.advance(Duration::from_secs(4));

    // Ready, and stays ready across repeated polls: never `Err`.
    for _ in 0..3 {
        assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    }
    let err = now(svc.call("req")).unwrap_err();
    let r = rejection(&err).expect("a Rejected");
    assert_eq!(r.state, State::Open);
    assert_eq!(r.name, "upstream");
    assert_eq!(r.retry_after, Some(Duration::from_secs(6)));
    // The inner service never saw the request.
    assert!(handle.poll_request().is_pending());

    // Still ready afterwards, and still rejecting.
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    assert!(rejection(&now(svc.call("req")).unwrap_err()).is_some());
}

#[test]
fn inner_service_pending_forever_does_not_block_rejection() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(0); // the inner service is never ready
    b.open();

    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    assert!(rejection(&now(svc.call("req")).unwrap_err()).is_some());
}

#[test]
fn admission_waiting_on_inner_service_is_dropped_when_breaker_trips() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(0);

    // Closed: admitted, so the inner service is polled, and it is not ready.
    assert!(svc.poll_ready().is_pending());
    // The breaker trips meanwhile (other callers' failures).
    assert!(b.open());
    // The next poll does not keep waiting on the inner service: it rejects.
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
    assert!(rejection(&now(svc.call("req")).unwrap_err()).is_some());
    assert!(handle.poll_request().is_pending());
}

#[test]
fn inner_readiness_error_is_passed_on_and_its_trial_slot_given_back() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    ready_for_trials(&b, clock);
    handle.send_error("pool closed");

    let Poll::Ready(Err(e)) = svc.poll_ready() else {
        panic!("the inner readiness error is passed on")
    };
    assert_eq!(e.to_string(), "pool closed");
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0, "the slot was given back");
    assert_eq!(b.fail_counter(), 0, "nothing counted");
}

// ------------------------------------------------------------------ half-open admission

#[test]
fn half_open_admits_exactly_max_calls_among_concurrent_requests() {
    let clock = clock();
    let b = breaker(clock, 2);
    let (svc, mut handle) = service(&b);
    handle.allow(100);
    ready_for_trials(&b, clock);

    // Five clones (five connections), all asking before any trial completes.
    let mut clones: Vec<_> = (0..5)
        .map(|_| mock::Spawn::new(svc.get_ref().clone()))
        .collect();
    let mut futs = Vec::new();
    for s in &mut clones {
        assert!(matches!(s.poll_ready(), Poll::Ready(Ok(()))));
        futs.push(Box::pin(s.call("trial")));
    }
    let mut rejected = 0;
    let mut running = Vec::new();
    for mut f in futs {
        match poll_once(f.as_mut()) {
            Poll::Ready(Err(e)) => {
                assert_eq!(rejection(&e).unwrap().state, State::HalfOpen);
                rejected += 1;
            }
            Poll::Ready(Ok(_)) => panic!("nothing was answered yet"),
            Poll::Pending => running.push(f),
        }
    }
    assert_eq!((running.len(), rejected), (2, 3));
    assert_eq!(b.trial_calls(), 2);

    // Both trials succeed: closed (success_threshold 2).
    for _ in 0..2 {
        let Poll::Ready(Some((_, send))) = handle.poll_request() else {
            panic!()
        };
        send.send_response(200);
    }
    assert!(
        handle.poll_request().is_pending(),
        "only two requests got through"
    );
    for f in running {
        assert_eq!(now(f).unwrap(), 200);
    }
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_admission_is_bounded_across_threads() {
    const THREADS: usize = 8;
    let clock = clock();
    let b = breaker(clock, 3);
    ready_for_trials(&b, clock);
    let called = Arc::new(AtomicUsize::new(0));
    let inner = {
        let called = called.clone();
        tower::service_fn(move |_: ()| {
            called.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, BoxError>(()) }
        })
    };
    let svc = BreakerLayer::new(b.clone()).layer(inner);
    let start = Barrier::new(THREADS);
    let decided = Barrier::new(THREADS);
    let (succeeded, rejected) = (AtomicUsize::new(0), AtomicUsize::new(0));
    thread::scope(|s| {
        for _ in 0..THREADS {
            let mut svc = svc.clone();
            let (start, decided, succeeded, rejected) = (&start, &decided, &succeeded, &rejected);
            s.spawn(move || {
                start.wait();
                assert!(matches!(
                    svc.poll_ready(&mut Context::from_waker(Waker::noop())),
                    Poll::Ready(Ok(()))
                ));
                // Not polled before every thread has decided: an admitted future holds its
                // trial slot meanwhile, so no trial completes and frees one early.
                let fut = svc.call(());
                decided.wait();
                match now(fut) {
                    Ok(()) => succeeded.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        assert_eq!(rejection(&e).unwrap().state, State::HalfOpen);
                        rejected.fetch_add(1, Ordering::SeqCst)
                    }
                };
            });
        }
    });
    assert_eq!(
        called.load(Ordering::SeqCst),
        3,
        "exactly half_open_max_calls reached the upstream"
    );
    assert_eq!(succeeded.load(Ordering::SeqCst), 3);
    assert_eq!(rejected.load(Ordering::SeqCst), THREADS - 3);
    assert_eq!(b.state(), State::Closed, "three trial successes closed it");
}

#[test]
fn response_future_dropped_before_completion_frees_its_trial_slot() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    ready_for_trials(&b, clock);

    assert!(svc.poll_ready().is_ready());
    let mut fut = Box::pin(svc.call("trial"));
    assert!(poll_once(fut.as_mut()).is_pending());
    assert!(
        handle.poll_request().is_ready(),
        "the upstream got the trial"
    );
    assert_eq!(b.trial_calls(), 1);
    // The only slot is taken: a second request is rejected.
    assert!(svc.poll_ready().is_ready());
    assert!(rejection(&now(svc.call("req")).unwrap_err()).is_some());

    drop(fut); // cancelled: a timeout outside, a client gone
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.state(), State::HalfOpen, "nothing was counted");
    // The next request is admitted as a trial at once, no lease to wait for.
    assert_eq!(round_trip(&mut svc, &mut handle, 200).unwrap(), 200);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn ready_service_dropped_before_call_frees_its_trial_slot() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    ready_for_trials(&b, clock);

    assert!(svc.poll_ready().is_ready());
    assert_eq!(b.trial_calls(), 1, "the permit is taken in poll_ready");
    drop(svc);
    assert_eq!(b.trial_calls(), 0);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn clone_of_a_ready_service_holds_no_permit() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    ready_for_trials(&b, clock);

    assert!(svc.poll_ready().is_ready());
    assert_eq!(b.trial_calls(), 1);
    let mut twin = mock::Spawn::new(svc.get_ref().clone());
    assert_eq!(b.trial_calls(), 1, "the clone took no slot");
    // The clone asks the breaker itself: the only slot is the original's.
    assert!(twin.poll_ready().is_ready());
    assert!(rejection(&now(twin.call("req")).unwrap_err()).is_some());
    drop(twin);
    assert_eq!(b.trial_calls(), 1, "dropping the clone gave back nothing");
    // The original still holds its admission.
    assert_eq!(round_trip(&mut svc, &mut handle, 200).unwrap(), 200);
    assert_eq!(b.state(), State::Closed);
}

// ------------------------------------------------------------------ classification

#[test]
fn classifier_sees_responses_and_errors() {
    let clock = clock();
    let b = breaker(clock, 1);
    b.set_fail_max(3).unwrap();
    let classify = |r: &Result<u16, BoxError>| match r {
        Ok(s) if *s >= 500 => Outcome::Failure,
        Ok(s) if *s >= 400 => Outcome::Ignored,
        r => Outcome::of(r),
    };
    let (mut svc, mut handle) = mock::spawn_layer::<&'static str, u16, _>(
        BreakerLayer::with_classifier(b.clone(), classify),
    );
    handle.allow(100);
    let mut send = |status: u16| {
        assert!(svc.poll_ready().is_ready());
        let mut fut = pin!(svc.call("req"));
        assert!(poll_once(fut.as_mut()).is_pending());
        let Poll::Ready(Some((_, s))) = handle.poll_request() else {
            panic!()
        };
        if status == 0 {
            s.send_error("reset");
        } else {
            s.send_response(status);
        }
        now(fut)
    };

    assert_eq!(send(503).unwrap(), 503, "a 5xx is still returned");
    assert_eq!(b.fail_counter(), 1, "and counted as a failure");
    assert_eq!(send(404).unwrap(), 404);
    assert_eq!(
        b.fail_counter(),
        1,
        "a 4xx is ignored: neither failure nor success"
    );
    assert_eq!(send(200).unwrap(), 200);
    assert_eq!(b.fail_counter(), 0, "a success resets the count");
    assert!(send(0).is_err());
    assert_eq!(b.fail_counter(), 1, "an Err is a failure");
    send(500).unwrap();
    send(502).unwrap();
    assert_eq!(b.state(), State::Open, "three 5xx in a row trip it");
}

#[test]
fn default_classifier_is_err_is_failure() {
    use atomic_breaker::tower::Classify;
    assert_eq!(
        Classify::<u16, ()>::classify(&ErrIsFailure, &Ok(500)),
        Outcome::Success
    );
    assert_eq!(
        Classify::<u16, ()>::classify(&ErrIsFailure, &Err(())),
        Outcome::Failure
    );
}

// ------------------------------------------------------------------ generations, panics

#[test]
fn trial_response_after_the_breaker_moved_on_is_not_counted() {
    let clock = clock();
    let b = breaker(clock, 1);
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    ready_for_trials(&b, clock);

    assert!(svc.poll_ready().is_ready());
    let mut fut = pin!(svc.call("trial"));
    assert!(poll_once(fut.as_mut()).is_pending());
    assert!(b.open(), "an operator re-opens it while the trial runs");
    let Poll::Ready(Some((_, send))) = handle.poll_request() else {
        panic!()
    };
    send.send_response(200);
    assert_eq!(now(fut).unwrap(), 200);
    assert_eq!(b.state(), State::Open, "the stale success did not close it");
}

#[test]
fn panic_in_inner_future_counts_as_failure() {
    struct Boom;
    impl Future for Boom {
        type Output = Result<(), BoxError>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            panic!("inner future blew up")
        }
    }
    let clock = clock();
    let b = breaker(clock, 1);
    let mut svc = BreakerService::new(tower::service_fn(|_: ()| Boom), b.clone());
    for _ in 0..2 {
        let mut fut = Box::pin(svc.call(()));
        let r = catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut())));
        assert!(r.is_err());
    }
    assert_eq!(b.state(), State::Open, "two panics are two failures");
}

#[test]
fn call_without_poll_ready_asks_the_breaker() {
    let clock = clock();
    let b = breaker(clock, 1);
    let mut svc = BreakerService::new(
        tower::service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }),
        b.clone(),
    );
    assert_eq!(now(svc.call(5)).unwrap(), 5);
    b.open();
    assert!(rejection(&now(svc.call(5)).unwrap_err()).is_some());
}

// ------------------------------------------------------------------ handles

static STATIC_CLOCK: ManualClock = ManualClock::new();
static STATIC_BREAKER: Breaker =
    CircuitBreaker::new("static", Config::new().fail_max(1), &STATIC_CLOCK);
static STATIC_LAYER: BreakerLayer<&Breaker> = BreakerLayer::new(&STATIC_BREAKER);

#[test]
fn static_layer_over_static_breaker() {
    let mut svc = STATIC_LAYER.layer(tower::service_fn(|n: u32| async move {
        if n == 0 {
            Err::<u32, BoxError>("zero".into())
        } else {
            Ok(n)
        }
    }));
    assert_eq!(now(svc.ready()).unwrap().call(3).now_or_panic().unwrap(), 3);
    assert!(now(svc.call(0)).is_err());
    assert_eq!(STATIC_BREAKER.state(), State::Open);
    let err = now(svc.call(3)).unwrap_err();
    assert_eq!(rejection(&err).unwrap().name, "static");
    STATIC_CLOCK.advance(Duration::from_secs(60));
    assert_eq!(now(svc.call(4)).unwrap(), 4);
    assert_eq!(STATIC_BREAKER.state(), State::Closed);
    assert!(format!("{svc:?}").contains("static"));
}

trait NowOrPanic: Future + Sized {
    fn now_or_panic(self) -> Self::Output {
        now(self)
    }
}
impl<F: Future> NowOrPanic for F {}

// ------------------------------------------------------------------ Buffer

#[tokio::test]
async fn buffer_in_front_keeps_working_through_an_open_period() {
    let clock = clock();
    let b = breaker(clock, 1);
    let down = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (down, calls) = (down.clone(), calls.clone());
        tower::service_fn(move |n: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            let down = down.load(Ordering::SeqCst);
            async move {
                if down {
                    Err::<u32, BoxError>("upstream down".into())
                } else {
                    Ok(n)
                }
            }
        })
    };
    let svc = tower::buffer::Buffer::new(BreakerLayer::new(b.clone()).layer(inner), 8);

    for _ in 0..2 {
        let err = svc.clone().oneshot(1).await.unwrap_err();
        assert!(rejection(&err).is_none());
    }
    assert_eq!(b.state(), State::Open);
    // Open: every request through the buffer is rejected, and the buffer stays usable.
    for _ in 0..20 {
        let err = svc.clone().oneshot(1).await.unwrap_err();
        assert_eq!(
            rejection(&err).expect("a Rejected through Buffer").state,
            State::Open
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "rejections never reached the upstream"
    );

    // The upstream recovers and the open period passes: the same buffer serves again.
    down.store(false, Ordering::SeqCst);
    clock.advance(OPEN_FOR);
    assert_eq!(svc.clone().oneshot(7).await.unwrap(), 7);
    assert_eq!(b.state(), State::Closed);
    for n in 0..5 {
        assert_eq!(svc.clone().oneshot(n).await.unwrap(), n);
    }
}

#[test]
fn debug_output_names_the_breaker() {
    let clock = clock();
    let b = breaker(clock, 1);
    let layer = BreakerLayer::new(b.clone());
    assert!(format!("{layer:?}").contains("upstream"));
    let (mut svc, _handle) = service(&b);
    b.open();
    assert!(svc.poll_ready().is_ready());
    assert!(format!("{:?}", svc.get_ref()).contains("rejected"));
    let fut = svc.call("req");
    assert!(format!("{fut:?}").contains("Open"));
}

// ------------------------------------------------------------------ events

/// The layer lends the inner service's error (as the `BoxError` it returns) to the `Failure`
/// event, and a success carries none.
#[test]
fn failure_events_carry_the_inner_error() {
    use atomic_breaker::{Event, EventKind};
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());
    fn record(e: &Event) {
        if let EventKind::Failure { failures, error } = e.kind {
            let error = error.map(|d| format!("{d:?}")).unwrap_or_default();
            SEEN.lock().unwrap().push((failures, error));
        }
    }
    let b = Arc::new(
        CircuitBreaker::new("events", Config::new().fail_max(3), clock()).with_listener(record),
    );
    let (mut svc, mut handle) = service(&b);
    handle.allow(10);
    assert_eq!(round_trip(&mut svc, &mut handle, 200).unwrap(), 200);
    let err = round_trip(&mut svc, &mut handle, 0).unwrap_err();
    assert_eq!(
        *SEEN.lock().unwrap(),
        [(1, format!("{err:?}"))],
        "the error the caller got"
    );
    assert!(format!("{err:?}").contains("connection reset"));
}

// ------------------------------------------------------------------ panics, and polls after the end
//
// The rule (the module documentation's "Panics"): a panic that unwinds out of the inner
// service's `call`, the inner future's `poll` or the classifier is the call's, and counts a
// failure. A permit held by a ready service or by a pending response future is not in any
// call that is running: dropped during some other panic, it counts nothing and gives its trial
// slot back, as when dropped at any other time.

/// A service whose every future stays pending.
fn pending_service(
    b: &Arc<Breaker>,
) -> BreakerService<
    impl Service<
        u32,
        Response = u32,
        Error = BoxError,
        Future = std::future::Pending<Result<u32, BoxError>>,
    >,
    Arc<Breaker>,
> {
    BreakerService::new(
        tower::service_fn(|_: u32| std::future::pending::<Result<u32, BoxError>>()),
        b.clone(),
    )
}

/// Drops `x` while this thread unwinds from a panic unrelated to the breaker's call.
fn drop_during_unrelated_panic<T>(x: T) {
    let r = catch_unwind(AssertUnwindSafe(move || {
        let _x = x;
        panic!("a bug elsewhere in the handler");
    }));
    assert!(r.is_err());
}

fn ready<S: Service<u32>>(svc: &mut S) {
    match svc.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("the service was not ready"),
    }
}

#[test]
fn ready_service_dropped_during_an_unrelated_panic_counts_nothing() {
    let clock = clock();
    let b = breaker(clock, 1);
    let mut svc = pending_service(&b);
    ready(&mut svc);
    drop_during_unrelated_panic(svc);
    assert_eq!(b.fail_counter(), 0, "the dependency was never called");

    // In HalfOpen: the trial slot comes back; the breaker does not re-open.
    ready_for_trials(&b, clock);
    let mut svc = pending_service(&b);
    ready(&mut svc);
    assert_eq!(b.trial_calls(), 1);
    drop_during_unrelated_panic(svc);
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
}

#[test]
fn pending_response_future_dropped_during_an_unrelated_panic_counts_nothing() {
    let clock = clock();
    let b = breaker(clock, 1);
    ready_for_trials(&b, clock);
    let mut svc = pending_service(&b);
    ready(&mut svc);
    let mut fut = Box::pin(svc.call(1));
    assert!(poll_once(fut.as_mut()).is_pending());
    assert_eq!(b.trial_calls(), 1);
    drop_during_unrelated_panic(fut);
    assert_eq!(b.state(), State::HalfOpen, "a cancellation, not a failure");
    assert_eq!(b.trial_calls(), 0);
}

#[test]
fn panic_in_inner_call_or_classifier_counts_as_failure() {
    let clock = clock();
    let b = breaker(clock, 1);
    // The inner service's `call` panics: the call's own panic.
    let mut svc = BreakerService::new(
        tower::service_fn(|_: u32| -> std::future::Ready<Result<u32, BoxError>> {
            panic!("inner call blew up")
        }),
        b.clone(),
    );
    ready(&mut svc);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(svc.call(1)))).is_err());
    assert_eq!(b.fail_counter(), 1);

    // The classifier panics on a response: counted as the call's panic too.
    let mut svc = BreakerService::with_classifier(
        tower::service_fn(|n: u32| std::future::ready(Ok::<_, BoxError>(n))),
        b.clone(),
        |_: &Result<u32, BoxError>| -> Outcome { panic!("classifier blew up") },
    );
    ready(&mut svc);
    let mut fut = Box::pin(svc.call(1));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut()))).is_err());
    assert_eq!(b.state(), State::Open, "two failures trip fail_max 2");
}

#[test]
fn panic_in_a_trials_inner_future_reopens_the_breaker() {
    let clock = clock();
    let b = breaker(clock, 1);
    ready_for_trials(&b, clock);
    struct Boom;
    impl Future for Boom {
        type Output = Result<u32, BoxError>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            panic!("inner future blew up")
        }
    }
    let mut svc = BreakerService::new(tower::service_fn(|_: u32| Boom), b.clone());
    ready(&mut svc);
    let mut fut = Box::pin(svc.call(1));
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut()))).is_err());
    assert_eq!(b.state(), State::Open, "the trial's own panic is a failure");
}

/// A future ready with `Err` at every poll (a future may do anything when polled after it
/// completed), counting its polls.
struct ReadyEveryTime(Arc<AtomicUsize>);

impl Future for ReadyEveryTime {
    type Output = Result<u32, BoxError>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(Err("down".into()))
    }
}

#[test]
fn response_future_polled_after_completion_is_pending_and_reports_once() {
    let clock = clock();
    let b = breaker(clock, 1);
    let polls = Arc::new(AtomicUsize::new(0));
    let classified = Arc::new(AtomicUsize::new(0));
    let (p, c) = (polls.clone(), classified.clone());
    let mut svc = BreakerService::with_classifier(
        tower::service_fn(move |_: u32| ReadyEveryTime(p.clone())),
        b.clone(),
        move |r: &Result<u32, BoxError>| {
            c.fetch_add(1, Ordering::Relaxed);
            Outcome::of(r)
        },
    );
    ready(&mut svc);
    let mut fut = Box::pin(svc.call(1));
    assert!(matches!(poll_once(fut.as_mut()), Poll::Ready(Err(_))));
    for _ in 0..3 {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    assert_eq!(
        polls.load(Ordering::Relaxed),
        1,
        "the inner future is not polled again"
    );
    assert_eq!(classified.load(Ordering::Relaxed), 1);
    assert_eq!(b.fail_counter(), 1, "reported once");

    // A rejection is ready once too.
    assert!(b.open());
    ready(&mut svc);
    let mut fut = Box::pin(svc.call(1));
    match poll_once(fut.as_mut()) {
        Poll::Ready(Err(e)) => assert!(rejection(&e).is_some()),
        _ => panic!("not rejected"),
    }
    assert!(poll_once(fut.as_mut()).is_pending());
}

static BEFORE_CALLS: AtomicUsize = AtomicUsize::new(0);

fn count_before_call(e: &atomic_breaker::Event) {
    if e.name == "polled-twice" && matches!(e.kind, atomic_breaker::EventKind::BeforeCall) {
        BEFORE_CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

/// A service polled again while its inner service is not ready keeps its admission while the
/// breaker has not moved: one admission, one `BeforeCall`, however often it is polled
/// (mutation testing: a permit taken for stale on every poll was given back and taken again,
/// a new `BeforeCall` each time).
#[test]
fn an_admission_waiting_on_the_inner_service_is_kept_while_the_breaker_does_not_move() {
    let b = Arc::new(
        CircuitBreaker::<_>::new("polled-twice", Config::new(), clock())
            .with_listener(count_before_call),
    );
    let (mut svc, mut handle) =
        mock::spawn_layer::<&'static str, u16, _>(BreakerLayer::new(b.clone()));
    handle.allow(0);
    for _ in 0..3 {
        assert!(svc.poll_ready().is_pending());
    }
    assert_eq!(BEFORE_CALLS.load(Ordering::Relaxed), 1);
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    assert_eq!(BEFORE_CALLS.load(Ordering::Relaxed), 1);
}
