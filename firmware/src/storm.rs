//! The breaker used at the same time from thread mode and from the SysTick interrupt handler.
//!
//! Thread mode hammers a `static` breaker (admit, report, trip, half-open trials, monitoring)
//! and drains its event queue; every SysTick interrupt runs two more calls on the same breaker,
//! preempting thread mode wherever it happens to be, including inside the breaker's atomic
//! updates of its 64-bit state word and of the clock. With the default `portable-atomic`
//! fallback on Cortex-M3/4/7 that deadlocks (the handler spins on a seqlock that thread mode
//! holds); with `unsafe-assume-single-core` (thumbv7m) or `critical-section` (thumbv6m) it must
//! finish, and the counts must add up.

use core::sync::atomic::{AtomicBool, AtomicU32 as CoreU32, Ordering};
use core::time::Duration;

use atomic_breaker::{
    CircuitBreaker, Config, EmbeddedTimeClock, Event, EventKind, EventQueue, State,
};
use portable_atomic::AtomicU32;

use crate::{Clock, SysTickClock};

/// Trips after 2 consecutive failures; the open period is zero, so the next call is a trial;
/// one trial at a time, so an interrupt arriving during a thread-mode trial is rejected.
pub static SHARED: CircuitBreaker<Clock> = CircuitBreaker::new(
    "shared",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::ZERO)
        .half_open_max_calls(1),
    EmbeddedTimeClock::new(SysTickClock),
)
.with_listener(count_event)
.with_listener(queue_event);

/// Events from both contexts, drained by thread mode every 64 calls. Small on purpose: it
/// overflows, and the drops must be counted.
pub static EVENTS: EventQueue<16> = EventQueue::new();

/// Every event the listeners saw (the ground truth the queue is checked against).
static EMITTED: AtomicU32 = AtomicU32::new(0);
/// State-change bookkeeping per state: entries and exits.
static ENTERED: [AtomicU32; 5] = [const { AtomicU32::new(0) }; 5];
static LEFT: [AtomicU32; 5] = [const { AtomicU32::new(0) }; 5];

static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Interrupts that ran the breaker; written only by the handler.
static ISR_RUNS: CoreU32 = CoreU32::new(0);
static ISR_ADMITTED: CoreU32 = CoreU32::new(0);

fn index(s: State) -> usize {
    match s {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
        State::ForcedOpen => 3,
        State::Disabled => 4,
    }
}

fn count_event(e: &Event) {
    EMITTED.fetch_add(1, Ordering::Relaxed);
    if let EventKind::StateChange { from, to, .. } = e.kind {
        LEFT[index(from)].fetch_add(1, Ordering::Relaxed);
        ENTERED[index(to)].fetch_add(1, Ordering::Relaxed);
    }
}

fn queue_event(e: &Event) {
    EVENTS.push(e);
}

/// One call: if admitted, "works" for `work` loop iterations, then reports a failure if `fail`.
fn one_call(fail: bool, work: u32) -> bool {
    match SHARED.allow() {
        Ok(permit) => {
            for _ in 0..work {
                cortex_m::asm::nop();
            }
            if fail {
                permit.failure();
            } else {
                permit.success();
            }
            true
        }
        Err(_) => false,
    }
}

/// The SysTick handler's share: two calls on the shared breaker while the storm is on.
pub fn on_systick() {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let n = ISR_RUNS.load(Ordering::Relaxed);
    let mut admitted = 0;
    for k in 0..2 {
        admitted += u32::from(one_call((n * 2 + k).is_multiple_of(3), 0));
    }
    ISR_ADMITTED.store(
        ISR_ADMITTED.load(Ordering::Relaxed) + admitted,
        Ordering::Relaxed,
    );
    ISR_RUNS.store(n + 1, Ordering::Relaxed);
}

/// What a storm did.
pub struct Report {
    pub isr_runs: u32,
    pub isr_admitted: u32,
    pub thread_calls: u32,
    pub thread_admitted: u32,
    pub events: u32,
    pub drained: u32,
    pub dropped: u32,
    pub trips: u32,
    pub rejected: u32,
}

/// Runs thread-mode calls until the interrupt handler has run `isr_runs` times, then checks
/// that nothing was lost or double-counted.
pub fn run(isr_runs: u32) -> Report {
    ACTIVE.store(true, Ordering::Relaxed);
    let mut thread_calls = 0u32;
    let mut thread_admitted = 0u32;
    let mut drained = 0u32;
    let mut reported = 0;
    while ISR_RUNS.load(Ordering::Relaxed) < isr_runs {
        // Progress, so that a hang shows where it stopped.
        let runs = ISR_RUNS.load(Ordering::Relaxed);
        if runs >= reported + 500 {
            reported = runs - runs % 500;
            cortex_m_semihosting::hprintln!("  ... {} interrupts so far", reported);
        }
        // Two failures in every four calls: a trip, then a trial that an interrupt may find
        // in flight (and be rejected).
        thread_admitted += u32::from(one_call(thread_calls % 4 < 2, 40));
        thread_calls += 1;
        if thread_calls.is_multiple_of(4) {
            // Monitoring from thread mode too: one load plus a clock read.
            let s = SHARED.snapshot();
            crate::check!(s.trial_calls <= 1);
            crate::check!(s.fail_counter <= 2);
        }
        if thread_calls.is_multiple_of(64) {
            drained += EVENTS.drain().count() as u32;
        }
    }
    ACTIVE.store(false, Ordering::Relaxed);
    drained += EVENTS.drain().count() as u32;

    let events = EMITTED.load(Ordering::Relaxed);
    let dropped = EVENTS.take_dropped();
    crate::check!(
        drained + dropped == events,
        "queue lost events: {} drained + {} dropped != {} emitted",
        drained,
        dropped,
        events
    );
    // Every state is entered as often as it is left, except the current one (and Closed was
    // the initial state, entered without an event).
    let now = SHARED.state();
    for s in [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
    ] {
        let i = index(s);
        let entered = ENTERED[i].load(Ordering::Relaxed) + u32::from(s == State::Closed);
        let left = LEFT[i].load(Ordering::Relaxed);
        crate::check!(
            entered == left + u32::from(s == now),
            "state {} entered {} times, left {} times, current {}",
            s.name(),
            entered,
            left,
            now.name()
        );
    }
    let isr_admitted = ISR_ADMITTED.load(Ordering::Relaxed);
    // Each admitted call emits BeforeCall and an outcome; each rejected one emits Rejected.
    let isr_calls = ISR_RUNS.load(Ordering::Relaxed) * 2;
    let changes: u32 = LEFT.iter().map(|n| n.load(Ordering::Relaxed)).sum();
    crate::check!(
        events
            == 2 * (thread_admitted + isr_admitted)
                + (thread_calls - thread_admitted)
                + (isr_calls - isr_admitted)
                + changes,
        "events {} do not match the calls",
        events
    );
    Report {
        isr_runs: ISR_RUNS.load(Ordering::Relaxed),
        isr_admitted,
        thread_calls,
        thread_admitted,
        events,
        drained,
        dropped,
        trips: ENTERED[index(State::Open)].load(Ordering::Relaxed),
        rejected: (thread_calls - thread_admitted) + (isr_calls - isr_admitted),
    }
}
