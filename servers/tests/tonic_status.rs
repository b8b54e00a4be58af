//! tonic: a tower service answering `tonic::Status` (what a gRPC client or a handler behind a
//! tonic server is, minus the codec) guarded by the breaker. `classify_grpc` counts
//! `Unavailable` and ignores `InvalidArgument`; `to_status` turns the rejection into
//! `Status::unavailable` with `grpc-retry-pushback-ms`, where tonic's own conversion would
//! say `Unknown`.

use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::tower::{BoxError, BreakerLayer, Rejected};
use atomic_breaker::{CircuitBreaker, Config, ManualClock, State};
use atomic_breaker_servers::{classify_grpc, to_status};
use tonic::{Code, Status};
use tower::{service_fn, Layer, Service, ServiceExt};

type Classifier = fn(&Result<u32, Status>) -> atomic_breaker::Outcome;

#[tokio::test]
async fn rejection_becomes_unavailable_with_pushback() {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let breaker = Arc::new(CircuitBreaker::<_>::new(
        "grpc-backend",
        Config::new()
            .fail_max(2)
            .reset_timeout(Duration::from_secs(5)),
        clock,
    ));
    // The backend: request 0 is the caller's mistake, 1 an outage, anything else fine.
    let backend = service_fn(|n: u32| async move {
        match n {
            0 => Err(Status::invalid_argument("n must not be 0")),
            1 => Err(Status::unavailable("backend overloaded")),
            n => Ok(n * 2),
        }
    });
    let mut svc = BreakerLayer::with_classifier(breaker.clone(), classify_grpc as Classifier)
        .layer(backend)
        .map_err(to_status);

    // A caller's mistake is passed on unchanged and not counted.
    for _ in 0..3 {
        let s = svc.ready().await.unwrap().call(0).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument);
    }
    assert_eq!(breaker.fail_counter(), 0);

    // Two outages trip the breaker; their own status comes through.
    for _ in 0..2 {
        let s = svc.ready().await.unwrap().call(1).await.unwrap_err();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "backend overloaded");
    }
    assert_eq!(breaker.state(), State::Open);

    // Open: the rejection is Unavailable, with the time to wait as pushback.
    clock.advance(Duration::from_secs(2));
    let s = svc.ready().await.unwrap().call(21).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);
    assert!(s.message().contains("grpc-backend"), "{}", s.message());
    assert_eq!(s.metadata().get("grpc-retry-pushback-ms").unwrap(), "3000");

    // Recovery.
    clock.advance(Duration::from_secs(3));
    assert_eq!(svc.ready().await.unwrap().call(21).await.unwrap(), 42);
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn without_the_mapping_tonic_would_say_unknown() {
    let rejected: BoxError = Box::new(Rejected {
        name: "b",
        state: State::Open,
        retry_after: Some(Duration::from_secs(1)),
    });
    assert_eq!(Status::from_error(rejected).code(), Code::Unknown);
    let rejected: BoxError = Box::new(Rejected {
        name: "b",
        state: State::Open,
        retry_after: Some(Duration::from_secs(1)),
    });
    assert_eq!(to_status(rejected).code(), Code::Unavailable);
}
