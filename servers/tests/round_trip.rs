//! A real HTTP round trip: an axum proxy on a loopback port forwards to a flaky axum upstream
//! through the breaker layer, and a real hyper client sees 200s, then the upstream's 5xx, then
//! 503s with `Retry-After` (the upstream is no longer called), then recovery. The breaker runs
//! on `ManualClock`, so the open period passes when the test says so; every network wait is
//! bounded (`NET_TIMEOUT`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Config, ManualClock, State};
use atomic_breaker_servers::{flaky_upstream, get, proxy, serve};

static CLOCK: ManualClock = ManualClock::new();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_proxy_answers_503_with_retry_after_then_recovers() {
    let down = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicUsize::new(0));
    let upstream = serve(flaky_upstream(down.clone(), hits.clone()))
        .await
        .unwrap();
    let breaker = Arc::new(CircuitBreaker::<_>::new(
        "upstream",
        Config::new()
            .fail_max(3)
            .reset_timeout(Duration::from_secs(30)),
        &CLOCK,
    ));
    let front = serve(proxy(breaker.clone(), upstream)).await.unwrap();

    // Healthy: 200s from the upstream.
    for _ in 0..3 {
        let (status, retry, body) = get(front, "/hello").await.unwrap();
        assert_eq!((status, retry, body.as_str()), (200, None, "hello"));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // The upstream breaks: its 500s pass through and count, and the third trips the breaker.
    down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let (status, retry, _) = get(front, "/hello").await.unwrap();
        assert_eq!((status, retry), (500, None));
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(hits.load(Ordering::SeqCst), 6);

    // Open: 503 with Retry-After, without calling the upstream.
    CLOCK.advance(Duration::from_millis(10_500));
    for _ in 0..5 {
        let (status, retry, body) = get(front, "/hello").await.unwrap();
        assert_eq!(status, 503);
        assert_eq!(retry.as_deref(), Some("20"), "19.5 s left, rounded up");
        assert!(
            body.contains("circuit breaker 'upstream' is open"),
            "{body}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 6, "the upstream was spared");

    // The upstream recovers and the open period passes: one trial, then closed.
    down.store(false, Ordering::SeqCst);
    CLOCK.advance(Duration::from_secs(20));
    let (status, _, body) = get(front, "/hello").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello"));
    assert_eq!(breaker.state(), State::Closed);
    for _ in 0..3 {
        assert_eq!(get(front, "/").await.unwrap().0, 200);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn upstream_unreachable_is_a_502_and_counts() {
    // A port nobody listens on: bind one, note it, close it.
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let breaker = Arc::new(CircuitBreaker::<_>::new(
        "dead",
        Config::new().fail_max(2),
        clock,
    ));
    let front = serve(proxy(breaker.clone(), dead)).await.unwrap();
    for _ in 0..2 {
        assert_eq!(get(front, "/").await.unwrap().0, 502);
    }
    assert_eq!(breaker.state(), State::Open);
    let (status, retry, _) = get(front, "/").await.unwrap();
    assert_eq!(status, 503);
    assert!(retry.is_some());
}
