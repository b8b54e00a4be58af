//! A `BreakerMap` lookup plus a closed-path call, with 1 and 2 threads, against a plain
//! `static` breaker's call and a hand-rolled `Mutex<HashMap<String, Arc<CircuitBreaker>>>`.
//!
//! Run with `cargo bench --bench map`; BENCHMARKS.md ("One breaker per key") has the results.
//! Every figure worth quoting is a ratio between two benchmarks of the group in one run.
//!
//! One group, `map_call`, each benchmark at 1 and 2 threads (time per call as each thread
//! sees it; two threads run the same loop at once):
//! - `static_call`: `call(|| Ok(..))` on a `static` breaker (no lookup at all).
//! - `map_call_same_key`: `map.call("host-7", ..)` on a map of 64 `String` keys; with 2
//!   threads both use the same key (the contended case: one shard lock, one `Arc`).
//! - `map_call_own_key`: the same, each thread with its own key (usually two shards).
//! - `map_get_same_key`: the lookup alone (`get`, then drop the handle).
//! - `mutex_map_call_same_key` / `mutex_map_call_own_key`: lock a `Mutex<HashMap>`, clone the
//!   `Arc`, unlock, call: what users write by hand.
//! - `rwlock_map_call_same_key`: the same with one `RwLock<HashMap>` and a read lock.
//!
//! Every breaker reads `StdClock` (never on the closed path); both maps hash with std's
//! `RandomState` (SipHash-1-3), like with like.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use atomic_breaker::{BreakerMap, CircuitBreaker, Config, StdClock};
use common::on_threads;
use criterion::{BenchmarkGroup, Criterion};

const KEYS: usize = 64;

static STATIC: CircuitBreaker<StdClock> = CircuitBreaker::new("static", Config::new(), StdClock);

fn configure(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
}

type MutexMap = Mutex<HashMap<String, Arc<CircuitBreaker<StdClock>>>>;
type RwLockMap = RwLock<HashMap<String, Arc<CircuitBreaker<StdClock>>>>;

fn rwlock_map_call(m: &RwLockMap, key: &str) {
    let b = {
        let map = m.read().unwrap();
        Arc::clone(black_box(&map).get(black_box(key)).unwrap())
    };
    let _ = black_box(b.call(|| Ok::<_, ()>(black_box(1u32))));
}

fn map_get(m: &BreakerMap<String, StdClock>, key: &str) {
    drop(black_box(black_box(m).get(black_box(key))));
}

fn mutex_map_call(m: &MutexMap, key: &str) {
    let b = {
        let map = m.lock().unwrap();
        Arc::clone(black_box(&map).get(black_box(key)).unwrap())
    };
    let _ = black_box(b.call(|| Ok::<_, ()>(black_box(1u32))));
}

fn map_call(m: &BreakerMap<String, StdClock>, key: &str) {
    let _ = black_box(
        black_box(m)
            .call(black_box(key), || Ok::<_, ()>(black_box(1u32)))
            .unwrap(),
    );
}

fn map_group(c: &mut Criterion) {
    let keys: Vec<String> = (0..KEYS).map(|i| format!("host-{i}")).collect();
    let map = BreakerMap::<String, StdClock>::try_new("hosts", Config::new(), StdClock, KEYS)
        .expect("valid config");
    let mutex_map: MutexMap = Mutex::new(HashMap::new());
    let rwlock_map: RwLockMap = RwLock::new(HashMap::new());
    for k in &keys {
        drop(map.get_or_insert(k.as_str()).expect("room"));
        let b = Arc::new(CircuitBreaker::new("hosts", Config::new(), StdClock));
        mutex_map.lock().unwrap().insert(k.clone(), Arc::clone(&b));
        rwlock_map.write().unwrap().insert(k.clone(), b);
    }
    let same = |_t: usize| keys[7].as_str();
    // Two keys that fall in different shards of `map` are likely but not certain; the
    // benchmark reports whatever the run's hash seeds give (see BENCHMARKS.md).
    let own = |t: usize| keys[7 + 13 * t].as_str();

    let mut g = c.benchmark_group("map_call");
    configure(&mut g);
    for threads in [1, 2] {
        g.bench_function(format!("static_call/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &(), |_, _, _| {
                    let _ = black_box(black_box(&STATIC).call(|| Ok::<_, ()>(black_box(1u32))));
                })
            })
        });
        g.bench_function(format!("map_call_same_key/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &(), |_, t, _| map_call(&map, same(t))))
        });
        g.bench_function(format!("map_call_own_key/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &(), |_, t, _| map_call(&map, own(t))))
        });
        g.bench_function(format!("map_get_same_key/{threads}t"), |i| {
            i.iter_custom(|n| on_threads(threads, n, &(), |_, t, _| map_get(&map, same(t))))
        });
        g.bench_function(format!("rwlock_map_call_same_key/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &(), |_, t, _| {
                    rwlock_map_call(&rwlock_map, same(t))
                })
            })
        });
        g.bench_function(format!("mutex_map_call_same_key/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &(), |_, t, _| {
                    mutex_map_call(&mutex_map, same(t))
                })
            })
        });
        g.bench_function(format!("mutex_map_call_own_key/{threads}t"), |i| {
            i.iter_custom(|n| {
                on_threads(threads, n, &(), |_, t, _| {
                    mutex_map_call(&mutex_map, own(t))
                })
            })
        });
    }
    g.finish();
}

criterion::criterion_group!(benches, map_group);
criterion::criterion_main!(benches);
