//! The standard library's clocks: [`StdClock`] (coarse, cheap) and [`InstantClock`] (exact).

use std::sync::OnceLock;
use std::time::Instant;

use super::Clock;

/// The default clock with `std`: a cheap monotonic millisecond clock.
///
/// On Linux it reads `CLOCK_MONOTONIC_COARSE` (milliseconds since boot), which the kernel updates
/// once per scheduler tick (1 to 10 ms depending on the kernel's `HZ`; 4 ms on a common
/// `HZ=250` kernel) and which costs a few nanoseconds through the vDSO, about 4x less than
/// [`Instant::now`]. That matters on the open path, where every rejection reads the clock.
/// The price is resolution: a reading lags real time by up to one tick, so an open period or
/// trial lease may end up to one tick earlier or later than configured (a 30 s `reset_timeout`
/// lasts 30 s give or take 4 ms). Use [`InstantClock`] where periods of a few milliseconds must
/// be exact. Elsewhere (and under Miri) `StdClock` is [`InstantClock`].
///
/// A unit struct, so `StdClock` can be named in a `const` constructor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdClock;

/// Milliseconds of [`std::time::Instant`] since the first reading in this process: exact to
/// the millisecond, at the price of an `Instant::now()` per reading (and a `OnceLock` check).
///
/// This was `StdClock` before `StdClock` moved to the coarse clock; use it where periods of a
/// few milliseconds must be exact. A unit struct; the epoch is fixed on the first `now_ms`
/// call, never in a constructor. Monotonic because `Instant` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstantClock;

static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Clock for InstantClock {
    fn now_ms(&self) -> u64 {
        let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

#[cfg(all(target_os = "linux", not(miri)))]
impl Clock for StdClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call.
        // The call's only errors are EFAULT (a bad pointer: not the case) and EINVAL (an
        // unknown clock id: CLOCK_MONOTONIC_COARSE exists since Linux 2.6.32), so it cannot
        // fail and its return value carries nothing.
        let _ = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        // Monotonic time is never negative; `as u64` of the non-negative fields is exact.
        (ts.tv_sec as u64)
            .saturating_mul(1000)
            .saturating_add(ts.tv_nsec as u64 / 1_000_000)
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
impl Clock for StdClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        InstantClock.now_ms()
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

    #[test]
    fn instant_clock_is_monotonic() {
        let a = InstantClock.now_ms();
        let b = InstantClock.now_ms();
        assert!(b >= a);
    }

    /// The coarse clock advances with real time: within a bounded poll, it moves by at least
    /// 20 ms while the exact clock moves by a comparable amount (a tick is at most 10 ms).
    #[test]
    #[cfg_attr(miri, ignore = "real time")]
    fn std_clock_follows_real_time() {
        let start = StdClock.now_ms();
        let exact_start = InstantClock.now_ms();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while StdClock.now_ms() < start + 20 {
            assert!(
                Instant::now() < deadline,
                "StdClock did not advance 20 ms in 10 s"
            );
            std::thread::yield_now();
        }
        let exact = InstantClock.now_ms() - exact_start;
        // The coarse clock lags by at most a tick at each end.
        assert!(
            exact + 10 >= 20,
            "coarse clock ran ahead of real time: {exact} ms"
        );
    }
}
