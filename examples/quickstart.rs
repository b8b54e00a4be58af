//! Quickstart: a flaky dependency behind a circuit breaker, over simulated time.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! A "payments" service is called every 500 ms. It goes down at 1.0 s and comes back at 5.0 s.
//! The breaker trips after three failures in a row, rejects requests without sending them while
//! it is open (saying when to retry), sends one trial request when the open period is over, opens
//! again when the trial fails, and closes after two trials in a row succeed.
//!
//! Time is a `ManualClock` moved by the program, so the run is instant and prints the same
//! timeline every time. In production you would use `StdClock` (or your platform's clock).
//! The breaker is a plain `static`: no `Arc`, no lazy initialisation.

use std::time::Duration;

use atomic_breaker::{CircuitBreaker, Clock, Config, Error, Event, EventKind, ManualClock, State};

/// Simulated time, in milliseconds.
static CLOCK: ManualClock = ManualClock::new();

/// The breaker guarding the payments service, built at compile time.
static PAYMENTS: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "payments",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(2))
        .success_threshold(2),
    &CLOCK,
)
.with_listener(print_state_change);

/// When the service is down: from 1.0 s (inclusive) to 5.0 s (exclusive).
const OUTAGE_MS: std::ops::Range<u64> = 1_000..5_000;
/// Time between two requests.
const EVERY: Duration = Duration::from_millis(500);
/// Requests sent over the run: 0.0 s to 8.0 s.
const REQUESTS: u32 = 17;

/// The flaky dependency.
fn payments_service(now_ms: u64) -> Result<&'static str, &'static str> {
    if OUTAGE_MS.contains(&now_ms) {
        Err("503 Service Unavailable")
    } else {
        Ok("200 OK")
    }
}

/// A listener: a plain `fn`, called by the breaker right after each change it reports.
fn print_state_change(event: &Event) {
    let EventKind::StateChange { from, to, .. } = event.kind else {
        return;
    };
    // Listeners may call back into the breaker to explain what happened.
    let cut_off = PAYMENTS.retry_after().unwrap_or_default();
    let why = match (from, to) {
        (State::Closed, State::Open) => format!(
            "{} failures in a row; requests are cut off for {cut_off:?}",
            PAYMENTS.fail_counter()
        ),
        (State::Open, State::HalfOpen) => {
            "the open period is over; the next request is a trial".to_string()
        }
        (State::HalfOpen, State::Open) => {
            format!("the trial failed; requests are cut off for {cut_off:?} more")
        }
        (State::HalfOpen, State::Closed) => format!(
            "{} trials in a row succeeded; back to normal",
            PAYMENTS.success_threshold()
        ),
        _ => String::new(),
    };
    println!("{}       breaker: {from} -> {to}  ({why})", stamp());
}

/// The simulated time, as a column.
fn stamp() -> String {
    format!("{:>5.1}s", CLOCK.now_ms() as f64 / 1000.0)
}

fn main() {
    println!("atomic-breaker quickstart");
    println!("=========================");
    println!(
        "A flaky payments service behind a circuit breaker, over {}s of simulated time.",
        (REQUESTS - 1) as f64 * EVERY.as_secs_f64()
    );
    println!();
    println!(
        "  breaker {:?}: fail_max {}, reset_timeout {:?}, success_threshold {}",
        PAYMENTS.name(),
        PAYMENTS.fail_max(),
        PAYMENTS.reset_timeout(),
        PAYMENTS.success_threshold()
    );
    println!(
        "  one request every {EVERY:?}; the service is down from {:.1}s to {:.1}s",
        OUTAGE_MS.start as f64 / 1000.0,
        OUTAGE_MS.end as f64 / 1000.0
    );
    println!();
    println!("  time  req  what happened");
    println!(" -----  ---  {}", "-".repeat(70));

    let mut sent = 0;
    let mut sent_during_outage = 0;
    let mut rejected = 0;
    for n in 1..=REQUESTS {
        let now = CLOCK.now_ms();
        if now == OUTAGE_MS.start {
            println!("{}       -- the payments service goes down --", stamp());
        }
        if now == OUTAGE_MS.end {
            println!("{}       -- the payments service is back up --", stamp());
        }

        let result = PAYMENTS.call(|| {
            // Runs only if the breaker admits the request.
            sent += 1;
            if OUTAGE_MS.contains(&now) {
                sent_during_outage += 1;
            }
            let trial = if PAYMENTS.state() == State::HalfOpen {
                format!(
                    "  [trial {} of {}]",
                    PAYMENTS.success_counter() + 1,
                    PAYMENTS.success_threshold()
                )
            } else {
                String::new()
            };
            let response = payments_service(now);
            let shown = match response {
                Ok(r) | Err(r) => r,
            };
            println!("{}  #{n:<3} sent -> {shown}{trial}", stamp());
            response
        });

        match result {
            // Executed: the line is printed above, and any state change by the listener.
            Ok(_) | Err(Error::Failed { .. }) => {}
            // Never sent: the error says why, and when to try again.
            Err(e @ Error::Rejected(_)) => {
                rejected += 1;
                println!("{}  #{n:<3} not sent: {e}", stamp());
            }
        }
        CLOCK.advance(EVERY);
    }

    let outage_requests = (OUTAGE_MS.end - OUTAGE_MS.start) / EVERY.as_millis() as u64;
    println!();
    println!(
        "{REQUESTS} requests: {sent} reached the service, {rejected} were rejected without being sent."
    );
    println!(
        "During the outage the service received {sent_during_outage} of the {outage_requests} \
         requests it would have had without the breaker."
    );
    let s = PAYMENTS.snapshot();
    println!(
        "Now: {}, {} consecutive failures, generation {}.",
        s.state, s.fail_counter, s.generation
    );
}
