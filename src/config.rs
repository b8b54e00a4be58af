//! Breaker configuration: `const` builders, validation, and the limits the state word implies.

use core::fmt;
use core::time::Duration;

use crate::word;

/// Largest `fail_max` and `success_threshold` (127): the width of the state word's count field.
pub const MAX_FAIL_MAX: u32 = word::MAX_COUNT;
/// Largest `success_threshold` (127).
pub const MAX_SUCCESS_THRESHOLD: u32 = word::MAX_COUNT;
/// Largest `half_open_max_calls` (31).
pub const MAX_HALF_OPEN_CALLS: u32 = word::MAX_IN_FLIGHT;
/// Longest `reset_timeout`, trial lease, backoff cap or `trip_for` period: 24 hours. Longer
/// ones are refused with a [`ConfigError`]. The state word keeps deadlines in 29 bits of
/// milliseconds; see the crate's README, "The state word".
pub const MAX_PERIOD: Duration = Duration::from_millis(word::MAX_PERIOD_MS);

/// Backoff of the open period when the breaker re-trips from half-open.
///
/// The n-th consecutive re-trip opens for `reset_timeout * 2^n` (n at most 7), capped at `max`.
/// With jitter, each open period is shortened by a random fraction of up to `jitter_percent`,
/// drawn once when the breaker trips and never re-drawn. The exponent resets when the breaker
/// closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    pub(crate) max: Duration,
    pub(crate) jitter_percent: u8,
}

impl Backoff {
    /// Exponential backoff (factor 2) capped at `max`, without jitter.
    pub const fn exponential(max: Duration) -> Self {
        Backoff {
            max,
            jitter_percent: 0,
        }
    }

    /// Shortens each open period by a random fraction of at most `percent` (0 to 100).
    pub const fn jitter_percent(self, percent: u8) -> Self {
        Backoff {
            max: self.max,
            jitter_percent: percent,
        }
    }

    /// The cap on the open period.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// The largest share, in percent, by which jitter shortens an open period.
    pub const fn jitter(&self) -> u8 {
        self.jitter_percent
    }
}

/// Failure-rate mode: trip when, among the last `window` calls, at least `minimum_calls` were
/// seen and at least `threshold_percent` percent of them failed (Resilience4j's count-based
/// sliding window). Set it with [`Config::failure_rate`]; without it the breaker counts
/// consecutive failures against `fail_max`, PyBreaker's rule and the default.
///
/// ```
/// use atomic_breaker::{Config, FailureRate};
///
/// // Trip when half of the last 20 calls failed, once at least 10 were seen.
/// const CONFIG: Config =
///     Config::new().failure_rate(FailureRate::new(50, 20).minimum_calls(10));
/// assert!(CONFIG.validate().is_ok());
/// ```
///
/// An invalid one in a `static` is a compile error, as every configuration error is:
///
/// ```compile_fail
/// use atomic_breaker::{CircuitBreaker, Config, FailureRate, ManualClock};
/// static CLOCK: ManualClock = ManualClock::new();
/// // error: the failure-rate window must be between 1 and 47 calls
/// static BAD: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
///     "bad",
///     Config::new().failure_rate(FailureRate::new(50, 0)),
///     &CLOCK,
/// );
/// ```
///
/// Rate mode writes the window on every call (one CAS of a second word), so its closed path
/// costs more than consecutive mode's, which writes nothing; see the README, "When to choose
/// which mode". Outcomes reported as [`Outcome::Ignored`](crate::Outcome::Ignored) are not calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FailureRate {
    pub(crate) threshold_percent: u32,
    pub(crate) window: u32,
    pub(crate) minimum_calls: u32,
}

impl FailureRate {
    /// Trip at `threshold_percent` percent (1 to 100) of failures among the last `window`
    /// calls (1 to [`MAX_WINDOW`]); `minimum_calls` starts equal to `window`.
    pub const fn new(threshold_percent: u32, window: u32) -> Self {
        FailureRate {
            threshold_percent,
            window,
            minimum_calls: window,
        }
    }

    /// Calls that must be in the window before the rate can trip the breaker (1 to `window`).
    pub const fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// The failure rate, in percent, that trips the breaker.
    pub const fn threshold_percent(&self) -> u32 {
        self.threshold_percent
    }

    /// How many of the latest calls the rate is computed over.
    pub const fn window(&self) -> u32 {
        self.window
    }

    /// The calls needed in the window before it can trip the breaker.
    pub const fn get_minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// Checks the three numbers.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.window == 0 || self.window > MAX_WINDOW {
            return Err(ConfigError::Window(self.window));
        }
        if self.threshold_percent == 0 || self.threshold_percent > 100 {
            return Err(ConfigError::FailureRateThreshold(self.threshold_percent));
        }
        if self.minimum_calls == 0 || self.minimum_calls > self.window {
            return Err(ConfigError::MinimumCalls(self.minimum_calls));
        }
        Ok(())
    }

    /// The validated numbers, for the breaker.
    pub(crate) const fn params(&self) -> crate::rate::RateParams {
        crate::rate::RateParams {
            window: self.window as u8,
            minimum_calls: self.minimum_calls as u8,
            threshold_percent: self.threshold_percent as u8,
        }
    }
}

/// Largest `window` of a [`FailureRate`] (47 calls): the window word keeps the outcomes, a mark
/// and the 16-bit generation in 64 bits (see the README, "When to choose which mode").
pub const MAX_WINDOW: u32 = crate::rate::MAX_WINDOW;

/// The configuration of a [`CircuitBreaker`](crate::CircuitBreaker).
///
/// Every method is `const`, so a configuration can be built in a `static`:
///
/// ```
/// use atomic_breaker::Config;
/// use core::time::Duration;
///
/// const CONFIG: Config = Config::new()
///     .fail_max(3)
///     .reset_timeout(Duration::from_secs(30))
///     .success_threshold(2);
/// assert!(CONFIG.validate().is_ok());
/// ```
///
/// Durations are rounded up to whole milliseconds, the breaker's resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    pub(crate) fail_max: u32,
    pub(crate) reset_timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) half_open_max_calls: u32,
    pub(crate) trial_lease: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) failure_rate: Option<FailureRate>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// PyBreaker's defaults: `fail_max` 5, `reset_timeout` 60 s, `success_threshold` 1; plus
    /// `half_open_max_calls` 1, a trial lease of 60 s and no backoff.
    pub const fn new() -> Self {
        Config {
            fail_max: 5,
            reset_timeout: Duration::from_secs(60),
            success_threshold: 1,
            half_open_max_calls: 1,
            trial_lease: Duration::from_secs(60),
            backoff: None,
            failure_rate: None,
        }
    }

    /// Consecutive failures that trip the breaker (1 to [`MAX_FAIL_MAX`]).
    pub const fn fail_max(mut self, n: u32) -> Self {
        self.fail_max = n;
        self
    }

    /// How long the breaker stays open before it admits a trial call (at most [`MAX_PERIOD`]).
    /// Zero means the next call after a trip is already a trial.
    pub const fn reset_timeout(mut self, d: Duration) -> Self {
        self.reset_timeout = d;
        self
    }

    /// Trial successes in half-open that close the breaker (1 to [`MAX_SUCCESS_THRESHOLD`]).
    pub const fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n;
        self
    }

    /// Trial calls admitted at once in half-open (1 to [`MAX_HALF_OPEN_CALLS`]).
    pub const fn half_open_max_calls(mut self, n: u32) -> Self {
        self.half_open_max_calls = n;
        self
    }

    /// How long a half-open trial slot stays claimed without a report. When every slot is
    /// claimed and the newest claim is older than this, the next caller re-arms the trial: it is
    /// admitted and reports from the earlier trials are dropped. So a forgotten permit or a
    /// crashed caller cannot wedge the breaker. From 1 ms to [`MAX_PERIOD`].
    pub const fn trial_lease(mut self, d: Duration) -> Self {
        self.trial_lease = d;
        self
    }

    /// Grows the open period on repeated re-trips; see [`Backoff`].
    pub const fn backoff(mut self, b: Backoff) -> Self {
        self.backoff = Some(b);
        self
    }

    /// Failure-rate mode instead of consecutive failures: see [`FailureRate`]. `fail_max` is
    /// then not used (it stays readable and settable, and counts nothing).
    pub const fn failure_rate(mut self, r: FailureRate) -> Self {
        self.failure_rate = Some(r);
        self
    }

    /// Checks every field against the limits of the state word.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = check_fail_max(self.fail_max) {
            return Err(e);
        }
        if let Err(e) = check_success_threshold(self.success_threshold) {
            return Err(e);
        }
        if self.half_open_max_calls == 0 || self.half_open_max_calls > MAX_HALF_OPEN_CALLS {
            return Err(ConfigError::HalfOpenMaxCalls(self.half_open_max_calls));
        }
        let reset = match check_reset_timeout(self.reset_timeout) {
            Ok(ms) => ms,
            Err(e) => return Err(e),
        };
        let lease = duration_ms(self.trial_lease);
        if lease == 0 || lease > word::MAX_PERIOD_MS {
            return Err(ConfigError::TrialLease(self.trial_lease));
        }
        if let Some(b) = self.backoff {
            let max = duration_ms(b.max);
            if max < reset || max > word::MAX_PERIOD_MS {
                return Err(ConfigError::BackoffMax(b.max));
            }
            if b.jitter_percent > 100 {
                return Err(ConfigError::Jitter(b.jitter_percent));
            }
        }
        if let Some(r) = self.failure_rate {
            if let Err(e) = r.validate() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// `fail_max` as configured.
    pub const fn get_fail_max(&self) -> u32 {
        self.fail_max
    }
    /// `reset_timeout` as configured.
    pub const fn get_reset_timeout(&self) -> Duration {
        self.reset_timeout
    }
    /// `success_threshold` as configured.
    pub const fn get_success_threshold(&self) -> u32 {
        self.success_threshold
    }
    /// `half_open_max_calls` as configured.
    pub const fn get_half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }
    /// The trial lease as configured.
    pub const fn get_trial_lease(&self) -> Duration {
        self.trial_lease
    }
    /// The backoff, if any.
    pub const fn get_backoff(&self) -> Option<Backoff> {
        self.backoff
    }
    /// The failure-rate mode, if set (else consecutive failures count).
    pub const fn get_failure_rate(&self) -> Option<FailureRate> {
        self.failure_rate
    }
}

/// `Duration::from_millis(ms)`. On 64-bit targets that is what it calls (a division by the
/// constant 1000 is a multiply there); elsewhere [`ms_to_duration_digits`].
#[inline]
pub(crate) const fn ms_to_duration(ms: u64) -> Duration {
    if cfg!(target_pointer_width = "64") {
        Duration::from_millis(ms)
    } else {
        ms_to_duration_digits(ms)
    }
}

/// `Duration::from_millis(ms)` without any division: long division by 1000 in 4-bit digits,
/// each digit's quotient taken with a 32-bit reciprocal multiply. No divide instruction or
/// routine is needed (Cortex-M0 has none; the 64-bit software divide alone is about 0.9 KiB of
/// flash, the 32-bit one 0.4 KiB), and no 64-bit multiply (a library call on Cortex-M0).
pub(crate) const fn ms_to_duration_digits(ms: u64) -> Duration {
    let mut secs: u64 = 0;
    let mut rem: u32 = 0;
    let mut shift = 64;
    // The halves as `u32`s: a variable shift of a `u64` is a library call on Cortex-M0.
    let (hi, lo) = ((ms >> 32) as u32, ms as u32);
    while shift > 0 {
        shift -= 4;
        let half = if shift >= 32 { hi } else { lo };
        // rem < 1000, so t < 1000 * 16 + 16 < 2^14, and t / 1000 < 16: one 4-bit digit.
        // floor(t * 16_778 / 2^24) == t / 1000 for every t < 2^14 (16_778 = ceil(2^24 / 1000);
        // its excess, 0.784 / 2^24 per unit of t, stays below 1/1000 of a unit for t < 2^14:
        // checked exhaustively by `digit_reciprocal_is_exact`), and t * 16_778 < 2^28.
        let t = (rem << 4) | ((half >> (shift % 32)) & 0xF);
        let q = (t * DIGIT_RECIPROCAL) >> 24;
        secs = (secs << 4) | q as u64;
        rem = t - q * 1000;
    }
    // rem < 1000 always; saying so lets `Duration::new` drop its carry (and panic) path.
    let rem = if rem < 1000 { rem } else { 999 };
    Duration::new(secs, rem * 1_000_000)
}

/// `ceil(2^24 / 1000)`: the reciprocal `ms_to_duration_digits` divides each 4-bit digit step by.
const DIGIT_RECIPROCAL: u32 = 16_778;

/// A duration in whole milliseconds, rounded up, saturating at `u64::MAX`.
pub(crate) const fn duration_ms(d: Duration) -> u64 {
    let ms = d.as_millis();
    let ms = if !d.subsec_nanos().is_multiple_of(1_000_000) {
        ms + 1
    } else {
        ms
    };
    if ms > u64::MAX as u128 {
        u64::MAX
    } else {
        ms as u64
    }
}

pub(crate) const fn check_fail_max(n: u32) -> Result<(), ConfigError> {
    if n == 0 || n > MAX_FAIL_MAX {
        Err(ConfigError::FailMax(n))
    } else {
        Ok(())
    }
}

pub(crate) const fn check_success_threshold(n: u32) -> Result<(), ConfigError> {
    if n == 0 || n > MAX_SUCCESS_THRESHOLD {
        Err(ConfigError::SuccessThreshold(n))
    } else {
        Ok(())
    }
}

/// Returns the timeout in ms when it is valid.
pub(crate) const fn check_reset_timeout(d: Duration) -> Result<u64, ConfigError> {
    let ms = duration_ms(d);
    if ms > word::MAX_PERIOD_MS {
        Err(ConfigError::ResetTimeout(d))
    } else {
        Ok(ms)
    }
}

/// A configuration value outside what the breaker supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// `fail_max` is 0 or above [`MAX_FAIL_MAX`].
    FailMax(u32),
    /// `success_threshold` is 0 or above [`MAX_SUCCESS_THRESHOLD`].
    SuccessThreshold(u32),
    /// `half_open_max_calls` is 0 or above [`MAX_HALF_OPEN_CALLS`].
    HalfOpenMaxCalls(u32),
    /// `reset_timeout` is longer than [`MAX_PERIOD`].
    ResetTimeout(Duration),
    /// The trial lease is zero or longer than [`MAX_PERIOD`].
    TrialLease(Duration),
    /// The backoff cap is shorter than `reset_timeout` or longer than [`MAX_PERIOD`].
    BackoffMax(Duration),
    /// Backoff jitter above 100 percent.
    Jitter(u8),
    /// A `trip_for` period longer than [`MAX_PERIOD`].
    TripPeriod(Duration),
    /// A configuration field (named) was given a negative number (feature `serde`).
    Negative(&'static str),
    /// A configuration field (named) was given a number too large for it to hold (feature
    /// `serde`): more than `u32::MAX` for a count, `u64::MAX` for milliseconds, 255 for a
    /// percentage.
    TooLarge(&'static str),
    /// A configuration field (named) was given an empty string (feature `serde`).
    Empty(&'static str),
    /// `backoff_jitter_percent` without `backoff_max_ms` (feature `serde`).
    JitterWithoutBackoff,
    /// `failure_rate_minimum_calls` or only one of `failure_rate_percent` and
    /// `failure_rate_window` (feature `serde`): rate mode needs both.
    FailureRateIncomplete,
    /// A [`FailureRate`] window of 0 calls or more than [`MAX_WINDOW`].
    Window(u32),
    /// A [`FailureRate`] threshold of 0 or above 100 percent.
    FailureRateThreshold(u32),
    /// A [`FailureRate`] `minimum_calls` of 0 or more than its window.
    MinimumCalls(u32),
}

impl ConfigError {
    /// A fixed message for the error, usable in `const` panics.
    pub const fn message(&self) -> &'static str {
        match self {
            ConfigError::FailMax(_) => "fail_max must be between 1 and 127",
            ConfigError::SuccessThreshold(_) => "success_threshold must be between 1 and 127",
            ConfigError::HalfOpenMaxCalls(_) => "half_open_max_calls must be between 1 and 31",
            ConfigError::ResetTimeout(_) => "reset_timeout must be at most 24 hours",
            ConfigError::TrialLease(_) => "trial_lease must be between 1 ms and 24 hours",
            ConfigError::BackoffMax(_) => {
                "the backoff cap must be at least reset_timeout and at most 24 hours"
            }
            ConfigError::Jitter(_) => "backoff jitter must be at most 100 percent",
            ConfigError::TripPeriod(_) => "trip_for period must be at most 24 hours",
            ConfigError::Negative(_) => "a configuration value must not be negative",
            ConfigError::TooLarge(_) => "a configuration value is too large",
            ConfigError::Empty(_) => "a configuration value is empty",
            ConfigError::JitterWithoutBackoff => {
                "backoff_jitter_percent needs backoff_max_ms (jitter applies to a backoff)"
            }
            ConfigError::FailureRateIncomplete => {
                "failure-rate mode needs both failure_rate_percent and failure_rate_window"
            }
            ConfigError::Window(_) => "the failure-rate window must be between 1 and 47 calls",
            ConfigError::FailureRateThreshold(_) => {
                "the failure-rate threshold must be between 1 and 100 percent"
            }
            ConfigError::MinimumCalls(_) => {
                "minimum_calls must be between 1 and the failure-rate window"
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::FailMax(n)
            | ConfigError::SuccessThreshold(n)
            | ConfigError::HalfOpenMaxCalls(n)
            | ConfigError::Window(n)
            | ConfigError::FailureRateThreshold(n)
            | ConfigError::MinimumCalls(n) => write!(f, "{} (got {n})", self.message()),
            ConfigError::ResetTimeout(d)
            | ConfigError::TrialLease(d)
            | ConfigError::BackoffMax(d)
            | ConfigError::TripPeriod(d) => write!(f, "{} (got {d:?})", self.message()),
            ConfigError::Jitter(p) => write!(f, "{} (got {p})", self.message()),
            ConfigError::Negative(field) => write!(f, "{field} must not be negative"),
            ConfigError::TooLarge(field) => write!(f, "{field} is too large"),
            ConfigError::Empty(field) => write!(f, "{field} is empty (expected a whole number)"),
            ConfigError::JitterWithoutBackoff | ConfigError::FailureRateIncomplete => {
                f.write_str(self.message())
            }
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pybreakers_and_valid() {
        let c = Config::new();
        assert_eq!(c.get_fail_max(), 5);
        assert_eq!(c.get_reset_timeout(), Duration::from_secs(60));
        assert_eq!(c.get_success_threshold(), 1);
        assert_eq!(c.get_half_open_max_calls(), 1);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn each_limit_is_enforced() {
        let c = Config::new();
        assert_eq!(c.fail_max(0).validate(), Err(ConfigError::FailMax(0)));
        assert_eq!(c.fail_max(127).validate(), Ok(()));
        assert_eq!(c.fail_max(128).validate(), Err(ConfigError::FailMax(128)));
        assert_eq!(
            c.success_threshold(128).validate(),
            Err(ConfigError::SuccessThreshold(128))
        );
        assert_eq!(
            c.half_open_max_calls(32).validate(),
            Err(ConfigError::HalfOpenMaxCalls(32))
        );
        assert_eq!(c.half_open_max_calls(31).validate(), Ok(()));
        let too_long = MAX_PERIOD + Duration::from_millis(1);
        assert_eq!(
            c.reset_timeout(too_long).validate(),
            Err(ConfigError::ResetTimeout(too_long))
        );
        assert_eq!(c.reset_timeout(MAX_PERIOD).validate(), Ok(()));
        assert_eq!(c.reset_timeout(Duration::ZERO).validate(), Ok(()));
        assert_eq!(
            c.trial_lease(Duration::ZERO).validate(),
            Err(ConfigError::TrialLease(Duration::ZERO))
        );
        let short = Duration::from_secs(1);
        assert_eq!(
            c.backoff(Backoff::exponential(short)).validate(),
            Err(ConfigError::BackoffMax(short))
        );
        let b = Backoff::exponential(Duration::from_secs(600));
        assert_eq!(c.backoff(b).validate(), Ok(()));
        assert_eq!(
            c.backoff(b.jitter_percent(101)).validate(),
            Err(ConfigError::Jitter(101))
        );
    }

    #[test]
    fn failure_rate_limits_are_enforced() {
        let c = Config::new();
        let ok = FailureRate::new(50, 20).minimum_calls(10);
        assert_eq!(c.failure_rate(ok).validate(), Ok(()));
        assert_eq!(c.get_failure_rate(), None);
        assert_eq!(c.failure_rate(ok).get_failure_rate(), Some(ok));
        assert_eq!(FailureRate::new(50, 20).get_minimum_calls(), 20);
        let bad = |r: FailureRate| c.failure_rate(r).validate();
        assert_eq!(bad(FailureRate::new(50, 0)), Err(ConfigError::Window(0)));
        assert_eq!(bad(FailureRate::new(50, MAX_WINDOW)), Ok(()));
        assert_eq!(
            bad(FailureRate::new(50, MAX_WINDOW + 1)),
            Err(ConfigError::Window(MAX_WINDOW + 1))
        );
        assert_eq!(bad(FailureRate::new(50, 65)), Err(ConfigError::Window(65)));
        assert_eq!(
            bad(FailureRate::new(0, 10)),
            Err(ConfigError::FailureRateThreshold(0))
        );
        assert_eq!(bad(FailureRate::new(100, 10)), Ok(()));
        assert_eq!(
            bad(FailureRate::new(101, 10)),
            Err(ConfigError::FailureRateThreshold(101))
        );
        assert_eq!(
            bad(FailureRate::new(50, 10).minimum_calls(0)),
            Err(ConfigError::MinimumCalls(0))
        );
        assert_eq!(
            bad(FailureRate::new(50, 10).minimum_calls(11)),
            Err(ConfigError::MinimumCalls(11))
        );
        assert_eq!(bad(FailureRate::new(50, 10).minimum_calls(1)), Ok(()));
        let e = ConfigError::MinimumCalls(11);
        #[cfg(feature = "std")]
        assert_eq!(
            std::format!("{e}"),
            "minimum_calls must be between 1 and the failure-rate window (got 11)"
        );
        let _ = e;
    }

    #[test]
    fn durations_round_up_to_whole_milliseconds() {
        assert_eq!(duration_ms(Duration::from_micros(1)), 1);
        assert_eq!(duration_ms(Duration::from_micros(1500)), 2);
        assert_eq!(duration_ms(Duration::from_millis(7)), 7);
    }

    #[test]
    fn ms_to_duration_matches_from_millis() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let edges = [
            0,
            1,
            999,
            1_000,
            1_001,
            65_535_999,
            u32::MAX as u64,
            1 << 40,
            u64::MAX,
        ];
        for ms in edges.into_iter().chain((0..10_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 64)
        })) {
            assert_eq!(ms_to_duration(ms), Duration::from_millis(ms), "{ms}");
            assert_eq!(ms_to_duration_digits(ms), Duration::from_millis(ms), "{ms}");
        }
        assert_eq!(duration_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn digit_reciprocal_is_exact() {
        // Every value a digit step can see: rem < 1000 shifted by 4 plus a digit.
        let step = if cfg!(miri) { 7 } else { 1 };
        for t in (0..(1000u32 << 4)).step_by(step) {
            assert_eq!((t * DIGIT_RECIPROCAL) >> 24, t / 1000, "{t}");
        }
    }
}
