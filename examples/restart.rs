//! A server that keeps its breaker across a restart: it writes the breaker's `SavedState` to a
//! file on shutdown and restores it on start, with the wall-clock time that passed in between,
//! so a deploy does not re-learn a dead dependency with live traffic.
//!
//! `cargo run --example restart --features serde`. It runs two "processes" one after the other
//! (two lives of the same `static`-like breaker, in a temporary directory), and exits by itself.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atomic_breaker::{CircuitBreaker, Config, SavedState, State, StdClock};
use serde::Deserialize;
use serde_json::{json, Value};

// The file: `{"saved_at_unix_ms": .., "breaker": {"state": "Open", "count": 3, ..}}`, the
// breaker's state and when it was saved (wall clock), so the next start knows how long it was
// down.

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn new_breaker() -> CircuitBreaker<StdClock> {
    CircuitBreaker::new(
        "payments",
        Config::new()
            .fail_max(3)
            .reset_timeout(Duration::from_secs(30)),
        StdClock,
    )
}

/// At start: restore what the last process saved, if the file is there and sound.
fn start(path: &Path) -> CircuitBreaker<StdClock> {
    let breaker = new_breaker();
    let Ok(bytes) = fs::read(path) else {
        println!("start: no state file: Closed");
        return breaker;
    };
    // Every field checked (`SavedState`'s `Deserialize` validates): a damaged file is ignored.
    let parsed = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            let saved = SavedState::deserialize(&v["breaker"]).map_err(|e| e.to_string())?;
            let at = v["saved_at_unix_ms"]
                .as_u64()
                .ok_or("no saved_at_unix_ms")?;
            Ok::<_, String>((saved, at))
        });
    match parsed {
        Ok((saved, saved_at)) => {
            // The wall clock may have stepped back: then nothing is known to have passed.
            let down = Duration::from_millis(unix_ms().saturating_sub(saved_at));
            breaker.restore(saved, Some(down));
            println!(
                "start: restored {saved:?} saved {down:?} ago: now {}, retry after {:?}",
                breaker.state(),
                breaker.retry_after()
            );
        }
        Err(e) => println!("start: ignoring a damaged state file ({e}): Closed"),
    }
    breaker
}

/// At shutdown: save the breaker's state.
fn shutdown(breaker: &CircuitBreaker<StdClock>, path: &Path) {
    let file = json!({
        "saved_at_unix_ms": unix_ms(),
        "breaker": breaker.saved_state(),
    });
    let json = file.to_string();
    // Written to a temporary file and renamed, so a crash mid-write leaves the old file.
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, &json).expect("write the state file");
    fs::rename(&tmp, path).expect("replace the state file");
    println!("shutdown: wrote {json}");
}

fn call_dependency(breaker: &CircuitBreaker<StdClock>, up: bool, calls: &mut u32) {
    let r = breaker.call(|| {
        *calls += 1;
        if up {
            Ok(())
        } else {
            Err("connection refused")
        }
    });
    if let Err(e) = r {
        if e.is_rejected() {
            println!("  call rejected without reaching the dependency");
        } else {
            println!("  call failed: {:?}", e.into_inner());
        }
    }
}

fn main() {
    let dir = std::env::temp_dir().join(format!("atomic-breaker-restart-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("breaker.json");

    println!("-- first process: the dependency is down");
    let breaker = start(&path);
    let mut calls = 0;
    for _ in 0..4 {
        call_dependency(&breaker, false, &mut calls);
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(calls, 3, "the fourth call was rejected");
    shutdown(&breaker, &path);

    std::thread::sleep(Duration::from_millis(50));

    println!("-- second process, after a deploy: still down");
    let breaker = start(&path);
    assert_eq!(
        breaker.state(),
        State::Open,
        "the restart did not forget the trip"
    );
    let left = breaker.retry_after().expect("Open");
    assert!(
        left <= Duration::from_millis(29_950),
        "the downtime counted: {left:?}"
    );
    let mut calls = 0;
    for _ in 0..3 {
        call_dependency(&breaker, false, &mut calls);
    }
    assert_eq!(calls, 0, "no live request went to the dead dependency");
    shutdown(&breaker, &path);

    fs::remove_dir_all(&dir).expect("clean up");
    println!("-- done: the second process sent nothing to the dead dependency");
}
