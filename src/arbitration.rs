//! Stage 5, arbitration: one priority per allowed offer, and the top-k by
//! priority with a stable tie-break.
//!
//! `priority = propensity × value × weight`: the expected business value
//! of making the offer, scaled by the offer's business lever. Ties are
//! broken by offer id, ascending.

use std::cmp::Ordering;

/// The arbitration priority.
pub fn priority(propensity: f64, value: f64, weight: f64) -> f64 {
    propensity * value * weight
}

/// An allowed offer waiting to be ranked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// Offer position in the engine, which is offer-id order.
    pub(crate) offer: usize,
    pub(crate) logit: f64,
    pub(crate) propensity: f64,
    pub(crate) priority: f64,
}

/// Higher priority first, then lower offer position (= offer id).
fn rank_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.priority.total_cmp(&a.priority).then(a.offer.cmp(&b.offer))
}

/// Keeps the best `k` candidates, best first.
pub(crate) fn top_k(candidates: &mut Vec<Candidate>, k: usize) {
    if candidates.len() > k && k > 0 {
        candidates.select_nth_unstable_by(k - 1, rank_order);
    }
    candidates.truncate(k);
    candidates.sort_unstable_by(rank_order);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offer: usize, priority: f64) -> Candidate {
        Candidate { offer, logit: 0.0, propensity: 0.0, priority }
    }

    #[test]
    fn ties_go_to_the_lower_offer_id() {
        let mut v = vec![c(3, 1.0), c(1, 1.0), c(2, 2.0), c(0, 0.5)];
        top_k(&mut v, 2);
        assert_eq!(v.iter().map(|c| c.offer).collect::<Vec<_>>(), vec![2, 1]);
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
