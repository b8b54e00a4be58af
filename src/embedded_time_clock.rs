//! [`EmbeddedTimeClock`]: any [`embedded_time::Clock`] as the breaker's [`Clock`].

use core::fmt;

use portable_atomic::{AtomicU32, AtomicU64, Ordering};

use crate::clock::Clock;

/// Adapts an [`embedded_time::Clock`] into a breaker [`Clock`]: milliseconds without overflow,
/// a `u32` tick counter extended across wraparound, and a safe answer when the clock fails.
///
/// `const`-constructible and `Sync` (when the inner clock is), so it can live inside a
/// `static` breaker:
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, EmbeddedTimeClock};
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use embedded_time::{clock, fraction::Fraction, Instant};
///
/// // A 1 kHz tick counter, incremented by a timer interrupt.
/// static TICKS: AtomicU32 = AtomicU32::new(0);
/// struct SysTicks;
/// impl embedded_time::Clock for SysTicks {
///     type T = u32;
///     const SCALING_FACTOR: Fraction = Fraction::new(1, 1_000);
///     fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
///         Ok(Instant::new(TICKS.load(Ordering::Relaxed)))
///     }
/// }
///
/// static UPLINK: CircuitBreaker<EmbeddedTimeClock<SysTicks>> =
///     CircuitBreaker::new("uplink", Config::new(), EmbeddedTimeClock::new(SysTicks));
///
/// TICKS.store(1_500, Ordering::Relaxed);
/// assert_eq!(UPLINK.clock().ticks(), 1_500);
/// # use atomic_breaker::Clock;
/// assert_eq!(UPLINK.clock().now_ms(), 1_500);
/// ```
///
/// # What it does
/// - **Units.** An `embedded_time` clock counts ticks of `SCALING_FACTOR` seconds (a `u32 / u32`
///   fraction). The adapter converts a tick count to milliseconds exactly (rounded down), in
///   `u64` arithmetic that cannot overflow in between, and saturates at `u64::MAX` ms (half a
///   billion years) rather than wrapping.
/// - **Wraparound.** A clock whose tick type is `u32` wraps (a 1 MHz counter every 71.6 minutes,
///   a 1 kHz one every 49.7 days). The adapter keeps the extended 64-bit tick count of the latest
///   reading in one `AtomicU64`; its low bits are the latest raw reading. A new raw reading is
///   taken to be *later* than the stored one when it is less than half the counter's range ahead
///   of it (modulo the range), and *earlier* otherwise, in which case a concurrent reader has
///   already stored a newer reading and the stored value is returned. Readings are therefore
///   monotonic, lock-free (one CAS loop), and safe from any context, interrupts included (see
///   the note on interrupts below).
/// - **Errors.** When `try_now` fails, `now_ms` returns the last good reading (0 before the
///   first one) and counts the failure ([`errors`](EmbeddedTimeClock::errors)). Time stands
///   still while the clock fails, so an Open breaker stays Open: the safe direction.
///
/// # The one requirement: read it at least once per half wrap period
/// Wraparound is detected by comparing consecutive readings, so two consecutive readings must be
/// less than half the counter's range apart (2^31 ticks for `u32`: 35.8 minutes at 1 MHz,
/// 24.9 days at 1 kHz). The breaker reads its clock only when time matters (Open, HalfOpen, a
/// trip), never on the closed path, so a breaker that stays Closed for longer than that does not
/// read it. Call [`ticks`](EmbeddedTimeClock::ticks) or [`now_ms`](EmbeddedTimeClock::now_ms)
/// from a periodic task (a timer interrupt or the main loop) at least that often. If the
/// requirement is broken, whole wrap periods are lost: time runs late, never backwards. The
/// breaker only compares readings taken since it last tripped, so time lost while it is Closed
/// does it no harm; time lost while it is Open with no call for half a period lengthens that
/// open period, never shortens it. A `u64` tick clock has no such requirement in practice.
///
/// # Interrupts
/// The extended count is an `AtomicU64`. On targets without native 64-bit atomics that is
/// `portable-atomic`'s fallback; reading this clock from an interrupt handler has the same
/// requirement as using the breaker there: see `docs/FIRMWARE.md` (on Cortex-M3/4/7 the final
/// binary enables `portable-atomic/unsafe-assume-single-core`).
pub struct EmbeddedTimeClock<C> {
    clock: C,
    /// `1 +` the extended tick count of the latest good reading; 0 before the first one.
    last: AtomicU64,
    /// Failed `try_now` calls (saturating).
    errors: AtomicU32,
}

impl<C> EmbeddedTimeClock<C> {
    /// Wraps `clock`. Never reads it, so it can initialise a `static`.
    pub const fn new(clock: C) -> Self {
        EmbeddedTimeClock {
            clock,
            last: AtomicU64::new(0),
            errors: AtomicU32::new(0),
        }
    }

    /// The wrapped clock.
    pub const fn inner(&self) -> &C {
        &self.clock
    }

    /// How many times `try_now` failed (saturates at `u32::MAX`). Each failure made that
    /// reading return the last good one.
    pub fn errors(&self) -> u32 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The extended tick count of the latest good reading, without reading the clock; `None`
    /// before the first good reading.
    pub fn last_ticks(&self) -> Option<u64> {
        self.last.load(Ordering::Acquire).checked_sub(1)
    }
}

impl<C: embedded_time::Clock> EmbeddedTimeClock<C>
where
    C::T: Into<u64>,
{
    /// Mask of the raw tick type: `u32::MAX` or `u64::MAX`.
    const RAW_MASK: u64 = if core::mem::size_of::<C::T>() >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * core::mem::size_of::<C::T>())) - 1
    };
    /// A raw reading at most this far ahead of the stored one is taken as later.
    const HALF_RANGE: u64 = Self::RAW_MASK / 2;
    /// Milliseconds per tick as `MS_NUM / MS_DEN` (the scaling factor times 1000).
    const MS_NUM: u64 = *C::SCALING_FACTOR.numerator() as u64 * 1_000;
    /// Checked at compile time: a zero denominator is a broken clock, not a run-time panic.
    const MS_DEN: u64 = {
        let d = *C::SCALING_FACTOR.denominator();
        assert!(
            d != 0,
            "embedded_time::Clock::SCALING_FACTOR has a zero denominator"
        );
        d as u64
    };

    /// Reads the clock and returns the extended (wraparound-free) tick count.
    ///
    /// Monotonic. When `try_now` fails, returns the last good count (0 before the first good
    /// reading) and counts the error. Call it periodically if the breaker may go a long time
    /// without reading its clock (see the module documentation).
    pub fn ticks(&self) -> u64 {
        let raw: u64 = match self.clock.try_now() {
            Ok(instant) => instant.duration_since_epoch().integer().into(),
            Err(_) => {
                // Saturating: the closure is pure and may run more than once.
                let _ = self
                    .errors
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
                return self.last_ticks().unwrap_or(0);
            }
        };
        let mut stored = self.last.load(Ordering::Acquire);
        loop {
            let next = match stored.checked_sub(1) {
                // The first reading fixes the epoch: the clock's own zero.
                None => raw,
                Some(ext) => {
                    let ahead = raw.wrapping_sub(ext) & Self::RAW_MASK;
                    if ahead == 0 {
                        return ext;
                    }
                    if ahead > Self::HALF_RANGE {
                        // Behind the stored reading: another reader stored a newer one
                        // between our `try_now` and our load. Time never goes backwards.
                        return ext;
                    }
                    ext.saturating_add(ahead)
                }
            };
            // Stored as `1 + ticks`, so ticks stop one short of `u64::MAX` (never reached by
            // a real clock: 584 years of nanoseconds).
            let next = next.min(u64::MAX - 1);
            let word = next + 1;
            match self
                .last
                .compare_exchange_weak(stored, word, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(actual) => stored = actual,
            }
        }
    }

    /// Converts an extended tick count to milliseconds, rounded down, saturating at `u64::MAX`.
    pub fn ticks_to_ms(ticks: u64) -> u64 {
        // ticks * NUM / DEN == q * NUM + r * (NUM / DEN) + r * (NUM % DEN) / DEN, with
        // q = ticks / DEN and r = ticks % DEN < 2^32; every product but the last may only
        // overflow when the result does (hence saturating), and the last is below 2^64.
        let (num, den) = (Self::MS_NUM, Self::MS_DEN);
        let q = ticks / den;
        let r = ticks % den;
        q.saturating_mul(num)
            .saturating_add(r.saturating_mul(num / den))
            .saturating_add(r * (num % den) / den)
    }

    /// The current time in milliseconds; the same as [`Clock::now_ms`].
    pub fn now_ms(&self) -> u64 {
        Self::ticks_to_ms(self.ticks())
    }
}

impl<C: embedded_time::Clock> Clock for EmbeddedTimeClock<C>
where
    C::T: Into<u64>,
{
    fn now_ms(&self) -> u64 {
        EmbeddedTimeClock::now_ms(self)
    }
}

impl<C> fmt::Debug for EmbeddedTimeClock<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedTimeClock")
            .field("last_ticks", &self.last_ticks())
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use embedded_time::{clock, fraction::Fraction, Instant};
    use std::sync::atomic::{AtomicBool, AtomicU32 as StdU32, AtomicU64 as StdU64};

    /// A fake `u32` clock at 32.768 kHz that can be set and made to fail.
    struct Fake32 {
        ticks: StdU32,
        fail: AtomicBool,
    }

    impl Fake32 {
        const fn at(t: u32) -> Self {
            Fake32 {
                ticks: StdU32::new(t),
                fail: AtomicBool::new(false),
            }
        }
        fn set(&self, t: u32) {
            self.ticks.store(t, Ordering::SeqCst);
        }
        fn advance(&self, d: u32) {
            self.ticks.fetch_add(d, Ordering::SeqCst);
        }
    }

    impl embedded_time::Clock for Fake32 {
        type T = u32;
        const SCALING_FACTOR: Fraction = Fraction::new(1, 32_768);
        fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
            if self.fail.load(Ordering::SeqCst) {
                Err(clock::Error::NotRunning)
            } else {
                Ok(Instant::new(self.ticks.load(Ordering::SeqCst)))
            }
        }
    }

    /// A fake `u64` clock at 1 GHz (1 ns per tick).
    struct Fake64(StdU64);

    impl embedded_time::Clock for Fake64 {
        type T = u64;
        const SCALING_FACTOR: Fraction = Fraction::new(1, 1_000_000_000);
        fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
            Ok(Instant::new(self.0.load(Ordering::SeqCst)))
        }
    }

    /// Ticks of 7/3 seconds: a scaling factor with a numerator, to test the fraction math.
    struct Slow(StdU64);

    impl embedded_time::Clock for Slow {
        type T = u64;
        const SCALING_FACTOR: Fraction = Fraction::new(7, 3);
        fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
            Ok(Instant::new(self.0.load(Ordering::SeqCst)))
        }
    }

    #[test]
    fn converts_ticks_to_ms_exactly_rounding_down() {
        type F = EmbeddedTimeClock<Fake32>;
        assert_eq!(F::ticks_to_ms(0), 0);
        assert_eq!(F::ticks_to_ms(32), 0); // 0.98 ms
        assert_eq!(F::ticks_to_ms(33), 1);
        assert_eq!(F::ticks_to_ms(32_768), 1_000);
        assert_eq!(F::ticks_to_ms(u32::MAX as u64 + 1), 131_072_000);
        // Large counts: exact where a naive `ticks * 1000` would overflow u64.
        let big = u64::MAX / 10;
        assert_eq!(F::ticks_to_ms(big) as u128, big as u128 * 1000 / 32_768);
        assert_eq!(
            F::ticks_to_ms(u64::MAX) as u128,
            u64::MAX as u128 * 1000 / 32_768
        );

        type G = EmbeddedTimeClock<Fake64>;
        assert_eq!(G::ticks_to_ms(999_999), 0);
        assert_eq!(G::ticks_to_ms(1_000_000), 1);
        assert_eq!(G::ticks_to_ms(u64::MAX), u64::MAX / 1_000_000);

        type S = EmbeddedTimeClock<Slow>;
        assert_eq!(S::ticks_to_ms(3), 7_000);
        assert_eq!(S::ticks_to_ms(1), 2_333);
        // Saturates instead of overflowing.
        assert_eq!(S::ticks_to_ms(u64::MAX), u64::MAX);
        for t in [1u64, 2, 5, 1 << 20, 1 << 40, 1 << 50, (1 << 61) - 1] {
            let exact = t as u128 * 7_000 / 3;
            assert_eq!(
                S::ticks_to_ms(t) as u128,
                exact.min(u64::MAX as u128),
                "{t}"
            );
        }
    }

    #[test]
    fn extends_a_u32_counter_across_wraparound() {
        let c = EmbeddedTimeClock::new(Fake32::at(u32::MAX - 10));
        assert_eq!(c.last_ticks(), None);
        assert_eq!(c.ticks(), u32::MAX as u64 - 10);
        c.inner().advance(20); // wraps to 9
        assert_eq!(c.ticks(), u32::MAX as u64 + 10);
        // Five more wraps, each observed more often than once per half period.
        for _ in 0..5 {
            for _ in 0..4 {
                c.inner().advance(1 << 30);
                let _ = c.ticks();
            }
        }
        assert_eq!(c.ticks(), u32::MAX as u64 + 10 + 5 * (1u64 << 32));
        assert_eq!(c.errors(), 0);
    }

    #[test]
    fn a_missed_half_period_loses_time_but_never_goes_backwards() {
        let c = EmbeddedTimeClock::new(Fake32::at(0));
        assert_eq!(c.ticks(), 0);
        c.inner().advance(1 << 31); // exactly half: read as a stale reading
        assert_eq!(c.ticks(), 0);
        c.inner().advance(1 << 31); // a whole wrap unobserved: lost
        c.inner().advance(5);
        assert_eq!(c.ticks(), 5);
    }

    #[test]
    fn a_reading_behind_the_stored_one_does_not_move_time_backwards() {
        let c = EmbeddedTimeClock::new(Fake32::at(1_000));
        assert_eq!(c.ticks(), 1_000);
        // A stale raw value, as when another context stored a newer reading in between.
        c.inner().set(900);
        assert_eq!(c.ticks(), 1_000);
        c.inner().set(1_001);
        assert_eq!(c.ticks(), 1_001);
    }

    #[test]
    fn the_first_reading_may_be_anywhere_in_the_range() {
        let c = EmbeddedTimeClock::new(Fake32::at(3_000_000_000));
        assert_eq!(c.ticks(), 3_000_000_000);
        let d = EmbeddedTimeClock::new(Fake64(StdU64::new(u64::MAX - 5)));
        assert_eq!(d.ticks(), u64::MAX - 5);
        d.inner().0.store(u64::MAX, Ordering::SeqCst);
        assert_eq!(d.ticks(), u64::MAX - 1, "stops one short of u64::MAX");
        assert_eq!(d.ticks(), u64::MAX - 1);
    }

    #[test]
    fn a_failing_clock_returns_the_last_good_reading_and_counts() {
        let c = EmbeddedTimeClock::new(Fake32::at(0));
        c.inner().fail.store(true, Ordering::SeqCst);
        assert_eq!(Clock::now_ms(&c), 0, "no good reading yet");
        assert_eq!(c.errors(), 1);
        c.inner().fail.store(false, Ordering::SeqCst);
        c.inner().set(65_536);
        assert_eq!(Clock::now_ms(&c), 2_000);
        c.inner().fail.store(true, Ordering::SeqCst);
        c.inner().set(98_304);
        assert_eq!(Clock::now_ms(&c), 2_000, "time stands still while failing");
        assert_eq!(Clock::now_ms(&c), 2_000);
        assert_eq!(c.errors(), 3);
        c.inner().fail.store(false, Ordering::SeqCst);
        assert_eq!(Clock::now_ms(&c), 3_000);
        c.errors.store(u32::MAX, Ordering::Relaxed);
        c.inner().fail.store(true, Ordering::SeqCst);
        let _ = c.ticks();
        assert_eq!(c.errors(), u32::MAX, "saturates");
    }

    #[test]
    fn drives_a_static_breaker_through_open_and_half_open() {
        use crate::{CircuitBreaker, Config, State};
        use core::time::Duration;

        static TICKS: Fake32 = Fake32::at(u32::MAX - 32_768); // wraps one second in
        struct Shared;
        impl embedded_time::Clock for Shared {
            type T = u32;
            const SCALING_FACTOR: Fraction = Fraction::new(1, 32_768);
            fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
                Ok(Instant::new(TICKS.ticks.load(Ordering::SeqCst)))
            }
        }
        static B: CircuitBreaker<EmbeddedTimeClock<Shared>> = CircuitBreaker::new(
            "sensor",
            Config::new()
                .fail_max(1)
                .reset_timeout(Duration::from_secs(2)),
            EmbeddedTimeClock::new(Shared),
        );
        let _ = B.call(|| Err::<(), _>("nak"));
        assert_eq!(B.state(), State::Open);
        assert_eq!(B.retry_after(), Some(Duration::from_secs(2)));
        TICKS.advance(32_768 + 16_384); // 1.5 s, across the wrap
        assert_eq!(B.retry_after(), Some(Duration::from_millis(500)));
        assert!(B.allow().is_err());
        TICKS.advance(16_384);
        assert!(B.call(|| Ok::<_, ()>(())).is_ok());
        assert_eq!(B.state(), State::Closed);
    }

    #[test]
    fn concurrent_readers_stay_monotonic() {
        static C: EmbeddedTimeClock<Fake32> = EmbeddedTimeClock::new(Fake32::at(u32::MAX - 5_000));
        assert_eq!(
            C.ticks(),
            u32::MAX as u64 - 5_000,
            "the epoch is fixed here"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..20_000 {
                    C.inner().advance(1);
                }
            });
            for _ in 0..3 {
                s.spawn(|| {
                    let mut prev = 0;
                    for _ in 0..20_000 {
                        let t = C.ticks();
                        assert!(t >= prev, "{t} < {prev}");
                        prev = t;
                    }
                });
            }
        });
        assert_eq!(C.ticks(), u32::MAX as u64 - 5_000 + 20_000);
    }
}
