//! Async on a microcontroller: an `embassy-executor` task awaits calls through `call_async` on a
//! `static` breaker timed by `EmbassyClock`, over an embassy time driver written here on
//! SysTick, through a trip (by a failure the SysTick interrupt handler reports on the same
//! breaker), the open period (awaited with `embassy_time::Timer`), a half-open trial held across
//! an `.await` while a rival call is rejected, and recovery. The interrupt handler reads the
//! breaker on every tick and counts how long it saw it open. Exits through semihosting: 0 when
//! every check passes.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::{Poll, Waker};
use core::time::Duration;
use portable_atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use atomic_breaker::{CircuitBreaker, Config, EmbassyClock, Error, Event, EventKind, State};
use cortex_m::peripheral::scb::VectActive;
use cortex_m::peripheral::SCB;
use cortex_m_rt::exception;
use cortex_m_semihosting::{debug, hprintln};
use critical_section::Mutex;
use embassy_executor::Spawner;
use embassy_time::{Instant, Timer};
use embassy_time_queue_utils::Queue;
use firmware::check;
use panic_semihosting as _;

// ---- the time driver: SysTick every 1 ms, embassy ticks at its default 1 MHz ----

/// Driver ticks (µs) per SysTick period.
const TICKS_PER_PERIOD: u64 = 1_000;
/// Where the driver's clock starts: 2^42 µs (51 days), so the conversion's high half is live.
const START_TICKS: u64 = 1 << 42;
/// The driver's tick count. Written only by the SysTick handler.
static NOW: AtomicU64 = AtomicU64::new(START_TICKS);

/// An embassy time driver: time advances one period per SysTick interrupt; wake-ups are kept
/// in embassy's timer queue and fired by the same interrupt.
struct SysTickDriver {
    queue: Mutex<RefCell<Queue>>,
}

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        NOW.load(Ordering::Relaxed)
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            queue.schedule_wake(at, waker);
            // Wakes it at once if `at` has already passed.
            queue.next_expiration(self.now());
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    queue: Mutex::new(RefCell::new(Queue::new())),
});

// ---- the breaker and what the interrupt handler does with it ----

static STATE_CHANGES: AtomicU32 = AtomicU32::new(0);
/// Set when the breaker opened in an interrupt handler (the listener checks IPSR).
static OPENED_IN_HANDLER: AtomicBool = AtomicBool::new(false);

fn on_event(e: &Event) {
    if let EventKind::StateChange { to, .. } = e.kind {
        STATE_CHANGES.fetch_add(1, Ordering::Relaxed);
        if to == State::Open && SCB::vect_active() != VectActive::ThreadMode {
            OPENED_IN_HANDLER.store(true, Ordering::Relaxed);
        }
    }
}

static SENSOR: CircuitBreaker<EmbassyClock> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(50)),
    EmbassyClock::new(),
)
.with_listener(on_event);

/// The task asks the SysTick handler to report one failed call on the breaker.
static FAIL_FROM_HANDLER: AtomicBool = AtomicBool::new(false);
/// The handler's call returned a failure that tripped the breaker.
static HANDLER_TRIPPED: AtomicBool = AtomicBool::new(false);
/// SysTick periods in which the handler saw the breaker Open.
static OPEN_PERIODS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    let now = NOW.load(Ordering::Relaxed) + TICKS_PER_PERIOD;
    NOW.store(now, Ordering::Relaxed);
    critical_section::with(|cs| {
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });

    if SENSOR.state() == State::Open {
        OPEN_PERIODS.fetch_add(1, Ordering::Relaxed);
    }
    if FAIL_FROM_HANDLER.swap(false, Ordering::Relaxed) {
        let r = SENSOR.call(|| Err::<(), u8>(0xEE));
        HANDLER_TRIPPED.store(matches!(r, Err(e) if e.tripped()), Ordering::Relaxed);
    }
}

// ---- the task ----

/// Times the sensor actually ran (a rejected call must not run it).
static READS: AtomicU32 = AtomicU32::new(0);

/// A sensor read that takes `ms` of embassy time.
async fn read_sensor(ok: bool, ms: u64) -> Result<u32, u8> {
    READS.fetch_add(1, Ordering::Relaxed);
    Timer::after_millis(ms).await;
    if ok {
        Ok(42)
    } else {
        Err(7)
    }
}

/// Polls both futures until both are done (a minimal `join`, polling `a` first).
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

fn ms() -> u64 {
    SENSOR.clock().now_ms()
}

#[embassy_executor::task]
async fn sensor_task() {
    let clock = SENSOR.clock();
    hprintln!(
        "async: embassy-executor task, EmbassyClock over a SysTick time driver at {} Hz",
        embassy_time_driver::TICK_HZ
    );
    let t = clock.ticks();
    check!(
        t >= START_TICKS && EmbassyClock::ticks_to_ms(t) == t / 1_000,
        "{}",
        t
    );
    // The two clocks are read one after the other, so a millisecond may pass between them:
    // ours must fall between two readings of embassy's (it failed once on QEMU's Cortex-M0 when
    // compared for equality with one reading).
    let before = Instant::now().as_millis();
    let ours = clock.now_ms();
    let after = Instant::now().as_millis();
    check!(
        before <= ours && ours <= after && after - before <= 1,
        "agrees with embassy_time::Instant: {} <= {} <= {}",
        before,
        ours,
        after
    );

    // Closed: an awaited call succeeds.
    let t0 = ms();
    check!(SENSOR.call_async(|| read_sensor(true, 3)).await == Ok(42));
    check!(
        ms() - t0 >= 3,
        "the call awaited the timer: {} ms",
        ms() - t0
    );
    check!(SENSOR.state() == State::Closed);

    // Two awaited failures: still Closed (fail_max is 3).
    for _ in 0..2 {
        let r = SENSOR.call_async(|| read_sensor(false, 2)).await;
        check!(matches!(
            r,
            Err(Error::Failed {
                error: 7,
                tripped: false
            })
        ));
    }
    check!(SENSOR.state() == State::Closed && SENSOR.fail_counter() == 2);

    // The third failure comes from the interrupt handler, on the same breaker: it trips it.
    FAIL_FROM_HANDLER.store(true, Ordering::Relaxed);
    let mut waited = 0;
    while FAIL_FROM_HANDLER.load(Ordering::Relaxed) {
        check!(waited < 10, "the handler did not run");
        Timer::after_millis(1).await;
        waited += 1;
    }
    check!(
        HANDLER_TRIPPED.load(Ordering::Relaxed),
        "the handler's failure tripped it"
    );
    check!(
        OPENED_IN_HANDLER.load(Ordering::Relaxed),
        "opened in handler mode"
    );
    check!(SENSOR.state() == State::Open);
    let opened = SENSOR.opened_at().unwrap_or(0);

    // Open: the call is rejected without running, with the time until a retry.
    let reads = READS.load(Ordering::Relaxed);
    let retry = match SENSOR.call_async(|| read_sensor(true, 1)).await {
        Err(Error::Rejected(r)) => r.retry_after,
        _ => firmware::fail("expected a rejection while Open"),
    };
    check!(
        READS.load(Ordering::Relaxed) == reads,
        "a rejected call did not run"
    );
    let Some(retry) = retry else {
        firmware::fail("a rejection while Open says when to retry")
    };
    check!(
        retry <= Duration::from_millis(50) && retry >= Duration::from_millis(40),
        "{:?}",
        retry
    );

    // Await the open period on embassy's timer: still rejected 2 ms before its end.
    Timer::at(Instant::from_millis(opened + 48)).await;
    check!(matches!(
        SENSOR.call_async(|| read_sensor(true, 1)).await,
        Err(Error::Rejected(_))
    ));
    Timer::at(Instant::from_millis(opened + 50)).await;
    check!(
        (50..=55).contains(&(ms() - opened)),
        "{} ms open",
        ms() - opened
    );

    // HalfOpen: one trial, held across an `.await` for 5 ms; a rival call meanwhile is rejected.
    let (trial, rival) = join(
        SENSOR.call_async(|| read_sensor(true, 5)),
        SENSOR.call_async(|| read_sensor(true, 1)),
    )
    .await;
    check!(trial == Ok(42), "the trial ran and succeeded");
    check!(
        matches!(rival, Err(Error::Rejected(_))),
        "the rival was rejected during the trial"
    );
    check!(SENSOR.state() == State::Closed, "recovered");
    check!(
        STATE_CHANGES.load(Ordering::Relaxed) == 3,
        "Closed -> Open -> HalfOpen -> Closed"
    );

    // The handler saw it Open for the open period, in SysTick periods (1 ms each).
    let open = OPEN_PERIODS.load(Ordering::Relaxed);
    check!(
        (45..=60).contains(&open),
        "the handler saw Open for {} ms",
        open
    );
    check!(
        READS.load(Ordering::Relaxed) == reads + 1,
        "only the trial ran"
    );

    hprintln!("async: trip from the handler, {} ms open, trial across an await, closed: all checks passed", open);
    debug::exit(debug::EXIT_SUCCESS);
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        firmware::fail("core peripherals")
    };
    // 12 MHz core clock on both QEMU boards: 12 000 cycles per 1 ms period.
    firmware::start_systick(&mut cp.SYST, 12_000 - 1);
    match sensor_task() {
        Ok(token) => spawner.spawn(token),
        Err(_) => firmware::fail("spawn"),
    }
}
