//! Model-based property test: random configurations and operation sequences (calls with
//! outcomes, permits held and reported late and out of order, clock advances including large
//! jumps, every management operation and run-time configuration change), run on the real breaker
//! and on the sequential reference model in `tests/model/mod.rs`, compared after every step.
//!
//! Issue 20: idle gaps are drawn up to 2^33 ms (16 cycles of the word's 2^29 ms deadline
//! modulus), landing exactly on its boundaries after the pending deadline ([`Op::IdlePast`]), and
//! runs of up to 2^17 state changes ([`Op::Run`]) hold permits across the 16-bit generation's
//! wrap and leave rate mode's window unwritten for half a tag cycle and more, in both modes.

mod model;

use std::time::Duration;

use atomic_breaker::{Backoff, Config, FailureRate, Outcome, MAX_WINDOW};
use model::{Cycle, Exit, Op, MAX_GAP_MS, MAX_PERIOD_MS, TIME_MODULUS_MS};
use proptest::prelude::*;

/// Clock starts: zero, arbitrary, just below a multiple of 2^29 (the word keeps deadlines
/// modulo 2^29, so these runs cross its wrap), and near `u64::MAX` (deadlines beyond the end of
/// the clock; `ManualClock` saturates there and time stops).
fn start() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        2 => 0u64..1 << 36,
        2 => (1u64..5_000).prop_map(|d| (1 << 29) - d),
        1 => (1u64..5_000).prop_map(|d| 7 * (1 << 40) - d),
        1 => (0u64..5_000).prop_map(|d| u64::MAX - d),
        1 => (0u64..3).prop_map(|d| u64::MAX - d),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let fail_max = prop_oneof![9 => 1u32..=5, 1 => 6u32..=127];
    let reset = prop_oneof![2 => 0u64..=3, 6 => 1u64..=300, 1 => 1_000u64..=5_000];
    let lease = prop_oneof![1 => 1u64..=3, 4 => 1u64..=300];
    // Backoff, without jitter (the model cannot predict it): the cap as a multiple of the timeout.
    let backoff = prop_oneof![2 => Just(None), 1 => (1u64..=40).prop_map(Some)];
    (
        fail_max,
        1u32..=3,
        1u32..=3,
        reset,
        lease,
        backoff,
        failure_rate(),
    )
        .prop_map(
            |(fail_max, success_threshold, half_open, reset, lease, backoff, rate)| {
                let mut c = Config::new()
                    .fail_max(fail_max)
                    .success_threshold(success_threshold)
                    .half_open_max_calls(half_open)
                    .reset_timeout(Duration::from_millis(reset))
                    .trial_lease(Duration::from_millis(lease));
                if let Some(factor) = backoff {
                    let max = (reset.max(1) * factor).min(MAX_PERIOD_MS);
                    c = c.backoff(Backoff::exponential(Duration::from_millis(max)));
                }
                if let Some(r) = rate {
                    c = c.failure_rate(r);
                }
                c
            },
        )
}

/// Failure-rate mode in one case of three: mostly small windows (they fill and slide within a
/// case), sometimes up to the largest.
fn failure_rate() -> impl Strategy<Value = Option<FailureRate>> {
    let window = prop_oneof![6 => 1u32..=10, 1 => 11u32..=MAX_WINDOW];
    let threshold = prop_oneof![1 => 1u32..=100, 2 => Just(50u32), 1 => Just(100u32)];
    let rate = (window, threshold, 0.0f64..1.0).prop_map(|(window, threshold, min)| {
        let minimum = 1 + ((window - 1) as f64 * min) as u32;
        FailureRate::new(threshold, window).minimum_calls(minimum)
    });
    prop_oneof![2 => Just(None), 1 => rate.prop_map(Some)]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Success),
        3 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
    ]
}

/// Which held permit: mostly one of the newest few, sometimes any.
fn index() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..3, 1 => 0usize..64]
}

fn period() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..=600,
        1 => 1u64 << 20..=MAX_PERIOD_MS,
        1 => Just(MAX_PERIOD_MS + 1), // refused
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => Just(Op::Allow),
        10 => (index(), outcome()).prop_map(|(i, o)| Op::Report(i, o)),
        2 => index().prop_map(Op::Drop),
        1 => index().prop_map(Op::Panic),
        5 => (0u64..=400).prop_map(Op::Advance),
        1 => (0u64..=5_000).prop_map(Op::Advance),
        1 => (1u64 << 16..=1 << 29).prop_map(Op::Advance),
        1 => (0u64..=MAX_GAP_MS).prop_map(Op::Advance),
        1 => idle_past().prop_map(Op::IdlePast),
        1 => Just(Op::Open),
        2 => Just(Op::Close),
        1 => Just(Op::HalfOpen),
        1 => period().prop_map(Op::TripFor),
        1 => prop_oneof![Just(Op::ForceOpen), Just(Op::Disable)],
        2 => prop_oneof![0u32..=6, Just(127), Just(128)].prop_map(Op::SetFailMax),
        1 => period().prop_map(Op::SetResetTimeout),
        1 => prop_oneof![0u32..=4, Just(128)].prop_map(Op::SetSuccessThreshold),
    ]
}

/// A run of operations: mostly one, sometimes a pattern that random single operations reach
/// too rarely.
fn chunk() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        40 => op().prop_map(|o| vec![o]),
        // A call reported at once.
        8 => outcome().prop_map(|o| vec![Op::Allow, Op::Report(0, o)]),
        // Calls with mixed outcomes reported at once: fills and slides rate mode's window.
        2 => prop::collection::vec(outcome(), 2..=24)
            .prop_map(|os| os.into_iter().flat_map(|o| [Op::Allow, Op::Report(0, o)]).collect()),
        // Consecutive failures, sometimes with fail_max lowered under the count.
        2 => (1usize..=6).prop_map(|n| [Op::Allow, Op::Report(0, Outcome::Failure)].repeat(n)),
        1 => (1usize..=5, 1u32..=3).prop_map(|(n, fail_max)| {
            let fail = [Op::Allow, Op::Report(0, Outcome::Failure)];
            let mut ops = fail.repeat(n);
            ops.push(Op::SetFailMax(fail_max));
            ops.extend(fail);
            ops
        }),
        // Rounds of: wait, a call (a trial once the open period is over), and its report, or a
        // second call held, or a manual open. Failing trials grow the backoff.
        1 => prop::collection::vec((0u64..=40_000, round_end()), 1..=10).prop_map(|rounds| {
            rounds
                .into_iter()
                .flat_map(|(wait, end)| [Op::Advance(wait), Op::Allow, end])
                .collect()
        }),
        // About 64 state changes in a row, so that held permits' generations come around.
        1 => generations(),
        // A call admitted, exactly 64 changes ending in HalfOpen, a trial, then the old call
        // reports or is dropped: it must count nothing and free no slot (a 6-bit generation
        // took it for current).
        1 => (outcome(), any::<bool>()).prop_map(|(o, report)| {
            let mut ops = vec![Op::Allow];
            for _ in 0..32 {
                ops.extend([Op::TripFor(10), Op::HalfOpen]);
            }
            ops.push(Op::Allow);
            ops.push(if report { Op::Report(1, o) } else { Op::Drop(1) });
            ops
        }),
    ]
}

/// How far past the pending deadline [`Op::IdlePast`] moves the clock: at the deadline, or `k`
/// cycles of 2^29 ms after it (k up to 16: 2^33 ms), one ms either side of the cycle's end or of
/// the start of its last 24 h (where a 29-bit reading of a passed deadline looks pending).
fn idle_past() -> impl Strategy<Value = u64> {
    let edge = prop_oneof![
        Just(-(MAX_PERIOD_MS as i64) - 1),
        Just(-(MAX_PERIOD_MS as i64)),
        Just(-(MAX_PERIOD_MS as i64) + 1),
        Just(-1i64),
        Just(0i64),
        Just(1i64),
        -(MAX_PERIOD_MS as i64)..=0,
    ];
    prop_oneof![
        1 => 0u64..=2,
        4 => (1u64..=16, edge).prop_map(|(k, edge)| (k * TIME_MODULUS_MS).wrapping_add_signed(edge)),
    ]
}

/// A run of state changes (see [`Op::Run`]): `k * 2^13` iterations of two operations, give or
/// take two, so up to 2^17 changes, often exactly a multiple of 2^16 (k = 4, 8: a permit held
/// across the run is back in its generation modulo 2^16) or of 2^15 (rate mode's window unwritten
/// for half its tag's cycle).
fn run() -> impl Strategy<Value = Op> {
    let k = prop_oneof![2 => Just(4u32), 1 => Just(8u32), 1 => Just(2u32), 2 => 1u32..=8];
    let d = prop_oneof![2 => Just(0i32), 1 => -2i32..=2];
    let exit = prop_oneof![
        Just(Exit::Close),
        Just(Exit::HalfOpen),
        Just(Exit::ForceOpen),
        Just(Exit::Disable),
    ];
    let cycle = prop_oneof![
        Just(Cycle::OpenClose),
        (0u64..=3, exit).prop_map(|(ms, exit)| Cycle::TripFor(ms, exit)),
        Just(Cycle::Close),
        Just(Cycle::FailedCall),
    ];
    (k, d, cycle).prop_map(|(k, d, cycle)| Op::Run(((k << 13) as i32 + d) as u32, cycle))
}

fn round_end() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => outcome().prop_map(|o| Op::Report(0, o)),
        1 => Just(Op::Allow),
        1 => Just(Op::Open),
        1 => (0u64..=1_000).prop_map(Op::TripFor),
    ]
}

/// 62 to 66 state changes: pairs of `trip_for` (always a change) and a move out of Open.
fn generations() -> impl Strategy<Value = Vec<Op>> {
    let pairs = prop_oneof![3 => Just(32usize), 1 => 31usize..=33];
    let out_of_open = prop_oneof![
        Just(Op::Close),
        Just(Op::HalfOpen),
        Just(Op::ForceOpen),
        Just(Op::Disable),
    ];
    (pairs, (0u64..=100), out_of_open).prop_map(|(n, ms, out)| [Op::TripFor(ms), out].repeat(n))
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(chunk(), 0..60)
        .prop_map(|chunks| chunks.into_iter().flatten().take(250).collect())
}

/// Cases with one long run (and sometimes a second): permits held across it, calls and reports
/// before and after. Half the configurations get `reset_timeout(0)`, so that the failed-call
/// cycle flaps Open -> HalfOpen -> Open without waiting.
fn long_case() -> impl Strategy<Value = (u64, Config, Vec<Op>)> {
    let config = (config(), any::<bool>()).prop_map(|(c, zero)| {
        if zero {
            c.reset_timeout(Duration::ZERO)
        } else {
            c
        }
    });
    let around = || prop::collection::vec(chunk(), 0..12);
    let calls = |n: std::ops::RangeInclusive<usize>| n.prop_map(|n| vec![Op::Allow; n]);
    // The run and the permits held across it, in three shapes:
    let held_run = prop_oneof![
        // calls (or trials) held across any run;
        3 => (calls(0..=3), run()).prop_map(|(mut ops, run)| {
            ops.push(run);
            ops
        }),
        // trials of a manual half-open held across HalfOpen -> Open -> HalfOpen cycles of
        // exactly (or one cycle short of) k * 2^16 changes, ending in HalfOpen, then a new
        // trial: a stale trial of the same generation modulo 2^16, dropped, gives back the new
        // trial's slot;
        1 => (calls(1..=3), 1u32..=2, 0u64..=3, prop_oneof![3 => Just(0u32), 1 => Just(1u32)])
            .prop_map(|(calls, k, ms, short)| {
                let run = Op::Run((k << 15) - short, Cycle::TripFor(ms, Exit::HalfOpen));
                [vec![Op::HalfOpen], calls, vec![run, Op::Allow, Op::Drop(1)]].concat()
            }),
        // close() cycles of exactly k * 2^15 changes: in rate mode a window left unwritten for
        // half its tag's cycle, or a whole one.
        1 => (calls(0..=2), prop_oneof![Just(1u32), Just(2), Just(2), Just(3), Just(4)]).prop_map(
            |(mut ops, k)| {
                ops.push(Op::Run(k << 14, Cycle::Close));
                ops
            },
        ),
    ];
    // Right after the run: nothing; a held permit dropped or reported at once (a stale trial
    // may find no slot in flight); or a call, then a held permit dropped or reported (it may
    // give back the new call's slot), then the new call's report.
    let settle = prop_oneof![
        1 => Just(vec![]),
        1 => (1usize..=3, any::<bool>(), outcome()).prop_map(|(i, drop, o)| {
            vec![if drop { Op::Drop(i - 1) } else { Op::Report(i - 1, o) }]
        }),
        2 => (1usize..=3, any::<bool>(), outcome(), outcome()).prop_map(|(i, drop, o, last)| {
            let old = if drop { Op::Drop(i) } else { Op::Report(i, o) };
            vec![Op::Allow, old, Op::Report(0, last)]
        }),
    ];
    let second = prop::option::weighted(0.25, run());
    let parts = (around(), held_run, settle, around(), second, around());
    (start(), config, parts).prop_map(
        |(start, config, (before, held_run, settle, middle, second, after))| {
            let mut ops: Vec<Op> = before.into_iter().flatten().take(60).collect();
            ops.extend(held_run);
            ops.extend(settle);
            ops.extend(middle.into_iter().flatten().take(60));
            ops.extend(second);
            ops.extend(after.into_iter().flatten().take(60));
            (start, config, ops)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn breaker_matches_the_model(
        start in start(),
        config in config(),
        ops in ops(),
    ) {
        model::check_from(start, &ops, config);
    }

    /// The fuzz target's path, bytes to case, on random bytes: the decoder never panics and its
    /// cases hold.
    #[test]
    fn decoded_bytes_match_the_model(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let (start, config, ops) = model::from_bytes(&data);
        model::check_from(start, &ops, config);
    }
}

proptest! {
    // Each case runs up to about 2^17 (rarely 2^18) changes through both sides: about 0.1 s in
    // a debug build.
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    /// Long runs of changes with permits held across them, and gaps up to 2^33 ms.
    #[test]
    fn long_runs_match_the_model((start, config, ops) in long_case()) {
        model::check_from(start, &ops, config);
    }
}

/// A permit held across exactly 64 (or 256) changes is dropped (a 6- or 8-bit generation would
/// count these).
#[test]
fn a_permit_held_across_64_or_256_generations_is_dropped() {
    for changes in [64, 256] {
        let mut ops = vec![Op::Allow, Op::Allow]; // admitted in generation 0
        for _ in 0..changes / 2 {
            ops.extend([Op::Open, Op::Close]); // two generations each
        }
        ops.push(Op::Report(0, Outcome::Failure)); // dropped, does not trip
        ops.push(Op::Report(0, Outcome::Success)); // dropped
        ops.extend([Op::Allow, Op::Report(0, Outcome::Failure)]); // trips
        model::check(&ops, Config::new().fail_max(1));
    }
}

/// Runs started at and near `u64::MAX`: deadlines beyond the end of the clock, and a clock that
/// saturates and stops. A trip at `u64::MAX - 10` says 60 s, not 10 ms; at `u64::MAX` it rejects.
#[test]
fn clock_near_u64_max() {
    let config = Config::new()
        .fail_max(1)
        .reset_timeout(Duration::from_secs(60));
    for start in [u64::MAX - 10, u64::MAX - 1, u64::MAX] {
        let ops = [
            Op::Allow,
            Op::Report(0, Outcome::Failure), // trips
            Op::Allow,                       // rejected, 60 s to go
            Op::Advance(20),
            Op::Allow, // rejected
            Op::TripFor(5),
            Op::Allow,
            Op::Advance(5),
            Op::Allow, // a trial if the clock moved 5 ms, else rejected
        ];
        model::check_from(start, &ops, config);
    }
}

/// Trials abandoned in half-open, re-armed after their lease, reported late and out of order.
#[test]
fn late_trials_after_a_rearm_are_dropped() {
    let config = Config::new()
        .fail_max(1)
        .reset_timeout(Duration::from_millis(100))
        .trial_lease(Duration::from_millis(50))
        .half_open_max_calls(2)
        .success_threshold(2);
    let ops = [
        Op::Allow,
        Op::Report(0, Outcome::Failure), // trips
        Op::Allow,                       // rejected, 100 ms to go
        Op::Advance(100),
        Op::Allow, // first trial
        Op::Allow, // second trial
        Op::Allow, // rejected: both slots taken
        Op::Report(0, Outcome::Success),
        Op::Allow, // third trial, slot freed
        Op::Advance(49),
        Op::Allow, // rejected, 1 ms of lease left
        Op::Advance(1),
        Op::Allow,                       // re-arm: new generation
        Op::Report(1, Outcome::Failure), // an abandoned trial: dropped
        Op::Drop(1),                     // the other: dropped, frees nothing
        Op::Report(0, Outcome::Success), // closes (1 success kept + this one)
    ];
    model::check(&ops, config);
}

/// Open periods whose deadlines lie across the word's 2^40 ms timestamp wrap, with backoff.
#[test]
fn deadlines_across_the_timestamp_wrap() {
    let config = Config::new()
        .fail_max(1)
        .reset_timeout(Duration::from_millis(1_000))
        .backoff(Backoff::exponential(Duration::from_millis(5_000)));
    let mut ops = vec![Op::Allow, Op::Report(0, Outcome::Failure)];
    for _ in 0..6 {
        ops.extend([
            Op::Advance(999),
            Op::Allow,
            Op::Advance(4_001),
            Op::Allow,
            Op::Report(0, Outcome::Failure),
        ]);
    }
    ops.extend([
        Op::Advance(5_000),
        Op::Allow,
        Op::Report(0, Outcome::Success),
    ]);
    model::check_from((1 << 40) - 3_000, &ops, config);
}

/// The generators reach every branch of the model: a guard against a property that passes
/// because it never gets anywhere.
#[test]
fn generated_cases_reach_every_branch() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = (start(), config(), ops());
    let mut hits = model::Hits::ZERO;
    for _ in 0..512 {
        let (start, config, ops) = strategy.new_tree(&mut runner).unwrap().current();
        hits.add(&model::check_from(start, &ops, config).hits);
    }
    let long = long_case();
    for _ in 0..64 {
        let (start, config, ops) = long.new_tree(&mut runner).unwrap().current();
        hits.add(&model::check_from(start, &ops, config).hits);
    }
    println!("{hits:#?}");
    let missing = hits.missing();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

/// Rate mode: interleaved failures at 50% trip a window of 4 once its minimum is seen; a
/// `close()` of the Closed breaker drops a held permit's report; a recovered breaker starts with
/// an empty window.
#[test]
fn rate_mode_cases() {
    let config = Config::new()
        .reset_timeout(Duration::from_millis(100))
        .failure_rate(FailureRate::new(50, 4).minimum_calls(4));
    let call = |o| [Op::Allow, Op::Report(0, o)];
    let mut ops = vec![Op::Allow]; // held across the close below
    ops.extend(call(Outcome::Failure));
    ops.push(Op::Close); // a new window; the held permit is stale
    ops.push(Op::Report(0, Outcome::Failure)); // dropped
    for o in [Outcome::Success, Outcome::Failure, Outcome::Success] {
        ops.extend(call(o));
    }
    ops.extend(call(Outcome::Failure)); // 2 of 4: trips
    ops.extend([Op::Advance(100), Op::Allow, Op::Report(0, Outcome::Success)]); // closes
    ops.extend(call(Outcome::Failure)); // 1 of 1, below the minimum
    let end = model::check(&ops, config);
    assert_eq!(end.state, atomic_breaker::State::Closed);
    assert_eq!(end.failure_window(), Some((1, 1)));
}

/// The fuzzer's committed seeds (and any crash input saved there as a regression) replay here.
#[test]
fn fuzz_seed_corpus_matches_the_model() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/model");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let (start, config, ops) = model::from_bytes(&data);
        let end = model::check_from(start, &ops, config);
        if std::env::var_os("MODEL_SEED_HITS").is_some() {
            println!("{}: {} ops, {:?}", path.display(), ops.len(), end.hits);
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} seeds in {dir}");
}
