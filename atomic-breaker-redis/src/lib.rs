//! One [`atomic_breaker`] circuit breaker shared by many processes through Redis, with the hot
//! path still local.
//!
//! Admission and the closed-path report are the core crate's atomic operations on a local
//! breaker; Redis is a coordination channel used by a background task: a local trip is
//! published (one script), the others learn it by pub/sub and a periodic refresh, one process
//! at a time holds the fleet's trial under a lease, and operators steer the fleet by name.
//! If Redis is down, slow or wiped, every process keeps protecting as a local breaker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atomic_breaker_redis::FleetError> {
//! use atomic_breaker::Config;
//! use atomic_breaker_redis::FleetBreaker;
//! use std::time::Duration;
//!
//! let payments = FleetBreaker::builder("payments", "redis://127.0.0.1:6379")
//!     .config(Config::new().fail_max(5).reset_timeout(Duration::from_secs(30)))
//!     .build()?;
//! // No Redis command on this path while the fleet is closed and calls succeed.
//! let answer = payments.call(|| Ok::<_, std::io::Error>(42));
//! assert_eq!(answer.unwrap(), 42);
//! # Ok(()) }
//! ```
//!
//! See the crate's README for the design, the key layout and the command counts.

mod error;
mod fleet;
mod record;
pub mod scripts;
mod task;

pub mod admin;
pub mod devserver;

pub use error::{DegradedCause, FleetError};
pub use fleet::{Builder, FleetBreaker, FleetEvent, FleetPermit};
pub use record::{FleetState, Record};
pub use scripts::{Keys, Manage};

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
