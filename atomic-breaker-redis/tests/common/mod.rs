//! Test helpers: one redis-server per test (killed on drop), bounded polls, command counts.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use atomic_breaker::Config;
use atomic_breaker_redis::devserver::RedisServer;
use atomic_breaker_redis::{FleetBreaker, FleetEvent};
use tokio::time::{timeout, Instant};

pub fn server() -> RedisServer {
    RedisServer::start().expect("redis-server must be installed (apt-get install redis-server)")
}

/// A fleet member with short periods, fast refresh and short timeouts.
pub fn member(url: &str, name: &'static str) -> FleetBreaker {
    builder(url, name).build().unwrap()
}

pub fn builder(url: &str, name: &'static str) -> atomic_breaker_redis::Builder {
    FleetBreaker::builder(name, url)
        .prefix("t")
        .config(
            Config::new()
                .fail_max(3)
                .reset_timeout(Duration::from_millis(300)),
        )
        .command_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(200))
        .refresh(Duration::from_millis(200))
        .trial_lease(Duration::from_millis(500))
}

/// Polls `cond` every 5 ms until it holds; panics after `limit` with `what`.
pub async fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the member has applied a record from Redis.
pub async fn synced(f: &FleetBreaker) {
    until(Duration::from_secs(5), "first sync", || f.fleet().is_some()).await;
}

/// Waits for an event matching `pred` (bounded).
pub async fn event(
    rx: &mut tokio::sync::broadcast::Receiver<FleetEvent>,
    limit: Duration,
    mut pred: impl FnMut(&FleetEvent) -> bool,
) -> FleetEvent {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event channel: {e}"),
            Err(_) => panic!("no matching event within {limit:?}"),
        }
    }
}

/// Runs a future with a bound; panics if it does not finish.
pub async fn bounded<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    timeout(limit, f)
        .await
        .expect("bounded operation timed out")
}

/// A plain connection for fault injection and inspection (no response timeout: `DEBUG SLEEP`
/// answers late on purpose).
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Total commands the server has executed, from `INFO commandstats`, excluding `INFO` itself.
pub async fn commands(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            let calls = l.split("calls=").nth(1)?;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Fails `n` calls on `f`.
pub fn fail(f: &FleetBreaker, n: u32) {
    for _ in 0..n {
        let _ = f.call(|| Err::<(), _>("down"));
    }
}

/// Runs `breakerctl --url URL --prefix t ARGS...` (off the runtime's threads); returns its exit
/// code, stdout and stderr.
pub async fn breakerctl(url: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_breakerctl"));
    cmd.args(["--url", url, "--prefix", "t"]).args(args);
    let out = bounded(
        Duration::from_secs(15),
        tokio::task::spawn_blocking(move || cmd.output().expect("run breakerctl")),
    )
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends one raw command (fault injection), ignoring its answer.
pub async fn raw_cmd(con: &mut redis::aio::MultiplexedConnection, args: &[&str]) {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    let _: redis::Value = c.query_async(con).await.unwrap();
}
