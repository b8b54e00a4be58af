//! The state machine: one pure function from (word, operation, environment) to a step.
//!
//! No atomics here. [`transition`] is called from the CAS loop in `breaker.rs`, possibly several
//! times for one operation, so it has no side effects: it only reads the clock and the
//! configuration through [`Env`], lazily, when the branch it takes needs them. The one
//! exception is [`Env::now_for_deadline`], the reading a branch sets a deadline from, which also
//! raises the breaker's `ARMED_AT` (monotonic and idempotent, so a retried or abandoned step
//! leaves nothing wrong; see `word.rs`, "Time"). The closed path (`Acquire` in Closed,
//! `Report(Success)` with a zero count) needs none of them and writes nothing.

use crate::state::{Outcome, State};
use crate::word::{Word, MAX_LEVEL, MAX_PERIOD_MS};

/// The numbers the machine needs from the configuration, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Params {
    pub fail_max: u32,
    pub success_threshold: u32,
    pub half_open_max_calls: u32,
    pub reset_timeout_ms: u64,
    pub lease_ms: u64,
    /// Backoff cap in ms, or `None` for a fixed open period.
    pub backoff_max_ms: Option<u64>,
    pub jitter_percent: u8,
    /// Mixed into the jitter so that breakers tripping at the same instant draw differently.
    pub salt: u64,
}

/// What the machine may read: the time and the configuration. Both are read lazily.
pub(crate) trait Env {
    /// Milliseconds on the breaker's clock.
    fn now(&self) -> u64;
    /// [`now`](Self::now), for a deadline about to be set from it: also raises the breaker's
    /// `ARMED_AT` to it (see `word.rs`, "Time"). Every branch that writes a deadline takes its
    /// reading here, and only those do, so the others (the closed path's reports above all)
    /// pay nothing for it. The machine's one side effect: monotonic and idempotent, and taken
    /// before the CAS, so a step that is retried or abandoned leaves nothing wrong (a reading
    /// at most as late as the operation's).
    fn now_for_deadline(&self) -> u64;
    /// Whether the breaker's `ARMED_AT` (the largest clock reading any of its deadlines was
    /// set from) is at least 24 h behind `now` ([`armed_long_ago`]): then every deadline has
    /// passed, whatever the 29-bit field reads ([`Word::deadline_left`]).
    fn armed_long_ago(&self, now: u64) -> bool;
    /// The current configuration.
    fn params(&self) -> Params;
    /// The open period of a trip: [`open_period`]. The breaker overrides it with the function
    /// its configuration needs, chosen when it is built, so a breaker without backoff built in a
    /// `static` links no backoff or jitter code (see [`PeriodFn`]).
    fn open_period(&self, p: &Params, level: u32, now: u64, gen: u16) -> u64 {
        open_period(p, level, now, gen)
    }
}

/// How a breaker computes its open period: [`open_period`], or [`fixed_period`] when it has no
/// backoff. A `static` breaker's initialiser refers to the one it uses only, so firmware without
/// backoff does not link the other (the configuration itself is read at run time: a `static`
/// holding atomics is mutable memory, its plain fields included).
pub(crate) type PeriodFn = fn(&Params, u32, u64, u16) -> u64;

/// The open period without backoff: `reset_timeout`. What [`open_period`] returns when
/// `backoff_max_ms` is `None`.
pub(crate) fn fixed_period(p: &Params, _level: u32, _now: u64, _gen: u16) -> u64 {
    p.reset_timeout_ms
}

/// One operation on the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A caller asks to run a call.
    Acquire,
    /// A caller admitted in generation `gen` reports how the call went.
    Report { gen: u16, outcome: Outcome },
    /// A caller admitted in generation `gen` as a trial gives its slot back unreported.
    Release { gen: u16 },
    /// Manual `open()`: open for one (backed-off) period; no-op when already Open.
    Open,
    /// Manual `close()`; when already Closed it only clears the failure count.
    Close,
    /// Manual `half_open()`; no-op when already HalfOpen.
    HalfOpen,
    /// `trip_for(d)`: open until exactly `now + ms`, whatever the state.
    TripFor { ms: u64 },
    /// `force_open()`; no-op when already ForcedOpen.
    ForceOpen,
    /// `disable()`; no-op when already Disabled.
    Disable,
}

/// What an operation did, beside the new word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The call may run. `trial` calls hold a half-open slot until they report or release.
    Admitted { gen: u16, trial: bool },
    /// The call must not run; `retry_after_ms` is `None` when time alone will not admit it.
    Rejected { retry_after_ms: Option<u64> },
    /// A report was counted. `tripped` / `closed` say this report opened / closed the breaker.
    Recorded { tripped: bool, closed: bool },
    /// A report or release from an earlier generation (or in Disabled): counted nothing.
    Dropped,
    /// A trial slot was given back.
    Released,
    /// A management operation changed the word.
    Changed,
    /// A management operation found nothing to do.
    Unchanged,
}

/// The result of [`transition`]: the word to CAS in (if any) and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) struct Step {
    pub next: Option<Word>,
    pub effect: Effect,
}

const fn stay(effect: Effect) -> Step {
    Step { next: None, effect }
}

const fn go(next: Word, effect: Effect) -> Step {
    Step {
        next: Some(next),
        effect,
    }
}

/// The state machine. Pure: the same inputs give the same step.
///
/// Always inlined, so each caller keeps only the branch of its own (constant) operation.
#[inline(always)]
pub(crate) fn transition(w: Word, op: Op, env: &impl Env) -> Step {
    match op {
        Op::Acquire => acquire(w, env),
        Op::Report { gen, outcome } => report(w, gen, outcome, env),
        Op::Release { gen } => {
            if w.state() == State::HalfOpen && w.generation() == gen && w.in_flight() > 0 {
                go(w.with_in_flight(w.in_flight() - 1), Effect::Released)
            } else {
                stay(Effect::Dropped)
            }
        }
        Op::Open => {
            if w.state() == State::Open {
                return stay(Effect::Unchanged);
            }
            // A manual open from HalfOpen keeps the backoff level, as a failed trial would;
            // from the other states it starts at 0 (ForcedOpen and Disabled already reset it).
            let level = if w.state() == State::HalfOpen {
                w.level()
            } else {
                0
            };
            go(open_word(w, 0, level, env), Effect::Changed)
        }
        Op::TripFor { ms } => {
            let now = env.now_for_deadline();
            let level = if w.state() == State::Closed {
                0
            } else {
                w.level()
            };
            let next = reset(w, State::Open)
                .with_level(level)
                .with_until(now.wrapping_add(ms));
            go(next, Effect::Changed)
        }
        Op::Close => manual(w, State::Closed, env),
        Op::HalfOpen => manual(w, State::HalfOpen, env),
        Op::ForceOpen => manual(w, State::ForcedOpen, env),
        Op::Disable => manual(w, State::Disabled, env),
    }
}

/// A pure step of the state word that the breaker's one CAS helper can apply: [`Op`] (through
/// [`transition`]) and rate mode's trip and close (`rate.rs`). Always inlined, like
/// [`transition`], so each call site keeps only its own operation's branch.
pub(crate) trait Transition: Copy {
    /// The step from `w`.
    fn step(self, w: Word, env: &impl Env) -> Step;
}

impl Transition for Op {
    #[inline(always)]
    fn step(self, w: Word, env: &impl Env) -> Step {
        transition(w, self, env)
    }
}

/// The closed path of [`Op::Acquire`], without the machine: `Some(gen)` when `w` admits a
/// non-trial call writing nothing (what `transition` decides for Closed). The breaker's `allow`
/// takes [`Word::is_closed_quiet`] (this, with no per-call listener, in one masked compare)
/// before calling [`transition`]; `fast_paths_agree_with_transition` pins them together.
#[inline]
pub(crate) fn closed_admit(w: Word) -> Option<u16> {
    if w.state() == State::Closed {
        Some(w.generation())
    } else {
        None
    }
}

/// The closed path of a success report: `true` when reporting [`Outcome::Success`] for
/// generation `gen` on `w` counts and writes nothing. `report` starts with it, and the breaker
/// checks it (or [`Word::is_quiet_success`], the same with no per-call listener) inline before
/// calling the machine, so they cannot disagree. One masked compare (Closed encodes as 0).
#[inline]
pub(crate) fn closed_success_is_noop(w: Word, gen: u16) -> bool {
    w.is_noop_success(gen)
}

/// The rejection of [`Op::Acquire`] by an Open breaker whose period is still running at `now`,
/// without the machine: `Some(ms until the deadline)`, what `transition` decides (a rejection
/// writing nothing), with `long_ago` being [`Env::armed_long_ago`]. The breaker's `allow`
/// checks it before calling [`transition`]; `fast_paths_agree_with_transition` pins the two
/// together.
#[inline]
pub(crate) fn open_rejects(w: Word, now: u64, long_ago: impl FnOnce(u64) -> bool) -> Option<u64> {
    if w.state() == State::Open {
        w.deadline_left(now, long_ago)
    } else {
        None
    }
}

fn acquire(w: Word, env: &impl Env) -> Step {
    match w.state() {
        // The closed path: no clock, no configuration, no write.
        State::Closed | State::Disabled => stay(Effect::Admitted {
            gen: w.generation(),
            trial: false,
        }),
        State::ForcedOpen => stay(Effect::Rejected {
            retry_after_ms: None,
        }),
        State::Open => {
            let now = env.now();
            if let Some(ms) = open_rejects(w, now, |now| env.armed_long_ago(now)) {
                return stay(Effect::Rejected {
                    retry_after_ms: Some(ms),
                });
            }
            // The open period is over: this caller wins the move to HalfOpen (if its CAS does)
            // and takes the first trial slot.
            let now = env.now_for_deadline();
            let p = env.params();
            let next = reset(w, State::HalfOpen)
                .with_level(w.level())
                .with_in_flight(1)
                .with_until(now.wrapping_add(p.lease_ms));
            go(
                next,
                Effect::Admitted {
                    gen: next.generation(),
                    trial: true,
                },
            )
        }
        State::HalfOpen => {
            let p = env.params();
            let claimed = if w.in_flight() < p.half_open_max_calls {
                // A free slot: claim it.
                w.with_in_flight(w.in_flight() + 1)
            } else {
                let now = env.now();
                if let Some(left) = w.deadline_left(now, |now| env.armed_long_ago(now)) {
                    return stay(Effect::Rejected {
                        retry_after_ms: Some(left),
                    });
                }
                // Every slot is claimed and even the newest claim is older than the lease:
                // re-arm. Earlier trials' reports belong to the old generation and are dropped.
                w.next_generation().with_in_flight(1)
            };
            // Either way the lease (the newest claim's) starts now.
            let next = claimed.with_until(env.now_for_deadline().wrapping_add(p.lease_ms));
            go(
                next,
                Effect::Admitted {
                    gen: next.generation(),
                    trial: true,
                },
            )
        }
    }
}

fn report(w: Word, gen: u16, outcome: Outcome, env: &impl Env) -> Step {
    let counted = Effect::Recorded {
        tripped: false,
        closed: false,
    };
    // The closed path, the same predicate the breaker checks inline: no write.
    if outcome == Outcome::Success && closed_success_is_noop(w, gen) {
        return stay(counted);
    }
    if w.generation() != gen {
        return stay(Effect::Dropped);
    }
    match (w.state(), outcome) {
        // A count to reset (the zero count left above).
        (State::Closed, Outcome::Success) => go(w.with_count(0), counted),
        (State::Closed, Outcome::Failure) => {
            let failures = w.count() + 1;
            if failures >= env.params().fail_max {
                let tripped = Effect::Recorded {
                    tripped: true,
                    closed: false,
                };
                go(open_word(w, failures, 0, env), tripped)
            } else {
                go(w.with_count(failures), counted)
            }
        }
        (State::Closed, Outcome::Ignored) => stay(counted),
        (State::HalfOpen, Outcome::Success) => {
            let successes = w.count() + 1;
            if successes >= env.params().success_threshold {
                let closed = Effect::Recorded {
                    tripped: false,
                    closed: true,
                };
                go(reset(w, State::Closed), closed)
            } else {
                let next = w
                    .with_count(successes)
                    .with_in_flight(w.in_flight().saturating_sub(1));
                go(next, counted)
            }
        }
        (State::HalfOpen, Outcome::Failure) => {
            let level = if env.params().backoff_max_ms.is_some() {
                (w.level() + 1).min(MAX_LEVEL)
            } else {
                0
            };
            let tripped = Effect::Recorded {
                tripped: true,
                closed: false,
            };
            go(open_word(w, 1, level, env), tripped)
        }
        (State::HalfOpen, Outcome::Ignored) => {
            go(w.with_in_flight(w.in_flight().saturating_sub(1)), counted)
        }
        // Nothing is admitted in Open or ForcedOpen in the current generation, and Disabled
        // records nothing.
        (State::Open | State::ForcedOpen | State::Disabled, _) => stay(Effect::Dropped),
    }
}

/// A management move to `to`, which resets every counter; a no-op when already there.
fn manual(w: Word, to: State, env: &impl Env) -> Step {
    if w.state() == to {
        // `close()` on a Closed breaker still clears the failure count (as PyBreaker's does),
        // in place: same generation, so calls in flight still count; no state change, no event.
        if to == State::Closed && w.count() != 0 {
            return go(w.with_count(0), Effect::Unchanged);
        }
        return stay(Effect::Unchanged);
    }
    let next = reset(w, to);
    // A manual half-open starts with no trial in flight; its lease starts now.
    let next = if to == State::HalfOpen {
        next.with_level(w.level())
            .with_until(env.now_for_deadline())
    } else {
        next
    };
    go(next, Effect::Changed)
}

/// `w` moved to state `to` with a new generation and every other field zero.
pub(crate) fn reset(w: Word, to: State) -> Word {
    Word::INITIAL
        .with_state(to)
        .with_generation_of(w.next_generation())
        .with_call_events_of(w)
}

/// `w` moved to Open with `count` failures on record and backoff exponent `level`.
pub(crate) fn open_word(w: Word, count: u32, level: u32, env: &impl Env) -> Word {
    let now = env.now_for_deadline();
    let p = env.params();
    let next = reset(w, State::Open).with_count(count).with_level(level);
    let period = env.open_period(&p, level, now, next.generation());
    next.with_until(now.wrapping_add(period))
}

/// The open period for backoff exponent `level`, with jitter drawn from the trip's own time and
/// generation: fixed for that trip, never re-drawn.
///
/// In 32-bit arithmetic: every period is at most [`MAX_PERIOD_MS`] (< 2^27), so no 64-bit
/// multiply or variable 64-bit shift is needed (each is a library call on Cortex-M0).
pub(crate) fn open_period(p: &Params, level: u32, now: u64, gen: u16) -> u64 {
    let Some(max) = p.backoff_max_ms else {
        return p.reset_timeout_ms;
    };
    let cap = max.min(MAX_PERIOD_MS) as u32;
    let reset = p.reset_timeout_ms.min(MAX_PERIOD_MS) as u32;
    let level = level.min(31);
    // min(reset * 2^level, cap) without overflow: reset * 2^level > cap exactly when
    // reset > floor(cap / 2^level).
    let period = if reset > cap >> level {
        cap
    } else {
        reset << level
    };
    if p.jitter_percent == 0 || period == 0 {
        return period as u64;
    }
    // A 32-bit integer hash (lowbias32) of the trip's time, generation and the breaker's salt:
    // 32 random bits are all the jitter needs, and 32-bit multiplies are single instructions on
    // every Cortex-M.
    let mut z = (now as u32) ^ ((now >> 32) as u32).rotate_left(16) ^ ((gen as u32) << 16);
    z ^= p.salt as u32 ^ (p.salt >> 32) as u32;
    z ^= z >> 16;
    z = z.wrapping_mul(0x7FEB_352D);
    z ^= z >> 15;
    z = z.wrapping_mul(0x846C_A68B);
    z ^= z >> 16;
    // A fraction in [0, jitter_percent / 100) of the period, in parts per 2^16: 16 random bits
    // times jitter_percent * floor(2^16 / 100) (655), over 2^16. No division, and only 32-bit
    // multiplies (a 32 x 32 -> 64-bit one is a library call on Cortex-M0).
    let frac = ((z >> 16) * (p.jitter_percent.min(100) as u32 * 655)) >> 16;
    (period - scale(period, frac)) as u64
}

/// `floor(period * frac / 2^16)` for `period < 2^27` and `frac < 2^16`, in two 32-bit multiplies
/// (the high and low 16 bits of `period`): exact, and never more than `period`.
const fn scale(period: u32, frac: u32) -> u32 {
    (period >> 16) * frac + (((period & 0xFFFF) * frac) >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::word::{armed_long_ago, GENERATIONS};

    struct TestEnv {
        now: u64,
        p: Params,
        /// `ARMED_AT`; `None`: the clock reading itself (the word was just written).
        armed: Option<u64>,
    }

    impl Env for TestEnv {
        fn now(&self) -> u64 {
            self.now
        }
        fn now_for_deadline(&self) -> u64 {
            self.now
        }
        fn armed_long_ago(&self, now: u64) -> bool {
            armed_long_ago(now, self.armed.unwrap_or(self.now))
        }
        fn params(&self) -> Params {
            self.p
        }
    }

    fn params() -> Params {
        Params {
            fail_max: 3,
            success_threshold: 2,
            half_open_max_calls: 2,
            reset_timeout_ms: 1_000,
            lease_ms: 500,
            backoff_max_ms: None,
            jitter_percent: 0,
            salt: 0,
        }
    }

    fn env(now: u64) -> TestEnv {
        TestEnv {
            now,
            p: params(),
            armed: None,
        }
    }

    /// Applies `op`, asserting nothing; returns the next word (or the same) and the effect.
    fn apply(w: Word, op: Op, e: &TestEnv) -> (Word, Effect) {
        let s = transition(w, op, e);
        (s.next.unwrap_or(w), s.effect)
    }

    fn fail(w: Word, e: &TestEnv) -> (Word, Effect) {
        apply(
            w,
            Op::Report {
                gen: w.generation(),
                outcome: Outcome::Failure,
            },
            e,
        )
    }

    fn tripped(w: Word) -> Word {
        let e = env(0);
        let mut w = w;
        for _ in 0..3 {
            w = fail(w, &e).0;
        }
        assert_eq!(w.state(), State::Open);
        w
    }

    /// An environment that fails the test if the machine reads the clock or configuration.
    struct Untouchable;
    impl Env for Untouchable {
        fn now(&self) -> u64 {
            panic!("closed path read the clock")
        }
        fn now_for_deadline(&self) -> u64 {
            panic!("closed path set a deadline")
        }
        fn armed_long_ago(&self, _: u64) -> bool {
            panic!("closed path read ARMED_AT")
        }
        fn params(&self) -> Params {
            panic!("closed path read the configuration")
        }
    }

    #[test]
    fn closed_path_reads_nothing_and_writes_nothing() {
        let w = Word::INITIAL;
        let s = transition(w, Op::Acquire, &Untouchable);
        assert_eq!(s.next, None);
        assert_eq!(
            s.effect,
            Effect::Admitted {
                gen: 0,
                trial: false
            }
        );
        let s = transition(
            w,
            Op::Report {
                gen: 0,
                outcome: Outcome::Success,
            },
            &Untouchable,
        );
        assert_eq!(s.next, None);
    }

    /// An environment that records the readings taken for a deadline.
    struct Recording {
        inner: TestEnv,
        armed: core::cell::Cell<Option<u64>>,
    }
    impl Env for Recording {
        fn now(&self) -> u64 {
            self.inner.now()
        }
        fn now_for_deadline(&self) -> u64 {
            self.armed.set(Some(self.inner.now()));
            self.inner.now()
        }
        fn armed_long_ago(&self, now: u64) -> bool {
            self.inner.armed_long_ago(now)
        }
        fn params(&self) -> Params {
            self.inner.params()
        }
    }

    /// Every step that writes a new deadline into Open or HalfOpen took its reading through
    /// `now_for_deadline` (or `ARMED_AT` would miss it, and the word, left alone for days, could
    /// read wrong), and a step that writes none does not raise `ARMED_AT` (rejections stay
    /// read-only).
    #[test]
    fn every_step_that_sets_a_deadline_raises_armed_at() {
        let mut armed = 0;
        for state in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            for count in [0, 1, 2, 127] {
                for in_flight in [0, 1, 2] {
                    for until in [0u64, 1_000, 5_000] {
                        let w = Word::INITIAL
                            .with_state(state)
                            .with_count(count)
                            .with_in_flight(in_flight)
                            .with_generation(7)
                            .with_until(until);
                        let g = w.generation();
                        for op in [
                            Op::Acquire,
                            Op::Report {
                                gen: g,
                                outcome: Outcome::Success,
                            },
                            Op::Report {
                                gen: g,
                                outcome: Outcome::Failure,
                            },
                            Op::Report {
                                gen: g,
                                outcome: Outcome::Ignored,
                            },
                            Op::Report {
                                gen: g.wrapping_add(1),
                                outcome: Outcome::Failure,
                            },
                            Op::Release { gen: g },
                            Op::Open,
                            Op::Close,
                            Op::HalfOpen,
                            Op::TripFor { ms: 10 },
                            Op::ForceOpen,
                            Op::Disable,
                        ] {
                            let e = Recording {
                                inner: env(1_000),
                                armed: core::cell::Cell::new(None),
                            };
                            let step = transition(w, op, &e);
                            let n = step.next.unwrap_or(w);
                            let timed = matches!(n.state(), State::Open | State::HalfOpen);
                            let new_deadline = step.next.is_some()
                                && timed
                                && (n.until() != w.until()
                                    || n.state() != w.state()
                                    || n.generation() != w.generation());
                            if new_deadline {
                                assert_eq!(e.armed.get(), Some(1_000), "{w:?} {op:?} -> {n:?}");
                            }
                            if e.armed.get().is_some() {
                                armed += 1;
                                assert!(timed && step.next.is_some(), "{w:?} {op:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(armed > 100, "{armed}");
    }

    #[test]
    fn fast_paths_agree_with_transition() {
        // Every state, generation and count, with the other fields set to awkward values.
        let mut checked_fast = 0;
        for state in [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ] {
            for gen in [0u16, 1, 2, 63, 64, 65, 255, 256, 4_095, 65_534, 65_535] {
                for count in [0, 1, 2, 126, 127] {
                    let w = Word::INITIAL
                        .with_generation(gen)
                        .with_state(state)
                        .with_count(count)
                        .with_in_flight(if state == State::HalfOpen { 1 } else { 0 })
                        .with_until(5_000);
                    let e = env(1_000);
                    if let Some(g) = closed_admit(w) {
                        checked_fast += 1;
                        assert_eq!(
                            transition(w, Op::Acquire, &e),
                            stay(Effect::Admitted {
                                gen: g,
                                trial: false
                            }),
                            "{w:?}"
                        );
                    } else {
                        assert_ne!(w.state(), State::Closed);
                    }
                    for report_gen in [gen, gen.wrapping_add(1), gen.wrapping_add(64)] {
                        let op = Op::Report {
                            gen: report_gen,
                            outcome: Outcome::Success,
                        };
                        let s = transition(w, op, &e);
                        if closed_success_is_noop(w, report_gen) {
                            checked_fast += 1;
                            let counted = Effect::Recorded {
                                tripped: false,
                                closed: false,
                            };
                            assert_eq!(s, stay(counted), "{w:?}");
                        } else if state == State::Closed && report_gen == gen {
                            // The slow path is taken exactly when the machine writes.
                            assert!(s.next.is_some(), "{w:?}");
                        }
                    }
                }
            }
        }
        assert!(checked_fast > 0);
    }

    /// The breaker's masked fast paths (`Word::is_closed_quiet`, `Word::is_quiet_success`) and
    /// its open-rejection shortcut (`open_rejects`) against the field-wise predicates and
    /// `transition`, with the `CALL_EVENTS` bit both ways; and every move carries that bit.
    #[test]
    fn masked_fast_paths_agree_with_transition_and_keep_the_call_events_bit() {
        let mut checked = [0u32; 3];
        for events in [false, true] {
            for state in [
                State::Closed,
                State::Open,
                State::HalfOpen,
                State::ForcedOpen,
                State::Disabled,
            ] {
                for gen in [0u16, 1, 255, 256, 65_535] {
                    for count in [0, 1, 127] {
                        for until in [0u64, 999, 1_000, 1_001, 5_000, MAX_PERIOD_MS + 2_000] {
                            let w = Word::INITIAL
                                .with_generation(gen)
                                .with_state(state)
                                .with_count(count)
                                .with_in_flight(u32::from(state == State::HalfOpen))
                                .with_level(3)
                                .with_until(until)
                                .with_call_events(events);
                            assert_eq!(w.call_events(), events);
                            let e = env(1_000);
                            // Admission.
                            assert_eq!(
                                w.is_closed_quiet(),
                                closed_admit(w).is_some() && !events,
                                "{w:?}"
                            );
                            if w.is_closed_quiet() {
                                checked[0] += 1;
                                assert_eq!(
                                    transition(w, Op::Acquire, &e),
                                    stay(Effect::Admitted { gen, trial: false })
                                );
                            }
                            // Open rejection.
                            match open_rejects(w, 1_000, |now| e.armed_long_ago(now)) {
                                Some(ms) => {
                                    checked[1] += 1;
                                    assert_eq!(
                                        transition(w, Op::Acquire, &e),
                                        stay(Effect::Rejected {
                                            retry_after_ms: Some(ms)
                                        }),
                                        "{w:?}"
                                    );
                                }
                                None => {
                                    assert!(state != State::Open || w.until_passed(1_000), "{w:?}")
                                }
                            }
                            // Success reports.
                            for report_gen in [gen, gen.wrapping_add(1), gen ^ 0x8000] {
                                let field_wise = state == State::Closed
                                    && w.generation() == report_gen
                                    && w.count() == 0;
                                assert_eq!(closed_success_is_noop(w, report_gen), field_wise);
                                // `observed`: the listener sequence number the call's
                                // `BeforeCall` reached (0: none); its outcome is owed.
                                for observed in [0, 1, 2, u32::MAX - 1] {
                                    let quiet = w.is_quiet_success(report_gen, observed);
                                    let (branching, folded) = (
                                        w.is_quiet_success_branching(report_gen, observed),
                                        w.is_quiet_success_folded(report_gen, observed),
                                    );
                                    assert_eq!((branching, folded), (quiet, quiet), "{w:?}");
                                    assert_eq!(
                                        quiet,
                                        field_wise && !events && observed == 0,
                                        "{w:?}, observed {observed}"
                                    );
                                    checked[2] += u32::from(quiet);
                                }
                            }
                            // The bit rides through every move the machine makes.
                            for op in [
                                Op::Acquire,
                                Op::Report {
                                    gen,
                                    outcome: Outcome::Failure,
                                },
                                Op::Report {
                                    gen,
                                    outcome: Outcome::Success,
                                },
                                Op::Release { gen },
                                Op::Open,
                                Op::Close,
                                Op::HalfOpen,
                                Op::TripFor { ms: 10 },
                                Op::ForceOpen,
                                Op::Disable,
                            ] {
                                if let Some(next) = transition(w, op, &e).next {
                                    assert_eq!(next.call_events(), events, "{op:?} on {w:?}");
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked.iter().all(|&n| n > 0), "{checked:?}");
    }

    #[test]
    fn consecutive_failures_trip_and_success_resets() {
        let e = env(10);
        let (w, _) = fail(Word::INITIAL, &e);
        let (w, _) = fail(w, &e);
        assert_eq!(w.count(), 2);
        let (w, eff) = apply(
            w,
            Op::Report {
                gen: 0,
                outcome: Outcome::Success,
            },
            &e,
        );
        assert_eq!(w.count(), 0);
        assert_eq!(
            eff,
            Effect::Recorded {
                tripped: false,
                closed: false
            }
        );
        let (w, _) = fail(w, &e);
        let (w, _) = fail(w, &e);
        let (w, eff) = fail(w, &e);
        assert_eq!(
            eff,
            Effect::Recorded {
                tripped: true,
                closed: false
            }
        );
        assert_eq!(w.state(), State::Open);
        assert_eq!(w.count(), 3);
        assert_eq!(w.generation(), 1);
        assert_eq!(w.until_remaining(10), 1_000);
    }

    #[test]
    fn open_rejects_with_time_left_then_first_caller_gets_half_open() {
        let w = tripped(Word::INITIAL);
        let s = transition(w, Op::Acquire, &env(400));
        assert_eq!(s.next, None);
        assert_eq!(
            s.effect,
            Effect::Rejected {
                retry_after_ms: Some(600)
            }
        );
        let s = transition(w, Op::Acquire, &env(1_000));
        let n = s.next.unwrap();
        assert_eq!(n.state(), State::HalfOpen);
        assert_eq!(n.in_flight(), 1);
        assert_eq!(
            s.effect,
            Effect::Admitted {
                gen: n.generation(),
                trial: true
            }
        );
    }

    #[test]
    fn half_open_admits_at_most_max_calls_then_rearms_after_the_lease() {
        let w = tripped(Word::INITIAL);
        let (w, _) = apply(w, Op::Acquire, &env(1_000));
        let (w, eff) = apply(w, Op::Acquire, &env(1_100));
        assert!(matches!(eff, Effect::Admitted { trial: true, .. }));
        assert_eq!(w.in_flight(), 2);
        // Full: rejected until the newest claim's lease (1_100 + 500) runs out.
        let s = transition(w, Op::Acquire, &env(1_200));
        assert_eq!(
            s.effect,
            Effect::Rejected {
                retry_after_ms: Some(400)
            }
        );
        let gen_before = w.generation();
        let (w2, eff) = apply(w, Op::Acquire, &env(1_600));
        assert_eq!(w2.in_flight(), 1);
        assert_ne!(w2.generation(), gen_before);
        assert_eq!(
            eff,
            Effect::Admitted {
                gen: w2.generation(),
                trial: true
            }
        );
        // A report from the expired trial is dropped.
        let s = transition(
            w2,
            Op::Report {
                gen: gen_before,
                outcome: Outcome::Success,
            },
            &env(1_700),
        );
        assert_eq!(s.effect, Effect::Dropped);
        assert_eq!(s.next, None);
    }

    #[test]
    fn success_threshold_closes_and_any_trial_failure_reopens() {
        let w = tripped(Word::INITIAL);
        let (w, _) = apply(w, Op::Acquire, &env(1_000));
        let g = w.generation();
        let ok = Op::Report {
            gen: g,
            outcome: Outcome::Success,
        };
        let (w1, eff) = apply(w, ok, &env(1_001));
        assert_eq!(w1.state(), State::HalfOpen);
        assert_eq!(w1.count(), 1);
        assert_eq!(w1.in_flight(), 0);
        assert_eq!(
            eff,
            Effect::Recorded {
                tripped: false,
                closed: false
            }
        );
        let (w1, _) = apply(w1, Op::Acquire, &env(1_002));
        let (w2, eff) = apply(w1, ok, &env(1_003));
        assert_eq!(w2.state(), State::Closed);
        assert_eq!(
            eff,
            Effect::Recorded {
                tripped: false,
                closed: true
            }
        );
        // From the first half-open word, a failure re-opens for a full period.
        let (w3, eff) = fail(w1, &env(1_002));
        assert_eq!(w3.state(), State::Open);
        assert_eq!(
            eff,
            Effect::Recorded {
                tripped: true,
                closed: false
            }
        );
        assert_eq!(w3.until_remaining(1_002), 1_000);
    }

    #[test]
    fn reports_from_an_earlier_generation_are_dropped() {
        let w = Word::INITIAL;
        let w = tripped(w);
        let w = apply(w, Op::Close, &env(5)).0;
        assert_eq!(w.state(), State::Closed);
        // A failure admitted at generation 0 arrives after the trip and the close.
        let s = transition(
            w,
            Op::Report {
                gen: 0,
                outcome: Outcome::Failure,
            },
            &env(6),
        );
        assert_eq!(s.effect, Effect::Dropped);
        assert_eq!(s.next, None);
    }

    #[test]
    fn release_frees_a_trial_slot_only_in_its_generation() {
        let w = tripped(Word::INITIAL);
        let (w, eff) = apply(w, Op::Acquire, &env(1_000));
        let Effect::Admitted { gen, .. } = eff else {
            panic!("not admitted: {eff:?}")
        };
        let (w1, eff) = apply(w, Op::Release { gen }, &env(1_001));
        assert_eq!(eff, Effect::Released);
        assert_eq!(w1.in_flight(), 0);
        assert_eq!(w1.count(), 0);
        let s = transition(
            w,
            Op::Release {
                gen: gen.wrapping_add(1),
            },
            &env(1_001),
        );
        assert_eq!(s.effect, Effect::Dropped);
    }

    #[test]
    fn manual_operations_are_no_ops_in_their_own_state() {
        let e = env(0);
        assert_eq!(
            transition(Word::INITIAL, Op::Close, &e).effect,
            Effect::Unchanged
        );
        let w = tripped(Word::INITIAL);
        // open() on an open breaker does not extend it.
        let s = transition(w, Op::Open, &env(900));
        assert_eq!(s, stay(Effect::Unchanged));
        let (w, _) = apply(w, Op::ForceOpen, &e);
        assert_eq!(transition(w, Op::ForceOpen, &e).effect, Effect::Unchanged);
        assert_eq!(
            transition(w, Op::Acquire, &env(1 << 30)).effect,
            Effect::Rejected {
                retry_after_ms: None
            }
        );
        let (w, _) = apply(w, Op::Disable, &e);
        assert_eq!(w.state(), State::Disabled);
        let s = transition(
            w,
            Op::Report {
                gen: w.generation(),
                outcome: Outcome::Failure,
            },
            &e,
        );
        assert_eq!(s, stay(Effect::Dropped));
    }

    #[test]
    fn trip_for_opens_for_exactly_the_period_even_when_open() {
        let w = tripped(Word::INITIAL);
        let (w, _) = apply(w, Op::TripFor { ms: 5_000 }, &env(100));
        assert_eq!(w.state(), State::Open);
        assert_eq!(w.until_remaining(100), 5_000);
        assert!(!w.until_passed(5_099));
        assert!(w.until_passed(5_100));
    }

    #[test]
    fn backoff_doubles_on_re_trip_caps_and_resets_on_close() {
        let mut e = env(0);
        e.p.backoff_max_ms = Some(5_000);
        let mut w = Word::INITIAL;
        for _ in 0..3 {
            w = fail(w, &e).0;
        }
        let mut now = 0;
        let mut periods = [0; 5];
        for p in periods.iter_mut() {
            *p = w.until_remaining(now);
            now += *p;
            e.now = now;
            w = apply(w, Op::Acquire, &e).0;
            assert_eq!(w.state(), State::HalfOpen);
            w = fail(w, &e).0;
        }
        assert_eq!(periods, [1_000, 2_000, 4_000, 5_000, 5_000]);
        w = apply(w, Op::Close, &e).0;
        assert_eq!(w.level(), 0);
    }

    #[test]
    fn jitter_is_bounded_and_fixed_per_trip() {
        let mut p = params();
        p.backoff_max_ms = Some(60_000);
        p.jitter_percent = 20;
        let (mut lo, mut hi) = (u64::MAX, 0);
        for now in 0..200u64 {
            let a = open_period(&p, 1, now * 7919, 3);
            assert_eq!(a, open_period(&p, 1, now * 7919, 3));
            assert!((1_600..=2_000).contains(&a), "{a}");
            (lo, hi) = (lo.min(a), hi.max(a));
        }
        // The draws spread over the whole jitter range, not a corner of it.
        assert!(lo < 1_650 && hi > 1_950, "{lo}..{hi}");
        // Trips at the same instant in different generations draw differently.
        assert_ne!(open_period(&p, 1, 5_000, 3), open_period(&p, 1, 5_000, 4));
    }

    #[test]
    fn scale_is_exact_below_the_longest_period() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let periods = [0, 1, 0xFFFF, 0x1_0000, MAX_PERIOD_MS as u32, (1 << 27) - 1];
        let fracs = [0, 1, 655, 0x8000, 65_500, 0xFFFF];
        let pairs = periods
            .iter()
            .flat_map(|&p| fracs.iter().map(move |&f| (p, f)))
            .chain((0..if cfg!(miri) { 1_000 } else { 100_000 }).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x as u32) >> 5, (x >> 48) as u32)
            }));
        for (p, f) in pairs {
            assert_eq!(scale(p, f) as u64, (p as u64 * f as u64) >> 16, "{p} {f}");
            assert!(scale(p, f) <= p);
        }
    }

    /// The 32-bit `open_period` against the same formula in 64-bit arithmetic (the backoff part
    /// is the 64-bit code it replaced), for every level, cap and jitter the configuration allows
    /// (and levels past the field's width).
    #[test]
    fn open_period_matches_the_64_bit_formula() {
        fn reference(p: &Params, level: u32, now: u64, gen: u16) -> u64 {
            let Some(max) = p.backoff_max_ms else {
                return p.reset_timeout_ms;
            };
            let grown = p
                .reset_timeout_ms
                .checked_shl(level)
                .filter(|g| g >> level == p.reset_timeout_ms)
                .unwrap_or(u64::MAX);
            let period = grown.min(max).min(MAX_PERIOD_MS);
            if p.jitter_percent == 0 || period == 0 {
                return period;
            }
            let mut z = (now as u32) ^ ((now >> 32) as u32).rotate_left(16) ^ ((gen as u32) << 16);
            z ^= p.salt as u32 ^ (p.salt >> 32) as u32;
            z ^= z >> 16;
            z = z.wrapping_mul(0x7FEB_352D);
            z ^= z >> 15;
            z = z.wrapping_mul(0x846C_A68B);
            z ^= z >> 16;
            let frac = ((z >> 16) as u64 * (p.jitter_percent as u64 * 655)) >> 16;
            period - ((period * frac) >> 16)
        }
        let mut p = params();
        p.salt = 0xDEAD_BEEF_0BAD_F00D;
        for reset in [0, 1, 999, 1_000, 60_000, MAX_PERIOD_MS / 3, MAX_PERIOD_MS] {
            for max in [reset, reset + 1, 5_000.max(reset), MAX_PERIOD_MS] {
                for jitter in [0, 1, 20, 50, 99, 100] {
                    // Under miri, fewer levels (it runs about a thousand times slower).
                    let levels = if cfg!(miri) { 9 } else { 40 };
                    for level in 0..=levels {
                        for (now, gen) in [(0, 0), (12_345, 7), (u64::MAX - 5, 65_535)] {
                            p.reset_timeout_ms = reset;
                            p.backoff_max_ms = Some(max);
                            p.jitter_percent = jitter;
                            assert_eq!(
                                open_period(&p, level, now, gen),
                                reference(&p, level, now, gen),
                                "{reset} {max} {jitter} {level} {now}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generation_bumps_on_every_state_change() {
        let e = env(0);
        let mut w = Word::INITIAL;
        let ops = [
            Op::Open,
            Op::HalfOpen,
            Op::Close,
            Op::ForceOpen,
            Op::Disable,
            Op::Close,
        ];
        for (i, op) in ops.iter().enumerate() {
            w = apply(w, *op, &e).0;
            assert_eq!(w.generation() as usize, (i + 1) % GENERATIONS as usize);
        }
    }
}
