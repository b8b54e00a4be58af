//! [`OwnedPermit`]: a [`Permit`] that owns a handle to its breaker instead of borrowing it.
//!
//! A [`Permit<'a>`](Permit) borrows the breaker, so it cannot be stored next to the `Arc` it
//! borrows from, in a struct that outlives the call that made it, such as a tower service
//! between `poll_ready` and `call` or a response future. An [`OwnedPermit`] keeps a clone of
//! the handle (`&'static CircuitBreaker`, `Arc<CircuitBreaker>`, any
//! `Deref<Target = CircuitBreaker<C, L>>`) and the same admission: the generation, whether it
//! holds a trial slot, whether a listener was registered. It is reported, dropped and checked
//! against the generation exactly as a [`Permit`] is; both go through the breaker's `finish`
//! and `release`.
//!
//! [`Permit`]: crate::Permit

use core::fmt;
use core::ops::Deref;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::error::Rejected;
use crate::permit::Recorded;
use crate::state::Outcome;

/// An admission detached from the breaker it came from: what a [`Permit`](crate::Permit)
/// holds besides its borrow, packed into one word. Made only by `Permit::into_ticket`.
///
/// One `u64` rather than three small fields: a ticket is stored by `poll_ready` and read back
/// by `call` and by the response future, and a word is written and read whole, where separate
/// bytes written one by one and read back together stall the store-to-load forwarding of x86
/// CPUs (in the tower layer's benchmark, packing more than halved the time per request).
///
/// | bits | field |
/// |---|---|
/// | 0..16 | the generation the call was admitted in |
/// | 16..48 | the highest listener sequence number its `BeforeCall` reached (0: none), so its outcome goes only to those listeners |
/// | 48 | it holds a half-open trial slot |
/// | 49 | always set, so the word is never zero and `Option<Ticket>` is one word |
#[derive(Clone, Copy, Debug)]
pub struct Ticket(core::num::NonZeroU64);

impl Ticket {
    const GEN_MASK: u64 = 0xFFFF;
    const OBSERVED_SHIFT: u32 = 16;
    const TRIAL: u64 = 1 << 48;
    const SET: u64 = 1 << 49;

    #[inline]
    pub(crate) fn new(gen: u64, trial: bool, observed: u32) -> Self {
        let bits = (gen & Self::GEN_MASK)
            | (u64::from(observed) << Self::OBSERVED_SHIFT)
            | if trial { Self::TRIAL } else { 0 }
            | Self::SET;
        // `SET` makes `bits` non-zero; the fallback is never taken and keeps a panic path out.
        Ticket(core::num::NonZeroU64::new(bits).unwrap_or(core::num::NonZeroU64::MIN))
    }

    /// The generation, as the breaker's `finish` and `release` take it (`as _` so that this
    /// module does not name the generation's width).
    #[inline]
    fn gen(self) -> u64 {
        self.0.get() & Self::GEN_MASK
    }

    #[inline]
    fn trial(self) -> bool {
        self.0.get() & Self::TRIAL != 0
    }

    #[inline]
    fn observed(self) -> u32 {
        (self.0.get() >> Self::OBSERVED_SHIFT) as u32
    }
}

mod sealed {
    use super::*;

    /// What an [`OwnedPermit`] needs from its handle; implemented for every
    /// `Deref<Target = CircuitBreaker<C, L>>`. In a private module, so it cannot be named,
    /// implemented or called outside the crate.
    pub trait Handle {
        /// The breaker's `allow`, detached.
        fn allow_ticket(&self) -> Result<Ticket, Rejected>;
        /// The breaker's `finish` for a ticket, with the caller's error for the event.
        fn finish_ticket(
            &self,
            ticket: Ticket,
            outcome: Outcome,
            error: Option<&dyn fmt::Debug>,
        ) -> Recorded;
        /// What dropping an unreported permit does.
        fn drop_ticket(&self, ticket: Ticket);
        /// Gives the ticket back unreported: frees its trial slot, if it holds one.
        fn release_ticket(&self, ticket: Ticket);
        /// The breaker's name.
        fn handle_name(&self) -> &'static str;
        /// Whether the breaker is still in the generation the ticket was admitted in.
        fn ticket_is_current(&self, ticket: Ticket) -> bool;
    }

    impl<B, C, const L: usize> Handle for B
    where
        B: Deref<Target = CircuitBreaker<C, L>>,
        C: Clock,
    {
        #[inline(always)]
        fn allow_ticket(&self) -> Result<Ticket, Rejected> {
            self.deref().allow().map(crate::permit::Permit::into_ticket)
        }

        #[inline(always)]
        fn finish_ticket(
            &self,
            t: Ticket,
            outcome: Outcome,
            error: Option<&dyn fmt::Debug>,
        ) -> Recorded {
            self.deref()
                .finish_with(t.gen() as _, outcome, t.observed(), error)
        }

        fn drop_ticket(&self, t: Ticket) {
            // The rules of `Permit`'s `Drop`.
            #[cfg(feature = "std")]
            if std::thread::panicking() {
                let _ = self
                    .deref()
                    .finish(t.gen() as _, Outcome::Failure, t.observed());
                return;
            }
            self.release_ticket(t);
        }

        fn release_ticket(&self, t: Ticket) {
            if t.trial() {
                self.deref().release(t.gen() as _);
            }
        }

        fn handle_name(&self) -> &'static str {
            self.deref().name()
        }

        fn ticket_is_current(&self, t: Ticket) -> bool {
            // Through the public snapshot, so this module reads no field of the word itself.
            u64::from(self.deref().snapshot().generation) == t.gen()
        }
    }
}

/// A shared handle to a [`CircuitBreaker`]: implemented for every type that dereferences to
/// one, such as `&'static CircuitBreaker<C, L>`, `&CircuitBreaker<C, L>`,
/// `Arc<CircuitBreaker<C, L>>` or `Rc<CircuitBreaker<C, L>>`.
///
/// It cannot be implemented outside the crate; it exists so that [`OwnedPermit`] and the
/// tower service can be generic over the handle without naming the clock and the listener
/// capacity.
pub trait BreakerHandle: sealed::Handle {}

impl<B: sealed::Handle> BreakerHandle for B {}

/// The name of the breaker behind `handle`, for `Debug` output.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn handle_name<B: BreakerHandle>(handle: &B) -> &'static str {
    sealed::Handle::handle_name(handle)
}

/// Permission to run one call, from [`CircuitBreaker::allow_owned`]: a [`Permit`] that owns a
/// handle `B` to its breaker instead of borrowing it, so that it can be stored beside the
/// handle, moved into a future or sent to another task.
///
/// The rules are [`Permit`]'s: report the outcome with [`success`](Self::success),
/// [`failure`](Self::failure), [`ignore`](Self::ignore) or [`report`](Self::report). A permit
/// dropped unreported counts nothing and frees its half-open trial slot, if it holds one; with
/// `std`, a permit dropped while its thread panics counts as a failure (the tower layer's
/// stored permits excepted: see its module documentation, "Panics"). A report from an
/// earlier generation (the breaker changed state since admission) is dropped
/// ([`Recorded::Dropped`]).
///
/// ```
/// use std::sync::Arc;
/// use atomic_breaker::{CircuitBreaker, Config, ManualClock, OwnedPermit, Recorded, State};
///
/// let clock = ManualClock::new();
/// let db = Arc::new(CircuitBreaker::<_>::new("db", Config::new().fail_max(1), clock));
///
/// // Stored next to the Arc it came from: a `Permit<'_>` would borrow `db`.
/// struct Pending { handle: Arc<CircuitBreaker<ManualClock>>, permit: OwnedPermit<Arc<CircuitBreaker<ManualClock>>> }
/// let pending = Pending { handle: db.clone(), permit: CircuitBreaker::allow_owned(db.clone()).unwrap() };
/// assert_eq!(pending.permit.failure(), Recorded::Tripped);
/// assert_eq!(pending.handle.state(), State::Open);
/// ```
///
/// [`Permit`]: crate::Permit
#[must_use = "report the call's outcome with success(), failure() or ignore()"]
pub struct OwnedPermit<B: BreakerHandle> {
    breaker: B,
    /// `None` once reported, so that `Drop` does nothing.
    ticket: Option<Ticket>,
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// Like [`allow`](Self::allow), but the permit owns `handle` (an `Arc`, a `&'static`, any
    /// `Deref<Target = CircuitBreaker>`) instead of borrowing the breaker.
    ///
    /// The same cost as `allow` on the closed path, plus moving the handle.
    #[inline]
    pub fn allow_owned<B>(handle: B) -> Result<OwnedPermit<B>, Rejected>
    where
        B: Deref<Target = Self>,
    {
        OwnedPermit::allow(handle)
    }
}

impl<B: BreakerHandle> OwnedPermit<B> {
    /// Asks the breaker behind `handle` for a permit; see [`CircuitBreaker::allow_owned`].
    #[inline(always)]
    pub fn allow(handle: B) -> Result<Self, Rejected> {
        let ticket = sealed::Handle::allow_ticket(&handle)?;
        Ok(OwnedPermit {
            breaker: handle,
            ticket: Some(ticket),
        })
    }

    /// The handle to the breaker.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }

    /// Whether the breaker is still in the generation this permit was admitted in, that is
    /// whether a report would be counted. Reads the whole state (a snapshot): not for hot paths.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn is_current(&self) -> bool {
        self.ticket
            .is_some_and(|t| sealed::Handle::ticket_is_current(&self.breaker, t))
    }

    /// Whether this permit holds a half-open trial slot.
    pub fn is_trial(&self) -> bool {
        self.ticket.is_some_and(Ticket::trial)
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

    /// The call failed with `error`, lent to the [`Failure`](crate::EventKind::Failure) event
    /// (see [`Permit::failure_with`](crate::Permit::failure_with)).
    pub fn failure_with(self, error: &dyn fmt::Debug) -> Recorded {
        self.report_inner(Outcome::Failure, Some(error))
    }

    /// The call ended in an ignored `error`, lent to the
    /// [`Ignored`](crate::EventKind::Ignored) event.
    pub fn ignore_with(self, error: &dyn fmt::Debug) -> Recorded {
        self.report_inner(Outcome::Ignored, Some(error))
    }

    /// Reports `outcome` of a call that ended in `error` (see
    /// [`Permit::report_with`](crate::Permit::report_with)).
    pub fn report_with(self, outcome: Outcome, error: &dyn fmt::Debug) -> Recorded {
        self.report_inner(outcome, Some(error))
    }

    /// Reports `outcome`.
    #[inline]
    pub fn report(self, outcome: Outcome) -> Recorded {
        self.report_inner(outcome, None)
    }

    /// Gives the admission back unreported, **even while the thread panics**: nothing counted,
    /// trial slot freed. For holders that know a panic unwinding past them is not the call's
    /// (the tower service's permit between `poll_ready` and `call`, or a response future's
    /// between polls); a dropped permit counts a failure during a panic.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn cancel(mut self) {
        if let Some(t) = self.ticket.take() {
            sealed::Handle::release_ticket(&self.breaker, t);
        }
    }

    #[inline]
    fn report_inner(mut self, outcome: Outcome, error: Option<&dyn fmt::Debug>) -> Recorded {
        match self.ticket.take() {
            Some(t) => sealed::Handle::finish_ticket(&self.breaker, t, outcome, error),
            // Unreachable: only `report` takes the ticket, and it consumes the permit.
            None => Recorded::Dropped,
        }
    }
}

impl<B: BreakerHandle> Drop for OwnedPermit<B> {
    /// Does something only for a permit dropped unreported: the rules of [`Permit`]'s `Drop`.
    ///
    /// [`Permit`]: crate::Permit
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            sealed::Handle::drop_ticket(&self.breaker, t);
        }
    }
}

impl<B: BreakerHandle> fmt::Debug for OwnedPermit<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OwnedPermit");
        d.field("breaker", &sealed::Handle::handle_name(&self.breaker));
        if let Some(t) = self.ticket {
            d.field("generation", &t.gen()).field("trial", &t.trial());
        }
        d.finish()
    }
}
