//! A health view for three breakers: a JSON health endpoint and a Prometheus endpoint.
//!
//! ```text
//! cargo run -p atomic-breaker-servers --example health             # prints both, then exits
//! cargo run -p atomic-breaker-servers --example health -- --serve  # keeps serving, for curl
//! ```
//!
//! Three `static` breakers carry the `metrics` feature's listener: `db` with per-call counts
//! (`PER_CALL`), `cache` and `payments` with state metrics only (`STATE_ONLY`, nothing on the
//! closed path). `metrics-exporter-prometheus` is installed as the recorder (without its own
//! HTTP listener), each breaker is registered, some traffic trips `payments`, and an axum
//! server on a loopback port answers `GET /health` and `GET /metrics`. The example fetches both
//! with a real HTTP client and prints them.

use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::metrics_listener::{self, PER_CALL, STATE_ONLY};
use atomic_breaker::{CircuitBreaker, Config, StdClock};
use atomic_breaker_servers::health::{health_router, Snapshots};
use atomic_breaker_servers::{get, serve};
use metrics_exporter_prometheus::PrometheusBuilder;

static DB: CircuitBreaker<StdClock> =
    CircuitBreaker::new("db", Config::new().fail_max(5), StdClock)
        .with_listener_for(PER_CALL, metrics_listener::listener);
static CACHE: CircuitBreaker<StdClock> = CircuitBreaker::new("cache", Config::new(), StdClock)
    .with_listener_for(STATE_ONLY, metrics_listener::listener);
static PAYMENTS: CircuitBreaker<StdClock> = CircuitBreaker::new(
    "payments",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::from_secs(30)),
    StdClock,
)
.with_listener_for(STATE_ONLY, metrics_listener::listener);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The application picks the exporter; the library only talks to the `metrics` facade.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    for b in [&DB, &CACHE, &PAYMENTS] {
        metrics_listener::register(b);
    }

    // Some traffic: db mostly fine, cache fine, payments down (two failures trip it).
    for i in 0..10 {
        let _ = DB.call(|| if i == 3 { Err("timeout") } else { Ok(i) });
        let _ = CACHE.call(|| Ok::<_, &str>(i));
    }
    for _ in 0..5 {
        let _ = PAYMENTS.call(|| Err::<(), _>("503 from the payment provider"));
    }

    let snapshots: Snapshots =
        Arc::new(|| vec![DB.snapshot(), CACHE.snapshot(), PAYMENTS.snapshot()]);
    let addr = serve(health_router(snapshots, prometheus)).await?;
    println!("health view on http://{addr}/health and http://{addr}/metrics\n");

    let (status, _, health) = get(addr, "/health").await?;
    let pretty = serde_json::from_str::<serde_json::Value>(&health)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(health);
    println!("GET /health -> {status}\n{pretty}\n");
    let (status, _, text) = get(addr, "/metrics").await?;
    println!("GET /metrics -> {status}");
    for line in text.lines().filter(|l| l.contains("circuit_breaker_")) {
        println!("{line}");
    }

    if std::env::args().any(|a| a == "--serve") {
        println!("\nserving; try: curl http://{addr}/health ; curl http://{addr}/metrics  (Ctrl-C to stop)");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
