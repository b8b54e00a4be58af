//! Size of typical use plus save and restore: `size_typical` whose breaker is restored at boot
//! from no-init RAM (`SavedState::from_bytes` and `restore`) and saved back there when it
//! opens (`saved_state` and `to_bytes`). Its growth over `size_typical` is what the feature
//! costs; a firmware that never saves or restores links none of it (`size_typical` is
//! unchanged by the feature).
#![no_std]
#![no_main]

#[path = "../size_common.rs"]
mod common;

use atomic_breaker::{CircuitBreaker, Config, SavedState, State};
use common::{read_sensor, report, Ms};
use core::mem::MaybeUninit;
use core::ptr::{addr_of, addr_of_mut};
use core::time::Duration;
use cortex_m_rt::entry;

/// Word-aligned, so the 16 bytes are copied with word loads and stores (byte-aligned, they
/// are copied by a call to `memcpy`, about 750 B of flash on its own).
#[repr(C, align(4))]
struct Saved([u8; SavedState::LEN]);

#[link_section = ".uninit.SAVED"]
static mut SAVED: MaybeUninit<Saved> = MaybeUninit::uninit();

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
    // SAFETY: no-init RAM, any bit pattern is a valid byte array; only this thread touches it.
    let bytes = unsafe { addr_of!(SAVED).cast::<Saved>().read().0 };
    if let Ok(saved) = SavedState::from_bytes(&bytes) {
        SENSOR.restore(saved, None);
    }
    loop {
        report(SENSOR.call(read_sensor).is_ok() as u32);
        if SENSOR.state() == State::Open {
            report(2);
            let bytes = SENSOR.saved_state().to_bytes();
            // SAFETY: as above.
            unsafe { addr_of_mut!(SAVED).cast::<Saved>().write(Saved(bytes)) };
        }
        cortex_m::asm::wfi();
    }
}
