//! Multi-thread stress tests: 8 threads on one breaker, time on `ManualClock`.
//!
//! Worker threads never panic (a panic would leave the others waiting at a barrier): they count
//! anomalies, and the test asserts on the counts after every thread has been joined.
//! Each test has its own breaker name and its own event counters, filled by one listener.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Barrier, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, ManualClock, Outcome, Permit, Recorded,
    State,
};

const THREADS: usize = 8;

// ------------------------------------------------------------------ event counters

const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
];

fn idx(s: State) -> usize {
    STATES.iter().position(|&x| x == s).unwrap()
}

/// Every event of one breaker, counted.
struct Counters {
    /// `changes[from][to]`: state changes seen by the listener.
    changes: [[AtomicUsize; 5]; 5],
    before_call: AtomicUsize,
    success: AtomicUsize,
    failure: AtomicUsize,
    ignored: AtomicUsize,
    rejected: AtomicUsize,
}

impl Counters {
    const fn new() -> Self {
        Counters {
            changes: [const { [const { AtomicUsize::new(0) }; 5] }; 5],
            before_call: AtomicUsize::new(0),
            success: AtomicUsize::new(0),
            failure: AtomicUsize::new(0),
            ignored: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
        }
    }

    fn record(&self, kind: EventKind) {
        let c = match kind {
            EventKind::StateChange { from, to, .. } => &self.changes[idx(from)][idx(to)],
            EventKind::BeforeCall => &self.before_call,
            EventKind::Success { .. } => &self.success,
            EventKind::Failure { .. } => &self.failure,
            EventKind::Ignored { .. } => &self.ignored,
            EventKind::Rejected { .. } => &self.rejected,
            _ => return,
        };
        c.fetch_add(1, SeqCst);
    }

    fn change(&self, from: State, to: State) -> usize {
        self.changes[idx(from)][idx(to)].load(SeqCst)
    }

    fn into(&self, to: State) -> usize {
        STATES.iter().map(|&f| self.change(f, to)).sum()
    }

    fn out_of(&self, from: State) -> usize {
        STATES.iter().map(|&t| self.change(from, t)).sum()
    }
}

static WINNER_1: Counters = Counters::new();
static WINNER_3: Counters = Counters::new();
static IN_FLIGHT: Counters = Counters::new();
static EXACTLY_ONCE: Counters = Counters::new();
static NO_CALL: Counters = Counters::new();

/// The one listener: routes each event to its breaker's counters.
fn count(e: &Event) {
    let c = match e.name {
        "winner_1" => &WINNER_1,
        "winner_3" => &WINNER_3,
        "in_flight" => &IN_FLIGHT,
        "exactly_once" => &EXACTLY_ONCE,
        "no_call" => &NO_CALL,
        _ => return,
    };
    c.record(e.kind);
}

// ------------------------------------------------------------------ helpers

/// xorshift64*: a small deterministic generator, one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Anomalies found during a run, asserted on after the threads are joined.
#[derive(Default)]
struct Problems(Mutex<Vec<String>>);

impl Problems {
    fn push(&self, p: String) {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if v.len() < 20 {
            v.push(p);
        }
    }
    fn check(self) {
        let v = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        assert!(v.is_empty(), "{} problem(s):\n{}", v.len(), v.join("\n"));
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Flow conservation of state changes: every state is entered as often as it is left, except
/// the start (Closed, left once more) and the end (entered once more).
fn assert_changes_conserved(c: &Counters, end: State) {
    for s in STATES {
        let balance = c.into(s) as i64 - c.out_of(s) as i64;
        let expected = i64::from(s == end) - i64::from(s == State::Closed);
        assert_eq!(
            balance,
            expected,
            "{s:?}: entered {} times, left {} times, final state {end:?}",
            c.into(s),
            c.out_of(s)
        );
        assert_eq!(c.change(s, s), 0, "{s:?} -> {s:?} is not a change");
    }
}

// ------------------------------------------------------------------ (1) one winner

/// Round after round, the breaker sits Open with its period over and 8 threads released at
/// once call `allow()`: exactly one of them moves it to HalfOpen and exactly
/// `half_open_max_calls` are admitted.
fn one_winner(name: &'static str, h: usize, c: &'static Counters) {
    const ROUNDS: usize = 2_000;
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        name,
        Config::new()
            .fail_max(1)
            .reset_timeout(secs(1))
            .half_open_max_calls(h as u32)
            .trial_lease(secs(60)),
        &clock,
    )
    .with_listener(count);
    let start = Barrier::new(THREADS + 1);
    let decided = Barrier::new(THREADS + 1);
    let checked = Barrier::new(THREADS + 1);
    let reported = Barrier::new(THREADS + 1);
    let admitted = AtomicUsize::new(0);
    let rejected = AtomicUsize::new(0);
    // 0: drop the trial permits unreported, 1: report success, 2: report failure.
    let mode = AtomicUsize::new(0);
    let closed = AtomicUsize::new(0);
    let tripped = AtomicUsize::new(0);
    let dropped = AtomicUsize::new(0);
    let problems = Problems::default();

    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    start.wait();
                    let r = b.allow();
                    match &r {
                        Ok(p) if p.is_trial() => {
                            admitted.fetch_add(1, SeqCst);
                        }
                        Ok(_) => problems.push("a non-trial permit in a trial round".into()),
                        Err(rej) => {
                            rejected.fetch_add(1, SeqCst);
                            // Losers of the race see the winner's HalfOpen, slots full.
                            if rej.state != State::HalfOpen || rej.retry_after != Some(secs(60)) {
                                problems.push(format!("unexpected rejection {rej:?}"));
                            }
                        }
                    }
                    decided.wait();
                    // The coordinator checks the admissions while every permit is held.
                    checked.wait();
                    if let Ok(p) = r {
                        let rec = match mode.load(SeqCst) {
                            0 => {
                                drop(p);
                                None
                            }
                            1 => Some(p.success()),
                            _ => Some(p.failure()),
                        };
                        match rec {
                            Some(Recorded::Closed) => closed.fetch_add(1, SeqCst),
                            Some(Recorded::Tripped) => tripped.fetch_add(1, SeqCst),
                            Some(Recorded::Dropped) => dropped.fetch_add(1, SeqCst),
                            Some(Recorded::Counted) | None => 0,
                        };
                    }
                    reported.wait();
                }
            });
        }

        for round in 0..ROUNDS {
            // Every permit of the last round is reported: open, and let the period pass.
            b.trip_for(secs(1)).unwrap();
            clock.advance(secs(1));
            let m = round % 3;
            mode.store(m, SeqCst);
            let winners_before = c.change(State::Open, State::HalfOpen);

            start.wait();
            decided.wait();
            let a = admitted.swap(0, SeqCst);
            let r = rejected.swap(0, SeqCst);
            let winners = c.change(State::Open, State::HalfOpen) - winners_before;
            if a != h || r != THREADS - h || winners != 1 {
                problems.push(format!(
                    "round {round}: {a} admitted, {r} rejected, {winners} Open -> HalfOpen"
                ));
            }
            if b.state() != State::HalfOpen || b.trial_calls() as usize != h {
                problems.push(format!("round {round}: {:?}", b.snapshot()));
            }
            checked.wait();
            reported.wait();
            let (cl, tr, dr) = (
                closed.swap(0, SeqCst),
                tripped.swap(0, SeqCst),
                dropped.swap(0, SeqCst),
            );
            // Only the first report of a generation counts; the others are from a past one.
            let ok = match m {
                0 => {
                    b.state() == State::HalfOpen
                        && b.trial_calls() == 0
                        && (cl, tr, dr) == (0, 0, 0)
                }
                1 => b.state() == State::Closed && (cl, tr, dr) == (1, 0, h - 1),
                _ => b.state() == State::Open && (cl, tr, dr) == (0, 1, h - 1),
            };
            if !ok {
                problems.push(format!(
                    "round {round} mode {m}: closed {cl} tripped {tr} dropped {dr}, {:?}",
                    b.snapshot()
                ));
            }
        }
    });
    problems.check();

    assert_eq!(c.change(State::Open, State::HalfOpen), ROUNDS);
    assert_eq!(c.before_call.load(SeqCst), ROUNDS * h);
    assert_eq!(c.rejected.load(SeqCst), ROUNDS * (THREADS - h));
    assert_changes_conserved(c, b.state());
}

#[test]
fn exactly_one_open_to_half_open_winner_with_one_trial_slot() {
    one_winner("winner_1", 1, &WINNER_1);
}

#[test]
fn exactly_one_open_to_half_open_winner_with_three_trial_slots() {
    one_winner("winner_3", 3, &WINNER_3);
}

// ------------------------------------------------------------------ (2) trial calls in flight

/// Threads hammer a half-open breaker. Each admitted trial raises a shared gauge while its call
/// runs (after `allow()` returned, before its report): the gauge never exceeds
/// `half_open_max_calls`.
///
/// Sound because, within a round, the clock stands still: once the breaker leaves HalfOpen
/// (closed by enough successes, or re-opened by a failure) it cannot return to HalfOpen, so
/// every trial permit of the round belongs to the same half-open generation. The clock moves
/// only between rounds, when every permit has been reported.
#[test]
fn trial_calls_in_flight_never_exceed_half_open_max_calls() {
    const H: usize = 3;
    const ROUNDS: usize = 400;
    const OPS: usize = 300;
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "in_flight",
        Config::new()
            .fail_max(1)
            .reset_timeout(secs(1))
            .half_open_max_calls(H as u32)
            .success_threshold(25)
            .trial_lease(secs(60)),
        &clock,
    )
    .with_listener(count);
    let start = Barrier::new(THREADS + 1);
    let end = Barrier::new(THREADS + 1);
    let gauge = AtomicUsize::new(0);
    let max_seen = AtomicUsize::new(0);
    let trials = AtomicUsize::new(0);
    let full = AtomicUsize::new(0);
    let problems = Problems::default();

    thread::scope(|s| {
        for t in 0..THREADS {
            let (b, gauge, max_seen, trials, full, problems) =
                (&b, &gauge, &max_seen, &trials, &full, &problems);
            let (start, end) = (&start, &end);
            s.spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                for _ in 0..ROUNDS {
                    start.wait();
                    for _ in 0..OPS {
                        match b.allow() {
                            Ok(p) if p.is_trial() => {
                                trials.fetch_add(1, SeqCst);
                                let n = gauge.fetch_add(1, SeqCst) + 1;
                                max_seen.fetch_max(n, SeqCst);
                                if n > H {
                                    problems.push(format!("{n} trial calls in flight"));
                                }
                                let held = b.trial_calls() as usize;
                                if held > H {
                                    problems.push(format!("trial_calls() = {held}"));
                                }
                                // The call: give the other threads a chance to get in.
                                thread::yield_now();
                                gauge.fetch_sub(1, SeqCst);
                                match rng.below(100) {
                                    0 => drop(p.failure()),
                                    1..=55 => drop(p.success()),
                                    56..=80 => drop(p.ignore()),
                                    _ => drop(p),
                                }
                            }
                            Ok(p) => drop(p.success()),
                            Err(rej) => {
                                if rej.state == State::HalfOpen {
                                    full.fetch_add(1, SeqCst);
                                }
                            }
                        }
                    }
                    end.wait();
                }
            });
        }
        for _ in 0..ROUNDS {
            b.trip_for(secs(1)).unwrap();
            clock.advance(secs(1));
            start.wait();
            end.wait();
        }
    });
    problems.check();

    let c = &IN_FLIGHT;
    assert_eq!(gauge.load(SeqCst), 0);
    assert_eq!(
        max_seen.load(SeqCst),
        H,
        "the limit was reached (the test had teeth)"
    );
    assert!(full.load(SeqCst) > 0, "some callers found every slot taken");
    assert_eq!(c.change(State::Open, State::HalfOpen), ROUNDS);
    assert!(trials.load(SeqCst) >= ROUNDS * H);
    assert_changes_conserved(c, b.state());
}

// ------------------------------------------------------------------ (3) every change once

/// Threads drive random calls (some permits held and reported late, out of order, or dropped),
/// clock advances and, on one thread, management operations. At the end, the state changes the
/// listener saw must account exactly for what the callers were told: every report that tripped
/// or closed the breaker, and every management operation that changed the state, is one change,
/// and changes chain (each state is left as often as it is entered).
#[test]
fn every_state_change_is_seen_exactly_once() {
    const OPS: usize = 100_000;
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "exactly_once",
        Config::new()
            .fail_max(3)
            .reset_timeout(Duration::from_millis(20))
            .success_threshold(2)
            .half_open_max_calls(2)
            .trial_lease(Duration::from_millis(30))
            .backoff(Backoff::exponential(Duration::from_millis(200)).jitter_percent(20)),
        &clock,
    )
    .with_listener(count);

    #[derive(Default)]
    struct Tally {
        admitted: AtomicUsize,
        rejected: AtomicUsize,
        reports: [AtomicUsize; 3],
        tripped: AtomicUsize,
        closed: AtomicUsize,
        /// Management operations that changed the state, by target state.
        manual: [AtomicUsize; 5],
    }
    let tally = Tally::default();
    let go = Barrier::new(THREADS);

    thread::scope(|s| {
        for t in 0..THREADS {
            let (b, clock, tally, go) = (&b, &clock, &tally, &go);
            s.spawn(move || {
                let mut rng = Rng::new(1000 + t as u64);
                let mut held: Vec<Permit<'_, &ManualClock, 4>> = Vec::new();
                let report = |p: Permit<'_, &ManualClock, 4>, rng: &mut Rng| {
                    let outcome = match rng.below(10) {
                        0..=4 => Outcome::Success,
                        5..=8 => Outcome::Failure,
                        _ => Outcome::Ignored,
                    };
                    tally.reports[outcome as usize].fetch_add(1, SeqCst);
                    match p.report(outcome) {
                        Recorded::Tripped => tally.tripped.fetch_add(1, SeqCst),
                        Recorded::Closed => tally.closed.fetch_add(1, SeqCst),
                        _ => 0,
                    };
                };
                go.wait();
                for _ in 0..OPS {
                    match rng.below(100) {
                        0..=59 => match b.allow() {
                            Ok(p) => {
                                tally.admitted.fetch_add(1, SeqCst);
                                if held.len() < 3 && rng.below(4) == 0 {
                                    held.push(p);
                                } else {
                                    report(p, &mut rng);
                                }
                            }
                            Err(_) => {
                                tally.rejected.fetch_add(1, SeqCst);
                            }
                        },
                        60..=74 if !held.is_empty() => {
                            // A late report, from any held permit.
                            let i = rng.below(held.len() as u64) as usize;
                            report(held.swap_remove(i), &mut rng);
                        }
                        75..=79 if !held.is_empty() => {
                            // Dropped unreported.
                            let i = rng.below(held.len() as u64) as usize;
                            drop(held.swap_remove(i));
                        }
                        80..=97 => clock.advance_ms(rng.below(12)),
                        98 | 99 if t == 0 => {
                            let (changed, to) = match rng.below(5) {
                                0 => (b.open(), State::Open),
                                1 => (b.close(), State::Closed),
                                2 => (b.half_open(), State::HalfOpen),
                                3 => (b.force_open(), State::ForcedOpen),
                                _ => (b.disable(), State::Disabled),
                            };
                            if changed {
                                tally.manual[idx(to)].fetch_add(1, SeqCst);
                            }
                        }
                        _ => {}
                    }
                }
                // Remaining permits are dropped unreported: they count nothing.
            });
        }
    });

    let c = &EXACTLY_ONCE;
    let manual = |s: State| tally.manual[idx(s)].load(SeqCst);
    let end = b.state();
    eprintln!(
        "every_state_change_is_seen_exactly_once: {} admitted, {} rejected, {} trips, {} closes, \
         manual {:?}, final {end:?}",
        tally.admitted.load(SeqCst),
        tally.rejected.load(SeqCst),
        tally.tripped.load(SeqCst),
        tally.closed.load(SeqCst),
        tally
            .manual
            .iter()
            .map(|m| m.load(SeqCst))
            .collect::<Vec<_>>(),
    );

    // Each state change reported to a caller is exactly one change seen by the listener.
    assert_eq!(
        c.into(State::Open),
        tally.tripped.load(SeqCst) + manual(State::Open)
    );
    assert_eq!(
        c.into(State::Closed),
        tally.closed.load(SeqCst) + manual(State::Closed)
    );
    assert_eq!(c.into(State::ForcedOpen), manual(State::ForcedOpen));
    assert_eq!(c.into(State::Disabled), manual(State::Disabled));
    // Into HalfOpen: the manual moves plus the winners of Open -> HalfOpen; only a manual move
    // enters HalfOpen from anything but Open.
    assert!(c.into(State::HalfOpen) >= manual(State::HalfOpen));
    assert!(
        c.into(State::HalfOpen) - c.change(State::Open, State::HalfOpen) <= manual(State::HalfOpen)
    );
    assert_changes_conserved(c, end);
    // The automatic changes all happened, many times over.
    for (from, to) in [
        (State::Closed, State::Open),
        (State::Open, State::HalfOpen),
        (State::HalfOpen, State::Open),
        (State::HalfOpen, State::Closed),
    ] {
        assert!(
            c.change(from, to) > 10,
            "{from:?} -> {to:?}: {}",
            c.change(from, to)
        );
    }

    // And every other event exactly once per call.
    assert_eq!(c.before_call.load(SeqCst), tally.admitted.load(SeqCst));
    assert_eq!(c.rejected.load(SeqCst), tally.rejected.load(SeqCst));
    assert_eq!(c.success.load(SeqCst), tally.reports[0].load(SeqCst));
    assert_eq!(c.failure.load(SeqCst), tally.reports[1].load(SeqCst));
    assert_eq!(c.ignored.load(SeqCst), tally.reports[2].load(SeqCst));
    assert_eq!(b.listener_panics(), 0);
}

// ------------------------------------------------------------------ (4) no call while open

/// No call may start once the breaker is known to be open.
///
/// "A call body runs while the state is Open" is not a sound check: a call admitted in Closed
/// legitimately runs on while another thread trips the breaker. What must hold is this: once
/// `force_open()` has returned (or a report has returned `Recorded::Tripped`) and the clock does
/// not move, an `allow()` that *begins* after that is rejected. So the thread that opened the
/// breaker raises a gate flag after the opening call returns, and each worker reads the gate
/// *before* calling `allow()`. A worker that saw the gate raised and was still admitted is a
/// violation: the gate's store happens-before its load, so its `allow()` must see the open word
/// (nothing in the round can leave it: ForcedOpen waits for an operator, Open for the clock).
#[test]
fn no_call_starts_after_the_breaker_is_open() {
    const ROUNDS: usize = 300;
    let clock = ManualClock::new();
    let b: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "no_call",
        Config::new()
            .fail_max(3)
            .reset_timeout(secs(1))
            .half_open_max_calls(2)
            .success_threshold(127)
            .trial_lease(secs(60)),
        &clock,
    )
    .with_listener(count);

    let start = Barrier::new(THREADS + 1);
    let end = Barrier::new(THREADS + 1);
    // 0: the coordinator forces the breaker open; 1: workers' failures trip it from Closed;
    // 2: the same from HalfOpen (a trial failure re-opens).
    let mode = AtomicUsize::new(0);
    let gate = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let progress = AtomicUsize::new(0);
    let after_gate = AtomicUsize::new(0);
    let admitted_before_gate = AtomicUsize::new(0);
    let violations = AtomicUsize::new(0);
    let problems = Problems::default();

    thread::scope(|s| {
        for t in 0..THREADS {
            let (b, start, end, mode, gate, stop, progress) =
                (&b, &start, &end, &mode, &gate, &stop, &progress);
            let (after_gate, admitted_before_gate, violations, problems) =
                (&after_gate, &admitted_before_gate, &violations, &problems);
            s.spawn(move || {
                let mut rng = Rng::new(77 + t as u64);
                for _ in 0..ROUNDS {
                    start.wait();
                    let m = mode.load(SeqCst);
                    while !stop.load(SeqCst) {
                        let gated = gate.load(SeqCst);
                        let r = b.allow();
                        progress.fetch_add(1, SeqCst);
                        if gated {
                            after_gate.fetch_add(1, SeqCst);
                        }
                        let p = match r {
                            Ok(p) => p,
                            Err(rej) => {
                                if gated && !rej.state.is_open() {
                                    problems.push(format!("rejected after the gate by {rej:?}"));
                                }
                                thread::yield_now();
                                continue;
                            }
                        };
                        if gated {
                            violations.fetch_add(1, SeqCst);
                            problems.push(format!("call admitted after the gate: {p:?}"));
                        } else {
                            admitted_before_gate.fetch_add(1, SeqCst);
                        }
                        // The call body.
                        thread::yield_now();
                        let fail = m != 0 && rng.below(4) == 0;
                        let rec = if fail {
                            p.failure()
                        } else if rng.below(2) == 0 {
                            p.success()
                        } else {
                            p.ignore()
                        };
                        if rec == Recorded::Tripped {
                            // The report returned after the CAS that opened the breaker.
                            gate.store(true, SeqCst);
                        }
                    }
                    end.wait();
                }
            });
        }

        for round in 0..ROUNDS {
            let m = round % 3;
            b.close();
            if m == 2 {
                b.trip_for(secs(1)).unwrap();
                clock.advance(secs(1));
            }
            mode.store(m, SeqCst);
            gate.store(false, SeqCst);
            stop.store(false, SeqCst);
            progress.store(0, SeqCst);
            let gated_before = after_gate.load(SeqCst);

            start.wait();
            if m == 0 {
                while progress.load(SeqCst) < 200 {
                    thread::yield_now();
                }
                b.force_open();
                gate.store(true, SeqCst);
            }
            // Let the workers try many calls after the gate, then stop the round.
            let mut spins = 0u64;
            while after_gate.load(SeqCst) - gated_before < 400 {
                spins += 1;
                if spins > 50_000_000 {
                    problems.push(format!("round {round}: the gate never rose"));
                    break;
                }
                thread::yield_now();
            }
            stop.store(true, SeqCst);
            end.wait();
            let expected = if m == 0 {
                State::ForcedOpen
            } else {
                State::Open
            };
            if b.state() != expected {
                problems.push(format!("round {round}: ended {:?}", b.snapshot()));
            }
        }
    });
    problems.check();
    assert_eq!(violations.load(SeqCst), 0);
    assert!(after_gate.load(SeqCst) >= ROUNDS * 400);
    assert!(admitted_before_gate.load(SeqCst) > ROUNDS * 10);
    let c = &NO_CALL;
    assert_eq!(c.change(State::Closed, State::ForcedOpen), ROUNDS / 3);
    assert_changes_conserved(c, b.state());
}
