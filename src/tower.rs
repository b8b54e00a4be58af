//! A tower middleware: [`BreakerLayer`] wraps any `Service` in a [`BreakerService`] that asks
//! a shared [`CircuitBreaker`] before every request (feature `tower`).
//!
//! [`CircuitBreaker`]: crate::CircuitBreaker
//!
//! ```
//! use std::convert::Infallible;
//! use atomic_breaker::{CircuitBreaker, Config, ManualClock, State};
//! use atomic_breaker::tower::{BreakerLayer, Rejected};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! static UPSTREAM: CircuitBreaker<&ManualClock> =
//!     CircuitBreaker::new("upstream", Config::new().fail_max(1), &CLOCK);
//! static LAYER: BreakerLayer<&CircuitBreaker<&ManualClock>> = BreakerLayer::new(&UPSTREAM);
//!
//! let flaky = service_fn(|n: u32| async move { if n == 0 { Err("down") } else { Ok(n) } });
//! let svc = LAYER.layer(flaky);
//! # futures::executor::block_on(async {
//! assert_eq!(svc.clone().oneshot(7).await.unwrap(), 7);
//! assert!(svc.clone().oneshot(0).await.is_err()); // trips the breaker
//! assert_eq!(UPSTREAM.state(), State::Open);
//!
//! // Open: rejected without calling the inner service, with a typed error to downcast.
//! let err = svc.clone().oneshot(7).await.unwrap_err();
//! let rejected = err.downcast_ref::<Rejected>().unwrap();
//! assert_eq!(rejected.retry_after, Some(UPSTREAM.reset_timeout()));
//! # });
//! ```
//!
//! # tower's contract, and where the breaker rejects
//! The service keeps the contract that `tower::limit::ConcurrencyLimit` and `load_shed` keep:
//! - `poll_ready` asks the breaker first (on the closed path one atomic load). If it admits
//!   the call, the permit ([`OwnedPermit`]) is kept in the service and the inner service's
//!   readiness is returned. If it rejects, `poll_ready` returns `Ready(Ok(()))` **without
//!   polling the inner service** (an inner service pending forever does not hold up the
//!   rejection), and the next `call` returns a ready error future.
//! - An open breaker never makes `poll_ready` return `Err`: tower reads a readiness error as
//!   "discard this service", and stacks such as `Buffer` stop working for good. Only the inner
//!   service's own readiness error is passed on (its permit is then dropped unreported).
//! - The decision is kept until `call`, as tower asks (once ready, stay ready): a rejection
//!   decided in `poll_ready` stays a rejection. An admission waiting on an inner service that
//!   is not ready is checked again at each `poll_ready`: if the breaker changed state since (it
//!   tripped), the breaker is asked again, and an open breaker rejects at once instead of
//!   waiting on the inner service.
//! - An admitted request keeps its permit from `poll_ready` to the end of its
//!   [`ResponseFuture`]. A permit not used by a `call` (the service dropped after
//!   `poll_ready`, also during a panic: see [Panics](#panics)) is given back unreported:
//!   nothing counted, trial slot given back. A clone of the service holds no permit.
//! - A `call` without `poll_ready` first (which tower allows to panic) asks the breaker there
//!   and then, and calls the inner service if admitted.
//!
//! # Classification
//! A [`Classify`] implementation sees each `&Result<Response, Error>`; the default,
//! [`ErrIsFailure`], counts `Ok` as a success and `Err` as a failure. Any
//! `Fn(&Result<Response, Error>) -> Outcome` closure is a classifier, so an HTTP 5xx or a gRPC
//! `Unavailable` can count as a failure and a 4xx as a success or ignored:
//!
//! ```
//! # use atomic_breaker::{CircuitBreaker, Config, Outcome, ManualClock};
//! # use atomic_breaker::tower::BreakerLayer;
//! # struct Response { status: u16 }
//! # let clock = ManualClock::new();
//! # let breaker = std::sync::Arc::new(CircuitBreaker::<_>::new("api", Config::new(), clock));
//! let layer = BreakerLayer::with_classifier(breaker, |r: &Result<Response, std::io::Error>| {
//!     match r {
//!         Ok(resp) if resp.status >= 500 => Outcome::Failure,
//!         Ok(resp) if resp.status >= 400 => Outcome::Ignored, // the client's mistake
//!         r => Outcome::of(r),
//!     }
//! });
//! ```
//!
//! # Errors, axum and tonic
//! The service's error is tower's `BoxError`: the inner service's error, converted, or a
//! [`Rejected`] (the breaker's name, state and `retry_after`) that callers downcast.
//! axum wants infallible services, so the layer goes behind `HandleErrorLayer`, which turns a
//! rejection into **503 Service Unavailable with `Retry-After`** (a 500 is not retried by load
//! balancers and clients):
//!
//! ```ignore
//! use axum::{error_handling::HandleErrorLayer, http::{header, StatusCode}, response::IntoResponse};
//! use tower::{BoxError, ServiceBuilder};
//!
//! async fn on_error(err: BoxError) -> axum::response::Response {
//!     match err.downcast_ref::<atomic_breaker::Rejected>() {
//!         Some(r) => {
//!             let secs = r.retry_after.map_or(1, |d| d.as_millis().div_ceil(1000).max(1));
//!             (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, secs.to_string())]).into_response()
//!         }
//!         None => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
//!     }
//! }
//! let stack = ServiceBuilder::new()
//!     .layer(HandleErrorLayer::new(on_error))
//!     .layer(BreakerLayer::new(breaker));
//! ```
//!
//! tonic turns an error it does not know into `Code::Unknown`, which retry policies do not
//! retry; map the rejection to `Status::unavailable` ("transient, retry with back-off"):
//!
//! ```ignore
//! fn to_status(err: BoxError) -> tonic::Status {
//!     match err.downcast::<atomic_breaker::Rejected>() {
//!         Ok(r) => tonic::Status::unavailable(r.to_string()),
//!         Err(err) => tonic::Status::from_error(err),
//!     }
//! }
//! ```
//!
//! Both are compiled and tested in the repository's `servers/` crate (`examples/axum_breaker.rs`
//! runs a real server: `cargo run -p atomic-breaker-servers --example axum_breaker`).
//!
//! # Cancellation
//! A [`ResponseFuture`] dropped before it completes reports nothing and gives back its
//! half-open trial slot, as a [guarded future](crate::CallAsync#cancellation) does.
//!
//! # Panics
//! A panic counts as a failure when it is the call's own: one that unwinds out of the inner
//! service's `call`, out of the inner future's `poll`, or out of the classifier (in HalfOpen,
//! such a trial re-opens the breaker). While they run, the permit is on the stack of that
//! `call` or `poll`, and the unwind drops it while the thread panics, which counts a failure
//! as for any [`Permit`](crate::Permit).
//!
//! A permit that is **stored** (in a service between `poll_ready` and `call`, or in a response
//! future between two polls) is not in any call that is running. Dropped during some other
//! panic (a bug elsewhere in the handler, which unwinds through the service or the pending
//! future), it counts nothing and gives back its trial slot, exactly as when it is dropped at
//! any other time: a bug in the server is not the dependency failing. A panic out of the inner
//! service's `poll_ready` leaves the permit stored, so it counts nothing either. (The
//! two-step [`Permit`](crate::Permit) and the guarded futures cannot tell a panic of the call
//! from another one, and count a failure whenever they are dropped while the thread panics.)
//!
//! # Polled after completion
//! A [`ResponseFuture`] polled again after it returned `Ready` returns `Poll::Pending` and does
//! nothing else: the inner future is not polled again, nothing is classified or reported a
//! second time, and the task is not woken, as for the [guarded futures](crate::CallAsync).
//! (tower's `Oneshot` panics there instead; this crate keeps panics out of its own code.)

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::owned_permit::{BreakerHandle, OwnedPermit};
use crate::state::Outcome;

pub use crate::error::Rejected;

/// tower's boxed error (`tower::BoxError`): the service's error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Decides what a response (or an error) says about the dependency's health.
///
/// Implemented by [`ErrIsFailure`] (the default) and by every
/// `Fn(&Result<T, E>) -> Outcome` closure or function.
pub trait Classify<T, E> {
    /// The outcome to report for `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

/// The default classifier: `Ok` is a success, `Err` a failure ([`Outcome::of`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrIsFailure;

impl<T, E> Classify<T, E> for ErrIsFailure {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        Outcome::of(result)
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// A tower `Layer` that wraps services in a [`BreakerService`] sharing the breaker behind the
/// handle `B` (`&'static CircuitBreaker`, `Arc<CircuitBreaker>`, any `Deref` to one that is
/// `Clone`), classifying results with `K`.
///
/// `const`-constructible, so it can be a `static` beside a `static` breaker.
#[derive(Clone, Copy)]
pub struct BreakerLayer<B, K = ErrIsFailure> {
    breaker: B,
    classify: K,
}

impl<B> BreakerLayer<B> {
    /// A layer over `breaker` that counts `Err` as a failure and `Ok` as a success.
    pub const fn new(breaker: B) -> Self {
        BreakerLayer {
            breaker,
            classify: ErrIsFailure,
        }
    }
}

impl<B, K> BreakerLayer<B, K> {
    /// A layer over `breaker` that counts results as `classify` says (see [`Classify`]).
    pub const fn with_classifier(breaker: B, classify: K) -> Self {
        BreakerLayer { breaker, classify }
    }

    /// The handle to the breaker.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }
}

impl<S, B: BreakerHandle + Clone, K: Clone> Layer<S> for BreakerLayer<B, K> {
    type Service = BreakerService<S, B, K>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::with_classifier(inner, self.breaker.clone(), self.classify.clone())
    }
}

impl<B: BreakerHandle, K: fmt::Debug> fmt::Debug for BreakerLayer<B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerLayer")
            .field("breaker", &crate::owned_permit::handle_name(&self.breaker))
            .field("classify", &self.classify)
            .finish()
    }
}

/// A service guarded by a circuit breaker; made by [`BreakerLayer`] or
/// [`BreakerService::new`]. See the [module documentation](self) for the contract it keeps.
///
/// Its error is [`BoxError`]: the inner service's error, or a [`Rejected`].
pub struct BreakerService<S, B: BreakerHandle, K = ErrIsFailure> {
    inner: S,
    breaker: B,
    classify: K,
    // What `poll_ready` decided, kept until `call`: at most one of the two is `Some`. Two
    // fields rather than one enum: the admitted path then moves only the small permit.
    /// Admitted: the permit goes to the next call's response future.
    admitted: Stored<B>,
    /// Rejected: the next call fails with this.
    rejected: Option<Rejected>,
}

impl<S, B: BreakerHandle> BreakerService<S, B> {
    /// Guards `inner` with `breaker`; `Err` counts as a failure.
    pub fn new(inner: S, breaker: B) -> Self {
        Self::with_classifier(inner, breaker, ErrIsFailure)
    }
}

impl<S, B: BreakerHandle, K> BreakerService<S, B, K> {
    /// Guards `inner` with `breaker`, counting results as `classify` says.
    pub fn with_classifier(inner: S, breaker: B, classify: K) -> Self {
        BreakerService {
            inner,
            breaker,
            classify,
            admitted: Stored(None),
            rejected: None,
        }
    }

    /// The handle to the breaker.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service; a permit held from `poll_ready` is dropped unreported.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, B: BreakerHandle + Clone, K: Clone> Clone for BreakerService<S, B, K> {
    /// A clone of the inner service and of the handle, not ready: it holds no permit.
    fn clone(&self) -> Self {
        BreakerService {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
            admitted: Stored(None),
            rejected: None,
        }
    }
}

impl<S: fmt::Debug, B: BreakerHandle, K> fmt::Debug for BreakerService<S, B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decision = match (&self.admitted.0, &self.rejected) {
            (Some(_), _) => "admitted",
            (_, Some(_)) => "rejected",
            _ => "none",
        };
        f.debug_struct("BreakerService")
            .field("inner", &self.inner)
            .field("breaker", &crate::owned_permit::handle_name(&self.breaker))
            .field("decision", &decision)
            .finish()
    }
}

impl<S, B: BreakerHandle + Clone, K> BreakerService<S, B, K> {
    /// Asks the breaker; on a rejection returns the `poll_ready` answer (ready, without
    /// polling the inner service: `call` rejects).
    #[inline(always)]
    fn decide(&mut self) -> Option<Poll<Result<(), BoxError>>> {
        match OwnedPermit::allow(self.breaker.clone()) {
            Ok(permit) => {
                self.admitted = Stored(Some(permit));
                None
            }
            Err(rejected) => {
                self.rejected = Some(rejected);
                Some(Poll::Ready(Ok(())))
            }
        }
    }
}

impl<S, Req, B, K> Service<Req> for BreakerService<S, B, K>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    B: BreakerHandle + Clone,
    K: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, B, K>;

    #[inline(always)]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &self.admitted.0 {
            Some(permit) => {
                // Polled again while the inner service was not ready (or after it was): if the
                // breaker changed state meanwhile (it tripped), the admission is stale; ask
                // again rather than keep waiting on the inner service for a call that must
                // not run.
                if !permit.is_current() {
                    self.admitted = Stored(None);
                    if let Some(ready) = self.decide() {
                        return ready;
                    }
                }
            }
            None => {
                if self.rejected.is_some() {
                    return Poll::Ready(Ok(()));
                }
                if let Some(ready) = self.decide() {
                    return ready;
                }
            }
        }
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(e)) => {
                // The inner service is broken; its permit is given back unreported.
                self.admitted = Stored(None);
                Poll::Ready(Err(e.into()))
            }
            ready => ready.map_err(Into::into),
        }
    }

    #[inline(always)]
    fn call(&mut self, req: Req) -> Self::Future {
        // From here to the end of the inner `call`, the permit is on this stack: a panic out
        // of the inner `call` is the call's own, and counts a failure.
        let permit = match self.admitted.0.take() {
            Some(permit) => permit,
            None => {
                if let Some(rejected) = self.rejected.take() {
                    return ResponseFuture::rejected(rejected);
                }
                // Called without `poll_ready`: ask now.
                match OwnedPermit::allow(self.breaker.clone()) {
                    Ok(permit) => permit,
                    Err(rejected) => return ResponseFuture::rejected(rejected),
                }
            }
        };
        ResponseFuture {
            kind: Kind::Called {
                fut: self.inner.call(req),
                permit: Stored(Some(permit)),
                classify: self.classify.clone(),
            },
        }
    }
}

pin_project! {
    /// The response future of [`BreakerService`]: the inner future with its permit, or a
    /// rejection that is ready at the first poll. Named and pin-projected; nothing is boxed
    /// except the error.
    ///
    /// Dropped before it completes, it reports nothing and gives back a half-open trial slot
    /// (also during a panic that is not the call's: see the [module documentation](self#panics)).
    /// Polled again after it completed, it returns `Poll::Pending` and does nothing else.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ResponseFuture<F, B: BreakerHandle, K> {
        #[pin]
        kind: Kind<F, B, K>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B: BreakerHandle, K> {
        // The inner future is declared before the permit, so it is dropped first.
        Called { #[pin] fut: F, permit: Stored<B>, classify: K },
        Rejected { rejected: Rejected },
        // Ready was returned: the inner future and the permit are gone.
        Done,
    }
}

/// A permit kept between two steps of a request (in the service from `poll_ready` to `call`,
/// in the response future between polls). Dropped, it gives the permit back unreported even
/// while the thread panics: no call is running while it is stored, so that panic is not the
/// call's (see the module documentation's "Panics").
struct Stored<B: BreakerHandle>(Option<OwnedPermit<B>>);

impl<B: BreakerHandle> Drop for Stored<B> {
    #[inline]
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            permit.cancel();
        }
    }
}

impl<F, B: BreakerHandle, K> ResponseFuture<F, B, K> {
    fn rejected(rejected: Rejected) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { rejected },
        }
    }
}

impl<F, B, K, T, E> Future for ResponseFuture<F, B, K>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    B: BreakerHandle,
    K: Classify<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut kind = self.project().kind;
        let output = match kind.as_mut().project() {
            KindProj::Called {
                fut,
                permit,
                classify,
            } => {
                // On this poll's stack while the inner future and the classifier run, so a
                // panic unwinding out of them drops the permit while the thread panics: a
                // failure.
                let held = permit.0.take();
                match fut.poll(cx) {
                    Poll::Pending => {
                        permit.0 = held;
                        return Poll::Pending;
                    }
                    Poll::Ready(result) => {
                        let outcome = classify.classify(&result);
                        // Converted first, so the event can borrow the `BoxError` (which is
                        // `Debug`) without asking the inner service's error type for `Debug`.
                        let result = result.map_err(Into::into);
                        if let Some(p) = held {
                            match &result {
                                Err(e) => p.report_with(outcome, e),
                                Ok(_) => p.report(outcome),
                            };
                        }
                        result
                    }
                }
            }
            KindProj::Rejected { rejected } => Err(Box::new(*rejected) as BoxError),
            // Polled after completion: nothing to do, and no panic (see the type's docs).
            KindProj::Done => return Poll::Pending,
        };
        kind.set(Kind::Done);
        Poll::Ready(output)
    }
}

impl<F, B: BreakerHandle, K> fmt::Debug for ResponseFuture<F, B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Called { permit, .. } => f
                .debug_struct("ResponseFuture")
                .field("permit", &permit.0)
                .finish_non_exhaustive(),
            Kind::Rejected { rejected } => f
                .debug_struct("ResponseFuture")
                .field("rejected", rejected)
                .finish(),
            Kind::Done => f.debug_struct("ResponseFuture").finish_non_exhaustive(),
        }
    }
}
