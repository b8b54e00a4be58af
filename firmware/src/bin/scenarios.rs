//! The breaker's scenarios on a Cortex-M under QEMU: a `static` breaker timed by SysTick,
//! trip, reject, half-open, close, re-trip, listeners (counting, event queue, defmt), the
//! embedded-time adapter across a real tick-counter wrap, and the breaker used at the same time
//! from thread mode and the SysTick interrupt handler. Exits through semihosting: 0 when every
//! check passes.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32 as CoreU32, Ordering};
use core::time::Duration;

use atomic_breaker::{
    defmt_state_logger, CircuitBreaker, Config, EmbeddedTimeClock, Error, Event, EventKind,
    EventQueue, Outcome, Recorded, State,
};
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use firmware::{check, storm, wait_ticks, Clock, SysTickClock};
use panic_semihosting as _;

/// Every state change, for the main loop to inspect.
static CHANGES: EventQueue<8> = EventQueue::new();
fn to_queue(e: &Event) {
    if matches!(e.kind, EventKind::StateChange { .. }) {
        CHANGES.push(e);
    }
}

/// Every event, counted.
static EVENTS_SEEN: CoreU32 = CoreU32::new(0);
fn count(_: &Event) {
    EVENTS_SEEN.store(EVENTS_SEEN.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// A `static` breaker: `const` constructed, listeners included, timed by SysTick.
static SENSOR: CircuitBreaker<Clock> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(40)),
    EmbeddedTimeClock::new(SysTickClock),
)
.with_listener(to_queue)
.with_listener(count)
.with_listener(defmt_state_logger);

fn expect_changes(expected: &[(State, State)]) {
    let mut n = 0;
    for e in CHANGES.drain() {
        let EventKind::StateChange { from, to, .. } = e.kind else {
            firmware::fail("only state changes are queued");
        };
        check!(e.name == "sensor");
        check!(n < expected.len(), "unexpected change {} -> {}", from, to);
        check!(
            (from, to) == expected[n],
            "change {}: got {} -> {}",
            n,
            from,
            to
        );
        n += 1;
    }
    check!(n == expected.len(), "{} of {} changes", n, expected.len());
    check!(CHANGES.take_dropped() == 0);
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap_or_else(|| firmware::fail("peripherals"));
    // About 1 ms per period on QEMU's lm3s6965evb (12 MHz); the tests need only that it ticks.
    firmware::start_systick(&mut cp.SYST, 12_000 - 1);

    hprintln!("scenario: static breaker starts closed");
    check!(SENSOR.state() == State::Closed);
    check!(SENSOR.listener_count() == 3);
    check!(SENSOR.name() == "sensor");

    hprintln!("scenario: time from SysTick");
    let t0 = SENSOR.clock().ticks();
    wait_ticks(5);
    let t1 = SENSOR.clock().ticks();
    check!(
        t1 >= t0 + 5,
        "SysTick clock did not advance: {} -> {}",
        t0,
        t1
    );

    hprintln!("scenario: trip");
    for i in 0..3 {
        let r = SENSOR.call(|| Err::<(), _>("nak"));
        check!(matches!(r, Err(Error::Failed { tripped, .. }) if tripped == (i == 2)));
    }
    check!(SENSOR.state() == State::Open);
    check!(SENSOR.fail_counter() == 3);
    check!(SENSOR.opened_at().is_some());
    expect_changes(&[(State::Closed, State::Open)]);

    hprintln!("scenario: reject");
    let mut ran = false;
    let r = SENSOR.call(|| {
        ran = true;
        Ok::<_, ()>(())
    });
    check!(!ran, "a rejected call ran");
    let Err(Error::Rejected(rejected)) = r else {
        firmware::fail("not rejected");
    };
    check!(rejected.state == State::Open);
    let retry = rejected.retry_after.unwrap_or(Duration::ZERO);
    check!(retry > Duration::ZERO && retry <= Duration::from_millis(40));
    check!(SENSOR.allow().is_err());

    hprintln!("scenario: the open period runs on SysTick time, across the u32 wrap");
    let before = SENSOR.retry_after().unwrap_or(Duration::ZERO);
    wait_ticks(10);
    let after = SENSOR.retry_after().unwrap_or(Duration::MAX);
    check!(
        after < before,
        "retry_after did not shrink: {:?} -> {:?}",
        before,
        after
    );
    while SENSOR.retry_after().is_some_and(|d| d > Duration::ZERO) {
        cortex_m::asm::wfi();
    }
    check!(
        firmware::elapsed() > 20,
        "the tick counter should have wrapped by now"
    );
    check!(
        SENSOR.clock().ticks() > u64::from(u32::MAX),
        "the adapter did not extend the wrapped counter: {}",
        SENSOR.clock().ticks()
    );

    hprintln!("scenario: half-open");
    let trial = SENSOR
        .allow()
        .unwrap_or_else(|_| firmware::fail("no trial admitted"));
    check!(trial.is_trial());
    check!(SENSOR.state() == State::HalfOpen);
    check!(SENSOR.trial_calls() == 1);
    let second = SENSOR.allow();
    check!(
        matches!(&second, Err(r) if r.state == State::HalfOpen),
        "a second trial was admitted"
    );
    drop(second);

    hprintln!("scenario: close");
    check!(trial.success() == Recorded::Closed);
    check!(SENSOR.state() == State::Closed);
    check!(SENSOR.call(|| Ok::<_, ()>(7)) == Ok(7));
    expect_changes(&[
        (State::Open, State::HalfOpen),
        (State::HalfOpen, State::Closed),
    ]);

    hprintln!("scenario: a failed trial re-opens");
    for _ in 0..3 {
        let _ = SENSOR.call(|| Err::<(), _>(()));
    }
    wait_ticks(45);
    let trial = SENSOR
        .allow()
        .unwrap_or_else(|_| firmware::fail("no trial admitted"));
    check!(trial.report(Outcome::Failure) == Recorded::Tripped);
    check!(SENSOR.state() == State::Open);
    check!(SENSOR.close());
    expect_changes(&[
        (State::Closed, State::Open),
        (State::Open, State::HalfOpen),
        (State::HalfOpen, State::Open),
        (State::Open, State::Closed),
    ]);

    hprintln!("scenario: listeners at run time");
    let seen = EVENTS_SEEN.load(Ordering::Relaxed);
    check!(seen > 0);
    check!(SENSOR.add_listener(count).is_ok());
    check!(
        SENSOR.add_listener(count).is_err(),
        "the table holds 4 listeners"
    );
    let before = EVENTS_SEEN.load(Ordering::Relaxed);
    let _ = SENSOR.call(|| Ok::<_, ()>(()));
    // BeforeCall and Success, each counted twice.
    check!(EVENTS_SEEN.load(Ordering::Relaxed) == before + 4);
    check!(
        firmware::DEFMT_BYTES.load(Ordering::Relaxed) > 0,
        "defmt listener logged nothing"
    );

    hprintln!("scenario: thread mode and the SysTick handler on one breaker");
    let r = storm::run(1_500);
    hprintln!(
        "  {} interrupts ({} calls admitted), {} thread calls ({} admitted), {} trips, {} rejected",
        r.isr_runs,
        r.isr_admitted,
        r.thread_calls,
        r.thread_admitted,
        r.trips,
        r.rejected
    );
    hprintln!(
        "  {} events: {} drained from the queue, {} dropped and counted",
        r.events,
        r.drained,
        r.dropped
    );
    check!(r.trips > 0 && r.rejected > 0 && r.dropped > 0);
    check!(r.isr_admitted > 0 && r.thread_admitted > 0);

    hprintln!("all scenarios passed");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[exception]
fn SysTick() {
    firmware::on_systick();
    storm::on_systick();
}
