//! End-to-end batch throughput: parse → decide → serialize, on generated
//! customers for `examples/data/catalog_full.json`, with 1 and 2 threads,
//! and each stage alone on one thread.
//!
//! `cargo bench --bench throughput`; criterion reports customers per second
//! (elements/s).

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tactful::batch::{self, BatchOptions, JsonLinesSink};
use tactful::{Channel, Customer, EngineParams, Request};

const LINES: u64 = 4096;

fn throughput(c: &mut Criterion) {
    let catalog = include_str!("../examples/data/catalog_full.json");
    let engine = batch::load_engine(catalog, EngineParams::default()).expect("valid catalog");
    let request = Request { now: synthetic::NOW.parse().expect("time"), channel: Channel::Email, k: 3 };
    let input = synthetic::lines(LINES, 42);

    let mut group = c.benchmark_group("score_stream");
    group.throughput(Throughput::Elements(LINES));
    group.sample_size(20);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                pool.install(|| {
                    batch::score_stream(
                        input.as_bytes(),
                        &engine,
                        &request,
                        &BatchOptions::default(),
                        JsonLinesSink::new(io::sink()),
                    )
                    .expect("in-memory I/O")
                })
            });
        });
    }
    group.finish();

    // Where the time goes, one thread.
    let lines: Vec<&str> = input.lines().collect();
    let customers: Vec<Customer> = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let decisions: Vec<_> = customers.iter().filter_map(|c| engine.recommend(c, &request).ok()).collect();
    let mut group = c.benchmark_group("stage");
    group.sample_size(20);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| lines.iter().filter(|l| serde_json::from_str::<Customer>(black_box(l)).is_ok()).count());
    });
    group.throughput(Throughput::Elements(customers.len() as u64));
    group.bench_function("decide", |b| {
        b.iter(|| customers.iter().filter(|c| engine.recommend(black_box(c), &request).is_ok()).count());
    });
    group.throughput(Throughput::Elements(decisions.len() as u64));
    group.bench_function("serialize", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            out.clear();
            for d in &decisions {
                serde_json::to_writer(&mut out, black_box(d)).expect("in memory");
                out.push(b'\n');
            }
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
