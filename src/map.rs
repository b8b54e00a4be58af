//! [`BreakerMap`]: one breaker per key (upstream host, tenant, route), bounded, evicting only
//! idle breakers.
//!
//! # Layout
//! A fixed number of shards ([`SHARDS`]), each a cache-line-aligned `RwLock` over a
//! `hashbrown::HashTable<Arc<Entry>>` (the entry holds the key next to its breaker). A key is
//! hashed once: the top bits of the hash pick the shard, the table gets the hash with those bits
//! rotated to the bottom. A lookup takes its shard's read lock, clones the entry's `Arc` and
//! lets the lock go before the call runs, so a slow call never holds a lock. Inserts and
//! evictions take one shard's write lock at a time, never two, so they cannot deadlock. The
//! number of entries is one `AtomicUsize`, reserved before an insert, so the map never holds
//! more than its capacity.
//!
//! # User code that panics
//! A key's `Hash` runs once per lookup, before anything is locked or reserved: each entry keeps
//! its hash, so growing a table or choosing an eviction victim hashes no key again. A key's
//! `Eq` and `ToOwned`, and the clock, may run after an insert reserved its place: the
//! reservation is a guard that gives the place back if they panic, and the table is not
//! changed before they returned. A panicking `Drop` of an evicted key runs after its shard's
//! lock is released, and gives back the place the eviction freed. So a panic in a key or the
//! clock leaves [`len`](BreakerMap::len) exact and every place usable. A [`KeyListener`] that
//! panics is caught, as the breaker's own listeners are (see
//! [`listener_panics`](BreakerMap::listener_panics)).
//!
//! # Idle
//! An entry is **idle**, and only then evictable, when all of these hold, checked under its
//! shard's write lock (which no lookup can get past):
//! 1. no handle to it is out: `Arc::get_mut` succeeds on the map's `Arc`. Every call through
//!    the map, every [`KeyedBreaker`] returned by [`get`](BreakerMap::get) or
//!    [`get_or_insert`](BreakerMap::get_or_insert), and so every [`Permit`](crate::Permit) or
//!    [`OwnedPermit`](crate::OwnedPermit) made from one, holds a clone; so no call, trial or
//!    permit is in flight. (The closed path writes nothing to the breaker, so the breaker
//!    itself cannot tell whether a call is running; the `Arc` can.)
//! 2. its state is [`State::Closed`] (not Open, HalfOpen, ForcedOpen or Disabled);
//! 3. its failure counter is 0 (in failure-rate mode: no failure in its window, which a
//!    success does not clear): evicting a breaker that holds failures would let a client
//!    reset its own history by flooding the map with new keys;
//! 4. if [`idle_after`](BreakerMap::idle_after) is set, it has not been looked up for at least
//!    that long on the map's clock.
//!
//! When the map is full and a new key arrives, one idle entry is evicted: from the first shard,
//! in rotating order, that has one, and with `idle_after` set the one of that shard looked up
//! least recently (without it, lookups record no time and any idle entry of the shard may go).
//! When none is idle, the insert fails with [`MapFull`] and nothing is evicted.
//!
//! # Keys in events
//! A per-key breaker is named after the map (its name is a `&'static str`; a key is not).
//! Listeners that need the key are registered on the map: a [`KeyListener`] is a
//! `fn(&K, &Event)`, called by the map around the calls it runs
//! ([`call`](BreakerMap::call), [`call_with`](BreakerMap::call_with)) with the key stored
//! next to the breaker and an event built from what the breaker returned: no allocation, no
//! change to the core breaker, no per-event lookup. See [`BreakerMap::with_listener_for`] for
//! exactly which events it sees.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use std::vec::Vec;

use hashbrown::HashTable;
// 64-bit atomics on every target (32-bit ones without them included), as the breaker uses.
use portable_atomic::AtomicU64;

use crate::breaker::CircuitBreaker;
use crate::clock::Clock;
use crate::config::{duration_ms, Config, ConfigError};
use crate::error::Error;
use crate::event::{Event, EventKind, Interest};
use crate::permit::Recorded;
use crate::snapshot::Snapshot;
use crate::state::{Outcome, State};

/// The number of shards of every map: a power of two, a few times the core count of the
/// machines this runs on, so that two threads rarely share a shard's lock.
pub const SHARDS: usize = 16;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// A listener that is told the key: a plain function pointer, as [`Listener`](crate::Listener).
pub type KeyListener<K> = fn(&K, &Event);

/// The map is full and none of its breakers is idle, so the key was not added.
///
/// Nothing was evicted: a breaker that holds failures, is not Closed, or has a call in flight
/// is never dropped to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapFull {
    /// The map's capacity.
    pub capacity: usize,
}

impl fmt::Display for MapFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "breaker map full: {} breakers, none idle (Closed, no failures, no call in flight)",
            self.capacity
        )
    }
}

impl std::error::Error for MapFull {}

/// One entry: the key stored next to its breaker, and when it was last looked up.
struct Entry<K, C, const L: usize> {
    key: K,
    /// The key's table hash, computed once at insertion: growing a table and evicting run no
    /// `Hash` of the key (user code, which may panic under a write lock).
    hash: u64,
    breaker: CircuitBreaker<C, L>,
    /// The map clock's reading at the latest lookup (only kept when `idle_after` is set).
    touched: AtomicU64,
}

/// A handle to one key's breaker, from [`BreakerMap::get`] or [`BreakerMap::get_or_insert`].
///
/// It dereferences to the [`CircuitBreaker`], so every breaker method works on it, and
/// [`CircuitBreaker::allow_owned`] takes it as the handle of an
/// [`OwnedPermit`](crate::OwnedPermit). While a handle (or a clone) is alive its entry is not
/// idle and is never evicted. Calls made on the breaker directly are not seen by the map's
/// [`KeyListener`]s (its own listeners still are).
pub struct KeyedBreaker<K, C, const L: usize = 4>(Arc<Entry<K, C, L>>);

impl<K, C, const L: usize> KeyedBreaker<K, C, L> {
    /// The key this breaker belongs to.
    pub fn key(&self) -> &K {
        &self.0.key
    }

    /// Whether both handles are to the same entry (not merely the same key: an entry removed
    /// and created again is a new one).
    pub fn same_entry(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<K, C, const L: usize> Clone for KeyedBreaker<K, C, L> {
    fn clone(&self) -> Self {
        KeyedBreaker(Arc::clone(&self.0))
    }
}

impl<K, C, const L: usize> Deref for KeyedBreaker<K, C, L> {
    type Target = CircuitBreaker<C, L>;
    #[inline]
    fn deref(&self) -> &CircuitBreaker<C, L> {
        &self.0.breaker
    }
}

impl<K: fmt::Debug, C, const L: usize> fmt::Debug for KeyedBreaker<K, C, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBreaker")
            .field("key", &self.0.key)
            .field("breaker", &self.0.breaker)
            .finish()
    }
}

/// One shard, on its own cache lines so that two threads on two shards do not share one.
/// Entries are found by the key's hash and the key stored in the entry.
#[repr(align(128))]
struct Shard<K, C, const L: usize> {
    map: RwLock<HashTable<Arc<Entry<K, C, L>>>>,
}

/// A bounded map of circuit breakers by key, sharing one [`Config`] and one clock; see the
/// [module documentation](self) for the layout and the exact meaning of idle.
///
/// ```
/// use atomic_breaker::{BreakerMap, Config, ManualClock, MapFull, State};
///
/// let clock = ManualClock::new();
/// let hosts = BreakerMap::<String, _>::try_new("upstream", Config::new().fail_max(1), &clock, 2)
///     .unwrap();
///
/// // Get-or-create by key (a `&str` finds a `String` key without allocating).
/// let _ = hosts.call("a.example", || Err::<(), _>("refused")).unwrap();
/// assert_eq!(hosts.get("a.example").unwrap().state(), State::Open);
/// assert!(hosts.call("b.example", || Ok::<_, ()>(1)).unwrap().is_ok());
///
/// // Full: "b" is idle (Closed, no failures, no call in flight) and makes room for "c";
/// // "a" is Open and is never evicted.
/// assert!(hosts.call("c.example", || Ok::<_, ()>(1)).unwrap().is_ok());
/// assert!(hosts.get("b.example").is_none());
/// assert_eq!(hosts.get("a.example").unwrap().state(), State::Open);
///
/// // With "c" in use and "a" open, nothing is idle: a new key is refused, with a typed error.
/// let c = hosts.get("c.example").unwrap();
/// assert_eq!(hosts.get_or_insert("d.example").unwrap_err(), MapFull { capacity: 2 });
/// drop(c);
/// ```
pub struct BreakerMap<K, C, const L: usize = 4, S = RandomState> {
    shards: Box<[Shard<K, C, L>]>,
    hasher: S,
    name: &'static str,
    config: Config,
    clock: C,
    capacity: usize,
    len: AtomicUsize,
    /// 0: lookups do not touch the entry's time.
    idle_after_ms: u64,
    /// Where the next eviction starts looking.
    cursor: AtomicUsize,
    listeners: Vec<(Interest, KeyListener<K>)>,
    /// Union of the listeners' interests (`None`: no listener).
    interest: Option<Interest>,
    evictions: AtomicU64,
    /// Key listener calls that panicked and were caught.
    listener_panics: AtomicU64,
}

impl<K, C, const L: usize> BreakerMap<K, C, L, RandomState>
where
    K: Hash + Eq,
    C: Clock + Clone,
{
    /// An empty map of at most `capacity` breakers, each named `name`, configured by
    /// `config` and reading time from a clone of `clock`.
    ///
    /// Returns the configuration's error if it is invalid (checked once, here). A capacity of
    /// 0 is allowed: every insert then fails with [`MapFull`].
    pub fn try_new(
        name: &'static str,
        config: Config,
        clock: C,
        capacity: usize,
    ) -> Result<Self, ConfigError> {
        Self::try_with_hasher(name, config, clock, capacity, RandomState::new())
    }
}

impl<K, C, const L: usize, S> BreakerMap<K, C, L, S>
where
    K: Hash + Eq,
    C: Clock + Clone,
    S: BuildHasher + Clone,
{
    /// Like [`try_new`](BreakerMap::try_new), with the hasher `hasher` (its hash of a key
    /// picks the shard and the place in the shard's table).
    pub fn try_with_hasher(
        name: &'static str,
        config: Config,
        clock: C,
        capacity: usize,
        hasher: S,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let shards = (0..SHARDS)
            .map(|_| Shard {
                map: RwLock::new(HashTable::new()),
            })
            .collect();
        Ok(BreakerMap {
            shards,
            hasher,
            name,
            config,
            clock,
            capacity,
            len: AtomicUsize::new(0),
            idle_after_ms: 0,
            cursor: AtomicUsize::new(0),
            listeners: Vec::new(),
            interest: None,
            evictions: AtomicU64::new(0),
            listener_panics: AtomicU64::new(0),
        })
    }

    /// An entry counts as idle only once it has not been looked up for `d` (see the module
    /// documentation). Costs a clock read per lookup (and a store at most once per
    /// millisecond per key); 0 (the default) turns it off.
    pub fn idle_after(mut self, d: Duration) -> Self {
        self.idle_after_ms = duration_ms(d);
        self
    }

    /// Adds a listener told the key of every event, for the events `interest` names.
    ///
    /// The map calls it around the calls it runs itself ([`call`](Self::call),
    /// [`call_with`](Self::call_with)), from what the breaker returned:
    /// - `BeforeCall`, then `Success`, `Failure` or `Ignored` ([`Interest::CALLS`]);
    /// - `Rejected { state, retry_after }` ([`Interest::REJECTIONS`]);
    /// - `StateChange` ([`Interest::STATE_CHANGES`]) for the moves a call's report makes:
    ///   Closed → Open and HalfOpen → Open (the report that tripped the breaker), and
    ///   HalfOpen → Closed (the last trial success). Each reaches listeners exactly once, from
    ///   the call whose report made it.
    ///
    /// Not seen: the Open → HalfOpen move (the first trial's outcome follows it), management
    /// (`open`, `close`, ...) and calls made directly on a [`KeyedBreaker`]. Without any
    /// listener, a call through the map dispatches nothing.
    ///
    /// A listener that panics is caught and counted in
    /// [`listener_panics`](Self::listener_panics), as the breaker's own listeners are: the
    /// call goes on, and its outcome counts as if the listener had returned.
    pub fn with_listener_for(mut self, interest: Interest, f: KeyListener<K>) -> Self {
        self.listeners.push((interest, f));
        self.interest = Some(self.interest.map_or(interest, |i| i | interest));
        self
    }

    /// Like [`with_listener_for`](Self::with_listener_for), for every event.
    pub fn with_listener(self, f: KeyListener<K>) -> Self {
        self.with_listener_for(Interest::ALL, f)
    }

    // ------------------------------------------------------------------- lookups

    /// The key's hash and its shard.
    #[inline]
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> (u64, &Shard<K, C, L>) {
        table_hash(self.hasher.hash_one(key)).map_shard(|i| &self.shards[i & (SHARDS - 1)])
    }

    /// The hash the tables are built with, for moving entries on growth: the one kept in
    /// the entry (no user code).
    fn hash_of(e: &Arc<Entry<K, C, L>>) -> u64 {
        e.hash
    }

    #[inline]
    fn touch(&self, e: &Entry<K, C, L>) {
        if self.idle_after_ms != 0 {
            let now = self.clock.now_ms();
            if e.touched.load(Ordering::Relaxed) != now {
                e.touched.store(now, Ordering::Relaxed);
            }
        }
    }

    /// The breaker of `key`, if the map has one. A read lock of one shard and an `Arc` clone.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<KeyedBreaker<K, C, L>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.shard(key);
        let table = read(&shard.map);
        let e = table.find(hash, |e| e.key.borrow() == key)?;
        self.touch(e);
        Some(KeyedBreaker(Arc::clone(e)))
    }

    /// The breaker of `key`, created (Closed, with the map's configuration and clock) if the
    /// map has none. If the map is full, one idle breaker is evicted to make room; if none is
    /// idle, [`MapFull`] and nothing changes.
    #[inline]
    pub fn get_or_insert<Q>(&self, key: &Q) -> Result<KeyedBreaker<K, C, L>, MapFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let (hash, shard) = self.shard(key);
        if let Some(e) = read(&shard.map).find(hash, |e| e.key.borrow() == key) {
            self.touch(e);
            return Ok(KeyedBreaker(Arc::clone(e)));
        }
        self.insert_slow(key, hash, shard)
    }

    #[cold]
    fn insert_slow<Q>(
        &self,
        key: &Q,
        hash: u64,
        shard: &Shard<K, C, L>,
    ) -> Result<KeyedBreaker<K, C, L>, MapFull>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // Reserve a place first: a free one, or one freed by evicting an idle entry (the
        // evictor keeps the place it freed, so no other insert can take it meanwhile). The
        // reservation gives the place back when dropped, so also if the key's `Eq` or
        // `ToOwned`, or the clock, panics below.
        let Some(place) = self.reserve().or_else(|| self.evict_one()) else {
            // Another thread may have added the key meanwhile.
            return self.get(key).ok_or(MapFull {
                capacity: self.capacity,
            });
        };
        let mut table = write(&shard.map);
        if let Some(e) = table.find(hash, |e| e.key.borrow() == key) {
            // Added meanwhile: give the place back.
            drop(place);
            self.touch(e);
            return Ok(KeyedBreaker(Arc::clone(e)));
        }
        let entry = Arc::new(Entry {
            key: key.to_owned(),
            hash,
            // The configuration was validated in `try_with_hasher` and is not changed since,
            // so `new` (which panics only on an invalid configuration) cannot panic here.
            breaker: CircuitBreaker::new(self.name, self.config, self.clock.clone()),
            touched: AtomicU64::new(if self.idle_after_ms != 0 {
                self.clock.now_ms()
            } else {
                0
            }),
        });
        // Growing the table may allocate, and runs no user code (`hash_of`).
        table.insert_unique(hash, Arc::clone(&entry), Self::hash_of);
        place.fill();
        Ok(KeyedBreaker(entry))
    }

    /// Takes a free place if there is one.
    fn reserve(&self) -> Option<Place<'_>> {
        let mut n = self.len.load(Ordering::Relaxed);
        while n < self.capacity {
            match self
                .len
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Place(&self.len)),
                Err(actual) => n = actual,
            }
        }
        None
    }

    /// Removes one idle entry, keeping its place counted (for the caller to fill). Visits the
    /// shards in rotating order, one write lock at a time; in a shard, evicts the idle entry
    /// looked up least recently. The entry is dropped (its key's `Drop` runs) after the
    /// shard's lock is released and once the place is held, so a panic there gives it back.
    fn evict_one(&self) -> Option<Place<'_>> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let now = if self.idle_after_ms != 0 {
            self.clock.now_ms()
        } else {
            0
        };
        for i in 0..SHARDS {
            let shard = &self.shards[(start + i) & (SHARDS - 1)];
            let mut table = write(&shard.map);
            // The oldest idle entry, named by its hash and address (only compared, never
            // dereferenced).
            let victim = table
                .iter_mut()
                .filter_map(|e| {
                    let touched = self.idle_entry(e, now)?;
                    Some((touched, e.hash, Arc::as_ptr(e)))
                })
                .min_by_key(|&(touched, _, _)| touched);
            let Some((_, hash, ptr)) = victim else {
                continue;
            };
            if let Ok(found) = table.find_entry(hash, |e| core::ptr::eq(Arc::as_ptr(e), ptr)) {
                let (victim, _) = found.remove();
                drop(table);
                self.evictions.fetch_add(1, Ordering::Relaxed);
                let place = Place(&self.len);
                drop(victim);
                return Some(place);
            }
        }
        None
    }

    /// `Some(last lookup time)` if the entry is idle; see the module documentation. Called
    /// under the entry's shard write lock, so no lookup can clone the `Arc` meanwhile.
    fn idle_entry(&self, e: &mut Arc<Entry<K, C, L>>, now: u64) -> Option<u64> {
        // Unique: no handle, call or permit anywhere. `get_mut` synchronises with the drops of
        // every other clone, so the reads below see everything their holders did.
        let e = Arc::get_mut(e)?;
        let touched = *e.touched.get_mut();
        let idle = e.breaker.state() == State::Closed
            && e.breaker.fail_counter() == 0
            && now.saturating_sub(touched) >= self.idle_after_ms;
        idle.then_some(touched)
    }

    // ------------------------------------------------------------------- calls

    /// Runs `f` under the breaker of `key` (created if needed): `Ok` counts as a success,
    /// `Err` as a failure. The outer `Err` is [`MapFull`] (the key has no breaker and there
    /// is no room for one; `f` did not run); the inner result is the breaker's, as
    /// [`CircuitBreaker::call`].
    ///
    /// Cost on the closed path: a hash, a shard read lock, an `Arc` clone and drop around the
    /// breaker's own call (see the README's "One breaker per key" for the figures).
    #[inline]
    pub fn call<Q, T, E>(
        &self,
        key: &Q,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, Error<E>>, MapFull>
    where
        E: fmt::Debug,
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.call_with(key, Outcome::of, f)
    }

    /// Like [`call`](Self::call), counting the result as `classify` says (see
    /// [`CircuitBreaker::call_with`]).
    #[inline]
    pub fn call_with<Q, T, E>(
        &self,
        key: &Q,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, Error<E>>, MapFull>
    where
        E: fmt::Debug,
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let handle = self.get_or_insert(key)?;
        if self.listeners.is_empty() {
            return Ok(handle.call_with(classify, f));
        }
        Ok(self.observed_call(&handle.0, classify, f))
    }

    /// A call with the map's listeners told, from what the breaker returns.
    fn observed_call<T, E: fmt::Debug>(
        &self,
        e: &Entry<K, C, L>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let permit = match e.breaker.allow() {
            Ok(p) => p,
            Err(r) => {
                self.emit(
                    &e.key,
                    EventKind::Rejected {
                        state: r.state,
                        retry_after: r.retry_after,
                    },
                );
                return Err(Error::Rejected(r));
            }
        };
        let trial = permit.is_trial();
        self.emit(&e.key, EventKind::BeforeCall);
        let result = f();
        let outcome = classify(&result);
        let error = result.as_ref().err().map(|e| e as &dyn fmt::Debug);
        let recorded = permit.report(outcome);
        let kind = match outcome {
            Outcome::Success => EventKind::Success {
                failures: e.breaker.fail_counter(),
            },
            Outcome::Failure => EventKind::Failure {
                failures: e.breaker.fail_counter(),
                error,
            },
            Outcome::Ignored => EventKind::Ignored { error },
        };
        self.emit(&e.key, kind);
        let change = match recorded {
            // In HalfOpen every permit is a trial; in Closed none is.
            Recorded::Tripped if trial => Some((State::HalfOpen, State::Open)),
            Recorded::Tripped => Some((State::Closed, State::Open)),
            Recorded::Closed => Some((State::HalfOpen, State::Closed)),
            Recorded::Counted | Recorded::Dropped => None,
        };
        if let Some((from, to)) = change {
            // Read just after the change: another thread may have moved the breaker since.
            let snap = e.breaker.snapshot();
            let retry_after = if to == State::Open {
                snap.retry_after
            } else {
                None
            };
            self.emit(
                &e.key,
                EventKind::StateChange {
                    from,
                    to,
                    failures: snap.fail_counter,
                    retry_after,
                },
            );
        }
        result.map_err(|error| Error::Failed {
            error,
            tripped: recorded == Recorded::Tripped,
        })
    }

    /// Calls the map's listeners that want `kind`'s class. Events are built in
    /// `observed_call` only.
    fn emit(&self, key: &K, kind: EventKind<'_>) {
        let class = Interest::of(&kind);
        if !self.interest.is_some_and(|i| i.contains(class)) {
            return;
        }
        let event = Event {
            name: self.name,
            kind,
        };
        for &(interest, f) in &self.listeners {
            if interest.contains(class)
                && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(key, &event)))
                    .is_err()
            {
                self.listener_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // ------------------------------------------------------------------- management

    /// Removes the breaker of `key` whatever its state, and returns it. An operator's
    /// decision: unlike eviction, this drops failures. Handles already out keep working on the
    /// removed breaker; the next lookup of `key` creates a new one.
    pub fn remove<Q>(&self, key: &Q) -> Option<KeyedBreaker<K, C, L>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (hash, shard) = self.shard(key);
        let mut table = write(&shard.map);
        let (removed, _) = table
            .find_entry(hash, |e| e.key.borrow() == key)
            .ok()?
            .remove();
        drop(table);
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(KeyedBreaker(removed))
    }

    /// The key and [`snapshot`](CircuitBreaker::snapshot) of every breaker, one shard at a
    /// time (each shard's read lock is held while its entries are copied, not across shards,
    /// so the result is not one instant of the whole map).
    pub fn snapshots(&self) -> Vec<(K, Snapshot)>
    where
        K: Clone,
    {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let table = read(&shard.map);
            out.extend(table.iter().map(|e| (e.key.clone(), e.breaker.snapshot())));
        }
        out
    }

    /// The number of breakers in the map.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the map holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most breakers the map holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Idle breakers evicted so far to make room for new keys.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Calls of the map's [`KeyListener`]s that panicked and were caught.
    pub fn listener_panics(&self) -> u64 {
        self.listener_panics.load(Ordering::Relaxed)
    }

    /// The name every per-key breaker carries (and events' `name`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The clock every per-key breaker reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

/// A place reserved in the map's count (`len`) for an insert. Dropped, it gives the place
/// back: when the key turned out to be there already, or when user code (the key's `Eq` or
/// `ToOwned`, the clock, an evicted key's `Drop`) panicked before the insert. An insert that
/// succeeds keeps it with [`fill`](Place::fill).
#[must_use]
struct Place<'a>(&'a AtomicUsize);

impl Place<'_> {
    /// The entry is in its table: the place stays counted.
    fn fill(self) {
        core::mem::forget(self);
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<K, C, const L: usize, S> fmt::Debug for BreakerMap<K, C, L, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerMap")
            .field("name", &self.name)
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .field("idle_after_ms", &self.idle_after_ms)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

/// A key's hash, split: the top [`SHARD_BITS`] pick the shard; the table gets the hash rotated
/// so that those bits move to the bottom. (hashbrown's tags are the top 7 bits of the hash it
/// is given: unrotated, all keys of a shard would share 4 of them, and a lookup would compare
/// more keys.)
#[derive(Clone, Copy)]
struct TableHash(u64, usize);

impl TableHash {
    #[inline]
    fn map_shard<T>(self, f: impl FnOnce(usize) -> T) -> (u64, T) {
        (self.0, f(self.1))
    }
}

#[inline]
fn table_hash(hash: u64) -> TableHash {
    TableHash(
        hash.rotate_left(SHARD_BITS),
        (hash >> (u64::BITS - SHARD_BITS)) as usize,
    )
}

/// A read lock. A panic while the lock was held (only in a key's `Hash` or `Eq`: the map
/// runs no other user code under a lock) leaves the table usable, so poisoning is ignored.
#[inline]
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// A write lock; poisoning ignored, as for [`read`].
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
