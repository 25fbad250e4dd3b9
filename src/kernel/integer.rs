//! Scoring from 16-bit integer weights. With AVX-512 VNNI one `vpdpwssd`
//! multiplies two pairs of 16-bit integers per lane and adds both products
//! to a 32-bit sum, exactly, so a register does 32 multiply-adds in one
//! instruction (the grouped bf16 kernel needs three instructions for as
//! many): on the Intel Xeon here 52–56 ns against 83–86 ns per group of 64
//! offers × 64 features. With AVX2, `vpmaddwd` and `vpaddd` do 16 in two
//! (and read half the bytes of the f32 rows, which bound them on Zen 3).
//!
//! Each offer's weights are `sₒ·qᵢ` with integers `|qᵢ| ≤ L` and one scale
//! per offer; the customer's centred values are `s_d·pᵢ` likewise, chosen
//! per decision ([`quantize`]). `L = ⌊√((2³¹ − 1) / stride)⌋` (5,792 at
//! stride 64), so that no 32-bit sum can overflow: the integer dot product
//! is exact. The only roundings are then the conversion of the sum to f32,
//! the product `sₒ·s_d` and their product, each `2⁻²⁴` relative: well within
//! [`super::logit_error`].
//!
//! Against the exact `w·d` the score also carries the quantisation of both
//! sides, `|w̃·d̃ − w·d| ≤ ‖w̃ − w‖·‖d̃‖ + ‖w‖·‖d̃ − d‖`. With `ρ = ‖d̃ −
//! d‖ / ‖d‖` that is at most `‖d‖·((1 + ρ)·‖w̃ − w‖ + ρ‖w‖)`, which the
//! per-offer norm [`IntGroups::norm`] and the per-customer factor
//! [`Quantized::widen`] turn into the usual `ε·‖d‖·norm` form of the coarse
//! bounds.

use super::{groups_to_score, write_masked, Groups, Isa, Matrix, GROUP};

/// Relative size `ρ` of a customer's quantisation error that the offers'
/// norms allow for, in units of `1 / L`. A customer whose `ρ` is larger
/// widens its bounds by `ρ / ρ_max` (see [`Quantized::widen`]); each
/// value's error is at most `s_d / 2`, about `0.29·s_d` on average, so
/// typically `ρ ≈ 2.3·max|dᵢ| / (L·‖d‖)` at 64 features, below this.
const RHO_MAX_UNITS: f64 = 1.5;

/// Least scale of an offer or a customer (2⁻⁶⁰): below it the values count
/// as zero (offers) or the decision keeps the bf16 kernel (customers), so
/// that `sₒ·s_d` stays a normal f32.
const TINY_SCALE: f32 = f32::from_bits(67 << 23);

/// The largest `|q|` for weights and values at `stride` features.
pub(crate) fn limit(stride: usize) -> i32 {
    let l = ((i32::MAX as f64) / stride.max(1) as f64).sqrt().floor();
    l.min(f64::from(i16::MAX)) as i32
}

/// An integer as the low or high half of an entry.
fn half(q: i32) -> u32 {
    u32::from(q as i16 as u16)
}

/// The integers of an entry: `(low, high)`.
fn halves(entry: u32) -> (i32, i32) {
    (i32::from(entry as u16 as i16), i32::from((entry >> 16) as u16 as i16))
}

/// The weights as 16-bit integers with one scale per offer, laid out as
/// [`Groups`]: entry `j` of line `q` of group `g` holds offer `64g + j`'s
/// features `2q` (low half) and `2q + 1` (high half).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct IntGroups {
    groups: Groups,
    /// `sₒ` per offer, up to whole groups (1 past the rows).
    scale: Vec<f32>,
    limit: i32,
}

impl IntGroups {
    /// `w`'s rows quantised: `sₒ = max|wᵢ| / L` (in f32), `qᵢ = wᵢ / sₒ`
    /// rounded to nearest. Offers whose scale would be below 2⁻⁶⁰ get zero
    /// weights (their error is then their whole size, counted as such).
    pub(crate) fn from_rows(w: &Matrix) -> IntGroups {
        let limit = limit(w.stride());
        let groups = w.rows.div_ceil(GROUP);
        // `None`: zero weights (past the rows, or too small to scale).
        let scales: Vec<Option<f32>> = (0..groups * GROUP)
            .map(|o| {
                let max = w.row(o)?.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                Some(max / limit as f32).filter(|s| *s >= TINY_SCALE && s.is_finite())
            })
            .collect();
        let q = |o: usize, f: usize| match (w.row(o), scales[o]) {
            (Some(row), Some(s)) => ((row[f] / s).round() as i32).clamp(-limit, limit),
            _ => 0,
        };
        let groups = Groups::from_fn(groups, w.stride() / 2, |o, p| half(q(o, 2 * p)) | half(q(o, 2 * p + 1)) << 16);
        IntGroups { groups, scale: scales.iter().map(|s| s.unwrap_or(1.0)).collect(), limit }
    }

    /// Offer `o`'s weight of feature `f` as the kernel reads it (`sₒ·qᵢ`,
    /// exact in f64), or `None` past the groups or the features.
    pub(crate) fn weight(&self, o: usize, f: usize) -> Option<f64> {
        let (low, high) = halves(self.groups.entry(o, f / 2)?);
        let q = if f.is_multiple_of(2) { low } else { high };
        Some(f64::from(self.scale[o]) * f64::from(q))
    }

    /// The norm that makes the coarse bounds `ε·‖d‖·norm` hold for this
    /// kernel's scores (together with [`Quantized::widen`]): `‖w̃‖ + (‖w̃ −
    /// w‖ + ρ_max·‖w‖) / ε`, for `(w, w̃)` pairs of an offer's weights (f64
    /// and [`IntGroups::weight`]). Not rounded.
    pub(crate) fn norm(&self, pairs: impl Iterator<Item = (f64, f64)>, epsilon: f64) -> f64 {
        let (kept, moved, own) = super::rounding_norms(pairs);
        kept + (moved + self.rho_max() * own) / epsilon
    }

    /// `ρ_max` (see [`RHO_MAX_UNITS`]).
    fn rho_max(&self) -> f64 {
        RHO_MAX_UNITS / f64::from(self.limit)
    }

    /// Features per offer (the f32 rows' stride).
    pub(crate) fn features(&self) -> usize {
        self.groups.features()
    }
}

/// A customer's centred values as 16-bit integers, for [`dots_int`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quantized {
    /// `s_d`.
    pub(crate) scale: f32,
    /// The factor `(1 + ρ)·max(1, ρ / ρ_max)` (rounded up) by which the
    /// bounds' `ε·‖d‖` grows for this customer.
    pub(crate) widen: f64,
}

/// Quantises `d` (the centred values, zeros past them up to the groups'
/// features) into `out` as pairs of 16-bit integers: `s_d = max|dᵢ| / L`,
/// `pᵢ = dᵢ / s_d` rounded to nearest, ties to even (the same integers on
/// every path). `None` when `s_d` would be below 2⁻⁶⁰ (then the caller
/// scores otherwise) or `d` is not finite. `d_norm` is `‖d‖₂`, rounded up
/// by at most a factor `1 + 10⁻⁹`.
pub(crate) fn quantize(isa: Isa, m: &IntGroups, d: &[f64], d_norm: f64, out: &mut Vec<u32>) -> Option<Quantized> {
    let d = &d[..d.len().min(m.features())];
    let max = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only used after `Isa::supported` found
        // avx512f.
        Isa::Avx512 => unsafe { max_abs_avx512(d) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, with avx2 found.
        Isa::Avx2Fma => unsafe { max_abs_avx2(d) },
        _ => d.iter().try_fold(0.0f64, |a, v| v.is_finite().then(|| a.max(v.abs()))),
    }?;
    let scale = (max / f64::from(m.limit)) as f32;
    if !(scale >= TINY_SCALE && scale.is_finite() && d_norm.is_finite()) {
        return None;
    }
    out.clear();
    out.resize(m.features() / 2, 0);
    let steps = (f64::from(scale), 1.0 / f64::from(scale), m.limit);
    let moved = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only used after `Isa::supported`
            // found avx512f; `out` holds `features / 2` pairs, a multiple
            // of 8 (the stride is a multiple of 16), and `d` at most
            // `features` values (cut above).
            unsafe { fill_avx512(d, steps, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as above, with avx2 and fma found.
            unsafe { fill_avx2(d, steps, out) }
        }
        _ => fill_portable(d, steps, out),
    };
    // Rounded up: the sums and roots are within a few units of 2⁻⁵³ a term,
    // and `d_norm` within 10⁻⁹ of `‖d‖₂`.
    let rho = if d_norm > 0.0 { moved.sqrt() / d_norm * (1.0 + 1e-8) } else { 0.0 };
    let widen = (1.0 + rho) * (rho / m.rho_max()).max(1.0) * (1.0 + 1e-9);
    Some(Quantized { scale, widen })
}

/// `max|dᵢ|`, or `None` when some value is not finite, eight at a time.
///
/// # Safety
///
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_abs_avx512(d: &[f64]) -> Option<f64> {
    use std::arch::x86_64::{
        _mm512_abs_pd, _mm512_cmp_pd_mask, _mm512_maskz_loadu_pd, _mm512_max_pd, _mm512_reduce_max_pd, _mm512_set1_pd,
        _mm512_setzero_pd, _CMP_NLT_UQ,
    };
    let (mut max, mut bad) = (_mm512_setzero_pd(), 0u8);
    let infinity = _mm512_set1_pd(f64::INFINITY);
    for i in (0..d.len()).step_by(8) {
        let lanes = ((1u16 << (d.len() - i).min(8)) - 1) as u8;
        // SAFETY: the masked load touches only values below `d.len()`.
        let x = _mm512_abs_pd(unsafe { _mm512_maskz_loadu_pd(lanes, d.as_ptr().add(i)) });
        // Not below infinity: infinite or NaN.
        bad |= _mm512_cmp_pd_mask::<_CMP_NLT_UQ>(x, infinity);
        max = _mm512_max_pd(max, x);
    }
    (bad == 0).then(|| _mm512_reduce_max_pd(max))
}

/// The lanes of four below `left` (at most 4), as a mask for
/// `vmaskmovpd`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn below(left: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::{_mm256_cmpgt_epi64, _mm256_set1_epi64x, _mm256_setr_epi64x};
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(left.min(4) as i64), _mm256_setr_epi64x(0, 1, 2, 3))
}

/// [`max_abs_avx512`] with AVX2, four at a time.
///
/// # Safety
///
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_abs_avx2(d: &[f64]) -> Option<f64> {
    use std::arch::x86_64::{
        _mm256_andnot_pd, _mm256_cmp_pd, _mm256_maskload_pd, _mm256_max_pd, _mm256_movemask_pd, _mm256_or_pd,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd, _CMP_NLT_UQ,
    };
    let (mut max, mut bad) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let (sign, infinity) = (_mm256_set1_pd(-0.0), _mm256_set1_pd(f64::INFINITY));
    for i in (0..d.len()).step_by(4) {
        // SAFETY: the masked load touches only values below `d.len()`.
        let x = _mm256_andnot_pd(sign, unsafe { _mm256_maskload_pd(d.as_ptr().add(i), below(d.len() - i)) });
        // Not below infinity: infinite or NaN.
        bad = _mm256_or_pd(bad, _mm256_cmp_pd::<_CMP_NLT_UQ>(x, infinity));
        max = _mm256_max_pd(max, x);
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds four f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), max) };
    (_mm256_movemask_pd(bad) == 0).then(|| lanes.iter().fold(0.0f64, |a, &v| a.max(v)))
}

/// [`fill_portable`] eight values at a time with AVX2 (`vcvtpd2dq` rounds
/// as the portable path does, `vpackssdw` packs the pairs: the values are
/// within `±L` already).
///
/// # Safety
///
/// The CPU must support AVX2 and FMA; `out.len()` is a multiple of 4 and
/// `d.len() <= 2 · out.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fill_avx2(d: &[f64], (s, inv, limit): (f64, f64, i32), out: &mut [u32]) -> f64 {
    use std::arch::x86_64::{
        _mm256_cvtepi32_pd, _mm256_cvtpd_epi32, _mm256_fmadd_pd, _mm256_fmsub_pd, _mm256_maskload_pd, _mm256_mul_pd,
        _mm256_set1_pd, _mm256_setzero_pd, _mm256_storeu_pd, _mm_max_epi32, _mm_min_epi32, _mm_packs_epi32,
        _mm_set1_epi32, _mm_storeu_si128,
    };
    debug_assert!(out.len().is_multiple_of(4) && d.len() <= 2 * out.len());
    let (sv, iv) = (_mm256_set1_pd(s), _mm256_set1_pd(inv));
    let (low, high) = (_mm_set1_epi32(-limit), _mm_set1_epi32(limit));
    let mut moved = _mm256_setzero_pd();
    for (c, chunk) in out.chunks_exact_mut(4).enumerate() {
        let i = 8 * c;
        let load = |from: usize| {
            // SAFETY: the masked load touches only values below `d.len()`.
            unsafe { _mm256_maskload_pd(d.as_ptr().wrapping_add(from), below(d.len().saturating_sub(from))) }
        };
        let (x0, x1) = (load(i), load(i + 4));
        let clamp = |x| _mm_min_epi32(_mm_max_epi32(_mm256_cvtpd_epi32(_mm256_mul_pd(x, iv)), low), high);
        let (q0, q1) = (clamp(x0), clamp(x1));
        let e0 = _mm256_fmsub_pd(_mm256_cvtepi32_pd(q0), sv, x0);
        let e1 = _mm256_fmsub_pd(_mm256_cvtepi32_pd(q1), sv, x1);
        moved = _mm256_fmadd_pd(e1, e1, _mm256_fmadd_pd(e0, e0, moved));
        // SAFETY: `chunk` holds 4 u32, the 16 bytes stored.
        unsafe { _mm_storeu_si128(chunk.as_mut_ptr().cast(), _mm_packs_epi32(q0, q1)) };
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds four f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), moved) };
    lanes.iter().sum()
}

/// [`quantize`]'s integers into `out`; returns `Σ(s_d·pᵢ − dᵢ)²`.
fn fill_portable(d: &[f64], (s, inv, limit): (f64, f64, i32), out: &mut [u32]) -> f64 {
    /// `y + M − M` is `y` rounded to nearest, ties to even, for `|y| < 2⁵¹`.
    const M: f64 = 6_755_399_441_055_744.0;
    let mut moved = 0.0;
    for (p, pair) in out.iter_mut().enumerate() {
        let mut q = [0i32; 2];
        for (h, q) in q.iter_mut().enumerate() {
            let x = d.get(2 * p + h).copied().unwrap_or(0.0);
            *q = ((x * inv + M - M) as i32).clamp(-limit, limit);
            let e = s * f64::from(*q) - x;
            moved += e * e;
        }
        *pair = half(q[0]) | half(q[1]) << 16;
    }
    moved
}

/// [`fill_portable`] sixteen values at a time (`vcvtpd2dq` rounds as the
/// portable path does, and `vpmovdw` packs the pairs).
///
/// # Safety
///
/// The CPU must support AVX-512F; `out.len()` is a multiple of 8 and
/// `d.len() <= 2 · out.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_avx512(d: &[f64], (s, inv, limit): (f64, f64, i32), out: &mut [u32]) -> f64 {
    use std::arch::x86_64::{
        _mm256_storeu_si256, _mm512_castsi256_si512, _mm512_cvtepi32_epi16, _mm512_cvtepi32_pd, _mm512_cvtpd_epi32,
        _mm512_extracti64x4_epi64, _mm512_fmadd_pd, _mm512_fmsub_pd, _mm512_inserti64x4, _mm512_maskz_loadu_pd,
        _mm512_max_epi32, _mm512_min_epi32, _mm512_mul_pd, _mm512_reduce_add_pd, _mm512_set1_epi32, _mm512_set1_pd,
        _mm512_setzero_pd,
    };
    debug_assert!(out.len().is_multiple_of(8) && d.len() <= 2 * out.len());
    let (sv, iv) = (_mm512_set1_pd(s), _mm512_set1_pd(inv));
    let (low, high) = (_mm512_set1_epi32(-limit), _mm512_set1_epi32(limit));
    let mut moved = _mm512_setzero_pd();
    for (c, chunk) in out.chunks_exact_mut(8).enumerate() {
        let i = 16 * c;
        let lanes = |from: usize| -> u8 {
            let left = d.len().saturating_sub(from).min(8);
            ((1u16 << left) - 1) as u8
        };
        // SAFETY: the masked loads touch only values below `d.len()`.
        let (x0, x1) = unsafe {
            (
                _mm512_maskz_loadu_pd(lanes(i), d.as_ptr().wrapping_add(i)),
                _mm512_maskz_loadu_pd(lanes(i + 8), d.as_ptr().wrapping_add(i + 8)),
            )
        };
        let (q0, q1) = (_mm512_cvtpd_epi32(_mm512_mul_pd(x0, iv)), _mm512_cvtpd_epi32(_mm512_mul_pd(x1, iv)));
        let q = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(q0), q1);
        let q = _mm512_min_epi32(_mm512_max_epi32(q, low), high);
        let e0 = _mm512_fmsub_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<0>(q)), sv, x0);
        let e1 = _mm512_fmsub_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(q)), sv, x1);
        moved = _mm512_fmadd_pd(e1, e1, _mm512_fmadd_pd(e0, e0, moved));
        // SAFETY: `chunk` holds 8 u32, the 32 bytes stored.
        unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(q)) };
    }
    _mm512_reduce_add_pd(moved)
}

/// `out[o] = f32(Σ qᵢpᵢ) · (sₒ·s_d)` for each offer `o` set in `words` and
/// within `out`, as [`super::dots_grouped`] (groups with no bit set are
/// skipped; the others' bits pick what is written). `dq` is
/// [`quantize`]'s output. Every path gives the same bits: the sums are
/// exact integers, and the two roundings after are the same f32 operations
/// in the same order.
pub(crate) fn dots_int(isa: Isa, m: &IntGroups, words: &[u64], (dq, scale): (&[u32], f32), out: &mut [f32]) {
    assert_eq!(dq.len(), m.features() / 2, "quantised values must match the grouped weights");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if vnni() => {
            // SAFETY: `Isa::Avx512` is only used after `Isa::supported`
            // found avx512f; avx512vnni was found just now; `dq` holds one
            // pair per line of a group (asserted above).
            unsafe { dots_vnni(m, words, dq, scale, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2;
            // `dq` holds one pair per line of a group (asserted above).
            unsafe { dots_avx2(m, words, dq, scale, out) }
        }
        _ => dots_portable(m, words, (dq, scale), out),
    }
}

/// Whether [`dots_int`] is the engine's grouped kernel with `isa`: with
/// AVX2 (`vpmaddwd`: 1,317 against 1,864 ns for the f32 rows of 1,000
/// offers, `kernel_timings` on the Xeon), and with AVX-512 where the CPU
/// has VNNI (849 against 1,183 ns for the bf16 groups). AVX-512 without
/// VNNI keeps the bf16 groups, quicker than the AVX2 integers; the
/// portable kernel is the definition only.
pub(crate) fn available(isa: Isa) -> bool {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => vnni(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => true,
        _ => false,
    }
}

#[cfg(target_arch = "x86_64")]
fn vnni() -> bool {
    std::arch::is_x86_feature_detected!("avx512vnni")
}

/// The definition, one offer's lane at a time.
fn dots_portable(m: &IntGroups, words: &[u64], (dq, scale): (&[u32], f32), out: &mut [f32]) {
    for (g, word, lines) in groups_to_score(&m.groups, words) {
        let mut sums = [0i32; GROUP];
        for (line, &pair) in lines.chunks_exact(GROUP).zip(dq) {
            let (a, b) = halves(pair);
            for (s, &entry) in sums.iter_mut().zip(line) {
                let (x, y) = halves(entry);
                // Never wraps: |q|, |p| ≤ L, and stride · L² < 2³¹.
                *s = s.wrapping_add(x * a).wrapping_add(y * b);
            }
        }
        let dots = std::array::from_fn(|j| sums[j] as f32 * (m.scale[g * GROUP + j] * scale));
        write_masked(out, g * GROUP, word, &dots);
    }
}

/// [`dots_int`] with AVX-512 VNNI: a group's 64 sums in four registers.
///
/// # Safety
///
/// The CPU must support AVX-512F and AVX-512 VNNI; `dq` holds
/// `m.features() / 2` pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dots_vnni(m: &IntGroups, words: &[u64], dq: &[u32], scale: f32, out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm512_cvtepi32_ps, _mm512_dpwssd_epi32, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mul_ps, _mm512_set1_epi32,
        _mm512_set1_ps, _mm512_setzero_si512,
    };
    const PAD: usize = super::PAD;
    let sd = _mm512_set1_ps(scale);
    for (g, word, lines) in groups_to_score(&m.groups, words) {
        let mut acc = [_mm512_setzero_si512(); 4];
        for (line, &pair) in lines.chunks_exact(GROUP).zip(dq) {
            let p = _mm512_set1_epi32(pair as i32);
            for (b, acc) in acc.iter_mut().enumerate() {
                // SAFETY: a line holds GROUP = 64 entries, so 16b + 16.
                let v = unsafe { _mm512_loadu_si512(line.as_ptr().add(PAD * b).cast()) };
                *acc = _mm512_dpwssd_epi32(*acc, v, p);
            }
        }
        let base = g * GROUP;
        // SAFETY: `scale` holds whole groups, and this one is within them.
        let offer_scale = |b: usize| unsafe { _mm512_loadu_ps(m.scale.as_ptr().add(base + PAD * b)) };
        let dots =
            std::array::from_fn(|b| _mm512_mul_ps(_mm512_cvtepi32_ps(acc[b]), _mm512_mul_ps(offer_scale(b), sd)));
        // SAFETY: the CPU has AVX-512F (this function's contract).
        unsafe { super::avx512::write_group(out, base, word, &dots) };
    }
}

/// [`dots_int`] with AVX2: `vpmaddwd` multiplies the pairs and adds each
/// lane's two products (exact: `|q|, |p| ≤ L`), `vpaddd` accumulates; a
/// group's 64 sums in eight registers.
///
/// # Safety
///
/// The CPU must support AVX2; `dq` holds `m.features() / 2` pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(m: &IntGroups, words: &[u64], dq: &[u32], scale: f32, out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_add_epi32, _mm256_cvtepi32_ps, _mm256_loadu_ps, _mm256_loadu_si256, _mm256_madd_epi16, _mm256_mul_ps,
        _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_si256, _mm256_storeu_ps,
    };
    const LANES: usize = super::LANES;
    let sd = _mm256_set1_ps(scale);
    for (g, word, lines) in groups_to_score(&m.groups, words) {
        let mut acc = [_mm256_setzero_si256(); GROUP / LANES];
        for (line, &pair) in lines.chunks_exact(GROUP).zip(dq) {
            let p = _mm256_set1_epi32(pair as i32);
            for (b, acc) in acc.iter_mut().enumerate() {
                // SAFETY: a line holds GROUP = 64 entries, so 8b + 8.
                let v = unsafe { _mm256_loadu_si256(line.as_ptr().add(LANES * b).cast()) };
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(v, p));
            }
        }
        let base = g * GROUP;
        let mut dots = [0.0f32; GROUP];
        for (b, acc) in acc.iter().enumerate() {
            // SAFETY: `scale` holds whole groups, and this one is within
            // them; `dots` holds 64 f32, so 8b + 8.
            unsafe {
                let offer_scale = _mm256_loadu_ps(m.scale.as_ptr().add(base + LANES * b));
                let dot = _mm256_mul_ps(_mm256_cvtepi32_ps(*acc), _mm256_mul_ps(offer_scale, sd));
                _mm256_storeu_ps(dots.as_mut_ptr().add(LANES * b), dot);
            }
        }
        // SAFETY: the CPU has AVX2 (this function's contract).
        unsafe { super::avx2::write_group(out, base, word, &dots) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::logit_error;
    use crate::kernel::tests::stream;

    fn norm(d: &[f64]) -> f64 {
        d.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    #[test]
    fn sums_cannot_overflow() {
        for stride in [16, 32, 64, 96, 128, 1024, 4096] {
            let l = i64::from(limit(stride));
            assert!(stride as i64 * l * l <= i64::from(i32::MAX), "stride {stride}");
            assert!(stride as i64 * (l + 1) * (l + 1) > i64::from(i32::MAX) || l == 32767, "stride {stride}: tight");
        }
        assert_eq!(limit(64), 5792);
    }

    /// Weights of `rows × cols` at several scales, some rows zero or tiny.
    fn weights(rows: usize, cols: usize, seed: u64) -> Matrix {
        let mut next = stream(seed);
        let scale: Vec<f64> = (0..rows).map(|r| [0.0, 1e-30, 1e-3, 1.0, 7.0, 1e6][r % 6]).collect();
        Matrix::from_fn(rows, cols, |r, _| (next() * scale[r]) as f32)
    }

    #[test]
    fn weights_are_the_scaled_integers_nearest_them() {
        for (rows, cols) in [(1, 1), (6, 16), (70, 17), (130, 64), (3, 85)] {
            let w = weights(rows, cols, rows as u64);
            let g = IntGroups::from_rows(&w);
            assert_eq!(g.features(), w.stride());
            let l = f64::from(limit(w.stride()));
            for o in 0..rows.div_ceil(GROUP) * GROUP {
                for f in 0..w.stride() {
                    let got = g.weight(o, f).unwrap();
                    let Some(row) = w.row(o) else {
                        assert_eq!(got, 0.0, "offer {o} past the rows");
                        continue;
                    };
                    let max = row.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
                    let x = f64::from(row[f]);
                    if max / l < f64::from(TINY_SCALE) {
                        assert_eq!(got, 0.0, "offer {o}: too small to scale");
                    } else {
                        // Half a step of `max / L` (and the f32 scale's rounding).
                        assert!((got - x).abs() <= max / l * (0.5 + 1e-6), "offer {o}, feature {f}: {got} for {x}");
                    }
                }
            }
            assert_eq!(g.weight(0, w.stride()), None);
            assert_eq!(g.weight(rows.div_ceil(GROUP) * GROUP, 0), None);
        }
    }

    #[test]
    fn quantized_values_carry_their_error_bound() {
        let g = IntGroups::from_rows(&weights(1, 64, 1));
        let mut out = Vec::new();
        for isa in Isa::available() {
            assert_eq!(quantize(isa, &g, &[0.0; 10], 0.0, &mut out), None, "all zero");
            assert_eq!(quantize(isa, &g, &[1e-20, 0.0], 1e-20, &mut out), None, "too small to scale");
            assert_eq!(quantize(isa, &g, &[f64::NAN, 1.0], f64::NAN, &mut out), None, "not finite");
            assert_eq!(quantize(isa, &g, &[f64::INFINITY, 1.0], f64::INFINITY, &mut out), None, "not finite");
        }
        let mut next = stream(3);
        for case in 0..50 {
            let n = 1 + case % 64;
            let mixed = case % 2 == 0;
            let d: Vec<f64> = (0..n).map(|i| next() * if mixed && i % 7 == 0 { 50.0 } else { 1.0 }).collect();
            let q = quantize(Isa::Portable, &g, &d, norm(&d), &mut out).unwrap();
            assert_eq!(out.len(), 32);
            for isa in Isa::available() {
                let mut other = vec![9; 3];
                let r = quantize(isa, &g, &d, norm(&d), &mut other).unwrap();
                assert_eq!((&other, r.scale), (&out, q.scale), "{isa:?}: the same integers and scale");
                assert!((r.widen - q.widen).abs() <= 1e-12, "{isa:?}");
            }
            let s = f64::from(q.scale);
            let (mut moved, mut own) = (0.0, 0.0);
            for f in 0..64 {
                let (low, high) = halves(out[f / 2]);
                let p = if f % 2 == 0 { low } else { high };
                let x = d.get(f).copied().unwrap_or(0.0);
                assert!((s * f64::from(p) - x).abs() <= s * 0.5 * (1.0 + 1e-9) + 1e-300, "case {case}, value {f}");
                moved += (s * f64::from(p) - x).powi(2);
                own += x * x;
            }
            let rho = moved.sqrt() / own.sqrt();
            assert!(q.widen >= (1.0 + rho) * (rho / g.rho_max()).max(1.0), "case {case}");
            if !mixed && n >= 8 {
                assert!(q.widen < 1.01, "case {case}: values of one size need little widening ({})", q.widen);
            }
        }
    }

    /// Every path gives the same bits, within the bound the engine uses
    /// of the exact dot product, and writes only the offers set.
    #[test]
    fn dots_hold_the_bound_on_every_path() {
        for (rows, cols, seed) in [(6, 16, 1), (70, 17, 2), (130, 64, 3), (64, 85, 4), (200, 64, 5)] {
            let w = weights(rows, cols, seed);
            let g = IntGroups::from_rows(&w);
            let stride = w.stride();
            let epsilon = logit_error(stride);
            let mut next = stream(seed + 10);
            let d: Vec<f64> = (0..cols).map(|i| next() * if i % 5 == 0 { 9.0 } else { 1.0 }).collect();
            let d_norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
            let mut dq = Vec::new();
            let q = quantize(Isa::Portable, &g, &d, norm(&d), &mut dq).unwrap();
            // Every other offer, and a word past the groups.
            let width = rows.div_ceil(GROUP) * GROUP;
            let mut words = vec![0x5555_5555_5555_5555u64; width / GROUP + 1];
            *words.last_mut().unwrap() = u64::MAX;
            let mut first: Option<Vec<f32>> = None;
            for isa in Isa::available() {
                let mut out = vec![7.0f32; width + 8];
                dots_int(isa, &g, &words, (&dq, q.scale), &mut out);
                for (o, &got) in out.iter().enumerate() {
                    if o % 2 == 1 || o >= width {
                        assert_eq!(got, 7.0, "{isa:?}: offer {o} not set, or past the groups");
                        continue;
                    }
                    let Some(row) = w.row(o) else {
                        assert_eq!(got, 0.0, "{isa:?}: offer {o} past the rows");
                        continue;
                    };
                    let exact: f64 = row.iter().zip(&d).map(|(&w, &x)| f64::from(w) * x).sum();
                    let pairs =
                        (0..stride).map(|f| (row.get(f).map_or(0.0, |&v| f64::from(v)), g.weight(o, f).unwrap()));
                    let bound = epsilon * d_norm * q.widen * g.norm(pairs, epsilon);
                    let got = f64::from(got);
                    assert!((got - exact).abs() <= bound, "{isa:?}, offer {o}: {got} for {exact}, bound {bound}");
                }
                match &first {
                    None => first = Some(out),
                    Some(a) => assert_eq!(a, &out, "{isa:?}: the same bits as the first path"),
                }
            }
        }
    }

    /// Inputs that reach each part of the bound: weights halfway between
    /// two steps (rounding one way) against values of the other sign, and
    /// values halfway between steps against weights of their sign. The
    /// error then exceeds the bound without that part, and stays within it.
    #[test]
    fn each_part_of_the_bound_is_reached() {
        let l = limit(64) as f32;
        let step = 1.0 / l;
        let bound_of = |w: &[f32], d: &[f64]| {
            let m = Matrix::from_fn(1, 64, |_, f| w[f]);
            let g = IntGroups::from_rows(&m);
            let mut dq = Vec::new();
            let q = quantize(Isa::Portable, &g, d, norm(d), &mut dq).unwrap();
            let mut out = vec![0.0f32; 1];
            dots_int(Isa::Portable, &g, &[1], (&dq, q.scale), &mut out);
            let exact: f64 = w.iter().zip(d).map(|(&w, &x)| f64::from(w) * x).sum();
            let epsilon = logit_error(64);
            let d_norm = d.iter().map(|x| x * x).sum::<f64>().sqrt();
            let pairs = || (0..64).map(|f| (f64::from(w[f]), g.weight(0, f).unwrap()));
            let (mut moved, mut own) = (0.0f64, 0.0f64);
            for (w, r) in pairs() {
                moved += (r - w) * (r - w);
                own += w * w;
            }
            let error = (f64::from(out[0]) - exact).abs();
            let full = epsilon * d_norm * q.widen * g.norm(pairs(), epsilon);
            // Without the weights' rounding, and without the values'.
            let no_weights = full - d_norm * q.widen * moved.sqrt();
            let no_values = epsilon * d_norm * g.norm(pairs(), epsilon) - d_norm * g.rho_max() * own.sqrt();
            (error, full, no_weights, no_values)
        };
        // Weights: 1, then 3.5 steps (rounded to 4) against values −1.
        let w: Vec<f32> = (0..64).map(|f| if f == 0 { 1.0 } else { 3.5 * step }).collect();
        let d: Vec<f64> = (0..64).map(|f| if f == 0 { 1.0 } else { -1.0 }).collect();
        let (error, full, no_weights, _) = bound_of(&w, &d);
        assert!(error <= full && error > no_weights, "weights' rounding: {error} against {full}, {no_weights}");
        // Values: 1, then 3.5 steps (rounded to 4) against weights 1.
        let w = vec![1.0f32; 64];
        let d: Vec<f64> = (0..64).map(|f| if f == 0 { 1.0 } else { 3.5 * f64::from(step) }).collect();
        let (error, full, _, no_values) = bound_of(&w, &d);
        assert!(error <= full && error > no_values, "values' rounding: {error} against {full}, {no_values}");
    }
}
