//! Size of typical use: the baseline firmware with its sensor read guarded by a `static`
//! breaker (`call`, plus a state check). See `size_base.rs`.
//!
//! It registers no listener, so it declares a listener capacity of 0 (`CircuitBreaker<Ms, 0>`),
//! as docs/FIRMWARE.md advises such firmware to: the listener table and every event dispatch then
//! compile to nothing. `size_table` is the same with the default capacity of 4.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, State};
use common::{read_sensor, report, Ms};
use core::time::Duration;
use cortex_m_rt::entry;

static SENSOR: CircuitBreaker<Ms, 0> = CircuitBreaker::new(
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
