//! Errors returned by guarded calls.

use core::fmt;
use core::time::Duration;

use crate::state::State;

/// A call the breaker refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The breaker's name.
    pub name: &'static str,
    /// The state that rejected the call: Open, HalfOpen (every trial slot taken) or ForcedOpen.
    pub state: State,
    /// How long until a call may be admitted, when time alone will admit one: the rest of the
    /// open period, or in HalfOpen the newest trial's lease (an upper bound: a slot may free
    /// sooner). `None` in ForcedOpen.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker '{}' is {}", self.name, self.state)?;
        match self.retry_after {
            Some(d) => write!(f, "; retry in {d:?}"),
            None => Ok(()),
        }
    }
}

impl core::error::Error for Rejected {}

/// The error of a guarded call: either it did not run, or it ran and returned an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The breaker rejected the call; it did not run.
    Rejected(Rejected),
    /// The call ran and returned `error`. `tripped` is true for the one call whose failure
    /// opened the breaker (PyBreaker's `throw_new_error_on_trip`, without losing the error).
    Failed {
        /// The caller's own error.
        error: E,
        /// Whether this failure tripped the breaker.
        tripped: bool,
    },
}

impl<E> Error<E> {
    /// Whether the call was rejected without running.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }

    /// Whether this call's failure tripped the breaker.
    pub fn tripped(&self) -> bool {
        matches!(self, Error::Failed { tripped: true, .. })
    }

    /// The caller's error, if the call ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Failed { error, .. } => Some(error),
            Error::Rejected(_) => None,
        }
    }

    /// The caller's error, if the call ran.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Error::Failed { error, .. } => Some(error),
            Error::Rejected(_) => None,
        }
    }

    /// How long until a retry may be admitted, for a rejection.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Rejected(r) => r.retry_after,
            Error::Failed { .. } => None,
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(r: Rejected) -> Self {
        Error::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            Error::Failed {
                error,
                tripped: false,
            } => error.fmt(f),
            Error::Failed {
                error,
                tripped: true,
            } => write!(f, "{error} (this failure tripped the circuit breaker)"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Rejected(_) => None,
            Error::Failed { error, .. } => Some(error),
        }
    }
}
