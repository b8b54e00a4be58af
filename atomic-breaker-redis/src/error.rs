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
            FleetError::Closed => f.write_str("the fleet task has stopped"),
            FleetError::NoRuntime => f.write_str("must be built inside a tokio runtime"),
        }
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
