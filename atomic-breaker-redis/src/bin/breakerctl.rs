//! `breakerctl`: show and steer a fleet breaker by name.
//!
//! ```text
//! breakerctl [--url URL] [--prefix PREFIX] show NAME
//! breakerctl [--url URL] [--prefix PREFIX] open NAME [PERIOD]      # default 60s
//! breakerctl [--url URL] [--prefix PREFIX] trip-for NAME PERIOD    # 500ms, 30s, 5m
//! breakerctl [--url URL] [--prefix PREFIX] close NAME
//! breakerctl [--url URL] [--prefix PREFIX] force-open NAME
//! breakerctl [--url URL] [--prefix PREFIX] disable NAME
//! breakerctl [--url URL] [--prefix PREFIX] reset NAME              # re-create the record
//! breakerctl [--url URL] [--prefix PREFIX] watch NAME              # one line per change
//! breakerctl [--url URL] [--prefix PREFIX] watch --claim [--lease PERIOD] NAME
//! ```
//! `watch` joins the fleet as an observer that never takes the trial; with `--claim` it is a
//! member that does (and, sending no traffic, holds it until its lease ends: a stand-in for a
//! trial owner that crashed, used by the tests).
//! `reset` deletes the record, whatever the key holds, and creates it again Closed in a new epoch
//! (as a wipe would: members that are open locally re-publish their trip). The scripts replace a
//! corrupted record by themselves at the next command; `reset` is the explicit repair.
//!
//! The URL defaults to `$REDIS_URL`, then `redis://127.0.0.1:6379/`; the prefix to
//! `atomic-breaker`. Exit status:
//!
//! - 0: done; the line printed is the record after the command;
//! - 1: nothing changed: Redis unreachable, or it refused the command (an error reply: the
//!   scripts check everything before they write);
//! - 2: bad usage (unknown command, bad period or period over 24 h, a URL this tool cannot use);
//! - 3: outcome unknown: the command was sent but no valid answer came back (timeout, connection
//!   dropped): it may have been applied; run `show`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atomic_breaker_redis::admin::Admin;
use atomic_breaker_redis::{FleetBreaker, FleetError, FleetEvent, Manage};

const USAGE: &str = "usage: breakerctl [--url URL] [--prefix PREFIX] [--claim] [--lease PERIOD] \
(show|open|trip-for|close|force-open|disable|reset|watch) NAME [PERIOD]";

/// Exit status 1: nothing changed.
const NOT_DONE: u8 = 1;
/// Exit status 2: bad usage.
const USAGE_ERROR: u8 = 2;
/// Exit status 3: sent, no valid answer: it may have been applied.
const UNKNOWN: u8 = 3;

/// The exit status for an error of a command that was (maybe) sent.
fn status(e: &FleetError, writes: bool) -> u8 {
    match e {
        FleetError::Name(_) | FleetError::Period(_) | FleetError::Url { .. } => USAGE_ERROR,
        // An error reply: the scripts validate before they write, so nothing was written.
        FleetError::Redis(r) if r.code().is_some() => NOT_DONE,
        FleetError::Timeout(_) | FleetError::Redis(_) | FleetError::Malformed(_) if writes => {
            UNKNOWN
        }
        _ => NOT_DONE,
    }
}

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
                    return ExitCode::from(USAGE_ERROR);
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
        return ExitCode::from(USAGE_ERROR);
    };
    let period = rest.get(2).map(|p| parse_period(p));
    if let Some(None) = period {
        eprintln!("bad period {:?} (examples: 500ms, 30s, 5m)", rest[2]);
        return ExitCode::from(USAGE_ERROR);
    }
    let period = period.flatten();
    let op = match cmd.as_str() {
        "show" | "watch" => None,
        "open" => Some(Manage::Open(period.unwrap_or(Duration::from_secs(60)))),
        "trip-for" => match period {
            Some(d) => Some(Manage::TripFor(d)),
            None => {
                eprintln!("trip-for needs a PERIOD");
                return ExitCode::from(USAGE_ERROR);
            }
        },
        "close" => Some(Manage::Close),
        "force-open" => Some(Manage::ForceOpen),
        "disable" => Some(Manage::Disable),
        "reset" => Some(Manage::Reset),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::from(NOT_DONE);
        }
    };
    rt.block_on(async move {
        if cmd == "watch" {
            return watch(&url, &prefix, name, claim, lease).await;
        }
        let admin = match Admin::connect(&url, &prefix, Duration::from_secs(2)).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e}");
                // Nothing was sent.
                return ExitCode::from(status(&e, false));
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
                let code = status(&e, op.is_some());
                if code == UNKNOWN {
                    eprintln!("{name}: {e} (the command may have been applied: run show)");
                } else {
                    eprintln!("{name}: {e}");
                }
                ExitCode::from(code)
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
    let mut builder = FleetBreaker::builder(name.clone(), url)
        .prefix(prefix)
        .claims_trials(claim);
    if let Some(d) = lease {
        builder = builder.trial_lease(d);
    }
    let fleet = match builder.build() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(status(&e, false));
        }
    };
    let mut events = fleet.events();
    println!("token {}", fleet.token());
    loop {
        match events.recv().await {
            Ok(FleetEvent::Applied(r)) => println!("applied {} {r}", unix_micros()),
            Ok(FleetEvent::Degraded { cause, error }) => {
                println!("degraded {} {cause} {error}", unix_micros())
            }
            Ok(FleetEvent::Replaced { field }) => {
                println!("replaced {} {field}", unix_micros())
            }
            Ok(FleetEvent::Restored) => println!("restored {}", unix_micros()),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return ExitCode::SUCCESS,
        }
    }
}
