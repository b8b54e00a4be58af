//! A fixed-capacity, lock-free table of listener function pointers.
//!
//! Each slot holds a sequence number and a function pointer:
//!
//! | `seq` | meaning |
//! |---|---|
//! | `EMPTY` (0) | free |
//! | `BUSY` (`u32::MAX`) | claimed by an `add` that is writing the pointer |
//! | anything else | occupied; the value orders listeners by when they were added |
//!
//! `add` claims a free slot with a CAS `EMPTY -> BUSY`, then takes a sequence number from
//! `next_seq` (so a refused add, on a full table, consumes none), stores the pointer, then
//! publishes its sequence number (Release). `remove` takes a [`ListenerId`] (slot and sequence
//! number) and CASes that exact sequence number back to `EMPTY`, so a stale id cannot remove a
//! newer listener. Dispatch reads each slot's sequence number, its pointer (Acquire) and the
//! sequence number again; a slot that changed in between is skipped for that event. Listeners
//! are called in the order they were added (PyBreaker's list order), whatever slot they landed
//! in.
//!
//! # What a listener can rely on
//! - **Outcomes follow their `BeforeCall`**: the `BeforeCall` dispatch returns the highest
//!   sequence number it called; the permit keeps it, and the call's outcome goes only to
//!   listeners with a sequence number up to it. A listener added after the admission never
//!   gets that call's outcome. (The one exception is a race among several `add`s and the
//!   admission itself: an `add` still in progress, holding a lower number than an `add` that
//!   finished first, may get the outcome without the `BeforeCall`.)
//! - **Removal is not a barrier**: a dispatch that took its snapshot before `remove` returned
//!   `true` may still call the removed listener once (as in RCU). It is never called by a
//!   dispatch that starts after.
//! - **Ids belong to their breaker**: a [`ListenerId`] is a slot and a per-breaker sequence
//!   number; given to another breaker's `remove_listener` it may remove that breaker's listener.
//! - **Sequence numbers are never reused**: after 2^32 - 2 successful adds on one breaker the
//!   table refuses every further `add` with [`ListenerTableFull`].

use core::fmt;

use crate::event::{Event, Interest, Listener};
use crate::sync::{loom_const_fn, AtomicPtr, AtomicU32, Ordering};

const EMPTY: u32 = 0;
const BUSY: u32 = u32::MAX;

/// Identifies a listener added to a breaker, for [`remove_listener`](crate::CircuitBreaker::remove_listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ListenerId {
    slot: u32,
    seq: u32,
}

/// The listener table is full: raise the breaker's capacity parameter `L`, or remove a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ListenerTableFull {
    /// The table's capacity.
    pub capacity: usize,
}

impl fmt::Display for ListenerTableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener table is full (capacity {})", self.capacity)
    }
}

impl core::error::Error for ListenerTableFull {}

struct Slot {
    seq: AtomicU32,
    f: AtomicPtr<()>,
    /// The listener's [`Interest`] bits, written with `f` before `seq` is published.
    interest: AtomicU32,
}

impl Slot {
    /// The slot's sequence number and listener if it wants an event of class `class`, or
    /// `(EMPTY, null)` if it does not, or is free, being written, or changed while being read.
    #[inline]
    fn snapshot(&self, class: u32) -> (u32, *mut ()) {
        let none = (EMPTY, core::ptr::null_mut());
        let seq = self.seq.load(Ordering::Acquire);
        if seq == EMPTY || seq == BUSY {
            return none;
        }
        let f = self.f.load(Ordering::Acquire);
        let interest = self.interest.load(Ordering::Acquire);
        // The Acquire load of `f` sees at least the BUSY written before any newer pointer, so an
        // unchanged `seq` means `f` belongs to `seq`.
        if self.seq.load(Ordering::Relaxed) != seq || f.is_null() || interest & class == 0 {
            return none;
        }
        (seq, f)
    }

    loom_const_fn! {
        fn new(seq: u32, f: *mut (), interest: u32) -> Slot {
            Slot {
                seq: AtomicU32::new(seq),
                f: AtomicPtr::new(f),
                interest: AtomicU32::new(interest),
            }
        }
    }
}

pub(crate) struct Listeners<const N: usize> {
    slots: [Slot; N],
    /// The next sequence number to hand out.
    next_seq: AtomicU32,
    /// Occupied slots: lets dispatch skip the table with one load when it is empty.
    len: AtomicU32,
    /// Occupied slots whose listener wants per-call events: the breaker mirrors `> 0` into the
    /// state word's `CALL_EVENTS` bit (see `CircuitBreaker::sync_call_events`).
    calls: AtomicU32,
    /// Slots filled by `with`; used only during `const` construction.
    filled: usize,
}

impl<const N: usize> Listeners<N> {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Listeners {
                slots: empty_slots(),
                next_seq: AtomicU32::new(1),
                len: AtomicU32::new(0),
                calls: AtomicU32::new(0),
                filled: 0,
            }
        }
    }

    loom_const_fn! {
        /// Adds `f` during construction.
        ///
        /// # Panics
        /// When the table is full; in a `const` or `static` that is a compile-time error.
        pub(crate) fn with(mut self, f: Listener, interest: Interest) -> Self {
            if self.filled >= N {
                panic!("listener table is full: raise the breaker's capacity parameter L");
            }
            let seq = self.filled as u32 + 1;
            self.slots[self.filled] = Slot::new(seq, f as *mut (), interest.bits());
            self.filled += 1;
            self.next_seq = AtomicU32::new(seq + 1);
            self.len = AtomicU32::new(seq);
            if interest.contains(Interest::CALLS) {
                let calls = core::mem::replace(&mut self.calls, AtomicU32::new(0)).into_inner();
                self.calls = AtomicU32::new(calls + 1);
            }
            self
        }
    }

    /// The id of the `n`-th listener (0 first) added by [`with`](Self::with), or `None` if
    /// fewer were. `with` fills slot `n` with sequence number `n + 1`, and `add` never hands
    /// out a number up to `filled`, so the id names that listener and, once it is removed,
    /// nothing.
    pub(crate) fn const_id(&self, n: usize) -> Option<ListenerId> {
        if n < self.filled {
            Some(ListenerId {
                slot: n as u32,
                seq: n as u32 + 1,
            })
        } else {
            None
        }
    }

    /// How many listeners [`with`](Self::with) added.
    pub(crate) fn const_count(&self) -> usize {
        self.filled
    }

    /// Adds `f`, given the events `interest` names; it runs after every listener added before
    /// it. The caller mirrors [`wants_calls`](Self::wants_calls) into the state word after.
    pub(crate) fn add(
        &self,
        f: Listener,
        interest: Interest,
    ) -> Result<ListenerId, ListenerTableFull> {
        let full = ListenerTableFull { capacity: N };
        for (i, slot) in self.slots.iter().enumerate() {
            if slot
                .seq
                .compare_exchange(EMPTY, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // The slot is ours: only now take a sequence number, so a refused add takes none.
            // Sequence numbers never wrap: once exhausted, `add` refuses rather than misorder.
            let Ok(seq) = self
                .next_seq
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    (s != BUSY).then_some(s.wrapping_add(1))
                })
            else {
                slot.seq.store(EMPTY, Ordering::Release);
                return Err(full);
            };
            slot.f.store(f as *mut (), Ordering::Release);
            slot.interest.store(interest.bits(), Ordering::Release);
            if interest.contains(Interest::CALLS) {
                self.calls.fetch_add(1, Ordering::SeqCst);
            }
            slot.seq.store(seq, Ordering::Release);
            self.len.fetch_add(1, Ordering::Release);
            return Ok(ListenerId {
                slot: i as u32,
                seq,
            });
        }
        Err(full)
    }

    /// Removes the listener `id` names; `false` if it was already removed.
    pub(crate) fn remove(&self, id: ListenerId) -> bool {
        let Some(slot) = self.slots.get(id.slot as usize) else {
            return false;
        };
        // Seeing `id.seq` (Acquire) makes its add's `interest` store visible; a successful CAS
        // below means the slot held `id.seq` all along (numbers are never reused), so the
        // interest read in between is this listener's.
        if slot.seq.load(Ordering::Acquire) != id.seq {
            return false;
        }
        let interest = slot.interest.load(Ordering::Relaxed);
        let removed = slot
            .seq
            .compare_exchange(id.seq, EMPTY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if removed {
            if interest & Interest::CALLS.bits() != 0 {
                self.calls.fetch_sub(1, Ordering::SeqCst);
            }
            self.len.fetch_sub(1, Ordering::Release);
        }
        removed
    }

    /// Whether some listener in the table wants per-call events. `SeqCst`, like the counter's
    /// updates: the breaker's mirroring loop relies on one total order of these and its writes
    /// of the state word's bit.
    pub(crate) fn wants_calls(&self) -> bool {
        self.calls.load(Ordering::SeqCst) != 0
    }

    /// Listeners currently in the table.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    /// Whether there is any listener, in one load: the hot path's only cost when there is none.
    /// A table of capacity 0 is always empty, and the check compiles to nothing.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        N == 0 || self.len.load(Ordering::Acquire) == 0
    }

    /// Calls every listener found in one pass over the table whose sequence number is at most
    /// `upto`, in the order they were added. Returns how many panicked (always 0 without `std`,
    /// where a panic is not caught) and the highest sequence number called ([`NONE_CALLED`] if
    /// none): what a `BeforeCall` dispatch hands to the permit as the `upto` of its outcome.
    ///
    /// One pass takes a snapshot (at most one listener per slot, so a listener that replaces a
    /// removed one mid-dispatch never runs beside it); the snapshot is then called in sequence
    /// order by repeated minimum search instead of a sort, which keeps the code small and free
    /// of panic paths (it matters on firmware). `O(N^2)` compares for a table of capacity `N`.
    ///
    /// Only listeners whose [`Interest`] includes the event's class are called.
    pub(crate) fn dispatch(&self, event: &Event, upto: u32) -> Dispatched {
        let class = Interest::of(&event.kind).bits();
        let found = self.slots.each_ref().map(|s| s.snapshot(class));
        let mut last = EMPTY;
        let mut panics = 0;
        while let Some(&(seq, f)) = found
            .iter()
            .filter(|&&(seq, _)| seq > last && seq <= upto)
            .min_by_key(|&&(seq, _)| seq)
        {
            last = seq;
            // SAFETY: every non-null pointer stored in a slot was produced by `f as *mut ()`
            // from a `Listener` (`fn(&Event)`) in `with` or `add`, and nothing else writes the
            // slots. A function pointer and `*mut ()` have the same size, and casting the
            // pointer back recovers the original function pointer.
            let f = unsafe { core::mem::transmute::<*mut (), Listener>(f) };
            panics += call_one(f, event);
        }
        Dispatched { panics, last }
    }
}

/// No listener was called: the `upto` that dispatches to none.
pub(crate) const NONE_CALLED: u32 = EMPTY;
/// Every listener: the `upto` of events that are not a call's outcome.
pub(crate) const ALL: u32 = BUSY;

/// What a dispatch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dispatched {
    /// Listener calls that panicked (caught, with `std`).
    pub panics: u32,
    /// The highest sequence number called, or [`NONE_CALLED`].
    pub last: u32,
}

#[cfg(not(loom))]
const fn empty_slots<const N: usize>() -> [Slot; N] {
    [const { Slot::new(EMPTY, core::ptr::null_mut(), 0) }; N]
}

#[cfg(loom)]
fn empty_slots<const N: usize>() -> [Slot; N] {
    core::array::from_fn(|_| Slot::new(EMPTY, core::ptr::null_mut(), 0))
}

/// Runs one listener; with `std` a panic is caught and counted, so the other listeners still
/// run and the caller still gets its result.
#[cfg(feature = "std")]
fn call_one(f: Listener, event: &Event) -> u32 {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event)));
    u32::from(caught.is_err())
}

#[cfg(not(feature = "std"))]
fn call_one(f: Listener, event: &Event) -> u32 {
    f(event);
    0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use std::sync::Mutex;
    use std::vec::Vec;

    static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

    fn a(_: &Event) {
        LOG.lock().unwrap().push("a");
    }
    fn b(_: &Event) {
        LOG.lock().unwrap().push("b");
    }
    fn c(_: &Event) {
        LOG.lock().unwrap().push("c");
    }

    #[test]
    fn insertion_order_survives_slot_reuse_and_ids_are_not_reusable() {
        let t: Listeners<3> = Listeners::new().with(a, Interest::ALL);
        let ev = Event {
            name: "t",
            kind: EventKind::BeforeCall,
        };
        let id_b = t.add(b, Interest::ALL).unwrap();
        let _id_c = t.add(c, Interest::ALL).unwrap();
        assert_eq!(
            t.add(a, Interest::ALL),
            Err(ListenerTableFull { capacity: 3 })
        );
        assert!(t.remove(id_b));
        assert!(!t.remove(id_b));
        let id_b2 = t.add(b, Interest::ALL).unwrap(); // lands in b's old slot, but runs last
        assert!(
            !t.remove(id_b),
            "a stale id must not remove the newer listener"
        );
        LOG.lock().unwrap().clear();
        let d = t.dispatch(&ev, ALL);
        assert_eq!(*LOG.lock().unwrap(), ["a", "c", "b"]);
        assert_eq!(
            d,
            Dispatched {
                panics: 0,
                last: id_b2.seq
            }
        );
        LOG.lock().unwrap().clear();
        // Up to c's number: b, added after c, is left out.
        let d = t.dispatch(&ev, _id_c.seq);
        assert_eq!(*LOG.lock().unwrap(), ["a", "c"]);
        assert_eq!(d.last, _id_c.seq);
        assert_eq!(t.dispatch(&ev, NONE_CALLED).last, NONE_CALLED);
        assert_eq!(t.len(), 3);
        assert!(t.remove(id_b2));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn refused_adds_take_no_sequence_number() {
        let t: Listeners<1> = Listeners::new().with(a, Interest::ALL);
        // Close to exhaustion: two numbers left.
        t.next_seq.store(BUSY - 2, Ordering::Relaxed);
        for _ in 0..10 {
            assert_eq!(
                t.add(b, Interest::ALL),
                Err(ListenerTableFull { capacity: 1 })
            );
        }
        assert_eq!(t.next_seq.load(Ordering::Relaxed), BUSY - 2);
        let first = t.slots[0].seq.load(Ordering::Relaxed);
        assert!(t.remove(ListenerId {
            slot: 0,
            seq: first
        }));
        let id = t.add(b, Interest::ALL).unwrap();
        assert_eq!(id.seq, BUSY - 2);
        assert!(t.remove(id));
        let id = t.add(c, Interest::ALL).unwrap();
        assert_eq!(id.seq, BUSY - 1);
        assert!(t.remove(id));
        // Exhausted: refused, and the slot is left free.
        assert_eq!(
            t.add(a, Interest::ALL),
            Err(ListenerTableFull { capacity: 1 })
        );
        assert_eq!(t.slots[0].seq.load(Ordering::Relaxed), EMPTY);
        assert_eq!(t.len(), 0);
    }

    #[cfg(feature = "std")]
    #[test]
    fn dispatch_counts_panics() {
        fn boom(_: &Event) {
            panic!("listener panics");
        }
        fn quiet(_: &Event) {}
        let t: Listeners<3> = Listeners::new()
            .with(boom, Interest::ALL)
            .with(quiet, Interest::ALL)
            .with(boom, Interest::ALL);
        let ev = Event {
            name: "t",
            kind: EventKind::BeforeCall,
        };
        let d = t.dispatch(&ev, ALL);
        assert_eq!(d, Dispatched { panics: 2, last: 3 });
        assert_eq!(t.dispatch(&ev, 1), Dispatched { panics: 1, last: 1 });
    }
}
