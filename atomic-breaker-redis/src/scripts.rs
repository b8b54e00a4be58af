//! The Lua scripts (one per job), the key layout, and one function per script.
//!
//! Every script touches one key, `<prefix>:{<name>}`, so it runs on Redis Cluster (the hash tag
//! puts the key and its channel in one slot); reads Redis `TIME`; and, when it changes the
//! record, bumps the generation, refreshes the TTL and publishes the record on
//! `<prefix>:{<name>}:events`. They run with `EVALSHA`; the `redis` crate's [`Script`] loads
//! them again on `NOSCRIPT` (after `SCRIPT FLUSH` or a restart).
//!
//! Every script validates each field it reads and each number argument (decimal digits,
//! range-checked, never wrapped through Lua's doubles). A record that fails, or a key that is not
//! a hash, is replaced by a fresh record (Closed, generation 1, a new epoch) whose answer names
//! the bad field in [`Record::replaced`]. A period or lease over 24 h is
//! [`FleetError::Period`], refused before anything is sent.

use core::time::Duration;
use std::sync::OnceLock;

use redis::aio::ConnectionLike;
use redis::Script;

use crate::error::FleetError;
use crate::record::Record;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// The Redis names of one fleet breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The hash holding the record: `<prefix>:{<name>}`.
    pub record: String,
    /// The pub/sub channel: `<prefix>:{<name>}:events`.
    pub channel: String,
}

impl Keys {
    /// The names for breaker `name` under `prefix`. Neither may contain `{` or `}` (`name` is
    /// the hash tag, and Redis Cluster hashes the first `{...}` of a key); `name` is non-empty.
    pub fn new(prefix: &str, name: &str) -> Result<Keys, FleetError> {
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(FleetError::Name(name.to_owned()));
        }
        if prefix.contains(['{', '}']) {
            return Err(FleetError::Name(prefix.to_owned()));
        }
        let record = format!("{prefix}:{{{name}}}");
        let channel = format!("{record}:events");
        Ok(Keys { record, channel })
    }
}

/// A fleet-wide operator move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manage {
    /// Open for one open period (no-op if already open).
    Open(Duration),
    /// Open for exactly this long, whatever the state.
    TripFor(Duration),
    /// Close and forget the trial.
    Close,
    /// Reject everywhere until closed.
    ForceOpen,
    /// Admit everything, record nothing, until closed.
    Disable,
    /// Delete the record (whatever it holds, even a key of another type) and create it again,
    /// Closed, in a new epoch: exactly what a wipe does. Processes that are open locally
    /// re-publish their trip into it; the others close. The repair for a record nobody trusts
    /// (the scripts also replace a corrupted record by themselves, at the next command).
    Reset,
}

fn script(cell: &'static OnceLock<Script>, body: &str) -> &'static Script {
    cell.get_or_init(|| Script::new(&format!("{PRELUDE}\n{body}")))
}

macro_rules! scripts {
    ($($fn_name:ident => $file:literal),* $(,)?) => {$(
        fn $fn_name() -> &'static Script {
            static CELL: OnceLock<Script> = OnceLock::new();
            script(&CELL, include_str!($file))
        }
    )*};
}

scripts! {
    read_script => "lua/read.lua",
    trip_script => "lua/trip.lua",
    claim_script => "lua/claim.lua",
    close_script => "lua/close.lua",
    renew_script => "lua/renew.lua",
    manage_script => "lua/manage.lua",
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A period sent to a script: at most [`MAX_PERIOD`](atomic_breaker::MAX_PERIOD) (24 h), which
/// the scripts check again (a record holding a longer one is not trusted).
fn period(d: Duration) -> Result<u64, FleetError> {
    if d > atomic_breaker::MAX_PERIOD {
        return Err(FleetError::Period(d));
    }
    Ok(ms(d))
}

/// The longest TTL sent (about 34 years): the scripts refuse one that would overflow Redis's
/// expiry arithmetic.
const MAX_TTL_MS: u64 = 1 << 40;

async fn run<C: ConnectionLike>(
    con: &mut C,
    script: &Script,
    keys: &Keys,
    ttl: Duration,
    args: &[String],
) -> Result<Record, FleetError> {
    let mut inv = script.key(&keys.record);
    inv.arg(ms(ttl).clamp(1, MAX_TTL_MS)).arg(&keys.channel);
    for a in args {
        inv.arg(a);
    }
    let s: String = inv.invoke_async(con).await?;
    Record::parse(&s).ok_or(FleetError::Malformed(s))
}

/// READ: the record, created Closed (new epoch) if missing or corrupted; refreshes the TTL.
pub async fn read<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
) -> Result<Record, FleetError> {
    run(con, read_script(), keys, ttl, &[]).await
}

/// TRIP: opens the fleet for `open` if `(epoch, gen)` is current (see `lua/trip.lua`).
pub async fn trip<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
    epoch: &str,
    gen: u64,
    open: Duration,
    token: &str,
) -> Result<Record, FleetError> {
    let args = [
        epoch.to_owned(),
        gen.to_string(),
        period(open)?.to_string(),
        token.to_owned(),
    ];
    run(con, trip_script(), keys, ttl, &args).await
}

/// CLAIM: takes the fleet trial under a lease if the open period or the previous lease passed.
pub async fn claim<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
    epoch: &str,
    gen: u64,
    token: &str,
    lease: Duration,
) -> Result<Record, FleetError> {
    let args = [
        epoch.to_owned(),
        gen.to_string(),
        token.to_owned(),
        period(lease)?.max(1).to_string(),
    ];
    run(con, claim_script(), keys, ttl, &args).await
}

/// CLOSE: the trial owner's success closes the fleet in the generation it claimed.
pub async fn close<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
    epoch: &str,
    gen: u64,
    token: &str,
) -> Result<Record, FleetError> {
    let args = [epoch.to_owned(), gen.to_string(), token.to_owned()];
    run(con, close_script(), keys, ttl, &args).await
}

/// RENEW: the trial owner extends its lease while its trial runs (same generation).
pub async fn renew<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
    epoch: &str,
    gen: u64,
    token: &str,
    lease: Duration,
) -> Result<Record, FleetError> {
    let args = [
        epoch.to_owned(),
        gen.to_string(),
        token.to_owned(),
        period(lease)?.max(1).to_string(),
    ];
    run(con, renew_script(), keys, ttl, &args).await
}

/// MANAGE: an operator's fleet-wide move. A period over 24 h is [`FleetError::Period`]
/// (nothing sent).
pub async fn manage<C: ConnectionLike>(
    con: &mut C,
    keys: &Keys,
    ttl: Duration,
    op: Manage,
) -> Result<Record, FleetError> {
    let (name, period) = match op {
        Manage::Open(d) => ("open", d),
        Manage::TripFor(d) => ("trip_for", d),
        Manage::Close => ("close", Duration::ZERO),
        Manage::ForceOpen => ("force_open", Duration::ZERO),
        Manage::Disable => ("disable", Duration::ZERO),
        Manage::Reset => ("reset", Duration::ZERO),
    };
    let args = [name.to_owned(), self::period(period)?.to_string()];
    run(con, manage_script(), keys, ttl, &args).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_name_as_hash_tag() {
        let k = Keys::new("ab", "payments").unwrap();
        assert_eq!(k.record, "ab:{payments}");
        assert_eq!(k.channel, "ab:{payments}:events");
        assert!(Keys::new("ab", "a{b").is_err());
        assert!(Keys::new("ab", "").is_err());
        assert!(Keys::new("a{b}", "x").is_err());
    }

    /// Durations go to the scripts as whole milliseconds, saturating at `u64::MAX`.
    #[test]
    fn durations_are_sent_in_milliseconds() {
        assert_eq!(ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::MAX), u64::MAX);
    }

    /// Each script is the prelude followed by its own file (what `EVALSHA` hashes).
    #[test]
    fn scripts_are_the_prelude_and_their_body() {
        let read = Script::new(&format!("{PRELUDE}\n{}", include_str!("lua/read.lua")));
        assert_eq!(read_script().get_hash(), read.get_hash());
        assert_ne!(read_script().get_hash(), trip_script().get_hash());
    }
}
