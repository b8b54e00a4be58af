//! Issue 20, part 6: every modular or narrow field, driven through the public API across at
//! least two of its wraps (one below, at and one past each boundary), with the documented
//! behaviour asserted. Fields that cannot wrap by design (capacity limits, saturating counters)
//! are shown refusing or saturating instead. The table in TESTING.md ("Modular and narrow
//! fields") lists each field and its test here.
//!
//! Deterministic: `ManualClock`, no sleeping. Long runs of generations are management calls
//! (`open()`, `close()`, `half_open()`, `trip_for()`: one change each), about 2^17 to 2^20 of
//! them per test. Each test collects every boundary that disagrees and reports them all in one
//! message.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use atomic_breaker::{
    Backoff, CircuitBreaker, Config, ConfigError, Event, EventKind, FailureRate, Interest,
    ListenerTableFull, ManualClock, OwnedPermit, Recorded, State, MAX_FAIL_MAX,
    MAX_HALF_OPEN_CALLS, MAX_LISTENERS, MAX_PERIOD, MAX_SUCCESS_THRESHOLD, MAX_WINDOW,
};

type Breaker<'c, const L: usize = 4> = CircuitBreaker<&'c ManualClock, L>;

/// Generations the 16-bit `GEN` tells apart.
const GENS: u64 = 1 << 16;
/// The modulus of the word's `UNTIL` deadlines, in ms.
const CYCLE: u64 = 1 << 29;
/// The longest period: 24 h in ms.
const MAX_MS: u64 = MAX_PERIOD.as_millis() as u64;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One below, at and one past `k` wraps of `modulus`, for `k` in `1..=wraps`.
fn boundaries(modulus: u64, wraps: u64) -> Vec<u64> {
    (1..=wraps)
        .flat_map(|k| [k * modulus - 1, k * modulus, k * modulus + 1])
        .collect()
}

/// Panics listing every disagreement, if any.
fn assert_none(test: &str, wrong: &[String]) {
    assert!(
        wrong.is_empty(),
        "{test}: {} wrong: {}",
        wrong.len(),
        wrong.join("; ")
    );
}

/// `n` state changes of a breaker that is Closed, ending Closed: pairs of `open()` and
/// `close()`, and for an odd `n` one `open()`, `half_open()`, `close()` first.
fn changes_closed_to_closed<C: atomic_breaker::Clock, const L: usize>(
    b: &CircuitBreaker<C, L>,
    n: u64,
) {
    assert_eq!(b.state(), State::Closed);
    assert!(n >= 2, "Closed to Closed takes at least 2 changes");
    let mut left = n;
    if n % 2 == 1 {
        assert!(b.open() && b.half_open() && b.close());
        left -= 3;
    }
    for _ in 0..left / 2 {
        assert!(b.open());
        assert!(b.close());
    }
}

/// `n` state changes of a breaker that is HalfOpen, ending HalfOpen with no trial in flight:
/// pairs of `trip_for(0)` and `half_open()`, and for an odd `n` one `open()`, `close()`,
/// `half_open()` first.
fn changes_half_open_to_half_open(b: &Breaker<'_>, n: u64) {
    assert_eq!(b.state(), State::HalfOpen);
    assert!(n >= 2, "HalfOpen to HalfOpen takes at least 2 changes");
    let mut left = n;
    if n % 2 == 1 {
        assert!(b.open() && b.close() && b.half_open());
        left -= 3;
    }
    for _ in 0..left / 2 {
        b.trip_for(Duration::ZERO).unwrap();
        assert!(b.half_open());
    }
}

// ------------------------------------------------------------------ GEN: 16 bits

/// `GEN` (16 bits): a call admitted while Closed and reported after `n` changes counts exactly
/// when `n` is a multiple of 65,536 (the documented bound: "a stale report is counted only if
/// the generation advanced by a non-zero multiple of 65,536"); otherwise it is dropped. Two
/// wraps, one below, at and one past each.
#[test]
fn gen_closed_reports_across_two_wraps() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new("gen-closed", Config::new().fail_max(1), &clock);
    let mut wrong = Vec::new();
    for n in boundaries(GENS, 2) {
        let before = b.snapshot().generation;
        let success = b.allow().unwrap();
        let failure = b.allow().unwrap();
        changes_closed_to_closed(&b, n);
        let gen = b.snapshot().generation;
        if u64::from(gen.wrapping_sub(before)) != n % GENS {
            wrong.push(format!("after {n} changes GEN {gen}, was {before}"));
        }
        let counts = n % GENS == 0;
        let want = |counted| if counts { counted } else { Recorded::Dropped };
        let got = success.success();
        if got != want(Recorded::Counted) {
            wrong.push(format!("success after {n} changes: {got:?}"));
        }
        let got = failure.failure();
        if got != want(Recorded::Tripped) {
            wrong.push(format!("failure after {n} changes: {got:?}"));
        }
        let state = b.state();
        if state != if counts { State::Open } else { State::Closed } {
            wrong.push(format!("after {n} changes and a failure: {state:?}"));
        }
        b.close();
    }
    assert_none("gen_closed_reports_across_two_wraps", &wrong);
}

/// `GEN` in HalfOpen: a trial admitted and held across `n` changes (ending HalfOpen with no
/// trial in flight), then a new trial (the only slot). Dropping the old trial frees that slot
/// exactly when `n` is a multiple of 65,536 (it is of the current generation modulo 2^16: the
/// documented bound), letting a second trial in; otherwise it frees nothing. A stale trial's
/// success closes the breaker only at a multiple too.
#[test]
fn gen_half_open_trials_across_two_wraps() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "gen-half-open",
        Config::new()
            .fail_max(1)
            .half_open_max_calls(1)
            .trial_lease(MAX_PERIOD),
        &clock,
    );
    let mut wrong = Vec::new();
    for n in boundaries(GENS, 2) {
        let counts = n % GENS == 0;
        assert!(b.half_open());
        let dropped = b.allow().unwrap();
        assert!(dropped.is_trial());
        // Re-enter HalfOpen in the same generation to admit the reporting trial too.
        changes_half_open_to_half_open(&b, GENS);
        let reporting = b.allow().unwrap();
        changes_half_open_to_half_open(&b, n);
        let current = b.allow().unwrap();
        assert!(current.is_trial());
        drop(dropped);
        let (calls, beside) = (b.trial_calls(), b.allow());
        if (calls, beside.is_ok()) != if counts { (0, true) } else { (1, false) } {
            wrong.push(format!(
                "stale trial dropped after {n} changes: trial_calls {calls}, another trial \
                 admitted {}",
                beside.is_ok()
            ));
        }
        drop(beside);
        let got = reporting.success();
        let want = if counts {
            Recorded::Closed
        } else {
            Recorded::Dropped
        };
        if got != want {
            wrong.push(format!("stale trial success after {n} changes: {got:?}"));
        }
        drop(current);
        b.close();
    }
    assert_none("gen_half_open_trials_across_two_wraps", &wrong);
}

/// `GEN` in failure-rate mode: a failure admitted while Closed and reported after `n` changes
/// counts in the window exactly when `n` is a multiple of 65,536. Every 16,384 changes a current
/// success writes the window, so the window's own tag never falls half a cycle behind (that is
/// `rate_window_left_unwritten_across_two_tag_wraps`): this test is about `GEN` alone.
#[test]
fn gen_rate_mode_reports_across_two_wraps() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "gen-rate",
        Config::new().failure_rate(FailureRate::new(100, 10).minimum_calls(10)),
        &clock,
    );
    let mut wrong = Vec::new();
    for n in boundaries(GENS, 2) {
        let stale = b.allow().unwrap();
        let mut left = n;
        while left > 0 {
            let step = left.min(1 << 14);
            let step = if left - step == 1 { step - 1 } else { step }; // keep every step >= 2
            changes_closed_to_closed(&b, step);
            left -= step;
            assert!(b.call(|| Ok::<_, ()>(())).is_ok());
        }
        let (seen, failures) = b.failure_window().unwrap();
        let got = stale.failure();
        let counts = n % GENS == 0;
        let want = if counts {
            ((seen + 1).min(10), failures + 1)
        } else {
            (seen, failures)
        };
        let after = b.failure_window().unwrap();
        let want_recorded = if counts {
            Recorded::Counted
        } else {
            Recorded::Dropped
        };
        if got != want_recorded || after != want {
            wrong.push(format!(
                "failure after {n} changes: {got:?}, window {after:?} (was {:?})",
                (seen, failures)
            ));
        }
        b.close(); // a new window for the next boundary
    }
    assert_none("gen_rate_mode_reports_across_two_wraps", &wrong);
}

// ------------------------------------------------------------------ owned permits' tickets

fn owned_log(e: &Event) {
    LOG.with(|l| l.borrow_mut().push(('o', e.kind.without_error())));
}

/// The owned permit's ticket (`Ticket`: the generation in 16 bits, the listener sequence number
/// its `BeforeCall` reached in 32, the trial bit): carried across two wraps of `GEN`. An owned
/// call reported after `n` changes counts exactly at a multiple of 65,536, as a borrowed
/// permit's report does; its outcome still goes to the listener that saw its `BeforeCall`; an
/// owned trial keeps its trial bit and frees the current slot only at a multiple.
#[test]
fn owned_permit_tickets_across_two_wraps() {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let b = Arc::new(
        CircuitBreaker::<&ManualClock>::new(
            "owned",
            Config::new()
                .fail_max(1)
                .half_open_max_calls(1)
                .trial_lease(MAX_PERIOD),
            clock,
        )
        .with_listener_for(Interest::CALLS, owned_log),
    );
    let mut wrong = Vec::new();
    for n in boundaries(GENS, 2) {
        let counts = n % GENS == 0;
        let call = CircuitBreaker::allow_owned(b.clone()).unwrap();
        assert!(!call.is_trial());
        changes_closed_to_closed(&*b, n);
        take_log();
        let got = call.failure();
        let want = if counts {
            Recorded::Tripped
        } else {
            Recorded::Dropped
        };
        let log = take_log();
        let heard = log
            .iter()
            .any(|(_, k)| matches!(k, EventKind::Failure { .. }));
        if got != want || !heard {
            wrong.push(format!(
                "owned failure after {n} changes: {got:?}, listener heard it: {heard}"
            ));
        }
        b.close();
        // A trial, held across `n` changes that end in HalfOpen.
        assert!(b.half_open());
        let trial: OwnedPermit<_> = CircuitBreaker::allow_owned(b.clone()).unwrap();
        if !trial.is_trial() {
            wrong.push(format!("owned trial lost its trial bit ({n})"));
        }
        let mut left = n;
        if n % 2 == 1 {
            assert!(b.open() && b.close() && b.half_open());
            left -= 3;
        }
        for _ in 0..left / 2 {
            b.trip_for(Duration::ZERO).unwrap();
            assert!(b.half_open());
        }
        let current = b.allow().unwrap();
        drop(trial);
        if b.trial_calls() != u32::from(!counts) {
            wrong.push(format!(
                "owned stale trial dropped after {n} changes: trial_calls {}",
                b.trial_calls()
            ));
        }
        drop(current);
        b.close();
        take_log();
    }
    assert_none("owned_permit_tickets_across_two_wraps", &wrong);
}

// ------------------------------------------------------------------ UNTIL: ms modulo 2^29

/// Where to look at a passed deadline: `k` cycles of 2^29 ms after it, one ms either side of
/// the cycle's end and of the start of its last 24 h (where `(until - now) mod 2^29` falls
/// between 1 and 24 h), for k = 1, 2 and 16 (2^33 ms, about 99 days).
fn idle_points() -> Vec<u64> {
    let mut v = Vec::new();
    for k in [1, 2, 16] {
        let end = k * CYCLE;
        v.extend([
            end - MAX_MS - 1,
            end - MAX_MS,
            end - MAX_MS + 1,
            end - MAX_MS / 2,
            end - 1,
            end,
            end + 1,
        ]);
    }
    v
}

/// `UNTIL` (ms modulo 2^29) for Open's retry deadline: a breaker left Open with no call at all
/// reads its passed deadline as passed however long it idles (issue 20, fix 2): `retry_after`
/// is zero and the next call is a trial, at every point around two (and sixteen) wraps of the
/// 2^29 ms modulus, from clock starts at 0, just below a multiple of 2^29 and near 2^40.
/// Until fix 2, the points in the last 24 h of each cycle read as pending.
#[test]
fn until_open_deadline_passed_after_any_idle_time() {
    let mut wrong = Vec::new();
    for start in [0, 3 * CYCLE - 700, (1 << 40) + 12_345] {
        for after in idle_points() {
            let clock = ManualClock::starting_at(start);
            let b: Breaker<'_> = CircuitBreaker::new(
                "until-open",
                Config::new().fail_max(1).reset_timeout(ms(1_000)),
                &clock,
            );
            assert!(b.call(|| Err::<(), _>("down")).unwrap_err().tripped());
            let deadline = start + 1_000;
            clock.set(deadline + after);
            let retry = b.retry_after();
            let admitted = b.allow().map(|p| p.is_trial());
            if retry != Some(Duration::ZERO) || admitted != Ok(true) {
                wrong.push(format!(
                    "start {start}, {after} ms after the deadline: retry_after {retry:?}, \
                     allow {admitted:?}"
                ));
            }
        }
    }
    assert_none("until_open_deadline_passed_after_any_idle_time", &wrong);
}

/// `UNTIL` for a pending deadline: it reads as pending with the exact time left, whatever the
/// clock's value modulo 2^29: the longest period set just below the first and second multiples
/// of 2^29 (so the deadline lies across the wrap), read one ms after setting, one ms before it
/// passes, at it and one ms after. And at the end of the clock: a deadline beyond `u64::MAX`
/// stays pending with its exact time left once the clock saturates.
#[test]
fn until_pending_deadline_reads_exactly_across_two_wraps() {
    let mut wrong = Vec::new();
    for k in [1u64, 2] {
        for before_wrap in [1, 1_000, MAX_MS / 2] {
            let start = k * CYCLE - before_wrap;
            let clock = ManualClock::starting_at(start);
            let b: Breaker<'_> = CircuitBreaker::new("until-pending", Config::new(), &clock);
            b.trip_for(MAX_PERIOD).unwrap();
            let mut times = vec![
                0,
                1,
                before_wrap - 1,
                before_wrap,
                before_wrap + 1,
                MAX_MS - 1,
            ];
            times.sort_unstable(); // the clock only moves forward
            times.dedup();
            for elapsed in times {
                clock.set(start + elapsed);
                let want = Some(ms(MAX_MS - elapsed));
                if b.retry_after() != want {
                    wrong.push(format!(
                        "24 h set at {start}, {elapsed} ms later: {:?}",
                        b.retry_after()
                    ));
                }
            }
            let rejected = b.allow().map(|p| p.is_trial()).unwrap_err();
            if rejected.retry_after != Some(ms(1)) {
                wrong.push(format!("1 ms before the deadline: {rejected:?}"));
            }
            clock.set(start + MAX_MS);
            if b.retry_after() != Some(Duration::ZERO) || !b.allow().unwrap().is_trial() {
                wrong.push(format!("24 h set at {start}: not passed at the deadline"));
            }
        }
    }
    // The end of the clock: 60 s set 10 ms before u64::MAX never passes; the time left is exact.
    let clock = ManualClock::starting_at(u64::MAX - 10);
    let b: Breaker<'_> = CircuitBreaker::new("until-end", Config::new(), &clock);
    b.trip_for(ms(60_000)).unwrap();
    clock.set(u64::MAX);
    for _ in 0..2 {
        clock.advance(MAX_PERIOD); // saturated: no time passes
        if b.retry_after() != Some(ms(59_990)) || b.allow().is_ok() {
            wrong.push(format!("at u64::MAX: retry_after {:?}", b.retry_after()));
        }
    }
    assert_none(
        "until_pending_deadline_reads_exactly_across_two_wraps",
        &wrong,
    );
}

/// `UNTIL` for HalfOpen's lease: every trial slot claimed (one, held), then no call at all for
/// the same points around two (and sixteen) wraps of 2^29 ms after the lease ran out: the next
/// call re-arms (a new trial, a new generation; the held trial's report is dropped), never a
/// rejection. Until fix 2, the points in the last 24 h of each cycle rejected for up to 24 h.
#[test]
fn until_half_open_lease_passed_after_any_idle_time() {
    let mut wrong = Vec::new();
    for after in idle_points() {
        let clock = ManualClock::new();
        let b: Breaker<'_> = CircuitBreaker::new(
            "until-lease",
            Config::new()
                .fail_max(1)
                .half_open_max_calls(1)
                .trial_lease(ms(50)),
            &clock,
        );
        assert!(b.half_open());
        let held = b.allow().unwrap();
        let gen = b.snapshot().generation;
        clock.set(50 + after);
        let next = b.allow().map(|p| p.is_trial());
        let rearmed = b.snapshot().generation == gen.wrapping_add(1);
        let old = held.success();
        if next != Ok(true) || !rearmed || old != Recorded::Dropped {
            wrong.push(format!(
                "{after} ms after the lease: allow {next:?}, re-armed {rearmed}, the held \
                 trial's success {old:?}"
            ));
        }
    }
    assert_none("until_half_open_lease_passed_after_any_idle_time", &wrong);
}

// ------------------------------------------------------------------ the rate window's tag

/// The rate window's tag (16 bits, the generation of the Closed period it counts): a window
/// holding one failure, then left unwritten for `n` generations (`close()` of a Closed
/// rate-mode breaker: a new generation and a new window each, no write of the window), for `n`
/// one below, at and one past every multiple of 2^15 up to two wraps of 2^16, each on a fresh
/// breaker. Each time the new period's window must read empty (the old failure does not show)
/// and a current failure must count in it, alone (issue 20, fix 1: "a report of the breaker's
/// current generation always counts in the current window however long the window went
/// untouched"). Until fix 1, from 32,768 generations on (modulo 65,536) every current report
/// was dropped, and at exactly 65,536 the old window showed again.
#[test]
fn rate_window_left_unwritten_across_two_tag_wraps() {
    let mut wrong = Vec::new();
    for n in boundaries(GENS / 2, 4) {
        let clock = ManualClock::new();
        let b: Breaker<'_> = CircuitBreaker::new(
            "rate-tag",
            Config::new().failure_rate(FailureRate::new(50, 4).minimum_calls(2)),
            &clock,
        );
        let fail = || b.allow().unwrap().failure();
        assert_eq!(fail(), Recorded::Counted);
        assert_eq!(b.failure_window(), Some((1, 1)));
        for _ in 0..n {
            assert!(!b.close(), "close() of a Closed breaker changes no state");
        }
        assert_eq!(u64::from(b.snapshot().generation), n % GENS);
        let empty = b.failure_window();
        let got = fail();
        let after = b.failure_window();
        if empty != Some((0, 0)) || got != Recorded::Counted || after != Some((1, 1)) {
            wrong.push(format!(
                "{n} generations unwritten: window {empty:?}, a failure {got:?}, then {after:?}"
            ));
        }
    }
    assert_none("rate_window_left_unwritten_across_two_tag_wraps", &wrong);
}

/// The example, and its neighbours over two wraps of the tag, each on a fresh breaker:
/// a rate-mode breaker (`FailureRate::new(50, 4).minimum_calls(2)`, `reset_timeout(0)`) trips
/// on two failures, fails `t` half-open trials in a row (two changes each, no window write) and
/// recovers (two more). Its next failure must count (1 of 1 in the window, below the minimum)
/// and the one after must trip it again. Until fix 1, after 16,383 failed trials (32,768
/// generations after the window's last write) every failure returned `Recorded::Dropped`.
#[test]
fn rate_window_after_long_flapping_across_two_tag_wraps() {
    let mut wrong = Vec::new();
    for trials in [
        16_382, 16_383, 16_384, 32_766, 32_767, 32_768, 49_150, 49_151, 49_152, 65_534, 65_535,
    ] {
        let clock = ManualClock::new();
        let b: Breaker<'_> = CircuitBreaker::new(
            "rate-flap",
            Config::new()
                .reset_timeout(Duration::ZERO)
                .failure_rate(FailureRate::new(50, 4).minimum_calls(2)),
            &clock,
        );
        let fail = || b.allow().unwrap().failure();
        assert_eq!(fail(), Recorded::Counted);
        assert_eq!(fail(), Recorded::Tripped);
        for _ in 0..trials {
            let trial = b.allow().unwrap();
            assert!(trial.is_trial());
            assert_eq!(trial.failure(), Recorded::Tripped);
        }
        assert_eq!(b.allow().unwrap().success(), Recorded::Closed);
        // The window was last written in generation 0; it is now 2 * trials + 3 later.
        let since = 2 * trials + 3;
        assert_eq!(u64::from(b.snapshot().generation), since % GENS);
        let first = fail();
        let window = b.failure_window();
        let second = fail();
        if (first, window, second) != (Recorded::Counted, Some((1, 1)), Recorded::Tripped) {
            wrong.push(format!(
                "{trials} failed trials and a recovery ({since} generations): {first:?}, \
                 window {window:?}, {second:?}"
            ));
        }
    }
    assert_none(
        "rate_window_after_long_flapping_across_two_tag_wraps",
        &wrong,
    );
}

// ------------------------------------------------------------------ listeners

thread_local! {
    static LOG: RefCell<Vec<(char, EventKind<'static>)>> = const { RefCell::new(Vec::new()) };
}

fn take_log() -> Vec<(char, EventKind<'static>)> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn keeper(e: &Event) {
    LOG.with(|l| l.borrow_mut().push(('k', e.kind.without_error())));
}
fn listener_b(e: &Event) {
    LOG.with(|l| l.borrow_mut().push(('b', e.kind.without_error())));
}
fn listener_c(e: &Event) {
    LOG.with(|l| l.borrow_mut().push(('c', e.kind.without_error())));
}

/// Which listeners heard `kind`-like events, in order.
fn heard(log: &[(char, EventKind<'static>)], pick: fn(&EventKind<'_>) -> bool) -> String {
    log.iter()
        .filter(|(_, k)| pick(k))
        .map(|(t, _)| *t)
        .collect()
}

fn is_before_call(k: &EventKind<'_>) -> bool {
    matches!(k, EventKind::BeforeCall)
}
fn is_outcome(k: &EventKind<'_>) -> bool {
    matches!(k, EventKind::Success { .. } | EventKind::Failure { .. })
}

/// Listener sequence numbers (`u32`, never reused) and the permit's `observed` (the highest
/// one its `BeforeCall` reached, carried in a `Permit` and in 32 bits of an owned permit's
/// ticket): pushed one below, at and one past 2^16 and 2^17 by adding and removing a listener,
/// so that a 16- or 17-bit copy of either would wrap. At each point a call is admitted (borrowed
/// and owned) while listener `b` holds number `s`, and `b` is removed; where `s + 1` is not the
/// next point, listener `c` is added (number `s + 1`). The outcomes go to the first listener
/// only (not to `b`, removed, nor to `c`, added after the admission); a later call reaches `c`. (The end of the 32-bit numbers, 2^32 - 2 adds, is
/// refused rather than wrapped: `listeners::tests::refused_adds_take_no_sequence_number` pins it
/// on the table itself, as 2^32 adds through the public API take minutes.)
#[test]
fn listener_sequence_numbers_past_16_and_17_bits() {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new()));
    let b = Arc::new(
        CircuitBreaker::<&ManualClock, 3>::new("seq", Config::new(), clock).with_listener(keeper),
    );
    let mut next = 2u64; // `keeper` holds 1
    let mut wrong = Vec::new();
    let targets = boundaries(1 << 16, 2);
    for (i, &target) in targets.iter().enumerate() {
        while next < target {
            let id = b.add_listener(listener_c).unwrap();
            assert!(b.remove_listener(id));
            next += 1;
        }
        let id_b = b.add_listener(listener_b).unwrap(); // number `target`
        next += 1;
        take_log();
        let borrowed = b.allow().unwrap();
        let owned = CircuitBreaker::allow_owned(b.clone()).unwrap();
        let before = heard(&take_log(), is_before_call);
        assert!(b.remove_listener(id_b));
        let id_c = (targets.get(i + 1) != Some(&(target + 1))).then(|| {
            next += 1;
            b.add_listener(listener_c).unwrap() // number `target + 1`
        });
        assert_eq!(borrowed.success(), Recorded::Counted);
        assert_eq!(owned.failure(), Recorded::Counted);
        let outcomes = heard(&take_log(), is_outcome);
        let later = b.call(|| Ok::<_, ()>(())).is_ok();
        let later_heard = heard(&take_log(), |_| true);
        let want_later = if id_c.is_some() { "kckc" } else { "kk" };
        if before != "kbkb" || outcomes != "kk" || !later || later_heard != want_later {
            wrong.push(format!(
                "b numbered {target}: BeforeCall to {before:?}, outcomes to {outcomes:?}, a \
                 later call's events to {later_heard:?}"
            ));
        }
        if let Some(id) = id_c {
            assert!(b.remove_listener(id));
        }
    }
    assert_none("listener_sequence_numbers_past_16_and_17_bits", &wrong);
}

fn nth<const K: u8>(e: &Event) {
    if matches!(e.kind, EventKind::StateChange { .. }) {
        LOG.with(|l| {
            l.borrow_mut()
                .push((char::from(b'0' + K), e.kind.without_error()))
        });
    }
}

/// The listener plan (one 32-bit word: a 4-bit length and eight 3-bit slot numbers) is
/// capacity-limited, not modular: a table of [`MAX_LISTENERS`] fills, a ninth add is refused
/// with [`ListenerTableFull`] and changes nothing, and removing the oldest listener and adding it
/// back, through 3 x 8 rotations (every slot reused three times), keeps the listeners running in
/// the order they were added.
#[test]
fn listener_plan_is_capacity_limited_and_keeps_order_through_reuse() {
    let fs: [fn(&Event); 8] = [
        nth::<0>, nth::<1>, nth::<2>, nth::<3>, nth::<4>, nth::<5>, nth::<6>, nth::<7>,
    ];
    let clock = ManualClock::new();
    let b: Breaker<'_, MAX_LISTENERS> = CircuitBreaker::new("plan", Config::new(), &clock);
    let mut order: std::collections::VecDeque<(usize, atomic_breaker::ListenerId)> = fs
        .iter()
        .enumerate()
        .map(|(i, f)| (i, b.add_listener(*f).unwrap()))
        .collect();
    let full = ListenerTableFull {
        capacity: MAX_LISTENERS,
    };
    let mut wrong = Vec::new();
    for round in 0..3 * MAX_LISTENERS {
        if b.add_listener(fs[0]) != Err(full) || b.listener_count() != MAX_LISTENERS {
            wrong.push(format!("round {round}: a ninth add was not refused"));
        }
        take_log();
        b.open();
        b.close();
        let ran: String = take_log().iter().map(|(t, _)| *t).collect();
        let want: String = order
            .iter()
            .map(|(i, _)| char::from(b'0' + *i as u8))
            .collect();
        if ran != format!("{want}{want}") {
            wrong.push(format!("round {round}: ran {ran}, added order {want}"));
        }
        let (i, id) = order.pop_front().unwrap();
        assert!(b.remove_listener(id));
        order.push_back((i, b.add_listener(fs[i]).unwrap()));
    }
    assert_none(
        "listener_plan_is_capacity_limited_and_keeps_order_through_reuse",
        &wrong,
    );
}

// ------------------------------------------------------------------ IN_FLIGHT: 5 bits

/// `IN_FLIGHT` (5 bits) is capacity-limited at 31 (`half_open_max_calls`), never wrapped: 32 is
/// refused; with 31, the 32nd trial is rejected (not admitted by a count wrapped to 0), twice,
/// through a re-arm in between (the 31 abandoned trials give back nothing). And it saturates at
/// 0: 31 trials held across exactly 65,536 changes (their generation is current again, modulo
/// 2^16) and dropped or reported with none in flight leave 0, not 31 or a wrapped count: 31 new
/// trials are still admitted, and the 32nd rejected.
#[test]
fn in_flight_is_capacity_limited_at_31_and_saturates_at_0() {
    assert_eq!(
        Config::new().half_open_max_calls(32).validate(),
        Err(ConfigError::HalfOpenMaxCalls(32))
    );
    assert_eq!(MAX_HALF_OPEN_CALLS, 31);
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "in-flight",
        Config::new()
            .fail_max(1)
            .half_open_max_calls(MAX_HALF_OPEN_CALLS)
            .trial_lease(ms(50)),
        &clock,
    );
    let fill = |wrong: &mut Vec<String>, what: &str| {
        let trials: Vec<_> = (0..MAX_HALF_OPEN_CALLS)
            .map(|_| b.allow().unwrap())
            .collect();
        let extra = b.allow().map(|p| p.is_trial());
        if b.trial_calls() != 31 || extra.as_ref().map_err(|r| r.retry_after) != Err(Some(ms(50))) {
            wrong.push(format!(
                "{what}: trial_calls {}, a 32nd call {extra:?}",
                b.trial_calls()
            ));
        }
        trials
    };
    let mut wrong = Vec::new();
    assert!(b.half_open());
    let first = fill(&mut wrong, "first fill");
    clock.advance(ms(50)); // the lease runs out: the next call re-arms
    let rearmed = b.allow().unwrap();
    drop(first); // stale: frees nothing
    if b.trial_calls() != 1 {
        wrong.push(format!("after a re-arm: trial_calls {}", b.trial_calls()));
    }
    drop(rearmed);
    let second = fill(&mut wrong, "second fill");
    changes_half_open_to_half_open(&b, GENS);
    for (i, t) in second.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(t);
        } else {
            assert_eq!(t.ignore(), Recorded::Counted); // current modulo 2^16
        }
    }
    if b.trial_calls() != 0 {
        wrong.push(format!(
            "31 aliased trials with none in flight: trial_calls {}",
            b.trial_calls()
        ));
    }
    let third = fill(&mut wrong, "after the aliased trials");
    drop(third);
    assert_none(
        "in_flight_is_capacity_limited_at_31_and_saturates_at_0",
        &wrong,
    );
}

// ------------------------------------------------------------------ COUNT: 7 bits

/// `COUNT` (7 bits) is capacity-limited at 127, never wrapped: `fail_max` and
/// `success_threshold` of 128 are refused (at construction and at run time). With 127, two
/// rounds of: 126 failures leave it Closed with 126 on record, the 127th trips with 127 (not 0);
/// 126 trial successes leave it HalfOpen with 126, the 127th closes. And a count at 126 with
/// `fail_max` lowered to 1 trips on the next failure with 127 on record.
#[test]
fn count_is_capacity_limited_at_127() {
    assert_eq!((MAX_FAIL_MAX, MAX_SUCCESS_THRESHOLD), (127, 127));
    assert_eq!(
        Config::new().fail_max(128).validate(),
        Err(ConfigError::FailMax(128))
    );
    assert_eq!(
        Config::new().success_threshold(128).validate(),
        Err(ConfigError::SuccessThreshold(128))
    );
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "count",
        Config::new()
            .fail_max(127)
            .success_threshold(127)
            .reset_timeout(ms(10)),
        &clock,
    );
    assert_eq!(b.set_fail_max(128), Err(ConfigError::FailMax(128)));
    assert_eq!(
        b.set_success_threshold(128),
        Err(ConfigError::SuccessThreshold(128))
    );
    let mut wrong = Vec::new();
    for round in 0..2 {
        for _ in 0..126 {
            assert_eq!(b.allow().unwrap().failure(), Recorded::Counted);
        }
        if (b.state(), b.fail_counter()) != (State::Closed, 126) {
            wrong.push(format!("round {round}: 126 failures: {:?}", b.snapshot()));
        }
        let got = b.allow().unwrap().failure();
        if (got, b.fail_counter()) != (Recorded::Tripped, 127) {
            wrong.push(format!(
                "round {round}: 127th failure {got:?}, {}",
                b.fail_counter()
            ));
        }
        clock.advance(ms(10));
        for _ in 0..126 {
            assert_eq!(b.allow().unwrap().success(), Recorded::Counted);
        }
        if (b.state(), b.success_counter()) != (State::HalfOpen, 126) {
            wrong.push(format!(
                "round {round}: 126 trial successes: {:?}",
                b.snapshot()
            ));
        }
        let got = b.allow().unwrap().success();
        if (got, b.state()) != (Recorded::Closed, State::Closed) {
            wrong.push(format!("round {round}: 127th trial success {got:?}"));
        }
    }
    for _ in 0..126 {
        let _ = b.allow().unwrap().failure();
    }
    b.set_fail_max(1).unwrap();
    let got = b.allow().unwrap().failure();
    if (got, b.fail_counter()) != (Recorded::Tripped, 127) {
        wrong.push(format!("lowered fail_max: {got:?}, {}", b.fail_counter()));
    }
    assert_none("count_is_capacity_limited_at_127", &wrong);
}

// ------------------------------------------------------------------ LEVEL: 3 bits

/// The backoff `LEVEL` (3 bits) saturates at 7, never wraps: 20 failed trials in a row (two and
/// a half times its 8 values) double the open period up to 128x and then keep it there
/// (`reset_timeout * 2^min(n, 7)`, under a cap it never reaches), with `backoff_level` reading
/// `min(n, 7)`; a success closes and starts again from level 0.
#[test]
fn backoff_level_saturates_at_7() {
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "level",
        Config::new()
            .fail_max(1)
            .reset_timeout(ms(100))
            .backoff(Backoff::exponential(MAX_PERIOD)),
        &clock,
    );
    assert!(b.call(|| Err::<(), _>("down")).unwrap_err().tripped());
    let mut wrong = Vec::new();
    for n in 1..=20u32 {
        clock.advance(b.retry_after().unwrap());
        assert_eq!(b.allow().unwrap().failure(), Recorded::Tripped);
        let level = n.min(7);
        let (got_level, got_period) = (b.snapshot().backoff_level, b.retry_after());
        if (u32::from(got_level), got_period) != (level, Some(ms(100 << level))) {
            wrong.push(format!(
                "{n} failed trials: level {got_level}, period {got_period:?}"
            ));
        }
    }
    clock.advance(b.retry_after().unwrap());
    assert_eq!(b.allow().unwrap().success(), Recorded::Closed);
    assert_eq!(b.snapshot().backoff_level, 0);
    assert!(b.call(|| Err::<(), _>("down")).unwrap_err().tripped());
    assert_eq!(b.retry_after(), Some(ms(100)));
    assert_none("backoff_level_saturates_at_7", &wrong);
}

// ------------------------------------------------------------------ the rate window's register

/// The rate window's register (47 outcomes and a mark in 48 bits) is capacity-limited: a window
/// of 48 is refused; one of 47 fills and then slides, two and a half windows' worth of
/// failures and then of successes, never counting more than 47 calls.
#[test]
fn rate_window_register_is_capacity_limited_at_47() {
    assert_eq!(MAX_WINDOW, 47);
    assert_eq!(
        Config::new()
            .failure_rate(FailureRate::new(50, 48))
            .validate(),
        Err(ConfigError::Window(48))
    );
    let clock = ManualClock::new();
    let b: Breaker<'_> = CircuitBreaker::new(
        "register",
        Config::new().failure_rate(FailureRate::new(100, MAX_WINDOW).minimum_calls(MAX_WINDOW)),
        &clock,
    );
    let mut wrong = Vec::new();
    for i in 1..=120u32 {
        let got = b.allow().unwrap().success();
        let seen = i.min(MAX_WINDOW);
        if got != Recorded::Counted || b.failure_window() != Some((seen, 0)) {
            wrong.push(format!("success {i}: {got:?}, {:?}", b.failure_window()));
        }
    }
    for i in 1..=46u32 {
        let _ = b.allow().unwrap().failure();
        if b.failure_window() != Some((MAX_WINDOW, i)) {
            wrong.push(format!("failure {i}: {:?}", b.failure_window()));
        }
    }
    assert_eq!(b.allow().unwrap().failure(), Recorded::Tripped);
    assert_eq!(b.fail_counter(), MAX_WINDOW);
    assert_none("rate_window_register_is_capacity_limited_at_47", &wrong);
}

// ------------------------------------------------------------------ opened_at: 1 + ms

/// `opened_at` is stored as `1 + ms` (0: never opened) and saturates: a breaker opened with the
/// clock at `u64::MAX - 1` and at `u64::MAX` reads `u64::MAX - 1` both times, not 0 or `None`.
#[test]
fn opened_at_saturates_below_u64_max() {
    for start in [u64::MAX - 2, u64::MAX - 1, u64::MAX] {
        let clock = ManualClock::starting_at(start);
        let b: Breaker<'_> = CircuitBreaker::new("opened-at", Config::new(), &clock);
        assert!(b.open());
        assert_eq!(b.opened_at(), Some(start.min(u64::MAX - 1)), "{start}");
    }
}
