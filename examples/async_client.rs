//! An async client: a flaky weather service behind a `static` circuit breaker, under tokio.
//!
//! ```text
//! cargo run --example async_client
//! ```
//!
//! The client asks for the temperature once a second. The service has an outage from 3 s to
//! 13 s: it answers 503 quickly, except at 4 s when it hangs. The breaker trips after three
//! failures in a row, rejects calls without sending them while it is open, lets exactly one of
//! three concurrent clients through as the trial when the open period ends (that trial fails, so
//! it opens again), and closes when the next trial succeeds. It ends with the two kinds of timeout: one inside the guard (the call's own
//! error, counted as a failure) and one outside it (a cancellation, counted as nothing).
//!
//! tokio's time is paused (`start_paused`), so every sleep completes at once in real time while
//! the program sees the simulated seconds pass: the run is instant and prints the same timeline
//! every time. The breaker's clock reads that same tokio time, which shows how to plug a runtime's
//! clock into the breaker.

use std::sync::OnceLock;
use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Clock, Config, Error, Event, EventKind};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// The breaker's clock: milliseconds of tokio time since the program started.
struct TokioClock;

static START: OnceLock<Instant> = OnceLock::new();

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        START.get().map_or(0, |s| s.elapsed().as_millis() as u64)
    }
}

/// The breaker guarding the weather service: a `static`, built at compile time.
static WEATHER: CircuitBreaker<TokioClock> = CircuitBreaker::new(
    "weather",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(5))
        // A call gives up after PATIENCE, so a trial never needs its slot for longer than this.
        .trial_lease(Duration::from_secs(1)),
    TokioClock,
)
.with_listener(print_state_change);

/// How long the client waits for an answer: a timeout inside the guard, so a hang is a failure.
const PATIENCE: Duration = Duration::from_millis(500);

/// The flaky service. Down from 3 s to 13 s (answering 503 after 50 ms), hanging at 4 s; up
/// otherwise, answering after 100 ms.
async fn fetch_temperature(second: u64) -> Result<i32, &'static str> {
    match second {
        4 => {
            sleep(Duration::from_secs(3600)).await;
            Ok(0)
        }
        3..=12 => {
            sleep(Duration::from_millis(50)).await;
            Err("503 Service Unavailable")
        }
        _ => {
            sleep(Duration::from_millis(100)).await;
            Ok(18 + (second % 4) as i32)
        }
    }
}

/// One guarded request, as a client would write it.
async fn request(second: u64) -> Result<i32, Error<&'static str>> {
    WEATHER
        .call_async(|| async move {
            timeout(PATIENCE, fetch_temperature(second))
                .await
                .map_err(|_| "no answer within 500ms")?
        })
        .await
}

/// Prints what happened to one request.
fn report(who: &str, result: &Result<i32, Error<&'static str>>) {
    let what = match result {
        Ok(t) => format!("ok: {t} °C"),
        Err(Error::Failed {
            error,
            tripped: false,
        }) => format!(
            "failed: {error} (failures in a row: {})",
            WEATHER.fail_counter()
        ),
        Err(Error::Failed {
            error,
            tripped: true,
        }) => format!("failed: {error} (this one tripped the breaker)"),
        Err(Error::Rejected(r)) => format!("rejected, not sent: {r}"),
    };
    println!("{}  {who:<9} {what}", stamp());
}

/// A listener: a plain `fn`, called right after each change.
fn print_state_change(event: &Event) {
    if let EventKind::StateChange { from, to, .. } = event.kind {
        println!("{}  breaker   {from} -> {to}", stamp());
    }
}

/// The simulated time, as a column.
fn stamp() -> String {
    format!("{:>6.2}s", TokioClock.now_ms() as f64 / 1000.0)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let start = *START.get_or_init(Instant::now);
    let at = |second: u64| start + Duration::from_secs(second);

    for second in 0..=17 {
        sleep_until(at(second)).await;
        if second == 11 {
            // The open period is over: three clients at once, each in its own task. The first
            // is the trial; the breaker rejects the other two while the trial is in flight.
            let clients: Vec<_> = ["client A", "client B", "client C"]
                .into_iter()
                .map(|who| tokio::spawn(async move { report(who, &request(second).await) }))
                .collect();
            for client in clients {
                client.await.expect("the client task panicked");
            }
        } else {
            report("client", &request(second).await);
        }
    }

    // A timeout outside the guard: the client gives up after 20 ms and the guarded future is
    // dropped. That is a cancellation: neither a success nor a failure.
    sleep_until(at(18)).await;
    if timeout(Duration::from_millis(20), request(18))
        .await
        .is_err()
    {
        println!(
            "{}  client    gave up after 20ms: cancelled, not counted (state {}, failures in a row: {})",
            stamp(),
            WEATHER.state(),
            WEATHER.fail_counter()
        );
    }
}
