//! Errors of the fleet layer. None of them is ever counted as a failure of the protected service.

use core::fmt;
use core::time::Duration;

/// What went wrong talking to Redis or configuring a fleet breaker.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// Redis answered with an error or the connection failed.
    Redis(redis::RedisError),
    /// Redis did not answer within the command timeout.
    Timeout(Duration),
    /// No connection to Redis yet (it was down since construction).
    Unavailable,
    /// A script returned something that is not a record.
    Malformed(String),
    /// The breaker name is empty, or it or the prefix contains `{` / `}` (the name becomes the
    /// key's hash tag).
    Name(String),
    /// The trial-owner token is empty or contains `|` or whitespace (the record's separators).
    Token(String),
    /// The local breaker's configuration is invalid.
    Config(atomic_breaker::ConfigError),
    /// A fleet period (an operator's open period, the trial lease) is longer than
    /// [`MAX_PERIOD`](atomic_breaker::MAX_PERIOD) (24 h), the longest a local breaker can hold.
    Period(Duration),
    /// A Redis URL this crate cannot use (unparsable, an unsupported scheme such as
    /// `redis+sentinel://` or `rediss://` without TLS, several nodes). The password, if any, is
    /// not shown.
    Url {
        /// The URL, with its password replaced by `***`.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The background task is gone (the runtime shut down).
    Closed,
    /// Construction outside a tokio runtime.
    NoRuntime,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Redis(e) => write!(f, "redis: {e}"),
            FleetError::Timeout(d) => write!(f, "redis did not answer within {d:?}"),
            FleetError::Unavailable => f.write_str("redis unavailable"),
            FleetError::Malformed(s) => write!(f, "malformed fleet record {s:?}"),
            FleetError::Name(n) => {
                write!(
                    f,
                    "breaker name {n:?} must be non-empty, without '{{' or '}}'"
                )
            }
            FleetError::Token(t) => {
                write!(
                    f,
                    "token {t:?} must be non-empty, without '|' or whitespace"
                )
            }
            FleetError::Config(e) => write!(f, "configuration: {e:?}"),
            FleetError::Period(d) => {
                write!(f, "fleet period {d:?} is longer than the 24 h maximum")
            }
            FleetError::Url { url, reason } => write!(f, "redis URL {url:?}: {reason}"),
            FleetError::Closed => f.write_str("the fleet task has stopped"),
            FleetError::NoRuntime => f.write_str("must be built inside a tokio runtime"),
        }
    }
}

impl FleetError {
    /// Why a Redis command failed, for [`FleetEvent::Degraded`](crate::FleetEvent::Degraded)
    /// and [`FleetBreaker::degraded`](crate::FleetBreaker::degraded): `None` for errors that are
    /// not about talking to Redis (names, tokens, configuration, runtime).
    pub fn cause(&self) -> Option<DegradedCause> {
        Some(match self {
            // An error reply from the server has a code (`ERR`, `OOM`, `READONLY`, ...).
            FleetError::Redis(e) if e.code().is_some() => DegradedCause::ServerError,
            FleetError::Redis(e) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
                DegradedCause::ServerError
            }
            FleetError::Redis(e)
                if matches!(
                    e.kind(),
                    redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse
                ) =>
            {
                DegradedCause::Malformed
            }
            FleetError::Redis(e) if e.is_timeout() => DegradedCause::Timeout,
            FleetError::Redis(_) => DegradedCause::Unreachable,
            FleetError::Timeout(_) => DegradedCause::Timeout,
            FleetError::Unavailable | FleetError::Closed => DegradedCause::Unreachable,
            FleetError::Malformed(_) => DegradedCause::Malformed,
            _ => return None,
        })
    }
}

/// Why the fleet layer is degraded (protecting as a local breaker only).
///
/// A corrupted record is not a cause: the scripts replace it (see
/// [`FleetEvent::Replaced`](crate::FleetEvent::Replaced)) and the fleet stays coordinated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DegradedCause {
    /// No connection: refused, dropped, an I/O error, none made yet, or a connection attempt
    /// that did not finish within the connect timeout.
    Unreachable,
    /// Connected, but a command got no answer within the command timeout: Redis paused, busy
    /// (a long script, `DEBUG SLEEP`), overloaded, or the network dropping packets.
    Timeout,
    /// Redis answered with an error: a script error, `OOM`, `READONLY` (a replica), `NOPERM`
    /// (ACLs), `BUSY`, `LOADING`, a failed `AUTH`, ...
    ServerError,
    /// A script answered something that is not a record (another version of this crate's
    /// scripts under the same key and SHA?).
    Malformed,
}

impl DegradedCause {
    /// A short name: `unreachable`, `timeout`, `server_error`, `malformed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DegradedCause::Unreachable => "unreachable",
            DegradedCause::Timeout => "timeout",
            DegradedCause::ServerError => "server_error",
            DegradedCause::Malformed => "malformed",
        }
    }
}

impl fmt::Display for DegradedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Redis(e) => Some(e),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for FleetError {
    fn from(e: redis::RedisError) -> Self {
        FleetError::Redis(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// Each error's message, and the Redis error kept as the source (and only that one).
    #[test]
    fn errors_say_what_went_wrong_and_keep_the_redis_source() {
        let redis: FleetError = redis::RedisError::from((redis::ErrorKind::Io, "refused")).into();
        assert!(matches!(redis, FleetError::Redis(_)));
        assert!(redis.to_string().starts_with("redis: "), "{redis}");
        assert!(redis.to_string().contains("refused"), "{redis}");
        let source = redis.source().expect("the Redis error is the source");
        assert!(source.to_string().contains("refused"), "{source}");
        let cases = [
            (
                FleetError::Timeout(Duration::from_millis(250)),
                "redis did not answer within 250ms",
            ),
            (FleetError::Unavailable, "redis unavailable"),
            (
                FleetError::Malformed("x|y".to_owned()),
                "malformed fleet record \"x|y\"",
            ),
            (
                FleetError::Name("a{b".to_owned()),
                "breaker name \"a{b\" must be non-empty, without '{' or '}'",
            ),
            (
                FleetError::Token("a b".to_owned()),
                "token \"a b\" must be non-empty, without '|' or whitespace",
            ),
            (
                FleetError::Config(atomic_breaker::ConfigError::FailMax(0)),
                "configuration: FailMax(0)",
            ),
            (FleetError::Closed, "the fleet task has stopped"),
            (
                FleetError::NoRuntime,
                "must be built inside a tokio runtime",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert!(e.source().is_none(), "{e}");
        }
    }
}
