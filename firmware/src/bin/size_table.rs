//! Size of typical use with the default listener table: `size_typical` with the breaker declared
//! `CircuitBreaker<Ms>` (capacity 4, no listener registered). The difference to `size_typical`
//! is what the listener table and its dispatch cost a firmware that registers no listener but
//! keeps the default capacity.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, State};
use common::{read_sensor, report, Ms};
use core::time::Duration;
use cortex_m_rt::entry;

static SENSOR: CircuitBreaker<Ms> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(1)),
    Ms,
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
