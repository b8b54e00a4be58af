//! The state word: every piece of breaker state in one `u64`.
//!
//! This is the only module that shifts or masks the word. Everything else goes through
//! [`Word`], a `Copy` view whose `Debug` decodes the fields by name.
//!
//! ```text
//!  63 62                          34 33                18 17  15 14      10 9       3 2     0
//! +--+------------------------------+--------------------+------+----------+---------+-------+
//! |E |            UNTIL             |        GEN         | LEVEL| IN_FLIGHT|  COUNT  | STATE |
//! |1 |           29 bits            |      16 bits       |3 bits|  5 bits  | 7 bits  |3 bits |
//! +--+------------------------------+--------------------+------+----------+---------+-------+
//! ```
//!
//! | field | bits | meaning |
//! |---|---|---|
//! | `STATE` | 0..3 | [`State`]: Closed 0, Open 1, HalfOpen 2, ForcedOpen 3, Disabled 4 |
//! | `COUNT` | 3..10 | Closed: consecutive failures. Open: the failures that tripped it. HalfOpen: trial successes |
//! | `IN_FLIGHT` | 10..15 | HalfOpen: trial calls admitted and not yet reported |
//! | `LEVEL` | 15..18 | backoff exponent: consecutive re-trips from HalfOpen, reset on close |
//! | `GEN` | 18..34 | generation, bumped by every state change, every `trip_for` and every trial re-arm |
//! | `UNTIL` | 34..63 | Open: retry deadline. HalfOpen: lease deadline of the newest trial. In ms, modulo 2^29 |
//! | `E` | 63 | `CALL_EVENTS`: some listener wants per-call events (`BeforeCall`, outcomes), or the breaker is in failure-rate mode; see below |
//!
//! The all-zero word is a fresh Closed breaker with no per-call listener, so a `const`
//! constructor needs no clock. Closed encodes as 0 and `E` is a bit of the word, so the closed
//! path's two checks are one masked compare each: admission is `word & (STATE | E) == 0`, a
//! success with nothing to reset is `word & (STATE | COUNT | GEN | E) == gen << GEN_SHIFT`.
//!
//! # Limits implied by the layout
//! - `fail_max` and `success_threshold`: at most [`MAX_COUNT`] (127). `COUNT` holds failures
//!   while Closed and successes while HalfOpen; the two are never needed at once.
//! - `half_open_max_calls`: at most [`MAX_IN_FLIGHT`] (31).
//! - Backoff: the open period doubles at most [`MAX_LEVEL`] (7) times (up to 128x), then only the
//!   configured cap applies.
//! - Generations: a permit's report (or its unreported drop) is compared with `GEN` modulo
//!   2^16. A report is counted only when `GEN` is what it was at admission, so a stale report is
//!   counted only if the generation advanced by a non-zero multiple of 65,536 during the call:
//!   **at least 65,536 state changes** (state changes, `trip_for` calls and trial re-arms all
//!   count as one change each). Nothing else can make a stale report count. In time: a failed
//!   trial is two changes (HalfOpen -> Open -> HalfOpen) and needs one open period, a trial
//!   re-arm needs one lease, so without manual management calls a stale report needs a call
//!   that outlives 32,768 open periods or leases (with `reset_timeout(0)` and manual calls the
//!   change count is the only bound).
//! - Time: `UNTIL` keeps milliseconds modulo 2^29 (about 6.2 days). Every deadline is set at
//!   most [`MAX_PERIOD_MS`] (24 h) ahead of the clock reading it is set from, with wrapping
//!   arithmetic (exact modulo 2^29, so a clock at or near `u64::MAX` is no special case). On
//!   its own, the field reads as *pending* when `(until - now) mod 2^29` is between 1 and
//!   [`MAX_PERIOD_MS`], and as passed otherwise (so it is passed at `now == until`); that alone
//!   is exact only while the word is looked at less than 2^29 - 24 h ms (about 5.2 days) after
//!   its deadline: past that, once per 2^29 ms cycle, a passed deadline would read as pending
//!   again for up to 24 h. So the breaker keeps a second, full-width atomic beside the word,
//!   `ARMED_AT`: the largest clock reading from which any of its deadlines was set, raised
//!   (`fetch_max`) by every operation that writes a deadline, *before* its CAS. A reader that
//!   finds a deadline reading as pending loads it (only then: the closed path never does) and
//!   takes the deadline as passed when `now - ARMED_AT >= 24 h` ([`Word::deadline_left`]).
//!   **Guarantee**: a pending deadline always reads as pending with its exact time left (the
//!   reading it was set from is at most `ARMED_AT`, so it cannot look 24 h old while pending),
//!   and a passed deadline reads as passed for any idle time up to the clock's whole range,
//!   unless some thread stalled for more than 2^29 - 48 h ms (about 4.2 days) between loading
//!   the state word and reading the clock inside one operation whose CAS then failed (its stale
//!   `fetch_max` is the only way `ARMED_AT` can run ahead of the current word's writer).
//!   `retry_after` never exceeds [`MAX_PERIOD_MS`]. Resolution: 1 ms.
//!
//! # The `CALL_EVENTS` bit
//! Bit 63 is set while at least one registered listener subscribed to per-call events
//! ([`Interest::CALLS`](crate::Interest::CALLS)), so a breaker whose listeners want only state
//! changes (or that has none) pays nothing for them on the closed path. It is not part of the
//! state machine: `transition` carries it through every move unchanged (`reset` copies it), and
//! only the listener table's add and remove set or clear it (an atomic OR / AND-NOT of this bit
//! alone, which the CAS helper's loops simply retry over). If more bits are ever needed, `UNTIL` can give one up (halving the modulus and the 5.2-day window
//! above, which must stay larger than [`MAX_PERIOD_MS`]), or `IN_FLIGHT` can (halving
//! `half_open_max_calls`).
//!
//! Failure-rate mode sets the bit for the breaker's whole life (the constructor sets it and the
//! listener table's mirroring never clears it), so both closed-path compares fail and every
//! call takes the slow paths, where the report updates the window word (`rate.rs`, its own bit
//! table). Consecutive mode's masks, compares and instructions are unchanged. In rate mode the
//! `COUNT` field is not used while Closed (the window counts); while Open it holds the failures
//! of the window that tripped it.

use crate::state::State;

/// Width of each field, in bits. Masks and shifts are derived from these.
const STATE_BITS: u32 = 3;
const COUNT_BITS: u32 = 7;
const IN_FLIGHT_BITS: u32 = 5;
const LEVEL_BITS: u32 = 3;
const GEN_BITS: u32 = 16;
const UNTIL_BITS: u32 = 29;
const CALL_EVENTS_BITS: u32 = 1;

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
/// Shift of the `UNTIL` field: a deadline in ms modulo 2^29.
const UNTIL_SHIFT: u32 = GEN_SHIFT + GEN_BITS;
/// Shift of the `CALL_EVENTS` bit: some listener wants per-call events.
const CALL_EVENTS_SHIFT: u32 = UNTIL_SHIFT + UNTIL_BITS;

const fn mask(bits: u32, shift: u32) -> u64 {
    ((1u64 << bits) - 1) << shift
}

const STATE_MASK: u64 = mask(STATE_BITS, STATE_SHIFT);
const COUNT_MASK: u64 = mask(COUNT_BITS, COUNT_SHIFT);
const IN_FLIGHT_MASK: u64 = mask(IN_FLIGHT_BITS, IN_FLIGHT_SHIFT);
const LEVEL_MASK: u64 = mask(LEVEL_BITS, LEVEL_SHIFT);
const GEN_MASK: u64 = mask(GEN_BITS, GEN_SHIFT);
const UNTIL_MASK: u64 = mask(UNTIL_BITS, UNTIL_SHIFT);
/// The `CALL_EVENTS` bit, for the listener table's atomic OR / AND-NOT.
pub(crate) const CALL_EVENTS_MASK: u64 = mask(CALL_EVENTS_BITS, CALL_EVENTS_SHIFT);
/// What the closed admission looks at: Closed (0) and no per-call listener.
const QUIET_ADMIT_MASK: u64 = STATE_MASK | CALL_EVENTS_MASK;
/// What the closed success looks at: Closed, no failure to reset, the permit's generation, no
/// per-call listener.
const QUIET_SUCCESS_MASK: u64 = STATE_MASK | COUNT_MASK | GEN_MASK | CALL_EVENTS_MASK;
/// What a success with nothing to write looks at (listeners aside).
const NOOP_SUCCESS_MASK: u64 = STATE_MASK | COUNT_MASK | GEN_MASK;

/// Largest value of `COUNT`: the largest `fail_max` and `success_threshold`.
pub const MAX_COUNT: u32 = (1 << COUNT_BITS) - 1;
/// Largest value of `IN_FLIGHT`: the largest `half_open_max_calls`.
pub const MAX_IN_FLIGHT: u32 = (1 << IN_FLIGHT_BITS) - 1;
/// Largest backoff exponent.
pub const MAX_LEVEL: u32 = (1 << LEVEL_BITS) - 1;
/// Number of distinct generations before the generation wraps (65,536).
#[cfg(test)]
pub const GENERATIONS: u32 = 1 << GEN_BITS;
/// Modulus of the `UNTIL` timestamps, in ms (2^29, about 6.2 days).
const TIME_MODULUS: u64 = 1 << UNTIL_BITS;
/// Longest open period, lease, backoff cap or `trip_for` period: 24 hours. A deadline that
/// reads further ahead than this is in the past.
pub const MAX_PERIOD_MS: u64 = 24 * 60 * 60 * 1000;

// Compile-time checks: the fields are disjoint, cover exactly 64 bits, and the limits fit.
const _: () = {
    let masks = [
        STATE_MASK,
        COUNT_MASK,
        IN_FLIGHT_MASK,
        LEVEL_MASK,
        GEN_MASK,
        UNTIL_MASK,
        CALL_EVENTS_MASK,
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
        CALL_EVENTS_SHIFT + CALL_EVENTS_BITS == 64,
        "state word fields do not add up to 64 bits"
    );
    assert!(
        GEN_BITS >= 16,
        "the generation must tell 65,536 changes apart"
    );
    // Rate mode's `fail_counter` hands STATE and COUNT over as the word's low 32 bits.
    assert!(
        COUNT_SHIFT + COUNT_BITS <= 32,
        "STATE and COUNT must sit in the low 32 bits"
    );
    // The masked compares below rely on Closed encoding as 0.
    assert!(State::Closed.encode() == 0, "Closed must encode as 0");
    assert!(
        State::MAX_ENCODING < (1 << STATE_BITS),
        "State does not fit its field"
    );
    // The window in which a passed deadline reads correctly must be longer than any period.
    assert!(
        MAX_PERIOD_MS < TIME_MODULUS - MAX_PERIOD_MS,
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
    pub(crate) const fn generation(self) -> u16 {
        ((self.0 & GEN_MASK) >> GEN_SHIFT) as u16
    }
    /// The stored deadline, in ms modulo 2^29.
    pub(crate) const fn until(self) -> u64 {
        (self.0 & UNTIL_MASK) >> UNTIL_SHIFT
    }
    /// Whether some listener wants per-call events (the `CALL_EVENTS` bit). The hot paths test
    /// the bit inside their masked compares; this accessor is for the unit tests.
    #[cfg_attr(any(not(test), loom), allow(dead_code))]
    pub(crate) const fn call_events(self) -> bool {
        self.0 & CALL_EVENTS_MASK != 0
    }
    /// Sets or clears the `CALL_EVENTS` bit.
    pub(crate) const fn with_call_events(self, on: bool) -> Word {
        Word((self.0 & !CALL_EVENTS_MASK) | if on { CALL_EVENTS_MASK } else { 0 })
    }
    /// Copies the `CALL_EVENTS` bit of `other`.
    pub(crate) const fn with_call_events_of(self, other: Word) -> Word {
        Word((self.0 & !CALL_EVENTS_MASK) | (other.0 & CALL_EVENTS_MASK))
    }

    /// Closed with no per-call listener, in one masked compare: the closed admission that
    /// dispatches nothing.
    #[inline(always)]
    pub(crate) const fn is_closed_quiet(self) -> bool {
        self.0 & QUIET_ADMIT_MASK == 0
    }
    /// Closed, no failure on record, generation `gen`, no per-call listener, and no listener
    /// waiting for this call's outcome (`observed`, what its `BeforeCall` dispatch returned, is
    /// 0): a success of generation `gen` that writes and dispatches nothing. One masked compare
    /// of the word, plus a test of `observed` (a register), branching or folded into the
    /// compare per target, below. (`observed` matters even when the per-call bit is clear: a
    /// listener may get a `BeforeCall` and the bit be cleared before the report.)
    #[inline(always)]
    pub(crate) const fn is_quiet_success(self, gen: u16, observed: u32) -> bool {
        if cfg!(target_has_atomic = "64") {
            self.is_quiet_success_branching(gen, observed)
        } else {
            self.is_quiet_success_folded(gen, observed)
        }
    }
    /// [`is_quiet_success`](Self::is_quiet_success) as two compare-and-branches: the fewer
    /// instructions on 64-bit targets (callgrind: 17 per `allow()` + `success()`, 19 folded).
    #[inline(always)]
    pub(crate) const fn is_quiet_success_branching(self, gen: u16, observed: u32) -> bool {
        observed == 0 && self.0 & QUIET_SUCCESS_MASK == (gen as u64) << GEN_SHIFT
    }
    /// [`is_quiet_success`](Self::is_quiet_success) as one compare, `observed` ORed into the
    /// difference: the smaller code on 32-bit microcontrollers, where each report site inlines
    /// it (56 B less flash in the every-operation firmware, 20 / 12 B in the typical one,
    /// thumbv6m / thumbv7m).
    #[inline(always)]
    pub(crate) const fn is_quiet_success_folded(self, gen: u16, observed: u32) -> bool {
        ((self.0 & QUIET_SUCCESS_MASK) ^ ((gen as u64) << GEN_SHIFT)) | observed as u64 == 0
    }
    /// Closed, no failure on record, generation `gen`, in one masked compare: a success of
    /// generation `gen` that writes nothing (its event aside).
    #[inline(always)]
    pub(crate) const fn is_noop_success(self, gen: u16) -> bool {
        self.0 & NOOP_SUCCESS_MASK == (gen as u64) << GEN_SHIFT
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
    /// Sets the generation to `g` (tests only: the machine only ever advances it).
    #[cfg(test)]
    pub(crate) const fn with_generation(self, g: u16) -> Word {
        Word((self.0 & !GEN_MASK) | ((g as u64) << GEN_SHIFT))
    }
    /// Copies the generation of `other`.
    pub(crate) const fn with_generation_of(self, other: Word) -> Word {
        Word((self.0 & !GEN_MASK) | (other.0 & GEN_MASK))
    }
    /// Sets `UNTIL` to `at` (ms on the breaker's clock), reduced modulo 2^29. Callers compute
    /// `at` as `now.wrapping_add(period)`: exact modulo 2^29, whatever `now` is.
    pub(crate) const fn with_until(self, at: u64) -> Word {
        Word((self.0 & !UNTIL_MASK) | ((at % TIME_MODULUS) << UNTIL_SHIFT))
    }

    /// The stored deadline's distance ahead of `now`, modulo 2^29. In 32-bit arithmetic (the
    /// low 29 bits decide it): cheaper on 32-bit cores.
    const fn until_ahead(self, now: u64) -> u32 {
        (self.until() as u32).wrapping_sub(now as u32) & (TIME_MODULUS as u32 - 1)
    }
    /// Whether the stored deadline has passed at `now`: it is pending only while it reads
    /// between 1 and [`MAX_PERIOD_MS`] ahead (no deadline is ever set further ahead), so it is
    /// passed at exactly `now == until`.
    pub(crate) const fn until_passed(self, now: u64) -> bool {
        let ahead = self.until_ahead(now);
        ahead == 0 || ahead > MAX_PERIOD_MS as u32
    }
    /// Milliseconds from `now` to the stored deadline; zero once it has passed. Never more than
    /// [`MAX_PERIOD_MS`].
    pub(crate) const fn until_remaining(self, now: u64) -> u64 {
        if self.until_passed(now) {
            0
        } else {
            self.until_ahead(now) as u64
        }
    }

    /// The stored deadline read exactly, for any idle time: `Some(ms left)` while it is
    /// pending at `now`, `None` once it has passed. `long_ago` is [`armed_long_ago`] with the
    /// breaker's `ARMED_AT` (see the module docs, "Time"), asked only when the 29-bit reading
    /// says pending: it overrules that reading when every deadline the word can hold has passed.
    #[inline(always)]
    pub(crate) fn deadline_left(self, now: u64, long_ago: impl FnOnce(u64) -> bool) -> Option<u64> {
        if self.until_passed(now) || long_ago(now) {
            None
        } else {
            Some(self.until_ahead(now) as u64)
        }
    }
}

/// Whether every deadline the word can hold has passed at `now`, given `armed_at`, the largest
/// clock reading from which any deadline of this breaker was set (`ARMED_AT`, raised before the
/// CAS that installs the deadline): a deadline is at most [`MAX_PERIOD_MS`] after the reading
/// it was set from, and that reading is at most `armed_at`. A reader whose `now` is behind
/// `armed_at` (it read the clock before a writer did) gets `false`: the word is then fresh and
/// its 29-bit reading exact.
#[inline]
pub(crate) const fn armed_long_ago(now: u64, armed_at: u64) -> bool {
    now.saturating_sub(armed_at) >= MAX_PERIOD_MS
}

/// The machine's fields only: the `CALL_EVENTS` bit is not machine state (the loom checks
/// compare this output with a reference model that has no listeners' bit).
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
    fn generation_tells_65536_changes_apart_then_wraps() {
        let mut w = Word::INITIAL.with_state(State::HalfOpen).with_until(77);
        for i in 1..GENERATIONS {
            w = w.next_generation();
            assert_eq!(u32::from(w.generation()), i);
        }
        assert_eq!(w.generation(), u16::MAX);
        w = w.next_generation();
        assert_eq!(w.generation(), 0);
        // The neighbours are untouched by the carry out of the top of `GEN`.
        assert_eq!(w.state(), State::HalfOpen);
        assert_eq!(w.until(), 77);
        assert_eq!(w.0 & CALL_EVENTS_MASK, 0);
    }

    #[test]
    fn reserved_bit_stays_zero_under_every_setter() {
        let w = Word::INITIAL
            .with_state(State::Disabled)
            .with_count(u32::MAX)
            .with_in_flight(u32::MAX)
            .with_level(u32::MAX)
            .with_generation(u16::MAX)
            .next_generation()
            .with_until(u64::MAX);
        assert_eq!(w.0 & CALL_EVENTS_MASK, 0);
        assert_eq!(w.until(), TIME_MODULUS - 1);
        assert_eq!(CALL_EVENTS_MASK, 1 << 63);
    }

    #[test]
    fn a_deadline_is_passed_at_exactly_now_and_never_reads_further_than_the_max_period() {
        let w = Word::INITIAL.with_until(1_000);
        assert!(!w.until_passed(999));
        assert_eq!(w.until_remaining(999), 1);
        assert!(w.until_passed(1_000));
        assert_eq!(w.until_remaining(1_000), 0);
        // Behind the clock by less than 2^29 - MAX_PERIOD: passed.
        let last_exact = 1_000 + TIME_MODULUS - MAX_PERIOD_MS - 1;
        assert!(w.until_passed(last_exact));
        // From there on, once per 2^29 ms cycle, it reads as pending again, by at most the
        // longest period: the documented limit of an untouched word.
        assert!(!w.until_passed(last_exact + 1));
        assert_eq!(w.until_remaining(last_exact + 1), MAX_PERIOD_MS);
        assert!(w.until_passed(1_000 + TIME_MODULUS));
        for now in [0, 5, 999, 1 << 40, u64::MAX - 3, u64::MAX] {
            assert!(w.until_remaining(now) <= MAX_PERIOD_MS, "{now}");
        }
    }

    #[test]
    fn armed_at_corrects_the_29_bit_reading_for_any_idle_time() {
        // Set at 1_000 for 60 s: the writer's reading, 1_000, is ARMED_AT.
        let (set, period) = (1_000u64, 60_000u64);
        let w = Word::INITIAL.with_until(set + period);
        let deadline = set + period;
        for k in 1..=3u64 {
            let alias = deadline + k * TIME_MODULUS - 1;
            assert!(!w.until_passed(alias), "the field alone reads pending");
            assert_eq!(
                w.deadline_left(alias, |now| armed_long_ago(now, set)),
                None,
                "cycle {k}"
            );
        }
        assert_eq!(
            w.deadline_left(u64::MAX, |now| armed_long_ago(now, set)),
            None
        );
        // Pending: exact.
        assert_eq!(
            w.deadline_left(set, |now| armed_long_ago(now, set)),
            Some(period)
        );
        assert_eq!(
            w.deadline_left(deadline - 1, |now| armed_long_ago(now, set)),
            Some(1)
        );
        assert_eq!(
            w.deadline_left(deadline, |now| armed_long_ago(now, set)),
            None
        );
        // A reader whose clock reading is older than ARMED_AT (a writer read later) trusts the
        // field: the word is fresh.
        assert_eq!(
            w.deadline_left(set, |now| armed_long_ago(now, set + 5)),
            Some(period)
        );
        // The boundary: ARMED_AT exactly MAX_PERIOD_MS behind is old enough, one less is not.
        assert!(armed_long_ago(MAX_PERIOD_MS + 7, 7));
        assert!(!armed_long_ago(MAX_PERIOD_MS + 6, 7));
        assert!(!armed_long_ago(0, u64::MAX));
        // The longest period, read at its last pending millisecond, is still pending.
        let w = Word::INITIAL.with_until(set + MAX_PERIOD_MS);
        assert_eq!(
            w.deadline_left(set + MAX_PERIOD_MS - 1, |now| armed_long_ago(now, set)),
            Some(1)
        );
    }

    #[test]
    fn deadlines_near_u64_max_wrap_exactly() {
        for now in [u64::MAX - 10, u64::MAX - 1, u64::MAX] {
            for period in [1, 60_000, MAX_PERIOD_MS] {
                let w = Word::INITIAL.with_until(now.wrapping_add(period));
                assert!(!w.until_passed(now), "{now} {period}");
                assert_eq!(w.until_remaining(now), period, "{now} {period}");
            }
        }
        // A 60 s deadline set 10 ms before u64::MAX: 50 s left once the clock reads u64::MAX.
        let now = u64::MAX - 10;
        let w = Word::INITIAL.with_until(now.wrapping_add(60_000));
        assert_eq!(w.until_remaining(u64::MAX), 59_990);
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
