//! A sequential reference model of the breaker, and a driver that runs the real breaker beside it.
//!
//! The model is written from the documented semantics (DESIGN.md, "Semantics we hold to", and the
//! public docs), with plain fields and no bit packing: a state, a failure count, a success count,
//! the set of permits holding a trial slot, a generation that never wraps, deadlines as plain
//! `u64` milliseconds, and a backoff level. [`check`] applies each [`Op`] to a real
//! `CircuitBreaker<&ManualClock>` and to the model, and after every step asserts that everything
//! observable agrees: the result of the operation, the monitoring getters, the snapshot's
//! generation and backoff level, and the events the listener saw.
//!
//! Used by `tests/model_prop.rs` (proptest) and by `fuzz/fuzz_targets/model.rs`
//! (`#[path = "../../tests/model/mod.rs"] mod model;`), so it depends on nothing but the crate and
//! `std`. [`from_bytes`] turns any bytes into a valid case for the fuzzer.
//!
//! Failure-rate mode ([`FailureRate`]) is modelled as Resilience4j's count-based window: the
//! outcomes (success or failure) of the last `window` calls reported in the current Closed
//! period, a plain `VecDeque`; it trips when at least `minimum_calls` are in it and at least
//! `threshold` percent of them failed; `close()` of a Closed breaker starts a new generation.
//!
//! Generations: the model counts them in a `u64` that never wraps, and states what the real
//! word's 16-bit `GEN` documents: a report (or an unreported drop) counts only when the
//! generation is what it was at admission *modulo 2^16*. So a permit held across 1 to 65,535
//! changes is dropped, and one held across exactly a multiple of 65,536 changes counts as if it
//! were current (the documented bound of the 16-bit `GEN`; such a stale trial frees a slot it
//! does not hold, so the model keeps the count of trial slots, `in_flight`, not their owners,
//! and a release or report with none in flight frees nothing). Nothing else is modulo anything:
//! the failure-rate window belongs to its exact generation, so a new Closed period's window is
//! empty and a current report always counts in it, however many generations passed since the
//! window was last written (issue 20, fix 1).
//!
//! Time: deadlines are exact (`u128`, so a deadline beyond `u64::MAX` is no special case) and
//! the clock saturates at `u64::MAX` as `ManualClock` does. There is no limit on idle time: a
//! passed deadline reads as passed, and a pending one as pending with the exact time left, after
//! any gap the clock allows (issue 20, fix 2; the word's `UNTIL` keeps ms modulo 2^29).
//! [`Op::Advance`] and [`Op::IdlePast`] draw gaps up to [`MAX_GAP_MS`] (2^33 ms), and
//! [`Op::Run`] repeats a pair of operations for up to [`MAX_RUN`] (2^17) changes, so that
//! permits are held across the generation's wrap. Jitter cannot be predicted (it hashes the breaker's
//! address), so [`check`] requires a configuration without it.
#![allow(dead_code)] // each includer uses a different subset

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, FailureRate, ManualClock, Outcome, Permit,
    Recorded, Rejected, State, MAX_WINDOW,
};

/// Generations the real word can tell apart (the snapshot shows the generation modulo this).
pub const GENERATIONS: u64 = 1 << 16;
/// Longest period the breaker accepts (reset timeout, lease, backoff cap, `trip_for`): 24 h.
pub const MAX_PERIOD_MS: u64 = 24 * 60 * 60 * 1000;
/// The word's deadline modulus: 2^29 ms.
pub const TIME_MODULUS_MS: u64 = 1 << 29;
/// The longest idle gap the generators draw: 2^33 ms (about 99 days, 16 cycles of the word's
/// 2^29 ms deadline modulus).
pub const MAX_GAP_MS: u64 = 1 << 33;
/// The most state changes one [`Op::Run`] makes in the generated cases: 2^17 (two wraps of the
/// 16-bit generation), a few more at the boundary. Each iteration is two operations, so at most
/// two changes: the generators draw up to `MAX_RUN / 2 + 2` iterations.
pub const MAX_RUN: u32 = 1 << 17;
/// The window tag's half cycle: a window left unwritten for this many generations is where the
/// tag's "newer modulo 2^16" comparison took current reports for old ones (issue 20, fix 1).
pub const HALF_GENERATIONS: u64 = GENERATIONS / 2;
/// Largest backoff exponent.
pub const MAX_LEVEL: u32 = 7;
/// Largest `fail_max` and `success_threshold`.
pub const MAX_COUNT: u32 = 127;
/// Largest `half_open_max_calls`.
pub const MAX_HALF_OPEN_CALLS: u32 = 31;
/// Whether the breaker under test counts a permit dropped during a panic as a failure, which it
/// does with its `std` feature. Integration tests see the library's features; the fuzz crate
/// (`cfg(fuzzing)`) always builds the library with `std`.
pub const PANIC_COUNTS_AS_FAILURE: bool = cfg!(any(feature = "std", fuzzing));
/// The breaker's name in every event.
pub const NAME: &str = "model";

macro_rules! branches {
    ($($variant:ident => $name:literal,)*) => {
        /// A branch of the model, counted each time it runs so that tests can check that the
        /// generators reach it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Branch {
            $($variant,)*
        }

        impl Branch {
            /// Every branch.
            pub const ALL: &'static [Branch] = &[$(Branch::$variant,)*];

            /// What the branch does, in words.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Branch::$variant => $name,)*
                }
            }
        }
    };
}

branches! {
    AllowClosed => "allow closed",
    AllowDisabled => "allow disabled",
    RejectForcedOpen => "reject forced-open",
    RejectOpen => "reject open",
    OpenToHalfOpen => "open -> half-open",
    Trial => "trial",
    TrialBesideAnother => "trial beside another",
    TrialReArmed => "trial re-armed",
    RejectHalfOpen => "reject half-open",
    HeldAcross64Changes => "permit held across 64 or more changes",
    HeldAcross65536Changes => "permit held across 65,536 or more changes",
    ReportFromAnEarlierGeneration => "report from an earlier generation",
    StaleReportCountsAfter65536Changes => "report held across a multiple of 65,536 changes counts",
    StaleTrialFreesASlotAfter65536Changes => "trial dropped across a multiple of 65,536 changes frees a slot",
    StaleTrialWithNoSlotToFree => "stale trial counted with no trial slot in flight",
    SuccessResetsFailures => "success resets failures",
    Trip => "trip",
    TripAboveALoweredFailMax => "trip above a lowered fail_max",
    Close => "close",
    CloseAfterSeveralSuccesses => "close after several successes",
    TrialSuccessCounted => "trial success counted",
    ReTrip => "re-trip",
    ReTripWithBackoff => "re-trip with backoff",
    ReTripAtTheHighestBackoffLevel => "re-trip at the highest backoff level",
    TrialIgnored => "trial ignored",
    ReportDroppedInOpenForcedOpenOrDisabled => "report dropped in open, forced-open or disabled",
    DroppedTrialFreedItsSlot => "dropped trial freed its slot",
    DroppedStaleTrial => "dropped stale trial",
    PanicCountedAsFailure => "panic counted as a failure",
    OpenWhenOpen => "open when open",
    ManualOpenKeepsTheBackoffLevel => "manual open keeps the backoff level",
    ManualNoOp => "manual no-op",
    CloseClearsTheCount => "close clears the count",
    ManualMove => "manual move",
    TripForRefused => "trip_for refused",
    TripForWhenOpen => "trip_for when open",
    SettingRefused => "setting refused",
    GapOfACycleOrMore => "idle gap of 2^29 ms or more",
    DeadlinePassedLongAgo => "deadline passed 2^29 - 24 h ms or more ago",
    PassedDeadlineInTheLast24HOfACycle => "passed deadline in the last 24 h of a 2^29 ms cycle after it",
    LongRun => "run of 32,768 or more iterations",
    DeadlineAcrossThe2To29MsWrap => "deadline across the 2^29 ms wrap",
    DeadlineBeyondU64Max => "deadline beyond u64::MAX",
    ClockAtU64Max => "clock at u64::MAX",
    RateCounted => "rate mode: outcome counted in the window",
    RateBelowMinimumCalls => "rate mode: threshold reached below minimum_calls",
    RateSlid => "rate mode: a failure slid out of a full window",
    RateTrip => "rate mode: trip",
    RateTripOnSuccess => "rate mode: a success reaching minimum_calls trips",
    RateCloseStartsANewWindow => "rate mode: close() when Closed starts a new window",
    RateWindowUntouchedForHalfTheTagCycle => "rate mode: counted after 32,768 or more generations without a window write",
    RateWindowUntouchedForAMultipleOf65536 => "rate mode: counted after a multiple of 65,536 generations without a window write",
}

/// How often each [`Branch`] ran, indexed by the branch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hits(pub [u64; Branch::ALL.len()]);

impl Hits {
    /// No branch run yet.
    pub const ZERO: Hits = Hits([0; Branch::ALL.len()]);

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Hits) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// The branches never run.
    pub fn missing(&self) -> Vec<&'static str> {
        Branch::ALL
            .iter()
            .filter(|b| self.0[**b as usize] == 0)
            // Unreachable in a build without `std`.
            .filter(|b| PANIC_COUNTS_AS_FAILURE || **b != Branch::PanicCountedAsFailure)
            .map(|b| b.name())
            .collect()
    }
}

impl std::fmt::Debug for Hits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                Branch::ALL
                    .iter()
                    .filter(|b| self.0[**b as usize] > 0)
                    .map(|b| (b.name(), self.0[*b as usize])),
            )
            .finish()
    }
}

/// One operation of a test case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `allow()`; an admitted call's permit is held until reported or dropped.
    Allow,
    /// Reports the outcome of a held permit. The index counts from the newest held permit
    /// (0 = newest) and wraps around the number held; nothing happens when none is held.
    Report(usize, Outcome),
    /// Drops a held permit unreported (same indexing as `Report`).
    Drop(usize),
    /// Drops a held permit while its thread unwinds from a panic (same indexing): with `std`
    /// that counts as a failure. The unwind starts with `resume_unwind`, which skips the panic
    /// hook, so it is quiet and does not trip libFuzzer's abort-on-panic hook.
    Panic(usize),
    /// Moves the clock forward (saturating at `u64::MAX`, as `ManualClock` does).
    Advance(u64),
    /// Moves the clock to `ms` after the pending deadline, if that is later than now: Open's
    /// retry deadline, or HalfOpen's lease when every trial slot is claimed (else `ms` after
    /// now). Lands exactly on the boundaries of the word's 2^29 ms deadline modulus.
    IdlePast(u64),
    /// Runs the cycle's operations this many times in a row (a tight loop: the two sides are
    /// compared after each operation's result and events, and in full at the end of the run),
    /// so that generations come around the 16-bit wrap within one case.
    Run(u32, Cycle),
    /// `open()`.
    Open,
    /// `close()`.
    Close,
    /// `half_open()`.
    HalfOpen,
    /// `trip_for(ms)`; above [`MAX_PERIOD_MS`] it is refused.
    TripFor(u64),
    /// `force_open()`.
    ForceOpen,
    /// `disable()`.
    Disable,
    /// `set_fail_max(n)`; 0 and values above 127 are refused.
    SetFailMax(u32),
    /// `set_reset_timeout(ms)`; refused above [`MAX_PERIOD_MS`] or above the backoff cap.
    SetResetTimeout(u64),
    /// `set_success_threshold(n)`; 0 and values above 127 are refused.
    SetSuccessThreshold(u32),
}

/// What one iteration of [`Op::Run`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cycle {
    /// `open()`, `close()`: two changes from Closed (in rate mode as well).
    OpenClose,
    /// `trip_for(ms)` (always a change), then a move out of Open: two changes.
    TripFor(u64, Exit),
    /// `close()`: in rate mode a Closed breaker starts a new generation (and window) each time,
    /// one change, no write of the window; in consecutive mode a no-op after the first.
    Close,
    /// `allow()` and a failure report of the newest permit: with `reset_timeout(0)` an Open
    /// breaker flaps Open -> HalfOpen -> Open, two changes with no window write.
    FailedCall,
}

/// How [`Cycle::TripFor`] leaves Open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Close,
    HalfOpen,
    ForceOpen,
    Disable,
}

impl Cycle {
    /// The operations of one iteration.
    pub fn ops(self) -> [Op; 2] {
        match self {
            Cycle::OpenClose => [Op::Open, Op::Close],
            Cycle::TripFor(ms, exit) => [
                Op::TripFor(ms),
                match exit {
                    Exit::Close => Op::Close,
                    Exit::HalfOpen => Op::HalfOpen,
                    Exit::ForceOpen => Op::ForceOpen,
                    Exit::Disable => Op::Disable,
                },
            ],
            Cycle::Close => [Op::Close, Op::Close],
            Cycle::FailedCall => [Op::Allow, Op::Report(0, Outcome::Failure)],
        }
    }
}

// ------------------------------------------------------------------------------------------
// The model
// ------------------------------------------------------------------------------------------

/// A permit as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPermit {
    /// Unique per admitted call.
    pub id: u64,
    /// The generation it was admitted in (never wraps).
    pub gen: u64,
    /// Whether it holds a half-open trial slot.
    pub trial: bool,
}

/// What the model predicts for `allow()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Admitted; the permit to hold.
    Admitted(ModelPermit),
    /// Rejected in `state`, with the time until a retry.
    Rejected {
        state: State,
        retry_after_ms: Option<u64>,
    },
}

/// The sequential reference model.
#[derive(Clone, Debug)]
pub struct Model {
    // Configuration (the first three can change at run time).
    pub fail_max: u32,
    pub success_threshold: u32,
    pub reset_timeout_ms: u64,
    pub half_open_max_calls: u32,
    pub lease_ms: u64,
    pub backoff_max_ms: Option<u64>,
    /// Failure-rate mode: `(threshold percent, window, minimum_calls)`.
    pub rate: Option<(u32, u32, u32)>,
    /// Rate mode: the outcomes of the last calls of generation `window_gen` (true = failure),
    /// oldest first.
    pub window: VecDeque<bool>,
    pub window_gen: u64,

    /// The clock, in ms.
    pub now: u64,
    pub state: State,
    /// Closed: consecutive failures. Open: the failures that tripped it (0 after a manual open).
    pub failures: u32,
    /// HalfOpen: trial successes.
    pub successes: u32,
    /// HalfOpen: trial slots claimed and not yet given back. A count, not a set of owners: a
    /// stale trial whose generation matches modulo 2^16 gives back a slot it never held.
    pub in_flight: u32,
    /// Bumped by every state change, every `trip_for` and every trial re-arm. Never wraps.
    pub generation: u64,
    /// Open: when a call may be admitted again (may lie beyond `u64::MAX`).
    pub open_until: u128,
    /// HalfOpen: when the newest trial's lease runs out (may lie beyond `u64::MAX`).
    pub lease_until: u128,
    /// Backoff exponent: consecutive re-trips from HalfOpen.
    pub level: u32,
    /// When the breaker last moved into Open (or was given a new deadline by `trip_for`).
    pub last_opened: Option<u64>,
    /// Events the last operation fired, in order.
    pub events: Vec<EventKind<'static>>,
    /// How often each branch of the model ran: lets tests check that generators reach them.
    pub hits: Hits,
    next_id: u64,
}

impl Model {
    /// A fresh Closed breaker with `config`, its clock reading `now`.
    pub fn new(config: &Config, now: u64) -> Model {
        Model {
            fail_max: config.get_fail_max(),
            success_threshold: config.get_success_threshold(),
            reset_timeout_ms: ms(config.get_reset_timeout()),
            half_open_max_calls: config.get_half_open_max_calls(),
            lease_ms: ms(config.get_trial_lease()),
            backoff_max_ms: config.get_backoff().map(|b| ms(b.max())),
            rate: config
                .get_failure_rate()
                .map(|r| (r.threshold_percent(), r.window(), r.get_minimum_calls())),
            window: VecDeque::new(),
            window_gen: 0,
            now,
            state: State::Closed,
            failures: 0,
            successes: 0,
            in_flight: 0,
            generation: 0,
            open_until: 0,
            lease_until: 0,
            level: 0,
            last_opened: None,
            events: Vec::new(),
            hits: Hits::ZERO,
            next_id: 0,
        }
    }

    // ---------------------------------------------------------------- observations

    pub fn fail_counter(&self) -> u32 {
        if self.rate.is_some() && self.state == State::Closed {
            return self.failure_window().map_or(0, |(_, f)| f);
        }
        match self.state {
            State::Closed | State::Open => self.failures,
            _ => 0,
        }
    }

    /// Rate mode: the calls in the current Closed period's window and its failures.
    pub fn failure_window(&self) -> Option<(u32, u32)> {
        self.rate?;
        if self.state == State::Closed && self.window_gen == self.generation {
            let failures = self.window.iter().filter(|f| **f).count() as u32;
            Some((self.window.len() as u32, failures))
        } else {
            Some((0, 0))
        }
    }

    /// Rate mode: `failed` recorded in the current window; whether it trips.
    fn record_rate(&mut self, failed: bool) -> Option<u32> {
        let (threshold, window, minimum) = self.rate?;
        if self.window_gen != self.generation {
            // A new Closed period: its window starts empty, however long the last one was left.
            let untouched = self.generation - self.window_gen;
            if untouched >= HALF_GENERATIONS {
                self.hit(Branch::RateWindowUntouchedForHalfTheTagCycle);
            }
            if untouched.is_multiple_of(GENERATIONS) {
                self.hit(Branch::RateWindowUntouchedForAMultipleOf65536);
            }
            self.window.clear();
            self.window_gen = self.generation;
        }
        self.window.push_back(failed);
        if self.window.len() as u32 > window && self.window.pop_front() == Some(true) {
            self.hit(Branch::RateSlid);
        }
        let seen = self.window.len() as u32;
        let failures = self.window.iter().filter(|f| **f).count() as u32;
        if failures * 100 >= threshold * seen {
            if seen >= minimum {
                self.hit(if failed {
                    Branch::RateTrip
                } else {
                    Branch::RateTripOnSuccess
                });
                return Some(failures);
            }
            self.hit(Branch::RateBelowMinimumCalls);
        }
        self.hit(Branch::RateCounted);
        None
    }

    pub fn success_counter(&self) -> u32 {
        if self.state == State::HalfOpen {
            self.successes
        } else {
            0
        }
    }

    pub fn trial_calls(&self) -> u32 {
        if self.state == State::HalfOpen {
            self.in_flight
        } else {
            0
        }
    }

    pub fn retry_after_ms(&self) -> Option<u64> {
        (self.state == State::Open).then(|| self.open_until.saturating_sub(self.now.into()) as u64)
    }

    pub fn opened_at(&self) -> Option<u64> {
        match self.state {
            // Stored as `1 + ms`, saturating: a reading of u64::MAX shows as u64::MAX - 1.
            State::Open | State::HalfOpen => self.last_opened.map(|t| t.min(u64::MAX - 1)),
            _ => None,
        }
    }

    /// The open period for the current backoff level: `reset_timeout * 2^level`, capped.
    pub fn open_period(&self) -> u64 {
        match self.backoff_max_ms {
            None => self.reset_timeout_ms,
            Some(max) => {
                let grown = (self.reset_timeout_ms as u128) << self.level;
                grown.min(max as u128) as u64
            }
        }
    }

    /// Whether a report or drop of `p` counts: its generation is the current one modulo 2^16
    /// (the documented bound of the word's 16-bit `GEN`: a stale report counts only after a
    /// non-zero multiple of 65,536 changes during its call).
    fn same_generation(&mut self, p: &ModelPermit) -> bool {
        let behind = self.generation - p.gen;
        if behind >= 64 {
            self.hit(Branch::HeldAcross64Changes);
        }
        if behind >= GENERATIONS {
            self.hit(Branch::HeldAcross65536Changes);
        }
        let same = behind.is_multiple_of(GENERATIONS);
        if same && behind > 0 {
            self.hit(Branch::StaleReportCountsAfter65536Changes);
        }
        same
    }

    fn hit(&mut self, branch: Branch) {
        self.hits.0[branch as usize] += 1;
    }

    // ---------------------------------------------------------------- moves

    /// Moves to `to` (or stays, for `trip_for` on an Open breaker): a new generation, every
    /// count cleared, no trial in flight. The backoff level survives only among Open and
    /// HalfOpen; Closed, ForcedOpen and Disabled start from level 0.
    fn enter(&mut self, to: State) {
        let from = self.state;
        let failures_before = self.fail_counter();
        self.state = to;
        self.generation += 1;
        self.failures = 0;
        self.successes = 0;
        self.in_flight = 0;
        if matches!(to, State::Closed | State::ForcedOpen | State::Disabled) {
            self.level = 0;
        }
        if to == State::Open {
            self.last_opened = Some(self.now);
        }
        if from != to {
            // `failures` and `retry_after` are completed by `opened` for a move into Open.
            self.events.push(EventKind::StateChange {
                from,
                to,
                failures: failures_before,
                retry_after: None,
            });
        }
    }

    /// Completes the state-change event of a move into Open (if the move fired one): the
    /// failures on record after it, if more than before, and the open period.
    fn opened(&mut self) {
        let (now_failures, now) = (self.fail_counter(), u128::from(self.now));
        let period = Duration::from_millis((self.open_until - now) as u64);
        if let Some(EventKind::StateChange {
            to: State::Open,
            failures,
            retry_after,
            ..
        }) = self.events.last_mut()
        {
            *failures = (*failures).max(now_failures);
            *retry_after = Some(period);
        }
    }

    /// Opens for one open period at the current level, with `failures` on record.
    fn trip(&mut self, failures: u32) {
        self.enter(State::Open);
        self.failures = failures;
        self.open_until = self.deadline(self.open_period());
        self.opened();
    }

    /// `ms` from now, exactly.
    fn deadline(&mut self, ms: u64) -> u128 {
        let at = u128::from(self.now) + u128::from(ms);
        if at >> 29 != u128::from(self.now) >> 29 {
            self.hit(Branch::DeadlineAcrossThe2To29MsWrap);
        }
        if at > u128::from(u64::MAX) {
            self.hit(Branch::DeadlineBeyondU64Max);
        }
        at
    }

    // ---------------------------------------------------------------- operations

    pub fn allow(&mut self) -> Admission {
        self.events.clear();
        let rejected = |state, retry_after_ms| Admission::Rejected {
            state,
            retry_after_ms,
        };
        let result = match self.state {
            State::Closed | State::Disabled => {
                self.hit(if self.state == State::Closed {
                    Branch::AllowClosed
                } else {
                    Branch::AllowDisabled
                });
                Admission::Admitted(self.permit(false))
            }
            State::ForcedOpen => {
                self.hit(Branch::RejectForcedOpen);
                rejected(State::ForcedOpen, None)
            }
            State::Open if u128::from(self.now) < self.open_until => {
                self.hit(Branch::RejectOpen);
                rejected(
                    State::Open,
                    Some((self.open_until - u128::from(self.now)) as u64),
                )
            }
            State::Open => {
                self.hit(Branch::OpenToHalfOpen);
                // The open period is over: this caller moves the breaker to HalfOpen and is
                // its first trial.
                self.enter(State::HalfOpen);
                Admission::Admitted(self.claim_trial())
            }
            State::HalfOpen if self.in_flight < self.half_open_max_calls => {
                self.hit(if self.in_flight == 0 {
                    Branch::Trial
                } else {
                    Branch::TrialBesideAnother
                });
                Admission::Admitted(self.claim_trial())
            }
            State::HalfOpen if u128::from(self.now) >= self.lease_until => {
                // Every slot is taken and even the newest claim's lease has run out: re-arm.
                // The earlier trials' reports belong to the old generation and are dropped;
                // the successes already counted stay.
                self.hit(Branch::TrialReArmed);
                self.generation += 1;
                self.in_flight = 0;
                Admission::Admitted(self.claim_trial())
            }
            State::HalfOpen => {
                self.hit(Branch::RejectHalfOpen);
                rejected(
                    State::HalfOpen,
                    Some((self.lease_until - u128::from(self.now)) as u64),
                )
            }
        };
        match result {
            Admission::Admitted(_) => self.events.push(EventKind::BeforeCall),
            Admission::Rejected {
                state,
                retry_after_ms,
            } => self.events.push(EventKind::Rejected {
                state,
                retry_after: retry_after_ms.map(Duration::from_millis),
            }),
        }
        result
    }

    fn permit(&mut self, trial: bool) -> ModelPermit {
        self.next_id += 1;
        ModelPermit {
            id: self.next_id,
            gen: self.generation,
            trial,
        }
    }

    fn claim_trial(&mut self) -> ModelPermit {
        let p = self.permit(true);
        self.in_flight += 1;
        self.lease_until = self.deadline(self.lease_ms);
        p
    }

    /// Gives back a trial slot for a counted report or drop of `p`: one fewer in flight,
    /// saturating at 0 (a stale permit whose generation matches modulo 2^16 may find none: a
    /// manual `half_open()` or a re-arm started the count again).
    fn free_slot(&mut self, p: &ModelPermit) {
        if self.in_flight == 0 {
            // Only after a stale permit (an alias modulo 2^16) gave back a slot it did not hold.
            self.hit(Branch::StaleTrialWithNoSlotToFree);
        } else {
            if p.gen != self.generation && p.trial {
                self.hit(Branch::StaleTrialFreesASlotAfter65536Changes);
            }
            self.in_flight -= 1;
        }
    }

    pub fn report(&mut self, p: &ModelPermit, outcome: Outcome) -> Recorded {
        self.events.clear();
        self.events.push(match outcome {
            // `failures` is filled in below, once the report is counted.
            Outcome::Success => EventKind::Success { failures: 0 },
            Outcome::Failure => EventKind::Failure {
                failures: 0,
                error: None,
            },
            Outcome::Ignored => EventKind::Ignored { error: None },
        });
        let recorded = self.count_report(p, outcome);
        let now_failures = self.fail_counter();
        if let Some(EventKind::Failure { failures, .. } | EventKind::Success { failures }) =
            self.events.first_mut()
        {
            *failures = now_failures;
        }
        recorded
    }

    /// The report's effect on the counts and state.
    fn count_report(&mut self, p: &ModelPermit, outcome: Outcome) -> Recorded {
        if !self.same_generation(p) {
            self.hit(Branch::ReportFromAnEarlierGeneration);
            return Recorded::Dropped;
        }
        if self.rate.is_some() && self.state == State::Closed && outcome != Outcome::Ignored {
            return match self.record_rate(outcome == Outcome::Failure) {
                Some(failures) => {
                    self.trip(failures);
                    Recorded::Tripped
                }
                None => Recorded::Counted,
            };
        }
        match (self.state, outcome) {
            (State::Closed, Outcome::Success) => {
                if self.failures > 0 {
                    self.hit(Branch::SuccessResetsFailures);
                }
                self.failures = 0;
                Recorded::Counted
            }
            (State::Closed, Outcome::Failure) => {
                self.failures += 1;
                if self.failures >= self.fail_max {
                    self.hit(if self.failures > self.fail_max {
                        Branch::TripAboveALoweredFailMax
                    } else {
                        Branch::Trip
                    });
                    self.trip(self.failures);
                    Recorded::Tripped
                } else {
                    Recorded::Counted
                }
            }
            (State::Closed, Outcome::Ignored) => Recorded::Counted,
            (State::HalfOpen, Outcome::Success) => {
                self.successes += 1;
                if self.successes >= self.success_threshold {
                    self.hit(if self.successes > 1 {
                        Branch::CloseAfterSeveralSuccesses
                    } else {
                        Branch::Close
                    });
                    self.enter(State::Closed);
                    Recorded::Closed
                } else {
                    self.hit(Branch::TrialSuccessCounted);
                    self.free_slot(p);
                    Recorded::Counted
                }
            }
            (State::HalfOpen, Outcome::Failure) => {
                if self.backoff_max_ms.is_some() {
                    self.hit(if self.level == MAX_LEVEL {
                        Branch::ReTripAtTheHighestBackoffLevel
                    } else {
                        Branch::ReTripWithBackoff
                    });
                    self.level = (self.level + 1).min(MAX_LEVEL);
                } else {
                    self.hit(Branch::ReTrip);
                }
                self.trip(1);
                Recorded::Tripped
            }
            (State::HalfOpen, Outcome::Ignored) => {
                self.hit(Branch::TrialIgnored);
                self.free_slot(p);
                Recorded::Counted
            }
            // Nothing is admitted in Open or ForcedOpen, and Disabled records nothing.
            (State::Open | State::ForcedOpen | State::Disabled, _) => {
                self.hit(Branch::ReportDroppedInOpenForcedOpenOrDisabled);
                Recorded::Dropped
            }
        }
    }

    /// A permit dropped unreported: a trial gives its slot back; nothing is counted.
    pub fn drop_permit(&mut self, p: &ModelPermit) {
        self.events.clear();
        if p.trial && self.state == State::HalfOpen && self.same_generation(p) {
            self.hit(Branch::DroppedTrialFreedItsSlot);
            self.free_slot(p);
        } else if p.trial {
            self.hit(Branch::DroppedStaleTrial);
        }
    }

    /// A permit dropped while its thread panics: with `std` the call blew up, so it counts as a
    /// failure; without `std` the breaker cannot tell, and it is an unreported drop.
    pub fn panicked(&mut self, p: &ModelPermit) {
        if PANIC_COUNTS_AS_FAILURE {
            self.hit(Branch::PanicCountedAsFailure);
            let _ = self.report(p, Outcome::Failure);
        } else {
            self.drop_permit(p);
        }
    }

    /// Moves the clock, saturating at `u64::MAX` as `ManualClock` does.
    pub fn advance(&mut self, ms: u64) {
        self.events.clear();
        self.now = self.now.saturating_add(ms);
        if self.now == u64::MAX {
            self.hit(Branch::ClockAtU64Max);
        }
        if ms >= TIME_MODULUS_MS {
            self.hit(Branch::GapOfACycleOrMore);
        }
        if let Some(at) = self.pending_deadline() {
            let now = u128::from(self.now);
            if now >= at {
                // Passed, and stays passed: the model's deadlines are exact. Note where a
                // 29-bit reading of the word would see it (`(until - now) mod 2^29` between 1
                // and 24 h reads as pending).
                if now - at >= u128::from(TIME_MODULUS_MS - MAX_PERIOD_MS) {
                    self.hit(Branch::DeadlinePassedLongAgo);
                }
                let ahead = (at as i128 - now as i128).rem_euclid(i128::from(TIME_MODULUS_MS));
                if (1..=i128::from(MAX_PERIOD_MS)).contains(&ahead) {
                    self.hit(Branch::PassedDeadlineInTheLast24HOfACycle);
                }
            }
        }
    }

    /// The deadline that decides the next `allow()`: Open's retry deadline, or HalfOpen's
    /// lease when every trial slot is claimed; `None` when time decides nothing.
    pub fn pending_deadline(&self) -> Option<u128> {
        match self.state {
            State::Open => Some(self.open_until),
            State::HalfOpen if self.in_flight >= self.half_open_max_calls => Some(self.lease_until),
            _ => None,
        }
    }

    /// How far [`Op::IdlePast`]`(ms)` moves the clock: to `ms` after the pending deadline if
    /// that is not earlier than now, else `ms` from now; saturating at `u64::MAX`.
    pub fn idle_past(&self, ms: u64) -> u64 {
        let now = u128::from(self.now);
        let to = match self.pending_deadline() {
            Some(at) if at + u128::from(ms) >= now => at + u128::from(ms),
            _ => now + u128::from(ms),
        };
        (to.min(u128::from(u64::MAX)) - now) as u64
    }

    pub fn open(&mut self) -> bool {
        self.events.clear();
        if self.state == State::Open {
            self.hit(Branch::OpenWhenOpen);
            return false; // does not extend the open period
        }
        if self.state == State::HalfOpen && self.level > 0 {
            self.hit(Branch::ManualOpenKeepsTheBackoffLevel);
        }
        self.trip(0);
        true
    }

    pub fn close(&mut self) -> bool {
        if self.rate.is_some() && self.state == State::Closed {
            self.events.clear();
            self.hit(Branch::RateCloseStartsANewWindow);
            self.generation += 1;
            return false;
        }
        if self.state == State::Closed && self.failures > 0 {
            self.events.clear();
            self.hit(Branch::CloseClearsTheCount);
            self.failures = 0;
            return false;
        }
        self.manual(State::Closed)
    }

    pub fn half_open(&mut self) -> bool {
        self.manual(State::HalfOpen)
    }

    pub fn force_open(&mut self) -> bool {
        self.manual(State::ForcedOpen)
    }

    pub fn disable(&mut self) -> bool {
        self.manual(State::Disabled)
    }

    fn manual(&mut self, to: State) -> bool {
        self.events.clear();
        if self.state == to {
            self.hit(Branch::ManualNoOp);
            return false;
        }
        self.hit(Branch::ManualMove);
        self.enter(to);
        true
    }

    pub fn trip_for(&mut self, ms: u64) -> bool {
        self.events.clear();
        if ms > MAX_PERIOD_MS {
            self.hit(Branch::TripForRefused);
            return false;
        }
        if self.state == State::Open {
            self.hit(Branch::TripForWhenOpen);
        }
        self.enter(State::Open);
        self.open_until = self.deadline(ms);
        self.opened();
        true
    }

    pub fn set_fail_max(&mut self, n: u32) -> bool {
        self.events.clear();
        let ok = (1..=MAX_COUNT).contains(&n);
        if ok {
            self.fail_max = n;
        } else {
            self.hit(Branch::SettingRefused);
        }
        ok
    }

    pub fn set_success_threshold(&mut self, n: u32) -> bool {
        self.events.clear();
        let ok = (1..=MAX_COUNT).contains(&n);
        if ok {
            self.success_threshold = n;
        } else {
            self.hit(Branch::SettingRefused);
        }
        ok
    }

    pub fn set_reset_timeout(&mut self, ms: u64) -> bool {
        self.events.clear();
        let ok = ms <= MAX_PERIOD_MS && self.backoff_max_ms.is_none_or(|max| ms <= max);
        if ok {
            self.reset_timeout_ms = ms;
        } else {
            self.hit(Branch::SettingRefused);
        }
        ok
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

// ------------------------------------------------------------------------------------------
// The driver
// ------------------------------------------------------------------------------------------

thread_local! {
    static EVENTS: RefCell<Vec<Event<'static>>> = const { RefCell::new(Vec::new()) };
}

fn record(e: &Event) {
    EVENTS.with(|v| v.borrow_mut().push(e.without_error()));
}

fn take_events() -> Vec<EventKind<'static>> {
    EVENTS.with(|v| {
        v.borrow_mut()
            .drain(..)
            .map(|e| {
                assert_eq!(e.name, NAME, "event from another breaker");
                e.kind
            })
            .collect()
    })
}

struct Held<'a> {
    permit: Permit<'a, &'a ManualClock, 4>,
    model: ModelPermit,
}

/// Runs `ops` on a real breaker with `config` and on the model, from clock 0. Panics with the
/// step, the operations so far and both sides at the first difference.
pub fn check(ops: &[Op], config: Config) -> Model {
    check_from(0, ops, config)
}

/// Like [`check`], with the clock starting at `start_ms` (for example just below a multiple of
/// 2^40, to cross the word's timestamp wrap). Returns the model at the end, with its branch
/// hits.
pub fn check_from(start_ms: u64, ops: &[Op], config: Config) -> Model {
    assert_eq!(config.validate(), Ok(()), "check needs a valid config");
    assert!(
        config.get_backoff().is_none_or(|b| b.jitter() == 0),
        "the model cannot predict jitter"
    );

    let clock = ManualClock::starting_at(start_ms);
    let breaker: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new(NAME, config, &clock).with_listener(record);
    let mut model = Model::new(&config, start_ms);
    let mut held: Vec<Held<'_>> = Vec::new();
    take_events();

    let fail = |step: usize, what: &str, model: &Model, breaker: &CircuitBreaker<&ManualClock>| {
        let mut msg = String::new();
        let _ = writeln!(msg, "model and breaker differ at step {step}: {what}");
        let _ = writeln!(msg, "config: {config:?}, start {start_ms}");
        let _ = writeln!(msg, "ops so far: {:?}", &ops[..(step + 1).min(ops.len())]);
        let _ = writeln!(msg, "model: {model:#?}");
        let _ = writeln!(msg, "breaker: {:#?}", breaker.snapshot());
        panic!("{msg}");
    };

    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Run(n, cycle) => {
                if u64::from(n) >= HALF_GENERATIONS {
                    model.hit(Branch::LongRun);
                }
                for i in 0..n {
                    for sub in cycle.ops() {
                        if let Err(what) = apply(sub, &breaker, &clock, &mut model, &mut held) {
                            let what = format!("run iteration {i} of {n}, {sub:?}: {what}");
                            fail(step, &what, &model, &breaker);
                        }
                    }
                }
                if let Err(what) = compare(&breaker, &model) {
                    fail(step, &format!("after the run: {what}"), &model, &breaker);
                }
            }
            op => {
                let result = apply(op, &breaker, &clock, &mut model, &mut held)
                    .and_then(|()| compare(&breaker, &model));
                if let Err(what) = result {
                    fail(step, &what, &model, &breaker);
                }
            }
        }
    }

    // Dropping every permit still held must leave the two agreeing as well.
    for h in held.drain(..).rev() {
        model.drop_permit(&h.model);
        drop(h.permit);
        if let Err(what) = compare(&breaker, &model) {
            fail(
                ops.len(),
                &format!("after dropping held permits: {what}"),
                &model,
                &breaker,
            );
        }
    }
    let events = take_events();
    assert!(events.is_empty(), "dropping permits fired {events:?}");
    model
}

/// Applies one operation (not a [`Op::Run`]) to the breaker and the model, and checks its
/// result and the events it fired.
fn apply<'a>(
    op: Op,
    breaker: &'a CircuitBreaker<&'a ManualClock>,
    clock: &ManualClock,
    model: &mut Model,
    held: &mut Vec<Held<'a>>,
) -> Result<(), String> {
    let mut op_result = Ok(());
    match op {
        Op::Allow => {
            let want = model.allow();
            match (breaker.allow(), want) {
                (Ok(permit), Admission::Admitted(m)) => {
                    if permit.is_trial() != m.trial {
                        op_result = Err(format!(
                            "allow: is_trial {} but model says {}",
                            permit.is_trial(),
                            m.trial
                        ));
                    }
                    held.push(Held { permit, model: m });
                }
                (
                    Err(Rejected {
                        name,
                        state,
                        retry_after,
                    }),
                    Admission::Rejected {
                        state: want_state,
                        retry_after_ms,
                    },
                ) => {
                    let want_after = retry_after_ms.map(Duration::from_millis);
                    if name != NAME || state != want_state || retry_after != want_after {
                        op_result = Err(format!(
                            "allow: rejected in {state:?} retry {retry_after:?}, model \
                             {want_state:?} retry {want_after:?}"
                        ));
                    }
                }
                (got, want) => {
                    op_result = Err(format!(
                        "allow: breaker {:?}, model {want:?}",
                        got.map(|p| p.is_trial())
                    ));
                }
            }
        }
        Op::Report(i, outcome) => {
            if let Some(pos) = pick(held.len(), i) {
                let h = held.remove(pos);
                let want = model.report(&h.model, outcome);
                let got = h.permit.report(outcome);
                if got != want {
                    op_result = Err(format!(
                        "report {outcome:?} of {:?}: breaker {got:?}, model {want:?}",
                        h.model
                    ));
                }
            } else {
                model.events.clear();
            }
        }
        Op::Drop(i) => {
            if let Some(pos) = pick(held.len(), i) {
                let h = held.remove(pos);
                model.drop_permit(&h.model);
                drop(h.permit);
            } else {
                model.events.clear();
            }
        }
        Op::Panic(i) => {
            if let Some(pos) = pick(held.len(), i) {
                let h = held.remove(pos);
                model.panicked(&h.model);
                let permit = h.permit;
                let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _permit = permit;
                    std::panic::resume_unwind(Box::new("the guarded call panicked"));
                }));
                assert!(unwound.is_err());
            } else {
                model.events.clear();
            }
        }
        Op::Advance(d) => {
            model.advance(d);
            clock.advance_ms(d);
        }
        Op::IdlePast(ms) => {
            let d = model.idle_past(ms);
            model.advance(d);
            clock.advance_ms(d);
        }
        Op::Run(..) => unreachable!("check_from runs the cycle's operations one by one"),
        Op::Open => op_result = same("open", breaker.open(), model.open()),
        Op::Close => op_result = same("close", breaker.close(), model.close()),
        Op::HalfOpen => op_result = same("half_open", breaker.half_open(), model.half_open()),
        Op::ForceOpen => op_result = same("force_open", breaker.force_open(), model.force_open()),
        Op::Disable => op_result = same("disable", breaker.disable(), model.disable()),
        Op::TripFor(d) => {
            op_result = same(
                "trip_for",
                breaker.trip_for(Duration::from_millis(d)).is_ok(),
                model.trip_for(d),
            )
        }
        Op::SetFailMax(n) => {
            op_result = same(
                "set_fail_max",
                breaker.set_fail_max(n).is_ok(),
                model.set_fail_max(n),
            )
        }
        Op::SetSuccessThreshold(n) => {
            op_result = same(
                "set_success_threshold",
                breaker.set_success_threshold(n).is_ok(),
                model.set_success_threshold(n),
            )
        }
        Op::SetResetTimeout(d) => {
            op_result = same(
                "set_reset_timeout",
                breaker.set_reset_timeout(Duration::from_millis(d)).is_ok(),
                model.set_reset_timeout(d),
            )
        }
    }
    op_result?;
    let events = take_events();
    if events != model.events {
        return Err(format!("events {events:?}, model {:?}", model.events));
    }
    Ok(())
}

/// Position in `held` for an index counting from the newest; `None` when nothing is held.
fn pick(len: usize, i: usize) -> Option<usize> {
    (len > 0).then(|| len - 1 - i % len)
}

fn same(what: &str, got: bool, want: bool) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: breaker {got}, model {want}"))
    }
}

/// Everything the breaker lets an observer see, from its getters and its snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Observed {
    state: State,
    fail_counter: u32,
    success_counter: u32,
    trial_calls: u32,
    retry_after: Option<Duration>,
    opened_at: Option<u64>,
    generation: u16,
    backoff_level: u8,
    fail_max: u32,
    success_threshold: u32,
    reset_timeout: Duration,
    failure_window: Option<(u32, u32)>,
}

impl Observed {
    fn of_breaker(b: &CircuitBreaker<&ManualClock>) -> Result<Observed, String> {
        let s = b.snapshot();
        let o = Observed {
            state: b.state(),
            fail_counter: b.fail_counter(),
            success_counter: b.success_counter(),
            trial_calls: b.trial_calls(),
            retry_after: b.retry_after(),
            opened_at: b.opened_at(),
            generation: s.generation,
            backoff_level: s.backoff_level,
            fail_max: b.fail_max(),
            success_threshold: b.success_threshold(),
            reset_timeout: b.reset_timeout(),
            failure_window: b.failure_window(),
        };
        // The snapshot, one load of the word, agrees with the getters, one load each.
        let from_snapshot = Observed {
            state: s.state,
            fail_counter: s.fail_counter,
            success_counter: s.success_counter,
            trial_calls: s.trial_calls,
            retry_after: s.retry_after,
            opened_at: s.opened_at,
            fail_max: s.fail_max,
            success_threshold: s.success_threshold,
            reset_timeout: s.reset_timeout,
            ..o
        };
        if from_snapshot != o {
            return Err(format!("snapshot {s:?} disagrees with the getters {o:?}"));
        }
        Ok(o)
    }

    fn of_model(m: &Model) -> Observed {
        Observed {
            state: m.state,
            fail_counter: m.fail_counter(),
            success_counter: m.success_counter(),
            trial_calls: m.trial_calls(),
            retry_after: m.retry_after_ms().map(Duration::from_millis),
            opened_at: m.opened_at(),
            generation: (m.generation % GENERATIONS) as u16,
            backoff_level: m.level as u8,
            fail_max: m.fail_max,
            success_threshold: m.success_threshold,
            reset_timeout: Duration::from_millis(m.reset_timeout_ms),
            failure_window: m.failure_window(),
        }
    }
}

/// Every observation the breaker offers, against the model.
fn compare(b: &CircuitBreaker<&ManualClock>, m: &Model) -> Result<(), String> {
    let got = Observed::of_breaker(b)?;
    let want = Observed::of_model(m);
    if got != want {
        return Err(format!("observed\n  breaker {got:?}\n  model   {want:?}"));
    }
    if got.trial_calls > m.half_open_max_calls {
        return Err(format!("{} trial calls in flight", got.trial_calls));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Decoding bytes, for the fuzzer
// ------------------------------------------------------------------------------------------

struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    /// The next byte, or 0 once the input is used up.
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.byte() as usize % table.len()]
    }
}

/// Clock starts: zero, just below multiples of 2^29 and 2^40 so that runs cross the word's
/// timestamp wrap, and near `u64::MAX`, where deadlines lie beyond the end of the clock and the
/// clock saturates.
const STARTS: [u64; 10] = [
    0,
    12_345,
    (1 << 29) - 1_000,
    (1 << 40) - 1,
    3 * (1 << 40) - 70_000,
    (1 << 41) + 5,
    u64::MAX - 70_000,
    u64::MAX - 10,
    u64::MAX - 1,
    u64::MAX,
];
const RESET_TIMEOUTS: [u64; 8] = [0, 1, 10, 100, 1_000, 60_000, 1 << 24, MAX_PERIOD_MS];
const LEASES: [u64; 7] = [1, 5, 50, 500, 60_000, 1 << 24, MAX_PERIOD_MS];
const PERIODS: [u64; 9] = [
    0,
    1,
    10,
    100,
    1_000,
    60_000,
    1 << 25,
    MAX_PERIOD_MS,
    MAX_PERIOD_MS + 1,
];

/// Turns any bytes into a clock start, a valid configuration (no jitter) and operations, for
/// [`check_from`]. Never panics; short inputs give short cases.
pub fn from_bytes(data: &[u8]) -> (u64, Config, Vec<Op>) {
    let mut b = Bytes { data };
    let first = b.byte();
    let start = STARTS[usize::from(first) % STARTS.len()];
    // Rate mode for first bytes 160 and up (about 3 in 8), its numbers from the next bytes.
    let rate = (first >= 160).then(|| {
        let window = match b.byte() {
            x @ 0..=229 => 1 + u32::from(x) % 10,
            x => (u32::from(x) - 200).min(MAX_WINDOW), // 30 to 47
        };
        let threshold = [1, 10, 33, 50, 50, 60, 90, 100][usize::from(b.byte() % 8)];
        let minimum = 1 + u32::from(b.byte()) % window;
        FailureRate::new(threshold, window).minimum_calls(minimum)
    });
    let fail_max = match b.byte() {
        x @ 0..=199 => 1 + u32::from(x) % 5,
        x => 1 + (u32::from(x) - 200) * 2, // 1 to 111
    }
    .min(MAX_COUNT);
    let success_threshold = match b.byte() {
        x @ 0..=239 => 1 + u32::from(x) % 3,
        x => u32::from(x) - 230, // 10 to 25
    };
    let half_open_max_calls = match b.byte() {
        x @ 0..=249 => 1 + u32::from(x) % 3,
        x => u32::from(x) - 224, // 26 to 31
    };
    let reset = b.pick(&RESET_TIMEOUTS);
    let lease = b.pick(&LEASES);
    let backoff = match b.byte() {
        x if x % 2 == 0 => None,
        x => {
            let factor = [1, 3, 8, 200, u64::MAX][usize::from(x / 2) % 5];
            Some(reset.max(1).saturating_mul(factor).min(MAX_PERIOD_MS))
        }
    };
    let mut config = Config::new()
        .fail_max(fail_max)
        .success_threshold(success_threshold)
        .half_open_max_calls(half_open_max_calls)
        .reset_timeout(Duration::from_millis(reset))
        .trial_lease(Duration::from_millis(lease));
    if let Some(max) = backoff {
        config = config.backoff(Backoff::exponential(Duration::from_millis(max)));
    }
    if let Some(r) = rate {
        config = config.failure_rate(r);
    }
    if config.validate().is_err() {
        config = Config::new(); // unreachable by construction; never panic
    }

    let mut ops = Vec::new();
    let mut long_run_left = true;
    while !b.data.is_empty() {
        let code = b.byte();
        let op = match code % 24 {
            0..=4 => Op::Allow,
            5..=9 => {
                let a = b.byte();
                let outcome =
                    [Outcome::Success, Outcome::Failure, Outcome::Ignored][usize::from(a % 3)];
                Op::Report(usize::from(a / 3), outcome)
            }
            10 => Op::Drop(usize::from(b.byte())),
            11 => Op::Panic(usize::from(b.byte())),
            12..=14 => Op::Advance(u64::from(b.u16())),
            15 => Op::Advance(1 << (16 + b.byte() % 14)), // 2^16 to 2^29 ms
            16 => Op::Open,
            17 => Op::Close,
            18 => Op::HalfOpen,
            19 => Op::TripFor(b.pick(&PERIODS)),
            // 62 to 66 changes in a row, so that held permits' generations come around (a
            // 6-bit generation would wrap here).
            20 if code / 24 >= 6 => {
                let out = [Op::Close, Op::HalfOpen, Op::ForceOpen, Op::Disable];
                let pairs = 31 + usize::from(b.byte() % 3);
                let out = out[usize::from(b.byte()) % out.len()];
                for _ in 0..pairs {
                    ops.extend([Op::TripFor(u64::from(b.byte() % 8)), out]);
                }
                continue;
            }
            // Issue 20: idle gaps up to 2^33 ms, on the deadline modulus' boundaries or anywhere.
            20 if code / 24 == 4 => {
                let x = b.byte();
                let cycles = 1 + u64::from(x >> 4); // 1 to 16 cycles of 2^29 ms: up to 2^33
                let off = i64::from(b.u16() as i16);
                match x % 4 {
                    // Around `cycles` cycles after the pending deadline.
                    0 => Op::IdlePast((cycles * TIME_MODULUS_MS).saturating_add_signed(off)),
                    // Around the start of the last 24 h of that cycle.
                    1 => Op::IdlePast(
                        (cycles * TIME_MODULUS_MS - MAX_PERIOD_MS).saturating_add_signed(off),
                    ),
                    2 => Op::Advance(1 << (16 + (x >> 2) % 18)), // 2^16 to 2^33 ms
                    _ => Op::Advance((u64::from(b.u16()) << 17) | u64::from(b.u16())),
                }
            }
            // Issue 20: a run of up to 2^17 state changes (one per case; later ones are short).
            20 if code / 24 == 5 => {
                let (x, y) = (b.byte(), b.byte());
                let exit = [Exit::Close, Exit::HalfOpen, Exit::ForceOpen, Exit::Disable];
                let cycle = match y % 4 {
                    0 => Cycle::OpenClose,
                    1 => Cycle::TripFor(u64::from(y / 4 % 4), exit[usize::from(y / 16 % 4)]),
                    2 => Cycle::Close,
                    _ => Cycle::FailedCall,
                };
                // k * 2^13 iterations (two ops each: k * 2^14 changes), give or take 2.
                let k = 1 + u32::from(x % 8);
                let n = ((k << 13) + u32::from(x / 8 % 5)) - 2;
                let n = if long_run_left { n } else { n % 64 };
                long_run_left &= n < 64;
                Op::Run(n, cycle)
            }
            20 => [Op::ForceOpen, Op::Disable][usize::from(code / 24) % 2],
            21 => Op::SetFailMax(u32::from(b.byte() % 130)),
            22 => Op::SetResetTimeout(b.pick(&PERIODS)),
            _ => Op::SetSuccessThreshold(u32::from(b.byte() % 130)),
        };
        ops.push(op);
    }
    (start, config, ops)
}
