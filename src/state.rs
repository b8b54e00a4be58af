//! The breaker's states and the outcome of a call.

/// Where a breaker is in its cycle.
///
/// `Closed`, `Open` and `HalfOpen` are the classic circuit-breaker states. `ForcedOpen` and
/// `Disabled` are management modes (as in Resilience4j): they hold until an operator calls
/// [`close`](crate::CircuitBreaker::close), [`open`](crate::CircuitBreaker::open) or
/// [`half_open`](crate::CircuitBreaker::half_open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Calls run; consecutive failures are counted and `fail_max` of them trip the breaker.
    Closed,
    /// Calls are rejected without running until the open period has passed.
    Open,
    /// A bounded number of trial calls run; enough successes close the breaker, a failure
    /// re-opens it.
    HalfOpen,
    /// Calls are rejected until an operator releases the breaker. Time does not end it.
    ForcedOpen,
    /// Every call runs and nothing is recorded.
    Disabled,
}

impl State {
    /// Largest encoding, checked against the width of the state field.
    #[allow(dead_code)] // read only by the layout check in `word.rs`, which old rustc misses
    pub(crate) const MAX_ENCODING: u8 = 4;

    pub(crate) const fn encode(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    /// Decodes the state field. Encodings above [`Self::MAX_ENCODING`] are never written; they
    /// decode as `Disabled` so that decoding cannot fail.
    pub(crate) const fn decode(bits: u8) -> State {
        match bits {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            _ => State::Disabled,
        }
    }

    /// The lower-case name PyBreaker uses for the state (`"closed"`, `"open"`, `"half-open"`),
    /// and `"forced-open"` / `"disabled"` for the management modes.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::ForcedOpen => "forced-open",
            State::Disabled => "disabled",
        }
    }

    /// Whether calls are rejected in this state (before any open period has passed).
    pub const fn is_open(self) -> bool {
        matches!(self, State::Open | State::ForcedOpen)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the breaker should count one call.
///
/// PyBreaker's excluded exceptions count as successes there; here a classifier can say either
/// [`Outcome::Success`] (PyBreaker's behaviour: it resets the failure count) or
/// [`Outcome::Ignored`] (neither success nor failure: counts nothing, frees a trial slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The dependency worked.
    Success,
    /// The dependency failed; counts towards tripping.
    Failure,
    /// Not the dependency's fault (a "business" error); counts nothing.
    Ignored,
}

impl Outcome {
    /// The default classification: `Ok` is a success, `Err` a failure.
    pub const fn of<T, E>(result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        for s in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            assert_eq!(State::decode(s.encode()), s);
            assert!(s.encode() <= State::MAX_ENCODING);
        }
    }
}
