//! [`Snapshot`]: every monitored value of a breaker at one instant.

use core::time::Duration;

use crate::state::State;

/// Every monitored value of a breaker, decoded from one load of its state word (the
/// configuration values are read just after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The breaker's name.
    pub name: &'static str,
    /// The state.
    pub state: State,
    /// See [`CircuitBreaker::fail_counter`](crate::CircuitBreaker::fail_counter).
    pub fail_counter: u32,
    /// Trial successes in HalfOpen.
    pub success_counter: u32,
    /// Trial calls in flight in HalfOpen.
    pub trial_calls: u32,
    /// The generation (0 to 65,535, wrapping), bumped by every state change, every `trip_for`
    /// and every trial re-arm.
    pub generation: u16,
    /// Consecutive re-trips from HalfOpen (the backoff exponent, 0 to 7).
    pub backoff_level: u8,
    /// While Open, the time until a trial may be admitted.
    pub retry_after: Option<Duration>,
    /// While Open or HalfOpen, when the breaker last opened (ms on its clock).
    pub opened_at: Option<u64>,
    /// Consecutive failures that trip the breaker.
    pub fail_max: u32,
    /// Trial successes that close the breaker.
    pub success_threshold: u32,
    /// Trial calls admitted at once in HalfOpen.
    pub half_open_max_calls: u32,
    /// The open period before backoff.
    pub reset_timeout: Duration,
}
