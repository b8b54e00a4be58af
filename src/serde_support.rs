//! `serde` support (feature `serde`): `Serialize` for [`State`], [`Snapshot`], [`Event`],
//! [`EventRecord`] and [`Config`]; `Deserialize` for [`Config`], validated.
//!
//! Durations are whole milliseconds in fields named `*_ms`, never serde's `Duration` format
//! (`{ "secs": .., "nanos": .. }`), which string-based configuration (environment variables,
//! `key=value` files) cannot spell. Nothing here allocates, so it works in `no_std`.
//!
//! # `Config` from files and environment maps
//!
//! | field | type | default | limits |
//! |---|---|---|---|
//! | `fail_max` | integer | 5 | 1 to 127 |
//! | `reset_timeout_ms` | integer ms | 60000 | 0 to 86400000 (24 h) |
//! | `success_threshold` | integer | 1 | 1 to 127 |
//! | `half_open_max_calls` | integer | 1 | 1 to 31 |
//! | `trial_lease_ms` | integer ms | 60000 | 1 to 86400000 |
//! | `backoff_max_ms` | integer ms, or `null` | no backoff | `reset_timeout_ms` to 86400000 |
//! | `backoff_jitter_percent` | integer | 0 | 0 to 100; only with `backoff_max_ms` |
//! | `failure_rate_percent` | integer | consecutive mode | 1 to 100; with `failure_rate_window` |
//! | `failure_rate_window` | integer (calls) | consecutive mode | 1 to [`MAX_WINDOW`](crate::MAX_WINDOW); with `failure_rate_percent` |
//! | `failure_rate_minimum_calls` | integer | the window | 1 to the window; only in rate mode |
//!
//! Every field is optional (the default is [`Config::new`]'s). Each value is an integer or a
//! string of decimal digits (`"250"`, as an environment variable holds it). Field names match
//! ignoring ASCII case, so `FAIL_MAX` works too. Rejected, each with a message naming the
//! field: an unknown or repeated field, a negative number, a number too large for its field,
//! an empty string or anything else that is not a whole number (a fraction, a boolean, a
//! list), jitter without a backoff cap, a failure-rate field without both the percent and the
//! window ([`ConfigError::FailureRateIncomplete`]), and every value outside the limits above (the
//! [`ConfigError`] of [`Config::validate`]). Deserializing never panics.
//!
//! ```
//! use atomic_breaker::Config;
//! use core::time::Duration;
//! use serde::Deserialize;
//! use serde::de::value::{Error, MapDeserializer};
//!
//! // As `std::env::vars()` would give them, prefix stripped.
//! let env = [("FAIL_MAX", "3"), ("RESET_TIMEOUT_MS", "2500")];
//! let config = Config::deserialize(MapDeserializer::<_, Error>::new(env.into_iter())).unwrap();
//! assert_eq!(config.get_fail_max(), 3);
//! assert_eq!(config.get_reset_timeout(), Duration::from_millis(2500));
//!
//! let bad = [("fail_max", "0")];
//! let err = Config::deserialize(MapDeserializer::<_, Error>::new(bad.into_iter())).unwrap_err();
//! assert_eq!(err.to_string(), "fail_max must be between 1 and 127 (got 0)");
//! ```
//!
//! `Config` deserializes through `deserialize_any`, so it needs a self-describing format
//! (JSON, TOML, YAML, environment maps), as configuration formats are.
//!
//! # What the other types serialize to
//!
//! - [`State`]: its name, `"Closed"`, `"Open"`, `"HalfOpen"`, `"ForcedOpen"`, `"Disabled"`.
//! - [`Snapshot`]: a map of its fields, `retry_after_ms` and `reset_timeout_ms` in ms.
//! - [`Event`] and [`EventRecord`]: `{"name": .., "kind": .., ..}` with `kind` one of
//!   `"before_call"`, `"success"`, `"failure"` (with `failures` and `error`), `"ignored"` (with
//!   `error`), `"rejected"` (with `state` and `retry_after_ms`), `"state_change"` (with `from`,
//!   `to`, `failures` and `retry_after_ms`). `error` is the caller's error as its `Debug`
//!   rendering (written straight into the output, through `collect_str`), or `null`.
//! - [`Config`]: the fields of the table above (the two backoff fields only with a backoff, the
//!   three failure-rate fields only in rate mode).

use core::fmt;
use core::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::config::{duration_ms, Backoff, Config, ConfigError, FailureRate};
use crate::event::{Event, EventKind, EventRecord};
use crate::snapshot::Snapshot;
use crate::state::State;

// ------------------------------------------------------------------------------ Serialize

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (index, name) = match self {
            State::Closed => (0, "Closed"),
            State::Open => (1, "Open"),
            State::HalfOpen => (2, "HalfOpen"),
            State::ForcedOpen => (3, "ForcedOpen"),
            State::Disabled => (4, "Disabled"),
        };
        s.serialize_unit_variant("State", index, name)
    }
}

/// A duration as whole milliseconds (rounded up, as the breaker rounds).
fn ms(d: Duration) -> u64 {
    duration_ms(d)
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Snapshot", 13)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("fail_counter", &self.fail_counter)?;
        st.serialize_field("success_counter", &self.success_counter)?;
        st.serialize_field("trial_calls", &self.trial_calls)?;
        st.serialize_field("generation", &self.generation)?;
        st.serialize_field("backoff_level", &self.backoff_level)?;
        st.serialize_field("retry_after_ms", &self.retry_after.map(ms))?;
        st.serialize_field("opened_at", &self.opened_at)?;
        st.serialize_field("fail_max", &self.fail_max)?;
        st.serialize_field("success_threshold", &self.success_threshold)?;
        st.serialize_field("half_open_max_calls", &self.half_open_max_calls)?;
        st.serialize_field("reset_timeout_ms", &ms(self.reset_timeout))?;
        st.end()
    }
}

/// The caller's error as a string: its `Debug` rendering, streamed by `collect_str`.
struct DebugStr<'a>(&'a dyn fmt::Debug);

impl fmt::Display for DebugStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl Serialize for DebugStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.kind {
            EventKind::BeforeCall => {
                let mut st = s.serialize_struct("Event", 2)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "before_call")?;
                st.end()
            }
            EventKind::Success { failures } => {
                let mut st = s.serialize_struct("Event", 3)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "success")?;
                st.serialize_field("failures", &failures)?;
                st.end()
            }
            EventKind::Failure { failures, error: e } => {
                let mut st = s.serialize_struct("Event", 4)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "failure")?;
                st.serialize_field("failures", &failures)?;
                st.serialize_field("error", &e.map(DebugStr))?;
                st.end()
            }
            EventKind::Ignored { error: e } => {
                let mut st = s.serialize_struct("Event", 3)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "ignored")?;
                st.serialize_field("error", &e.map(DebugStr))?;
                st.end()
            }
            EventKind::Rejected { state, retry_after } => {
                let mut st = s.serialize_struct("Event", 4)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "rejected")?;
                st.serialize_field("state", &state)?;
                st.serialize_field("retry_after_ms", &retry_after.map(ms))?;
                st.end()
            }
            EventKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            } => {
                let mut st = s.serialize_struct("Event", 6)?;
                st.serialize_field("name", self.name)?;
                st.serialize_field("kind", "state_change")?;
                st.serialize_field("from", &from)?;
                st.serialize_field("to", &to)?;
                st.serialize_field("failures", &failures)?;
                st.serialize_field("retry_after_ms", &retry_after.map(ms))?;
                st.end()
            }
        }
    }
}

impl Serialize for EventRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.event().serialize(s)
    }
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields =
            5 + 2 * self.backoff.is_some() as usize + 3 * self.failure_rate.is_some() as usize;
        let mut st = s.serialize_struct("Config", fields)?;
        st.serialize_field(FAIL_MAX, &self.fail_max)?;
        st.serialize_field(RESET_TIMEOUT_MS, &ms(self.reset_timeout))?;
        st.serialize_field(SUCCESS_THRESHOLD, &self.success_threshold)?;
        st.serialize_field(HALF_OPEN_MAX_CALLS, &self.half_open_max_calls)?;
        st.serialize_field(TRIAL_LEASE_MS, &ms(self.trial_lease))?;
        match self.backoff {
            Some(b) => {
                st.serialize_field(BACKOFF_MAX_MS, &ms(b.max))?;
                st.serialize_field(BACKOFF_JITTER_PERCENT, &b.jitter_percent)?;
            }
            None => {
                st.skip_field(BACKOFF_MAX_MS)?;
                st.skip_field(BACKOFF_JITTER_PERCENT)?;
            }
        }
        match self.failure_rate {
            Some(r) => {
                st.serialize_field(FAILURE_RATE_PERCENT, &r.threshold_percent)?;
                st.serialize_field(FAILURE_RATE_WINDOW, &r.window)?;
                st.serialize_field(FAILURE_RATE_MINIMUM_CALLS, &r.minimum_calls)?;
            }
            None => {
                st.skip_field(FAILURE_RATE_PERCENT)?;
                st.skip_field(FAILURE_RATE_WINDOW)?;
                st.skip_field(FAILURE_RATE_MINIMUM_CALLS)?;
            }
        }
        st.end()
    }
}

// ------------------------------------------------------------------------------ Deserialize

const FAIL_MAX: &str = "fail_max";
const RESET_TIMEOUT_MS: &str = "reset_timeout_ms";
const SUCCESS_THRESHOLD: &str = "success_threshold";
const HALF_OPEN_MAX_CALLS: &str = "half_open_max_calls";
const TRIAL_LEASE_MS: &str = "trial_lease_ms";
const BACKOFF_MAX_MS: &str = "backoff_max_ms";
const BACKOFF_JITTER_PERCENT: &str = "backoff_jitter_percent";
const FAILURE_RATE_PERCENT: &str = "failure_rate_percent";
const FAILURE_RATE_WINDOW: &str = "failure_rate_window";
const FAILURE_RATE_MINIMUM_CALLS: &str = "failure_rate_minimum_calls";

/// Every field, in the order of the table; the index is the field's number.
const FIELDS: &[&str] = &[
    FAIL_MAX,
    RESET_TIMEOUT_MS,
    SUCCESS_THRESHOLD,
    HALF_OPEN_MAX_CALLS,
    TRIAL_LEASE_MS,
    BACKOFF_MAX_MS,
    BACKOFF_JITTER_PERCENT,
    FAILURE_RATE_PERCENT,
    FAILURE_RATE_WINDOW,
    FAILURE_RATE_MINIMUM_CALLS,
];

/// A field name, matched ignoring ASCII case.
struct Field(usize);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a breaker configuration field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                match FIELDS.iter().position(|f| f.eq_ignore_ascii_case(v)) {
                    Some(i) => Ok(Field(i)),
                    None => Err(E::unknown_field(v, FIELDS)),
                }
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Field, E> {
                match FIELDS
                    .iter()
                    .position(|f| f.as_bytes().eq_ignore_ascii_case(v))
                {
                    Some(i) => Ok(Field(i)),
                    None => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// A whole number for field `field`, at most `max`: an integer, or a string of decimal digits.
struct Whole {
    field: &'static str,
    max: u64,
}

impl<'de> de::DeserializeSeed<'de> for Whole {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Whole {
    fn check<E: de::Error>(&self, v: u64) -> Result<u64, E> {
        if v > self.max {
            Err(E::custom(ConfigError::TooLarge(self.field)))
        } else {
            Ok(v)
        }
    }
}

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number for {} (an integer or a string of decimal digits)",
            self.field
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        self.check(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.check(v),
            Err(_) => Err(E::custom(ConfigError::Negative(self.field))),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.check(v),
            Err(_) => Err(E::custom(ConfigError::TooLarge(self.field))),
        }
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<u64, E> {
        if v < 0 {
            return Err(E::custom(ConfigError::Negative(self.field)));
        }
        self.visit_u128(v.unsigned_abs())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let digits = v.trim_matches(|c: char| c.is_ascii_whitespace());
        if digits.is_empty() {
            return Err(E::custom(ConfigError::Empty(self.field)));
        }
        if let Some(rest) = digits.strip_prefix('-') {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::custom(ConfigError::Negative(self.field)));
            }
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        let mut n: u64 = 0;
        for b in digits.bytes() {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
            {
                Some(n) => n,
                None => return Err(E::custom(ConfigError::TooLarge(self.field))),
            };
        }
        self.check(n)
    }
}

/// An optional whole number: `null` (or a missing field) is `None`.
struct OptionalWhole(Whole);

impl<'de> de::DeserializeSeed<'de> for OptionalWhole {
    type Value = Option<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptionalWhole {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)?;
        f.write_str(", or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        de::DeserializeSeed::deserialize(self.0, d).map(Some)
    }
    // Formats that do not call `visit_some` (string maps) hand the value over directly.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<u64>, E> {
        self.0.visit_u64(v).map(Some)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<u64>, E> {
        self.0.visit_i64(v).map(Some)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Option<u64>, E> {
        self.0.visit_u128(v).map(Some)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Option<u64>, E> {
        self.0.visit_i128(v).map(Some)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u64>, E> {
        self.0.visit_str(v).map(Some)
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a circuit breaker configuration (a map of fields such as fail_max)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let ms_max = u64::MAX;
        let mut seen = [false; FIELDS.len()];
        let mut c = Config::new();
        let mut backoff_max: Option<Option<u64>> = None;
        let mut jitter: Option<u64> = None;
        // Failure-rate mode: percent, window, minimum calls.
        let mut rate: [Option<u32>; 3] = [None; 3];
        let whole = |field, max| Whole { field, max };
        while let Some(Field(i)) = map.next_key::<Field>()? {
            let name = FIELDS.get(i).copied().unwrap_or("");
            match seen.get_mut(i) {
                Some(s) if !*s => *s = true,
                _ => return Err(de::Error::duplicate_field(name)),
            }
            let u32_max = u64::from(u32::MAX);
            // The values fit: each was checked against its `max`.
            match i {
                0 => c.fail_max = map.next_value_seed(whole(FAIL_MAX, u32_max))? as u32,
                1 => {
                    let v = map.next_value_seed(whole(RESET_TIMEOUT_MS, ms_max))?;
                    c.reset_timeout = Duration::from_millis(v);
                }
                2 => {
                    c.success_threshold =
                        map.next_value_seed(whole(SUCCESS_THRESHOLD, u32_max))? as u32
                }
                3 => {
                    c.half_open_max_calls =
                        map.next_value_seed(whole(HALF_OPEN_MAX_CALLS, u32_max))? as u32
                }
                4 => {
                    let v = map.next_value_seed(whole(TRIAL_LEASE_MS, ms_max))?;
                    c.trial_lease = Duration::from_millis(v);
                }
                5 => {
                    backoff_max =
                        Some(map.next_value_seed(OptionalWhole(whole(BACKOFF_MAX_MS, ms_max)))?)
                }
                6 => {
                    jitter = Some(
                        map.next_value_seed(whole(BACKOFF_JITTER_PERCENT, u64::from(u8::MAX)))?,
                    )
                }
                _ => {
                    let v = map.next_value_seed(whole(name, u32_max))? as u32;
                    if let Some(slot) = rate.get_mut(i - 7) {
                        *slot = Some(v);
                    }
                }
            }
        }
        match (backoff_max.flatten(), jitter) {
            (Some(max), jitter) => {
                let b = Backoff::exponential(Duration::from_millis(max));
                c.backoff = Some(b.jitter_percent(jitter.unwrap_or(0) as u8));
            }
            (None, Some(_)) => {
                return Err(de::Error::custom(ConfigError::JitterWithoutBackoff));
            }
            (None, None) => {}
        }
        match rate {
            [Some(percent), Some(window), minimum] => {
                let r = FailureRate::new(percent, window);
                c.failure_rate = Some(match minimum {
                    Some(n) => r.minimum_calls(n),
                    None => r,
                });
            }
            [None, None, None] => {}
            _ => return Err(de::Error::custom(ConfigError::FailureRateIncomplete)),
        }
        c.validate().map_err(de::Error::custom)?;
        Ok(c)
    }
}

/// Validated: every problem is an error naming its field (see the [module](self) docs).
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Config, D::Error> {
        d.deserialize_map(ConfigVisitor)
    }
}
