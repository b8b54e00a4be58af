//! A lock-free, `no_std`, `const`-constructible circuit breaker whose whole state is one
//! `AtomicU64`.
//!
//! ```
//! use atomic_breaker::{CircuitBreaker, Config, Error, ManualClock, State};
//! use core::time::Duration;
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! static DB: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
//!     "db",
//!     Config::new().fail_max(2).reset_timeout(Duration::from_secs(30)),
//!     &CLOCK,
//! );
//!
//! // Two consecutive failures trip the breaker; the second one says so.
//! let _ = DB.call(|| Err::<(), _>("timeout"));
//! let err = DB.call(|| Err::<(), _>("timeout")).unwrap_err();
//! assert!(err.tripped());
//! assert_eq!(DB.state(), State::Open);
//!
//! // While open, calls are rejected without running, with the time until a retry.
//! let err = DB.call(|| -> Result<(), &str> { unreachable!() }).unwrap_err();
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
//!
//! // After the open period, one trial call runs; its success closes the breaker.
//! CLOCK.advance(Duration::from_secs(30));
//! assert_eq!(DB.call(|| Ok::<_, &str>(42)), Ok(42));
//! assert_eq!(DB.state(), State::Closed);
//! ```
//!
//! # What is where
//! - [`CircuitBreaker`]: [`call`](CircuitBreaker::call), [`call_with`](CircuitBreaker::call_with)
//!   (classify results, PyBreaker's excluded errors), the two-step
//!   [`allow`](CircuitBreaker::allow) → [`Permit`] for request loops, management
//!   ([`open`](CircuitBreaker::open), [`close`](CircuitBreaker::close),
//!   [`half_open`](CircuitBreaker::half_open), [`trip_for`](CircuitBreaker::trip_for),
//!   [`force_open`](CircuitBreaker::force_open), [`disable`](CircuitBreaker::disable)) and
//!   monitoring ([`snapshot`](CircuitBreaker::snapshot) and friends).
//! - [`Config`]: `const` builder with PyBreaker's defaults; [`Backoff`] for re-trips.
//! - [`Clock`]: the injected time source; [`ManualClock`] for tests, `StdClock` with `std`.
//! - [`Listener`]s: `fn(&Event)` pointers in a fixed table, called after the change they report.
//!
//! # Semantics
//! Closed counts consecutive failures; `fail_max` of them trip the breaker. Open rejects without
//! running until its period passes; then the first caller wins the move to HalfOpen by CAS and
//! runs the first trial. HalfOpen admits at most `half_open_max_calls` trials at once;
//! `success_threshold` successes close it, any failure re-opens it. A trial slot that is never
//! reported is freed after the trial lease. Every permit carries the generation it was admitted
//! in, and reports from an earlier generation are dropped.
//!
//! # Features
//! - `std` (default): [`StdClock`] (coarse on Linux) and [`InstantClock`], listener panics
//!   caught and counted, a permit dropped during a panic counts as a failure. Without it the crate is `#![no_std]` and allocates nothing
//!   (neither does it with `std`).
//! - `embassy`, `embedded-time`, `defmt`, `heapless`, `stream`: integrations, each in its own module
//!   (`embassy` is a clock over the embassy time driver, `embedded-time` one over an
//!   `embedded_time::Clock`).
//! - `tower`: [`tower::BreakerLayer`], a tower `Layer` and `Service` for axum, tonic and hyper
//!   stacks (implies `std`, as `tower-service` does).
//! - `metrics`: [`metrics_listener`], Prometheus-style metrics through the `metrics` facade
//!   (implies `std`). `tracing`: [`tracing_listener`], trips, recoveries and rejections as
//!   `tracing` events.
//! - `critical-section`: pass-through to `portable-atomic` for targets without native
//!   compare-and-swap; for final binaries only.
//! - `serde`: `Serialize` for [`Snapshot`], [`State`], [`Event`] and [`Config`]; [`Config`]
//!   deserializable, validated, from files and environment maps with `*_ms` integer fields
//!   (see [`serde_support`]). `no_std`, no allocation.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Unit tests use `std` (the test harness needs it anyway), also when the crate is `no_std`.
#[cfg(all(test, not(feature = "std")))]
extern crate std;

mod breaker;
mod clock;
mod config;
mod error;
mod event;
mod listeners;
mod machine;
mod owned_permit;
mod permit;
mod rate;
mod saved;
mod snapshot;
mod state;
mod sync;
mod word;

// Guards for futures, iterators and streams.
mod future;
mod iter;
#[cfg(feature = "stream")]
mod stream;

// Integrations, one module per feature.
#[cfg(feature = "defmt")]
mod defmt_support;
#[cfg(feature = "defmt")]
pub use defmt_support::{defmt_event_logger, defmt_state_logger};
#[cfg(feature = "embassy")]
mod embassy_clock;
#[cfg(feature = "embassy")]
pub use embassy_clock::EmbassyClock;
#[cfg(feature = "embedded-time")]
mod embedded_time_clock;
#[cfg(feature = "embedded-time")]
pub use embedded_time_clock::EmbeddedTimeClock;
#[cfg(feature = "heapless")]
mod event_queue;
#[cfg(feature = "heapless")]
pub use event_queue::EventQueue;
#[cfg(feature = "metrics")]
pub mod metrics_listener;
#[cfg(feature = "serde")]
pub mod serde_support;
#[cfg(feature = "tower")]
pub mod tower;
// One breaker per key: a bounded map (`RwLock`, `Arc`, hashbrown's table).
#[cfg(feature = "map")]
pub mod map;
#[cfg(feature = "map")]
pub use map::{BreakerMap, KeyListener, KeyedBreaker, MapFull};
#[cfg(feature = "tracing")]
pub mod tracing_listener;

#[cfg(all(test, loom))]
mod loom_tests;

pub use breaker::CircuitBreaker;
pub use clock::{Clock, ManualClock};
#[cfg(feature = "std")]
pub use clock::{InstantClock, StdClock};
pub use config::{
    Backoff, Config, ConfigError, MAX_FAIL_MAX, MAX_HALF_OPEN_CALLS, MAX_PERIOD,
    MAX_SUCCESS_THRESHOLD,
};
pub use config::{FailureRate, MAX_WINDOW};
pub use error::{Error, Rejected};
pub use event::{Event, EventKind, EventRecord, Interest, Listener};
pub use listeners::{ListenerId, ListenerTableFull, MAX_LISTENERS};
pub use owned_permit::{BreakerHandle, OwnedPermit};
pub use permit::{Permit, Recorded};
pub use saved::{RestoreError, SavedState};
pub use snapshot::Snapshot;
pub use state::{Outcome, State};

// Guards for futures, iterators and streams.
pub use future::{CallAsync, DefaultClassifier, Guarded};
pub use iter::{GuardedIter, GuardedIterRun};
#[cfg(feature = "stream")]
pub use stream::{GuardedStream, GuardedStreamRun};

/// The README's examples, compiled and run as doctests (they use `StdClock`, so with `std`).
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
