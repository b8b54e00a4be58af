//! Shared scaffolding of the size firmwares (included with `#[path]`, so each binary is
//! self-contained and links nothing from the `firmware` library).

use core::sync::atomic::{AtomicU32, Ordering};

/// Milliseconds since boot, counted by SysTick.
pub static TICKS: AtomicU32 = AtomicU32::new(0);

/// A simulated sensor: the result depends on a register the optimiser cannot see.
#[inline(never)]
pub fn read_sensor() -> Result<u32, u32> {
    static mut REG: u32 = 0;
    // SAFETY: a plain volatile read of a static, standing in for a peripheral register.
    let v = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(REG)) };
    if v & 1 == 0 {
        Ok(v)
    } else {
        Err(v)
    }
}

/// Makes a value observable, so the code computing it stays.
pub fn report(v: u32) {
    static mut OUT: u32 = 0;
    // SAFETY: a plain volatile write to a static, standing in for a peripheral register.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(OUT), v) };
}

#[allow(dead_code)] // the baseline has no breaker clock
pub struct Ms;

impl atomic_breaker::Clock for Ms {
    fn now_ms(&self) -> u64 {
        u64::from(TICKS.load(Ordering::Relaxed))
    }
}

pub fn start() {
    // SAFETY: called once, before anything else uses the core peripherals.
    let mut cp = unsafe { cortex_m::Peripherals::steal() };
    cp.SYST
        .set_clock_source(cortex_m::peripheral::syst::SystClkSource::Core);
    cp.SYST.set_reload(12_000 - 1);
    cp.SYST.enable_counter();
    cp.SYST.enable_interrupt();
}

#[cortex_m_rt::exception]
fn SysTick() {
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
