//! A fixed number of `recommend_into` calls, for counting instructions per
//! decision with Callgrind (this machine has no hardware counters, and
//! instruction counts, unlike timings, do not depend on the load):
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     --toggle-collect='tactful::engine::Engine::recommend_into' \
//!     target/release/deps/instructions-<hash> 1000 500 1
//! callgrind_annotate cg.out | grep TOTALS   # divide by the calls printed
//! ```
//!
//! Arguments: offers (default 1,000), calls (default 500), distinct
//! customers cycled through (default 1: the latency benchmark's case).
//! Without Valgrind it prints the mean time per call too.

use std::hint::black_box;
use std::time::Instant;

use tactful::{Decision, Engine, Workspace};

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

fn arg(i: usize, default: usize) -> usize {
    std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; any non-number means "defaults".
    let (n, calls, distinct) = (arg(1, 1_000), arg(2, 500), arg(3, 1).max(1));
    let engine =
        Engine::builder().catalog(synthetic::catalog(n, 42)).params(synthetic::params()).build().expect("valid");
    let customers: Vec<_> = (0..distinct as u64).map(|i| synthetic::customer(n, i)).collect();
    let request = synthetic::request();
    let mut workspace = Workspace::new();
    let mut decision = Decision::default();
    // Warm-up: every customer once (these calls are counted too).
    for c in &customers {
        engine.recommend_into(c, &request, &mut workspace, &mut decision).expect("ranked");
    }
    let start = Instant::now();
    for i in 0..calls {
        let c = &customers[i % customers.len()];
        engine.recommend_into(black_box(c), &request, &mut workspace, &mut decision).expect("ranked");
        black_box(&decision);
    }
    let elapsed = start.elapsed();
    println!(
        "{n} offers, {distinct} distinct customers: {} calls to recommend_into in all; {:.2} µs per call",
        calls + distinct,
        elapsed.as_secs_f64() * 1e6 / calls as f64
    );
}
