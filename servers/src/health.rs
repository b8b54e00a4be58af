//! A health view for a few breakers: `GET /health` answers JSON built from each breaker's
//! [`Snapshot`] (the `serde` feature's `Serialize`), `GET /metrics` the Prometheus text of the
//! `metrics` feature's listeners, rendered by `metrics-exporter-prometheus`.
//!
//! Used by `examples/health.rs` (`cargo run -p atomic-breaker-servers --example health`) and
//! checked over loopback HTTP by `tests/health.rs`.

use std::sync::Arc;

use atomic_breaker::{metrics_listener, Snapshot, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};

/// Where the health view reads its breakers: a function returning one snapshot per breaker.
pub type Snapshots = Arc<dyn Fn() -> Vec<Snapshot> + Send + Sync>;

/// The Prometheus text exposition format's content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A breaker's health in Resilience4j's terms: `UP` when closed or disabled, `DOWN` when open
/// or forced open, `UNKNOWN` while half-open (trials decide).
pub fn breaker_status(state: State) -> &'static str {
    match state {
        State::Closed | State::Disabled => "UP",
        State::Open | State::ForcedOpen => "DOWN",
        State::HalfOpen => "UNKNOWN",
    }
}

/// The `/health` document: `{"status": ..., "breakers": {name: {"status": ..., snapshot
/// fields...}}}`. The overall status is `UP` when every breaker is `UP`, otherwise
/// `DEGRADED`: an open breaker means a dependency is down, not that this process is (the
/// choice Resilience4j makes with `allowHealthIndicatorToFail = false`), so the answer is
/// always HTTP 200 and a liveness probe does not restart the process for it.
pub fn health_json(snapshots: &[Snapshot]) -> Value {
    let mut breakers = serde_json::Map::new();
    let mut all_up = true;
    for s in snapshots {
        let status = breaker_status(s.state);
        all_up &= status == "UP";
        let mut entry = serde_json::Map::new();
        entry.insert("status".to_owned(), json!(status));
        // The snapshot's own fields, as the `serde` feature writes them (durations as `*_ms`).
        if let Ok(Value::Object(fields)) = serde_json::to_value(s) {
            entry.extend(fields);
        }
        breakers.insert(s.name.to_owned(), Value::Object(entry));
    }
    json!({
        "status": if all_up { "UP" } else { "DEGRADED" },
        "breakers": breakers,
    })
}

/// The health router: `GET /health` (JSON) and `GET /metrics` (Prometheus text). Before
/// rendering `/metrics`, the gauges are set from fresh snapshots
/// ([`metrics_listener::record_snapshot`]), so the state and fail-counter gauges are exact at
/// the scrape even for breakers whose listener gets state changes only.
pub fn health_router(snapshots: Snapshots, prometheus: PrometheusHandle) -> Router {
    let for_health = snapshots.clone();
    Router::new()
        .route(
            "/health",
            get(move || {
                let snapshots = for_health.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        health_json(&snapshots()).to_string(),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let (snapshots, prometheus) = (snapshots.clone(), prometheus.clone());
                async move {
                    for s in snapshots() {
                        metrics_listener::record_snapshot(&s);
                    }
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
                        prometheus.render(),
                    )
                        .into_response()
                }
            }),
        )
}
