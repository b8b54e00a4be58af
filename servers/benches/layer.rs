//! The tower layer's cost per request, in one criterion group so the figures are ratios from
//! one run: a bare always-ready inner service, the same behind `BreakerLayer` (a `&'static`
//! and an `Arc` handle), and behind tower-resilience's circuit breaker (0.14, default
//! configuration). Each iteration is one request as a tower client makes it: `poll_ready`,
//! `call`, and polling the response future to completion on a no-op waker (no executor, so
//! no executor cost is measured). The breakers are closed and every response is `Ok`.
//!
//! `cargo bench -p atomic-breaker-servers --bench layer`

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use atomic_breaker::tower::BreakerLayer;
use atomic_breaker::{CircuitBreaker, Config, StdClock};
use criterion::Criterion;
use tower::{Layer, Service};

/// An always-ready service answering its request doubled.
#[derive(Clone, Copy)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;

    #[inline]
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, req: u64) -> Self::Future {
        ready(Ok(req.wrapping_mul(2)))
    }
}

/// One request: `poll_ready`, `call`, poll to completion.
#[inline(always)]
fn request<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>) {
    loop {
        if let Poll::Ready(r) = svc.poll_ready(cx) {
            assert!(r.is_ok());
            break;
        }
    }
    let mut fut = pin!(svc.call(black_box(21)));
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            black_box(r.is_ok());
            return;
        }
    }
}

static BREAKER: CircuitBreaker<StdClock> = CircuitBreaker::new("bench", Config::new(), StdClock);

fn tower_layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("tower_layer");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let mut cx = Context::from_waker(Waker::noop());

    let mut bare = Echo;
    g.bench_function("bare_inner_service", |i| {
        i.iter(|| request(&mut bare, &mut cx))
    });

    let mut ours_static = BreakerLayer::new(&BREAKER).layer(Echo);
    g.bench_function("ours_static_handle", |i| {
        i.iter(|| request(&mut ours_static, &mut cx))
    });

    let arc = Arc::new(CircuitBreaker::<StdClock>::new(
        "bench",
        Config::new(),
        StdClock,
    ));
    let mut ours_arc = BreakerLayer::new(arc).layer(Echo);
    g.bench_function("ours_arc_handle", |i| {
        i.iter(|| request(&mut ours_arc, &mut cx))
    });

    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .build()
        .expect("the default configuration is valid");
    let mut theirs = layer.layer(Echo);
    g.bench_function("tower_resilience_0_14", |i| {
        i.iter(|| request(&mut theirs, &mut cx))
    });
    g.finish();
}

/// `LAYER_LOOP=N`: instead of criterion, time N requests of each kind in a plain loop, five
/// times, and print the fastest per-request time: a cross-check on a noisy machine, where the
/// minimum is the figure least disturbed by other processes.
///
/// With `LAYER_ONLY=name` as well: that variant only, one pass of N, for counting instructions
/// under `valgrind --tool=callgrind` (the difference between the totals of two values of N,
/// divided by the difference of N, is the count per request).
fn plain_loop(n: u64) {
    fn time<S: Service<u64>>(name: &str, svc: &mut S, n: u64) {
        let mut cx = Context::from_waker(Waker::noop());
        if let Ok(only) = std::env::var("LAYER_ONLY") {
            if only == name {
                for _ in 0..n {
                    request(svc, &mut cx);
                }
                println!("{name}: {n} requests");
            }
            return;
        }
        let best = (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    request(svc, &mut cx);
                }
                t.elapsed().as_secs_f64() * 1e9 / n as f64
            })
            .fold(f64::INFINITY, f64::min);
        println!("{name:<24} {best:8.2} ns/request (best of 5 x {n})");
    }
    time("bare_inner_service", &mut Echo, n);
    time(
        "ours_static_handle",
        &mut BreakerLayer::new(&BREAKER).layer(Echo),
        n,
    );
    let arc = Arc::new(CircuitBreaker::<StdClock>::new(
        "bench",
        Config::new(),
        StdClock,
    ));
    time(
        "ours_arc_handle",
        &mut BreakerLayer::new(arc).layer(Echo),
        n,
    );
    let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .build()
        .expect("the default configuration is valid");
    let theirs_n = if std::env::var("LAYER_ONLY").is_ok() {
        n
    } else {
        n / 10
    };
    time("tower_resilience_0_14", &mut layer.layer(Echo), theirs_n);
}

fn main() {
    if let Some(n) = std::env::var("LAYER_LOOP")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return plain_loop(n);
    }
    let mut c = Criterion::default().configure_from_args();
    tower_layer(&mut c);
    c.final_summary();
}
