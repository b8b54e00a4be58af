//! `SavedState`: a breaker's state across a reset or a restart. Round trips for every state,
//! restore with and without the elapsed time, clocks reading anything, every way bytes can be
//! wrong (each with its exact error), restore on a used breaker, the event, a `static` breaker
//! restored at boot, and the fuzz seeds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, Event, EventKind, FailureRate, ManualClock, RestoreError,
    SavedState, State, MAX_PERIOD,
};

const PERIOD: Duration = Duration::from_secs(30);
const LEASE: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::new()
        .fail_max(3)
        .reset_timeout(PERIOD)
        .trial_lease(LEASE)
        .success_threshold(2)
        .half_open_max_calls(2)
}

fn breaker(clock: &ManualClock) -> CircuitBreaker<&ManualClock> {
    CircuitBreaker::new("dep", config(), clock)
}

fn fail(b: &CircuitBreaker<&ManualClock>) {
    let _ = b.call(|| Err::<(), _>("down"));
}

fn ok(b: &CircuitBreaker<&ManualClock>) {
    let _ = b.call(|| Ok::<_, &str>(()));
}

fn trip(b: &CircuitBreaker<&ManualClock>) {
    for _ in 0..3 {
        fail(b);
    }
    assert_eq!(b.state(), State::Open);
}

/// Clock readings to start the second life at: the reset makes the clock start anywhere. The
/// last leaves 40 s before `u64::MAX` (the tests advance it by at most 30 s), so the deadline
/// set from it wraps past `u64::MAX` modulo 2^29.
const STARTS: [u64; 6] = [0, 1, 1_000_000, 1 << 40, (1 << 29) - 7, u64::MAX - 40_000];

/// A clock starting at `start` and `saved` after an encode/decode round trip: the second life.
fn reborn(saved: SavedState, start: u64) -> (ManualClock, SavedState) {
    let decoded = SavedState::from_bytes(&saved.to_bytes()).expect("a saved state decodes");
    assert_eq!(decoded, saved);
    (ManualClock::starting_at(start), decoded)
}

#[test]
fn closed_round_trips_with_its_failures() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    assert_eq!(b.saved_state(), SavedState::CLOSED);
    fail(&b);
    fail(&b);
    let saved = b.saved_state();
    assert_eq!(
        (saved.state(), saved.count(), saved.remaining()),
        (State::Closed, 2, Duration::ZERO)
    );
    for start in STARTS {
        let (clock, saved) = reborn(saved, start);
        let b = breaker(&clock);
        assert!(b.restore(saved, None));
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.fail_counter(), 2);
        fail(&b);
        assert_eq!(b.state(), State::Open, "the third failure in all trips it");
    }
}

#[test]
fn open_round_trips_and_serves_the_rest_of_its_period_in_full() {
    let clock = ManualClock::starting_at(123_456);
    let b = breaker(&clock);
    trip(&b);
    clock.advance(Duration::from_secs(10));
    let saved = b.saved_state();
    assert_eq!(saved.state(), State::Open);
    assert_eq!(saved.count(), 3);
    assert_eq!(saved.remaining(), Duration::from_secs(20));
    for start in STARTS {
        let (clock, saved) = reborn(saved, start);
        let b = breaker(&clock);
        assert!(b.restore(saved, None));
        assert_eq!(b.state(), State::Open, "start {start}");
        assert_eq!(b.fail_counter(), 3);
        assert_eq!(
            b.retry_after(),
            Some(Duration::from_secs(20)),
            "start {start}"
        );
        assert_eq!(b.saved_state(), saved, "saved again at once: the same");
        clock.advance(Duration::from_millis(19_999));
        assert!(b.call(|| Ok::<_, ()>(())).unwrap_err().is_rejected());
        assert_eq!(b.retry_after(), Some(Duration::from_millis(1)));
        clock.advance(Duration::from_millis(1));
        ok(&b);
        assert_eq!(b.state(), State::HalfOpen, "one trial ran");
        ok(&b);
        assert_eq!(b.state(), State::Closed, "start {start}");
    }
}

#[test]
fn elapsed_time_is_taken_off_the_remaining_period() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    let saved = b.saved_state();
    assert_eq!(saved.remaining(), PERIOD);
    for start in STARTS.into_iter().chain([u64::MAX]) {
        let clock = ManualClock::starting_at(start);
        let b = breaker(&clock);
        assert!(b.restore(saved, Some(Duration::from_secs(12))));
        assert_eq!(b.retry_after(), Some(Duration::from_secs(18)));
        // Sub-millisecond parts of `elapsed` are dropped: never a shorter period.
        let b = breaker(&clock);
        b.restore(saved, Some(Duration::from_micros(1_999)));
        assert_eq!(b.retry_after(), Some(Duration::from_millis(29_999)));
    }
}

#[test]
fn elapsed_longer_than_the_period_leaves_a_passed_open_period() {
    for elapsed in [
        PERIOD,
        PERIOD + Duration::from_millis(1),
        Duration::from_secs(86_400 * 365),
        Duration::MAX,
    ] {
        for start in STARTS {
            let clock = ManualClock::starting_at(start);
            let b = breaker(&clock);
            let saved = SavedState::new(State::Open, 3, 2, PERIOD).unwrap();
            assert!(b.restore(saved, Some(elapsed)));
            assert_eq!(b.state(), State::Open);
            assert_eq!(b.retry_after(), Some(Duration::ZERO), "{elapsed:?} {start}");
            assert_eq!(b.snapshot().backoff_level, 2);
            ok(&b);
            assert_eq!(b.state(), State::HalfOpen, "the next caller is a trial");
        }
    }
}

#[test]
fn half_open_with_a_trial_in_flight_restores_open_for_the_rest_of_its_lease() {
    let clock = ManualClock::starting_at(77);
    let b = breaker(&clock);
    trip(&b);
    clock.advance(PERIOD);
    let trial = b.allow().unwrap();
    clock.advance(Duration::from_secs(2));
    let saved = b.saved_state();
    assert_eq!(saved.state(), State::HalfOpen);
    assert_eq!(saved.remaining(), LEASE - Duration::from_secs(2));
    drop(trial);
    for start in STARTS {
        let (clock, saved) = reborn(saved, start);
        let b = breaker(&clock);
        assert!(b.restore(saved, None));
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.retry_after(), Some(Duration::from_secs(3)));
        clock.advance(Duration::from_secs(3));
        ok(&b);
        assert_eq!(b.state(), State::HalfOpen);
        // With the lease known to have passed: HalfOpen, no trial in flight.
        let b = breaker(&clock);
        assert!(b.restore(saved, Some(Duration::from_secs(3))));
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.trial_calls(), 0);
    }
}

#[test]
fn half_open_without_a_trial_in_flight_restores_half_open_with_its_successes() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    clock.advance(PERIOD);
    ok(&b); // a trial, success 1 of 2
    assert_eq!(
        (b.state(), b.success_counter(), b.trial_calls()),
        (State::HalfOpen, 1, 0)
    );
    let saved = b.saved_state();
    assert_eq!((saved.count(), saved.remaining()), (1, Duration::ZERO));
    for start in STARTS {
        let (clock, saved) = reborn(saved, start);
        let b = breaker(&clock);
        assert!(b.restore(saved, None));
        assert_eq!(
            (b.state(), b.success_counter(), b.trial_calls()),
            (State::HalfOpen, 1, 0)
        );
        ok(&b);
        assert_eq!(b.state(), State::Closed, "the second success closes it");
    }
}

#[test]
fn backoff_level_survives_the_restart() {
    let clock = ManualClock::new();
    let cfg = config().backoff(Backoff::exponential(Duration::from_secs(600)));
    let b: CircuitBreaker<_> = CircuitBreaker::new("dep", cfg, &clock);
    for _ in 0..3 {
        let _ = b.call(|| Err::<(), _>(()));
    }
    // Two failed trials: level 2.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(600));
        let _ = b.call(|| Err::<(), _>(()));
    }
    assert_eq!(b.snapshot().backoff_level, 2);
    let saved = b.saved_state();
    assert_eq!(saved.backoff_level(), 2);
    assert_eq!(saved.remaining(), PERIOD * 4);
    let b2: CircuitBreaker<_> = CircuitBreaker::new("dep", cfg, &clock);
    b2.restore(saved, None);
    assert_eq!(b2.snapshot().backoff_level, 2);
    clock.advance(PERIOD * 4);
    let _ = b2.call(|| Err::<(), _>(()));
    assert_eq!(
        b2.retry_after(),
        Some(PERIOD * 8),
        "the next re-trip backs off further"
    );
}

#[test]
fn forced_open_and_disabled_outlive_the_restart() {
    for state in [State::ForcedOpen, State::Disabled] {
        let manage = |b: &CircuitBreaker<&ManualClock>| {
            if state == State::ForcedOpen {
                b.force_open()
            } else {
                b.disable()
            }
        };
        let clock = ManualClock::new();
        let b = breaker(&clock);
        manage(&b);
        let saved = b.saved_state();
        assert_eq!(saved, SavedState::new(state, 0, 0, Duration::ZERO).unwrap());
        for start in STARTS.into_iter().chain([u64::MAX]) {
            let (clock, saved) = reborn(saved, start);
            let b = breaker(&clock);
            assert!(b.restore(saved, Some(Duration::from_secs(1))));
            assert_eq!(b.state(), state);
        }
    }
}

#[test]
fn a_stale_deadline_saves_as_passed_whatever_the_idle_time() {
    // Open, then left alone for days (past the 29-bit deadline's cycle): the saved time left is
    // zero, as `retry_after` reads it.
    let clock = ManualClock::starting_at(1 << 40);
    let b = breaker(&clock);
    trip(&b);
    for idle_days in [1u64, 6, 7, 13, 400] {
        clock.advance(Duration::from_secs(idle_days * 86_400));
        assert_eq!(
            b.saved_state().remaining(),
            Duration::ZERO,
            "{idle_days} days"
        );
    }
}

// ------------------------------------------------------------------ restore on a used breaker

#[test]
fn restore_applies_only_to_a_closed_breaker() {
    let open = SavedState::new(State::Open, 3, 0, PERIOD).unwrap();
    let clock = ManualClock::new();

    // Tripped since boot: its own, newer period is kept.
    let b = breaker(&clock);
    trip(&b);
    clock.advance(Duration::from_secs(25));
    assert!(!b.restore(open, None));
    assert_eq!(b.retry_after(), Some(Duration::from_secs(5)));
    let b = breaker(&clock);
    b.disable();
    assert!(!b.restore(open, None));
    assert_eq!(b.state(), State::Disabled);

    // Closed with one failure since boot, saved Closed with two: the larger count, in place.
    let b = breaker(&clock);
    fail(&b);
    let permit = b.allow().unwrap();
    assert!(b.restore(
        SavedState::new(State::Closed, 2, 0, Duration::ZERO).unwrap(),
        None
    ));
    assert_eq!(b.fail_counter(), 2);
    // Same generation: the call admitted before still counts, and trips it.
    permit.failure();
    assert_eq!(b.state(), State::Open);

    // Saved more failures than this configuration's fail_max: one below the trip point.
    let b = breaker(&clock);
    assert!(b.restore(
        SavedState::new(State::Closed, 100, 0, Duration::ZERO).unwrap(),
        None
    ));
    assert_eq!(b.fail_counter(), 2);
    // Fewer than it has: unchanged.
    assert!(b.restore(SavedState::CLOSED, None));
    assert_eq!(b.fail_counter(), 2);

    // Closed, saved Open: opens, and a call admitted before reports nothing.
    let b = breaker(&clock);
    let permit = b.allow().unwrap();
    assert!(b.restore(open, None));
    assert_eq!(b.state(), State::Open);
    permit.success();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn restore_in_failure_rate_mode_leaves_the_window_alone_when_closed() {
    let clock = ManualClock::new();
    let cfg = Config::new()
        .reset_timeout(PERIOD)
        .failure_rate(FailureRate::new(50, 10).minimum_calls(4));
    let b: CircuitBreaker<_> = CircuitBreaker::new("rate", cfg, &clock);
    let _ = b.call(|| Err::<(), _>(()));
    assert_eq!(b.fail_counter(), 1);
    let saved = b.saved_state();
    assert_eq!(
        (saved.state(), saved.count()),
        (State::Closed, 0),
        "the window is not saved"
    );
    assert!(b.restore(
        SavedState::new(State::Closed, 5, 0, Duration::ZERO).unwrap(),
        None
    ));
    assert_eq!(b.fail_counter(), 1);
    // Open restores, and the window of the Closed period it left is emptied.
    assert!(b.restore(SavedState::new(State::Open, 4, 0, PERIOD).unwrap(), None));
    assert_eq!((b.state(), b.fail_counter()), (State::Open, 4));
    clock.advance(PERIOD);
    let _ = b.call(|| Ok::<_, ()>(()));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.fail_counter(), 0);
}

// ------------------------------------------------------------------ the event

/// `(from, to, failures, retry_after)` of each state change.
type Change = (State, State, u32, Option<Duration>);
static EVENTS: Mutex<Vec<Change>> = Mutex::new(Vec::new());
fn record(e: &Event) {
    if let EventKind::StateChange {
        from,
        to,
        failures,
        retry_after,
    } = e.kind
    {
        EVENTS
            .lock()
            .unwrap()
            .push((from, to, failures, retry_after));
    }
}

#[test]
fn a_restore_that_changes_the_state_fires_the_state_change_event() {
    let clock = ManualClock::starting_at(5);
    let b: CircuitBreaker<_> = CircuitBreaker::new("dep", config(), &clock).with_listener(record);
    assert!(b.restore(
        SavedState::new(State::Open, 3, 0, Duration::from_secs(9)).unwrap(),
        None
    ));
    assert!(
        !b.restore(SavedState::CLOSED, None),
        "Open since the first restore: kept"
    );
    assert_eq!(
        *EVENTS.lock().unwrap(),
        vec![(State::Closed, State::Open, 3, Some(Duration::from_secs(9)))]
    );
    assert_eq!(b.opened_at(), Some(5));
}

// ------------------------------------------------------------------ a static breaker at boot

static BOOT_CLOCK: ManualClock = ManualClock::starting_at(40);
static SAVED: Mutex<Option<[u8; SavedState::LEN]>> = Mutex::new(None);
static SAVES: AtomicUsize = AtomicUsize::new(0);
fn save(_: &Event) {
    SAVES.fetch_add(1, Ordering::Relaxed);
    *SAVED.lock().unwrap() = Some(SENSOR.saved_state().to_bytes());
}
static SENSOR: CircuitBreaker<&ManualClock> = CircuitBreaker::new(
    "sensor",
    Config::new()
        .fail_max(2)
        .reset_timeout(Duration::from_millis(500)),
    &BOOT_CLOCK,
)
.with_listener(save);

#[test]
fn a_static_breaker_is_restored_at_boot_by_one_call() {
    // What the previous life left: Open, 300 ms to go.
    let bytes = SavedState::new(State::Open, 2, 0, Duration::from_millis(300))
        .unwrap()
        .to_bytes();
    // Boot: one call.
    if let Ok(saved) = SavedState::from_bytes(&bytes) {
        SENSOR.restore(saved, None);
    }
    assert_eq!(SENSOR.state(), State::Open);
    assert_eq!(SENSOR.retry_after(), Some(Duration::from_millis(300)));
    // The listener saved the restored state.
    assert_eq!(SAVES.load(Ordering::Relaxed), 1);
    let again = SAVED.lock().unwrap().unwrap();
    assert_eq!(
        SavedState::from_bytes(&again),
        SavedState::from_bytes(&bytes)
    );
    BOOT_CLOCK.advance(Duration::from_millis(300));
    assert_eq!(SENSOR.call(|| Ok::<_, ()>(7)), Ok(7));
    assert_eq!(SENSOR.state(), State::Closed);
    let last = SAVED.lock().unwrap().unwrap();
    assert_eq!(SavedState::from_bytes(&last), Ok(SavedState::CLOSED));
}

// ------------------------------------------------------------------ bytes

fn with_crc(mut b: [u8; 16]) -> [u8; 16] {
    // Re-seal a hand-edited encoding, so that the field checks (not the checksum) are reached.
    let crc = crc32(&b[..12]);
    b[12..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A reference CRC-32 (IEEE), written independently of the crate's (table-driven).
fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[test]
fn the_reference_crc_is_crc32() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn the_encoding_is_as_documented() {
    let s = SavedState::new(State::HalfOpen, 5, 3, Duration::from_millis(0x0102_0304)).unwrap();
    let b = s.to_bytes();
    assert_eq!(&b[..12], &[b'A', b'B', b's', b'v', 1, 2, 5, 3, 4, 3, 2, 1]);
    assert_eq!(
        u32::from_le_bytes(b[12..].try_into().unwrap()),
        crc32(&b[..12])
    );
    assert_eq!(SavedState::from_bytes(&b), Ok(s));
}

#[test]
fn bad_bytes_get_their_exact_error() {
    let good = SavedState::new(State::Open, 3, 1, Duration::from_secs(30))
        .unwrap()
        .to_bytes();
    assert!(SavedState::from_bytes(&good).is_ok());
    let edit = |i: usize, v: u8| {
        let mut b = good;
        b[i] = v;
        b
    };
    let cases: Vec<([u8; 16], RestoreError)> = vec![
        (edit(0, b'a'), RestoreError::Magic),
        (edit(3, 0), RestoreError::Magic),
        (edit(4, 2), RestoreError::Version(2)),
        (edit(4, 0), RestoreError::Version(0)),
        (edit(6, 4), RestoreError::Checksum),
        (edit(15, good[15] ^ 0x80), RestoreError::Checksum),
        (with_crc(edit(5, 5)), RestoreError::State(5)),
        (with_crc(edit(5, 255)), RestoreError::State(255)),
        (with_crc(edit(6, 128)), RestoreError::Count(128)),
        (with_crc(edit(6, 255)), RestoreError::Count(255)),
        (with_crc(edit(7, 8)), RestoreError::Level(8)),
        (
            with_crc(edit(11, 0xFF)),
            RestoreError::Remaining(0xFF00_7530),
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(SavedState::from_bytes(&bytes), Err(err), "{bytes:?}");
    }
    // Just over 24 h, and exactly 24 h.
    let mut b = good;
    b[8..12].copy_from_slice(&(86_400_001u32).to_le_bytes());
    assert_eq!(
        SavedState::from_bytes(&with_crc(b)),
        Err(RestoreError::Remaining(86_400_001))
    );
    b[8..12].copy_from_slice(&(86_400_000u32).to_le_bytes());
    assert_eq!(
        SavedState::from_bytes(&with_crc(b)).unwrap().remaining(),
        MAX_PERIOD
    );
    // Fields the state does not keep.
    for (state, count, level, ms) in [
        (0u8, 0u8, 1u8, 0u32),
        (0, 0, 0, 1),
        (3, 1, 0, 0),
        (3, 0, 1, 0),
        (4, 0, 0, 5),
    ] {
        let mut b = good;
        b[5] = state;
        b[6] = count;
        b[7] = level;
        b[8..12].copy_from_slice(&ms.to_le_bytes());
        let want = [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
        ][state as usize];
        assert_eq!(
            SavedState::from_bytes(&with_crc(b)),
            Err(RestoreError::Inconsistent(want))
        );
    }
    // Lengths.
    assert_eq!(SavedState::from_bytes(&[]), Err(RestoreError::Length(0)));
    assert_eq!(
        SavedState::from_bytes(&good[..15]),
        Err(RestoreError::Length(15))
    );
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(SavedState::from_bytes(&long), Err(RestoreError::Length(17)));
    // A cold boot's RAM: all zeros, all ones.
    assert_eq!(SavedState::from_bytes(&[0; 16]), Err(RestoreError::Magic));
    assert_eq!(
        SavedState::from_bytes(&[0xFF; 16]),
        Err(RestoreError::Magic)
    );
}

#[test]
fn every_single_bit_flip_is_caught() {
    for s in [
        SavedState::CLOSED,
        SavedState::new(State::Open, 3, 1, Duration::from_secs(30)).unwrap(),
        SavedState::new(State::HalfOpen, 0, 7, MAX_PERIOD).unwrap(),
    ] {
        let good = s.to_bytes();
        for bit in 0..128 {
            let mut b = good;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SavedState::from_bytes(&b).is_err(), "{s:?} bit {bit}");
        }
    }
}

#[test]
fn new_checks_as_from_bytes_does() {
    assert_eq!(
        SavedState::new(State::Open, 128, 0, PERIOD),
        Err(RestoreError::Count(128))
    );
    assert_eq!(
        SavedState::new(State::Open, 0, 8, PERIOD),
        Err(RestoreError::Level(8))
    );
    assert_eq!(
        SavedState::new(State::Open, 0, 0, MAX_PERIOD + Duration::from_nanos(1)),
        Err(RestoreError::Remaining(86_400_001))
    );
    assert_eq!(
        SavedState::new(State::Closed, 0, 0, Duration::from_millis(1)),
        Err(RestoreError::Inconsistent(State::Closed))
    );
    assert_eq!(
        RestoreError::Checksum.to_string(),
        "saved breaker state is damaged (bad checksum)"
    );
    assert_eq!(
        RestoreError::Length(3).to_string(),
        "a saved breaker state is 16 bytes (got 3)"
    );
}

/// Every state a breaker can be in, saved, encoded, decoded and restored, gives a breaker whose
/// state saves back the same (at the same clock reading).
#[test]
fn every_valid_saved_state_restores_to_itself() {
    let states = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
    ];
    let mut checked = 0;
    for state in states {
        for count in [0, 1, 2, 127] {
            for level in [0, 1, 7] {
                for ms in [0u64, 1, 4_999, 86_400_000] {
                    let Ok(s) = SavedState::new(state, count, level, Duration::from_millis(ms))
                    else {
                        continue;
                    };
                    let s = SavedState::from_bytes(&s.to_bytes()).unwrap();
                    for start in STARTS.into_iter().chain([u64::MAX]) {
                        let clock = ManualClock::starting_at(start);
                        let b: CircuitBreaker<_> = CircuitBreaker::new(
                            "x",
                            Config::new().fail_max(127).success_threshold(127),
                            &clock,
                        );
                        assert!(b.restore(s, None));
                        let back = b.saved_state();
                        // HalfOpen with a lease comes back Open for that lease (a trial's
                        // outcome is unknown); everything else as saved.
                        let want = match (state, ms) {
                            (State::HalfOpen, 1..) => {
                                SavedState::new(State::Open, 0, level, Duration::from_millis(ms))
                                    .unwrap()
                            }
                            (State::Closed, _) => {
                                SavedState::new(State::Closed, count.min(126), 0, Duration::ZERO)
                                    .unwrap()
                            }
                            (State::HalfOpen, 0) => SavedState::new(
                                State::HalfOpen,
                                count.min(126),
                                level,
                                Duration::ZERO,
                            )
                            .unwrap(),
                            _ => s,
                        };
                        assert_eq!(back, want, "{s:?} at {start}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn every_fuzz_seed_decodes_as_its_name_says() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/saved_state");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let bytes = std::fs::read(&path).unwrap();
        let decoded = SavedState::from_bytes(&bytes);
        if name.starts_with("ok-") {
            let s = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.to_bytes().as_slice(), bytes.as_slice(), "{name}");
        } else {
            assert!(decoded.is_err(), "{name}: {decoded:?}");
        }
        seen += 1;
    }
    assert!(seen >= 8, "{seen} seeds");
}

#[cfg(feature = "serde")]
#[test]
fn serde_round_trips_and_checks_every_field() {
    let s = SavedState::new(State::Open, 3, 1, Duration::from_millis(29_950)).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(
        json,
        r#"{"state":"Open","count":3,"backoff_level":1,"remaining_ms":29950}"#
    );
    assert_eq!(serde_json::from_str::<SavedState>(&json).unwrap(), s);
    let err = |j: &str| {
        serde_json::from_str::<SavedState>(j)
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(r#"{"state":"Open","count":128,"backoff_level":1,"remaining_ms":0}"#)
            .starts_with("saved count must be at most 127 (got 128)")
    );
    assert!(
        err(r#"{"state":"Closed","count":0,"backoff_level":0,"remaining_ms":5}"#)
            .starts_with("saved breaker state sets a field that closed does not keep")
    );
    assert!(
        err(r#"{"state":"Shut","count":0,"backoff_level":0,"remaining_ms":0}"#)
            .starts_with("unknown variant `Shut`")
    );
    assert!(err(r#"{"state":"Open","count":0,"backoff_level":0}"#)
        .starts_with("missing field `remaining_ms`"));
    assert!(
        err(r#"{"state":"Open","count":0,"count":0,"backoff_level":0,"remaining_ms":0}"#)
            .starts_with("duplicate field `count`")
    );
    assert!(
        err(r#"{"state":"Open","count":-1,"backoff_level":0,"remaining_ms":0}"#).contains("-1")
    );
}

/// A restored deadline raises `ARMED_AT` like every other: on a breaker whose last deadline was
/// set days ago, the restored period still reads as pending to the millisecond (it would read as
/// long passed if `restore` set its deadline without raising `ARMED_AT`), and once it passes,
/// it reads as passed however long the breaker is then left alone.
#[test]
fn a_restored_deadline_is_exact_after_any_idle_time() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    clock.advance(PERIOD);
    ok(&b);
    ok(&b);
    assert_eq!(b.state(), State::Closed);
    clock.advance(Duration::from_millis(1 << 34)); // about 200 days since the last deadline
    let saved = SavedState::new(State::Open, 3, 0, Duration::from_millis(100)).unwrap();
    assert!(b.restore(saved, None));
    assert_eq!(b.retry_after(), Some(Duration::from_millis(100)));
    clock.advance(Duration::from_millis(99));
    assert!(b.allow().is_err());
    clock.advance(Duration::from_millis((1 << 29) - 50));
    assert_eq!(b.retry_after(), Some(Duration::ZERO));
    assert!(b.allow().unwrap().is_trial());
}
