//! A `static` circuit breaker guarding a flaky sensor, on a Cortex-M in QEMU.
//!
//! Run it with `cargo run --release` in this directory (needs `qemu-system-arm` and
//! `rustup target add thumbv7m-none-eabi`). The main loop reads a simulated I2C temperature
//! sensor every 20 ms. Between 100 ms and 400 ms the bus is stuck and every read fails: after
//! three failures the breaker opens, the loop stops hammering the bus, and once the open period
//! has passed a single trial read probes it. State changes reach the main loop through an
//! `EventQueue` that the breaker's listener fills.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use atomic_breaker::{CircuitBreaker, Clock, Config, Error, Event, EventKind, EventQueue};
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use panic_semihosting as _;

/// Milliseconds since boot, counted by the SysTick interrupt.
static MILLIS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes MILLIS: a load and a store are enough (and work on Cortex-M0).
    MILLIS.store(MILLIS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The breaker's clock: SysTick milliseconds. (A `u32` of milliseconds wraps after 49 days; a
/// long-running firmware would count in a `u64`, or use `EmbeddedTimeClock`, which extends a
/// `u32` counter across the wrap.)
struct SysTickMs;

impl Clock for SysTickMs {
    fn now_ms(&self) -> u64 {
        u64::from(MILLIS.load(Ordering::Relaxed))
    }
}

/// State changes, pushed by the listener (which may run in any context) and printed by the
/// main loop.
static CHANGES: EventQueue<8> = EventQueue::new();

fn on_event(e: &Event) {
    if matches!(e.kind, EventKind::StateChange { .. }) {
        CHANGES.push(e);
    }
}

/// Three consecutive failures open the breaker for 100 ms.
static SENSOR: CircuitBreaker<SysTickMs> = CircuitBreaker::new(
    "temp-sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(100)),
    SysTickMs,
)
.with_listener(on_event);

/// The sensor read failed.
#[derive(Debug)]
enum SensorError {
    /// The device did not acknowledge its address.
    Nak,
}

/// A simulated I2C temperature read: the bus is stuck from 100 ms to 400 ms.
fn read_temperature(now: u32) -> Result<i32, SensorError> {
    if (100..400).contains(&now) {
        Err(SensorError::Nak)
    } else {
        // Tenths of a degree.
        Ok(215 + (now / 100) as i32)
    }
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap();
    // 12 MHz core clock on QEMU's lm3s6965evb: 12 000 cycles per millisecond.
    cp.SYST
        .set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
    cp.SYST.set_reload(12_000 - 1);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    cp.SYST.enable_interrupt();

    hprintln!("   t  what");
    let mut reads = 0;
    let mut bus_reads = 0;
    let mut next = 0;
    while next <= 600 {
        // Sleep until the next 20 ms slot.
        while MILLIS.load(Ordering::Relaxed) < next {
            cortex_m::asm::wfi();
        }
        let now = MILLIS.load(Ordering::Relaxed);
        reads += 1;

        let mut touched_bus = false;
        match SENSOR.call(|| {
            touched_bus = true;
            read_temperature(now)
        }) {
            Ok(t) => hprintln!("{:>4}  read {}.{} C", now, t / 10, t % 10),
            Err(Error::Failed { error, tripped }) => hprintln!(
                "{:>4}  read failed: {:?}{}",
                now,
                error,
                if tripped {
                    " (tripped the breaker)"
                } else {
                    ""
                }
            ),
            Err(Error::Rejected(r)) => hprintln!(
                "{:>4}  skipped: breaker {}, retry in {} ms",
                now,
                r.state,
                r.retry_after.map_or(0, |d| d.as_millis())
            ),
        }
        bus_reads += u32::from(touched_bus);

        for e in CHANGES.drain() {
            if let EventKind::StateChange { from, to, .. } = e.kind {
                hprintln!("{:>4}  >> {}: {} -> {}", now, e.name, from, to);
            }
        }
        next += 20;
    }

    hprintln!(
        "done: {} reads attempted, {} reached the bus, breaker {}",
        reads,
        bus_reads,
        SENSOR.state()
    );
    let ok = SENSOR.state() == atomic_breaker::State::Closed && bus_reads < reads;
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::bkpt();
    }
}
