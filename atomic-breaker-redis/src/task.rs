//! The background task: the only place that talks to Redis.
//!
//! It owns the connection (a `ConnectionManager`, built lazily because building fails while
//! Redis is down) and the pub/sub subscription, and applies fleet records to the local breaker.
//! Every command is bounded by the command timeout; a failure marks the breaker degraded, and
//! the next success restores it and resyncs.

use core::time::Duration;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use atomic_breaker::{State, MAX_PERIOD};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

use crate::error::{DegradedCause, FleetError};
use crate::fleet::{FleetEvent, Shared};
use crate::record::{FleetState, Record};
use crate::scripts::{self, Manage};

type Reply = oneshot::Sender<Result<Record, FleetError>>;

/// What the handle tells the task.
pub(crate) enum Msg {
    /// The local breaker tripped on a call admitted in fleet generation `gen`.
    Tripped { gen: u64 },
    /// The local breaker closed (a trial succeeded) on a call admitted in `gen`.
    Closed { gen: u64 },
    /// An operator's move.
    Manage(Manage, Reply),
    /// Re-read now.
    Sync(Reply),
}

pub(crate) struct TaskConfig {
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) refresh: Duration,
    pub(crate) lease: Duration,
    pub(crate) ttl: Duration,
    pub(crate) claims_trials: bool,
    /// Added to fleet deadlines on the local breaker, so the task claims the trial before the
    /// local breaker would admit one of its own (which it does if Redis does not answer).
    pub(crate) grace: Duration,
}

pub(crate) struct Task {
    shared: Arc<Shared>,
    client: redis::Client,
    cfg: TaskConfig,
    conn: Option<ConnectionManager>,
    /// `(epoch, generation)` last applied.
    applied: Option<(String, u64)>,
    last: Option<Record>,
    /// A local trip not yet accepted (or refused) by Redis: `(epoch, generation)` seen.
    pending_trip: Option<(String, u64)>,
    /// A trial success not yet told to Redis: `(epoch, generation)` of the claim.
    pending_close: Option<(String, u64)>,
    claim_at: Option<Instant>,
    /// While this process owns the trial: when to renew the lease if a trial is running.
    renew_at: Option<Instant>,
    degraded: Option<DegradedCause>,
    resync: bool,
    /// The epoch of the last replacement reported (`FleetEvent::Replaced`).
    replaced_epoch: Option<String>,
}

impl Task {
    pub(crate) fn new(shared: Arc<Shared>, client: redis::Client, cfg: TaskConfig) -> Task {
        Task {
            shared,
            client,
            cfg,
            conn: None,
            applied: None,
            last: None,
            pending_trip: None,
            pending_close: None,
            claim_at: None,
            renew_at: None,
            degraded: None,
            resync: false,
            replaced_epoch: None,
        }
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut pubsub: Option<PubSubStream> = None;
        let mut next_refresh = Instant::now();
        loop {
            if self.conn.is_none() {
                self.connect().await;
            }
            if self.conn.is_some() && pubsub.is_none() {
                pubsub = self.subscribe().await;
                if pubsub.is_some() {
                    // Whatever was published while unsubscribed: read it now.
                    next_refresh = Instant::now();
                }
            }
            if self.resync {
                self.resync = false;
                next_refresh = Instant::now();
            }
            if self.degraded.is_some()
                && (self.pending_trip.is_some() || self.pending_close.is_some())
            {
                // A trip or close the fleet has not heard of: retry sooner than the refresh, so
                // that when a pause or a slow spell ends it reaches the others within about
                // two command timeouts (and without waiting for a reconnection to resync).
                let retry = (self.cfg.command_timeout * 2).min(self.cfg.refresh);
                next_refresh = next_refresh.min(Instant::now() + retry);
            }
            let claim_at = self.claim_at;
            let renew_at = self.renew_at;
            tokio::select! {
                m = rx.recv() => match m {
                    None => return,
                    Some(m) => self.handle(m).await,
                },
                m = next_message(&mut pubsub) => match m {
                    Some(payload) => {
                        if let Some(r) = Record::parse(&payload) {
                            self.apply(r);
                            self.flush().await;
                        }
                    }
                    None => pubsub = None,
                },
                _ = sleep_until(next_refresh) => {
                    let _ = self.sync().await;
                    next_refresh = Instant::now() + self.cfg.refresh;
                }
                _ = sleep_until(claim_at.unwrap_or(next_refresh)), if claim_at.is_some() => {
                    self.claim_at = None;
                    self.claim().await;
                }
                _ = sleep_until(renew_at.unwrap_or(next_refresh)), if renew_at.is_some() => {
                    self.renew_at = None;
                    self.renew().await;
                }
            }
        }
    }

    async fn connect(&mut self) {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.cfg.connect_timeout))
            .set_response_timeout(Some(self.cfg.command_timeout))
            .set_number_of_retries(2)
            .set_max_delay(self.cfg.refresh);
        let made = timeout(
            self.cfg.connect_timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        // A connection that could not be made, for whatever reason short of an error reply
        // (a failed AUTH), is `Unreachable`, timing out included.
        let unreachable = |e: &FleetError| match e.cause() {
            Some(DegradedCause::ServerError) => DegradedCause::ServerError,
            _ => DegradedCause::Unreachable,
        };
        match made {
            Ok(Ok(c)) => self.conn = Some(c),
            Ok(Err(e)) => {
                let e = FleetError::Redis(e);
                self.degrade_as(unreachable(&e), &e);
            }
            Err(_) => {
                let e = FleetError::Timeout(self.cfg.connect_timeout * 2);
                self.degrade_as(DegradedCause::Unreachable, &e);
            }
        }
    }

    async fn subscribe(&mut self) -> Option<PubSubStream> {
        let channel = self.shared.keys.channel.clone();
        let client = self.client.clone();
        let attempt = async move {
            let mut p = client.get_async_pubsub().await?;
            p.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(p.into_on_message())
        };
        match timeout(self.cfg.connect_timeout, attempt).await {
            Ok(Ok(s)) => Some(s),
            _ => None,
        }
    }

    async fn handle(&mut self, m: Msg) {
        match m {
            Msg::Tripped { gen } => {
                let epoch = self.epoch();
                self.pending_trip = Some((epoch, gen));
                self.flush().await;
            }
            Msg::Closed { gen } => {
                let ours = self.last.as_ref().is_some_and(|r| {
                    r.state == FleetState::HalfOpen
                        && r.owner == self.shared.token
                        && r.generation == gen
                });
                if ours {
                    self.pending_close = Some((self.epoch(), gen));
                    self.flush().await;
                }
                // Otherwise a local-only trial (Redis was down): the next sync reconciles.
            }
            Msg::Manage(op, reply) => {
                let r = self.command(|c, k, ttl| async move {
                    let mut c = c;
                    scripts::manage(&mut c, &k, ttl, op).await
                });
                let r = r.await;
                if let Ok(rec) = &r {
                    self.apply(rec.clone());
                }
                let _ = reply.send(r);
            }
            Msg::Sync(reply) => {
                let r = self.sync().await;
                let _ = reply.send(r);
            }
        }
    }

    fn epoch(&self) -> String {
        self.applied
            .as_ref()
            .map(|(e, _)| e.clone())
            .unwrap_or_default()
    }

    /// Sends pending trip and close reports; keeps them if Redis does not answer.
    async fn flush(&mut self) {
        if let Some((epoch, gen)) = self.pending_trip.clone() {
            let open = self.shared.local.reset_timeout();
            let token = self.shared.token.clone();
            let r = self
                .command(|c, k, ttl| async move {
                    let mut c = c;
                    scripts::trip(&mut c, &k, ttl, &epoch, gen, open, &token).await
                })
                .await;
            match r {
                Ok(rec) => {
                    self.pending_trip = None;
                    self.apply(rec);
                }
                Err(_) => return,
            }
        }
        if let Some((epoch, gen)) = self.pending_close.clone() {
            let token = self.shared.token.clone();
            let r = self
                .command(|c, k, ttl| async move {
                    let mut c = c;
                    scripts::close(&mut c, &k, ttl, &epoch, gen, &token).await
                })
                .await;
            if let Ok(rec) = r {
                self.pending_close = None;
                self.apply(rec);
            }
        }
    }

    /// Periodic and on-demand: publish what is pending, then read the record and apply it.
    async fn sync(&mut self) -> Result<Record, FleetError> {
        // A local trip the fleet never heard of (made while Redis was down, or by a permit
        // dropped in a panic): the local breaker is Open while the fleet, as last applied, is
        // Closed. Publish it in the generation last applied (stale if the fleet moved on).
        if self.pending_trip.is_none()
            && self.shared.local.state() == State::Open
            && self
                .last
                .as_ref()
                .is_some_and(|r| r.state == FleetState::Closed)
        {
            if let Some((e, g)) = self.applied.clone() {
                self.pending_trip = Some((e, g));
            }
        }
        self.flush().await;
        let r = self
            .command(|c, k, ttl| async move {
                let mut c = c;
                scripts::read(&mut c, &k, ttl).await
            })
            .await;
        if let Ok(rec) = &r {
            self.apply(rec.clone());
            if self.pending_trip.is_some() {
                self.flush().await;
            }
        }
        r
    }

    /// The fleet's open period (or the trial owner's lease) has passed: try to take the trial.
    async fn claim(&mut self) {
        let Some((epoch, gen)) = self.applied.clone() else {
            return;
        };
        let token = self.shared.token.clone();
        let lease = self.cfg.lease;
        let r = self
            .command(|c, k, ttl| async move {
                let mut c = c;
                scripts::claim(&mut c, &k, ttl, &epoch, gen, &token, lease).await
            })
            .await;
        if let Ok(rec) = r {
            self.apply(rec);
        }
    }

    /// Half the lease has passed and this process still owns the trial: if a trial call is
    /// still running, extend the lease (an idle owner lets it lapse, so another process with
    /// traffic can take the trial).
    async fn renew(&mut self) {
        let Some((epoch, gen)) = self.applied.clone() else {
            return;
        };
        if self.shared.local.state() != State::HalfOpen || self.shared.local.trial_calls() == 0 {
            return;
        }
        let token = self.shared.token.clone();
        let lease = self.cfg.lease;
        let r = self
            .command(|c, k, ttl| async move {
                let mut c = c;
                scripts::renew(&mut c, &k, ttl, &epoch, gen, &token, lease).await
            })
            .await;
        if let Ok(rec) = r {
            self.apply(rec);
        }
    }

    /// Runs one script with the command timeout; tracks degraded/restored.
    async fn command<F, Fut>(&mut self, f: F) -> Result<Record, FleetError>
    where
        F: FnOnce(ConnectionManager, scripts::Keys, Duration) -> Fut,
        Fut: core::future::Future<Output = Result<Record, FleetError>>,
    {
        let Some(conn) = self.conn.clone() else {
            let e = FleetError::Unavailable;
            self.degrade(&e);
            return Err(e);
        };
        let fut = f(conn, self.shared.keys.clone(), self.cfg.ttl);
        let r = match timeout(self.cfg.command_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(FleetError::Timeout(self.cfg.command_timeout)),
        };
        match &r {
            Ok(_) => self.restore(),
            Err(e) => self.degrade(e),
        }
        r
    }

    fn degrade(&mut self, e: &FleetError) {
        self.degrade_as(e.cause().unwrap_or(DegradedCause::ServerError), e);
    }

    fn degrade_as(&mut self, cause: DegradedCause, e: &FleetError) {
        let first = self.degraded.is_none();
        if self.degraded != Some(cause) {
            // The first failure, or a failure of another kind (unreachable, then timing out):
            // `FleetBreaker::degraded` shows the latest cause; the event is sent once.
            self.degraded = Some(cause);
            self.set_status(|s| s.degraded = Some(cause));
        }
        if first {
            self.shared.emit(FleetEvent::Degraded {
                cause,
                error: e.to_string(),
            });
        }
    }

    fn restore(&mut self) {
        if self.degraded.is_some() {
            self.degraded = None;
            self.resync = true;
            self.set_status(|s| s.degraded = None);
            self.shared.emit(FleetEvent::Restored);
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut crate::fleet::Status)) {
        match self.shared.status.lock() {
            Ok(mut s) => f(&mut s),
            Err(p) => f(&mut p.into_inner()),
        }
        // Wakes `FleetBreaker::ready`.
        self.shared.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A record came from Redis (an answer or a message), applied or not.
    fn confirmed(&self, r: Record) {
        let at = Instant::now();
        self.set_status(|s| {
            s.record = Some(r);
            s.confirmed_at = Some(at);
        });
    }

    /// Applies a record to the local breaker if it is newer than the last one applied, and
    /// schedules the trial claim. Older records (a late pub/sub message) change nothing.
    fn apply(&mut self, r: Record) {
        // Reported once per replacement, whatever arrives first: the replacing script's message
        // may come after this process has read the new epoch (it is then not newer).
        if let Some(field) = &r.replaced {
            if self.replaced_epoch.as_deref() != Some(r.epoch.as_str()) {
                self.replaced_epoch = Some(r.epoch.clone());
                self.shared.emit(FleetEvent::Replaced {
                    field: field.clone(),
                });
            }
        }
        let newer = match &self.applied {
            None => true,
            Some((e, g)) => {
                if *e == r.epoch && r.generation < *g {
                    return;
                }
                r.is_newer_than(e, *g)
            }
        };
        let token = &self.shared.token;
        let now = Instant::now();
        self.claim_at = match r.state {
            FleetState::Open if self.cfg.claims_trials => {
                Some(now + r.retry_after + Duration::from_millis(1))
            }
            FleetState::HalfOpen if self.cfg.claims_trials && r.owner != *token => {
                Some(now + r.lease_remaining + Duration::from_millis(1))
            }
            _ => None,
        };
        self.renew_at = match r.state {
            FleetState::HalfOpen if r.owner == *token => Some(now + r.lease_remaining / 2),
            _ => None,
        };
        if !newer {
            // Same generation, but the owner may have renewed its lease: keep rejecting until
            // the new lease ends (the local breaker would otherwise run its own trial).
            if r.state == FleetState::HalfOpen
                && r.owner != *token
                && matches!(self.shared.local.state(), State::Open | State::HalfOpen)
            {
                trip_for(&self.shared.local, r.lease_remaining + self.cfg.grace);
            }
            self.last = Some(r.clone());
            self.confirmed(r);
            return;
        }
        let epoch_changed = self.applied.as_ref().is_some_and(|(e, _)| *e != r.epoch);
        let local = &self.shared.local;
        let grace = self.cfg.grace;
        match r.state {
            FleetState::Closed => {
                if ((epoch_changed && r.is_fresh()) || self.applied.is_none())
                    && local.state() == State::Open
                {
                    // The record was created while this process is open (a wipe, TTL expiry,
                    // a corrupted record replaced; or the first record this process sees) and
                    // nothing has been decided in it yet: the open state is real, publish it.
                    self.pending_trip = Some((r.epoch.clone(), r.generation));
                } else if local.state() != State::Closed {
                    // Including a new epoch past its first generation: someone decided (an
                    // operator's close after a wipe, a trial's success), and that decision is
                    // newer than this process's local trip.
                    local.close();
                }
            }
            FleetState::Open => trip_for(local, r.retry_after + grace),
            FleetState::HalfOpen => {
                if r.owner == *token {
                    local.half_open();
                } else {
                    trip_for(local, r.lease_remaining + grace);
                }
            }
            FleetState::ForcedOpen => {
                if local.state() != State::ForcedOpen {
                    local.force_open();
                }
            }
            FleetState::Disabled => {
                if local.state() != State::Disabled {
                    local.disable();
                }
            }
        }
        self.applied = Some((r.epoch.clone(), r.generation));
        self.shared.fleet_gen.store(r.generation, Ordering::Relaxed);
        self.last = Some(r.clone());
        self.confirmed(r.clone());
        self.shared.emit(FleetEvent::Applied(r));
    }
}

fn trip_for(local: &atomic_breaker::CircuitBreaker<atomic_breaker::StdClock>, d: Duration) {
    let _ = local.trip_for(d.min(MAX_PERIOD));
}

async fn next_message(p: &mut Option<PubSubStream>) -> Option<String> {
    match p {
        Some(s) => s
            .next()
            .await
            .map(|m| m.get_payload::<String>().unwrap_or_default()),
        None => core::future::pending().await,
    }
}
