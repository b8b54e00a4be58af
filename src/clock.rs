//! Time: the [`Clock`] trait, the [`ManualClock`] test double, and (with `std`) `StdClock`
//! (coarse and cheap) and `InstantClock` (exact).

use core::time::Duration;
use portable_atomic::{AtomicU64, Ordering};

use crate::config::duration_ms;

#[cfg(feature = "std")]
mod with_std;
#[cfg(feature = "std")]
pub use with_std::{InstantClock, StdClock};

/// A monotonic millisecond clock, injected into the breaker as a type parameter.
///
/// # Contract
/// - **Unit**: milliseconds since an epoch of the clock's choosing (boot, first use, zero).
/// - **Monotonic**: a reading is never smaller than an earlier reading. Any value is fine, up to
///   and including `u64::MAX`: deadlines are kept modulo 2^29 ms (checked against a full-width
///   reading for long idle times) and set and compared with
///   wrapping arithmetic, so a clock that saturates at `u64::MAX` (as [`ManualClock`] and
///   `StdClock` do) simply stops time there.
/// - **Never fails**: a clock that can fail must decide what to return (for example the last
///   good reading) rather than panic. If it panics anyway, the breaker is left consistent: the
///   clock is read before any write, so the operation that read it writes nothing (an
///   admission is refused by the panic, a tripping report is lost), with two consequences a
///   caller sees: a trial whose failing report panics keeps its trial slot until the trial
///   lease passes (its permit was already consumed), and in failure-rate mode the failure
///   stays in the window and the trip waits for the next failure report (`tests/panics.rs`).
/// - **Resolution**: 1 ms or finer for exact periods; a coarser clock (such as `StdClock` on
///   Linux, which moves once per kernel tick) makes every period that coarse, early or late by
///   up to one tick.
///
/// The breaker reads the clock only when a decision depends on time (in Open and HalfOpen,
/// and when it trips), never on the closed path, and never in a constructor.
pub trait Clock {
    /// The current time in milliseconds.
    fn now_ms(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// A clock that moves only when told to: for tests, simulations, and your own tests of code
/// that uses a breaker.
///
/// `Sync` and `const`-constructible, so it can live in a `static` next to a `static` breaker:
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, ManualClock, State};
/// use core::time::Duration;
///
/// static CLOCK: ManualClock = ManualClock::new();
/// static BREAKER: CircuitBreaker<&ManualClock> =
///     CircuitBreaker::new("db", Config::new().fail_max(1), &CLOCK);
///
/// let _ = BREAKER.call(|| Err::<(), _>("down"));
/// assert_eq!(BREAKER.state(), State::Open);
/// CLOCK.advance(Duration::from_secs(60));
/// assert!(BREAKER.call(|| Ok::<_, &str>(1)).is_ok());
/// assert_eq!(BREAKER.state(), State::Closed);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading 0 ms.
    pub const fn new() -> Self {
        Self::starting_at(0)
    }

    /// A clock reading `ms` milliseconds.
    pub const fn starting_at(ms: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(ms),
        }
    }

    /// Moves the clock forward by `d`, rounded up to whole milliseconds (saturating).
    pub fn advance(&self, d: Duration) {
        self.advance_ms(duration_ms(d));
    }

    /// Moves the clock forward by `ms` milliseconds (saturating at `u64::MAX`).
    pub fn advance_ms(&self, ms: u64) {
        // fetch_update's closure may run more than once; it is pure.
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the clock to `ms`. The clock is monotonic: a value earlier than the current reading
    /// is ignored. Returns the reading after the call.
    pub fn set(&self, ms: u64) -> u64 {
        self.now.fetch_max(ms, Ordering::AcqRel).max(ms)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let c = ManualClock::new();
        assert_eq!(c.now_ms(), 0);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now_ms(), 1500);
        assert_eq!(c.set(1000), 1500);
        assert_eq!(c.now_ms(), 1500);
        assert_eq!(c.set(2000), 2000);
        c.advance_ms(u64::MAX);
        assert_eq!(c.now_ms(), u64::MAX);
    }
}
