//! Guarded futures: [`CircuitBreaker::call_async`], [`CircuitBreaker::guard`] and their
//! classifier variants; and [`Gate`], the breaker side shared with the stream guards.
//!
//! The semantics (admission at the first poll, cancellation, panics) are documented on
//! [`CallAsync`], where users read them.
//!
//! # Why the public names are type aliases
//! `pin-project-lite` (pin projection without `unsafe`) does not accept const generic
//! parameters. So the part of a guarded future that depends on `C` and `L` (the breaker, and the
//! permit between polls) is a plain struct, [`Gate`], and each pin-projected struct is generic
//! over it. [`CallAsync`], [`Guarded`] and the stream guards are type aliases that put the two
//! together; the structs behind them are `pub` only so that the aliases may name them, and are
//! not reachable from outside the crate.
//!
//! # Where the permit lives
//! While the inner future (or stream) is being polled, the permit is on the stack of that poll,
//! so a panic unwinding out of it drops the permit while the thread panics (a failure, with
//! `std`), whichever executor catches the panic. Between polls it is kept in the [`Gate`], so a
//! guard dropped while pending drops it unreported: nothing counted, trial slot given back.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::error::{Error, Rejected};
use crate::permit::{Permit, Recorded};
use crate::state::Outcome;

/// The classifier of the guards without `_with`: `Ok` is a success, `Err` a failure
/// ([`Outcome::of`]).
///
/// A function pointer, so the guards' types can be named; the `_with` variants take any
/// closure instead.
pub type DefaultClassifier<T, E> = fn(&Result<T, E>) -> Outcome;

/// The future of [`CircuitBreaker::call_async`] and
/// [`call_async_with`](CircuitBreaker::call_async_with).
///
/// `F` makes the inner future `Fut` once the call is admitted; `K` classifies its result. It is
/// `Send` when `F`, `Fut` and `K` are and the clock is `Sync`.
///
/// # When the breaker is asked, and when it is told
/// The future asks the breaker for a permit when it is **first polled**, not when it is
/// created: a future built while the breaker is closed and first polled after it tripped is
/// rejected, and one built while it is open and first polled after it recovered runs. A
/// rejection resolves at that first poll, without calling `F` and without polling anything.
/// The outcome is reported from inside the poll in which the inner future completes.
///
/// # Cancellation
/// A guarded future dropped before it completes (a `select!` that took another branch, a
/// timeout that expired, an aborted task) reports nothing: the call neither succeeded nor
/// failed. If it held a half-open trial slot, the slot is given back at once, so the next
/// caller is admitted as a trial instead of waiting for the trial lease to expire. A future
/// dropped before its first poll never asked the breaker at all.
///
/// So a timeout **outside** the guard cancels and counts nothing, while a timeout **inside**
/// it is the call's own error and counts as a failure. Put it inside when slowness is the
/// failure the breaker should see:
/// `breaker.call_async(|| async { timeout(d, call()).await.map_err(..)? })`.
///
/// # Panics
/// With `std`, a panic that unwinds out of the inner future (or out of `F`) counts as a
/// failure whichever executor catches it, as it does for
/// [`call`](CircuitBreaker::call): the permit is held on the stack of the poll that runs the
/// inner future, so the unwind drops it while the thread is panicking. Without `std` it only
/// gives back its trial slot. Like any [`Permit`], a guarded future dropped during some other
/// panic of its thread also counts a failure with `std`.
///
/// Polling it again after it resolved returns [`Poll::Pending`] and does nothing else (as
/// `futures::future::Fuse` does): it never panics, which matters on targets where a panic is
/// fatal. It does not wake the task either, so a task that polls a completed future waits
/// forever; with the feature `stream`, `FusedFuture::is_terminated` tells it not to.
///
/// Implements `Future<Output = Result<T, Error<E>>>` when `F: FnOnce() -> Fut`,
/// `Fut: Future<Output = Result<T, E>>`, `E: Debug` (the error is lent to the `Failure` or
/// `Ignored` event) and `K: FnOnce(&Result<T, E>) -> Outcome`; also `Debug`, and with the
/// feature `stream` `futures_core::FusedFuture`.
pub type CallAsync<'a, C, const L: usize, F, Fut, K> = CallFuture<Gate<'a, C, L>, F, Fut, K>;

/// The future of [`CircuitBreaker::guard`] and [`guard_with`](CircuitBreaker::guard_with): an
/// existing future, polled only once the call is admitted.
///
/// It is `Send` when `Fut` and `K` are and the clock is `Sync`. Admission at the first poll,
/// cancellation and panics work as for [`CallAsync`](CallAsync#cancellation).
///
/// Implements `Future<Output = Result<T, Error<E>>>` when `Fut: Future<Output = Result<T, E>>`,
/// `E: Debug` and `K: FnOnce(&Result<T, E>) -> Outcome`; also `Debug`, and with the feature
/// `stream` `futures_core::FusedFuture`.
pub type Guarded<'a, C, const L: usize, Fut, K> = GuardFuture<Gate<'a, C, L>, Fut, K>;

/// The breaker side of a guarded future or stream: the breaker, and the permit while a call is
/// in flight between two polls.
///
/// Not used directly: it is the first parameter of the structs behind [`CallAsync`],
/// [`Guarded`] and the stream guards, which carry it because pin projection without `unsafe`
/// (`pin-project-lite`) does not accept the const parameter `L`.
pub struct Gate<'a, C: Clock, const L: usize> {
    pub(crate) breaker: &'a CircuitBreaker<C, L>,
    /// The permit of the call in flight, kept here only while the inner future (or stream) is
    /// pending. While it is being polled, the permit lives on the poll's stack.
    pub(crate) permit: Option<Permit<'a, C, L>>,
}

impl<'a, C: Clock, const L: usize> Gate<'a, C, L> {
    pub(crate) fn new(breaker: &'a CircuitBreaker<C, L>) -> Self {
        Gate {
            breaker,
            permit: None,
        }
    }

    /// The permit kept from the previous poll, or a new one from the breaker.
    pub(crate) fn admit(&mut self) -> Result<Permit<'a, C, L>, Rejected> {
        match self.permit.take() {
            Some(p) => Ok(p),
            None => self.breaker.allow(),
        }
    }
}

impl<C: Clock, const L: usize> fmt::Debug for Gate<'_, C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("breaker", &self.breaker.name())
            .field("permit", &self.permit)
            .finish()
    }
}

/// Reports `outcome` on `permit` (if there is one) and turns the caller's result into the
/// guard's.
///
/// `permit` is `None` only when a guard is polled again after its inner future panicked: that
/// panic already counted (with `std`) or gave the slot back, and the rest is not reported.
pub(crate) fn settle<C: Clock, const L: usize, T, E: fmt::Debug>(
    permit: Option<Permit<'_, C, L>>,
    outcome: Outcome,
    result: Result<T, E>,
) -> Result<T, Error<E>> {
    let tripped = match permit {
        Some(p) => p.report_result(outcome, &result) == Recorded::Tripped,
        None => false,
    };
    result.map_err(|error| Error::Failed { error, tripped })
}

pin_project! {
    /// The struct behind [`CallAsync`]; use that name.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct CallFuture<G, F, Fut, K> {
        // Declared first so that the inner future is dropped before the permit in `gate`
        // gives back its slot.
        #[pin]
        stage: CallStage<F, Fut, K>,
        gate: G,
    }
}

pin_project! {
    #[project = CallStageProj]
    #[project_replace = CallStageReplace]
    enum CallStage<F, Fut, K> {
        // Not polled yet: the breaker has not been asked.
        Waiting { make: F, classify: K },
        // Admitted: the inner future runs.
        Running { #[pin] fut: Fut, classify: K },
        // Resolved (or rejected); the inner future is gone.
        Done,
    }
}

impl<G, F, Fut, K> CallFuture<G, F, Fut, K> {
    fn new(gate: G, make: F, classify: K) -> Self {
        CallFuture {
            stage: CallStage::Waiting { make, classify },
            gate,
        }
    }
}

impl<'a, C, const L: usize, F, Fut, K, T, E> Future for CallFuture<Gate<'a, C, L>, F, Fut, K>
where
    C: Clock,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug,
    K: FnOnce(&Result<T, E>) -> Outcome,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let permit = match this.stage.as_mut().project() {
            CallStageProj::Waiting { .. } => {
                let permit = match this.gate.breaker.allow() {
                    Ok(p) => p,
                    Err(r) => {
                        this.stage.set(CallStage::Done);
                        return Poll::Ready(Err(Error::Rejected(r)));
                    }
                };
                let CallStageReplace::Waiting { make, classify } =
                    this.stage.as_mut().project_replace(CallStage::Done)
                else {
                    // The stage was Waiting: never taken. No panic path on firmware.
                    return Poll::Pending;
                };
                // If `make` panics, the permit on this stack counts the failure (with `std`).
                let fut = make();
                this.stage.set(CallStage::Running { fut, classify });
                Some(permit)
            }
            CallStageProj::Running { .. } => this.gate.permit.take(),
            // Polled after completion: nothing to do, and no panic (see the type's docs).
            CallStageProj::Done => return Poll::Pending,
        };
        let CallStageProj::Running { fut, .. } = this.stage.as_mut().project() else {
            // The stage is Running: never taken.
            return Poll::Pending;
        };
        match fut.poll(cx) {
            Poll::Pending => {
                this.gate.permit = permit;
                Poll::Pending
            }
            Poll::Ready(result) => {
                let CallStageReplace::Running { classify, .. } =
                    this.stage.project_replace(CallStage::Done)
                else {
                    // The stage was Running: never taken.
                    return Poll::Pending;
                };
                let outcome = classify(&result);
                Poll::Ready(settle(permit, outcome, result))
            }
        }
    }
}

#[cfg(feature = "stream")]
impl<'a, C, const L: usize, F, Fut, K, T, E> futures_core::FusedFuture
    for CallFuture<Gate<'a, C, L>, F, Fut, K>
where
    C: Clock,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug,
    K: FnOnce(&Result<T, E>) -> Outcome,
{
    fn is_terminated(&self) -> bool {
        matches!(self.stage, CallStage::Done)
    }
}

impl<G: fmt::Debug, F, Fut, K> fmt::Debug for CallFuture<G, F, Fut, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            CallStage::Waiting { .. } => "waiting",
            CallStage::Running { .. } => "running",
            CallStage::Done => "done",
        };
        f.debug_struct("CallAsync")
            .field("stage", &stage)
            .field("gate", &self.gate)
            .finish()
    }
}

pin_project! {
    /// The struct behind [`Guarded`]; use that name.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct GuardFuture<G, Fut, K> {
        // Declared first so that the inner future is dropped before the permit in `gate`
        // gives back its slot.
        #[pin]
        stage: GuardStage<Fut, K>,
        gate: G,
    }
}

pin_project! {
    #[project = GuardStageProj]
    #[project_replace = GuardStageReplace]
    enum GuardStage<Fut, K> {
        // The inner future, polled only once `admitted`.
        Live { #[pin] fut: Fut, classify: K, admitted: bool },
        // Resolved (or rejected); the inner future is gone.
        Done,
    }
}

impl<'a, C, const L: usize, Fut, K, T, E> Future for GuardFuture<Gate<'a, C, L>, Fut, K>
where
    C: Clock,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug,
    K: FnOnce(&Result<T, E>) -> Outcome,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let GuardStageProj::Live { fut, admitted, .. } = this.stage.as_mut().project() else {
            // Polled after completion: nothing to do, and no panic (see `CallAsync`'s docs).
            return Poll::Pending;
        };
        let permit = if *admitted {
            this.gate.permit.take()
        } else {
            match this.gate.breaker.allow() {
                Ok(p) => {
                    *admitted = true;
                    Some(p)
                }
                Err(r) => {
                    // Drops the inner future, never polled.
                    this.stage.set(GuardStage::Done);
                    return Poll::Ready(Err(Error::Rejected(r)));
                }
            }
        };
        match fut.poll(cx) {
            Poll::Pending => {
                this.gate.permit = permit;
                Poll::Pending
            }
            Poll::Ready(result) => {
                let GuardStageReplace::Live { classify, .. } =
                    this.stage.project_replace(GuardStage::Done)
                else {
                    // The stage was Live: never taken.
                    return Poll::Pending;
                };
                let outcome = classify(&result);
                Poll::Ready(settle(permit, outcome, result))
            }
        }
    }
}

#[cfg(feature = "stream")]
impl<'a, C, const L: usize, Fut, K, T, E> futures_core::FusedFuture
    for GuardFuture<Gate<'a, C, L>, Fut, K>
where
    C: Clock,
    Fut: Future<Output = Result<T, E>>,
    E: fmt::Debug,
    K: FnOnce(&Result<T, E>) -> Outcome,
{
    fn is_terminated(&self) -> bool {
        matches!(self.stage, GuardStage::Done)
    }
}

impl<G: fmt::Debug, Fut, K> fmt::Debug for GuardFuture<G, Fut, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            GuardStage::Live {
                admitted: false, ..
            } => "waiting",
            GuardStage::Live { .. } => "running",
            GuardStage::Done => "done",
        };
        f.debug_struct("Guarded")
            .field("stage", &stage)
            .field("gate", &self.gate)
            .finish()
    }
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// Guards an async call: a future that, when first polled, asks the breaker for a permit,
    /// and if admitted calls `f` and runs the future it returns; `Ok` counts as a success and
    /// `Err` as a failure.
    ///
    /// The async [`call`](Self::call), and PyBreaker's `call_async`, for any executor. A
    /// rejected call resolves at its first poll to [`Error::Rejected`] without calling `f`; a
    /// call that ran and failed resolves to [`Error::Failed`] with your error and whether it
    /// tripped the breaker. Dropping the future before it completes counts nothing and gives
    /// back a half-open trial slot (see [`CallAsync`](CallAsync#cancellation) on cancellation
    /// and panics).
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, State};
    ///
    /// static CLOCK: ManualClock = ManualClock::new();
    /// static API: CircuitBreaker<&ManualClock> =
    ///     CircuitBreaker::new("api", Config::new().fail_max(1), &CLOCK);
    ///
    /// async fn fetch(id: u32) -> Result<u32, &'static str> {
    ///     if id == 0 { Err("503") } else { Ok(id * 10) }
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// assert_eq!(API.call_async(|| fetch(4)).await, Ok(40));
    ///
    /// let err = API.call_async(|| fetch(0)).await.unwrap_err();
    /// assert!(err.tripped());
    /// assert_eq!(API.state(), State::Open);
    ///
    /// // Open: rejected at the first poll; `fetch` is never called.
    /// let err = API.call_async(|| fetch(5)).await.unwrap_err();
    /// assert!(matches!(err, Error::Rejected(_)));
    /// # });
    /// ```
    pub fn call_async<F, Fut, T, E>(
        &self,
        f: F,
    ) -> CallAsync<'_, C, L, F, Fut, DefaultClassifier<T, E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        self.call_async_with(Outcome::of as DefaultClassifier<T, E>, f)
    }

    /// Like [`call_async`](Self::call_async), but counts the result as `classify` says, as
    /// [`call_with`](Self::call_with) does: [`Outcome::Ignored`] for errors that say nothing
    /// about the dependency, [`Outcome::Success`] for PyBreaker's excluded exceptions. The
    /// caller's `Err` is returned either way.
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, Outcome};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum ApiError { NotFound, Unavailable }
    ///
    /// let clock = ManualClock::new();
    /// let api = CircuitBreaker::<_>::new("api", Config::new().fail_max(1), &clock);
    /// let classify = |r: &Result<u32, ApiError>| match r {
    ///     Err(ApiError::NotFound) => Outcome::Ignored, // the caller's mistake, not an outage
    ///     r => Outcome::of(r),
    /// };
    ///
    /// # futures::executor::block_on(async {
    /// let r = api.call_async_with(classify, || async { Err(ApiError::NotFound) }).await;
    /// assert_eq!(r, Err(Error::Failed { error: ApiError::NotFound, tripped: false }));
    /// assert_eq!(api.fail_counter(), 0);
    /// # let _ = ApiError::Unavailable;
    /// # });
    /// ```
    pub fn call_async_with<K, F, Fut, T, E>(
        &self,
        classify: K,
        f: F,
    ) -> CallAsync<'_, C, L, F, Fut, K>
    where
        K: FnOnce(&Result<T, E>) -> Outcome,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        CallFuture::new(Gate::new(self), f, classify)
    }

    /// Guards an existing future (or anything that converts into one): it is polled only once
    /// the breaker admits the call, at the guard's first poll; `Ok` counts as a success and
    /// `Err` as a failure.
    ///
    /// The same as [`call_async`](Self::call_async) for the usual `async fn` or `async` block,
    /// whose body does not run before its first poll. A rejected call resolves at once and
    /// drops the inner future without polling it.
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let db = CircuitBreaker::<_>::new("db", Config::new(), &clock);
    ///
    /// async fn query() -> Result<Vec<u8>, &'static str> {
    ///     Ok(vec![1, 2, 3])
    /// }
    ///
    /// let guarded = db.guard(query()); // not polled, so the breaker is not asked yet
    /// let rows = futures::executor::block_on(guarded);
    /// assert_eq!(rows, Ok(vec![1, 2, 3]));
    /// ```
    pub fn guard<I, T, E>(
        &self,
        fut: I,
    ) -> Guarded<'_, C, L, I::IntoFuture, DefaultClassifier<T, E>>
    where
        I: IntoFuture<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        self.guard_with(Outcome::of as DefaultClassifier<T, E>, fut)
    }

    /// Like [`guard`](Self::guard), but counts the result as `classify` says (see
    /// [`call_async_with`](Self::call_async_with)).
    pub fn guard_with<K, I, T, E>(&self, classify: K, fut: I) -> Guarded<'_, C, L, I::IntoFuture, K>
    where
        K: FnOnce(&Result<T, E>) -> Outcome,
        I: IntoFuture<Output = Result<T, E>>,
        E: fmt::Debug,
    {
        GuardFuture {
            stage: GuardStage::Live {
                fut: fut.into_future(),
                classify,
                admitted: false,
            },
            gate: Gate::new(self),
        }
    }
}
