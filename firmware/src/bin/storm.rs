//! Only the storm: the breaker used at the same time from thread mode and the SysTick handler.
//!
//! Built for thumbv7m (unsafe-assume-single-core) or thumbv6m (critical-section) it must pass.
//! Built for thumbv7em (QEMU mps2-an386, Cortex-M4), where this package leaves portable-atomic's
//! default seqlock fallback in place, it is the negative control: the SysTick handler spins on
//! the seqlock that the thread it interrupted holds, and the firmware hangs.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use firmware::storm;
use panic_semihosting as _;

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap_or_else(|| firmware::fail("peripherals"));
    firmware::start_systick(&mut cp.SYST, 12_000 - 1);
    hprintln!("storm: thread mode and the SysTick handler on one breaker");
    let r = storm::run(2_000);
    hprintln!(
        "storm passed: {} interrupts ({} admitted), {} thread calls ({} admitted), {} trips, {} rejected, {} events ({} drained, {} dropped)",
        r.isr_runs,
        r.isr_admitted,
        r.thread_calls,
        r.thread_admitted,
        r.trips,
        r.rejected,
        r.events,
        r.drained,
        r.dropped
    );
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
