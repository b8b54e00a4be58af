//! [`EventQueue`]: events pushed by listeners from any context, drained by the main loop.

use core::fmt;

use portable_atomic::{AtomicU32, Ordering};

use crate::event::{Event, EventRecord};

/// A fixed-capacity, multi-producer queue of breaker [`Event`]s: listeners push events into it
/// from any context (interrupt handlers included) and the main loop drains it later.
///
/// Listeners are plain `fn(&Event)` pointers, so the queue is a `static` the listener reaches by
/// name. The whole pattern is three lines:
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, Event, EventKind, EventQueue, ManualClock, State};
///
/// static EVENTS: EventQueue<16> = EventQueue::new();
/// fn to_queue(e: &Event) {
///     EVENTS.push(e);
/// }
///
/// static CLOCK: ManualClock = ManualClock::new();
/// static UPLINK: CircuitBreaker<&ManualClock> =
///     CircuitBreaker::new("uplink", Config::new().fail_max(1), &CLOCK).with_listener(to_queue);
///
/// let _ = UPLINK.call(|| Err::<(), _>("nak")); // may run in an interrupt handler
///
/// // Later, in the main loop:
/// for e in EVENTS.drain() {
///     if let EventKind::StateChange { from, to, .. } = e.kind {
///         assert_eq!((from, to), (State::Closed, State::Open));
///     }
/// }
/// assert_eq!(EVENTS.take_dropped(), 0);
/// ```
///
/// A listener may filter: `if matches!(e.kind, EventKind::StateChange { .. }) { EVENTS.push(e); }`
/// keeps only state changes, so a small queue is enough.
///
/// # Overflow policy: drop the newest, count it
/// A push into a full queue drops the event being pushed (the queue keeps the oldest ones) and
/// increments a saturating counter, read with [`dropped`](EventQueue::dropped) or read and reset
/// with [`take_dropped`](EventQueue::take_dropped). A push never waits, never allocates and never
/// panics, so a listener running in an interrupt handler cannot stall the breaker.
///
/// # Which queue, and how lock-free it is
/// Events come from every context that calls the breaker: thread mode and interrupt handlers of
/// any priority, so the queue has several producers. `heapless::spsc` allows one producer only;
/// this is `heapless::mpmc::Queue` (Dmitry Vyukov's bounded MPMC queue), which is safe with any
/// number of producers and consumers. Honest notes:
/// - **Not strictly lock-free.** A producer preempted between claiming a slot and filling it
///   hides that slot, and the slots after it, from the consumer until it resumes: `pop` returns
///   `None` and the drain stops early; nothing is lost, the next drain gets them. A consumer
///   preempted between claiming a slot and freeing it makes producers see "full" once the ring
///   comes round to that slot: those events are dropped and counted. Neither case spins or
///   blocks, which is what matters in an interrupt handler. heapless 0.9 marks
///   `mpmc::Queue::new` deprecated for exactly this reason (heapless issue 583); the two effects
///   are ones the overflow policy above already handles.
/// - **Atomics per target.** The queue indices are compare-and-swapped `usize`s. Native
///   (lock-free, and interrupt-safe through LDREX/STREX) on Cortex-M3/4/7/33, RISC-V with the A
///   extension, and every host. On thumbv6m and riscv32imc, which have no CAS, they go through
///   `portable-atomic` and the final binary's `critical-section` or `unsafe-assume-single-core`
///   choice: a few instructions with interrupts disabled, which cannot deadlock.
/// - **Indices are word-sized** (heapless's `mpmc_large` feature, enabled by this crate): with
///   the default 8-bit indices, a producer preempted while exactly 256 other pushes and pops run
///   could complete a stale compare-and-swap (ABA); with 32-bit indices that takes 2^32.
/// - **Order.** First in, first out by the order in which pushes claimed slots. A listener runs
///   after the change it reports, so an interrupt's event can be queued before an event of the
///   thread it interrupted that happened just before.
/// - **Drain from one context** (the main loop, or one task). Several consumers are memory-safe,
///   but each sees only part of the stream.
/// - **Capacity** `N` is a power of two, at least 2 (a compile-time error otherwise). Each slot
///   holds one [`EventRecord`] (an event without its borrowed error) and a `usize` sequence
///   number: 40 bytes per slot on thumbv7m (the record is 32).
pub struct EventQueue<const N: usize> {
    queue: heapless::mpmc::Queue<EventRecord, N>,
    dropped: AtomicU32,
}

impl<const N: usize> EventQueue<N> {
    /// An empty queue; `const`, so it can initialise a `static`.
    ///
    /// A capacity that is not a power of two, or below 2, is a compile-time error:
    ///
    /// ```compile_fail
    /// use atomic_breaker::EventQueue;
    /// static EVENTS: EventQueue<12> = EventQueue::new();
    /// ```
    pub const fn new() -> Self {
        EventQueue {
            // Deprecated upstream for the progress caveats the module docs spell out.
            #[allow(deprecated)]
            queue: heapless::mpmc::Queue::new(),
            dropped: AtomicU32::new(0),
        }
    }

    /// Pushes a copy of `event` without its borrowed error (an [`EventRecord`]: the queue
    /// outlives the call that lent it). Returns `false`, and counts a drop, when the
    /// queue is full.
    ///
    /// Never waits, never panics: callable from a listener in any context.
    pub fn push(&self, event: &Event) -> bool {
        if self.queue.enqueue(EventRecord::new(event)).is_ok() {
            return true;
        }
        // Saturating; the closure is pure and may run more than once.
        let _ = self
            .dropped
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        false
    }

    /// Takes the oldest event, or `None` when the queue is empty (or, briefly, when the next
    /// slot's producer was preempted before filling it; see the module docs).
    pub fn pop(&self) -> Option<Event<'static>> {
        self.queue.dequeue().map(|r| r.event())
    }

    /// Takes events until the queue is empty. Events pushed while draining (for example by an
    /// interrupt handler) are taken too.
    pub fn drain(&self) -> impl Iterator<Item = Event<'static>> + '_ {
        core::iter::from_fn(move || self.pop())
    }

    /// Events dropped because the queue was full, since creation or the last
    /// [`take_dropped`](Self::take_dropped). Saturates at `u32::MAX`.
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Returns the dropped count and resets it to 0, atomically.
    pub fn take_dropped(&self) -> u32 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// The capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize> Default for EventQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for EventQueue<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventQueue")
            .field("capacity", &N)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use crate::state::State;
    use crate::{CircuitBreaker, Config, ManualClock};
    use core::time::Duration;

    fn ev(kind: EventKind<'_>) -> Event<'_> {
        Event { name: "t", kind }
    }

    #[test]
    fn fifo_then_drop_newest_and_count() {
        let q: EventQueue<4> = EventQueue::new();
        assert_eq!(q.capacity(), 4);
        let kinds = [
            EventKind::BeforeCall,
            EventKind::Success { failures: 0 },
            EventKind::Failure {
                failures: 3,
                error: None,
            },
            EventKind::Ignored { error: None },
        ];
        // The queue keeps no borrowed error: pushed with one, popped without.
        let err = "timeout";
        for k in kinds {
            let k = match k {
                EventKind::Failure { failures, .. } => EventKind::Failure {
                    failures,
                    error: Some(&err),
                },
                other => other,
            };
            assert!(q.push(&ev(k)));
        }
        assert!(!q.push(&ev(EventKind::BeforeCall)));
        assert!(!q.push(&ev(EventKind::Success { failures: 0 })));
        assert_eq!(q.dropped(), 2);
        let got: Vec<_> = q.drain().map(|e| e.kind).collect();
        assert_eq!(got, kinds, "the oldest events are kept, in order");
        assert_eq!(q.pop(), None);
        assert_eq!(q.take_dropped(), 2);
        assert_eq!(q.dropped(), 0);
        // Room again after draining.
        assert!(q.push(&ev(EventKind::Success { failures: 0 })));
        assert_eq!(
            q.pop().map(|e| e.kind),
            Some(EventKind::Success { failures: 0 })
        );
    }

    #[test]
    fn the_drop_counter_saturates() {
        let q: EventQueue<2> = EventQueue::new();
        q.dropped.store(u32::MAX - 1, Ordering::Relaxed);
        q.push(&ev(EventKind::Success { failures: 0 }));
        q.push(&ev(EventKind::Success { failures: 0 }));
        q.push(&ev(EventKind::Success { failures: 0 }));
        q.push(&ev(EventKind::Success { failures: 0 }));
        assert_eq!(q.dropped(), u32::MAX);
    }

    static EVENTS: EventQueue<16> = EventQueue::new();
    fn to_queue(e: &Event) {
        if matches!(e.kind, EventKind::StateChange { .. }) {
            EVENTS.push(e);
        }
    }
    static CLOCK: ManualClock = ManualClock::new();
    static B: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
        "uplink",
        Config::new()
            .fail_max(2)
            .reset_timeout(Duration::from_millis(100)),
        &CLOCK,
    )
    .with_listener(to_queue);

    #[test]
    fn a_static_listener_feeds_a_static_queue() {
        let _ = B.call(|| Err::<(), _>(()));
        let _ = B.call(|| Err::<(), _>(()));
        CLOCK.advance_ms(100);
        let _ = B.call(|| Ok::<_, ()>(()));
        let changes: Vec<_> = EVENTS
            .drain()
            .map(|e| match e.kind {
                EventKind::StateChange {
                    from,
                    to,
                    failures,
                    retry_after,
                } => {
                    if to == State::Open {
                        assert_eq!(
                            (failures, retry_after),
                            (2, Some(Duration::from_millis(100)))
                        );
                    }
                    (e.name, from, to)
                }
                other => panic!("filtered out: {other:?}"),
            })
            .collect();
        assert_eq!(
            changes,
            [
                ("uplink", State::Closed, State::Open),
                ("uplink", State::Open, State::HalfOpen),
                ("uplink", State::HalfOpen, State::Closed),
            ]
        );
        assert_eq!(EVENTS.dropped(), 0);
    }

    #[test]
    fn many_producers_one_consumer_lose_nothing_uncounted() {
        static Q: EventQueue<8> = EventQueue::new();
        const PER_THREAD: u32 = 20_000;
        let mut drained = 0u32;
        let done = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..PER_THREAD {
                        Q.push(&ev(EventKind::Success { failures: 0 }));
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            while done.load(std::sync::atomic::Ordering::SeqCst) < 3 {
                drained += Q.drain().count() as u32;
            }
        });
        drained += Q.drain().count() as u32;
        assert_eq!(drained + Q.dropped(), 3 * PER_THREAD);
        assert!(drained > 0);
    }
}
