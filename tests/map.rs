//! Scenario tests of `BreakerMap`: capacity, idle-only eviction (also under concurrent use),
//! eviction refused for busy or failing keys with a typed error, per-key events. Time comes
//! from `ManualClock` only; threads wait on each other through atomics, never on sleeps.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration;

use atomic_breaker::{
    BreakerMap, Config, Event, EventKind, EventRecord, FailureRate, Interest, ManualClock, MapFull,
    Outcome, State,
};

type Map<'c> = BreakerMap<String, &'c ManualClock>;

fn map(clock: &ManualClock, fail_max: u32, capacity: usize) -> Map<'_> {
    BreakerMap::try_new(
        "upstream",
        Config::new()
            .fail_max(fail_max)
            .reset_timeout(Duration::from_secs(30)),
        clock,
        capacity,
    )
    .unwrap()
}

fn ok(map: &Map<'_>, key: &str) {
    assert_eq!(map.call(key, || Ok::<_, ()>(1)).unwrap(), Ok(1));
}

fn fail(map: &Map<'_>, key: &str) {
    assert!(map.call(key, || Err::<(), _>("down")).unwrap().is_err());
}

/// Small loop counts under miri, which is about a thousand times slower.
const fn iters(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

#[test]
fn capacity_is_respected_and_a_full_map_of_busy_keys_refuses_with_a_typed_error() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 3);
    assert_eq!(m.capacity(), 3);
    // Handles out: all three are busy.
    let held: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|k| m.get_or_insert(*k).unwrap())
        .collect();
    assert_eq!(m.len(), 3);
    let err = m.get_or_insert("d").unwrap_err();
    assert_eq!(err, MapFull { capacity: 3 });
    assert!(err.to_string().contains("full"));
    assert_eq!(m.call("d", || Ok::<_, ()>(1)), Err(MapFull { capacity: 3 }));
    assert_eq!(m.len(), 3);
    assert!(m.get("d").is_none());
    // An existing key is still found when full.
    assert!(m.get_or_insert("a").unwrap().same_entry(&held[0]));
    assert_eq!(m.evictions(), 0);
    drop(held);
    // Now all three are idle: "d" takes one's place.
    ok(&m, "d");
    assert_eq!(m.len(), 3);
    assert_eq!(m.evictions(), 1);
    let left = ["a", "b", "c"]
        .iter()
        .filter(|k| m.get(**k).is_some())
        .count();
    assert_eq!(left, 2);
}

#[test]
fn a_map_of_capacity_zero_refuses_every_key() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 0);
    assert_eq!(m.get_or_insert("a").unwrap_err(), MapFull { capacity: 0 });
    assert!(m.is_empty());
}

#[test]
fn a_closed_key_holding_failures_is_never_evicted_and_keeps_its_count() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 2);
    fail(&m, "flaky");
    fail(&m, "flaky");
    ok(&m, "quiet");
    // Full; "quiet" is idle, "flaky" holds 2 failures.
    ok(&m, "new1");
    assert!(m.get("quiet").is_none(), "the idle key makes room");
    // "new1" is idle now: it goes next, never "flaky".
    ok(&m, "new2");
    assert!(m.get("new1").is_none());
    let flaky = m.get("flaky").unwrap();
    assert_eq!(flaky.state(), State::Closed);
    assert_eq!(flaky.fail_counter(), 2, "the failure history survives");
    drop(flaky);
    // With "new2" busy, nothing is idle: refused, and "flaky" is still there.
    let busy = m.get("new2").unwrap();
    assert_eq!(
        m.get_or_insert("new3").unwrap_err(),
        MapFull { capacity: 2 }
    );
    assert_eq!(m.get("flaky").unwrap().fail_counter(), 2);
    drop(busy);
    // A success resets the count: then "flaky" is idle like any other.
    ok(&m, "flaky");
    assert_eq!(m.get("flaky").unwrap().fail_counter(), 0);
}

/// In failure-rate mode a success does not clear the failures: they stay in the window, and a
/// key whose window holds one is not idle.
#[test]
fn in_rate_mode_a_key_whose_window_holds_a_failure_is_not_idle() {
    let clock = ManualClock::new();
    let config = Config::new().failure_rate(FailureRate::new(50, 10));
    let m: Map<'_> = BreakerMap::try_new("upstream", config, &clock, 1).unwrap();
    fail(&m, "flaky");
    ok(&m, "flaky");
    // 1 failure in 2 calls, below the 10 minimum calls: Closed, and the window holds it.
    let flaky = m.get("flaky").unwrap();
    assert_eq!(flaky.state(), State::Closed);
    assert_eq!(flaky.fail_counter(), 1);
    drop(flaky);
    assert_eq!(
        m.get_or_insert("other").unwrap_err(),
        MapFull { capacity: 1 }
    );
    assert_eq!(
        m.get("flaky").unwrap().fail_counter(),
        1,
        "the window survives"
    );
    // Successes push the failure out of the window: then the key is idle.
    for _ in 0..10 {
        ok(&m, "flaky");
    }
    assert_eq!(m.get("flaky").unwrap().fail_counter(), 0);
    ok(&m, "other");
    assert!(m.get("flaky").is_none());
}

#[test]
fn open_half_open_forced_open_and_disabled_keys_are_not_idle() {
    let clock = ManualClock::new();
    let m = map(&clock, 1, 4);
    fail(&m, "open");
    fail(&m, "half-open");
    ok(&m, "forced");
    ok(&m, "disabled");
    assert!(m.get("forced").unwrap().force_open());
    assert!(m.get("disabled").unwrap().disable());
    clock.advance(Duration::from_secs(30));
    // "open" must be re-opened: its period passed. Trip it again from a trial.
    fail(&m, "open");
    assert_eq!(m.get("open").unwrap().state(), State::Open);
    // "half-open": a trial permit held out.
    let half = m.get("half-open").unwrap();
    let trial = half.allow().unwrap();
    assert!(trial.is_trial());
    assert_eq!(half.state(), State::HalfOpen);
    // A trial in flight pins the entry through its handle; report it as ignored and drop the
    // handle: HalfOpen, with no handle out, is still not idle.
    let _ = trial.ignore();
    drop(half);
    assert_eq!(m.get("half-open").unwrap().state(), State::HalfOpen);

    assert_eq!(m.get_or_insert("new").unwrap_err(), MapFull { capacity: 4 });
    let states: Vec<_> = ["open", "half-open", "forced", "disabled"]
        .iter()
        .map(|k| m.get(*k).unwrap().state())
        .collect();
    assert_eq!(
        states,
        [
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled
        ]
    );
    // Closing "forced" makes it idle: it is the one evicted.
    assert!(m.get("forced").unwrap().close());
    ok(&m, "new");
    assert!(m.get("forced").is_none());
    assert_eq!(m.len(), 4);
}

#[test]
fn a_call_in_flight_pins_its_key() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 1);
    let r = m.call("running", || {
        // Closed, no failures, but a call is running: not idle.
        assert_eq!(
            m.get_or_insert("other").unwrap_err(),
            MapFull { capacity: 1 }
        );
        Ok::<_, ()>(7)
    });
    assert_eq!(r.unwrap(), Ok(7));
    // Done: now idle.
    ok(&m, "other");
    assert!(m.get("running").is_none());
}

#[test]
fn an_owned_permit_pins_its_key_until_reported() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 1);
    let permit =
        atomic_breaker::CircuitBreaker::allow_owned(m.get_or_insert("a").unwrap()).unwrap();
    assert_eq!(m.get_or_insert("b").unwrap_err(), MapFull { capacity: 1 });
    assert_eq!(permit.breaker().key(), "a");
    let _ = permit.report(Outcome::Success);
    ok(&m, "b");
}

#[test]
fn idle_after_keeps_recently_used_keys_until_their_time() {
    let clock = ManualClock::new();
    let m = map(&clock, 5, 1).idle_after(Duration::from_secs(10));
    ok(&m, "a");
    clock.advance(Duration::from_secs(9));
    assert_eq!(m.get_or_insert("b").unwrap_err(), MapFull { capacity: 1 });
    // A lookup touches it again.
    assert!(m.get("a").is_some());
    clock.advance(Duration::from_secs(9));
    assert_eq!(m.get_or_insert("b").unwrap_err(), MapFull { capacity: 1 });
    clock.advance(Duration::from_secs(1));
    ok(&m, "b");
    assert!(m.get("a").is_none());
}

#[test]
fn eviction_takes_the_least_recently_used_idle_key_of_a_shard() {
    // One shard's worth is hard to force with a random hasher; with every key idle and
    // `idle_after` set, each eviction still takes an idle key, and the most recent survives.
    let clock = ManualClock::new();
    let m = map(&clock, 5, 2).idle_after(Duration::from_millis(1));
    ok(&m, "old");
    clock.advance(Duration::from_secs(1));
    ok(&m, "recent");
    clock.advance(Duration::from_secs(1));
    ok(&m, "new");
    assert_eq!(m.len(), 2);
    assert!(m.get("new").is_some());
}

/// Every key hashes to 0: one shard, one probe chain, so the choice among idle keys is
/// deterministic (the least recently looked up).
#[derive(Clone, Default)]
struct OneShard;
struct Zero;
impl std::hash::Hasher for Zero {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}
impl std::hash::BuildHasher for OneShard {
    type Hasher = Zero;
    fn build_hasher(&self) -> Zero {
        Zero
    }
}

#[test]
fn eviction_takes_the_least_recently_looked_up_idle_key() {
    let clock = ManualClock::new();
    let m: BreakerMap<String, &ManualClock, 4, OneShard> =
        BreakerMap::try_with_hasher("upstream", Config::new(), &clock, 2, OneShard)
            .unwrap()
            .idle_after(Duration::from_millis(1));
    let call = |k: &str| assert!(m.call(k, || Ok::<_, ()>(())).unwrap().is_ok());
    call("a"); // t = 0
    clock.advance(Duration::from_secs(1));
    call("b"); // t = 1 s
    clock.advance(Duration::from_secs(1));
    call("c"); // t = 2 s: evicts "a", the older
    assert!(m.get("a").is_none());
    clock.advance(Duration::from_secs(1));
    assert!(m.get("b").is_some()); // t = 3 s: "b" is now the more recent
    clock.advance(Duration::from_secs(1));
    call("d"); // t = 4 s: evicts "c" (looked up at 2 s)
    assert!(m.get("c").is_none());
    assert!(m.get("b").is_some() && m.get("d").is_some());
    assert_eq!(m.evictions(), 2);
}

#[test]
fn many_keys_grow_the_tables_and_eviction_keeps_the_count() {
    let n = iters(1_000, 40);
    let clock = ManualClock::new();
    let m = map(&clock, 5, n);
    for i in 0..n {
        ok(&m, &format!("first{i}"));
    }
    assert_eq!(m.len(), n);
    assert!((0..n).all(|i| m.get(format!("first{i}").as_str()).is_some()));
    // All idle: every new key evicts one idle key (an old one or an earlier new one).
    for i in 0..n {
        let k = format!("second{i}");
        ok(&m, &k);
        assert!(m.get(k.as_str()).is_some());
        assert_eq!(m.len(), n);
    }
    assert_eq!(m.evictions(), n as u64);
    let snaps = m.snapshots();
    assert_eq!(snaps.len(), n);
    // Every entry the map holds is found by its own key (hashes agree after growth).
    assert!(snaps.iter().all(|(k, _)| m.get(k.as_str()).is_some()));
}

#[test]
fn remove_drops_any_key_and_handles_out_keep_working() {
    let clock = ManualClock::new();
    let m = map(&clock, 1, 2);
    fail(&m, "a");
    let a = m.remove("a").unwrap();
    assert_eq!(a.key(), "a");
    assert_eq!(a.state(), State::Open);
    assert_eq!(m.len(), 0);
    assert!(m.remove("a").is_none());
    // A new breaker for the key, Closed; the old handle still sees its own.
    ok(&m, "a");
    assert!(!m.get("a").unwrap().same_entry(&a));
    assert_eq!(a.state(), State::Open);
    assert_eq!(m.len(), 1);
}

#[test]
fn snapshots_report_every_key() {
    let clock = ManualClock::new();
    let m = map(&clock, 2, 8);
    fail(&m, "a");
    fail(&m, "b");
    fail(&m, "b");
    ok(&m, "c");
    let mut s = m.snapshots();
    s.sort_by(|x, y| x.0.cmp(&y.0));
    let got: Vec<_> = s
        .iter()
        .map(|(k, s)| (k.as_str(), s.state, s.fail_counter, s.name))
        .collect();
    assert_eq!(
        got,
        [
            ("a", State::Closed, 1, "upstream"),
            ("b", State::Open, 2, "upstream"),
            ("c", State::Closed, 0, "upstream"),
        ]
    );
}

// `Event` borrows the caller's error, so the logs keep `EventRecord`s (no error, `'static`).
static EVENTS: Mutex<Vec<(String, EventRecord)>> = Mutex::new(Vec::new());
static CHANGES: Mutex<Vec<(String, EventRecord)>> = Mutex::new(Vec::new());

/// The record of an event of the map named "upstream".
fn rec(kind: EventKind<'_>) -> EventRecord {
    EventRecord::new(&Event {
        name: "upstream",
        kind,
    })
}

#[allow(clippy::ptr_arg)] // a `KeyListener<String>` takes `&String`
fn record(key: &String, e: &Event) {
    assert_eq!(e.name, "upstream");
    EVENTS
        .lock()
        .unwrap()
        .push((key.clone(), EventRecord::new(e)));
}

#[allow(clippy::ptr_arg)] // a `KeyListener<String>` takes `&String`
fn record_changes(key: &String, e: &Event) {
    CHANGES
        .lock()
        .unwrap()
        .push((key.clone(), EventRecord::new(e)));
}

#[test]
fn per_key_events_carry_the_key() {
    let clock = ManualClock::new();
    let m = map(&clock, 2, 4)
        .with_listener(record)
        .with_listener_for(Interest::STATE_CHANGES, record_changes);
    ok(&m, "b");
    fail(&m, "a");
    fail(&m, "a");
    let rejected = m.call("a", || Ok::<_, ()>(1)).unwrap().unwrap_err();
    assert!(rejected.is_rejected());
    clock.advance(Duration::from_secs(30));
    ok(&m, "a"); // the trial closes it
                 // A classified-ignored call.
    let _ = m.call_with("b", |_| Outcome::Ignored, || Err::<(), _>("404"));
    let ev = std::mem::take(&mut *EVENTS.lock().unwrap());
    let want: Vec<(String, EventRecord)> = vec![
        ("b".into(), rec(EventKind::BeforeCall)),
        ("b".into(), rec(EventKind::Success { failures: 0 })),
        ("a".into(), rec(EventKind::BeforeCall)),
        (
            "a".into(),
            rec(EventKind::Failure {
                failures: 1,
                error: None,
            }),
        ),
        ("a".into(), rec(EventKind::BeforeCall)),
        (
            "a".into(),
            rec(EventKind::Failure {
                failures: 2,
                error: None,
            }),
        ),
        ("a".into(), rec(TRIP)),
        (
            "a".into(),
            rec(EventKind::Rejected {
                state: State::Open,
                retry_after: Some(Duration::from_secs(30)),
            }),
        ),
        ("a".into(), rec(EventKind::BeforeCall)),
        ("a".into(), rec(EventKind::Success { failures: 0 })),
        ("a".into(), rec(RECOVERY)),
        ("b".into(), rec(EventKind::BeforeCall)),
        ("b".into(), rec(EventKind::Ignored { error: None })),
    ];
    assert_eq!(ev, want);
    let changes = std::mem::take(&mut *CHANGES.lock().unwrap());
    assert_eq!(
        changes,
        [
            ("a".to_string(), rec(TRIP)),
            ("a".to_string(), rec(RECOVERY))
        ]
    );
}

/// The trip of `per_key_events_carry_the_key`: two failures, a 30 s open period.
const TRIP: EventKind<'static> = EventKind::StateChange {
    from: State::Closed,
    to: State::Open,
    failures: 2,
    retry_after: Some(Duration::from_secs(30)),
};
/// Its recovery by one trial success.
const RECOVERY: EventKind<'static> = EventKind::StateChange {
    from: State::HalfOpen,
    to: State::Closed,
    failures: 0,
    retry_after: None,
};

static TRIPS: AtomicUsize = AtomicUsize::new(0);

fn count_trip_from_half_open(_: &String, e: &Event) {
    if let EventKind::StateChange {
        from: State::HalfOpen,
        to: State::Open,
        ..
    } = e.kind
    {
        TRIPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_failed_trial_is_reported_as_half_open_to_open() {
    let clock = ManualClock::new();
    let m = map(&clock, 1, 1).with_listener_for(Interest::STATE_CHANGES, count_trip_from_half_open);
    fail(&m, "a");
    clock.advance(Duration::from_secs(30));
    let err = m
        .call("a", || Err::<(), _>("still down"))
        .unwrap()
        .unwrap_err();
    assert!(err.tripped());
    assert_eq!(TRIPS.load(Ordering::Relaxed), 1);
}

/// Threads hammer some keys while another inserts fresh keys far past capacity. A key that
/// holds failures, an Open key and a key with a call in flight are never evicted, and the
/// failure count survives exactly; the map never exceeds its capacity.
#[test]
fn idle_only_eviction_under_concurrent_use() {
    const CAPACITY: usize = 6;
    let failures = iters(100, 5);
    let inserts = iters(2_000, 20);
    let hot_calls = iters(5_000, 20);

    let clock = ManualClock::new();
    let m = map(&clock, 127, CAPACITY);
    // Open before the threads start (fail_max 127: open it by hand).
    assert!(m.get_or_insert("open").unwrap().open());
    let open_gen = m.get("open").unwrap().snapshot().generation;

    let in_flight_started = AtomicBool::new(false);
    let inserter_done = AtomicBool::new(false);
    let failing_done = AtomicBool::new(false);
    let barrier = Barrier::new(4);
    let (mut ok_inserts, mut full) = (0usize, 0usize);
    let mut in_flight_handle = None;

    thread::scope(|s| {
        // Failing key: accumulates failures (never reaches fail_max), interleaved with the
        // inserts.
        s.spawn(|| {
            barrier.wait();
            for _ in 0..failures {
                assert!(m.call("failing", || Err::<(), _>(())).unwrap().is_err());
            }
            failing_done.store(true, Ordering::Release);
        });
        // Hot key: successes, each call in flight while inserts run (it may be evicted between
        // calls, when idle: that is allowed, and it is recreated; it is never full since it
        // only needs its own place, which "evict idle" frees).
        s.spawn(|| {
            barrier.wait();
            for _ in 0..hot_calls {
                let _ = m.call("hot", || Ok::<_, ()>(()));
            }
        });
        // In flight for the whole run.
        let in_flight = s.spawn(|| {
            barrier.wait();
            m.call("inflight", || {
                let h = m.get("inflight").unwrap();
                in_flight_started.store(true, Ordering::Release);
                while !inserter_done.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                Ok::<_, ()>(h)
            })
            .unwrap()
            .unwrap()
        });
        // Inserter: fresh keys, each idle right after its call. If an assertion below fails,
        // the guard still releases the in-flight call, so the test fails instead of hanging.
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let release = Release(&inserter_done);
        barrier.wait();
        while !in_flight_started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        for i in 0..inserts {
            match m.call(&format!("k{i}"), || Ok::<_, ()>(())) {
                Ok(r) => {
                    assert!(r.is_ok());
                    ok_inserts += 1;
                }
                Err(e) => {
                    assert_eq!(e, MapFull { capacity: CAPACITY });
                    full += 1;
                }
            }
            assert!(m.len() <= CAPACITY);
            // Every pinned key is present at every step.
            assert_eq!(m.get("open").unwrap().state(), State::Open);
            assert!(m.get("inflight").is_some());
        }
        // Keep inserting until the failing thread is done, so evictions race every failure.
        let mut j = 0;
        while !failing_done.load(Ordering::Acquire) {
            let _ = m.call(&format!("late{j}"), || Ok::<_, ()>(()));
            j += 1;
        }
        drop(release);
        in_flight_handle = Some(in_flight.join().unwrap());
    });

    assert!(ok_inserts > 0, "idle keys made room");
    assert!(m.evictions() > 0);
    let failing = m.get("failing").unwrap();
    assert_eq!(failing.state(), State::Closed);
    assert_eq!(
        failing.fail_counter() as usize,
        failures,
        "every failure is still counted"
    );
    let open = m.get("open").unwrap();
    assert_eq!(open.state(), State::Open);
    assert_eq!(open.snapshot().generation, open_gen, "the same breaker");
    assert!(m
        .get("inflight")
        .unwrap()
        .same_entry(&in_flight_handle.unwrap()));
    assert!(m.len() <= CAPACITY);
    let _ = full;
}

/// No failure is ever lost to eviction: threads report failures on a set of keys while another
/// floods the map with new keys. A key's first failure pins it (it is no longer idle), and a
/// failure is only ever recorded through a handle that also pins it, so at the end the failure
/// counters of those keys add up to exactly the failures reported.
#[test]
fn no_failure_is_lost_while_the_map_is_flooded() {
    const CAPACITY: usize = 8;
    let keys = ["v0", "v1", "v2", "v3"];
    // fail_max 127 is the largest: 2 x 120 failures over 4 keys never trip one.
    let per_thread = iters(120, 6);
    let clock = ManualClock::new();
    let m = map(&clock, 127, CAPACITY);
    let done = AtomicUsize::new(0);
    let full = AtomicUsize::new(0);
    let flooding = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..2 {
            let (m, done, full, flooding) = (&m, &done, &full, &flooding);
            s.spawn(move || {
                while !flooding.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
                for i in 0..per_thread {
                    // Give the flooder time to run between failures.
                    for _ in 0..iters(2_000, 2) {
                        std::hint::spin_loop();
                    }
                    let k = keys[(i + t) % keys.len()];
                    match m.call(k, || Err::<(), _>(())) {
                        Ok(r) => assert!(r.is_err()),
                        // Possible only before the key's first failure (it holds nothing yet).
                        Err(_) => {
                            full.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let (m, done, full, flooding) = (&m, &done, &full, &flooding);
        s.spawn(move || {
            let mut j = 0;
            flooding.store(true, Ordering::Release);
            while done.load(Ordering::Relaxed) + full.load(Ordering::Relaxed) < 2 * per_thread {
                let _ = m.call(&format!("flood{j}"), || Ok::<_, ()>(()));
                j += 1;
            }
        });
    });
    let recorded: u32 = keys
        .iter()
        .filter_map(|k| m.get(*k))
        .map(|b| b.fail_counter())
        .sum();
    assert_eq!(recorded as usize, done.load(Ordering::Relaxed));
    assert!(done.load(Ordering::Relaxed) > 0);
    assert!(m.len() <= CAPACITY);
}

// ------------------------------------------------------------------ user code that panics

/// What the next panicking call of each kind of user code is: `0` disarmed, `n` the `n`-th
/// call from now panics. Per thread, so that tests running in parallel do not see each other.
#[derive(Clone, Copy, Default)]
struct Arms {
    hash: u32,
    eq: u32,
    clone: u32,
    drop: u32,
}

thread_local! {
    static ARMS: std::cell::Cell<Arms> = std::cell::Cell::new(Arms::default());
}

fn arm(f: impl FnOnce(&mut Arms)) {
    ARMS.with(|a| {
        let mut arms = a.get();
        f(&mut arms);
        a.set(arms);
    });
}

/// Counts down the armed call of kind `pick`; panics when it reaches it.
fn countdown(what: &str, pick: fn(&mut Arms) -> &mut u32) {
    let fire = ARMS.with(|a| {
        let mut arms = a.get();
        let n = pick(&mut arms);
        let fire = *n == 1;
        *n = n.saturating_sub(1);
        a.set(arms);
        fire
    });
    if fire {
        panic!("{what} panicked on demand");
    }
}

/// A key whose `Hash`, `Eq`, `Clone` (the map's `to_owned`) and `Drop` panic on demand.
#[derive(Debug)]
struct Touchy(u32);

impl std::hash::Hash for Touchy {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        countdown("Hash", |a| &mut a.hash);
        self.0.hash(h);
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        countdown("Eq", |a| &mut a.eq);
        self.0 == other.0
    }
}

impl Eq for Touchy {}

impl Clone for Touchy {
    fn clone(&self) -> Self {
        countdown("Clone", |a| &mut a.clone);
        Touchy(self.0)
    }
}

impl Drop for Touchy {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            countdown("Drop", |a| &mut a.drop);
        }
    }
}

/// All keys in one shard and one hash (so every lookup compares keys with `Eq`).
type TouchyMap<'c> = BreakerMap<Touchy, &'c ManualClock, 4, OneShard>;

fn touchy_map(clock: &ManualClock, capacity: usize) -> TouchyMap<'_> {
    BreakerMap::try_with_hasher("upstream", Config::new(), clock, capacity, OneShard).unwrap()
}

/// Runs `f`, which must panic, and disarms what is left armed.
fn must_panic<R>(f: impl FnOnce() -> R) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(r.is_err(), "expected a panic");
    arm(|a| *a = Arms::default());
}

/// Every key of `0..n` is in the map, and `capacity` keys can be held at once: the map's count
/// is exact and no place leaked.
fn assert_exact(map: &TouchyMap<'_>, keys: u32) {
    assert_eq!(map.len(), keys as usize);
    let mut held: Vec<_> = (0..keys)
        .map(|k| map.get(&Touchy(k)).expect("key kept"))
        .collect();
    // Held handles make every key busy: the free places are the only room left.
    for k in keys..map.capacity() as u32 {
        held.push(map.get_or_insert(&Touchy(100 + k)).expect("a free place"));
    }
    assert_eq!(map.len(), map.capacity());
    assert_eq!(
        map.get_or_insert(&Touchy(999)).unwrap_err(),
        MapFull {
            capacity: map.capacity()
        }
    );
}

#[test]
fn a_key_whose_eq_panics_during_an_insert_does_not_leak_its_place() {
    let clock = ManualClock::new();
    let map = touchy_map(&clock, 3);
    map.get_or_insert(&Touchy(0)).unwrap();
    // The first `Eq` is the lookup under the read lock; the second, under the write lock,
    // after the place was reserved.
    arm(|a| a.eq = 2);
    must_panic(|| map.get_or_insert(&Touchy(1)));
    assert_exact(&map, 1);
}

#[test]
fn a_key_whose_clone_panics_during_an_insert_does_not_leak_its_place() {
    let clock = ManualClock::new();
    let map = touchy_map(&clock, 2);
    arm(|a| a.clone = 1);
    must_panic(|| map.get_or_insert(&Touchy(0)));
    assert!(map.get(&Touchy(0)).is_none());
    assert_exact(&map, 0);
}

#[test]
fn growing_a_table_runs_no_key_hash_so_a_panicking_hash_cannot_leak_or_lose_keys() {
    let clock = ManualClock::new();
    let map = touchy_map(&clock, 8);
    // A table of 3 grows at the 4th key and moves the 3 it holds.
    for k in 0..3 {
        map.get_or_insert(&Touchy(k)).unwrap();
    }
    // The first `Hash` picks the shard; the entries keep their hashes, so the growth calls no
    // `Hash` (before, it rehashed every key, the 2nd call panicked after the place was
    // reserved, and the count kept it).
    arm(|a| a.hash = 2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.get_or_insert(&Touchy(3)).is_ok()
    }));
    let left = ARMS.with(|a| a.get().hash);
    arm(|a| *a = Arms::default());
    assert_eq!(r.ok(), Some(true), "the insert panicked");
    assert_eq!(left, 1, "one `Hash` call per insert");
    assert_exact(&map, 4);
}

#[test]
fn an_evicted_key_whose_drop_panics_does_not_leak_its_place() {
    let clock = ManualClock::new();
    let map = touchy_map(&clock, 2);
    map.get_or_insert(&Touchy(0)).unwrap();
    let one = map.get_or_insert(&Touchy(1)).unwrap();
    // Full; key 0 is idle and is evicted for key 2, and its `Drop` panics.
    arm(|a| a.drop = 1);
    must_panic(|| map.get_or_insert(&Touchy(2)));
    assert_eq!(map.evictions(), 1);
    assert!(map.get(&Touchy(0)).is_none());
    drop(one);
    // Only key 1 is left.
    assert_eq!(map.len(), 1);
    let _two = map.get_or_insert(&Touchy(2)).unwrap();
    let _one = map.get(&Touchy(1)).unwrap();
    assert_eq!(map.len(), 2);
}

fn panic_before_calls(_: &String, e: &Event) {
    if matches!(e.kind, EventKind::BeforeCall) {
        panic!("a key listener panicked");
    }
}

#[test]
fn a_panicking_key_listener_is_caught_and_counts_nothing() {
    let clock = ManualClock::new();
    let map = map(&clock, 1, 2).with_listener(panic_before_calls);
    // Before: the panic left the call with its permit live, which counted a failure and
    // tripped the breaker of a dependency that never ran.
    assert_eq!(map.call("a", || Ok::<_, ()>(7)).unwrap(), Ok(7));
    let a = map.get("a").unwrap();
    assert_eq!(a.state(), State::Closed);
    assert_eq!(a.fail_counter(), 0);
    assert_eq!(map.listener_panics(), 1);
    assert_eq!(map.len(), 1);
}

#[test]
fn a_panicking_call_or_classifier_counts_a_failure_and_keeps_the_count() {
    let clock = ManualClock::new();
    let map = map(&clock, 3, 2);
    let r = std::panic::catch_unwind(|| map.call("a", || -> Result<(), ()> { panic!("call") }));
    assert!(r.is_err());
    let r = std::panic::catch_unwind(|| {
        map.call_with("a", |_: &Result<(), ()>| panic!("classifier"), || Ok(()))
    });
    assert!(r.is_err());
    // The permit rule: a permit dropped while its thread panics counts a failure.
    let a = map.get("a").unwrap();
    assert_eq!(a.fail_counter(), 2);
    assert_eq!(a.trial_calls(), 0);
    assert_eq!(map.len(), 1);
    drop(a);
    ok(&map, "b");
    assert_eq!(map.len(), 2);
}

/// A `ManualClock` whose `n`-th next reading panics (`0`: disarmed).
#[derive(Default)]
struct ArmedClock {
    time: ManualClock,
    panic_at: AtomicUsize,
}

impl atomic_breaker::Clock for ArmedClock {
    fn now_ms(&self) -> u64 {
        if self
            .panic_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            == Ok(1)
        {
            panic!("the clock panicked on demand");
        }
        self.time.now_ms()
    }
}

#[test]
fn a_clock_that_panics_during_an_insert_does_not_leak_its_place() {
    let clock = ArmedClock::default();
    let map: BreakerMap<String, &ArmedClock> =
        BreakerMap::try_new("upstream", Config::new(), &clock, 1)
            .unwrap()
            .idle_after(Duration::from_secs(1));
    // An insert with `idle_after` reads the clock for the entry's time, after reserving.
    clock.panic_at.store(1, Ordering::Relaxed);
    assert!(std::panic::catch_unwind(|| map.get_or_insert("a")).is_err());
    assert_eq!(map.len(), 0);
    assert!(map.get("a").is_none());
    let _b = map.get_or_insert("b").unwrap();
    assert_eq!(map.len(), 1);
}

/// The map's getters read what they say (mutation testing: `is_empty` always true,
/// `listener_panics` always 1 and `name` a constant survived the suite).
#[test]
fn the_maps_getters_read_its_state() {
    let clock = ManualClock::new();
    let m = map(&clock, 3, 4);
    assert_eq!(m.name(), "upstream");
    assert!(m.is_empty());
    assert_eq!(m.listener_panics(), 0);
    ok(&m, "a");
    assert!(!m.is_empty());
    assert_eq!(m.len(), 1);
}
