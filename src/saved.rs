//! A breaker's state kept across a reset or a restart: [`SavedState`], its byte encoding, and
//! [`CircuitBreaker::restore`].
//!
//! On a microcontroller the failure that trips a breaker is often the one that resets the chip
//! (a peripheral that hangs the bus until the watchdog fires, a modem that browns out the
//! supply). A breaker that forgets everything at boot hammers the same dead peripheral
//! `fail_max` times, hangs again, resets again: the reset loop it was meant to prevent. A
//! server that restarts re-learns a dead dependency with live traffic. So a breaker can hand out
//! its state as a small `Copy` value, [`CircuitBreaker::saved_state`], and start from one,
//! [`CircuitBreaker::restore`].
//!
//! # What is saved
//! The state, its count (failures in Closed and Open, trial successes in HalfOpen), the backoff
//! level, and the time left on the deadline **as a duration**, never a clock reading: the clock
//! restarts at boot, and a restored breaker must be right whatever its new clock reads. Not
//! saved: the generation, trial calls in flight (no call survives a reset) and, in
//! failure-rate mode, the window of the last calls (a restored Closed breaker starts with an
//! empty window).
//!
//! # Time that passed while the device was off
//! It is unknown unless the caller knows it (an RTC, a wall clock in a file), so
//! [`restore`](CircuitBreaker::restore) takes it as an optional argument. Without it the time
//! left at the save is served in full after the restore: the safe direction, an open period can
//! only get longer, never shorter. A state saved by a listener at the change into Open holds the
//! whole period; save again later (on a timer, before a planned reset) to hold less.
//!
//! # Untrusted bytes
//! Bytes back from no-init RAM after a cold boot, or from a file, are garbage until proven
//! otherwise: [`SavedState::from_bytes`] checks the length, a magic value, the version and a
//! CRC-32, then every field (state in range, count at most 127, level at most 7, remaining
//! time at most 24 h, no field set that its state does not keep), and returns a typed
//! [`RestoreError`]. It never panics, and every `SavedState` it returns restores into a
//! breaker in a state the breaker could have reached by itself.
//!
//! # The encoding, version 1 (16 bytes, little-endian)
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic, `b"ABsv"` |
//! | 4 | version, 1 |
//! | 5 | state: Closed 0, Open 1, HalfOpen 2, ForcedOpen 3, Disabled 4 |
//! | 6 | count |
//! | 7 | backoff level |
//! | 8..12 | remaining time, ms (`u32`) |
//! | 12..16 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of bytes 0..12 (`u32`) |

use core::fmt;
use core::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::config::ms_to_duration;
use crate::machine::{self, Effect, Env, Step, Transition};
use crate::state::State;
use crate::word::{Word, MAX_COUNT, MAX_LEVEL, MAX_PERIOD_MS};

#[cfg(feature = "serde")]
mod serde;

/// A breaker's state as a small `Copy` value: the state, its count, the backoff level and the
/// time left on its deadline. Taken with [`CircuitBreaker::saved_state`], applied with
/// [`CircuitBreaker::restore`], stored with [`to_bytes`](Self::to_bytes) /
/// [`from_bytes`](Self::from_bytes) (or, with the `serde` feature, as
/// `{"state": "Open", "count": 3, "backoff_level": 0, "remaining_ms": 30000}`).
///
/// Every value is valid: the constructors check every field (see [`RestoreError`]).
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, ManualClock, SavedState, State};
/// use core::time::Duration;
///
/// let clock = ManualClock::new();
/// let b: CircuitBreaker<_> = CircuitBreaker::new("modem", Config::new().fail_max(1), &clock);
/// let _ = b.call(|| Err::<(), _>("brown-out"));
/// let bytes = b.saved_state().to_bytes(); // to no-init RAM, flash or a file
///
/// // After the reset: a new breaker, a clock that starts again anywhere.
/// let clock = ManualClock::starting_at(5);
/// let b: CircuitBreaker<_> = CircuitBreaker::new("modem", Config::new().fail_max(1), &clock);
/// if let Ok(saved) = SavedState::from_bytes(&bytes) {
///     b.restore(saved, None);
/// }
/// assert_eq!(b.state(), State::Open);
/// assert_eq!(b.retry_after(), Some(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SavedState {
    state: State,
    count: u8,
    level: u8,
    remaining_ms: u32,
}

/// Why bytes (or fields) are not a saved state. Checked in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// Not [`SavedState::LEN`] bytes long; holds the length.
    Length(usize),
    /// The first four bytes are not the magic value: never written, or not by this crate.
    Magic,
    /// An encoding version this crate cannot read; holds the version.
    Version(u8),
    /// The CRC-32 does not match: the bytes were damaged (a cold boot's RAM, a torn write).
    Checksum,
    /// Not a state's encoding (0 to 4); holds the byte.
    State(u8),
    /// A count over 127 ([`MAX_FAIL_MAX`](crate::MAX_FAIL_MAX)); holds it.
    Count(u32),
    /// A backoff level over 7; holds it.
    Level(u32),
    /// A remaining time over 24 h ([`MAX_PERIOD`](crate::MAX_PERIOD)), in ms; holds it.
    Remaining(u64),
    /// A field set that the state does not keep: a level or a remaining time in Closed, or any
    /// count, level or time in ForcedOpen or Disabled. Holds the state.
    Inconsistent(State),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RestoreError::Length(n) => write!(
                f,
                "a saved breaker state is {} bytes (got {n})",
                SavedState::LEN
            ),
            RestoreError::Magic => f.write_str("not a saved breaker state (wrong magic value)"),
            RestoreError::Version(v) => write!(
                f,
                "saved breaker state version {v} is not supported (this crate reads {})",
                SavedState::VERSION
            ),
            RestoreError::Checksum => f.write_str("saved breaker state is damaged (bad checksum)"),
            RestoreError::State(s) => write!(f, "saved breaker state has no state {s}"),
            RestoreError::Count(n) => write!(f, "saved count must be at most 127 (got {n})"),
            RestoreError::Level(n) => write!(f, "saved backoff level must be at most 7 (got {n})"),
            RestoreError::Remaining(ms) => write!(
                f,
                "saved remaining time must be at most 86400000 ms (got {ms})"
            ),
            RestoreError::Inconsistent(s) => {
                write!(f, "saved breaker state sets a field that {s} does not keep")
            }
        }
    }
}

impl core::error::Error for RestoreError {}

const MAGIC: [u8; 4] = *b"ABsv";

impl SavedState {
    /// Length of [`to_bytes`](Self::to_bytes)' encoding: 16 bytes.
    pub const LEN: usize = 16;
    /// The encoding's version, written by [`to_bytes`](Self::to_bytes).
    pub const VERSION: u8 = 1;
    /// A fresh breaker's state: Closed, no failure.
    pub const CLOSED: SavedState = SavedState {
        state: State::Closed,
        count: 0,
        level: 0,
        remaining_ms: 0,
    };

    /// A saved state from its fields, checked as [`from_bytes`](Self::from_bytes) checks them:
    /// `count` at most 127, `backoff_level` at most 7, `remaining` at most 24 h (rounded up to
    /// whole ms), and only fields the state keeps: Closed keeps a count; Open and HalfOpen keep
    /// all three (HalfOpen's remaining time is the lease of a trial in flight, see
    /// [`CircuitBreaker::restore`]); ForcedOpen and Disabled keep none.
    pub const fn new(
        state: State,
        count: u32,
        backoff_level: u32,
        remaining: Duration,
    ) -> Result<SavedState, RestoreError> {
        Self::checked(
            state,
            count,
            backoff_level,
            crate::config::duration_ms(remaining),
        )
    }

    const fn checked(
        state: State,
        count: u32,
        level: u32,
        remaining_ms: u64,
    ) -> Result<SavedState, RestoreError> {
        if count > MAX_COUNT {
            return Err(RestoreError::Count(count));
        }
        if level > MAX_LEVEL {
            return Err(RestoreError::Level(level));
        }
        if remaining_ms > MAX_PERIOD_MS {
            return Err(RestoreError::Remaining(remaining_ms));
        }
        let consistent = match state {
            State::Closed => level == 0 && remaining_ms == 0,
            State::Open | State::HalfOpen => true,
            State::ForcedOpen | State::Disabled => count == 0 && level == 0 && remaining_ms == 0,
        };
        if !consistent {
            return Err(RestoreError::Inconsistent(state));
        }
        Ok(SavedState {
            state,
            count: count as u8,
            level: level as u8,
            remaining_ms: remaining_ms as u32,
        })
    }

    /// The state.
    pub const fn state(&self) -> State {
        self.state
    }

    /// Closed: consecutive failures. Open: the failures that tripped it. HalfOpen: trial
    /// successes. 0 otherwise. (What the word's `COUNT` field holds; see the README, "The state
    /// word".)
    pub const fn count(&self) -> u32 {
        self.count as u32
    }

    /// The backoff exponent (consecutive re-trips from HalfOpen); 0 in Closed.
    pub const fn backoff_level(&self) -> u32 {
        self.level as u32
    }

    /// Open: the time left of the open period when it was saved (zero once it had passed).
    /// HalfOpen: the time left on the lease of the newest trial in flight (zero with no trial in
    /// flight). Zero in the other states.
    pub const fn remaining(&self) -> Duration {
        ms_to_duration(self.remaining_ms as u64)
    }

    /// [`remaining`](Self::remaining) in whole milliseconds.
    pub const fn remaining_ms(&self) -> u64 {
        self.remaining_ms as u64
    }

    /// The 16-byte encoding (see the module docs): magic, version, fields, CRC-32.
    pub const fn to_bytes(&self) -> [u8; SavedState::LEN] {
        let r = self.remaining_ms.to_le_bytes();
        let mut b = [
            MAGIC[0],
            MAGIC[1],
            MAGIC[2],
            MAGIC[3],
            Self::VERSION,
            self.state.encode(),
            self.count,
            self.level,
            r[0],
            r[1],
            r[2],
            r[3],
            0,
            0,
            0,
            0,
        ];
        let crc = crc32(&b, 12).to_le_bytes();
        b[12] = crc[0];
        b[13] = crc[1];
        b[14] = crc[2];
        b[15] = crc[3];
        b
    }

    /// Decodes [`to_bytes`](Self::to_bytes)' encoding, checking the length, magic value,
    /// version, checksum and then every field (the [`RestoreError`] names the first that is
    /// wrong). Never panics, whatever the bytes.
    pub const fn from_bytes(bytes: &[u8]) -> Result<SavedState, RestoreError> {
        if bytes.len() != Self::LEN {
            return Err(RestoreError::Length(bytes.len()));
        }
        if bytes[0] != MAGIC[0]
            || bytes[1] != MAGIC[1]
            || bytes[2] != MAGIC[2]
            || bytes[3] != MAGIC[3]
        {
            return Err(RestoreError::Magic);
        }
        if bytes[4] != Self::VERSION {
            return Err(RestoreError::Version(bytes[4]));
        }
        let stored = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if crc32(bytes, 12) != stored {
            return Err(RestoreError::Checksum);
        }
        let state = match bytes[5] {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            s => return Err(RestoreError::State(s)),
        };
        let remaining = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        Self::checked(state, bytes[6] as u32, bytes[7] as u32, remaining as u64)
    }

    /// The saved state of word `w`, `left` being the time left on its deadline (0 once passed).
    /// `rate_mode`: the Closed count is not the breaker's (the window is), so it is saved as 0.
    fn of_word(w: Word, left: u64, rate_mode: bool) -> SavedState {
        let (count, level, remaining) = match w.state() {
            State::Closed => (if rate_mode { 0 } else { w.count() }, 0, 0),
            State::Open => (w.count(), w.level(), left),
            // The lease matters only while a trial is in flight (see `restore`).
            State::HalfOpen if w.in_flight() > 0 => (w.count(), w.level(), left),
            State::HalfOpen => (w.count(), w.level(), 0),
            State::ForcedOpen | State::Disabled => (0, 0, 0),
        };
        SavedState {
            state: w.state(),
            count: count.min(MAX_COUNT) as u8,
            level: level.min(MAX_LEVEL) as u8,
            remaining_ms: left_ms(remaining),
        }
    }
}

/// A deadline's time left as the saved `u32` (it is at most 24 h).
fn left_ms(ms: u64) -> u32 {
    ms.min(MAX_PERIOD_MS) as u32
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, as zlib's `crc32`) of `bytes[..n]`,
/// bit by bit: no table, so a few dozen bytes of flash; 12 bytes take 96 rounds.
const fn crc32(bytes: &[u8], n: usize) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < n && i < bytes.len() {
        crc ^= bytes[i] as u32;
        let mut k = 0;
        while k < 8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            k += 1;
        }
        i += 1;
    }
    !crc
}

/// [`CircuitBreaker::restore`] as a pure step of the state word, for the breaker's one CAS
/// helper: builds the restored word from the current one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Restore {
    pub saved: SavedState,
    /// Time known to have passed since the save, in ms (0 if unknown).
    pub elapsed_ms: u64,
    /// Failure-rate mode: a Closed count is not kept in the word.
    pub rate_mode: bool,
}

impl Transition for Restore {
    fn step(self, w: Word, env: &impl Env) -> Step {
        // Any state but Closed was reached since the breaker was built (a trip, an operator's
        // move) and is newer than the saved one: keep it.
        if w.state() != State::Closed {
            return Step {
                next: None,
                effect: Effect::Unchanged,
            };
        }
        let s = self.saved;
        let left = (s.remaining_ms as u64).saturating_sub(self.elapsed_ms);
        let next = match s.state {
            // Closed onto Closed: in place (same generation, no event), the larger failure
            // count, kept below the trip point; nothing in rate mode (the window counts).
            State::Closed => {
                let count = if self.rate_mode {
                    w.count()
                } else {
                    let below_trip = env.params().fail_max.saturating_sub(1);
                    w.count().max(s.count().min(below_trip))
                };
                if count == w.count() {
                    return Step {
                        next: None,
                        effect: Effect::Unchanged,
                    };
                }
                return Step {
                    next: Some(w.with_count(count)),
                    effect: Effect::Unchanged,
                };
            }
            State::Open => open_for(w, s.count(), s.backoff_level(), left, env),
            // A trial was in flight at the save with its lease running: its outcome is unknown
            // (on a device, it is the likeliest cause of the reset). Open for the rest of its
            // lease, as the breaker would have held that trial's slot: then the next caller is
            // a trial.
            State::HalfOpen if left > 0 => open_for(w, 0, s.backoff_level(), left, env),
            // No trial in flight: HalfOpen with none, as `half_open()` leaves it, so the next
            // caller is a trial; the trial successes so far stay, below the closing point.
            State::HalfOpen => {
                let threshold = env.params().success_threshold;
                machine::reset(w, State::HalfOpen)
                    .with_count(s.count().min(threshold.saturating_sub(1)))
                    .with_level(s.backoff_level())
                    .with_until(env.now_for_deadline())
            }
            State::ForcedOpen | State::Disabled => machine::reset(w, s.state),
        };
        Step {
            next: Some(next),
            effect: Effect::Changed,
        }
    }
}

/// `w` moved to Open with `count` failures, backoff `level`, until exactly `left` ms from now.
fn open_for(w: Word, count: u32, level: u32, left: u64, env: &impl Env) -> Word {
    let now = env.now_for_deadline();
    machine::reset(w, State::Open)
        .with_count(count)
        .with_level(level)
        .with_until(now.wrapping_add(left))
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// The breaker's state as a [`SavedState`], from one load of the state word (and, in Open
    /// and HalfOpen, one clock reading for the time left, read as
    /// [`retry_after`](Self::retry_after) reads it). Cheap enough for a state-change listener:
    /// save it wherever it must survive (no-init RAM, flash, a file).
    ///
    /// HalfOpen saves the lease left of the newest trial in flight (zero with none in flight);
    /// in failure-rate mode a Closed breaker saves no count (the window is not saved).
    pub fn saved_state(&self) -> SavedState {
        let (w, left) = self.word_and_time_left();
        SavedState::of_word(w, left, self.is_rate_mode())
    }

    /// Starts the breaker from `saved`, typically once at boot (a `static` breaker is built
    /// Closed by its `const` constructor, which never reads the clock; the deadline is set here,
    /// from the clock's reading now). Returns whether it was applied.
    ///
    /// - `elapsed`: the time known to have passed since the save (an RTC, a wall clock), taken
    ///   off the remaining time. `None` when unknown: the remaining time is then served in full,
    ///   so an open period can last longer than it would have, never shorter. An `elapsed` at
    ///   least the remaining time leaves an Open breaker whose period has passed (the next
    ///   caller is a trial).
    /// - Open: Open with the saved failures and backoff level, for the remaining time.
    /// - HalfOpen with a trial in flight (a remaining lease): Open for the rest of that lease,
    ///   the backoff level kept. The trial's outcome is unknown and on a device it is the
    ///   likeliest cause of the reset; the breaker would have held its slot that long.
    ///   HalfOpen with none (or its lease passed): HalfOpen with no trial in flight, as
    ///   [`half_open`](Self::half_open) leaves it, so the next caller is a trial.
    /// - Closed: the failure count becomes the larger of the saved and the current one, at most
    ///   `fail_max - 1` (the next failure trips at most); in place, no event. In failure-rate
    ///   mode nothing changes (the window is not saved).
    /// - ForcedOpen, Disabled: that state (an operator's decision outlives the restart).
    ///
    /// **On a breaker already used since it was built** it applies only while the breaker is
    /// Closed, where the saved state can only add to what it holds. In any other state the
    /// breaker reached it since it was built (a trip, a manual move), which is newer than the
    /// saved state: it is kept, and `restore` returns `false`.
    ///
    /// A management move, through the breaker's one compare-and-swap like [`open`](Self::open):
    /// a change of state starts a new generation (permits admitted before report nothing) and
    /// fires the state-change event (so a listener that saves the state saves the restored
    /// one).
    pub fn restore(&self, saved: SavedState, elapsed: Option<Duration>) -> bool {
        let elapsed_ms = match elapsed {
            Some(d) => {
                let ms = d.as_millis();
                if ms > u64::MAX as u128 {
                    u64::MAX
                } else {
                    ms as u64
                }
            }
            None => 0,
        };
        let (old, _) = self.manage_with(Restore {
            saved,
            elapsed_ms,
            rate_mode: self.is_rate_mode(),
        });
        old.state() == State::Closed
    }
}
