//! Size of everything: the baseline firmware using every public operation of the breaker
//! (two-step permits, classification, management, run-time configuration, monitoring,
//! listeners added at build time and at run time). See `size_base.rs`.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, Event, EventKind, Outcome};
use common::{read_sensor, report, Ms};
use core::hint::black_box;
use core::time::Duration;
use cortex_m_rt::entry;

fn on_event(e: &Event) {
    if let EventKind::StateChange { to, .. } = e.kind {
        report(to as u32);
    }
}

static SENSOR: CircuitBreaker<Ms> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_secs(1)),
    Ms,
)
.with_listener(on_event);

#[entry]
fn main() -> ! {
    common::start();
    let extra = SENSOR.add_listener(on_event);
    let mut n = 0u32;
    loop {
        n = n.wrapping_add(1);
        report(SENSOR.call(read_sensor).is_ok() as u32);
        let r = SENSOR.call_with(
            |r| match r {
                Err(e) if e % 4 == 1 => Outcome::Ignored,
                r => Outcome::of(r),
            },
            read_sensor,
        );
        report(r.is_ok() as u32);
        if let Ok(permit) = SENSOR.allow() {
            match read_sensor() {
                Ok(v) => {
                    report(v);
                    report(permit.success() as u32);
                }
                Err(_) => report(permit.failure() as u32),
            }
        }
        let s = SENSOR.snapshot();
        report(s.fail_counter + s.success_counter + s.trial_calls);
        report(SENSOR.retry_after().map_or(0, |d| d.as_millis() as u32));
        report(SENSOR.opened_at().unwrap_or(0) as u32);
        match black_box(n) % 64 {
            0 => report(SENSOR.open() as u32),
            1 => report(SENSOR.close() as u32),
            2 => report(SENSOR.half_open() as u32),
            3 => report(SENSOR.force_open() as u32),
            4 => report(SENSOR.disable() as u32),
            5 => report(
                SENSOR
                    .trip_for(Duration::from_millis(black_box(500)))
                    .is_ok() as u32,
            ),
            6 => report(SENSOR.set_fail_max(black_box(5)).is_ok() as u32),
            7 => report(
                SENSOR
                    .set_reset_timeout(Duration::from_secs(black_box(2)))
                    .is_ok() as u32,
            ),
            8 => report(SENSOR.set_success_threshold(black_box(2)).is_ok() as u32),
            9 => {
                if let Ok(id) = extra {
                    report(SENSOR.remove_listener(id) as u32);
                }
            }
            _ => {}
        }
        cortex_m::asm::wfi();
    }
}
