//! Prometheus-style metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`).
//!
//! The library records through the facade only; the application installs an exporter (for
//! example `metrics-exporter-prometheus`). Without one, every record is a no-op.
//!
//! # Names
//!
//! Every series has the label `name`, the breaker's name.
//!
//! | metric | type | other labels | value | Resilience4j (Micrometer, as Prometheus names it) |
//! |---|---|---|---|---|
//! | `circuit_breaker_calls_total` | counter | `kind` = `successful`, `failed`, `ignored` | calls that ran, by outcome ([`PER_CALL`] only) | `resilience4j_circuitbreaker_calls_seconds_count{kind}` (a timer there) |
//! | `circuit_breaker_calls_total` | counter | `kind` = `not_permitted` | calls rejected without running | `resilience4j_circuitbreaker_not_permitted_calls_total{kind="not_permitted"}` |
//! | `circuit_breaker_state` | gauge | `state` = `closed`, `open`, `half_open`, `forced_open`, `disabled` | one-hot: 1 for the current state, 0 for the four others | `resilience4j_circuitbreaker_state{state}` (same values) |
//! | `circuit_breaker_transitions_total` | counter | `from`, `to` (state values as above) | state changes | none (tower-resilience: `circuitbreaker_transitions_total`) |
//! | `circuit_breaker_fail_counter` | gauge | | consecutive failures, as [`Snapshot::fail_counter`] | none (PyBreaker's `fail_counter`) |
//!
//! A scraped state gauge misses an open/half-open/closed cycle shorter than the scrape
//! interval (Resilience4j #164); the transitions counter does not: `increase(...[5m])` of
//! `circuit_breaker_transitions_total{to="open"}` counts every trip. There is no duration
//! histogram: timing a call takes two clock reads on the closed path.
//!
//! # Which listener, with which interest
//!
//! [`listener`] is a plain `fn`, so it fits the listener table of a `const` or `static`
//! breaker. What it records depends on the [`Interest`] it is registered with:
//!
//! | registered with | records | closed-path cost |
//! |---|---|---|
//! | [`STATE_ONLY`] (`STATE_CHANGES \| REJECTIONS`) | state gauge, transitions, `not_permitted`, fail counter at each state change | **none**: no event is dispatched on the closed path |
//! | [`PER_CALL`] ([`Interest::ALL`]) | all of the above, `successful` / `failed` / `ignored` calls, fail counter after every call | one dispatch and a few recorder updates per call |
//!
//! After a manual [`open`](CircuitBreaker::open) the fail counter gauge shows the failures
//! counted before it (the breaker reads 0) until the next change or [`record_snapshot`].
//! With [`STATE_ONLY`] the fail counter is written at state changes only (so it reads the
//! failures that tripped the breaker while it is open, and 0 after recovery); call
//! [`record_snapshot`] before a scrape to make it exact.
//!
//! Call [`register`] once per breaker at startup: it describes the metrics, makes every
//! counter series exist at 0 (a series that appears on its first increment hides that
//! increment from `rate()`), and sets the state gauge, so a scrape before any state change
//! shows `closed` at 1.
//!
//! ```
//! use atomic_breaker::{metrics_listener as metrics, CircuitBreaker, Config, ManualClock};
//!
//! static CLOCK: ManualClock = ManualClock::new();
//! static DB: CircuitBreaker<&ManualClock> = CircuitBreaker::new("db", Config::new(), &CLOCK)
//!     .with_listener_for(metrics::STATE_ONLY, metrics::listener);
//!
//! // At startup, after installing the exporter:
//! metrics::register(&DB);
//! # assert_eq!(DB.listener_count(), 1);
//! ```
//!
//! # Ordering
//! Listeners run after the state change they report, on the thread that made it, outside any
//! lock. Two state changes made on two threads at nearly the same time may reach the
//! recorder in the other order, which can leave the state gauge showing the older state until
//! the next change. Counters are exact. [`record_snapshot`] sets both gauges from one load of
//! the state word; a health endpoint can call it before rendering.
//!
//! # Cost
//! The per-call events (outcomes and rejections) go through handles cached per thread and per
//! breaker name: one check of which recorder is current (the thread's local recorder, the
//! global one or the no-op one; handles are registered again when it changes) and one counter
//! update (plus a fail-counter gauge store for successes and failures), each a shared atomic
//! in `metrics-exporter-prometheus`. The first such event of a breaker on a thread registers
//! its four call series and its fail counter (at 0). State changes, rare, build their keys
//! each time. The benchmark figures, one and two threads, are in `BENCHMARKS.md`.
//!
//! Recorders are told apart by address: a test that drops a local recorder and installs
//! another at the same address, on the same thread, keeps the first one's handles (give each
//! test its own recorder value alive for the whole test, as `tests/metrics.rs` does).

use std::cell::RefCell;

use ::metrics::{Counter, Gauge};

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::event::{Event, EventKind, Interest};
use crate::snapshot::Snapshot;
use crate::state::State;

/// `circuit_breaker_calls_total`.
pub const CALLS: &str = "circuit_breaker_calls_total";
/// `circuit_breaker_state`.
pub const STATE: &str = "circuit_breaker_state";
/// `circuit_breaker_transitions_total`.
pub const TRANSITIONS: &str = "circuit_breaker_transitions_total";
/// `circuit_breaker_fail_counter`.
pub const FAIL_COUNTER: &str = "circuit_breaker_fail_counter";

/// The interest for state metrics only: state changes and rejections. Costs nothing on the
/// closed path.
pub const STATE_ONLY: Interest = Interest::STATE_CHANGES.union(Interest::REJECTIONS);

/// The interest for every metric, per-call counts included: [`Interest::ALL`].
pub const PER_CALL: Interest = Interest::ALL;

/// Every state, in the order the state gauge's series are written.
const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::ForcedOpen,
    State::Disabled,
];

/// The `state`, `from` and `to` label value of a state: Resilience4j's names (`half_open`,
/// `forced_open`), which differ from [`State::name`] (`half-open`).
pub const fn state_label(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
        State::ForcedOpen => "forced_open",
        State::Disabled => "disabled",
    }
}

/// The listener: records the metrics of the module table for each event it is given. Register
/// it with [`STATE_ONLY`] or [`PER_CALL`] (see the module docs).
///
/// `BeforeCall` records nothing; a call is counted when its outcome is reported.
pub fn listener(event: &Event<'_>) {
    let name = event.name;
    match event.kind {
        EventKind::Success { failures } => with_handles(name, |h| {
            h.successful.increment(1);
            h.fail_counter.set(failures);
        }),
        EventKind::Failure { failures, .. } => with_handles(name, |h| {
            h.failed.increment(1);
            h.fail_counter.set(failures);
        }),
        EventKind::Ignored { .. } => with_handles(name, |h| h.ignored.increment(1)),
        EventKind::Rejected { .. } => with_handles(name, |h| h.not_permitted.increment(1)),
        EventKind::StateChange {
            from, to, failures, ..
        } => {
            ::metrics::counter!(TRANSITIONS, "name" => name, "from" => state_label(from), "to" => state_label(to))
                .increment(1);
            set_state(name, to);
            set_fail_counter(name, fail_counter_after(to, failures));
        }
        _ => {}
    }
}

/// The handles of one breaker's per-call series, registered with one recorder.
struct Handles {
    /// The address of the recorder they were registered with. (A zero-sized recorder, such
    /// as the facade's no-op one, could share its address with another zero-sized one; it
    /// holds no state of its own, so its handles forward to the same place either way.)
    recorder: *const (),
    name: &'static str,
    successful: Counter,
    failed: Counter,
    ignored: Counter,
    not_permitted: Counter,
    fail_counter: Gauge,
}

impl Handles {
    fn new(name: &'static str, recorder: *const ()) -> Handles {
        Handles {
            recorder,
            name,
            successful: ::metrics::counter!(CALLS, "name" => name, "kind" => "successful"),
            failed: ::metrics::counter!(CALLS, "name" => name, "kind" => "failed"),
            ignored: ::metrics::counter!(CALLS, "name" => name, "kind" => "ignored"),
            not_permitted: ::metrics::counter!(CALLS, "name" => name, "kind" => "not_permitted"),
            fail_counter: ::metrics::gauge!(FAIL_COUNTER, "name" => name),
        }
    }

    fn registered_with(&self, recorder: *const ()) -> bool {
        self.recorder == recorder
    }
}

std::thread_local! {
    /// Per thread, the per-call handles of every breaker name seen, so that the hot events
    /// (outcomes and rejections) cost one recorder check and one handle update instead of a
    /// key construction (an allocation: the name is a dynamic label) and a registry lookup.
    static HANDLES: RefCell<Vec<Handles>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the cached handles of breaker `name` for the current recorder (the thread's
/// local recorder, else the global one, else the facade's no-op), registering them on first
/// use and again whenever the current recorder is another one (installed later, or a local
/// recorder in a test). Falls back to fresh, uncached handles if the cache is unavailable
/// (re-entered from a recorder, or during thread teardown).
fn with_handles(name: &'static str, f: impl Fn(&Handles)) {
    let recorder = ::metrics::with_recorder(|r| core::ptr::from_ref(r).cast::<()>());
    let cached = HANDLES.try_with(|cell| {
        let Ok(mut cache) = cell.try_borrow_mut() else {
            return false;
        };
        let slot = cache
            .iter()
            .position(|h| h.name.as_ptr() == name.as_ptr() && h.name.len() == name.len());
        let i = match slot {
            Some(i) => {
                if !cache[i].registered_with(recorder) {
                    cache[i] = Handles::new(name, recorder);
                }
                i
            }
            None => {
                cache.push(Handles::new(name, recorder));
                cache.len() - 1
            }
        };
        f(&cache[i]);
        true
    });
    if cached != Ok(true) {
        f(&Handles::new(name, recorder));
    }
}

/// Describes the metrics to the recorder, makes every counter series of `breaker` exist (at 0,
/// or unchanged if it already exists) and sets its gauges from its [`snapshot`]. Call it once
/// per breaker at startup, after installing the recorder; calling it again is harmless.
///
/// The transitions series created are the automatic cycle (`closed` to `open`, `open` to
/// `half_open`, `half_open` to `closed` and to `open`); the management moves appear when they
/// first happen.
///
/// [`snapshot`]: CircuitBreaker::snapshot
pub fn register<C: Clock, const L: usize>(breaker: &CircuitBreaker<C, L>) {
    describe();
    let name = breaker.name();
    for kind in ["successful", "failed", "ignored", "not_permitted"] {
        ::metrics::counter!(CALLS, "name" => name, "kind" => kind).increment(0);
    }
    for (from, to) in [
        (State::Closed, State::Open),
        (State::Open, State::HalfOpen),
        (State::HalfOpen, State::Closed),
        (State::HalfOpen, State::Open),
    ] {
        ::metrics::counter!(TRANSITIONS, "name" => name, "from" => state_label(from), "to" => state_label(to))
            .increment(0);
    }
    record_snapshot(&breaker.snapshot());
}

/// Sets both gauges (the one-hot state and the fail counter) from a snapshot: exact at the
/// instant of the snapshot, whatever order listeners ran in. A health or metrics endpoint can
/// call it before rendering.
pub fn record_snapshot(snapshot: &Snapshot) {
    set_state(snapshot.name, snapshot.state);
    set_fail_counter(snapshot.name, snapshot.fail_counter);
}

/// Describes the four metrics (help text and unit) to the installed recorder. [`register`]
/// calls it.
pub fn describe() {
    ::metrics::describe_counter!(
        CALLS,
        ::metrics::Unit::Count,
        "Calls through a circuit breaker, by outcome: successful, failed, ignored (ran), not_permitted (rejected without running)"
    );
    ::metrics::describe_gauge!(
        STATE,
        "Circuit breaker state, one-hot: 1 for the current state, 0 for the others"
    );
    ::metrics::describe_counter!(
        TRANSITIONS,
        ::metrics::Unit::Count,
        "Circuit breaker state changes, by from and to state"
    );
    ::metrics::describe_gauge!(
        FAIL_COUNTER,
        ::metrics::Unit::Count,
        "Consecutive failures counted by a circuit breaker"
    );
}

fn set_fail_counter(name: &'static str, n: u32) {
    ::metrics::gauge!(FAIL_COUNTER, "name" => name).set(n);
}

/// Writes all five series of the state gauge: 1 for `current`, 0 for the others, so that the
/// gauge stays one-hot even when two changes are recorded out of order.
fn set_state(name: &'static str, current: State) {
    for s in STATES {
        let v = if s == current { 1.0 } else { 0.0 };
        ::metrics::gauge!(STATE, "name" => name, "state" => state_label(s)).set(v);
    }
}

/// The fail counter right after a move into `to` that happened with `failures` counted: a
/// breaker keeps its count while Open ([`Snapshot::fail_counter`]) and starts from 0 in
/// every other state. One case reads differently: a manual
/// [`open`](CircuitBreaker::open) clears the count (the breaker then reads 0), but its event
/// carries the count it cleared, which a listener cannot tell from a trip; the gauge shows that
/// count until the next change or [`record_snapshot`].
const fn fail_counter_after(to: State, failures: u32) -> u32 {
    match to {
        State::Open => failures,
        _ => 0,
    }
}
