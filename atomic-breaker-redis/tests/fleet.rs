//! Scenario tests of fleet breakers against a real redis-server started by each test.

mod common;

use std::time::{Duration, Instant};

use atomic_breaker::{Recorded, State};
use atomic_breaker_redis::FleetState;
use common::*;

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_sends_no_redis_commands() {
    let srv = server();
    let url = srv.url();
    // The refresh is the only periodic command; make it rarer than this test.
    let f = builder(&url, "quiet")
        .refresh(Duration::from_secs(60))
        .build()
        .unwrap();
    synced(&f).await;
    let mut con = raw(&url).await;
    let before = commands(&mut con).await;
    for i in 0..1000u32 {
        assert_eq!(f.call(|| Ok::<_, ()>(i)), Ok(i));
    }
    // Failures below fail_max are local too.
    fail(&f, 2);
    let after = commands(&mut con).await;
    assert_eq!(
        after - before,
        0,
        "commands sent during 1000 successful calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_anywhere_opens_the_fleet() {
    let srv = server();
    let url = srv.url();
    let (a, b, c) = (member(&url, "db"), member(&url, "db"), member(&url, "db"));
    for f in [&a, &b, &c] {
        synced(f).await;
    }
    fail(&a, 3);
    assert_eq!(a.state(), State::Open);
    until(T, "b and c open", || {
        b.state() == State::Open && c.state() == State::Open
    })
    .await;
    assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
    let r = a.fleet().unwrap();
    assert_eq!(r.state, FleetState::Open);
    assert_eq!(r.trips, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trial_for_the_fleet_and_its_success_closes_everyone() {
    let srv = server();
    let url = srv.url();
    let fleet = [
        member(&url, "api"),
        member(&url, "api"),
        member(&url, "api"),
    ];
    for f in &fleet {
        synced(f).await;
    }
    fail(&fleet[0], 3);
    until(T, "a trial owner", || {
        fleet[1]
            .fleet()
            .is_some_and(|r| r.state == FleetState::HalfOpen)
    })
    .await;
    // Everyone has applied the claim; only the owner admits, and only one call at a time.
    let owner_token = fleet[1].fleet().unwrap().owner;
    until(T, "all applied the claim", || {
        fleet.iter().all(|f| {
            f.fleet()
                .is_some_and(|r| r.state == FleetState::HalfOpen && r.owner == owner_token)
        })
    })
    .await;
    let mut permits = Vec::new();
    for f in &fleet {
        if let Ok(p) = f.allow() {
            assert!(p.is_trial());
            permits.push(p);
        }
        assert!(f.allow().is_err(), "a second trial in one process");
    }
    assert_eq!(permits.len(), 1, "exactly one trial in the fleet");
    let owner = fleet.iter().find(|f| f.token() == owner_token).unwrap();
    assert_eq!(permits.pop().unwrap().success(), Recorded::Closed);
    assert_eq!(owner.state(), State::Closed);
    until(T, "everyone closed", || {
        fleet.iter().all(|f| f.state() == State::Closed)
    })
    .await;
    assert_eq!(owner.fleet().unwrap().state, FleetState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_trial_reopens_the_fleet() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "q"), member(&url, "q"));
    synced(&a).await;
    synced(&b).await;
    fail(&a, 3);
    until(T, "claimed", || {
        a.fleet().is_some_and(|r| r.state == FleetState::HalfOpen)
            && b.fleet().is_some_and(|r| r.state == FleetState::HalfOpen)
    })
    .await;
    let gen = a.fleet().unwrap().generation;
    let owner = if a.allow().is_ok() { &a } else { &b };
    let p = owner.allow().unwrap();
    assert_eq!(p.failure(), Recorded::Tripped);
    until(T, "fleet re-opened", || {
        [&a, &b].iter().all(|f| {
            f.fleet()
                .is_some_and(|r| r.state == FleetState::Open && r.generation == gen + 1)
        })
    })
    .await;
    assert_eq!(a.fleet().unwrap().trips, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_trial_owner_is_freed_by_its_lease() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "lease"), member(&url, "lease"));
    synced(&a).await;
    synced(&b).await;
    fail(&a, 3);
    until(T, "claimed", || {
        b.fleet().is_some_and(|r| r.state == FleetState::HalfOpen)
            && a.fleet().is_some_and(|r| r.state == FleetState::HalfOpen)
    })
    .await;
    let first = a.fleet().unwrap();
    let (owner, survivor) = if first.owner == a.token() {
        (a, b)
    } else {
        (b, a)
    };
    // The owner dies without reporting: its task is gone, its lease is not.
    drop(owner);
    let start = Instant::now();
    until(T, "survivor owns the trial", || {
        survivor
            .fleet()
            .is_some_and(|r| r.state == FleetState::HalfOpen && r.owner == survivor.token())
    })
    .await;
    // Not before the lease (500 ms from the claim) ran out.
    assert!(survivor.fleet().unwrap().generation > first.generation);
    assert!(start.elapsed() <= Duration::from_secs(3));
    assert_eq!(survivor.allow().unwrap().success(), Recorded::Closed);
    until(T, "fleet closed", || {
        survivor
            .fleet()
            .is_some_and(|r| r.state == FleetState::Closed)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reports_change_nothing() {
    use atomic_breaker_redis::scripts;
    let srv = server();
    let url = srv.url();
    let mut con = raw(&url).await;
    let keys = atomic_breaker_redis::Keys::new("t", "stale").unwrap();
    let ttl = Duration::from_secs(60);
    let r0 = scripts::read(&mut con, &keys, ttl).await.unwrap();
    // A trip in the current generation opens; the same report again is stale.
    let r1 = scripts::trip(&mut con, &keys, ttl, &r0.epoch, r0.generation, ttl, "x")
        .await
        .unwrap();
    assert_eq!(r1.state, FleetState::Open);
    assert_eq!(r1.generation, r0.generation + 1);
    let closed = scripts::manage(&mut con, &keys, ttl, scripts::Manage::Close)
        .await
        .unwrap();
    let again = scripts::trip(&mut con, &keys, ttl, &r0.epoch, r0.generation, ttl, "x")
        .await
        .unwrap();
    assert_eq!(
        again,
        Record {
            redis_now_ms: again.redis_now_ms,
            ..closed.clone()
        }
    );
    // A claim before the deadline, or on an old generation, is refused.
    let r2 = scripts::manage(&mut con, &keys, ttl, scripts::Manage::TripFor(ttl))
        .await
        .unwrap();
    let early = scripts::claim(&mut con, &keys, ttl, &r2.epoch, r2.generation, "x", ttl)
        .await
        .unwrap();
    assert_eq!(early.state, FleetState::Open);
    assert_eq!(early.generation, r2.generation);
    // A close from a non-owner or an old generation is refused.
    let r3 = scripts::manage(
        &mut con,
        &keys,
        ttl,
        scripts::Manage::TripFor(Duration::ZERO),
    )
    .await
    .unwrap();
    let claimed = scripts::claim(&mut con, &keys, ttl, &r3.epoch, r3.generation, "owner", ttl)
        .await
        .unwrap();
    assert_eq!(claimed.state, FleetState::HalfOpen);
    for (gen, token) in [(claimed.generation, "intruder"), (r3.generation, "owner")] {
        let r = scripts::close(&mut con, &keys, ttl, &claimed.epoch, gen, token)
            .await
            .unwrap();
        assert_eq!(r.state, FleetState::HalfOpen);
        assert_eq!(r.generation, claimed.generation);
    }
    let closed = scripts::close(
        &mut con,
        &keys,
        ttl,
        &claimed.epoch,
        claimed.generation,
        "owner",
    )
    .await
    .unwrap();
    assert_eq!(closed.state, FleetState::Closed);
    // Every key has a TTL.
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&keys.record)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= 60_000, "pttl {pttl}");
}

use atomic_breaker_redis::Record;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_permit_neither_trips_nor_closes() {
    let srv = server();
    let url = srv.url();
    let a = member(&url, "gen");
    synced(&a).await;
    let b = member(&url, "gen");
    synced(&b).await;
    // Admitted before the fleet tripped and closed again.
    let permits: Vec<_> = (0..3).map(|_| a.allow().unwrap()).collect();
    b.trip_for(Duration::from_secs(30)).await.unwrap();
    until(T, "a open", || a.state() == State::Open).await;
    b.close().await.unwrap();
    until(T, "a closed", || a.state() == State::Closed).await;
    let gen = a.fleet().unwrap().generation;
    for p in permits {
        assert_eq!(p.failure(), Recorded::Dropped);
    }
    assert_eq!(a.state(), State::Closed);
    let r = bounded(T, a.refresh()).await.unwrap();
    assert_eq!((r.state, r.generation), (FleetState::Closed, gen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_acts_on_the_fleet() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "ops"), member(&url, "ops"));
    synced(&a).await;
    synced(&b).await;
    a.force_open().await.unwrap();
    until(T, "b forced open", || b.state() == State::ForcedOpen).await;
    a.disable().await.unwrap();
    until(T, "b disabled", || b.state() == State::Disabled).await;
    a.close().await.unwrap();
    until(T, "b closed", || b.state() == State::Closed).await;
    b.trip_for(Duration::from_secs(20)).await.unwrap();
    until(T, "a open", || a.state() == State::Open).await;
    let retry = a.snapshot().retry_after.unwrap();
    assert!(retry > Duration::from_secs(18) && retry <= Duration::from_secs(21));
    // The admin view (what breakerctl prints) agrees.
    let admin = atomic_breaker_redis::admin::Admin::connect(&url, "t", T)
        .await
        .unwrap();
    assert_eq!(admin.show("ops").await.unwrap().state, FleetState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_async_trips_the_fleet() {
    let srv = server();
    let url = srv.url();
    let (a, b) = (member(&url, "async"), member(&url, "async"));
    synced(&a).await;
    synced(&b).await;
    assert_eq!(a.call_async(async { Ok::<_, ()>(7) }).await, Ok(7));
    let mut tripped = false;
    for _ in 0..3 {
        let e = a
            .call_async(async { Err::<(), _>("down") })
            .await
            .unwrap_err();
        tripped |= e.tripped();
    }
    assert!(tripped);
    until(T, "b open", || b.state() == State::Open).await;
    let e = b.call_async(async { Ok::<_, ()>(()) }).await.unwrap_err();
    assert!(e.is_rejected());
}

#[tokio::test(flavor = "current_thread")]
async fn bad_names_and_tokens_are_typed_errors() {
    use atomic_breaker_redis::{FleetBreaker, FleetError};
    // No server needed: nothing connects at build time.
    let url = "redis://127.0.0.1:1/";
    let e = FleetBreaker::builder("a{b}", url).build().unwrap_err();
    assert!(matches!(e, FleetError::Name(_)), "{e}");
    let e = FleetBreaker::builder("ok", url)
        .token("a|b")
        .build()
        .unwrap_err();
    assert!(matches!(e, FleetError::Token(_)), "{e}");
    let e = FleetBreaker::builder("ok", url)
        .config(atomic_breaker::Config::new().fail_max(0))
        .build()
        .unwrap_err();
    assert!(matches!(e, FleetError::Config(_)), "{e}");
    // URLs it cannot use: a typed error naming the reason, the password never shown.
    for (bad, why) in [
        ("not a url", "not a URL"),
        (
            "redis+sentinel://:secret@127.0.0.1:26379/mymaster",
            "Sentinel",
        ),
        ("redis://:secret@10.0.0.1:6379,10.0.0.2:6379/", "Cluster"),
        ("rediss://:secret@127.0.0.1:6380/", "TLS"),
        ("redis://:secret@127.0.0.1:notaport/", ""),
    ] {
        let e = FleetBreaker::builder("ok", bad).build().unwrap_err();
        let FleetError::Url { url, reason } = &e else {
            panic!("{bad}: {e}");
        };
        assert!(reason.contains(why), "{bad}: {reason}");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(!url.contains("secret"), "{url}");
    }
    let e = atomic_breaker_redis::admin::Admin::connect("redis-sentinel://h/m", "t", T)
        .await
        .unwrap_err();
    assert!(matches!(e, FleetError::Url { .. }), "{e}");
    // Periods the local breakers cannot hold: refused before anything is sent.
    let e = FleetBreaker::builder("ok", url)
        .trial_lease(Duration::from_secs(86_401))
        .build()
        .unwrap_err();
    assert!(matches!(e, FleetError::Period(_)), "{e}");
    // A name made at run time.
    let name = format!("tenant-{}", 42);
    let f = FleetBreaker::builder(name.clone(), url).build().unwrap();
    assert_eq!(f.local().name(), "tenant-42");
    assert_eq!(f.keys().record, "atomic-breaker:{tenant-42}");
    let again = FleetBreaker::builder(name, url).build().unwrap();
    assert!(core::ptr::eq(f.local().name(), again.local().name()));
}

#[test]
fn building_outside_a_runtime_is_a_typed_error() {
    let e = atomic_breaker_redis::FleetBreaker::builder("ok", "redis://127.0.0.1:1/")
        .build()
        .unwrap_err();
    assert!(
        matches!(e, atomic_breaker_redis::FleetError::NoRuntime),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_trial_keeps_its_lease() {
    let srv = server();
    let url = srv.url();
    // Lease 500 ms (common::builder); the trial below runs for three leases.
    let (a, b) = (member(&url, "renew"), member(&url, "renew"));
    synced(&a).await;
    synced(&b).await;
    fail(&a, 3);
    until(T, "claimed", || {
        [&a, &b]
            .iter()
            .all(|f| f.fleet().is_some_and(|r| r.state == FleetState::HalfOpen))
    })
    .await;
    let claimed = a.fleet().unwrap();
    let (owner, other) = if claimed.owner == a.token() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let permit = owner.allow().unwrap();
    assert!(permit.is_trial());
    // The trial call runs for 1.5 s: the owner renews at every half lease, so the other
    // process never takes the trial over.
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        let r = other.fleet().unwrap();
        assert_eq!(
            (r.state, r.generation),
            (FleetState::HalfOpen, claimed.generation)
        );
        assert!(other.allow().is_err());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(permit.success(), Recorded::Closed);
    until(T, "other closed", || other.state() == State::Closed).await;
}

/// Issue 23, parts 2 and 3, at the scripts: which trips a record of another epoch accepts, an
/// operator's close always a new generation, numbers range-checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_trips_across_epochs_and_ranges() {
    use atomic_breaker_redis::{scripts, FleetError, Keys, Manage};
    let srv = server();
    let mut con = raw(&srv.url()).await;
    let keys = Keys::new("t", "epochs").unwrap();
    let ttl = Duration::from_secs(60);
    let open = Duration::from_secs(30);
    let old = scripts::read(&mut con, &keys, ttl).await.unwrap();
    let flush = |mut c: redis::aio::MultiplexedConnection| async move {
        let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    };
    // A trip from the old epoch into a fresh record (wiped, nothing decided since): accepted.
    flush(con.clone()).await;
    let fresh = scripts::read(&mut con, &keys, ttl).await.unwrap();
    assert!(fresh.is_fresh() && fresh.epoch != old.epoch);
    let r = scripts::trip(&mut con, &keys, ttl, &old.epoch, old.generation, open, "p")
        .await
        .unwrap();
    assert_eq!((r.state, r.generation), (FleetState::Open, 2));
    // After a wipe, an operator's close (gen 2), then the same trip: refused.
    flush(con.clone()).await;
    let closed = scripts::manage(&mut con, &keys, ttl, Manage::Close)
        .await
        .unwrap();
    assert_eq!((closed.state, closed.generation), (FleetState::Closed, 2));
    let r = scripts::trip(&mut con, &keys, ttl, &old.epoch, old.generation, open, "p")
        .await
        .unwrap();
    assert_eq!((r.state, r.generation), (FleetState::Closed, 2));
    // A close of a Closed record is a new generation: a trip in flight from before it is stale.
    let again = scripts::manage(&mut con, &keys, ttl, Manage::Close)
        .await
        .unwrap();
    assert_eq!(again.generation, 3);
    let r = scripts::trip(&mut con, &keys, ttl, &again.epoch, 2, open, "p")
        .await
        .unwrap();
    assert_eq!((r.state, r.generation), (FleetState::Closed, 3));
    // A process that never synced (epoch "") trips a Closed record: its failures are news.
    let r = scripts::trip(&mut con, &keys, ttl, "", 0, open, "p")
        .await
        .unwrap();
    assert_eq!((r.state, r.generation), (FleetState::Open, 4));
    // Periods over 24 h never reach Redis.
    let e = scripts::manage(
        &mut con,
        &keys,
        ttl,
        Manage::TripFor(Duration::from_secs(86_401)),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, FleetError::Period(_)), "{e}");
    // Reset: a new epoch at generation 1, whatever was there.
    let r = scripts::manage(&mut con, &keys, ttl, Manage::Reset)
        .await
        .unwrap();
    assert!(r.is_fresh() && r.epoch != again.epoch);
    // The largest numbers a record may hold come back exactly (no wrap through Lua's %d).
    let _: () = redis::cmd("HSET")
        .arg(&keys.record)
        .arg("gen")
        .arg("9007199254740990")
        .arg("trips")
        .arg("9007199254740991")
        .query_async(&mut con)
        .await
        .unwrap();
    let r = scripts::manage(&mut con, &keys, ttl, Manage::TripFor(open))
        .await
        .unwrap();
    assert_eq!(
        (r.generation, r.trips),
        (9_007_199_254_740_991, 9_007_199_254_740_991)
    );
    // One more change passes 2^53 - 1: the next script replaces the record, never wraps it.
    let r = scripts::manage(&mut con, &keys, ttl, Manage::Close)
        .await
        .unwrap();
    assert_eq!(r.generation, 9_007_199_254_740_992);
    let r = scripts::read(&mut con, &keys, ttl).await.unwrap();
    assert_eq!(r.replaced.as_deref(), Some("gen"));
    assert!(r.is_fresh());
}
