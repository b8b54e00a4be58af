//! Shared pieces of the test firmware: the SysTick-driven clock, a check macro that exits QEMU
//! through semihosting, a byte-counting defmt logger, and the thread-mode-plus-interrupt
//! "storm" that `scenarios` and `storm` both run.
#![no_std]

use core::sync::atomic::{AtomicU32 as CoreU32, Ordering};

use atomic_breaker::EmbeddedTimeClock;
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use embedded_time::{clock, fraction::Fraction, Instant};

pub mod storm;

/// Where the SysTick counter starts: 20 periods before `u32::MAX`, so the `u32` tick counter
/// wraps while the scenarios run and the `EmbeddedTimeClock` has to extend it.
pub const TICKS_START: u32 = u32::MAX - 20;

/// SysTick periods since boot (plus [`TICKS_START`]). Written only by [`on_systick`].
pub static TICKS: CoreU32 = CoreU32::new(TICKS_START);

/// The hardware timer as an `embedded_time::Clock`: a `u32` count of SysTick periods of 1 ms
/// (nominal: see [`start_systick`]).
pub struct SysTickClock;

impl embedded_time::Clock for SysTickClock {
    type T = u32;
    const SCALING_FACTOR: Fraction = Fraction::new(1, 1_000);

    fn try_now(&self) -> Result<Instant<Self>, clock::Error> {
        Ok(Instant::new(TICKS.load(Ordering::Relaxed)))
    }
}

/// The breaker clock every firmware breaker uses: SysTick through the embedded-time adapter.
pub type Clock = EmbeddedTimeClock<SysTickClock>;

/// The body of the SysTick exception handler: count one period. Only this handler writes
/// `TICKS`, so a load and a store suffice (thumbv6m has no atomic read-modify-write).
pub fn on_systick() {
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// SysTick periods elapsed since `TICKS_START` (wrapping arithmetic, so across the wrap).
pub fn elapsed() -> u32 {
    TICKS.load(Ordering::Relaxed).wrapping_sub(TICKS_START)
}

/// Starts SysTick on the core clock with `reload + 1` cycles per period and its interrupt on.
pub fn start_systick(syst: &mut SYST, reload: u32) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    syst.clear_current();
    syst.enable_counter();
    syst.enable_interrupt();
}

/// Sleeps (WFI) until `n` more SysTick periods have passed.
pub fn wait_ticks(n: u32) {
    let start = TICKS.load(Ordering::Relaxed);
    while TICKS.load(Ordering::Relaxed).wrapping_sub(start) < n {
        cortex_m::asm::wfi();
    }
}

/// Exits QEMU with a failure status after printing `what`.
pub fn fail(what: &str) -> ! {
    cortex_m_semihosting::hprintln!("FAIL: {}", what);
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Exits QEMU with a failure status, printing nothing (no formatting code, so no panic path).
pub fn fail_quietly() -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Checks a condition; on failure prints the condition, the line and an optional message, and
/// exits QEMU with a failure status.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        $crate::check!($cond, "")
    };
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            cortex_m_semihosting::hprintln!(
                "check failed at {}:{}: {} {}",
                file!(),
                line!(),
                stringify!($cond),
                format_args!($($msg)+)
            );
            $crate::fail("check");
        }
    };
}

/// Bytes written through defmt: the firmware has no host to decode defmt frames, so its
/// global logger counts them, which proves the defmt listener ran and formatted.
pub static DEFMT_BYTES: CoreU32 = CoreU32::new(0);

#[defmt::global_logger]
struct CountingLogger;

// SAFETY: `acquire` / `release` bracket each frame; the logger keeps no state but an atomic
// counter updated with a load and a store inside a critical section, so frames from any
// context cannot corrupt it.
unsafe impl defmt::Logger for CountingLogger {
    fn acquire() {}
    unsafe fn flush() {}
    unsafe fn release() {}
    unsafe fn write(bytes: &[u8]) {
        cortex_m::interrupt::free(|_| {
            let n = DEFMT_BYTES.load(Ordering::Relaxed);
            DEFMT_BYTES.store(n.wrapping_add(bytes.len() as u32), Ordering::Relaxed);
        });
    }
}
