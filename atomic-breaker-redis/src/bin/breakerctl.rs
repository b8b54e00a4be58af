//! `breakerctl`: show and steer a fleet breaker by name.
//!
//! ```text
//! breakerctl [--url URL] [--prefix PREFIX] show NAME
//! breakerctl [--url URL] [--prefix PREFIX] open NAME [PERIOD]      # default 60s
//! breakerctl [--url URL] [--prefix PREFIX] trip-for NAME PERIOD    # 500ms, 30s, 5m
//! breakerctl [--url URL] [--prefix PREFIX] close NAME
//! breakerctl [--url URL] [--prefix PREFIX] force-open NAME
//! breakerctl [--url URL] [--prefix PREFIX] disable NAME
//! breakerctl [--url URL] [--prefix PREFIX] watch NAME              # one line per change
//! breakerctl [--url URL] [--prefix PREFIX] watch --claim [--lease PERIOD] NAME
//! ```
//! `watch` joins the fleet as an observer that never takes the trial; with `--claim` it is a
//! member that does (and, sending no traffic, holds it until its lease ends: a stand-in for a
//! trial owner that crashed, used by the tests).
//! The URL defaults to `$REDIS_URL`, then `redis://127.0.0.1:6379/`; the prefix to
//! `atomic-breaker`. Exit status: 0 done, 1 Redis error, 2 usage.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atomic_breaker_redis::admin::Admin;
use atomic_breaker_redis::{FleetBreaker, FleetEvent, Manage};

const USAGE: &str = "usage: breakerctl [--url URL] [--prefix PREFIX] [--claim] [--lease PERIOD] \
(show|open|trip-for|close|force-open|disable|watch) NAME [PERIOD]";

fn parse_period(s: &str) -> Option<Duration> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let mut url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let mut prefix = "atomic-breaker".to_owned();
    let mut rest = Vec::new();
    let mut claim = false;
    let mut lease = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--url" => url = args.next().unwrap_or_default(),
            "--prefix" => prefix = args.next().unwrap_or_default(),
            "--claim" => claim = true,
            "--lease" => match args.next().as_deref().and_then(parse_period) {
                Some(d) => lease = Some(d),
                None => {
                    eprintln!("--lease needs a PERIOD (examples: 500ms, 30s)");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(a),
        }
    }
    let (Some(cmd), Some(name)) = (rest.first().cloned(), rest.get(1).cloned()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let period = rest.get(2).map(|p| parse_period(p));
    if let Some(None) = period {
        eprintln!("bad period {:?} (examples: 500ms, 30s, 5m)", rest[2]);
        return ExitCode::from(2);
    }
    let period = period.flatten();
    let op = match cmd.as_str() {
        "show" | "watch" => None,
        "open" => Some(Manage::Open(period.unwrap_or(Duration::from_secs(60)))),
        "trip-for" => match period {
            Some(d) => Some(Manage::TripFor(d)),
            None => {
                eprintln!("trip-for needs a PERIOD");
                return ExitCode::from(2);
            }
        },
        "close" => Some(Manage::Close),
        "force-open" => Some(Manage::ForceOpen),
        "disable" => Some(Manage::Disable),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        if cmd == "watch" {
            return watch(&url, &prefix, name, claim, lease).await;
        }
        let admin = match Admin::connect(&url, &prefix, Duration::from_secs(2)).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{url}: {e}");
                return ExitCode::from(1);
            }
        };
        let r = match op {
            Some(op) => admin.manage(&name, op).await,
            None => admin.show(&name).await,
        };
        match r {
            Ok(r) => {
                println!("{name}: {r}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Joins the fleet (as an observer unless `claim`) and prints every record it applies:
/// `applied <unix µs> <record>`, plus `degraded ...` / `restored` lines.
async fn watch(
    url: &str,
    prefix: &str,
    name: String,
    claim: bool,
    lease: Option<Duration>,
) -> ExitCode {
    let name: &'static str = Box::leak(name.into_boxed_str());
    let mut builder = FleetBreaker::builder(name, url)
        .prefix(prefix)
        .claims_trials(claim);
    if let Some(d) = lease {
        builder = builder.trial_lease(d);
    }
    let fleet = match builder.build() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut events = fleet.events();
    println!("token {}", fleet.token());
    loop {
        match events.recv().await {
            Ok(FleetEvent::Applied(r)) => println!("applied {} {r}", unix_micros()),
            Ok(FleetEvent::Degraded { error }) => println!("degraded {} {error}", unix_micros()),
            Ok(FleetEvent::Restored) => println!("restored {}", unix_micros()),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return ExitCode::SUCCESS,
        }
    }
}
