//! atomic-breaker in servers (unpublished): what a breaker rejection becomes in axum (503 with
//! `Retry-After`) and in tonic (`Status::unavailable` with `grpc-retry-pushback-ms`), the HTTP
//! and gRPC classifiers, and a small proxy app. Shared by the demo
//! (`cargo run -p atomic-breaker-servers --example axum_breaker`), the round-trip tests and the
//! benchmark against tower-resilience.

pub mod health;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::tower::{BoxError, BreakerLayer, Rejected};
use atomic_breaker::{CircuitBreaker, Clock, Outcome};
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::TokioIo;
use tower::ServiceBuilder;

/// Seconds for a `Retry-After` header: `retry_after` rounded up, at least 1 (0 would invite an
/// immediate retry that is still rejected); 1 when the breaker does not know (ForcedOpen).
pub fn retry_after_secs(rejected: &Rejected) -> u64 {
    rejected
        .retry_after
        .map_or(1, |d| d.as_millis().div_ceil(1000).max(1) as u64)
}

/// The `HandleErrorLayer` handler: a breaker rejection becomes **503 Service Unavailable** with
/// `Retry-After`; any other error (the upstream call itself failed) a 502 Bad Gateway.
pub async fn handle_error(err: BoxError) -> Response<Body> {
    match err.downcast_ref::<Rejected>() {
        Some(rejected) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, retry_after_secs(rejected).to_string())],
            rejected.to_string(),
        )
            .into_response(),
        None => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    }
}

/// HTTP classification: a 5xx response or a transport error is a failure, anything else
/// (2xx, 3xx, and 4xx, which is the client's doing) a success.
pub fn classify_http<B>(result: &Result<Response<B>, BoxError>) -> Outcome {
    match result {
        Ok(resp) if resp.status().is_server_error() => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// A breaker error as a gRPC status. A rejection becomes `Unavailable` ("transient, retry
/// with back-off") with `grpc-retry-pushback-ms`; anything else goes through
/// `Status::from_error`. Without this, tonic turns the rejection into `Unknown`, which retry
/// policies do not retry.
pub fn to_status(err: BoxError) -> tonic::Status {
    match err.downcast::<Rejected>() {
        Ok(rejected) => {
            let mut status = tonic::Status::unavailable(rejected.to_string());
            if let Some(d) = rejected.retry_after {
                let ms = d.as_millis().to_string();
                if let Ok(v) = ms.parse() {
                    status.metadata_mut().insert("grpc-retry-pushback-ms", v);
                }
            }
            status
        }
        Err(err) => match err.downcast::<tonic::Status>() {
            Ok(status) => *status,
            Err(err) => tonic::Status::from_error(err),
        },
    }
}

/// gRPC classification: the codes that say the server or the network is in trouble
/// (`Unavailable`, `DeadlineExceeded`, `Internal`, `ResourceExhausted`, `Unknown`, `DataLoss`)
/// are failures; the caller's own mistakes (`InvalidArgument`, `NotFound`, ...) are ignored.
pub fn classify_grpc<T>(result: &Result<T, tonic::Status>) -> Outcome {
    use tonic::Code;
    match result {
        Ok(_) => Outcome::Success,
        Err(s) => match s.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::ResourceExhausted
            | Code::Unknown
            | Code::DataLoss => Outcome::Failure,
            _ => Outcome::Ignored,
        },
    }
}

/// The classifier type of [`proxy`], nameable.
pub type HttpClassifier = fn(&Result<Response<Body>, BoxError>) -> Outcome;

/// A one-request HTTP/1 client for `upstream`: GET of the same path, a new connection each
/// time (simple, and enough for a demo and a test).
pub async fn fetch(upstream: SocketAddr, path: &str) -> Result<Response<Body>, BoxError> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(path)
        .header(header::HOST, HeaderValue::from_str(&upstream.to_string())?)
        .body(Body::empty())?;
    let resp = sender.send_request(req).await?;
    Ok(resp.map(Body::new))
}

/// A proxy: every request to the returned router is forwarded to `upstream` through the
/// breaker (`classify_http`), and a rejection is answered by [`handle_error`] (503 with
/// `Retry-After`).
pub fn proxy<C>(breaker: Arc<CircuitBreaker<C>>, upstream: SocketAddr) -> Router
where
    C: Clock + Send + Sync + 'static,
{
    let client = tower::service_fn(move |req: Request<Body>| {
        let path = req.uri().path().to_owned();
        async move { fetch(upstream, &path).await }
    });
    let guarded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(handle_error))
        .layer(BreakerLayer::with_classifier(
            breaker,
            classify_http as HttpClassifier,
        ))
        .service(client);
    Router::new().fallback_service(guarded)
}

/// Serves `app` on a loopback port chosen by the OS; returns the address.
pub async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// A bound for every network wait in the demo and the tests.
pub const NET_TIMEOUT: Duration = Duration::from_secs(10);

/// GET `path` from `addr` with a real HTTP client: (status, `Retry-After`, body).
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, Option<String>, String), BoxError> {
    use http_body_util::BodyExt;
    let resp = tokio::time::timeout(NET_TIMEOUT, fetch(addr, path)).await??;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, retry, String::from_utf8_lossy(&body).into_owned()))
}

/// A flaky upstream for the demo and the tests: `200 hello` while `down` is false, `500` while
/// it is true; counts the requests it receives in `hits`.
pub fn flaky_upstream(
    down: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
) -> Router {
    use std::sync::atomic::Ordering;
    Router::new().fallback(move || {
        let (down, hits) = (down.clone(), hits.clone());
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            if down.load(Ordering::SeqCst) {
                (StatusCode::INTERNAL_SERVER_ERROR, "upstream broken")
            } else {
                (StatusCode::OK, "hello")
            }
        }
    })
}
