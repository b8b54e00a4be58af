//! The standard library's monotonic clock.

use std::sync::OnceLock;
use std::time::Instant;

use super::Clock;

/// Milliseconds of [`std::time::Instant`] since the first reading in this process.
///
/// A unit struct, so `StdClock` can be named in a `const` constructor; the epoch is fixed on the
/// first `now_ms` call (a `OnceLock`), never in a constructor. Monotonic because `Instant` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdClock;

static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_clock_is_monotonic() {
        let a = StdClock.now_ms();
        let b = StdClock.now_ms();
        assert!(b >= a);
    }
}
