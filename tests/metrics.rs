//! The `metrics` feature's listener, through a small recording `metrics::Recorder` installed
//! per test with `metrics::with_local_recorder` (listeners run on the thread that caused the
//! event, so every record of a scenario lands in that test's recorder). Scenarios run on
//! `ManualClock`; every counter and gauge is checked by exact value.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atomic_breaker::metrics_listener::{self as m, PER_CALL, STATE_ONLY};
use atomic_breaker::{CircuitBreaker, Config, ManualClock, Outcome, State};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Counters and gauges by their Prometheus-style rendering, `name{label="value",...}`, labels
/// in the order the key carries them. Gauges hold `f64` bits (the facade's `AtomicU64` gauge).
#[derive(Default)]
struct Rec {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    described: Mutex<BTreeMap<String, (Option<Unit>, String)>>,
}

fn render(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Rec {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.described
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), (unit, help.into_owned()));
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, help: SharedString) {
        self.describe_counter(key, unit, help);
    }
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut c = self.counters.lock().unwrap();
        Counter::from_arc(c.entry(render(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut g = self.gauges.lock().unwrap();
        Gauge::from_arc(g.entry(render(key)).or_default().clone())
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

impl Rec {
    /// Every counter, rendered; `None` for a series never registered.
    fn counter(&self, series: &str) -> Option<u64> {
        self.counters
            .lock()
            .unwrap()
            .get(series)
            .map(|v| v.load(Ordering::Relaxed))
    }
    fn gauge(&self, series: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(series)
            .map(|v| f64::from_bits(v.load(Ordering::Relaxed)))
    }
    fn calls(&self, name: &str, kind: &str) -> Option<u64> {
        self.counter(&format!(
            "circuit_breaker_calls_total{{name=\"{name}\",kind=\"{kind}\"}}"
        ))
    }
    fn transitions(&self, name: &str, from: &str, to: &str) -> Option<u64> {
        self.counter(&format!(
            "circuit_breaker_transitions_total{{name=\"{name}\",from=\"{from}\",to=\"{to}\"}}"
        ))
    }
    fn fail_counter(&self, name: &str) -> Option<f64> {
        self.gauge(&format!("circuit_breaker_fail_counter{{name=\"{name}\"}}"))
    }
    /// The state gauge's five series, in `STATES` order.
    fn state(&self, name: &str) -> [Option<f64>; 5] {
        STATES.map(|s| {
            self.gauge(&format!(
                "circuit_breaker_state{{name=\"{name}\",state=\"{s}\"}}"
            ))
        })
    }
    /// Every counter series of `name` with its value, for whole-table comparisons.
    fn counters_of(&self, name: &str) -> BTreeMap<String, u64> {
        let needle = format!("name=\"{name}\"");
        self.counters
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.contains(&needle))
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

const STATES: [&str; 5] = ["closed", "open", "half_open", "forced_open", "disabled"];

/// The state gauge with exactly `current` at 1 and the four others at 0.
fn one_hot(current: &str) -> [Option<f64>; 5] {
    STATES.map(|s| Some(if s == current { 1.0 } else { 0.0 }))
}

fn breaker(clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new(
        "db",
        Config::new()
            .fail_max(3)
            .reset_timeout(Duration::from_secs(30)),
        clock,
    )
}

fn ok(b: &CircuitBreaker<&ManualClock>) {
    b.call(|| Ok::<_, &str>(())).unwrap();
}
fn fail(b: &CircuitBreaker<&ManualClock>) {
    let _ = b.call(|| Err::<(), _>("timeout"));
}
fn ignored(b: &CircuitBreaker<&ManualClock>) {
    let _ = b.call_with(|_| Outcome::Ignored, || Err::<(), _>("not found"));
}
fn rejected(b: &CircuitBreaker<&ManualClock>) {
    assert!(b
        .call(|| -> Result<(), &str> { panic!("must not run") })
        .unwrap_err()
        .is_rejected());
}

#[test]
fn register_makes_every_series_exist_and_shows_closed_before_any_change() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock);
    metrics::with_local_recorder(&rec, || m::register(&b));

    assert_eq!(rec.state("db"), one_hot("closed"));
    assert_eq!(rec.fail_counter("db"), Some(0.0));
    for kind in ["successful", "failed", "ignored", "not_permitted"] {
        assert_eq!(rec.calls("db", kind), Some(0), "{kind}");
    }
    for (from, to) in [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("half_open", "open"),
    ] {
        assert_eq!(rec.transitions("db", from, to), Some(0), "{from} -> {to}");
    }
    assert_eq!(
        rec.counters_of("db").len(),
        8,
        "{:?}",
        rec.counters_of("db")
    );

    let described = rec.described.lock().unwrap();
    for name in [m::CALLS, m::STATE, m::TRANSITIONS, m::FAIL_COUNTER] {
        let (_, help) = described.get(name).expect(name);
        assert!(!help.is_empty(), "{name}");
    }
    assert_eq!(described[m::CALLS].0, Some(Unit::Count));
}

#[test]
fn per_call_listener_counts_every_outcome_exactly() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(PER_CALL, m::listener);
    metrics::with_local_recorder(&rec, || {
        m::register(&b);
        ok(&b);
        ok(&b);
        ignored(&b);
        fail(&b);
        fail(&b);
        assert_eq!(rec.fail_counter("db"), Some(2.0));
        ok(&b); // resets the consecutive count
        assert_eq!(rec.fail_counter("db"), Some(0.0));
        fail(&b);
        fail(&b);
        fail(&b); // trips
        assert_eq!(b.state(), State::Open);
        assert_eq!(rec.state("db"), one_hot("open"));
        assert_eq!(rec.fail_counter("db"), Some(3.0));
        rejected(&b);
        rejected(&b);
        clock.advance(Duration::from_secs(30));
        ok(&b); // the trial closes it
        assert_eq!(b.state(), State::Closed);
    });

    assert_eq!(rec.calls("db", "successful"), Some(4));
    assert_eq!(rec.calls("db", "failed"), Some(5));
    assert_eq!(rec.calls("db", "ignored"), Some(1));
    assert_eq!(rec.calls("db", "not_permitted"), Some(2));
    assert_eq!(rec.transitions("db", "closed", "open"), Some(1));
    assert_eq!(rec.transitions("db", "open", "half_open"), Some(1));
    assert_eq!(rec.transitions("db", "half_open", "closed"), Some(1));
    assert_eq!(rec.transitions("db", "half_open", "open"), Some(0));
    assert_eq!(rec.state("db"), one_hot("closed"));
    assert_eq!(rec.fail_counter("db"), Some(0.0));
    // Nothing else was recorded: 4 call kinds, 4 transitions.
    assert_eq!(
        rec.counters_of("db").len(),
        8,
        "{:?}",
        rec.counters_of("db")
    );
}

#[test]
fn state_only_listener_records_no_call_outcomes_but_every_change_and_rejection() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(STATE_ONLY, m::listener);
    metrics::with_local_recorder(&rec, || {
        ok(&b);
        ignored(&b);
        fail(&b);
        // Without `register`, no call reached the recorder: the closed path dispatched nothing.
        assert!(rec.counters_of("db").is_empty());
        assert_eq!(rec.fail_counter("db"), None);
        fail(&b);
        fail(&b); // trips
        rejected(&b);
        rejected(&b);
        rejected(&b);
        clock.advance(Duration::from_secs(30));
        fail(&b); // the trial fails: re-trip
        rejected(&b);
    });

    assert_eq!(
        rec.counters_of("db"),
        BTreeMap::from([
            // The first rejection registered every call series of the breaker; only
            // not_permitted moved.
            (
                "circuit_breaker_calls_total{name=\"db\",kind=\"failed\"}".to_owned(),
                0
            ),
            (
                "circuit_breaker_calls_total{name=\"db\",kind=\"ignored\"}".to_owned(),
                0
            ),
            (
                "circuit_breaker_calls_total{name=\"db\",kind=\"not_permitted\"}".to_owned(),
                4
            ),
            (
                "circuit_breaker_calls_total{name=\"db\",kind=\"successful\"}".to_owned(),
                0
            ),
            (
                "circuit_breaker_transitions_total{name=\"db\",from=\"closed\",to=\"open\"}"
                    .to_owned(),
                1
            ),
            (
                "circuit_breaker_transitions_total{name=\"db\",from=\"half_open\",to=\"open\"}"
                    .to_owned(),
                1
            ),
            (
                "circuit_breaker_transitions_total{name=\"db\",from=\"open\",to=\"half_open\"}"
                    .to_owned(),
                1
            ),
        ])
    );
    assert_eq!(rec.state("db"), one_hot("open"));
    assert_eq!(
        rec.fail_counter("db"),
        Some(f64::from(b.snapshot().fail_counter))
    );
}

/// A scraper reading only the state gauge sees "closed" before and after a trip and recovery
/// that fit between two scrapes; the transitions counter shows the whole cycle.
#[test]
fn trip_and_recovery_inside_one_scrape_interval_show_only_in_transitions() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(STATE_ONLY, m::listener);
    let scrape = |rec: &Rec| (rec.state("db"), rec.counters_of("db"));
    metrics::with_local_recorder(&rec, || {
        m::register(&b);
        let (state_before, counters_before) = scrape(&rec);
        assert_eq!(state_before, one_hot("closed"));

        // Between two scrapes (say 60 s apart): trip, 30 s open, a trial, recovery.
        for _ in 0..3 {
            fail(&b);
        }
        rejected(&b);
        clock.advance(Duration::from_secs(30));
        ok(&b);
        assert_eq!(b.state(), State::Closed);

        let (state_after, counters_after) = scrape(&rec);
        assert_eq!(state_after, state_before, "the state gauge saw nothing");
        let changed: BTreeMap<_, _> = counters_after
            .iter()
            .filter(|(k, v)| counters_before.get(*k) != Some(v))
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            changed,
            BTreeMap::from([
                ("circuit_breaker_calls_total{name=\"db\",kind=\"not_permitted\"}", 1),
                (
                    "circuit_breaker_transitions_total{name=\"db\",from=\"closed\",to=\"open\"}",
                    1
                ),
                (
                    "circuit_breaker_transitions_total{name=\"db\",from=\"half_open\",to=\"closed\"}",
                    1
                ),
                (
                    "circuit_breaker_transitions_total{name=\"db\",from=\"open\",to=\"half_open\"}",
                    1
                ),
            ])
        );
    });
}

/// The fail counter gauge follows `fail_counter()` after every step of a scenario, with the
/// per-call listener; with the state-only one it is exact after `record_snapshot`.
#[test]
fn fail_counter_gauge_tracks_the_breaker() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(PER_CALL, m::listener);
    type Step = fn(&CircuitBreaker<&ManualClock>, &ManualClock);
    let steps: [(&str, Step); 16] = [
        ("fail", |b, _| fail(b)),
        ("fail", |b, _| fail(b)),
        ("ok", |b, _| ok(b)),
        ("fail", |b, _| fail(b)),
        ("ignored", |b, _| ignored(b)),
        ("fail", |b, _| fail(b)),
        ("fail (trip)", |b, _| fail(b)),
        ("rejected", |b, _| rejected(b)),
        ("advance, trial fails", |b, c| {
            c.advance(Duration::from_secs(30));
            fail(b)
        }),
        ("half_open()", |b, _| assert!(b.half_open())),
        ("trial succeeds", |b, _| ok(b)),
        ("fail x3 (trip)", |b, _| {
            fail(b);
            fail(b);
            fail(b)
        }),
        ("advance, trial admitted", |b, c| {
            c.advance(Duration::from_secs(60));
            let permit = b.allow().unwrap();
            assert_eq!(b.state(), State::HalfOpen);
            permit.ignore();
        }),
        ("trial succeeds", |b, _| ok(b)),
        ("fail", |b, _| fail(b)),
        ("ok", |b, _| ok(b)),
    ];
    metrics::with_local_recorder(&rec, || {
        m::register(&b);
        for (what, step) in steps {
            step(&b, &clock);
            assert_eq!(
                rec.fail_counter("db"),
                Some(f64::from(b.fail_counter())),
                "after {what} ({:?})",
                b.state()
            );
        }
    });
}

#[test]
fn management_moves_and_record_snapshot_keep_the_gauge_one_hot() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(STATE_ONLY, m::listener);
    metrics::with_local_recorder(&rec, || {
        m::register(&b);
        assert!(b.force_open());
        assert_eq!(rec.state("db"), one_hot("forced_open"));
        rejected(&b);
        assert!(b.disable());
        assert_eq!(rec.state("db"), one_hot("disabled"));
        assert!(b.half_open());
        assert_eq!(rec.state("db"), one_hot("half_open"));
        assert!(b.close());
        assert_eq!(rec.state("db"), one_hot("closed"));

        // A manual open clears the count, but its event carries the count it cleared, which
        // the gauge shows (documented) until a snapshot is recorded.
        let _ = b.call(|| Err::<(), _>("timeout"));
        let _ = b.call(|| Err::<(), _>("timeout"));
        assert!(b.open());
        assert_eq!(rec.state("db"), one_hot("open"));
        assert_eq!(b.fail_counter(), 0);
        assert_eq!(rec.fail_counter("db"), Some(2.0));
        m::record_snapshot(&b.snapshot());
        assert_eq!(rec.fail_counter("db"), Some(0.0));
        assert!(b.close());

        // A gauge gone stale (another writer, or events recorded out of order) is made exact
        // again by a snapshot.
        m::listener(&atomic_breaker::Event {
            name: "db",
            kind: atomic_breaker::EventKind::StateChange {
                from: State::Closed,
                to: State::Open,
                failures: 7,
                retry_after: None,
            },
        });
        assert_eq!(rec.state("db"), one_hot("open"));
        assert_eq!(rec.fail_counter("db"), Some(7.0));
        m::record_snapshot(&b.snapshot());
        assert_eq!(rec.state("db"), one_hot("closed"));
        assert_eq!(rec.fail_counter("db"), Some(0.0));
    });
    assert_eq!(rec.transitions("db", "closed", "forced_open"), Some(1));
    assert_eq!(rec.transitions("db", "forced_open", "disabled"), Some(1));
    assert_eq!(rec.transitions("db", "disabled", "half_open"), Some(1));
    assert_eq!(rec.transitions("db", "half_open", "closed"), Some(1));
    assert_eq!(
        rec.transitions("db", "closed", "open"),
        Some(2),
        "the open() and the hand-made event"
    );
    assert_eq!(rec.transitions("db", "open", "closed"), Some(1));
    assert_eq!(rec.calls("db", "not_permitted"), Some(1));
}

/// Two breakers, one recorder: the `name` label keeps their series apart.
#[test]
fn breakers_are_told_apart_by_the_name_label() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let db = breaker(&clock).with_listener_for(PER_CALL, m::listener);
    let cache: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("cache", Config::new().fail_max(1), &clock)
            .with_listener_for(PER_CALL, m::listener);
    metrics::with_local_recorder(&rec, || {
        ok(&db);
        fail(&cache); // trips cache only
    });
    assert_eq!(rec.calls("db", "successful"), Some(1));
    assert_eq!(
        rec.calls("db", "failed"),
        Some(0),
        "registered with the other kinds"
    );
    assert_eq!(rec.calls("cache", "failed"), Some(1));
    assert_eq!(rec.transitions("cache", "closed", "open"), Some(1));
    assert_eq!(rec.transitions("db", "closed", "open"), None);
    assert_eq!(rec.state("cache"), one_hot("open"));
    assert_eq!(rec.state("db"), [None; 5]);
}

/// A `static` breaker takes the listener in its `const` constructor.
#[test]
fn fits_a_static_breaker() {
    static CLOCK: ManualClock = ManualClock::new();
    static S: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("static", Config::new().fail_max(1), &CLOCK)
            .with_listener_for(STATE_ONLY, m::listener);
    let rec = Rec::default();
    metrics::with_local_recorder(&rec, || {
        let _ = S.call(|| Err::<(), _>("down"));
    });
    assert_eq!(rec.transitions("static", "closed", "open"), Some(1));
    assert_eq!(rec.state("static"), one_hot("open"));
}

/// The listener caches per-thread handles; they follow the current recorder: nothing recorded
/// before a recorder exists leaks into it, and each recorder gets its own counts, on one thread.
#[test]
fn cached_handles_follow_the_current_recorder() {
    let (first, second) = (Rec::default(), Rec::default());
    let clock = ManualClock::new();
    let b = breaker(&clock).with_listener_for(PER_CALL, m::listener);
    ok(&b); // no recorder: the facade's no-op one
    metrics::with_local_recorder(&first, || {
        ok(&b);
        fail(&b);
    });
    metrics::with_local_recorder(&second, || ok(&b));
    metrics::with_local_recorder(&first, || ok(&b));
    assert_eq!(first.calls("db", "successful"), Some(2));
    assert_eq!(first.calls("db", "failed"), Some(1));
    assert_eq!(first.fail_counter("db"), Some(0.0));
    assert_eq!(second.calls("db", "successful"), Some(1));
    // The first event registers all of a breaker's call series, at 0.
    assert_eq!(second.calls("db", "failed"), Some(0));
}

/// Issue 20, 3: after every event the gauge equals what `fail_counter()` reads after that
/// report, in the two cases where a `Success` used to set it to 0 regardless: failure-rate mode
/// (a success leaves the window's failures in place) and a consecutive-mode success that the
/// breaker drops (admitted before a move that changed its generation).
#[test]
fn fail_counter_gauge_follows_successes_that_keep_failures_on_record() {
    let rec = Rec::default();
    let clock = ManualClock::new();
    let rate = CircuitBreaker::new(
        "rate",
        Config::new().failure_rate(atomic_breaker::FailureRate::new(50, 10).minimum_calls(10)),
        &clock,
    )
    .with_listener_for(PER_CALL, m::listener);
    let b = CircuitBreaker::new("db", Config::new().fail_max(5), &clock)
        .with_listener_for(PER_CALL, m::listener);
    metrics::with_local_recorder(&rec, || {
        // Rate mode: one failure, then a success: the window still holds the failure.
        fail(&rate);
        assert_eq!(rec.fail_counter("rate"), Some(1.0));
        ok(&rate);
        assert_eq!(rate.fail_counter(), 1);
        assert_eq!(
            rec.fail_counter("rate"),
            Some(1.0),
            "rate mode after a success"
        );
        fail(&rate);
        ok(&rate);
        assert_eq!(
            rec.fail_counter("rate"),
            Some(f64::from(rate.fail_counter()))
        );
        assert_eq!(rate.fail_counter(), 2);

        // Consecutive mode: a success admitted before open() and close() is dropped; the two
        // failures recorded since stay, and so must the gauge.
        let early = b.allow().unwrap();
        assert!(b.open());
        assert!(b.close());
        fail(&b);
        fail(&b);
        assert_eq!(rec.fail_counter("db"), Some(2.0));
        assert_eq!(early.success(), atomic_breaker::Recorded::Dropped);
        assert_eq!(b.fail_counter(), 2);
        assert_eq!(rec.fail_counter("db"), Some(2.0), "after a dropped success");
        // A counted success still resets both.
        ok(&b);
        assert_eq!((b.fail_counter(), rec.fail_counter("db")), (0, Some(0.0)));
    });
}
