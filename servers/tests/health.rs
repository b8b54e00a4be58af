//! The health view over loopback HTTP: three `static` breakers on `ManualClock` with the
//! `metrics` feature's listener, the Prometheus recorder installed as a server would install
//! it, a scripted scenario, then a real HTTP client scrapes `GET /metrics` (every
//! `circuit_breaker_*` line checked, value included) and reads `GET /health` (JSON). Every
//! network wait is bounded (`NET_TIMEOUT`).

use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::metrics_listener::{self, PER_CALL, STATE_ONLY};
use atomic_breaker::{CircuitBreaker, Config, ManualClock, Outcome, State};
use atomic_breaker_servers::health::{health_router, Snapshots};
use atomic_breaker_servers::{get, serve};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::Value;

static CLOCK: ManualClock = ManualClock::new();
static DB: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "db",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(30)),
    &CLOCK,
)
.with_listener_for(PER_CALL, metrics_listener::listener);
static CACHE: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "cache",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::from_secs(10)),
    &CLOCK,
)
.with_listener_for(STATE_ONLY, metrics_listener::listener);
static PAYMENTS: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "payments",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::from_secs(30)),
    &CLOCK,
)
.with_listener_for(STATE_ONLY, metrics_listener::listener);

type Breaker = CircuitBreaker<&'static ManualClock>;

fn ok(b: &Breaker) {
    b.call(|| Ok::<_, &str>(())).unwrap();
}
fn fail(b: &Breaker) {
    let _ = b.call(|| Err::<(), _>("down"));
}
fn rejected(b: &Breaker) {
    assert!(b.call(|| Ok::<_, &str>(())).unwrap_err().is_rejected());
}

/// The `circuit_breaker_*` sample lines of a Prometheus text body, sorted (the exporter's
/// order within a family is a hash order).
fn samples(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("circuit_breaker_"))
        .collect();
    lines.sort_unstable();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints_after_a_scripted_scenario() {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    for b in [&DB, &CACHE, &PAYMENTS] {
        metrics_listener::register(b);
    }

    // db (per-call counts): 5 successes, 3 failures (never 3 in a row), 1 ignored.
    for _ in 0..4 {
        ok(&DB);
    }
    fail(&DB);
    fail(&DB);
    ok(&DB);
    let _ = DB.call_with(|_| Outcome::Ignored, || Err::<(), _>("not found"));
    fail(&DB);
    assert_eq!((DB.state(), DB.fail_counter()), (State::Closed, 1));

    // payments: trips and stays open, 3 rejections.
    fail(&PAYMENTS);
    fail(&PAYMENTS);
    for _ in 0..3 {
        rejected(&PAYMENTS);
    }

    // cache: trips, 1 rejection, recovers 10 s later: all between two scrapes.
    fail(&CACHE);
    fail(&CACHE);
    rejected(&CACHE);
    CLOCK.advance(Duration::from_secs(10));
    ok(&CACHE);
    assert_eq!(CACHE.state(), State::Closed);
    assert_eq!(PAYMENTS.state(), State::Open);

    let snapshots: Snapshots =
        Arc::new(|| vec![DB.snapshot(), CACHE.snapshot(), PAYMENTS.snapshot()]);
    let addr = serve(health_router(snapshots, prometheus)).await.unwrap();

    // ---- GET /metrics
    let (status, _, text) = get(addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let expected = [
        r#"circuit_breaker_calls_total{name="cache",kind="failed"} 0"#,
        r#"circuit_breaker_calls_total{name="cache",kind="ignored"} 0"#,
        r#"circuit_breaker_calls_total{name="cache",kind="not_permitted"} 1"#,
        r#"circuit_breaker_calls_total{name="cache",kind="successful"} 0"#,
        r#"circuit_breaker_calls_total{name="db",kind="failed"} 3"#,
        r#"circuit_breaker_calls_total{name="db",kind="ignored"} 1"#,
        r#"circuit_breaker_calls_total{name="db",kind="not_permitted"} 0"#,
        r#"circuit_breaker_calls_total{name="db",kind="successful"} 5"#,
        r#"circuit_breaker_calls_total{name="payments",kind="failed"} 0"#,
        r#"circuit_breaker_calls_total{name="payments",kind="ignored"} 0"#,
        r#"circuit_breaker_calls_total{name="payments",kind="not_permitted"} 3"#,
        r#"circuit_breaker_calls_total{name="payments",kind="successful"} 0"#,
        r#"circuit_breaker_fail_counter{name="cache"} 0"#,
        r#"circuit_breaker_fail_counter{name="db"} 1"#,
        r#"circuit_breaker_fail_counter{name="payments"} 2"#,
        r#"circuit_breaker_state{name="cache",state="closed"} 1"#,
        r#"circuit_breaker_state{name="cache",state="disabled"} 0"#,
        r#"circuit_breaker_state{name="cache",state="forced_open"} 0"#,
        r#"circuit_breaker_state{name="cache",state="half_open"} 0"#,
        r#"circuit_breaker_state{name="cache",state="open"} 0"#,
        r#"circuit_breaker_state{name="db",state="closed"} 1"#,
        r#"circuit_breaker_state{name="db",state="disabled"} 0"#,
        r#"circuit_breaker_state{name="db",state="forced_open"} 0"#,
        r#"circuit_breaker_state{name="db",state="half_open"} 0"#,
        r#"circuit_breaker_state{name="db",state="open"} 0"#,
        r#"circuit_breaker_state{name="payments",state="closed"} 0"#,
        r#"circuit_breaker_state{name="payments",state="disabled"} 0"#,
        r#"circuit_breaker_state{name="payments",state="forced_open"} 0"#,
        r#"circuit_breaker_state{name="payments",state="half_open"} 0"#,
        r#"circuit_breaker_state{name="payments",state="open"} 1"#,
        r#"circuit_breaker_transitions_total{name="cache",from="closed",to="open"} 1"#,
        r#"circuit_breaker_transitions_total{name="cache",from="half_open",to="closed"} 1"#,
        r#"circuit_breaker_transitions_total{name="cache",from="half_open",to="open"} 0"#,
        r#"circuit_breaker_transitions_total{name="cache",from="open",to="half_open"} 1"#,
        r#"circuit_breaker_transitions_total{name="db",from="closed",to="open"} 0"#,
        r#"circuit_breaker_transitions_total{name="db",from="half_open",to="closed"} 0"#,
        r#"circuit_breaker_transitions_total{name="db",from="half_open",to="open"} 0"#,
        r#"circuit_breaker_transitions_total{name="db",from="open",to="half_open"} 0"#,
        r#"circuit_breaker_transitions_total{name="payments",from="closed",to="open"} 1"#,
        r#"circuit_breaker_transitions_total{name="payments",from="half_open",to="closed"} 0"#,
        r#"circuit_breaker_transitions_total{name="payments",from="half_open",to="open"} 0"#,
        r#"circuit_breaker_transitions_total{name="payments",from="open",to="half_open"} 0"#,
    ];
    let got = samples(&text);
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(g, e, "sample line {i} of\n{text}");
    }
    assert_eq!(got.len(), expected.len(), "{text}");
    for (family, kind) in [
        ("circuit_breaker_calls_total", "counter"),
        ("circuit_breaker_state", "gauge"),
        ("circuit_breaker_transitions_total", "counter"),
        ("circuit_breaker_fail_counter", "gauge"),
    ] {
        let type_line = format!("# TYPE {family} {kind}");
        assert!(
            text.lines().any(|l| l == type_line),
            "{type_line} in\n{text}"
        );
        let help = format!("# HELP {family} ");
        assert!(
            text.lines().any(|l| l.starts_with(&help)),
            "{help} in\n{text}"
        );
    }

    // The cache's trip and recovery happened between scrapes: its state gauge shows closed,
    // and only the transitions counter tells. A second scrape after more traffic moves only
    // what that traffic touched.
    ok(&DB);
    rejected(&PAYMENTS);
    let (_, _, text2) = get(addr, "/metrics").await.unwrap();
    let changed: Vec<&str> = samples(&text2)
        .into_iter()
        .filter(|l| !got.contains(l))
        .collect();
    assert_eq!(
        changed,
        [
            r#"circuit_breaker_calls_total{name="db",kind="successful"} 6"#,
            r#"circuit_breaker_calls_total{name="payments",kind="not_permitted"} 4"#,
            r#"circuit_breaker_fail_counter{name="db"} 0"#,
        ]
    );

    // ---- GET /health
    let (status, _, body) = get(addr, "/health").await.unwrap();
    assert_eq!(status, 200, "an open dependency does not fail the probe");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "DEGRADED", "{body}");
    let breakers = health["breakers"].as_object().unwrap();
    assert_eq!(
        breakers.keys().collect::<Vec<_>>(),
        ["cache", "db", "payments"]
    );
    assert_eq!(breakers["db"]["status"], "UP");
    assert_eq!(breakers["cache"]["status"], "UP");
    assert_eq!(breakers["payments"]["status"], "DOWN");
    assert_eq!(breakers["db"]["state"], "Closed");
    assert_eq!(
        breakers["db"]["fail_counter"], 0,
        "the success after the first scrape"
    );
    assert_eq!(breakers["db"]["retry_after_ms"], Value::Null);
    assert_eq!(breakers["cache"]["state"], "Closed");
    assert_eq!(breakers["payments"]["state"], "Open");
    assert_eq!(breakers["payments"]["fail_counter"], 2);
    assert_eq!(
        breakers["payments"]["retry_after_ms"], 20_000,
        "30 s open, 10 s passed"
    );
}
