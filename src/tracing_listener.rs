//! A [`tracing`](https://docs.rs/tracing) listener (feature `tracing`): trips at WARN,
//! recoveries at INFO, rejections at DEBUG, and no span per call.
//!
//! | event | level | message | fields |
//! |---|---|---|---|
//! | a move into Open (a trip, or a failed half-open trial) | `WARN` | `circuit breaker opened` | `breaker`, `from`, `failures`, `retry_after_ms` |
//! | a move into ForcedOpen ([`force_open`](crate::CircuitBreaker::force_open)) | `WARN` | `circuit breaker forced open` | `breaker`, `from`, `failures` |
//! | a move into Closed (a recovery, or a manual close) | `INFO` | `circuit breaker closed` | `breaker`, `from`, `failures` |
//! | a move into Disabled | `INFO` | `circuit breaker disabled` | `breaker`, `from`, `failures` |
//! | a move into HalfOpen | `DEBUG` | `circuit breaker half-open` | `breaker`, `from`, `failures` |
//! | a rejection | `DEBUG` | `call rejected by circuit breaker` | `breaker`, `state`, `retry_after_ms` (when known) |
//! | a failed call, only with [`Interest::CALLS`] | `DEBUG` | `call failed` | `breaker`, `failures`, `error` (its `Debug`, when the report carried one) |
//!
//! Every event has the target `atomic_breaker`; states are lower-case ([`State::name`]:
//! `half-open`), `failures` is the count at the change (the failures that tripped it, for a
//! trip), `retry_after_ms` the open period in milliseconds. A move into HalfOpen is DEBUG
//! because a long outage makes one every open period, each followed by a WARN re-trip.
//!
//! Register [`listener`] with [`INTEREST`] (state changes and rejections), which costs nothing
//! on the closed path. Adding [`Interest::CALLS`] also logs each failure with its error, at the
//! price of a dispatch per call.
//!
//! ```
//! use atomic_breaker::{tracing_listener, CircuitBreaker, Config, ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! static DB: CircuitBreaker<&ManualClock> = CircuitBreaker::new("db", Config::new(), &CLOCK)
//!     .with_listener_for(tracing_listener::INTEREST, tracing_listener::listener);
//! # assert_eq!(DB.listener_count(), 1);
//! ```
//!
//! The feature builds without `std` (the `tracing` crate without its default features), so a
//! firmware with a `tracing` subscriber can use it too, on targets with native compare-and-swap
//! (thumbv7m and up; not thumbv6m, where `tracing-core` does not build).

use core::time::Duration;

use crate::event::{Event, EventKind, Interest};
use crate::state::State;

/// State changes and rejections: what [`listener`] should be registered with.
pub const INTEREST: Interest = Interest::STATE_CHANGES.union(Interest::REJECTIONS);

/// The target of every event this module emits.
pub const TARGET: &str = "atomic_breaker";

/// Emits the tracing events of the module table for the event it is given.
pub fn listener(event: &Event<'_>) {
    let breaker = event.name;
    match event.kind {
        EventKind::StateChange {
            from,
            to,
            failures,
            retry_after,
        } => {
            let from = from.name();
            match to {
                State::Open => ::tracing::warn!(
                    target: TARGET,
                    breaker,
                    from,
                    failures,
                    retry_after_ms = retry_after.map(ms),
                    "circuit breaker opened"
                ),
                State::ForcedOpen => ::tracing::warn!(
                    target: TARGET,
                    breaker,
                    from,
                    failures,
                    "circuit breaker forced open"
                ),
                State::Closed => ::tracing::info!(
                    target: TARGET,
                    breaker,
                    from,
                    failures,
                    "circuit breaker closed"
                ),
                State::Disabled => ::tracing::info!(
                    target: TARGET,
                    breaker,
                    from,
                    failures,
                    "circuit breaker disabled"
                ),
                State::HalfOpen => ::tracing::debug!(
                    target: TARGET,
                    breaker,
                    from,
                    failures,
                    "circuit breaker half-open"
                ),
            }
        }
        EventKind::Rejected { state, retry_after } => ::tracing::debug!(
            target: TARGET,
            breaker,
            state = state.name(),
            retry_after_ms = retry_after.map(ms),
            "call rejected by circuit breaker"
        ),
        EventKind::Failure { failures, error } => match error {
            Some(error) => ::tracing::debug!(
                target: TARGET,
                breaker,
                failures,
                error = ?error,
                "call failed"
            ),
            None => ::tracing::debug!(target: TARGET, breaker, failures, "call failed"),
        },
        _ => {}
    }
}

/// Whole milliseconds, saturating (every duration the breaker produces is a whole number of
/// milliseconds).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
