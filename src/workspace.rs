//! The reusable [`Workspace`] of [`Engine::recommend_into`], and the
//! helpers that rewrite a [`Decision`] in place so that, once warmed up, a
//! decision costs no heap allocation.
//!
//! [`Engine::recommend_into`]: crate::Engine::recommend_into

use std::sync::Arc;

use chrono::DateTime;

use crate::arbitration::Candidate;
use crate::catalog::{Channel, CustomerId, OfferId, ProductId};
use crate::compiled::Bitset;
use crate::customer::ProvenanceKind;
use crate::decision::{Decision, DecisionStatus, Funnel, Reason, Stage, Withheld};
use crate::explain::Contribution;
use crate::schema::{FeatureSpec, LifeEvent, Sensitivity};

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
    /// 1.0 for the proxy features, padded.
    pub(crate) proxy32: Vec<f32>,
    /// Per contact-history entry, the offer's position.
    pub(crate) contact_offers: Vec<usize>,
    /// Catalog products held.
    pub(crate) held: Bitset,
    /// Offers failing a rule before scoring.
    pub(crate) fail: Bitset,
    /// Offers whose base product is not held.
    pub(crate) missing_base: Bitset,
    /// Per offer, the first rule it failed before scoring.
    pub(crate) codes: Vec<crate::compiled::Code>,
    /// Offers suppressed as proxy-driven.
    pub(crate) driven: Bitset,
    /// Offers reaching scoring that need only the logit, and their scores.
    pub(crate) rows: Vec<u32>,
    pub(crate) dots: Vec<f32>,
    /// Offers reaching scoring that also need the proxy share, and their
    /// `[logit, Σ|c|, Σ proxy |c|]` scores.
    pub(crate) abs_rows: Vec<u32>,
    pub(crate) abs_scores: Vec<[f32; 3]>,
    /// Ranking inputs per candidate (the candidates are `rows`).
    pub(crate) cand_logit: Vec<f32>,
    pub(crate) cand_log_value: Vec<f32>,
    pub(crate) cand_err: Vec<f32>,
    pub(crate) lo: Vec<f32>,
    pub(crate) hi: Vec<f32>,
    /// Candidates scored exactly whatever their bounds.
    pub(crate) always: Vec<u32>,
    pub(crate) scratch: Vec<f32>,
    /// Candidates rescored exactly in f64.
    pub(crate) shortlist: Vec<Candidate>,
    /// `(feature, contribution)` pairs for explanations and proxy lists.
    pub(crate) pairs: Vec<(usize, f64)>,
    /// Spare vectors taken from overwritten reasons.
    pub(crate) pools: Pools,
    /// The previous audit, matched by offer.
    pub(crate) audit: AuditMemory,
    /// Copies of the last engine's names, which decisions point to.
    pub(crate) names: Arc<Names>,
}

/// Copies of an engine's names (offer ids, products, features), which
/// the decisions a workspace writes point to. Cloning and dropping an `Arc`
/// updates its reference count; with the engine's own strings, threads
/// ranking at the same time would all write to the same counters and the
/// cache lines would bounce between cores. Copies per workspace (shared by
/// the workspaces of one batch thread) keep those updates on the thread's
/// own cache lines.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// The engine these are copies of ([`Engine`](crate::Engine)'s `uid`;
    /// 0 for none).
    pub(crate) engine: u64,
    pub(crate) offers: Vec<OfferNames>,
    pub(crate) features: Vec<FeatureSpec>,
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
    ) {
        if names.engine != engine {
            *names = Arc::new(Names::copy(engine, offers, features));
        }
    }

    fn copy(engine: u64, offers: &[crate::catalog::Offer], features: &[FeatureSpec]) -> Names {
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
        Names { engine, offers, features }
    }
}

/// Spare vectors taken from overwritten reasons, reused for new ones.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    kinds: Vec<Vec<ProvenanceKind>>,
    names: Vec<Vec<Arc<str>>>,
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
            withheld: Vec::new(),
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

/// A withheld offer's reason, borrowed from the catalog where it names
/// something, so that writing it over an equal one costs nothing.
#[derive(Debug)]
pub(crate) enum Why<'a> {
    /// A reason without names or lists.
    Plain(Reason),
    AlreadyHeld(&'a ProductId),
    MissingBaseProduct(&'a ProductId),
    MissingRequiredHolding(&'a ProductId),
    ExcludedHolding(&'a ProductId),
    /// Guard rule 1, with the provenance bits found.
    NotDeclared(LifeEvent, u8),
    /// Guard rule 3, with the responsible features by position.
    ProxyDriven {
        share: f64,
        threshold: f64,
        features: &'a [(usize, f64)],
        schema: &'a [FeatureSpec],
    },
}

impl Why<'_> {
    /// The owned reason (allocates; for consistency checks).
    pub(crate) fn to_reason(&self) -> Reason {
        match self {
            Why::Plain(r) => r.clone(),
            Why::AlreadyHeld(p) => Reason::AlreadyHeld { product: (*p).clone() },
            Why::MissingBaseProduct(p) => Reason::MissingBaseProduct { product: (*p).clone() },
            Why::MissingRequiredHolding(p) => Reason::MissingRequiredHolding { product: (*p).clone() },
            Why::ExcludedHolding(p) => Reason::ExcludedHolding { product: (*p).clone() },
            Why::NotDeclared(event, bits) => {
                Reason::LifeEventNotDeclared { event: *event, found: crate::guard::provenances(*bits).collect() }
            }
            Why::ProxyDriven { share, threshold, features, schema } => Reason::ProxyDriven {
                share: *share,
                threshold: *threshold,
                features: features.iter().map(|&(i, _)| schema[i].name.clone()).collect(),
            },
        }
    }
}

/// Moves a list out of a reason about to be overwritten into the pools.
fn retire(pools: &mut Pools, reason: &mut Reason) {
    match reason {
        Reason::LifeEventNotDeclared { found, .. } => pools.kinds.push(std::mem::take(found)),
        Reason::ProxyDriven { features, .. } => {
            features.clear();
            pools.names.push(std::mem::take(features));
        }
        _ => {}
    }
}

fn replace(pools: &mut Pools, slot: &mut Reason, reason: Reason) {
    retire(pools, slot);
    *slot = reason;
}

/// Overwrites `slot` with `why`, reusing what it holds where it can.
fn write_reason(pools: &mut Pools, slot: &mut Reason, why: &Why<'_>) {
    match *why {
        Why::Plain(ref reason) => {
            if slot != reason {
                replace(pools, slot, reason.clone());
            }
        }
        Why::AlreadyHeld(p) => match slot {
            Reason::AlreadyHeld { product } => set_arc(&mut product.0, &p.0),
            _ => replace(pools, slot, Reason::AlreadyHeld { product: p.clone() }),
        },
        Why::MissingBaseProduct(p) => match slot {
            Reason::MissingBaseProduct { product } => set_arc(&mut product.0, &p.0),
            _ => replace(pools, slot, Reason::MissingBaseProduct { product: p.clone() }),
        },
        Why::MissingRequiredHolding(p) => match slot {
            Reason::MissingRequiredHolding { product } => set_arc(&mut product.0, &p.0),
            _ => replace(pools, slot, Reason::MissingRequiredHolding { product: p.clone() }),
        },
        Why::ExcludedHolding(p) => match slot {
            Reason::ExcludedHolding { product } => set_arc(&mut product.0, &p.0),
            _ => replace(pools, slot, Reason::ExcludedHolding { product: p.clone() }),
        },
        Why::NotDeclared(e, bits) => {
            if !matches!(slot, Reason::LifeEventNotDeclared { .. }) {
                // Full capacity from the start, so that pooled lists never grow.
                let found = pools.kinds.pop().unwrap_or_else(|| Vec::with_capacity(3));
                replace(pools, slot, Reason::LifeEventNotDeclared { event: e, found });
            }
            if let Reason::LifeEventNotDeclared { event, found } = slot {
                *event = e;
                found.clear();
                found.extend(crate::guard::provenances(bits));
            }
        }
        Why::ProxyDriven { share: s, threshold: t, features: f, schema } => {
            if !matches!(slot, Reason::ProxyDriven { .. }) {
                let features = pools.names.pop().unwrap_or_else(|| {
                    Vec::with_capacity(schema.iter().filter(|f| matches!(f.sensitivity, Sensitivity::Proxy(_))).count())
                });
                replace(pools, slot, Reason::ProxyDriven { share: s, threshold: t, features });
            }
            if let Reason::ProxyDriven { share, threshold, features } = slot {
                *share = s;
                *threshold = t;
                set_names(features, f.iter().map(|&(i, _)| &schema[i].name));
            }
        }
    }
}

/// Rebuilds a decision's `withheld` list. Entries are rewritten in place
/// while they name the same offers as the list already there; from the
/// first difference on, the rest of that list is matched by offer instead,
/// so that from one customer to the next most entries cost neither an
/// allocation nor a reference-count update.
pub(crate) struct Audit<'a> {
    list: &'a mut Vec<Withheld>,
    /// Entries written.
    len: usize,
    memory: &'a mut AuditMemory,
    merging: bool,
    pools: &'a mut Pools,
    /// The offers' names this workspace hands out.
    offers: &'a [OfferNames],
}

impl<'a> Audit<'a> {
    /// Starts rewriting `list`.
    pub(crate) fn new(
        list: &'a mut Vec<Withheld>,
        memory: &'a mut AuditMemory,
        pools: &'a mut Pools,
        offers: &'a [OfferNames],
    ) -> Audit<'a> {
        memory.written.clear();
        Audit { list, len: 0, memory, merging: false, pools, offers }
    }

    /// The offer position of entry `i` of the list as it was, when this
    /// workspace wrote it (checked by pointer, since the caller may have
    /// changed the list or passed another one); `u32::MAX` otherwise.
    fn old_position(&self, i: usize) -> u32 {
        let known = self.memory.positions.get(i).copied().filter(|&p| {
            let (entry, names) = (self.list.get(i), self.offers.get(p as usize));
            entry.zip(names).is_some_and(|(e, n)| Arc::ptr_eq(&e.offer.0, &n.id.0))
        });
        known.unwrap_or(u32::MAX)
    }

    /// Appends offer `o`, withheld at `stage` because of `why`.
    pub(crate) fn push(&mut self, o: usize, stage: Stage, why: &Why<'_>) {
        let o32 = o as u32;
        self.memory.written.push(o32);
        let Some(names) = self.offers.get(o) else { return };
        if self.len == self.list.len() && !self.merging {
            // Nothing left to reuse: append (pooled lists for the reason).
            let mut reason = Reason::OptedOut;
            write_reason(self.pools, &mut reason, why);
            self.list.push(Withheld { offer: names.id.clone(), stage, reason });
            self.len += 1;
            return;
        }
        if !self.merging {
            if let Some(entry) = self.list.get_mut(self.len).filter(|e| Arc::ptr_eq(&e.offer.0, &names.id.0)) {
                entry.stage = stage;
                write_reason(self.pools, &mut entry.reason, why);
                self.len += 1;
                return;
            }
            // From here on, match the rest of the list by offer: it moves,
            // reversed, to `old` so that entries pop in offer order.
            self.merging = true;
            // (Taken out and put back: `old_position` borrows `self`.)
            let mut positions = std::mem::take(&mut self.memory.old_positions);
            positions.clear();
            positions.extend((self.len..self.list.len()).rev().map(|i| self.old_position(i)));
            self.memory.old_positions = positions;
            let m = &mut *self.memory;
            m.old.clear();
            m.old.extend(self.list.drain(self.len..).rev());
        }
        let m = &mut *self.memory;
        while m.old_positions.last().is_some_and(|&p| p < o32) {
            m.old_positions.pop();
            if let Some(mut gone) = m.old.pop() {
                retire(self.pools, &mut gone.reason);
            }
        }
        let reused = if m.old_positions.last() == Some(&o32) {
            m.old_positions.pop();
            m.old.pop()
        } else {
            None
        };
        let entry = if let Some(mut entry) = reused {
            entry.stage = stage;
            write_reason(self.pools, &mut entry.reason, why);
            entry
        } else {
            let mut reason = Reason::OptedOut;
            write_reason(self.pools, &mut reason, why);
            Withheld { offer: names.id.clone(), stage, reason }
        };
        self.list.push(entry);
        self.len += 1;
    }

    /// Drops what is left of the previous list (keeping its reasons' lists).
    pub(crate) fn finish(self) {
        let Audit { list, len, memory, merging, pools, .. } = self;
        if merging {
            while let Some(mut gone) = memory.old.pop() {
                retire(pools, &mut gone.reason);
            }
            memory.old_positions.clear();
        } else {
            for gone in list.iter_mut().skip(len) {
                retire(pools, &mut gone.reason);
            }
            list.truncate(len);
        }
        std::mem::swap(&mut memory.positions, &mut memory.written);
    }
}

/// Room to match the previous audit by offer.
#[derive(Debug, Default)]
pub(crate) struct AuditMemory {
    /// Offer positions of the list this workspace wrote last.
    positions: Vec<u32>,
    /// Offer positions of the list being written.
    written: Vec<u32>,
    /// The rest of the previous list, reversed, while matching by offer.
    old: Vec<Withheld>,
    /// Their offer positions (`u32::MAX`: not known).
    old_positions: Vec<u32>,
}

/// One contribution, borrowing its names from the schema.
pub(crate) struct ContributionRef<'a> {
    pub(crate) spec: &'a FeatureSpec,
    pub(crate) value: f64,
    pub(crate) weight: f64,
    pub(crate) contribution: f64,
}

/// Overwrites `list` with `items`, reusing entries.
pub(crate) fn set_contributions<'a>(list: &mut Vec<Contribution>, items: impl Iterator<Item = ContributionRef<'a>>) {
    let mut n = 0;
    for c in items {
        match list.get_mut(n) {
            Some(slot) => {
                set_arc(&mut slot.feature, &c.spec.name);
                set_arc(&mut slot.description, &c.spec.description);
                slot.value = c.value;
                slot.weight = c.weight;
                slot.contribution = c.contribution;
            }
            None => list.push(Contribution {
                feature: c.spec.name.clone(),
                description: c.spec.description.clone(),
                value: c.value,
                weight: c.weight,
                contribution: c.contribution,
            }),
        }
        n += 1;
    }
    list.truncate(n);
}
