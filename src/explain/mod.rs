//! Explanations: the priority and its components, the signed contributions
//! of the ordinary features used, the rules passed and one plain sentence.
//! Sensitive features and signals are never cited (guard rule 6).

use std::fmt::Write as _;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::{self, Isa};

pub mod contributions;

pub use contributions::Contributions;

/// A rule an offer passed on its way into the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The customer does not hold the product.
    NotHeld,
    /// Within the offer's age bounds.
    AgeBounds,
    /// Holds the base product of the up-sell.
    BaseProductHeld,
    /// Holds every required product.
    RequiredHoldings,
    /// Holds no excluding product.
    NoExcludedHolding,
    /// Marketing allowed and the channel consented and offered.
    ChannelConsent,
    /// Under the contact frequency cap.
    FrequencyCap,
    /// Not dismissed recently.
    Cooldown,
    /// Not shown too often without acceptance.
    Rest,
    /// Every targeted life event declared by the customer, with consent.
    LifeEventConsent,
    /// Special-category and undeclared life-event data masked.
    SensitiveDataMasked,
    /// Not driven by proxy features.
    ProxyShare,
    /// Suitable given the customer's vulnerability markers.
    Suitability,
}

/// The parts of the arbitration priority:
/// `priority = propensity × stake × weight × family_factor`
/// (see [`arbitration`](crate::arbitration)).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Components {
    /// Propensity model output, in log-odds, after masking.
    pub logit: f64,
    /// `sigmoid(logit)`.
    pub propensity: f64,
    /// The offer's business value.
    pub value: f64,
    /// The offer's business lever.
    pub weight: f64,
    /// What the offer is worth to the relationship; the offer's value when
    /// the customer's value is unknown.
    pub stake: f64,
    /// Share-of-wallet damping of growth offers (1 for retention offers).
    pub growth_factor: f64,
    /// Propensity factor after recent dismissals in the offer's product
    /// family (1 without).
    pub family_factor: f64,
    /// The customer's lifetime value (0 when unknown).
    pub lifetime_value: f64,
    /// Churn risk × lifetime value (0 when unknown); counts in the stake of
    /// retention offers.
    pub value_at_risk: f64,
}

/// One feature's signed contribution to the log-odds, measured against the
/// feature's baseline: `weight × (value − baseline)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Contribution {
    /// Feature name.
    pub feature: Arc<str>,
    /// Its human description.
    pub description: Arc<str>,
    /// The customer's value.
    pub value: f64,
    /// The model weight.
    pub weight: f64,
    /// Contribution in log-odds.
    pub contribution: f64,
}

/// Why one offer was recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Explanation {
    /// `propensity × value × weight`.
    pub priority: f64,
    /// The parts of the priority.
    pub components: Components,
    /// Largest contributions of cited (ordinary) features, by absolute size.
    pub contributions: Contributions,
    /// The rules the offer passed, in pipeline order.
    pub rules_passed: Vec<Rule>,
    /// One plain-language sentence.
    pub reason: String,
}

/// Phrase used when no cited feature speaks for the offer.
pub const GENERIC_REASON: &str = "Suggested as a good fit for customers with a profile like yours.";

/// Selects the `max` largest contributions `wᵢ·dᵢ·mᵢ` (`m` is 1 for the
/// features that may be cited, 0 for the others) by absolute size, as
/// `(feature, contribution)` pairs, largest first; ties go to the lower
/// feature index and zero contributions are skipped.
///
/// The engine's way, for one row: [`kernel::picks`] then
/// [`top_contributions_picked`].
#[cfg(test)]
pub(crate) fn top_contributions(
    isa: Isa,
    (w, d, m): (&[f64], &[f64], &[f64]),
    max: usize,
    out: &mut Vec<(usize, f64)>,
) {
    let mut picks = Vec::new();
    kernel::picks(isa, std::iter::once(w), d, m, max, &mut picks);
    top_contributions_picked(isa, picks[0], (w, d, m), max, out);
}

/// `top_contributions` finished as `pick` says: `pick` comes from
/// [`kernel::picks`] with this row, `d`, `m` and `max`.
pub(crate) fn top_contributions_picked(
    isa: Isa,
    pick: kernel::Pick,
    (w, d, m): (&[f64], &[f64], &[f64]),
    max: usize,
    out: &mut Vec<(usize, f64)>,
) {
    /// Kept in a stack array up to this many (the default is 3).
    const SMALL: usize = 8;
    out.clear();
    if max <= SMALL {
        let mut top = [(0usize, 0.0f64); SMALL];
        let len = kernel::select_picked(isa, pick, w, d, m, &mut top[..max]);
        out.extend_from_slice(&top[..len]);
    } else {
        out.resize(max, (0, 0.0));
        let len = kernel::select_picked(isa, pick, w, d, m, out);
        out.truncate(len);
    }
}

/// "Suggested mainly because of your A, your B and your C." built from the
/// positive contributions, or [`GENERIC_REASON`] when there are none. The
/// definition; the engine writes the same text from [`Phrases`].
pub(crate) fn sentence(contributions: &Contributions) -> String {
    let positive = || contributions.descriptions().filter(|c| c.1 > 0.0).map(|c| c.0);
    let n = positive().count();
    if n == 0 {
        return GENERIC_REASON.to_owned();
    }
    let mut out = String::from(LEAD);
    for (i, d) in positive().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == n { LAST } else { MIDDLE });
        }
        out.push_str(d);
    }
    out.push('.');
    out
}

/// Each feature's pieces of [`sentence`], made once per engine: with them
/// a sentence is one copy per feature cited, not two (separator and
/// description) plus the opening words. The copies were most of what a
/// sentence cost: about 26 ns of a recommendation's 90 at 100 offers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Phrases {
    /// Per feature: "Suggested mainly because of your {description}",
    /// ", your {description}" and " and your {description}".
    first: Vec<Box<str>>,
    middle: Vec<Box<str>>,
    last: Vec<Box<str>>,
}

impl Phrases {
    /// The phrases of each of `descriptions`, in feature order.
    pub(crate) fn new<'a>(descriptions: impl Iterator<Item = &'a str>) -> Phrases {
        let mut p = Phrases::default();
        for d in descriptions {
            p.first.push(format!("{LEAD}{d}").into());
            p.middle.push(format!("{MIDDLE}{d}").into());
            p.last.push(format!("{LAST}{d}").into());
        }
        p
    }

    /// [`sentence`] for contributions given as `(feature, contribution)`
    /// pairs (features in range of [`Phrases::new`]'s), into `out` (cleared
    /// first), reusing its allocation.
    pub(crate) fn write(&self, contributions: &[(usize, f64)], out: &mut String) {
        out.clear();
        let mut positive = contributions.iter().filter(|c| c.1 > 0.0).map(|c| c.0);
        let Some(first) = positive.next() else {
            out.push_str(GENERIC_REASON);
            return;
        };
        // Room for a typical sentence at once: one allocation for a new
        // decision instead of a few (a reused one has the room already).
        out.reserve(192);
        out.push_str(&self.first[first]);
        let mut next = positive.next();
        while let Some(f) = next {
            next = positive.next();
            out.push_str(if next.is_some() { &self.middle[f] } else { &self.last[f] });
        }
        out.push('.');
    }
}

/// The opening words of a sentence citing features, and the separators
/// before a middle and the last one.
const LEAD: &str = "Suggested mainly because of your ";
const MIDDLE: &str = ", your ";
const LAST: &str = " and your ";

impl Explanation {
    /// A multi-line, human-readable rendering (for logs and examples).
    pub fn to_text(&self) -> String {
        let c = &self.components;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "priority {:.4} = propensity {:.3} (logit {:+.3}) x value {:.2} x weight {:.2}",
            self.priority, c.propensity, c.logit, c.value, c.weight
        );
        for k in &self.contributions {
            let _ = writeln!(
                s,
                "  {:+.3} log-odds  {} ({} = {} x weight {:+.3})",
                k.contribution, k.description, k.feature, k.value, k.weight
            );
        }
        let rules: Vec<String> = self
            .rules_passed
            .iter()
            .map(|r| {
                serde_json::to_value(r).map_or_else(|_| format!("{r:?}"), |v| v.as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let _ = writeln!(s, "  passed: {}", rules.join(", "));
        let _ = write!(s, "  \"{}\"", self.reason);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Against the naive oracle: every contribution, a stable sort by
        /// absolute size, the first `max` nonzero ones.
        #[test]
        fn top_contributions_equal_a_full_sort(
            features in proptest::collection::vec((-3i8..4, -2i8..3, proptest::bool::weighted(0.8)), 0..150),
            max in 0usize..12,
        ) {
            // Few distinct values, so that ties are common.
            let w: Vec<f64> = features.iter().map(|f| f64::from(f.0) * 0.5).collect();
            let d: Vec<f64> = features.iter().map(|f| f64::from(f.1)).collect();
            let m: Vec<f64> = features.iter().map(|f| if f.2 { 1.0 } else { 0.0 }).collect();
            let mut expected: Vec<(usize, f64)> = (0..w.len()).map(|i| (i, w[i] * d[i] * m[i])).filter(|c| c.1 != 0.0).collect();
            expected.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            expected.truncate(max);
            for isa in Isa::available() {
                let mut out = vec![(99, 1.0)];
                top_contributions(isa, (&w, &d, &m), max, &mut out);
                proptest::prop_assert_eq!(&out, &expected, "{:?}", isa);
            }
        }
    }

    fn contribution(description: &str, contribution: f64) -> Contribution {
        Contribution {
            feature: Arc::from("f"),
            description: Arc::from(description),
            value: 1.0,
            weight: contribution,
            contribution,
        }
    }

    /// Many features: the largest may come last or first.
    #[test]
    fn top_contributions_of_many_features() {
        let n = 201;
        let w: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let d: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut m = vec![1.0; n];
        for isa in Isa::available() {
            let mut out = Vec::new();
            top_contributions(isa, (&w, &d, &m), 3, &mut out);
            assert_eq!(out, vec![(200, 200.0), (199, -199.0), (198, 198.0)], "{isa:?}");
            m[200] = 0.0;
            top_contributions(isa, (&w, &d, &m), 9, &mut out);
            assert_eq!(out.iter().map(|c| c.0).collect::<Vec<_>>(), (191..200).rev().collect::<Vec<_>>(), "{isa:?}");
            m[200] = 1.0;
            let d: Vec<f64> = (0..n).map(|i| if i == 5 { 1e3 } else { (i % 64) as f64 }).collect();
            top_contributions(isa, (&w, &d, &m), 3, &mut out);
            assert_eq!(out, vec![(5, -1e3), (63, -63.0), (127, -63.0)], "{isa:?}");
        }
    }

    /// Infinite and NaN products (never expected: weights and values are
    /// finite, but their product may overflow) are handled alike on every
    /// path, in every position of a block of four and in the tail.
    #[test]
    fn top_contributions_agree_across_paths_on_non_finite_products() {
        for at in 0..15 {
            for big_first in [false, true] {
                // With `big_first`, the list is full before the odd values
                // come, so they arrive in blocks where nothing else is kept.
                let mut d: Vec<f64> = (0..15).map(|i| f64::from(i) - 4.0).collect();
                if big_first {
                    d[..4].copy_from_slice(&[1e6; 4]);
                }
                let (w, mut m) = (vec![0.5; 15], vec![1.0; 15]);
                let inf = if at % 2 == 0 { f64::INFINITY } else { f64::MAX };
                d[at] = inf; // ∞, or a product that overflows to ∞
                m[(at + 5) % 15] = 0.0;
                d[(at + 5) % 15] = f64::INFINITY; // ∞ · 0 = NaN
                let runs: Vec<Vec<(usize, u64)>> = Isa::available()
                    .into_iter()
                    .map(|isa| {
                        let mut out = Vec::new();
                        top_contributions(isa, (&w, &d, &m), 4, &mut out);
                        out.iter().map(|&(i, c)| (i, c.to_bits())).collect()
                    })
                    .collect();
                assert!(runs.windows(2).all(|p| p[0] == p[1]), "at {at}, big first {big_first}: {runs:?}");
                assert_eq!(runs[0].len(), 4);
            }
        }
    }

    #[test]
    fn sentence_lists_positive_contributions() {
        let sentence = |cs: &[Contribution]| sentence(&cs.to_vec().into());
        let cs = [contribution("car policy", 0.5), contribution("age", -0.2), contribution("savings", 0.1)];
        assert_eq!(sentence(&cs), "Suggested mainly because of your car policy and your savings.");
        assert_eq!(sentence(&cs[..1]), "Suggested mainly because of your car policy.");
        let three = [contribution("a", 1.0), contribution("b", 1.0), contribution("c", 1.0)];
        assert_eq!(sentence(&three), "Suggested mainly because of your a, your b and your c.");
    }

    /// The engine's phrases give the sentence of the same contributions.
    #[test]
    fn phrases_write_the_sentence() {
        let describe = ["car policy", "age", "savings", "a"];
        let phrases = Phrases::new(describe.into_iter());
        let cases: [&[(usize, f64)]; 6] = [
            &[],
            &[(1, -0.2)],
            &[(0, 0.5)],
            &[(0, 0.5), (1, -0.2), (2, 0.1)],
            &[(3, 1.0), (2, 1.0), (0, 1.0)],
            &[(1, -3.0), (3, 2.0), (0, -1.0), (2, 0.5), (1, 0.25)],
        ];
        let mut out = String::from("stale");
        for pairs in cases {
            let cs: Vec<Contribution> = pairs.iter().map(|&(f, c)| contribution(describe[f], c)).collect();
            phrases.write(pairs, &mut out);
            assert_eq!(out, sentence(&cs.into()), "{pairs:?}");
        }
        phrases.write(&[(3, 1.0), (2, 1.0), (0, 1.0)], &mut out);
        assert_eq!(out, "Suggested mainly because of your a, your savings and your car policy.");
    }

    #[test]
    fn sentence_without_positive_contribution_is_generic() {
        assert_eq!(sentence(&vec![contribution("age", -0.2)].into()), GENERIC_REASON);
        assert_eq!(sentence(&Contributions::default()), GENERIC_REASON);
    }
}
