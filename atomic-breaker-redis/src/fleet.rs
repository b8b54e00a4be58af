//! [`FleetBreaker`]: a local [`CircuitBreaker`] on the hot path, kept in step with the fleet by
//! a background task.

use core::future::Future;
use core::time::Duration;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use atomic_breaker::{
    CircuitBreaker, Config, Error, Outcome, Permit, Recorded, Rejected, Snapshot, State, StdClock,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::error::{DegradedCause, FleetError};
use crate::record::Record;
use crate::scripts::{Keys, Manage};
use crate::task::{Msg, Task, TaskConfig};

/// What the fleet layer tells its observers (see [`FleetBreaker::events`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// A Redis command failed or timed out: the breaker now protects as a local breaker only.
    /// Sent once, at the first failure; [`FleetBreaker::degraded`] follows the latest cause.
    Degraded {
        /// Why: Redis unreachable, timing out, answering with an error, or answering nonsense.
        cause: DegradedCause,
        /// The error, as text.
        error: String,
    },
    /// The stored record could not be trusted (a field out of range or unparsable, the key of
    /// another type) and a script replaced it by a fresh one in a new epoch, as after a wipe:
    /// this process re-publishes its trip if it is open locally. Coordination goes on; this is
    /// for logs and alerts (someone or something wrote to the key).
    Replaced {
        /// The first field that failed validation, or `type`.
        field: String,
    },
    /// Redis answered again after [`Degraded`](FleetEvent::Degraded); the breaker resyncs.
    Restored,
    /// A newer fleet record was applied to the local breaker (after the local change).
    Applied(Record),
}

/// How a [`FleetBreaker`] is set up; from [`FleetBreaker::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    name: Cow<'static, str>,
    url: String,
    prefix: String,
    config: Config,
    command_timeout: Duration,
    connect_timeout: Duration,
    refresh: Duration,
    lease: Duration,
    ttl: Duration,
    claims_trials: bool,
    token: Option<String>,
}

impl Builder {
    /// Key prefix (default `atomic-breaker`): the record is `<prefix>:{<name>}`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The local breaker's configuration (`fail_max`, `reset_timeout`, ...). `reset_timeout`
    /// is also the fleet's open period after a trip.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Bound on every Redis command (default 250 ms). Callers never wait for it; it bounds how
    /// long the background task waits before it declares Redis degraded.
    pub fn command_timeout(mut self, d: Duration) -> Self {
        self.command_timeout = d;
        self
    }

    /// Bound on connecting to Redis (default 500 ms).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How often the record is re-read, in case a pub/sub message was lost (default 1 s). This
    /// is the worst-case propagation time when pub/sub fails; also the reconnection cadence.
    pub fn refresh(mut self, d: Duration) -> Self {
        self.refresh = d;
        self
    }

    /// The fleet trial's lease (default 10 s): after it, another process may claim the trial.
    /// Make it longer than a trial call can take. At most 24 h ([`FleetError::Period`]).
    pub fn trial_lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// Minimum TTL of the record (default 1 h); raised to at least twice the open period plus
    /// the lease. Every write and every refresh renews it.
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = d;
        self
    }

    /// Whether this process may take the fleet trial (default true). An observer (a dashboard,
    /// `breakerctl watch`) that sends no traffic should not, or the trial waits for its lease.
    pub fn claims_trials(mut self, yes: bool) -> Self {
        self.claims_trials = yes;
        self
    }

    /// This process's identity as trial owner (default `<hostname>-<pid>-<n>`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Builds the breaker and starts its background task on the current tokio runtime.
    ///
    /// Works while Redis is down: the task keeps trying to connect, and until it does the
    /// breaker is a local breaker (and reports [`FleetEvent::Degraded`]).
    ///
    /// Errors: [`FleetError::NoRuntime`], [`FleetError::Name`], [`FleetError::Url`] (a URL it
    /// cannot use, said at once rather than as a `Degraded` event later),
    /// [`FleetError::Config`], [`FleetError::Period`] (a lease over 24 h), [`FleetError::Token`].
    pub fn build(self) -> Result<FleetBreaker, FleetError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let keys = Keys::new(&self.prefix, &self.name)?;
        let client = client(&self.url)?;
        if self.lease > atomic_breaker::MAX_PERIOD {
            return Err(FleetError::Period(self.lease));
        }
        // Validate before interning: a refused name is not kept.
        self.config.validate().map_err(FleetError::Config)?;
        let token = self.token.unwrap_or_else(default_token);
        if !token_ok(&token) {
            return Err(FleetError::Token(token));
        }
        let local = CircuitBreaker::try_new(intern(self.name), self.config, StdClock)
            .map_err(FleetError::Config)?;
        let open = local.reset_timeout();
        let ttl = self
            .ttl
            .max(open * 2 + self.lease + Duration::from_secs(60));
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            local,
            fleet_gen: AtomicU64::new(0),
            tx,
            events,
            status: Mutex::new(Status::default()),
            progress: watch::Sender::new(0),
            keys,
            token,
            command_timeout: self.command_timeout,
        });
        let task = Task::new(
            shared.clone(),
            client,
            TaskConfig {
                command_timeout: self.command_timeout,
                connect_timeout: self.connect_timeout,
                refresh: self.refresh,
                lease: self.lease,
                ttl,
                claims_trials: self.claims_trials,
                grace: self.command_timeout,
            },
        );
        let handle = runtime.spawn(task.run(rx));
        Ok(FleetBreaker {
            shared,
            _task: Arc::new(AbortOnDrop(handle)),
        })
    }
}

/// A token the scripts accept as an owner: 1 to 128 bytes, no `|`, no whitespace.
fn token_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && !token.contains(|c: char| c == '|' || c.is_whitespace())
}

/// A `&'static str` for the core breaker's name. A run-time name is leaked once per distinct
/// name for the life of the process (a set of them is kept), so building breakers again and
/// again under the same names does not grow memory.
fn intern(name: Cow<'static, str>) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    match name {
        Cow::Borrowed(s) => s,
        Cow::Owned(s) => {
            let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = names.get(s.as_str()) {
                return n;
            }
            let leaked: &'static str = Box::leak(s.into_boxed_str());
            names.insert(leaked);
            leaked
        }
    }
}

/// `url` with the password (everything between `://` and `@`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// A client for `url`, or [`FleetError::Url`] saying why this crate cannot use it.
pub(crate) fn client(url: &str) -> Result<redis::Client, FleetError> {
    let bad = |reason: String| FleetError::Url {
        url: redact(url),
        reason,
    };
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    match scheme {
        "redis+sentinel" | "redis-sentinel" | "rediss+sentinel" | "sentinel" => {
            return Err(bad(
                "Sentinel URLs are not supported: pass the current master's \
                            redis:// URL"
                    .to_owned(),
            ));
        }
        "" => {
            return Err(bad(
                "not a URL: expected redis://host:port/db, redis+unix:///path or unix:///path"
                    .to_owned(),
            ));
        }
        _ => {}
    }
    if url.contains(',') {
        return Err(bad(
            "several nodes (Redis Cluster) are not supported: pass one node's URL".to_owned(),
        ));
    }
    redis::Client::open(url).map_err(|e| bad(e.to_string()))
}

fn default_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && !h.contains(|c: char| c == '|' || c.is_whitespace()))
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the task publishes for monitoring.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) record: Option<Record>,
    /// When Redis last sent `record` (an answer or a message).
    pub(crate) confirmed_at: Option<Instant>,
    pub(crate) degraded: Option<DegradedCause>,
}

/// Everything the breaker handle and the task share.
pub(crate) struct Shared {
    pub(crate) local: CircuitBreaker<StdClock>,
    /// The fleet generation last applied; read when a local trip or close is reported.
    pub(crate) fleet_gen: AtomicU64,
    pub(crate) tx: mpsc::UnboundedSender<Msg>,
    pub(crate) events: broadcast::Sender<FleetEvent>,
    pub(crate) status: Mutex<Status>,
    /// Bumped at every change of `status` (wakes [`FleetBreaker::ready`]).
    pub(crate) progress: watch::Sender<u64>,
    pub(crate) keys: Keys,
    pub(crate) token: String,
    command_timeout: Duration,
}

impl Shared {
    /// After a report: a local trip or close is news for the fleet; the rest is not. Never
    /// waits (an unbounded channel to the task; at most one trip per open period).
    ///
    /// The report carries the fleet generation applied when it is made, not when the call was
    /// admitted: every fleet record that changes the local state also changes the local
    /// breaker's generation, so a permit admitted before such a change has already been
    /// dropped by the core (`Recorded::Dropped`) and never gets here.
    #[inline(always)]
    fn reported(&self, r: Recorded) {
        if matches!(r, Recorded::Tripped | Recorded::Closed) {
            self.notify(r);
        }
    }

    /// Out of line and cold: the closed path keeps only the compare above.
    #[cold]
    #[inline(never)]
    fn notify(&self, r: Recorded) {
        let gen = self.fleet_gen.load(Ordering::Relaxed);
        let msg = if r == Recorded::Tripped {
            Msg::Tripped { gen }
        } else {
            Msg::Closed { gen }
        };
        let _ = self.tx.send(msg);
    }

    pub(crate) fn emit(&self, e: FleetEvent) {
        let _ = self.events.send(e);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A circuit breaker shared by many processes through Redis, with the hot path still local.
///
/// Admission and reports are the core crate's atomic operations on a local breaker; in steady
/// state (closed, calls succeeding) no Redis command is sent. A background task publishes local
/// trips, learns the fleet's state by pub/sub and a periodic refresh, and runs the fleet's one
/// trial. Cloning is cheap and shares the breaker; the task stops with the last clone.
#[derive(Clone)]
pub struct FleetBreaker {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

impl core::fmt::Debug for FleetBreaker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FleetBreaker")
            .field("record", &self.shared.keys.record)
            .field("token", &self.shared.token)
            .field("local", &self.shared.local)
            .finish_non_exhaustive()
    }
}

impl FleetBreaker {
    /// A builder for breaker `name` on the Redis at `url` (`redis://host:port/db`,
    /// `redis+unix:///path`). The name becomes the key's hash tag.
    ///
    /// `name` is a `&'static str` or a run-time `String`; the local breaker needs a
    /// `&'static str`, so a `String` name is kept for the life of the process, once per distinct
    /// name (building a breaker again under a name already used allocates nothing).
    pub fn builder(name: impl Into<Cow<'static, str>>, url: impl Into<String>) -> Builder {
        Builder {
            name: name.into(),
            url: url.into(),
            prefix: "atomic-breaker".to_owned(),
            config: Config::new(),
            command_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            refresh: Duration::from_secs(1),
            lease: Duration::from_secs(10),
            ttl: Duration::from_secs(3600),
            claims_trials: true,
            token: None,
        }
    }

    // ------------------------------------------------------------------ calling (local)

    /// Asks to run one call: exactly the local breaker's [`allow`](CircuitBreaker::allow).
    /// Never touches the network.
    #[inline]
    pub fn allow(&self) -> Result<FleetPermit<'_>, Rejected> {
        let permit = self.shared.local.allow()?;
        Ok(FleetPermit {
            permit,
            shared: &self.shared,
        })
    }

    /// Runs `f` if admitted: `Ok` is a success, `Err` a failure (as the core's `call`).
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(Outcome::of, f)
    }

    /// Runs `f` if admitted and counts the result as `classify` says.
    #[inline]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        // The core permit directly (not wrapped in a `FleetPermit`): the same code as the
        // core's `call_with` plus one match on the report.
        let permit = self.shared.local.allow().map_err(Error::Rejected)?;
        let result = f();
        let recorded = permit.report(classify(&result));
        self.shared.reported(recorded);
        result.map_err(|error| Error::Failed {
            error,
            tripped: recorded == Recorded::Tripped,
        })
    }

    /// Awaits `f` if admitted; a future dropped before it finishes gives its permit back.
    pub async fn call_async<T, E>(
        &self,
        f: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Error<E>> {
        let permit = self.allow().map_err(Error::Rejected)?;
        let result = f.await;
        let recorded = permit.report(Outcome::of(&result));
        result.map_err(|error| Error::Failed {
            error,
            tripped: recorded == Recorded::Tripped,
        })
    }

    // ------------------------------------------------------------------ monitoring

    /// The local breaker's state (what this process admits by).
    pub fn state(&self) -> State {
        self.shared.local.state()
    }

    /// The local breaker's snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.local.snapshot()
    }

    /// The local breaker, for listeners and monitoring. Management through it is local only;
    /// use this type's methods to act on the fleet.
    pub fn local(&self) -> &CircuitBreaker<StdClock> {
        &self.shared.local
    }

    /// The fleet record last received from Redis (`None` before the first answer). See
    /// [`fleet_age`](Self::fleet_age) for how old it is: while Redis is degraded it is the last
    /// good one, and its `retry_after` / `lease_remaining` were measured when it came.
    pub fn fleet(&self) -> Option<Record> {
        self.status(|s| s.record.clone())
    }

    /// How long ago Redis last confirmed [`fleet`](Self::fleet)'s record (a refresh, a script's
    /// answer or a pub/sub message): about the refresh period at most while Redis answers,
    /// growing while it does not. `None` before the first answer.
    pub fn fleet_age(&self) -> Option<Duration> {
        self.status(|s| s.confirmed_at.map(|at| at.elapsed()))
    }

    /// Whether Redis is currently failing (the breaker protects locally meanwhile).
    pub fn is_degraded(&self) -> bool {
        self.status(|s| s.degraded.is_some())
    }

    /// Why Redis is currently failing (`None` while it answers).
    pub fn degraded(&self) -> Option<DegradedCause> {
        self.status(|s| s.degraded)
    }

    /// Readiness: waits (at most `limit`) until this breaker has a record from Redis and Redis
    /// is answering, and returns that record. Right after [`Builder::build`] the breaker
    /// protects locally but is not coordinated yet; a service can wait on this before it
    /// reports ready, or go on without it (the breaker joins the fleet when Redis answers).
    ///
    /// Errors: [`FleetError::Timeout`] after `limit` (see [`degraded`](Self::degraded) for
    /// why), [`FleetError::Closed`] if the task has stopped.
    pub async fn ready(&self, limit: Duration) -> Result<Record, FleetError> {
        let mut progress = self.shared.progress.subscribe();
        let deadline = Instant::now() + limit;
        loop {
            let ready = self.status(|s| s.record.clone().filter(|_| s.degraded.is_none()));
            if let Some(r) = ready {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(FleetError::Closed),
                Err(_) => return Err(FleetError::Timeout(limit)),
            }
        }
    }

    /// Fleet events from now on: [`FleetEvent::Degraded`], [`FleetEvent::Restored`],
    /// [`FleetEvent::Applied`]. A slow receiver loses the oldest (tokio `broadcast`).
    pub fn events(&self) -> broadcast::Receiver<FleetEvent> {
        self.shared.events.subscribe()
    }

    /// This process's trial-owner token.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The Redis key and channel.
    pub fn keys(&self) -> &Keys {
        &self.shared.keys
    }

    fn status<T>(&self, f: impl FnOnce(&Status) -> T) -> T {
        match self.shared.status.lock() {
            Ok(s) => f(&s),
            Err(p) => f(&p.into_inner()),
        }
    }

    // ------------------------------------------------------------------ fleet management

    /// Re-reads the record now and applies it; returns it.
    pub async fn refresh(&self) -> Result<Record, FleetError> {
        self.ask(Msg::Sync).await
    }

    /// Opens the fleet for one open period (`reset_timeout`); a no-op if already open. Applied
    /// locally at once, then in Redis (an error means the fleet did not hear it).
    pub async fn open(&self) -> Result<Record, FleetError> {
        self.shared.local.open();
        let d = self.shared.local.reset_timeout();
        self.ask(|tx| Msg::Manage(Manage::Open(d), tx)).await
    }

    /// Opens the fleet for exactly `d` (for example a server's `Retry-After`).
    pub async fn trip_for(&self, d: Duration) -> Result<Record, FleetError> {
        self.shared.local.trip_for(d).map_err(FleetError::Config)?;
        self.ask(|tx| Msg::Manage(Manage::TripFor(d), tx)).await
    }

    /// Closes the fleet; releases forced-open and disabled.
    ///
    /// The close is a new fleet generation even if the record is already Closed, so a trip
    /// reported before it (by a process that tripped before a wipe, or whose report is still
    /// in flight) is stale and cannot undo it; after a wipe the processes that are open locally
    /// adopt it instead of re-publishing their trip. `Ok` means the record holds it.
    pub async fn close(&self) -> Result<Record, FleetError> {
        self.shared.local.close();
        self.ask(|tx| Msg::Manage(Manage::Close, tx)).await
    }

    /// Rejects every call in the fleet until [`close`](Self::close).
    pub async fn force_open(&self) -> Result<Record, FleetError> {
        self.shared.local.force_open();
        self.ask(|tx| Msg::Manage(Manage::ForceOpen, tx)).await
    }

    /// Admits every call in the fleet and records nothing until [`close`](Self::close).
    pub async fn disable(&self) -> Result<Record, FleetError> {
        self.shared.local.disable();
        self.ask(|tx| Msg::Manage(Manage::Disable, tx)).await
    }

    async fn ask(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<Record, FleetError>>) -> Msg,
    ) -> Result<Record, FleetError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .tx
            .send(msg(tx))
            .map_err(|_| FleetError::Closed)?;
        // The task may be busy with one connection attempt and one command before this one.
        let bound = self.shared.command_timeout * 4 + Duration::from_secs(1);
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(FleetError::Closed),
            Err(_) => Err(FleetError::Timeout(bound)),
        }
    }
}

/// Permission to run one call, from [`FleetBreaker::allow`]; report how it went.
///
/// Dropped without a report, it gives a trial slot back (as the core's [`Permit`]). Dropped
/// during a panic, the core permit counts a failure; if that failure trips the local breaker,
/// the fleet hears of it at the next refresh (the local breaker is Open while the fleet is
/// Closed), not at once: this type has no `Drop` of its own, which keeps its moves cheap.
#[must_use = "report the call's outcome with success(), failure() or ignore()"]
pub struct FleetPermit<'a> {
    permit: Permit<'a, StdClock, 4>,
    shared: &'a Shared,
}

impl core::fmt::Debug for FleetPermit<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FleetPermit")
            .field("permit", &self.permit)
            .finish()
    }
}

impl FleetPermit<'_> {
    /// Whether this call is a trial (only the fleet trial's owner admits trials, unless Redis
    /// is down and the local breaker runs its own).
    pub fn is_trial(&self) -> bool {
        self.permit.is_trial()
    }

    /// Reports a success.
    #[inline]
    pub fn success(self) -> Recorded {
        self.report(Outcome::Success)
    }

    /// Reports a failure.
    pub fn failure(self) -> Recorded {
        self.report(Outcome::Failure)
    }

    /// Reports a call that says nothing about the dependency.
    pub fn ignore(self) -> Recorded {
        self.report(Outcome::Ignored)
    }

    /// Reports `outcome` to the local breaker; a trip or a close is handed to the background
    /// task (never waited for).
    #[inline]
    pub fn report(self, outcome: Outcome) -> Recorded {
        let FleetPermit { permit, shared } = self;
        let r = permit.report(outcome);
        shared.reported(r);
        r
    }
}

#[cfg(test)]
mod tests {
    //! The handle's local side, without Redis: a stand-in task receives what the handle sends.

    use super::*;
    use crate::record::FleetState;

    /// A fleet breaker named `unit` (key `t:{unit}`, token `tok-1`) whose "task" is `task`; the
    /// messages for the real task land in the returned receiver.
    fn handle(
        config: Config,
        command_timeout: Duration,
        task: tokio::task::JoinHandle<()>,
    ) -> (FleetBreaker, mpsc::UnboundedReceiver<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(16);
        let shared = Arc::new(Shared {
            local: CircuitBreaker::try_new("unit", config, StdClock).unwrap(),
            fleet_gen: AtomicU64::new(0),
            tx,
            events,
            status: Mutex::new(Status::default()),
            progress: watch::Sender::new(0),
            keys: Keys::new("t", "unit").unwrap(),
            token: "tok-1".to_owned(),
            command_timeout,
        });
        let f = FleetBreaker {
            shared,
            _task: Arc::new(AbortOnDrop(task)),
        };
        (f, rx)
    }

    fn idle() -> tokio::task::JoinHandle<()> {
        tokio::spawn(std::future::pending())
    }

    /// What the handle sent so far: `("tripped" | "closed", gen)` per message.
    fn sent(rx: &mut mpsc::UnboundedReceiver<Msg>) -> Vec<(&'static str, u64)> {
        let mut v = Vec::new();
        while let Ok(m) = rx.try_recv() {
            v.push(match m {
                Msg::Tripped { gen } => ("tripped", gen),
                Msg::Closed { gen } => ("closed", gen),
                Msg::Manage(..) => ("manage", 0),
                Msg::Sync(_) => ("sync", 0),
            });
        }
        v
    }

    /// Only a local trip and a local close are news for the task, each carrying the fleet
    /// generation applied; `tripped` marks the one failure that tripped.
    #[tokio::test]
    async fn trips_and_closes_go_to_the_task_and_nothing_else() {
        // reset_timeout 0: the first call after a trip is already a trial.
        let config = Config::new().fail_max(2).reset_timeout(Duration::ZERO);
        let (f, mut rx) = handle(config, Duration::from_millis(250), idle());
        f.shared.fleet_gen.store(7, Ordering::Relaxed);
        let p = f.allow().unwrap();
        assert!(!p.is_trial());
        assert_eq!(p.success(), Recorded::Counted);
        assert_eq!(f.allow().unwrap().ignore(), Recorded::Counted);
        assert_eq!(f.call(|| Ok::<_, ()>(1)), Ok(1));
        assert_eq!(
            f.call(|| Err::<(), _>("e1")),
            Err(Error::Failed {
                error: "e1",
                tripped: false
            })
        );
        assert_eq!(sent(&mut rx), []);
        assert_eq!(
            f.call(|| Err::<(), _>("e2")),
            Err(Error::Failed {
                error: "e2",
                tripped: true
            })
        );
        assert_eq!(f.state(), State::Open);
        assert_eq!(f.snapshot().state, State::Open);
        assert_eq!(sent(&mut rx), [("tripped", 7)]);
        // The trial: its failure re-trips, then a trial success closes.
        let p = f.allow().unwrap();
        assert!(p.is_trial());
        assert_eq!(p.failure(), Recorded::Tripped);
        f.shared.fleet_gen.store(8, Ordering::Relaxed);
        let p = f.allow().unwrap();
        assert!(p.is_trial());
        assert_eq!(p.report(Outcome::Success), Recorded::Closed);
        assert_eq!(f.state(), State::Closed);
        assert_eq!(sent(&mut rx), [("tripped", 7), ("closed", 8)]);
    }

    #[tokio::test]
    async fn call_async_marks_the_failure_that_tripped() {
        let (f, mut rx) = handle(
            Config::new().fail_max(1),
            Duration::from_millis(250),
            idle(),
        );
        let e = f.call_async(async { Err::<(), _>("down") }).await;
        assert_eq!(
            e,
            Err(Error::Failed {
                error: "down",
                tripped: true
            })
        );
        assert_eq!(sent(&mut rx), [("tripped", 0)]);
        assert!(f
            .call_async(async { Ok::<_, ()>(()) })
            .await
            .unwrap_err()
            .is_rejected());
    }

    /// The monitoring getters read the shared status, the token, the keys and the local breaker.
    #[tokio::test]
    async fn monitoring_reads_what_the_task_published() {
        let (f, _rx) = handle(Config::new(), Duration::from_millis(250), idle());
        assert_eq!(f.fleet(), None);
        assert!(!f.is_degraded());
        let r = Record {
            epoch: "e".to_owned(),
            generation: 3,
            state: FleetState::Open,
            retry_after: Duration::from_secs(1),
            lease_remaining: Duration::ZERO,
            owner: String::new(),
            trips: 1,
            opened_at_ms: 1,
            redis_now_ms: 2,
            replaced: None,
        };
        {
            let mut s = f.shared.status.lock().unwrap();
            s.record = Some(r.clone());
            s.degraded = Some(crate::error::DegradedCause::Unreachable);
        }
        assert_eq!(f.fleet(), Some(r));
        assert!(f.is_degraded());
        assert_eq!(f.token(), "tok-1");
        assert_eq!(f.keys().record, "t:{unit}");
        assert_eq!(f.local().name(), "unit");
        let debug = format!("{f:?}");
        assert!(debug.starts_with("FleetBreaker"), "{debug}");
        assert!(
            debug.contains("t:{unit}") && debug.contains("tok-1"),
            "{debug}"
        );
        let p = f.allow().unwrap();
        let debug = format!("{p:?}");
        assert!(debug.starts_with("FleetPermit"), "{debug}");
        assert!(debug.contains("unit"), "{debug}");
        let _ = p.ignore();
        let mut events = f.events();
        f.shared.emit(FleetEvent::Restored);
        assert_eq!(events.try_recv().unwrap(), FleetEvent::Restored);
    }

    /// The last handle dropped stops the task.
    #[tokio::test]
    async fn dropping_the_last_handle_stops_the_task() {
        let (alive, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _alive = alive;
            std::future::pending::<()>().await;
        });
        let (f, _rx) = handle(Config::new(), Duration::from_millis(250), task);
        let g = f.clone();
        drop(f);
        drop(g);
        // Resolves (with an error) once the aborted task has dropped its sender.
        let r = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        assert!(matches!(r, Ok(Err(_))), "the task still runs");
    }

    /// A management request the task never answers gives up after four command timeouts and
    /// one second; one the task cannot take is `Closed`.
    #[tokio::test]
    async fn unanswered_requests_time_out_and_a_gone_task_is_closed() {
        let (f, _rx) = handle(Config::new(), Duration::from_millis(1), idle());
        match f.refresh().await {
            Err(FleetError::Timeout(d)) => assert_eq!(d, Duration::from_millis(1_004)),
            other => panic!("{other:?}"),
        }
        let (f, rx) = handle(Config::new(), Duration::from_millis(1), idle());
        drop(rx);
        assert!(matches!(f.refresh().await, Err(FleetError::Closed)));
    }

    /// Tokens with the record's separators are refused; what the builder is given is used.
    #[tokio::test]
    async fn the_builder_checks_the_token_and_uses_its_settings() {
        let url = "redis://127.0.0.1:1/";
        for bad in ["", "a|b", "a b", "a\tb"] {
            let e = FleetBreaker::builder("svc", url).token(bad).build();
            assert!(
                matches!(e, Err(FleetError::Token(ref t)) if t == bad),
                "{bad:?}"
            );
        }
        let f = FleetBreaker::builder("svc", url)
            .prefix("p")
            .token("node-1")
            .config(Config::new().fail_max(3))
            .build()
            .unwrap();
        assert_eq!(f.token(), "node-1");
        assert_eq!(f.keys().record, "p:{svc}");
        assert_eq!(f.local().fail_max(), 3);
    }

    /// `<host>-<pid>-<n>`: the host from `HOSTNAME` (trimmed), or `host` when that is empty or
    /// holds a separator; `n` counts up.
    #[test]
    fn default_tokens_name_the_host_and_the_process() {
        let saved = std::env::var_os("HOSTNAME");
        let token = |host: &str| {
            std::env::set_var("HOSTNAME", host);
            let t = default_token();
            let mut it = t.rsplitn(3, '-');
            let n: u64 = it.next().unwrap().parse().unwrap();
            let pid: u32 = it.next().unwrap().parse().unwrap();
            assert_eq!(pid, std::process::id(), "{t}");
            (it.next().unwrap().to_owned(), n)
        };
        let (host, first) = token("web-1");
        assert_eq!(host, "web-1");
        assert_eq!(token(" web2\n").0, "web2");
        for bad in ["", "a b", "a|b"] {
            assert_eq!(token(bad).0, "host", "{bad:?}");
        }
        assert!(token("web-1").1 > first);
        match saved {
            Some(h) => std::env::set_var("HOSTNAME", h),
            None => std::env::remove_var("HOSTNAME"),
        }
    }
}
