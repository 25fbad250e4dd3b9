//! The numeric kernels of the fast path, and the only module with `unsafe`.
//!
//! - [`dots`] and [`dots_abs`]: one f32 dot product per selected row of an
//!   offer-major, padded weight [`Matrix`] (plus, for [`dots_abs`], the sums
//!   of absolute contributions `Σ|wᵢdᵢ|` and of the proxy ones), with an
//!   AVX2+FMA version chosen at run time and a portable fallback. (An
//!   AVX-512F version was about 6% faster on an AVX-512 Zen 4 machine at
//!   stride 64, where these kernels are bound by L2 bandwidth and
//!   horizontal sums; its intrinsics need Rust 1.89, above this crate's
//!   `rust-version`, so it is not included.)
//! - [`coarse_bounds`] and [`fine_bounds`]: bounds on `ln(value × weight ×
//!   σ(logit))` per offer, the coarse ones dense and vectorised (no libm call), with a proven error margin.
//!
//! Everything here is approximate on purpose: the engine turns the f32
//! results into intervals that are guaranteed to contain the exact f64
//! values ([`logit_error`]) and recomputes in f64 whatever is close to a
//! decision, so results never depend on the kernel used.
//!
//! Every `unsafe` block states why it is sound. The tests of this module
//! also run under Valgrind's memcheck (Miri needs a nightly toolchain):
//!
//! ```text
//! cargo test --release --lib --no-run
//! valgrind --tool=memcheck --error-exitcode=1 target/release/deps/tactful-<hash> kernel::
//! ```
//!
//! Valgrind reports AVX2 and FMA (not AVX-512) to the program, so both the
//! AVX2 and the portable kernels run under it.
#![allow(unsafe_code)]

/// Lanes of one SIMD register (AVX2: 8 × f32); rows are padded to this.
pub(crate) const LANES: usize = 8;

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// x86-64 AVX2 with FMA, detected at run time.
    Avx2Fma,
    /// Plain Rust, any target.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub(crate) fn detect() -> Isa {
        if Isa::Avx2Fma.supported() {
            Isa::Avx2Fma
        } else {
            Isa::Portable
        }
    }

    /// Every instruction set this CPU supports, [`Isa::Portable`] first and
    /// [`Isa::detect`]'s choice last (so that tests can compare them all).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma].into_iter().filter(|&isa| isa.supported()).collect()
    }

    /// Whether this CPU runs the kernels of `self`. The SIMD kernels are
    /// only called for an `Isa` returned by [`Isa::detect`] or
    /// [`Isa::available`], that is, after this check.
    fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// One register's worth of f32, 32-byte aligned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(32))]
struct Lane([f32; LANES]);

/// A row-major f32 matrix whose rows are padded with zeros to a multiple of
/// [`LANES`] and start on 32-byte boundaries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Matrix {
    data: Vec<Lane>,
    rows: usize,
    stride: usize,
}

impl Matrix {
    /// Padded row length for `cols` columns.
    pub(crate) fn stride_for(cols: usize) -> usize {
        cols.div_ceil(LANES).max(1) * LANES
    }

    /// A `rows × cols` matrix with entries `value(r, c)`.
    pub(crate) fn from_fn(rows: usize, cols: usize, mut value: impl FnMut(usize, usize) -> f32) -> Matrix {
        let stride = Matrix::stride_for(cols);
        let mut data = vec![Lane::default(); rows * stride / LANES];
        for r in 0..rows {
            for c in 0..cols {
                data[(r * stride + c) / LANES].0[c % LANES] = value(r, c);
            }
        }
        Matrix { data, rows, stride }
    }

    /// Padded row length (a multiple of [`LANES`]).
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// All entries, row after row, padding included.
    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Lane` is `repr(C)` around `[f32; LANES]` and its alignment
        // (32) is a multiple of its size (32), so a `[Lane]` of length n is
        // exactly n × LANES consecutive, initialised, aligned f32 values
        // owned by `self.data` for the lifetime of the borrow.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<f32>(), self.data.len() * LANES) }
    }

    /// Row `r` (padded), or `None` when out of range.
    pub(crate) fn row(&self, r: usize) -> Option<&[f32]> {
        self.as_slice().get(r.checked_mul(self.stride)?..(r + 1).checked_mul(self.stride)?)
    }
}

/// Bound on `|f32 dot − f64 reference|` relative to `Σ|wᵢ||dᵢ|`, for any of
/// the kernels here over rows of `stride` entries: twice
/// `(stride + 16) · 2⁻²⁴`, which covers the rounding of weights and values
/// to f32, one rounding per product and per addition along the longest
/// accumulation chain (at most `stride + 8` for every summation order
/// used), and the f64 reference's own rounding. The kernels here sum
/// `stride / 8` products per lane, then the 8 lanes by a tree of 3
/// additions: chains of at most `stride / 8 + 3`.
pub(crate) fn logit_error(stride: usize) -> f64 {
    (stride as f64 + 16.0) * f64::powi(2.0, -23)
}

/// Absolute term of the same bound, for gradual underflow: each of the
/// roundings above may lose up to 2⁻¹⁴⁹ when a value is subnormal in f32.
pub(crate) fn underflow_error(stride: usize, max_abs_weight: f64, abs_sum_d: f64) -> f64 {
    f64::powi(2.0, -140) * (stride as f64 * (max_abs_weight + 1.0) + abs_sum_d + 1.0)
}

/// `out[j] = rows[j]·d` for each selected row. Rows out of range give 0.
pub(crate) fn dots(isa: Isa, m: &Matrix, rows: &[u32], d: &[f32], out: &mut [f32]) {
    assert_eq!(d.len(), m.stride(), "feature vector must match the padded row length");
    assert!(out.len() >= rows.len(), "output shorter than the row list");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 and fma (see `Isa::detect`); `d` has `m.stride()`
            // entries (asserted above).
            unsafe { avx2::dots(m, rows, d, out) }
        }
        _ => portable::dots(m, rows, d, out),
    }
}

/// For each selected row: `[rows[j]·d, Σ|wᵢdᵢ|, Σ proxyᵢ·|wᵢdᵢ|]`, where
/// `proxy` holds 1.0 for the features that count as proxies and 0.0
/// elsewhere. Rows out of range give zeros.
pub(crate) fn dots_abs(isa: Isa, m: &Matrix, rows: &[u32], d: &[f32], proxy: &[f32], out: &mut [[f32; 3]]) {
    assert_eq!(d.len(), m.stride(), "feature vector must match the padded row length");
    assert_eq!(proxy.len(), m.stride(), "proxy mask must match the padded row length");
    assert!(out.len() >= rows.len(), "output shorter than the row list");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as in `dots`, the CPU supports avx2 and fma, and `d`
            // and `proxy` have `m.stride()` entries.
            unsafe { avx2::dots_abs(m, rows, d, proxy, out) }
        }
        _ => portable::dots_abs(m, rows, d, proxy, out),
    }
}

/// Pointers to the `K` rows `rows[..K]` of `m`, or `None` when one of them
/// is out of range (checked unless `all_in_range` says they all are, as
/// [`all_in_range`] found). Each pointer is then valid for reading `m.stride()`
/// f32 values: row `r < m.rows` spans `r·stride .. (r+1)·stride`, within
/// the `rows·stride` entries of `m.as_slice()`.
#[inline(always)]
fn row_ptrs<const K: usize>(m: &Matrix, rows: &[u32], all_in_range: bool) -> Option<[*const f32; K]> {
    let rows: &[u32; K] = rows.get(..K)?.try_into().ok()?;
    if !all_in_range && rows.iter().any(|&r| r as usize >= m.rows) {
        return None;
    }
    let base = m.as_slice().as_ptr();
    Some(rows.map(|r| base.wrapping_add(r as usize * m.stride)))
}

/// Whether every row of `rows` is a row of `m` (one vectorised pass, so
/// that [`row_ptrs`] need not check each block when they all are).
#[inline(always)]
fn all_in_range(m: &Matrix, rows: &[u32]) -> bool {
    !rows.is_empty() && (rows.iter().fold(0u32, |a, &r| a.max(r)) as usize) < m.rows
}

/// Absolute error of [`fine_bounds`]' `ln(1 + e^-z)` approximation
/// is below 3·10⁻⁶ (checked on a dense grid by the tests); the margin used
/// is thirty times that.
pub(crate) const KEY_EPS: f32 = 1e-4;

/// Per-offer inputs of [`coarse_bounds`] and [`fine_bounds`], all indexed
/// by offer.
pub(crate) struct BoundsInputs<'a> {
    /// f32 partial logits `Σ wᵢdᵢ`; −∞ marks an offer that is not scored.
    pub(crate) dot: &'a [f32],
    /// Base logits in f32.
    pub(crate) base: &'a [f32],
    /// `‖w‖₂`, rounded up.
    pub(crate) norm: &'a [f32],
    /// Bound on the base logit's f32 rounding.
    pub(crate) slack: &'a [f32],
    /// `ln(value × weight)`: −∞ for a zero product, NaN when outside the
    /// bounds' validity.
    pub(crate) logv: &'a [f32],
    /// `(scale, floor)` of the logit error bound `scale · norm[o] + floor +
    /// slack[o]` (both already rounded up).
    pub(crate) error: (f32, f32),
}

/// For every scored offer `o` (finite `dot[o]`), bounds `lo[o] ≤
/// ln(priority) ≤ hi[o]` on its exact f64 priority `value × weight ×
/// σ(logit)`, coarse ones: `ln σ(z)` lies in `[min(z, 0) − ln 2, min(z,
/// 0)]`, so the bounds are within `ln 2` plus the logit's error of each
/// other. Cheap enough for every offer; [`fine_bounds`] then narrows the
/// few that may still be in the top-k.
///
/// The bounds hold while the exact logit is above −300 and `value ×
/// weight` is within `[1e-100, 1e100]` or zero. Offers outside that
/// validity get NaN bounds and make the function return `true` (the caller
/// finds them as the scored offers with a NaN `lo`, and ranks them
/// exactly); offers not scored get NaN bounds too.
///
/// Dense, one pass over all offers, no gathers: a few wasted lanes cost
/// less than indexing the scored ones.
pub(crate) fn coarse_bounds(isa: Isa, x: &BoundsInputs<'_>, lo: &mut [f32], hi: &mut [f32]) -> bool {
    let n = x.dot.len();
    assert!(
        [x.base.len(), x.norm.len(), x.slack.len(), x.logv.len(), lo.len(), hi.len()].iter().all(|&l| l >= n),
        "slice lengths differ"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as in `dots`, the CPU supports avx2 and fma. The
            // function body is safe code; only its target features differ.
            unsafe { avx2::coarse_bounds(x, &mut lo[..n], &mut hi[..n]) }
        }
        _ => coarse_loop(x, &mut lo[..n], &mut hi[..n]),
    }
}

/// The bounds of [`coarse_bounds`], within about `2·10⁻⁴` plus twice the
/// logit's error of each other, for the listed `offers` only (scored and
/// inside the validity, which [`coarse_bounds`] checked): `lo[j]` and
/// `hi[j]` are those of `offers[j]`.
pub(crate) fn fine_bounds(x: &BoundsInputs<'_>, offers: &[u32], lo: &mut Vec<f32>, hi: &mut Vec<f32>) {
    lo.clear();
    hi.clear();
    // Gathered into blocks of LANES: the approximation's long chain of
    // dependent operations then runs on all lanes at once.
    for block in offers.chunks(LANES) {
        let mut v = [[f32::NAN; LANES]; 5];
        for (j, &o) in block.iter().enumerate() {
            let o = o as usize;
            for (slot, src) in v.iter_mut().zip([x.dot, x.base, x.norm, x.slack, x.logv]) {
                slot[j] = src.get(o).copied().unwrap_or(f32::NAN);
            }
        }
        let [dot, base, norm, slack, logv] = v;
        let (mut l, mut h) = ([0.0f32; LANES], [0.0f32; LANES]);
        for i in 0..LANES {
            (l[i], h[i]) = Bound::new(dot[i], base[i], norm[i], slack[i], logv[i], x.error).fine();
        }
        lo.extend_from_slice(&l[..block.len()]);
        hi.extend_from_slice(&h[..block.len()]);
    }
}

/// One offer's bound inputs, in f32. Plain multiplications and additions
/// (never `mul_add`), so every instruction set gives the same bits.
struct Bound {
    /// Offer scored and inside the bounds' validity.
    valid: bool,
    /// Outside the validity although scored.
    outside: bool,
    /// Approximate logit, and its error bound.
    a: f32,
    e: f32,
    lv: f32,
}

/// The constants of [`Bound`], shared with the AVX2 coarse bounds.
mod consts {
    /// `e` is widened by this factor for its own roundings.
    pub(super) const E_WIDEN: f32 = 1.0 + 1e-6;
    /// `a − e` below this is outside the bounds' validity.
    pub(super) const VALID_FROM: f32 = -299.0;
    /// `a` is clamped to this (the log-sigmoid is 0 within e⁻¹⁰⁰ beyond).
    pub(super) const A_CAP: f32 = 100.0;
    /// Relative rounding allowance, 2⁻²⁰.
    pub(super) const EPS: f32 = 1.0 / 1_048_576.0;
    /// `|ln(value × weight)|` counted up to this in the rounding.
    pub(super) const LV_CAP: f32 = 1e4;
    /// `ln 2` rounded up.
    pub(super) const LN_2_UP: f32 = 0.693_2;
    /// The margins are widened by this factor.
    pub(super) const MARGIN_WIDEN: f32 = 1.001;
}

impl Bound {
    #[inline(always)]
    #[allow(clippy::needless_bitwise_bool, clippy::neg_cmp_op_on_partial_ord)] // straight-line, NaN-safe
    fn new(dot: f32, b: f32, w: f32, s: f32, lv: f32, (scale, floor): (f32, f32)) -> Bound {
        // A NaN score (never expected) counts as scored, and outside.
        let scored = dot != f32::NEG_INFINITY;
        // Lanes not scored compute on 0 (their results are discarded)
        // rather than on infinities.
        let a = if scored { b + dot } else { 0.0 };
        // In f32: the base logit's rounding is in the slack, and the
        // roundings of this bound's own arithmetic (a few 2⁻²⁴) in its 1e-6
        // margin.
        let e = (scale * w + floor + s) * consts::E_WIDEN;
        // A margin of 1 covers the rounding of `a - e` near −300; a NaN
        // (never expected) is flagged too.
        let outside = scored & (lv.is_nan() | !(a - e >= consts::VALID_FROM));
        // Beyond 100 the log-sigmoid is 0 within e⁻¹⁰⁰: clamp, so that the
        // rounding margins stay small.
        Bound { valid: scored & !outside, outside, a: a.min(consts::A_CAP), e, lv }
    }

    /// Rounding of `a` and of `ln(value × weight)` to f32, and of the few
    /// operations on them: each below 2⁻²⁴ of the magnitudes.
    #[inline(always)]
    fn rounding(&self) -> f32 {
        consts::EPS * (self.a.abs() + self.e + self.lv.abs().min(consts::LV_CAP) + 1.0)
    }

    #[inline(always)]
    fn coarse(&self) -> (f32, f32) {
        let margin = (self.rounding() + KEY_EPS) * consts::MARGIN_WIDEN;
        let lo = self.lv + ((self.a - self.e).min(0.0) - consts::LN_2_UP) - margin;
        let hi = self.lv + (self.a + self.e).min(0.0) + margin;
        if self.valid {
            (lo, hi)
        } else {
            (f32::NAN, f32::NAN)
        }
    }

    #[inline(always)]
    fn fine(&self) -> (f32, f32) {
        let a = self.a;
        let key = self.lv + (a.min(0.0) - ln1p_exp_neg(a.abs()));
        let margin = (self.e + KEY_EPS + self.rounding()) * consts::MARGIN_WIDEN;
        if self.valid {
            (key - margin, key + margin)
        } else {
            (f32::NAN, f32::NAN)
        }
    }
}

/// `ln(1 + e^-z)` for `z ≥ 0`, absolute error below 3·10⁻⁶, branch-free so
/// that loops over it vectorise. Uses plain multiplications and additions
/// (never `mul_add`), so it gives the same bits with or without FMA.
#[inline(always)]
fn ln1p_exp_neg(z: f32) -> f32 {
    // 1.5 × 2²³: adding it rounds to an integer.
    const MAGIC: f32 = 12_582_912.0;
    // Beyond 40, ln(1 + e^-z) < 5·10⁻¹⁸; the clamp keeps `s²` below a
    // normal number (denormal results take microcode assists, ~100 cycles).
    let z = z.min(40.0);
    let x = -z * std::f32::consts::LOG2_E; // in [-57.8, 0]
    let shifted = x + MAGIC;
    let r = shifted - MAGIC; // round(x)
    let n = shifted.to_bits() as i32 - MAGIC.to_bits() as i32; // round(x) as an integer
    let g = (x - r) * std::f32::consts::LN_2; // |g| ≤ ln2 / 2
    let p = 1.0 + g * (1.0 + g * (0.5 + g * (1.0 / 6.0 + g * (1.0 / 24.0 + g * (1.0 / 120.0 + g * (1.0 / 720.0))))));
    let t = f32::from_bits((p.to_bits() as i32).wrapping_add(n.wrapping_shl(23)) as u32); // e^-z
    let s = t / (2.0 + t); // ln(1 + t) = 2 atanh(s), s ∈ (0, 1/3]
    let s2 = s * s;
    2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))))
}

#[inline(always)]
fn coarse_loop(x: &BoundsInputs<'_>, lo: &mut [f32], hi: &mut [f32]) -> bool {
    let n = lo.len().min(hi.len()).min(x.dot.len());
    let full = n - n % LANES;
    let lane = |i: usize| Bound::new(x.dot[i], x.base[i], x.norm[i], x.slack[i], x.logv[i], x.error);
    let mut outside = false;
    // Blocks of LANES with fixed-size arrays vectorise without bounds checks.
    for start in (0..full).step_by(LANES) {
        let block = |v: &[f32]| -> [f32; LANES] { v[start..start + LANES].try_into().unwrap_or([f32::NAN; LANES]) };
        let (dot, b, w, s, lv) = (block(x.dot), block(x.base), block(x.norm), block(x.slack), block(x.logv));
        let (mut l, mut h, mut o) = ([0.0f32; LANES], [0.0f32; LANES], [false; LANES]);
        for i in 0..LANES {
            let lane = Bound::new(dot[i], b[i], w[i], s[i], lv[i], x.error);
            (l[i], h[i]) = lane.coarse();
            o[i] = lane.outside;
        }
        lo[start..start + LANES].copy_from_slice(&l);
        hi[start..start + LANES].copy_from_slice(&h);
        outside |= o.iter().fold(false, |a, &b| a | b);
    }
    for i in full..n {
        let lane = lane(i);
        (lo[i], hi[i]) = lane.coarse();
        outside |= lane.outside;
    }
    outside
}

mod portable {
    use super::{Matrix, LANES};

    /// The `LANES`-wide chunks of a row, as arrays (so that the loops over
    /// them have no bounds checks and vectorise).
    #[inline(always)]
    fn chunks(v: &[f32]) -> impl Iterator<Item = &[f32; LANES]> {
        v.chunks_exact(LANES).map(|c| c.try_into().expect("chunks_exact gives LANES values"))
    }

    /// Sum of the lanes, by a tree of three additions (as the SIMD kernels).
    #[inline(always)]
    fn hsum([a0, a1, a2, a3, a4, a5, a6, a7]: [f32; LANES]) -> f32 {
        ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
    }

    pub(super) fn dots(m: &Matrix, rows: &[u32], d: &[f32], out: &mut [f32]) {
        for (&r, out) in rows.iter().zip(out) {
            let Some(w) = m.row(r as usize) else {
                *out = 0.0;
                continue;
            };
            let mut acc = [0.0f32; LANES];
            for (w, d) in chunks(w).zip(chunks(d)) {
                for l in 0..LANES {
                    acc[l] += w[l] * d[l];
                }
            }
            *out = hsum(acc);
        }
    }

    pub(super) fn dots_abs(m: &Matrix, rows: &[u32], d: &[f32], proxy: &[f32], out: &mut [[f32; 3]]) {
        for (&r, out) in rows.iter().zip(out) {
            let Some(w) = m.row(r as usize) else {
                *out = [0.0; 3];
                continue;
            };
            let (mut dot, mut total, mut px) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
            for ((w, d), q) in chunks(w).zip(chunks(d)).zip(chunks(proxy)) {
                for l in 0..LANES {
                    let p = w[l] * d[l];
                    dot[l] += p;
                    total[l] += p.abs();
                    px[l] += p.abs() * q[l];
                }
            }
            *out = [hsum(dot), hsum(total), hsum(px)];
        }
    }
}

/// Appends to `out` the positions of the set bits of `word`, ascending,
/// offset by `base`. The AVX2 path writes eight positions per byte of the
/// word from a table, with no branch per bit.
pub(crate) fn append_positions(isa: Isa, word: u64, base: u32, out: &mut Vec<u32>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::append_positions(word, base, out) }
        }
        _ => out.extend(crate::compiled::bits(word, base as usize).map(|o| o as u32)),
    }
}

/// Per byte value: the positions of its set bits, then zeros.
#[cfg(target_arch = "x86_64")]
static BYTE_POSITIONS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut byte = 0;
    while byte < 256 {
        let (mut bit, mut n) = (0, 0);
        while bit < 8 {
            if byte & (1 << bit) != 0 {
                table[byte][n] = bit as u8;
                n += 1;
            }
            bit += 1;
        }
        byte += 1;
    }
    table
};

/// Keeps in `best` (sorted, largest first; filled with −∞ by the caller)
/// the `best.len()` largest of `values`; NaN is never counted. Most blocks
/// of [`LANES`] hold none above the smallest kept: one vector comparison
/// each on the AVX2 path.
pub(crate) fn largest(isa: Isa, values: &[f32], best: &mut [f32]) {
    if best.is_empty() {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::largest(values, best) }
        }
        _ => {
            for &v in values {
                keep_larger(best, v);
            }
        }
    }
}

/// Inserts `v` into `best` (sorted, largest first) if it is larger than the
/// smallest kept (so NaN never is).
#[inline(always)]
fn keep_larger(best: &mut [f32], v: f32) {
    let k = best.len();
    if v > best[k - 1] {
        let mut i = k - 1;
        while i > 0 && best[i - 1] < v {
            best[i] = best[i - 1];
            i -= 1;
        }
        best[i] = v;
    }
}

/// Appends to `out`, ascending, the positions `i` with `values[i] ≥ tau`
/// (NaN never is).
pub(crate) fn positions_at_least(isa: Isa, values: &[f32], tau: f32, out: &mut Vec<u32>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::positions_at_least(values, tau, out) }
        }
        _ => out.extend((0..values.len()).filter(|&i| values[i] >= tau).map(|i| i as u32)),
    }
}

/// Keeps in `top`, largest first, the `top.len()` largest nonzero
/// contributions `wᵢ·dᵢ·mᵢ` by absolute size, as `(i, contribution)`;
/// ties go to the lower index. Returns how many there are. The products
/// are the same f64 roundings on every path; the AVX2 path tests four at a
/// time against the smallest kept, which after the first few rejects
/// almost all.
pub(crate) fn select_largest(isa: Isa, w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    if top.is_empty() {
        return 0;
    }
    let n = w.len().min(d.len()).min(m.len());
    let (w, d, m) = (&w[..n], &d[..n], &m[..n]);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`); the three slices have the
            // same length (cut above).
            unsafe { avx2::select_largest(w, d, m, top) }
        }
        _ => {
            let mut kept = Kept::default();
            for i in 0..n {
                kept.offer(top, i, w[i] * d[i] * m[i]);
            }
            kept.len
        }
    }
}

/// The state of [`select_largest`]: how many are kept, and the size a
/// newcomer must exceed (0 until `top` is full, so zeros are skipped).
#[derive(Default)]
struct Kept {
    len: usize,
    floor: f64,
}

impl Kept {
    /// Offers contribution `c` of feature `i`: an earlier (lower) index
    /// already wins a tie, so it must be strictly larger than the floor.
    /// (A NaN is not `<=` anything, and is kept, as a plain comparison
    /// would.)
    #[inline(always)]
    fn offer(&mut self, top: &mut [(usize, f64)], i: usize, c: f64) {
        if c.abs() <= self.floor {
            return;
        }
        let max = top.len();
        let mut at = self.len.min(max - 1);
        while at > 0 && top[at - 1].1.abs() < c.abs() {
            top[at] = top[at - 1];
            at -= 1;
        }
        top[at] = (i, c);
        self.len = (self.len + 1).min(max);
        if self.len == max {
            self.floor = top[max - 1].1.abs();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m128, __m256, _mm256_add_ps, _mm256_and_ps, _mm256_castps256_ps128, _mm256_castsi256_ps,
        _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_hadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_permute2f128_ps,
        _mm256_set1_epi32, _mm256_setzero_ps, _mm256_storeu_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps,
        _mm_movehl_ps, _mm_shuffle_ps, _mm_storeu_ps,
    };

    use super::{all_in_range, row_ptrs, Matrix, LANES};

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

    /// [`super::largest`], testing a block of eight at a time. Up to 16
    /// kept, they sit sorted in two registers, and each value above the
    /// smallest kept is inserted without a branch: with `prev` the kept
    /// values shifted down one lane (+∞ first), `kept = max(kept, min(prev,
    /// v))` is the sorted insertion of `v` (NaN is never inserted).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2; `best` is not empty.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn largest(values: &[f32], best: &mut [f32]) {
        use std::arch::x86_64::{
            _mm256_cmp_ps, _mm256_loadu_ps, _mm256_movemask_ps, _mm256_set1_ps, _mm256_setr_epi32, _mm256_storeu_ps,
            _CMP_GT_OQ,
        };
        let k = best.len();
        if k > 2 * LANES {
            // Not in registers (the engine asks for at most 16).
            for &v in values {
                super::keep_larger(best, v);
            }
            return;
        }
        let blocks = values.chunks_exact(LANES);
        let rest = blocks.remainder();
        let mut kept = [f32::NEG_INFINITY; 2 * LANES];
        kept[..k].copy_from_slice(best);
        // SAFETY: `kept` holds 2 · LANES f32.
        let (mut top, mut low) = unsafe { (_mm256_loadu_ps(kept.as_ptr()), _mm256_loadu_ps(kept.as_ptr().add(LANES))) };
        let shift = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
        let mut floor = kept[k - 1];
        let mut lanes = [0.0f32; LANES];
        for block in blocks {
            // SAFETY: `block` holds LANES f32.
            let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
            let mut above = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_set1_ps(floor)));
            if above == 0 {
                continue;
            }
            // Only the lanes above the floor (never NaN): each insertion
            // waits on the previous one, so fewer is faster.
            // SAFETY: `lanes` and `kept` hold LANES and 2 · LANES f32.
            unsafe {
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                while above != 0 {
                    insert_sorted(&mut top, &mut low, lanes[above.trailing_zeros() as usize], shift);
                    above &= above - 1;
                }
                _mm256_storeu_ps(kept.as_mut_ptr(), top);
                _mm256_storeu_ps(kept.as_mut_ptr().add(LANES), low);
            }
            floor = kept[k - 1];
        }
        // SAFETY: as above.
        unsafe {
            for &x in rest {
                insert_sorted(&mut top, &mut low, if x.is_nan() { f32::NEG_INFINITY } else { x }, shift);
            }
            _mm256_storeu_ps(kept.as_mut_ptr(), top);
            _mm256_storeu_ps(kept.as_mut_ptr().add(LANES), low);
        }
        best.copy_from_slice(&kept[..k]);
    }

    /// Inserts `x` (not NaN) into the 16 values `top` then `low`, sorted
    /// largest first, dropping the smallest.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn insert_sorted(top: &mut __m256, low: &mut __m256, x: f32, shift: std::arch::x86_64::__m256i) {
        use std::arch::x86_64::{
            _mm256_blend_ps, _mm256_max_ps, _mm256_min_ps, _mm256_permutevar8x32_ps, _mm256_set1_ps,
        };
        let x = _mm256_set1_ps(x);
        let (t, l) = (_mm256_permutevar8x32_ps(*top, shift), _mm256_permutevar8x32_ps(*low, shift));
        // Each lane's predecessor: +∞ before the first, the last of `top`
        // before the first of `low`.
        let prev_top = _mm256_blend_ps::<1>(t, _mm256_set1_ps(f32::INFINITY));
        let prev_low = _mm256_blend_ps::<1>(l, t);
        *top = _mm256_max_ps(*top, _mm256_min_ps(prev_top, x));
        *low = _mm256_max_ps(*low, _mm256_min_ps(prev_low, x));
    }

    /// [`super::positions_at_least`], a block of eight at a time.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn positions_at_least(values: &[f32], tau: f32, out: &mut Vec<u32>) {
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

    /// Stores at `p` the positions of the set bits of `byte`, plus `base`,
    /// as eight u32 lanes (those past the count are garbage), and returns
    /// how many bits are set.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2; `p` is valid for writing eight u32.
    #[inline(always)]
    #[allow(clippy::cast_ptr_alignment)] // `loadl` and `storeu` take unaligned pointers
    unsafe fn store_positions(p: *mut u32, byte: u8, base: u32) -> usize {
        use std::arch::x86_64::{
            __m128i, __m256i, _mm256_add_epi32, _mm256_cvtepu8_epi32, _mm256_set1_epi32, _mm256_storeu_si256,
            _mm_loadl_epi64,
        };
        let positions = &super::BYTE_POSITIONS[usize::from(byte)];
        // SAFETY: `positions` holds 8 bytes; the caller gives room for eight
        // u32 at `p`.
        unsafe {
            let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(positions.as_ptr().cast::<__m128i>()));
            _mm256_storeu_si256(p.cast::<__m256i>(), _mm256_add_epi32(v, _mm256_set1_epi32(base as i32)));
        }
        byte.count_ones() as usize
    }

    /// [`super::select_largest`], testing four contributions at a time.
    /// Up to four kept (the default is three), they sit in registers, sorted
    /// with ties to the earlier feature, and a block with a newcomer is
    /// inserted lane by lane without a branch. A NaN (never expected) hands
    /// over to the scalar insertion, whose NaN rule is the definition.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2; `w`, `d` and `m` have the same length.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn select_largest(w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
        use std::arch::x86_64::{
            _mm256_andnot_pd, _mm256_cmp_pd, _mm256_loadu_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_set1_pd,
            _mm256_setzero_pd, _mm256_setzero_si256, _mm256_storeu_pd, _CMP_NLE_UQ, _CMP_UNORD_Q,
        };
        let n = w.len();
        let max = top.len();
        let sign = _mm256_set1_pd(-0.0);
        let mut kept = super::Kept::default();
        // Kept contributions and their features, while in registers.
        let mut regs = (max <= 4).then(|| (_mm256_setzero_pd(), _mm256_setzero_si256()));
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: `i + 4 <= n`, the length of all three slices.
            let (wv, dv, mv) = unsafe {
                (
                    _mm256_loadu_pd(w.as_ptr().add(i)),
                    _mm256_loadu_pd(d.as_ptr().add(i)),
                    _mm256_loadu_pd(m.as_ptr().add(i)),
                )
            };
            let c = _mm256_mul_pd(_mm256_mul_pd(wv, dv), mv);
            // "Not ≤ floor", as the scalar test (NaN included).
            let above = _mm256_cmp_pd::<_CMP_NLE_UQ>(_mm256_andnot_pd(sign, c), _mm256_set1_pd(kept.floor));
            if _mm256_movemask_pd(above) != 0 {
                let mut lanes = [0.0f64; 4];
                // SAFETY: `lanes` holds four f64.
                unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), c) };
                match &mut regs {
                    Some((kc, ki)) if _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_UNORD_Q>(c, c)) == 0 => {
                        // Only the lanes above the floor, in order: each
                        // insertion waits on the previous one.
                        let mut above = _mm256_movemask_pd(above);
                        while above != 0 {
                            let j = above.trailing_zeros() as usize;
                            // SAFETY: AVX2, as this function.
                            unsafe { insert_largest(kc, ki, lanes[j], (i + j) as i64) };
                            above &= above - 1;
                        }
                        // SAFETY: AVX2; `max <= 4`.
                        kept.floor = unsafe { lane_abs(*kc, max - 1) };
                    }
                    _ => {
                        if let Some((kc, ki)) = regs.take() {
                            // SAFETY: AVX2; `max <= 4`.
                            kept = unsafe { spill(kc, ki, top) };
                        }
                        for (j, &c) in lanes.iter().enumerate() {
                            kept.offer(top, i + j, c);
                        }
                    }
                }
            }
            i += 4;
        }
        if let Some((kc, ki)) = regs {
            // SAFETY: AVX2; `max <= 4`.
            kept = unsafe { spill(kc, ki, top) };
        }
        for j in i..n {
            kept.offer(top, j, w[j] * d[j] * m[j]);
        }
        kept.len
    }

    /// Inserts contribution `c` (not NaN) of feature `i` into the four kept
    /// contributions `kc` (sorted by absolute size, largest first) and their
    /// features `ki`: after every kept one at least as large (an earlier
    /// feature wins a tie), the smallest dropped; 0 is never inserted.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2.
    #[inline(always)]
    unsafe fn insert_largest(kc: &mut std::arch::x86_64::__m256d, ki: &mut std::arch::x86_64::__m256i, c: f64, i: i64) {
        use std::arch::x86_64::{
            _mm256_andnot_pd, _mm256_blend_pd, _mm256_blendv_epi8, _mm256_blendv_pd, _mm256_castpd_si256,
            _mm256_cmp_pd, _mm256_permute4x64_epi64, _mm256_permute4x64_pd, _mm256_set1_epi64x, _mm256_set1_pd,
            _mm256_setzero_pd, _CMP_GT_OQ,
        };
        let abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), *kc);
        // Lanes whose kept value the newcomer beats, and the same shifted
        // down one lane (none before the first): those take the lane above.
        let beats = _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_set1_pd(c.abs()), abs);
        let shifted = _mm256_blend_pd::<1>(_mm256_permute4x64_pd::<0b10_01_00_00>(beats), _mm256_setzero_pd());
        let (beats_i, shifted_i) = (_mm256_castpd_si256(beats), _mm256_castpd_si256(shifted));
        let c_here = _mm256_blendv_pd(*kc, _mm256_set1_pd(c), beats);
        let i_here = _mm256_blendv_epi8(*ki, _mm256_set1_epi64x(i), beats_i);
        *kc = _mm256_blendv_pd(c_here, _mm256_permute4x64_pd::<0b10_01_00_00>(*kc), shifted);
        *ki = _mm256_blendv_epi8(i_here, _mm256_permute4x64_epi64::<0b10_01_00_00>(*ki), shifted_i);
    }

    /// `|kc[lane]|`.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX; `lane < 4`.
    #[inline(always)]
    unsafe fn lane_abs(kc: std::arch::x86_64::__m256d, lane: usize) -> f64 {
        let mut v = [0.0f64; 4];
        // SAFETY: `v` holds four f64.
        unsafe { std::arch::x86_64::_mm256_storeu_pd(v.as_mut_ptr(), kc) };
        v[lane].abs()
    }

    /// The kept contributions in registers as the scalar state: the
    /// nonzero ones (they come first) into `top`, and the floor.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX; `top.len() <= 4`.
    #[inline(always)]
    #[allow(clippy::cast_ptr_alignment)] // `storeu` takes an unaligned pointer
    unsafe fn spill(
        kc: std::arch::x86_64::__m256d,
        ki: std::arch::x86_64::__m256i,
        top: &mut [(usize, f64)],
    ) -> super::Kept {
        let (mut c, mut i) = ([0.0f64; 4], [0i64; 4]);
        // SAFETY: `c` and `i` hold four 8-byte values.
        unsafe {
            std::arch::x86_64::_mm256_storeu_pd(c.as_mut_ptr(), kc);
            std::arch::x86_64::_mm256_storeu_si256(i.as_mut_ptr().cast(), ki);
        }
        let max = top.len();
        let len = c[..max].iter().take_while(|c| c.abs() > 0.0).count();
        for j in 0..len {
            top[j] = (i[j] as usize, c[j]);
        }
        super::Kept { len, floor: if len == max && max > 0 { c[max - 1].abs() } else { 0.0 } }
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
    unsafe fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
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
    unsafe fn hsum8(v: &[__m256; 8]) -> __m256 {
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
        debug_assert!(d.len() == stride && stride % LANES == 0);
        let dp = d.as_ptr();
        let n = rows.len().min(out.len());
        let (rows, out) = (&rows[..n], &mut out[..n]);
        let in_range = all_in_range(m, rows);
        let mut j = 0;
        // Eight rows at a time: the loads of `d` are shared and the
        // horizontal sums done together.
        while j + 8 <= n {
            if let Some(p) = row_ptrs::<8>(m, &rows[j..], in_range) {
                // SAFETY: `row_ptrs` checked that each row holds `stride`
                // values; `j + 8 <= n = out.len()`, so eight f32 fit at `j`.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(j), hsum8(&dot_block(&p, dp, stride))) };
            } else {
                checked(m, &rows[j..j + 8], dp, &mut out[j..j + 8]);
            }
            j += 8;
        }
        if j + 4 <= n {
            if let Some(p) = row_ptrs::<4>(m, &rows[j..], in_range) {
                let [a, b, c, e] = dot_block(&p, dp, stride);
                // SAFETY: as above, with four rows.
                unsafe { _mm_storeu_ps(out.as_mut_ptr().add(j), hsum4(a, b, c, e)) };
            } else {
                checked(m, &rows[j..j + 4], dp, &mut out[j..j + 4]);
            }
            j += 4;
        }
        checked(m, &rows[j..], dp, &mut out[j..]);
    }

    /// [`dots`] row by row, with bounds checks.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 and FMA, and `d` must be valid for
    /// reading `m.stride()` f32 values.
    #[inline(always)]
    unsafe fn checked(m: &Matrix, rows: &[u32], d: *const f32, out: &mut [f32]) {
        for (&r, out) in rows.iter().zip(out) {
            // SAFETY: the row and `d` hold `m.stride()` values.
            *out = m.row(r as usize).map_or(0.0, |w| unsafe { dot1(w.as_ptr(), d, w.len()) });
        }
    }

    /// AVX2 version of [`super::dots_abs`] (same contract).
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 and FMA, and `d.len()` and `proxy.len()`
    /// must be `m.stride()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots_abs(m: &Matrix, rows: &[u32], d: &[f32], proxy: &[f32], out: &mut [[f32; 3]]) {
        let stride = m.stride();
        debug_assert!(d.len() == stride && proxy.len() == stride && stride % LANES == 0);
        let (dp, pp) = (d.as_ptr(), proxy.as_ptr());
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let n = rows.len().min(out.len());
        let (rows, out) = (&rows[..n], &mut out[..n]);
        let in_range = all_in_range(m, rows);
        let mut j = 0;
        // Four rows at a time, three accumulators each (twelve independent
        // chains); the loads of `d` and `proxy` are shared.
        while j + 4 <= n {
            let Some(p) = row_ptrs::<4>(m, &rows[j..], in_range) else {
                for (&r, out) in rows[j..j + 4].iter().zip(&mut out[j..j + 4]) {
                    // SAFETY: as in `dots`.
                    *out = m.row(r as usize).map_or([0.0; 3], |w| unsafe { abs1(w.as_ptr(), dp, pp, stride) });
                }
                j += 4;
                continue;
            };
            let z = _mm256_setzero_ps();
            let mut acc = [[z; 3]; 4];
            let mut c = 0;
            while c < stride {
                // SAFETY: `row_ptrs` checked that each row holds `stride`
                // values, as do `d` and `proxy`, and `c + LANES <= stride`.
                unsafe {
                    let (x, q) = (_mm256_loadu_ps(dp.add(c)), _mm256_loadu_ps(pp.add(c)));
                    for ([dot, total, px], &w) in acc.iter_mut().zip(&p) {
                        let prod = _mm256_mul_ps(_mm256_loadu_ps(w.add(c)), x);
                        *dot = _mm256_add_ps(*dot, prod);
                        let a = _mm256_and_ps(prod, abs);
                        *total = _mm256_add_ps(*total, a);
                        *px = _mm256_fmadd_ps(a, q, *px);
                    }
                }
                c += LANES;
            }
            let [[a0, a1, a2], [a3, a4, a5], [a6, a7, a8], [a9, a10, a11]] = acc;
            // SAFETY: `out[j..j + 4]` is twelve consecutive f32 (arrays
            // have no padding), and `j + 4 <= n = out.len()`.
            unsafe {
                let o = out.as_mut_ptr().add(j).cast::<f32>();
                _mm256_storeu_ps(o, hsum8(&[a0, a1, a2, a3, a4, a5, a6, a7]));
                _mm_storeu_ps(o.add(8), hsum4(a8, a9, a10, a11));
            }
            j += 4;
        }
        for (&r, out) in rows[j..].iter().zip(&mut out[j..]) {
            // SAFETY: as in `dots`.
            *out = m.row(r as usize).map_or([0.0; 3], |w| unsafe { abs1(w.as_ptr(), dp, pp, stride) });
        }
    }

    /// One row of [`dots_abs`].
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 and FMA; `w`, `d` and `proxy` must be
    /// valid for reading `stride` f32 values, a multiple of LANES.
    #[inline(always)]
    unsafe fn abs1(w: *const f32, d: *const f32, proxy: *const f32, stride: usize) -> [f32; 3] {
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
        let z = _mm256_setzero_ps();
        let (mut dot, mut total, mut px) = (z, z, z);
        let mut c = 0;
        while c < stride {
            // SAFETY: `c + LANES <= stride`, within the three vectors.
            unsafe {
                let p = _mm256_mul_ps(_mm256_loadu_ps(w.add(c)), _mm256_loadu_ps(d.add(c)));
                dot = _mm256_add_ps(dot, p);
                let a = _mm256_and_ps(p, abs);
                total = _mm256_add_ps(total, a);
                px = _mm256_fmadd_ps(a, _mm256_loadu_ps(proxy.add(c)), px);
            }
            c += LANES;
        }
        let sums = hsum4(dot, total, px, z);
        [
            _mm_cvtss_f32(sums),
            _mm_cvtss_f32(_mm_shuffle_ps::<1>(sums, sums)),
            _mm_cvtss_f32(_mm_shuffle_ps::<2>(sums, sums)),
        ]
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream in [-1, 1).
    fn stream(seed: u64) -> impl FnMut() -> f64 {
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
        assert_eq!(m.as_slice().as_ptr() as usize % 32, 0);
    }

    /// Runs `dots` and `dots_abs` on `list` for every available ISA and
    /// checks each result against the f64 values within the documented
    /// bound (rows out of range give zeros), that entries of `out` past
    /// `list.len()` are left alone, and that the ISAs agree closely.
    fn check_all_isas(w64: &[Vec<f64>], d64: &[f64], list: &[u32]) {
        let cols = d64.len();
        let m = Matrix::from_fn(w64.len(), cols, |r, c| w64[r][c] as f32);
        let mut d = vec![0.0f32; m.stride()];
        let mut proxy = vec![0.0f32; m.stride()];
        for c in 0..cols {
            d[c] = d64[c] as f32;
            proxy[c] = if c % 3 == 0 { 1.0 } else { 0.0 };
        }
        let max_w = w64.iter().flatten().fold(0.0f64, |a, w| a.max(w.abs()));
        let abs_d: f64 = d64.iter().map(|d| d.abs()).sum();
        let n = list.len();
        let mut results: Vec<(Isa, Vec<f32>, Vec<[f32; 3]>)> = Vec::new();
        for isa in Isa::available() {
            let mut out = vec![7.0f32; n + 1];
            let mut out3 = vec![[7.0f32; 3]; n + 1];
            dots(isa, &m, list, &d, &mut out);
            dots_abs(isa, &m, list, &d, &proxy, &mut out3);
            assert_eq!((out[n], out3[n]), (7.0, [7.0; 3]), "{isa:?} wrote past the row list");
            for (j, &r) in list.iter().enumerate() {
                let ctx = format!("{isa:?}, {cols} columns, row {r} at {j} of {n}");
                let Some(w) = w64.get(r as usize) else {
                    assert_eq!((out[j], out3[j]), (0.0, [0.0; 3]), "out-of-range row: {ctx}");
                    continue;
                };
                let exact: f64 = w.iter().zip(d64).map(|(w, d)| w * d).sum();
                let total: f64 = w.iter().zip(d64).map(|(w, d)| (w * d).abs()).sum();
                let px: f64 = w.iter().zip(d64).step_by(3).map(|(w, d)| (w * d).abs()).sum();
                let bound = logit_error(m.stride()) * total + underflow_error(m.stride(), max_w, abs_d);
                assert!((f64::from(out[j]) - exact).abs() <= bound, "dot: {ctx}");
                assert!((f64::from(out3[j][0]) - exact).abs() <= bound, "dot_abs: {ctx}");
                assert!((f64::from(out3[j][1]) - total).abs() <= bound, "total: {ctx}");
                assert!((f64::from(out3[j][2]) - px).abs() <= bound, "proxy: {ctx}");
            }
            results.push((isa, out, out3));
        }
        let (_, a, a3) = &results[0];
        for (isa, b, b3) in &results[1..] {
            for j in 0..n {
                let tol = 1e-4 * (1.0 + a3[j][1].abs());
                assert!((a[j] - b[j]).abs() <= tol && (a3[j][0] - b3[j][0]).abs() <= tol, "{isa:?} {j}");
                assert!((a3[j][1] - b3[j][1]).abs() <= tol && (a3[j][2] - b3[j][2]).abs() <= tol, "{isa:?} {j}");
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

    /// Kernel timings for the engine's shapes (1,000 × 64 weights, ~700
    /// rows for `dots`, ~250 for `dots_abs`, ascending), for every
    /// instruction set this CPU runs, in three interleaved rounds. Run with
    /// `cargo test --release --lib kernel -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check; run explicitly"]
    fn kernel_timings() {
        use std::hint::black_box;
        let mut rnd = stream(42);
        let m = Matrix::from_fn(1000, 64, |_, _| rnd() as f32);
        let d: Vec<f32> = (0..m.stride()).map(|_| rnd() as f32).collect();
        let proxy: Vec<f32> = (0..m.stride()).map(|c| if c % 5 == 0 { 1.0 } else { 0.0 }).collect();
        let pick = |p: f64, rnd: &mut dyn FnMut() -> f64| -> Vec<u32> {
            (0..1000).filter(|_| rnd() < 2.0 * p - 1.0).collect()
        };
        let rows = pick(0.7, &mut rnd);
        let abs_rows = pick(0.25, &mut rnd);
        let mut out = vec![0.0f32; rows.len()];
        let mut out3 = vec![[0.0f32; 3]; abs_rows.len()];
        let isas = Isa::available();
        let mut best = vec![(f64::INFINITY, f64::INFINITY); isas.len()];
        for _round in 0..3 {
            for (&isa, best) in isas.iter().zip(&mut best) {
                let t = ns_per_call(1000, || dots(isa, &m, black_box(&rows), black_box(&d), black_box(&mut out)));
                let t3 = ns_per_call(1000, || {
                    dots_abs(isa, &m, black_box(&abs_rows), black_box(&d), black_box(&proxy), black_box(&mut out3));
                });
                *best = (best.0.min(t), best.1.min(t3));
            }
        }
        for (isa, (t, t3)) in isas.iter().zip(best) {
            println!(
                "{isa:?}: dots ({} rows) {t:.0} ns/call, dots_abs ({} rows) {t3:.0} ns/call",
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
                    assert!(
                        f64::from(lo[i]) <= p && p <= f64::from(hi[i]),
                        "{isa:?} {i}: {} <= {p} <= {}",
                        lo[i],
                        hi[i]
                    );
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
        // Fine bounds, for any list of offers (here all, in reverse).
        let offers: Vec<u32> = (0..n as u32).rev().collect();
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        fine_bounds(&x, &offers, &mut lo, &mut hi);
        assert_eq!((lo.len(), hi.len()), (n, n));
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
        assert!(!coarse_bounds(Isa::detect(), &x, &mut lo, &mut hi));
        let offers: Vec<u32> = (0..n as u32).collect();
        let (mut flo, mut fhi) = (Vec::new(), Vec::new());
        fine_bounds(&x, &offers, &mut flo, &mut fhi);
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
}
