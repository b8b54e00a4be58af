//! Size baseline: the smallest useful firmware, a main loop reading a (simulated) sensor each
//! SysTick period. `size_typical` and `size_all` are the same firmware plus breaker calls; the
//! difference in `.text` is what the breaker adds. No semihosting, no formatting, a looping
//! panic handler: nothing else to measure.
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use common::{read_sensor, report};
use cortex_m_rt::entry;

#[entry]
fn main() -> ! {
    common::start();
    loop {
        report(read_sensor().is_ok() as u32);
        cortex_m::asm::wfi();
    }
}
