//! A fixed-capacity, lock-free table of listener function pointers.
//!
//! Each slot holds a sequence number and a function pointer:
//!
//! | `seq` | meaning |
//! |---|---|
//! | `EMPTY` (0) | free |
//! | `BUSY` (`u32::MAX`) | claimed by an `add` that is writing the pointer, or by a `remove` taking it out |
//! | anything else | occupied; the value orders listeners by when they were added |
//!
//! Beside the slots, one word, the **plan**, lists the occupied slots in the order their
//! listeners were added (see [`Plan`] for its bits), so that a dispatch walks the listeners in
//! order in one pass: one load of the plan, then each listed slot.
//!
//! `add` claims a free slot with a CAS `EMPTY -> BUSY`, then takes a sequence number from
//! `next_seq` (so a refused add, on a full table, consumes none), stores the pointer, appends
//! the slot to the plan (a CAS loop), and last publishes its sequence number (Release): a
//! listener is called only once it is listed, even by a dispatch holding an older plan that
//! listed its slot for a removed listener, so the dispatch of a call's outcome, which loads the
//! plan later, finds every listener that got the call's `BeforeCall` (unless it was removed
//! meanwhile). `remove`
//! takes a [`ListenerId`] (slot and sequence number) and CASes that exact sequence number to
//! `BUSY`, so a stale id cannot remove a newer listener; it then takes the slot out of the plan
//! and only then frees it (`EMPTY`): a slot is never in the plan twice, so a dispatch calls at
//! most one listener per slot. Dispatch reads the plan (Acquire), then each listed slot's
//! sequence number, pointer and interest (Acquire) and the sequence number again; a slot that
//! changed in between, or is `BUSY` or `EMPTY`, is skipped for that event. Listeners are called
//! in the order they were added (PyBreaker's list order), whatever slot they landed in.
//!
//! The plan has room for 8 slots: a capacity above 8 is a compile-time error.
//!
//! # What a listener can rely on
//! - **Outcomes follow their `BeforeCall`**: the `BeforeCall` dispatch returns the highest
//!   sequence number it called; the permit keeps it, and the call's outcome goes only to
//!   listeners with a sequence number up to it. A listener added after the admission never
//!   gets that call's outcome. **And a `BeforeCall` is followed by its outcome**: a listener
//!   that got a call's `BeforeCall` gets its outcome unless it is removed in between (a
//!   listener is published only after it is listed, and a success whose `BeforeCall` reached
//!   anyone is always dispatched). (The one exception is a race among several `add`s and the
//!   admission itself: an `add` still in progress, holding a lower number than an `add` that
//!   finished first, may get the outcome without the `BeforeCall`.)
//! - **Removal is not a barrier**: a dispatch that loaded the plan before `remove` returned
//!   `true` may still call the removed listener once (as in RCU), or, if an `add` has put a new
//!   listener in that slot meanwhile, the new one in its place (never both: the slot is listed
//!   once). The removed listener is never called by a dispatch that starts after.
//! - **Ids belong to their breaker**: a [`ListenerId`] is a slot and a per-breaker sequence
//!   number; given to another breaker's `remove_listener` it may remove that breaker's listener.
//! - **Order among racing adds**: two `add`s that overlap in time may be called in either
//!   order (each appends to the plan when it is done); adds that do not overlap keep their order.
//! - **Sequence numbers are never reused**: after 2^32 - 2 successful adds on one breaker the
//!   table refuses every further `add` with [`ListenerTableFull`].

use core::fmt;

use crate::event::{Event, Interest, Listener};
use crate::sync::{loom_const_fn, AtomicPtr, AtomicU32, Ordering};

const EMPTY: u32 = 0;
const BUSY: u32 = u32::MAX;

/// The largest listener capacity `L` of a [`CircuitBreaker`](crate::CircuitBreaker): a larger
/// `L` is a compile-time error. (The table lists its listeners, in the order they were added, in
/// one 32-bit word, so that a dispatch reads it with one load.)
pub const MAX_LISTENERS: usize = 8;

/// The dispatch plan: the occupied slots, in the order their listeners were added.
///
/// | bits | field |
/// |---|---|
/// | 0..4 | `len`: how many entries (0 to 8) |
/// | 4 + 3j .. 7 + 3j | entry `j` (for `j < len`): a slot index (0 to 7); entry 0 was added first |
///
/// Bits above the last entry are zero. 32 bits, so that on microcontrollers loading it is one
/// plain load (a 64-bit atomic is a critical section there) and its shifts are instructions,
/// not library calls. The functions here are pure; the table updates the word with CAS loops
/// over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan(u32);

const PLAN_LEN_MASK: u32 = 0xF;
const PLAN_LEN_BITS: u32 = 4;
const PLAN_ENTRY_BITS: u32 = 3;
const PLAN_ENTRY_MASK: u32 = 0b111;

impl Plan {
    const EMPTY: Plan = Plan(0);

    /// How many slots are listed.
    #[inline(always)]
    const fn len(self) -> usize {
        (self.0 & PLAN_LEN_MASK) as usize
    }

    /// The entries, entry 0 in the low three bits.
    #[inline(always)]
    const fn entries(self) -> u32 {
        self.0 >> PLAN_LEN_BITS
    }

    /// Appends slot `i`. The caller holds slot `i` (so it is not listed) and the table has at
    /// most 8 slots (so the plan has room): `len < 8` and `i < 8`.
    const fn push(self, i: usize) -> Plan {
        let shift = PLAN_LEN_BITS + PLAN_ENTRY_BITS * self.len() as u32;
        Plan((self.0 | ((i as u32) << shift)) + 1)
    }

    /// Takes slot `i` out of the list, keeping the order of the others; unchanged if it is
    /// not listed. One pass that copies every other entry down (small code: it matters on
    /// microcontrollers).
    fn without(self, i: usize) -> Plan {
        let (mut entries, mut kept, mut out) = (self.entries(), 0, 0);
        for _ in 0..self.len() {
            let slot = entries & PLAN_ENTRY_MASK;
            entries >>= PLAN_ENTRY_BITS;
            if slot != i as u32 {
                // `kept < len <= 8`: the shift is at most 21.
                out |= slot << (PLAN_ENTRY_BITS * kept);
                kept += 1;
            }
        }
        Plan((out << PLAN_LEN_BITS) | kept)
    }
}

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
    #[inline(always)]
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
    /// The [`Plan`]: the occupied slots in the order they were added. Its length lets dispatch
    /// skip the table with one load when it is empty.
    plan: AtomicU32,
    /// Occupied slots whose listener wants per-call events: the breaker mirrors `> 0` into the
    /// state word's `CALL_EVENTS` bit (see `CircuitBreaker::sync_call_events`).
    calls: AtomicU32,
    /// Listener calls that panicked and were caught (with `std`; always 0 without).
    panics: AtomicU32,
    /// Slots filled by `with` (at most 8).
    filled: u32,
}

impl<const N: usize> Listeners<N> {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            #[cfg(not(loom))]
            const {
                assert!(
                    N <= MAX_LISTENERS,
                    "the listener capacity L is at most 8 (atomic_breaker::MAX_LISTENERS)"
                );
            }
            Listeners {
                slots: empty_slots(),
                next_seq: AtomicU32::new(1),
                plan: AtomicU32::new(Plan::EMPTY.0),
                calls: AtomicU32::new(0),
                panics: AtomicU32::new(0),
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
            let n = self.filled as usize;
            if n >= N {
                panic!("listener table is full: raise the breaker's capacity parameter L");
            }
            let seq = self.filled + 1;
            self.slots[n] = Slot::new(seq, f as *mut (), interest.bits());
            self.filled += 1;
            self.next_seq = AtomicU32::new(seq + 1);
            let plan = core::mem::replace(&mut self.plan, AtomicU32::new(0)).into_inner();
            self.plan = AtomicU32::new(Plan(plan).push(n).0);
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
        if n < self.filled as usize {
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
        self.filled as usize
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
            // Listed before it is published: a dispatch that finds the slot listed but `BUSY`
            // skips it. Published last, so any dispatch that calls this listener (even through
            // a plan loaded before the slot was freed, which lists the slot for its previous
            // listener) does so after it is listed: the later dispatch of that call's outcome
            // finds it listed too. The slot is ours and unlisted, and at most `N <= 8` slots
            // are listed: `push` has room.
            self.update_plan(|p| p.push(i));
            slot.seq.store(seq, Ordering::Release);
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
        // `BUSY` while it is taken out of the plan: no `add` can claim the slot (and list it a
        // second time) before it is unlisted.
        let removed = slot
            .seq
            .compare_exchange(id.seq, BUSY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if removed {
            let i = id.slot as usize;
            self.update_plan(|p| p.without(i));
            if interest & Interest::CALLS.bits() != 0 {
                self.calls.fetch_sub(1, Ordering::SeqCst);
            }
            slot.seq.store(EMPTY, Ordering::Release);
        }
        removed
    }

    /// Replaces the plan with `f(plan)`, in a CAS loop.
    fn update_plan(&self, f: impl Fn(Plan) -> Plan) {
        let _ = self
            .plan
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| Some(f(Plan(p)).0));
    }

    /// The current plan.
    #[inline(always)]
    fn plan(&self) -> Plan {
        Plan(self.plan.load(Ordering::Acquire))
    }

    /// Whether some listener in the table wants per-call events. `SeqCst`, like the counter's
    /// updates: the breaker's mirroring loop relies on one total order of these and its writes
    /// of the state word's bit.
    pub(crate) fn wants_calls(&self) -> bool {
        self.calls.load(Ordering::SeqCst) != 0
    }

    /// Listener calls that panicked and were caught, since the table was made.
    pub(crate) fn panics(&self) -> u32 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Listeners currently in the table.
    pub(crate) fn len(&self) -> usize {
        self.plan().len()
    }

    /// Whether there is any listener, in one load: the hot path's only cost when there is none.
    /// A table of capacity 0 is always empty, and the check compiles to nothing.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        N == 0 || self.plan().len() == 0
    }

    /// Calls the listeners the plan lists, in the order they were added, skipping those whose
    /// sequence number is above `upto`. A listener that panics is caught and counted in
    /// [`panics`](Self::panics) (with `std`; without, a panic is not caught). Returns the highest
    /// sequence number called ([`NONE_CALLED`] if none): what a `BeforeCall` dispatch hands to
    /// the permit as the `upto` of its outcome.
    ///
    /// One load of the plan, then per listed slot its sequence number, pointer and interest
    /// (see [`Slot::snapshot`]): no sorting, no snapshot of the whole table. Each slot is
    /// listed once, so at most one listener per slot runs (a listener that replaces a removed
    /// one mid-dispatch may run in its place, never beside it).
    ///
    /// Only listeners whose [`Interest`] includes the event's class are called.
    #[inline(never)]
    pub(crate) fn dispatch(&self, event: &Event, upto: u32) -> u32 {
        self.dispatch_class(Interest::of(&event.kind).bits(), event, upto)
    }

    /// [`dispatch`](Self::dispatch) of a per-call event (`BeforeCall`, `Success`, `Failure`,
    /// `Ignored`). Where 64-bit atomics are native (servers), it is inlined into the breaker's
    /// two per-call sites: the class is known there, and the call and frame of an out-of-line
    /// dispatch were most of a per-call listener's cost; one listener is called without the
    /// loop. Elsewhere (most microcontrollers, where
    /// loading the plan is a critical section anyway) flash comes first: it is the out-of-line
    /// dispatch, and the loop is in the binary once.
    #[cfg_attr(target_has_atomic = "64", inline(always))]
    pub(crate) fn dispatch_call_event(&self, event: &Event, upto: u32) -> u32 {
        debug_assert!(Interest::of(&event.kind).contains(Interest::CALLS));
        if !cfg!(target_has_atomic = "64") {
            return self.dispatch(event, upto);
        }
        let plan = self.plan();
        match plan.len() {
            0 => EMPTY,
            // One listener (a server's metrics listener, say): no loop, so fewer values live
            // across the listener's call, and a smaller frame.
            1 => self.dispatch_slot(
                (plan.entries() & PLAN_ENTRY_MASK) as usize,
                Interest::CALLS.bits(),
                event,
                upto,
            ),
            // Several: the loop, inlined too (out of line, its frame and call cost two
            // listeners 323 instructions per `allow()` + `success()` instead of 254).
            _ => self.dispatch_class(Interest::CALLS.bits(), event, upto),
        }
    }

    /// Calls slot `i`'s listener if it wants class `class` and its sequence number is at most
    /// `upto`; returns that sequence number, or `EMPTY` if it was not called.
    #[inline(always)]
    fn dispatch_slot(&self, i: usize, class: u32, event: &Event, upto: u32) -> u32 {
        let Some(slot) = self.slots.get(i) else {
            return EMPTY;
        };
        let (seq, f) = slot.snapshot(class);
        if seq == EMPTY || seq > upto {
            return EMPTY;
        }
        // SAFETY: every non-null pointer stored in a slot was produced by `f as *mut ()`
        // from a `Listener` (`fn(&Event)`) in `with` or `add`, and nothing else writes the
        // slots. A function pointer and `*mut ()` have the same size, and casting the
        // pointer back recovers the original function pointer.
        let f = unsafe { core::mem::transmute::<*mut (), Listener>(f) };
        call_one(f, event, &self.panics);
        seq
    }

    /// The dispatch loop, for events of class `class` (an [`Interest`] bit).
    #[inline(always)]
    fn dispatch_class(&self, class: u32, event: &Event, upto: u32) -> u32 {
        let plan = self.plan();
        let mut entries = plan.entries();
        let mut last = EMPTY;
        for _ in 0..plan.len() {
            let i = (entries & PLAN_ENTRY_MASK) as usize;
            entries >>= PLAN_ENTRY_BITS;
            last = last.max(self.dispatch_slot(i, class, event, upto));
        }
        last
    }
}

/// No listener was called: the `upto` that dispatches to none.
pub(crate) const NONE_CALLED: u32 = EMPTY;
/// Every listener: the `upto` of events that are not a call's outcome.
pub(crate) const ALL: u32 = BUSY;

#[cfg(not(loom))]
const fn empty_slots<const N: usize>() -> [Slot; N] {
    [const { Slot::new(EMPTY, core::ptr::null_mut(), 0) }; N]
}

#[cfg(loom)]
fn empty_slots<const N: usize>() -> [Slot; N] {
    core::array::from_fn(|_| Slot::new(EMPTY, core::ptr::null_mut(), 0))
}

/// Runs one listener; with `std` a panic is caught and counted in `panics`, so the other
/// listeners still run and the caller still gets its result.
#[cfg(feature = "std")]
#[inline(always)]
fn call_one(f: Listener, event: &Event, panics: &AtomicU32) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(event))).is_err() {
        panics.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(not(feature = "std"))]
#[inline(always)]
fn call_one(f: Listener, event: &Event, _panics: &AtomicU32) {
    f(event);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use std::sync::Mutex;
    use std::vec;
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
        let last = t.dispatch(&ev, ALL);
        assert_eq!(*LOG.lock().unwrap(), ["a", "c", "b"]);
        assert_eq!(last, id_b2.seq);
        assert_eq!(t.panics(), 0);
        LOG.lock().unwrap().clear();
        // Up to c's number: b, added after c, is left out.
        let last = t.dispatch(&ev, _id_c.seq);
        assert_eq!(*LOG.lock().unwrap(), ["a", "c"]);
        assert_eq!(last, _id_c.seq);
        assert_eq!(t.dispatch(&ev, NONE_CALLED), NONE_CALLED);
        assert_eq!(t.len(), 3);
        assert!(t.remove(id_b2));
        assert_eq!(t.len(), 2);
    }

    /// The plan's pure functions against a `Vec` model: every push and removal, at every
    /// position, up to the full 8 entries.
    #[test]
    fn plan_push_and_without_keep_the_order() {
        let entries = |p: Plan| -> Vec<usize> {
            (0..p.len())
                .map(|j| ((p.entries() >> (PLAN_ENTRY_BITS * j as u32)) & PLAN_ENTRY_MASK) as usize)
                .collect()
        };
        // Slots listed in a scrambled order, to tell order from index.
        let order: Vec<usize> = (0..MAX_LISTENERS)
            .map(|k| (k * 7 + 3) % MAX_LISTENERS)
            .collect();
        let mut p = Plan::EMPTY;
        for (n, &i) in order.iter().enumerate() {
            p = p.push(i);
            assert_eq!(entries(p), order[..=n]);
        }
        assert_eq!(p.len(), MAX_LISTENERS);
        assert_eq!(
            p.0 >> (PLAN_LEN_BITS + PLAN_ENTRY_BITS * 8),
            0,
            "8 entries fit in 28 bits"
        );
        for &gone in &order {
            let q = p.without(gone);
            let want: Vec<usize> = order.iter().copied().filter(|&i| i != gone).collect();
            assert_eq!(entries(q), want);
            // Bits above the last entry stay zero, so a push after a removal lands right.
            assert_eq!(q.entries() >> (PLAN_ENTRY_BITS * q.len() as u32), 0);
            assert_eq!(entries(q.push(gone)), [want.clone(), vec![gone]].concat());
            assert_eq!(
                q.without(gone),
                q,
                "removing an unlisted slot changes nothing"
            );
        }
        // Drain in insertion order, then in reverse.
        let mut q = p;
        for (n, &i) in order.iter().enumerate() {
            q = q.without(i);
            assert_eq!(entries(q), order[n + 1..]);
        }
        assert_eq!(q, Plan::EMPTY);
        let mut q = p;
        for (n, &i) in order.iter().enumerate().rev() {
            q = q.without(i);
            assert_eq!(entries(q), order[..n]);
        }
        assert_eq!(q, Plan::EMPTY);
    }

    static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    fn nth<const K: usize>(_: &Event) {
        ORDER.lock().unwrap().push(K);
    }

    /// A table of the largest capacity: all 8 slots fill, a ninth add is refused, and after
    /// removals and re-adds into freed slots the listeners still run in the order they were
    /// added, whatever slots they landed in.
    #[test]
    fn a_full_table_of_max_capacity_keeps_the_added_order() {
        let fs: [Listener; 8] = [
            nth::<0>, nth::<1>, nth::<2>, nth::<3>, nth::<4>, nth::<5>, nth::<6>, nth::<7>,
        ];
        let t: Listeners<MAX_LISTENERS> = Listeners::new();
        let ids: Vec<ListenerId> = fs
            .iter()
            .map(|&f| t.add(f, Interest::ALL).unwrap())
            .collect();
        assert_eq!(t.len(), 8);
        assert_eq!(
            t.add(nth::<0>, Interest::ALL),
            Err(ListenerTableFull { capacity: 8 })
        );
        let ev = Event {
            name: "t",
            kind: EventKind::BeforeCall,
        };
        let run = || {
            ORDER.lock().unwrap().clear();
            t.dispatch(&ev, ALL);
            ORDER.lock().unwrap().clone()
        };
        assert_eq!(run(), [0, 1, 2, 3, 4, 5, 6, 7]);
        // Free slots 1 and 5, then add 5 and 1 again: they land in freed slots, and run last,
        // in the order of these adds.
        assert!(t.remove(ids[1]));
        assert!(t.remove(ids[5]));
        assert_eq!(run(), [0, 2, 3, 4, 6, 7]);
        t.add(fs[5], Interest::ALL).unwrap();
        t.add(fs[1], Interest::ALL).unwrap();
        assert_eq!(run(), [0, 2, 3, 4, 6, 7, 5, 1]);
        assert_eq!(t.len(), 8);
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
        assert_eq!(t.dispatch(&ev, ALL), 3);
        assert_eq!(t.panics(), 2);
        assert_eq!(t.dispatch(&ev, 1), 1);
        assert_eq!(t.panics(), 3);
    }
}
