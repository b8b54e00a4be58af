//! [`CircuitBreaker`]: the state word, the one CAS helper, management and monitoring.
//!
//! # Memory ordering
//! | operation | ordering | why |
//! |---|---|---|
//! | load of the state word | `Acquire` | pairs with the `Release` half of every CAS, so a caller that sees a state also sees what the thread that made it did before (for example the trial call's writes when it closed the breaker). On x86 this is a plain load. |
//! | CAS of the state word | `AcqRel` / `Acquire` on failure | the same pairing in both directions; a failed CAS re-reads the word |
//! | configuration (`fail_max`, `reset_timeout`, `success_threshold`) | `Relaxed` | independent values; no other data is published through them |
//! | `opened_at` | `Relaxed` | monitoring only: written after the CAS that opened, never read by a decision |
//! | listener table | see `listeners.rs` | |
//!
//! All decisions are made on the state word alone, so a single location's coherence order is
//! what makes the machine correct; the orderings above only add happens-before for users.

use core::cell::Cell;
use core::fmt;
use core::time::Duration;

use crate::clock::Clock;
use crate::config::{self, duration_ms, Config, ConfigError};
use crate::error::Rejected;
use crate::event::{Event, EventKind, Interest, Listener};
use crate::listeners::{self, ListenerId, ListenerTableFull, Listeners};
use crate::machine::{
    self, closed_admit, closed_success_is_noop, open_rejects, Effect, Env, Op, Params, PeriodFn,
    Step, Transition,
};
use crate::permit::{Permit, Recorded};
use crate::rate::{self, RateParams, Verdict, WindowCell};
use crate::snapshot::Snapshot;
use crate::state::{Outcome, State};
use crate::sync::{loom_const_fn, AtomicU32, AtomicU64, Ordering};
use crate::word::{self, Word};

/// A lock-free circuit breaker whose whole state is one `AtomicU64`.
///
/// `C` is the [`Clock`]; `L` is the capacity of the listener table (default 4, at most
/// [`MAX_LISTENERS`](crate::MAX_LISTENERS) = 8; a larger `L` does not compile:
///
/// ```compile_fail
/// use atomic_breaker::{CircuitBreaker, Config, ManualClock};
/// // error: the listener capacity L is at most 8
/// let b = CircuitBreaker::<_, 9>::new("big", Config::new(), ManualClock::new());
/// ```
///
/// Every method takes `&self`, so a breaker can be a `static` shared by every thread:
///
/// ```
/// # #[cfg(feature = "std")] {
/// use atomic_breaker::{CircuitBreaker, Config, StdClock};
///
/// static DB: CircuitBreaker<StdClock> = CircuitBreaker::new("db", Config::new(), StdClock);
///
/// let rows = DB.call(|| Ok::<_, std::io::Error>(vec![1, 2, 3]));
/// assert_eq!(rows.unwrap(), vec![1, 2, 3]);
/// # }
/// ```
pub struct CircuitBreaker<C, const L: usize = 4> {
    word: AtomicU64,
    /// Monitoring only: `1 + ms` of the latest move into Open, 0 before any.
    opened_at: AtomicU64,
    /// `ARMED_AT` (see `word.rs`, "Time"): the largest clock reading from which a deadline was
    /// set, raised before the CAS that installs it. Read only to confirm a deadline that reads
    /// as pending, so that a breaker left alone for days still reads a passed deadline as
    /// passed.
    armed_at: AtomicU64,
    fail_max: AtomicU32,
    success_threshold: AtomicU32,
    /// At most `MAX_PERIOD` (24 h, < 2^27 ms), so 32 bits: a 64-bit atomic load is a critical
    /// section on most microcontrollers.
    reset_timeout_ms: AtomicU32,
    half_open_max_calls: u32,
    lease_ms: u64,
    backoff_max_ms: Option<u64>,
    jitter_percent: u8,
    /// `machine::open_period`, or `machine::fixed_period` without backoff: chosen in `build`,
    /// so a `static` breaker without backoff links no backoff or jitter code (flash).
    open_period: PeriodFn,
    name: &'static str,
    listeners: Listeners<L>,
    clock: C,
    /// Failure-rate mode: its numbers and its code, or `None` in consecutive mode. The code is
    /// reached only through this pointer, so a firmware whose breakers are all consecutive (and
    /// built in `const`) does not link it.
    rate: Option<(RateParams, RateHook<C, L>)>,
    /// Rate mode's window of the last calls (see `rate.rs`); unused in consecutive mode.
    window: WindowCell,
}

/// Rate mode's entry point: every rate-mode operation goes through it. Scalar arguments, passed
/// in registers, keep the call sites in the shared paths a few instructions long.
type RateHook<C, const L: usize> = fn(
    &CircuitBreaker<C, L>,
    RateOp,
    u16,
    Outcome,
    u32,
    Option<&dyn fmt::Debug>,
) -> (Recorded, u32);

/// What the rate-mode entry point is asked to do, with its `(gen, outcome, x)` arguments.
#[derive(Clone, Copy)]
enum RateOp {
    /// A report of generation `gen`; `x` is the permit's `observed` (the answer's `Recorded`).
    Report,
    /// `close()` (the answer's `u32`: 1 if the state changed).
    Close,
    /// `fail_counter` as of the state word whose generation is `gen` and whose low 32 bits are
    /// `x` (the answer's `u32`).
    FailCounter,
    /// The breaker left a Closed period for generation `gen`: empty the window.
    Leave,
}

impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    loom_const_fn! {
        /// A closed breaker named `name`, reading time from `clock`.
        ///
        /// Never reads the clock, so it can initialise a `static`.
        ///
        /// # Panics
        /// If `config` is invalid (see [`Config::validate`]). In a `const` or `static` this is
        /// a compile-time error; use [`try_new`](Self::try_new) for configurations built at
        /// run time.
        ///
        /// ```compile_fail
        /// use atomic_breaker::{CircuitBreaker, Config, StdClock};
        /// // error: fail_max must be between 1 and 127
        /// static BAD: CircuitBreaker<StdClock> =
        ///     CircuitBreaker::new("bad", Config::new().fail_max(0), StdClock);
        /// ```
        pub fn new(name: &'static str, config: Config, clock: C) -> Self {
            if let Err(e) = config.validate() {
                panic!("{}", e.message());
            }
            Self::build(name, config, clock)
        }
    }

    loom_const_fn! {
        /// Like [`new`](Self::new), but returns the configuration error instead of panicking.
        ///
        /// On an error the clock is not dropped but forgotten (`core::mem::forget`): a `const fn`
        /// cannot run a generic destructor. The clocks of this crate have no destructor; if
        /// yours owns a resource, call [`Config::validate`] first, or pass the clock by
        /// reference.
        pub fn try_new(name: &'static str, config: Config, clock: C) -> Result<Self, ConfigError> {
            if let Err(e) = config.validate() {
                // A `const fn` cannot drop a generic value; the clock is simply not kept.
                core::mem::forget(clock);
                return Err(e);
            }
            Ok(Self::build(name, config, clock))
        }
    }

    loom_const_fn! {
        /// Builds from a configuration already validated.
        fn build(name: &'static str, config: Config, clock: C) -> Self {
            let (backoff_max_ms, jitter_percent, open_period) = match config.backoff {
                Some(b) => (
                    Some(duration_ms(b.max)),
                    b.jitter_percent,
                    machine::open_period as PeriodFn,
                ),
                None => (None, 0, machine::fixed_period as PeriodFn),
            };
            // A `match`: `Option::map` is not `const` (clippy sees the plain fn under loom).
            #[allow(clippy::manual_map)]
            let rate = match config.failure_rate {
                Some(r) => Some((r.params(), Self::rate_hook as RateHook<C, L>)),
                None => None,
            };
            CircuitBreaker {
                // Rate mode keeps the `CALL_EVENTS` bit set: every call takes the slow paths.
                word: AtomicU64::new(Word::INITIAL.with_call_events(rate.is_some()).0),
                opened_at: AtomicU64::new(0),
                armed_at: AtomicU64::new(0),
                fail_max: AtomicU32::new(config.fail_max),
                success_threshold: AtomicU32::new(config.success_threshold),
                reset_timeout_ms: AtomicU32::new(duration_ms(config.reset_timeout) as u32),
                half_open_max_calls: config.half_open_max_calls,
                lease_ms: duration_ms(config.trial_lease),
                backoff_max_ms,
                jitter_percent,
                open_period,
                name,
                listeners: Listeners::new(),
                clock,
                rate,
                window: WindowCell::new(),
            }
        }
    }

    loom_const_fn! {
        /// Adds a listener during construction; listeners run in the order they were added.
        ///
        /// The listener gets every event ([`Interest::ALL`]); see
        /// [`with_listener_for`](Self::with_listener_for) to subscribe to fewer.
        ///
        /// # Panics
        /// If the table (capacity `L`) is full. In a `const` or `static` this is a compile-time
        /// error; at run time use [`add_listener`](Self::add_listener).
        pub fn with_listener(self, f: Listener) -> Self {
            self.with_listener_for(Interest::ALL, f)
        }
    }

    loom_const_fn! {
        /// Adds a listener during construction that gets only the events `interest` names.
        /// Without [`Interest::CALLS`] it costs nothing on the closed path.
        ///
        /// # Panics
        /// If the table (capacity `L`) is full, as [`with_listener`](Self::with_listener).
        pub fn with_listener_for(mut self, interest: Interest, f: Listener) -> Self {
            self.listeners = self.listeners.with(f, interest);
            if interest.contains(Interest::CALLS) {
                // The breaker is owned here, so no other thread sees the word: set the bit in place.
                let w = core::mem::replace(&mut self.word, AtomicU64::new(0)).into_inner();
                self.word = AtomicU64::new(Word(w).with_call_events(true).0);
            }
            self
        }
    }

    // ---------------------------------------------------------------- calling

    /// Asks to run one call. A [`Permit`] means go ahead and report how it went; a
    /// [`Rejected`] means the call must not run.
    ///
    /// Report before any early return: a `?` between `allow` and the report drops the permit
    /// unreported, which counts nothing (see [`Permit`]).
    ///
    /// On the closed path this is one atomic load and one masked compare of the state word
    /// (Closed, and no listener subscribed to per-call events), plus, only when some listener
    /// wants per-call events, their `BeforeCall` dispatch.
    #[inline]
    pub fn allow(&self) -> Result<Permit<'_, C, L>, Rejected> {
        // The closed path inline: one load and one masked compare (see `Word::is_closed_quiet`).
        let w = self.load();
        if w.is_closed_quiet() {
            return Ok(Permit::new(
                self,
                w.generation(),
                false,
                listeners::NONE_CALLED,
            ));
        }
        // The slow path answers in registers (`Slow`, one `u64`), not through memory: returning
        // the whole `Result<Permit, Rejected>` made the closed path above store the permit to
        // the stack on every call, for the two arms to meet.
        let slow = self.allow_slow(w);
        if slow.is_admitted() {
            Ok(Permit::new(self, slow.gen(), slow.trial(), slow.low()))
        } else {
            Err(self.rejected(slow))
        }
    }

    /// Every other case: Closed with per-call listeners (dispatch `BeforeCall`, in this small
    /// frame), else [`allow_machine`](Self::allow_machine). `w` is the word `allow` loaded.
    #[inline(never)]
    #[cold]
    fn allow_slow(&self, w: Word) -> Slow {
        if let Some(gen) = closed_admit(w) {
            return Slow::admitted(gen, false, self.emit_before_call());
        }
        self.allow_machine(w)
    }

    /// An Open breaker whose period runs (one clock read, no machine), else the machine and
    /// the CAS helper. Out of line where 64-bit atomics are native (servers), so that the
    /// per-call listeners' closed path above does not pay for this frame; inlined elsewhere
    /// (microcontrollers), where one function is smaller (flash).
    #[cfg_attr(target_has_atomic = "64", inline(never))]
    #[cfg_attr(not(target_has_atomic = "64"), inline(always))]
    fn allow_machine(&self, w: Word) -> Slow {
        // One rejection site for both ways to be rejected: the event is built once (flash).
        let (state, retry_after_ms) = 'rejected: {
            if w.state() == State::Open {
                let now = self.clock.now_ms();
                if let Some(ms) = open_rejects(w, now, |now| self.armed_long_ago(now)) {
                    break 'rejected (State::Open, Some(ms));
                }
            }
            let (old, step, now) = self.apply(Op::Acquire);
            match step.effect {
                Effect::Admitted { gen, trial } => {
                    self.after_change(old, &step, now);
                    // Out of line here (a trial's admission is rare): one inlined copy is enough.
                    let observed = if self.listeners.is_empty() {
                        listeners::NONE_CALLED
                    } else {
                        self.dispatch(EventKind::BeforeCall, listeners::ALL)
                    };
                    return Slow::admitted(gen, trial, observed);
                }
                Effect::Rejected { retry_after_ms } => (old.state(), retry_after_ms),
                // `Acquire` yields only the two effects above.
                _ => (old.state(), None),
            }
        };
        let refusal = Slow::refused(state, retry_after_ms);
        // The `Duration` is made inside the check: with a table of capacity 0 it is not made.
        if !self.listeners.is_empty() {
            self.dispatch(
                EventKind::Rejected {
                    state,
                    retry_after: refusal.retry_after(),
                },
                listeners::ALL,
            );
        }
        refusal
    }

    /// The [`Rejected`] error of a refusal. Inlined: out of line, its `Rejected` came back
    /// through memory and the closed path in `allow` stored the permit there too (five stores a
    /// call); on thumbv6m and thumbv7m inlining it is also smaller (by about 90 bytes).
    #[inline(always)]
    fn rejected(&self, r: Slow) -> Rejected {
        Rejected {
            name: self.name,
            state: r.state(),
            retry_after: r.retry_after(),
        }
    }

    /// Runs `f` if the breaker admits it: `Ok` counts as a success, `Err` as a failure.
    ///
    /// A rejected call returns [`Error::Rejected`](crate::Error::Rejected) without running `f`;
    /// an executed failure returns [`Error::Failed`](crate::Error::Failed) with the caller's
    /// error and whether this call tripped the breaker.
    ///
    /// With the feature `std`, the error is lent to the listeners'
    /// [`Failure`](EventKind::Failure) event as a `&dyn Debug`, hence `E: Debug` (required
    /// with or without `std`, so that features stay additive): nothing is copied or allocated,
    /// and without a listener that wants per-call events nothing reads it. Without `std` no
    /// error is lent (it would link `E`'s `Debug` into the firmware); use
    /// [`Permit::failure_with`] to lend one. For an error type without `Debug`, use
    /// [`allow`](Self::allow) and [`Permit::failure`].
    #[inline]
    pub fn call<T, E: fmt::Debug>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, crate::Error<E>> {
        self.call_with(Outcome::of, f)
    }

    /// Runs `f` if the breaker admits it and counts the result as `classify` says.
    ///
    /// This is where PyBreaker's excluded exceptions go: return [`Outcome::Ignored`] for errors
    /// that say nothing about the dependency's health, or [`Outcome::Success`] for PyBreaker's
    /// exact behaviour (an excluded error resets the failure count). The caller's `Err` is
    /// returned either way.
    #[inline]
    pub fn call_with<T, E: fmt::Debug>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, crate::Error<E>> {
        let permit = match self.allow() {
            Ok(permit) => permit,
            Err(rejected) => return Err(crate::Error::Rejected(rejected)),
        };
        let result = f();
        let outcome = classify(&result);
        match result {
            Ok(value) => {
                permit.report(outcome);
                Ok(value)
            }
            Err(error) => {
                let recorded = permit.report_error(outcome, &error);
                Err(crate::Error::Failed {
                    error,
                    tripped: recorded == Recorded::Tripped,
                })
            }
        }
    }

    /// Reports the outcome of a call admitted in generation `gen`; used by [`Permit`].
    /// `observed` is what the call's `BeforeCall` dispatch returned: the highest listener
    /// sequence number it called, 0 if none. The outcome event goes only to listeners up to it,
    /// so none sees an outcome without its `BeforeCall`.
    #[inline]
    pub(crate) fn finish(&self, gen: u16, outcome: Outcome, observed: u32) -> Recorded {
        self.finish_with(gen, outcome, observed, None)
    }

    /// [`finish`](Self::finish) with the caller's error for the `Failure` or `Ignored` event
    /// (ignored for a success). Handing it over costs a pointer pair; it is read only by a
    /// listener that wants per-call events.
    #[inline]
    pub(crate) fn finish_with(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        // The closed path inline: a success with nothing to reset and no per-call listener is
        // one load and one masked compare (see `Word::is_quiet_success`).
        if outcome == Outcome::Success && self.load().is_quiet_success(gen, observed) {
            return Recorded::Counted;
        }
        self.finish_slow(gen, outcome, observed, error)
    }

    /// Every other report: rate mode's hook, else [`finish_machine`](Self::finish_machine).
    #[inline(never)]
    #[cold]
    fn finish_slow(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        if let Some((_, hook)) = self.rate {
            return hook(self, RateOp::Report, gen, outcome, observed, error).0;
        }
        self.finish_machine(gen, outcome, observed, error)
    }

    /// A report through the machine (every report in consecutive mode; in rate mode, those that
    /// do not find the breaker Closed in their generation). A closed success with per-call
    /// listeners writes nothing: its event, in this frame; every other report goes to
    /// [`finish_apply`](Self::finish_apply).
    #[inline(always)]
    fn finish_machine(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        if outcome == Outcome::Success && closed_success_is_noop(self.load(), gen) {
            return self.closed_success(observed);
        }
        self.finish_apply(gen, outcome, observed, error)
    }

    /// A closed success that writes nothing: its `Success` event, if anyone saw the call's
    /// `BeforeCall`. In its own small frame where 64-bit atomics are native (servers), like
    /// `allow_slow`'s `BeforeCall`; inlined elsewhere (flash).
    #[cfg_attr(target_has_atomic = "64", inline(never))]
    #[cfg_attr(not(target_has_atomic = "64"), inline(always))]
    fn closed_success(&self, observed: u32) -> Recorded {
        if self.wants_outcome(observed) {
            // A success that writes nothing leaves no failure on record (consecutive mode: the
            // count was 0; rate mode never gets here for a current Closed report).
            self.dispatch_call_event(EventKind::Success { failures: 0 }, observed);
        }
        Recorded::Counted
    }

    /// A report through the CAS helper, with its events. Out of line where 64-bit atomics are
    /// native (servers), so that a per-call listener's closed success does not pay for this
    /// frame; inlined elsewhere (microcontrollers), where one function is smaller (flash), as
    /// [`allow_machine`](Self::allow_machine).
    #[cfg_attr(target_has_atomic = "64", inline(never))]
    #[cfg_attr(not(target_has_atomic = "64"), inline(always))]
    fn finish_apply(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        let (old, step, now) = self.apply(Op::Report { gen, outcome });
        // The event is built only when it goes somewhere: `failures_at` may call the rate hook,
        // which the compiler cannot drop, so a table of capacity 0 must not reach it.
        if self.wants_outcome(observed) {
            let kind = match outcome {
                Outcome::Success => EventKind::Success {
                    failures: self.failures_at(step.next.unwrap_or(old)),
                },
                Outcome::Failure => EventKind::Failure {
                    failures: self.failures_at(step.next.unwrap_or(old)),
                    error,
                },
                Outcome::Ignored => EventKind::Ignored { error },
            };
            self.dispatch(kind, observed);
        }
        self.after_change(old, &step, now);
        match step.effect {
            Effect::Recorded { tripped: true, .. } => Recorded::Tripped,
            Effect::Recorded { closed: true, .. } => Recorded::Closed,
            Effect::Recorded { .. } => Recorded::Counted,
            _ => Recorded::Dropped,
        }
    }

    /// Gives back a trial slot admitted in generation `gen`; used by [`Permit`]'s `Drop`.
    pub(crate) fn release(&self, gen: u16) {
        let _ = self.apply(Op::Release { gen });
    }

    // ---------------------------------------------------------------- management

    /// Opens the breaker for one open period (backed off if configured). A no-op, with no
    /// event and no extension of the period, when it is already Open. Returns whether the
    /// state changed.
    pub fn open(&self) -> bool {
        self.manage(Op::Open)
    }

    /// Closes the breaker and resets every counter; releases ForcedOpen and Disabled. On a
    /// breaker already Closed it clears the failure count (as PyBreaker's `close()` does) without
    /// an event. Returns whether the state changed.
    ///
    /// In failure-rate mode, closing a Closed breaker starts a new generation (and so a new,
    /// empty window): reports of calls admitted before count nothing.
    pub fn close(&self) -> bool {
        if let Some((_, hook)) = self.rate {
            return hook(self, RateOp::Close, 0, Outcome::Ignored, 0, None).1 != 0;
        }
        self.manage(Op::Close)
    }

    /// Moves to HalfOpen with no trial in flight, so the next callers are trials. A no-op when
    /// already HalfOpen.
    pub fn half_open(&self) -> bool {
        self.manage(Op::HalfOpen)
    }

    /// Opens the breaker for exactly `d` from now (for example a server's `Retry-After`),
    /// whatever the state; an Open breaker gets the new deadline. Like [`open`](Self::open), it
    /// is a manual move: it leaves [`force_open`](Self::force_open) and
    /// [`disable`](Self::disable) too. `d` of at most [`MAX_PERIOD`](crate::MAX_PERIOD) (24 h);
    /// longer is [`ConfigError::TripPeriod`].
    pub fn trip_for(&self, d: Duration) -> Result<(), ConfigError> {
        let ms = duration_ms(d);
        if ms > config::MAX_PERIOD.as_millis() as u64 {
            return Err(ConfigError::TripPeriod(d));
        }
        self.manage(Op::TripFor { ms });
        Ok(())
    }

    /// Rejects every call until [`close`](Self::close), [`open`](Self::open),
    /// [`half_open`](Self::half_open), [`trip_for`](Self::trip_for) or
    /// [`disable`](Self::disable): every other manual move leaves it. Returns whether the state
    /// changed.
    pub fn force_open(&self) -> bool {
        self.manage(Op::ForceOpen)
    }

    /// Admits every call and records nothing until [`close`](Self::close) (or another manual
    /// move). Returns whether the state changed.
    pub fn disable(&self) -> bool {
        self.manage(Op::Disable)
    }

    fn manage(&self, op: Op) -> bool {
        self.manage_with(op).1.effect == Effect::Changed
    }

    // ---------------------------------------------------------------- configuration

    /// Consecutive failures that trip the breaker.
    pub fn fail_max(&self) -> u32 {
        self.fail_max.load(Ordering::Relaxed)
    }

    /// Changes `fail_max` at run time. A count already at or above the new value trips on the
    /// next failure.
    pub fn set_fail_max(&self, n: u32) -> Result<(), ConfigError> {
        config::check_fail_max(n)?;
        self.fail_max.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// The open period before backoff.
    pub fn reset_timeout(&self) -> Duration {
        config::ms_to_duration(u64::from(self.reset_timeout_ms.load(Ordering::Relaxed)))
    }

    /// Changes `reset_timeout` at run time. It applies from the next trip: the deadline of an
    /// open period already running is in the state word and does not move (use
    /// [`trip_for`](Self::trip_for) to move it).
    pub fn set_reset_timeout(&self, d: Duration) -> Result<(), ConfigError> {
        let ms = config::check_reset_timeout(d)?;
        if let Some(max) = self.backoff_max_ms {
            if ms > max {
                return Err(ConfigError::ResetTimeout(d));
            }
        }
        // `check_reset_timeout` bounds `ms` by `MAX_PERIOD`: it fits.
        self.reset_timeout_ms.store(ms as u32, Ordering::Relaxed);
        Ok(())
    }

    /// Trial successes that close the breaker.
    pub fn success_threshold(&self) -> u32 {
        self.success_threshold.load(Ordering::Relaxed)
    }

    /// Changes `success_threshold` at run time; a half-open breaker closes on the next success
    /// if it already has this many.
    pub fn set_success_threshold(&self, n: u32) -> Result<(), ConfigError> {
        config::check_success_threshold(n)?;
        self.success_threshold.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// Trial calls admitted at once in half-open.
    pub fn half_open_max_calls(&self) -> u32 {
        self.half_open_max_calls
    }

    /// The breaker's name, as given to the constructor and carried by every event.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The breaker's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    // ---------------------------------------------------------------- monitoring

    /// The current state (PyBreaker's `current_state`). An Open breaker whose period has passed
    /// reads Open until a caller moves it to HalfOpen.
    pub fn state(&self) -> State {
        self.load().state()
    }

    /// Consecutive failures counted while Closed; while Open, the failures that tripped it
    /// (0 after a manual open, 1 after a failed half-open trial). 0 in the other states.
    ///
    /// In failure-rate mode: while Closed, the failures among the calls in the window; while
    /// Open, the failures in the window that tripped it (or 0 and 1 as above).
    ///
    /// Not PyBreaker's `fail_counter`, which keeps counting through Open and HalfOpen (it reads
    /// `fail_max + 1` after a failed trial) and is reset only by a success or `close()`.
    pub fn fail_counter(&self) -> u32 {
        let w = self.load();
        if let Some((_, hook)) = self.rate {
            return hook(
                self,
                RateOp::FailCounter,
                w.generation(),
                Outcome::Ignored,
                w.0 as u32,
                None,
            )
            .1;
        }
        match w.state() {
            State::Closed | State::Open => w.count(),
            _ => 0,
        }
    }

    /// Trial successes counted in HalfOpen; 0 in the other states.
    pub fn success_counter(&self) -> u32 {
        let w = self.load();
        if w.state() == State::HalfOpen {
            w.count()
        } else {
            0
        }
    }

    /// Trial calls admitted in HalfOpen and not yet reported.
    pub fn trial_calls(&self) -> u32 {
        let w = self.load();
        if w.state() == State::HalfOpen {
            w.in_flight()
        } else {
            0
        }
    }

    /// When the breaker last opened, in ms on its clock, while it is Open or HalfOpen.
    ///
    /// Monitoring only: it is written just after the atomic update that opened the breaker, so
    /// for an instant after a trip it can still show the previous opening.
    pub fn opened_at(&self) -> Option<u64> {
        self.opened_at_for(self.load())
    }

    /// While Open: how long until a call may be admitted as a trial; `Some(ZERO)` once the period
    /// has passed but no caller has moved the breaker to HalfOpen yet. `None` in every other
    /// state (ForcedOpen included: time alone will not admit a call there).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_for(self.load())
    }

    /// Every monitored value at once, decoded from a single load of the state word.
    /// (In failure-rate mode, `fail_counter` while Closed also loads the window word.)
    pub fn snapshot(&self) -> Snapshot {
        let w = self.load();
        let count = w.count();
        let state = w.state();
        Snapshot {
            name: self.name,
            state,
            fail_counter: if let Some((_, hook)) = self.rate {
                let (gen, low) = (w.generation(), w.0 as u32);
                hook(self, RateOp::FailCounter, gen, Outcome::Ignored, low, None).1
            } else if matches!(state, State::Closed | State::Open) {
                count
            } else {
                0
            },
            success_counter: if state == State::HalfOpen { count } else { 0 },
            trial_calls: if state == State::HalfOpen {
                w.in_flight()
            } else {
                0
            },
            generation: w.generation(),
            backoff_level: w.level() as u8,
            retry_after: self.retry_after_for(w),
            opened_at: self.opened_at_for(w),
            fail_max: self.fail_max(),
            success_threshold: self.success_threshold(),
            half_open_max_calls: self.half_open_max_calls,
            reset_timeout: self.reset_timeout(),
        }
    }

    /// Listeners currently registered.
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// Listener calls that panicked and were caught (with `std`). The breaker's state was
    /// already final when they ran.
    pub fn listener_panics(&self) -> u32 {
        self.listeners.panics()
    }

    /// Adds a listener at run time; it runs after every listener added before it (two
    /// `add_listener` calls that overlap in time may run in either order).
    ///
    /// It hears every event dispatched after `add_listener` returns, except the outcomes
    /// (`Success`, `Failure`, `Ignored`) of calls admitted before: a listener never sees an
    /// outcome without that call's `BeforeCall` (the one exception: `add_listener` calls racing
    /// each other and the admission, see the `listeners` module). A refused add (a full table)
    /// changes nothing. Each successful add uses one of 2^32 - 2 sequence numbers of this
    /// breaker, never reused: once they are spent, every add is refused.
    ///
    /// The listener gets every event ([`Interest::ALL`]); see
    /// [`add_listener_for`](Self::add_listener_for) to subscribe to fewer.
    pub fn add_listener(&self, f: Listener) -> Result<ListenerId, ListenerTableFull> {
        self.add_listener_for(Interest::ALL, f)
    }

    /// Adds a listener at run time that gets only the events `interest` names, with the same
    /// guarantees as [`add_listener`](Self::add_listener). Without [`Interest::CALLS`] it costs
    /// nothing on the closed path; with it, every admitted call dispatches its `BeforeCall`
    /// and outcome.
    pub fn add_listener_for(
        &self,
        interest: Interest,
        f: Listener,
    ) -> Result<ListenerId, ListenerTableFull> {
        let id = self.listeners.add(f, interest)?;
        if interest.contains(Interest::CALLS) {
            self.sync_call_events();
        }
        Ok(id)
    }

    /// The id of the `n`-th listener (0 first) added in the constructor with
    /// [`with_listener`](Self::with_listener) or [`with_listener_for`](Self::with_listener_for),
    /// in the order of those calls; `None` if fewer were added. With it, a listener built into a
    /// `static` breaker can be removed like one added at run time. It stays the same for the
    /// breaker's life: after its listener is removed, it removes nothing (a listener added
    /// later in the same slot has another id).
    ///
    /// ```
    /// use atomic_breaker::{CircuitBreaker, Config, Event, ManualClock};
    ///
    /// fn audit(_: &Event) {}
    /// fn page(_: &Event) {}
    /// static CLOCK: ManualClock = ManualClock::new();
    /// static DB: CircuitBreaker<&ManualClock> = CircuitBreaker::new("db", Config::new(), &CLOCK)
    ///     .with_listener(audit)
    ///     .with_listener(page);
    ///
    /// let page_id = DB.const_listener_id(1).unwrap();
    /// assert!(DB.remove_listener(page_id));
    /// assert!(!DB.remove_listener(page_id));
    /// assert_eq!(DB.listener_count(), 1);
    /// assert_eq!(DB.const_listener_id(2), None);
    /// ```
    pub fn const_listener_id(&self, n: usize) -> Option<ListenerId> {
        self.listeners.const_id(n)
    }

    /// The ids of every listener added in the constructor, in the order they were added (see
    /// [`const_listener_id`](Self::const_listener_id)); removed ones included.
    pub fn const_listener_ids(&self) -> impl Iterator<Item = ListenerId> + '_ {
        (0..self.listeners.const_count()).filter_map(|n| self.listeners.const_id(n))
    }

    /// Removes a listener; `false` if `id` was already removed.
    ///
    /// Not a barrier: a dispatch that had already read the table's list of listeners (on another
    /// thread, or further up this thread's stack) may still call the removed listener once
    /// after this returns `true` (or, if a new listener has taken its slot meanwhile, that one
    /// in its place); no dispatch that starts later does. `id` must come from this
    /// breaker's [`add_listener`](Self::add_listener) or
    /// [`const_listener_id`](Self::const_listener_id): ids are per breaker, and another
    /// breaker's id may name, and remove, a listener here.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        let removed = self.listeners.remove(id);
        if removed {
            self.sync_call_events();
        }
        removed
    }

    /// Mirrors "some listener wants per-call events" into the state word's `CALL_EVENTS` bit,
    /// after an add or remove changed the table's count. The bit is written alone (an atomic OR
    /// or AND-NOT; the CAS helper's loops retry over it), then the count is read again: if it
    /// moved meanwhile, another add or remove raced this one, and the loop writes again. All of
    /// it `SeqCst`, so the write that comes last in the word's order was made by a thread whose
    /// later read of the count agreed with it: once adds and removes stop, the bit is right.
    /// While they race, a call may briefly miss (or pay for) per-call events.
    fn sync_call_events(&self) {
        loop {
            // Rate mode keeps the bit: its reports must all reach the slow path.
            let wants = self.listeners.wants_calls() || self.rate.is_some();
            if wants {
                self.word
                    .fetch_or(crate::word::CALL_EVENTS_MASK, Ordering::SeqCst);
            } else {
                self.word
                    .fetch_and(!crate::word::CALL_EVENTS_MASK, Ordering::SeqCst);
            }
            if (self.listeners.wants_calls() || self.rate.is_some()) == wants {
                return;
            }
        }
    }

    /// In failure-rate mode, the calls in the current window and how many of them failed
    /// (`(0, 0)` outside Closed: each Closed period starts a new window); `None` in
    /// consecutive mode.
    pub fn failure_window(&self) -> Option<(u32, u32)> {
        self.rate?;
        let (w, win) = (self.load(), self.window.load());
        if w.state() == State::Closed && win.tag() == w.generation() {
            Some((win.seen(), win.failures()))
        } else {
            Some((0, 0))
        }
    }

    // ---------------------------------------------------------------- rate mode

    /// Rate mode's code, reached only through the `rate` field's pointer (see `RateHook`).
    #[inline(never)]
    fn rate_hook(
        &self,
        op: RateOp,
        gen: u16,
        outcome: Outcome,
        x: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> (Recorded, u32) {
        let Some((p, _)) = self.rate else {
            return (Recorded::Dropped, 0);
        };
        match op {
            RateOp::Report => (self.finish_rate(gen, outcome, x, p, error), 0),
            RateOp::Close => {
                let (old, step, now) = self.apply_with(rate::RateClose);
                self.after_change(old, &step, now);
                self.leave_closed(old, &step);
                (Recorded::Counted, (step.effect == Effect::Changed) as u32)
            }
            RateOp::Leave => {
                self.window.reset(gen);
                (Recorded::Counted, 0)
            }
            RateOp::FailCounter => {
                // State and count are in the low 32 bits; the generation comes whole.
                (
                    Recorded::Counted,
                    self.rate_failures(Word(u64::from(x)), gen),
                )
            }
        }
    }

    /// A report in rate mode. Closed in the permit's generation: the window's CAS, then, if the
    /// window says so, the trip as one CAS of the state word (`rate::trip`). Otherwise (trials,
    /// stale permits, Disabled) the machine, exactly as in consecutive mode.
    fn finish_rate(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        p: RateParams,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        let w = self.load();
        if w.state() != State::Closed || w.generation() != gen {
            return self.finish_rate_machine(gen, outcome, observed, error);
        }
        // Asked only when the window's tag is not `gen`: is the breaker still Closed in `gen`
        // (so the window is older than this Closed period), or did it move on (so this report
        // is)? See `rate.rs`, "Generations".
        let verdict = self.window.update(gen, outcome, p, || {
            let w = self.load();
            w.state() == State::Closed && w.generation() == gen
        });
        if self.wants_outcome(observed) {
            // What `fail_counter` reads after this report: the failures that trip the breaker
            // (its count once Open), the window's failures, or, for a dropped report, whatever
            // the breaker reads now.
            let failures = match verdict {
                Verdict::Trip { failures } => failures,
                Verdict::Counted => self.window.load().failures_in(gen),
                Verdict::Dropped => {
                    let w = self.load();
                    self.rate_failures(w, w.generation())
                }
            };
            let kind = match outcome {
                Outcome::Success => EventKind::Success { failures },
                Outcome::Failure => EventKind::Failure { failures, error },
                Outcome::Ignored => EventKind::Ignored { error },
            };
            self.dispatch(kind, observed);
        }
        match verdict {
            Verdict::Counted => Recorded::Counted,
            Verdict::Dropped => Recorded::Dropped,
            Verdict::Trip { failures } => {
                let (old, step, now) = self.apply_with(rate::RateTrip { gen, failures });
                self.after_change(old, &step, now);
                self.leave_closed(old, &step);
                match step.effect {
                    Effect::Recorded { tripped: true, .. } => Recorded::Tripped,
                    // Another report tripped first, or the breaker moved: counted in the window.
                    _ => Recorded::Counted,
                }
            }
        }
    }

    /// Rate mode's `fail_counter` as of the word `w` (whose generation is `gen`): the window's
    /// failures while Closed, the failures that tripped it while Open, else 0.
    fn rate_failures(&self, w: Word, gen: u16) -> u32 {
        match w.state() {
            State::Closed => self.window.load().failures_in(gen),
            State::Open => w.count(),
            _ => 0,
        }
    }

    /// After a CAS of rate mode's own: if it ended the Closed period of `old` (a trip, or
    /// `close()` on a Closed breaker, which starts a new one), empty the window, tagged with the
    /// new generation. Its tag could otherwise outlive 65,536 generations untouched and match a
    /// later Closed period's, whose window would then start with the old outcomes; emptied,
    /// the window can hold only outcomes its own period's reports put there (a report of the
    /// old period that lands after this finds the new tag and the breaker moved on, and is
    /// dropped; one that lands before is erased here).
    fn leave_closed(&self, old: Word, step: &Step) {
        if let Some(new) = step.next {
            if old.state() == State::Closed && new.generation() != old.generation() {
                self.window.reset(new.generation());
            }
        }
    }

    /// Rate mode's reports through the machine, out of line: keeps the window path's frame
    /// small.
    #[inline(never)]
    fn finish_rate_machine(
        &self,
        gen: u16,
        outcome: Outcome,
        observed: u32,
        error: Option<&dyn fmt::Debug>,
    ) -> Recorded {
        self.finish_machine(gen, outcome, observed, error)
    }

    // ---------------------------------------------------------------- internals

    /// The state word's `CALL_EVENTS` bit, for the loom checks of `sync_call_events`.
    #[cfg(all(loom, test))]
    pub(crate) fn call_events_bit(&self) -> bool {
        self.load().call_events()
    }

    #[inline]
    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    fn opened_at_for(&self, w: Word) -> Option<u64> {
        match w.state() {
            State::Open | State::HalfOpen => self.opened_at.load(Ordering::Relaxed).checked_sub(1),
            _ => None,
        }
    }

    fn retry_after_for(&self, w: Word) -> Option<Duration> {
        if w.state() == State::Open {
            let now = self.clock.now_ms();
            let left = w
                .deadline_left(now, |now| self.armed_long_ago(now))
                .unwrap_or(0);
            Some(config::ms_to_duration(left))
        } else {
            None
        }
    }

    /// [`word::armed_long_ago`] with `ARMED_AT`, loaded `Relaxed` (it is raised before the CAS
    /// that installs a deadline, so a reader whose `Acquire` load saw that word sees at least
    /// that value). Out of line where 64-bit atomics are emulated: one copy of the emulated load
    /// and the 64-bit compare (flash).
    #[cfg_attr(not(target_has_atomic = "64"), inline(never))]
    fn armed_long_ago(&self, now: u64) -> bool {
        word::armed_long_ago(now, self.armed_at.load(Ordering::Relaxed))
    }

    /// Raises `ARMED_AT` to `now`, before the CAS that will install a deadline set from it, so
    /// that whoever sees the new word sees it too (see `word.rs`, "Time"); `Relaxed`: the CAS
    /// releases it. Out of line where 64-bit atomics are emulated, as [`armed_at`](Self::armed_at).
    #[cfg_attr(not(target_has_atomic = "64"), inline(never))]
    fn raise_armed_at(&self, now: u64) {
        self.armed_at.fetch_max(now, Ordering::Relaxed);
    }

    /// The one CAS helper. Runs the pure transition until its word is installed or it asks for
    /// no write. Returns the word it decided on, the step, and the clock reading if one was
    /// taken (the same reading is reused across retries: it is the time the operation began).
    #[inline(always)]
    fn apply(&self, op: Op) -> (Word, Step, Option<u64>) {
        self.apply_with(op)
    }

    /// [`apply`](Self::apply) with any pure step of the word (rate mode's trip and close, from
    /// `rate.rs`): the CAS loop itself.
    #[inline(always)]
    fn apply_with(&self, t: impl Transition) -> (Word, Step, Option<u64>) {
        let env = BreakerEnv {
            b: self,
            now: Cell::new(None),
        };
        let mut cur = self.load();
        loop {
            let step = t.step(cur, &env);
            let Some(next) = step.next else {
                return (cur, step, env.now.get());
            };
            match self.word.compare_exchange_weak(
                cur.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (cur, step, env.now.get()),
                Err(actual) => cur = Word(actual),
            }
        }
    }

    /// The failure count of word `old`, as `fail_counter` would read it: in rate mode a
    /// Closed word's failures are in the window (through the rate hook, so consecutive mode
    /// links no window code).
    fn failures_at(&self, old: Word) -> u32 {
        match self.rate {
            Some((_, hook)) if old.state() == State::Closed => {
                hook(
                    self,
                    RateOp::FailCounter,
                    old.generation(),
                    Outcome::Ignored,
                    old.0 as u32,
                    None,
                )
                .1
            }
            _ => failures_of(old),
        }
    }

    /// After a successful CAS (or a decision to write nothing): records the opening time and
    /// fires the state-change event, exactly once, on this thread.
    fn after_change(&self, old: Word, step: &Step, now: Option<u64>) {
        let Some(new) = step.next else { return };
        // Every word written in Open is an opening: a trip, a failed trial, `open()`, or
        // `trip_for` (which re-opens an Open breaker). A report or release in Open writes nothing.
        let mut opened = None;
        if new.state() == State::Open {
            let now = now.unwrap_or_else(|| self.clock.now_ms());
            self.opened_at
                .store(now.saturating_add(1), Ordering::Relaxed);
            opened = Some(now);
        }
        // The event's fields are computed only when a listener is there to get them: with a
        // table of capacity 0 this whole block, and the ms-to-`Duration` conversion, is dropped.
        if new.state() != old.state() && !self.listeners.is_empty() {
            let retry_after = opened.map(|now| config::ms_to_duration(new.until_remaining(now)));
            self.dispatch(
                EventKind::StateChange {
                    from: old.state(),
                    to: new.state(),
                    failures: self.failures_at(old).max(failures_of(new)),
                    retry_after,
                },
                listeners::ALL,
            );
        }
    }

    /// Dispatches a call's `BeforeCall`; returns the highest listener sequence number called
    /// ([`listeners::NONE_CALLED`] if none), for the permit to hand back with the outcome.
    #[inline(always)]
    fn emit_before_call(&self) -> u32 {
        // No emptiness check first: the dispatch's one load of the plan is that check.
        if L == 0 {
            return listeners::NONE_CALLED;
        }
        self.dispatch_call_event(EventKind::BeforeCall, listeners::ALL)
    }

    /// Whether a call's outcome event goes to anyone: some listener saw its `BeforeCall` (a
    /// table of capacity 0 never has one, and the check compiles to nothing).
    #[inline]
    fn wants_outcome(&self, observed: u32) -> bool {
        L != 0 && observed != listeners::NONE_CALLED
    }

    /// Builds the event in the caller's frame and calls the table's dispatch (out of line, so
    /// the hot paths keep only the emptiness check). Returns the highest sequence number called.
    /// Inlined: out of line, the `EventKind` written by the caller with narrow stores was read
    /// back with 16-byte loads to build the `Event`, a store-forwarding stall that was most of a
    /// per-call dispatch's time (`perf`, `closed_path/ours_allow_success_1_listener`).
    #[inline(always)]
    fn dispatch(&self, kind: EventKind<'_>, upto: u32) -> u32 {
        self.listeners.dispatch(
            &Event {
                name: self.name,
                kind,
            },
            upto,
        )
    }

    /// [`dispatch`](Self::dispatch) of a per-call event with the table's loop inlined: for the
    /// closed path's `BeforeCall` and `Success` only (flash: one copy each).
    #[inline(always)]
    fn dispatch_call_event(&self, kind: EventKind<'_>, upto: u32) -> u32 {
        self.listeners.dispatch_call_event(
            &Event {
                name: self.name,
                kind,
            },
            upto,
        )
    }
}

// ---------------------------------------------------------------- saved state

/// What `saved.rs` ([`SavedState`](crate::SavedState), `restore`) needs of the private fields:
/// kept apart from the operations above, which it does not touch.
impl<C: Clock, const L: usize> CircuitBreaker<C, L> {
    /// One load of the state word and, in Open and HalfOpen, the time left on its deadline as
    /// [`retry_after`](Self::retry_after) reads it (0 once passed, or in the other states).
    pub(crate) fn word_and_time_left(&self) -> (Word, u64) {
        let w = self.load();
        let left = match w.state() {
            State::Open | State::HalfOpen => {
                let now = self.clock.now_ms();
                w.deadline_left(now, |now| self.armed_long_ago(now))
                    .unwrap_or(0)
            }
            _ => 0,
        };
        (w, left)
    }

    /// Whether the breaker is in failure-rate mode.
    pub(crate) fn is_rate_mode(&self) -> bool {
        self.rate.is_some()
    }

    /// A management move by any pure step (an [`Op`] for [`manage`](Self::manage)): the CAS,
    /// the state-change event, and in rate mode the emptied window when it leaves a Closed
    /// period (see `rate.rs`, "Generations"; through the hook, so consecutive mode links no
    /// window code). Returns the word the step was decided on, and the step.
    pub(crate) fn manage_with(&self, t: impl Transition) -> (Word, Step) {
        let (old, step, now) = self.apply_with(t);
        self.after_change(old, &step, now);
        if let (Some((_, hook)), Some(new)) = (self.rate, step.next) {
            if old.state() == State::Closed && new.generation() != old.generation() {
                hook(
                    self,
                    RateOp::Leave,
                    new.generation(),
                    Outcome::Ignored,
                    0,
                    None,
                );
            }
        }
        (old, step)
    }
}

/// What `allow`'s slow path decided, packed into one `u64` so that it comes back in a
/// register (a `Result` of two small structs came back through memory):
///
/// | bits | admitted (`REFUSED` clear) | refused (`REFUSED` set) |
/// |---|---|---|
/// | 0..32 | `observed`: the `BeforeCall` dispatch's last sequence number | the retry in ms, [`NO_RETRY`] for none |
/// | 32..48 | the generation | the state (`State::encode`) |
/// | 48 | trial | 0 |
/// | 63 | 0 | 1 (`REFUSED`) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slow(u64);

const SLOW_REFUSED: u64 = 1 << 63;
const SLOW_TRIAL: u64 = 1 << 48;
const SLOW_HIGH_SHIFT: u32 = 32;

/// A refusal's retry when time alone will not admit a call (ForcedOpen).
const NO_RETRY: u32 = u32::MAX;

impl Slow {
    #[inline(always)]
    fn admitted(gen: u16, trial: bool, observed: u32) -> Slow {
        let trial = if trial { SLOW_TRIAL } else { 0 };
        Slow(u64::from(observed) | (u64::from(gen) << SLOW_HIGH_SHIFT) | trial)
    }

    /// A retry is at most the longest open period or lease (24 h, under 2^27 ms): 32 bits
    /// hold it; a larger value would saturate just below [`NO_RETRY`].
    #[inline(always)]
    fn refused(state: State, retry_after_ms: Option<u64>) -> Slow {
        let ms = retry_after_ms.map_or(NO_RETRY, |ms| ms.min(u64::from(NO_RETRY - 1)) as u32);
        Slow(SLOW_REFUSED | (u64::from(state.encode()) << SLOW_HIGH_SHIFT) | u64::from(ms))
    }

    #[inline(always)]
    fn is_admitted(self) -> bool {
        self.0 & SLOW_REFUSED == 0
    }

    /// `observed` when admitted, the retry in ms when refused.
    #[inline(always)]
    fn low(self) -> u32 {
        self.0 as u32
    }

    #[inline(always)]
    fn gen(self) -> u16 {
        (self.0 >> SLOW_HIGH_SHIFT) as u16
    }

    #[inline(always)]
    fn trial(self) -> bool {
        self.0 & SLOW_TRIAL != 0
    }

    #[inline(always)]
    fn state(self) -> State {
        State::decode((self.0 >> SLOW_HIGH_SHIFT) as u8)
    }

    #[inline(always)]
    fn retry_after(self) -> Option<Duration> {
        (self.low() != NO_RETRY).then(|| config::ms_to_duration(u64::from(self.low())))
    }
}

/// What [`CircuitBreaker::fail_counter`] reads in word `w`.
fn failures_of(w: Word) -> u32 {
    match w.state() {
        State::Closed | State::Open => w.count(),
        _ => 0,
    }
}

/// Lazy access to the clock and configuration for the transition function.
struct BreakerEnv<'a, C, const L: usize> {
    b: &'a CircuitBreaker<C, L>,
    now: Cell<Option<u64>>,
}

impl<C: Clock, const L: usize> Env for BreakerEnv<'_, C, L> {
    fn now(&self) -> u64 {
        if let Some(t) = self.now.get() {
            return t;
        }
        let t = self.b.clock.now_ms();
        self.now.set(Some(t));
        t
    }

    fn now_for_deadline(&self) -> u64 {
        let t = self.now();
        self.b.raise_armed_at(t);
        t
    }

    fn armed_long_ago(&self, now: u64) -> bool {
        self.b.armed_long_ago(now)
    }

    // Always inlined: out of line (as thumbv6m left it) it costs a call and a copy of the whole
    // `Params`, and keeps the caller from dropping the fields its branch does not read.
    fn params(&self) -> Params {
        let b = self.b;
        Params {
            fail_max: b.fail_max.load(Ordering::Relaxed),
            success_threshold: b.success_threshold.load(Ordering::Relaxed),
            half_open_max_calls: b.half_open_max_calls,
            reset_timeout_ms: u64::from(b.reset_timeout_ms.load(Ordering::Relaxed)),
            lease_ms: b.lease_ms,
            backoff_max_ms: b.backoff_max_ms,
            jitter_percent: b.jitter_percent,
            salt: (b as *const CircuitBreaker<C, L>).addr() as u64,
        }
    }

    fn open_period(&self, p: &Params, level: u32, now: u64, gen: u16) -> u64 {
        (self.b.open_period)(p, level, now, gen)
    }
}

impl<C, const L: usize> fmt::Debug for CircuitBreaker<C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("word", &Word(self.word.load(Ordering::Acquire)))
            .field("fail_max", &self.fail_max.load(Ordering::Relaxed))
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn quiet(_: &Event) {}

    fn bit<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>) -> bool {
        b.load().call_events()
    }

    /// `Slow` gives back exactly what it was given, at the edges of every field.
    #[test]
    fn slow_round_trips_admissions_and_refusals() {
        for gen in [0, 1, 0x7fff, u16::MAX] {
            for trial in [false, true] {
                for observed in [listeners::NONE_CALLED, 1, 7, listeners::ALL - 1] {
                    let a = Slow::admitted(gen, trial, observed);
                    assert!(a.is_admitted());
                    assert_eq!((a.gen(), a.trial(), a.low()), (gen, trial, observed));
                }
            }
        }
        let states = [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ];
        for state in states {
            let none = Slow::refused(state, None);
            assert!(!none.is_admitted());
            assert_eq!((none.state(), none.retry_after()), (state, None));
            for ms in [0u64, 1, 999, 1_000, 86_400_000] {
                let r = Slow::refused(state, Some(ms));
                assert!(!r.is_admitted());
                assert_eq!(r.state(), state);
                assert_eq!(r.retry_after(), Some(Duration::from_millis(ms)));
            }
            // Beyond 32 bits, it saturates below the "none" value instead of becoming `None`.
            let huge = Slow::refused(state, Some(u64::MAX));
            assert_eq!(
                huge.retry_after(),
                Some(Duration::from_millis(u64::from(NO_RETRY - 1)))
            );
        }
    }

    /// The `CALL_EVENTS` bit is set exactly while some listener wants per-call events, through
    /// const and run-time adds, removes, and state changes in between.
    #[test]
    fn call_events_bit_follows_the_listeners_that_want_calls() {
        let b = CircuitBreaker::<_, 4>::new("t", Config::new().fail_max(1), ManualClock::new())
            .with_listener_for(Interest::STATE_CHANGES, quiet);
        assert!(!bit(&b));
        let b = b.with_listener(quiet);
        assert!(bit(&b));
        assert_eq!(b.state(), State::Closed);

        let b = CircuitBreaker::<_, 4>::new("t", Config::new().fail_max(1), ManualClock::new());
        let state_only = b
            .add_listener_for(Interest::STATE_CHANGES | Interest::REJECTIONS, quiet)
            .unwrap();
        assert!(!bit(&b));
        let calls1 = b.add_listener_for(Interest::CALLS, quiet).unwrap();
        let calls2 = b.add_listener(quiet).unwrap();
        assert!(bit(&b));
        // A trip and a reopen keep the bit (the machine carries it).
        let _ = b.call(|| Err::<(), _>(()));
        assert_eq!(b.state(), State::Open);
        assert!(bit(&b));
        assert!(b.close());
        assert!(bit(&b));
        assert!(b.remove_listener(calls1));
        assert!(bit(&b), "one listener still wants calls");
        assert!(!b.remove_listener(calls1));
        assert!(b.remove_listener(calls2));
        assert!(!bit(&b));
        assert!(b.remove_listener(state_only));
        assert!(!bit(&b));
        assert_eq!(b.state(), State::Closed);
    }
}
