//! The `tracing` feature's listener, seen through a small capturing subscriber installed per
//! test with `tracing::subscriber::with_default` (listeners run on the thread that caused the
//! event). Checks each event's level, target, message and fields, on `ManualClock`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atomic_breaker::tracing_listener::{self, INTEREST};
use atomic_breaker::{CircuitBreaker, Config, Interest, ManualClock, State};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata, Subscriber};

/// One captured event: level, target and fields (`message` included), values rendered.
#[derive(Debug, PartialEq)]
struct Captured {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
    spans: Arc<Mutex<u64>>,
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        let mut n = self.spans.lock().unwrap();
        *n += 1;
        Id::from_u64(*n)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.events.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: fields.0,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn ev(level: Level, fields: &[(&str, &str)]) -> Captured {
    Captured {
        level,
        target: "atomic_breaker".to_owned(),
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn breaker(clock: &ManualClock, interest: Interest) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new(
        "db",
        Config::new()
            .fail_max(2)
            .reset_timeout(Duration::from_secs(30)),
        clock,
    )
    .with_listener_for(interest, tracing_listener::listener)
}

#[test]
fn trip_warns_rejection_debugs_recovery_informs_and_calls_log_nothing() {
    let cap = Capture::default();
    let clock = ManualClock::new();
    let b = breaker(&clock, INTEREST);
    tracing::subscriber::with_default(cap.clone(), || {
        b.call(|| Ok::<_, &str>(())).unwrap();
        let _ = b.call(|| Err::<(), _>("timeout"));
        assert!(cap.events.lock().unwrap().is_empty(), "calls log nothing");
        let _ = b.call(|| Err::<(), _>("timeout")); // trips
        clock.advance(Duration::from_millis(12_500));
        let _ = b.call(|| Ok::<_, &str>(()));
        clock.advance(Duration::from_millis(17_500));
        b.call(|| Ok::<_, &str>(())).unwrap(); // half-open trial closes it
        assert_eq!(b.state(), State::Closed);
    });
    let events = cap.events.lock().unwrap();
    assert_eq!(
        *events,
        [
            ev(
                Level::WARN,
                &[
                    ("message", "circuit breaker opened"),
                    ("breaker", "db"),
                    ("from", "closed"),
                    ("failures", "2"),
                    ("retry_after_ms", "30000"),
                ]
            ),
            ev(
                Level::DEBUG,
                &[
                    ("message", "call rejected by circuit breaker"),
                    ("breaker", "db"),
                    ("state", "open"),
                    ("retry_after_ms", "17500"),
                ]
            ),
            ev(
                Level::DEBUG,
                &[
                    ("message", "circuit breaker half-open"),
                    ("breaker", "db"),
                    ("from", "open"),
                    ("failures", "2"),
                ]
            ),
            ev(
                Level::INFO,
                &[
                    ("message", "circuit breaker closed"),
                    ("breaker", "db"),
                    ("from", "half-open"),
                    ("failures", "0"),
                ]
            ),
        ]
    );
    assert_eq!(*cap.spans.lock().unwrap(), 0, "no span");
}

#[test]
fn management_moves_and_failed_trials() {
    let cap = Capture::default();
    let clock = ManualClock::new();
    let b = breaker(&clock, INTEREST);
    tracing::subscriber::with_default(cap.clone(), || {
        assert!(b.force_open());
        let _ = b.call(|| Ok::<_, &str>(())); // rejected, no retry time
        assert!(b.disable());
        assert!(b.close());
    });
    let events = cap.events.lock().unwrap();
    let summary: Vec<(Level, &str)> = events
        .iter()
        .map(|e| (e.level, e.fields["message"].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Level::WARN, "circuit breaker forced open"),
            (Level::DEBUG, "call rejected by circuit breaker"),
            (Level::INFO, "circuit breaker disabled"),
            (Level::INFO, "circuit breaker closed"),
        ]
    );
    assert_eq!(
        events[1].fields.get("state").map(String::as_str),
        Some("forced-open")
    );
    assert_eq!(
        events[1].fields.get("retry_after_ms"),
        None,
        "unknown for ForcedOpen"
    );
    assert!(events.iter().all(|e| e.target == "atomic_breaker"));
}

/// With `std` only: without it, guarded calls lend no error (see `EventKind::Failure`).
#[cfg(feature = "std")]
#[test]
fn with_calls_each_failure_is_logged_with_its_error() {
    let cap = Capture::default();
    let clock = ManualClock::new();
    let b = breaker(&clock, INTEREST | Interest::CALLS);
    tracing::subscriber::with_default(cap.clone(), || {
        b.call(|| Ok::<_, &str>(())).unwrap();
        let _ = b.call(|| Err::<(), _>("connection refused"));
        let _ = b.call(|| Err::<(), _>("timeout")); // trips
    });
    let events = cap.events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(
        events[0],
        ev(
            Level::DEBUG,
            &[
                ("message", "call failed"),
                ("breaker", "db"),
                ("failures", "1"),
                ("error", "\"connection refused\""),
            ]
        )
    );
    assert_eq!(events[1].fields["error"], "\"timeout\"");
    assert_eq!(events[1].fields["failures"], "2");
    assert_eq!(events[2].level, Level::WARN);
}

/// A `static` breaker takes the listener in its `const` constructor.
#[test]
fn fits_a_static_breaker() {
    static CLOCK: ManualClock = ManualClock::new();
    static S: CircuitBreaker<&ManualClock> =
        CircuitBreaker::new("static", Config::new().fail_max(1), &CLOCK)
            .with_listener_for(INTEREST, tracing_listener::listener);
    let cap = Capture::default();
    tracing::subscriber::with_default(cap.clone(), || {
        let _ = S.call(|| Err::<(), _>("down"));
    });
    let events = cap.events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].level, Level::WARN);
    assert_eq!(events[0].fields["breaker"], "static");
}
