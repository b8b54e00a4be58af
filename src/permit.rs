//! [`Permit`]: the two-step API's admission ticket.

use core::fmt;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::owned_permit::Ticket;
use crate::state::Outcome;

/// Permission to run one call, from [`CircuitBreaker::allow`].
///
/// Report the outcome with [`success`](Self::success), [`failure`](Self::failure),
/// [`ignore`](Self::ignore) or [`report`](Self::report). A permit dropped unreported counts
/// nothing and frees its half-open trial slot, if it holds one; with `std`, a permit dropped
/// while its thread panics counts as a failure (the call blew up). A permit cannot tell the
/// call's panic from another one; the tower layer, which knows when its call runs, counts only
/// the call's own (see its module documentation, "Panics").
///
/// So an early return drops it unreported: `let v = fetch()?;` between `allow` and the report
/// counts nothing when `fetch` fails (PyBreaker's `with breaker.calling():` would count the
/// exception). Report first, then propagate:
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, ManualClock, Outcome};
///
/// fn fetch() -> Result<u32, &'static str> {
///     Err("timeout")
/// }
/// let clock = ManualClock::new();
/// let breaker = CircuitBreaker::<_>::new("api", Config::new(), &clock);
/// let run = || -> Result<u32, &'static str> {
///     let permit = breaker.allow().map_err(|_| "rejected")?;
///     let result = fetch();
///     permit.report(Outcome::of(&result));
///     result
/// };
/// assert!(run().is_err());
/// assert_eq!(breaker.fail_counter(), 1);
/// ```
///
/// A permit remembers the generation it was admitted in: if the breaker has changed state
/// since, its report is dropped ([`Recorded::Dropped`]) and dropping it frees no trial slot, so
/// a slow call started before a trip cannot close a half-open breaker. The generation has 16
/// bits: only a permit held across a multiple of 65,536 state changes (and trial re-arms) could
/// be taken for current.
#[must_use = "report the call's outcome with success(), failure() or ignore()"]
pub struct Permit<'a, C: Clock, const L: usize> {
    breaker: &'a CircuitBreaker<C, L>,
    gen: u16,
    trial: bool,
    /// The highest listener sequence number the `BeforeCall` dispatch called (0 if none): the
    /// outcome event goes only to listeners up to it, and is not dispatched at all when 0, which
    /// saves the report a load of the listener table on the closed path. When it is not 0,
    /// a success always takes the slow path, even if the state word's per-call bit has been
    /// cleared meanwhile, so a listener that got the `BeforeCall` gets the outcome.
    observed: u32,
}

/// What the breaker did with a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Recorded {
    /// Counted, without a state change.
    Counted,
    /// This report tripped the breaker: it is now Open.
    Tripped,
    /// This report closed the breaker (the last trial success it needed).
    Closed,
    /// Not counted: the permit belongs to an earlier generation, or the breaker is Disabled.
    Dropped,
}

impl<'a, C: Clock, const L: usize> Permit<'a, C, L> {
    #[inline]
    pub(crate) fn new(
        breaker: &'a CircuitBreaker<C, L>,
        gen: u16,
        trial: bool,
        observed: u32,
    ) -> Self {
        Permit {
            breaker,
            gen,
            trial,
            observed,
        }
    }

    /// The admission without the borrow of the breaker, for an [`OwnedPermit`] that keeps the
    /// breaker's handle itself; reported and dropped by the same rules.
    ///
    /// [`OwnedPermit`]: crate::OwnedPermit
    #[inline]
    pub(crate) fn into_ticket(self) -> Ticket {
        let ticket = Ticket::new(u64::from(self.gen), self.trial, self.observed);
        core::mem::forget(self);
        ticket
    }

    /// Whether this permit holds a half-open trial slot.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) -> Recorded {
        self.report(Outcome::Success)
    }

    /// The call failed; counts towards tripping.
    pub fn failure(self) -> Recorded {
        self.report(Outcome::Failure)
    }

    /// The call ended in an error that says nothing about the dependency; counts nothing.
    pub fn ignore(self) -> Recorded {
        self.report(Outcome::Ignored)
    }

    /// Reports `outcome`.
    #[inline]
    pub fn report(self, outcome: Outcome) -> Recorded {
        let (breaker, gen, observed) = (self.breaker, self.gen, self.observed);
        core::mem::forget(self);
        breaker.finish(gen, outcome, observed)
    }

    /// The call failed with `error`: like [`failure`](Self::failure), and the
    /// [`Failure`](crate::EventKind::Failure) event lends `error` to the listeners that want
    /// per-call events. Nothing is copied or allocated; without such a listener the error is
    /// not looked at.
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, ManualClock};
    ///
    /// let breaker = CircuitBreaker::<_>::new("api", Config::new(), ManualClock::new());
    /// let permit = breaker.allow().unwrap();
    /// let err = std::io::Error::other("timeout");
    /// permit.failure_with(&err);
    /// assert_eq!(breaker.fail_counter(), 1);
    /// ```
    pub fn failure_with(self, error: &dyn fmt::Debug) -> Recorded {
        self.report_with(Outcome::Failure, error)
    }

    /// The call ended in an ignored `error`: like [`ignore`](Self::ignore), with the error lent
    /// to the [`Ignored`](crate::EventKind::Ignored) event.
    pub fn ignore_with(self, error: &dyn fmt::Debug) -> Recorded {
        self.report_with(Outcome::Ignored, error)
    }

    /// Reports `outcome` of a call that ended in `error`, lent to the `Failure` or `Ignored`
    /// event (a `Success` event carries no error: classifying an error as a success, as
    /// PyBreaker's excluded exceptions do, reports a plain success).
    #[inline]
    pub fn report_with(self, outcome: Outcome, error: &dyn fmt::Debug) -> Recorded {
        let (breaker, gen, observed) = (self.breaker, self.gen, self.observed);
        core::mem::forget(self);
        breaker.finish_with(gen, outcome, observed, Some(error))
    }

    /// Reports `outcome` of a call that returned `result`, lending its `Err` to the event.
    ///
    /// Only with `std`: lending makes a `&dyn Debug`, whose vtable links `E`'s `Debug` (and,
    /// for most error types, `core::fmt`'s integer and padding code) into the binary even when
    /// no listener ever formats it: about 1 KiB of flash on thumbv6m for a `u32` error. Without
    /// `std` the guarded calls report no error; a permit's
    /// [`failure_with`](Self::failure_with) lends one explicitly.
    #[inline]
    pub(crate) fn report_result<T, E: fmt::Debug>(
        self,
        outcome: Outcome,
        result: &Result<T, E>,
    ) -> Recorded {
        match result {
            Err(e) => self.report_error(outcome, e),
            Ok(_) => self.report(outcome),
        }
    }

    /// Reports `outcome` of a call that returned `Err(error)`, lending `error` to the event
    /// (only with `std`, as for [`report_result`](Self::report_result)).
    #[inline]
    pub(crate) fn report_error<E: fmt::Debug>(self, outcome: Outcome, error: &E) -> Recorded {
        #[cfg(feature = "std")]
        return self.report_with(outcome, error);
        #[cfg(not(feature = "std"))]
        {
            let _ = error;
            self.report(outcome)
        }
    }
}

impl<C: Clock, const L: usize> Drop for Permit<'_, C, L> {
    /// Runs only for a permit dropped unreported: `report` forgets the permit.
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        if std::thread::panicking() {
            let _ = self
                .breaker
                .finish(self.gen, Outcome::Failure, self.observed);
            return;
        }
        if self.trial {
            self.breaker.release(self.gen);
        }
    }
}

impl<C: Clock, const L: usize> fmt::Debug for Permit<'_, C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("generation", &self.gen)
            .field("trial", &self.trial)
            .finish()
    }
}
