//! The engine: a validated catalog and parameters, and `recommend`, which
//! runs the pipeline stages in order.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::arbitration::{self, Candidate};
use crate::audit::{Compact, Context, Why};
use crate::catalog::{Catalog, Offer};
use crate::compiled::{Code, Plan};
use crate::config::{EngineParams, ValidEngineParams};
use crate::contact;
use crate::customer::{Customer, FeatureValues, Provenance, Request};
use crate::decision::{Decision, DecisionStatus, Funnel, Reason, Recommendation, Stage};
use crate::eligibility;
use crate::error::{ConfigError, RequestError};
use crate::explain::contributions::Cited;
use crate::explain::{self, Components, Contributions, Explanation, Rule};
use crate::guard::{self, SignalState};
use crate::kernel::{self, Isa};
use crate::model::{ln_sum, log_f32, sigmoid, ModelMatrix};
use crate::schema::{FeatureSchema, Sensitivity};
use crate::workspace::{set_arc, set_names, Names, Workspace};

/// Builds an [`Engine`] from a catalog and optional parameters.
///
/// ```
/// # use tactful::{Engine, EngineParams, Catalog};
/// # fn catalog() -> Catalog { serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap() }
/// let mut params = EngineParams::default();
/// params.contact.dismissal_cooldown_days = 60;
/// let engine = Engine::builder().catalog(catalog()).params(params).build()?;
/// assert_eq!(engine.params().contact().dismissal_cooldown_days, 60);
/// # Ok::<(), tactful::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EngineBuilder {
    catalog: Option<Catalog>,
    params: EngineParams,
}

impl EngineBuilder {
    /// The catalog to rank (required).
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// All parameters at once (default: [`EngineParams::default`]).
    pub fn params(mut self, params: EngineParams) -> Self {
        self.params = params;
        self
    }

    /// Contact-policy parameters.
    pub fn contact_policy(mut self, policy: crate::config::ContactPolicy) -> Self {
        self.params.contact = policy;
        self
    }

    /// Guard parameters.
    pub fn guard(mut self, guard: crate::config::GuardParams) -> Self {
        self.params.guard = guard;
        self
    }

    /// Explanation parameters.
    pub fn explain(mut self, explain: crate::config::ExplainParams) -> Self {
        self.params.explain = explain;
        self
    }

    /// Validates the catalog and parameters and compiles the models.
    pub fn build(self) -> Result<Engine, ConfigError> {
        let catalog = self.catalog.ok_or(ConfigError::MissingCatalog)?;
        Engine::compile(catalog, self.params.check()?)
    }
}

/// Ranks a catalog's offers for one customer at a time. `Send + Sync`:
/// share one engine across threads.
#[derive(Debug, Clone)]
pub struct Engine {
    schema: FeatureSchema,
    /// Sorted by offer id, so positions follow the tie-break order.
    offers: Vec<Offer>,
    offer_index: HashMap<Arc<str>, usize, FxBuildHasher>,
    /// Unique per compiled engine (clones share it): tells a workspace
    /// whose names it holds copies of.
    uid: u64,
    /// Feature names in name order, with their positions.
    sorted_features: Vec<(Arc<str>, usize)>,
    /// Shared with the workspaces' names, for the audit's proxy reasons.
    models: Arc<ModelMatrix>,
    /// Per offer: the rules it must pass, cited when it is recommended.
    rules: Vec<Vec<Rule>>,
    /// The rules compiled to indices and bit sets.
    /// Shared with the workspaces' names, for the audit's eligibility reasons.
    plan: Arc<Plan>,
    /// Per feature, 1 for the ordinary ones (the only ones cited), else 0.
    ordinary: Vec<f64>,
    /// The pieces of the explanations' sentences.
    phrases: explain::Phrases,
    /// Per feature: its baseline, and [`SignalState::bits`] of its class
    /// (the signals that mask it, those that make it count as a proxy).
    baselines: Vec<f64>,
    mask_bits: Vec<u32>,
    proxy_signal_bits: Vec<u32>,
    /// The features that may be masked (special, life event), in schema
    /// order, with their masking bits.
    maskable: Vec<(u32, u32)>,
    /// Per offer: its product family, numbered.
    family_of: Vec<u32>,
    /// Per family: its offers.
    family_members: Vec<Vec<u32>>,
    isa: Isa,
    /// Bytes of plain rows from which the value cut is tried (see
    /// [`VALUE_CUT_BYTES`]).
    value_cut_bytes: usize,
    /// Bytes of f32 weights from which the plain offers are scored from the
    /// grouped 16-bit weights, when set; else [`grouped_from`] for the
    /// kernels in use.
    grouped_bytes: Option<usize>,
    /// Whether grouped scoring uses the 16-bit integer weights, when set;
    /// else [`kernel::integer::available`] for the kernels in use.
    integer: Option<bool>,
    params: ValidEngineParams,
}

fn check_offer_fields(offer: &Offer) -> Result<(), ConfigError> {
    let field = |field, value: f64, ok: bool, expected| {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::InvalidOfferField { offer: offer.id.clone(), field, value, expected })
        }
    };
    field("value", offer.value, offer.value.is_finite() && offer.value >= 0.0, "a finite number >= 0")?;
    field("weight", offer.weight, offer.weight.is_finite() && offer.weight >= 0.0, "a finite number >= 0")?;
    let product = offer.value * offer.weight;
    field("value x weight", product, product.is_finite(), "a finite product")?;
    if offer.channels.is_empty() {
        return Err(ConfigError::NoChannel(offer.id.clone()));
    }
    if let (Some(min), Some(max)) = (offer.eligibility.min_age, offer.eligibility.max_age) {
        if min > max {
            return Err(ConfigError::InvertedAgeBounds { offer: offer.id.clone(), min, max });
        }
    }
    Ok(())
}

fn offer_rules(offer: &Offer) -> Vec<Rule> {
    let mut rules = Vec::new();
    eligibility::rules(offer, &mut rules);
    rules.extend([Rule::ChannelConsent, Rule::FrequencyCap, Rule::Cooldown, Rule::Rest]);
    if !offer.targets.is_empty() {
        rules.push(Rule::LifeEventConsent);
    }
    rules.extend([Rule::SensitiveDataMasked, Rule::ProxyShare]);
    if !offer.unsuitable_for.is_empty() {
        rules.push(Rule::Suitability);
    }
    rules
}

/// How a request's scores are computed.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// f32 kernels, with `|logit error| ≤ scale · ‖w‖₂ + floor`, and the
    /// signed proxy sum's error (see [`kernel::dots_signed`]) within
    /// `proxy.0 · ‖w‖₂ + proxy.1`; `d_norm` is `‖d‖₂` (rounded up).
    Fast { scale: f64, floor: f64, proxy: (f64, f64), d_norm: f64 },
    /// Values or weights too large for f32: every score in f64.
    Exact,
}

/// What `prepare` learnt about a request.
struct Prepared {
    budget: Result<u32, (DecisionStatus, Reason)>,
    status: DecisionStatus,
    effective_k: usize,
    signals: SignalState,
    mode: Mode,
    /// Some proxy feature is off its baseline: the offers weighing one need
    /// the proxy share.
    active_proxy: bool,
    /// The catalog is large enough for the value cut: the plain offers are
    /// scored in `finish`, after the reference ones (`ws.abs_rows`).
    defer_plain: bool,
    /// The contact windows at the request time.
    windows: contact::Windows,
}

/// The top-k of `shortlist` (every candidate that passes guard rule 3
/// and may be in it), best first; and guard rule 3's audit: a
/// proxy-driven offer is withheld when the ranking reaches it, that is
/// when it ranks ahead of the k-th recommendation or there are fewer
/// than `k`. The others rank after the top-k and are left unranked.
fn settle(k: usize, shortlist: &mut Vec<Candidate>, driven: &[Candidate], codes: &mut [Code]) {
    arbitration::top_k(shortlist, k);
    let last = shortlist.get(k.wrapping_sub(1));
    for c in driven {
        if k > 0 && last.is_none_or(|last| arbitration::ranks_ahead(c, last)) {
            codes[c.offer] = Code::Driven;
        }
    }
}

/// Above this, f32 scores are not trusted (f32 overflows at 3.4e38).
const F32_SAFE: f64 = 1e30;

/// Customers per task of [`Engine::recommend_batch`]: the unit of work
/// rayon spreads over the cores.
pub const BATCH_BLOCK: usize = 32;

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine with default parameters.
    pub fn new(catalog: Catalog) -> Result<Engine, ConfigError> {
        Engine::builder().catalog(catalog).build()
    }

    fn compile(catalog: Catalog, params: ValidEngineParams) -> Result<Engine, ConfigError> {
        let Catalog { schema, mut offers } = catalog;
        if schema.is_empty() {
            return Err(ConfigError::EmptySchema);
        }
        if offers.is_empty() {
            return Err(ConfigError::EmptyCatalog);
        }
        let mut feature_index = HashMap::with_capacity(schema.len());
        for (i, f) in schema.features.iter().enumerate() {
            if let Some(first) = feature_index.insert(f.name.clone(), i) {
                return Err(ConfigError::DuplicateFeature { name: f.name.to_string(), first, second: i });
            }
            if !f.baseline.is_finite() {
                return Err(ConfigError::NonFiniteBaseline { name: f.name.to_string(), value: f.baseline });
            }
        }
        let mut sorted_features: Vec<(Arc<str>, usize)> = feature_index.into_iter().collect();
        sorted_features.sort_unstable();
        offers.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = offers.windows(2).find(|p| p[0].id == p[1].id) {
            return Err(ConfigError::DuplicateOffer(pair[0].id.clone()));
        }
        offers.iter().try_for_each(check_offer_fields)?;
        let models = ModelMatrix::compile(&schema, &offers)?;
        let offer_index = offers.iter().enumerate().map(|(i, o)| (o.id.0.clone(), i)).collect();
        let rules = offers.iter().map(offer_rules).collect();
        let plan = Plan::compile(&offers);
        let ordinary =
            schema.features.iter().map(|f| f64::from(u8::from(f.sensitivity == Sensitivity::Ordinary))).collect();
        let phrases = explain::Phrases::new(schema.features.iter().map(|f| &*f.description));
        let baselines = schema.features.iter().map(|f| f.baseline).collect();
        let (mask_bits, proxy_signal_bits): (Vec<u32>, Vec<u32>) =
            schema.features.iter().map(|f| SignalState::bits(f.sensitivity)).unzip();
        let maskable = mask_bits.iter().enumerate().filter(|(_, &b)| b != 0).map(|(i, &b)| (i as u32, b)).collect();
        let mut families: HashMap<&str, u32> = HashMap::new();
        let family_of: Vec<u32> = offers
            .iter()
            .map(|o| {
                let next = families.len() as u32;
                *families.entry(o.family.as_deref().unwrap_or(o.product.as_str())).or_insert(next)
            })
            .collect();
        let mut family_members = vec![Vec::new(); families.len()];
        for (o, &f) in family_of.iter().enumerate() {
            family_members[f as usize].push(o as u32);
        }
        Ok(Engine {
            schema,
            offers,
            offer_index,
            uid: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            sorted_features,
            models: Arc::new(models),
            rules,
            plan: Arc::new(plan),
            ordinary,
            phrases,
            baselines,
            mask_bits,
            proxy_signal_bits,
            maskable,
            family_of,
            family_members,
            isa: Isa::detect(),
            value_cut_bytes: VALUE_CUT_BYTES,
            grouped_bytes: None,
            integer: None,
            params,
        })
    }

    /// The feature schema.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The offers, in offer-id order.
    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }

    /// The validated parameters.
    pub fn params(&self) -> &ValidEngineParams {
        &self.params
    }

    /// Uses the portable kernels even where AVX2 and FMA are available
    /// (for tests and comparisons; results are identical either way).
    #[doc(hidden)]
    pub fn with_portable_kernels(mut self) -> Engine {
        self.isa = Isa::Portable;
        self
    }

    /// Tries the value cut from `bytes` of plain rows instead of
    /// [`VALUE_CUT_BYTES`] (0: always; for tests, which rank small
    /// catalogs; results are identical either way).
    #[doc(hidden)]
    pub fn with_value_cut_from(mut self, bytes: usize) -> Engine {
        self.value_cut_bytes = bytes;
        self
    }

    /// Scores the plain offers from the grouped 16-bit weights from `bytes`
    /// of f32 weights instead of [`grouped_from`]'s default for the kernels
    /// in use (0: always, `usize::MAX`: never; for tests and comparisons;
    /// results are identical either way).
    #[doc(hidden)]
    pub fn with_grouped_from(mut self, bytes: usize) -> Engine {
        self.grouped_bytes = Some(bytes);
        self
    }

    /// Grouped scoring from the 16-bit integer weights (`true`) or from the
    /// bf16 ones (`false`), instead of the default (integers with AVX2, and
    /// with AVX-512 where the CPU has VNNI; the portable kernels have an
    /// integer version too). For tests and comparisons; results are
    /// identical either way.
    #[doc(hidden)]
    pub fn with_integer_scoring(mut self, integer: bool) -> Engine {
        self.integer = Some(integer);
        self
    }

    /// `true` when SIMD kernels (AVX2+FMA, or AVX-512) are in use.
    #[doc(hidden)]
    pub fn uses_avx2(&self) -> bool {
        self.isa != Isa::Portable
    }

    /// The kernels in use: `"avx512"`, `"avx2"` or `"portable"`.
    #[doc(hidden)]
    pub fn kernels(&self) -> &'static str {
        self.isa.name()
    }

    /// This engine with each instruction set this CPU runs, portable
    /// first (for tests and comparisons; results are identical on all).
    #[doc(hidden)]
    pub fn kernel_variants(&self) -> Vec<Engine> {
        Isa::available().into_iter().map(|isa| Engine { isa, ..self.clone() }).collect()
    }

    fn non_finite(&self, customer: &Customer, i: usize, value: f64) -> RequestError {
        RequestError::NonFiniteFeature {
            customer: customer.id.clone(),
            feature: self.schema.features[i].name.to_string(),
            value,
        }
    }

    /// Checks the customer's feature values and puts them in schema order.
    fn fill_features(&self, customer: &Customer, x: &mut Vec<f64>) -> Result<(), RequestError> {
        let n = self.schema.len();
        x.clear();
        match &customer.features {
            FeatureValues::Dense(v) if v.len() != n => {
                return Err(RequestError::FeatureCount { customer: customer.id.clone(), expected: n, found: v.len() })
            }
            FeatureValues::Dense(v) => x.extend_from_slice(v),
            FeatureValues::ByName(map) => {
                x.resize(n, f64::NAN);
                // Both sequences are in name order: merge them.
                let sorted = &self.sorted_features;
                let mut j = 0;
                for (name, &value) in map {
                    while j < sorted.len() && &*sorted[j].0 < name.as_str() {
                        j += 1;
                    }
                    if j == sorted.len() || &*sorted[j].0 != name.as_str() {
                        return Err(RequestError::UnknownFeature {
                            customer: customer.id.clone(),
                            feature: name.clone(),
                        });
                    }
                    let i = sorted[j].1;
                    if !value.is_finite() {
                        return Err(self.non_finite(customer, i, value));
                    }
                    x[i] = value;
                    j += 1;
                }
                if map.len() != n {
                    let missing = x.iter().position(|v| v.is_nan()).unwrap_or(0);
                    return Err(RequestError::MissingFeature {
                        customer: customer.id.clone(),
                        feature: self.schema.features[missing].name.to_string(),
                    });
                }
            }
        }
        // A pass without an early exit, which vectorises; the position is
        // looked for only when there is one.
        if x.iter().fold(false, |bad, v| bad | !v.is_finite()) {
            let i = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(self.non_finite(customer, i, x[i]));
        }
        Ok(())
    }

    /// Checks signals and history; puts, per contact, its offer position.
    fn fill_contacts(&self, customer: &Customer, contact_offers: &mut Vec<usize>) -> Result<(), RequestError> {
        let life = customer.life_events.iter().map(|s| ("life_events", s.provenance));
        let vuln = customer.vulnerabilities.iter().map(|m| ("vulnerabilities", m.provenance));
        let mut counts = [0usize; 2];
        for (field, provenance) in life.chain(vuln) {
            let slot = usize::from(field == "vulnerabilities");
            let index = counts[slot];
            counts[slot] += 1;
            if let Provenance::Inferred { confidence } = provenance {
                if !(0.0..=1.0).contains(&confidence) {
                    return Err(RequestError::InvalidConfidence {
                        customer: customer.id.clone(),
                        field: format!("{field}[{index}]"),
                        value: confidence,
                    });
                }
            }
        }
        contact_offers.clear();
        for (index, c) in customer.contact_history.iter().enumerate() {
            let o = self.offer_index.get(c.offer.as_str()).copied().ok_or_else(|| RequestError::UnknownOffer {
                customer: customer.id.clone(),
                index,
                offer: c.offer.clone(),
            })?;
            contact_offers.push(o);
        }
        Ok(())
    }

    /// Ranks the catalog for `customer`: eligibility → contact policy →
    /// scoring → guard → arbitration → top-k → explanations.
    ///
    /// Returns a new [`Decision`] (and reuses a per-thread [`Workspace`]);
    /// services that rank often should keep a workspace and a decision and
    /// call [`Engine::recommend_into`], which then allocates nothing.
    pub fn recommend(&self, customer: &Customer, request: &Request) -> Result<Decision, RequestError> {
        thread_local! {
            /// Scratch memory reused by `recommend` calls on this thread.
            static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::new());
        }
        let mut decision = Decision::default();
        let cached = WORKSPACE.try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut workspace| self.recommend_into(customer, request, &mut workspace, &mut decision))
        });
        match cached {
            Ok(Some(result)) => result?,
            // Thread teardown or a re-entrant call: a workspace of its own.
            _ => self.recommend_into(customer, request, &mut Workspace::new(), &mut decision)?,
        }
        Ok(decision)
    }

    /// [`Engine::recommend`] into a caller-kept `decision`, with a reusable
    /// `workspace`: the same decision, but once the workspace and decision
    /// have grown to the catalog's size, no heap allocation at all.
    ///
    /// How it stays exact while fast: scores are computed in f32 by SIMD
    /// kernels, with proven error bounds; candidates whose priority bounds
    /// cannot reach the top-k are dropped, and the few that can are
    /// rescored in f64 exactly as [`Engine::recommend`] defines them. The
    /// proxy-share rule is decided in f64 for those candidates only (a
    /// shortlist is drawn again without the proxy-driven ones), as it is
    /// decided in rank order until the top-k is full. In large catalogs,
    /// offers whose value could not reach the top-k even with a certain
    /// purchase are not scored at all (the value cut); the offers weighing
    /// a proxy feature are scored first there, as its reference, with the
    /// sign of an f32 sum beside each score (`P − θ·T`) deciding their
    /// rule when clear of its error bound. Explanations are computed for
    /// the returned offers only. Rankings are therefore identical, bit for bit,
    /// to the plain f64 pipeline.
    ///
    /// On error, `decision` is left in an unspecified (but valid) state.
    pub fn recommend_into(
        &self,
        customer: &Customer,
        request: &Request,
        workspace: &mut Workspace,
        decision: &mut Decision,
    ) -> Result<(), RequestError> {
        let prepared = self.prepare(customer, request, workspace)?;
        if let (Mode::Fast { .. }, Ok(_)) = (prepared.mode, &prepared.budget) {
            let ws = &mut *workspace;
            // Every offer's f32 partial logit, −∞ for those not scored.
            ws.dense.clear();
            ws.dense.resize(self.offers.len(), f32::NEG_INFINITY);
            ws.abs_scores.resize(ws.abs_rows.len(), [0.0; 2]);
            kernel::dots_signed(self.isa, &self.models.w32, &ws.abs_rows, &ws.d32, &ws.signed32, &mut ws.abs_scores);
        }
        self.finish(customer, request, &prepared, workspace, decision)
    }

    /// [`Engine::recommend`] for many customers with the same request, in
    /// input order, using every core (rayon).
    ///
    /// Each thread runs [`Engine::recommend_into`] over blocks of
    /// [`BATCH_BLOCK`] customers with a workspace of its own, kept from one
    /// batch to the next; results are those of [`Engine::recommend`], bit
    /// for bit. (Scoring a block with one f32 matrix product, so that the
    /// weights are read once per block, was measured slower: 47k against
    /// 60k customers per second on one core at 1,000 offers. The product
    /// scores every offer, the block's workspaces crowd the weights out of
    /// L2, and the per-customer path skips offers that fail a rule. A
    /// kernel scoring four customers per load of a row, over the offers
    /// any of them reaches, was slower too: 9.7 against 7.2 µs for four
    /// customers' dot products at 1,000 offers with AVX-512, 8.9 against
    /// 7.4 with AVX2. The dot products are bound by the multiply-adds,
    /// which it does not save, not by the loads.)
    pub fn recommend_batch(&self, customers: &[Customer], request: &Request) -> Vec<Result<Decision, RequestError>> {
        let mut out = Vec::new();
        self.recommend_batch_into(customers, request, &mut out);
        out
    }

    /// [`Engine::recommend_batch`] into `out` (resized to `customers.len()`),
    /// reusing the decisions already there as buffers. Scratch memory is
    /// kept per thread from one batch to the next, so with a warmed-up
    /// `out` a batch needs little or no new memory.
    ///
    /// Keep `out` from one batch to the next where throughput matters: a
    /// new decision takes about 29 heap blocks (8.5 kB) with the bench's
    /// synthetic catalog of 1,000 offers and top-5, and
    /// [`Engine::recommend_batch`], which makes them anew each time, ran at
    /// about half the rate on two cores (`cargo bench --bench ranking`,
    /// group `batch`).
    pub fn recommend_batch_into(
        &self,
        customers: &[Customer],
        request: &Request,
        out: &mut Vec<Result<Decision, RequestError>>,
    ) {
        use rayon::prelude::*;
        out.truncate(customers.len());
        while out.len() < customers.len() {
            out.push(Ok(Decision::default()));
        }
        thread_local! {
            /// Per-thread workspace, kept warm from one batch to the next.
            static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::new());
        }
        out.par_chunks_mut(BATCH_BLOCK).zip(customers.par_chunks(BATCH_BLOCK)).for_each(|(out, customers)| {
            let done = WORKSPACE.try_with(|cell| {
                cell.try_borrow_mut().ok().map(|mut ws| self.decide_each(customers, request, &mut ws, out))
            });
            if !matches!(done, Ok(Some(()))) {
                // Thread teardown or a batch inside a batch: fresh memory.
                self.decide_each(customers, request, &mut Workspace::new(), out);
            }
        });
    }

    /// A batch's customers one after another, into `out`.
    fn decide_each(
        &self,
        customers: &[Customer],
        request: &Request,
        ws: &mut Workspace,
        out: &mut [Result<Decision, RequestError>],
    ) {
        for (customer, out) in customers.iter().zip(out) {
            if out.is_err() {
                *out = Ok(Decision::default());
            }
            if let Ok(decision) = out {
                if let Err(e) = self.recommend_into(customer, request, ws, decision) {
                    *out = Err(e);
                }
            }
        }
    }

    /// Validates the request and runs the rules that need no score:
    /// eligibility, contact policy, life-event targets and suitability. The
    /// offers that reach scoring are left in `ws.rows` and `ws.abs_rows`.
    fn prepare(&self, customer: &Customer, request: &Request, ws: &mut Workspace) -> Result<Prepared, RequestError> {
        if request.k == 0 {
            return Err(RequestError::ZeroK);
        }
        self.fill_features(customer, &mut ws.x)?;
        self.fill_contacts(customer, &mut ws.contact_offers)?;
        let signals = SignalState::new(customer);

        // Rule 2: masked features sit at their baseline, so contribute 0.
        // Classes as bit masks (see `SignalState::bits`): no branch per
        // feature.
        let stride = self.models.w32.stride();
        let n_features = ws.x.len();
        ws.d.clear();
        ws.d.resize(n_features, 0.0);
        ws.is_proxy.clear();
        ws.is_proxy.resize(n_features, false);
        ws.d32.clear();
        ws.d32.resize(stride, 0.0);
        ws.signed32.clear();
        ws.signed32.resize(stride, 0.0);
        let inputs = kernel::CentreInputs {
            x: &ws.x,
            baselines: &self.baselines,
            masks: &self.mask_bits,
            proxies: &self.proxy_signal_bits,
            not_usable: !signals.usable_mask(),
            theta: self.params.guard().proxy_share_threshold,
        };
        let out =
            kernel::CentreOutputs { d: &mut ws.d, is_proxy: &mut ws.is_proxy, d32: &mut ws.d32, c32: &mut ws.signed32 };
        let kernel::Centred { abs_sum, square_sum, c_abs_sum, c_square_sum, active_proxy } =
            kernel::centre(self.isa, &inputs, out);
        let max_w = self.models.max_abs_weight;
        let mode = if max_w < F32_SAFE && abs_sum < F32_SAFE && abs_sum * max_w + self.models.max_abs_base < F32_SAFE {
            let d_norm = square_sum.sqrt() * (1.0 + 1e-9);
            let c_norm = c_square_sum.sqrt() * (1.0 + 1e-9);
            // For the f32 and the 16-bit kernels (whose weights may be a
            // little larger).
            Mode::Fast {
                scale: kernel::logit_error(stride) * d_norm,
                floor: kernel::underflow_error(stride, self.models.max_abs_kernel_weight, abs_sum),
                // The kernel's error, plus `1e-9 · T` (`T ≤ ‖w‖₂‖d‖₂`): beyond
                // it, the f64 rule's own roundings cannot change the answer.
                proxy: (
                    kernel::logit_error(stride) * c_norm + 1e-9 * d_norm,
                    kernel::underflow_error(stride, max_w, c_abs_sum),
                ),
                d_norm,
            }
        } else {
            Mode::Exact
        };

        let windows = contact::Windows::at(request.now, &self.params, &mut ws.windows);
        self.prepare_stakes(customer, request, windows.family, ws)?;
        let budget = contact::customer_limits(customer, request, &self.params, &windows);
        let (status, effective_k) = match &budget {
            Ok(left) => (DecisionStatus::Ranked, request.k.min(*left as usize)),
            Err((status, _)) => (*status, 0),
        };
        self.plan.held(customer, &mut ws.held);
        ws.detailed.reset(self.offers.len());
        ws.rows.clear();
        ws.abs_rows.clear();
        let usable = signals.usable_mask();
        let marks = (&mut ws.codes, &mut ws.missing_base, &mut ws.detailed);
        self.plan.mark_failures(customer, request.channel, usable, &ws.held, budget.is_err(), self.isa, marks);
        let mut defer_plain = false;
        if budget.is_ok() {
            for h in 0..ws.contact_offers.len() {
                let o = ws.contact_offers[h];
                // Offers failing an earlier rule (or already found failing
                // here) need no check; one contacted twice may be checked twice.
                if ws.codes[o] <= Code::History {
                    continue;
                }
                if self.contact_rule(o, customer, request, &windows, &ws.contact_offers).is_err() {
                    ws.codes[o] = Code::History;
                    ws.detailed.set(o);
                }
            }
            // Offers reaching scoring (word by word, without a branch per
            // offer). The proxy share is decided later, for the offers the
            // ranking reaches (`finish`); in a catalog large enough for the
            // value cut, those that may need it are scored first, as the
            // cut's reference, and the plain ones after it (`plain_words`).
            // Fast scoring takes the plain offers as bits; exact scoring
            // lists them.
            kernel::passed_words(self.isa, &ws.codes, &mut ws.reach);
            let catalog_bytes = self.offers.len() * stride * std::mem::size_of::<f32>();
            defer_plain = matches!(mode, Mode::Fast { .. }) && effective_k > 0 && catalog_bytes >= self.value_cut_bytes;
            let proxy = self.proxy_words(active_proxy);
            for (w, &reach) in ws.reach.iter().enumerate() {
                if defer_plain {
                    let proxy = proxy.get(w).copied().unwrap_or(0);
                    kernel::append_positions(self.isa, reach & proxy, (w * 64) as u32, &mut ws.abs_rows);
                } else if matches!(mode, Mode::Exact) {
                    kernel::append_positions(self.isa, reach, (w * 64) as u32, &mut ws.rows);
                }
            }
        }
        Ok(Prepared { budget, status, effective_k, signals, mode, active_proxy, defer_plain, windows })
    }

    /// The offers needing the proxy share, as bits: those weighing a proxy
    /// feature, when one is active (none otherwise).
    fn proxy_words(&self, active_proxy: bool) -> &[u64] {
        if active_proxy {
            self.models.proxy_bits.words()
        } else {
            &[]
        }
    }

    /// The plain offers reaching scoring into `plain`, as bits: those of
    /// `reach` not needing the proxy share, and with `cut`, only those set
    /// in it too (the value cut's `ws.reaching`).
    fn plain_words(&self, reach: &[u64], cut: Option<&[u64]>, active_proxy: bool, plain: &mut Vec<u64>) {
        plain.clear();
        let proxy = self.proxy_words(active_proxy);
        plain.extend(reach.iter().enumerate().map(|(w, &reach)| {
            let keep = cut.map_or(u64::MAX, |c| c.get(w).copied().unwrap_or(0));
            reach & !proxy.get(w).copied().unwrap_or(0) & keep
        }));
    }

    /// The guard rule offer `o` fails before scoring, having passed
    /// eligibility and the contact policy: a target, or suitability.
    fn guard_failure(&self, o: usize, customer: &Customer, prepared: &Prepared, list: &mut Compact) -> Option<Why> {
        let offer = &self.offers[o];
        match prepared.signals.target_failure(&offer.targets) {
            Some((event, None)) => Some(list.plain(Reason::LifeEventUseNotConsented { event })),
            Some((event, Some(found))) => Some(Why::NotDeclared(event, found)),
            None => guard::check_suitability(offer, customer).err().map(|reason| list.plain(reason)),
        }
    }

    /// The first rule offer `o` fails before scoring, as the stage modules
    /// define it (allocates; for consistency checks and as a fallback).
    fn reference_failure(
        &self,
        o: usize,
        customer: &Customer,
        request: &Request,
        prepared: &Prepared,
        contact_offers: &[usize],
    ) -> Option<(Stage, Reason)> {
        let offer = &self.offers[o];
        if let Err(reason) = eligibility::check(offer, customer) {
            return Some((Stage::Eligibility, reason));
        }
        let contact = match &prepared.budget {
            Err((_, reason)) => Err(reason.clone()),
            Ok(_) => self.contact_rule(o, customer, request, &prepared.windows, contact_offers),
        };
        if let Err(reason) = contact {
            return Some((Stage::ContactPolicy, reason));
        }
        let guard =
            prepared.signals.check_targets(&offer.targets).and_then(|()| guard::check_suitability(offer, customer));
        guard.err().map(|reason| (Stage::Guard, reason))
    }

    /// The contact-history rules of offer `o`.
    fn contact_rule(
        &self,
        o: usize,
        customer: &Customer,
        request: &Request,
        windows: &contact::Windows,
        offers: &[usize],
    ) -> Result<(), Reason> {
        let contacts = offers.iter().zip(&customer.contact_history).filter(|(&i, _)| i == o).map(|(_, c)| c);
        contact::check_offer(&self.offers[o], contacts, request, self.params.contact(), windows)
    }

    /// Exact f64 proxy share of offer `o` (guard rule 3), from the centred
    /// features and which of them count as proxies.
    fn proxy_share(&self, o: usize, (d, is_proxy): (&[f64], &[bool])) -> f64 {
        let contributions = self.models.row(o).iter().zip(d).map(|(w, d)| w * d);
        guard::proxy_share(contributions.zip(is_proxy.iter().copied()))
    }

    /// Guard rule 3 by the f64 rule: offer `o`'s proxy share is above the
    /// threshold. Mostly decided from sums in any order
    /// ([`guard::decided_by_sums`]); the sequential sums only near the
    /// threshold.
    fn proxy_driven(&self, o: usize, (d, is_proxy): (&[f64], &[bool])) -> bool {
        let theta = self.params.guard().proxy_share_threshold;
        let sums = kernel::proxy_sums(self.isa, self.models.row(o), d, is_proxy);
        guard::decided_by_sums(sums, d.len(), theta).unwrap_or_else(|| self.proxy_share(o, (d, is_proxy)) > theta)
    }

    /// Guard rule 3 for a shortlist's candidates: each that may be
    /// proxy-driven (it weighs a proxy feature, and one is active) is
    /// decided by the f64 rule; the proxy-driven ones move from
    /// `shortlist` to `driven` and leave the bounds (NaN). Returns whether
    /// there were any (then offers outside the shortlist may belong in the
    /// top-k, and it must be drawn again without them).
    fn exclude_driven(
        &self,
        active_proxy: bool,
        shortlist: &mut Vec<Candidate>,
        driven: &mut Vec<Candidate>,
        (lo, hi): (&mut [f32], &mut [f32]),
        centred: (&[f64], &[bool]),
    ) -> bool {
        let before = driven.len();
        shortlist.retain(|c| {
            let o = c.offer;
            let is_driven = active_proxy && self.models.proxy_bits.get(o) && self.proxy_driven(o, centred);
            if is_driven {
                driven.push(*c);
                for bound in [lo.get_mut(o), hi.get_mut(o)].into_iter().flatten() {
                    *bound = f32::NAN;
                }
            }
            !is_driven
        });
        driven.len() > before
    }

    /// Guard rule 3's audit for the value cut's reference offers found
    /// proxy-driven (`ws.driven`, not ranked): withheld when they rank
    /// ahead of the k-th recommendation, or there are fewer than `k` (see
    /// [`settle`]). Most are ruled out by `ln(value × weight)` (σ ≤ 1),
    /// most of the rest by their fine bounds, and the few left exactly.
    fn settle_cut(&self, k: usize, error: (f32, f32), ws: &mut Workspace) {
        if k == 0 || ws.driven.is_empty() {
            return;
        }
        let Some(last) = ws.shortlist.get(k - 1).copied() else {
            for &o in &ws.driven {
                ws.codes[o as usize] = Code::Driven;
            }
            return;
        };
        let last_ln = last.priority.ln();
        // f32 upper bounds, so compared with a margin.
        let below = |hi: f32| f64::from(hi) + 1e-6 * (1.0 + last_ln.abs()) < last_ln;
        let log_value = if ws.custom_stakes { &ws.log_stake } else { &self.models.log_value };
        ws.cut_offers.clear();
        for &o in &ws.driven {
            if !below(log_value[o as usize]) {
                let j = ws.abs_rows.binary_search(&o).expect("a reference offer");
                ws.dense[o as usize] = ws.abs_scores[j][0];
                ws.cut_offers.push(o);
            }
        }
        let m = &self.models;
        let inputs = kernel::BoundsInputs { dot: &ws.dense, ..m.bounds(log_value, error) };
        kernel::fine_bounds(self.isa, &inputs, &ws.cut_offers, &mut ws.fine_lo, &mut ws.fine_hi);
        for j in 0..ws.cut_offers.len() {
            let o = ws.cut_offers[j] as usize;
            if !below(ws.fine_hi[j]) && arbitration::ranks_ahead(&self.candidate(o, m.logit(o, &ws.d), ws), &last) {
                ws.codes[o] = Code::Driven;
            }
        }
    }

    /// The exact candidate for offer `o`.
    fn candidate(&self, o: usize, logit: f64, ws: &Workspace) -> Candidate {
        let offer = &self.offers[o];
        let propensity = sigmoid(logit);
        let (stake, family_factor) = self.stake(o, ws);
        let priority = arbitration::priority(propensity, stake.stake, offer.weight) * family_factor;
        Candidate { offer: o, logit, propensity, priority, stake, family_factor }
    }

    /// Offer `o`'s stake for this request, and its family factor.
    fn stake(&self, o: usize, ws: &Workspace) -> (arbitration::Stake, f64) {
        let offer = &self.offers[o];
        let stake = arbitration::stake(offer.kind, offer.value, ws.value.as_ref(), self.params.arbitration());
        let family = self.family_of[o];
        let dismissals = ws.dismissed_families.iter().find(|f| f.0 == family).map_or(0, |f| f.1);
        (stake, self.params.fatigue().family_dismissal_factor.powi(dismissals))
    }

    /// Customer value, dismissals per product family since `since` (the
    /// family memory's start), and, when they change any offer's
    /// multiplier, every offer's `ln(stake × weight × family factor)` for
    /// the fast path's priority bounds.
    fn prepare_stakes(
        &self,
        customer: &Customer,
        request: &Request,
        since: chrono::DateTime<chrono::Utc>,
        ws: &mut Workspace,
    ) -> Result<(), RequestError> {
        ws.value = match &customer.value {
            Some(v) => {
                v.check().map_err(|(field, value, expected)| RequestError::InvalidCustomerValue {
                    customer: customer.id.clone(),
                    field,
                    value,
                    expected,
                })?;
                let summary = v.summary(self.params.value());
                if !(summary.lifetime_value.is_finite() && summary.value_at_risk.is_finite()) {
                    return Err(RequestError::InvalidCustomerValue {
                        customer: customer.id.clone(),
                        field: "margin_per_year",
                        value: v.margin_per_year,
                        expected: "an amount whose lifetime value is a finite number",
                    });
                }
                Some(summary)
            }
            None => None,
        };
        let fatigue = self.params.fatigue();
        ws.dismissed_families.clear();
        for (c, &o) in customer.contact_history.iter().zip(&ws.contact_offers) {
            if c.outcome == crate::customer::ContactOutcome::Dismissed && c.at > since && c.at <= request.now {
                let family = self.family_of[o];
                match ws.dismissed_families.iter_mut().find(|f| f.0 == family) {
                    Some(f) => f.1 = f.1.saturating_add(1),
                    None => ws.dismissed_families.push((family, 1)),
                }
            }
        }
        let factor_applies = fatigue.family_dismissal_factor != 1.0 && !ws.dismissed_families.is_empty();
        ws.custom_stakes = ws.value.is_some() || factor_applies || self.params.arbitration().value_weight != 1.0;
        ws.log_stake.clear();
        if ws.value.is_some() || self.params.arbitration().value_weight != 1.0 {
            for o in 0..self.offers.len() {
                let (stake, family) = self.stake(o, ws);
                if !(stake.stake * self.offers[o].weight * family).is_finite() {
                    return Err(RequestError::ScoreOverflow {
                        customer: customer.id.clone(),
                        offer: self.offers[o].id.clone(),
                    });
                }
                let log = log_multiplier(stake.stake, self.offers[o].weight, family);
                ws.log_stake.push(log);
            }
        } else if ws.custom_stakes {
            // Only some families differ from the catalog's `value × weight`:
            // the catalog's logs, with those families' offers redone. With
            // no customer value and a value weight of 1 the stake is the
            // offer's value, so `log_multiplier`'s sum is the catalog's
            // `ln v + ln w` plus one `ln` per family.
            ws.log_stake.extend_from_slice(&self.models.log_value);
            let factor = fatigue.family_dismissal_factor;
            for &(f, dismissals) in &ws.dismissed_families {
                let family = factor.powi(dismissals);
                let ln_family = ln_sum(&[family]);
                for &o in &self.family_members[f as usize] {
                    let o = o as usize;
                    #[cfg(debug_assertions)]
                    {
                        let (stake, factor) = self.stake(o, ws);
                        assert_eq!((stake.stake, factor), (self.offers[o].value, family));
                    }
                    // The catalog's log is −∞ exactly when value or weight
                    // is 0 (read there, not from the offers, which are large).
                    let zero = self.models.log_value[o] == f32::NEG_INFINITY || family == 0.0;
                    let ln = self.models.ln_value_weight[o].zip(ln_family).map(|(vw, f)| vw + f);
                    ws.log_stake[o] = log_f32(zero, ln);
                    debug_assert_eq!(
                        ws.log_stake[o].to_bits(),
                        log_multiplier(self.offers[o].value, self.offers[o].weight, family).to_bits()
                    );
                }
            }
        }
        Ok(())
    }

    /// Scores, guard rule 3, ranking, audit and explanations.
    fn finish(
        &self,
        customer: &Customer,
        request: &Request,
        prepared: &Prepared,
        ws: &mut Workspace,
        out: &mut Decision,
    ) -> Result<(), RequestError> {
        ws.shortlist.clear();
        let k = prepared.effective_k;
        match prepared.mode {
            _ if prepared.budget.is_err() => {}
            Mode::Fast { scale, floor, proxy, d_norm } => {
                let n = self.offers.len();
                let log_value = if ws.custom_stakes { &ws.log_stake } else { &self.models.log_value };
                let m = &self.models;
                // The error bound's inputs rounded up to f32.
                let up = |v: f64| (v * (1.0 + 1e-6)) as f32;
                let bounds = m.bounds(log_value, (up(scale), up(floor)));
                // The value cut: with many plain offers, those that could
                // not reach the top-k even if certain to buy (σ = 1) against
                // the offers that may need the proxy share, already scored
                // and bounded from below, are not scored (their dot products
                // are most of the time when the weights outgrow L2). The
                // reference leaves out the offers found proxy-driven, whose
                // priority cannot count towards the top-k. The threshold is
                // the k-th largest fine lower bound of the 2k reference
                // offers with the largest score plus ln(value × weight): at
                // most the k-th largest of all of theirs (a subset's), so
                // still below the top-k, at a few offers' bounds' cost; the
                // offers are then marked against it in one dense pass and
                // left out of the plain rows.
                // The offers reaching scoring that are not reference ones.
                let plain = || ws.reach.iter().map(|w| w.count_ones() as usize).sum::<usize>() - ws.abs_rows.len();
                let bytes = || plain() * m.w32.stride() * std::mem::size_of::<f32>();
                let cut = prepared.defer_plain && ws.abs_rows.len() >= k && bytes() >= self.value_cut_bytes;
                if cut {
                    // `signed` is within `e` of `P − θ·T`, with the margin of
                    // the f64 rule, so its sign decides unless it is within
                    // `e` (then the f64 rule does).
                    let inputs = kernel::ProxyInputs {
                        rows: &ws.abs_rows,
                        scores: &ws.abs_scores,
                        norms: &self.models.norm32,
                        band: proxy,
                    };
                    kernel::proxy_decisions(self.isa, &inputs, &mut ws.dense, &mut ws.driven, &mut ws.near);
                    for j in 0..ws.near.len() {
                        let o = ws.near[j] as usize;
                        if self.proxy_driven(o, (&ws.d, &ws.is_proxy)) {
                            ws.dense[o] = f32::NEG_INFINITY;
                            ws.driven.push(o as u32);
                        }
                    }
                    kernel::sums_at(&ws.abs_rows, (&ws.dense, log_value), &mut ws.cut_keys);
                    let least = kernel::kth_largest(self.isa, &ws.cut_keys, 2 * k, &mut ws.scratch);
                    ws.cut_offers.clear();
                    kernel::append_positions_at_least(self.isa, &ws.cut_keys, least, &mut ws.cut_offers);
                    for j in &mut ws.cut_offers {
                        *j = ws.abs_rows[*j as usize];
                    }
                    let inputs = kernel::BoundsInputs { dot: &ws.dense, ..bounds };
                    kernel::fine_bounds(self.isa, &inputs, &ws.cut_offers, &mut ws.fine_lo, &mut ws.fine_hi);
                    let tau = kernel::kth_largest(self.isa, &ws.fine_lo, k, &mut ws.scratch);
                    kernel::reaching_words(self.isa, log_value, tau, &mut ws.reaching);
                }
                // The reference offers found proxy-driven (`ws.driven`) are
                // not ranked; whether the ranking reaches them is settled at
                // the end. Without the cut, every one is ranked.
                if !cut {
                    ws.driven.clear();
                    for (&o, s) in ws.abs_rows.iter().zip(&ws.abs_scores) {
                        ws.dense[o as usize] = s[0];
                    }
                }
                let plain = if prepared.defer_plain {
                    let cut = if cut { Some(&ws.reaching[..]) } else { None };
                    self.plain_words(&ws.reach, cut, prepared.active_proxy, &mut ws.plain);
                    &ws.plain
                } else {
                    &ws.reach
                };
                // The plain offers from the grouped 16-bit weights (the coarse
                // bounds below then hold with `norm16` or `norm_int`, for the
                // reference offers' f32 scores too, as both are at least
                // `norm32`), or from the f32 rows: those the value cut keeps
                // are too sparse for whole groups.
                let integer = self.integer.unwrap_or_else(|| kernel::integer::available(self.isa));
                let from = self.grouped_bytes.unwrap_or_else(|| grouped_from(self.isa, integer));
                let grouped = !cut && n * m.w32.stride() * std::mem::size_of::<f32>() >= from;
                // From the integer weights when the customer's values
                // quantise (`widen`: their bounds' factor).
                let quantized = if grouped && integer {
                    kernel::integer::quantize(self.isa, &m.w_int, &ws.d, d_norm, &mut ws.dq)
                } else {
                    None
                };
                if let Some(q) = quantized {
                    kernel::integer::dots_int(self.isa, &m.w_int, plain, (&ws.dq, q.scale), &mut ws.dense);
                } else if grouped {
                    kernel::dots_grouped(self.isa, &m.w16, plain, &ws.d32, &mut ws.dense);
                } else {
                    ws.rows.clear();
                    for (w, &word) in plain.iter().enumerate() {
                        kernel::append_positions(self.isa, word, (w * 64) as u32, &mut ws.rows);
                    }
                    kernel::dots(self.isa, &m.w32, &ws.rows, &ws.d32, &mut ws.dense);
                }
                // Arbitration: coarse bounds on every candidate's priority,
                // fine ones for the few that may be in the top-k (from f32
                // scores), and those that still may, exactly.
                let (norm, error) = match quantized {
                    Some(q) => (&m.norm_int, (up(scale * q.widen), bounds.error.1)),
                    None if grouped => (&m.norm16, bounds.error),
                    None => (&m.norm32, bounds.error),
                };
                let inputs = kernel::BoundsInputs { dot: &ws.dense, norm, error, ..bounds };
                ws.lo.resize(n, 0.0);
                ws.hi.resize(n, 0.0);
                ws.unbounded.clear();
                if kernel::coarse_bounds(self.isa, &inputs, &mut ws.lo, &mut ws.hi) {
                    // Scored, but outside the bounds' validity (rare).
                    let scored = ws.dense.iter().zip(&ws.lo).map(|(&d, &l)| d != f32::NEG_INFINITY && l.is_nan());
                    ws.unbounded.extend(scored.enumerate().filter(|s| s.1).map(|(o, _)| o as u32));
                }
                // In rounds: the proxy-driven candidates of a shortlist leave
                // the bounds, and it is drawn again without them, for `k`
                // more offers than were left out so far (so that however many
                // are proxy-driven, the rounds are logarithmically few).
                ws.excluded.clear();
                let mut draw = k > 0;
                while draw {
                    let k_draw = k + ws.excluded.len();
                    ws.always.clear();
                    let excluded = |o: u32| ws.excluded.iter().any(|c| c.offer == o as usize);
                    ws.always.extend(ws.unbounded.iter().copied().filter(|&o| !excluded(o)));
                    ws.near.clear();
                    arbitration::shortlist_loose(self.isa, k_draw, (&ws.lo, &ws.hi), &mut ws.scratch, &mut ws.near);
                    // The fine bounds take f32 scores (with `norm32`, in
                    // `bounds`): those from 16 bits rescored (a reference
                    // offer's too, as good).
                    if grouped {
                        kernel::dots(self.isa, &m.w32, &ws.near, &ws.d32, &mut ws.dense);
                    }
                    let inputs = kernel::BoundsInputs { dot: &ws.dense, ..bounds };
                    kernel::fine_bounds(self.isa, &inputs, &ws.near, &mut ws.fine_lo, &mut ws.fine_hi);
                    let start = ws.always.len();
                    let fine = (&ws.fine_lo[..], &ws.fine_hi[..]);
                    arbitration::shortlist(self.isa, k_draw, fine, &mut ws.scratch, &mut ws.always);
                    for j in &mut ws.always[start..] {
                        *j = ws.near[*j as usize];
                    }
                    self.models.logits(self.isa, &ws.always, &ws.d, &mut ws.exact);
                    ws.shortlist.clear();
                    for j in 0..ws.always.len() {
                        let candidate = self.candidate(ws.always[j] as usize, ws.exact[j], ws);
                        ws.shortlist.push(candidate);
                    }
                    let (list, out, centred) = (&mut ws.shortlist, &mut ws.excluded, (&ws.d[..], &ws.is_proxy[..]));
                    draw = self.exclude_driven(prepared.active_proxy, list, out, (&mut ws.lo, &mut ws.hi), centred);
                }
                settle(k, &mut ws.shortlist, &ws.excluded, &mut ws.codes);
                self.settle_cut(k, (up(scale), up(floor)), ws);
            }
            Mode::Exact => {
                // Reaching offers in offer order, as the reference scores them.
                let threshold = self.params.guard().proxy_share_threshold;
                ws.excluded.clear();
                for j in 0..ws.rows.len() {
                    let o = ws.rows[j] as usize;
                    let logit = self.models.logit(o, &ws.d);
                    let share = self.proxy_share(o, (&ws.d, &ws.is_proxy));
                    if !logit.is_finite() || !share.is_finite() {
                        return Err(RequestError::ScoreOverflow {
                            customer: customer.id.clone(),
                            offer: self.offers[o].id.clone(),
                        });
                    }
                    let candidate = self.candidate(o, logit, ws);
                    if share > threshold {
                        ws.excluded.push(candidate);
                    } else {
                        ws.shortlist.push(candidate);
                    }
                }
                settle(k, &mut ws.shortlist, &ws.excluded, &mut ws.codes);
            }
        }

        Names::ensure(&mut ws.names, self.uid, &self.offers, &self.schema.features, (&self.models, &self.plan));
        self.write_audit(customer, request, prepared, ws, out);
        let recommendations = &mut out.recommendations;
        recommendations.truncate(ws.shortlist.len());
        let max = self.params.explain().max_contributions;
        let rows = ws.shortlist.iter().map(|c| self.models.row(c.offer));
        kernel::picks(self.isa, rows, &ws.d, &self.ordinary, max, &mut ws.picks);
        for (rank, (c, &pick)) in ws.shortlist.iter().zip(&ws.picks).enumerate() {
            let names = &ws.names;
            if rank == recommendations.len() {
                recommendations.push(self.empty_recommendation(c.offer, names));
            }
            let slot = &mut recommendations[rank];
            self.write_recommendation(slot, (rank + 1, pick), c, ws.value, (&ws.x, &ws.d), (names, &mut ws.pairs));
        }
        set_arc(&mut out.customer.0, &customer.id.0);
        out.now = request.now;
        out.channel = request.channel;
        out.requested_k = request.k;
        out.effective_k = k;
        out.status = prepared.status;
        out.funnel.returned = ws.shortlist.len();
        out.customer_value = ws.value;
        // Rule 2's masks, as in `prepare` (the maskable features only).
        let not_usable = !prepared.signals.usable_mask();
        let masked = self.maskable.iter().filter(|m| m.1 & not_usable != 0);
        set_names(&mut out.masked_features, masked.map(|m| &ws.names.features[m.0 as usize].name));
        debug_assert!(out.masked_features.iter().map(|f| &**f).eq(ws
            .names
            .features
            .iter()
            .filter(|f| prepared.signals.masks(f.sensitivity))
            .map(|f| &*f.name)));
        Ok(())
    }

    /// The audit: every offer withheld, in offer order, with the first rule
    /// it failed; and the funnel counts. Most reasons are worked out from
    /// the rule codes when the audit is read; those that need more of the
    /// customer are recorded here.
    fn write_audit(
        &self,
        customer: &Customer,
        request: &Request,
        prepared: &Prepared,
        ws: &mut Workspace,
        out: &mut Decision,
    ) {
        let Workspace { held, codes, contact_offers, detailed, d, is_proxy, names, .. } = ws;
        let context = Context {
            codes,
            age: customer.age,
            held,
            channel: request.channel,
            d,
            is_proxy,
            threshold: self.params.guard().proxy_share_threshold,
        };
        let budget = prepared.budget.as_ref().err().map(|(_, reason)| reason.clone());
        let (list, mut failed) = out.withheld.compact(names, &context, budget);
        if prepared.budget.is_ok() {
            for (w, &word) in detailed.words().iter().enumerate() {
                for o in crate::compiled::bits(word, w * 64) {
                    let why = match codes[o] {
                        Code::History => self
                            .contact_rule(o, customer, request, &prepared.windows, contact_offers)
                            .err()
                            .map(|reason| list.plain(reason)),
                        Code::Target | Code::Suitability => self.guard_failure(o, customer, prepared, list),
                        _ => continue,
                    };
                    // Unreachable fallbacks (the code was recorded by the
                    // stage modules' rules): their answer, or else no
                    // entry, rather than a panic.
                    let reference = || self.reference_failure(o, customer, request, prepared, contact_offers);
                    match why.or_else(|| reference().map(|(_, reason)| list.plain(reason))) {
                        Some(why) => list.detail(o, why),
                        None => failed[list.forget(o) as usize] -= 1,
                    }
                }
            }
        }
        #[cfg(debug_assertions)]
        for o in 0..self.offers.len() {
            let reference = self.reference_failure(o, customer, request, prepared, contact_offers);
            match list.entry(o) {
                Some((Stage::Guard, Reason::ProxyDriven { share, threshold, .. })) => {
                    assert!(reference.is_none() && share > threshold, "offer {o}: proxy-driven, but {reference:?}");
                }
                recorded => {
                    assert_eq!(recorded, reference, "offer {o}: recorded failure differs from the stage modules");
                }
            }
        }
        let eligible = self.offers.len() - failed[0];
        let contactable = eligible - failed[1];
        out.funnel =
            Funnel { offers: self.offers.len(), eligible, contactable, allowed: contactable - failed[2], returned: 0 };
    }

    fn empty_recommendation(&self, o: usize, names: &Names) -> Recommendation {
        let (offer, own) = (&self.offers[o], &names.offers[o]);
        Recommendation {
            rank: 0,
            offer: own.id.clone(),
            product: own.product.clone(),
            kind: offer.kind,
            priority: 0.0,
            explanation: Explanation {
                priority: 0.0,
                components: Components::default(),
                contributions: Contributions::default(),
                rules_passed: Vec::new(),
                reason: String::new(),
            },
        }
    }

    fn write_recommendation(
        &self,
        slot: &mut Recommendation,
        (rank, pick): (usize, kernel::Pick),
        c: &Candidate,
        value: Option<crate::value::ValueSummary>,
        (x, d): (&[f64], &[f64]),
        (names, top): (&Arc<Names>, &mut Vec<(usize, f64)>),
    ) {
        let (offer, own) = (&self.offers[c.offer], &names.offers[c.offer]);
        let row = self.models.row(c.offer);
        // Rule 6: only ordinary features are ever cited; the others'
        // contributions become 0 (exact products otherwise), which is never
        // cited either. No branch or bounds check per feature.
        let max = self.params.explain().max_contributions;
        explain::top_contributions_picked(self.isa, pick, (row, d, &self.ordinary), max, top);
        slot.rank = rank;
        set_arc(&mut slot.offer.0, &own.id.0);
        set_arc(&mut slot.product.0, &own.product.0);
        slot.kind = offer.kind;
        slot.priority = c.priority;
        let e = &mut slot.explanation;
        e.priority = c.priority;
        let value = value.unwrap_or_default();
        e.components = Components {
            logit: c.logit,
            propensity: c.propensity,
            value: offer.value,
            weight: offer.weight,
            stake: c.stake.stake,
            growth_factor: c.stake.growth_factor,
            family_factor: c.family_factor,
            lifetime_value: value.lifetime_value,
            value_at_risk: value.value_at_risk,
        };
        e.contributions.set(
            names,
            top.iter().map(|&(feature, contribution)| Cited {
                feature,
                value: x[feature],
                weight: row[feature],
                contribution,
            }),
        );
        if e.rules_passed != self.rules[c.offer] {
            e.rules_passed.clear();
            e.rules_passed.extend_from_slice(&self.rules[c.offer]);
        }
        self.phrases.write(top, &mut e.reason);
        debug_assert_eq!(e.reason, explain::sentence(&e.contributions));
    }
}

/// Bytes of weight rows the plain offers' dot products would read, from
/// which the value cut is tried. Measured here (2 MB of L2 a core, 64
/// features), median time ratios with the cut against without (one
/// customer / 64 distinct): 1.03 / 1.18 at 1,000 offers, 0.88 / 1.05 at
/// 3,000 (about 0.4 MB of plain rows), 0.94 / 1.03 at 4,000 (0.54 MB), and
/// 0.96 with 64 customers at 5,000 (0.67 MB). Below that the rows it keeps
/// are sparse enough to cost more each, for distinct customers most.
const VALUE_CUT_BYTES: usize = 640 << 10;

/// Bytes of f32 weights from which the plain offers are scored from the
/// grouped 16-bit weights ([`kernel::Groups`]), by the kernels' instruction
/// set. With AVX-512, whose grouped kernel is bound by its multiply-adds
/// rather than by reading the weights, fastest batch of 20,000 calls
/// against the f32 rows, one customer (Zen 4): 4.97 → 4.54 µs at 1,000
/// offers and 3.21 → 3.10 at 500, but no gain at 300 and a loss at 100
/// (weights in L1, a few f32 rescores more: 1.72–1.74 → 1.76–1.84 µs in
/// two sets). On an Intel Xeon with the shift-free high halves: 2.60–2.67
/// against 2.76–2.88 µs at 500, 2.17–2.29 against 2.23–2.30 at 300, a loss
/// at 100 to 200. With AVX2 the grouped kernel's shifts cost as much as
/// the bytes it saves (Zen 4 with masks: 5.20 → 5.44 µs at 1,000 offers;
/// Xeon without: no clear difference), so it is not used from bf16; from
/// 16-bit integers (`integer`: `vpmaddwd`, two instructions per 16
/// multiply-adds) it is, from the same size (Xeon, AVX2, fastest batch,
/// against the f32 rows: 5.13–5.27 → 4.72–4.73 µs at 1,000 offers,
/// 3.23–3.41 → 3.13–3.18 at 500, even at 200 and 300). Nor after the value
/// cut, which keeps too few offers for whole groups (at 10,000 offers: 52.8
/// → 59.8 µs).
fn grouped_from(isa: Isa, integer: bool) -> usize {
    match isa {
        Isa::Avx512 => GROUPED_BYTES,
        Isa::Avx2Fma if integer => GROUPED_BYTES,
        _ => usize::MAX,
    }
}

/// [`grouped_from`] for AVX-512, and for AVX2 with integers.
const GROUPED_BYTES: usize = 96 << 10;

/// `ln(stake × weight × family)` in f32, with the conventions of the
/// catalog's `log_value`: −∞ when the product is 0, NaN (scored exactly)
/// when a factor is outside `[1e-100, 1e100]`.
fn log_multiplier(stake: f64, weight: f64, family: f64) -> f32 {
    log_f32(stake == 0.0 || weight == 0.0 || family == 0.0, ln_sum(&[stake, weight, family]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions point to the workspace's copies of the names, so threads
    /// never update the reference counts of the engine's own strings.
    #[test]
    fn decisions_do_not_share_the_engines_strings() {
        let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap();
        let engine = Engine::new(catalog).unwrap();
        let request: Request =
            serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#).unwrap();
        let customers: Vec<Customer> = include_str!("../examples/data/customers.jsonl")
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        assert!(customers.len() > 3);
        let engine_strings: Vec<*const u8> = engine
            .offers()
            .iter()
            .flat_map(|o| [o.id.0.as_ptr(), o.product.0.as_ptr()])
            .chain(engine.schema().features.iter().flat_map(|f| [f.name.as_ptr(), f.description.as_ptr()]))
            .collect();
        let mut decisions: Vec<Decision> =
            customers.iter().filter_map(|c| engine.recommend(c, &request).ok()).collect();
        decisions.extend(engine.recommend_batch(&customers, &request).into_iter().filter_map(Result::ok));
        let mut seen = 0;
        for d in &decisions {
            let mut names: Vec<*const u8> = d.withheld.iter().map(|w| w.offer.0.as_ptr()).collect();
            for r in &d.recommendations {
                names.extend([r.offer.0.as_ptr(), r.product.0.as_ptr()]);
                names.extend(
                    r.explanation.contributions.iter().flat_map(|c| [c.feature.as_ptr(), c.description.as_ptr()]),
                );
            }
            names.extend(d.masked_features.iter().map(|f| f.as_ptr()));
            seen += names.len();
            assert!(names.iter().all(|p| !engine_strings.contains(p)), "decision for {} shares a string", d.customer);
        }
        assert!(seen > 20, "the decisions name something");
    }

    /// The value cut leaves unscored the plain offers that could not reach
    /// the top-k at any propensity, and the decision is the same.
    #[test]
    fn the_value_cut_skips_offers_that_cannot_reach_the_top_k() {
        let offer = |i: usize, value: f64, proxy: f64| {
            serde_json::json!({
                "id": format!("o{i:03}"), "product": format!("p{i:03}"), "kind": "cross_sell", "value": value,
                "channels": ["email"], "model": {"bias": 0.0, "weights": {"tenure": 0.5, "household": proxy}}
            })
        };
        // 40 plain offers worth 1 to 40; 10 worth 1,000 that weigh a proxy
        // a little (their share stays below the threshold).
        let offers: Vec<_> =
            (0..50).map(|i| if i < 40 { offer(i, 1.0 + i as f64, 0.0) } else { offer(i, 1_000.0, 0.01) }).collect();
        let catalog = serde_json::json!({
            "schema": [
                {"name": "tenure", "description": "tenure"},
                {"name": "household", "description": "household", "sensitivity": {"proxy": {"life_event": "family_status"}}}
            ],
            "offers": offers,
        });
        let engine = Engine::new(serde_json::from_value(catalog).unwrap()).unwrap();
        let customer: Customer =
            serde_json::from_str(r#"{"id": "C", "features": [1, 1], "consents": {"channels": ["email"]}}"#).unwrap();
        let request: Request =
            serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#).unwrap();
        let mut ws = Workspace::new();
        let (mut plain, mut cut) = (Decision::default(), Decision::default());
        let bits = |words: &[u64]| words.iter().map(|w| w.count_ones()).sum::<u32>();
        engine.recommend_into(&customer, &request, &mut ws, &mut plain).unwrap();
        assert_eq!(
            (bits(&ws.reach), ws.abs_rows.len()),
            (50, 0),
            "without the cut (small catalog), every offer is scored as a plain one"
        );
        let cutting = engine.clone().with_value_cut_from(0);
        cutting.recommend_into(&customer, &request, &mut ws, &mut cut).unwrap();
        assert_eq!((bits(&ws.plain), ws.abs_rows.len()), (0, 10), "no plain offer can beat three worth 1,000");
        assert_eq!(cut, plain);
        assert_eq!(cut.recommendations.len(), 3);
        assert_eq!(cut.funnel.allowed, 50, "cut offers are allowed, only not ranked");
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Engine>();
        // Decisions (and their audits, which share the engine's models) can
        // be handed to other threads, and so can workspaces.
        assert_send_sync::<Decision>();
        assert_send_sync::<Workspace>();
    }
}
