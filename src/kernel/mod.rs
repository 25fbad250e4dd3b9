//! The numeric kernels of the fast path, and the only module with `unsafe`.
//!
//! - [`dots`] and [`dots_signed`]: one f32 dot product per selected row of an
//!   offer-major, padded weight [`Matrix`] (plus, for [`dots_signed`], the
//!   signed sum that decides the proxy-share rule), in AVX-512F
//!   (`avx512.rs`) or AVX2+FMA (`avx2.rs`) chosen at run time, with a
//!   portable fallback. At stride 64 the AVX-512 versions take half the
//!   instructions and reach the L2 bandwidth.
//! - [`dots_grouped`]: the same dot products from the weights rounded to
//!   16 bits and transposed by groups of 64 offers ([`Groups`]), for the
//!   offers set in a bit set: half the bytes, read in order, and no
//!   horizontal sums. With AVX-512 the engine scores the plain offers of
//!   catalogs past L1 this way (see `grouped_from` in the engine). With
//!   AVX2, and with AVX-512 where the CPU has VNNI, it scores them from the
//!   same layout in 16-bit integers instead ([`integer`]): exact sums, 32
//!   multiply-adds an instruction with VNNI, 16 in two with AVX2.
//! - [`coarse_bounds`] and [`fine_bounds`]: bounds on `ln(value × weight ×
//!   σ(logit))` per offer, with a proven error margin and no libm call: the
//!   coarse ones dense over every offer, the fine ones for a shortlist
//!   (sixteen offers a round with AVX-512, eight with AVX2, gathered), the
//!   same bits on every path.
//! - [`centre`]: one customer's centred, masked feature values, proxy flags
//!   and the sums their error bounds need, eight (AVX-512) or four (AVX2)
//!   features a round.
//! - Position lists, bit sets of rule codes and of the offers the value cut
//!   keeps ([`reaching_words`]), the exact logits' sums in feature order
//!   ([`sums_in_order`]), and the selections of the top-k and of an
//!   explanation's largest contributions ([`select_largest`], from a
//!   threshold with AVX2 and AVX-512). With AVX-512 the engine finds every
//!   recommendation's threshold first ([`picks`]) and then selects from
//!   each ([`select_picked`]), so the five searches overlap.
//! - [`proxy_sums`]: the proxy share's two sums in any order, which decide
//!   rule 3 unless the share is within their rounding of the threshold.
//!
//! Everything here is approximate on purpose: the engine turns the f32
//! results into intervals that are guaranteed to contain the exact f64
//! values ([`logit_error`], widened by `‖w̃ − w‖₂·‖d‖₂` for 16-bit weights)
//! and recomputes in f64 whatever is close to a decision, so results never
//! depend on the kernel used.
//!
//! Every `unsafe` block states why it is sound. The tests of this module
//! also run under Valgrind's memcheck (Miri needs a nightly toolchain):
//!
//! ```text
//! cargo test --release --lib --no-run
//! valgrind --tool=memcheck --error-exitcode=1 target/release/deps/tactful-<hash> kernel::
//! ```
//!
//! Valgrind reports AVX2 and FMA (not AVX-512) to the program, so the AVX2
//! and the portable kernels run under it; the AVX-512 ones only natively.
#![allow(unsafe_code)]

use crate::compiled::Code;

/// Lanes of one AVX2 register (8 × f32): the portable and AVX2 kernels sum
/// in this many lanes.
pub(crate) const LANES: usize = 8;

/// Rows are padded to a multiple of this (one AVX-512 register, 16 × f32)
/// and start on 64-byte boundaries (a cache line).
pub(crate) const PAD: usize = 16;

/// The instruction set the kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// x86-64 AVX2 with FMA, detected at run time.
    Avx2Fma,
    /// x86-64 AVX-512F (with AVX2 and FMA), detected at run time: the dot
    /// products and position lists in 16 lanes, the other kernels as
    /// [`Isa::Avx2Fma`].
    Avx512,
    /// Plain Rust, any target.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub(crate) fn detect() -> Isa {
        Isa::available().pop().unwrap_or(Isa::Portable)
    }

    /// Every instruction set this CPU supports, [`Isa::Portable`] first and
    /// [`Isa::detect`]'s choice last (so that tests can compare them all).
    pub(crate) fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2Fma, Isa::Avx512].into_iter().filter(|&isa| isa.supported()).collect()
    }

    /// Whether this CPU runs the kernels of `self`. The SIMD kernels are
    /// only called for an `Isa` returned by [`Isa::detect`] or
    /// [`Isa::available`], that is, after this check.
    fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        let avx2 = || std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => avx2(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx2() && std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// A short name, for tests and benchmarks.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Portable => "portable",
        }
    }
}

/// An entry type of a [`Matrix`]: four bytes, so that [`PAD`] of them
/// fill one 64-byte [`Line`] exactly. Implemented for `f32` (weights) and
/// `u32` (pairs of 16-bit weights, [`Groups`]) only.
pub(crate) trait Cell: Copy + Default + PartialEq + std::fmt::Debug {}
impl Cell for f32 {}
impl Cell for u32 {}

/// One cache line of entries, 64-byte aligned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(64))]
struct Line<T>([T; PAD]);

/// A row-major matrix whose rows are padded with zeros to a multiple of
/// [`PAD`] and start on 64-byte boundaries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Matrix<T = f32> {
    data: Vec<Line<T>>,
    rows: usize,
    stride: usize,
}

impl<T: Cell> Matrix<T> {
    /// Padded row length for `cols` columns.
    pub(crate) fn stride_for(cols: usize) -> usize {
        cols.div_ceil(PAD).max(1) * PAD
    }

    /// A `rows × cols` matrix with entries `value(r, c)`.
    pub(crate) fn from_fn(rows: usize, cols: usize, mut value: impl FnMut(usize, usize) -> T) -> Matrix<T> {
        let stride = Self::stride_for(cols);
        let mut data = vec![Line::default(); rows * stride / PAD];
        for r in 0..rows {
            for c in 0..cols {
                data[(r * stride + c) / PAD].0[c % PAD] = value(r, c);
            }
        }
        Matrix { data, rows, stride }
    }

    /// Padded row length (a multiple of [`PAD`]).
    pub(crate) fn stride(&self) -> usize {
        self.stride
    }

    /// All entries, row after row, padding included.
    pub(crate) fn as_slice(&self) -> &[T] {
        const { assert!(std::mem::size_of::<Line<T>>() == PAD * std::mem::size_of::<T>()) };
        // SAFETY: `Line` is `repr(C)` around `[T; PAD]` and its size is
        // exactly that array's (asserted above: `Cell` types are four bytes,
        // so the 64-byte alignment adds no padding), so a `[Line]` of length
        // n is n × PAD consecutive, initialised T values owned by
        // `self.data` for the lifetime of the borrow.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast::<T>(), self.data.len() * PAD) }
    }

    /// Row `r` (padded), or `None` when out of range.
    pub(crate) fn row(&self, r: usize) -> Option<&[T]> {
        self.as_slice().get(r.checked_mul(self.stride)?..(r + 1).checked_mul(self.stride)?)
    }
}

/// [`bf16_bits`] as an f32 (exact). Finite `x` below 3·10³⁸ in magnitude
/// stay finite, within 2⁻⁸ of `|x|`.
#[cfg(test)]
pub(crate) fn bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

/// `x` rounded to bfloat16 (the top 16 bits of an f32), to nearest, ties
/// to even: its bits.
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    // Adding just under half a unit of the kept bits, plus the lowest kept
    // bit, rounds to nearest with ties to even.
    // (Wrapping: only a NaN's bits could overflow, and weights are finite.)
    (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// Offers per group of a [`Groups`] matrix: one word of a bit set.
pub(crate) const GROUP: usize = 64;

/// Biased exponent of 2⁻⁶⁰, the least magnitude of a high half (see
/// [`high_bits`]).
const TINY_EXPONENT: u32 = 67;

/// The high 16 bits of an entry whose low 16 bits are `low`, chosen so that
/// the whole entry, read as an f32, is the value nearest `x` among those
/// with these low bits (the first of equals; an entry read whole then needs
/// no mask). Such values are one bf16 unit apart, so the error is at most
/// half of one (a whole one where the binade changes), as for the low
/// half.
/// The value is never subnormal: below 2⁻⁶⁰ (0 included) it is taken
/// toward `±2⁻⁶⁰` instead. A subnormal weight would turn products into
/// subnormals, which cost a microcode assist each on some CPUs (about 200
/// times a normal multiply-add, measured on an Intel Xeon here); the
/// extra error, under 2⁻⁵⁹, is counted like the rounding's.
fn high_bits(x: f32, low: u16) -> u16 {
    let bits = x.to_bits();
    let target = if (bits >> 23) & 0xff < TINY_EXPONENT {
        f32::from_bits((bits & 0x8000_0000) | (TINY_EXPONENT << 23))
    } else {
        x
    };
    let h0 = target.to_bits() >> 16;
    let value = |h: u32| f32::from_bits((h << 16) | u32::from(low));
    // Same sign, normal and finite.
    let usable = |h: u32| h >> 15 == h0 >> 15 && (TINY_EXPONENT..0xff).contains(&((h >> 7) & 0xff));
    let error = |h: u32| (f64::from(value(h)) - f64::from(target)).abs();
    let best = [h0.wrapping_sub(1), h0, h0 + 1]
        .into_iter()
        .filter(|&h| h <= 0xffff && usable(h))
        .min_by(|&a, &b| error(a).total_cmp(&error(b)));
    // Only a non-finite `x` (weights are finite) has no usable neighbour.
    best.unwrap_or(h0) as u16
}

/// The weights rounded for the kernels, transposed by groups of [`GROUP`]
/// offers so that a register holds one pair of features of 16 (or 8)
/// consecutive offers: within group `g`, entry `j` of line `q` holds offer
/// `64g + j`'s feature `2q` in its low half ([`bf16_bits`]) and `2q + 1` in
/// the whole entry ([`high_bits`]). A shift (low) or nothing (high) turns
/// an entry into an exact f32, a multiply-add with the customer's value
/// broadcast adds it to the offer's own lane, and a group's 64 dot products
/// end in four (or eight) registers, with no horizontal sums and no
/// scatter; half the bytes of f32 rows, read in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Groups {
    /// Line `g · pairs + q` holds pair `q` of group `g`'s offers.
    lines: Matrix<u32>,
    pairs: usize,
}

impl Groups {
    /// `w`'s rows rounded and grouped (offers past the last row, up to a
    /// whole group, have zero weights).
    pub(crate) fn from_rows(w: &Matrix) -> Groups {
        Groups::from_fn(w.rows.div_ceil(GROUP), w.stride() / 2, |o, q| {
            w.row(o).map_or(0, |row| {
                let low = bf16_bits(row[2 * q]);
                u32::from(low) | u32::from(high_bits(row[2 * q + 1], low)) << 16
            })
        })
    }

    /// `groups` groups of `pairs` lines, offer `o`'s entry of line `q` being
    /// `entry(o, q)`.
    fn from_fn(groups: usize, pairs: usize, entry: impl Fn(usize, usize) -> u32) -> Groups {
        let lines = Matrix::from_fn(groups * pairs, GROUP, |line, j| entry((line / pairs) * GROUP + j, line % pairs));
        Groups { lines, pairs }
    }

    /// Offer `o`'s entry of line (feature pair) `q`, or `None` past the
    /// groups or the pairs.
    fn entry(&self, o: usize, q: usize) -> Option<u32> {
        if q >= self.pairs {
            return None;
        }
        self.lines.row((o / GROUP).checked_mul(self.pairs)?.checked_add(q)?)?.get(o % GROUP).copied()
    }

    /// Features per offer: the f32 rows' stride.
    pub(crate) fn features(&self) -> usize {
        2 * self.pairs
    }

    /// Offer `o`'s weight of feature `f` as the kernels read it, or `None`
    /// past the groups or the features.
    pub(crate) fn weight(&self, o: usize, f: usize) -> Option<f32> {
        let entry = self.entry(o, f / 2)?;
        Some(f32::from_bits(if f.is_multiple_of(2) { entry << 16 } else { entry }))
    }

    /// Group `g`'s lines (`pairs × GROUP` entries), or `None` past the end.
    fn group(&self, g: usize) -> Option<&[u32]> {
        let (from, to) = (g.checked_mul(self.pairs)?, (g + 1).checked_mul(self.pairs)?);
        self.lines.as_slice().get(from.checked_mul(GROUP)?..to.checked_mul(GROUP)?)
    }
}

/// `(‖w̃‖₂, ‖w̃ − w‖₂, ‖w‖₂)` of an offer's `(w, w̃)` weight pairs (the
/// f64 weights and the kernels' rounded ones), not rounded: the parts of
/// the norms that make the bounds hold for rounded weights.
pub(crate) fn rounding_norms(pairs: impl Iterator<Item = (f64, f64)>) -> (f64, f64, f64) {
    let (mut kept, mut moved, mut own) = (0.0f64, 0.0f64, 0.0f64);
    for (w, r) in pairs {
        kept += r * r;
        moved += (r - w) * (r - w);
        own += w * w;
    }
    (kept.sqrt(), moved.sqrt(), own.sqrt())
}

/// Bound on `|f32 dot − f64 reference|` relative to `Σ|wᵢ||dᵢ|`, for any of
/// the kernels here over rows of `stride` entries: twice
/// `(stride + 16) · 2⁻²⁴`, which covers the rounding of weights and values
/// to f32, one rounding per product and per addition along the longest
/// accumulation chain (at most `stride + 8` for every summation order
/// used), and the f64 reference's own rounding. The portable and AVX2
/// kernels sum `stride / 8` products per lane, then the 8 lanes by a tree
/// of 3 additions (chains of `stride / 8 + 3`); the AVX-512 ones
/// `stride / 16` per lane, then 4 additions (`stride / 16 + 4`).
pub(crate) fn logit_error(stride: usize) -> f64 {
    (stride as f64 + 16.0) * f64::powi(2.0, -23)
}

/// Absolute term of the same bound, for gradual underflow: each of the
/// roundings above may lose up to 2⁻¹⁴⁹ when a value is subnormal in f32.
pub(crate) fn underflow_error(stride: usize, max_abs_weight: f64, abs_sum_d: f64) -> f64 {
    f64::powi(2.0, -140) * (stride as f64 * (max_abs_weight + 1.0) + abs_sum_d + 1.0)
}

/// `out[r] = row r · d` for each row `r` of `rows` (written in place, by
/// row: no compact list to scatter afterwards). Rows out of the matrix's
/// range give 0; rows out of `out`'s range are skipped.
pub(crate) fn dots(isa: Isa, m: &Matrix, rows: &[u32], d: &[f32], out: &mut [f32]) {
    assert_eq!(d.len(), m.stride(), "feature vector must match the padded row length");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 and fma (see `Isa::detect`); `d` has `m.stride()`
            // entries (asserted above).
            unsafe { avx2::dots(m, rows, d, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as above, with avx512f found too.
            unsafe { avx512::dots(m, rows, d, out) }
        }
        _ => portable::dots(m, rows, d, out),
    }
}

/// `out[o] = w̃_o · d` for each offer `o` set in `words` (bit `o % 64` of
/// word `o / 64`) and within `out`, from the rounded weights `w̃` of `m` (0
/// for offers past its rows, in its last group); the other entries are
/// left alone. Groups with no bit set are skipped, the others scored whole
/// (the bits only pick what is written). `d` holds `m.features()` values. Each lane sums `features / 2` products twice
/// (the even and the odd features), then adds the two: chains well within
/// [`logit_error`]'s, whose bound covers the error against `w̃ · d`; the
/// caller adds `‖w̃ − w‖₂ · ‖d‖₂` for the rounding of the weights.
pub(crate) fn dots_grouped(isa: Isa, m: &Groups, words: &[u64], d: &[f32], out: &mut [f32]) {
    assert_eq!(d.len(), m.features(), "feature vector must match the grouped weights");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 and fma (see `Isa::detect`); `d` has
            // `m.features()` entries (asserted above).
            unsafe { avx2::dots_grouped(m, words, d, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as above, with avx512f found too.
            unsafe { avx512::dots_grouped(m, words, d, out) }
        }
        _ => portable::dots_grouped(m, words, d, out),
    }
}

/// The groups [`dots_grouped`] scores: `(g, word, lines)` for each group
/// with a bit set in `words` that `m` holds.
fn groups_to_score<'a>(m: &'a Groups, words: &'a [u64]) -> impl Iterator<Item = (usize, u64, &'a [u32])> + 'a {
    words.iter().enumerate().filter(|w| *w.1 != 0).filter_map(|(g, &w)| Some((g, w, m.group(g)?)))
}

/// Writes `dots[j]` to `out[base + j]` for each bit `j` set in `word`
/// (those past `out` are dropped), without a branch per offer.
#[inline(always)]
fn write_masked(out: &mut [f32], base: usize, word: u64, dots: &[f32; GROUP]) {
    let from = base.min(out.len());
    let n = (out.len() - from).min(GROUP);
    for (j, (o, &v)) in out[from..from + n].iter_mut().zip(dots).enumerate() {
        *o = if word >> j & 1 != 0 { v } else { *o };
    }
}

/// For each selected row: `[rows[j]·d, Σ|wᵢ|·cᵢ]`. With `cᵢ = |dᵢ|·(qᵢ −
/// θ)` (`qᵢ` 1 for the features counting as proxies, else 0), the second
/// sum is `P − θ·T`, whose sign decides guard rule 3 (proxy share `P / T`
/// above `θ`) in one accumulator. Its error is that of a dot product with
/// `c` in place of `d` ([`logit_error`]). Rows out of range give zeros.
pub(crate) fn dots_signed(isa: Isa, m: &Matrix, rows: &[u32], d: &[f32], c: &[f32], out: &mut [[f32; 2]]) {
    assert_eq!(d.len(), m.stride(), "feature vector must match the padded row length");
    assert_eq!(c.len(), m.stride(), "proxy coefficients must match the padded row length");
    assert!(out.len() >= rows.len(), "output shorter than the row list");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as in `dots`, the CPU supports avx2 and fma, and `d`
            // and `c` have `m.stride()` entries.
            unsafe { avx2::dots_signed(m, rows, d, c, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as above, with avx512f found too.
            unsafe { avx512::dots_signed(m, rows, d, c, out) }
        }
        _ => portable::dots_signed(m, rows, d, c, out),
    }
}

/// One customer's per-feature inputs of guard rules 2 and 3 (see
/// [`centre`]).
pub(crate) struct CentreInputs<'a> {
    /// Feature values and baselines, in schema order.
    pub(crate) x: &'a [f64],
    pub(crate) baselines: &'a [f64],
    /// Per feature, the signal bits that mask it, and those that make it
    /// count as a proxy.
    pub(crate) masks: &'a [u32],
    pub(crate) proxies: &'a [u32],
    /// The signals this customer does not let us use.
    pub(crate) not_usable: u32,
    /// The proxy-share threshold `θ`.
    pub(crate) theta: f64,
}

/// Where [`centre`] writes, per feature.
pub(crate) struct CentreOutputs<'a> {
    pub(crate) d: &'a mut [f64],
    pub(crate) is_proxy: &'a mut [bool],
    pub(crate) d32: &'a mut [f32],
    pub(crate) c32: &'a mut [f32],
}

/// Sums over the centred features, for the fast path's error bounds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Centred {
    /// `Σ|dᵢ|` and `Σdᵢ²`.
    pub(crate) abs_sum: f64,
    pub(crate) square_sum: f64,
    /// `Σ|cᵢ|` and `Σcᵢ²`.
    pub(crate) c_abs_sum: f64,
    pub(crate) c_square_sum: f64,
    /// Some feature counting as a proxy is not at its baseline.
    pub(crate) active_proxy: bool,
}

/// Guard rules 2 and 3's inputs for the first `n` features (`n` the
/// shortest slice): `dᵢ = xᵢ − baselineᵢ`, or 0 when masked (`maskᵢ &
/// not_usable ≠ 0`); whether it counts as a proxy (`proxyᵢ & not_usable ≠
/// 0`); `dᵢ` and `cᵢ = |dᵢ|·(qᵢ − θ)` in f32 (`qᵢ` is 1 for a proxy). The
/// per-feature values are the same bits on every path; the sums, which
/// only feed error bounds (whose margins cover any order of addition), are
/// added in lanes by the SIMD paths and in feature order by the portable one.
pub(crate) fn centre(isa: Isa, x: &CentreInputs<'_>, out: CentreOutputs<'_>) -> Centred {
    let n = [x.baselines.len(), x.masks.len(), x.proxies.len(), out.d.len(), out.is_proxy.len()]
        .into_iter()
        .chain([out.d32.len(), out.c32.len()])
        .fold(x.x.len(), usize::min);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as in `dots`, the CPU supports avx512f; every slice
            // holds at least `n` values.
            unsafe { avx512::centre(x, out, n) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as in `dots`, the CPU supports avx2; every slice
            // holds at least `n` values.
            unsafe { avx2::centre(x, out, n) }
        }
        _ => {
            let mut out = out;
            centre_loop(x, &mut out, 0..n, Centred::default())
        }
    }
}

/// One feature of [`centre`]: `(dᵢ, proxy, cᵢ)`.
#[inline(always)]
fn centre_one(x: &CentreInputs<'_>, i: usize) -> (f64, bool, f64) {
    let masked = x.masks[i] & x.not_usable != 0;
    let q = x.proxies[i] & x.not_usable != 0;
    let d = if masked { 0.0 } else { x.x[i] - x.baselines[i] };
    // Rule 3 as one sum: Σ|wᵢ|·|dᵢ|·(qᵢ − θ) = P − θ·T.
    (d, q, d.abs() * (f64::from(u8::from(q)) - x.theta))
}

/// The portable [`centre`] of `features`, adding to `sums`.
fn centre_loop(
    x: &CentreInputs<'_>,
    out: &mut CentreOutputs<'_>,
    features: std::ops::Range<usize>,
    mut sums: Centred,
) -> Centred {
    for i in features {
        let (d, q, c) = centre_one(x, i);
        (out.d[i], out.is_proxy[i], out.d32[i], out.c32[i]) = (d, q, d as f32, c as f32);
        sums.active_proxy |= q && d != 0.0;
        sums.abs_sum += d.abs();
        sums.square_sum += d * d;
        sums.c_abs_sum += c.abs();
        sums.c_square_sum += c * c;
    }
    sums
}

/// The offers that passed every rule before scoring, as bits: bit `o % 64`
/// of `out[o / 64]` is set when `codes[o]` is [`Code::Passed`] (`out` is
/// resized; bits past the end are clear). AVX2 compares 32 codes at a time.
pub(crate) fn passed_words(isa: Isa, codes: &[Code], out: &mut Vec<u64>) {
    // SAFETY: `Code` is `repr(u8)`, so a slice of codes is a slice of as
    // many initialised bytes, borrowed for as long.
    let bytes = unsafe { std::slice::from_raw_parts(codes.as_ptr().cast::<u8>(), codes.len()) };
    let passed = Code::Passed as u8;
    out.clear();
    out.resize(codes.len().div_ceil(64), 0);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2.
            unsafe { avx2::equal_bits(bytes, passed, out) }
        }
        _ => equal_bits(bytes, passed, out),
    }
}

/// `codes[o] = min(codes[o], code)` for each `o` whose bit is set in
/// `words` (bit `o % 64` of `words[o / 64]`; bits past `codes` are
/// ignored): a rule marked on a bit set, without a branch per offer
/// (the set bits are few and scattered, so a loop over them mispredicts).
/// AVX2 expands 32 bits to byte masks at a time.
pub(crate) fn lower_where(isa: Isa, codes: &mut [Code], words: &[u64], code: Code) {
    // SAFETY: `Code` is `repr(u8)`, so the codes are as many initialised
    // bytes, borrowed mutably for as long. Each byte written is the old one
    // or `code`, whichever is smaller: a valid `Code` either way.
    let bytes = unsafe { std::slice::from_raw_parts_mut(codes.as_mut_ptr().cast::<u8>(), codes.len()) };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2.
            unsafe { avx2::lower_where(bytes, words, code as u8) }
        }
        _ => lower_bytes_where(bytes, words, code as u8),
    }
}

/// [`lower_where`] on bytes, one at a time.
fn lower_bytes_where(bytes: &mut [u8], words: &[u64], value: u8) {
    for (chunk, &word) in bytes.chunks_mut(64).zip(words) {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (*b).min(if word >> i & 1 != 0 { value } else { u8::MAX });
        }
    }
}

/// Bit `i % 64` of `out[i / 64]` set when `bytes[i] == value`, for the
/// chunks of 64 that `out` covers.
fn equal_bits(bytes: &[u8], value: u8, out: &mut [u64]) {
    for (word, chunk) in out.iter_mut().zip(bytes.chunks(64)) {
        *word = chunk.iter().enumerate().fold(0, |w, (i, &b)| w | (u64::from(b == value) << i));
    }
}

/// `out[rows[i]] = values[i]`, skipping rows out of `out`'s range.
#[inline(always)]
fn scatter(out: &mut [f32], rows: &[u32], values: &[f32]) {
    for (&r, &v) in rows.iter().zip(values) {
        if let Some(slot) = out.get_mut(r as usize) {
            *slot = v;
        }
    }
}

/// Pointers to the `K` rows `rows[..K]` of `m`, or `None` when one of them
/// is out of range (checked unless `all_in_range` says they all are, as
/// [`all_in_range`] found). Each pointer is then valid for reading `m.stride()`
/// f32 values: row `r < m.rows` spans `r·stride .. (r+1)·stride`, within
/// the `rows·stride` entries of `m.as_slice()`.
#[inline(always)]
fn row_ptrs<const K: usize, T: Cell>(m: &Matrix<T>, rows: &[u32], all_in_range: bool) -> Option<[*const T; K]> {
    let rows: &[u32; K] = rows.get(..K)?.try_into().ok()?;
    if !all_in_range && rows.iter().any(|&r| r as usize >= m.rows) {
        return None;
    }
    let base = m.as_slice().as_ptr();
    Some(rows.map(|r| base.wrapping_add(r as usize * m.stride)))
}

/// Whether `rows` is not empty and every row of it is below `bound` (one
/// vectorised pass, so that the kernels need not check each row).
#[inline(always)]
fn all_below(rows: &[u32], bound: usize) -> bool {
    !rows.is_empty() && (rows.iter().fold(0u32, |a, &r| a.max(r)) as usize) < bound
}

/// Whether every row of `rows` is a row of `m` (so that [`row_ptrs`] need
/// not check each block when they all are).
#[inline(always)]
fn all_in_range<T: Cell>(m: &Matrix<T>, rows: &[u32]) -> bool {
    all_below(rows, m.rows)
}

/// The row loop of the SIMD dot-product kernels: each block of `K` rows
/// whose pointers [`row_ptrs`] vouched for goes to `block` (with the
/// block's first position in `rows`); the rows of the other blocks, and the
/// tail, go to `one` one at a time (`None` for a row out of the matrix's
/// range). `out` is handed to both.
#[inline(always)]
fn by_blocks<const K: usize, T: Cell, O: ?Sized>(
    m: &Matrix<T>,
    rows: &[u32],
    out: &mut O,
    mut block: impl FnMut(&mut O, usize, &[*const T; K]),
    mut one: impl FnMut(&mut O, usize, Option<&[T]>),
) {
    let n = rows.len();
    let in_range = all_in_range(m, rows);
    let mut j = 0;
    while j + K <= n {
        match row_ptrs::<K, T>(m, &rows[j..], in_range) {
            Some(p) => block(out, j, &p),
            None => (j..j + K).for_each(|i| one(out, i, m.row(rows[i] as usize))),
        }
        j += K;
    }
    (j..n).for_each(|i| one(out, i, m.row(rows[i] as usize)));
}

/// The offers whose proxy share needs the rule (see
/// [`proxy_decisions`]), with their scores and the error band.
pub(crate) struct ProxyInputs<'a> {
    /// The offers, in offer order.
    pub(crate) rows: &'a [u32],
    /// Per row, `[logit, signed sum]` from [`dots_signed`].
    pub(crate) scores: &'a [[f32; 2]],
    /// Per offer, `‖w‖₂` rounded up.
    pub(crate) norms: &'a [f32],
    /// `(scale, floor)`: the signed sum's error bound for offer `o` is
    /// `scale · norms[o] + floor`, in f64.
    pub(crate) band: (f64, f64),
}

/// The proxy-share rule where the f32 signed sum `s` settles it. For each
/// listed offer `o = rows[i]` with `scores[i] = [dot, s]`, `e = scale ·
/// norms[o] + floor` (f64; a product, then a sum):
/// - `s > e`: proxy-driven, `o` is appended to `driven`;
/// - otherwise `dense[o] = dot`, and when `s` is NaN or `s ≥ −e`, `o` is
///   appended to `near` (too close to call: the f64 rule decides).
///
/// Both lists keep the rows' order. Rows out of range of `dense` or
/// `norms` are skipped. AVX-512 decides 16 offers a round: the norms
/// gathered, the comparisons in f64 as above, the logits scattered, the
/// lists compressed; so no branch depends on the outcome.
pub(crate) fn proxy_decisions(
    isa: Isa,
    p: &ProxyInputs,
    dense: &mut [f32],
    driven: &mut Vec<u32>,
    near: &mut Vec<u32>,
) {
    driven.clear();
    near.clear();
    let n = p.rows.len().min(p.scores.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        // Gathers and scatters take signed 32-bit indices.
        let bound = dense.len().min(p.norms.len()).min(i32::MAX as usize);
        if all_below(&p.rows[..n], bound) {
            // SAFETY: AVX-512F is supported (`Isa::supported`), and every
            // row is within `dense` and `norms`, and below 2³¹ (checked
            // just above).
            done = unsafe { avx512::proxy_decisions(p, n, dense, driven, near) };
        }
    }
    let _ = isa;
    for i in done..n {
        let o = p.rows[i] as usize;
        let (Some(&norm), Some(slot)) = (p.norms.get(o), dense.get_mut(o)) else { continue };
        let [dot, s] = p.scores[i];
        let e = p.band.0 * f64::from(norm) + p.band.1;
        let s = f64::from(s);
        if s > e {
            driven.push(o as u32);
        } else {
            *slot = dot;
            if s.is_nan() || s >= -e {
                near.push(o as u32);
            }
        }
    }
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
            // SAFETY: as in `dots`, the CPU supports avx2 and fma.
            unsafe { avx2::coarse_bounds(x, &mut lo[..n], &mut hi[..n]) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as in `dots`, the CPU supports avx512f.
            unsafe { avx512::coarse_bounds(x, &mut lo[..n], &mut hi[..n]) }
        }
        _ => coarse_loop(x, &mut lo[..n], &mut hi[..n]),
    }
}

/// The bounds of [`coarse_bounds`], within about `2·10⁻⁴` plus twice the
/// logit's error of each other, for the listed `offers` only (scored and
/// inside the validity, which [`coarse_bounds`] checked): `lo[j]` and
/// `hi[j]` are those of `offers[j]`.
pub(crate) fn fine_bounds(isa: Isa, x: &BoundsInputs<'_>, offers: &[u32], lo: &mut Vec<f32>, hi: &mut Vec<f32>) {
    let n =
        [x.dot.len(), x.base.len(), x.norm.len(), x.slack.len(), x.logv.len()].into_iter().fold(usize::MAX, usize::min);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if all_below(offers, n.min(1 << 31)) => {
            // SAFETY: as in `dots`, the CPU supports avx512f; every offer
            // was just checked to be below each slice's length and 2³¹.
            unsafe { avx512::fine_bounds(x, offers, lo, hi) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if all_below(offers, n.min(1 << 31)) => {
            // SAFETY: as above, with avx2.
            unsafe { avx2::fine_bounds(x, offers, lo, hi) }
        }
        _ => fine_loop(x, offers, lo, hi),
    }
}

/// The portable [`fine_bounds`].
fn fine_loop(x: &BoundsInputs<'_>, offers: &[u32], lo: &mut Vec<f32>, hi: &mut Vec<f32>) {
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

/// `out[j] = a[rows[j]] + b[rows[j]]` (`out` cleared first; NaN for a row
/// out of range of either).
pub(crate) fn sums_at(rows: &[u32], (a, b): (&[f32], &[f32]), out: &mut Vec<f32>) {
    out.clear();
    if all_below(rows, a.len().min(b.len())) {
        // SAFETY: every row was just checked to be below both lengths.
        out.extend(rows.iter().map(|&o| unsafe { a.get_unchecked(o as usize) + b.get_unchecked(o as usize) }));
    } else {
        out.extend(rows.iter().map(|&o| a.get(o as usize).zip(b.get(o as usize)).map_or(f32::NAN, |(a, b)| a + b)));
    }
}

/// The offers whose exact priority may reach `tau`, as bits: bit `o % 64`
/// of `out[o / 64]` is set when `logv[o]` may (`out` is resized; bits past
/// the end are clear). `tau` is a lower bound on the k-th largest
/// `ln(priority)` of offers that will be ranked: since `σ ≤ 1`,
/// `ln(priority) ≤ ln(value × weight)`, which `logv[o]` rounds to f32
/// within its margin, so the offers with `logv[o]` plus that margin below
/// `tau` cannot be in the top-k, and not even tie. NaN (outside the
/// bounds' validity) may. (A `tau` from fine lower bounds already sits at
/// least [`KEY_EPS`] below the values it bounds; the margin keeps the cut
/// valid for any true lower bound.) Dense over the catalog, so no gather
/// and no branch: sixteen offers a compare with AVX-512, eight with AVX2,
/// the same bits as [`reaches`]. The value cut ANDs these into the offers
/// reaching scoring.
pub(crate) fn reaching_words(isa: Isa, logv: &[f32], tau: f32, out: &mut Vec<u64>) {
    out.clear();
    out.resize(logv.len().div_ceil(64), 0);
    let done = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: as in `dots`, the CPU supports avx512f; `out` has a
            // word for every 64 offers (resized above).
            unsafe { avx512::reaching_words(logv, tau, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: as above, with avx2.
            unsafe { avx2::reaching_words(logv, tau, out) }
        }
        _ => 0,
    };
    for (o, &lv) in logv.iter().enumerate().skip(done) {
        out[o / 64] |= u64::from(reaches(lv, tau)) << (o % 64);
    }
}

/// Whether an offer with `ln(value × weight)` rounded to `lv` may reach
/// `tau` (a NaN may): the definition of [`reaching_words`]. The margin is
/// the coarse one with `a = e = 0`, whose rounding term the SIMD paths
/// compute as `EPS · (min(|lv|, LV_CAP) + 1)`: the same bits, since `(|0| +
/// 0) + m` is `m`.
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN stays
fn reaches(lv: f32, tau: f32) -> bool {
    let margin = Bound { valid: true, outside: false, a: 0.0, e: 0.0, lv }.margin();
    !(lv + margin < tau)
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

/// The constants of [`Bound`], shared with the SIMD coarse bounds.
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

    /// The coarse bounds' margin: the roundings, and the key's.
    #[inline(always)]
    fn margin(&self) -> f32 {
        (self.rounding() + KEY_EPS) * consts::MARGIN_WIDEN
    }

    #[inline(always)]
    fn coarse(&self) -> (f32, f32) {
        let margin = self.margin();
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

/// 1.5 × 2²³: adding it to an f32 of magnitude below 2²² rounds it to an
/// integer ([`ln1p_exp_neg`] and its SIMD versions).
const MAGIC: f32 = 12_582_912.0;

/// [`ln1p_exp_neg`]'s `e^g` (`|g| ≤ ln 2 / 2`) as Horner coefficients,
/// innermost first: `p = c + g·p` from `1/720` to `1`. Shared with the SIMD
/// versions, so that every path does the same operations.
const EXP_TERMS: [f32; 7] = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// [`ln1p_exp_neg`]'s `atanh` series in `s²`, innermost first:
/// `ln(1 + t) = 2s · (1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9)`.
const ATANH_TERMS: [f32; 5] = [1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0];

/// `ln(1 + e^-z)` for `z ≥ 0`, absolute error below 3·10⁻⁶, branch-free so
/// that loops over it vectorise. Uses plain multiplications and additions
/// (never `mul_add`), so it gives the same bits with or without FMA.
#[inline(always)]
fn ln1p_exp_neg(z: f32) -> f32 {
    // Beyond 40, ln(1 + e^-z) < 5·10⁻¹⁸; the clamp keeps `s²` below a
    // normal number (denormal results take microcode assists, ~100 cycles).
    let z = z.min(40.0);
    let x = -z * std::f32::consts::LOG2_E; // in [-57.8, 0]
    let shifted = x + MAGIC;
    let r = shifted - MAGIC; // round(x)
    let n = shifted.to_bits() as i32 - MAGIC.to_bits() as i32; // round(x) as an integer
    let g = (x - r) * std::f32::consts::LN_2; // |g| ≤ ln2 / 2
    let p = EXP_TERMS[1..].iter().fold(EXP_TERMS[0], |p, &c| c + g * p);
    let t = f32::from_bits((p.to_bits() as i32).wrapping_add(n.wrapping_shl(23)) as u32); // e^-z
    let s = t / (2.0 + t); // ln(1 + t) = 2 atanh(s), s ∈ (0, 1/3]
    let s2 = s * s;
    2.0 * s * ATANH_TERMS[1..].iter().fold(ATANH_TERMS[0], |q, &c| c + s2 * q)
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
    use super::{Groups, Matrix, GROUP, LANES};

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
        for &r in rows {
            let dot = m.row(r as usize).map_or(0.0, |w| {
                let mut acc = [0.0f32; LANES];
                for (w, d) in chunks(w).zip(chunks(d)) {
                    for l in 0..LANES {
                        acc[l] += w[l] * d[l];
                    }
                }
                hsum(acc)
            });
            super::scatter(out, &[r], &[dot]);
        }
    }

    /// As the SIMD kernels: per offer, an even and an odd sum, then
    /// their sum.
    pub(super) fn dots_grouped(m: &Groups, words: &[u64], d: &[f32], out: &mut [f32]) {
        for (g, word, lines) in super::groups_to_score(m, words) {
            let (mut even, mut odd) = ([0.0f32; GROUP], [0.0f32; GROUP]);
            for (line, d) in lines.chunks_exact(GROUP).zip(d.chunks_exact(2)) {
                for j in 0..GROUP {
                    even[j] += f32::from_bits(line[j] << 16) * d[0];
                    odd[j] += f32::from_bits(line[j]) * d[1];
                }
            }
            let dots = std::array::from_fn(|j| even[j] + odd[j]);
            super::write_masked(out, g * GROUP, word, &dots);
        }
    }

    pub(super) fn dots_signed(m: &Matrix, rows: &[u32], d: &[f32], c: &[f32], out: &mut [[f32; 2]]) {
        for (&r, out) in rows.iter().zip(out) {
            let Some(w) = m.row(r as usize) else {
                *out = [0.0; 2];
                continue;
            };
            let (mut dot, mut signed) = ([0.0f32; LANES], [0.0f32; LANES]);
            for ((w, d), c) in chunks(w).zip(chunks(d)).zip(chunks(c)) {
                for l in 0..LANES {
                    dot[l] += w[l] * d[l];
                    signed[l] += w[l].abs() * c[l];
                }
            }
            *out = [hsum(dot), hsum(signed)];
        }
    }
}

/// Appends to `out` the positions of the set bits of `word`, ascending,
/// offset by `base`, with no branch per bit: the AVX2 path writes eight
/// positions per byte of the word from a table, the AVX-512 path sixteen
/// per quarter by compression.
pub(crate) fn append_positions(isa: Isa, word: u64, base: u32, out: &mut Vec<u32>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::append_positions(word, base, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only used after `Isa::supported`
            // found avx512f.
            unsafe { avx512::append_positions(word, base, out) }
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
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2
            // (see `Isa::detect`).
            unsafe { avx2::largest(values, best) }
        }
        _ => {
            for &v in values {
                keep_larger(best, v);
            }
        }
    }
}

/// Largest `k` that [`kth_largest`] selects by insertion.
pub(crate) const SELECT_K: usize = 16;

/// The `k`-th largest of `values`, NaN never counting (−∞ when fewer than
/// `k` are not NaN; +∞ for `k = 0`): by [`largest`] up to [`SELECT_K`],
/// else selected in `scratch` (reused, so long lists allocate nothing
/// once it has grown). A branch-free AVX-512 selection for up to 64 values
/// (repeated maxima over four registers, here and for
/// [`kth_largest_at_most`]'s candidates) took 4 % off 1,024 distinct
/// customers in turn but added 10 % for one customer over and over, and
/// left the batch as it was (criterion, Intel Xeon): not kept.
pub(crate) fn kth_largest(isa: Isa, values: &[f32], k: usize, scratch: &mut Vec<f32>) -> f32 {
    if k == 0 {
        f32::INFINITY
    } else if k <= SELECT_K {
        let mut best = [f32::NEG_INFINITY; SELECT_K];
        largest(isa, values, &mut best[..k]);
        best[k - 1]
    } else {
        scratch.clear();
        scratch.extend(values.iter().copied().filter(|v| !v.is_nan()));
        if scratch.len() < k {
            return f32::NEG_INFINITY;
        }
        *scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a)).1
    }
}

/// A threshold `τ′` at most the `k`-th largest of `values` (NaN never
/// counts) that is itself the `k`-th largest of a subset of them, so that at
/// least `k` values are `≥ τ′` (−∞ when fewer than `k` are not NaN). The
/// SIMD paths take the two largest of each lane, branch-free, and the
/// `k`-th largest of those (the values of one lane beyond its two largest
/// are what `τ′` may miss); the portable path is exact.
pub(crate) fn kth_largest_at_most(isa: Isa, values: &[f32], k: usize, scratch: &mut Vec<f32>) -> f32 {
    /// Largest `k` for the per-lane path (twice the lanes of AVX2).
    const LANE_K: usize = 2 * LANES;
    /// Largest `k` selected by insertion.
    const INSERT_K: usize = 4 * PAD;
    if k == 0 {
        return f32::INFINITY;
    }
    if k > INSERT_K {
        // Long lists (rare): the exact threshold, selected in `scratch`.
        return kth_largest(isa, values, k, scratch);
    }
    let mut best = [f32::NEG_INFINITY; 2 * PAD];
    let kept: &[f32] = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma if k <= LANE_K => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::two_largest_per_lane(values, &mut best) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if k <= LANE_K => {
            // SAFETY: `Isa::Avx512` is only used after `Isa::supported`
            // found avx512f.
            unsafe { avx512::two_largest_per_lane(values, &mut best) }
        }
        _ => values,
    };
    let mut top = [f32::NEG_INFINITY; INSERT_K];
    for &v in kept {
        keep_larger(&mut top[..k], v);
    }
    top[k - 1]
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
pub(crate) fn append_positions_at_least(isa: Isa, values: &[f32], tau: f32, out: &mut Vec<u32>) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only used after `Isa::supported`
            // found avx2 (see `Isa::detect`).
            unsafe { avx2::append_positions_at_least(values, tau, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only used after `Isa::supported`
            // found avx512f.
            unsafe { avx512::append_positions_at_least(values, tau, out) }
        }
        _ => out.extend((0..values.len()).filter(|&i| values[i] >= tau).map(|i| i as u32)),
    }
}

/// `[Σ_{proxy} |wᵢ·dᵢ|, Σ |wᵢ·dᵢ|]` over the first `n` features (`n` the
/// shortest slice), in no fixed order: each sum of `n` nonnegative terms is
/// within a relative `(n − 1)·2⁻⁵³` (first order) of the exact one, as the
/// sequential sums of [`crate::guard::proxy_share`] are, which is how the
/// engine decides most offers' rule 3 without those sums' 2·n dependent
/// additions. AVX2 keeps eight lanes of each; the portable path adds in
/// order.
pub(crate) fn proxy_sums(isa: Isa, w: &[f64], d: &[f64], is_proxy: &[bool]) -> [f64; 2] {
    let n = w.len().min(d.len()).min(is_proxy.len());
    let (w, d, is_proxy) = (&w[..n], &d[..n], &is_proxy[..n]);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2
            // (see `Isa::detect`); the three slices have the same length.
            unsafe { avx2::proxy_sums(w, d, is_proxy) }
        }
        _ => proxy_sums_scalar(w, d, is_proxy, [0.0; 2]),
    }
}

/// [`proxy_sums`] in feature order, continuing `sums` (rule 3's own
/// sums, [`crate::guard::proxy_sums_in_order`]).
fn proxy_sums_scalar(w: &[f64], d: &[f64], is_proxy: &[bool], sums: [f64; 2]) -> [f64; 2] {
    crate::guard::proxy_sums_in_order(w.iter().zip(d).map(|(w, d)| w * d).zip(is_proxy.iter().copied()), sums)
}

/// `Σ rows[r][i]·d[i]` for each of the four rows, over the first `n`
/// features (`n` the shortest slice), added in feature order from −0.0:
/// the bits of `iter().zip(d).map(|(w, x)| w * x).sum::<f64>()`, the
/// definition of an exact logit. AVX2 multiplies four features of the four
/// rows at a time, transposes the products and adds them in order, one
/// lane per row; the portable path keeps four scalar chains.
pub(crate) fn sums_in_order(isa: Isa, rows: [&[f64]; 4], d: &[f64]) -> [f64; 4] {
    let n = rows.iter().fold(d.len(), |n, r| n.min(r.len()));
    let rows = rows.map(|r| &r[..n]);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 => {
            // SAFETY: both are only used after `Isa::supported` found avx2
            // (see `Isa::detect`); the four rows hold `n` values and `d` at
            // least as many (cut above).
            unsafe { avx2::sums_in_order(rows, d) }
        }
        _ => sums_in_order_scalar(rows, d, 0, [-0.0; 4]),
    }
}

/// [`sums_in_order`] from feature `from` on, continuing `sums`.
fn sums_in_order_scalar(rows: [&[f64]; 4], d: &[f64], from: usize, mut sums: [f64; 4]) -> [f64; 4] {
    let [r0, r1, r2, r3] = rows;
    for ((((&x, a), b), c), e) in d[from..].iter().zip(&r0[from..]).zip(&r1[from..]).zip(&r2[from..]).zip(&r3[from..]) {
        sums = [sums[0] + a * x, sums[1] + b * x, sums[2] + c * x, sums[3] + e * x];
    }
    sums
}

/// Keeps in `top`, largest first, the `top.len()` largest nonzero
/// contributions `wᵢ·dᵢ·mᵢ` by absolute size, as `(i, contribution)`;
/// ties go to the lower index. Returns how many there are. The products
/// are the same f64 roundings on every path. The AVX2 and AVX-512 paths
/// keep the few at or above a threshold no larger than the `k`-th and
/// apply the scalar rule to those; past 64 features (or 8 kept) they take
/// them by repeated maximum over a buffer of their absolute values.
pub(crate) fn select_largest(isa: Isa, w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    if top.is_empty() {
        return 0;
    }
    let n = w.len().min(d.len()).min(m.len());
    let (w, d, m) = (&w[..n], &d[..n], &m[..n]);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: only used after `Isa::supported` found avx2 (see
            // `Isa::detect`); the three slices have the same length (cut
            // above).
            unsafe { avx2::select_largest(w, d, m, top) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: only used after `Isa::supported` found avx512f; the
            // same lengths.
            unsafe { avx512::select_largest(w, d, m, top) }
        }
        _ => select_scalar(w, d, m, top),
    }
}

/// How [`select_largest`] finishes for one row, found for several rows at
/// once by [`picks`]: from the candidates at or above the threshold (their
/// bits), by the scalar rule (a NaN), by rounds of maxima, or from the
/// start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// The threshold's candidates.
    Listed(u64),
    /// The scalar rule over every feature.
    Scalar,
    /// Rounds of maxima.
    Rounds,
    /// All of [`select_largest`].
    Full,
}

/// The first part of [`select_largest`] with `k` kept for each of `rows`,
/// into `out` (cleared first), for [`select_picked`].
///
/// On the AVX-512 path no branch on the data comes between the rows, so
/// their chains of latency overlap rather than each wait on the previous
/// row's last branch: 1.60 → 1.45 µs a decision at 100 offers (Zen 5). The
/// AVX2 rows measured 1.53 → 1.56 µs that way, so they are left whole
/// (`Pick::Full`), as the portable ones.
pub(crate) fn picks<'a>(
    isa: Isa,
    rows: impl Iterator<Item = &'a [f64]>,
    d: &[f64],
    m: &[f64],
    k: usize,
    out: &mut Vec<Pick>,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: only used after `Isa::supported` found avx512f; `pick`
        // cuts the three slices to their common length.
        Isa::Avx512 => unsafe { avx512::picks(rows, d, m, k, out) },
        _ => {
            out.clear();
            out.extend(rows.map(|_| Pick::Full));
        }
    }
}

/// [`select_largest`] finished as `pick` says: `pick` comes from [`picks`]
/// for this row, `d` and `m` with `k = top.len()` (another pick gives
/// another selection, but never reads out of bounds).
pub(crate) fn select_picked(isa: Isa, pick: Pick, w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    if top.is_empty() {
        return 0;
    }
    let n = w.len().min(d.len()).min(m.len());
    let (w, d, m) = (&w[..n], &d[..n], &m[..n]);
    match (isa, pick) {
        (_, Pick::Full) => select_largest(isa, w, d, m, top),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512 and AVX2 machines have AVX2; the slices are cut
        // to one length, and a listed word comes from them.
        (Isa::Avx512 | Isa::Avx2Fma, pick) => unsafe { avx2::select_picked(pick, (w, d, m), top) },
        _ => select_largest(isa, w, d, m, top),
    }
}

/// [`select_largest`] by insertion, one contribution at a time: the
/// definition (the SIMD path hands NaN over to it).
fn select_scalar(w: &[f64], d: &[f64], m: &[f64], top: &mut [(usize, f64)]) -> usize {
    let mut kept = Kept::default();
    for i in 0..w.len().min(d.len()).min(m.len()) {
        kept.offer(top, i, w[i] * d[i] * m[i]);
    }
    kept.len
}

/// [`select_scalar`] over the features whose bits are set in `word` only
/// (the SIMD paths' candidates), in feature order.
fn select_listed(mut word: u64, (w, d, m): (&[f64], &[f64], &[f64]), top: &mut [(usize, f64)]) -> usize {
    let mut kept = Kept::default();
    while word != 0 {
        let i = word.trailing_zeros() as usize;
        word &= word - 1;
        kept.offer(top, i, w[i] * d[i] * m[i]);
    }
    kept.len
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

pub(crate) mod integer;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(test)]
mod tests;
