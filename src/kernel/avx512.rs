//! The AVX-512F kernels, chosen at run time (see [`super::Isa`]): the dot
//! products in 16 lanes (half the instructions of AVX2 per row) and the
//! position lists by compression. Rows are padded to 16 ([`super::PAD`]).
//!
//! Each lane sums `stride / 16` products; the 16 lanes of each sum are then
//! added by a butterfly of four levels ([`hsum16`], [`hsum8x16`]; the
//! single-row tail folds the halves, then the AVX2 tree of three): chains of
//! `stride / 16 + 4`, within the `stride + 8` that [`super::logit_error`]
//! allows.

use std::arch::x86_64::{
    __m256, __m512, _mm256_add_ps, _mm256_castpd_ps, _mm256_setzero_ps, _mm512_add_epi32, _mm512_add_ps,
    _mm512_and_si512, _mm512_castps512_ps256, _mm512_castps_pd, _mm512_castps_si512, _mm512_castsi512_ps,
    _mm512_extractf64x4_pd, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_storeu_ps,
    _mm512_maskz_compress_epi32, _mm512_permutexvar_ps, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
    _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps, _mm512_storeu_si512,
};

use super::avx2::hsum4;
use super::{by_blocks, Groups, Matrix, GROUP, PAD};

/// The sums of the matching lanes of the two halves of `v`.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn fold(v: __m512) -> __m256 {
    let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    _mm256_add_ps(_mm512_castps512_ps256(v), high)
}

/// One level of the butterfly below: the two registers' elements `2^k`
/// apart added (`k` = 3, 2: 128-bit blocks; 1, 0: elements within them),
/// the first register's sums in the first half of each pair of blocks or
/// elements, the second's in the other.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn butterfly<const LOW: i32, const HIGH: i32, const BLOCKS: bool>(a: __m512, b: __m512) -> __m512 {
    use std::arch::x86_64::{_mm512_shuffle_f32x4, _mm512_shuffle_ps};
    if BLOCKS {
        _mm512_add_ps(_mm512_shuffle_f32x4::<LOW>(a, b), _mm512_shuffle_f32x4::<HIGH>(a, b))
    } else {
        _mm512_add_ps(_mm512_shuffle_ps::<LOW>(a, b), _mm512_shuffle_ps::<HIGH>(a, b))
    }
}

/// Level 1: lanes 0–7 are partial sums of `a`, 8–15 of `b`.
const L1: (i32, i32) = (0b01_00_01_00, 0b11_10_11_10);
/// Level 2: 128-bit lane q holds partial sums of the q-th of the four
/// registers the two came from.
const L2: (i32, i32) = (0b10_00_10_00, 0b11_01_11_01);

/// The sums of `v[0]` … `v[15]`, in that order, by a butterfly: each of
/// four levels adds pairs of half-registers (256, 128, 64, then 32 bits
/// apart) of two registers at once, so 15 additions and 30 shuffles serve
/// all sixteen (a tree of four additions per sum, as `fold` then `hsum8`).
/// (Loops, not closures: a closure would not inherit the caller's target
/// features.)
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn hsum16(v: &[__m512; 16]) -> __m512 {
    let mut u = [_mm512_setzero_ps(); 8];
    for (k, u) in u.iter_mut().enumerate() {
        *u = butterfly::<{ L1.0 }, { L1.1 }, true>(v[2 * k], v[2 * k + 1]);
    }
    // 128-bit lane q of `t[k]`: four partial sums of `v[4k + q]`.
    let mut t = [_mm512_setzero_ps(); 4];
    for (k, t) in t.iter_mut().enumerate() {
        *t = butterfly::<{ L2.0 }, { L2.1 }, true>(u[2 * k], u[2 * k + 1]);
    }
    // Lane q of `s[k]`: two partial sums of `v[8k + q]`, then two of
    // `v[8k + 4 + q]`.
    let s0 = butterfly::<{ L1.0 }, { L1.1 }, false>(t[0], t[1]);
    let s1 = butterfly::<{ L1.0 }, { L1.1 }, false>(t[2], t[3]);
    // Element 4q + r: the sum of `v[4r + q]`; then in order.
    let r = butterfly::<{ L2.0 }, { L2.1 }, false>(s0, s1);
    _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r)
}

/// The sums of `v[0]` … `v[7]`, in that order, by the butterfly of
/// [`hsum16`] on eight registers (the last level pairs the one register
/// left with itself).
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn hsum8x16(v: &[__m512; 8]) -> __m256 {
    let mut u = [_mm512_setzero_ps(); 4];
    for (k, u) in u.iter_mut().enumerate() {
        *u = butterfly::<{ L1.0 }, { L1.1 }, true>(v[2 * k], v[2 * k + 1]);
    }
    let t0 = butterfly::<{ L2.0 }, { L2.1 }, true>(u[0], u[1]);
    let t1 = butterfly::<{ L2.0 }, { L2.1 }, true>(u[2], u[3]);
    // Lane q of `s`: two partial sums of `v[q]`, then two of `v[4 + q]`.
    let s = butterfly::<{ L1.0 }, { L1.1 }, false>(t0, t1);
    // Elements 4q and 4q + 1: the sums of `v[q]` and `v[4 + q]`.
    let r = butterfly::<{ L2.0 }, { L2.1 }, false>(s, s);
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_castps512_ps256(_mm512_permutexvar_ps(order, r))
}

/// `|w|`, by clearing the sign bits.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn abs(w: __m512) -> __m512 {
    _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(w), _mm512_set1_epi32(i32::MAX)))
}

/// The accumulators of `K` rows' dot products with `d` (16 lanes each),
/// sharing the loads of `d`.
///
/// # Safety
///
/// The CPU must support AVX-512F; each row and `d` must be valid for
/// reading `stride` f32 values, a multiple of 16.
#[inline(always)]
unsafe fn dot_block<const K: usize>(p: &[*const f32; K], d: *const f32, stride: usize) -> [__m512; K] {
    let mut acc = [_mm512_setzero_ps(); K];
    let mut i = 0;
    while i < stride {
        // SAFETY: `i + PAD <= stride`, within `d` and each row.
        unsafe {
            let x = _mm512_loadu_ps(d.add(i));
            for (a, &w) in acc.iter_mut().zip(p) {
                *a = _mm512_fmadd_ps(_mm512_loadu_ps(w.add(i)), x, *a);
            }
        }
        i += PAD;
    }
    acc
}

/// AVX-512 version of [`super::dots`] (same contract).
///
/// # Safety
///
/// The CPU must support AVX-512F, AVX2 and FMA, and `d.len()` must be
/// `m.stride()`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn dots(m: &Matrix, rows: &[u32], d: &[f32], out: &mut [f32]) {
    let stride = m.stride();
    debug_assert!(d.len() == stride && stride.is_multiple_of(PAD));
    let dp = d.as_ptr();
    // Eight rows at a time: the loads of `d` are shared and the horizontal
    // sums done together. (Sixteen would need more row pointers than
    // there are registers.)
    by_blocks::<8, f32, [f32]>(
        m,
        rows,
        out,
        |out, j, p| {
            let mut sums = [0.0f32; 8];
            // SAFETY: `row_ptrs` checked that each row holds `stride`
            // values, as does `d`; `sums` holds eight f32.
            unsafe { std::arch::x86_64::_mm256_storeu_ps(sums.as_mut_ptr(), hsum8x16(&dot_block(p, dp, stride))) };
            super::scatter(out, &rows[j..j + 8], &sums);
        },
        |out, i, w| {
            let dot = match w {
                // SAFETY: the row and `d` hold `m.stride()` values.
                Some(w) => unsafe {
                    let [a] = dot_block(&[w.as_ptr()], dp, w.len());
                    let z = _mm256_setzero_ps();
                    std::arch::x86_64::_mm_cvtss_f32(hsum4(fold(a), z, z, z))
                },
                None => 0.0,
            };
            super::scatter(out, &rows[i..=i], &[dot]);
        },
    );
}

/// AVX-512 version of [`super::dots_grouped`] (same contract): a group's
/// 64 offers in four registers, even and odd features in two accumulators
/// each (eight chains), stored under the word's bits.
///
/// # Safety
///
/// The CPU must support AVX-512F, AVX2 and FMA, and `d.len()` must be
/// `m.features()`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn dots_grouped(m: &Groups, words: &[u64], d: &[f32], out: &mut [f32]) {
    debug_assert_eq!(d.len(), m.features());
    for (g, word, lines) in super::groups_to_score(m, words) {
        let mut acc = [_mm512_setzero_ps(); 8];
        for (line, d) in lines.chunks_exact(GROUP).zip(d.chunks_exact(2)) {
            let (even, odd) = (_mm512_set1_ps(d[0]), _mm512_set1_ps(d[1]));
            for b in 0..4 {
                // SAFETY: a line holds GROUP = 64 entries, so 16b + 16 of them.
                let v = unsafe { _mm512_loadu_si512(line.as_ptr().add(PAD * b).cast()) };
                acc[2 * b] = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32::<16>(v)), even, acc[2 * b]);
                acc[2 * b + 1] = _mm512_fmadd_ps(_mm512_castsi512_ps(v), odd, acc[2 * b + 1]);
            }
        }
        let dots = std::array::from_fn(|b| _mm512_add_ps(acc[2 * b], acc[2 * b + 1]));
        write_group(out, g * GROUP, word, &dots);
    }
}

/// A group's 64 scores (`dots[b]` holding offers `base + 16b …`) into
/// `out` where `word` has their bits, by masked stores where the whole
/// group lies within `out`, else by [`super::write_masked`].
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn write_group(out: &mut [f32], base: usize, word: u64, dots: &[__m512; 4]) {
    if base + GROUP <= out.len() {
        for (b, &v) in dots.iter().enumerate() {
            // SAFETY: `base + 16b + 16 <= out.len()`.
            unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(base + PAD * b), (word >> (PAD * b)) as u16, v) };
        }
    } else {
        let mut all = [0.0f32; GROUP];
        for (b, &v) in dots.iter().enumerate() {
            // SAFETY: `all` holds 64 f32, so 16b + 16 of them.
            unsafe { _mm512_storeu_ps(all.as_mut_ptr().add(PAD * b), v) };
        }
        super::write_masked(out, base, word, &all);
    }
}

/// AVX-512 version of [`super::dots_signed`] (same contract).
///
/// # Safety
///
/// The CPU must support AVX-512F, AVX2 and FMA, and `d.len()` and
/// `c.len()` must be `m.stride()`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn dots_signed(m: &Matrix, rows: &[u32], d: &[f32], c: &[f32], out: &mut [[f32; 2]]) {
    let stride = m.stride();
    debug_assert!(d.len() == stride && c.len() == stride && stride.is_multiple_of(PAD));
    let (dp, cp) = (d.as_ptr(), c.as_ptr());
    let n = rows.len().min(out.len());
    // Eight rows at a time, two accumulators each (sixteen chains).
    by_blocks::<8, f32, [[f32; 2]]>(
        m,
        &rows[..n],
        &mut out[..n],
        |out, j, p| {
            // SAFETY: `row_ptrs` checked that each row holds `stride`
            // values, as do `d` and `c`; `out[j..j + 8]` is sixteen
            // consecutive f32 (arrays have no padding) within `out`.
            unsafe {
                let acc = signed_block(p, dp, cp, stride);
                // As [dot, signed] pairs, row after row.
                let mut chains = [_mm512_setzero_ps(); 16];
                for (i, c) in chains.iter_mut().enumerate() {
                    *c = acc[i / 2][i % 2];
                }
                _mm512_storeu_ps(out[j..j + 8].as_mut_ptr().cast::<f32>(), hsum16(&chains));
            }
        },
        |out, i, w| {
            out[i] = match w {
                // SAFETY: the row, `d` and `c` hold `m.stride()` values.
                Some(w) => unsafe {
                    let [[dot, signed]] = signed_block(&[w.as_ptr()], dp, cp, w.len());
                    let z = _mm256_setzero_ps();
                    let sums = hsum4(fold(dot), fold(signed), z, z);
                    let mut v = [0.0f32; 4];
                    std::arch::x86_64::_mm_storeu_ps(v.as_mut_ptr(), sums);
                    [v[0], v[1]]
                },
                None => [0.0; 2],
            };
        },
    );
}

/// The accumulators of `K` rows of [`dots_signed`]: per row, the dot
/// product's and the signed sum's.
///
/// # Safety
///
/// The CPU must support AVX-512F; each row, `d` and `c` must be valid for
/// reading `stride` f32 values, a multiple of 16.
#[inline(always)]
unsafe fn signed_block<const K: usize>(
    p: &[*const f32; K],
    d: *const f32,
    c: *const f32,
    stride: usize,
) -> [[__m512; 2]; K] {
    let mut acc = [[_mm512_setzero_ps(); 2]; K];
    let mut i = 0;
    while i < stride {
        // SAFETY: `i + PAD <= stride`, within `d`, `c` and each row.
        unsafe {
            let (x, q) = (_mm512_loadu_ps(d.add(i)), _mm512_loadu_ps(c.add(i)));
            for (a, &w) in acc.iter_mut().zip(p) {
                let w = _mm512_loadu_ps(w.add(i));
                a[0] = _mm512_fmadd_ps(w, x, a[0]);
                a[1] = _mm512_fmadd_ps(abs(w), q, a[1]);
            }
        }
        i += PAD;
    }
    acc
}

/// [`super::append_positions`], sixteen bits at a time: the positions of a
/// 16-bit mask compressed into one register, stored whole.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn append_positions(word: u64, base: u32, out: &mut Vec<u32>) {
    // Each store writes sixteen lanes from the current length on; the
    // length grows by at most sixteen a quarter, so 64 spare slots suffice.
    out.reserve(64);
    let mut len = out.len();
    let p = out.as_mut_ptr();
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for q in 0..4u32 {
        let mask = (word >> (16 * q)) as u16;
        let positions = _mm512_add_epi32(iota, _mm512_set1_epi32((base + 16 * q) as i32));
        // SAFETY: `len + 16 <= old len + 64 <= capacity` (at most three
        // quarters of 16 positions precede).
        unsafe { _mm512_storeu_si512(p.add(len).cast(), _mm512_maskz_compress_epi32(mask, positions)) };
        len += mask.count_ones() as usize;
    }
    // SAFETY: the first `len` values are initialised: the old ones, and
    // each quarter's positions, written above before the length passed them.
    unsafe { out.set_len(len) };
}

/// [`super::kth_largest_at_most`]'s candidates, as
/// [`super::avx2::two_largest_per_lane`] with sixteen lanes: into
/// `best[..32]`.
///
/// # Safety
///
/// The CPU must support AVX-512F; `best` holds at least 32 values.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn two_largest_per_lane<'a>(values: &[f32], best: &'a mut [f32]) -> &'a [f32] {
    use std::arch::x86_64::{_mm512_max_ps, _mm512_min_ps, _mm512_set1_ps, _mm512_storeu_ps};
    let blocks = values.chunks_exact(PAD);
    let rest = blocks.remainder();
    let (mut first, mut second) = (_mm512_set1_ps(f32::NEG_INFINITY), _mm512_set1_ps(f32::NEG_INFINITY));
    for block in blocks {
        // SAFETY: `block` holds PAD f32.
        let v = unsafe { _mm512_loadu_ps(block.as_ptr()) };
        second = _mm512_max_ps(_mm512_min_ps(first, v), second);
        first = _mm512_max_ps(v, first);
    }
    let best = &mut best[..2 * PAD];
    // SAFETY: `best` holds 2 · PAD f32.
    unsafe {
        _mm512_storeu_ps(best.as_mut_ptr(), first);
        _mm512_storeu_ps(best.as_mut_ptr().add(PAD), second);
    }
    for &v in rest {
        let (f, s) = (best[0], best[PAD]);
        best[PAD] = if v.is_nan() { s } else { s.max(f.min(v)) };
        best[0] = if v.is_nan() { f } else { f.max(v) };
    }
    best
}

/// [`super::append_positions_at_least`], sixteen at a time: the positions of a
/// block's lanes `≥ tau` compressed into one register, stored whole.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn append_positions_at_least(values: &[f32], tau: f32, out: &mut Vec<u32>) {
    use std::arch::x86_64::{_mm512_cmp_ps_mask, _mm512_set1_ps, _CMP_GE_OQ};
    let t = _mm512_set1_ps(tau);
    let blocks = values.chunks_exact(PAD);
    let full = values.len() - blocks.remainder().len();
    // Each block stores sixteen lanes at the current length, which has
    // grown by at most `PAD` per earlier block: `full` spare slots do.
    out.reserve(full);
    let mut len = out.len();
    let p = out.as_mut_ptr();
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (b, block) in blocks.enumerate() {
        // SAFETY: `block` holds PAD f32.
        let mask = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(unsafe { _mm512_loadu_ps(block.as_ptr()) }, t);
        let positions = _mm512_add_epi32(iota, _mm512_set1_epi32((b * PAD) as i32));
        // SAFETY: `len + PAD <= old len + (b + 1)·PAD <= old len + full <=
        // capacity`.
        unsafe { _mm512_storeu_si512(p.add(len).cast(), _mm512_maskz_compress_epi32(mask, positions)) };
        len += mask.count_ones() as usize;
    }
    // SAFETY: the first `len` values are initialised (the old ones, and
    // each block's positions before the length passed them).
    unsafe { out.set_len(len) };
    out.extend((full..values.len()).filter(|&i| values[i] >= tau).map(|i| i as u32));
}

/// [`super::coarse_bounds`] in sixteen lanes: the operations of the AVX2
/// version (and of [`super::Bound`]) in the same order, with masks for the
/// lane tests, so that every path gives the same bits.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn coarse_bounds(x: &super::BoundsInputs<'_>, lo: &mut [f32], hi: &mut [f32]) -> bool {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm512_abs_ps, _mm512_add_ps, _mm512_cmp_ps_mask, _mm512_mask_blend_ps, _mm512_maskz_add_ps, _mm512_min_ps,
        _mm512_mul_ps, _mm512_set1_ps, _mm512_storeu_ps, _mm512_sub_ps, _CMP_NEQ_UQ, _CMP_NGE_UQ, _CMP_UNORD_Q,
    };
    let n = [x.base.len(), x.norm.len(), x.slack.len(), x.logv.len(), lo.len(), hi.len()]
        .into_iter()
        .fold(x.dot.len(), usize::min);
    let full = n - n % PAD;
    let c = |v: f32| _mm512_set1_ps(v);
    let (scale, floor) = (c(x.error.0), c(x.error.1));
    let (zero, nan, neg_inf) = (_mm512_setzero_ps(), c(f32::NAN), c(f32::NEG_INFINITY));
    let mut outside = 0u16;
    let mut i = 0;
    while i < full {
        // SAFETY: `i + PAD <= full <= n`, the length of every slice.
        let (dot, b, w, s, lv) = unsafe {
            (
                _mm512_loadu_ps(x.dot.as_ptr().add(i)),
                _mm512_loadu_ps(x.base.as_ptr().add(i)),
                _mm512_loadu_ps(x.norm.as_ptr().add(i)),
                _mm512_loadu_ps(x.slack.as_ptr().add(i)),
                _mm512_loadu_ps(x.logv.as_ptr().add(i)),
            )
        };
        // As `Bound::new`: scored (NaN included), `a` (0 when not
        // scored), `e`, and the lanes outside the validity.
        let scored = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(dot, neg_inf);
        let a = _mm512_maskz_add_ps(scored, b, dot);
        let e = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(scale, w), floor), s), c(k::E_WIDEN));
        let bad = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(lv, lv)
            | _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(_mm512_sub_ps(a, e), c(k::VALID_FROM));
        let out = scored & bad;
        outside |= out;
        let valid = scored & !out;
        // `min_ps(v, k)` gives `k` for a NaN `v`, as `f32::min`.
        let a = _mm512_min_ps(a, c(k::A_CAP));
        // As `Bound::rounding` and `Bound::coarse`.
        let abs_lv = _mm512_min_ps(_mm512_abs_ps(lv), c(k::LV_CAP));
        let sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_abs_ps(a), e), abs_lv), c(1.0));
        let rounding = _mm512_mul_ps(c(k::EPS), sum);
        let margin = _mm512_mul_ps(_mm512_add_ps(rounding, c(super::KEY_EPS)), c(k::MARGIN_WIDEN));
        let low = _mm512_sub_ps(_mm512_min_ps(_mm512_sub_ps(a, e), zero), c(k::LN_2_UP));
        let l = _mm512_sub_ps(_mm512_add_ps(lv, low), margin);
        let h = _mm512_add_ps(_mm512_add_ps(lv, _mm512_min_ps(_mm512_add_ps(a, e), zero)), margin);
        // SAFETY: as the loads.
        unsafe {
            _mm512_storeu_ps(lo.as_mut_ptr().add(i), _mm512_mask_blend_ps(valid, nan, l));
            _mm512_storeu_ps(hi.as_mut_ptr().add(i), _mm512_mask_blend_ps(valid, nan, h));
        }
        i += PAD;
    }
    let mut outside = outside != 0;
    for i in full..n {
        let lane = super::Bound::new(x.dot[i], x.base[i], x.norm[i], x.slack[i], x.logv[i], x.error);
        (lo[i], hi[i]) = lane.coarse();
        outside |= lane.outside;
    }
    outside
}

/// [`super::proxy_decisions`] for the first `n / 16` blocks of 16 rows;
/// returns how many rows it decided (the caller does the rest).
///
/// # Safety
///
/// The CPU must support AVX-512F; `n <= rows.len(), scores.len()`, and
/// every one of the first `n` rows is below `dense.len()`, `norms.len()`
/// and 2³¹ (the gather's and scatter's indices are signed).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn proxy_decisions(
    p: &super::ProxyInputs,
    n: usize,
    dense: &mut [f32],
    driven: &mut Vec<u32>,
    near: &mut Vec<u32>,
) -> usize {
    use std::arch::x86_64::{
        _mm512_add_pd, _mm512_cmp_pd_mask, _mm512_cvtps_pd, _mm512_i32gather_ps, _mm512_loadu_si512,
        _mm512_mask_i32scatter_ps, _mm512_mul_pd, _mm512_permutex2var_ps, _mm512_set1_pd, _mm512_setzero_pd,
        _mm512_sub_pd, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_UNORD_Q,
    };
    let blocks = n / PAD;
    // Each round stores 16 lanes from the current length on.
    driven.reserve(n + PAD);
    near.reserve(n + PAD);
    let (mut nd, mut nn) = (driven.len(), near.len());
    let (pd, pn) = (driven.as_mut_ptr(), near.as_mut_ptr());
    let (scale, floor) = (_mm512_set1_pd(p.band.0), _mm512_set1_pd(p.band.1));
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    // The decisions of 8 lanes in f64: (driven, near) masks.
    let decide = |norm: __m256, s: __m256| {
        let e = _mm512_add_pd(_mm512_mul_pd(scale, _mm512_cvtps_pd(norm)), floor);
        let s = _mm512_cvtps_pd(s);
        let is_driven = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(s, e);
        let close = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(s, s)
            | _mm512_cmp_pd_mask::<_CMP_GE_OQ>(s, _mm512_sub_pd(_mm512_setzero_pd(), e));
        (u16::from(is_driven), u16::from(!is_driven & close))
    };
    let high = |v: __m512| _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    for b in 0..blocks {
        let i = b * PAD;
        // SAFETY: `i + 16 <= n`, within `rows` and `scores` (32 f32 from
        // `2i`); the gather and scatter read and write offers below
        // `norms.len()` and `dense.len()` (the caller's contract); each
        // list has room for 16 more (reserved above, at most 16 a round).
        unsafe {
            let rows = _mm512_loadu_si512(p.rows.as_ptr().add(i).cast());
            let norms = _mm512_i32gather_ps::<4>(rows, p.norms.as_ptr().cast());
            let pairs = p.scores.as_ptr().add(i).cast::<f32>();
            let (a, c) = (_mm512_loadu_ps(pairs), _mm512_loadu_ps(pairs.add(PAD)));
            let dots = _mm512_permutex2var_ps(a, even, c);
            let signed = _mm512_permutex2var_ps(a, odd, c);
            let (d0, n0) = decide(_mm512_castps512_ps256(norms), _mm512_castps512_ps256(signed));
            let (d1, n1) = decide(high(norms), high(signed));
            let (is_driven, close) = (d0 | d1 << 8, n0 | n1 << 8);
            _mm512_mask_i32scatter_ps::<4>(dense.as_mut_ptr().cast(), !is_driven, rows, dots);
            _mm512_storeu_si512(pd.add(nd).cast(), _mm512_maskz_compress_epi32(is_driven, rows));
            _mm512_storeu_si512(pn.add(nn).cast(), _mm512_maskz_compress_epi32(close, rows));
            nd += is_driven.count_ones() as usize;
            nn += close.count_ones() as usize;
        }
    }
    // SAFETY: the first `nd` and `nn` values are initialised: the old
    // ones, and each round's, written before the lengths passed them.
    unsafe {
        driven.set_len(nd);
        near.set_len(nn);
    }
    blocks * PAD
}

/// [`super::fine_bounds`] sixteen offers at a time: the inputs gathered,
/// then `Bound::new`, `Bound::fine` and `ln1p_exp_neg` with the same
/// operations in the same order (no FMA), so the bits are those of the
/// portable path. `lo` and `hi` get one value per offer.
///
/// # Safety
///
/// The CPU must support AVX-512F, every offer must be below the length of
/// each of `x`'s slices, and those lengths below 2³¹ (the gathers take
/// signed 32-bit indices).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fine_bounds(x: &super::BoundsInputs<'_>, offers: &[u32], lo: &mut Vec<f32>, hi: &mut Vec<f32>) {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm512_abs_ps, _mm512_cmp_ps_mask, _mm512_mask_blend_ps, _mm512_mask_i32gather_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_add_ps, _mm512_maskz_loadu_epi32, _mm512_min_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_sub_ps,
        _CMP_GE_OQ, _CMP_NEQ_UQ, _CMP_UNORD_Q,
    };
    let n = offers.len();
    lo.clear();
    hi.clear();
    lo.reserve(n);
    hi.reserve(n);
    let c = |v: f32| _mm512_set1_ps(v);
    let (scale, floor) = (c(x.error.0), c(x.error.1));
    let (zero, one, nan, neg_inf) = (_mm512_setzero_ps(), c(1.0), c(f32::NAN), c(f32::NEG_INFINITY));
    let magic = c(super::MAGIC);
    let mut j = 0;
    while j < n {
        let mask: u16 = if n - j >= PAD { u16::MAX } else { (1u16 << (n - j)) - 1 };
        // SAFETY: the lanes of `mask` are offers `j..n`; each is below the
        // length of every slice gathered from (the caller's contract).
        let (dot, b, w, s, lv) = unsafe {
            let idx = _mm512_maskz_loadu_epi32(mask, offers.as_ptr().add(j).cast::<i32>());
            let gather = |v: &[f32]| _mm512_mask_i32gather_ps::<4>(nan, mask, idx, v.as_ptr());
            (gather(x.dot), gather(x.base), gather(x.norm), gather(x.slack), gather(x.logv))
        };
        // As `Bound::new`.
        let scored = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(dot, neg_inf);
        let a = _mm512_maskz_add_ps(scored, b, dot);
        let e = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(scale, w), floor), s), c(k::E_WIDEN));
        let valid_from = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_sub_ps(a, e), c(k::VALID_FROM));
        let valid = scored & !_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(lv, lv) & valid_from;
        let a = _mm512_min_ps(a, c(k::A_CAP));
        // As `Bound::fine`.
        let abs_a = _mm512_abs_ps(a);
        let key = _mm512_add_ps(lv, _mm512_sub_ps(_mm512_min_ps(a, zero), ln1p_exp_neg(abs_a, magic)));
        let abs_lv = _mm512_min_ps(_mm512_abs_ps(lv), c(k::LV_CAP));
        let rounding = _mm512_mul_ps(c(k::EPS), _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(abs_a, e), abs_lv), one));
        let margin = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(e, c(super::KEY_EPS)), rounding), c(k::MARGIN_WIDEN));
        let l = _mm512_mask_blend_ps(valid, nan, _mm512_sub_ps(key, margin));
        let h = _mm512_mask_blend_ps(valid, nan, _mm512_add_ps(key, margin));
        // SAFETY: `reserve(n)` made room for `n` values; lanes `j..n` only.
        unsafe {
            _mm512_mask_storeu_ps(lo.as_mut_ptr().add(j), mask, l);
            _mm512_mask_storeu_ps(hi.as_mut_ptr().add(j), mask, h);
        }
        j += PAD;
    }
    // SAFETY: every value up to `n` was written above.
    unsafe {
        lo.set_len(n);
        hi.set_len(n);
    }
}

/// [`super::reaching_words`] for the first `logv.len() / 64` words,
/// sixteen offers at a time, with the operations of `reaches`;
/// returns how many offers it decided (the caller does the rest).
///
/// # Safety
///
/// The CPU must support AVX-512F; `out` must have a word for every 64
/// offers of `logv`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn reaching_words(logv: &[f32], tau: f32, out: &mut [u64]) -> usize {
    use super::consts as k;
    use std::arch::x86_64::{
        _mm512_abs_ps, _mm512_cmp_ps_mask, _mm512_min_ps, _mm512_mul_ps, _mm512_set1_ps, _CMP_NLT_UQ,
    };
    let c = |v: f32| _mm512_set1_ps(v);
    let (one, tau) = (c(1.0), c(tau));
    // Whole words, four blocks each.
    let words = (logv.len() / 64).min(out.len());
    for (w, word) in out[..words].iter_mut().enumerate() {
        let mut bits = 0u64;
        for b in 0..4 {
            // SAFETY: `64w + 16b + 16 <= 64·words <= logv.len()`.
            let lv = unsafe { _mm512_loadu_ps(logv.as_ptr().add(64 * w + PAD * b)) };
            let m = _mm512_min_ps(_mm512_abs_ps(lv), c(k::LV_CAP));
            let rounding = _mm512_mul_ps(c(k::EPS), _mm512_add_ps(m, one));
            let margin = _mm512_mul_ps(_mm512_add_ps(rounding, c(super::KEY_EPS)), c(k::MARGIN_WIDEN));
            let stays = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(_mm512_add_ps(lv, margin), tau);
            bits |= u64::from(stays) << (16 * b);
        }
        *word = bits;
    }
    64 * words
}

/// [`super::ln1p_exp_neg`] in sixteen lanes, operation for operation.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn ln1p_exp_neg(z: __m512, magic: __m512) -> __m512 {
    use std::arch::x86_64::{
        _mm512_div_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_slli_epi32, _mm512_sub_epi32,
        _mm512_sub_ps, _mm512_xor_si512,
    };
    let c = |v: f32| _mm512_set1_ps(v);
    let z = _mm512_min_ps(z, c(40.0));
    let minus_z = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN)));
    let x = _mm512_mul_ps(minus_z, c(std::f32::consts::LOG2_E));
    let shifted = _mm512_add_ps(x, magic);
    let r = _mm512_sub_ps(shifted, magic);
    let n = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_castps_si512(magic));
    let g = _mm512_mul_ps(_mm512_sub_ps(x, r), c(std::f32::consts::LN_2));
    // Horner from the innermost term, as the scalar path folds.
    let mut p = c(super::EXP_TERMS[0]);
    for &coefficient in &super::EXP_TERMS[1..] {
        p = _mm512_add_ps(c(coefficient), _mm512_mul_ps(g, p));
    }
    let t = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32::<23>(n)));
    let s = _mm512_div_ps(t, _mm512_add_ps(c(2.0), t));
    let s2 = _mm512_mul_ps(s, s);
    let mut q = c(super::ATANH_TERMS[0]);
    for &coefficient in &super::ATANH_TERMS[1..] {
        q = _mm512_add_ps(c(coefficient), _mm512_mul_ps(s2, q));
    }
    _mm512_mul_ps(_mm512_mul_ps(c(2.0), s), q)
}

/// [`super::centre`] eight features at a time (the tail by the portable
/// loop): the same operations per feature, the sums in eight lanes.
///
/// # Safety
///
/// The CPU must support AVX-512F; every slice of `x` and `out` holds at
/// least `n` values.
#[target_feature(enable = "avx512f")]
#[allow(clippy::cast_ptr_alignment)] // `loadu` and `storel` take unaligned pointers
pub(super) unsafe fn centre(
    x: &super::CentreInputs<'_>,
    mut out: super::CentreOutputs<'_>,
    n: usize,
) -> super::Centred {
    use std::arch::x86_64::{
        __m256i, _mm256_loadu_si256, _mm256_storeu_ps, _mm512_abs_pd, _mm512_add_pd, _mm512_cmp_pd_mask,
        _mm512_cvtepi64_epi8, _mm512_cvtepu32_epi64, _mm512_cvtpd_ps, _mm512_loadu_pd, _mm512_mask_blend_pd,
        _mm512_maskz_mov_epi64, _mm512_maskz_sub_pd, _mm512_mul_pd, _mm512_reduce_add_pd, _mm512_set1_epi64,
        _mm512_set1_pd, _mm512_setzero_pd, _mm512_storeu_pd, _mm512_test_epi64_mask, _mm_storel_epi64, _CMP_NEQ_UQ,
    };
    const L: usize = 8;
    let full = n - n % L;
    let not_usable = _mm512_set1_epi64(i64::from(x.not_usable));
    // `qᵢ − θ` for the two values of `qᵢ`, as the portable loop computes it.
    let (other, proxy) = (_mm512_set1_pd(0.0 - x.theta), _mm512_set1_pd(1.0 - x.theta));
    let (zero, one) = (_mm512_setzero_pd(), _mm512_set1_epi64(1));
    let (mut abs, mut square, mut c_abs, mut c_square) = (zero, zero, zero, zero);
    let mut active = 0u8;
    let mut i = 0;
    while i < full {
        // SAFETY: `i + L <= full <= n`, within every slice; `bool` is one
        // byte holding 0 or 1, which is what the eight bytes stored are.
        unsafe {
            let bits = |v: &[u32]| _mm512_cvtepu32_epi64(_mm256_loadu_si256(v.as_ptr().add(i).cast::<__m256i>()));
            let masked = _mm512_test_epi64_mask(bits(x.masks), not_usable);
            let q = _mm512_test_epi64_mask(bits(x.proxies), not_usable);
            let d = _mm512_maskz_sub_pd(
                !masked,
                _mm512_loadu_pd(x.x.as_ptr().add(i)),
                _mm512_loadu_pd(x.baselines.as_ptr().add(i)),
            );
            let d_abs = _mm512_abs_pd(d);
            let c = _mm512_mul_pd(d_abs, _mm512_mask_blend_pd(q, other, proxy));
            _mm512_storeu_pd(out.d.as_mut_ptr().add(i), d);
            _mm256_storeu_ps(out.d32.as_mut_ptr().add(i), _mm512_cvtpd_ps(d));
            _mm256_storeu_ps(out.c32.as_mut_ptr().add(i), _mm512_cvtpd_ps(c));
            let flags = _mm512_cvtepi64_epi8(_mm512_maskz_mov_epi64(q, one));
            _mm_storel_epi64(out.is_proxy.as_mut_ptr().add(i).cast(), flags);
            active |= q & _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(d, zero);
            abs = _mm512_add_pd(abs, d_abs);
            square = _mm512_add_pd(square, _mm512_mul_pd(d, d));
            c_abs = _mm512_add_pd(c_abs, _mm512_abs_pd(c));
            c_square = _mm512_add_pd(c_square, _mm512_mul_pd(c, c));
        }
        i += L;
    }
    let sums = super::Centred {
        abs_sum: _mm512_reduce_add_pd(abs),
        square_sum: _mm512_reduce_add_pd(square),
        c_abs_sum: _mm512_reduce_add_pd(c_abs),
        c_square_sum: _mm512_reduce_add_pd(c_square),
        active_proxy: active != 0,
    };
    super::centre_loop(x, &mut out, full..n, sums)
}

/// [`super::select_largest`] from a threshold: the `k`-th largest of the
/// eight lanes' maxima is at most the `k`-th largest contribution, so the
/// features at or above it hold the answer; the scalar rule (in feature
/// order) picks it from those few: no rounds of maxima, each waiting for
/// the last. Past 64 features or 8 kept, or when the threshold is not
/// positive (fewer than `k` lanes hold a nonzero contribution), the AVX2
/// rounds of maxima decide.
///
/// # Safety
///
/// The CPU must support AVX-512F; `w`, `d` and `m` have the same length.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn select_largest(w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    // SAFETY: the same contract.
    let pick = unsafe { pick(w, d, m, top.len()) };
    // SAFETY: AVX-512F machines have AVX2 (`Isa::supported`).
    unsafe { super::avx2::select_picked(pick, (w, d, m), top) }
}

/// [`select_largest`]'s first part for each of `rows` (with the same `d`,
/// `m` and `k`), into `out` (cleared first): their chains of latency
/// overlap, as no branch on the data comes between them.
///
/// # Safety
///
/// As [`select_largest`], for each row.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn picks<'a>(
    rows: impl Iterator<Item = &'a [f64]>,
    d: &[f64],
    m: &[f64],
    k: usize,
    out: &mut Vec<super::Pick>,
) {
    out.clear();
    for w in rows {
        // SAFETY: the same contract.
        out.push(unsafe { pick(w, d, m, k) });
    }
}

/// The threshold's candidates as a word (`Pick::Listed`), or which
/// selection decides instead.
#[inline(always)]
unsafe fn pick(w: &[f64], d: &[f64], m: &[f64], k: usize) -> super::Pick {
    use super::Pick;
    use std::arch::x86_64::{
        _mm512_abs_pd, _mm512_alignr_epi64, _mm512_castpd_si512, _mm512_castsi512_pd, _mm512_cmp_pd_mask,
        _mm512_cmplt_epi64_mask, _mm512_mask_add_epi64, _mm512_mask_reduce_min_pd, _mm512_maskz_loadu_pd,
        _mm512_max_pd, _mm512_mul_pd, _mm512_set1_epi64, _mm512_set1_pd, _mm512_setzero_si512, _CMP_GE_OQ, _CMP_GT_OQ,
        _CMP_UNORD_Q,
    };
    let n = w.len().min(d.len()).min(m.len());
    if k == 0 {
        return Pick::Listed(0);
    }
    if n > 64 || k > 8 {
        return Pick::Rounds;
    }
    let mut blocks = [_mm512_set1_pd(0.0); 8];
    let (mut l0, mut l1) = (_mm512_set1_pd(0.0), _mm512_set1_pd(0.0));
    let mut nan = 0u8;
    for (b, block) in blocks.iter_mut().enumerate().take(n.div_ceil(8)) {
        let i = 8 * b;
        let lanes = if i + 8 <= n { u8::MAX } else { (1u8 << (n - i)) - 1 };
        // SAFETY: the masked loads read lanes below `n` only.
        let c = unsafe {
            _mm512_mul_pd(
                _mm512_mul_pd(
                    _mm512_maskz_loadu_pd(lanes, w.as_ptr().add(i)),
                    _mm512_maskz_loadu_pd(lanes, d.as_ptr().add(i)),
                ),
                _mm512_maskz_loadu_pd(lanes, m.as_ptr().add(i)),
            )
        };
        nan |= _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(c, c);
        *block = _mm512_abs_pd(c);
        if b % 2 == 0 {
            l0 = _mm512_max_pd(l0, *block);
        } else {
            l1 = _mm512_max_pd(l1, *block);
        }
    }
    if nan != 0 {
        return Pick::Scalar;
    }
    let l = _mm512_max_pd(l0, l1);
    // Each lane's count of the lanes strictly larger: those below `k` hold
    // the `k` largest values, the smallest of them the `k`-th.
    let li = _mm512_castpd_si512(l);
    let one = _mm512_set1_epi64(1);
    let mut larger = _mm512_setzero_si512();
    macro_rules! count {
        ($($r:literal)*) => {$(
            let other = _mm512_castsi512_pd(_mm512_alignr_epi64::<$r>(li, li));
            larger = _mm512_mask_add_epi64(larger, _mm512_cmp_pd_mask::<_CMP_GT_OQ>(other, l), larger, one);
        )*};
    }
    count!(1 2 3 4 5 6 7);
    let threshold = _mm512_mask_reduce_min_pd(_mm512_cmplt_epi64_mask(larger, _mm512_set1_epi64(k as i64)), l);
    if threshold <= 0.0 {
        return Pick::Rounds;
    }
    let t = _mm512_set1_pd(threshold);
    let mut word = 0u64;
    for (b, block) in blocks.iter().enumerate() {
        word |= u64::from(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(*block, t)) << (8 * b);
    }
    Pick::Listed(word)
}
