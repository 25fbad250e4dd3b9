//! Ranking latency and throughput (issue 6), with the naive reference in the
//! same run so that speed-ups are ratios, not guesses.
//!
//! `cargo bench --bench ranking` (a few minutes). Groups:
//! - `ranking/{engine,naive}/N`: one customer, N offers × 64 features, top-5,
//!   guard and explanations on;
//! - `batch/*`: 1,024 distinct customers, 1,000 offers: `recommend_batch`
//!   on both cores, and `recommend_into` one by one on one core;
//! - a plain timing loop printing p50, p99 and p99/p50 (one customer, and
//!   1,024 distinct customers in turn at 1,000 offers).
//!
//! The catalog and customers are synthetic and seeded
//! (`tests/support/synthetic.rs`).
//!
//! Where the time went at 1,000 offers before guard rule 3 was decided for
//! the reached candidates only (same customer, AVX-512, rdtsc marks
//! around each stage in a scratch build; shares of a decision): the dot
//! products and signed proxy sums about a third (about 2.6 ns a row, 2.3
//! contiguous from L2 and 1.5 from L1: the L2 bandwidth, on that Xeon;
//! on a Zen 4 host 2.43 from L2 and 2.15 from L1, the multiply-adds),
//! the priority bounds and shortlists with the exact rescoring a fifth, the
//! five explanations a tenth, and the rest in pieces of 2–7 %: the rules
//! before scoring (held products, ages, channels, base products), the
//! contact rules and position lists, the proxy decisions, the audit's copy
//! of the rule codes, the stakes, the customer's features. At 100 offers
//! the explanations are more than a quarter (top contributions and the
//! sentence, about 260 cycles each), the rules before scoring a tenth, and
//! fixed costs (the customer's features, contacts and holdings, the contact
//! limits) most of the rest. Distinct customers cost more than the same one
//! again (1.1× at 1,000 offers with 64 of them, 1.3× with 1,024) for about
//! the same instructions. 1,024 copies of one customer cost 1.08× (their
//! memory), so the rest is branches that follow the data: the predictor
//! learns one customer's. Cachegrind's branch simulation spreads them
//! thinly (the set-bit loops' exits, the proxy decisions, the short top-k
//! insertions, the top contributions' search, the audit's reason kinds,
//! none a sixth of them). From about
//! 5,000 offers the weights compete for L2 and the value cut skips the
//! offers that could not reach the top-k at any propensity (about half the
//! plain ones here); at 1,000 the rows it would keep are sparse enough to
//! cost more each, and it would not pay (measured 1.03× the time for one
//! customer, 1.18× for 64). With the AVX2 kernels a decision after warm-up
//! is about 58,000 instructions at 1,000 offers (61,000 for 64 distinct
//! customers; 21,000 at 100 offers, 282,000 at 5,000 and 578,000 at
//! 10,000); with the integer grouped scoring (session 17) 55,700 for 64
//! distinct customers at 1,000 offers (60,600 with the f32 rows,
//! `INTEGER=0`), 21,000 at 100. Below the value cut's threshold the offers weighing a proxy
//! feature now cost one dot product like the rest (their signed proxy sums
//! were a sixth of a decision at 1,000 offers: 69,500 instructions then),
//! and the proxy share is decided in f64 for the few candidates the ranking
//! reaches. Past it they are still scored first, with their signed sums, as
//! the cut's reference. Some 16,000 instructions a decision are there
//! whatever the catalog; without any explanation (a scratch build, before
//! rule 3 was decided for the reached candidates only) a decision at 100
//! offers was still 16,200. See `benches/instructions.rs` for the
//! commands. The top contributions' selection was a fifth of a decision at
//! 100 offers (session 18, Xeon: 1.15–1.24 µs with three fixed features
//! cited instead, against 1.49–1.62). Its three rounds of maxima each wait
//! for the last, so halving their instructions (an AVX-512 twin) did not
//! help, nor did scalar insertion; a threshold did (see the end).
//!
//! With AVX-512 the plain offers of catalogs past 96 kB of weights are
//! scored from 16-bit weights grouped 64 offers to a feature pair
//! (`kernel::Groups`): every offer, not only the 73 % reached, but half the
//! bytes and no horizontal sums or scatter. The kernels alone
//! (`kernel_timings`, an ignored test of the library), Zen 4 host:
//! 1.43–1.45 µs for all 1,000 offers that way against 1.72–1.84 µs for the
//! 685 reached as f32 rows. In the engine (fastest batch of 20,000 calls,
//! five alternating runs): 4.97 → 4.54 µs at 1,000 offers (4.96 → 4.54 in
//! a second set); 3.21 → 3.10 at 500, even at 300, 1.74 → 1.76 at 100 (so
//! not below 96 kB). With 1,024 distinct customers no clear change (7.0 →
//! 6.75 µs, then 6.80 → 6.85), nor for the batch. The f32 rescoring of the
//! offers the coarse bounds leave in doubt (about 48 at 1,000 offers) is in
//! those times.
//!
//! Each entry's high half is then read whole, without a mask: its low bits
//! (the other feature's bf16) only move the value, and the high bits are
//! chosen to bring it nearest the weight (`kernel::high_bits`), so the
//! error stays within a bf16 unit and the bounds count it as before. One
//! instruction fewer per pair (three, not four, for two multiply-adds): on
//! an Intel Xeon (AVX-512) the grouped kernel went 1,431 → 1,183 ns (AVX2:
//! 2,055 → 1,730, against 1,728 for the f32 rows), and the engine, five
//! alternating runs, 4.28–4.53 → 4.11–4.31 µs at 1,000 offers (fastest
//! batch) and 4.94–5.31 → 4.69–4.99 µs with 64 distinct customers. The
//! AVX2 version (eight offers a register) is not used: it was slower on
//! the Zen 4 host with masks (5.20 → 5.44 µs) and no better on the Xeon
//! without; `GROUPED=0` in `benches/instructions.rs` measures it on
//! another CPU.
//!
//! With AVX-512 VNNI the grouped scoring uses 16-bit integer weights
//! instead (`kernel::integer`): 849 ns for the kernel and 45 ns to
//! quantise the customer against 1,183 ns for the bf16 groups; in the
//! engine 4.03–4.06 → 3.46–3.49 µs at 1,000 offers, 5.60–5.64 → 5.14–5.22
//! µs with 1,024 distinct customers (`INTEGER=0|1` in
//! `benches/instructions.rs`). The coarse bounds it gives are no tighter
//! in effect: about 45 offers stay in doubt at 1,000 either way, as the
//! coarse bounds' own `ln 2` dominates their width.
//!
//! Session 18 (same Xeon). The top contributions come from a threshold
//! (`kernel::select_largest`): the `k`-th largest of eight disjoint sets'
//! maxima is at most the `k`-th contribution, so the few features at or
//! above it (3 for the default 3 of 64, usually) hold the answer and the
//! scalar rule picks it from them, without dependent rounds. The engine at
//! 100 offers: 1.44–1.51 → 1.39–1.48 µs (fastest batch, alternating),
//! criterion 1.71–1.78 → 1.64–1.67 µs in the same minutes; with
//! `KERNELS=avx2` 1.48–1.51 → 1.45–1.46 µs. In the microbenchmark
//! (`kernel_timings`, the same data each call, so every branch predicted)
//! it is no faster; ranking the candidates without branches was slower in
//! the engine (1.66 against 1.42 µs). Rule 3 in the fast path is decided
//! from the proxy sums added in any order (`kernel::proxy_sums`, eight
//! lanes each) unless their share is within `(8n + 16)·2⁻⁵³` of the
//! threshold (`guard::decided_by_sums`): the sequential sums were two
//! chains of 64 dependent additions for each candidate weighing a proxy
//! feature. At 1,000 offers × 64 customers 4.49–4.53 → 4.25–4.40 µs.
//!
//! Sessions 19–20 (AMD Zen 5, KVM, 2 vCPU, AVX-512 with VNNI; noisier
//! than the Xeon). The thresholds of all five explanations are found
//! before any selection (`kernel::picks`, AVX-512), so their work overlaps
//! instead of waiting for each sentence; each selection then reads its
//! pick (`kernel::select_picked`). The engine, fastest batch, alternating
//! runs: 1.56–1.64 → 1.43–1.49 µs at 100 offers, 3.41 → 3.22 µs at 1,000;
//! with `KERNELS=avx2` even (1.58–1.59 → 1.59–1.61 µs), so the AVX2 path
//! keeps the one-at-a-time selection. Criterion, base then new then new
//! then base, same minutes: 1.70 / 1.79 → 1.73 / 1.88 µs at 100 offers
//! (within this host's noise), 3.57 / 3.47 → 3.33 / 3.77 µs at 1,000,
//! 42.8 / 42.4 → 38.5 / 43.3 µs at 10,000. A profile at 100 offers is
//! diffuse: the engine's own loop 19 %, the picks 9.5 %, the dot products
//! 8.6 %, the failed rules' audit codes 4.5 %, copies 4 %, the bounds 7 %,
//! nothing else above 3 %.
//!
//! Session 22 (same host): where 100 offers' time goes, by leaving parts
//! out in a scratch build (fastest batch, AVX-512, 1.37–1.43 µs whole):
//! top-1 instead of top-5 0.96–1.02 µs (about 90 ns a recommendation);
//! no sentences −130 ns, no top contributions −190 ns (which also leaves
//! the generic sentence), no audit −60 ns, no contact history (three
//! contacts) −120 ns, of which the fatigue's `exp2` and calendar
//! arithmetic about 35; top-1 with none of these nor holdings 0.60 µs.
//! 25 offers take 1.18 µs and 50 1.36, so most of a decision at 100 is
//! fixed per customer and recommendation, not per offer. The sentences'
//! copies (opening words, separator, description: six calls to `memcpy`
//! a sentence) are now one per cited feature from pieces made once per
//! engine (`explain::Phrases`): 22,457 → 21,651 instructions a decision
//! (AVX2), and 1.46–1.54 → 1.37–1.48 µs alternating with the previous
//! build; criterion 2.09 / 2.20 → 1.83 / 2.08 µs in a slower hour.
//!
//! Session 23 (same host), the floor at 100 offers with the customer made
//! easier instead of the engine cut down (fastest batch of 200,000 calls,
//! three runs each; `K`, `MAXC`, `NOCONTACT` and `NOHOLD` in a scratch
//! copy of `tests/support/synthetic.rs`): whole 1.45–1.50 µs; one cited
//! feature instead of three 1.38–1.40; and no contact history 1.21–1.24;
//! and no holdings 1.10–1.16 (AVX2: 1.62–1.63 whole, 1.29–1.31 so). Top-1
//! 1.03–1.06, and with the rest as easy 0.74–0.76. Three contacts cost
//! about 1,700 instructions (AVX2), chrono's subtraction in the fatigue
//! 330 of them; the rest is spread over their offers' lookup, the rules
//! and the audit of the offer they hold back. With one cited feature and
//! no contacts or holdings, top-5 still takes 1.1 µs here.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use tactful::{Decision, Engine, Workspace};

#[path = "../tests/support/reference.rs"]
mod reference;
#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use reference::{Dot, Reference};

fn engine(n_offers: usize) -> Engine {
    Engine::builder().catalog(synthetic::catalog(n_offers, 42)).params(synthetic::params()).build().expect("valid")
}

fn ranking(c: &mut Criterion) {
    let mut group = c.benchmark_group("ranking");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(40);
    let request = synthetic::request();
    for n in [100, 1_000, 10_000] {
        let engine = engine(n);
        let customer = synthetic::customer(n, 0);
        let reference = Reference::new(&engine);
        let decision = engine.recommend(&customer, &request).expect("ranked");
        assert_eq!(decision, reference.recommend(&customer, &request, Dot::Sequential).expect("ranked"));
        println!(
            "ranking/{n}: {} withheld, {} allowed, {} returned",
            decision.withheld.len(),
            decision.funnel.allowed,
            decision.funnel.returned
        );
        let mut workspace = Workspace::new();
        let mut out = Decision::default();
        group.bench_with_input(BenchmarkId::new("recommend_into", n), &n, |b, _| {
            b.iter(|| {
                engine.recommend_into(black_box(&customer), &request, &mut workspace, &mut out).expect("ranked");
                black_box(&out);
            });
        });
        group.bench_with_input(BenchmarkId::new("recommend", n), &n, |b, _| {
            b.iter(|| black_box(engine.recommend(black_box(&customer), &request).expect("ranked")));
        });
        group.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
            b.iter(|| black_box(reference.recommend(black_box(&customer), &request, Dot::Ndarray).expect("ranked")));
        });
    }
    group.finish();
}

/// Throughput over many distinct customers, 1,000 offers: the batch API on
/// both cores (each thread running `recommend_into` with its own workspace), and
/// `recommend_into` one customer after another on one core.
fn batch(c: &mut Criterion) {
    let n = 1_000;
    let engine = engine(n);
    let customers: Vec<_> = (0..1_024).map(|i| synthetic::customer(n, i)).collect();
    let request = synthetic::request();
    let mut group = c.benchmark_group("batch");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4)).sample_size(20);
    group.throughput(Throughput::Elements(customers.len() as u64));
    let mut out = Vec::new();
    group.bench_function("recommend_batch_into/1000", |b| {
        b.iter(|| {
            engine.recommend_batch_into(black_box(&customers), &request, &mut out);
            black_box(&out);
        });
    });
    group.bench_function("recommend_batch/1000", |b| {
        b.iter(|| black_box(engine.recommend_batch(black_box(&customers), &request)));
    });
    let mut workspace = Workspace::new();
    let mut decision = Decision::default();
    group.bench_function("sequential_recommend_into/1000", |b| {
        b.iter(|| {
            for customer in &customers {
                engine.recommend_into(black_box(customer), &request, &mut workspace, &mut decision).expect("ranked");
                black_box(&decision);
            }
        });
    });
    group.finish();
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A plain timing loop: per-call latency percentiles, for each case listed
/// in `RANKING_SPREAD` (default `100,1000,10000,1000/1024`): `N` offers
/// and one customer, or `N/C` with `C` distinct customers taken in turn
/// (their inputs differ, so branches that follow them mispredict as in
/// production; the one customer of the other cases is the best case).
fn spread() {
    let cases = std::env::var("RANKING_SPREAD").unwrap_or_else(|_| "100,1000,10000,1000/1024".into());
    for case in cases.split(',').map(str::trim) {
        let (n, distinct) = case.split_once('/').unwrap_or((case, "1"));
        let (Ok(n), Ok(distinct @ 1..)) = (n.parse::<usize>(), distinct.parse::<usize>()) else { continue };
        let engine = engine(n);
        let customers: Vec<_> = (0..distinct as u64).map(|i| synthetic::customer(n, i)).collect();
        let request = synthetic::request();
        let mut workspace = Workspace::new();
        let mut out = Decision::default();
        for i in 0..1_000.max(distinct) {
            engine.recommend_into(&customers[i % distinct], &request, &mut workspace, &mut out).expect("ranked");
        }
        let iterations = (20_000_000 / n).clamp(2_000, 200_000);
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let customer = &customers[i % distinct];
            let t = Instant::now();
            engine.recommend_into(black_box(customer), &request, &mut workspace, &mut out).expect("ranked");
            black_box(&out);
            samples.push(t.elapsed());
        }
        let (p50, p99) = percentiles(samples);
        let name = if distinct == 1 { format!("{n}") } else { format!("{n}/{distinct}_customers") };
        println!(
            "spread/recommend_into/{name}: p50 {:.2} µs, p99 {:.2} µs, p99/p50 {:.2} ({iterations} calls)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            p99.as_secs_f64() / p50.as_secs_f64()
        );
    }
}

criterion_group!(benches, ranking, batch);

fn main() {
    benches();
    spread();
    Criterion::default().configure_from_args().final_summary();
}
