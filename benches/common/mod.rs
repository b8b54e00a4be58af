//! What the criterion benches share (`benches/*.rs` and `servers/benches/*.rs` include it with
//! `mod common;` / `#[path]`): the runner of a closed-path loop on several threads at once.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// Runs `op(shared, thread, i)` for `i` in `0..iters` on each of `threads` threads started
/// together (`thread` is the thread's index); returns the longest time any thread took, so
/// `result / iters` is the time per call as a thread sees it (criterion's `iter_custom`).
pub fn on_threads<S: Sync>(
    threads: usize,
    iters: u64,
    shared: &S,
    op: impl Fn(&S, usize, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        op(shared, t, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}
