//! Guarded iterators: [`GuardedIter`] (each item is one call) and [`GuardedIterRun`] (the whole
//! run is one call, as PyBreaker guards a generator); and the run logic the stream guards share.

use core::fmt;
use core::iter::FusedIterator;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::error::Error;
use crate::future::{settle, DefaultClassifier, Gate};
use crate::permit::{Permit, Recorded};
use crate::state::Outcome;

/// An iterator of `Result`s whose every item is one guarded call: from
/// [`CircuitBreaker::guard_iter`] and [`guard_iter_with`](CircuitBreaker::guard_iter_with).
///
/// Each `next()` asks the breaker for a permit; if admitted it pulls one item from the inner
/// iterator and reports it (`Ok` a success, `Err` a failure, or as the classifier says), and
/// yields `Ok(item)` or `Err(Error::Failed { error, tripped })`.
///
/// **A rejection does not end the iteration.** While the breaker rejects, `next()` yields
/// `Some(Err(Error::Rejected(_)))` without pulling from the inner iterator, and the same items
/// are still there once the breaker admits calls again. A loop that ignores rejections spins
/// until the open period has passed; stop at the first rejection with `take_while`, `map_while`
/// or a `break`, or wait for [`Rejected::retry_after`](crate::Rejected::retry_after) before
/// going on. The iteration ends (for good: the iterator is fused) when the inner one does; the
/// permit asked for the `next()` that found the end is dropped unreported, so it counts nothing
/// and gives back any half-open trial slot.
///
/// For PyBreaker's guarding of a generator, where the whole run is one call, see
/// [`GuardedIterRun`].
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct GuardedIter<'a, C: Clock, const L: usize, I, K> {
    breaker: &'a CircuitBreaker<C, L>,
    iter: I,
    classify: K,
    done: bool,
}

impl<'a, C: Clock, const L: usize, I, K> GuardedIter<'a, C, L, I, K> {
    /// The inner iterator, and with it any items not pulled yet.
    pub fn into_inner(self) -> I {
        self.iter
    }
}

impl<C, const L: usize, I, K, T, E> Iterator for GuardedIter<'_, C, L, I, K>
where
    C: Clock,
    I: Iterator<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    type Item = Result<T, Error<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let permit = match self.breaker.allow() {
            Ok(p) => p,
            Err(r) => return Some(Err(Error::Rejected(r))),
        };
        // The permit stays on this stack while the inner iterator runs: a panic in it drops
        // the permit during the unwind, which counts a failure with `std`.
        let Some(result) = self.iter.next() else {
            self.done = true;
            return None;
        };
        let outcome = (self.classify)(&result);
        Some(settle(Some(permit), outcome, result))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // Every inner item comes out eventually; rejections come on top, without bound.
            (self.iter.size_hint().0, None)
        }
    }
}

impl<C, const L: usize, I, K, T, E> FusedIterator for GuardedIter<'_, C, L, I, K>
where
    C: Clock,
    I: Iterator<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
}

impl<C: Clock, const L: usize, I: fmt::Debug, K> fmt::Debug for GuardedIter<'_, C, L, I, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedIter")
            .field("breaker", &self.breaker.name())
            .field("iter", &self.iter)
            .field("done", &self.done)
            .finish()
    }
}

/// An iterator of `Result`s whose whole run is **one** guarded call, as PyBreaker guards a
/// generator function: from [`CircuitBreaker::guard_iter_run`] and
/// [`guard_iter_run_with`](CircuitBreaker::guard_iter_run_with).
///
/// - The first `next()` asks the breaker for one permit. If the call is rejected, it yields
///   `Err(Error::Rejected(_))` and the run is over; the inner iterator is never pulled.
/// - Items pass through as `Ok(item)` or `Err(Error::Failed { error, tripped: false })`.
/// - The first item the classifier calls a [`Failure`](Outcome::Failure) (by default, the first
///   `Err`) reports the run's failure; it is yielded (with `tripped` set if it tripped the
///   breaker) and the run ends there: the next `next()` returns `None` without pulling.
///   Items classified as [`Success`](Outcome::Success) or [`Ignored`](Outcome::Ignored) pass
///   through and the run goes on.
/// - When the inner iterator ends, the run reports one success.
/// - Dropped before either, the run counts nothing and gives back its half-open trial slot.
///   [`finish`](Self::finish) reports a run stopped early as a success.
///
/// While the run is in progress it holds its permit, so in half-open it holds a trial slot
/// between `next()` calls, up to the trial lease.
///
/// # PyBreaker's guarded generators
/// PyBreaker's `call` (and its decorator) treats a generator function as one call: it checks
/// the state when the generator function is called, counts a success when the generator is
/// exhausted (`StopIteration`) and a failure when any step raises, which also ends the
/// generator. [`guard_iter_run`](CircuitBreaker::guard_iter_run) is that mode; per-item guarding
/// is [`guard_iter`](CircuitBreaker::guard_iter).
///
/// | PyBreaker, guarded generator | `guard_iter_run` | `guard_iter` |
/// |---|---|---|
/// | one call for the whole run | one permit for the whole run | one permit per item |
/// | state checked when the generator function is called | at the first `next()` | at every `next()` |
/// | `CircuitBreakerError` raised when open | the first `next()` yields `Err(Error::Rejected)`, then `None` | `Err(Error::Rejected)` per `next()` while open; the iteration goes on |
/// | an exception at any step: one failure, the generator ends | the first item classified a failure: one failure, the run ends after it | every item counted as classified; the iteration goes on |
/// | exhausted: one success | inner iterator ends: one success | nothing more |
/// | excluded exception: a success (and the generator ends, as it raised) | classified `Success` or `Ignored`: passed through, the run goes on | counted as classified |
/// | closed before exhaustion (`break`, garbage collection): `generator_call` catches `BaseException` around its `yield`s, so the `GeneratorExit` counts as a failure | dropped: counts nothing, gives back the trial slot; or [`finish`](Self::finish): a success | nothing in flight |
/// | half-open lets every caller through | the run holds one trial slot until it ends | each item is a trial |
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct GuardedIterRun<'a, C: Clock, const L: usize, I, K> {
    iter: I,
    classify: K,
    phase: Phase,
    gate: Gate<'a, C, L>,
}

impl<C: Clock, const L: usize, I, K> GuardedIterRun<'_, C, L, I, K> {
    /// Ends the run here and reports it as a success, for a run stopped before the inner
    /// iterator ended (having read what it needed). Returns what the breaker did with the
    /// report, or `None` if there was nothing to report: the run had not started, was
    /// rejected, or had already reported. Afterwards `next()` returns `None`.
    pub fn finish(&mut self) -> Option<Recorded> {
        self.phase = Phase::Done;
        self.gate.permit.take().map(Permit::success)
    }
}

impl<C, const L: usize, I, K, T, E> Iterator for GuardedIterRun<'_, C, L, I, K>
where
    C: Clock,
    I: Iterator<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
    type Item = Result<T, Error<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        let permit = match run_begin(&mut self.gate, &mut self.phase) {
            Ok(permit) => permit,
            Err(item) => return item,
        };
        // The permit stays on this stack while the inner iterator runs (see `GuardedIter`).
        let item = self.iter.next();
        run_end(
            &mut self.gate,
            &mut self.phase,
            permit,
            item,
            &mut self.classify,
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let upper = self.iter.size_hint().1;
        match self.phase {
            // A rejection yields one item.
            Phase::Idle => (0, upper.map(|n| n.max(1))),
            // A failure ends the run early.
            Phase::Running => (0, upper),
            Phase::Done => (0, Some(0)),
        }
    }
}

impl<C, const L: usize, I, K, T, E> FusedIterator for GuardedIterRun<'_, C, L, I, K>
where
    C: Clock,
    I: Iterator<Item = Result<T, E>>,
    E: fmt::Debug,
    K: FnMut(&Result<T, E>) -> Outcome,
{
}

impl<C: Clock, const L: usize, I: fmt::Debug, K> fmt::Debug for GuardedIterRun<'_, C, L, I, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedIterRun")
            .field("iter", &self.iter)
            .field("phase", &self.phase)
            .field("gate", &self.gate)
            .finish()
    }
}

/// Where a guarded run is (iterator or stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not pulled yet: the breaker has not been asked.
    Idle,
    /// Admitted; the permit is in the gate between items.
    Running,
    /// Rejected, failed, ended or finished.
    Done,
}

/// Before pulling an item of a run: the permit to pull it under (`None` only if an earlier pull
/// panicked and was resumed), or the item to yield instead of pulling.
#[allow(clippy::type_complexity)]
pub(crate) fn run_begin<'a, C: Clock, const L: usize, T, E>(
    gate: &mut Gate<'a, C, L>,
    phase: &mut Phase,
) -> Result<Option<Permit<'a, C, L>>, Option<Result<T, Error<E>>>> {
    match *phase {
        Phase::Done => Err(None),
        Phase::Running => Ok(gate.permit.take()),
        Phase::Idle => match gate.admit() {
            Ok(p) => {
                *phase = Phase::Running;
                Ok(Some(p))
            }
            Err(r) => {
                *phase = Phase::Done;
                Err(Some(Err(Error::Rejected(r))))
            }
        },
    }
}

/// After pulling `item` of a run under `permit`: reports the run's end or its first failure, or
/// keeps the permit in the gate for the next item.
pub(crate) fn run_end<'a, C: Clock, const L: usize, T, E: fmt::Debug>(
    gate: &mut Gate<'a, C, L>,
    phase: &mut Phase,
    permit: Option<Permit<'a, C, L>>,
    item: Option<Result<T, E>>,
    classify: impl FnOnce(&Result<T, E>) -> Outcome,
) -> Option<Result<T, Error<E>>> {
    let Some(result) = item else {
        *phase = Phase::Done;
        if let Some(p) = permit {
            let _ = p.success();
        }
        return None;
    };
    if classify(&result) == Outcome::Failure {
        *phase = Phase::Done;
        return Some(settle(permit, Outcome::Failure, result));
    }
    gate.permit = permit;
    Some(result.map_err(|error| Error::Failed {
        error,
        tripped: false,
    }))
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// Guards an iterator of `Result`s item by item: each `next()` is one call, admitted by the
    /// breaker and reported; `Ok` counts as a success and `Err` as a failure.
    ///
    /// While the breaker rejects, `next()` yields `Err(Error::Rejected(_))` **without ending
    /// the iteration** and without pulling from `iter`: stop at the first rejection (with
    /// `take_while` or `break`) unless you mean to wait. See [`GuardedIter`]; for one call over
    /// the whole run, as PyBreaker guards a generator, see [`guard_iter_run`](Self::guard_iter_run).
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, State};
    /// use core::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let sensor = CircuitBreaker::<_>::new(
    ///     "sensor",
    ///     Config::new().fail_max(2).reset_timeout(Duration::from_secs(5)),
    ///     &clock,
    /// );
    /// let mut readings = [Ok(20), Err("crc"), Err("crc"), Ok(21), Ok(22)].into_iter();
    ///
    /// // Read until the breaker rejects: the two CRC errors trip it.
    /// let got: Vec<_> = sensor
    ///     .guard_iter(readings.by_ref())
    ///     .take_while(|r| !matches!(r, Err(Error::Rejected(_))))
    ///     .collect();
    /// assert_eq!(got.len(), 3);
    /// assert!(got[2].as_ref().unwrap_err().tripped());
    /// assert_eq!(sensor.state(), State::Open);
    ///
    /// // After the open period, the rest is read; the first item is the trial call.
    /// clock.advance(Duration::from_secs(5));
    /// let rest: Vec<_> = sensor.guard_iter(readings).collect();
    /// assert_eq!(rest, [Ok(21), Ok(22)]);
    /// assert_eq!(sensor.state(), State::Closed);
    /// ```
    pub fn guard_iter<I, T, E>(
        &self,
        iter: I,
    ) -> GuardedIter<'_, C, L, I::IntoIter, DefaultClassifier<T, E>>
    where
        I: IntoIterator<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        self.guard_iter_with(Outcome::of as DefaultClassifier<T, E>, iter)
    }

    /// Like [`guard_iter`](Self::guard_iter), but counts each item as `classify` says (see
    /// [`call_with`](Self::call_with)).
    pub fn guard_iter_with<K, I, T, E>(
        &self,
        classify: K,
        iter: I,
    ) -> GuardedIter<'_, C, L, I::IntoIter, K>
    where
        K: FnMut(&Result<T, E>) -> Outcome,
        I: IntoIterator<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        GuardedIter {
            breaker: self,
            iter: iter.into_iter(),
            classify,
            done: false,
        }
    }

    /// Guards the whole run of an iterator of `Result`s as **one** call, as PyBreaker guards a
    /// generator function: admitted at the first `next()`, a failure at the first `Err` (which
    /// ends the run), a success when the iterator ends. Dropped before either, it counts
    /// nothing. See [`GuardedIterRun`] for the details and the mapping from PyBreaker.
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, State};
    ///
    /// let clock = ManualClock::new();
    /// let export = CircuitBreaker::<_>::new("export", Config::new().fail_max(1), &clock);
    ///
    /// // A run that ends: one success.
    /// let pages: Vec<_> = export.guard_iter_run([Ok::<_, &str>(1), Ok(2)]).collect();
    /// assert_eq!(pages, [Ok(1), Ok(2)]);
    ///
    /// // A run that fails on page 2: one failure, and the run stops there.
    /// let pages: Vec<_> = export.guard_iter_run([Ok(1), Err("io"), Ok(3)]).collect();
    /// assert_eq!(pages[1], Err(Error::Failed { error: "io", tripped: true }));
    /// assert_eq!(pages.len(), 2);
    /// assert_eq!(export.state(), State::Open);
    ///
    /// // While open, a run is one rejection.
    /// let mut run = export.guard_iter_run([Ok::<_, &str>(1), Ok(2)]);
    /// assert!(matches!(run.next(), Some(Err(Error::Rejected(_)))));
    /// assert_eq!(run.next(), None);
    /// ```
    pub fn guard_iter_run<I, T, E>(
        &self,
        iter: I,
    ) -> GuardedIterRun<'_, C, L, I::IntoIter, DefaultClassifier<T, E>>
    where
        I: IntoIterator<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        self.guard_iter_run_with(Outcome::of as DefaultClassifier<T, E>, iter)
    }

    /// Like [`guard_iter_run`](Self::guard_iter_run), but `classify` says which items are the
    /// run's failure ([`Outcome::Failure`]); the others pass through.
    pub fn guard_iter_run_with<K, I, T, E>(
        &self,
        classify: K,
        iter: I,
    ) -> GuardedIterRun<'_, C, L, I::IntoIter, K>
    where
        K: FnMut(&Result<T, E>) -> Outcome,
        I: IntoIterator<Item = Result<T, E>>,
        E: fmt::Debug,
    {
        GuardedIterRun {
            iter: iter.into_iter(),
            classify,
            phase: Phase::Idle,
            gate: Gate::new(self),
        }
    }
}
