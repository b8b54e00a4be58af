//! Several OS processes on one fleet breaker: `breakerctl watch` members (separate processes)
//! learn trips made by this process; the propagation delay is measured (p50/p99, loopback).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atomic_breaker_redis::admin::Admin;
use atomic_breaker_redis::Manage;
use common::*;

const WATCHERS: usize = 3;
const ROUNDS: usize = 30;

struct Watcher {
    child: Child,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed `applied <unix µs> <state> gen=<g> ...` line.
struct Applied {
    watcher: usize,
    at_us: u128,
    state: String,
    gen: u64,
}

fn spawn(url: &str, i: usize, tx: mpsc::Sender<Applied>) -> Watcher {
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakerctl"))
        .args(["--url", url, "--prefix", "p", "watch", "fleet-proc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn breakerctl");
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut w = line.split_whitespace();
            if w.next() != Some("applied") {
                continue;
            }
            let (Some(at), Some(state), Some(gen)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            let parsed = (|| {
                Some(Applied {
                    watcher: i,
                    at_us: at.parse().ok()?,
                    state: state.to_owned(),
                    gen: gen.strip_prefix("gen=")?.parse().ok()?,
                })
            })();
            if let Some(a) = parsed {
                if tx.send(a).is_err() {
                    return;
                }
            }
        }
    });
    Watcher { child }
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// Waits until every watcher has applied generation `gen` in `state`; returns their times.
fn wait_all(rx: &mpsc::Receiver<Applied>, state: &str, gen: u64) -> Vec<u128> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = vec![None; WATCHERS];
    while seen.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        let a = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("watchers did not all apply {state} gen={gen}"));
        if a.state == state && a.gen >= gen && seen[a.watcher].is_none() {
            seen[a.watcher] = Some(a.at_us);
        }
    }
    seen.into_iter().map(Option::unwrap).collect()
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trips_propagate_to_other_processes() {
    let srv = server();
    let url = srv.url();
    let (tx, rx) = mpsc::channel();
    let _watchers: Vec<_> = (0..WATCHERS).map(|i| spawn(&url, i, tx.clone())).collect();
    let admin = Admin::connect(&url, "p", Duration::from_secs(2))
        .await
        .unwrap();
    // Every watcher has subscribed and synced once (a member subscribes before its first
    // read, so its first `applied` line means it is listening).
    let first = admin.show("fleet-proc").await.unwrap();
    let rx = tokio::task::spawn_blocking(move || {
        wait_all(&rx, "closed", first.generation);
        rx
    })
    .await
    .unwrap();
    let mut latencies = Vec::new();
    let mut rx = rx;
    for _ in 0..ROUNDS {
        let t0 = unix_us();
        let r = admin
            .manage("fleet-proc", Manage::TripFor(Duration::from_secs(30)))
            .await
            .unwrap();
        let (times, back) = tokio::task::spawn_blocking(move || {
            let t = wait_all(&rx, "open", r.generation);
            (t, rx)
        })
        .await
        .unwrap();
        rx = back;
        latencies.extend(times.iter().map(|t| t.saturating_sub(t0)));
        let r = admin.manage("fleet-proc", Manage::Close).await.unwrap();
        rx = tokio::task::spawn_blocking(move || {
            wait_all(&rx, "closed", r.generation);
            rx
        })
        .await
        .unwrap();
    }
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "trip propagation across {WATCHERS} processes, {} samples: p50 {p50} µs, p99 {p99} µs, max {} µs",
        latencies.len(),
        latencies.last().unwrap()
    );
    // By pub/sub, not by the 1 s refresh: well under it.
    assert!(p99 < 500_000, "p99 {p99} µs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trial_owner_killed_with_sigkill_is_freed_by_its_lease() {
    use atomic_breaker::Recorded;
    use atomic_breaker_redis::FleetState;

    let srv = server();
    let url = srv.url();
    // A member process that takes the trial and, sending no traffic, sits on it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakerctl"))
        .args([
            "--url", &url, "--prefix", "p", "--claim", "--lease", "400ms",
        ])
        .args(["watch", "owned"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn breakerctl");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let token = tokio::task::spawn_blocking(move || {
        let token = lines.next().unwrap().unwrap();
        let token = token.strip_prefix("token ").unwrap().to_owned();
        // Its first applied record: it is subscribed and synced.
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("applied "), "{first}");
        (token, lines)
    });
    let (token, _lines) = bounded(Duration::from_secs(10), token).await.unwrap();
    let mut child = Watcher { child };

    let admin = Admin::connect(&url, "p", Duration::from_secs(2))
        .await
        .unwrap();
    admin
        .manage("owned", Manage::TripFor(Duration::from_millis(50)))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let claimed = loop {
        let r = admin.show("owned").await.unwrap();
        if r.state == FleetState::HalfOpen && r.owner == token {
            break r;
        }
        assert!(Instant::now() < deadline, "the child never claimed: {r}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let lease_ends = Instant::now() + claimed.lease_remaining;
    // kill -9 mid-trial: no report will ever come from it.
    child.child.kill().unwrap();
    child.child.wait().unwrap();

    let me = builder(&url, "owned").prefix("p").build().unwrap();
    until(Duration::from_secs(10), "the lease freed the trial", || {
        me.fleet()
            .is_some_and(|r| r.state == FleetState::HalfOpen && r.owner == me.token())
    })
    .await;
    // Not before the dead owner's lease ended (Redis time; 20 ms for the two clocks' reads).
    assert!(Instant::now() + Duration::from_millis(20) >= lease_ends);
    assert!(me.fleet().unwrap().generation > claimed.generation);
    let p = me.allow().unwrap();
    assert!(p.is_trial());
    assert_eq!(p.success(), Recorded::Closed);
    until(Duration::from_secs(10), "fleet closed", || {
        me.fleet().is_some_and(|r| r.state == FleetState::Closed)
    })
    .await;
    assert_eq!(admin.show("owned").await.unwrap().state, FleetState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_process_takes_the_trial() {
    use atomic_breaker_redis::FleetState;

    let srv = server();
    let url = srv.url();
    // Three member processes racing for the trial at the end of each open period.
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_breakerctl"))
            .args(["--url", &url, "--prefix", "p", "--claim", "--lease", "5s"])
            .args(["watch", "race"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn breakerctl");
        let out = child.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((i, line)).is_err() {
                    return;
                }
            }
        });
        members.push(Watcher { child });
    }
    let ready = tokio::task::spawn_blocking(move || {
        let mut synced = [false; 3];
        let deadline = Instant::now() + Duration::from_secs(10);
        while synced.iter().any(|s| !s) {
            let (i, line) = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("members did not sync");
            synced[i] |= line.starts_with("applied ");
        }
        rx
    });
    let mut rx = bounded(Duration::from_secs(15), ready).await.unwrap();
    let admin = Admin::connect(&url, "p", Duration::from_secs(2))
        .await
        .unwrap();
    for round in 0..5 {
        let tripped = admin
            .manage("race", Manage::TripFor(Duration::from_millis(30)))
            .await
            .unwrap();
        let want = tripped.generation + 1;
        // Wait until every member has applied the claim: each prints the owner it saw.
        let (owners, back) = tokio::task::spawn_blocking(move || {
            let mut owners: [Option<(u64, String)>; 3] = Default::default();
            let deadline = Instant::now() + Duration::from_secs(10);
            while owners.iter().any(Option::is_none) {
                let (i, line) = rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .expect("members did not all apply a claim");
                let w: Vec<&str> = line.split_whitespace().collect();
                if w.len() > 3 && w[0] == "applied" && w[2] == "half_open" {
                    let gen: u64 = w[3].trim_start_matches("gen=").parse().unwrap();
                    let owner = w.iter().find_map(|x| x.strip_prefix("owner=")).unwrap();
                    if gen >= want {
                        owners[i] = Some((gen, owner.to_owned()));
                    }
                }
            }
            (owners.map(Option::unwrap), rx)
        })
        .await
        .unwrap();
        rx = back;
        // One claim won: one generation step from the trip, one owner seen by all three.
        for (gen, owner) in &owners {
            assert_eq!((*gen, owner), (want, &owners[0].1), "round {round}");
        }
        let now = admin.show("race").await.unwrap();
        assert_eq!(now.state, FleetState::HalfOpen, "round {round}");
        assert_eq!(
            (now.generation, &now.owner),
            (want, &owners[0].1),
            "round {round}"
        );
    }
}
