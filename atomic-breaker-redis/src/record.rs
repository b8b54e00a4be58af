//! The fleet record as the scripts return and publish it.

use core::fmt;
use core::time::Duration;

/// The fleet's state, as stored in Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FleetState {
    /// Calls run; each process counts its own consecutive failures.
    Closed,
    /// Calls are rejected everywhere until the open period (Redis time) passes.
    Open,
    /// One process holds the fleet trial (under a lease); the others reject.
    HalfOpen,
    /// An operator opened the fleet until further notice.
    ForcedOpen,
    /// An operator disabled the breaker: every call runs, nothing is recorded.
    Disabled,
}

impl FleetState {
    /// The name stored in Redis (`closed`, `open`, `half_open`, `forced_open`, `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::Closed => "closed",
            FleetState::Open => "open",
            FleetState::HalfOpen => "half_open",
            FleetState::ForcedOpen => "forced_open",
            FleetState::Disabled => "disabled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "closed" => FleetState::Closed,
            "open" => FleetState::Open,
            "half_open" => FleetState::HalfOpen,
            "forced_open" => FleetState::ForcedOpen,
            "disabled" => FleetState::Disabled,
            _ => return None,
        })
    }
}

impl fmt::Display for FleetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reading of the fleet record, with durations already taken against Redis `TIME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Identifies one history of the record: a new epoch starts when the key was missing
    /// (first use, `FLUSHALL`, TTL expiry). Generations compare only within an epoch.
    pub epoch: String,
    /// The fleet generation: +1 on every state change.
    pub generation: u64,
    /// The fleet state.
    pub state: FleetState,
    /// While Open: time left in the open period (zero once it has passed).
    pub retry_after: Duration,
    /// While HalfOpen: time left on the trial owner's lease.
    pub lease_remaining: Duration,
    /// While HalfOpen: the trial owner's token (empty otherwise).
    pub owner: String,
    /// Trips counted in this epoch.
    pub trips: u64,
    /// Redis time (Unix ms) of the latest opening; 0 before any.
    pub opened_at_ms: u64,
    /// Redis time (Unix ms) when this record was read or published.
    pub redis_now_ms: u64,
    /// Set only on the answer (and the message) of the script that found the stored record
    /// untrustworthy and replaced it by this one (Closed, generation 1, a new epoch): the first
    /// field that failed validation (`epoch`, `gen`, `state`, `deadline`, `lease`, `owner`,
    /// `trips`, `opened_at`), or `type` when the key was not a hash.
    pub replaced: Option<String>,
}

impl Record {
    /// Parses `epoch|gen|state|remaining|lease_remaining|owner|trips|opened_at|now|replaced`.
    pub(crate) fn parse(s: &str) -> Option<Record> {
        let mut it = s.split('|');
        let epoch = it.next()?.to_owned();
        let generation = it.next()?.parse().ok()?;
        let state = FleetState::parse(it.next()?)?;
        let retry_after = Duration::from_millis(it.next()?.parse().ok()?);
        let lease_remaining = Duration::from_millis(it.next()?.parse().ok()?);
        let owner = it.next()?.to_owned();
        let trips = it.next()?.parse().ok()?;
        let opened_at_ms = it.next()?.parse().ok()?;
        let redis_now_ms = it.next()?.parse().ok()?;
        let replaced = Some(it.next()?)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        if it.next().is_some() || epoch.is_empty() {
            return None;
        }
        Some(Record {
            epoch,
            generation,
            state,
            retry_after,
            lease_remaining,
            owner,
            trips,
            opened_at_ms,
            redis_now_ms,
            replaced,
        })
    }

    /// Whether the record is as created (first use, after a wipe or TTL expiry, or replacing a
    /// corrupted record) and nothing has changed it since: generation 1, Closed. Every change
    /// (a trip, a claim, a close, an operator's move) makes a new generation, so a record past
    /// generation 1 in an epoch carries a decision that a process's older local trip must not
    /// undo; a fresh one does not, and a process that is open locally re-publishes its trip.
    pub fn is_fresh(&self) -> bool {
        self.generation == 1 && self.state == FleetState::Closed
    }

    /// Whether this record is newer than `(epoch, generation)` last applied: another epoch,
    /// or a higher generation in the same one.
    pub fn is_newer_than(&self, epoch: &str, generation: u64) -> bool {
        self.epoch != epoch || self.generation > generation
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} gen={} epoch={}",
            self.state, self.generation, self.epoch
        )?;
        match self.state {
            FleetState::Open => write!(f, " retry_after={:?}", self.retry_after)?,
            FleetState::HalfOpen => write!(
                f,
                " owner={} lease_remaining={:?}",
                self.owner, self.lease_remaining
            )?,
            _ => {}
        }
        write!(f, " trips={}", self.trips)?;
        if let Some(field) = &self.replaced {
            write!(f, " replaced={field}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_scripts_encode() {
        let r =
            Record::parse("1700000000.5|7|half_open|0|2500|p1-42|3|1700000000123|1700000001000|")
                .unwrap();
        assert_eq!(r.generation, 7);
        assert_eq!(r.state, FleetState::HalfOpen);
        assert_eq!(r.lease_remaining, Duration::from_millis(2500));
        assert_eq!(r.owner, "p1-42");
        assert_eq!(r.trips, 3);
        assert!(r.is_newer_than("1700000000.5", 6));
        assert!(!r.is_newer_than("1700000000.5", 7));
        assert!(r.is_newer_than("other", 99));
        assert_eq!(r.replaced, None);
        assert!(!r.is_fresh());
        let r = Record::parse("1.2|1|closed|0|0||0|0|5|gen").unwrap();
        assert_eq!(r.replaced.as_deref(), Some("gen"));
        assert!(r.is_fresh());
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(Record::parse("").is_none());
        assert!(Record::parse("e|x|closed|0|0||0|0|0|").is_none());
        assert!(Record::parse("e|1|ajar|0|0||0|0|0|").is_none());
        assert!(Record::parse("e|1|closed|0|0||0|0|0||extra").is_none());
        assert!(Record::parse("e|1|closed|0|0||0|0|0").is_none());
        assert!(Record::parse("e|-1|closed|0|0||0|0|0|").is_none());
        assert!(Record::parse("|1|closed|0|0||0|0|0|").is_none());
        assert!(Record::parse("e|1|closed|-9223372036854775808|0||0|0|0|").is_none());
        assert!(Record::parse("e|1|closed|0|0||0|0|0|").is_some());
    }

    const STATES: [(FleetState, &str); 5] = [
        (FleetState::Closed, "closed"),
        (FleetState::Open, "open"),
        (FleetState::HalfOpen, "half_open"),
        (FleetState::ForcedOpen, "forced_open"),
        (FleetState::Disabled, "disabled"),
    ];

    /// Every state's stored name, displayed and parsed back (the scripts write these names).
    #[test]
    fn every_state_round_trips_through_its_name() {
        for (state, name) in STATES {
            assert_eq!(state.as_str(), name);
            assert_eq!(state.to_string(), name);
            assert_eq!(FleetState::parse(name), Some(state));
            let r = Record::parse(&format!("e|1|{name}|0|0||0|0|0|")).unwrap();
            assert_eq!(r.state, state);
        }
        assert_eq!(FleetState::parse("Closed"), None);
    }

    /// Every field lands where the scripts put it, and `Display` shows what each state needs.
    #[test]
    fn records_parse_every_field_and_display_by_state() {
        let open = Record::parse("ep|4|open|1500|0||2|1700000000123|1700000001000|").unwrap();
        assert_eq!(
            open,
            Record {
                epoch: "ep".to_owned(),
                generation: 4,
                state: FleetState::Open,
                retry_after: Duration::from_millis(1500),
                lease_remaining: Duration::ZERO,
                owner: String::new(),
                trips: 2,
                opened_at_ms: 1_700_000_000_123,
                redis_now_ms: 1_700_000_001_000,
                replaced: None,
            }
        );
        assert_eq!(
            open.to_string(),
            "open gen=4 epoch=ep retry_after=1.5s trips=2"
        );
        let half = Record::parse("ep|5|half_open|0|2500|p1-42|2|1|2|").unwrap();
        assert_eq!(
            half.to_string(),
            "half_open gen=5 epoch=ep owner=p1-42 lease_remaining=2.5s trips=2"
        );
        let closed = Record::parse("ep|6|closed|0|0||2|1|2|").unwrap();
        assert_eq!(closed.to_string(), "closed gen=6 epoch=ep trips=2");
    }
}
