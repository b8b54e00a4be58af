//! Benchmarks of the breaker's hot paths, each against a bare atomic load in the same bench
//! group, and against the Rust peers (`failsafe`, `recloser`) on the same workloads.
//!
//! Every figure worth quoting is a ratio between two benchmarks of one group in one run: the
//! machines these run on are shared and noisy, and a ratio cancels most of that noise.
//!
//! Run with `cargo bench --bench breaker`; BENCHMARKS.md has the results and how to read them.
//! Before the criterion groups, the binary counts how many trial calls each crate admits when 8
//! threads arrive together just after the open period (the half-open herd) and prints a table.
//!
//! Groups:
//! - `closed_path`: `allow()` + `success()`, `call(|| Ok(..))` (its result `black_box`ed whole,
//!   and matched as a caller would), the same without a listener
//!   table (`L = 0`), with one listener fed every event, with one listener that wants only
//!   state changes and rejections, and recloser's `call`, against an `Acquire` load of an `AtomicU64` plus a
//!   compare.
//! - `open_path`: rejection of an Open breaker (which reads the clock), ours and the peers',
//!   and the clock reads alone (`StdClock`, `InstantClock`, `Instant::now()`).
//! - `half_open_claim`: claiming a trial slot in HalfOpen and giving it back (two CASes).
//! - `two_threads`: the closed path from one thread and from two threads sharing one breaker;
//!   the figure is the time per call as each thread sees it.
//! - `peers`: the closed path of failsafe (two policies), recloser and ours.
//!
//! The tower layer's bench (bare service, `BreakerLayer`, tower-resilience in one group) is
//! `servers/benches/layer.rs`, kept out of this crate's dev-dependencies.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use atomic_breaker::{
    CircuitBreaker, Clock, Config, Event, InstantClock, Interest, ManualClock, State, StdClock,
};
use common::on_threads;
use criterion::{BenchmarkGroup, Criterion};
use failsafe::CircuitBreaker as _;

/// An open period no benchmark outlives.
const LONG: Duration = Duration::from_secs(3600);

/// Criterion settings for every group: short enough that a full run takes a few minutes.
fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
}

// ------------------------------------------------------------------------- workloads

/// The baseline: what a caller would pay to check a flag itself. An `Acquire` load of an
/// `AtomicU64` and a compare; `black_box` on the address and the result keeps both.
#[inline(always)]
fn baseline(word: &AtomicU64) {
    black_box(black_box(word).load(Ordering::Acquire) == 0);
}

/// Ours, two-step: `allow()`, then report success if admitted (the open path's rejection
/// takes the other branch).
#[inline(always)]
fn ours_allow_success<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>) {
    match black_box(b).allow() {
        Ok(permit) => {
            black_box(permit.success());
        }
        Err(rejected) => {
            black_box(rejected);
        }
    }
}

/// Ours, one step: `call(|| Ok(..))`.
#[inline(always)]
fn ours_call<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>) {
    let _ = black_box(black_box(b).call(|| Ok::<_, ()>(black_box(1u32))));
}

/// Ours, one step, its result matched as a caller would rather than `black_box`ed whole: the
/// whole `Result<u32, Error<()>>` is 40 bytes (the `Rejected` variant sets its size), and
/// `black_box` stores all of it on every call.
#[inline(always)]
fn ours_call_matched<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>) {
    match black_box(b).call(|| Ok::<_, ()>(black_box(1u32))) {
        Ok(v) => {
            black_box(v);
        }
        Err(e) => {
            black_box(e.is_rejected());
        }
    }
}

/// failsafe's `call(|| Ok(..))`, for either policy.
#[inline(always)]
fn failsafe_call(b: &impl failsafe::CircuitBreaker) {
    let _ = black_box(black_box(b).call(|| Ok::<_, ()>(black_box(1u32))));
}

/// recloser's `call(|| Ok(..))`.
#[inline(always)]
fn recloser_call(b: &recloser::Recloser) {
    let _ = black_box(black_box(b).call(|| Ok::<_, ()>(black_box(1u32))));
}

/// A listener that does nothing but exists, to show what dispatch costs.
fn noop_listener(e: &Event) {
    black_box(e);
}

// ------------------------------------------------------------------------- breakers

fn ours_closed() -> CircuitBreaker<ManualClock> {
    CircuitBreaker::new("bench", Config::new(), ManualClock::new())
}

/// Ours without a listener table (`L = 0`): the listener checks compile out.
fn ours_closed_no_table() -> CircuitBreaker<ManualClock, 0> {
    CircuitBreaker::new("bench", Config::new(), ManualClock::new())
}

/// Ours, tripped for an hour on a clock `C`.
fn ours_open<C: Clock>(clock: C) -> CircuitBreaker<C> {
    let b = CircuitBreaker::new(
        "bench",
        Config::new().fail_max(1).reset_timeout(LONG),
        clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Open);
    b
}

/// failsafe with the consecutive-failures policy: `n` failures trip it, `backoff` gives the
/// open periods.
fn failsafe_consecutive(
    n: u32,
    backoff: impl Iterator<Item = Duration> + Clone + Send + Sync,
) -> impl failsafe::CircuitBreaker + Sync {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(n, backoff))
        .build()
}

/// The closed-path peer: 5 consecutive failures, exponential backoff 10 s .. 60 s.
fn failsafe_exp() -> impl failsafe::CircuitBreaker + Sync {
    failsafe_consecutive(
        5,
        failsafe::backoff::exponential(Duration::from_secs(10), Duration::from_secs(60)),
    )
}

/// failsafe's default: success rate over a time window, or else consecutive failures.
fn failsafe_default() -> impl failsafe::CircuitBreaker + Sync {
    failsafe::Config::new().build()
}

fn recloser_default() -> recloser::Recloser {
    recloser::Recloser::default()
}

// ------------------------------------------------------------------------- groups

fn closed_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_path");
    configure(&mut g);
    let word = AtomicU64::new(0);
    let b = ours_closed();
    let bare = ours_closed_no_table();
    let with_listener = ours_closed();
    with_listener.add_listener(noop_listener).unwrap();
    let with_state_listener = ours_closed();
    with_state_listener
        .add_listener_for(
            Interest::STATE_CHANGES | Interest::REJECTIONS,
            noop_listener,
        )
        .unwrap();
    let rc = recloser_default();

    g.bench_function("baseline_atomic_load", |i| i.iter(|| baseline(&word)));
    g.bench_function("ours_allow_success", |i| i.iter(|| ours_allow_success(&b)));
    g.bench_function("ours_call", |i| i.iter(|| ours_call(&b)));
    g.bench_function("ours_call_matched", |i| i.iter(|| ours_call_matched(&b)));
    g.bench_function("ours_allow_success_no_table", |i| {
        i.iter(|| ours_allow_success(&bare))
    });
    g.bench_function("ours_call_no_table", |i| i.iter(|| ours_call(&bare)));
    g.bench_function("ours_allow_success_1_listener", |i| {
        i.iter(|| ours_allow_success(&with_listener))
    });
    g.bench_function("ours_call_1_listener", |i| {
        i.iter(|| ours_call(&with_listener))
    });
    g.bench_function("ours_allow_success_state_listener", |i| {
        i.iter(|| ours_allow_success(&with_state_listener))
    });
    g.bench_function("ours_call_state_listener", |i| {
        i.iter(|| ours_call(&with_state_listener))
    });
    g.bench_function("recloser_call", |i| i.iter(|| recloser_call(&rc)));
    g.finish();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(bare.state(), State::Closed);
    assert_eq!(with_listener.state(), State::Closed);
}

fn open_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("open_path");
    configure(&mut g);
    let word = AtomicU64::new(0);
    let manual = ours_open(ManualClock::new());
    let std_clock = ours_open(StdClock);
    let instant_clock = ours_open(InstantClock);
    let fs = failsafe_consecutive(1, failsafe::backoff::constant(LONG));
    let _ = fs.call(|| Err::<(), _>("down"));
    assert!(!fs.is_call_permitted());
    let rc = recloser::Recloser::custom()
        .closed_len(2)
        .open_wait(LONG)
        .build();
    trip_recloser(&rc);

    g.bench_function("baseline_atomic_load", |i| i.iter(|| baseline(&word)));
    g.bench_function("ours_allow_rejected_manual_clock", |i| {
        i.iter(|| ours_allow_success(&manual))
    });
    g.bench_function("ours_allow_rejected_std_clock", |i| {
        i.iter(|| ours_allow_success(&std_clock))
    });
    g.bench_function("ours_allow_rejected_instant_clock", |i| {
        i.iter(|| ours_allow_success(&instant_clock))
    });
    g.bench_function("std_clock_now_ms", |i| {
        i.iter(|| black_box(black_box(&StdClock).now_ms()))
    });
    g.bench_function("instant_clock_now_ms", |i| {
        i.iter(|| black_box(black_box(&InstantClock).now_ms()))
    });
    g.bench_function("instant_now", |i| i.iter(|| black_box(Instant::now())));
    g.bench_function("failsafe_is_call_permitted_rejected", |i| {
        i.iter(|| black_box(black_box(&fs).is_call_permitted()))
    });
    g.bench_function("recloser_call_rejected", |i| i.iter(|| recloser_call(&rc)));
    g.finish();
    assert_eq!(manual.state(), State::Open);
    assert_eq!(std_clock.state(), State::Open);
    assert!(!fs.is_call_permitted());
}

fn half_open_claim(c: &mut Criterion) {
    let mut g = c.benchmark_group("half_open_claim");
    configure(&mut g);
    let word = AtomicU64::new(0);
    let b = ours_closed();
    b.half_open();
    assert_eq!(b.state(), State::HalfOpen);

    g.bench_function("baseline_atomic_load", |i| i.iter(|| baseline(&word)));
    g.bench_function("ours_claim_and_release", |i| {
        i.iter(|| {
            // Claims the slot (CAS), then the permit's drop gives it back (CAS).
            let permit = black_box(&b).allow().unwrap();
            black_box(permit.is_trial());
        })
    });
    g.finish();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(b.trial_calls(), 0);
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_threads");
    configure(&mut g);
    let word = AtomicU64::new(0);
    let b = ours_closed();
    let fs = failsafe_exp();
    let rc = recloser_default();

    for threads in [1, 2] {
        g.bench_function(format!("baseline_atomic_load/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &word, |x, _, _| baseline(x)))
        });
        g.bench_function(format!("baseline_shared_fetch_add/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &word, |w, _, _| {
                    black_box(black_box(w).fetch_add(1, Ordering::AcqRel));
                })
            })
        });
        g.bench_function(format!("ours_allow_success/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &b, |x, _, _| ours_allow_success(x)))
        });
        g.bench_function(format!("ours_call/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &b, |x, _, _| ours_call(x)))
        });
        g.bench_function(format!("failsafe_consecutive_call/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &fs, |x, _, _| failsafe_call(x)))
        });
        g.bench_function(format!("recloser_call/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &rc, |x, _, _| recloser_call(x)))
        });
    }
    g.finish();
    assert_eq!(b.state(), State::Closed);
}

fn peers(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers");
    configure(&mut g);
    let word = AtomicU64::new(0);
    let b = ours_closed();
    let fs_consecutive = failsafe_exp();
    let fs_default = failsafe_default();
    let rc = recloser_default();

    g.bench_function("baseline_atomic_load", |i| i.iter(|| baseline(&word)));
    g.bench_function("ours_allow_success", |i| i.iter(|| ours_allow_success(&b)));
    g.bench_function("ours_call", |i| i.iter(|| ours_call(&b)));
    g.bench_function("failsafe_consecutive_call", |i| {
        i.iter(|| failsafe_call(&fs_consecutive))
    });
    g.bench_function("failsafe_default_call", |i| {
        i.iter(|| failsafe_call(&fs_default))
    });
    g.bench_function("recloser_call", |i| i.iter(|| recloser_call(&rc)));
    g.finish();
    assert_eq!(b.state(), State::Closed);
    assert!(fs_consecutive.is_call_permitted());
    assert!(fs_default.is_call_permitted());
}

// ------------------------------------------------------------------------- the herd

/// Threads released together just after the open period.
const HERD: usize = 8;
/// The open period of the herd breakers; they all run on the real monotonic clock.
const HERD_OPEN: Duration = Duration::from_millis(30);
/// How long after the open period the herd is released.
const HERD_LATE: Duration = Duration::from_millis(5);

fn trip_recloser(rc: &recloser::Recloser) {
    for _ in 0..100 {
        match rc.call(|| Err::<(), _>("down")) {
            Err(recloser::Error::Rejected) => return,
            _ => continue,
        }
    }
    panic!("recloser did not trip");
}

/// One round: `HERD` threads wait at a barrier until `HERD_LATE` after `open_until`, then each
/// makes one call through `attempt`. An admitted call counts itself and then holds on (like a
/// slow trial) until every thread has made its attempt, so no result can close the breaker
/// while others are still arriving. Returns how many calls were admitted.
fn herd_round(open_until: Instant, attempt: impl Fn(&dyn Fn()) -> bool + Sync) -> usize {
    let barrier = Barrier::new(HERD + 1);
    let admitted = AtomicUsize::new(0);
    let attempted = AtomicUsize::new(0);
    let trial = || {
        admitted.fetch_add(1, Ordering::SeqCst);
        attempted.fetch_add(1, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(10);
        while attempted.load(Ordering::SeqCst) < HERD && Instant::now() < give_up {
            thread::yield_now();
        }
    };
    thread::scope(|s| {
        for _ in 0..HERD {
            s.spawn(|| {
                barrier.wait();
                if !attempt(&trial) {
                    attempted.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let release = open_until + HERD_LATE;
        let now = Instant::now();
        if release > now {
            thread::sleep(release - now);
        }
        barrier.wait();
    });
    admitted.load(Ordering::SeqCst)
}

/// Min, median and max of the admitted counts over `rounds` rounds of `round`.
fn herd_stats(rounds: usize, mut round: impl FnMut() -> usize) -> (usize, usize, usize) {
    let mut counts: Vec<usize> = (0..rounds).map(|_| round()).collect();
    counts.sort_unstable();
    (
        counts[0],
        counts[counts.len() / 2],
        counts[counts.len() - 1],
    )
}

fn ours_herd(half_open_max_calls: u32) -> usize {
    let b = CircuitBreaker::<StdClock>::new(
        "herd",
        Config::new()
            .fail_max(1)
            .reset_timeout(HERD_OPEN)
            .half_open_max_calls(half_open_max_calls),
        StdClock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    let open_until = Instant::now() + HERD_OPEN;
    assert_eq!(b.state(), State::Open);
    let admitted = herd_round(open_until, |trial| {
        b.call(|| {
            trial();
            Ok::<_, ()>(())
        })
        .is_ok()
    });
    assert_eq!(
        admitted, half_open_max_calls as usize,
        "atomic-breaker admitted {admitted} trial calls, half_open_max_calls is {half_open_max_calls}"
    );
    admitted
}

fn failsafe_herd() -> usize {
    let fs = failsafe_consecutive(1, failsafe::backoff::constant(HERD_OPEN));
    let _ = fs.call(|| Err::<(), _>("down"));
    let open_until = Instant::now() + HERD_OPEN;
    assert!(!fs.is_call_permitted());
    herd_round(open_until, |trial| {
        fs.call(|| {
            trial();
            Ok::<_, ()>(())
        })
        .is_ok()
    })
}

fn recloser_herd() -> usize {
    let rc = recloser::Recloser::custom()
        .closed_len(2)
        .open_wait(HERD_OPEN)
        .build();
    trip_recloser(&rc);
    let open_until = Instant::now() + HERD_OPEN;
    herd_round(open_until, |trial| {
        rc.call(|| {
            trial();
            Ok::<_, ()>(())
        })
        .is_ok()
    })
}

/// Prints the herd table. Panics if ours ever admits other than `half_open_max_calls`.
fn herd(rounds: usize) {
    println!();
    println!(
        "half-open herd: {HERD} threads released together {} ms after a {} ms open period, \
         {rounds} rounds; trial calls admitted (min / median / max)",
        HERD_LATE.as_millis(),
        HERD_OPEN.as_millis()
    );
    println!("| crate | configuration | admitted min | median | max |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, conf: &str, (min, med, max): (usize, usize, usize)| {
        println!("| {name} | {conf} | {min} | {med} | {max} |");
    };
    row(
        "atomic-breaker",
        "half_open_max_calls = 1",
        herd_stats(rounds, || ours_herd(1)),
    );
    row(
        "atomic-breaker",
        "half_open_max_calls = 3",
        herd_stats(rounds, || ours_herd(3)),
    );
    row(
        "failsafe",
        "consecutive_failures(1, constant)",
        herd_stats(rounds, failsafe_herd),
    );
    row(
        "recloser",
        "closed_len 2, half_open_len 10",
        herd_stats(rounds, recloser_herd),
    );
    println!();
}

fn main() {
    // `cargo test --benches` runs this binary with `--test`: one quick round of everything.
    let test_mode = std::env::args().any(|a| a == "--test");
    herd(if test_mode { 1 } else { 20 });

    let mut c = Criterion::default().configure_from_args();
    closed_path(&mut c);
    open_path(&mut c);
    half_open_claim(&mut c);
    two_threads(&mut c);
    peers(&mut c);
    c.final_summary();
}
