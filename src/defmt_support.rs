//! `defmt::Format` for the types that carry a `Duration`, and two defmt listeners.
//!
//! The plain types ([`State`](crate::State), [`Outcome`](crate::Outcome), [`Recorded`](crate::Recorded),
//! [`ListenerId`](crate::ListenerId), [`ListenerTableFull`](crate::ListenerTableFull)) derive
//! `defmt::Format` where they are declared. The types here are written by hand so that
//! durations print as `250ms` rather than as defmt's `Duration { secs: 0, nanos: 250000000 }`:
//! [`Event`], [`EventKind`], [`Rejected`], [`Error`], [`Snapshot`], [`Config`], [`Backoff`],
//! [`ConfigError`], and [`CircuitBreaker`] (which prints its [`snapshot`](CircuitBreaker::snapshot)).
//!
//! The listeners are ordinary `fn(&Event)`s:
//!
//! ```
//! use atomic_breaker::{defmt_state_logger, CircuitBreaker, Config, ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! static UPLINK: CircuitBreaker<&ManualClock> =
//!     CircuitBreaker::new("uplink", Config::new(), &CLOCK).with_listener(defmt_state_logger);
//! # assert_eq!(UPLINK.listener_count(), 1);
//! ```
//!
//! Like every defmt log call, they need a `#[defmt::global_logger]` in the final binary (for
//! example `defmt-rtt` or `defmt-semihosting`). On a host, a test that links them needs one too;
//! this crate's own tests define a no-op logger.

use core::time::Duration;

use defmt::{Format, Formatter};

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::config::{Backoff, Config, ConfigError};
use crate::error::{Error, Rejected};
use crate::event::{Event, EventKind};
use crate::snapshot::Snapshot;

/// Logs every state change through defmt: moves into Open or ForcedOpen at `warn` level, the
/// others at `info`. Other events are ignored. Add it with
/// [`with_listener`](CircuitBreaker::with_listener) or
/// [`add_listener`](CircuitBreaker::add_listener).
pub fn defmt_state_logger(event: &Event) {
    if let EventKind::StateChange {
        from, to, failures, ..
    } = event.kind
    {
        if to.is_open() {
            defmt::warn!(
                "circuit breaker {=str}: {} -> {} ({=u32} failures)",
                event.name,
                from,
                to,
                failures
            );
        } else {
            defmt::info!("circuit breaker {=str}: {} -> {}", event.name, from, to);
        }
    }
}

/// Logs every event through defmt at `trace` level (one line per call admitted, reported or
/// rejected: filter it out at compile time with `DEFMT_LOG` unless you want that).
pub fn defmt_event_logger(event: &Event) {
    defmt::trace!("{}", event);
}

/// A duration as whole milliseconds when it is one (every duration the breaker produces is),
/// otherwise in defmt's own format.
struct Ms(Duration);

impl Format for Ms {
    fn format(&self, f: Formatter<'_>) {
        let d = self.0;
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            let ms = d
                .as_secs()
                .saturating_mul(1_000)
                .saturating_add(u64::from(d.subsec_millis()));
            defmt::write!(f, "{=u64}ms", ms);
        } else {
            defmt::write!(f, "{}", d);
        }
    }
}

fn ms(d: Option<Duration>) -> Option<Ms> {
    d.map(Ms)
}

/// The caller's error of a `Failure` or `Ignored` event is not printed: it is a
/// `core::fmt::Debug`, which defmt could print only by linking `core::fmt` into the firmware.
impl Format for EventKind<'_> {
    fn format(&self, f: Formatter<'_>) {
        match *self {
            EventKind::BeforeCall => defmt::write!(f, "before call"),
            EventKind::Success { failures } => {
                defmt::write!(f, "success ({=u32} failures left)", failures)
            }
            EventKind::Failure { failures, .. } => {
                defmt::write!(f, "failure ({=u32} consecutive)", failures)
            }
            EventKind::Ignored { .. } => defmt::write!(f, "ignored"),
            EventKind::Rejected { state, retry_after } => {
                defmt::write!(f, "rejected ({}, retry after {})", state, ms(retry_after))
            }
            EventKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            } => defmt::write!(
                f,
                "state change {} -> {} ({=u32} failures, retry after {})",
                from,
                to,
                failures,
                ms(retry_after)
            ),
        }
    }
}

impl Format for Event<'_> {
    fn format(&self, f: Formatter<'_>) {
        defmt::write!(f, "{=str}: {}", self.name, self.kind);
    }
}

impl Format for Rejected {
    fn format(&self, f: Formatter<'_>) {
        match self.retry_after {
            Some(d) => defmt::write!(
                f,
                "circuit breaker {=str} is {}; retry in {}",
                self.name,
                self.state,
                Ms(d)
            ),
            None => defmt::write!(f, "circuit breaker {=str} is {}", self.name, self.state),
        }
    }
}

impl<E: Format> Format for Error<E> {
    fn format(&self, f: Formatter<'_>) {
        match self {
            Error::Rejected(r) => defmt::write!(f, "{}", r),
            Error::Failed {
                error,
                tripped: false,
            } => defmt::write!(f, "{}", error),
            Error::Failed {
                error,
                tripped: true,
            } => defmt::write!(f, "{} (this failure tripped the circuit breaker)", error),
        }
    }
}

impl Format for Snapshot {
    fn format(&self, f: Formatter<'_>) {
        defmt::write!(
            f,
            "{=str}: {} failures {=u32}/{=u32} successes {=u32}/{=u32} trials {=u32}/{=u32} \
             generation {=u16} backoff {=u8} retry_after {} opened_at {} reset_timeout {}",
            self.name,
            self.state,
            self.fail_counter,
            self.fail_max,
            self.success_counter,
            self.success_threshold,
            self.trial_calls,
            self.half_open_max_calls,
            self.generation,
            self.backoff_level,
            ms(self.retry_after),
            self.opened_at,
            Ms(self.reset_timeout),
        );
    }
}

impl Format for Backoff {
    fn format(&self, f: Formatter<'_>) {
        defmt::write!(
            f,
            "Backoff {{ max: {}, jitter: {=u8}% }}",
            Ms(self.max),
            self.jitter_percent
        );
    }
}

impl Format for Config {
    fn format(&self, f: Formatter<'_>) {
        defmt::write!(
            f,
            "Config {{ fail_max: {=u32}, reset_timeout: {}, success_threshold: {=u32}, \
             half_open_max_calls: {=u32}, trial_lease: {}, backoff: {} }}",
            self.fail_max,
            Ms(self.reset_timeout),
            self.success_threshold,
            self.half_open_max_calls,
            Ms(self.trial_lease),
            self.backoff,
        );
    }
}

impl Format for ConfigError {
    fn format(&self, f: Formatter<'_>) {
        match *self {
            ConfigError::FailMax(n)
            | ConfigError::SuccessThreshold(n)
            | ConfigError::HalfOpenMaxCalls(n)
            | ConfigError::Window(n)
            | ConfigError::FailureRateThreshold(n)
            | ConfigError::MinimumCalls(n) => {
                defmt::write!(f, "{=str} (got {=u32})", self.message(), n)
            }
            ConfigError::ResetTimeout(d)
            | ConfigError::TrialLease(d)
            | ConfigError::BackoffMax(d)
            | ConfigError::TripPeriod(d) => {
                defmt::write!(f, "{=str} (got {})", self.message(), Ms(d))
            }
            ConfigError::Jitter(p) => defmt::write!(f, "{=str} (got {=u8})", self.message(), p),
            ConfigError::Negative(field) => defmt::write!(f, "{=str} must not be negative", field),
            ConfigError::TooLarge(field) => {
                defmt::write!(f, "{=str} is too large", field)
            }
            ConfigError::Empty(field) => {
                defmt::write!(f, "{=str} is empty (expected a whole number)", field)
            }
            ConfigError::JitterWithoutBackoff | ConfigError::FailureRateIncomplete => {
                defmt::write!(f, "{=str}", self.message())
            }
        }
    }
}

/// Prints the breaker's [`snapshot`](CircuitBreaker::snapshot) (which reads the clock while the
/// breaker is Open).
impl<C: Clock, const L: usize> Format for CircuitBreaker<C, L> {
    fn format(&self, f: Formatter<'_>) {
        defmt::write!(f, "{}", self.snapshot());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{ListenerId, ListenerTableFull, ManualClock, Outcome, Recorded, State};
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// Bytes written by log calls: proof that the formatting code ran.
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);

    /// A host-only logger: counts bytes and discards them. defmt log macros need a global
    /// logger to link.
    #[defmt::global_logger]
    struct CountingLogger;

    unsafe impl defmt::Logger for CountingLogger {
        fn acquire() {}
        unsafe fn flush() {}
        unsafe fn release() {}
        unsafe fn write(bytes: &[u8]) {
            WRITTEN.fetch_add(bytes.len(), Ordering::SeqCst);
        }
    }

    defmt::timestamp!("{=u8}", 0);

    fn is_format<T: Format + ?Sized>() {}

    #[test]
    fn every_public_type_a_firmware_logs_implements_format() {
        is_format::<State>();
        is_format::<Outcome>();
        is_format::<Recorded>();
        is_format::<ListenerId>();
        is_format::<ListenerTableFull>();
        is_format::<Event>();
        is_format::<EventKind>();
        is_format::<Rejected>();
        is_format::<Error<u8>>();
        is_format::<Snapshot>();
        is_format::<Config>();
        is_format::<Backoff>();
        is_format::<ConfigError>();
        is_format::<CircuitBreaker<ManualClock>>();
    }

    #[test]
    fn formatting_runs_through_a_logger() {
        // One test touches the logger, so the byte count is not shared with another test.
        let before = WRITTEN.load(Ordering::SeqCst);
        let clock = ManualClock::new();
        let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
            "uplink",
            Config::new()
                .fail_max(1)
                .backoff(Backoff::exponential(Duration::from_secs(600))),
            &clock,
        )
        .with_listener(defmt_state_logger)
        .with_listener(defmt_event_logger);
        // The listeners log at warn, info and trace: compiled out unless `DEFMT_LOG` asks for
        // them, so this only proves they run. The `error!` calls below always format.
        let err = b.call(|| Err::<(), u8>(7)).unwrap_err();
        let rejected = b.call(|| Ok::<(), u8>(())).unwrap_err();
        clock.advance(Duration::from_micros(1_500));
        defmt::error!(
            "{} {} {} {} {}",
            err,
            rejected,
            b,
            Config::new(),
            ConfigError::TrialLease(Duration::from_micros(1_500))
        );
        let after_one = WRITTEN.load(Ordering::SeqCst);
        assert!(after_one > before);
        defmt::error!(
            "{} {} {} {}",
            ConfigError::FailMax(0),
            ConfigError::Jitter(101),
            b.snapshot(),
            Event {
                name: "uplink",
                kind: EventKind::Rejected {
                    state: State::Open,
                    retry_after: Some(Duration::from_millis(250)),
                },
            },
        );
        assert!(WRITTEN.load(Ordering::SeqCst) > after_one);
    }
}
