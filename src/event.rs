//! Events delivered to listeners.

use core::fmt;
use core::time::Duration;

use crate::state::State;

/// A listener: a plain function pointer, so tables need no allocation and can be `const`.
///
/// Listeners run on the thread that caused the event, after the atomic update that made it,
/// outside any lock. They may call back into the breaker. With `std`, a listener that panics is
/// caught and counted ([`listener_panics`](crate::CircuitBreaker::listener_panics)); the breaker
/// state is already final when listeners run, so a panic cannot leave it wrong.
///
/// The outcome events of a call (`Success`, `Failure`, `Ignored`) go only to the listeners that
/// got its `BeforeCall`, and to each of them unless it was removed in between: a listener
/// never sees an outcome without its start (a listener added once the call's `BeforeCall` has
/// been dispatched gets neither), and one that got the start gets the outcome while it stays
/// registered (removal is not a barrier: a listener removed during the call may miss it). An outcome is
/// reported to listeners even when the breaker drops it (a permit from an earlier generation).
///
/// A listener hears only the events its [`Interest`] names; `with_listener` and `add_listener`
/// subscribe to all of them.
pub type Listener = fn(&Event);

/// Which events a listener is given: a set of event classes, combined with `|`.
///
/// Per-call events ([`CALLS`](Self::CALLS)) are the expensive ones: while no registered listener
/// wants them, the closed path dispatches nothing and pays nothing for the listener table (a bit
/// of the state word says whether anyone wants them, checked in the same masked compare as the
/// state). A metrics listener that wants only [`STATE_CHANGES`](Self::STATE_CHANGES) and
/// [`REJECTIONS`](Self::REJECTIONS) leaves the closed path as fast as with no listener.
///
/// ```
/// use atomic_breaker::{CircuitBreaker, Config, Event, Interest, ManualClock};
///
/// fn on_change(e: &Event) {
///     let _ = e;
/// }
/// let breaker = CircuitBreaker::<_>::new("db", Config::new(), ManualClock::new())
///     .with_listener_for(Interest::STATE_CHANGES | Interest::REJECTIONS, on_change);
/// assert!(breaker.call(|| Ok::<_, ()>(1)).is_ok()); // no event dispatched
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Interest(u8);

impl Interest {
    /// [`EventKind::StateChange`].
    pub const STATE_CHANGES: Interest = Interest(1);
    /// [`EventKind::Rejected`].
    pub const REJECTIONS: Interest = Interest(2);
    /// The per-call events: [`EventKind::BeforeCall`] and the outcomes [`EventKind::Success`],
    /// [`EventKind::Failure`] and [`EventKind::Ignored`]. A listener gets a call's outcome only
    /// if it got the call's `BeforeCall`.
    pub const CALLS: Interest = Interest(4);
    /// Every event (what `with_listener` and `add_listener` subscribe to).
    pub const ALL: Interest = Interest(7);

    /// Both sets.
    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Whether every class of `other` is in `self`.
    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// The class `kind` belongs to.
    pub(crate) const fn of(kind: &EventKind<'_>) -> Interest {
        match kind {
            EventKind::StateChange { .. } => Interest::STATE_CHANGES,
            EventKind::Rejected { .. } => Interest::REJECTIONS,
            _ => Interest::CALLS,
        }
    }

    /// The raw bits, for the listener table.
    pub(crate) const fn bits(self) -> u32 {
        self.0 as u32
    }
}

impl core::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.union(rhs)
    }
}

/// Something that happened to a breaker.
///
/// `'a` is the lifetime of the caller's error a [`Failure`](EventKind::Failure) or
/// [`Ignored`](EventKind::Ignored) event may borrow: a listener sees the error while the call
/// that produced it is being reported, without a copy or an allocation. To keep an event past
/// the listener call, take [`without_error`](Self::without_error) (an `Event<'static>`).
///
/// Equality compares the fields; two borrowed errors are equal when their `Debug` renderings
/// are (compared piece by piece, without allocating), since `dyn Debug` has no `PartialEq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// The name of the breaker it happened to.
    pub name: &'static str,
    /// What happened.
    pub kind: EventKind<'a>,
}

impl Event<'_> {
    /// A copy without the borrowed error (see [`EventKind::without_error`]), which can be
    /// stored, queued or sent to another thread.
    pub const fn without_error(&self) -> Event<'static> {
        Event {
            name: self.name,
            kind: self.kind.without_error(),
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum EventKind<'a> {
    /// A call was admitted and is about to run (PyBreaker's `before_call`).
    BeforeCall,
    /// An admitted call succeeded. Fired even if the report was dropped because the call was
    /// admitted in an earlier generation.
    Success {
        /// The failure count right after this success was recorded: what
        /// [`fail_counter`](crate::CircuitBreaker::fail_counter) reads then (0 when it reset
        /// the count or closed the breaker, unchanged when the report was dropped; in
        /// failure-rate mode, the failures left in the window, which a success does not
        /// remove). A listener can keep a fail-counter gauge from `Success`, `Failure` and
        /// `StateChange` events alone.
        failures: u32,
    },
    /// An admitted call failed. If it tripped the breaker, a `StateChange` follows.
    Failure {
        /// The consecutive failure count right after this failure was recorded: what
        /// [`fail_counter`](crate::CircuitBreaker::fail_counter) reads then (`fail_max` when
        /// this failure tripped the breaker, 1 after a failed half-open trial, unchanged when
        /// the report was dropped).
        failures: u32,
        /// The caller's error, when the report carried one: with the feature `std`,
        /// [`call`](crate::CircuitBreaker::call) and the other guarded forms pass their `Err`;
        /// a permit passes the error given to [`failure_with`](crate::Permit::failure_with)
        /// (`None` from plain [`failure`](crate::Permit::failure)). Without `std` the guarded
        /// forms pass `None`: lending would link the error's `Debug` (and `core::fmt`) into
        /// every firmware, listener or not.
        error: Option<&'a dyn fmt::Debug>,
    },
    /// An admitted call ended with an error classified as ignored.
    Ignored {
        /// The caller's error, when the report carried one (as for `Failure`).
        error: Option<&'a dyn fmt::Debug>,
    },
    /// A call was rejected without running.
    Rejected {
        /// The state that rejected it.
        state: State,
        /// How long until a retry may be admitted, when time alone will admit one.
        retry_after: Option<Duration>,
    },
    /// The breaker moved from one state to another.
    StateChange {
        /// The state before.
        from: State,
        /// The state after.
        to: State,
        /// The failure count at the moment of the change, before the move reset it: the larger
        /// of [`fail_counter`](crate::CircuitBreaker::fail_counter) just before and just after.
        /// A trip carries the failures that tripped it (1 for a failed half-open trial), a move
        /// out of Open the failures that had opened it, a manual move the count it cleared.
        failures: u32,
        /// When the new state is Open: the open period (backoff and jitter included) until a
        /// trial may be admitted. `None` for every other state.
        retry_after: Option<Duration>,
    },
}

impl EventKind<'_> {
    /// The same event without the borrowed error (`Failure` and `Ignored` get `error: None`).
    pub const fn without_error(&self) -> EventKind<'static> {
        RecordKind::of(self).kind()
    }
}

/// A copy of an [`Event`] that owns what it holds (the caller's error left out), so it is
/// `Send`, `Sync` and `'static`: for logs, queues and channels that keep events after the
/// listener returns. ([`Event`] itself is neither `Send` nor `Sync`: it may borrow an error of
/// any type.) [`event`](Self::event) gives the event back, as
/// [`without_error`](Event::without_error) would have.
///
/// ```
/// use std::sync::Mutex;
/// use atomic_breaker::{CircuitBreaker, Config, Event, EventKind, EventRecord, ManualClock};
///
/// static LOG: Mutex<Vec<EventRecord>> = Mutex::new(Vec::new());
/// fn record(e: &Event) {
///     LOG.lock().unwrap().push(EventRecord::new(e));
/// }
/// let b = CircuitBreaker::<_>::new("db", Config::new(), ManualClock::new()).with_listener(record);
/// let _ = b.call(|| Err::<(), _>("timeout"));
/// let kinds: Vec<_> = LOG.lock().unwrap().iter().map(|r| r.event().kind).collect();
/// assert_eq!(kinds, [EventKind::BeforeCall, EventKind::Failure { failures: 1, error: None }]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    name: &'static str,
    kind: RecordKind,
}

/// [`EventKind`] without the borrowed error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecordKind {
    BeforeCall,
    Success {
        failures: u32,
    },
    Failure {
        failures: u32,
    },
    Ignored,
    Rejected {
        state: State,
        retry_after: Option<Duration>,
    },
    StateChange {
        from: State,
        to: State,
        failures: u32,
        retry_after: Option<Duration>,
    },
}

impl RecordKind {
    /// `kind` without its error: the one conversion between the two enums, each way.
    const fn of(kind: &EventKind<'_>) -> RecordKind {
        match *kind {
            EventKind::BeforeCall => RecordKind::BeforeCall,
            EventKind::Success { failures } => RecordKind::Success { failures },
            EventKind::Failure { failures, .. } => RecordKind::Failure { failures },
            EventKind::Ignored { .. } => RecordKind::Ignored,
            EventKind::Rejected { state, retry_after } => {
                RecordKind::Rejected { state, retry_after }
            }
            EventKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            } => RecordKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            },
        }
    }

    /// The kind recorded, with `error: None` in a `Failure` or `Ignored`.
    const fn kind(self) -> EventKind<'static> {
        match self {
            RecordKind::BeforeCall => EventKind::BeforeCall,
            RecordKind::Success { failures } => EventKind::Success { failures },
            RecordKind::Failure { failures } => EventKind::Failure {
                failures,
                error: None,
            },
            RecordKind::Ignored => EventKind::Ignored { error: None },
            RecordKind::Rejected { state, retry_after } => {
                EventKind::Rejected { state, retry_after }
            }
            RecordKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            } => EventKind::StateChange {
                from,
                to,
                failures,
                retry_after,
            },
        }
    }
}

impl EventRecord {
    /// A copy of `event`, without its error.
    pub const fn new(event: &Event<'_>) -> EventRecord {
        EventRecord {
            name: event.name,
            kind: RecordKind::of(&event.kind),
        }
    }

    /// The event recorded (`error: None` in a `Failure` or `Ignored`).
    pub const fn event(&self) -> Event<'static> {
        Event {
            name: self.name,
            kind: self.kind.kind(),
        }
    }

    /// The breaker's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl From<&Event<'_>> for EventRecord {
    fn from(event: &Event<'_>) -> EventRecord {
        EventRecord::new(event)
    }
}

impl<'a> EventKind<'a> {
    /// The caller's error a `Failure` or `Ignored` event carries, if any.
    pub fn error(&self) -> Option<&'a dyn fmt::Debug> {
        match *self {
            EventKind::Failure { error, .. } | EventKind::Ignored { error } => error,
            _ => None,
        }
    }
}

impl PartialEq for EventKind<'_> {
    fn eq(&self, other: &Self) -> bool {
        use EventKind::*;
        match (*self, *other) {
            (BeforeCall, BeforeCall) => true,
            (Success { failures }, Success { failures: f2 }) => failures == f2,
            (
                Failure { failures, error },
                Failure {
                    failures: f2,
                    error: e2,
                },
            ) => failures == f2 && errors_eq(error, e2),
            (Ignored { error }, Ignored { error: e2 }) => errors_eq(error, e2),
            (
                Rejected { state, retry_after },
                Rejected {
                    state: s2,
                    retry_after: r2,
                },
            ) => state == s2 && retry_after == r2,
            (
                StateChange {
                    from,
                    to,
                    failures,
                    retry_after,
                },
                StateChange {
                    from: from2,
                    to: to2,
                    failures: f2,
                    retry_after: r2,
                },
            ) => from == from2 && to == to2 && failures == f2 && retry_after == r2,
            _ => false,
        }
    }
}

/// Equality of `Debug` renderings is an equivalence relation.
impl Eq for EventKind<'_> {}

fn errors_eq(a: Option<&dyn fmt::Debug>, b: Option<&dyn fmt::Debug>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => debug_eq(a, b),
        _ => false,
    }
}

/// Bytes of a rendering compared at a time.
const WINDOW: usize = 32;

/// One window of a `Debug` rendering: the bytes from `skip` on, at most [`WINDOW`] of them.
struct Window {
    skip: usize,
    seen: usize,
    len: usize,
    buf: [u8; WINDOW],
}

impl fmt::Write for Window {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            if self.seen >= self.skip {
                match self.buf.get_mut(self.len) {
                    Some(slot) => *slot = byte,
                    // Full: stop the rendering early.
                    None => return Err(fmt::Error),
                }
                self.len += 1;
            }
            self.seen += 1;
        }
        Ok(())
    }
}

fn window(v: &dyn fmt::Debug, skip: usize) -> Window {
    let mut w = Window {
        skip,
        seen: 0,
        len: 0,
        buf: [0; WINDOW],
    };
    // An `Err` is the early stop of a full window (or the value's own formatting error, after
    // which its rendering is what was written so far).
    let _ = fmt::write(&mut w, format_args!("{v:?}"));
    w
}

/// Whether two values render the same with `Debug`, compared window by window without
/// allocating (each window renders both values again: quadratic in the length, which is fine
/// for the short error values events carry).
fn debug_eq(a: &dyn fmt::Debug, b: &dyn fmt::Debug) -> bool {
    let mut skip = 0;
    loop {
        let (wa, wb) = (window(a, skip), window(b, skip));
        if wa.len != wb.len || wa.buf != wb.buf {
            return false;
        }
        if wa.len < WINDOW {
            return true;
        }
        skip += WINDOW;
    }
}
