//! Fuzz target: arbitrary bytes decode into a clock start, a configuration and a sequence of
//! operations (calls with outcomes, permits held and reported late or dropped, clock advances
//! with large jumps, idle gaps up to 2^33 ms landing on the boundaries of the word's 2^29 ms
//! deadline modulus, runs of up to 2^17 state changes that take held permits around the 16-bit
//! generation (one per input), every management operation, run-time configuration changes); the
//! real breaker must agree with the reference model in `tests/model/` after every step.
//!
//! `cargo +nightly fuzz run model` from this directory; `.ci/steps/30-fuzz.sh` runs it in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    let (start, config, ops) = model::from_bytes(data);
    model::check_from(start, &ops, config);
});
