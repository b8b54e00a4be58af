//! Failure-rate mode's closed path (issue 13) against consecutive mode and against recloser
//! (a rate-based peer: a ring buffer of outcomes behind atomics), with 1 and 2 threads sharing
//! one breaker, in one criterion group so that the ratios come from one run.
//!
//! Workloads, each `call(|| ..)` on a Closed breaker that never trips:
//! - `success`: every call succeeds (a healthy dependency). Consecutive mode writes nothing;
//!   rate mode's window is full of successes and unchanged, so it writes nothing either, but
//!   every call takes the slow path (the window's load and the pure update).
//! - `fail10`: one call in ten fails (below every threshold here). Consecutive mode writes on
//!   the failure and on the success after it; rate mode's window changes on every call (one CAS
//!   each); recloser records every call.
//!
//! Run with `cargo bench --bench rate`; BENCHMARKS.md has the figures.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, FailureRate, ManualClock, State};
use common::on_threads;
use criterion::Criterion;

fn ours(config: Config) -> CircuitBreaker<ManualClock> {
    CircuitBreaker::new("bench", config, ManualClock::new())
}

/// Consecutive mode, `fail_max` high enough that one failure in ten never trips.
fn consecutive() -> CircuitBreaker<ManualClock> {
    ours(Config::new().fail_max(5))
}

/// Rate mode: 50% of the last 20 calls, at least 10 seen (Resilience4j-like).
fn rate() -> CircuitBreaker<ManualClock> {
    ours(Config::new().failure_rate(FailureRate::new(50, 20).minimum_calls(10)))
}

/// recloser with its defaults (failure rate 50%, a closed ring of 100 calls).
fn recloser() -> recloser::Recloser {
    recloser::Recloser::default()
}

/// The `i`-th call's result: a failure every `every` calls (never when `every` is 0).
#[inline(always)]
fn result(i: u64, every: u64) -> Result<u32, ()> {
    if every != 0 && i.is_multiple_of(every) {
        Err(())
    } else {
        Ok(black_box(1))
    }
}

#[inline(always)]
fn ours_call(b: &CircuitBreaker<ManualClock>, i: u64, every: u64) {
    let _ = black_box(black_box(b).call(|| result(i, every)));
}

#[inline(always)]
fn recloser_call(b: &recloser::Recloser, i: u64, every: u64) {
    let _ = black_box(black_box(b).call(|| result(i, every)));
}

fn rate_closed_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_closed_path");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let word = AtomicU64::new(0);
    let cons = consecutive();
    let rated = rate();
    let rc = recloser();
    for threads in [1, 2] {
        g.bench_function(format!("baseline_atomic_load/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &word, |w, _, _| {
                    black_box(black_box(w).load(Ordering::Acquire) == 0);
                })
            })
        });
        for (name, every) in [("success", 0), ("fail10", 10)] {
            g.bench_function(format!("consecutive_{name}/{threads}t"), |i| {
                i.iter_custom(|n| on_threads(threads, n, &cons, |b, _, k| ours_call(b, k, every)))
            });
            g.bench_function(format!("rate_{name}/{threads}t"), |i| {
                i.iter_custom(|n| on_threads(threads, n, &rated, |b, _, k| ours_call(b, k, every)))
            });
            g.bench_function(format!("recloser_{name}/{threads}t"), |i| {
                i.iter_custom(|n| on_threads(threads, n, &rc, |b, _, k| recloser_call(b, k, every)))
            });
        }
    }
    g.finish();
    // None of the workloads may have tripped a breaker: the figures are all closed paths.
    assert_eq!(cons.state(), State::Closed);
    assert_eq!(rated.state(), State::Closed);
    assert!(rc.call(|| Ok::<_, ()>(())).is_ok(), "recloser tripped");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    rate_closed_path(&mut c);
    c.final_summary();
}
