//! A fixed number of `recommend_into` calls, for counting instructions per
//! decision with Callgrind (this machine has no hardware counters, and
//! instruction counts, unlike timings, do not depend on the load):
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     --toggle-collect='instructions::measured' \
//!     target/release/deps/instructions-<hash> 1000 500 1
//! callgrind_annotate cg.out | grep TOTALS   # divide by the calls: 500
//! ```
//!
//! Only the timed calls go through `measured`, so the count leaves out the
//! warm-up, whose first call sizes the workspace and the decision (at
//! 10,000 offers that call costs as much as a dozen others).
//!
//! Arguments: offers (default 1,000), calls (default 500), distinct
//! customers cycled through (default 1: the latency benchmark's case);
//! a fourth argument `batch` times `recommend_batch_into` over the
//! distinct customers instead (both cores; timing only, as it bypasses
//! `measured`). `KERNELS=avx2` (or
//! `portable`) uses those kernels instead of the detected ones;
//! `VALUE_CUT=<bytes>` sets the value cut's threshold, `GROUPED=<bytes>`
//! that of the grouped 16-bit scoring, `INTEGER=0` (or `1`) turns its
//! integer weights off (or on); `DECISIONS=<n>` writes the calls'
//! results into `n` decisions in turn instead of one (as a batch does,
//! whose outputs do not fit in L2).
//! Without Valgrind it also prints the mean time per call and that of the
//! fastest batch of calls (the least disturbed on a shared machine); with
//! `batch`, the median and fastest batch.

use std::hint::black_box;
use std::time::Instant;

use tactful::{Customer, Decision, Engine, Request, Workspace};

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

fn arg(i: usize, default: usize) -> usize {
    std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// One timed call: the function Callgrind's `--toggle-collect` names.
#[inline(never)]
fn measured(engine: &Engine, customer: &Customer, request: &Request, workspace: &mut Workspace, out: &mut Decision) {
    engine.recommend_into(customer, request, workspace, out).expect("ranked");
}

fn main() {
    // `cargo bench` passes `--bench`; any non-number means "defaults".
    let (n, calls, distinct) = (arg(1, 1_000), arg(2, 500), arg(3, 1).max(1));
    let engine =
        Engine::builder().catalog(synthetic::catalog(n, 42)).params(synthetic::params()).build().expect("valid");
    // `KERNELS=avx2` (or `portable`) times another instruction set than
    // the detected one, where the CPU has it.
    let engine = match std::env::var("KERNELS") {
        Ok(name) => engine.kernel_variants().into_iter().find(|e| e.kernels() == name).expect("kernels available"),
        Err(_) => engine,
    };
    // `VALUE_CUT=<bytes>` moves the value cut's threshold (for measuring
    // where it pays).
    let engine = match std::env::var("VALUE_CUT").ok().and_then(|b| b.parse().ok()) {
        Some(bytes) => engine.with_value_cut_from(bytes),
        None => engine,
    };
    // `GROUPED=<bytes>` moves the threshold of the grouped 16-bit scoring.
    let engine = match std::env::var("GROUPED").ok().and_then(|b| b.parse().ok()) {
        Some(bytes) => engine.with_grouped_from(bytes),
        None => engine,
    };
    // `INTEGER=0` (or `1`) turns the grouped scoring's integer weights off
    // (or on, with the portable kernel where there is no VNNI).
    let engine = match std::env::var("INTEGER").as_deref() {
        Ok("0") => engine.with_integer_scoring(false),
        Ok("1") => engine.with_integer_scoring(true),
        _ => engine,
    };
    let customers: Vec<_> = (0..distinct as u64).map(|i| synthetic::customer(n, i)).collect();
    let request = synthetic::request();
    let mut workspace = Workspace::new();
    let outs = std::env::var("DECISIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(1usize).max(1);
    let mut decisions: Vec<Decision> = (0..outs).map(|_| Decision::default()).collect();
    // Warm-up: every customer and every decision once, outside `measured`.
    for i in 0..distinct.max(outs) {
        engine
            .recommend_into(&customers[i % distinct], &request, &mut workspace, &mut decisions[i % outs])
            .expect("ranked");
    }
    if std::env::args().nth(4).as_deref() == Some("batch") {
        // `recommend_batch_into` over all the customers (both cores), timed
        // as a whole: the fastest of the batches that fit in `calls`.
        let mut out = Vec::new();
        let mut times: Vec<f64> = (0..(calls / distinct).max(2))
            .map(|_| {
                let start = Instant::now();
                engine.recommend_batch_into(black_box(&customers), &request, &mut out);
                black_box(&out);
                start.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let (median, best) = (times[times.len() / 2], times[0]);
        println!(
            "{n} offers, batches of {distinct} customers: median batch {:.2} µs per customer ({:.0} customers/s), \
             fastest {:.2} µs ({:.0}/s)",
            median * 1e6 / distinct as f64,
            distinct as f64 / median,
            best * 1e6 / distinct as f64,
            distinct as f64 / best
        );
        return;
    }
    // Timed in batches: the fastest batch is the least disturbed by the
    // rest of a shared machine.
    let batch = distinct.max(100);
    let (mut total, mut best) = (0.0f64, f64::INFINITY);
    let mut i = 0;
    while i < calls {
        let start = Instant::now();
        let end = (i + batch).min(calls);
        for j in i..end {
            let c = &customers[j % customers.len()];
            let decision = &mut decisions[j % outs];
            measured(&engine, black_box(c), &request, &mut workspace, decision);
            black_box(decision);
        }
        let t = start.elapsed().as_secs_f64();
        total += t;
        best = best.min(t / (end - i) as f64);
        i = end;
    }
    println!(
        "{n} offers, {distinct} distinct customers: {} timed calls to recommend_into (after {} warm-up); {:.2} µs per call, fastest batch {:.2} µs",
        calls,
        distinct.max(outs),
        total * 1e6 / calls.max(1) as f64,
        best * 1e6
    );
}
