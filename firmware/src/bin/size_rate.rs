//! Size of typical use in failure-rate mode: `size_typical` (a sensor read guarded by a `static`
//! breaker: `call`, plus a state check) with `Config::failure_rate`; the difference to
//! `size_typical` is what rate mode links. See `size_base.rs`.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, FailureRate, State};
use common::{read_sensor, report, Ms};
use core::time::Duration;
use cortex_m_rt::entry;

static SENSOR: CircuitBreaker<Ms> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(1))
        .failure_rate(FailureRate::new(50, 20).minimum_calls(10)),
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
