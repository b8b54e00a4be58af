//! A breaker that survives a reset, under QEMU: a `static` breaker whose state-change listener
//! writes its `SavedState` to no-init RAM (cortex-m-rt's `.uninit` section), restored at boot by
//! one call. The firmware requests system resets (`SCB::sys_reset`, SYSRESETREQ); QEMU resets
//! the core, which runs again from the reset vector with a clock that restarts, while RAM keeps
//! its contents (QEMU started without `-no-reboot`). A boot record, also in `.uninit` with its
//! own magic, says which phase this boot is:
//!
//! 0. cold boot: the section holds whatever RAM held (QEMU: zeros), rejected, so the breaker
//!    starts Closed; the firmware writes garbage into it (a valid encoding with one bit
//!    flipped) and resets;
//! 1. the garbage is rejected with its typed error (`Checksum`) and the breaker starts Closed;
//!    a dead sensor trips it (the listener saves Open with its 100 ms); 30 ms later, a reset
//!    (standing in for the watchdog);
//! 2. restored Open: it rejects for the rest of its period (served in full: no RTC here, so
//!    the 30 ms before the reset are not known), without touching the sensor; then one trial
//!    runs and closes it. It trips again, and a trial is admitted and hangs: reset mid-trial;
//! 3. restored Open for the rest of that trial's lease (its outcome is unknown), then one trial
//!    runs and recovers. Exit 0.
//!
//! Exits through semihosting with status 1 on any failed check (a hang: CI's `timeout`).
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU32 as CoreU32, Ordering};
use core::time::Duration;

use atomic_breaker::{
    CircuitBreaker, Config, EmbeddedTimeClock, Event, RestoreError, SavedState, State,
};
use cortex_m::peripheral::SCB;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use firmware::{check, wait_ticks, Clock, SysTickClock};
use panic_semihosting as _;

/// The breaker's saved state: no-init RAM, which the startup code neither loads nor zeroes,
/// so it keeps its contents across a reset (and holds garbage after a cold boot).
#[link_section = ".uninit.BREAKER_SAVED"]
static mut SAVED: MaybeUninit<[u8; SavedState::LEN]> = MaybeUninit::uninit();

/// Which phase this boot is: `[BOOT_MAGIC, phase]`, also in no-init RAM.
#[link_section = ".uninit.BOOT_RECORD"]
static mut BOOT: MaybeUninit<[u32; 2]> = MaybeUninit::uninit();
const BOOT_MAGIC: u32 = 0xB007_5AFE;

const PERIOD_MS: u64 = 100;
const LEASE_MS: u64 = 60;

fn read_saved() -> [u8; SavedState::LEN] {
    // SAFETY: `SAVED` is plain RAM that only this thread touches (the listener runs on it too,
    // never from an interrupt). Its bytes may be anything after a cold boot, which is why it is
    // a `MaybeUninit` read with a volatile load (any bit pattern is a valid `[u8; N]`, and the
    // compiler cannot assume what the previous life wrote) and decoded only through the
    // checked `SavedState::from_bytes`.
    unsafe {
        addr_of!(SAVED)
            .cast::<[u8; SavedState::LEN]>()
            .read_volatile()
    }
}

fn write_saved(bytes: [u8; SavedState::LEN]) {
    // SAFETY: as in `read_saved`; a volatile store, so it happens before any reset.
    unsafe {
        addr_of_mut!(SAVED)
            .cast::<[u8; SavedState::LEN]>()
            .write_volatile(bytes)
    }
}

fn read_boot() -> [u32; 2] {
    // SAFETY: as in `read_saved`, for the boot record.
    unsafe { addr_of!(BOOT).cast::<[u32; 2]>().read_volatile() }
}

fn write_boot(phase: u32) {
    // SAFETY: as in `write_saved`, for the boot record.
    unsafe {
        addr_of_mut!(BOOT)
            .cast::<[u32; 2]>()
            .write_volatile([BOOT_MAGIC, phase])
    }
}

/// The listener: every state change saves the breaker's state. It may call back into the
/// breaker (listeners run after the change, outside any critical section).
fn save(_: &Event) {
    SAVES.store(SAVES.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    write_saved(SENSOR.saved_state().to_bytes());
}
static SAVES: CoreU32 = CoreU32::new(0);

static SENSOR: CircuitBreaker<Clock> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(PERIOD_MS))
        .trial_lease(Duration::from_millis(LEASE_MS)),
    EmbeddedTimeClock::new(SysTickClock),
)
.with_listener(save);

/// Sensor reads that actually ran.
static READS: CoreU32 = CoreU32::new(0);
fn read_sensor(alive: bool) -> Result<u32, &'static str> {
    READS.store(READS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    if alive {
        Ok(42)
    } else {
        Err("bus hang")
    }
}

/// What a firmware does at boot: one call, and garbage is simply not restored.
fn restore_at_boot() -> Result<SavedState, RestoreError> {
    let saved = SavedState::from_bytes(&read_saved())?;
    SENSOR.restore(saved, None);
    Ok(saved)
}

fn reset(phase: u32) -> ! {
    write_boot(phase);
    hprintln!("reset: requesting a system reset into phase {}", phase);
    SCB::sys_reset()
}

/// Waits for the open period to end, checking every call meanwhile is rejected without
/// running the sensor.
fn rejects_until_it_ends(limit_ms: u64) {
    let reads = READS.load(Ordering::Relaxed);
    let mut rejected = 0;
    while let Some(left) = SENSOR.retry_after().filter(|d| !d.is_zero()) {
        check!(left <= Duration::from_millis(limit_ms), "{:?} left", left);
        check!(SENSOR.call(|| read_sensor(true)).is_err());
        rejected += 1;
        cortex_m::asm::wfi();
    }
    check!(
        READS.load(Ordering::Relaxed) == reads,
        "a rejected call ran"
    );
    check!(rejected > 10, "only {} rejections", rejected);
}

/// The period is over: exactly one trial runs and its success closes the breaker.
fn one_trial_recovers() {
    let reads = READS.load(Ordering::Relaxed);
    check!(SENSOR.call(|| read_sensor(true)) == Ok(42));
    check!(READS.load(Ordering::Relaxed) == reads + 1);
    check!(SENSOR.state() == State::Closed);
    check!(SavedState::from_bytes(&read_saved()) == Ok(SavedState::CLOSED));
}

#[entry]
fn main() -> ! {
    let mut cp = cortex_m::Peripherals::take().unwrap_or_else(|| firmware::fail("peripherals"));
    firmware::start_systick(&mut cp.SYST, 12_000 - 1);
    // The clock restarted with the core: `.data` (the tick counter, the breaker's clock) was
    // initialised again by the reset handler.
    check!(firmware::elapsed() < 5, "the clock did not restart");
    let [magic, phase] = read_boot();
    let phase = if magic == BOOT_MAGIC { phase } else { 0 };
    let restored = restore_at_boot();

    match phase {
        0 => {
            hprintln!("phase 0: cold boot, saved state {:?}", restored.err());
            check!(restored.is_err(), "a cold boot's RAM restored a state");
            check!(SENSOR.state() == State::Closed);
            // Garbage for the next boot: a valid encoding with one bit flipped.
            let mut garbage = SavedState::new(State::Open, 3, 0, Duration::from_secs(60))
                .unwrap_or(SavedState::CLOSED)
                .to_bytes();
            garbage[9] ^= 0x10;
            write_saved(garbage);
            reset(1)
        }
        1 => {
            hprintln!("phase 1: garbage in no-init RAM: {:?}", restored.err());
            check!(restored == Err(RestoreError::Checksum));
            check!(SENSOR.state() == State::Closed);
            for _ in 0..3 {
                check!(SENSOR.call(|| read_sensor(false)).is_err());
            }
            check!(SENSOR.state() == State::Open);
            let saved = SavedState::from_bytes(&read_saved());
            check!(saved.map(|s| (s.state(), s.count())) == Ok((State::Open, 3)));
            // Read by the listener just after the trip: the whole period, within a tick.
            let left = saved.map(|s| s.remaining_ms()).unwrap_or(0);
            check!(left + 2 >= PERIOD_MS && left <= PERIOD_MS, "{} ms", left);
            hprintln!(
                "phase 1: tripped, saved {:?}; the sensor hangs the bus",
                saved
            );
            wait_ticks(30);
            reset(2)
        }
        2 => {
            hprintln!("phase 2: restored {:?}", restored);
            check!(restored.map(|s| s.state()) == Ok(State::Open));
            check!(SENSOR.state() == State::Open);
            check!(SENSOR.fail_counter() == 3);
            // No RTC: the time left at the save is served in full, whatever ran before the reset.
            let left = restored.map(|s| s.remaining()).unwrap_or(Duration::ZERO);
            // Counted from the restore, on the clock that restarted at boot.
            let r = SENSOR.retry_after().unwrap_or(Duration::MAX);
            let since_boot = Duration::from_millis(u64::from(firmware::elapsed()) + 1);
            check!(r <= left && r + since_boot >= left, "{:?} of {:?}", r, left);
            check!(
                SAVES.load(Ordering::Relaxed) == 1,
                "the restore's event saved"
            );
            rejects_until_it_ends(PERIOD_MS);
            // Rejected from boot until exactly the saved time left had passed on the new clock.
            let ticks = u64::from(firmware::elapsed());
            let left_ms = left.as_millis() as u64;
            check!(ticks >= left_ms && ticks < left_ms + 10, "{} ticks", ticks);
            one_trial_recovers();
            hprintln!(
                "phase 2: rejected for {} ms after the reset, one trial, Closed",
                ticks
            );
            // Trip again; the trial hangs the bus.
            for _ in 0..3 {
                check!(SENSOR.call(|| read_sensor(false)).is_err());
            }
            wait_ticks(PERIOD_MS as u32);
            let trial = SENSOR.allow();
            check!(trial.is_ok() && SENSOR.state() == State::HalfOpen);
            let saved = SavedState::from_bytes(&read_saved());
            check!(saved.map(|s| s.state()) == Ok(State::HalfOpen));
            wait_ticks(10);
            hprintln!("phase 2: a trial is in flight and hangs");
            reset(3)
        }
        3 => {
            hprintln!("phase 3: restored {:?}", restored);
            // Saved at the change to HalfOpen: the trial's whole lease.
            let lease = restored.map(|s| (s.state(), s.remaining_ms()));
            check!(
                matches!(lease, Ok((State::HalfOpen, ms)) if ms + 2 >= LEASE_MS && ms <= LEASE_MS),
                "{:?}",
                lease
            );
            check!(
                SENSOR.state() == State::Open,
                "a trial's unknown outcome waits out its lease"
            );
            rejects_until_it_ends(LEASE_MS);
            one_trial_recovers();
            hprintln!("phase 3: the lease passed, one trial, Closed");
            hprintln!("reset: all phases passed");
            debug::exit(debug::EXIT_SUCCESS);
            loop {
                cortex_m::asm::bkpt();
            }
        }
        _ => firmware::fail("unknown phase"),
    }
}

#[exception]
fn SysTick() {
    firmware::on_systick();
}
