//! Feature `serde`: what `Snapshot`, `State`, `Event` and `Config` serialize to, `Config`
//! round trips, and every bad configuration input giving a clear error.

use std::collections::BTreeMap;
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, ConfigError, Event, EventKind, EventRecord, FailureRate,
    ManualClock, State,
};
use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::Deserialize;
use serde_json::{json, Value};

fn from_json(v: Value) -> Result<Config, String> {
    Config::deserialize(v).map_err(|e| e.to_string())
}

/// An environment-style map: every value a string.
fn from_env(pairs: &[(&str, &str)]) -> Result<Config, String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::deserialize(MapDeserializer::<_, ValueError>::new(map.into_iter()))
        .map_err(|e| e.to_string())
}

fn full() -> Config {
    Config::new()
        .fail_max(3)
        .reset_timeout(Duration::from_millis(2_500))
        .success_threshold(2)
        .half_open_max_calls(4)
        .trial_lease(Duration::from_millis(750))
        .backoff(Backoff::exponential(Duration::from_secs(40)).jitter_percent(20))
}

#[test]
fn config_round_trips_through_json_and_string_maps() {
    for c in [Config::new(), full(), full().fail_max(127)] {
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(from_json(v.clone()), Ok(c), "{v}");
        // The same fields as strings, as environment variables hold them.
        let strings: Vec<(String, String)> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.to_string()))
            .collect();
        let pairs: Vec<(&str, &str)> = strings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(from_env(&pairs), Ok(c), "{pairs:?}");
    }
    assert_eq!(
        serde_json::to_value(full()).unwrap(),
        json!({
            "fail_max": 3,
            "reset_timeout_ms": 2500,
            "success_threshold": 2,
            "half_open_max_calls": 4,
            "trial_lease_ms": 750,
            "backoff_max_ms": 40000,
            "backoff_jitter_percent": 20
        })
    );
    // Without a backoff, the backoff fields are left out.
    let plain = serde_json::to_value(Config::new()).unwrap();
    assert_eq!(plain.as_object().unwrap().len(), 5);
}

#[test]
fn missing_fields_take_the_defaults_and_null_means_no_backoff() {
    assert_eq!(from_json(json!({})), Ok(Config::new()));
    assert_eq!(
        from_json(json!({"fail_max": 2, "backoff_max_ms": null})),
        Ok(Config::new().fail_max(2))
    );
    assert_eq!(
        from_env(&[("reset_timeout_ms", " 1000 "), ("Fail_Max", "+1")]).unwrap_err(),
        "invalid value: string \"+1\", expected a whole number for fail_max (an integer or a \
         string of decimal digits)"
    );
    assert_eq!(
        from_env(&[("reset_timeout_ms", " 1000 ")]),
        Ok(Config::new().reset_timeout(Duration::from_secs(1)))
    );
}

#[test]
fn each_bad_input_gives_a_clear_error() {
    let cases: &[(Value, &str)] = &[
        // zero
        (
            json!({"fail_max": 0}),
            "fail_max must be between 1 and 127 (got 0)",
        ),
        (
            json!({"trial_lease_ms": 0}),
            "trial_lease must be between 1 ms and 24 hours (got 0ns)",
        ),
        (
            json!({"half_open_max_calls": "0"}),
            "half_open_max_calls must be between 1 and 31 (got 0)",
        ),
        // beyond the limits, and overflow of the field's integer
        (
            json!({"reset_timeout_ms": 86_400_001u64}),
            "reset_timeout must be at most 24 hours (got 86400.001s)",
        ),
        (
            json!({"fail_max": 4_294_967_296u64}),
            "fail_max is too large",
        ),
        (
            json!({"reset_timeout_ms": "18446744073709551616"}),
            "reset_timeout_ms is too large",
        ),
        (
            json!({"backoff_max_ms": 60000, "backoff_jitter_percent": 256}),
            "backoff_jitter_percent is too large",
        ),
        (
            json!({"backoff_max_ms": 60000, "backoff_jitter_percent": 101}),
            "backoff jitter must be at most 100 percent (got 101)",
        ),
        (
            json!({"reset_timeout_ms": 120000, "backoff_max_ms": 60000}),
            "the backoff cap must be at least reset_timeout and at most 24 hours (got 60s)",
        ),
        // negative
        (
            json!({"success_threshold": -1}),
            "success_threshold must not be negative",
        ),
        (
            json!({"trial_lease_ms": "-250"}),
            "trial_lease_ms must not be negative",
        ),
        // missing: an empty value, and jitter without the backoff it applies to
        (
            json!({"fail_max": ""}),
            "fail_max is empty (expected a whole number)",
        ),
        (
            json!({"backoff_jitter_percent": 10}),
            "backoff_jitter_percent needs backoff_max_ms (jitter applies to a backoff)",
        ),
        // unknown and repeated fields
        (
            json!({"fail_maxx": 3}),
            "unknown field `fail_maxx`, expected one of `fail_max`, `reset_timeout_ms`, \
             `success_threshold`, `half_open_max_calls`, `trial_lease_ms`, `backoff_max_ms`, \
             `backoff_jitter_percent`, `failure_rate_percent`, `failure_rate_window`, \
             `failure_rate_minimum_calls`",
        ),
        (
            json!({"reset_timeout": 1000}),
            "unknown field `reset_timeout`, expected one of `fail_max`, `reset_timeout_ms`, \
             `success_threshold`, `half_open_max_calls`, `trial_lease_ms`, `backoff_max_ms`, \
             `backoff_jitter_percent`, `failure_rate_percent`, `failure_rate_window`, \
             `failure_rate_minimum_calls`",
        ),
        // wrong type
        (
            json!({"fail_max": true}),
            "invalid type: boolean `true`, expected a whole number for fail_max (an integer or \
             a string of decimal digits)",
        ),
        (
            json!({"reset_timeout_ms": 1.5}),
            "invalid type: floating point `1.5`, expected a whole number for reset_timeout_ms \
             (an integer or a string of decimal digits)",
        ),
        (
            json!({"reset_timeout_ms": "1s"}),
            "invalid value: string \"1s\", expected a whole number for reset_timeout_ms (an \
             integer or a string of decimal digits)",
        ),
        (
            json!({"reset_timeout_ms": {"secs": 1, "nanos": 0}}),
            "invalid type: map, expected a whole number for reset_timeout_ms (an integer or a \
             string of decimal digits)",
        ),
        (
            json!([5]),
            "invalid type: sequence, expected a circuit breaker configuration (a map of fields \
             such as fail_max)",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(from_json(input.clone()).unwrap_err(), *want, "{input}");
    }
    // A repeated field (JSON objects cannot hold one; a string map or a file can).
    let err = serde_json::from_str::<Config>(r#"{"fail_max": 2, "FAIL_MAX": 3}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate field `fail_max` at line 1 column 26"
    );
    // The same errors from string maps, and from a file with its position.
    assert_eq!(
        from_env(&[("FAIL_MAX", "-3")]).unwrap_err(),
        "fail_max must not be negative"
    );
    assert_eq!(
        from_env(&[("FAIL_MAX", "99999999999999999999999")]).unwrap_err(),
        "fail_max is too large"
    );
    assert_eq!(
        from_env(&[("FAIL_MAX", "")]).unwrap_err(),
        "fail_max is empty (expected a whole number)"
    );
    assert_eq!(
        from_env(&[("COLOR", "blue")]).unwrap_err(),
        "unknown field `COLOR`, expected one of `fail_max`, `reset_timeout_ms`, \
         `success_threshold`, `half_open_max_calls`, `trial_lease_ms`, `backoff_max_ms`, \
         `backoff_jitter_percent`, `failure_rate_percent`, `failure_rate_window`, \
         `failure_rate_minimum_calls`"
    );
    let err = serde_json::from_str::<Config>("{\n  \"fail_max\": 200\n}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "fail_max must be between 1 and 127 (got 200) at line 3 column 1"
    );
}

#[test]
fn state_snapshot_and_events_serialize_with_ms_fields() {
    assert_eq!(
        serde_json::to_value(State::HalfOpen).unwrap(),
        json!("HalfOpen")
    );
    let clock = ManualClock::new();
    let b = CircuitBreaker::<_>::new(
        "db",
        Config::new()
            .fail_max(1)
            .reset_timeout(Duration::from_millis(1_500)),
        &clock,
    );
    let _ = b.call(|| Err::<(), _>("down"));
    clock.advance_ms(500);
    assert_eq!(
        serde_json::to_value(b.snapshot()).unwrap(),
        json!({
            "name": "db",
            "state": "Open",
            "fail_counter": 1,
            "success_counter": 0,
            "trial_calls": 0,
            "generation": 1,
            "backoff_level": 0,
            "retry_after_ms": 1000,
            "opened_at": 0,
            "fail_max": 1,
            "success_threshold": 1,
            "half_open_max_calls": 1,
            "reset_timeout_ms": 1500
        })
    );

    #[derive(Debug)]
    #[allow(dead_code)] // read only through `Debug`
    struct Timeout {
        ms: u32,
        path: &'static str,
    }
    let err = Timeout {
        ms: 250,
        path: "/q\"x",
    };
    let ev = |kind| serde_json::to_value(Event { name: "db", kind }).unwrap();
    assert_eq!(
        ev(EventKind::Failure {
            failures: 2,
            error: Some(&err)
        }),
        json!({"name": "db", "kind": "failure", "failures": 2,
               "error": "Timeout { ms: 250, path: \"/q\\\"x\" }"})
    );
    assert_eq!(
        ev(EventKind::Failure {
            failures: 1,
            error: None
        }),
        json!({"name": "db", "kind": "failure", "failures": 1, "error": null})
    );
    assert_eq!(
        ev(EventKind::Ignored { error: Some(&404) }),
        json!({"name": "db", "kind": "ignored", "error": "404"})
    );
    assert_eq!(
        ev(EventKind::BeforeCall),
        json!({"name": "db", "kind": "before_call"})
    );
    assert_eq!(
        ev(EventKind::Success { failures: 2 }),
        json!({"name": "db", "kind": "success", "failures": 2})
    );
    assert_eq!(
        ev(EventKind::Rejected {
            state: State::Open,
            retry_after: Some(Duration::from_millis(20))
        }),
        json!({"name": "db", "kind": "rejected", "state": "Open", "retry_after_ms": 20})
    );
    let change = Event {
        name: "db",
        kind: EventKind::StateChange {
            from: State::Closed,
            to: State::Open,
            failures: 5,
            retry_after: Some(Duration::from_secs(60)),
        },
    };
    let want = json!({"name": "db", "kind": "state_change", "from": "Closed", "to": "Open",
                      "failures": 5, "retry_after_ms": 60000});
    assert_eq!(serde_json::to_value(change).unwrap(), want);
    assert_eq!(
        serde_json::to_value(EventRecord::new(&change)).unwrap(),
        want
    );
}

#[test]
fn failure_rate_mode_round_trips_and_needs_percent_and_window() {
    let rate = Config::new().failure_rate(FailureRate::new(50, 20).minimum_calls(10));
    let v = serde_json::to_value(rate).unwrap();
    assert_eq!(v["failure_rate_percent"], json!(50));
    assert_eq!(v["failure_rate_window"], json!(20));
    assert_eq!(v["failure_rate_minimum_calls"], json!(10));
    assert_eq!(from_json(v), Ok(rate));
    // Consecutive mode writes none of the three fields.
    let v = serde_json::to_value(Config::new()).unwrap();
    assert!(v.get("failure_rate_window").is_none());

    let env = from_env(&[
        ("FAILURE_RATE_PERCENT", "50"),
        ("FAILURE_RATE_WINDOW", "20"),
    ])
    .unwrap();
    assert_eq!(env.get_failure_rate(), Some(FailureRate::new(50, 20)));
    assert_eq!(
        env.get_failure_rate().map(|r| r.get_minimum_calls()),
        Some(20),
        "minimum_calls defaults to the window"
    );

    let incomplete = "failure-rate mode needs both failure_rate_percent and failure_rate_window";
    assert_eq!(
        from_env(&[("failure_rate_percent", "50")]).unwrap_err(),
        incomplete
    );
    assert_eq!(
        from_env(&[("failure_rate_minimum_calls", "5")]).unwrap_err(),
        incomplete
    );
    // Out of range values are Config::validate's errors.
    assert_eq!(
        from_env(&[("failure_rate_percent", "0"), ("failure_rate_window", "20")]).unwrap_err(),
        ConfigError::FailureRateThreshold(0).to_string()
    );
    assert_eq!(
        from_env(&[("failure_rate_percent", "50"), ("failure_rate_window", "0")]).unwrap_err(),
        ConfigError::Window(0).to_string()
    );
    assert_eq!(
        from_env(&[
            ("failure_rate_percent", "50"),
            ("failure_rate_window", "10"),
            ("failure_rate_minimum_calls", "11"),
        ])
        .unwrap_err(),
        ConfigError::MinimumCalls(11).to_string()
    );
}
