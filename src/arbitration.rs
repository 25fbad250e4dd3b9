//! Stage 5, arbitration: one priority per allowed offer, and the top-k by
//! priority with a stable tie-break.
//!
//! `priority = propensity × stake × weight × family factor`, where
//!
//! - `propensity` is the offer's model output after masking;
//! - `stake` is what the offer is worth to the relationship:
//!   `value_weight · value · growth factor + lifetime_value_weight · CLV` for
//!   cross-sell and up-sell offers, and
//!   `value_weight · value + retention_weight · churn risk · CLV` for
//!   retention offers (the value at stake if the customer leaves);
//! - the growth factor `1 − wallet_share_damping · share of wallet` spends
//!   less effort selling more to customers who already buy most of the
//!   category from us;
//! - `weight` is the offer's business lever;
//! - the family factor (`≤ 1`) lowers offers of a product family the
//!   customer dismissed recently (see [`FatigueParams`](crate::relationship::FatigueParams)).
//!
//! Without customer value figures and recent dismissals this is
//! `propensity × value × weight`. Ties are broken by offer id, ascending.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::OfferKind;
use crate::error::ConfigError;
use crate::kernel::{self, Isa};
use crate::value::ValueSummary;

/// The arbitration priority before the family factor:
/// `propensity × stake × weight` (with no customer value, the stake is the
/// offer's value).
pub fn priority(propensity: f64, stake: f64, weight: f64) -> f64 {
    propensity * stake * weight
}

/// An allowed offer waiting to be ranked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// Offer position in the engine, which is offer-id order.
    pub(crate) offer: usize,
    pub(crate) logit: f64,
    pub(crate) propensity: f64,
    pub(crate) priority: f64,
    /// The priority's stake and family factor, kept for the explanation.
    pub(crate) stake: Stake,
    pub(crate) family_factor: f64,
}

/// Higher priority first, then lower offer position (= offer id).
fn rank_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.priority.total_cmp(&a.priority).then(a.offer.cmp(&b.offer))
}

/// Whether `a` ranks ahead of `b`.
pub(crate) fn ranks_ahead(a: &Candidate, b: &Candidate) -> bool {
    rank_order(a, b) == Ordering::Less
}

/// Keeps the best `k` candidates, best first.
pub(crate) fn top_k(candidates: &mut Vec<Candidate>, k: usize) {
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, rank_order);
    }
    candidates.truncate(k);
    candidates.sort_unstable_by(rank_order);
}

/// The offers that may still be among the best `k`, from bounds `lo[o] ≤
/// ln(priority of offer o) ≤ hi[o]`: with `τ` the k-th largest lower
/// bound, an offer whose upper bound is below `τ` has `k` offers strictly
/// ahead of it whatever the tie-break, so only offers with `hi ≥ τ` are
/// pushed to `out`, ascending. Ranking those exactly ranks all. NaN bounds
/// mark offers not ranked here (not scored, or ranked exactly anyway):
/// they are neither counted nor pushed.
pub(crate) fn shortlist(isa: Isa, k: usize, (lo, hi): (&[f32], &[f32]), scratch: &mut Vec<f32>, out: &mut Vec<u32>) {
    let n = lo.len().min(hi.len());
    let tau = if k > 0 && n <= k { f32::NEG_INFINITY } else { kernel::kth_largest(isa, &lo[..n], k, scratch) };
    kernel::append_positions_at_least(isa, &hi[..n], tau, out);
}

/// [`shortlist`] with a threshold at most its `τ` (the k-th largest of a
/// subset of the lower bounds, see [`kernel::kth_largest_at_most`]): the
/// offers it keeps and perhaps a few more, found without a branch per
/// offer. For the first of two shortlists, whose second is exact.
pub(crate) fn shortlist_loose(
    isa: Isa,
    k: usize,
    (lo, hi): (&[f32], &[f32]),
    scratch: &mut Vec<f32>,
    out: &mut Vec<u32>,
) {
    let n = lo.len().min(hi.len());
    let tau = if k > 0 && n <= k { f32::NEG_INFINITY } else { kernel::kth_largest_at_most(isa, &lo[..n], k, scratch) };
    kernel::append_positions_at_least(isa, &hi[..n], tau, out);
}

/// Weights of the arbitration formula (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ArbitrationParams {
    /// Weight of the offer's own value; `>= 0`, default 1.
    pub value_weight: f64,
    /// Weight of the customer's lifetime value in growth offers: invest
    /// more in valuable customers; `>= 0`, default 0.
    pub lifetime_value_weight: f64,
    /// Weight of the value at risk (churn risk × lifetime value) in
    /// retention offers; `>= 0`, default 1.
    pub retention_weight: f64,
    /// How much a high share of wallet damps growth offers; `[0, 1]`,
    /// default 0.5 (a customer buying everything from us halves them).
    pub wallet_share_damping: f64,
}

impl Default for ArbitrationParams {
    fn default() -> Self {
        ArbitrationParams {
            value_weight: 1.0,
            lifetime_value_weight: 0.0,
            retention_weight: 1.0,
            wallet_share_damping: 0.5,
        }
    }
}

impl ArbitrationParams {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let weight = |v: f64| v.is_finite() && v >= 0.0;
        let checks = [
            ("arbitration.value_weight", self.value_weight, weight(self.value_weight), "a finite weight >= 0"),
            (
                "arbitration.lifetime_value_weight",
                self.lifetime_value_weight,
                weight(self.lifetime_value_weight),
                "a finite weight >= 0",
            ),
            (
                "arbitration.retention_weight",
                self.retention_weight,
                weight(self.retention_weight),
                "a finite weight >= 0",
            ),
            (
                "arbitration.wallet_share_damping",
                self.wallet_share_damping,
                (0.0..=1.0).contains(&self.wallet_share_damping),
                "a share in [0, 1]",
            ),
        ];
        match checks.iter().find(|c| !c.2) {
            Some(&(name, value, _, expected)) => Err(ConfigError::InvalidParameter { name, value, expected }),
            None => Ok(()),
        }
    }
}

/// What an offer is worth to one customer's relationship.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stake {
    /// The stake (see the module docs).
    pub stake: f64,
    /// `1 − wallet_share_damping · share of wallet` for growth offers, 1 otherwise.
    pub growth_factor: f64,
}

/// The stake of an offer of `kind` and `value` for a customer with `summary`.
pub fn stake(kind: OfferKind, value: f64, summary: Option<&ValueSummary>, params: &ArbitrationParams) -> Stake {
    let Some(s) = summary else {
        return Stake { stake: params.value_weight * value, growth_factor: 1.0 };
    };
    if kind == OfferKind::Retention {
        let stake = params.value_weight * value + params.retention_weight * s.value_at_risk;
        return Stake { stake, growth_factor: 1.0 };
    }
    let growth_factor = 1.0 - params.wallet_share_damping * s.share_of_wallet.unwrap_or(0.0);
    let stake = params.value_weight * value * growth_factor + params.lifetime_value_weight * s.lifetime_value;
    Stake { stake, growth_factor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offer: usize, priority: f64) -> Candidate {
        let stake = Stake { stake: 1.0, growth_factor: 1.0 };
        Candidate { offer, logit: 0.0, propensity: 0.0, priority, stake, family_factor: 1.0 }
    }

    #[test]
    fn ties_go_to_the_lower_offer_id() {
        let mut v = vec![c(3, 1.0), c(1, 1.0), c(2, 2.0), c(0, 0.5)];
        top_k(&mut v, 2);
        assert_eq!(v.iter().map(|c| c.offer).collect::<Vec<_>>(), vec![2, 1]);
        assert!(ranks_ahead(&c(1, 1.0), &c(3, 1.0)) && !ranks_ahead(&c(3, 1.0), &c(1, 1.0)));
        assert!(!ranks_ahead(&c(1, 1.0), &c(1, 1.0)), "strictly");
    }

    #[test]
    fn shortlist_keeps_every_offer_that_may_be_in_the_top_k() {
        // Exact values with bounds ±0.5; NaN: not ranked here.
        let exact = [9.0f32, 8.0, 7.9, 4.0, 8.2, f32::NAN];
        let lo: Vec<f32> = exact.iter().map(|v| v - 0.5).collect();
        let hi: Vec<f32> = exact.iter().map(|v| v + 0.5).collect();
        for (k, expected) in [
            (1, vec![0, 1, 4]),
            (2, vec![0, 1, 2, 4]),
            (3, vec![0, 1, 2, 4]),
            (5, vec![0, 1, 2, 3, 4]),
            (6, vec![0, 1, 2, 3, 4]),
        ] {
            for isa in Isa::available() {
                let mut out = Vec::new();
                shortlist(isa, k, (&lo, &hi), &mut Vec::new(), &mut out);
                assert_eq!(out, expected, "k = {k}, {isa:?}");
            }
        }
        // Several blocks, and large k: the selection path.
        let lo: Vec<f32> = (0..40).map(|i| i as f32).collect();
        let hi: Vec<f32> = lo.iter().map(|l| l + 1.5).collect();
        for isa in Isa::available() {
            let mut out = Vec::new();
            shortlist(isa, 3, (&lo, &hi), &mut Vec::new(), &mut out);
            // τ = 37: hi ≥ 37 from 36 on.
            assert_eq!(out, (36..40).collect::<Vec<u32>>());
            out.clear();
            shortlist(isa, kernel::SELECT_K + 4, (&lo, &hi), &mut Vec::new(), &mut out);
            // τ = 40 − 20 = 20: hi ≥ 20 from 19 on.
            assert_eq!(out, (19..40).collect::<Vec<u32>>());
        }
    }

    /// The naive oracle: the k-th largest lower bound by a full sort.
    fn naive_shortlist(k: usize, lo: &[f32], hi: &[f32]) -> Vec<u32> {
        let mut sorted: Vec<f32> = lo.iter().map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l }).collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let tau = match k {
            0 => f32::INFINITY,
            _ if lo.len() <= k => f32::NEG_INFINITY,
            _ => sorted[k - 1],
        };
        (0..hi.len() as u32).filter(|&j| hi[j as usize] >= tau).collect()
    }

    /// `(lower, width, NaN)` triples as bounds: NaN for both, or `[l, l + w]`.
    fn bounds_of(bounds: &[(i8, u8, bool)]) -> (Vec<f32>, Vec<f32>) {
        let pair = |&(l, w, nan): &(i8, u8, bool)| {
            if nan {
                (f32::NAN, f32::NAN)
            } else {
                (f32::from(l), f32::from(l) + f32::from(w))
            }
        };
        bounds.iter().map(pair).unzip()
    }

    proptest::proptest! {
        #[test]
        fn shortlist_equals_the_naive_oracle(
            bounds in proptest::collection::vec((-8i8..8, 0u8..4, proptest::bool::weighted(0.1)), 0..70),
            k in 0usize..24,
        ) {
            // Few distinct values, so that ties are common.
            let (lo, hi) = bounds_of(&bounds);
            for isa in Isa::available() {
                let mut out = Vec::new();
                shortlist(isa, k, (&lo, &hi), &mut Vec::new(), &mut out);
                proptest::prop_assert_eq!(&out, &naive_shortlist(k, &lo, &hi), "{:?}", isa);
            }
        }
    }

    proptest::proptest! {
        /// The loose shortlist keeps every offer of the exact one: those
        /// reaching the threshold of `kth_largest_at_most` (tested there).
        #[test]
        fn loose_shortlist_contains_the_exact_one(
            bounds in proptest::collection::vec((-8i8..8, 0u8..4, proptest::bool::weighted(0.1)), 0..150),
            k in 0usize..24,
        ) {
            let (lo, hi) = bounds_of(&bounds);
            let exact = naive_shortlist(k, &lo, &hi);
            for isa in Isa::available() {
                let mut out = Vec::new();
                shortlist_loose(isa, k, (&lo, &hi), &mut Vec::new(), &mut out);
                proptest::prop_assert!(exact.iter().all(|j| out.contains(j)), "{:?}: {:?} ⊉ {:?}", isa, out, exact);
                let tau = if lo.len() <= k && k > 0 {
                    f32::NEG_INFINITY
                } else {
                    kernel::kth_largest_at_most(isa, &lo, k, &mut Vec::new())
                };
                let reaching: Vec<u32> = (0..hi.len() as u32).filter(|&j| hi[j as usize] >= tau).collect();
                proptest::prop_assert_eq!(&out, &reaching, "{:?}", isa);
                let listed: Vec<u32> = (0..hi.len() as u32).filter(|j| out.contains(j)).collect();
                proptest::prop_assert_eq!(&listed, &out, "ascending, no repeats");
            }
        }
    }

    #[test]
    fn k_larger_than_candidates_keeps_all() {
        let mut v = vec![c(0, 0.1), c(1, 0.2)];
        top_k(&mut v, 10);
        assert_eq!(v.iter().map(|c| c.offer).collect::<Vec<_>>(), vec![1, 0]);
        top_k(&mut v, 0);
        assert!(v.is_empty());
    }
}
