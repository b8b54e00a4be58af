//! [`EmbassyClock`]: embassy's time driver as the breaker's [`Clock`].

use core::fmt;

use crate::clock::Clock;

/// The breaker's [`Clock`] over embassy's time driver (`embassy-time-driver` 0.2, the driver
/// crate of both `embassy-time` 0.4 and 0.5), so a firmware that already runs embassy needs no
/// timer of its own:
///
/// ```
/// # use embassy_time as _; // these docs link embassy-time's mock driver; a firmware links its HAL's
/// use atomic_breaker::{CircuitBreaker, Config, EmbassyClock};
///
/// static UPLINK: CircuitBreaker<EmbassyClock> =
///     CircuitBreaker::new("uplink", Config::new(), EmbassyClock::new());
/// # use atomic_breaker::Clock;
/// # let _ = UPLINK.clock().now_ms();
/// ```
///
/// # What it does
/// - **Reads** `embassy_time_driver::now()`: the driver's 64-bit tick count, which the driver
///   contract promises is monotonic, never wraps and never fails. So, unlike
///   `EmbeddedTimeClock`, this clock keeps no state: it is zero-sized, `const` and `Sync`.
/// - **Converts** ticks to milliseconds exactly (rounded down) at `embassy_time_driver::TICK_HZ`,
///   which the *final binary* picks with one of that crate's `tick-hz-*` features (embassy-time
///   picks 1 MHz by default; a HAL's time driver may pick another). The conversion is worked out
///   at compile time for the configured rate: a no-op at 1 kHz, a multiply at rates below 1 kHz
///   that divide 1000, shifts and a small multiply when the ticks per millisecond are a power of
///   two (32.768 kHz), otherwise a multiply by a 75-bit reciprocal (1 MHz, 48 MHz, ...). It never
///   divides at run time, so no 64-bit division routine is linked on a 32-bit core, and it
///   saturates at `u64::MAX` ms rather than overflowing (only possible below 1 kHz).
///
/// This library enables no time driver and no tick rate: the firmware (or its HAL, such as
/// `embassy-stm32` or `embassy-nrf`) provides both, and exactly one driver may be linked.
///
/// # Interrupts
/// Reading it is as safe from an interrupt handler as the driver's `now()`; embassy's drivers
/// are. The breaker itself has the requirement documented in `docs/FIRMWARE.md` (on
/// Cortex-M3/4/7, the final binary enables `portable-atomic/unsafe-assume-single-core` when
/// interrupt handlers use the breaker).
#[derive(Clone, Copy, Default)]
pub struct EmbassyClock {
    _private: (),
}

impl EmbassyClock {
    /// The conversion for the binary's tick rate, worked out at compile time.
    const RATIO: TickRatio = TickRatio::new(embassy_time_driver::TICK_HZ);

    /// The clock. Reads nothing, so it can initialise a `static`.
    pub const fn new() -> Self {
        EmbassyClock { _private: () }
    }

    /// The driver's tick count (`embassy_time_driver::now()`).
    pub fn ticks(&self) -> u64 {
        embassy_time_driver::now()
    }

    /// Converts a tick count at `embassy_time_driver::TICK_HZ` to milliseconds, rounded down,
    /// saturating at `u64::MAX`.
    #[inline]
    pub const fn ticks_to_ms(ticks: u64) -> u64 {
        Self::RATIO.ticks_to_ms(ticks)
    }

    /// The current time in milliseconds; the same as [`Clock::now_ms`].
    pub fn now_ms(&self) -> u64 {
        Self::ticks_to_ms(self.ticks())
    }
}

impl Clock for EmbassyClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        EmbassyClock::now_ms(self)
    }
}

impl fmt::Debug for EmbassyClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbassyClock")
            .field("tick_hz", &embassy_time_driver::TICK_HZ)
            .finish()
    }
}

/// `ms = floor(ticks * 1000 / hz)` as `floor(ticks * num / den)` with `num / den` the reduced
/// fraction `1000 / hz`, in the cheapest exact form for the rate. Built by a `const fn` (for the
/// binary's rate, at compile time); pure, so it is tested for every rate embassy offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TickRatio {
    kind: RatioKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RatioKind {
    /// `den == 1`: `ticks * num` (saturating). 1 kHz is `num == 1`: the identity.
    Mul(u64),
    /// `den == 2^shift`, `num << shift` fits in `u64`: split `ticks` at bit `shift` so that
    /// neither product can overflow except where the result does.
    Shift { num: u64, shift: u32 },
    /// Any other `den`: `floor(ticks * m / 2^(64 + shift))` with `m = ceil(num * 2^(64 + shift)
    /// / den)` (up to 75 bits, split into `m_hi` and `m_lo`) and `2^shift >= den`. Exact for
    /// every `u64` tick count: the reciprocal's excess adds less than `ticks / 2^(64 + shift) <
    /// 1 / den` to `ticks * num / den`, whose fractional part is at most `(den - 1) / den`.
    Reciprocal { m_hi: u64, m_lo: u64, shift: u32 },
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl TickRatio {
    /// The conversion for `hz` ticks per second. A rate of 0 is read as 1 Hz (no clock ticks at
    /// 0 Hz; embassy offers no such rate), so this never divides by zero.
    const fn new(hz: u64) -> Self {
        let hz = if hz == 0 { 1 } else { hz };
        let g = gcd(1000, hz);
        let num = 1000 / g;
        let den = hz / g;
        if den == 1 {
            return TickRatio {
                kind: RatioKind::Mul(num),
            };
        }
        // ceil(log2(den)), den >= 2.
        let shift = 64 - (den - 1).leading_zeros();
        if den.is_power_of_two() && (num as u128) << shift <= u64::MAX as u128 {
            return TickRatio {
                kind: RatioKind::Shift { num, shift },
            };
        }
        // m = ceil(num * 2^(64 + shift) / den) by long division, one bit at a time (the
        // dividend can exceed u128; the quotient cannot: it is below 2 * num * 2^64 + 1).
        let mut q = (num / den) as u128;
        let mut r = (num % den) as u128;
        let den = den as u128;
        let mut i = 0;
        while i < 64 + shift {
            q <<= 1;
            r <<= 1;
            if r >= den {
                r -= den;
                q |= 1;
            }
            i += 1;
        }
        if r != 0 {
            q += 1;
        }
        TickRatio {
            kind: RatioKind::Reciprocal {
                m_hi: (q >> 64) as u64,
                m_lo: q as u64,
                shift,
            },
        }
    }

    /// `floor(ticks * 1000 / hz)`, saturating at `u64::MAX`. Multiplies and shifts only.
    #[inline(always)]
    const fn ticks_to_ms(self, ticks: u64) -> u64 {
        match self.kind {
            RatioKind::Mul(num) => ticks.saturating_mul(num),
            RatioKind::Shift { num, shift } => {
                let q = ticks >> shift;
                let r = ticks & ((1u64 << shift) - 1);
                // r * num < 2^shift * num <= u64::MAX (checked in `new`).
                q.saturating_mul(num).saturating_add((r * num) >> shift)
            }
            RatioKind::Reciprocal { m_hi, m_lo, shift } => {
                // (ticks * m) >> 64 == ticks * m_hi + ((ticks * m_lo) >> 64), below 2^76.
                let (t0, t1) = (ticks & 0xFFFF_FFFF, ticks >> 32);
                // m_hi < 2^11, so both products fit in u64.
                let high = ((((t1 * m_hi) as u128) << 32) + (t0 * m_hi) as u128)
                    + mul_hi(ticks, m_lo) as u128;
                let ms = high >> shift;
                if ms > u64::MAX as u128 {
                    u64::MAX
                } else {
                    ms as u64
                }
            }
        }
    }
}

/// The high 64 bits of the 128-bit product `a * b`, from four 32 x 32 -> 64 bit multiplies
/// (`UMULL` on Cortex-M3 and up): no 128-bit multiply routine.
#[inline(always)]
const fn mul_hi(a: u64, b: u64) -> u64 {
    let (a0, a1) = (a & 0xFFFF_FFFF, a >> 32);
    let (b0, b1) = (b & 0xFFFF_FFFF, b >> 32);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 32) + (p01 & 0xFFFF_FFFF) + (p10 & 0xFFFF_FFFF);
    p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard};

    /// Every `tick-hz-*` rate `embassy-time-driver` 0.2.2 offers (its `src/tick.rs`).
    const EMBASSY_RATES: &[u64] = &[
        1,
        2,
        4,
        8,
        10,
        16,
        32,
        64,
        100,
        128,
        256,
        512,
        1_000,
        1_024,
        2_000,
        2_048,
        4_000,
        4_096,
        8_000,
        8_192,
        10_000,
        16_000,
        16_384,
        20_000,
        32_000,
        32_768,
        40_000,
        64_000,
        65_536,
        80_000,
        100_000,
        128_000,
        131_072,
        160_000,
        256_000,
        262_144,
        320_000,
        375_000,
        512_000,
        524_288,
        640_000,
        1_000_000,
        1_024_000,
        1_048_576,
        1_280_000,
        2_000_000,
        2_048_000,
        2_097_152,
        2_560_000,
        3_000_000,
        4_000_000,
        4_096_000,
        4_194_304,
        5_120_000,
        6_000_000,
        8_000_000,
        8_192_000,
        8_388_608,
        9_000_000,
        10_000_000,
        10_240_000,
        12_000_000,
        16_000_000,
        16_384_000,
        16_777_216,
        18_000_000,
        20_000_000,
        20_480_000,
        24_000_000,
        30_000_000,
        32_000_000,
        32_768_000,
        36_000_000,
        40_000_000,
        40_960_000,
        48_000_000,
        50_000_000,
        60_000_000,
        64_000_000,
        65_536_000,
        70_000_000,
        72_000_000,
        80_000_000,
        81_920_000,
        90_000_000,
        96_000_000,
        100_000_000,
        110_000_000,
        120_000_000,
        128_000_000,
        130_000_000,
        131_072_000,
        133_000_000,
        140_000_000,
        144_000_000,
        150_000_000,
        160_000_000,
        163_840_000,
        170_000_000,
        180_000_000,
        190_000_000,
        192_000_000,
        200_000_000,
        210_000_000,
        220_000_000,
        230_000_000,
        240_000_000,
        250_000_000,
        256_000_000,
        260_000_000,
        262_144_000,
        270_000_000,
        280_000_000,
        288_000_000,
        290_000_000,
        300_000_000,
        320_000_000,
        327_680_000,
        340_000_000,
        360_000_000,
        380_000_000,
        384_000_000,
        400_000_000,
        420_000_000,
        440_000_000,
        460_000_000,
        480_000_000,
        500_000_000,
        512_000_000,
        520_000_000,
        524_288_000,
        540_000_000,
        560_000_000,
        576_000_000,
        580_000_000,
        600_000_000,
        620_000_000,
        640_000_000,
        655_360_000,
        660_000_000,
        680_000_000,
        700_000_000,
        720_000_000,
        740_000_000,
        760_000_000,
        768_000_000,
        780_000_000,
        800_000_000,
        820_000_000,
        840_000_000,
        860_000_000,
        880_000_000,
        900_000_000,
        920_000_000,
        940_000_000,
        960_000_000,
        980_000_000,
        1_000_000_000,
        1_310_720_000,
        2_621_440_000,
        5_242_880_000,
    ];

    fn exact(ticks: u64, hz: u64) -> u64 {
        (ticks as u128 * 1000 / hz as u128).min(u64::MAX as u128) as u64
    }

    /// Tick counts around every boundary that matters for `hz`, plus pseudo-random ones of
    /// every magnitude.
    fn samples(hz: u64) -> impl Iterator<Item = u64> {
        let edges = [
            0,
            1,
            2,
            999,
            1_000,
            1_001,
            u32::MAX as u64,
            1 << 32,
            1 << 63,
        ];
        let near_max = (0..64).map(|d| u64::MAX - d);
        let multiples = [1u64, 2, 3, 1_000, 86_400_000, 1 << 40]
            .into_iter()
            .flat_map(move |k| {
                let m = hz.saturating_mul(k);
                [m.saturating_sub(1), m, m.saturating_add(1)]
            });
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ hz;
        let random = (0..2_000).map(move |i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (i % 64)
        });
        edges
            .into_iter()
            .chain(near_max)
            .chain(multiples)
            .chain(random)
    }

    #[test]
    fn every_embassy_tick_rate_converts_exactly() {
        let mut kinds = [0; 3];
        for &hz in EMBASSY_RATES {
            let r = TickRatio::new(hz);
            kinds[match r.kind {
                RatioKind::Mul(_) => 0,
                RatioKind::Shift { .. } => 1,
                RatioKind::Reciprocal { .. } => 2,
            }] += 1;
            for t in samples(hz) {
                assert_eq!(r.ticks_to_ms(t), exact(t, hz), "{t} ticks at {hz} Hz");
            }
        }
        // All three forms are exercised.
        assert!(kinds.iter().all(|&n| n > 0), "{kinds:?}");
    }

    #[test]
    fn rates_that_are_not_embassys_convert_exactly_too() {
        // Odd rates, rates above 2^32, the largest one, and 0 (read as 1 Hz).
        for hz in [
            3,
            7,
            999,
            1_001,
            32_767,
            48_000_001,
            1 << 33,
            (1 << 40) + 7,
            u64::MAX,
        ] {
            let r = TickRatio::new(hz);
            for t in samples(hz) {
                assert_eq!(r.ticks_to_ms(t), exact(t, hz), "{t} ticks at {hz} Hz");
            }
        }
        assert_eq!(TickRatio::new(0), TickRatio::new(1));
    }

    #[test]
    fn the_form_and_the_figures_at_1_khz_32_khz_and_1_mhz() {
        let khz = TickRatio::new(1_000);
        assert_eq!(khz.kind, RatioKind::Mul(1));
        assert_eq!(khz.ticks_to_ms(1_234), 1_234);
        assert_eq!(khz.ticks_to_ms(u64::MAX), u64::MAX);

        let rtc = TickRatio::new(32_768);
        assert_eq!(
            rtc.kind,
            RatioKind::Shift {
                num: 125,
                shift: 12
            }
        );
        assert_eq!(rtc.ticks_to_ms(32), 0); // 0.98 ms
        assert_eq!(rtc.ticks_to_ms(33), 1);
        assert_eq!(rtc.ticks_to_ms(32_768), 1_000);
        // A naive `ticks * 1000` overflows here; the split does not.
        assert_eq!(rtc.ticks_to_ms(u64::MAX), 562_949_953_421_311_999);

        let mhz = TickRatio::new(1_000_000);
        assert!(matches!(mhz.kind, RatioKind::Reciprocal { shift: 10, .. }));
        assert_eq!(mhz.ticks_to_ms(999), 0);
        assert_eq!(mhz.ticks_to_ms(1_000), 1);
        assert_eq!(mhz.ticks_to_ms(1_999_999), 1_999);
        assert_eq!(mhz.ticks_to_ms(u64::MAX), 18_446_744_073_709_551);
        assert_eq!(mhz.ticks_to_ms(u64::MAX - 616), 18_446_744_073_709_550);

        // Below 1 kHz the result can overflow: it saturates.
        let slow = TickRatio::new(10);
        assert_eq!(slow.kind, RatioKind::Mul(100));
        assert_eq!(slow.ticks_to_ms(7), 700);
        assert_eq!(slow.ticks_to_ms(u64::MAX / 50), u64::MAX);
    }

    #[test]
    fn mul_hi_is_the_high_half_of_the_product() {
        let vals = [
            0,
            1,
            2,
            0xFFFF_FFFF,
            1 << 32,
            (1 << 32) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for a in vals {
            for b in vals {
                assert_eq!(
                    mul_hi(a, b),
                    ((a as u128 * b as u128) >> 64) as u64,
                    "{a} {b}"
                );
            }
        }
    }

    // ---- integration with the driver: embassy-time's mock driver (dev-dependency, 1 MHz) ----

    /// The mock driver is one global: tests that use it hold this lock.
    static DRIVER: Mutex<()> = Mutex::new(());

    fn mock() -> (MutexGuard<'static, ()>, &'static embassy_time::MockDriver) {
        let guard = DRIVER.lock().unwrap_or_else(|e| e.into_inner());
        let driver = embassy_time::MockDriver::get();
        driver.reset();
        (guard, driver)
    }

    #[test]
    fn reads_the_driver_at_its_tick_rate() {
        let (_lock, driver) = mock();
        assert_eq!(
            embassy_time_driver::TICK_HZ,
            1_000_000,
            "the dev build's rate"
        );
        let c = EmbassyClock::new();
        assert_eq!(c.ticks(), 0);
        assert_eq!(Clock::now_ms(&c), 0);
        driver.advance(embassy_time::Duration::from_micros(1_999));
        assert_eq!(c.ticks(), 1_999);
        assert_eq!(Clock::now_ms(&c), 1);
        driver.advance(embassy_time::Duration::from_micros(1));
        assert_eq!(Clock::now_ms(&c), 2);
        driver.advance(embassy_time::Duration::from_secs(3_600));
        assert_eq!(Clock::now_ms(&c), 3_600_002);
        // The same reading as embassy-time's own `Instant`.
        assert_eq!(
            Clock::now_ms(&c),
            embassy_time::Instant::now().as_millis(),
            "agrees with embassy_time::Instant"
        );
    }

    #[test]
    fn a_tick_count_near_u64_max_converts_without_overflow() {
        let (_lock, driver) = mock();
        let c = EmbassyClock::new();
        driver.advance(embassy_time::Duration::from_ticks(u64::MAX - 1_000));
        assert_eq!(c.ticks(), u64::MAX - 1_000);
        assert_eq!(Clock::now_ms(&c), (u64::MAX - 1_000) / 1_000);
        driver.advance(embassy_time::Duration::from_ticks(1_000));
        assert_eq!(Clock::now_ms(&c), u64::MAX / 1_000);
    }

    #[test]
    fn drives_a_static_breaker_through_open_and_half_open() {
        use crate::{CircuitBreaker, Config, State};
        use core::time::Duration;

        let (_lock, driver) = mock();
        static B: CircuitBreaker<EmbassyClock> = CircuitBreaker::new(
            "sensor",
            Config::new()
                .fail_max(2)
                .reset_timeout(Duration::from_secs(2)),
            EmbassyClock::new(),
        );
        driver.advance(embassy_time::Duration::from_secs(100));
        let _ = B.call(|| Err::<(), _>("nak"));
        assert_eq!(B.state(), State::Closed);
        let _ = B.call(|| Err::<(), _>("nak"));
        assert_eq!(B.state(), State::Open);
        assert_eq!(B.retry_after(), Some(Duration::from_secs(2)));
        driver.advance(embassy_time::Duration::from_micros(1_500_999));
        assert_eq!(B.retry_after(), Some(Duration::from_millis(500)));
        assert!(B.allow().is_err());
        driver.advance(embassy_time::Duration::from_micros(499_001));
        assert!(B.call(|| Ok::<_, ()>(())).is_ok());
        assert_eq!(B.state(), State::Closed);
    }
}
