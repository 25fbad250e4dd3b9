//! The reusable [`Workspace`] of [`Engine::recommend_into`], and the
//! helpers that rewrite a [`Decision`] in place so that, once warmed up, a
//! decision costs no heap allocation.
//!
//! [`Engine::recommend_into`]: crate::Engine::recommend_into

use std::sync::Arc;

use chrono::DateTime;

use crate::arbitration::Candidate;
use crate::catalog::{Channel, CustomerId, OfferId, ProductId};
use crate::compiled::{Bitset, Plan};
use crate::decision::{Decision, DecisionStatus, Funnel};
use crate::model::ModelMatrix;
use crate::schema::FeatureSpec;

/// Scratch memory for [`Engine::recommend_into`](crate::Engine::recommend_into).
///
/// Create one per thread (it is `Send`, not shared) and pass it to every
/// call: its buffers grow to the engine's size on the first calls and are
/// reused afterwards, so a warmed-up call allocates nothing.
///
/// The decisions it writes point to the workspace's own copies of the
/// engine's names (offer ids, products, features), made on first use, so
/// that threads ranking at the same time never update the same reference
/// counts. A workspace may be used with several engines, but it keeps the
/// names of the last one only: alternating engines copies them again each
/// time, so keep one workspace per engine on hot paths.
///
/// ```
/// # use tactful::{Catalog, Customer, Decision, Engine, Request, Workspace};
/// # let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json"))?;
/// # let engine = Engine::new(catalog)?;
/// # let customer: Customer = serde_json::from_str(r#"{"id": "C-1", "age": 41, "features": [6, 12, 1.8, 1, 1, 0.6, 3, 2, 1],
/// #     "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#)?;
/// # let request: Request = serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#)?;
/// let mut workspace = Workspace::new();
/// let mut decision = Decision::default();
/// engine.recommend_into(&customer, &request, &mut workspace, &mut decision)?;
/// assert_eq!(decision, engine.recommend(&customer, &request)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Workspace {
    /// The customer's value figures, when given.
    pub(crate) value: Option<crate::value::ValueSummary>,
    /// Product families with recent dismissals: (family, dismissals).
    pub(crate) dismissed_families: Vec<(u32, i32)>,
    /// The contact windows of the last request time.
    pub(crate) windows: Option<crate::contact::Windows>,
    /// Whether offers' multipliers differ from the catalog's
    /// `value × weight` for this request.
    pub(crate) custom_stakes: bool,
    /// Per offer, `ln(stake × weight × family factor)` when `custom_stakes`.
    pub(crate) log_stake: Vec<f32>,
    /// Feature values in schema order.
    pub(crate) x: Vec<f64>,
    /// Centred, masked values: `xᵢ − baselineᵢ`, 0 when masked.
    pub(crate) d: Vec<f64>,
    /// Features counting as proxies for this customer.
    pub(crate) is_proxy: Vec<bool>,
    /// `d` in f32, padded for the kernels.
    pub(crate) d32: Vec<f32>,
    /// `d` as pairs of 16-bit integers, for the integer kernel.
    pub(crate) dq: Vec<u32>,
    /// `|dᵢ|·(qᵢ − θ)` in f32, padded: `qᵢ` is 1 for the features counting
    /// as proxies, `θ` the proxy-share threshold.
    pub(crate) signed32: Vec<f32>,
    /// Per contact-history entry, the offer's position.
    pub(crate) contact_offers: Vec<usize>,
    /// Catalog products held.
    pub(crate) held: Bitset,
    /// Offers passing every rule before scoring, as bits (from `codes`).
    pub(crate) reach: Vec<u64>,
    /// Offers whose base product is not held.
    pub(crate) missing_base: Bitset,
    /// Per offer, the first rule it failed before scoring.
    pub(crate) codes: Vec<crate::compiled::Code>,
    /// Offers whose reasons, if withheld, need the customer: contacted,
    /// or failing a target or suitability rule. A bit set, so that the
    /// audit reads them in offer order without sorting.
    pub(crate) detailed: crate::compiled::Bitset,
    /// Offers reaching scoring, in offer order: for exact scoring, and for
    /// the f32 rows of fast scoring (the plain ones, when not grouped).
    pub(crate) rows: Vec<u32>,
    /// With the value cut's reference (`abs_rows`) scored first, the plain
    /// offers to score after it, as bits.
    pub(crate) plain: Vec<u64>,
    /// With the value cut, the offers reaching scoring that may need the
    /// proxy share, scored first as the cut's reference, and their
    /// `[logit, Σ|wᵢ|·signed32ᵢ]` scores.
    pub(crate) abs_rows: Vec<u32>,
    pub(crate) abs_scores: Vec<[f32; 2]>,
    /// The value cut's inputs: per proxy-share offer, its score plus
    /// `ln(value × weight)`; the few with the largest, as offers; and the
    /// offers that may reach its threshold, as bits.
    pub(crate) cut_keys: Vec<f32>,
    pub(crate) cut_offers: Vec<u32>,
    pub(crate) reaching: Vec<u64>,
    /// Per offer, the f32 partial logit (−∞ when not scored), and coarse
    /// bounds on the log-priority (NaN when not ranked by them).
    pub(crate) dense: Vec<f32>,
    pub(crate) lo: Vec<f32>,
    pub(crate) hi: Vec<f32>,
    /// Offers that the coarse bounds keep (before them, those whose proxy
    /// share is decided in f64), and their fine bounds.
    pub(crate) near: Vec<u32>,
    /// The value cut's offers found proxy-driven from their f32 signed
    /// sums.
    pub(crate) driven: Vec<u32>,
    pub(crate) fine_lo: Vec<f32>,
    pub(crate) fine_hi: Vec<f32>,
    /// Candidates scored exactly whatever their bounds, and their exact
    /// logits.
    pub(crate) always: Vec<u32>,
    pub(crate) exact: Vec<f64>,
    /// Scored offers outside the bounds' validity (ranked exactly).
    pub(crate) unbounded: Vec<u32>,
    pub(crate) scratch: Vec<f32>,
    /// Candidates rescored exactly in f64, and those of them found
    /// proxy-driven.
    pub(crate) shortlist: Vec<Candidate>,
    pub(crate) excluded: Vec<Candidate>,
    /// `(feature, contribution)` pairs for explanations and proxy lists.
    pub(crate) pairs: Vec<(usize, f64)>,
    /// How each recommendation's top contributions are selected
    /// (`kernel::picks`).
    pub(crate) picks: Vec<crate::kernel::Pick>,
    /// Copies of the last engine's names, which decisions point to.
    pub(crate) names: Arc<Names>,
}

/// Copies of an engine's names (offer ids, products, features), which
/// the decisions a workspace writes point to. Cloning and dropping an `Arc`
/// updates its reference count; with the engine's own strings, threads
/// ranking at the same time would all write to the same counters and the
/// cache lines would bounce between cores. Copies per workspace (a batch
/// keeps one workspace per thread) keep those updates on the thread's own
/// cache lines. The engine's models and rules, which the audit reads but
/// never clones per decision, are shared.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// The engine these are copies of ([`Engine`](crate::Engine)'s `uid`;
    /// 0 for none).
    pub(crate) engine: u64,
    pub(crate) offers: Vec<OfferNames>,
    pub(crate) features: Vec<FeatureSpec>,
    /// The engine's models, from which the audit works out proxy-driven
    /// reasons when read (shared: it is read, never reference-counted per
    /// decision).
    pub(crate) models: Option<Arc<ModelMatrix>>,
    /// The engine's compiled rules, from which the audit works out
    /// eligibility reasons when read.
    pub(crate) plan: Option<Arc<Plan>>,
}

/// The names one offer's decisions may cite.
#[derive(Debug)]
pub(crate) struct OfferNames {
    pub(crate) id: OfferId,
    pub(crate) product: ProductId,
    pub(crate) base_product: Option<ProductId>,
    pub(crate) requires: Vec<ProductId>,
    pub(crate) excludes: Vec<ProductId>,
}

fn copy(s: &Arc<str>) -> Arc<str> {
    Arc::from(&**s)
}

impl Names {
    /// Makes `names` copies of the names of engine `engine` (unless they
    /// are already).
    pub(crate) fn ensure(
        names: &mut Arc<Names>,
        engine: u64,
        offers: &[crate::catalog::Offer],
        features: &[FeatureSpec],
        (models, plan): (&Arc<ModelMatrix>, &Arc<Plan>),
    ) {
        if names.engine != engine {
            *names = Arc::new(Names::copy(engine, offers, features, (models, plan)));
        }
    }

    fn copy(
        engine: u64,
        offers: &[crate::catalog::Offer],
        features: &[FeatureSpec],
        (models, plan): (&Arc<ModelMatrix>, &Arc<Plan>),
    ) -> Names {
        let product = |p: &ProductId| ProductId(copy(&p.0));
        let offers = offers
            .iter()
            .map(|o| OfferNames {
                id: OfferId(copy(&o.id.0)),
                product: product(&o.product),
                base_product: o.eligibility.base_product.as_ref().map(product),
                requires: o.eligibility.requires.iter().map(product).collect(),
                excludes: o.eligibility.excludes.iter().map(product).collect(),
            })
            .collect();
        let features = features
            .iter()
            .map(|f| FeatureSpec { name: copy(&f.name), description: copy(&f.description), ..f.clone() })
            .collect();
        Names { engine, offers, features, models: Some(Arc::clone(models)), plan: Some(Arc::clone(plan)) }
    }
}

impl Workspace {
    /// An empty workspace; it grows on first use.
    pub fn new() -> Workspace {
        Workspace::default()
    }
}

impl Default for Decision {
    /// An empty decision, to be filled by
    /// [`Engine::recommend_into`](crate::Engine::recommend_into).
    fn default() -> Decision {
        Decision {
            customer: CustomerId::from(""),
            now: DateTime::UNIX_EPOCH,
            channel: Channel::Email,
            requested_k: 0,
            effective_k: 0,
            status: DecisionStatus::Ranked,
            recommendations: Vec::new(),
            withheld: crate::audit::WithheldList::default(),
            masked_features: Vec::new(),
            funnel: Funnel::default(),
            customer_value: None,
        }
    }
}

/// Sets `slot` to `value` unless it already points at the same string
/// (which saves two atomic reference-count updates).
pub(crate) fn set_arc(slot: &mut Arc<str>, value: &Arc<str>) {
    if !Arc::ptr_eq(slot, value) {
        *slot = value.clone();
    }
}

/// Overwrites `list` with `items`, reusing its entries and allocation.
pub(crate) fn set_names<'a>(list: &mut Vec<Arc<str>>, items: impl Iterator<Item = &'a Arc<str>>) {
    let mut n = 0;
    for item in items {
        match list.get_mut(n) {
            Some(slot) => set_arc(slot, item),
            None => list.push(item.clone()),
        }
        n += 1;
    }
    list.truncate(n);
}
