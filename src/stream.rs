//! Guarded streams (feature `stream`): [`GuardedStream`] (each item is one call) and
//! [`GuardedStreamRun`] (the whole stream is one call), the async counterparts of
//! [`GuardedIter`](crate::GuardedIter) and [`GuardedIterRun`](crate::GuardedIterRun).

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::{FusedStream, Stream};
use pin_project_lite::pin_project;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::error::Error;
use crate::future::{settle, DefaultClassifier, Gate};
use crate::iter::{run_begin, run_end, Phase};
use crate::permit::{Permit, Recorded};
use crate::state::Outcome;

/// A stream of `Result`s whose every item is one guarded call: from
/// [`CircuitBreaker::guard_stream`] and [`guard_stream_with`](CircuitBreaker::guard_stream_with).
///
/// The stream counterpart of [`GuardedIter`](crate::GuardedIter), with the same rules: each item
/// is admitted, pulled and reported; while the breaker rejects, polling yields
/// `Err(Error::Rejected(_))` at once without polling the inner stream, and **does not end the
/// stream** (stop at the first rejection, or wait for its `retry_after`); the stream ends, for
/// good, when the inner one does.
///
/// The permit for an item is asked for when that item is first polled for and held while the
/// inner stream is pending, so in half-open a stream waiting for its next item holds a trial
/// slot (up to the trial lease). Dropped while waiting, it counts nothing and gives the slot
/// back, as a dropped [`CallAsync`](crate::CallAsync) does.
///
/// Implements `Stream<Item = Result<T, Error<E>>>` and `FusedStream` when
/// `S: Stream<Item = Result<T, E>>`, `E: Debug` and `K: FnMut(&Result<T, E>) -> Outcome`; also `Debug`.
pub type GuardedStream<'a, C, const L: usize, S, K> = StreamGuard<Gate<'a, C, L>, S, K>;

/// A stream of `Result`s whose whole run is **one** guarded call: from
/// [`CircuitBreaker::guard_stream_run`] and
/// [`guard_stream_run_with`](CircuitBreaker::guard_stream_run_with).
///
/// The stream counterpart of [`GuardedIterRun`](crate::GuardedIterRun), with the same rules
/// (and the same mapping from PyBreaker's guarded generators): admitted when first polled; a
/// rejection is one `Err(Error::Rejected(_))` item, then the end; the first item classified a
/// failure reports the run's failure and ends it; the end of the inner stream reports one
/// success; dropped before either, it counts nothing and gives back its half-open trial slot.
///
/// Implements `Stream<Item = Result<T, Error<E>>>` and `FusedStream` when
/// `S: Stream<Item = Result<T, E>>`, `E: Debug` and `K: FnMut(&Result<T, E>) -> Outcome`; also `Debug`,
/// and has the method `finish(self: Pin<&mut Self>) -> Option<Recorded>` (see
/// [`GuardedIterRun::finish`](crate::GuardedIterRun::finish)).
pub type GuardedStreamRun<'a, C, const L: usize, S, K> = StreamRunGuard<Gate<'a, C, L>, S, K>;

pin_project! {
    /// The struct behind [`GuardedStream`]; use that name.
    #[must_use = "streams do nothing unless polled"]
    pub struct StreamGuard<G, S, K> {
        // Declared first so that the inner stream is dropped before the permit in `gate`
        // gives back its slot.
        #[pin]
        stream: S,
        classify: K,
        done: bool,
        gate: G,
    }
}

impl<'a, C, const L: usize, S, K, T, E> Stream for StreamGuard<Gate<'a, C, L>, S, K>
where
    C: Clock,
    S: Stream<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    type Item = Result<T, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let permit = match this.gate.admit() {
            Ok(p) => p,
            Err(r) => return Poll::Ready(Some(Err(Error::Rejected(r)))),
        };
        // The permit stays on this stack while the inner stream is polled: a panic in it drops
        // the permit during the unwind, which counts a failure with `std`.
        match this.stream.poll_next(cx) {
            Poll::Pending => {
                this.gate.permit = Some(permit);
                Poll::Pending
            }
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(result)) => {
                let outcome = (this.classify)(&result);
                Poll::Ready(Some(settle(Some(permit), outcome, result)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // Every inner item comes out eventually; rejections come on top, without bound.
            (self.stream.size_hint().0, None)
        }
    }
}

impl<'a, C, const L: usize, S, K, T, E> FusedStream for StreamGuard<Gate<'a, C, L>, S, K>
where
    C: Clock,
    S: Stream<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<G: fmt::Debug, S: fmt::Debug, K> fmt::Debug for StreamGuard<G, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStream")
            .field("stream", &self.stream)
            .field("done", &self.done)
            .field("gate", &self.gate)
            .finish()
    }
}

pin_project! {
    /// The struct behind [`GuardedStreamRun`]; use that name.
    #[must_use = "streams do nothing unless polled"]
    pub struct StreamRunGuard<G, S, K> {
        // Declared first so that the inner stream is dropped before the permit in `gate`
        // gives back its slot.
        #[pin]
        stream: S,
        classify: K,
        phase: Phase,
        gate: G,
    }
}

impl<'a, C: Clock, const L: usize, S, K> StreamRunGuard<Gate<'a, C, L>, S, K> {
    /// Ends the run here and reports it as a success, for a stream stopped before it ended.
    /// Returns what the breaker did with the report, or `None` if there was nothing to report
    /// (not started, rejected, or already reported). Afterwards the stream yields `None`.
    ///
    /// See [`GuardedIterRun::finish`](crate::GuardedIterRun::finish).
    pub fn finish(self: Pin<&mut Self>) -> Option<Recorded> {
        let this = self.project();
        *this.phase = Phase::Done;
        this.gate.permit.take().map(Permit::success)
    }
}

impl<'a, C, const L: usize, S, K, T, E> Stream for StreamRunGuard<Gate<'a, C, L>, S, K>
where
    C: Clock,
    S: Stream<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    type Item = Result<T, Error<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let permit = match run_begin(this.gate, this.phase) {
            Ok(permit) => permit,
            Err(item) => return Poll::Ready(item),
        };
        // The permit stays on this stack while the inner stream is polled (see above).
        match this.stream.poll_next(cx) {
            Poll::Pending => {
                this.gate.permit = permit;
                Poll::Pending
            }
            Poll::Ready(item) => {
                Poll::Ready(run_end(this.gate, this.phase, permit, item, this.classify))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let upper = self.stream.size_hint().1;
        match self.phase {
            Phase::Idle => (0, upper.map(|n| n.max(1))),
            Phase::Running => (0, upper),
            Phase::Done => (0, Some(0)),
        }
    }
}

impl<'a, C, const L: usize, S, K, T, E> FusedStream for StreamRunGuard<Gate<'a, C, L>, S, K>
where
    C: Clock,
    S: Stream<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    fn is_terminated(&self) -> bool {
        self.phase == Phase::Done
    }
}

impl<G: fmt::Debug, S: fmt::Debug, K> fmt::Debug for StreamRunGuard<G, S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStreamRun")
            .field("stream", &self.stream)
            .field("phase", &self.phase)
            .field("gate", &self.gate)
            .finish()
    }
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// Guards a stream of `Result`s item by item: each item is one call, admitted when it is
    /// first polled for and reported when it arrives; `Ok` counts as a success and `Err` as a
    /// failure.
    ///
    /// While the breaker rejects, the stream yields `Err(Error::Rejected(_))` **without
    /// ending** and without polling the inner stream. See [`GuardedStream`]; for one call over
    /// the whole stream, see [`guard_stream_run`](Self::guard_stream_run).
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, State};
    /// use core::time::Duration;
    /// use futures::{executor::block_on, stream, StreamExt};
    ///
    /// let clock = ManualClock::new();
    /// let feed = CircuitBreaker::<_>::new(
    ///     "feed",
    ///     Config::new().fail_max(1).reset_timeout(Duration::from_secs(5)),
    ///     &clock,
    /// );
    /// let mut guarded = feed.guard_stream(stream::iter([Ok(1), Err("gap"), Ok(2)]));
    ///
    /// block_on(async {
    ///     assert_eq!(guarded.next().await, Some(Ok(1)));
    ///     assert!(guarded.next().await.unwrap().unwrap_err().tripped());
    ///     // Open: rejected without polling the inner stream, which keeps its items.
    ///     assert!(matches!(guarded.next().await, Some(Err(Error::Rejected(_)))));
    ///     clock.advance(Duration::from_secs(5));
    ///     assert_eq!(guarded.next().await, Some(Ok(2))); // the trial, which closes it
    ///     assert_eq!(guarded.next().await, None);
    /// });
    /// assert_eq!(feed.state(), State::Closed);
    /// ```
    pub fn guard_stream<S, T, E>(
        &self,
        stream: S,
    ) -> GuardedStream<'_, C, L, S, DefaultClassifier<T, E>>
    where
        S: Stream<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        self.guard_stream_with(Outcome::of as DefaultClassifier<T, E>, stream)
    }

    /// Like [`guard_stream`](Self::guard_stream), but counts each item as `classify` says (see
    /// [`call_with`](Self::call_with)).
    pub fn guard_stream_with<K, S, T, E>(
        &self,
        classify: K,
        stream: S,
    ) -> GuardedStream<'_, C, L, S, K>
    where
        K: FnMut(&Result<T, E>) -> Outcome,
        S: Stream<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        StreamGuard {
            stream,
            classify,
            done: false,
            gate: Gate::new(self),
        }
    }

    /// Guards a whole stream of `Result`s as **one** call, as PyBreaker guards a generator:
    /// admitted when first polled, a failure at the first `Err` (which ends the stream), a
    /// success when the inner stream ends; dropped before either, it counts nothing. See
    /// [`GuardedStreamRun`] and [`GuardedIterRun`](crate::GuardedIterRun).
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock};
    /// use futures::{executor::block_on, stream, StreamExt};
    ///
    /// let clock = ManualClock::new();
    /// let sync = CircuitBreaker::<_>::new("sync", Config::new(), &clock);
    ///
    /// let batch = sync.guard_stream_run(stream::iter([Ok(1), Err("conflict"), Ok(3)]));
    /// let got: Vec<_> = block_on(batch.collect());
    /// assert_eq!(got, [Ok(1), Err(Error::Failed { error: "conflict", tripped: false })]);
    /// assert_eq!(sync.fail_counter(), 1);
    /// ```
    pub fn guard_stream_run<S, T, E>(
        &self,
        stream: S,
    ) -> GuardedStreamRun<'_, C, L, S, DefaultClassifier<T, E>>
    where
        S: Stream<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        self.guard_stream_run_with(Outcome::of as DefaultClassifier<T, E>, stream)
    }

    /// Like [`guard_stream_run`](Self::guard_stream_run), but `classify` says which items are
    /// the run's failure ([`Outcome::Failure`]); the others pass through.
    pub fn guard_stream_run_with<K, S, T, E>(
        &self,
        classify: K,
        stream: S,
    ) -> GuardedStreamRun<'_, C, L, S, K>
    where
        K: FnMut(&Result<T, E>) -> Outcome,
        S: Stream<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        StreamRunGuard {
            stream,
            classify,
            phase: Phase::Idle,
            gate: Gate::new(self),
        }
    }
}
