use super::*;

/// A deterministic pseudo-random stream in [-1, 1).
pub(super) fn stream(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

#[test]
fn append_positions_lists_set_bits_on_every_isa() {
    let mut next = stream(7);
    let mut words = vec![0, 1, u64::MAX, 1 << 63, 0x8000_0000_0000_0001, 0x00ff_00ff_00ff_00ff];
    words.extend((0..200).map(|_| (next().to_bits() ^ next().to_bits().rotate_left(17)) & next().to_bits()));
    for isa in Isa::available() {
        // Appended after what is there, word after word.
        let mut out = vec![7u32, 9];
        let mut expected = out.clone();
        for (i, &w) in words.iter().enumerate() {
            let base = (i * 64) as u32;
            append_positions(isa, w, base, &mut out);
            expected.extend((0..64).filter(|b| w & (1 << b) != 0).map(|b| base + b));
        }
        assert_eq!(out, expected, "{isa:?}");
    }
}

#[test]
fn available_lists_portable_first_and_the_detected_isa_last() {
    let all = Isa::available();
    assert_eq!(all.first(), Some(&Isa::Portable));
    assert_eq!(all.last(), Some(&Isa::detect()));
    println!("available: {all:?}");
}

#[test]
fn matrix_rows_are_padded_and_aligned() {
    let m = Matrix::from_fn(3, 10, |r, c| (r * 100 + c) as f32);
    assert_eq!(m.stride(), 16);
    assert_eq!(m.rows, 3);
    let row = m.row(2).unwrap();
    assert_eq!(row.len(), 16);
    assert_eq!(row[9], 209.0);
    assert_eq!(row[10..], [0.0; 6]);
    assert!(m.row(3).is_none());
    assert_eq!(m.as_slice().as_ptr() as usize % 64, 0);
    let wide = Matrix::from_fn(2, 17, |_, _| 1.0);
    assert_eq!((wide.stride(), wide.row(1).unwrap().as_ptr() as usize % 64), (32, 0));
}

#[test]
fn bf16_rounds_to_nearest_with_ties_to_even() {
    let two = |e: i32| f32::powi(2.0, e);
    // Representable values stay; 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷
    // (even: 1), 1 + 3·2⁻⁸ between 1 + 2⁻⁷ and 1 + 2⁻⁶ (even: the latter).
    let cases = [
        (1.0, 1.0),
        (-0.0, -0.0),
        (1.0 + two(-7), 1.0 + two(-7)),
        (1.0 + two(-8), 1.0),
        (1.0 + 3.0 * two(-8), 1.0 + two(-6)),
        (1.0 + two(-8) + two(-20), 1.0 + two(-7)),
        (-(1.0 + two(-8) + two(-20)), -(1.0 + two(-7))),
        (f32::MIN_POSITIVE, f32::MIN_POSITIVE),
        (1e-40, f32::from_bits(1e-40f32.to_bits() & 0xffff_0000)),
    ];
    for (x, expected) in cases {
        assert_eq!(bf16(x).to_bits(), f32::to_bits(expected), "bf16({x:e})");
    }
    let mut rnd = stream(11);
    for _ in 0..10_000 {
        let x = (rnd() * 1e3) as f32;
        let r = bf16(x);
        assert!(f64::from((r - x).abs()) <= f64::from(x.abs()) * f64::powi(2.0, -8), "bf16({x:e}) = {r:e}");
        assert_eq!(r.to_bits() & 0xffff, 0, "a bf16 value");
    }
    assert!(bf16(3e38).is_finite());
}

#[test]
fn groups_hold_64_offers_feature_pair_by_feature_pair() {
    for (rows, cols) in [(1, 1), (64, 16), (65, 17), (130, 64), (3, 85)] {
        let m = Matrix::from_fn(rows, cols, |r, c| (r * 1000 + c) as f32 + 0.3);
        let g = Groups::from_rows(&m);
        assert_eq!(g.features(), m.stride(), "{rows} × {cols}");
        for group in 0..rows.div_ceil(GROUP) {
            let lines = g.group(group).unwrap();
            assert_eq!(lines.len(), GROUP * m.stride() / 2);
            for (q, line) in lines.chunks_exact(GROUP).enumerate() {
                for (j, &pair) in line.iter().enumerate() {
                    let (o, ctx) = (group * GROUP + j, format!("{rows} × {cols}: group {group}, pair {q}, offer {j}"));
                    let Some(row) = m.row(o) else {
                        assert_eq!(pair, 0, "{ctx}: past the rows, zeros");
                        continue;
                    };
                    let (low, whole) = (f32::from_bits(pair << 16), f32::from_bits(pair));
                    assert_eq!(low, bf16(row[2 * q]), "{ctx}");
                    assert_eq!(
                        whole.to_bits(),
                        u32::from(high_bits(row[2 * q + 1], (pair & 0xffff) as u16)) << 16 | pair & 0xffff,
                        "{ctx}"
                    );
                    assert_eq!((g.weight(o, 2 * q), g.weight(o, 2 * q + 1)), (Some(low), Some(whole)), "{ctx}");
                }
            }
        }
        assert!(g.group(rows.div_ceil(GROUP)).is_none());
        assert_eq!(g.weight(rows.div_ceil(GROUP) * GROUP, 0), None);
        assert_eq!(g.weight(0, m.stride()), None);
    }
}

#[test]
fn high_halves_are_the_nearest_normal_values_with_the_low_bits_given() {
    let tiny = f32::powi(2.0, -60);
    let mut rnd = stream(12);
    let mut xs: Vec<f32> =
        vec![0.0, -0.0, 1e-40, -1e-30, tiny, -tiny, 1.0, -1.0, 1.0 + f32::powi(2.0, -7), 3e38, -3e38];
    xs.extend((0..200).map(|i| (rnd() * f64::powi(10.0, i % 7 - 3)) as f32));
    for (i, &x) in xs.iter().enumerate() {
        for low in [0u16, 1, 0x7fff, 0x8000, 0xffff, (i as u16).wrapping_mul(40503)] {
            let h = high_bits(x, low);
            let value = |h: u32| f32::from_bits(h << 16 | u32::from(low));
            let got = value(u32::from(h));
            assert!(got.is_normal() && got.abs() >= tiny, "{x:e}, low {low:#x}: {got:e}");
            assert!(got.is_sign_negative() == x.is_sign_negative(), "{x:e}, low {low:#x}: {got:e}");
            // Nearest to `x` (or to ±2⁻⁶⁰ below it) of all such values.
            let target = f64::from(if x.abs() < tiny { tiny.copysign(x) } else { x });
            let error = |v: f32| (f64::from(v) - target).abs();
            let best = (0..=0xffffu32)
                .map(value)
                .filter(|v| v.is_normal() && v.abs() >= tiny && v.is_sign_negative() == x.is_sign_negative())
                .fold(f64::INFINITY, |m, v| m.min(error(v)));
            assert_eq!(error(got), best, "{x:e}, low {low:#x}: {got:e}");
            // Within a bf16 unit of `x` (or ±2⁻⁶⁰ and 2⁻⁶⁰ of it).
            let unit = if x.abs() < tiny { 2.0 * f64::from(tiny) } else { f64::from(x.abs()) * f64::powi(2.0, -7) };
            assert!((f64::from(got) - f64::from(x)).abs() <= unit, "{x:e}, low {low:#x}: {got:e}");
        }
    }
}

/// Runs `dots` and `dots_signed` on `list` for every available ISA and
/// checks each result against the f64 values within the documented
/// bound (rows out of range give zeros), that entries of `out` past
/// `list.len()` are left alone, and that the ISAs agree closely.
fn check_all_isas(w64: &[Vec<f64>], d64: &[f64], list: &[u32]) {
    let cols = d64.len();
    let m = Matrix::from_fn(w64.len(), cols, |r, c| w64[r][c] as f32);
    // Every third feature a proxy, threshold 0.3.
    let c64: Vec<f64> = (0..cols).map(|i| d64[i].abs() * (f64::from(u8::from(i % 3 == 0)) - 0.3)).collect();
    let mut d = vec![0.0f32; m.stride()];
    let mut c = vec![0.0f32; m.stride()];
    for i in 0..cols {
        d[i] = d64[i] as f32;
        c[i] = c64[i] as f32;
    }
    let max_w = w64.iter().flatten().fold(0.0f64, |a, w| a.max(w.abs()));
    let abs_d: f64 = d64.iter().map(|d| d.abs()).sum();
    let n = list.len();
    let mut results: Vec<(Isa, Vec<f32>, Vec<[f32; 2]>)> = Vec::new();
    // `dots` writes by row: rows up to 8 past the matrix's (0 there), and
    // none beyond.
    let width = w64.len() + 8;
    for isa in Isa::available() {
        let mut by_row = vec![7.0f32; width];
        let mut out2 = vec![[7.0f32; 2]; n + 1];
        dots(isa, &m, list, &d, &mut by_row);
        dots_signed(isa, &m, list, &d, &c, &mut out2);
        assert_eq!(out2[n], [7.0; 2], "{isa:?} wrote past the row list");
        for (r, &v) in by_row.iter().enumerate() {
            assert!(v == 7.0 || list.contains(&(r as u32)), "{isa:?} wrote row {r}, not listed");
        }
        let out: Vec<f32> = list.iter().map(|&r| by_row.get(r as usize).copied().unwrap_or(0.0)).collect();
        for (j, &r) in list.iter().enumerate() {
            let ctx = format!("{isa:?}, {cols} columns, row {r} at {j} of {n}");
            let Some(w) = w64.get(r as usize) else {
                assert_eq!((out[j], out2[j]), (0.0, [0.0; 2]), "out-of-range row: {ctx}");
                continue;
            };
            let exact: f64 = w.iter().zip(d64).map(|(w, d)| w * d).sum();
            let total: f64 = w.iter().zip(d64).map(|(w, d)| (w * d).abs()).sum();
            let proxy: f64 = w.iter().zip(d64).step_by(3).map(|(w, d)| (w * d).abs()).sum();
            let signed: f64 = w.iter().zip(&c64).map(|(w, c)| w.abs() * c).sum();
            assert!((signed - (proxy - 0.3 * total)).abs() <= 1e-9 * total, "signed sum is P − θT: {ctx}");
            let bound = logit_error(m.stride()) * total + underflow_error(m.stride(), max_w, abs_d);
            assert!((f64::from(out[j]) - exact).abs() <= bound, "dot: {ctx}");
            assert!((f64::from(out2[j][0]) - exact).abs() <= bound, "dots_signed: {ctx}");
            // |cᵢ| ≤ |dᵢ|, so the same bound covers the signed sum.
            assert!((f64::from(out2[j][1]) - signed).abs() <= bound, "signed: {ctx}");
        }
        results.push((isa, out, out2));
    }
    check_grouped(&m, w64, d64, list);
    let (_, a, a2) = &results[0];
    for (isa, b, b2) in &results[1..] {
        for j in 0..n {
            let tol = 1e-4 * (1.0 + a[j].abs() + a2[j][1].abs());
            assert!((a[j] - b[j]).abs() <= tol && (a2[j][0] - b2[j][0]).abs() <= tol, "{isa:?} {j}");
            assert!((a2[j][1] - b2[j][1]).abs() <= tol, "{isa:?} {j}");
        }
    }
}

/// [`dots_grouped`] on the offers of `list` (as bits) for every available
/// ISA: within the kernels' bound of the dot with the rounded weights `w̃`,
/// and within that plus `Σ|w̃ᵢ − wᵢ||dᵢ|` of the exact one; offers not
/// listed are left alone, those past the matrix's rows score 0 (or are
/// left alone past its last group), and the ISAs agree closely.
fn check_grouped(m: &Matrix, w64: &[Vec<f64>], d64: &[f64], list: &[u32]) {
    let g = Groups::from_rows(m);
    let mut d = vec![0.0f32; m.stride()];
    for (d, &v) in d.iter_mut().zip(d64) {
        *d = v as f32;
    }
    // The weights as the kernels read them.
    let rounded = |r: usize, c: usize| f64::from(g.weight(r, c).unwrap());
    let max_w = (0..w64.len())
        .flat_map(|r| (0..d64.len()).map(move |c| (r, c)))
        .fold(0.0f64, |a, (r, c)| a.max(rounded(r, c).abs()));
    let abs_d: f64 = d64.iter().map(|d| d.abs()).sum();
    // Bits for rows past the matrix, and a word past its groups, too.
    let width = w64.len() + 8;
    let mut words = vec![0u64; width.div_ceil(64) + 1];
    for &r in list.iter().filter(|&&r| (r as usize) < width) {
        words[r as usize / 64] |= 1 << (r % 64);
    }
    *words.last_mut().unwrap() = u64::MAX;
    let mut first: Option<Vec<f32>> = None;
    for isa in Isa::available() {
        let mut by_row = vec![7.0f32; width];
        dots_grouped(isa, &g, &words, &d, &mut by_row);
        for (r, &v) in by_row.iter().enumerate() {
            // Rows past the matrix's, within its last group, score 0.
            assert!(v == 7.0 || list.contains(&(r as u32)), "{isa:?} wrote row {r}, not listed");
            assert!(v == 7.0 || r < w64.len() || v == 0.0, "{isa:?}: row {r}, past the matrix, scored {v}");
        }
        for &r in list {
            let ctx = format!("{isa:?}, {} columns, row {r} of {}", d64.len(), list.len());
            let (Some(w), Some(&got)) = (w64.get(r as usize), by_row.get(r as usize)) else {
                continue;
            };
            let exact: f64 = w.iter().zip(d64).map(|(w, d)| w * d).sum();
            let r = r as usize;
            let of_rounded: f64 = d64.iter().enumerate().map(|(c, d)| rounded(r, c) * d).sum();
            let total: f64 = d64.iter().enumerate().map(|(c, d)| (rounded(r, c) * d).abs()).sum();
            let moved: f64 = w.iter().zip(d64).enumerate().map(|(c, (&w, d))| ((rounded(r, c) - w) * d).abs()).sum();
            let bound = logit_error(m.stride()) * total + underflow_error(m.stride(), max_w, abs_d);
            let got = f64::from(got);
            assert!((got - of_rounded).abs() <= bound, "grouped dot, rounded weights: {ctx}");
            assert!((got - exact).abs() <= bound + moved, "grouped dot, exact weights: {ctx}");
        }
        match &first {
            None => first = Some(by_row),
            Some(a) => {
                for (r, (a, b)) in a.iter().zip(&by_row).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{isa:?} row {r}: grouped paths agree");
                }
            }
        }
    }
}

#[test]
fn both_kernel_paths_agree_with_f64_within_the_bound() {
    for cols in [1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 64, 72, 100] {
        let mut rnd = stream(cols as u64);
        let rows = 37;
        let w64: Vec<Vec<f64>> = (0..rows).map(|_| (0..cols).map(|_| rnd() * 3.0).collect()).collect();
        let d64: Vec<f64> = (0..cols).map(|_| rnd() * 5.0).collect();
        let rows = rows as u32;
        // Every row, descending, then one out of range.
        check_all_isas(&w64, &d64, &(0..rows).rev().chain([rows + 5]).collect::<Vec<_>>());
        // Ascending lists of every length up to 40 (not only multiples
        // of the block sizes), some rows repeated.
        for n in 0..=40 {
            check_all_isas(&w64, &d64, &(0..n).map(|j| j * rows / 40).collect::<Vec<_>>());
        }
    }
}

#[test]
fn rows_out_of_range_give_zeros_at_any_position() {
    let cols = 64;
    let mut rnd = stream(11);
    let rows = 50;
    let w64: Vec<Vec<f64>> = (0..rows).map(|_| (0..cols).map(|_| rnd() * 3.0).collect()).collect();
    let d64: Vec<f64> = (0..cols).map(|_| rnd() * 5.0).collect();
    for n in [1, 3, 4, 5, 8, 12, 17, 24, 33] {
        for bad in [rows as u32, rows as u32 + 1, u32::MAX] {
            for at in 0..n {
                let list: Vec<u32> =
                    (0..n as u32).map(|j| if j as usize == at { bad } else { j * 3 % rows as u32 }).collect();
                check_all_isas(&w64, &d64, &list);
            }
        }
        // Every row out of range.
        check_all_isas(&w64, &d64, &vec![u32::MAX; n]);
    }
    // An empty matrix.
    check_all_isas(&[], &d64, &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
}

/// Nanoseconds per call of `f`: the fastest of 15 batches of `iters`
/// calls, after a warm-up batch (the minimum is the least disturbed by
/// other processes on the machine).
fn ns_per_call(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut batch = || {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed().as_nanos() as f64 / f64::from(iters)
    };
    batch();
    (0..15).map(|_| batch()).fold(f64::INFINITY, f64::min)
}

#[test]
fn sums_in_order_are_the_bits_of_the_sequential_sum_on_every_path() {
    let mut next = stream(5);
    // Magnitudes far apart (so that the order of the additions shows in
    // the bits), signed zeros, and products that overflow to ±∞ or NaN.
    let specials = [0.0, -0.0, 1e300, -1e300, 1e-300, 3.0, -7.5e-9];
    for n in 0..=70 {
        let mut value = |j: usize| {
            let r = next();
            if j % 7 == 3 {
                specials[(j / 7) % specials.len()]
            } else {
                r * 10f64.powi((r * 40.0) as i32)
            }
        };
        let rows: Vec<Vec<f64>> = (0..4).map(|r| (0..n).map(|j| value(j + 13 * r)).collect()).collect();
        let d: Vec<f64> = (0..n + 2).map(&mut value).collect();
        let expected: Vec<u64> =
            rows.iter().map(|r| r.iter().zip(&d).map(|(w, x)| w * x).sum::<f64>().to_bits()).collect();
        for isa in Isa::available() {
            let sums = sums_in_order(isa, [0, 1, 2, 3].map(|r| rows[r].as_slice()), &d);
            assert_eq!(sums.map(f64::to_bits).to_vec(), expected, "{isa:?}, {n} features");
        }
    }
    // Rows of different lengths: the shortest decides.
    for isa in Isa::available() {
        let sums = sums_in_order(isa, [&[1.0, 2.0, 4.0, 8.0, 16.0][..], &[1.0; 5], &[1.0; 6], &[1.0; 9]], &[1.0; 7]);
        assert_eq!(sums, [31.0, 5.0, 5.0, 5.0], "{isa:?}");
    }
}

/// Kernel timings for the engine's shapes (1,000 × 64 weights, ~700
/// rows for `dots`, ~250 for `dots_signed`, ascending), for every
/// instruction set this CPU runs, in three interleaved rounds. Run with
/// `cargo test --release --lib kernel -- --ignored --nocapture`.
#[test]
#[ignore = "timing, not a check; run explicitly"]
fn kernel_timings() {
    use std::hint::black_box;
    let mut rnd = stream(42);
    let m = Matrix::from_fn(1000, 64, |_, _| rnd() as f32);
    let d: Vec<f32> = (0..m.stride()).map(|_| rnd() as f32).collect();
    let signed: Vec<f32> = (0..m.stride()).map(|c| d[c].abs() * if c % 5 == 0 { 0.75 } else { -0.25 }).collect();
    let pick =
        |p: f64, rnd: &mut dyn FnMut() -> f64| -> Vec<u32> { (0..1000).filter(|_| rnd() < 2.0 * p - 1.0).collect() };
    let rows = pick(0.7, &mut rnd);
    let abs_rows = pick(0.25, &mut rnd);
    let mut out = vec![0.0f32; 1000];
    let mut out2 = vec![[0.0f32; 2]; abs_rows.len()];
    // The same rows as bits, for the grouped bf16 weights.
    let groups = Groups::from_rows(&m);
    let mut words = vec![0u64; 1000usize.div_ceil(64)];
    for &r in &rows {
        words[r as usize / 64] |= 1 << (r % 64);
    }
    // The same weights as 16-bit integers, and the values quantised.
    let ints = integer::IntGroups::from_rows(&m);
    let d64: Vec<f64> = d.iter().map(|&v| f64::from(v)).collect();
    let mut dq = Vec::new();
    let d_norm = d64.iter().map(|v| v * v).sum::<f64>().sqrt();
    let q = integer::quantize(Isa::detect(), &ints, &d64, d_norm, &mut dq).unwrap();
    // An explanation's contributions: 64 features, the top 3.
    let (cw, cd, cm) = contributions(64, 1 << 20, 7);
    let mut top = [(0, 0.0); 3];
    let isas = Isa::available();
    let mut best = vec![[f64::INFINITY; 6]; isas.len()];
    for _round in 0..3 {
        for (&isa, best) in isas.iter().zip(&mut best) {
            let ti = ns_per_call(1000, || {
                integer::dots_int(isa, &ints, black_box(&words), (black_box(&dq), q.scale), black_box(&mut out));
            });
            let tq = ns_per_call(1000, || {
                black_box(integer::quantize(isa, &ints, black_box(&d64), d_norm, black_box(&mut dq)));
            });
            let ts = ns_per_call(1000, || {
                black_box(select_largest(isa, black_box(&cw), black_box(&cd), black_box(&cm), black_box(&mut top)));
            });
            let t = ns_per_call(1000, || dots(isa, &m, black_box(&rows), black_box(&d), black_box(&mut out)));
            let t3 = ns_per_call(1000, || {
                dots_signed(isa, &m, black_box(&abs_rows), black_box(&d), black_box(&signed), black_box(&mut out2));
            });
            let tg =
                ns_per_call(1000, || dots_grouped(isa, &groups, black_box(&words), black_box(&d), black_box(&mut out)));
            for (b, t) in best.iter_mut().zip([t, t3, tg, ts, ti, tq]) {
                *b = b.min(t);
            }
        }
    }
    for (isa, [t, t3, tg, ts, ti, tq]) in isas.iter().zip(best) {
        println!(
            "{isa:?}: dots ({} rows) {t:.0} ns/call, dots_signed ({} rows) {t3:.0} ns/call, dots_grouped (the same \
             rows' groups, all 1,000 offers) {tg:.0} ns/call, dots_int (the same) {ti:.0} ns/call and its \
             quantize {tq:.0} ns/call, select_largest (3 of 64) {ts:.1} ns/call",
            rows.len(),
            abs_rows.len()
        );
    }
}

#[test]
fn ln1p_exp_neg_is_accurate_on_a_dense_grid() {
    let mut worst = 0.0f64;
    let mut z = 0.0f32;
    while z < 120.0 {
        let exact = (-f64::from(z)).exp().ln_1p();
        worst = worst.max((f64::from(ln1p_exp_neg(z)) - exact).abs());
        z += 1.0 / 4096.0;
    }
    assert!(worst < 3e-6, "worst error {worst}");
    assert!(f64::from(KEY_EPS) > 30.0 * 3e-6);
}

#[test]
fn coarse_and_fine_bounds_contain_the_f64_priority_for_all_paths() {
    let mut rnd = stream(7);
    let n = 4099;
    let logits: Vec<f64> = (0..n).map(|i| if i < 3 { [0.0, -299.0, 300.0][i] } else { rnd() * 60.0 }).collect();
    let values: Vec<f64> = (0..n).map(|i| if i == 5 { 0.0 } else { (rnd() * 40.0).exp() }).collect();
    // Offer 7 is not scored; 9 has a value outside the validity; 11 a
    // logit below it; 12 a NaN score.
    let dot: Vec<f32> = (0..n)
        .map(|i| match i {
            7 => f32::NEG_INFINITY,
            11 => -400.0,
            12 => f32::NAN,
            _ => logits[i] as f32,
        })
        .collect();
    let logv: Vec<f32> = (0..n)
        .map(|i| match i {
            9 => f32::NAN,
            _ if values[i] == 0.0 => f32::NEG_INFINITY,
            _ => values[i].ln() as f32,
        })
        .collect();
    let zeros = vec![0.0f32; n];
    let x = BoundsInputs { dot: &dot, base: &zeros, norm: &zeros, slack: &zeros, logv: &logv, error: (0.0, 0.0) };
    let exact = |i: usize| crate::arbitration::priority(crate::model::sigmoid(logits[i]), values[i], 1.0).ln();
    let invalid = |i: usize| matches!(i, 7 | 9 | 11 | 12);
    let mut all = Vec::new();
    for isa in Isa::available() {
        for len in [n, 10, 13] {
            // Shorter runs exercise the tail after the last full block.
            let x = BoundsInputs { dot: &dot[..len], ..x };
            let (mut lo, mut hi) = (vec![0.0; n], vec![0.0; n]);
            assert!(coarse_bounds(isa, &x, &mut lo, &mut hi), "{isa:?}: 9 is outside");
            for i in 0..len {
                if invalid(i) {
                    assert!(lo[i].is_nan() && hi[i].is_nan(), "{isa:?} {i}: not bounded");
                    continue;
                }
                let p = exact(i);
                assert!(f64::from(lo[i]) <= p && p <= f64::from(hi[i]), "{isa:?} {i}: {} <= {p} <= {}", lo[i], hi[i]);
                assert!(hi[i] - lo[i] < 0.7 || values[i] == 0.0, "coarse bounds too loose at {i}");
            }
            assert!(lo[len..].iter().all(|&l| l == 0.0), "{isa:?} wrote past {len}");
            if len == n {
                all.push((lo, hi));
            }
        }
        let plain: Vec<f32> = logv.iter().map(|&v| if v.is_nan() { 0.0 } else { v }).collect();
        let dot: Vec<f32> = dot.iter().map(|&d| if d == -400.0 || d.is_nan() { 0.0 } else { d }).collect();
        let x = BoundsInputs { dot: &dot, logv: &plain, ..x };
        let (mut lo, mut hi) = (vec![0.0; n], vec![0.0; n]);
        assert!(!coarse_bounds(isa, &x, &mut lo, &mut hi), "{isa:?}: all valid");
    }
    for other in &all[1..] {
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&all[0].0), bits(&other.0), "no FMA in the bounds, so all paths give the same bits");
        assert_eq!(bits(&all[0].1), bits(&other.1));
    }
    // Fine bounds, for any list of offers (here all, in reverse), the same
    // bits on every path.
    let offers: Vec<u32> = (0..n as u32).rev().collect();
    let (mut lo, mut hi) = (Vec::new(), Vec::new());
    fine_bounds(Isa::Portable, &x, &offers, &mut lo, &mut hi);
    assert_eq!((lo.len(), hi.len()), (n, n));
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for isa in Isa::available() {
        for len in [0, 1, 15, 16, 17, 33, n] {
            let (mut l, mut h) = (vec![1.0; 3], vec![1.0; 3]);
            fine_bounds(isa, &x, &offers[..len], &mut l, &mut h);
            assert_eq!((bits(&l), bits(&h)), (bits(&lo[..len]), bits(&hi[..len])), "{isa:?}, {len} offers");
        }
    }
    for (j, &o) in offers.iter().enumerate() {
        let i = o as usize;
        if invalid(i) {
            assert!(lo[j].is_nan() && hi[j].is_nan(), "{i}: not bounded");
            continue;
        }
        let p = exact(i);
        assert!(f64::from(lo[j]) <= p && p <= f64::from(hi[j]), "{i}: {} <= {p} <= {}", lo[j], hi[j]);
        assert!(hi[j] - lo[j] < 1e-3 || values[i] == 0.0, "fine bounds too loose at {i}");
    }
}

/// Logit errors widen both kinds of bounds by the error bound, and the
/// bounds still hold for every logit within it.
#[test]
fn bounds_hold_for_every_logit_within_the_error() {
    let mut rnd = stream(11);
    let n = 512;
    let dot: Vec<f32> = (0..n).map(|_| (rnd() * 30.0) as f32).collect();
    let base: Vec<f32> = (0..n).map(|_| (rnd() * 5.0) as f32).collect();
    let norm: Vec<f32> = (0..n).map(|_| (rnd().abs() * 3.0) as f32).collect();
    let slack: Vec<f32> = (0..n).map(|_| (rnd().abs() * 1e-3) as f32).collect();
    let logv: Vec<f32> = (0..n).map(|_| (rnd() * 20.0) as f32).collect();
    let x = BoundsInputs { dot: &dot, base: &base, norm: &norm, slack: &slack, logv: &logv, error: (0.01, 1e-4) };
    let (mut lo, mut hi) = (vec![0.0; n], vec![0.0; n]);
    assert!(!coarse_bounds(Isa::Portable, &x, &mut lo, &mut hi));
    let offers: Vec<u32> = (0..n as u32).collect();
    let (mut flo, mut fhi) = (Vec::new(), Vec::new());
    fine_bounds(Isa::Portable, &x, &offers, &mut flo, &mut fhi);
    // With nonzero errors too, every path gives the same bits.
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for isa in Isa::available() {
        let (mut l, mut h) = (vec![0.0; n], vec![0.0; n]);
        assert!(!coarse_bounds(isa, &x, &mut l, &mut h));
        assert_eq!((bits(&l), bits(&h)), (bits(&lo), bits(&hi)), "{isa:?}: coarse");
        fine_bounds(isa, &x, &offers, &mut l, &mut h);
        assert_eq!((bits(&l), bits(&h)), (bits(&flo), bits(&fhi)), "{isa:?}: fine");
    }
    for i in 0..n {
        let a = f64::from(base[i]) + f64::from(dot[i]);
        let e = 0.01 * f64::from(norm[i]) + 1e-4 + f64::from(slack[i]);
        for t in [-1.0, -0.5, 0.0, 0.5, 1.0] {
            let p = crate::model::sigmoid(a + t * e).ln() + f64::from(logv[i]);
            assert!(f64::from(lo[i]) <= p && p <= f64::from(hi[i]), "coarse {i} at {t}");
            assert!(f64::from(flo[i]) <= p && p <= f64::from(fhi[i]), "fine {i} at {t}");
        }
    }
}

/// `kth_largest` is the k-th largest value (NaN never counting) on every
/// path, for lengths around the blocks of eight, ties, NaN and sorted
/// input (where every block has values above the smallest kept).
#[test]
fn kth_largest_is_exact_on_every_path() {
    let mut next = stream(9);
    for len in [0, 1, 5, 7, 8, 9, 15, 16, 17, 51, 63, 64, 65, 100, 199] {
        for case in 0..5 {
            let values: Vec<f32> = (0..len)
                .map(|i| match case {
                    0 => (next() * 100.0) as f32,
                    1 => i as f32,
                    2 if i % 3 == 0 => f32::NAN,
                    3 => (i % 3) as f32,
                    _ => f32::NEG_INFINITY,
                })
                .collect();
            let mut sorted: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            for k in [1, 2, 3, 5, 7, 8, 9, 16, 17, 40] {
                let exact = sorted.get(k - 1).copied().unwrap_or(f32::NEG_INFINITY);
                for isa in Isa::available() {
                    let tau = kth_largest(isa, &values, k, &mut Vec::new());
                    assert_eq!(tau, exact, "{isa:?}, {len} values, case {case}, k = {k}");
                }
            }
        }
    }
}

/// `kth_largest_at_most` is at most the k-th largest value, and at least
/// `k` values reach it, on every path (the SIMD ones keep two values per
/// lane; sorted input puts several large values in one lane).
#[test]
fn kth_largest_at_most_is_a_reached_lower_bound() {
    let mut next = stream(5);
    for len in [0, 1, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 257] {
        for case in 0..6 {
            let values: Vec<f32> = (0..len)
                .map(|i| match case {
                    0 => (next() * 100.0) as f32,
                    1 => i as f32,
                    2 => -(i as f32),
                    3 if i % 5 == 0 => f32::NAN,
                    4 => (i % 3) as f32,
                    _ => ((next() * 4.0) as i32) as f32,
                })
                .collect();
            let mut sorted: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            for k in [1, 2, 3, 5, 16, 17, 40, 70] {
                let exact = sorted.get(k - 1).copied().unwrap_or(f32::NEG_INFINITY);
                for isa in Isa::available() {
                    let tau = kth_largest_at_most(isa, &values, k, &mut Vec::new());
                    let ctx = format!("{isa:?}, {len} values, case {case}, k = {k}");
                    assert!(tau <= exact, "{ctx}: {tau} > {exact}");
                    let reaching = values.iter().filter(|&&v| v >= tau).count();
                    assert!(reaching >= k || sorted.len() < k, "{ctx}: {reaching} reach {tau}");
                    assert!(tau == f32::NEG_INFINITY || values.contains(&tau), "{ctx}");
                    if isa == Isa::Portable {
                        assert_eq!(tau, exact, "{ctx}: the portable path is exact");
                    }
                }
            }
            assert_eq!(kth_largest_at_most(Isa::detect(), &values, 0, &mut Vec::new()), f32::INFINITY);
        }
    }
}

/// `passed_words` marks exactly the `Passed` codes, on every path and for
/// lengths that are and are not multiples of 64.
#[test]
fn passed_words_mark_the_passed_codes() {
    use crate::compiled::Code;
    let all = [Code::Held, Code::Extra, Code::Channel, Code::History, Code::Target, Code::Passed, Code::Driven];
    let mut next = stream(3);
    for len in [0usize, 1, 31, 32, 63, 64, 65, 128, 200, 1000] {
        let codes: Vec<Code> = (0..len).map(|_| all[((next() + 1.0) * 3.5) as usize % all.len()]).collect();
        let expected: Vec<u64> = (0..len.div_ceil(64))
            .map(|w| (0..64).filter(|b| codes.get(w * 64 + b) == Some(&Code::Passed)).fold(0, |m, b| m | 1 << b))
            .collect();
        for isa in Isa::available() {
            let mut out = vec![u64::MAX; 3];
            passed_words(isa, &codes, &mut out);
            assert_eq!(out, expected, "{isa:?}, {len} codes");
        }
    }
}

/// `proxy_decisions` against its definition, on every path: signed sums
/// above, at and below `±e` (by an ulp either way), NaN, infinite;
/// lengths around the 16-lane rounds; rows out of range skipped.
#[test]
fn proxy_decisions_follow_their_definition() {
    let mut next = stream(5);
    for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 250] {
        let n_offers = 300;
        // Norms in 64ths and a band in powers of two: each `e` is an f32,
        // so that the signed sums can sit exactly on it.
        let norms: Vec<f32> = (0..n_offers).map(|_| ((next() + 1.5) * 64.0).round() as f32 / 64.0).collect();
        let band = (2f64.powi(-10), 2f64.powi(-20));
        // Distinct rows in offer order, once with one out of range at the end.
        let mut rows: Vec<u32> = (0..n_offers as u32).filter(|_| next() < 0.0).collect();
        rows.truncate(n);
        if n == 33 {
            rows.push(n_offers as u32 + 3);
        }
        let scores: Vec<[f32; 2]> = rows
            .iter()
            .map(|&o| {
                let e = norms.get(o as usize).map_or(1.0, |&m| band.0 * f64::from(m) + band.1);
                let at = |v: f64| v as f32;
                let s = match ((next() + 1.0) * 6.0) as usize {
                    0 => at(e),
                    1 => f32::from_bits(at(e).to_bits() + 1),
                    2 => at(-e),
                    3 => f32::from_bits(at(-e).to_bits() + 1),
                    4 => f32::NAN,
                    5 => [f32::INFINITY, f32::NEG_INFINITY][usize::from(next() < 0.0)],
                    _ => (next() * 3.0 * e) as f32,
                };
                [next() as f32, s]
            })
            .collect();
        let mut expected = (vec![f32::NEG_INFINITY; n_offers], Vec::new(), Vec::new());
        for (&o, &[dot, s]) in rows.iter().zip(&scores) {
            let o = o as usize;
            let Some(&m) = norms.get(o) else { continue };
            let (e, s) = (band.0 * f64::from(m) + band.1, f64::from(s));
            if s > e {
                expected.1.push(o as u32);
            } else {
                expected.0[o] = dot;
                if s.is_nan() || s >= -e {
                    expected.2.push(o as u32);
                }
            }
        }
        assert!(n < 100 || (!expected.1.is_empty() && !expected.2.is_empty()), "both outcomes occur");
        let exact = rows.iter().zip(&scores).filter(|(&o, &[_, s])| {
            norms.get(o as usize).is_some_and(|&m| f64::from(s).abs() == band.0 * f64::from(m) + band.1)
        });
        assert!(n < 100 || exact.count() > 10, "signed sums exactly at ±e");
        let inputs = ProxyInputs { rows: &rows, scores: &scores, norms: &norms, band };
        for isa in Isa::available() {
            let mut dense = vec![f32::NEG_INFINITY; n_offers];
            let (mut driven, mut near) = (vec![7], vec![9]);
            proxy_decisions(isa, &inputs, &mut dense, &mut driven, &mut near);
            let same = dense.iter().zip(&expected.0).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{isa:?}, {n} rows: logits");
            assert_eq!((&driven, &near), (&expected.1, &expected.2), "{isa:?}, {n} rows");
        }
    }
}

/// `lower_where` lowers exactly the codes whose bits are set, to the given
/// code where it is smaller, on every path and for lengths that are and
/// are not multiples of 64 (bits past the end are ignored).
#[test]
fn lower_where_lowers_the_codes_of_set_bits() {
    use crate::compiled::Code;
    let all = [Code::Held, Code::Extra, Code::Channel, Code::History, Code::Target, Code::Passed, Code::Driven];
    let mut next = stream(11);
    for len in [0usize, 1, 31, 32, 33, 63, 64, 65, 128, 200, 1000] {
        let codes: Vec<Code> = (0..len).map(|_| all[((next() + 1.0) * 3.5) as usize % all.len()]).collect();
        let mut words: Vec<u64> = (0..=len.div_ceil(64)).map(|_| next().to_bits() ^ next().to_bits() << 7).collect();
        words[0] |= 1;
        for lower in [Code::Extra, Code::Target, Code::Passed] {
            let expected: Vec<Code> = (0..len)
                .map(|o| if words[o / 64] >> (o % 64) & 1 != 0 { codes[o].min(lower) } else { codes[o] })
                .collect();
            for isa in Isa::available() {
                let mut out = codes.clone();
                lower_where(isa, &mut out, &words, lower);
                assert_eq!(out, expected, "{isa:?}, {len} codes, to {lower:?}");
            }
        }
    }
}

/// `centre` gives the same per-feature values, bit for bit, on every path,
/// and sums within rounding of the portable (feature-order) ones, for
/// lengths around the AVX-512 block of eight.
#[test]
fn centre_agrees_across_paths() {
    let mut rnd = stream(23);
    for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 64, 65, 70] {
        let x: Vec<f64> = (0..n)
            .map(|i| match i {
                4 => -0.0,
                5 => 1e-310,
                _ => rnd() * 10.0,
            })
            .collect();
        let baselines: Vec<f64> = (0..n).map(|i| if i % 4 == 0 { 0.0 } else { rnd() }).collect();
        let masks: Vec<u32> = (0..n).map(|i| if i % 3 == 0 { 1 << (i % 5) } else { 0 }).collect();
        let proxies: Vec<u32> = (0..n).map(|i| if i % 2 == 1 { 1 << (i % 7) } else { 0 }).collect();
        for not_usable in [0u32, 0b1010_1010, u32::MAX] {
            let inputs =
                CentreInputs { x: &x, baselines: &baselines, masks: &masks, proxies: &proxies, not_usable, theta: 0.3 };
            let runs: Vec<_> = Isa::available()
                .into_iter()
                .map(|isa| {
                    let (mut d, mut q, mut d32, mut c32) =
                        (vec![7.0; n], vec![true; n], vec![7.0; n + 3], vec![7.0; n]);
                    let out = CentreOutputs { d: &mut d, is_proxy: &mut q, d32: &mut d32, c32: &mut c32 };
                    let sums = centre(isa, &inputs, out);
                    let bits64 = d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    let bits32 = d32.iter().chain(&c32).map(|v| v.to_bits()).collect::<Vec<_>>();
                    (isa, sums, bits64, q, bits32)
                })
                .collect();
            let (_, s0, d0, q0, f0) = &runs[0];
            // The portable path is the definition.
            for i in 0..n {
                let masked = masks[i] & not_usable != 0;
                let q = proxies[i] & not_usable != 0;
                let d = if masked { 0.0 } else { x[i] - baselines[i] };
                assert_eq!((d0[i], q0[i]), (d.to_bits(), q), "n {n}, feature {i}");
                assert_eq!(
                    (f0[i], f0[n + 3 + i]),
                    ((d as f32).to_bits(), ((d.abs() * (f64::from(u8::from(q)) - 0.3)) as f32).to_bits())
                );
            }
            assert_eq!(f0[n..n + 3].iter().filter(|&&b| b == 7.0f32.to_bits()).count(), 3, "padding untouched");
            for (isa, s, d, q, f) in &runs[1..] {
                assert_eq!((d, q, f), (d0, q0, f0), "{isa:?}, n {n}, not usable {not_usable:b}");
                assert_eq!(s.active_proxy, s0.active_proxy, "{isa:?}, n {n}");
                for (a, b) in [
                    (s.abs_sum, s0.abs_sum),
                    (s.square_sum, s0.square_sum),
                    (s.c_abs_sum, s0.c_abs_sum),
                    (s.c_square_sum, s0.c_square_sum),
                ] {
                    assert!((a - b).abs() <= 1e-12 * b.abs(), "{isa:?}, n {n}: {a} against {b}");
                }
            }
        }
    }
}

/// A proxy counts as active only when its feature is off its baseline.
#[test]
fn centre_counts_only_proxies_off_their_baseline() {
    for n in [3, 8, 17] {
        let (x, ones) = (vec![2.0; n], vec![1u32; n]);
        let mut baselines = vec![2.0; n];
        for (masks, off, active) in
            [(vec![1; n], None, false), (vec![0; n], None, false), (vec![0; n], Some(n - 1), true)]
        {
            if let Some(i) = off {
                baselines[i] = 1.0;
            }
            let inputs =
                CentreInputs { x: &x, baselines: &baselines, masks: &masks, proxies: &ones, not_usable: 1, theta: 0.5 };
            for isa in Isa::available() {
                let (mut d, mut q, mut d32, mut c32) = (vec![0.0; n], vec![false; n], vec![0.0; n], vec![0.0; n]);
                let out = CentreOutputs { d: &mut d, is_proxy: &mut q, d32: &mut d32, c32: &mut c32 };
                let sums = centre(isa, &inputs, out);
                assert_eq!(sums.active_proxy, active, "{isa:?}, n {n}, off {off:?}");
                assert!(q.iter().all(|&q| q));
            }
        }
    }
}

/// The value cut marks the offers whose `ln(value × weight)` plus its
/// margin reaches `tau`, and those it cannot judge (NaN), on every path.
#[test]
fn reaching_words_mark_the_offers_that_may_reach_tau() {
    let logv = [1.0, 3.0, f32::NAN, f32::NEG_INFINITY, 2.0, 2.0 - 1e-3, 5.0, 2.0 - 5e-5];
    let bits = |isa, tau| {
        let mut out = vec![7];
        reaching_words(isa, &logv, tau, &mut out);
        out
    };
    for isa in Isa::available() {
        // 2.0 and 2.0 − 5·10⁻⁵ reach (the margin is about 10⁻⁴); 2.0 − 10⁻³,
        // 1.0 and −∞ do not; NaN does.
        assert_eq!(bits(isa, 2.0), [0b1101_0110], "{isa:?}");
        assert_eq!(bits(isa, f32::NEG_INFINITY), [0xff], "{isa:?}: everything reaches −∞");
        assert_eq!(bits(isa, f32::INFINITY), [0b100], "{isa:?}: only NaN reaches +∞");
        let mut out = vec![1, 2, 3];
        reaching_words(isa, &[], 0.0, &mut out);
        assert!(out.is_empty(), "{isa:?}");
    }
}

/// Every path sets the bits the definition sets, at every length (the
/// SIMD paths do whole words, then the tail) and for values on both
/// sides of the margin.
#[test]
fn reaching_words_agree_across_paths() {
    let mut next = stream(7);
    // Odd values, and some within a few ulps of `tau = 1`'s margin.
    let specials = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, 2e4, -2e4, 0.0, 1.0 - 1.0008e-4, 1.0 - 1.0012e-4];
    let mut logv: Vec<f32> =
        (0..300).map(|i| if i % 11 == 0 { specials[i / 11 % specials.len()] } else { 3.0 * next() as f32 }).collect();
    for (i, v) in logv.iter_mut().enumerate().filter(|(i, _)| i % 11 == 5) {
        // Down from 1 by 1,670 to 1,751 ulps: across the margin's edge
        // (about 1.001·10⁻⁴, some 1,680 ulps).
        *v = f32::from_bits(1.0f32.to_bits() - 1670 - (i as u32 / 11) * 3);
    }
    for len in (0..140).chain([191, 192, 193, 255, 256, 257, 300]) {
        let logv = &logv[..len];
        for tau in [0.0f32, 1.0, -1.0, 2.0 - 5e-5, f32::NEG_INFINITY] {
            let mut expected = vec![0u64; len.div_ceil(64)];
            for (o, &lv) in logv.iter().enumerate() {
                expected[o / 64] |= u64::from(reaches(lv, tau)) << (o % 64);
            }
            for isa in Isa::available() {
                let mut got = vec![u64::MAX; 9];
                reaching_words(isa, logv, tau, &mut got);
                assert_eq!(got, expected, "{isa:?}, {len} offers, tau {tau}");
            }
        }
    }
}

#[test]
fn sums_at_add_the_listed_entries() {
    let (a, b) = ([1.0, 2.0, 4.0], [10.0, 20.0, f32::NEG_INFINITY, 99.0]);
    let mut out = vec![5.0];
    sums_at(&[2, 0, 1, 1], (&a, &b), &mut out);
    assert_eq!(out, [f32::NEG_INFINITY, 11.0, 22.0, 22.0]);
    sums_at(&[1, 3], (&a, &b), &mut out);
    assert_eq!(out[0], 22.0);
    assert!(out[1].is_nan(), "a row out of range of either gives NaN");
}

/// Contributions for [`select_largest`]: about `2·ties + 1` distinct
/// sizes (few: many equal ones), some zero, some masked.
fn contributions(n: usize, ties: u32, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut next = stream(seed);
    let w = (0..n).map(|_| (next() * f64::from(ties)).round() * 0.25).collect();
    let d = (0..n).map(|_| if next() < -0.8 { 0.0 } else { next().signum() }).collect();
    let m = (0..n).map(|_| if next() < -0.6 { 0.0 } else { 1.0 }).collect();
    (w, d, m)
}

#[test]
fn select_largest_agrees_with_the_scalar_rule_on_every_isa() {
    for n in (0..70).chain([127, 128, 129, 200, 255, 256, 257, 300]) {
        for ties in [1, 3, 1000, 1 << 20] {
            let (w, d, m) = contributions(n, ties, n as u64 * 31 + u64::from(ties));
            for k in 1..=10 {
                let mut expected = vec![(0, 0.0); k];
                let len = select_scalar(&w, &d, &m, &mut expected);
                expected.truncate(len);
                for isa in Isa::available() {
                    let mut top = vec![(99, 9.0); k];
                    let len = select_largest(isa, &w, &d, &m, &mut top);
                    top.truncate(len);
                    assert_eq!(top, expected, "{isa:?}, {n} features, {ties} sizes, k = {k}");
                }
            }
        }
    }
}

#[test]
fn select_largest_hands_nan_to_the_scalar_rule() {
    let (mut w, d, m) = contributions(64, 1000, 5);
    w[17] = f64::NAN;
    let mut expected = [(0, 0.0); 3];
    let len = select_scalar(&w, &d, &m, &mut expected);
    for isa in Isa::available() {
        let mut top = [(99, 9.0); 3];
        assert_eq!(select_largest(isa, &w, &d, &m, &mut top), len, "{isa:?}");
        // NaN is not equal to itself: compare the bits.
        let bits = |t: &[(usize, f64)]| t.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(&top[..len]), bits(&expected[..len]), "{isa:?}");
    }
}

/// The engine's way: the picks of many rows at once, each finished on its
/// own. Rows with a NaN, with nothing to cite and past 64 features are
/// among them, so every kind of pick is met (checked on AVX-512).
#[test]
fn picks_then_select_picked_agree_with_the_scalar_rule_on_every_isa() {
    let n = 64;
    let (_, d, m) = contributions(n, 3, 7);
    let mut rows: Vec<Vec<f64>> = (0..40).map(|r| contributions(n, [1, 3, 1000][r % 3], 100 + r as u64).0).collect();
    rows[3][17] = f64::NAN;
    rows[5].iter_mut().for_each(|w| *w = 0.0);
    rows[8][..n - 2].iter_mut().for_each(|w| *w = 0.0);
    let long = contributions(n + 1, 1000, 9);
    for k in 0..=10 {
        for isa in Isa::available() {
            let mut picks = vec![Pick::Full; 3];
            super::picks(isa, rows.iter().map(Vec::as_slice), &d, &m, k, &mut picks);
            assert_eq!(picks.len(), rows.len(), "{isa:?}, k = {k}");
            for (r, (w, &pick)) in rows.iter().zip(&picks).enumerate() {
                let mut expected = vec![(0, 0.0); k];
                let len = if k == 0 { 0 } else { select_scalar(w, &d, &m, &mut expected) };
                let mut top = vec![(99, 9.0); k];
                let got = select_picked(isa, pick, w, &d, &m, &mut top);
                let bits = |t: &[(usize, f64)]| t.iter().map(|p| (p.0, p.1.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&top[..got]), bits(&expected[..len]), "{isa:?}, row {r}, k = {k}, {pick:?}");
            }
            let mut one = Vec::new();
            super::picks(isa, std::iter::once(long.0.as_slice()), &long.1, &long.2, k, &mut one);
            let mut expected = vec![(0, 0.0); k];
            let len = if k == 0 { 0 } else { select_scalar(&long.0, &long.1, &long.2, &mut expected) };
            let mut top = vec![(99, 9.0); k];
            let got = select_picked(isa, one[0], &long.0, &long.1, &long.2, &mut top);
            assert_eq!(top[..got], expected[..len], "{isa:?}, 65 features, k = {k}");
            if isa == Isa::Avx512 && (1..=8).contains(&k) {
                assert_eq!(picks[3], Pick::Scalar, "a NaN, k = {k}");
                assert_eq!(picks[5], Pick::Rounds, "nothing to cite, k = {k}");
                if k >= 3 {
                    assert_eq!(picks[8], Pick::Rounds, "at most two of eight sets to cite, k = {k}");
                }
                assert!(matches!(picks[2], Pick::Listed(w) if w.count_ones() as usize >= k), "k = {k}");
                assert_eq!(one[0], Pick::Rounds, "65 features, k = {k}");
            }
        }
    }
}

#[test]
fn proxy_sums_are_within_their_bound_on_every_isa() {
    let mut next = stream(11);
    for n in (0..40).chain([63, 64, 65, 100, 257]) {
        // Magnitudes far apart, so that the order of the additions shows.
        let w: Vec<f64> = (0..n).map(|_| next() * f64::powi(2.0, (next() * 30.0) as i32)).collect();
        let d: Vec<f64> = (0..n).map(|_| next()).collect();
        let is_proxy: Vec<bool> = (0..n).map(|_| next() > 0.3).collect();
        let sequential = crate::guard::proxy_share(w.iter().zip(&d).map(|(w, d)| w * d).zip(is_proxy.iter().copied()));
        let in_order = proxy_sums_scalar(&w, &d, &is_proxy, [0.0; 2]);
        let bound = 2.0 * n as f64 * f64::EPSILON;
        for isa in Isa::available() {
            let sums = proxy_sums(isa, &w, &d, &is_proxy);
            // Each within `(n − 1)·2⁻⁵³` of the exact sum, so of each other.
            for (s, e) in sums.iter().zip(in_order) {
                assert!((s - e).abs() <= bound * e, "{isa:?}, {n} features: {s} against {e}");
            }
            if isa == Isa::Portable {
                assert_eq!(sums.map(f64::to_bits), in_order.map(f64::to_bits));
                let share = if sums[1] > 0.0 { sums[0] / sums[1] } else { 0.0 };
                assert_eq!(share.to_bits(), sequential.to_bits(), "the portable sums are the sequential ones");
            }
        }
    }
}
