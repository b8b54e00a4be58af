//! Size of typical use on embassy time: `size_typical` (listener capacity 0) with
//! `EmbassyClock` instead of the millisecond counter, over a minimal time driver (SysTick counts embassy ticks at the default
//! 1 MHz; no timer queue: nothing here awaits). The difference to `size_typical` is what the
//! tick-to-ms conversion costs; CI also checks that no 64-bit division routine is linked.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, EmbassyClock, State};
use common::{read_sensor, report};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use cortex_m_rt::entry;

/// The driver: the SysTick millisecond count as 1 MHz ticks.
struct Driver;
impl embassy_time_driver::Driver for Driver {
    fn now(&self) -> u64 {
        u64::from(common::TICKS.load(Ordering::Relaxed)) * 1_000
    }
    fn schedule_wake(&self, _at: u64, waker: &core::task::Waker) {
        // Nothing awaits a timer in this firmware; wake at once rather than never.
        static WAKES: AtomicU32 = AtomicU32::new(0);
        WAKES.store(
            WAKES.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        waker.wake_by_ref();
    }
}
embassy_time_driver::time_driver_impl!(static DRIVER: Driver = Driver);

static SENSOR: CircuitBreaker<EmbassyClock, 0> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(1)),
    EmbassyClock::new(),
);

#[entry]
fn main() -> ! {
    common::start();
    loop {
        report(SENSOR.call(read_sensor).is_ok() as u32);
        if SENSOR.state() == State::Open {
            report(2);
        }
        cortex_m::asm::wfi();
    }
}
