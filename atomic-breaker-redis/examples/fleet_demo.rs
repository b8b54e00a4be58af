//! Three workers share one breaker through Redis; the dependency dies; the fleet opens
//! together; one trial; recovery.
//!
//! ```text
//! cargo run -p atomic-breaker-redis --example fleet_demo
//! ```
//! Needs `redis-server` on the PATH: the demo starts its own on a free loopback port and stops
//! it at the end. Each worker has its own `FleetBreaker` and its own Redis connections, exactly
//! as if it were a separate process.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atomic_breaker::Config;
use atomic_breaker_redis::devserver::RedisServer;
use atomic_breaker_redis::{FleetBreaker, FleetEvent, FleetState};

static DEPENDENCY_UP: AtomicBool = AtomicBool::new(true);
/// Calls that reached the dependency while it was down.
static WASTED: AtomicU32 = AtomicU32::new(0);

fn dependency() -> Result<&'static str, &'static str> {
    if DEPENDENCY_UP.load(Ordering::Relaxed) {
        Ok("200 OK")
    } else {
        WASTED.fetch_add(1, Ordering::Relaxed);
        Err("connection refused")
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU32,
    failed: AtomicU32,
    rejected: AtomicU32,
    trials: AtomicU32,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = RedisServer::start().map_err(|e| {
        format!("could not start redis-server ({e}); install it: apt-get install redis-server")
    })?;
    println!("redis-server on {}", server.url());
    let start = Instant::now();
    let t = move || format!("{:>5} ms", start.elapsed().as_millis());

    let mut workers = Vec::new();
    for id in 1..=3 {
        let fleet = FleetBreaker::builder("payments", server.url())
            .config(
                Config::new()
                    .fail_max(3)
                    .reset_timeout(Duration::from_millis(1500)),
            )
            .trial_lease(Duration::from_secs(2))
            .token(format!("worker-{id}"))
            .build()?;
        // Print every fleet state this worker applies.
        let mut events = fleet.events();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                match e {
                    FleetEvent::Applied(r) => {
                        let extra = match r.state {
                            FleetState::Open => format!(" for {:?}", r.retry_after),
                            FleetState::HalfOpen => format!(", trial owned by {}", r.owner),
                            _ => String::new(),
                        };
                        println!(
                            "{}  worker-{id} applies fleet {} (gen {}){extra}",
                            t(),
                            r.state,
                            r.generation
                        );
                    }
                    FleetEvent::Degraded { cause, error } => {
                        println!("{}  worker-{id} degraded ({cause}): {error}", t())
                    }
                    FleetEvent::Restored => println!("{}  worker-{id} restored", t()),
                    _ => {}
                }
            }
        });
        workers.push((id, fleet, Arc::new(Tally::default())));
    }

    let mut handles = Vec::new();
    for (id, fleet, tally) in &workers {
        let (id, fleet, tally) = (*id, fleet.clone(), tally.clone());
        handles.push(tokio::spawn(async move {
            let end = Instant::now() + Duration::from_millis(5000);
            while Instant::now() < end {
                match fleet.allow() {
                    Ok(permit) => {
                        let trial = permit.is_trial();
                        if trial {
                            tally.trials.fetch_add(1, Ordering::Relaxed);
                            println!("{}  worker-{id} runs the fleet's trial call", t());
                        }
                        match dependency() {
                            Ok(_) => {
                                tally.ok.fetch_add(1, Ordering::Relaxed);
                                permit.success();
                            }
                            Err(_) => {
                                tally.failed.fetch_add(1, Ordering::Relaxed);
                                if permit.failure() == atomic_breaker::Recorded::Tripped {
                                    println!("{}  worker-{id} trips after its own failures and tells the fleet", t());
                                }
                            }
                        }
                    }
                    Err(_) => {
                        tally.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Workers of different load: the busiest finds the outage first.
                tokio::time::sleep(Duration::from_millis([5, 15, 40][id - 1])).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1000)).await;
    println!("{}  --- the dependency dies ---", t());
    DEPENDENCY_UP.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    println!("{}  --- the dependency is back ---", t());
    DEPENDENCY_UP.store(true, Ordering::Relaxed);
    for h in handles {
        h.await?;
    }

    println!();
    println!("worker   ok  failed  rejected  trials");
    for (id, _, tally) in &workers {
        println!(
            "{id:>6} {:>4} {:>7} {:>9} {:>7}",
            tally.ok.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.rejected.load(Ordering::Relaxed),
            tally.trials.load(Ordering::Relaxed)
        );
    }
    println!(
        "calls that reached the dead dependency, fleet-wide: {} (three local breakers: 9; \
         the fleet stops everyone at the first trip)",
        WASTED.load(Ordering::Relaxed)
    );
    let state = workers[0].1.fleet().map(|r| r.to_string());
    println!("final fleet record: {}", state.unwrap_or_default());
    Ok(())
}
