//! loom model checks of every CAS transition, with 2 and 3 threads.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib` (see `.ci/steps/10-loom.sh`).
//! loom explores every interleaving of the breaker's atomic operations (and every value a weak
//! load may return): exhaustively for the two-thread checks, and up to a preemption bound
//! (`LOOM_MAX_PREEMPTIONS`, default 3) for the three-thread checks.
//!
//! # How a check works
//! Most checks are a [`Scenario`]: a sequential setup on the main thread, one short script of
//! [`Act`]s per spawned thread, and a sequential teardown after every thread has joined. Permits
//! are kept in numbered slots, so a permit taken in the setup can be reported by a thread (a late
//! result) or handed back to the teardown. Every loom execution is then checked three ways:
//!
//! 1. **The scenario's own invariant**, stated in its test (one trip, one winner, never more
//!    trials than slots, a late report dropped, ...). Checked first: its message is the most
//!    specific.
//! 2. **Events are the changes.** The `StateChange` events, in some order, form one chain from
//!    Closed to the final state: each change is reported once, none is invented.
//! 3. **Linearizability.** There must be an order of the threads' acts, each thread's in program
//!    order, in which the pure state machine ([`transition`]) gives every act the result the real
//!    breaker gave it, ends on the same state word, and emits the same events (as a multiset).
//!    Each operation of the breaker takes effect at one atomic step on the state word (its CAS,
//!    or the load after which it decides to write nothing), so this is exactly "consistent with
//!    some sequential order". It needs no per-scenario reasoning, and it catches lost updates
//!    that the scenario's invariant does not look at.
//!
//! Two more checks run inside the threads: trial permits held at once never exceed
//! `half_open_max_calls` ([`Scenario::trial_cap`]), and an [`Act::Run`] step between admission and
//! report gives loom a point to switch threads while a permit is held, as a real call would.
//!
//! The listener table has hand-written checks at the end: a runtime `add` racing an event, two
//! `add`s racing one, and a `remove` plus re-`add` into the same slot racing a dispatch. The table
//! only ever stores null or a valid `fn` pointer, so a garbage pointer cannot be read; what the
//! checks pin down is that a dispatch pairs a slot's pointer with its sequence number (never
//! calls one listener twice, or two listeners from one slot), that a listener added before its
//! own thread's next event always gets it, and that add order is call order. The
//! `CALL_EVENTS` checks race adds and removes (and a call) against the bit's re-check loop:
//! once they stop, the bit says whether some listener wants per-call events, and a listener
//! that got a call's `BeforeCall` gets its outcome unless it was removed meanwhile.
//!
//! The `ARMED_AT` checks race a write of a deadline with a reader at the same clock reading on a
//! breaker whose `ARMED_AT` is two days old: they fail if the `fetch_max` comes after the CAS,
//! or if the word is loaded `Relaxed`, since the reader then pairs the new deadline with the old
//! `ARMED_AT` and takes it as long passed.
//!
//! # Counting events inside loom
//! Listeners are `fn` pointers, so they record into `static`s. loom runs an iteration's threads
//! one at a time on the test's own OS thread, and runs a model's iterations one after another,
//! so a per-test `static` (indexed by a const parameter: tests run in parallel) reset at the start
//! of every iteration holds exactly that iteration's events. The statics use `std` types, not
//! loom's: they are test instrumentation, read only after every thread has joined, and must not
//! add interleavings of their own.
//!
//! The breakers are leaked (`Box::leak`, a few hundred bytes per iteration) so that permits,
//! which borrow their breaker, can move into loom's `'static` threads.

extern crate std;

use std::boxed::Box;
use std::format;
use std::string::String;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;
use std::vec;
use std::vec::Vec;

use loom::thread;

use crate::machine::{transition, Effect, Env, Op, Params};
use crate::word::Word;
use crate::{
    CircuitBreaker, Config, Event, EventKind, EventRecord, Interest, ListenerTableFull,
    ManualClock, Outcome, Permit, Recorded, Snapshot, State,
};

// ------------------------------------------------------------------------------ instrumentation

/// One entry per test. Each test passes its own index `K` (tests run in parallel, so two tests
/// sharing an index would mix their logs).
const TESTS: usize = 40;

/// Events seen by listeners, as (listener, event), per test.
static LOGS: [Mutex<Vec<(u8, EventRecord)>>; TESTS] = [const { Mutex::new(Vec::new()) }; TESTS];
/// Loom iterations run, per test.
static ITERATIONS: [AtomicUsize; TESTS] = [const { AtomicUsize::new(0) }; TESTS];
/// Trial permits held right now, per test (see [`Scenario::trial_cap`]).
static TRIALS_HELD: [AtomicU32; TESTS] = [const { AtomicU32::new(0) }; TESTS];

/// A listener recording every event into test `K`'s log as listener number `WHO`.
fn record<const K: usize, const WHO: u8>(e: &Event) {
    LOGS[K].lock().unwrap().push((WHO, EventRecord::new(e)));
}

fn begin_iteration<const K: usize>() {
    ITERATIONS[K].fetch_add(1, Relaxed);
    LOGS[K].lock().unwrap().clear();
    TRIALS_HELD[K].store(0, Relaxed);
}

fn log<const K: usize>() -> Vec<(u8, EventRecord)> {
    LOGS[K].lock().unwrap().clone()
}

/// Preemption bound for three-thread checks when `LOOM_MAX_PREEMPTIONS` is not set.
const DEFAULT_PREEMPTIONS: usize = 3;

/// Runs `f` as a loom model and reports how many iterations that took.
///
/// Two-thread checks are explored exhaustively (no preemption bound: they finish in
/// milliseconds); checks with three threads use `LOOM_MAX_PREEMPTIONS`, default
/// [`DEFAULT_PREEMPTIONS`].
fn model<const K: usize>(name: &str, threads: usize, f: impl Fn() + Sync + Send + 'static) {
    let bound = if threads <= 2 { None } else { Some(None) };
    model_bounded::<K>(name, threads, bound, f);
}

/// [`model`] with the preemption bound given: `None` exhaustive, `Some(None)` the environment's
/// `LOOM_MAX_PREEMPTIONS` (else [`DEFAULT_PREEMPTIONS`]), `Some(Some(n))` at most `n`.
fn model_bounded<const K: usize>(
    name: &str,
    threads: usize,
    bound: Option<Option<usize>>,
    f: impl Fn() + Sync + Send + 'static,
) {
    let mut builder = loom::model::Builder::new();
    match bound {
        None => builder.preemption_bound = None,
        Some(Some(n)) => builder.preemption_bound = Some(n),
        Some(None) => {
            if builder.preemption_bound.is_none() {
                builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
            }
        }
    }
    let bound = match builder.preemption_bound {
        Some(n) => format!("preemption bound {n}"),
        None => "exhaustive".into(),
    };
    let start = Instant::now();
    ITERATIONS[K].store(0, Relaxed);
    builder.check(f);
    std::eprintln!(
        "loom {name}: {threads} threads, {bound}, {} iterations, {:.2?}",
        ITERATIONS[K].load(Relaxed),
        start.elapsed()
    );
}

// ------------------------------------------------------------------------------ scenarios

/// A breaker with a one-slot listener table (the event recorder): the smallest table keeps the
/// number of atomic operations per event, and so loom's search, small.
type Breaker = CircuitBreaker<ManualClock, 1>;
type Slot = Option<Permit<'static, ManualClock, 1>>;
const SLOTS: usize = 8;

/// The configuration of a scenario's breaker, in the units the machine uses.
#[derive(Clone, Copy, Debug)]
struct Cfg {
    fail_max: u32,
    success_threshold: u32,
    half_open_max_calls: u32,
    reset_timeout_ms: u64,
    lease_ms: u64,
}

const CFG: Cfg = Cfg {
    fail_max: 1,
    success_threshold: 1,
    half_open_max_calls: 1,
    reset_timeout_ms: 1_000,
    lease_ms: 60_000,
};

impl Cfg {
    fn config(self) -> Config {
        Config::new()
            .fail_max(self.fail_max)
            .success_threshold(self.success_threshold)
            .half_open_max_calls(self.half_open_max_calls)
            .reset_timeout(core::time::Duration::from_millis(self.reset_timeout_ms))
            .trial_lease(core::time::Duration::from_millis(self.lease_ms))
    }

    fn params(self) -> Params {
        Params {
            fail_max: self.fail_max,
            success_threshold: self.success_threshold,
            half_open_max_calls: self.half_open_max_calls,
            reset_timeout_ms: self.reset_timeout_ms,
            lease_ms: self.lease_ms,
            backoff_max_ms: None,
            jitter_percent: 0,
            salt: 0, // only used for jitter, which is off
        }
    }
}

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    /// `allow()`; a permit, if any, goes to slot `i` (which must be empty).
    Allow(usize),
    /// Report the permit in slot `i`, if there is one.
    Report(usize, Outcome),
    /// Drop the permit in slot `i` unreported, if there is one.
    Abandon(usize),
    Open,
    Close,
    HalfOpen,
    ForceOpen,
    Disable,
    /// `trip_for(ms)`.
    TripFor(u64),
    /// Move the clock forward (setup and teardown only: the clock is not a loom object).
    Advance(u64),
    /// The guarded call runs here. Modelled as one load of the state word: a point where loom
    /// may switch threads while a permit is held (a trial slot is only "held" across some
    /// atomic operation of another thread if the holder performs one in between).
    Run,
}

use Act::{Abandon, Allow, Report};
use Outcome::{Failure as F, Ignored as I, Success as S};

/// What an act returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obs {
    Admitted {
        trial: bool,
    },
    Rejected {
        state: State,
        retry_ms: Option<u64>,
    },
    Recorded(Recorded),
    /// The return value of a management operation: whether the state changed.
    Changed(bool),
    /// `Report` or `Abandon` on an empty slot: nothing was done.
    NoPermit,
    Done,
}

impl Obs {
    fn admitted(self) -> bool {
        matches!(self, Obs::Admitted { .. })
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    cfg: Cfg,
    setup: Vec<Act>,
    threads: Vec<Vec<Act>>,
    teardown: Vec<Act>,
    /// Assert that trial permits held at once never exceed this. Only meaningful while no lease
    /// expires (a re-arm legitimately forgets older trials).
    trial_cap: Option<u32>,
}

/// Everything an execution observed, for the scenario's own invariant.
#[derive(Debug)]
struct Run {
    setup: Vec<Obs>,
    threads: Vec<Vec<Obs>>,
    teardown: Vec<Obs>,
    /// After every thread joined, before the teardown.
    mid: Snapshot,
    /// At the end, after the teardown and after every remaining permit was dropped.
    end: Snapshot,
    events: Vec<EventRecord>,
}

impl Run {
    fn changes(&self, from: State, to: State) -> usize {
        self.events
            .iter()
            .filter(|e| {
                matches!(e.event().kind, EventKind::StateChange { from: f, to: t, .. }
                    if f == from && t == to)
            })
            .count()
    }

    fn all_changes(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e.event().kind, EventKind::StateChange { .. }))
            .count()
    }

    /// Observations of the spawned threads, flattened.
    fn thread_obs(&self) -> impl Iterator<Item = Obs> + '_ {
        self.threads.iter().flatten().copied()
    }

    fn recorded(&self, r: Recorded) -> usize {
        self.thread_obs().filter(|&o| o == Obs::Recorded(r)).count()
    }

    fn admitted(&self) -> usize {
        self.thread_obs().filter(|o| o.admitted()).count()
    }
}

/// Performs `act` on the real breaker.
fn exec<const K: usize>(
    b: &'static Breaker,
    slots: &mut [Slot],
    act: Act,
    trial_cap: Option<u32>,
) -> Obs {
    // A trial permit is counted as held from just after `allow` returns until just before it
    // is reported or dropped, so the count never exceeds the breaker's own in-flight count.
    let give_back = |p: &Permit<'static, ManualClock, 1>| {
        if p.is_trial() && trial_cap.is_some() {
            TRIALS_HELD[K].fetch_sub(1, Relaxed);
        }
    };
    match act {
        Allow(i) => {
            assert!(slots[i].is_none(), "script error: slot {i} is taken");
            match b.allow() {
                Ok(p) => {
                    let trial = p.is_trial();
                    if let (true, Some(cap)) = (trial, trial_cap) {
                        let held = TRIALS_HELD[K].fetch_add(1, Relaxed) + 1;
                        assert!(held <= cap, "{held} trial permits held at once, cap {cap}");
                    }
                    slots[i] = Some(p);
                    Obs::Admitted { trial }
                }
                Err(r) => Obs::Rejected {
                    state: r.state,
                    retry_ms: r.retry_after.map(|d| d.as_millis() as u64),
                },
            }
        }
        Report(i, outcome) => match slots[i].take() {
            Some(p) => {
                give_back(&p);
                Obs::Recorded(p.report(outcome))
            }
            None => Obs::NoPermit,
        },
        Abandon(i) => match slots[i].take() {
            Some(p) => {
                give_back(&p);
                drop(p);
                Obs::Done
            }
            None => Obs::NoPermit,
        },
        Act::Open => Obs::Changed(b.open()),
        Act::Close => Obs::Changed(b.close()),
        Act::HalfOpen => Obs::Changed(b.half_open()),
        Act::ForceOpen => Obs::Changed(b.force_open()),
        Act::Disable => Obs::Changed(b.disable()),
        Act::Advance(ms) => {
            b.clock().advance_ms(ms);
            Obs::Done
        }
        Act::Run => {
            let _ = b.state();
            Obs::Done
        }
        Act::TripFor(ms) => {
            b.trip_for(core::time::Duration::from_millis(ms)).unwrap();
            Obs::Done
        }
    }
}

/// The slots a script touches.
fn slots_of(script: &[Act]) -> Vec<usize> {
    let mut v: Vec<usize> = script
        .iter()
        .filter_map(|a| match *a {
            Allow(i) | Report(i, _) | Abandon(i) => Some(i),
            _ => None,
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The breaker's state word, read through its `Debug` output (the field is private to
/// `breaker.rs`; `Word`'s `Debug` prints every field).
fn word_debug(b: &Breaker) -> String {
    let d = format!("{b:?}");
    let start = d
        .find("word: Word {")
        .expect("breaker Debug shows its word");
    let end = start + d[start..].find('}').expect("Word Debug is a struct") + 1;
    d[start + "word: ".len()..end].into()
}

/// Runs scenario `s` under loom, checks linearizability and the event chain, then `invariant`.
fn check<const K: usize>(
    name: &str,
    s: Scenario,
    invariant: impl Fn(&Run) + Sync + Send + 'static,
) {
    for (t, script) in s.threads.iter().enumerate() {
        assert!(
            !script.iter().any(|a| matches!(a, Act::Advance(_))),
            "script error: thread {t} moves the clock"
        );
        for other in &s.threads[t + 1..] {
            let shared: Vec<usize> = slots_of(script)
                .into_iter()
                .filter(|i| slots_of(other).contains(i))
                .collect();
            assert!(
                shared.is_empty(),
                "script error: threads share slots {shared:?}"
            );
        }
    }
    model::<K>(name, s.threads.len(), move || {
        begin_iteration::<K>();
        let b: &'static Breaker = Box::leak(Box::new(
            Breaker::new("loom", s.cfg.config(), ManualClock::new()).with_listener(record::<K, 0>),
        ));
        let mut slots: Vec<Slot> = (0..SLOTS).map(|_| None).collect();
        let setup: Vec<Obs> = s
            .setup
            .iter()
            .map(|&a| exec::<K>(b, &mut slots, a, s.trial_cap))
            .collect();

        let handles: Vec<_> = s
            .threads
            .iter()
            .map(|script| {
                let script = script.clone();
                let mut mine: Vec<Slot> = (0..SLOTS).map(|_| None).collect();
                for i in slots_of(&script) {
                    mine[i] = slots[i].take();
                }
                let cap = s.trial_cap;
                thread::spawn(move || {
                    let obs: Vec<Obs> = script
                        .iter()
                        .map(|&a| exec::<K>(b, &mut mine, a, cap))
                        .collect();
                    (obs, mine)
                })
            })
            .collect();
        let mut threads = Vec::new();
        for h in handles {
            let (obs, mine) = h.join().unwrap();
            threads.push(obs);
            for (i, p) in mine.into_iter().enumerate() {
                if p.is_some() {
                    slots[i] = p;
                }
            }
        }
        let mid = b.snapshot();

        let teardown: Vec<Obs> = s
            .teardown
            .iter()
            .map(|&a| exec::<K>(b, &mut slots, a, s.trial_cap))
            .collect();
        for i in 0..SLOTS {
            exec::<K>(b, &mut slots, Abandon(i), s.trial_cap);
        }
        let run = Run {
            setup,
            threads,
            teardown,
            mid,
            end: b.snapshot(),
            events: log::<K>().into_iter().map(|(_, e)| e).collect(),
        };

        // The scenario's own invariant first: its message is the most specific.
        invariant(&run);
        assert_events_chain(&run);
        assert_linearizable(&s, &run, &word_debug(b));
    });
}

// ------------------------------------------------------------------------------ the reference

/// The pure machine with the breaker's configuration and a fixed clock.
struct ModelEnv {
    now: u64,
    p: Params,
}

impl Env for ModelEnv {
    fn now(&self) -> u64 {
        self.now
    }
    fn now_for_deadline(&self) -> u64 {
        self.now
    }
    /// The model's clock never moves past a deadline's 29-bit window: every word is fresh.
    fn armed_long_ago(&self, _: u64) -> bool {
        false
    }
    fn params(&self) -> Params {
        self.p
    }
}

/// The sequential reference: the state word, the clock, the permits (generation and whether
/// each is a trial) and the events emitted so far.
#[derive(Clone)]
struct Model {
    env_now: u64,
    w: Word,
    slots: [Option<(u16, bool)>; SLOTS],
    events: Vec<EventRecord>,
}

impl Model {
    fn new() -> Self {
        Model {
            env_now: 0,
            w: Word::INITIAL,
            slots: [None; SLOTS],
            events: Vec::new(),
        }
    }

    fn emit(&mut self, kind: EventKind<'_>) {
        self.events
            .push(EventRecord::new(&Event { name: "loom", kind }));
    }

    /// Installs the step's word and emits a state change if there was one, as `after_change`.
    fn install(&mut self, next: Option<Word>) {
        if let Some(n) = next {
            let old = self.w;
            self.w = n;
            if n.state() != old.state() {
                let failures = |w: Word| match w.state() {
                    State::Closed | State::Open => w.count(),
                    _ => 0,
                };
                let retry_after = (n.state() == State::Open)
                    .then(|| core::time::Duration::from_millis(n.until_remaining(self.env_now)));
                self.emit(EventKind::StateChange {
                    from: old.state(),
                    to: n.state(),
                    failures: failures(old).max(failures(n)),
                    retry_after,
                });
            }
        }
    }

    /// What `act` does on the machine, as `breaker.rs` drives it.
    fn step(&mut self, act: Act, p: Params) -> Obs {
        let env = ModelEnv {
            now: self.env_now,
            p,
        };
        match act {
            Allow(i) => {
                let s = transition(self.w, Op::Acquire, &env);
                match s.effect {
                    Effect::Admitted { gen, trial } => {
                        self.install(s.next);
                        self.emit(EventKind::BeforeCall);
                        self.slots[i] = Some((gen, trial));
                        Obs::Admitted { trial }
                    }
                    Effect::Rejected { retry_after_ms } => {
                        self.emit(EventKind::Rejected {
                            state: self.w.state(),
                            retry_after: retry_after_ms.map(core::time::Duration::from_millis),
                        });
                        Obs::Rejected {
                            state: self.w.state(),
                            retry_ms: retry_after_ms,
                        }
                    }
                    e => panic!("Acquire gave {e:?}"),
                }
            }
            Report(i, outcome) => {
                let Some((gen, _)) = self.slots[i].take() else {
                    return Obs::NoPermit;
                };
                let s = transition(self.w, Op::Report { gen, outcome }, &env);
                let after = s.next.unwrap_or(self.w);
                let failures = match after.state() {
                    State::Closed | State::Open => after.count(),
                    _ => 0,
                };
                self.emit(match outcome {
                    Outcome::Success => EventKind::Success { failures },
                    Outcome::Failure => EventKind::Failure {
                        failures,
                        error: None,
                    },
                    Outcome::Ignored => EventKind::Ignored { error: None },
                });
                self.install(s.next);
                Obs::Recorded(match s.effect {
                    Effect::Recorded { tripped: true, .. } => Recorded::Tripped,
                    Effect::Recorded { closed: true, .. } => Recorded::Closed,
                    Effect::Recorded { .. } => Recorded::Counted,
                    _ => Recorded::Dropped,
                })
            }
            Abandon(i) => {
                let Some((gen, trial)) = self.slots[i].take() else {
                    return Obs::NoPermit;
                };
                if trial {
                    let s = transition(self.w, Op::Release { gen }, &env);
                    self.install(s.next);
                }
                Obs::Done
            }
            Act::Advance(ms) => {
                self.env_now += ms;
                Obs::Done
            }
            Act::Run => Obs::Done,
            Act::TripFor(ms) => {
                let s = transition(self.w, Op::TripFor { ms }, &env);
                self.install(s.next);
                Obs::Done
            }
            manual => {
                let op = match manual {
                    Act::Open => Op::Open,
                    Act::Close => Op::Close,
                    Act::HalfOpen => Op::HalfOpen,
                    Act::ForceOpen => Op::ForceOpen,
                    _ => Op::Disable,
                };
                let s = transition(self.w, op, &env);
                self.install(s.next);
                Obs::Changed(s.effect == Effect::Changed)
            }
        }
    }
}

fn sorted_events(events: &[EventRecord]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .map(|e| format!("{:?}", e.event().kind))
        .collect();
    v.sort();
    v
}

/// Asserts that some order of the threads' acts explains everything the run observed.
fn assert_linearizable(s: &Scenario, run: &Run, real_word: &str) {
    let p = s.cfg.params();
    let mut m = Model::new();
    for (a, o) in s.setup.iter().zip(&run.setup) {
        let got = m.step(*a, p);
        assert_eq!(got, *o, "setup act {a:?} differs from the reference");
    }
    let real_events = sorted_events(&run.events);
    let finish = |m: &Model| -> bool {
        let mut m = m.clone();
        for (a, o) in s.teardown.iter().zip(&run.teardown) {
            if m.step(*a, p) != *o {
                return false;
            }
        }
        for i in 0..SLOTS {
            m.step(Abandon(i), p);
        }
        format!("{:?}", m.w) == real_word && sorted_events(&m.events) == real_events
    };
    let mut pos = vec![0; s.threads.len()];
    if !search(&m, &mut pos, s, run, p, &finish) {
        panic!(
            "not linearizable: no sequential order of the threads explains this execution\n\
             scripts: {:?}\nobserved: {:?}\nteardown: {:?}\nfinal word: {real_word}\nevents: {:#?}",
            s.threads, run.threads, run.teardown, real_events
        );
    }
}

fn search(
    m: &Model,
    pos: &mut [usize],
    s: &Scenario,
    run: &Run,
    p: Params,
    finish: &dyn Fn(&Model) -> bool,
) -> bool {
    let mut done = true;
    for t in 0..s.threads.len() {
        let k = pos[t];
        if k == s.threads[t].len() {
            continue;
        }
        done = false;
        let mut next = m.clone();
        if next.step(s.threads[t][k], p) != run.threads[t][k] {
            continue;
        }
        pos[t] += 1;
        let ok = search(&next, pos, s, run, p, finish);
        pos[t] -= 1;
        if ok {
            return true;
        }
    }
    done && finish(m)
}

/// Asserts that the state-change events, in some order, form one chain from Closed to the
/// final state: every change reported once, none invented.
fn assert_events_chain(run: &Run) {
    let edges: Vec<(State, State)> = run
        .events
        .iter()
        .filter_map(|e| match e.event().kind {
            EventKind::StateChange { from, to, .. } => Some((from, to)),
            _ => None,
        })
        .collect();
    fn chain(at: State, end: State, left: &mut Vec<(State, State)>) -> bool {
        if left.is_empty() {
            return at == end;
        }
        for i in 0..left.len() {
            if left[i].0 == at {
                let e = left.remove(i);
                let ok = chain(e.1, end, left);
                left.insert(i, e);
                if ok {
                    return true;
                }
            }
        }
        false
    }
    let mut left = edges.clone();
    assert!(
        chain(State::Closed, run.end.state, &mut left),
        "state-change events {edges:?} are not one chain from Closed to {:?}",
        run.end.state
    );
}

// ------------------------------------------------------------------------------ checks: trip

fn threads(v: &[&[Act]]) -> Vec<Vec<Act>> {
    v.iter().map(|s| s.to_vec()).collect()
}

/// Exactly one report trips; exactly one Closed -> Open event; the breaker ends Open.
fn one_trip(run: &Run) {
    assert_eq!(run.recorded(Recorded::Tripped), 1, "{run:#?}");
    assert_eq!(run.changes(State::Closed, State::Open), 1, "{run:#?}");
    assert_eq!(run.all_changes(), 1, "{run:#?}");
    assert_eq!(run.end.state, State::Open);
}

/// fail_max 1, two failures admitted in generation 0 race to trip.
#[test]
fn trip_race_two_failures_fail_max_1() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![Allow(0), Allow(1)],
        threads: threads(&[&[Report(0, F)], &[Report(1, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<0>("trip_race_two_failures_fail_max_1", s, |run| {
        one_trip(run);
        // The loser's permit belongs to the closed generation: dropped, not counted.
        assert_eq!(run.recorded(Recorded::Dropped), 1);
        assert_eq!(run.end.fail_counter, 1);
    });
}

/// fail_max 2 with one failure already counted: two more failures race to trip.
#[test]
fn trip_race_one_failure_counted_fail_max_2() {
    let s = Scenario {
        cfg: Cfg { fail_max: 2, ..CFG },
        setup: vec![Allow(0), Report(0, F), Allow(1), Allow(2)],
        threads: threads(&[&[Report(1, F)], &[Report(2, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<1>("trip_race_one_failure_counted_fail_max_2", s, |run| {
        one_trip(run);
        assert_eq!(run.recorded(Recorded::Dropped), 1);
        assert_eq!(run.end.fail_counter, 2);
    });
}

/// fail_max 2, three failures admitted together: one counts, one trips, one is dropped.
#[test]
fn trip_race_three_failures_fail_max_2() {
    let s = Scenario {
        cfg: Cfg { fail_max: 2, ..CFG },
        setup: vec![Allow(0), Allow(1), Allow(2)],
        threads: threads(&[&[Report(0, F)], &[Report(1, F)], &[Report(2, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<2>("trip_race_three_failures_fail_max_2", s, |run| {
        one_trip(run);
        assert_eq!(run.recorded(Recorded::Counted), 1);
        assert_eq!(run.recorded(Recorded::Dropped), 1);
    });
}

/// fail_max 1, two whole calls (allow, then failure) race: the later one may be rejected,
/// admitted and dropped, or admitted before the trip and dropped; only one trips.
#[test]
fn trip_race_two_whole_calls_fail_max_1() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![],
        threads: threads(&[&[Allow(0), Report(0, F)], &[Allow(1), Report(1, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<3>("trip_race_two_whole_calls_fail_max_1", s, |run| {
        one_trip(run);
        for o in run.thread_obs() {
            if let Obs::Rejected { state, retry_ms } = o {
                assert_eq!((state, retry_ms), (State::Open, Some(1_000)));
            }
        }
    });
}

// ------------------------------------------------------------------------------ checks: open -> half-open

/// Trip, let the open period pass, then `n` threads call `allow` at once and keep what they get.
/// The teardown reports every trial a success; `success_threshold` is the number of trials, so
/// the breaker closes on the last one.
fn half_open_race(n: usize, max: u32) -> Scenario {
    Scenario {
        cfg: Cfg {
            half_open_max_calls: max,
            success_threshold: max,
            ..CFG
        },
        setup: vec![Allow(0), Report(0, F), Act::Advance(1_000)],
        threads: (1..=n).map(|i| vec![Allow(i)]).collect(),
        teardown: (1..=n).map(|i| Report(i, S)).collect(),
        trial_cap: Some(max),
    }
}

/// One winner moves Open -> HalfOpen; exactly `min(n, max)` trials are admitted; the losers are
/// rejected by HalfOpen, never by a stale Open.
fn one_half_open_winner(run: &Run, n: usize, max: u32) {
    let expected = n.min(max as usize);
    assert_eq!(run.changes(State::Open, State::HalfOpen), 1, "{run:#?}");
    assert_eq!(run.admitted(), expected, "{run:#?}");
    for o in run.thread_obs() {
        match o {
            Obs::Admitted { trial } => assert!(trial),
            Obs::Rejected { state, .. } => assert_eq!(state, State::HalfOpen, "{run:#?}"),
            o => panic!("unexpected {o:?}"),
        }
    }
    assert_eq!(run.mid.state, State::HalfOpen);
    assert_eq!(run.mid.trial_calls as usize, expected);
    assert_eq!(run.changes(State::HalfOpen, State::Closed), 1);
    assert_eq!(run.end.state, State::Closed);
}

#[test]
fn half_open_race_two_threads_max_1() {
    check::<4>(
        "half_open_race_two_threads_max_1",
        half_open_race(2, 1),
        |run| one_half_open_winner(run, 2, 1),
    );
}

#[test]
fn half_open_race_three_threads_max_1() {
    check::<5>(
        "half_open_race_three_threads_max_1",
        half_open_race(3, 1),
        |run| one_half_open_winner(run, 3, 1),
    );
}

#[test]
fn half_open_race_three_threads_max_2() {
    check::<6>(
        "half_open_race_three_threads_max_2",
        half_open_race(3, 2),
        |run| one_half_open_winner(run, 3, 2),
    );
}

// ------------------------------------------------------------------------------ checks: trial slots

/// A manually half-opened breaker (no trial in flight) with `max` slots; `n` threads each run
/// `script(i)`. `success_threshold` 5 keeps it half-open unless a scenario says otherwise.
fn trial_slots(n: usize, max: u32, script: impl Fn(usize) -> Vec<Act>) -> Scenario {
    Scenario {
        cfg: Cfg {
            half_open_max_calls: max,
            success_threshold: 5,
            ..CFG
        },
        setup: vec![Act::HalfOpen],
        threads: (0..n).map(script).collect(),
        teardown: vec![],
        trial_cap: Some(max),
    }
}

/// Trials that are claimed and kept: exactly `min(n, max)` admitted, the rest rejected with the
/// lease as their retry time.
fn claims_held(run: &Run, n: usize, max: u32) {
    assert_eq!(run.admitted(), n.min(max as usize), "{run:#?}");
    assert_eq!(run.mid.trial_calls as usize, n.min(max as usize));
    for o in run.thread_obs() {
        if let Obs::Rejected { state, retry_ms } = o {
            assert_eq!((state, retry_ms), (State::HalfOpen, Some(60_000)));
        }
    }
    assert_eq!(run.all_changes(), 1); // the setup's manual half-open
    assert_eq!(run.end.trial_calls, 0);
}

#[test]
fn trial_slots_held_two_threads_max_1() {
    check::<7>(
        "trial_slots_held_two_threads_max_1",
        trial_slots(2, 1, |i| vec![Allow(i)]),
        |run| claims_held(run, 2, 1),
    );
}

#[test]
fn trial_slots_held_three_threads_max_2() {
    check::<8>(
        "trial_slots_held_three_threads_max_2",
        trial_slots(3, 2, |i| vec![Allow(i)]),
        |run| claims_held(run, 3, 2),
    );
}

/// Claims racing releases: a thread claims, then gives its slot back (ignored result or an
/// unreported drop) while others claim. Never more than `max` held at once (asserted at every
/// claim through `trial_cap`), no state change, every slot free at the end.
fn churn(run: &Run) {
    assert!(run.admitted() >= 1, "{run:#?}");
    assert_eq!(run.all_changes(), 1); // the setup's manual half-open
    assert_eq!(run.mid.state, State::HalfOpen);
    assert_eq!(run.mid.trial_calls, 0);
    assert_eq!(run.mid.success_counter, 0);
}

#[test]
fn trial_slots_churn_two_threads_max_1() {
    check::<9>(
        "trial_slots_churn_two_threads_max_1",
        trial_slots(2, 1, |i| vec![Allow(i), Act::Run, Report(i, I)]),
        churn,
    );
}

#[test]
fn trial_slots_churn_three_threads_max_1() {
    check::<10>(
        "trial_slots_churn_three_threads_max_1",
        trial_slots(3, 1, |i| vec![Allow(i), Act::Run, Abandon(i)]),
        churn,
    );
}

#[test]
fn trial_slots_churn_three_threads_max_2() {
    check::<11>(
        "trial_slots_churn_three_threads_max_2",
        trial_slots(3, 2, |i| {
            let give_back = if i == 0 { Abandon(i) } else { Report(i, I) };
            vec![Allow(i), Act::Run, give_back]
        }),
        churn,
    );
}

/// Three successful trials with two slots and `success_threshold` 3: at most two run at once;
/// the breaker closes only if all three ran, and then exactly once.
#[test]
fn trial_slots_successes_three_threads_max_2() {
    let mut s = trial_slots(3, 2, |i| vec![Allow(i), Act::Run, Report(i, S)]);
    s.cfg.success_threshold = 3;
    check::<12>("trial_slots_successes_three_threads_max_2", s, |run| {
        let closed = run.recorded(Recorded::Closed);
        assert_eq!(closed, usize::from(run.admitted() == 3), "{run:#?}");
        assert_eq!(run.changes(State::HalfOpen, State::Closed), closed);
        let expected = if closed == 1 {
            State::Closed
        } else {
            State::HalfOpen
        };
        assert_eq!(run.end.state, expected);
    });
}

// ------------------------------------------------------------------------------ checks: late results

/// A trial from generation g (slot 1) outlives its lease. Thread 0 reports it a success late;
/// thread 1 calls and fails. If thread 1's call re-armed the trial (its permit is a trial of
/// generation g+1), the late report must be dropped; if the late report came first it closed
/// the breaker and thread 1's call is an ordinary closed call. Either way the failure trips.
#[test]
fn late_trial_success_against_rearm_and_trip() {
    let s = Scenario {
        cfg: Cfg {
            lease_ms: 100,
            ..CFG
        },
        setup: vec![
            Allow(0),
            Report(0, F),
            Act::Advance(1_000),
            Allow(1),
            Act::Advance(100),
        ],
        threads: threads(&[&[Report(1, S)], &[Allow(2), Report(2, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<13>("late_trial_success_against_rearm_and_trip", s, |run| {
        let late = run.threads[0][0];
        let rearmed = run.threads[1][0] == Obs::Admitted { trial: true };
        match late {
            Obs::Recorded(Recorded::Closed) => assert!(!rearmed, "{run:#?}"),
            Obs::Recorded(Recorded::Dropped) => assert!(rearmed, "{run:#?}"),
            o => panic!("late report gave {o:?}"),
        }
        assert_eq!(
            run.changes(State::HalfOpen, State::Closed),
            usize::from(!rearmed)
        );
        assert_eq!(run.threads[1][1], Obs::Recorded(Recorded::Tripped));
        assert_eq!(run.end.state, State::Open);
    });
}

/// A trial from a manual half-open (slot 0) is reported a success while thread 0 re-opens,
/// half-opens again and claims a new trial. The late report may close the old generation only
/// if it came first; it never counts in the new one: the breaker always ends HalfOpen with the
/// new trial in flight and no success counted.
#[test]
fn late_trial_success_against_manual_reopen() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![Act::HalfOpen, Allow(0)],
        threads: threads(&[&[Act::Open, Act::HalfOpen, Allow(1)], &[Report(0, S)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<14>("late_trial_success_against_manual_reopen", s, |run| {
        let late = run.threads[1][0];
        assert!(
            matches!(late, Obs::Recorded(Recorded::Closed | Recorded::Dropped)),
            "{late:?}"
        );
        assert_eq!(run.threads[0][2], Obs::Admitted { trial: true });
        assert_eq!(run.mid.state, State::HalfOpen);
        assert_eq!(run.mid.trial_calls, 1);
        assert_eq!(run.mid.success_counter, 0);
        assert_eq!(
            run.changes(State::HalfOpen, State::Closed),
            usize::from(late == Obs::Recorded(Recorded::Closed))
        );
    });
}

/// Three threads: a permit from the first closed generation (slot 0) is reported a success
/// while thread 0 takes the tripped breaker through a trial that fails, and thread 2 claims a
/// trial too. Generation 0 never comes back, so the late report is always dropped.
#[test]
fn late_closed_success_against_trial_and_retrip() {
    let s = Scenario {
        cfg: Cfg {
            half_open_max_calls: 2,
            ..CFG
        },
        setup: vec![Allow(0), Allow(1), Report(1, F), Act::Advance(1_000)],
        threads: threads(&[&[Allow(2), Report(2, F)], &[Report(0, S)], &[Allow(3)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<15>("late_closed_success_against_trial_and_retrip", s, |run| {
        assert_eq!(run.threads[1][0], Obs::Recorded(Recorded::Dropped));
        assert_eq!(run.changes(State::HalfOpen, State::Closed), 0);
        assert_eq!(run.end.state, State::Open);
    });
}

// ------------------------------------------------------------------------------ checks: management

/// A manual `open` races the failure that trips: exactly one of them opens the breaker.
#[test]
fn manual_open_races_trip() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![Allow(0)],
        threads: threads(&[&[Act::Open], &[Report(0, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<16>("manual_open_races_trip", s, |run| {
        let opened = run.threads[0][0] == Obs::Changed(true);
        let tripped = run.threads[1][0] == Obs::Recorded(Recorded::Tripped);
        assert!(opened != tripped, "{run:#?}");
        assert_eq!(run.changes(State::Closed, State::Open), 1);
        assert_eq!(run.end.state, State::Open);
    });
}

/// Every state change is reported by exactly one event: management calls that returned `true`,
/// reports that tripped or closed, and moves out of Open by `allow` (the Open -> HalfOpen events,
/// as these scenarios make no manual `half_open`) account for every event.
fn changes_match_results(run: &Run) {
    let all = || {
        run.setup
            .iter()
            .chain(run.threads.iter().flatten())
            .chain(&run.teardown)
            .copied()
    };
    let manual = all().filter(|&o| o == Obs::Changed(true)).count();
    let reports = all()
        .filter(|&o| o == Obs::Recorded(Recorded::Tripped) || o == Obs::Recorded(Recorded::Closed))
        .count();
    let by_allow = run.changes(State::Open, State::HalfOpen);
    assert_eq!(manual + reports + by_allow, run.all_changes(), "{run:#?}");
}

/// `open` then `close` on one thread while another makes a failing call (fail_max 1). `close`
/// always finds the breaker Open (opened by one of the two); `open` finds nothing to do only
/// when the trip came first; the breaker ends Open only when the call tripped it after `close`.
#[test]
fn manual_open_close_race_failing_call() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![],
        threads: threads(&[&[Act::Open, Act::Close], &[Allow(0), Report(0, F)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<17>("manual_open_close_race_failing_call", s, |run| {
        changes_match_results(run);
        let tripped = run.threads[1][1] == Obs::Recorded(Recorded::Tripped);
        assert_eq!(run.threads[0][1], Obs::Changed(true), "{run:#?}");
        if run.threads[0][0] == Obs::Changed(false) {
            assert!(tripped, "{run:#?}");
        }
        // Tripped after `open` means it was admitted after `close` too: the breaker stays Open.
        let opened = run.threads[0][0] == Obs::Changed(true);
        assert_eq!(run.end.state == State::Open, tripped && opened, "{run:#?}");
    });
}

/// Open (period over): `close`, `open` and a whole successful call on three threads.
#[test]
fn manual_close_open_race_trial_call() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![Allow(0), Report(0, F), Act::Advance(1_000)],
        threads: threads(&[&[Act::Close], &[Act::Open], &[Allow(1), Report(1, S)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<18>(
        "manual_close_open_race_trial_call",
        s,
        changes_match_results,
    );
}

/// `force_open`, `disable` and a failing call on three threads.
#[test]
fn manual_force_open_disable_race_call() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![],
        threads: threads(&[
            &[Act::ForceOpen],
            &[Act::Disable],
            &[Allow(0), Report(0, F)],
        ]),
        teardown: vec![Act::Close],
        trial_cap: None,
    };
    check::<19>("manual_force_open_disable_race_call", s, |run| {
        changes_match_results(run);
        // Both management moves always change the state (neither is a no-op for the other).
        assert_eq!(run.threads[0][0], Obs::Changed(true));
        assert_eq!(run.threads[1][0], Obs::Changed(true));
        assert_eq!(run.end.state, State::Closed);
    });
}

// ------------------------------------------------------------------------------ checks: listeners

/// A leaked breaker with an `L`-slot listener table and no listener.
fn listener_breaker<const L: usize>() -> &'static CircuitBreaker<ManualClock, L> {
    Box::leak(Box::new(CircuitBreaker::new(
        "loom",
        Config::new(),
        ManualClock::new(),
    )))
}

/// The events listener `who` received.
fn received(log: &[(u8, EventRecord)], who: u8) -> Vec<EventKind<'static>> {
    log.iter()
        .filter(|(w, _)| *w == who)
        .map(|(_, e)| e.event().kind)
        .collect()
}

fn change_to(kinds: &[EventKind<'_>], to: State) -> usize {
    kinds
        .iter()
        .filter(|k| matches!(k, EventKind::StateChange { to: t, .. } if *t == to))
        .count()
}

/// Thread 0 adds a listener, then force-opens; thread 1 opens. Both moves always change the
/// state, so there are exactly two events. The new listener gets the event its own thread
/// raised after adding it exactly once, and the other thread's event at most once.
#[test]
fn listener_add_races_event() {
    const K: usize = 20;
    model::<K>("listener_add_races_event", 2, || {
        begin_iteration::<K>();
        let b = listener_breaker::<1>();
        let t0 = thread::spawn(move || {
            b.add_listener(record::<K, 1>).unwrap();
            assert!(b.force_open());
        });
        let t1 = thread::spawn(move || assert!(b.open()));
        t0.join().unwrap();
        t1.join().unwrap();
        let got = received(&log::<K>(), 1);
        assert_eq!(change_to(&got, State::ForcedOpen), 1, "{got:?}");
        assert!(change_to(&got, State::Open) <= 1, "{got:?}");
        assert_eq!(got.len(), 1 + change_to(&got, State::Open), "{got:?}");
        // Once everyone has joined, the listener gets every event, once.
        assert!(b.close());
        assert_eq!(received(&log::<K>(), 1).len(), got.len() + 1);
    });
}

/// Two listeners added on two threads while a third raises an event: each gets it at most
/// once; and when both get it, they run in the same order as for every later event (the order
/// they were added in).
#[test]
fn listener_two_adds_race_event() {
    const K: usize = 21;
    model::<K>("listener_two_adds_race_event", 3, || {
        begin_iteration::<K>();
        let b = listener_breaker::<2>();
        let t0 = thread::spawn(move || b.add_listener(record::<K, 1>).unwrap());
        let t1 = thread::spawn(move || b.add_listener(record::<K, 2>).unwrap());
        let t2 = thread::spawn(move || assert!(b.open()));
        let (id0, id1) = (t0.join().unwrap(), t1.join().unwrap());
        t2.join().unwrap();
        assert_ne!(id0, id1);
        let during = log::<K>();
        assert!(received(&during, 1).len() <= 1, "{during:?}");
        assert!(received(&during, 2).len() <= 1, "{during:?}");
        assert!(b.close());
        let after: Vec<u8> = log::<K>()[during.len()..].iter().map(|e| e.0).collect();
        assert_eq!(after.len(), 2, "{after:?}");
        if during.len() == 2 {
            let order: Vec<u8> = during.iter().map(|e| e.0).collect();
            assert_eq!(order, after, "listeners ran out of their added order");
        }
    });
}

/// The only slot's listener (1) is removed and a new one (2) is added into the same slot while
/// another thread dispatches an event. The dispatch calls listener 1 (the old pointer, whole),
/// listener 2, or neither; never both, never one twice. Afterwards only listener 2 is called.
#[test]
fn listener_remove_and_readd_race_dispatch() {
    const K: usize = 22;
    model::<K>("listener_remove_and_readd_race_dispatch", 2, || {
        begin_iteration::<K>();
        let b = listener_breaker::<1>();
        let id = b.add_listener(record::<K, 1>).unwrap();
        let t0 = thread::spawn(move || {
            assert!(b.remove_listener(id));
            b.add_listener(record::<K, 2>).unwrap();
        });
        let t1 = thread::spawn(move || assert!(b.open()));
        t0.join().unwrap();
        t1.join().unwrap();
        let during = log::<K>();
        assert!(during.len() <= 1, "{during:?}");
        assert!(
            !b.remove_listener(id),
            "a stale id removed the new listener"
        );
        assert_eq!(b.listener_count(), 1);
        assert!(b.close());
        let after = &log::<K>()[during.len()..];
        assert_eq!(after.len(), 1, "{after:?}");
        assert_eq!(after[0].0, 2);
    });
}

/// On a two-slot table with listeners 1 and 2, one thread removes 1 and adds 3 (which may land
/// in 1's slot) while another dispatches an event. That dispatch calls each listener at most
/// once and never both 1 and 3 (one slot, one call); 2 always gets it (it was there all along).
/// Once the race is over, the plan lists 2 then 3: every later event goes to 2, then 3.
#[test]
fn listener_plan_remove_readd_two_slots_race_dispatch() {
    const K: usize = 28;
    model::<K>(
        "listener_plan_remove_readd_two_slots_race_dispatch",
        2,
        || {
            begin_iteration::<K>();
            let b = listener_breaker::<2>();
            let id1 = b.add_listener(record::<K, 1>).unwrap();
            b.add_listener(record::<K, 2>).unwrap();
            let t0 = thread::spawn(move || {
                assert!(b.remove_listener(id1));
                b.add_listener(record::<K, 3>).unwrap();
            });
            let t1 = thread::spawn(move || assert!(b.open()));
            t0.join().unwrap();
            t1.join().unwrap();
            let during: Vec<u8> = log::<K>().iter().map(|e| e.0).collect();
            for who in [1, 2, 3] {
                assert!(
                    during.iter().filter(|&&w| w == who).count() <= 1,
                    "{during:?}"
                );
            }
            assert!(during.contains(&2), "{during:?}");
            assert!(!(during.contains(&1) && during.contains(&3)), "{during:?}");
            assert_eq!(b.listener_count(), 2);
            assert!(b.close());
            let after: Vec<u8> = log::<K>()[during.len()..].iter().map(|e| e.0).collect();
            assert_eq!(after, [2, 3]);
        },
    );
}

/// Three threads on a one-slot table: one removes listener 1, one adds listener 2 (which fails
/// if the slot is still taken), one dispatches. At most one listener is called, once; a
/// listener whose add failed is never called.
#[test]
fn listener_remove_add_dispatch_three_threads() {
    const K: usize = 23;
    model::<K>("listener_remove_add_dispatch_three_threads", 3, || {
        begin_iteration::<K>();
        let b = listener_breaker::<1>();
        let id = b.add_listener(record::<K, 1>).unwrap();
        let t0 = thread::spawn(move || assert!(b.remove_listener(id)));
        let t1 = thread::spawn(move || b.add_listener(record::<K, 2>));
        let t2 = thread::spawn(move || assert!(b.open()));
        t0.join().unwrap();
        let added = t1.join().unwrap();
        t2.join().unwrap();
        let during = log::<K>();
        assert!(during.len() <= 1, "{during:?}");
        match added {
            Ok(_) => assert_eq!(b.listener_count(), 1),
            Err(e) => {
                assert_eq!(e, ListenerTableFull { capacity: 1 });
                assert!(received(&during, 2).is_empty(), "{during:?}");
                assert_eq!(b.listener_count(), 0);
            }
        }
        assert!(b.close());
        let after: Vec<u8> = log::<K>()[during.len()..].iter().map(|e| e.0).collect();
        assert_eq!(after, if added.is_ok() { vec![2] } else { vec![] });
    });
}

/// After adds and removes of per-call listeners have raced, the state word's `CALL_EVENTS` bit
/// says whether a registered listener wants per-call events, and a closed call behaves so: the
/// listeners that want calls get its `BeforeCall` and `Success`, and nobody else does.
fn call_events_settled<const K: usize, const L: usize>(
    b: &CircuitBreaker<ManualClock, L>,
    wanting: &[u8],
) {
    assert_eq!(
        b.call_events_bit(),
        !wanting.is_empty(),
        "bit vs {wanting:?}"
    );
    let before = log::<K>().len();
    assert!(b.call(|| Ok::<_, ()>(())).is_ok());
    let after = log::<K>()[before..].to_vec();
    for who in [1, 2, 3] {
        let want: Vec<EventKind> = if wanting.contains(&who) {
            vec![EventKind::BeforeCall, EventKind::Success { failures: 0 }]
        } else {
            vec![]
        };
        assert_eq!(received(&after, who), want, "listener {who}: {after:?}");
    }
}

/// One thread removes the only per-call listener (its re-check loop clears the bit) while the
/// other adds a new one (its loop sets it): whatever the interleaving, the bit ends set, and the
/// new listener hears the next call.
#[test]
fn call_events_bit_remove_races_add() {
    const K: usize = 25;
    model::<K>("call_events_bit_remove_races_add", 2, || {
        begin_iteration::<K>();
        let b = listener_breaker::<2>();
        let id1 = b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
        let t0 = thread::spawn(move || assert!(b.remove_listener(id1)));
        let t1 = thread::spawn(move || {
            b.add_listener_for(Interest::CALLS, record::<K, 2>).unwrap();
        });
        t0.join().unwrap();
        t1.join().unwrap();
        call_events_settled::<K, 2>(b, &[2]);
    });
}

/// Two threads each remove one of the two per-call listeners: the first removal's loop sees
/// one left and sets the bit; whatever the interleaving, the bit ends clear and nobody hears
/// the next call.
#[test]
fn call_events_bit_two_removes_race() {
    const K: usize = 27;
    model::<K>("call_events_bit_two_removes_race", 2, || {
        begin_iteration::<K>();
        let b = listener_breaker::<2>();
        let id1 = b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
        let id2 = b.add_listener_for(Interest::CALLS, record::<K, 2>).unwrap();
        let t0 = thread::spawn(move || assert!(b.remove_listener(id1)));
        let t1 = thread::spawn(move || assert!(b.remove_listener(id2)));
        t0.join().unwrap();
        t1.join().unwrap();
        call_events_settled::<K, 2>(b, &[]);
    });
}

/// A closed call with one per-call listener (the table's one-slot dispatch, with no loop) races
/// the removal of that listener (1) and the add of another (2) into the same slot. The call's
/// `BeforeCall` goes to 1, to 2 or to neither, never to both; its `Success` goes only to a
/// listener that got its `BeforeCall` (1 may miss it, being removed; 2 may not, being there to
/// the end). Afterwards only 2 hears calls.
///
/// Exhaustive, this model is 8.6 million interleavings (600 s); it runs with at most 3
/// preemptions. Each of the two races it guards against needs 2: the caller preempted after
/// loading the state word (or the plan), the other thread after publishing listener 2 but
/// before setting the per-call bit (or before listing it).
#[test]
fn one_call_listener_remove_readd_race_call() {
    const K: usize = 31;
    let name = "one_call_listener_remove_readd_race_call";
    model_bounded::<K>(name, 2, Some(Some(3)), || {
        begin_iteration::<K>();
        let b = listener_breaker::<1>();
        let id = b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
        let t0 = thread::spawn(move || {
            assert!(b.remove_listener(id));
            b.add_listener_for(Interest::CALLS, record::<K, 2>).unwrap();
        });
        let t1 = thread::spawn(move || assert!(b.call(|| Ok::<_, ()>(())).is_ok()));
        t0.join().unwrap();
        t1.join().unwrap();
        let during = log::<K>();
        let (one, two) = (received(&during, 1), received(&during, 2));
        let (before, success) = (EventKind::BeforeCall, EventKind::Success { failures: 0 });
        assert!(
            one.is_empty() || one == [before] || one == [before, success],
            "{during:?}"
        );
        assert!(two.is_empty() || two == [before, success], "{during:?}");
        assert!(
            one.is_empty() || two.is_empty(),
            "both heard one call: {during:?}"
        );
        call_events_settled::<K, 1>(b, &[2]);
    });
}

/// The bit's writers race a call that moves the state word by CAS (a failure counted, then a
/// trip): the CAS helper retries over the bit's atomic OR / AND-NOT, and the machine carries the
/// bit, so neither the count nor the bit is lost. Thread 0 removes the per-call listener, thread
/// 1 adds a state-change-only one, thread 2 fails a call (`fail_max` 1: it trips).
#[test]
fn call_events_bit_races_cas() {
    const K: usize = 26;
    model::<K>("call_events_bit_races_cas", 3, || {
        begin_iteration::<K>();
        let b: &'static CircuitBreaker<ManualClock, 2> = Box::leak(Box::new(CircuitBreaker::new(
            "loom",
            Config::new().fail_max(1),
            ManualClock::new(),
        )));
        let id1 = b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
        let t0 = thread::spawn(move || assert!(b.remove_listener(id1)));
        let t1 = thread::spawn(move || {
            b.add_listener_for(Interest::STATE_CHANGES, record::<K, 2>)
                .unwrap();
        });
        let t2 = thread::spawn(move || {
            assert!(matches!(
                b.call(|| Err::<(), _>(())),
                Err(crate::Error::Failed { tripped: true, .. })
            ));
        });
        t0.join().unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(b.state(), State::Open);
        assert!(
            !b.call_events_bit(),
            "the bit outlived the last per-call listener"
        );
        assert!(b.close());
        call_events_settled::<K, 2>(b, &[]);
    });
}

/// `trip_for` races a trial call after the open period: whatever the order, the breaker ends
/// Open with exactly the requested deadline. The trial cannot close it afterwards (its report
/// is from an earlier generation) and a call after it is rejected with that deadline.
#[test]
fn manual_trip_for_races_trial_call() {
    let s = Scenario {
        cfg: CFG,
        setup: vec![Allow(0), Report(0, F), Act::Advance(1_000)],
        threads: threads(&[&[Act::TripFor(5_000)], &[Allow(1), Report(1, S)]]),
        teardown: vec![],
        trial_cap: None,
    };
    check::<24>("manual_trip_for_races_trial_call", s, |run| {
        assert_eq!(run.end.state, State::Open, "{run:#?}");
        assert_eq!(
            run.end.retry_after,
            Some(core::time::Duration::from_millis(5_000))
        );
        match run.threads[1][0] {
            Obs::Rejected { state, retry_ms } => {
                assert_eq!((state, retry_ms), (State::Open, Some(5_000)))
            }
            Obs::Admitted { trial } => assert!(trial),
            o => panic!("{o:?}"),
        }
    });
}

/// What listener `who` heard of one call made while listeners were added and removed: nothing,
/// its `BeforeCall` then its `Success`, or (only if it was removed during the race) its
/// `BeforeCall` alone. Never an outcome without its `BeforeCall`, nor anything twice.
fn heard_call_whole(during: &[(u8, EventRecord)], who: u8, removed: bool) {
    let (before, success) = (EventKind::BeforeCall, EventKind::Success { failures: 0 });
    let got = received(during, who);
    assert!(
        got.is_empty() || got == [before, success] || (removed && got == [before]),
        "listener {who} (removed: {removed}): {during:?}"
    );
}

/// Thread 0 adds a per-call listener (1) while thread 1 removes a state-change-only one (3),
/// and thread 2 makes a closed call (`allow` then `success`). The removal runs the mirroring
/// loop too, and finds no per-call listener unless the add's count is already up: its AND-NOT
/// may land after the add's OR, and only its re-check of the count (or the add's own) puts the
/// bit back. Whatever the interleaving, the bit ends set; the call's `BeforeCall` reaches 1 only
/// with its `Success` (1 is never removed), and 3 hears nothing of it; afterwards 1, and only 1,
/// hears calls.
#[test]
fn call_events_bit_add_races_state_only_remove_and_call() {
    const K: usize = 32;
    model::<K>(
        "call_events_bit_add_races_state_only_remove_and_call",
        3,
        || {
            begin_iteration::<K>();
            let b = listener_breaker::<2>();
            let id3 = b
                .add_listener_for(Interest::STATE_CHANGES, record::<K, 3>)
                .unwrap();
            assert!(!b.call_events_bit());
            let t0 = thread::spawn(move || {
                b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
            });
            let t1 = thread::spawn(move || assert!(b.remove_listener(id3)));
            let t2 = thread::spawn(move || {
                assert_eq!(b.allow().unwrap().success(), Recorded::Counted);
            });
            t0.join().unwrap();
            t1.join().unwrap();
            t2.join().unwrap();
            let during = log::<K>();
            heard_call_whole(&during, 1, false);
            assert!(received(&during, 3).is_empty(), "{during:?}");
            assert_eq!(b.listener_count(), 1);
            call_events_settled::<K, 2>(b, &[1]);
        },
    );
}

/// Thread 0 adds a listener that wants everything (2, `Interest::ALL`) while thread 1 removes
/// the only per-call listener (1) and thread 2 makes a closed call. The removal's AND-NOT may
/// land after the add's OR; a loop's re-check of the count repairs it, so the bit ends set.
/// The call's `BeforeCall` goes to 1, to 2, to both or to neither; 2 (never removed) gets its
/// `Success` whenever it got its `BeforeCall`, and 1 may miss it only because it was removed.
/// Afterwards 2, and only 2, hears calls.
///
/// With the three-thread bound of 3 preemptions this model is 1.2 million interleavings (about
/// 60 s on one core); it runs with at most 2 (110 thousand, about 9 s). The bit's race needs
/// one: the remover preempted between reading the count and its AND-NOT, while the add
/// finishes (its count, its OR, its re-check); that leaves one for the call to land inside the
/// race (admitted on the quiet path while the bit is wrongly clear, or dispatching its
/// `BeforeCall` between the add's publication and its OR). With 2, the check fails if the
/// re-check loop is taken out, or if the count and the bit are written and read `Relaxed`.
#[test]
fn call_events_bit_add_all_races_remove_and_call() {
    const K: usize = 33;
    let name = "call_events_bit_add_all_races_remove_and_call";
    model_bounded::<K>(name, 3, Some(Some(2)), || {
        begin_iteration::<K>();
        let b = listener_breaker::<2>();
        // Listener 1 in the second slot, the first one free: the add claims it at once (a
        // failed claim of 1's slot would only add interleavings that test the table, not the
        // bit: `listener_remove_add_dispatch_three_threads` has those).
        let placeholder = b
            .add_listener_for(Interest::STATE_CHANGES, record::<K, 4>)
            .unwrap();
        let id1 = b.add_listener_for(Interest::CALLS, record::<K, 1>).unwrap();
        assert!(b.remove_listener(placeholder));
        assert!(b.call_events_bit());
        let t0 = thread::spawn(move || {
            b.add_listener_for(Interest::ALL, record::<K, 2>).unwrap();
        });
        let t1 = thread::spawn(move || assert!(b.remove_listener(id1)));
        let t2 = thread::spawn(move || {
            assert_eq!(b.allow().unwrap().success(), Recorded::Counted);
        });
        t0.join().unwrap();
        t1.join().unwrap();
        t2.join().unwrap();
        let during = log::<K>();
        heard_call_whole(&during, 1, true);
        heard_call_whole(&during, 2, false);
        assert_eq!(b.listener_count(), 1);
        call_events_settled::<K, 2>(b, &[2]);
    });
}

// ------------------------------------------------------------------------------ ARMED_AT

/// The clock reading of the race in the `ARMED_AT` checks: two days after the breaker's last
/// deadline was set (at 1,000 ms), so an `ARMED_AT` still at that old reading makes every
/// deadline read as passed.
const LONG_AFTER: u64 = 1_000 + 2 * crate::word::MAX_PERIOD_MS;

/// A consecutive-mode breaker (`fail_max` 1, 1 s open period, one trial, 60 s lease) whose
/// `ARMED_AT` is old: tripped at 0 ms, its trial admitted and closing it at 1,000 ms, then
/// left Closed until [`LONG_AFTER`].
fn long_idle_breaker() -> &'static Breaker {
    let b: &'static Breaker = Box::leak(Box::new(CircuitBreaker::new(
        "loom-armed",
        CFG.config(),
        ManualClock::new(),
    )));
    assert_eq!(b.allow().unwrap().failure(), Recorded::Tripped);
    b.clock().advance_ms(1_000);
    let trial = b.allow().unwrap();
    assert!(trial.is_trial());
    assert_eq!(trial.success(), Recorded::Closed);
    assert_eq!(b.state(), State::Closed);
    b.clock().advance_ms(LONG_AFTER - 1_000);
    b
}

/// How the writer of an `ARMED_AT` check sets its deadline, at [`LONG_AFTER`].
#[derive(Clone, Copy, Debug)]
enum Arm {
    /// A closed call's failure (`fail_max` 1): the trip's deadline is 1 s ahead.
    Trip,
    /// `open()`: 1 s ahead.
    Open,
    /// `trip_for(5 s)`.
    TripFor,
}

impl Arm {
    fn ms(self) -> u64 {
        match self {
            Arm::Trip | Arm::Open => 1_000,
            Arm::TripFor => 5_000,
        }
    }
}

/// One thread opens a long-idle breaker (its `ARMED_AT` two days old) at [`LONG_AFTER`]; the
/// other, with the clock at the same reading, calls `allow()` and then `retry_after()`. The
/// writer raises `ARMED_AT` (`Relaxed` `fetch_max`) before its `AcqRel` CAS, and the reader
/// loads the word (`Acquire`) before `ARMED_AT`, so a reader that sees the Open word sees the
/// new `ARMED_AT` too and reads the deadline as pending, with its whole period left. Were
/// either ordering broken, the reader could pair the new word with the old `ARMED_AT`, take
/// the deadline as two days past, and be admitted as a trial (or told to retry in 0 ms) the
/// instant the breaker opened.
fn armed_at_check<const K: usize>(name: &str, arm: Arm) {
    model::<K>(name, 2, move || {
        begin_iteration::<K>();
        let b = long_idle_breaker();
        let ms = arm.ms();
        let permit = b.allow().unwrap();
        let t0 = thread::spawn(move || match arm {
            Arm::Trip => assert_eq!(permit.failure(), Recorded::Tripped),
            Arm::Open => {
                drop(permit);
                assert!(b.open());
            }
            Arm::TripFor => {
                drop(permit);
                b.trip_for(core::time::Duration::from_millis(ms)).unwrap();
            }
        });
        let t1 = thread::spawn(move || {
            let allowed = match b.allow() {
                Ok(p) => {
                    // Only on the closed path, before the writer's CAS.
                    assert!(
                        !p.is_trial(),
                        "a trial admitted the instant the breaker opened"
                    );
                    None
                }
                Err(r) => Some((r.state, r.retry_after)),
            };
            (allowed, b.retry_after())
        });
        t0.join().unwrap();
        let (allowed, retry) = t1.join().unwrap();
        let full = Some(core::time::Duration::from_millis(ms));
        if let Some(rejected) = allowed {
            assert_eq!(
                rejected,
                (State::Open, full),
                "allow() at the deadline's setting"
            );
        }
        // Closed (before the writer's CAS), else Open with the whole period left.
        assert!(
            retry.is_none() || retry == full,
            "retry_after() = {retry:?}"
        );
        assert!(
            allowed.is_none() || retry.is_some(),
            "Open, then Closed again"
        );
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.retry_after(), full);
    });
}

/// [`armed_at_check`] with a trip: a closed call's failure.
#[test]
fn armed_at_trip_races_allow() {
    armed_at_check::<34>("armed_at_trip_races_allow", Arm::Trip);
}

/// [`armed_at_check`] with `open()`.
#[test]
fn armed_at_open_races_allow() {
    armed_at_check::<35>("armed_at_open_races_allow", Arm::Open);
}

/// [`armed_at_check`] with `trip_for(5 s)`.
#[test]
fn armed_at_trip_for_races_allow() {
    armed_at_check::<36>("armed_at_trip_for_races_allow", Arm::TripFor);
}

/// A trial's lease deadline, raced: a breaker tripped at 0 ms and left Open for two days (its
/// deadline long passed, `ARMED_AT` two days old) gets two calls at once with one trial slot.
/// The first to CAS moves it to HalfOpen with a 60 s lease, raising `ARMED_AT` first; the other
/// either loses that CAS (and re-reads the word) or loads the HalfOpen word afresh. Either way
/// it finds the slot taken and the lease pending, and must see the new `ARMED_AT` with that
/// word: with the old one it would take the lease as two days past and re-arm, a second trial
/// while the first is still running.
#[test]
fn armed_at_lease_races_second_trial() {
    const K: usize = 37;
    model::<K>("armed_at_lease_races_second_trial", 2, || {
        begin_iteration::<K>();
        let b: &'static Breaker = Box::leak(Box::new(CircuitBreaker::new(
            "loom-armed",
            CFG.config(),
            ManualClock::new(),
        )));
        assert_eq!(b.allow().unwrap().failure(), Recorded::Tripped);
        b.clock().advance_ms(LONG_AFTER);
        let call = move || match b.allow() {
            Ok(p) => {
                assert!(p.is_trial());
                core::mem::forget(p);
                None
            }
            Err(r) => Some((r.state, r.retry_after)),
        };
        let t0 = thread::spawn(call);
        let t1 = thread::spawn(call);
        let r = [t0.join().unwrap(), t1.join().unwrap()];
        let lease = Some(core::time::Duration::from_millis(CFG.lease_ms));
        let admitted = r.iter().filter(|r| r.is_none()).count();
        assert_eq!(admitted, 1, "{r:?}");
        assert!(r.contains(&Some((State::HalfOpen, lease))), "{r:?}");
        assert_eq!(b.state(), State::HalfOpen);
    });
}

// ------------------------------------------------------------------------------ rate mode

/// A rate-mode breaker (threshold 50%, window 2, minimum 2) with one failure and one success
/// already in its window, leaked so that loom threads can share it.
fn rate_breaker() -> &'static CircuitBreaker<ManualClock, 1> {
    let b: &'static CircuitBreaker<ManualClock, 1> = Box::leak(Box::new(CircuitBreaker::new(
        "loom-rate",
        Config::new().failure_rate(crate::FailureRate::new(50, 2)),
        ManualClock::new(),
    )));
    b.allow().unwrap().success();
    b
}

/// Two failures race on a rate-mode window (window 2, 50%, one success already in it): each
/// window CAS decides on the window it produced, and the trip is one CAS of the state word, so
/// exactly one of them reports `Tripped`, the breaker ends Open, and `fail_counter` says how
/// many failures were in the tripping window (1 or 2, depending on the order of the CASes).
#[test]
fn rate_window_updates_race_a_trip() {
    const K: usize = 29;
    model::<K>("rate_window_updates_race_a_trip", 2, || {
        begin_iteration::<K>();
        let b = rate_breaker();
        let p0 = b.allow().unwrap();
        let p1 = b.allow().unwrap();
        let t0 = thread::spawn(move || p0.failure());
        let t1 = thread::spawn(move || p1.failure());
        let r = [t0.join().unwrap(), t1.join().unwrap()];
        let trips = r.iter().filter(|r| **r == Recorded::Tripped).count();
        assert_eq!(trips, 1, "{r:?}");
        // The other report is counted in the window (its own trip dropped: already Open), or
        // finds the breaker Open and is dropped, as in consecutive mode.
        assert!(r
            .iter()
            .all(|r| matches!(r, Recorded::Tripped | Recorded::Counted | Recorded::Dropped)));
        assert_eq!(b.state(), State::Open);
        assert!(matches!(b.fail_counter(), 1 | 2));
    });
}

/// A failure whose window update trips races `close()` of the Closed breaker. `close()` starts
/// a new generation, so the trip decided on the old window either lands before it (and
/// `close()` closes the breaker again) or is dropped: the breaker always ends Closed, with an
/// empty window, and a success and a failure in the old generation never count in the new one.
#[test]
fn rate_trip_races_close() {
    const K: usize = 30;
    model::<K>("rate_trip_races_close", 2, || {
        begin_iteration::<K>();
        let b = rate_breaker();
        let p = b.allow().unwrap();
        let t0 = thread::spawn(move || p.failure());
        let t1 = thread::spawn(move || b.close());
        let recorded = t0.join().unwrap();
        let changed = t1.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        // close() changed the state exactly when the trip landed first.
        assert_eq!(changed, recorded == Recorded::Tripped, "{recorded:?}");
        assert_eq!(b.failure_window(), Some((0, 0)));
        assert_eq!(b.fail_counter(), 0);
    });
}
