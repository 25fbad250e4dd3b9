//! Propensity models compiled into one offer-major weight matrix, with the
//! intercept moved to the feature baselines so that a masked feature
//! (value = baseline) contributes exactly zero.

use crate::catalog::{Offer, OfferId, Weights};
use crate::compiled::Bitset;
use crate::error::ConfigError;
use crate::kernel::{self, Isa, Matrix};
use crate::schema::{FeatureSchema, Sensitivity};

/// The logistic function.
pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

/// Resolves `weights` to one weight per schema feature, checking names,
/// count and finiteness.
pub fn dense_weights(offer: &OfferId, schema: &FeatureSchema, weights: &Weights) -> Result<Vec<f64>, ConfigError> {
    let dense = match weights {
        Weights::Dense(w) => {
            if w.len() != schema.len() {
                return Err(ConfigError::WeightCount { offer: offer.clone(), expected: schema.len(), found: w.len() });
            }
            w.clone()
        }
        Weights::ByName(map) => {
            let mut w = vec![0.0; schema.len()];
            for (name, &value) in map {
                let i = schema
                    .index_of(name)
                    .ok_or_else(|| ConfigError::UnknownWeightFeature { offer: offer.clone(), feature: name.clone() })?;
                w[i] = value;
            }
            w
        }
    };
    if let Some((i, &value)) = dense.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ConfigError::NonFiniteWeight {
            offer: offer.clone(),
            feature: schema.features[i].name.to_string(),
            value,
        });
    }
    Ok(dense)
}

/// All offers' models as one matrix: exact f64 weights for the reference
/// arithmetic (explanations, shortlisted candidates) and an f32 copy for
/// the kernels, with the per-offer constants the fast path's error bounds
/// need.
#[derive(Debug, Clone)]
pub(crate) struct ModelMatrix {
    n_features: usize,
    /// Offer-major weights, `n_offers × n_features`.
    weights: Vec<f64>,
    /// `bias + Σ wᵢ·baselineᵢ`: the logit of a customer at the baseline.
    pub(crate) base_logit: Vec<f64>,
    /// The same weights in f32, rows padded and aligned for the kernels.
    pub(crate) w32: Matrix,
    /// The f32 weights rounded to 16 bits and grouped ([`kernel::Groups`]):
    /// half the bytes, for scoring the plain offers (the f32 rows then
    /// rescore the few the coarse bounds leave in doubt).
    pub(crate) w16: kernel::Groups,
    /// The f32 weights as 16-bit integers with a scale per offer, grouped
    /// as `w16` ([`kernel::integer`]): the grouped scoring's weights with
    /// AVX2 and with AVX-512 VNNI (`w16` then serves only customers whose
    /// values are too small to quantise).
    pub(crate) w_int: kernel::integer::IntGroups,
    /// `norm16`'s counterpart for `w_int`
    /// ([`kernel::integer::IntGroups::norm`], rounded up, at least
    /// `norm32`), used with the customer's factor
    /// [`kernel::integer::Quantized::widen`].
    pub(crate) norm_int: Vec<f32>,
    /// Offers with a nonzero weight on some `proxy` feature.
    pub(crate) proxy_bits: Bitset,
    /// Per offer, for the fast path's bounds (one array each, for the
    /// dense bounds pass): the base logit in f32, `‖w‖₂` (rounded up) and
    /// an upper bound on the base logit's f32 rounding.
    pub(crate) base32: Vec<f32>,
    pub(crate) norm32: Vec<f32>,
    pub(crate) slack32: Vec<f32>,
    /// Per offer, the norm that makes the bounds hold for a score from
    /// `w16` too: `‖w̃‖₂ + ‖w̃ − w‖₂ / ε` (rounded up, at least `norm32`),
    /// `ε` the kernels' [`kernel::logit_error`] at `w32`'s stride, so
    /// that `ε·‖d‖₂·norm16` covers the kernel's error on `w̃·d` and the
    /// rounding of the weights, `|(w̃ − w)·d| ≤ ‖w̃ − w‖₂‖d‖₂`.
    pub(crate) norm16: Vec<f32>,
    /// Per offer: `ln(value × weight)`; −∞ when the product is 0; NaN when
    /// value or weight is outside `[1e-100, 1e100]` (exact scoring only).
    pub(crate) log_value: Vec<f32>,
    /// Per offer, `ln(value) + ln(weight)` in f64 ([`ln_sum`]): what
    /// `log_value` rounds, kept for adding a family factor's log without
    /// two more `ln` per offer.
    pub(crate) ln_value_weight: Vec<Option<f64>>,
    /// Largest `|wᵢ|` over all offers.
    pub(crate) max_abs_weight: f64,
    /// Largest `|wᵢ|` over the f32 and the grouped weights (for the
    /// kernels' underflow bound).
    pub(crate) max_abs_kernel_weight: f64,
    /// Largest `|base logit|` over all offers.
    pub(crate) max_abs_base: f64,
}

/// An offer's `(w, w̃)` pairs over the kernels' `stride` features: its f64
/// weights `row` (0 past them, as the padding) and the kernel's `read(f)`
/// (0 where it has none).
fn weight_pairs<'a>(
    row: &'a [f64],
    stride: usize,
    read: impl Fn(usize) -> Option<f64> + 'a,
) -> impl Iterator<Item = (f64, f64)> + 'a {
    (0..stride).map(move |f| (row.get(f).copied().unwrap_or(0.0), read(f).unwrap_or(0.0)))
}

/// `ln` of a product's factors, summed left to right, when every factor is
/// within `[1e-100, 1e100]` (the bounds' validity); `None` otherwise.
pub(crate) fn ln_sum(factors: &[f64]) -> Option<f64> {
    let normal = factors.iter().all(|v| (1e-100..=1e100).contains(v));
    normal.then(|| factors.iter().map(|v| v.ln()).reduce(|a, b| a + b).unwrap_or(0.0))
}

/// A log multiplier in f32 with the fast path's conventions: −∞ when the
/// product is 0, `ln` (from [`ln_sum`]) rounded, or NaN (scored exactly)
/// when a factor is outside the bounds' validity.
pub(crate) fn log_f32(zero: bool, ln: Option<f64>) -> f32 {
    match (zero, ln) {
        (true, _) => f32::NEG_INFINITY,
        (false, Some(ln)) => ln as f32,
        (false, None) => f32::NAN,
    }
}

impl ModelMatrix {
    /// The priority bounds' per-offer inputs but the scores (`dot` empty):
    /// these models' base logits, norms and slacks, with `log_value` (the
    /// catalog's or this request's stakes) and the logit error bound.
    pub(crate) fn bounds<'a>(&'a self, log_value: &'a [f32], error: (f32, f32)) -> crate::kernel::BoundsInputs<'a> {
        crate::kernel::BoundsInputs {
            dot: &[],
            base: &self.base32,
            norm: &self.norm32,
            slack: &self.slack32,
            logv: log_value,
            error,
        }
    }

    /// Compiles the offers' models (in the given order).
    pub(crate) fn compile(schema: &FeatureSchema, offers: &[Offer]) -> Result<Self, ConfigError> {
        let n_features = schema.len();
        let mut weights = Vec::with_capacity(offers.len() * n_features);
        let mut base_logit = Vec::with_capacity(offers.len());
        for offer in offers {
            let bias = offer.model.bias;
            if !bias.is_finite() {
                return Err(ConfigError::NonFiniteWeight {
                    offer: offer.id.clone(),
                    feature: "bias".into(),
                    value: bias,
                });
            }
            let w = dense_weights(&offer.id, schema, &offer.model.weights)?;
            let base = bias + w.iter().zip(&schema.features).map(|(w, f)| w * f.baseline).sum::<f64>();
            if !base.is_finite() {
                return Err(ConfigError::NonFiniteWeight {
                    offer: offer.id.clone(),
                    feature: "bias + weights x baselines".into(),
                    value: base,
                });
            }
            weights.extend_from_slice(&w);
            base_logit.push(base);
        }
        let row = |o: usize| &weights[o * n_features..(o + 1) * n_features];
        let is_proxy: Vec<bool> =
            schema.features.iter().map(|f| matches!(f.sensitivity, Sensitivity::Proxy(_))).collect();
        let proxy_offers: Vec<u32> = (0..offers.len())
            .filter(|&o| row(o).iter().zip(&is_proxy).any(|(&w, &p)| p && w != 0.0))
            .map(|o| o as u32)
            .collect();
        let mut proxy_bits = Bitset::default();
        proxy_bits.reset(offers.len());
        for &o in &proxy_offers {
            proxy_bits.set(o as usize);
        }
        // Weights beyond f32's range would make the kernels meaningless; the
        // engine then scores every customer exactly (`max_abs_weight` says so).
        let to_f32 = |w: f64| if w.abs() < 1e30 { w as f32 } else { 0.0 };
        let w32 = Matrix::from_fn(offers.len(), n_features, |o, i| to_f32(row(o)[i]));
        // Rounded up; beyond f32's range, infinity (the bounds then send
        // the offer to exact scoring).
        let up = |n: f64| {
            let n32 = n as f32;
            if f64::from(n32) < n {
                f32::from_bits(n32.to_bits() + 1)
            } else {
                n32
            }
        };
        let norm: Vec<f32> =
            (0..offers.len()).map(|o| up(row(o).iter().map(|w| w * w).sum::<f64>().sqrt() * (1.0 + 1e-9))).collect();
        let (w16, stride) = (kernel::Groups::from_rows(&w32), w32.stride());
        let grouped = &w16;
        let pairs = |o: usize| weight_pairs(row(o), stride, move |f| grouped.weight(o, f).map(f64::from));
        let epsilon = kernel::logit_error(stride);
        let norm16 = (0..offers.len())
            .map(|o| {
                // `w̃ − w` is exact in f64 where the two are within a factor
                // of two (all but tiny weights); the widening covers the
                // rest, and the sums and roots.
                let (kept, moved, _) = kernel::rounding_norms(pairs(o));
                up((kept + moved / epsilon) * (1.0 + 1e-6)).max(norm[o])
            })
            .collect();
        let w_int = kernel::integer::IntGroups::from_rows(&w32);
        let integers = &w_int;
        let int_pairs = |o: usize| weight_pairs(row(o), stride, move |f| integers.weight(o, f));
        let norm_int =
            (0..offers.len()).map(|o| up(w_int.norm(int_pairs(o), epsilon) * (1.0 + 1e-6)).max(norm[o])).collect();
        let max_abs_weight = weights.iter().fold(0.0f64, |m, w| m.max(w.abs()));
        let max_abs_kernel_weight = (0..offers.len())
            .flat_map(|o| pairs(o).chain(int_pairs(o)))
            .fold(max_abs_weight, |m, (_, r)| m.max(r.abs()));
        let max_abs_base = base_logit.iter().fold(0.0f64, |m, b| m.max(b.abs()));
        let ln_value_weight: Vec<Option<f64>> = offers.iter().map(|o| ln_sum(&[o.value, o.weight])).collect();
        let log_value = offers
            .iter()
            .zip(&ln_value_weight)
            .map(|(o, &ln)| log_f32(o.value == 0.0 || o.weight == 0.0, ln))
            .collect();
        let base32 = base_logit.iter().map(|&b| b as f32).collect();
        // `b as f32` is within 2⁻²⁴·|b| of b; twice that, rounded up.
        let slack32 = base_logit.iter().map(|&b| (b.abs() * f64::powi(2.0, -23) * (1.0 + 1e-6)) as f32).collect();
        Ok(ModelMatrix {
            n_features,
            weights,
            base_logit,
            w32,
            w16,
            w_int,
            norm_int,
            proxy_bits,
            base32,
            norm32: norm,
            slack32,
            norm16,
            log_value,
            ln_value_weight,
            max_abs_weight,
            max_abs_kernel_weight,
            max_abs_base,
        })
    }

    /// Weights of offer `o`.
    pub(crate) fn row(&self, o: usize) -> &[f64] {
        &self.weights[o * self.n_features..(o + 1) * self.n_features]
    }

    /// Logit of offer `o` for the centred, masked feature vector `d`
    /// (`dᵢ = xᵢ − baselineᵢ`, 0 when masked). This f64 expression, summed
    /// in feature order, is the definition every path reproduces exactly.
    pub(crate) fn logit(&self, o: usize, d: &[f64]) -> f64 {
        self.base_logit[o] + self.row(o).iter().zip(d).map(|(w, x)| w * x).sum::<f64>()
    }

    /// [`ModelMatrix::logit`] of each of `offers`, into `out` (cleared
    /// first), bit for bit: the same sums in the same order, four offers
    /// at a time so that their chains of additions overlap rather than
    /// wait on one another.
    pub(crate) fn logits(&self, isa: Isa, offers: &[u32], d: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let mut blocks = offers.chunks_exact(4);
        for block in &mut blocks {
            let sums = kernel::sums_in_order(isa, [0, 1, 2, 3].map(|j| self.row(block[j] as usize)), d);
            out.extend(block.iter().zip(sums).map(|(&o, sum)| self.base_logit[o as usize] + sum));
        }
        out.extend(blocks.remainder().iter().map(|&o| self.logit(o as usize, d)));
        debug_assert!(offers.iter().zip(out.iter()).all(|(&o, l)| l.to_bits() == self.logit(o as usize, d).to_bits()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureSpec;
    use std::collections::BTreeMap;

    fn schema() -> FeatureSchema {
        FeatureSchema::new(vec![FeatureSpec::new("a", "a"), FeatureSpec::new("b", "b").baseline(2.0)])
    }

    #[test]
    fn weights_by_name_and_dense_agree() {
        let id = OfferId::from("o");
        let by_name = Weights::ByName(BTreeMap::from([("b".to_owned(), 3.0)]));
        assert_eq!(dense_weights(&id, &schema(), &by_name).unwrap(), vec![0.0, 3.0]);
        assert_eq!(dense_weights(&id, &schema(), &Weights::Dense(vec![0.0, 3.0])).unwrap(), vec![0.0, 3.0]);
    }

    #[test]
    fn bad_weights_are_named() {
        let id = OfferId::from("o");
        let unknown = Weights::ByName(BTreeMap::from([("zz".to_owned(), 1.0)]));
        assert!(
            matches!(dense_weights(&id, &schema(), &unknown), Err(ConfigError::UnknownWeightFeature { feature, .. }) if feature == "zz")
        );
        assert!(matches!(
            dense_weights(&id, &schema(), &Weights::Dense(vec![1.0])),
            Err(ConfigError::WeightCount { expected: 2, found: 1, .. })
        ));
        assert!(matches!(
            dense_weights(&id, &schema(), &Weights::Dense(vec![1.0, f64::INFINITY])),
            Err(ConfigError::NonFiniteWeight { feature, .. }) if feature == "b"
        ));
    }

    /// A plain offer `id` with this model.
    fn offer(id: &str, bias: f64, weights: Vec<f64>) -> crate::catalog::Offer {
        crate::catalog::Offer::new(
            id,
            "p",
            crate::catalog::OfferKind::CrossSell,
            1.0,
            [crate::catalog::Channel::Email],
            crate::catalog::PropensityModel::dense(bias, weights),
        )
    }

    /// The fast path's error bounds need `‖w‖₂` rounded *up*, also when it
    /// is beyond 1e30 while every weight is below it (it used to be capped
    /// at 1e30, an underestimate), and the base logit's f32 rounding.
    #[test]
    fn bound_constants_are_never_underestimates() {
        for (bias, w) in [(0.1, 0.3), (-5_000.000_123, 7.0e29), (1e20 / 3.0, -9e29), (0.0, 0.0)] {
            let m = ModelMatrix::compile(&schema(), &[offer("o", bias, vec![w, w])]).unwrap();
            let (b32, norm, slack) = (m.base32[0], m.norm32[0], m.slack32[0]);
            let exact_norm = (2.0 * w * w).sqrt();
            assert!(f64::from(norm) >= exact_norm, "{w}");
            let base = m.base_logit[0];
            assert!((f64::from(b32) - base).abs() <= f64::from(slack), "{base}");
        }
    }

    /// `logits` (four offers at a time, then one by one) is `logit`, bit
    /// for bit, in any order of offers, zero signs included.
    #[test]
    fn logits_are_the_logits_bit_for_bit() {
        let numbered = |i: usize| {
            let w = |k: usize| [0.3, -1e-17, 7.25, -0.0, 1e300, 0.1][(i * 7 + k) % 6];
            // Offer 5: a base of −0.0, and products of −0.0 for d = 0.
            let (bias, weights) =
                if i == 5 { (-0.0, vec![-1e-17, -0.0]) } else { ([0.0, 1.5][i % 2], vec![w(0), w(1)]) };
            offer(&format!("o{i}"), bias, weights)
        };
        let offers: Vec<_> = (0..11).map(numbered).collect();
        let m = ModelMatrix::compile(&schema(), &offers).unwrap();
        assert_eq!(m.logit(5, &[0.0, 0.0]).to_bits(), (-0.0f64).to_bits());
        for d in [[0.1, 3.0], [0.0, 0.0], [-0.0, -0.0], [1e10, -1e-300], [-2.5, 0.0]] {
            for list in [vec![], vec![3], (0..11).collect(), vec![10, 2, 2, 7, 0, 5, 9, 1, 4]] {
                for isa in Isa::available() {
                    let mut out = vec![f64::NAN];
                    m.logits(isa, &list, &d, &mut out);
                    let expected: Vec<u64> = list.iter().map(|&o| m.logit(o as usize, &d).to_bits()).collect();
                    assert_eq!(
                        out.iter().map(|l| l.to_bits()).collect::<Vec<_>>(),
                        expected,
                        "{isa:?} {d:?}, {list:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn sigmoid_is_a_probability() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(40.0) <= 1.0 && sigmoid(-40.0) >= 0.0);
        assert!(sigmoid(2.0) > sigmoid(1.0));
    }
}
