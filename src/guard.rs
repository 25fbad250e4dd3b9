//! Stage 4, the intrusiveness guard.
//!
//! 1. An offer targeting life event E needs E *declared* and consent to use
//!    declared events; observed or inferred signals never unlock it.
//! 2. `special` features are always masked to their baseline; `life_event(E)`
//!    features unless E is declared with consent.
//! 3. An offer whose absolute log-odds contributions come more than the
//!    threshold share from active proxy features is suppressed. The rule
//!    needs the score, and is decided in rank order until `k` offers pass
//!    it: a proxy-driven offer ranked ahead of the k-th recommendation (or
//!    with fewer than `k`) is withheld; one ranked after it would not be
//!    shown anyway and is left unranked. So the audit lists the
//!    suppressions that changed what the customer sees, and the engine
//!    computes proxy shares for the offers the ranking reaches only.
//! 4. A vulnerability marker of any provenance suppresses unsuitable offers:
//!    inferences may protect, never target.
//!
//! Suppressed offers are withheld, never replaced or demoted (rule 5), and
//! explanations cite ordinary features only (rule 6).

use crate::catalog::Offer;
use crate::customer::{Customer, LifeEventUse, ProvenanceKind};
use crate::decision::Reason;
use crate::schema::{LifeEvent, ProxyTarget, Sensitivity};

/// What the customer's life-event signals allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SignalState {
    /// Bit per [`LifeEvent::index`]: declared, and use consented.
    usable: u32,
    /// Per event, bit per [`ProvenanceKind`] found.
    found: [u8; LifeEvent::ALL.len()],
}

const PROVENANCES: [ProvenanceKind; 3] = [ProvenanceKind::Declared, ProvenanceKind::Observed, ProvenanceKind::Inferred];

fn provenance_bit(kind: ProvenanceKind) -> u8 {
    match kind {
        ProvenanceKind::Declared => 1,
        ProvenanceKind::Observed => 2,
        ProvenanceKind::Inferred => 4,
    }
}

impl SignalState {
    pub(crate) fn new(customer: &Customer) -> Self {
        let consent = customer.consents.life_event_use == LifeEventUse::Consented;
        let mut state = SignalState::default();
        for signal in &customer.life_events {
            let i = signal.event.index();
            let kind = signal.provenance.kind();
            state.found[i] |= provenance_bit(kind);
            if consent && kind == ProvenanceKind::Declared {
                state.usable |= 1 << i;
            }
        }
        state
    }

    /// `true` when `event` was declared and its use consented.
    pub(crate) fn usable(self, event: LifeEvent) -> bool {
        self.usable & (1 << event.index()) != 0
    }

    /// Rule 2: is a feature of this class masked to its baseline?
    pub(crate) fn masks(self, sensitivity: Sensitivity) -> bool {
        match sensitivity {
            Sensitivity::Special(_) => true,
            Sensitivity::LifeEvent(e) => !self.usable(e),
            Sensitivity::Ordinary | Sensitivity::Proxy(_) => false,
        }
    }

    /// Rule 3: does a feature of this class count towards the proxy share?
    /// (The definition that [`SignalState::bits`] is tested against.)
    /// A proxy of an event the customer declared with consent stands in for
    /// nothing hidden, so it does not.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn counts_as_proxy(self, sensitivity: Sensitivity) -> bool {
        match sensitivity {
            Sensitivity::Proxy(ProxyTarget::LifeEvent(e)) => !self.usable(e),
            Sensitivity::Proxy(_) => true,
            _ => false,
        }
    }

    /// Rules 2 and 3 as bit masks over [`SignalState::usable_mask`]'s
    /// complement, for a branch-free loop over the features: a feature of
    /// this class is masked when `mask & !usable != 0`, and counts as a
    /// proxy when `proxy & !usable != 0`. Bit 31, never usable, stands for
    /// "always".
    pub(crate) fn bits(sensitivity: Sensitivity) -> (u32, u32) {
        const ALWAYS: u32 = 1 << 31;
        match sensitivity {
            Sensitivity::Special(_) => (ALWAYS, 0),
            Sensitivity::LifeEvent(e) => (1 << e.index(), 0),
            Sensitivity::Proxy(ProxyTarget::LifeEvent(e)) => (0, 1 << e.index()),
            Sensitivity::Proxy(_) => (0, ALWAYS),
            Sensitivity::Ordinary => (0, 0),
        }
    }

    /// Rule 1 for an offer's targets.
    pub(crate) fn check_targets(self, targets: &[LifeEvent]) -> Result<(), Reason> {
        match self.target_failure(targets) {
            None => Ok(()),
            Some((event, None)) => Err(Reason::LifeEventUseNotConsented { event }),
            Some((event, Some(found))) => {
                Err(Reason::LifeEventNotDeclared { event, found: provenances(found).collect() })
            }
        }
    }

    /// Bit per [`LifeEvent::index`]: the events declared with consent.
    pub(crate) fn usable_mask(self) -> u32 {
        self.usable
    }

    /// Rule 1 without allocating: the first target that is not usable, with
    /// `None` when it was declared but its use not consented, or else the
    /// provenances found (see [`provenances`]).
    pub(crate) fn target_failure(self, targets: &[LifeEvent]) -> Option<(LifeEvent, Option<u8>)> {
        let event = targets.iter().copied().find(|&e| !self.usable(e))?;
        let found = self.found[event.index()];
        if found & provenance_bit(ProvenanceKind::Declared) != 0 {
            return Some((event, None));
        }
        Some((event, Some(found)))
    }
}

/// The provenance kinds in a bit set built by [`SignalState`], in order.
pub(crate) fn provenances(found: u8) -> impl Iterator<Item = ProvenanceKind> {
    PROVENANCES.into_iter().filter(move |&k| found & provenance_bit(k) != 0)
}

/// Rule 4: the first of the customer's markers that makes `offer` unsuitable.
pub(crate) fn check_suitability(offer: &Offer, customer: &Customer) -> Result<(), Reason> {
    if offer.unsuitable_for.is_empty() {
        return Ok(());
    }
    match customer.vulnerabilities.iter().find(|m| offer.unsuitable_for.contains(&m.vulnerability)) {
        Some(m) => Err(Reason::Unsuitable { vulnerability: m.vulnerability, provenance: m.provenance.kind() }),
        None => Ok(()),
    }
}

/// Rule 3: share of `Σ|cᵢ|` that comes from features with `is_proxy[i]`
/// (0 when every contribution is 0).
pub(crate) fn proxy_share(contributions: impl Iterator<Item = (f64, bool)>) -> f64 {
    let [proxy, total] = proxy_sums_in_order(contributions, [0.0, 0.0]);
    if total > 0.0 {
        proxy / total
    } else {
        0.0
    }
}

/// [`proxy_share`]'s sums `[Σ_{proxy} |cᵢ|, Σ |cᵢ|]`, added in order to
/// `sums`: the definition the fast path's sums in any order answer to.
pub(crate) fn proxy_sums_in_order(contributions: impl Iterator<Item = (f64, bool)>, sums: [f64; 2]) -> [f64; 2] {
    let [mut proxy, mut total] = sums;
    for (c, is_proxy) in contributions {
        total += c.abs();
        if is_proxy {
            proxy += c.abs();
        }
    }
    [proxy, total]
}

/// Rule 3 from `[Σ_{proxy} |cᵢ|, Σ |cᵢ|]` over `n` features added in any
/// order: `Some(share > theta)` as [`proxy_share`] would decide it, unless
/// their share is within `(8n + 16)·2⁻⁵³` (relative) of `theta`, twice what
/// the two pairs of sums and divisions may differ by (each sum of
/// nonnegative terms is within `(n − 1)·2⁻⁵³` of the exact one, the
/// division within 2⁻⁵³). `None` then, or when the total is not finite and
/// positive: the sequential sums decide. `theta` is at least 0 (validated).
pub(crate) fn decided_by_sums([proxy, total]: [f64; 2], n: usize, theta: f64) -> Option<bool> {
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    let margin = (4 * n + 8) as f64 * f64::EPSILON;
    let share = proxy / total;
    if share > theta * (1.0 + margin) {
        Some(true)
    } else if share < theta * (1.0 - margin) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums of `|cᵢ|` (all, and the proxy ones) in the order `order`.
    fn sums_in(order: &[usize], c: &[f64], is_proxy: &[bool]) -> [f64; 2] {
        order.iter().fold([0.0, 0.0], |[p, t], &i| [if is_proxy[i] { p + c[i].abs() } else { p }, t + c[i].abs()])
    }

    proptest::proptest! {
        /// Whatever order the sums were added in, a decision from them is
        /// the sequential rule's, also for thresholds at the share itself
        /// or a few units of the last place from it.
        #[test]
        fn a_decision_from_sums_in_any_order_is_the_sequential_one(
            terms in proptest::collection::vec((-40i32..40, 1u32..1 << 20, proptest::bool::ANY), 1..120),
            nudge in -4i64..=4,
            seed in proptest::prelude::any::<u64>(),
        ) {
            // Magnitudes far apart, so that the order shows in the bits.
            let c: Vec<f64> = terms.iter().map(|t| f64::from(t.1) * f64::powi(2.0, t.0)).collect();
            let is_proxy: Vec<bool> = terms.iter().map(|t| t.2).collect();
            let share = proxy_share(c.iter().copied().zip(is_proxy.iter().copied()));
            let theta = f64::from_bits((share.to_bits() as i64 + nudge).max(0) as u64).min(0.99);
            let n = c.len();
            let forward: Vec<usize> = (0..n).collect();
            let backward: Vec<usize> = (0..n).rev().collect();
            let mut shuffled = forward.clone();
            let mut state = seed | 1;
            for i in (1..n).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for order in [&forward, &backward, &shuffled] {
                if let Some(driven) = decided_by_sums(sums_in(order, &c, &is_proxy), n, theta) {
                    proptest::prop_assert_eq!(driven, share > theta, "theta {} share {}", theta, share);
                }
            }
        }
    }

    #[test]
    fn far_from_the_threshold_the_sums_decide() {
        let c = [1.0, 3.0, 0.5];
        let is_proxy = [true, false, false];
        let sums = sums_in(&[2, 1, 0], &c, &is_proxy);
        assert_eq!(decided_by_sums(sums, 3, 0.25), Some(false));
        assert_eq!(decided_by_sums(sums, 3, 0.2), Some(true));
        assert_eq!(decided_by_sums(sums, 3, 1.0 / 4.5), None, "at the share itself");
        assert_eq!(decided_by_sums([0.0, 0.0], 3, 0.25), None, "no total");
        assert_eq!(decided_by_sums([1.0, f64::INFINITY], 3, 0.25), None);
    }

    /// The bit masks give rules 2 and 3 for every class and every set of
    /// usable events.
    #[test]
    fn sensitivity_bits_agree_with_the_rules() {
        use crate::schema::{ProxyTarget, SpecialCategory};
        let mut classes = vec![Sensitivity::Ordinary];
        for c in SpecialCategory::ALL {
            classes.extend([Sensitivity::Special(c), Sensitivity::Proxy(ProxyTarget::Special(c))]);
        }
        for e in LifeEvent::ALL {
            classes.extend([Sensitivity::LifeEvent(e), Sensitivity::Proxy(ProxyTarget::LifeEvent(e))]);
        }
        let all = (1u32 << LifeEvent::ALL.len()) - 1;
        for usable in 0..=all {
            let state = SignalState { usable, ..SignalState::default() };
            for &class in &classes {
                let (mask, proxy) = SignalState::bits(class);
                assert_eq!(mask & !usable != 0, state.masks(class), "{class:?}, usable {usable:b}");
                assert_eq!(proxy & !usable != 0, state.counts_as_proxy(class), "{class:?}, usable {usable:b}");
            }
        }
    }

    #[test]
    fn proxy_share_is_a_share() {
        assert_eq!(proxy_share([(1.0, true), (-3.0, false)].into_iter()), 0.25);
        assert_eq!(proxy_share([(0.0, true)].into_iter()), 0.0);
        assert_eq!(proxy_share([(-2.0, true)].into_iter()), 1.0);
    }
}
