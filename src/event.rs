//! Events delivered to listeners.

use core::time::Duration;

use crate::state::State;

/// A listener: a plain function pointer, so tables need no allocation and can be `const`.
///
/// Listeners run on the thread that caused the event, after the atomic update that made it,
/// outside any lock. They may call back into the breaker. With `std`, a listener that panics is
/// caught and counted ([`listener_panics`](crate::CircuitBreaker::listener_panics)); the breaker
/// state is already final when listeners run, so a panic cannot leave it wrong.
///
/// The outcome events of a call (`Success`, `Failure`, `Ignored`) go only to the listeners that
/// got its `BeforeCall`: a listener added while a call runs sees neither its `BeforeCall` nor
/// its outcome, so it never sees an outcome without its start. A closed-path success is
/// dispatched only while some listener that wants per-call events is still registered at the
/// report (removal is not a barrier: a listener removed during the call may miss its outcome). An outcome is
/// reported to listeners even when the breaker drops it (a permit from an earlier generation).
///
/// A listener hears only the events its [`Interest`] names; `with_listener` and `add_listener`
/// subscribe to all of them.
pub type Listener = fn(&Event);

/// Which events a listener is given: a set of event classes, combined with `|`.
///
/// Per-call events ([`CALLS`](Self::CALLS)) are the expensive ones: while no registered listener
/// wants them, the closed path dispatches nothing and pays nothing for the listener table (a bit
/// of the state word says whether anyone wants them, checked in the same masked compare as the
/// state). A metrics listener that wants only [`STATE_CHANGES`](Self::STATE_CHANGES) and
/// [`REJECTIONS`](Self::REJECTIONS) leaves the closed path as fast as with no listener.
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, Event, Interest, ManualClock};
///
/// fn on_change(e: &Event) {
///     let _ = e;
/// }
/// let breaker = CircuitBreaker::<_>::new("db", Config::new(), ManualClock::new())
///     .with_listener_for(Interest::STATE_CHANGES | Interest::REJECTIONS, on_change);
/// assert!(breaker.call(|| Ok::<_, ()>(1)).is_ok()); // no event dispatched
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Interest(u8);

impl Interest {
    /// [`EventKind::StateChange`].
    pub const STATE_CHANGES: Interest = Interest(1);
    /// [`EventKind::Rejected`].
    pub const REJECTIONS: Interest = Interest(2);
    /// The per-call events: [`EventKind::BeforeCall`] and the outcomes [`EventKind::Success`],
    /// [`EventKind::Failure`] and [`EventKind::Ignored`]. A listener gets a call's outcome only
    /// if it got the call's `BeforeCall`.
    pub const CALLS: Interest = Interest(4);
    /// Every event (what `with_listener` and `add_listener` subscribe to).
    pub const ALL: Interest = Interest(7);

    /// Both sets.
    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Whether every class of `other` is in `self`.
    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// The class `kind` belongs to.
    pub(crate) const fn of(kind: &EventKind) -> Interest {
        match kind {
            EventKind::StateChange { .. } => Interest::STATE_CHANGES,
            EventKind::Rejected { .. } => Interest::REJECTIONS,
            _ => Interest::CALLS,
        }
    }

    /// The raw bits, for the listener table.
    pub(crate) const fn bits(self) -> u32 {
        self.0 as u32
    }
}

impl core::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.union(rhs)
    }
}

/// Something that happened to a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The name of the breaker it happened to.
    pub name: &'static str,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A call was admitted and is about to run (PyBreaker's `before_call`).
    BeforeCall,
    /// An admitted call succeeded. Fired even if the report was dropped because the call was
    /// admitted in an earlier generation.
    Success,
    /// An admitted call failed. If it tripped the breaker, a `StateChange` follows.
    Failure,
    /// An admitted call ended with an error classified as ignored.
    Ignored,
    /// A call was rejected without running.
    Rejected {
        /// The state that rejected it.
        state: State,
        /// How long until a retry may be admitted, when time alone will admit one.
        retry_after: Option<Duration>,
    },
    /// The breaker moved from one state to another.
    StateChange {
        /// The state before.
        from: State,
        /// The state after.
        to: State,
    },
}
