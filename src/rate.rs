//! Failure-rate mode: the sliding window of the last calls' outcomes, in one `u64`, and its pure
//! update function.
//!
//! This is the only module that shifts or masks the window word. Like the state word
//! (`word.rs`), it is updated by CAS only, through [`record`], a pure function tested without
//! atomics; the breaker's trip itself is still one CAS of the *state* word ([`trip`]).
//!
//! ```text
//!  63                 48 47                                          0
//! +---------------------+---------------------------------------------+
//! |         TAG         |        REG: MARK + OUTCOMES (shift register) |
//! |       16 bits       |                  48 bits                     |
//! +---------------------+---------------------------------------------+
//! ```
//!
//! | field | bits | meaning |
//! |---|---|---|
//! | `REG` | 0..48 | bit 0: the latest call (1 = failure), bit `i`: the `i`-th call before it, for the `seen` calls recorded; then `MARK`, a 1 at bit `seen`. `seen` is at most `window`, so at most [`MAX_WINDOW`] (47) and the mark fits. `REG == 0` (the `const` initial word) and `REG == 1` both mean no call seen |
//! | `TAG` | 48..64 | the generation (the state word's `GEN`) of the Closed period the outcomes belong to |
//!
//! # Generations
//! The window belongs to one Closed period, named by its generation. A report of generation `g`
//! (the permit's) reaches the window only after finding the breaker Closed in `g`; on a window
//! tagged `t`:
//! - `g == t`: the outcome is shifted in;
//! - `g != t`: either the window is stale (the breaker has tripped and closed, or was closed,
//!   since it was last written: `t` is older) or this report is (the breaker moved on after
//!   the report checked it, and a report of the newer generation has restarted the window).
//!   The tags alone cannot tell which: after 2^15 generations in which nothing wrote the window
//!   (a breaker flapping between Open and HalfOpen, or `close()` called on a Closed one again
//!   and again), "older modulo 2^16" reads backwards. So the report asks the state word again,
//!   after loading the window: if the breaker is still Closed in `g`, `t` is older (the state
//!   word's generation only moves forward, and would have to go round all 65,536 generations
//!   to come back to `g`) and the window restarts, tagged `g`, with this outcome alone;
//!   otherwise the report is dropped.
//!
//! So the window is reset on every close without anybody writing it: the close bumps the
//! generation, and the first report of the new Closed period starts a new window, however long
//! the window went untouched. Outcomes of an old generation never count in a new one, with the
//! state word's own bound: a stale report is taken for the current generation only if the
//! generation advanced by a multiple of 65,536 during its call.

//! # What is linearizable, what is approximate
//! Each report's window update is one CAS of the window word, so the window is exactly the
//! sequence of the reports whose CAS succeeded, in the order of those CASes. The trip is a
//! second CAS, of the state word, which succeeds only if the breaker is still Closed in the
//! report's generation ([`trip`]): a close, a manual move or another trip in between makes it
//! count nothing. Between the two CASes other reports may shift more outcomes in: a trip is
//! decided on a window that existed (the one the tripping report produced), not necessarily on
//! the latest one. A report that loaded the state word as Closed just before a trip may still
//! shift its outcome into the (now dead) window of that generation; nothing reads it again.
//!
//! # Limits
//! - `window`: 1 to [`MAX_WINDOW`] (47) calls: 48 bits of register hold the outcomes and the mark,
//!   the other 16 the generation tag.
//! - `minimum_calls`: 1 to `window`; `failure_rate_threshold`: 1 to 100 percent. The rate is
//!   compared without division: `failures * 100 >= threshold * seen`.

use crate::machine::{open_word, transition, Effect, Env, Op, Step, Transition};
use crate::state::{Outcome, State};
use crate::sync::{loom_const_fn, AtomicU64, Ordering};
use crate::word::Word;

/// Width of the shift register (outcomes and mark).
const REG_BITS: u32 = 48;
/// Shift of the generation tag.
const TAG_SHIFT: u32 = REG_BITS;
const REG_MASK: u64 = (1 << REG_BITS) - 1;

/// Largest `window` of [`FailureRate`](crate::FailureRate): 47 calls (the register's 48 bits
/// hold the outcomes and the mark above them).
pub const MAX_WINDOW: u32 = REG_BITS - 1;

const _: () = {
    assert!(TAG_SHIFT + 16 == 64, "the tag is the 16-bit generation");
    assert!(
        MAX_WINDOW < REG_BITS,
        "the mark must fit above a full window"
    );
};

/// The numbers rate mode needs: validated by `Config::validate`, so `1 <= minimum_calls <=
/// window <= MAX_WINDOW` and `1 <= threshold_percent <= 100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateParams {
    pub window: u8,
    pub minimum_calls: u8,
    pub threshold_percent: u8,
}

/// A decoded view of the window word. Pure data: no atomics.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window(pub(crate) u64);

impl Window {
    /// No call seen, generation 0: the window of a fresh breaker.
    pub(crate) const INITIAL: Window = Window(0);

    /// The generation of the Closed period this window counts.
    pub(crate) const fn tag(self) -> u16 {
        (self.0 >> TAG_SHIFT) as u16
    }
    const fn reg(self) -> u64 {
        self.0 & REG_MASK
    }
    /// Calls recorded (at most the window).
    pub(crate) const fn seen(self) -> u32 {
        let r = self.reg();
        if r == 0 {
            0
        } else {
            63 - r.leading_zeros()
        }
    }
    /// Failures among the calls recorded.
    pub(crate) const fn failures(self) -> u32 {
        let seen = self.seen();
        (self.reg() & ((1u64 << seen) - 1)).count_ones()
    }
    /// An empty window of generation `gen`.
    pub(crate) const fn empty(gen: u16) -> Window {
        Window((gen as u64) << TAG_SHIFT)
    }
    /// A full window (`window` calls) of generation `gen` without a failure.
    const fn clean(gen: u16, window: u32) -> Window {
        Window(((gen as u64) << TAG_SHIFT) | (1u64 << window))
    }
    /// Failures in this window if it counts generation `gen`, else 0 (a stale window).
    pub(crate) const fn failures_in(self, gen: u16) -> u32 {
        if self.tag() == gen {
            self.failures()
        } else {
            0
        }
    }
    /// `outcome` shifted in (`failed`), keeping the last `window` calls.
    const fn push(self, failed: bool, window: u32) -> Window {
        let seen = self.seen();
        let outcomes = self.reg() & ((1u64 << seen) - 1);
        let keep = (1u64 << window) - 1;
        let outcomes = ((outcomes << 1) | failed as u64) & keep;
        let seen = if seen < window { seen + 1 } else { window };
        Window((self.0 & !REG_MASK) | (1u64 << seen) | outcomes)
    }
}

impl core::fmt::Debug for Window {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Window")
            .field("tag", &self.tag())
            .field("seen", &self.seen())
            .field("failures", &self.failures())
            .finish()
    }
}

/// What [`record`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Counted; the rate is below the threshold (or too few calls were seen).
    Counted,
    /// Counted, and the window now trips the breaker: `failures` of its calls failed.
    Trip { failures: u32 },
    /// Not counted: the breaker left the report's Closed period before its window took it.
    Dropped,
}

/// The window word: its one CAS helper.
///
/// Orderings: `Acquire` loads and `AcqRel` CAS, as the state word's; the window only decides
/// whether a report asks for a trip, and the trip is decided again on the state word.
pub(crate) struct WindowCell(AtomicU64);

impl WindowCell {
    loom_const_fn! {
        /// An empty window of generation 0.
        pub(crate) fn new() -> Self {
            WindowCell(AtomicU64::new(Window::INITIAL.0))
        }
    }

    /// The current window.
    pub(crate) fn load(&self) -> Window {
        Window(self.0.load(Ordering::Acquire))
    }

    /// Empties the window, tagged `gen`, unless it is tagged `gen` already: the breaker left a
    /// Closed period for generation `gen` (see "Generations"). A report of the old period
    /// racing it is either erased or finds the new tag and is dropped. A window already tagged
    /// `gen` is kept: a report of the new generation got there first (when `close()` starts a
    /// new Closed period), and it holds nothing older (the old period's outcomes are tagged
    /// with the old generation, and every earlier move out of Closed emptied the window).
    pub(crate) fn reset(&self, gen: u16) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (Window(w).tag() != gen).then_some(Window::empty(gen).0)
            });
    }

    /// Records one report of generation `gen`: runs [`record`] until its window is installed
    /// or it asks for no write, and returns its verdict. `current` tells whether the breaker is
    /// still Closed in `gen`; it is asked (after the window's `Acquire` load) only when the
    /// window's tag is not `gen`.
    #[inline]
    pub(crate) fn update(
        &self,
        gen: u16,
        outcome: Outcome,
        p: RateParams,
        current: impl Fn() -> bool,
    ) -> Verdict {
        let mut cur = self.load();
        loop {
            let (next, verdict) = record(cur, gen, outcome, p, &current);
            let Some(next) = next else { return verdict };
            match self
                .0
                .compare_exchange_weak(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return verdict,
                Err(actual) => cur = Window(actual),
            }
        }
    }
}

/// The window update of one report of generation `gen`: the next window (`None` when nothing
/// changes) and the verdict. Pure but for `current`, which tells whether the breaker is still
/// Closed in `gen` and is asked only when the window's tag differs from `gen` (see
/// "Generations" above). `Ignored` outcomes are not calls: nothing changes.
#[inline]
pub(crate) fn record(
    w: Window,
    gen: u16,
    outcome: Outcome,
    p: RateParams,
    current: impl FnOnce() -> bool,
) -> (Option<Window>, Verdict) {
    // A healthy service's steady state, in one compare: a full window of generation `gen` with
    // no failure stays as it is on a success, below every threshold (which is at least 1%).
    if w.0 == Window::clean(gen, p.window as u32).0 && outcome == Outcome::Success {
        return (None, Verdict::Counted);
    }
    let failed = match outcome {
        Outcome::Success => false,
        Outcome::Failure => true,
        Outcome::Ignored => return (None, Verdict::Counted),
    };
    let base = if w.tag() == gen {
        w
    } else if current() {
        // The window is older than this Closed period: it restarts.
        Window::empty(gen)
    } else {
        // The breaker moved on since this report checked it.
        return (None, Verdict::Dropped);
    };
    let next = base.push(failed, p.window as u32);
    let seen = next.seen();
    let failures = next.failures();
    let verdict =
        if seen >= p.minimum_calls as u32 && failures * 100 >= p.threshold_percent as u32 * seen {
            Verdict::Trip { failures }
        } else {
            Verdict::Counted
        };
    // A full window whose oldest outcome equals the new one (a healthy service's successes)
    // does not change: no write, so the steady state does not bounce the cache line.
    let next = if next.0 == w.0 { None } else { Some(next) };
    (next, verdict)
}

/// The trip of a rate-mode breaker, as a transition of the state word: Closed in generation
/// `gen` moves to Open with `failures` on record (what `fail_counter` reads while Open) and
/// backoff level 0, as a consecutive trip does; any other word (already tripped, closed again,
/// moved by hand) counts nothing. Pure; applied by the breaker's one CAS helper.
pub(crate) fn trip(w: Word, gen: u16, failures: u32, env: &impl Env) -> Step {
    if w.state() == State::Closed && w.generation() == gen {
        Step {
            next: Some(open_word(w, failures, 0, env)),
            effect: Effect::Recorded {
                tripped: true,
                closed: false,
            },
        }
    } else {
        Step {
            next: None,
            effect: Effect::Dropped,
        }
    }
}

/// [`trip`] as a step for the breaker's CAS helper.
#[derive(Clone, Copy)]
pub(crate) struct RateTrip {
    pub gen: u16,
    pub failures: u32,
}

impl Transition for RateTrip {
    fn step(self, w: Word, env: &impl Env) -> Step {
        trip(w, self.gen, self.failures, env)
    }
}

/// `close()` in rate mode as a step for the breaker's CAS helper: [`close_closed`], else the
/// machine's `Close`.
#[derive(Clone, Copy)]
pub(crate) struct RateClose;

impl Transition for RateClose {
    fn step(self, w: Word, env: &impl Env) -> Step {
        match close_closed(w) {
            Some(step) => step,
            None => transition(w, Op::Close, env),
        }
    }
}

/// `close()` of a rate-mode breaker that is already Closed: a new generation, so a new window
/// (and reports of calls admitted before count nothing, nor can a trip decided on the old window
/// land). Every other state closes as in consecutive mode. Pure.
pub(crate) fn close_closed(w: Word) -> Option<Step> {
    if w.state() == State::Closed {
        Some(Step {
            next: Some(w.next_generation()),
            effect: Effect::Unchanged,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RateParams = RateParams {
        window: 4,
        minimum_calls: 3,
        threshold_percent: 50,
    };

    fn run(mut w: Window, gen: u16, outcomes: &[bool], p: RateParams) -> (Window, Verdict) {
        let mut v = Verdict::Counted;
        for &f in outcomes {
            let o = if f {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            let (n, verdict) = record(w, gen, o, p, || true);
            w = n.unwrap_or(w);
            v = verdict;
        }
        (w, v)
    }

    #[test]
    fn initial_window_is_empty_in_generation_zero() {
        let w = Window::INITIAL;
        assert_eq!((w.tag(), w.seen(), w.failures()), (0, 0, 0));
        assert_eq!(Window::empty(9).seen(), 0);
        assert_eq!(Window(1).seen(), 0, "the mark alone is an empty window");
    }

    #[test]
    fn the_window_slides_over_the_last_calls() {
        let (w, v) = run(Window::INITIAL, 0, &[true, false], P);
        assert_eq!((w.seen(), w.failures(), v), (2, 1, Verdict::Counted));
        // Third call: minimum reached, 2 of 3 failed.
        let (w, v) = run(w, 0, &[true], P);
        assert_eq!((w.seen(), w.failures()), (3, 2));
        assert_eq!(v, Verdict::Trip { failures: 2 });
        // Successes push the failures out: [F S F S] then [S F S S]...
        let (w, _) = run(w, 0, &[false], P);
        assert_eq!((w.seen(), w.failures()), (4, 2));
        let (w, v) = run(w, 0, &[false], P);
        assert_eq!((w.seen(), w.failures(), v), (4, 1, Verdict::Counted));
        let (w, _) = run(w, 0, &[false, false], P);
        assert_eq!((w.seen(), w.failures()), (4, 0));
        // The steady state of a healthy service writes nothing.
        assert_eq!(w, Window::clean(0, 4));
        assert_eq!(
            record(w, 0, Outcome::Success, P, || true),
            (None, Verdict::Counted)
        );
        // A failure still shifts in.
        let (n, _) = record(w, 0, Outcome::Failure, P, || true);
        assert_eq!((n.unwrap().seen(), n.unwrap().failures()), (4, 1));
        // Another generation's clean window is not this one's.
        let (n, _) = record(w, 1, Outcome::Success, P, || true);
        assert_eq!((n.unwrap().tag(), n.unwrap().seen()), (1, 1));
    }

    #[test]
    fn the_largest_window_keeps_its_mark_and_tag() {
        let p = RateParams {
            window: MAX_WINDOW as u8,
            minimum_calls: MAX_WINDOW as u8,
            threshold_percent: 100,
        };
        let (w, v) = run(Window::empty(u16::MAX), u16::MAX, &[true; 100], p);
        // Full of failures: one more changes nothing (no write), and still trips.
        assert_eq!(
            record(w, u16::MAX, Outcome::Failure, p, || true),
            (
                None,
                Verdict::Trip {
                    failures: MAX_WINDOW
                }
            )
        );
        assert_eq!(
            (w.tag(), w.seen(), w.failures()),
            (u16::MAX, MAX_WINDOW, MAX_WINDOW)
        );
        assert_eq!(
            v,
            Verdict::Trip {
                failures: MAX_WINDOW
            }
        );
        let (w, v) = run(w, u16::MAX, &[false], p);
        assert_eq!(
            (w.seen(), w.failures(), v),
            (MAX_WINDOW, MAX_WINDOW - 1, Verdict::Counted)
        );
    }

    #[test]
    fn a_current_generation_restarts_the_window_and_a_stale_one_is_dropped() {
        let (w, _) = run(Window::empty(7), 7, &[true, true], P);
        assert_eq!(w.failures(), 2);
        // A report whose breaker moved on (older or not: only the state word can tell).
        assert_eq!(
            record(w, 6, Outcome::Failure, P, || false),
            (None, Verdict::Dropped)
        );
        assert_eq!(
            record(w, 8, Outcome::Failure, P, || false),
            (None, Verdict::Dropped)
        );
        let (n, v) = record(w, 8, Outcome::Success, P, || true);
        let n = n.unwrap();
        assert_eq!(
            (n.tag(), n.seen(), n.failures(), v),
            (8, 1, 0, Verdict::Counted)
        );
        // A current report restarts the window whatever the distance between the tags, modulo
        // 2^16: half the cycle, more than half (which "newer modulo 2^16" took for older), and
        // across the wrap of the 16-bit generation; twice round, at each boundary.
        for t in [7u16, u16::MAX] {
            for d in [1u16, 0x7FFF, 0x8000, 0x8001, u16::MAX] {
                let g = t.wrapping_add(d);
                let (n, v) = record(Window::empty(t), g, Outcome::Failure, P, || true);
                let n = n.unwrap_or_else(|| panic!("{t} {d}"));
                assert_eq!((n.tag(), n.failures(), v), (g, 1, Verdict::Counted));
            }
        }
        // The tag matching the report's generation never asks the state word.
        let (n, _) = record(w, 7, Outcome::Failure, P, || unreachable!());
        assert_eq!(n.unwrap().failures(), 3);
        assert_eq!(Window::empty(3).failures_in(3), 0);
        assert_eq!(w.failures_in(7), 2);
        assert_eq!(w.failures_in(8), 0);
    }

    #[test]
    fn ignored_outcomes_are_not_calls() {
        let (w, _) = run(Window::INITIAL, 0, &[true], P);
        assert_eq!(
            record(w, 0, Outcome::Ignored, P, || true),
            (None, Verdict::Counted)
        );
    }

    #[test]
    fn minimum_calls_and_threshold_are_respected() {
        let p = RateParams {
            window: 10,
            minimum_calls: 10,
            threshold_percent: 50,
        };
        // Nine failures: below the minimum.
        let (w, v) = run(Window::INITIAL, 0, &[true; 9], p);
        assert_eq!(v, Verdict::Counted);
        // The tenth call, even a success, reaches the minimum with 90% failed.
        let (_, v) = run(w, 0, &[false], p);
        assert_eq!(v, Verdict::Trip { failures: 9 });
        // 4 of 10: below 50%; 5 of 10: exactly 50% trips.
        let (_, v) = run(
            Window::INITIAL,
            0,
            &[
                true, false, true, false, true, false, true, false, false, false,
            ],
            p,
        );
        assert_eq!(v, Verdict::Counted);
        let (_, v) = run(
            Window::INITIAL,
            0,
            &[
                true, false, true, false, true, false, true, false, true, false,
            ],
            p,
        );
        assert_eq!(
            v,
            Verdict::Trip { failures: 5 },
            "exactly the threshold trips"
        );
    }
}
