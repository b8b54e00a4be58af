//! The demo: an axum proxy guarded by atomic-breaker, in front of a flaky upstream.
//!
//! ```text
//! cargo run -p atomic-breaker-servers --example axum_breaker
//! ```
//!
//! It starts two servers on loopback ports: a flaky upstream, and a proxy that forwards every
//! request to it through `BreakerLayer` (5xx counts as a failure) and answers a rejection with
//! **503 and `Retry-After`** through axum's `HandleErrorLayer`. A real HTTP client then walks
//! through healthy, failing, open and recovered, printing what it sees. With `--serve` it keeps
//! both servers running afterwards, for `curl`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atomic_breaker::{CircuitBreaker, Config, StdClock};
use atomic_breaker_servers::{flaky_upstream, get, proxy, serve};

const OPEN_FOR: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let down = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let upstream = serve(flaky_upstream(down.clone(), hits.clone())).await?;
    let breaker = Arc::new(CircuitBreaker::<StdClock>::new(
        "upstream",
        Config::new().fail_max(3).reset_timeout(OPEN_FOR),
        StdClock,
    ));
    let front = serve(proxy(breaker.clone(), upstream)).await?;
    println!("upstream on http://{upstream}, proxy (with the breaker) on http://{front}\n");

    let show = |label: &str, (status, retry, body): (u16, Option<String>, String)| {
        let retry = retry.map_or(String::new(), |r| format!("  Retry-After: {r}"));
        println!("{label:<28} {status}{retry}  {body}");
    };

    for _ in 0..2 {
        show("upstream healthy", get(front, "/").await?);
    }
    down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        show("upstream failing", get(front, "/").await?);
    }
    let before = hits.load(Ordering::SeqCst);
    for _ in 0..3 {
        show("breaker open", get(front, "/").await?);
    }
    println!(
        "  (the upstream received {} requests while the breaker was open)",
        hits.load(Ordering::SeqCst) - before
    );

    down.store(false, Ordering::SeqCst);
    println!("\nupstream fixed; retrying every 250 ms until the open period ({OPEN_FOR:?}) passes");
    let start = Instant::now();
    loop {
        let r = get(front, "/").await?;
        let ok = r.0 == 200;
        show(&format!("after {:?}", start.elapsed()), r);
        if ok {
            break;
        }
        if start.elapsed() > OPEN_FOR * 5 {
            return Err("the breaker did not recover".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("breaker state: {}", breaker.state());

    if std::env::args().any(|a| a == "--serve") {
        println!("\nserving; try: curl -i http://{front}/  (Ctrl-C to stop)");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
