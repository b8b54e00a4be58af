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
/// The outcome events of a call (`Success`, `Failure`, `Ignored`) are dispatched only if some
/// listener was registered when the call was admitted: a listener added while a call runs sees
/// neither its `BeforeCall` nor its outcome, so it never sees an outcome without its start. This
/// is what keeps the closed-path report free of a second listener-table load. An outcome is
/// reported to listeners even when the breaker drops it (a permit from an earlier generation).
pub type Listener = fn(&Event);

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
