//! The no-panic proof: this firmware calls every public operation of the breaker (and of the
//! embedded-time and embassy clocks' conversions and the event queue), including the future,
//! iterator and stream guards (each polled or pulled past its end, and a guarded future polled again after it
//! resolved), with inputs the optimiser cannot see through, and its panic handler calls a
//! function that does not exist. Built in release
//! (`opt-level = "s"`, LTO), it links only if no panic path survives in any of those
//! operations; one that does leaves a call to the panic handler, and the link fails with
//! `undefined symbol: atomic_breaker_has_a_panic_path`.
//!
//! `--features prove-the-check-fails` adds one call that can panic (`CircuitBreaker::new` at run
//! time with a configuration the compiler cannot check, which panics if it is invalid), to show
//! that the check catches it.
//!
//! It also runs: `cargo run --release --bin nopanic` exits 0 in QEMU.
#![no_std]
#![no_main]

use core::future::{poll_fn, Future};
use core::hint::black_box;
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Clock, Config, EmbassyClock, EmbeddedTimeClock, Error, Event,
    EventQueue, ManualClock, Outcome, State,
};
use cortex_m_rt::entry;
use firmware::SysTickClock;

static EVENTS: EventQueue<8> = EventQueue::new();
fn to_queue(e: &Event) {
    EVENTS.push(e);
}
fn other_listener(e: &Event) {
    black_box(e);
}

/// The typical firmware breaker: `static`, SysTick time through the embedded-time adapter,
/// a queue listener.
static UPLINK: CircuitBreaker<firmware::Clock> = CircuitBreaker::new(
    "uplink",
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(20)),
    EmbeddedTimeClock::new(SysTickClock),
)
.with_listener(to_queue)
.with_listener(atomic_breaker::defmt_state_logger);

static MANUAL: ManualClock = ManualClock::new();

/// A tiny generator, so that every branch below is taken at run time.
struct Lcg(u32);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0 >> 8
    }
}

fn sink<T>(x: T) {
    black_box(x);
}

/// A future that is pending `n` times, then resolves to `v`.
struct Later {
    n: u32,
    v: Result<u32, u32>,
}
impl Future for Later {
    type Output = Result<u32, u32>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        if self.n == 0 {
            Poll::Ready(self.v)
        } else {
            self.n -= 1;
            Poll::Pending
        }
    }
}

/// A stream of `n` results, pending every third poll.
struct Items {
    n: u32,
    polls: u32,
}
impl futures_core::Stream for Items {
    type Item = Result<u32, u32>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(3) {
            return Poll::Pending;
        }
        if self.n == 0 {
            return Poll::Ready(None);
        }
        self.n -= 1;
        Poll::Ready(Some(if self.n.is_multiple_of(2) {
            Ok(self.n)
        } else {
            Err(self.n)
        }))
    }
}

/// Polls `fut` `polls` times (or until it resolves), then once more, past its end.
fn drive<F: Future>(fut: F, polls: u32) {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            sink(v);
            break;
        }
    }
    sink(fut.as_mut().poll(&mut cx).is_pending());
}

/// Polls `s` for up to `polls` items, past its end; `finish` ends a run guard early.
fn drain<S: futures_core::Stream>(s: Pin<&mut S>, polls: u32) {
    let mut s = s;
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        sink(s.as_mut().size_hint());
        match s.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => sink(item),
            Poll::Ready(None) => sink(0u8),
            Poll::Pending => sink(1u8),
        }
    }
}

fn classify(r: &Result<u32, u32>) -> Outcome {
    match r {
        Ok(_) => Outcome::Success,
        Err(e) if e % 3 == 0 => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    }
}

/// The future, iterator and stream guards, chosen by `r`.
fn exercise_guards<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>, rng: &mut Lcg) {
    use futures_core::{FusedFuture, FusedStream};
    let r = rng.next();
    let n = rng.next() % 4;
    let v = if rng.next().is_multiple_of(2) {
        Ok(r)
    } else {
        Err(r)
    };
    let polls = rng.next() % 7;
    match r % 8 {
        0 => drive(b.call_async(|| Later { n, v }), polls),
        1 => drive(b.call_async_with(classify, || Later { n, v }), polls),
        2 => drive(b.guard(Later { n, v }), polls),
        3 => {
            let mut g = pin!(b.guard_with(classify, Later { n, v }));
            sink(g.is_terminated());
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..polls {
                sink(g.as_mut().poll(&mut cx));
            }
            sink(g.is_terminated());
        }
        4 => {
            let items = (0..n + 2).map(|i| if i % 2 == 0 { Ok(i) } else { Err(i) });
            let mut it = b.guard_iter_with(classify, items);
            for _ in 0..polls {
                sink(it.size_hint());
                sink(it.next());
            }
            sink(it.into_inner().next());
        }
        5 => {
            let items = (0..n + 2).map(|i| if i % 3 == 0 { Err(i) } else { Ok(i) });
            let mut run = b.guard_iter_run(items);
            for _ in 0..polls {
                sink(run.size_hint());
                sink(run.next());
            }
            sink(run.finish());
            sink(run.next());
        }
        6 => {
            let mut s = pin!(b.guard_stream_with(classify, Items { n, polls: 0 }));
            drain(s.as_mut(), polls + 2);
            sink(s.is_terminated());
        }
        _ => {
            let mut s = pin!(b.guard_stream_run(Items { n, polls: 0 }));
            drain(s.as_mut(), polls);
            sink(s.as_mut().finish());
            sink(s.is_terminated());
            drain(s, 2);
        }
    }
}

/// Every public operation of a breaker, chosen by `r`.
fn exercise<C: Clock, const L: usize>(b: &CircuitBreaker<C, L>, rng: &mut Lcg) {
    let r = rng.next();
    match r % 16 {
        0..=5 => match b.allow() {
            Ok(permit) => {
                sink(permit.is_trial());
                match rng.next() % 5 {
                    0 => sink(permit.success()),
                    1 => sink(permit.failure()),
                    2 => sink(permit.ignore()),
                    3 => sink(permit.report(black_box(Outcome::Success))),
                    _ => drop(permit),
                }
            }
            Err(rejected) => {
                sink(rejected.retry_after);
                sink(rejected.state.name());
            }
        },
        6 => {
            let ok = rng.next().is_multiple_of(2);
            let res = b.call(|| if ok { Ok(1u32) } else { Err(2u8) });
            if let Err(e) = &res {
                sink((e.is_rejected(), e.tripped(), e.inner(), e.retry_after()));
            }
            sink(res.map_err(Error::into_inner));
        }
        7 => {
            let n = rng.next();
            let res = b.call_with(
                |r: &Result<u32, u32>| match r {
                    Ok(_) => Outcome::Success,
                    Err(e) if e % 3 == 0 => Outcome::Ignored,
                    Err(_) => Outcome::Failure,
                },
                || if n.is_multiple_of(2) { Ok(n) } else { Err(n) },
            );
            sink(res);
        }
        8 => match rng.next() % 6 {
            0 => sink(b.open()),
            1 => sink(b.close()),
            2 => sink(b.half_open()),
            3 => sink(b.trip_for(Duration::from_millis(u64::from(rng.next())))),
            4 => sink(b.force_open()),
            _ => sink(b.disable()),
        },
        9 => {
            sink(b.set_fail_max(rng.next() % 200));
            sink(b.set_success_threshold(rng.next() % 200));
            sink(b.set_reset_timeout(Duration::from_millis(u64::from(rng.next()))));
            sink((b.fail_max(), b.success_threshold(), b.reset_timeout()));
            sink((b.half_open_max_calls(), b.name(), b.clock().now_ms()));
        }
        10 => {
            let s = b.snapshot();
            sink(s);
            sink((
                b.state(),
                b.fail_counter(),
                b.success_counter(),
                b.trial_calls(),
            ));
            sink((b.opened_at(), b.retry_after(), b.state().is_open()));
            sink((b.listener_count(), b.listener_panics()));
        }
        11 => {
            if let Ok(id) = b.add_listener(other_listener) {
                sink(b.remove_listener(id));
                sink(b.remove_listener(id));
            }
        }
        13 => {
            // `call_async`, polled by hand with a no-op waker: the inner future is ready at
            // once, or pending once (and the guard is dropped there, with its permit).
            let mut cx = Context::from_waker(Waker::noop());
            let v = rng.next();
            let mut fut = pin!(b.call_async(|| {
                let mut polled = false;
                poll_fn(move |_| match v % 3 {
                    0 => Poll::Ready(Ok(v)),
                    1 => Poll::Ready(Err(v)),
                    _ if polled => Poll::Ready(Ok(0)),
                    _ => {
                        polled = true;
                        Poll::Pending
                    }
                })
            }));
            sink(fut.as_mut().poll(&mut cx));
            sink(EmbassyClock::ticks_to_ms(
                u64::from(v) << 31 | u64::from(rng.next()),
            ));
        }
        12 if rng.next().is_multiple_of(2) => exercise_guards(b, rng),
        12 => {
            sink(Outcome::of(&black_box(Ok::<u8, u8>(1))));
            sink(black_box(State::HalfOpen).name());
        }
        _ => {
            for e in EVENTS.drain() {
                sink(e);
            }
            sink((EVENTS.dropped(), EVENTS.take_dropped(), EVENTS.capacity()));
            sink(EVENTS.pop());
        }
    }
}

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        firmware::fail_quietly()
    };
    firmware::start_systick(&mut cp.SYST, 12_000 - 1);
    let mut rng = Lcg(black_box(12_345));

    // A breaker built at run time from a configuration the optimiser cannot see, so that no
    // configuration value is folded into the code paths.
    let config = Config::new()
        .fail_max(black_box(4))
        .reset_timeout(black_box(Duration::from_millis(10)))
        .success_threshold(black_box(2))
        .half_open_max_calls(black_box(3))
        .trial_lease(black_box(Duration::from_millis(50)))
        .backoff(black_box(
            Backoff::exponential(Duration::from_secs(1)).jitter_percent(20),
        ));
    sink(config.validate());
    let local = match CircuitBreaker::<&ManualClock, 2>::try_new("local", config, &MANUAL) {
        Ok(b) => b,
        Err(e) => {
            sink(e.message());
            firmware::fail_quietly()
        }
    };

    sink(local.add_listener(to_queue));

    #[cfg(feature = "prove-the-check-fails")]
    let _checked = CircuitBreaker::<&ManualClock>::new("panics if invalid", config, &MANUAL);

    for _ in 0..black_box(20_000) {
        exercise(&UPLINK, &mut rng);
        exercise(&local, &mut rng);
        MANUAL.advance_ms(u64::from(rng.next() % 4));
        if rng.next().is_multiple_of(64) {
            sink(MANUAL.set(black_box(5)));
            MANUAL.advance(Duration::from_micros(u64::from(rng.next() % 3_000)));
        }
        let clock = UPLINK.clock();
        sink((
            clock.ticks(),
            clock.now_ms(),
            clock.errors(),
            clock.last_ticks(),
        ));
        sink(firmware::Clock::ticks_to_ms(u64::from(rng.next()) << 20));
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[cortex_m_rt::exception]
fn SysTick() {
    firmware::on_systick();
}

#[cfg(not(feature = "locate-panics"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "C" {
        // Defined nowhere: any reachable panic makes the link fail, naming this symbol.
        fn atomic_breaker_has_a_panic_path() -> !;
    }
    // SAFETY: never called in a binary that links: that is the point.
    unsafe { atomic_breaker_has_a_panic_path() }
}

#[cfg(feature = "locate-panics")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
