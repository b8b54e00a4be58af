//! The fleet breaker's closed path against the core's local breaker (same run, same clock),
//! and the Redis commands sent per 1,000 successful calls (counted by the server).
//!
//! `cargo bench -p atomic-breaker-redis --bench fleet` (needs `redis-server` on the PATH).

use std::hint::black_box;
use std::time::{Duration, Instant};

use atomic_breaker::{CircuitBreaker, Config, StdClock};
use atomic_breaker_redis::devserver::RedisServer;
use atomic_breaker_redis::FleetBreaker;
use criterion::{criterion_group, criterion_main, Criterion};

fn commands(con: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start().expect("redis-server must be installed");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = Config::new().fail_max(5);
    let fleet = {
        let _guard = rt.enter();
        FleetBreaker::builder("bench", server.url())
            .config(config)
            .build()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while fleet.fleet().is_none() {
        assert!(Instant::now() < deadline, "fleet breaker never synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    let local: CircuitBreaker<StdClock> = CircuitBreaker::new("bench", config, StdClock);

    // Commands per 1,000 successful calls, with the default 1 s refresh running.
    let mut con = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let before = commands(&mut con);
    for i in 0..1000u32 {
        let _ = black_box(fleet.call(|| Ok::<_, ()>(black_box(i))));
    }
    let after = commands(&mut con);
    eprintln!(
        "redis commands per 1000 successful fleet calls: {}",
        after - before
    );

    let mut g = c.benchmark_group("closed_call");
    g.bench_function("local", |b| {
        b.iter(|| local.call(|| Ok::<_, ()>(black_box(1u32))))
    });
    g.bench_function("fleet", |b| {
        b.iter(|| fleet.call(|| Ok::<_, ()>(black_box(1u32))))
    });
    // The two-step API: `allow` then `success` on the permit.
    g.bench_function("local_permit", |b| {
        b.iter(|| local.allow().map(|p| p.success()))
    });
    g.bench_function("fleet_permit", |b| {
        b.iter(|| fleet.allow().map(|p| p.success()))
    });
    // The fleet breaker's own local breaker, called directly: the wrapper's cost is the
    // difference between this and `fleet`.
    g.bench_function("fleet_inner_local", |b| {
        b.iter(|| fleet.local().call(|| Ok::<_, ()>(black_box(1u32))))
    });
    g.finish();
    drop(fleet);
    drop(rt);
}

criterion_group!(benches, bench);
criterion_main!(benches);
