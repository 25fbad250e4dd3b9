//! The AVX2+FMA kernels, chosen at run time (see [`super::Isa`]).

use std::arch::x86_64::{
    __m128, __m256, _mm256_add_ps, _mm256_and_ps, _mm256_and_si256, _mm256_blendv_ps, _mm256_castps256_ps128,
    _mm256_castsi256_ps, _mm256_cmpeq_epi32, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps, _mm256_loadu_ps,
    _mm256_loadu_si256, _mm256_permute2f128_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32,
    _mm256_setzero_ps, _mm256_slli_epi32, _mm256_storeu_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps,
    _mm_movehl_ps, _mm_shuffle_ps,
};

use super::{by_blocks, Groups, Matrix, GROUP, LANES};

/// [`super::append_positions`], a byte of the word at a time.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn append_positions(word: u64, base: u32, out: &mut Vec<u32>) {
    // Each store writes eight lanes from the current length on; the
    // length grows by at most eight a byte, so 64 spare slots suffice.
    out.reserve(64);
    let mut len = out.len();
    let p = out.as_mut_ptr();
    for b in 0..8u32 {
        // SAFETY: `len + 8 <= old len + 64 <= capacity` (at most 7 bytes
        // of 8 positions precede).
        len += unsafe { store_positions(p.add(len), (word >> (8 * b)) as u8, base + 8 * b) };
    }
    // SAFETY: the first `len` values are initialised: the old ones, and
    // each byte's positions, written above before the length passed them.
    unsafe { out.set_len(len) };
}

/// [`super::largest`], testing a block of eight at a time against the
/// smallest kept; the values above it are inserted by the scalar rule. The
/// engine's lists are short (tens of values), and each insertion into a
/// sorted pair of registers waits on the one before, about three times as
/// long as a scalar insertion: measured in isolation, an earlier version
/// that inserted in registers was 2.4 to 2.7 times slower for 8 to 199
/// random values (in the engine the difference hides behind other work
/// up to 1,000 offers).
///
/// # Safety
///
/// The CPU must support AVX2; `best` is not empty.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn largest(values: &[f32], best: &mut [f32]) {
    use std::arch::x86_64::{_mm256_cmp_ps, _mm256_loadu_ps, _mm256_movemask_ps, _mm256_set1_ps, _CMP_GT_OQ};
    let k = best.len();
    let blocks = values.chunks_exact(LANES);
    let rest = blocks.remainder();
    for block in blocks {
        // SAFETY: `block` holds LANES f32.
        let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
        // NaN is never above.
        let mut above = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_set1_ps(best[k - 1])));
        while above != 0 {
            super::keep_larger(best, block[above.trailing_zeros() as usize]);
            above &= above - 1;
        }
    }
    for &x in rest {
        super::keep_larger(best, x);
    }
}

/// [`super::kth_largest_at_most`]'s candidates: the two largest values of
/// each of the eight lanes (−∞ where a lane has fewer), into `best[..16]`.
/// Branch-free: per block, `first = max(v, first)` and `second =
/// max(min(first, v), second)`, with the operands in the order that lets a
/// NaN fall through (`max_ps` and `min_ps` give their second operand when
/// one is NaN). The tail goes into lane 0's place by the same rule.
///
/// # Safety
///
/// The CPU must support AVX2; `best` holds at least 16 values.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn two_largest_per_lane<'a>(values: &[f32], best: &'a mut [f32]) -> &'a [f32] {
    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_set1_ps, _mm256_storeu_ps};
    let blocks = values.chunks_exact(LANES);
    let rest = blocks.remainder();
    let (mut first, mut second) = (_mm256_set1_ps(f32::NEG_INFINITY), _mm256_set1_ps(f32::NEG_INFINITY));
    for block in blocks {
        // SAFETY: `block` holds LANES f32.
        let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
        second = _mm256_max_ps(_mm256_min_ps(first, v), second);
        first = _mm256_max_ps(v, first);
    }
    let best = &mut best[..2 * LANES];
    // SAFETY: `best` holds 2 · LANES f32.
    unsafe {
        _mm256_storeu_ps(best.as_mut_ptr(), first);
        _mm256_storeu_ps(best.as_mut_ptr().add(LANES), second);
    }
    for &v in rest {
        let (f, s) = (best[0], best[LANES]);
        best[LANES] = if v.is_nan() { s } else { s.max(f.min(v)) };
        best[0] = if v.is_nan() { f } else { f.max(v) };
    }
    best
}

/// [`super::append_positions_at_least`], a block of eight at a time.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn append_positions_at_least(values: &[f32], tau: f32, out: &mut Vec<u32>) {
    use std::arch::x86_64::{_mm256_cmp_ps, _mm256_loadu_ps, _mm256_movemask_ps, _mm256_set1_ps, _CMP_GE_OQ};
    let t = _mm256_set1_ps(tau);
    let blocks = values.chunks_exact(LANES);
    let full = values.len() - blocks.remainder().len();
    // Each block stores eight lanes at the current length, which has
    // grown by at most `LANES` per earlier block: `full` spare slots do.
    out.reserve(full);
    let mut len = out.len();
    let p = out.as_mut_ptr();
    for (b, block) in blocks.enumerate() {
        // SAFETY: `block` holds LANES f32.
        let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
        let mask = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(v, t)) as u8;
        // SAFETY: `len + LANES <= old len + (b + 1)·LANES <= old len +
        // full <= capacity`.
        len += unsafe { store_positions(p.add(len), mask, (b * LANES) as u32) };
    }
    // SAFETY: the first `len` values are initialised (the old ones, and
    // each block's positions before the length passed them).
    unsafe { out.set_len(len) };
    out.extend((full..values.len()).filter(|&i| values[i] >= tau).map(|i| i as u32));
}

/// [`super::reaching_words`] for the first `logv.len() / 64` words, eight
/// offers at a time, with the operations of `reaches`; returns how
/// many offers it decided (the caller does the rest).
///
/// # Safety
///
/// The CPU must support AVX2; `out` must have a word for every 64 offers
/// of `logv`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn reaching_words(logv: &[f32], tau: f32, out: &mut [u64]) -> usize {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm256_andnot_ps, _mm256_cmp_ps, _mm256_min_ps, _mm256_movemask_ps, _mm256_mul_ps, _mm256_set1_ps, _CMP_NLT_UQ,
    };
    let c = |v: f32| _mm256_set1_ps(v);
    let (one, sign, tau_v) = (c(1.0), c(-0.0), c(tau));
    // Whole words, eight blocks each.
    let words = (logv.len() / 64).min(out.len());
    for (w, word) in out[..words].iter_mut().enumerate() {
        let mut bits = 0u64;
        for b in 0..8 {
            // SAFETY: `64w + 8b + 8 <= 64·words <= logv.len()`.
            let lv = unsafe { _mm256_loadu_ps(logv.as_ptr().add(64 * w + 8 * b)) };
            let m = _mm256_min_ps(_mm256_andnot_ps(sign, lv), c(k::LV_CAP));
            let margin = _mm256_mul_ps(
                _mm256_add_ps(_mm256_mul_ps(c(k::EPS), _mm256_add_ps(m, one)), c(super::KEY_EPS)),
                c(k::MARGIN_WIDEN),
            );
            let stays = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NLT_UQ>(_mm256_add_ps(lv, margin), tau_v)) as u8;
            bits |= u64::from(stays) << (8 * b);
        }
        *word = bits;
    }
    64 * words
}

/// [`super::fine_bounds`] eight offers at a time: the AVX-512 version's
/// operations in eight lanes, with vector masks, so the bits are those of
/// the portable path.
///
/// # Safety
///
/// The CPU must support AVX2; every offer must be below the length of each
/// of `x`'s slices, and those lengths below 2³¹ (the gathers take signed
/// 32-bit indices).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn fine_bounds(x: &super::BoundsInputs<'_>, offers: &[u32], lo: &mut Vec<f32>, hi: &mut Vec<f32>) {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm256_andnot_ps, _mm256_blendv_ps, _mm256_cmp_ps, _mm256_loadu_si256, _mm256_mask_i32gather_ps, _mm256_min_ps,
        _mm256_mul_ps, _mm256_set1_ps, _mm256_sub_ps, _CMP_GE_OQ, _CMP_NEQ_UQ, _CMP_UNORD_Q,
    };
    let n = offers.len();
    lo.clear();
    hi.clear();
    lo.reserve(n);
    hi.reserve(n);
    let c = |v: f32| _mm256_set1_ps(v);
    let (scale, floor) = (c(x.error.0), c(x.error.1));
    let (zero, one, nan, neg_inf, sign) = (_mm256_setzero_ps(), c(1.0), c(f32::NAN), c(f32::NEG_INFINITY), c(-0.0));
    let mut j = 0;
    while j < n {
        let len = (n - j).min(LANES);
        // The block's offers, padded with offer 0, which the mask keeps
        // from being read.
        let mut block = [0u32; LANES];
        block[..len].copy_from_slice(&offers[j..j + len]);
        let lanes: [i32; LANES] = std::array::from_fn(|i| if i < len { -1 } else { 0 });
        // SAFETY: `block` and `lanes` hold LANES values; the gathers read
        // only the lanes of `mask`, offers below each slice's length (the
        // caller's contract).
        let (dot, b, w, s, lv) = unsafe {
            let idx = _mm256_loadu_si256(block.as_ptr().cast());
            let mask = _mm256_castsi256_ps(_mm256_loadu_si256(lanes.as_ptr().cast()));
            let gather = |v: &[f32]| _mm256_mask_i32gather_ps::<4>(nan, v.as_ptr(), idx, mask);
            (gather(x.dot), gather(x.base), gather(x.norm), gather(x.slack), gather(x.logv))
        };
        // As `Bound::new`.
        let scored = _mm256_cmp_ps::<_CMP_NEQ_UQ>(dot, neg_inf);
        let a = _mm256_and_ps(scored, _mm256_add_ps(b, dot));
        let e = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(scale, w), floor), s), c(k::E_WIDEN));
        let valid_from = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_sub_ps(a, e), c(k::VALID_FROM));
        let valid = _mm256_and_ps(scored, _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(lv, lv), valid_from));
        let a = _mm256_min_ps(a, c(k::A_CAP));
        // As `Bound::fine`.
        let abs_a = _mm256_andnot_ps(sign, a);
        let key = _mm256_add_ps(lv, _mm256_sub_ps(_mm256_min_ps(a, zero), ln1p_exp_neg(abs_a)));
        let abs_lv = _mm256_min_ps(_mm256_andnot_ps(sign, lv), c(k::LV_CAP));
        let rounding = _mm256_mul_ps(c(k::EPS), _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(abs_a, e), abs_lv), one));
        let margin = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(e, c(super::KEY_EPS)), rounding), c(k::MARGIN_WIDEN));
        let (mut l, mut h) = ([0.0f32; LANES], [0.0f32; LANES]);
        // SAFETY: `l` and `h` hold LANES f32.
        unsafe {
            _mm256_storeu_ps(l.as_mut_ptr(), _mm256_blendv_ps(nan, _mm256_sub_ps(key, margin), valid));
            _mm256_storeu_ps(h.as_mut_ptr(), _mm256_blendv_ps(nan, _mm256_add_ps(key, margin), valid));
        }
        lo.extend_from_slice(&l[..len]);
        hi.extend_from_slice(&h[..len]);
        j += LANES;
    }
}

/// [`super::ln1p_exp_neg`] in eight lanes, operation for operation.
///
/// # Safety
///
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn ln1p_exp_neg(z: __m256) -> __m256 {
    use std::arch::x86_64::{
        _mm256_add_epi32, _mm256_castps_si256, _mm256_div_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_set1_ps,
        _mm256_slli_epi32, _mm256_sub_epi32, _mm256_sub_ps, _mm256_xor_ps,
    };
    let c = |v: f32| _mm256_set1_ps(v);
    let magic = c(super::MAGIC);
    let z = _mm256_min_ps(z, c(40.0));
    let minus_z = _mm256_xor_ps(z, c(-0.0));
    let x = _mm256_mul_ps(minus_z, c(std::f32::consts::LOG2_E));
    let shifted = _mm256_add_ps(x, magic);
    let r = _mm256_sub_ps(shifted, magic);
    let n = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_castps_si256(magic));
    let g = _mm256_mul_ps(_mm256_sub_ps(x, r), c(std::f32::consts::LN_2));
    // Horner from the innermost term, as the scalar path folds.
    let mut p = c(super::EXP_TERMS[0]);
    for &coefficient in &super::EXP_TERMS[1..] {
        p = _mm256_add_ps(c(coefficient), _mm256_mul_ps(g, p));
    }
    let t = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32::<23>(n)));
    let s = _mm256_div_ps(t, _mm256_add_ps(c(2.0), t));
    let s2 = _mm256_mul_ps(s, s);
    let mut q = c(super::ATANH_TERMS[0]);
    for &coefficient in &super::ATANH_TERMS[1..] {
        q = _mm256_add_ps(c(coefficient), _mm256_mul_ps(s2, q));
    }
    _mm256_mul_ps(_mm256_mul_ps(c(2.0), s), q)
}

/// Stores at `p` the positions of the set bits of `byte`, plus `base`,
/// as eight u32 lanes (those past the count are garbage), and returns
/// how many bits are set.
///
/// # Safety
///
/// The CPU must support AVX2; `p` is valid for writing eight u32.
#[inline(always)]
#[allow(clippy::cast_ptr_alignment)] // `storeu` takes an unaligned pointer
unsafe fn store_positions(p: *mut u32, byte: u8, base: u32) -> usize {
    use std::arch::x86_64::{__m256i, _mm256_add_epi32, _mm256_set1_epi32, _mm256_storeu_si256};
    // SAFETY: the caller gives room for eight u32 at `p`.
    unsafe {
        let v = bit_positions(byte);
        _mm256_storeu_si256(p.cast::<__m256i>(), _mm256_add_epi32(v, _mm256_set1_epi32(base as i32)));
    }
    byte.count_ones() as usize
}

/// The positions of the set bits of `byte`, ascending, in the first lanes
/// of eight u32 (from the table of byte positions).
///
/// # Safety
///
/// The CPU must support AVX2.
#[inline(always)]
#[allow(clippy::cast_ptr_alignment)] // `loadl` takes an unaligned pointer
unsafe fn bit_positions(byte: u8) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::{__m128i, _mm256_cvtepu8_epi32, _mm_loadl_epi64};
    let positions = &super::BYTE_POSITIONS[usize::from(byte)];
    // SAFETY: `positions` holds 8 bytes.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(positions.as_ptr().cast::<__m128i>()) })
}

/// [`super::proxy_sums`]: two accumulators of four lanes for each sum (so
/// chains of `n / 8` additions), each feature's flag widened from its
/// byte to a lane mask; the last `n % 8` features by the scalar loop.
///
/// # Safety
///
/// The CPU must support AVX2; `w`, `d` and `is_proxy` have the same length.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn proxy_sums(w: &[f64], d: &[f64], is_proxy: &[bool]) -> [f64; 2] {
    use std::arch::x86_64::{
        __m256d, _mm256_add_pd, _mm256_and_pd, _mm256_andnot_pd, _mm256_castsi256_pd, _mm256_cmpgt_epi64,
        _mm256_cvtepu8_epi64, _mm256_loadu_pd, _mm256_mul_pd, _mm256_set1_pd, _mm256_setzero_pd, _mm256_setzero_si256,
        _mm256_storeu_pd, _mm_cvtsi32_si128,
    };
    let n = w.len();
    let sign = _mm256_set1_pd(-0.0);
    let (mut p, mut t) = ([_mm256_setzero_pd(); 2], [_mm256_setzero_pd(); 2]);
    let mut i = 0;
    while i + 8 <= n {
        for (h, (p, t)) in p.iter_mut().zip(&mut t).enumerate() {
            let j = i + 4 * h;
            // SAFETY: `j + 4 <= n`, the length of all three slices; a bool
            // is one byte, 0 or 1.
            unsafe {
                let c = _mm256_andnot_pd(
                    sign,
                    _mm256_mul_pd(_mm256_loadu_pd(w.as_ptr().add(j)), _mm256_loadu_pd(d.as_ptr().add(j))),
                );
                let flags = is_proxy.as_ptr().add(j).cast::<i32>().read_unaligned();
                let wide = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(flags));
                let mask = _mm256_castsi256_pd(_mm256_cmpgt_epi64(wide, _mm256_setzero_si256()));
                *p = _mm256_add_pd(*p, _mm256_and_pd(c, mask));
                *t = _mm256_add_pd(*t, c);
            }
        }
        i += 8;
    }
    let sum = |a: [__m256d; 2]| {
        let mut lanes = [0.0; 4];
        // SAFETY: `lanes` holds four f64.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(a[0], a[1])) };
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    };
    super::proxy_sums_scalar(&w[i..], &d[i..], &is_proxy[i..], [sum(p), sum(t)])
}

/// [`super::sums_in_order`]: four features of the four rows multiplied at
/// a time (lanes are features), the 4 × 4 products transposed (lanes are
/// rows) and added feature after feature: the same products and the same
/// additions, in the same order, as the scalar sums. The last `n % 4`
/// features are added by the scalar loop.
///
/// # Safety
///
/// The CPU must support AVX2; the four rows must have the same length,
/// and `d` at least that length.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sums_in_order(rows: [&[f64]; 4], d: &[f64]) -> [f64; 4] {
    use std::arch::x86_64::{
        _mm256_add_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_permute2f128_pd, _mm256_set1_pd, _mm256_storeu_pd,
        _mm256_unpackhi_pd, _mm256_unpacklo_pd,
    };
    let n = rows[0].len();
    debug_assert!(rows.iter().all(|r| r.len() == n) && d.len() >= n);
    let mut acc = _mm256_set1_pd(-0.0);
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: `i + 4 <= n`, within each row and `d`.
        let [p0, p1, p2, p3] = rows
            .map(|r| unsafe { _mm256_mul_pd(_mm256_loadu_pd(r.as_ptr().add(i)), _mm256_loadu_pd(d.as_ptr().add(i))) });
        // `a` = [p0₀ p1₀ p0₂ p1₂], `b` = [p0₁ p1₁ p0₃ p1₃], likewise `c`
        // and `e` for rows 2 and 3; then `t_k` = feature i + k of each row.
        let (a, b) = (_mm256_unpacklo_pd(p0, p1), _mm256_unpackhi_pd(p0, p1));
        let (c, e) = (_mm256_unpacklo_pd(p2, p3), _mm256_unpackhi_pd(p2, p3));
        let t0 = _mm256_permute2f128_pd::<0x20>(a, c);
        let t1 = _mm256_permute2f128_pd::<0x20>(b, e);
        let t2 = _mm256_permute2f128_pd::<0x31>(a, c);
        let t3 = _mm256_permute2f128_pd::<0x31>(b, e);
        acc = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(_mm256_add_pd(acc, t0), t1), t2), t3);
        i += 4;
    }
    let mut sums = [0.0; 4];
    // SAFETY: `sums` holds four f64.
    unsafe { _mm256_storeu_pd(sums.as_mut_ptr(), acc) };
    super::sums_in_order_scalar(rows, d, i, sums)
}

/// [`super::select_largest`] from a threshold, as the AVX-512 version: two
/// accumulators of four lanes keep the maxima of eight disjoint sets of
/// features; the `k`-th largest of those is at most the `k`-th largest
/// contribution, so the features at or above it hold the answer, and the
/// scalar rule (in feature order) picks it from those few. Past 64
/// features or 8 kept, or when the threshold is not positive,
/// [`select_by_rounds`] decides.
///
/// # Safety
///
/// The CPU must support AVX2; `w`, `d` and `m` have the same length.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn select_largest(w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    // SAFETY: the same contract.
    unsafe { select_picked(pick(w, d, m, top.len()), (w, d, m), top) }
}

/// The threshold's candidates as a word (`Pick::Listed`), or which
/// selection decides instead.
#[inline(always)]
unsafe fn pick(w: &[f64], d: &[f64], m: &[f64], k: usize) -> super::Pick {
    use super::Pick;
    use std::arch::x86_64::{
        __m256d, _mm256_andnot_pd, _mm256_blendv_pd, _mm256_castpd_si256, _mm256_castsi256_pd, _mm256_cmp_pd,
        _mm256_cmpgt_epi64, _mm256_cvtsd_f64, _mm256_loadu_pd, _mm256_max_pd, _mm256_min_pd, _mm256_movemask_pd,
        _mm256_mul_pd, _mm256_or_pd, _mm256_permute4x64_pd, _mm256_permute_pd, _mm256_set1_epi64x, _mm256_set1_pd,
        _mm256_setzero_pd, _mm256_setzero_si256, _mm256_sub_epi64, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_UNORD_Q,
    };
    let n = w.len().min(d.len()).min(m.len());
    if k == 0 {
        return Pick::Listed(0);
    }
    if n > 64 || k > 8 {
        return Pick::Rounds;
    }
    let sign = _mm256_set1_pd(-0.0);
    let mut blocks = [_mm256_setzero_pd(); 16];
    let (mut even, mut odd) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut nan = _mm256_setzero_pd();
    let full = n / 4;
    for (b, block) in blocks.iter_mut().enumerate().take(full) {
        let i = 4 * b;
        // SAFETY: `i + 4 <= n`, the length of all three slices.
        let c = unsafe {
            _mm256_mul_pd(
                _mm256_mul_pd(_mm256_loadu_pd(w.as_ptr().add(i)), _mm256_loadu_pd(d.as_ptr().add(i))),
                _mm256_loadu_pd(m.as_ptr().add(i)),
            )
        };
        nan = _mm256_or_pd(nan, _mm256_cmp_pd::<_CMP_UNORD_Q>(c, c));
        *block = _mm256_andnot_pd(sign, c);
    }
    if full < n.div_ceil(4) {
        let mut rest = [0.0f64; 4];
        for (j, r) in rest.iter_mut().enumerate().take(n - 4 * full) {
            let i = 4 * full + j;
            *r = w[i] * d[i] * m[i];
        }
        // SAFETY: `rest` holds four f64.
        let c = unsafe { _mm256_loadu_pd(rest.as_ptr()) };
        nan = _mm256_or_pd(nan, _mm256_cmp_pd::<_CMP_UNORD_Q>(c, c));
        blocks[full] = _mm256_andnot_pd(sign, c);
    }
    if _mm256_movemask_pd(nan) != 0 {
        return Pick::Scalar;
    }
    for (b, block) in blocks.iter().enumerate() {
        if b % 2 == 0 {
            even = _mm256_max_pd(even, *block);
        } else {
            odd = _mm256_max_pd(odd, *block);
        }
    }
    // Each of the eight maxima's count of those strictly larger: those
    // below `k` hold the `k` largest values, the smallest of them the
    // `k`-th.
    // Macros, not closures: this function is inlined into callers with
    // the target feature, which closures defined here would not inherit.
    macro_rules! rotations {
        ($v:expr) => {{
            let v = $v;
            [v, _mm256_permute4x64_pd::<0x39>(v), _mm256_permute4x64_pd::<0x4E>(v), _mm256_permute4x64_pd::<0x93>(v)]
        }};
    }
    let (re, ro) = (rotations!(even), rotations!(odd));
    macro_rules! count {
        ($v:expr, $same:expr, $other:expr) => {{
            let (v, same, other): (__m256d, &[__m256d; 4], &[__m256d; 4]) = ($v, $same, $other);
            let mut larger = _mm256_setzero_si256();
            for u in same[1..].iter().chain(other) {
                // A lane's mask is −1 where `u` is larger.
                larger = _mm256_sub_epi64(larger, _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_GT_OQ>(*u, v)));
            }
            _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(k as i64), larger))
        }};
    }
    let none = _mm256_set1_pd(f64::INFINITY);
    let v = _mm256_min_pd(
        _mm256_blendv_pd(none, even, count!(even, &re, &ro)),
        _mm256_blendv_pd(none, odd, count!(odd, &ro, &re)),
    );
    let v = _mm256_min_pd(v, _mm256_permute4x64_pd::<0x4E>(v));
    let threshold = _mm256_cvtsd_f64(_mm256_min_pd(v, _mm256_permute_pd::<0b0101>(v)));
    if threshold <= 0.0 {
        return Pick::Rounds;
    }
    let t = _mm256_set1_pd(threshold);
    let mut word = 0u64;
    for (b, block) in blocks.iter().enumerate() {
        word |= (_mm256_movemask_pd(_mm256_cmp_pd::<_CMP_GE_OQ>(*block, t)) as u64) << (4 * b);
    }
    Pick::Listed(word)
}

/// The selection `pick` names (from [`super::Pick`]).
///
/// # Safety
///
/// The CPU must support AVX2; `w`, `d` and `m` have the same length, and a
/// listed word's bits are below it.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn select_picked(
    pick: super::Pick,
    (w, d, m): (&[f64], &[f64], &[f64]),
    top: &mut [(usize, f64)],
) -> usize {
    match pick {
        super::Pick::Listed(word) => super::select_listed(word, (w, d, m), top),
        super::Pick::Scalar => {
            let n = w.len().min(d.len()).min(m.len());
            super::select_scalar(&w[..n], &d[..n], &m[..n], top)
        }
        // SAFETY: the same contract.
        super::Pick::Rounds => unsafe { select_by_rounds(w, d, m, top) },
        // SAFETY: the same contract.
        super::Pick::Full => unsafe { select_largest(w, d, m, top) },
    }
}

/// [`super::select_largest`] by repeated maximum: the absolute
/// contributions go to a buffer once (four at a time), then each of the
/// `top.len()` rounds takes their maximum and the first feature holding
/// it, which is then struck out. No branch depends on the data but a
/// round's end, so nothing mispredicts per feature. A NaN (never
/// expected), more than 256 features or more than 8 kept hand over to the
/// scalar insertion, whose rule is the definition.
///
/// # Safety
///
/// The CPU must support AVX2; `w`, `d` and `m` have the same length.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn select_by_rounds(w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    use std::arch::x86_64::{
        _mm256_andnot_pd, _mm256_blendv_pd, _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_cmpeq_epi64, _mm256_cvtsd_f64,
        _mm256_loadu_pd, _mm256_max_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_or_pd, _mm256_permute4x64_pd,
        _mm256_permute_pd, _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setr_epi64x, _mm256_setzero_pd, _mm256_storeu_pd,
        _CMP_EQ_OQ, _CMP_UNORD_Q,
    };
    const CAP: usize = 256;
    let n = w.len().min(d.len()).min(m.len());
    let padded = n.div_ceil(4) * 4;
    if padded > CAP || top.len() > 8 {
        return super::select_scalar(&w[..n], &d[..n], &m[..n], top);
    }
    // |wᵢ·dᵢ·mᵢ|, then −1 (never a maximum) up to a multiple of four.
    let mut abs = [std::mem::MaybeUninit::<f64>::uninit(); CAP];
    let a = abs.as_mut_ptr().cast::<f64>();
    let sign = _mm256_set1_pd(-0.0);
    let mut nan = _mm256_setzero_pd();
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: `i + 4 <= n`, the length of all three slices, and
        // `n <= CAP`, the length of `abs`.
        unsafe {
            let c = _mm256_mul_pd(
                _mm256_mul_pd(_mm256_loadu_pd(w.as_ptr().add(i)), _mm256_loadu_pd(d.as_ptr().add(i))),
                _mm256_loadu_pd(m.as_ptr().add(i)),
            );
            nan = _mm256_or_pd(nan, _mm256_cmp_pd::<_CMP_UNORD_Q>(c, c));
            _mm256_storeu_pd(a.add(i), _mm256_andnot_pd(sign, c));
        }
        i += 4;
    }
    let mut tail_nan = false;
    for j in i..padded {
        let c = if j < n { w[j] * d[j] * m[j] } else { 0.0 };
        tail_nan |= c.is_nan();
        // SAFETY: `j < padded <= CAP`.
        unsafe { a.add(j).write(if j < n { c.abs() } else { -1.0 }) };
    }
    if tail_nan || _mm256_movemask_pd(nan) != 0 {
        return super::select_scalar(&w[..n], &d[..n], &m[..n], top);
    }
    let mut len = 0;
    while len < top.len() {
        let low = _mm256_set1_pd(-1.0);
        let (mut b0, mut b1, mut b2, mut b3) = (low, low, low, low);
        let mut j = 0;
        // SAFETY (both loops): `j + 16 <= padded` and `j + 4 <= padded`,
        // all written above.
        while j + 16 <= padded {
            unsafe {
                b0 = _mm256_max_pd(b0, _mm256_loadu_pd(a.add(j)));
                b1 = _mm256_max_pd(b1, _mm256_loadu_pd(a.add(j + 4)));
                b2 = _mm256_max_pd(b2, _mm256_loadu_pd(a.add(j + 8)));
                b3 = _mm256_max_pd(b3, _mm256_loadu_pd(a.add(j + 12)));
            }
            j += 16;
        }
        while j < padded {
            b0 = _mm256_max_pd(b0, unsafe { _mm256_loadu_pd(a.add(j)) });
            j += 4;
        }
        // Every lane holds the maximum: swap halves, then pairs.
        let v = _mm256_max_pd(_mm256_max_pd(b0, b1), _mm256_max_pd(b2, b3));
        let v = _mm256_max_pd(v, _mm256_permute4x64_pd::<0b01_00_11_10>(v));
        let target = _mm256_max_pd(v, _mm256_permute_pd::<0b0101>(v));
        let top_abs = _mm256_cvtsd_f64(target);
        // Zero contributions are never kept (nor the padding).
        if top_abs <= 0.0 {
            break;
        }
        let mut j = 0;
        let at = loop {
            // SAFETY: some lane of `abs[..padded]` holds the maximum, so
            // the loop stops at `j < padded`.
            let hit = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(unsafe { _mm256_loadu_pd(a.add(j)) }, target));
            if hit != 0 {
                break j + hit.trailing_zeros() as usize;
            }
            j += 4;
        };
        top[len] = (at, w[at] * d[at] * m[at]);
        // Struck out with a store of the whole block, so that the next
        // round's loads of it are forwarded from the store (a narrower one
        // would stall them).
        let block = at & !3;
        let lane = _mm256_castsi256_pd(_mm256_cmpeq_epi64(
            _mm256_setr_epi64x(0, 1, 2, 3),
            _mm256_set1_epi64x((at - block) as i64),
        ));
        // SAFETY: `block + 4 <= padded <= CAP`, all written above.
        unsafe {
            let v = _mm256_loadu_pd(a.add(block));
            _mm256_storeu_pd(a.add(block), _mm256_blendv_pd(v, _mm256_set1_pd(-1.0), lane));
        }
        len += 1;
    }
    len
}

/// Sum of the 8 lanes (a tree of three additions).
///
/// # Safety
///
/// The CPU must support AVX (only called from `avx2,fma` functions).
#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The four sums of `a`, `b`, `c` and `d`, in that order (a tree of
/// three additions per lane).
///
/// # Safety
///
/// The CPU must support AVX.
#[inline(always)]
pub(super) unsafe fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    let t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t))
}

/// The eight sums of `v[0]` … `v[7]`, in that order (a tree of three
/// additions per lane).
///
/// # Safety
///
/// The CPU must support AVX.
#[inline(always)]
pub(super) unsafe fn hsum8(v: &[__m256; 8]) -> __m256 {
    // u0 = [Σa Σb Σc Σd over lanes 0-3 | the same over lanes 4-7], u1
    // the same for e-h; adding the matching halves finishes the sums.
    let u0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    let u1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(u0, u1), _mm256_permute2f128_ps::<0x31>(u0, u1))
}

/// `w·d` over `stride` entries, one accumulator.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA; `w` and `d` must be valid for
/// reading `stride` f32 values, and `stride` a multiple of LANES.
#[inline(always)]
unsafe fn dot1(w: *const f32, d: *const f32, stride: usize) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut c = 0;
    while c < stride {
        // SAFETY: `c + LANES <= stride`, within both rows.
        acc = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(w.add(c)), _mm256_loadu_ps(d.add(c)), acc) };
        c += LANES;
    }
    hsum(acc)
}

/// The dot products of `K` rows with `d`, one accumulator per row
/// (each lane sums `stride / LANES` products), sharing the loads of `d`.
///
/// # Safety
///
/// As [`dot1`], for each of the `K` rows.
#[inline(always)]
unsafe fn dot_block<const K: usize>(p: &[*const f32; K], d: *const f32, stride: usize) -> [__m256; K] {
    let mut acc = [_mm256_setzero_ps(); K];
    let mut c = 0;
    while c < stride {
        // SAFETY: `c + LANES <= stride`, within `d` and each row.
        unsafe {
            let x = _mm256_loadu_ps(d.add(c));
            for (a, &w) in acc.iter_mut().zip(p) {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(c)), x, *a);
            }
        }
        c += LANES;
    }
    acc
}

/// AVX2 version of [`super::dots`] (same contract).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA, and `d.len()` must be
/// `m.stride()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dots(m: &Matrix, rows: &[u32], d: &[f32], out: &mut [f32]) {
    let stride = m.stride();
    debug_assert!(d.len() == stride && stride.is_multiple_of(LANES));
    let dp = d.as_ptr();
    // Eight rows at a time: the loads of `d` are shared and the horizontal
    // sums done together.
    by_blocks::<8, f32, [f32]>(
        m,
        rows,
        out,
        |out, j, p| {
            let mut sums = [0.0f32; 8];
            // SAFETY: `row_ptrs` checked that each row holds `stride`
            // values, as does `d`; `sums` holds eight f32.
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), hsum8(&dot_block(p, dp, stride))) };
            super::scatter(out, &rows[j..j + 8], &sums);
        },
        |out, i, w| {
            // SAFETY: the row and `d` hold `m.stride()` values.
            let dot = w.map_or(0.0, |w| unsafe { dot1(w.as_ptr(), dp, w.len()) });
            super::scatter(out, &rows[i..=i], &[dot]);
        },
    );
}

/// AVX2 version of [`super::dots_grouped`] (same contract): a group's 64
/// offers in two halves of four registers, even and odd features in two
/// accumulators each (eight chains), blended in under the word's bits.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA, and `d.len()` must be
/// `m.features()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dots_grouped(m: &Groups, words: &[u64], d: &[f32], out: &mut [f32]) {
    debug_assert_eq!(d.len(), m.features());
    for (g, word, lines) in super::groups_to_score(m, words) {
        let mut dots = [0.0f32; GROUP];
        for half in 0..2 {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (line, d) in lines.chunks_exact(GROUP).zip(d.chunks_exact(2)) {
                let (even, odd) = (_mm256_set1_ps(d[0]), _mm256_set1_ps(d[1]));
                for b in 0..4 {
                    // SAFETY: a line holds GROUP = 64 entries: 32·half + 8b + 8 ≤ 64.
                    let v = unsafe { _mm256_loadu_si256(line.as_ptr().add(32 * half + LANES * b).cast()) };
                    acc[2 * b] = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<16>(v)), even, acc[2 * b]);
                    acc[2 * b + 1] = _mm256_fmadd_ps(_mm256_castsi256_ps(v), odd, acc[2 * b + 1]);
                }
            }
            for b in 0..4 {
                // SAFETY: `dots` holds 64 f32: 32·half + 8b + 8 ≤ 64.
                unsafe {
                    _mm256_storeu_ps(
                        dots.as_mut_ptr().add(32 * half + LANES * b),
                        _mm256_add_ps(acc[2 * b], acc[2 * b + 1]),
                    );
                }
            }
        }
        write_group(out, g * GROUP, word, &dots);
    }
}

/// [`super::write_masked`] by blends of eight where the whole group lies
/// within `out`.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn write_group(out: &mut [f32], base: usize, word: u64, dots: &[f32; GROUP]) {
    if base + GROUP > out.len() {
        return super::write_masked(out, base, word, dots);
    }
    let lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for b in 0..GROUP / LANES {
        let bits = _mm256_set1_epi32(i32::from((word >> (LANES * b)) as u8));
        let keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(bits, lane_bits), lane_bits));
        // SAFETY: `base + 8b + 8 <= out.len()`, and `dots` holds 64.
        unsafe {
            let at = out.as_mut_ptr().add(base + LANES * b);
            let new = _mm256_loadu_ps(dots.as_ptr().add(LANES * b));
            _mm256_storeu_ps(at, _mm256_blendv_ps(_mm256_loadu_ps(at), new, keep));
        }
    }
}

/// AVX2 version of [`super::dots_signed`] (same contract).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA, and `d.len()` and `c.len()` must be
/// `m.stride()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dots_signed(m: &Matrix, rows: &[u32], d: &[f32], c: &[f32], out: &mut [[f32; 2]]) {
    let stride = m.stride();
    debug_assert!(d.len() == stride && c.len() == stride && stride.is_multiple_of(LANES));
    let (dp, cp) = (d.as_ptr(), c.as_ptr());
    let n = rows.len().min(out.len());
    // Four rows at a time, two accumulators each (eight independent
    // chains); the loads of `d` and `c` are shared.
    by_blocks::<4, f32, [[f32; 2]]>(
        m,
        &rows[..n],
        &mut out[..n],
        |out, j, p| {
            // SAFETY: `row_ptrs` checked that each row holds `stride`
            // values, as do `d` and `c`; `out[j..j + 4]` is eight
            // consecutive f32 (arrays have no padding) within `out`.
            unsafe {
                let [d0, s0, d1, s1, d2, s2, d3, s3] = signed_block(p, dp, cp, stride);
                let o = out[j..j + 4].as_mut_ptr().cast::<f32>();
                _mm256_storeu_ps(o, hsum8(&[d0, s0, d1, s1, d2, s2, d3, s3]));
            }
        },
        // SAFETY: the row, `d` and `c` hold `m.stride()` values.
        |out, i, w| out[i] = w.map_or([0.0; 2], |w| unsafe { signed1(w.as_ptr(), dp, cp, stride) }),
    );
}

/// The accumulators of four rows of [`dots_signed`], interleaved: the dot
/// product's, then the signed sum's, per row.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA; each row, `d` and `c` must be valid
/// for reading `stride` f32 values, a multiple of LANES.
#[inline(always)]
unsafe fn signed_block(p: &[*const f32; 4], d: *const f32, c: *const f32, stride: usize) -> [__m256; 8] {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let mut acc = [_mm256_setzero_ps(); 8];
    let mut i = 0;
    while i < stride {
        // SAFETY: `i + LANES <= stride`, within `d`, `c` and each row.
        unsafe {
            let (x, q) = (_mm256_loadu_ps(d.add(i)), _mm256_loadu_ps(c.add(i)));
            for (a, &w) in acc.chunks_exact_mut(2).zip(p) {
                let w = _mm256_loadu_ps(w.add(i));
                a[0] = _mm256_fmadd_ps(w, x, a[0]);
                a[1] = _mm256_fmadd_ps(_mm256_and_ps(w, abs), q, a[1]);
            }
        }
        i += LANES;
    }
    acc
}

/// One row of [`dots_signed`].
///
/// # Safety
///
/// The CPU must support AVX2 and FMA; `w`, `d` and `c` must be valid for
/// reading `stride` f32 values, a multiple of LANES.
#[inline(always)]
unsafe fn signed1(w: *const f32, d: *const f32, c: *const f32, stride: usize) -> [f32; 2] {
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let z = _mm256_setzero_ps();
    let (mut dot, mut signed) = (z, z);
    let mut i = 0;
    while i < stride {
        // SAFETY: `i + LANES <= stride`, within the three vectors.
        unsafe {
            let wv = _mm256_loadu_ps(w.add(i));
            dot = _mm256_fmadd_ps(wv, _mm256_loadu_ps(d.add(i)), dot);
            signed = _mm256_fmadd_ps(_mm256_and_ps(wv, abs), _mm256_loadu_ps(c.add(i)), signed);
        }
        i += LANES;
    }
    let sums = hsum4(dot, signed, z, z);
    [_mm_cvtss_f32(sums), _mm_cvtss_f32(_mm_shuffle_ps::<1>(sums, sums))]
}

/// [`super::coarse_bounds`] written out in intrinsics, the same
/// operations in the same order as [`super::Bound`] (the compiler's
/// vectorisation of that code took half again as many instructions).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn coarse_bounds(x: &super::BoundsInputs<'_>, lo: &mut [f32], hi: &mut [f32]) -> bool {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_and_ps, _mm256_andnot_ps, _mm256_blendv_ps, _mm256_cmp_ps, _mm256_loadu_ps,
        _mm256_min_ps, _mm256_movemask_ps, _mm256_mul_ps, _mm256_or_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm256_sub_ps, _CMP_NEQ_UQ, _CMP_NGE_UQ, _CMP_UNORD_Q,
    };
    let n = [x.base.len(), x.norm.len(), x.slack.len(), x.logv.len(), lo.len(), hi.len()]
        .into_iter()
        .fold(x.dot.len(), usize::min);
    let full = n - n % LANES;
    let c = |v: f32| _mm256_set1_ps(v);
    let (scale, floor) = (c(x.error.0), c(x.error.1));
    let (sign, zero, nan, neg_inf) = (c(-0.0), _mm256_setzero_ps(), c(f32::NAN), c(f32::NEG_INFINITY));
    let mut outside = zero;
    let mut i = 0;
    while i < full {
        // SAFETY: `i + LANES <= full <= n`, the length of every slice.
        let (dot, b, w, s, lv) = unsafe {
            (
                _mm256_loadu_ps(x.dot.as_ptr().add(i)),
                _mm256_loadu_ps(x.base.as_ptr().add(i)),
                _mm256_loadu_ps(x.norm.as_ptr().add(i)),
                _mm256_loadu_ps(x.slack.as_ptr().add(i)),
                _mm256_loadu_ps(x.logv.as_ptr().add(i)),
            )
        };
        // As `Bound::new`: scored (NaN included), `a` (0 when not
        // scored), `e`, and the lanes outside the validity.
        let scored = _mm256_cmp_ps::<_CMP_NEQ_UQ>(dot, neg_inf);
        let a = _mm256_and_ps(scored, _mm256_add_ps(b, dot));
        let e = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(scale, w), floor), s), c(k::E_WIDEN));
        let bad = _mm256_or_ps(
            _mm256_cmp_ps::<_CMP_UNORD_Q>(lv, lv),
            _mm256_cmp_ps::<_CMP_NGE_UQ>(_mm256_sub_ps(a, e), c(k::VALID_FROM)),
        );
        let out = _mm256_and_ps(scored, bad);
        outside = _mm256_or_ps(outside, out);
        let valid = _mm256_andnot_ps(out, scored);
        // `min_ps(v, k)` gives `k` for a NaN `v`, as `f32::min`.
        let a = _mm256_min_ps(a, c(k::A_CAP));
        // As `Bound::rounding` and `Bound::coarse`.
        let abs_lv = _mm256_min_ps(_mm256_andnot_ps(sign, lv), c(k::LV_CAP));
        let sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_andnot_ps(sign, a), e), abs_lv), c(1.0));
        let rounding = _mm256_mul_ps(c(k::EPS), sum);
        let margin = _mm256_mul_ps(_mm256_add_ps(rounding, c(super::KEY_EPS)), c(k::MARGIN_WIDEN));
        let low = _mm256_sub_ps(_mm256_min_ps(_mm256_sub_ps(a, e), zero), c(k::LN_2_UP));
        let l = _mm256_sub_ps(_mm256_add_ps(lv, low), margin);
        let h = _mm256_add_ps(_mm256_add_ps(lv, _mm256_min_ps(_mm256_add_ps(a, e), zero)), margin);
        // SAFETY: as the loads.
        unsafe {
            _mm256_storeu_ps(lo.as_mut_ptr().add(i), _mm256_blendv_ps(nan, l, valid));
            _mm256_storeu_ps(hi.as_mut_ptr().add(i), _mm256_blendv_ps(nan, h, valid));
        }
        i += LANES;
    }
    let mut outside = _mm256_movemask_ps(outside) != 0;
    for i in full..n {
        let lane = super::Bound::new(x.dot[i], x.base[i], x.norm[i], x.slack[i], x.logv[i], x.error);
        (lo[i], hi[i]) = lane.coarse();
        outside |= lane.outside;
    }
    outside
}

/// [`super::equal_bits`], 32 bytes a comparison.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::cast_ptr_alignment)] // `loadu` takes an unaligned pointer
pub(super) unsafe fn equal_bits(bytes: &[u8], value: u8, out: &mut [u64]) {
    use std::arch::x86_64::{__m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8};
    let v = _mm256_set1_epi8(value as i8);
    for (word, chunk) in out.iter_mut().zip(bytes.chunks(64)) {
        if let Ok(chunk) = <&[u8; 64]>::try_from(chunk) {
            // SAFETY: `chunk` holds 64 bytes, two unaligned loads of 32.
            let (low, high) = unsafe {
                let p = chunk.as_ptr().cast::<__m256i>();
                (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
            };
            let low = _mm256_movemask_epi8(_mm256_cmpeq_epi8(low, v)) as u32;
            let high = _mm256_movemask_epi8(_mm256_cmpeq_epi8(high, v)) as u32;
            *word = u64::from(low) | u64::from(high) << 32;
        } else {
            super::equal_bits(chunk, value, std::slice::from_mut(word));
        }
    }
}

/// [`super::lower_bytes_where`], 32 bytes at a time: the word's bits spread
/// to byte masks (each byte gets its bit's byte of the word, then tests its
/// own bit), `value` where set and 255 elsewhere, and a byte-wise minimum.
///
/// # Safety
///
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::cast_ptr_alignment)] // `loadu`/`storeu` take unaligned pointers
pub(super) unsafe fn lower_where(bytes: &mut [u8], words: &[u64], value: u8) {
    use std::arch::x86_64::{
        __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_or_si256,
        _mm256_set1_epi64x, _mm256_set1_epi8, _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_storeu_si256,
    };
    // Bytes 0–15 of a 128-bit lane read bytes 0 and 1 of the word, bytes
    // 16–31 bytes 2 and 3 (the shuffle stays within lanes).
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let v = _mm256_set1_epi8(value as i8);
    let half = |chunk: *mut __m256i, bits: u32| {
        let m = _mm256_cmpeq_epi8(
            _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi64x(i64::from(bits)), spread), bit),
            bit,
        );
        // `value` where the bit is set, 255 elsewhere.
        let lower = _mm256_or_si256(_mm256_cmpeq_epi8(m, _mm256_set1_epi8(0)), v);
        // SAFETY: the caller passes a pointer to 32 bytes of a chunk of 64.
        unsafe { _mm256_storeu_si256(chunk, _mm256_min_epu8(_mm256_loadu_si256(chunk), lower)) };
    };
    for (chunk, &word) in bytes.chunks_mut(64).zip(words) {
        if let Ok(chunk) = <&mut [u8; 64]>::try_from(&mut *chunk) {
            let p = chunk.as_mut_ptr().cast::<__m256i>();
            half(p, word as u32);
            // SAFETY: `p + 1` is the second half of the 64 bytes.
            half(unsafe { p.add(1) }, (word >> 32) as u32);
        } else {
            super::lower_bytes_where(chunk, std::slice::from_ref(&word), value);
        }
    }
}

/// [`super::centre`] four features at a time (the tail by the portable
/// loop): the same operations per feature, the sums in four lanes.
///
/// # Safety
///
/// The CPU must support AVX2; every slice of `x` and `out` holds at least
/// `n` values.
#[target_feature(enable = "avx2")]
#[allow(clippy::cast_ptr_alignment)] // `loadu`, `storeu` and `write_unaligned` take unaligned pointers
pub(super) unsafe fn centre(
    x: &super::CentreInputs<'_>,
    mut out: super::CentreOutputs<'_>,
    n: usize,
) -> super::Centred {
    use std::arch::x86_64::{
        __m128i, _mm256_add_pd, _mm256_and_pd, _mm256_and_si256, _mm256_andnot_pd, _mm256_blendv_pd,
        _mm256_castpd256_pd128, _mm256_castsi256_pd, _mm256_cmp_pd, _mm256_cmpeq_epi64, _mm256_cvtepu32_epi64,
        _mm256_cvtpd_ps, _mm256_extractf128_pd, _mm256_loadu_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_set1_epi64x,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_setzero_si256, _mm256_storeu_pd, _mm256_sub_pd, _mm_add_pd,
        _mm_cvtsd_f64, _mm_loadu_si128, _mm_storeu_ps, _mm_unpackhi_pd, _CMP_NEQ_UQ,
    };
    /// Four flags as four `bool` bytes (little-endian).
    const BYTES: [u32; 16] = {
        let mut t = [0u32; 16];
        let mut i = 0;
        while i < 16 {
            t[i] = (i as u32 & 1) | (i as u32 >> 1 & 1) << 8 | (i as u32 >> 2 & 1) << 16 | (i as u32 >> 3 & 1) << 24;
            i += 1;
        }
        t
    };
    const L: usize = 4;
    let full = n - n % L;
    let not_usable = _mm256_set1_epi64x(i64::from(x.not_usable));
    let (other, proxy) = (_mm256_set1_pd(0.0 - x.theta), _mm256_set1_pd(1.0 - x.theta));
    let (zero, sign, none) = (_mm256_setzero_pd(), _mm256_set1_pd(-0.0), _mm256_setzero_si256());
    let (mut abs, mut square, mut c_abs, mut c_square) = (zero, zero, zero, zero);
    let mut active = 0;
    let mut i = 0;
    while i < full {
        // SAFETY: `i + L <= full <= n`, within every slice; `bool` is one
        // byte holding 0 or 1, which is what the four bytes stored are.
        unsafe {
            // All ones where `bits & not_usable` is 0.
            let clear = |v: &[u32]| {
                let bits = _mm256_cvtepu32_epi64(_mm_loadu_si128(v.as_ptr().add(i).cast::<__m128i>()));
                _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(bits, not_usable), none))
            };
            let (usable, not_proxy) = (clear(x.masks), clear(x.proxies));
            let diff =
                _mm256_sub_pd(_mm256_loadu_pd(x.x.as_ptr().add(i)), _mm256_loadu_pd(x.baselines.as_ptr().add(i)));
            let d = _mm256_and_pd(usable, diff);
            let d_abs = _mm256_andnot_pd(sign, d);
            let c = _mm256_mul_pd(d_abs, _mm256_blendv_pd(proxy, other, not_proxy));
            _mm256_storeu_pd(out.d.as_mut_ptr().add(i), d);
            _mm_storeu_ps(out.d32.as_mut_ptr().add(i), _mm256_cvtpd_ps(d));
            _mm_storeu_ps(out.c32.as_mut_ptr().add(i), _mm256_cvtpd_ps(c));
            let q = !_mm256_movemask_pd(not_proxy) & 0xf;
            out.is_proxy.as_mut_ptr().add(i).cast::<u32>().write_unaligned(BYTES[q as usize]);
            active |= q & _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_NEQ_UQ>(d, zero));
            abs = _mm256_add_pd(abs, d_abs);
            square = _mm256_add_pd(square, _mm256_mul_pd(d, d));
            c_abs = _mm256_add_pd(c_abs, _mm256_andnot_pd(sign, c));
            c_square = _mm256_add_pd(c_square, _mm256_mul_pd(c, c));
        }
        i += L;
    }
    let total = |v| {
        let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
        _mm_cvtsd_f64(_mm_add_pd(s, _mm_unpackhi_pd(s, s)))
    };
    let sums = super::Centred {
        abs_sum: total(abs),
        square_sum: total(square),
        c_abs_sum: total(c_abs),
        c_square_sum: total(c_square),
        active_proxy: active != 0,
    };
    super::centre_loop(x, &mut out, full..n, sums)
}
