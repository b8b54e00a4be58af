//! Redis down, paused, slow, script cache flushed, data wiped: callers never wait, local
//! protection stays, the fleet reconverges. Each test kills or pauses only its own server.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use atomic_breaker::{Event, EventKind, State};
use atomic_breaker_redis::{FleetBreaker, FleetEvent, FleetState};
use common::*;

const T: Duration = Duration::from_secs(10);

/// Makes `n` calls and asserts none took longer than `limit` (no caller waits on Redis).
fn calls_stay_local(f: &FleetBreaker, n: u32, ok: bool, limit: Duration) {
    for _ in 0..n {
        let t = Instant::now();
        let _ = f.call(|| if ok { Ok(()) } else { Err("down") });
        assert!(t.elapsed() < limit, "a call took {:?}", t.elapsed());
    }
}

fn is_degraded(e: &FleetEvent) -> bool {
    matches!(e, FleetEvent::Degraded { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_while_redis_is_down_protects_locally_then_joins() {
    let mut srv = server();
    let url = srv.url();
    srv.kill().unwrap();
    let f = member(&url, "late");
    let mut events = f.events();
    event(&mut events, T, is_degraded).await;
    assert!(f.fleet().is_none());
    // Local protection: its own failures trip it, and no call waits.
    calls_stay_local(&f, 3, false, Duration::from_millis(5));
    assert_eq!(f.state(), State::Open);
    srv.restart().unwrap();
    event(&mut events, T, |e| *e == FleetEvent::Restored).await;
    // The local trip reaches the fleet: a fresh member sees it open.
    let g = member(&url, "late");
    until(T, "trip published", || {
        g.fleet()
            .is_some_and(|r| r.state != FleetState::Closed && r.trips == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_and_restarted() {
    let mut srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "k9"), member(&url, "k9"));
    synced(&a).await;
    synced(&b).await;
    let mut ev_a = a.events();
    let mut ev_b = b.events();
    srv.kill().unwrap();
    calls_stay_local(&a, 100, true, Duration::from_millis(5));
    // A trips on its own failures while Redis is gone; nobody blocks.
    calls_stay_local(&a, 3, false, Duration::from_millis(5));
    assert_eq!(a.state(), State::Open);
    event(&mut ev_a, T, is_degraded).await;
    event(&mut ev_b, T, is_degraded).await;
    assert_eq!(
        b.state(),
        State::Closed,
        "b has seen no failure and no fleet trip"
    );
    // Redis errors are not failures of the protected service.
    assert_eq!(b.snapshot().fail_counter, 0);
    srv.restart().unwrap();
    event(&mut ev_a, T, |e| *e == FleetEvent::Restored).await;
    event(&mut ev_b, T, |e| *e == FleetEvent::Restored).await;
    // The restarted server is empty: a's open state is re-published, b learns it.
    until(T, "b opened by a's trip", || {
        b.fleet().is_some_and(|r| r.trips >= 1) && b.state() != State::Closed
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_delays_the_fleet_not_the_callers() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "pause"), member(&url, "pause"));
    synced(&a).await;
    synced(&b).await;
    let mut ev_a = a.events();
    let mut con = raw(&url).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut con)
        .await
        .unwrap();
    let paused_at = Instant::now();
    calls_stay_local(&a, 3, false, Duration::from_millis(5));
    assert_eq!(a.state(), State::Open);
    calls_stay_local(&a, 100, true, Duration::from_millis(5));
    // The trip script times out (100 ms): degraded, local protection meanwhile.
    event(&mut ev_a, T, is_degraded).await;
    until(T, "b opened after the pause", || b.state() == State::Open).await;
    assert!(paused_at.elapsed() >= Duration::from_millis(1400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_sleep_slows_redis_not_the_callers() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "slow"), member(&url, "slow"));
    synced(&a).await;
    synced(&b).await;
    let mut ev_b = b.events();
    let url2 = url.clone();
    let sleeper = tokio::spawn(async move {
        let mut con = raw(&url2).await;
        let _: () = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("1")
            .query_async(&mut con)
            .await
            .unwrap();
    });
    // The server is asleep as soon as the refresh times out.
    event(&mut ev_b, T, is_degraded).await;
    calls_stay_local(&a, 3, false, Duration::from_millis(5));
    calls_stay_local(&b, 100, true, Duration::from_millis(5));
    event(&mut ev_b, T, |e| *e == FleetEvent::Restored).await;
    until(T, "b open", || b.state() == State::Open).await;
    bounded(T, sleeper).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_is_survived() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "noscript"), member(&url, "noscript"));
    synced(&a).await;
    synced(&b).await;
    let mut con = raw(&url).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut ev = a.events();
    fail(&a, 3);
    until(T, "b open", || b.state() == State::Open).await;
    // NOSCRIPT was answered by reloading, not by degrading.
    assert!(!a.is_degraded());
    assert!(ev.try_recv().map_or(true, |e| !is_degraded(&e)));
}

static FLUSH_B_CLOSES: AtomicU32 = AtomicU32::new(0);

fn count_closes(e: &Event) {
    if let EventKind::StateChange {
        to: State::Closed, ..
    } = e.kind
    {
        FLUSH_B_CLOSES.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_reconverges_without_a_spurious_close() {
    let srv = server();
    let url = srv.url();
    let long = atomic_breaker::Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(30));
    let a = builder(&url, "wiped").config(long).build().unwrap();
    let b = builder(&url, "wiped").config(long).build().unwrap();
    b.local().add_listener(count_closes).unwrap();
    synced(&a).await;
    synced(&b).await;
    fail(&a, 3);
    until(T, "b open", || b.state() == State::Open).await;
    let before = b.fleet().unwrap();
    let mut con = raw(&url).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
    // The next refresh re-creates the record Closed in a new epoch; an open member re-publishes.
    until(T, "re-opened in a new epoch", || {
        b.fleet()
            .is_some_and(|r| r.epoch != before.epoch && r.state == FleetState::Open)
    })
    .await;
    assert_eq!(a.state(), State::Open);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        FLUSH_B_CLOSES.load(Ordering::Relaxed),
        0,
        "b closed spuriously"
    );
    let retry = b.snapshot().retry_after.unwrap();
    assert!(
        retry > Duration::from_secs(20),
        "open period kept: {retry:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_ends_in_a_reconnect() {
    let mut srv = server();
    let url = srv.url();
    let f = member(&url, "long");
    synced(&f).await;
    let mut ev = f.events();
    srv.kill().unwrap();
    event(&mut ev, T, is_degraded).await;
    // The outage itself: longer than the connection manager's own retries (2, backoff capped
    // at the 200 ms refresh), so only the task's reconnection can end it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    calls_stay_local(&f, 100, true, Duration::from_millis(5));
    srv.restart().unwrap();
    event(&mut ev, T, |e| *e == FleetEvent::Restored).await;
    assert!(bounded(T, f.refresh()).await.is_ok());
}
