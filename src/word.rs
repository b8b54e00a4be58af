//! The state word: every piece of breaker state in one `u64`.
//!
//! This is the only module that shifts or masks the word. Everything else goes through
//! [`Word`], a `Copy` view whose `Debug` decodes the fields by name.
//!
//! ```text
//!  63                                    24 23    18 17  15 14      10 9       3 2     0
//! +----------------------------------------+--------+------+----------+---------+-------+
//! |                 UNTIL                  |  GEN   | LEVEL| IN_FLIGHT|  COUNT  | STATE |
//! |                40 bits                 | 6 bits |3 bits|  5 bits  | 7 bits  |3 bits |
//! +----------------------------------------+--------+------+----------+---------+-------+
//! ```
//!
//! | field | bits | meaning |
//! |---|---|---|
//! | `STATE` | 0..3 | [`State`]: Closed 0, Open 1, HalfOpen 2, ForcedOpen 3, Disabled 4 |
//! | `COUNT` | 3..10 | Closed: consecutive failures. Open: the failures that tripped it. HalfOpen: trial successes |
//! | `IN_FLIGHT` | 10..15 | HalfOpen: trial calls admitted and not yet reported |
//! | `LEVEL` | 15..18 | backoff exponent: consecutive re-trips from HalfOpen, reset on close |
//! | `GEN` | 18..24 | generation, bumped by every state change and every trial re-arm |
//! | `UNTIL` | 24..64 | Open: retry deadline. HalfOpen: lease deadline of the newest trial. In ms, modulo 2^40 |
//!
//! The all-zero word is a fresh Closed breaker, so a `const` constructor needs no clock.
//!
//! # Limits implied by the layout
//! - `fail_max` and `success_threshold`: at most [`MAX_COUNT`] (127). `COUNT` holds failures
//!   while Closed and successes while HalfOpen; the two are never needed at once.
//! - `half_open_max_calls`: at most [`MAX_IN_FLIGHT`] (31).
//! - Backoff: the open period doubles at most [`MAX_LEVEL`] (7) times (up to 128x), then only the
//!   configured cap applies.
//! - Generations wrap after 64 changes: a permit held across exactly a multiple of 64 state changes
//!   would be counted as current. Every change in Open takes at least the open period, so this needs
//!   a call that outlives 64 open periods.
//! - Time: `UNTIL` keeps milliseconds modulo 2^40 (about 34.8 years) and is compared with
//!   wrapping arithmetic, so the clock may run for any length of time. Deadlines lie at most
//!   [`MAX_PERIOD_MS`] (2^38 ms, about 8.7 years) ahead; a deadline is read as passed once it is
//!   between 0 and 2^39 ms (about 17.4 years) behind the clock. Only a breaker left untouched in
//!   Open for more than 17.4 years could reject for one extra open period. Resolution: 1 ms.

use crate::state::State;

/// Width of each field, in bits. Masks and shifts are derived from these.
const STATE_BITS: u32 = 3;
const COUNT_BITS: u32 = 7;
const IN_FLIGHT_BITS: u32 = 5;
const LEVEL_BITS: u32 = 3;
const GEN_BITS: u32 = 6;
const UNTIL_BITS: u32 = 40;

/// Shift of the `STATE` field: the breaker's [`State`].
const STATE_SHIFT: u32 = 0;
/// Shift of the `COUNT` field: consecutive failures (Closed, Open) or trial successes (HalfOpen).
const COUNT_SHIFT: u32 = STATE_SHIFT + STATE_BITS;
/// Shift of the `IN_FLIGHT` field: trial calls admitted in HalfOpen and not yet reported.
const IN_FLIGHT_SHIFT: u32 = COUNT_SHIFT + COUNT_BITS;
/// Shift of the `LEVEL` field: the backoff exponent.
const LEVEL_SHIFT: u32 = IN_FLIGHT_SHIFT + IN_FLIGHT_BITS;
/// Shift of the `GEN` field: the generation.
const GEN_SHIFT: u32 = LEVEL_SHIFT + LEVEL_BITS;
/// Shift of the `UNTIL` field: a deadline in ms modulo 2^40.
const UNTIL_SHIFT: u32 = GEN_SHIFT + GEN_BITS;

const fn mask(bits: u32, shift: u32) -> u64 {
    ((1u64 << bits) - 1) << shift
}

const STATE_MASK: u64 = mask(STATE_BITS, STATE_SHIFT);
const COUNT_MASK: u64 = mask(COUNT_BITS, COUNT_SHIFT);
const IN_FLIGHT_MASK: u64 = mask(IN_FLIGHT_BITS, IN_FLIGHT_SHIFT);
const LEVEL_MASK: u64 = mask(LEVEL_BITS, LEVEL_SHIFT);
const GEN_MASK: u64 = mask(GEN_BITS, GEN_SHIFT);
/// `UNTIL` is the top field; its mask is computed without overflowing the shift.
const UNTIL_MASK: u64 = !0u64 << UNTIL_SHIFT;

/// Largest value of `COUNT`: the largest `fail_max` and `success_threshold`.
pub const MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;
/// Largest value of `IN_FLIGHT`: the largest `half_open_max_calls`.
pub const MAX_IN_FLIGHT: u32 = (1 << IN_FLIGHT_BITS) - 1;
/// Largest backoff exponent.
pub const MAX_LEVEL: u32 = (1 << LEVEL_BITS) - 1;
/// Number of distinct generations before the generation wraps.
#[cfg(test)]
pub const GENERATIONS: u32 = 1 << GEN_BITS;
/// Modulus of the `UNTIL` timestamps, in ms.
const TIME_MODULUS: u64 = 1 << UNTIL_BITS;
/// Deadlines more than this far behind the clock read as "in the future" (wrapping compare).
const HALF_TIME: u64 = TIME_MODULUS / 2;
/// Longest open period, lease or backoff cap the layout allows: 2^38 ms, about 8.7 years.
pub const MAX_PERIOD_MS: u64 = 1 << (UNTIL_BITS - 2);

// Compile-time checks: the fields are disjoint, cover exactly 64 bits, and the limits fit.
const _: () = {
    let masks = [
        STATE_MASK,
        COUNT_MASK,
        IN_FLIGHT_MASK,
        LEVEL_MASK,
        GEN_MASK,
        UNTIL_MASK,
    ];
    let mut seen = 0u64;
    let mut i = 0;
    while i < masks.len() {
        assert!(seen & masks[i] == 0, "state word fields overlap");
        seen |= masks[i];
        i += 1;
    }
    assert!(seen == u64::MAX, "state word fields leave bits unused");
    assert!(
        UNTIL_SHIFT + UNTIL_BITS == 64,
        "state word fields do not add up to 64 bits"
    );
    assert!(
        State::MAX_ENCODING < (1 << STATE_BITS),
        "State does not fit its field"
    );
    assert!(
        MAX_PERIOD_MS < HALF_TIME,
        "periods must stay inside the wrapping window"
    );
};

/// A decoded view of the state word. Pure data: no atomics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    /// The initial word: Closed, every counter zero, generation zero.
    pub(crate) const INITIAL: Word = Word(0);

    pub(crate) const fn state(self) -> State {
        State::decode(((self.0 & STATE_MASK) >> STATE_SHIFT) as u8)
    }
    pub(crate) const fn count(self) -> u32 {
        ((self.0 & COUNT_MASK) >> COUNT_SHIFT) as u32
    }
    pub(crate) const fn in_flight(self) -> u32 {
        ((self.0 & IN_FLIGHT_MASK) >> IN_FLIGHT_SHIFT) as u32
    }
    pub(crate) const fn level(self) -> u32 {
        ((self.0 & LEVEL_MASK) >> LEVEL_SHIFT) as u32
    }
    pub(crate) const fn generation(self) -> u8 {
        ((self.0 & GEN_MASK) >> GEN_SHIFT) as u8
    }
    /// The stored deadline, in ms modulo 2^40.
    pub(crate) const fn until(self) -> u64 {
        (self.0 & UNTIL_MASK) >> UNTIL_SHIFT
    }

    pub(crate) const fn with_state(self, s: State) -> Word {
        Word((self.0 & !STATE_MASK) | ((s.encode() as u64) << STATE_SHIFT))
    }
    /// Sets `COUNT`, saturating at [`MAX_COUNT`].
    pub(crate) const fn with_count(self, n: u32) -> Word {
        let n = if n > MAX_COUNT { MAX_COUNT } else { n };
        Word((self.0 & !COUNT_MASK) | ((n as u64) << COUNT_SHIFT))
    }
    /// Sets `IN_FLIGHT`, saturating at [`MAX_IN_FLIGHT`].
    pub(crate) const fn with_in_flight(self, n: u32) -> Word {
        let n = if n > MAX_IN_FLIGHT { MAX_IN_FLIGHT } else { n };
        Word((self.0 & !IN_FLIGHT_MASK) | ((n as u64) << IN_FLIGHT_SHIFT))
    }
    /// Sets `LEVEL`, saturating at [`MAX_LEVEL`].
    pub(crate) const fn with_level(self, n: u32) -> Word {
        let n = if n > MAX_LEVEL { MAX_LEVEL } else { n };
        Word((self.0 & !LEVEL_MASK) | ((n as u64) << LEVEL_SHIFT))
    }
    /// Advances the generation by one, wrapping.
    pub(crate) const fn next_generation(self) -> Word {
        let g = (self.generation() as u64 + 1) & ((1 << GEN_BITS) - 1);
        Word((self.0 & !GEN_MASK) | (g << GEN_SHIFT))
    }
    /// Copies the generation of `other`.
    pub(crate) const fn with_generation_of(self, other: Word) -> Word {
        Word((self.0 & !GEN_MASK) | (other.0 & GEN_MASK))
    }
    /// Sets `UNTIL` to `at` (ms on the breaker's clock), reduced modulo 2^40.
    pub(crate) const fn with_until(self, at: u64) -> Word {
        Word((self.0 & !UNTIL_MASK) | ((at % TIME_MODULUS) << UNTIL_SHIFT))
    }

    /// Whether the stored deadline has passed at `now` (wrapping compare).
    pub(crate) const fn until_passed(self, now: u64) -> bool {
        now.wrapping_sub(self.until()) % TIME_MODULUS < HALF_TIME
    }
    /// Milliseconds from `now` to the stored deadline; zero once it has passed.
    pub(crate) const fn until_remaining(self, now: u64) -> u64 {
        if self.until_passed(now) {
            0
        } else {
            self.until().wrapping_sub(now) % TIME_MODULUS
        }
    }
}

impl core::fmt::Debug for Word {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("count", &self.count())
            .field("in_flight", &self.in_flight())
            .field("level", &self.level())
            .field("generation", &self.generation())
            .field("until", &self.until())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_word_is_closed_and_empty() {
        let w = Word::INITIAL;
        assert_eq!(w.state(), State::Closed);
        assert_eq!(
            (w.count(), w.in_flight(), w.level(), w.generation()),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn fields_round_trip_independently() {
        let w = Word::INITIAL
            .with_state(State::HalfOpen)
            .with_count(MAX_COUNT)
            .with_in_flight(MAX_IN_FLIGHT)
            .with_level(MAX_LEVEL)
            .with_until(TIME_MODULUS - 1);
        assert_eq!(w.state(), State::HalfOpen);
        assert_eq!(w.count(), MAX_COUNT);
        assert_eq!(w.in_flight(), MAX_IN_FLIGHT);
        assert_eq!(w.level(), MAX_LEVEL);
        assert_eq!(w.until(), TIME_MODULUS - 1);
        assert_eq!(w.generation(), 0);
        let w = w.with_count(0);
        assert_eq!(
            (w.count(), w.in_flight(), w.level()),
            (0, MAX_IN_FLIGHT, MAX_LEVEL)
        );
    }

    #[test]
    fn setters_saturate_instead_of_spilling_into_neighbours() {
        let w = Word::INITIAL
            .with_count(1000)
            .with_in_flight(1000)
            .with_level(1000);
        assert_eq!(w.count(), MAX_COUNT);
        assert_eq!(w.in_flight(), MAX_IN_FLIGHT);
        assert_eq!(w.level(), MAX_LEVEL);
        assert_eq!(w.state(), State::Closed);
        assert_eq!(w.generation(), 0);
    }

    #[test]
    fn generation_wraps() {
        let mut w = Word::INITIAL;
        for _ in 0..GENERATIONS {
            w = w.next_generation();
        }
        assert_eq!(w.generation(), 0);
        assert_eq!(w.state(), State::Closed);
    }

    #[test]
    fn deadlines_compare_across_clock_wraparound() {
        // A deadline just before the 2^40 boundary and a clock just after it.
        let w = Word::INITIAL.with_until(TIME_MODULUS - 10);
        assert!(!w.until_passed(TIME_MODULUS - 11));
        assert_eq!(w.until_remaining(TIME_MODULUS - 11), 1);
        assert!(w.until_passed(TIME_MODULUS - 10));
        assert!(w.until_passed(TIME_MODULUS + 5));
        assert_eq!(w.until_remaining(TIME_MODULUS + 5), 0);
        // Far beyond the first wrap: the clock value itself is above 2^40.
        let now = 3 * TIME_MODULUS + 123;
        let w = Word::INITIAL.with_until(now + 1_000);
        assert!(!w.until_passed(now));
        assert_eq!(w.until_remaining(now), 1_000);
        assert!(w.until_passed(now + 1_000));
    }

    #[test]
    fn longest_period_still_reads_as_future() {
        let now = 42;
        let w = Word::INITIAL.with_until(now + MAX_PERIOD_MS);
        assert!(!w.until_passed(now));
        assert_eq!(w.until_remaining(now), MAX_PERIOD_MS);
    }
}
