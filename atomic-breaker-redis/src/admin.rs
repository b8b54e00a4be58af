//! Reading and steering a fleet breaker by name without joining it (what `breakerctl` uses).

use core::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::error::FleetError;
use crate::record::Record;
use crate::scripts::{self, Keys, Manage};

/// A connection to the Redis holding fleet breakers under one prefix.
#[derive(Clone)]
pub struct Admin {
    con: MultiplexedConnection,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
}

impl core::fmt::Debug for Admin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Admin")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects to `url` within `timeout`, which also bounds every later command. A URL this
    /// crate cannot use is [`FleetError::Url`].
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Admin, FleetError> {
        let client = crate::fleet::client(url)?;
        let con = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| FleetError::Timeout(timeout))??;
        Ok(Admin {
            con,
            prefix: prefix.to_owned(),
            ttl: Duration::from_secs(3600),
            timeout,
        })
    }

    /// The TTL given to records this admin writes (default 1 h; members renew their own).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The record of breaker `name` (created Closed if missing).
    pub async fn show(&self, name: &str) -> Result<Record, FleetError> {
        let keys = Keys::new(&self.prefix, name)?;
        let mut con = self.con.clone();
        self.bounded(scripts::read(&mut con, &keys, self.ttl)).await
    }

    /// An operator move on breaker `name`, fleet-wide. [`Manage::Reset`] repairs a record
    /// (re-creates it in a new epoch, whatever the key held).
    pub async fn manage(&self, name: &str, op: Manage) -> Result<Record, FleetError> {
        let keys = Keys::new(&self.prefix, name)?;
        let mut con = self.con.clone();
        self.bounded(scripts::manage(&mut con, &keys, self.ttl, op))
            .await
    }

    async fn bounded(
        &self,
        f: impl core::future::Future<Output = Result<Record, FleetError>>,
    ) -> Result<Record, FleetError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| FleetError::Timeout(self.timeout))?
    }
}
