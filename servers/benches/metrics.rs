//! What the `metrics` feature's listener costs on the closed path, with a real recorder
//! installed (`metrics-exporter-prometheus`, as a server would have it), in criterion groups
//! so that the figures are ratios from one run:
//!
//! - `metrics_closed_path`, one thread, `allow()` + `success()` on `StdClock` breakers:
//!   `no_listener`; `state_only` (the listener registered with `STATE_ONLY`: the target is
//!   within 10% of `no_listener`); `per_call` (registered with `PER_CALL`: the listener counts
//!   every call); and, to explain `per_call`, `per_call_noop_listener` (the same dispatch to a
//!   listener doing nothing), `listener_alone_success` (the listener called directly with a
//!   `Success` event: cached handles, a counter add and a gauge store), `counter_macro` (one `counter!` with the `name`
//!   and `kind` labels: key construction and recorder lookup) and `counter_handle` (one
//!   increment of a registered Prometheus counter: an atomic add).
//! - `metrics_two_threads`: the same breakers from one thread and from two threads sharing the
//!   breaker (time per call as each thread sees it), plus the registered counter handle, which
//!   shows what a shared atomic counter costs under contention.
//!
//! `cargo bench -p atomic-breaker-servers --bench metrics`

#[path = "../../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use atomic_breaker::metrics_listener::{self, PER_CALL, STATE_ONLY};
use atomic_breaker::{CircuitBreaker, Clock, Config, Event, EventKind, State, StdClock};
use common::on_threads;
use criterion::{BenchmarkGroup, Criterion};
use metrics_exporter_prometheus::PrometheusBuilder;

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
}

/// `allow()`, then `success()` if admitted.
#[inline(always)]
fn allow_success<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>) {
    match black_box(b).allow() {
        Ok(permit) => {
            black_box(permit.success());
        }
        Err(rejected) => {
            black_box(rejected);
        }
    }
}

fn breaker(name: &'static str) -> CircuitBreaker<StdClock> {
    CircuitBreaker::new(name, Config::new(), StdClock)
}

/// A listener that does nothing, to show what per-call dispatch alone costs.
fn noop_listener(e: &Event<'_>) {
    black_box(e);
}

struct Breakers {
    none: CircuitBreaker<StdClock>,
    state_only: CircuitBreaker<StdClock>,
    per_call: CircuitBreaker<StdClock>,
}

fn breakers() -> Breakers {
    let b = Breakers {
        none: breaker("bench_none"),
        state_only: breaker("bench_state_only"),
        per_call: breaker("bench_per_call"),
    };
    b.state_only
        .add_listener_for(STATE_ONLY, metrics_listener::listener)
        .unwrap();
    b.per_call
        .add_listener_for(PER_CALL, metrics_listener::listener)
        .unwrap();
    for x in [&b.none, &b.state_only, &b.per_call] {
        metrics_listener::register(x);
    }
    b
}

fn closed_path(c: &mut Criterion) {
    let b = breakers();
    let handle = metrics::counter!("bench_handle_total", "name" => "bench");
    let mut g = c.benchmark_group("metrics_closed_path");
    configure(&mut g);
    g.bench_function("no_listener", |i| i.iter(|| allow_success(&b.none)));
    g.bench_function("state_only", |i| i.iter(|| allow_success(&b.state_only)));
    g.bench_function("per_call", |i| i.iter(|| allow_success(&b.per_call)));
    let noop = breaker("bench_noop");
    noop.add_listener_for(PER_CALL, noop_listener).unwrap();
    g.bench_function("per_call_noop_listener", |i| {
        i.iter(|| allow_success(&noop))
    });
    let success = Event {
        name: "bench_direct",
        kind: EventKind::Success { failures: 0 },
    };
    g.bench_function("listener_alone_success", |i| {
        i.iter(|| metrics_listener::listener(black_box(&success)))
    });
    g.bench_function("counter_macro", |i| {
        i.iter(|| {
            metrics::counter!("bench_macro_total", "name" => black_box("bench"), "kind" => "successful")
                .increment(1)
        })
    });
    g.bench_function("counter_handle", |i| {
        i.iter(|| black_box(&handle).increment(1))
    });
    g.finish();
    for x in [&b.none, &b.state_only, &b.per_call] {
        assert_eq!(x.state(), State::Closed);
    }
}

fn two_threads(c: &mut Criterion) {
    let b = breakers();
    let handle = metrics::counter!("bench_handle_total", "name" => "bench_2t");
    let mut g = c.benchmark_group("metrics_two_threads");
    configure(&mut g);
    for threads in [1, 2] {
        g.bench_function(format!("no_listener/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &b.none, |b, _, _| allow_success(b)))
        });
        g.bench_function(format!("state_only/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &b.state_only, |b, _, _| allow_success(b)))
        });
        g.bench_function(format!("per_call/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &b.per_call, |b, _, _| allow_success(b)))
        });
        g.bench_function(format!("counter_handle/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &handle, |h, _, _| black_box(h).increment(1)))
        });
    }
    g.finish();
}

fn main() {
    // The recorder a server would install; without one every record is a no-op and the
    // per-call figure would measure nothing.
    PrometheusBuilder::new()
        .install_recorder()
        .expect("install the Prometheus recorder");
    let mut c = Criterion::default().configure_from_args();
    closed_path(&mut c);
    two_threads(&mut c);
    c.final_summary();
}
