//! Runs one hot path of the breaker in a loop, for counting its instructions with callgrind.
//!
//! Wall-clock benchmarks (`cargo bench --bench breaker`) are the reference, but on a shared,
//! noisy host their medians move by 20% between runs and with code placement. An instruction
//! count does not: it is the same for the same binary whatever else the machine is doing, so it
//! tells whether a change to the hot path did less work.
//!
//! ```text
//! cargo build --release --example hot_path
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg target/release/examples/hot_path per-call-listener 1000000
//! callgrind_annotate /tmp/cg | head -30
//! ```
//!
//! The paths: `closed` (`allow()` + `success()`, default listener capacity 4, no listener),
//! `closed-no-table` (capacity 0), `state-listener` (one listener subscribed to state changes
//! only), `per-call-listener` (one listener fed every event), `two-per-call-listeners`, `call`
//! (`call(|| Ok(..))`, as the bench runs it: the whole `Result` `black_box`ed), `call-match`
//! (the same, its result matched as a caller would), `call-fail10` (`call`, one failure in ten,
//! `fail_max` 5: never trips), `open-reject` (`allow()` on an Open breaker whose period runs),
//! `rate-call` and `rate-fail10` (`call` in failure-rate mode, window 47, minimum 10, 50%;
//! healthy, and one failure in ten).
//! Each run prints the time per iteration too, for a rough look outside valgrind.

use std::hint::black_box;
use std::time::Instant;

use atomic_breaker::{CircuitBreaker, Config, Event, FailureRate, Interest, ManualClock};

fn noop_listener(e: &Event) {
    black_box(e);
}

#[inline(never)]
fn allow_success<const L: usize>(b: &CircuitBreaker<ManualClock, L>, n: u64) {
    for _ in 0..n {
        match black_box(b).allow() {
            Ok(permit) => {
                black_box(permit.success());
            }
            Err(rejected) => {
                black_box(rejected);
            }
        }
    }
}

#[inline(never)]
fn call_failing(b: &CircuitBreaker<ManualClock>, n: u64, fail_every: u64) {
    for i in 0..n {
        let _ = black_box(black_box(b).call(|| {
            if fail_every != 0 && i % fail_every == 0 {
                Err(())
            } else {
                Ok(black_box(1u32))
            }
        }));
    }
}

/// `call(|| Ok(..))` exactly as `benches/breaker.rs` runs it.
#[inline(never)]
fn call_ok(b: &CircuitBreaker<ManualClock>, n: u64) {
    for _ in 0..n {
        let _ = black_box(black_box(b).call(|| Ok::<_, ()>(black_box(1u32))));
    }
}

/// `call(|| Ok(..))` whose result is matched, as a caller would, instead of `black_box`ed whole.
#[inline(never)]
fn call_match(b: &CircuitBreaker<ManualClock>, n: u64) {
    for _ in 0..n {
        match black_box(b).call(|| Ok::<_, ()>(black_box(1u32))) {
            Ok(v) => {
                black_box(v);
            }
            Err(e) => {
                black_box(e.is_rejected());
            }
        }
    }
}

fn breaker<const L: usize>(config: Config) -> CircuitBreaker<ManualClock, L> {
    CircuitBreaker::new("hot", config, ManualClock::new())
}

/// Failure-rate mode: window 47, minimum 10, 50%.
fn rate_breaker() -> CircuitBreaker<ManualClock> {
    let rate = FailureRate::new(50, 47).minimum_calls(10);
    breaker::<4>(Config::new().failure_rate(rate))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "closed".into());
    let n: u64 = match args.next().map(|s| s.parse()) {
        None => 10_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("iterations: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    match path.as_str() {
        "closed" => allow_success(&breaker::<4>(Config::new()), n),
        "closed-no-table" => allow_success(&breaker::<0>(Config::new()), n),
        "state-listener" => {
            let b = breaker::<4>(Config::new());
            b.add_listener_for(Interest::STATE_CHANGES, noop_listener)
                .expect("one listener fits");
            allow_success(&b, n);
        }
        "two-per-call-listeners" => {
            let b = breaker::<4>(Config::new());
            b.add_listener(noop_listener).expect("two listeners fit");
            b.add_listener(noop_listener).expect("two listeners fit");
            allow_success(&b, n);
        }
        "per-call-listener" => {
            let b = breaker::<4>(Config::new());
            b.add_listener(noop_listener).expect("one listener fits");
            allow_success(&b, n);
        }
        "call" => call_ok(&breaker::<4>(Config::new()), n),
        "call-match" => call_match(&breaker::<4>(Config::new()), n),
        "call-fail10" => call_failing(&breaker::<4>(Config::new().fail_max(5)), n, 10),
        "open-reject" => {
            let b = breaker::<4>(Config::new());
            b.open();
            allow_success(&b, n);
        }
        "rate-call" => call_failing(&rate_breaker(), n, 0),
        "rate-fail10" => call_failing(&rate_breaker(), n, 10),
        other => {
            eprintln!(
                "unknown path {other:?}: closed, closed-no-table, state-listener, per-call-listener, two-per-call-listeners, call, call-match, call-fail10, open-reject, rate-call, rate-fail10"
            );
            std::process::exit(2);
        }
    }
    let per = start.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
    println!("{path}: {n} iterations, {per:.2} ns each");
}
