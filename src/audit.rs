//! The audit of a decision: every offer withheld, with the first rule it
//! failed, stored compactly.
//!
//! A decision withholds hundreds of offers when the catalog is large, and
//! most services log the audit rather than read it. The engine therefore
//! keeps a copy of the per-offer rule codes it recorded while ranking (one
//! byte an offer), with what it takes to turn a code into a reason: the
//! customer's age and held products, the channel, the centred features for
//! proxy shares, and the few reasons that need more of the customer
//! (contact history, life events, vulnerabilities), worked out eagerly.
//! Entries are built only when read or serialized, by the same rules and
//! the same f64 arithmetic as the stage modules, citing the workspace's
//! copy of the engine's names. Debug builds check every entry against the
//! stage modules when it is written. Serialized, it is a list of
//! [`Withheld`] objects.

use std::fmt;
use std::sync::Arc;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::{Channel, ProductId};
use crate::compiled::{Bitset, Code, Failure};
use crate::decision::{Reason, Stage, Withheld};
use crate::schema::LifeEvent;
use crate::workspace::Names;

/// The offers a [`Decision`](crate::Decision) withheld, in offer-id order,
/// each with the stage and the first rule it failed.
///
/// Entries are built when read: [`WithheldList::iter`] and
/// [`WithheldList::get`] return owned [`Withheld`] values. Serialized, it is
/// a JSON list of [`Withheld`] objects.
///
/// ```
/// # use tactful::{Catalog, Customer, Engine, Request, Stage};
/// # let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json"))?;
/// # let engine = Engine::new(catalog)?;
/// # let customer: Customer = serde_json::from_str(r#"{"id": "C-1", "age": 41, "features": [6, 12, 1.8, 1, 1, 0.6, 3, 2, 1],
/// #     "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#)?;
/// # let request: Request = serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#)?;
/// let decision = engine.recommend(&customer, &request)?;
/// for w in &decision.withheld {
///     println!("{} withheld at {:?}: {}", w.offer, w.stage, w.reason);
/// }
/// assert_eq!(decision.withheld.iter().count(), decision.withheld.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct WithheldList {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Built from values (deserialized, or made by hand).
    Owned(Vec<Withheld>),
    /// Written by the engine.
    Compact(Compact),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Owned(Vec::new())
    }
}

/// The engine's form: the per-offer rule codes of the decision, and what
/// turns a code into a reason when the entry is read.
#[derive(Clone)]
pub(crate) struct Compact {
    names: Arc<Names>,
    /// Per offer, the first rule it failed ([`Code::Passed`]: none).
    codes: Vec<Code>,
    /// Offers withheld.
    len: usize,
    /// Nothing may be offered: the reason of every offer past eligibility.
    budget: Option<Why>,
    /// Reasons of the contact-history and guard rules 1 and 4, which need
    /// more of the customer than is kept here: `(offer, why)`, by offer.
    details: Vec<(u32, Why)>,
    /// Reasons of [`Why::Plain`].
    reasons: Vec<Reason>,
    /// For eligibility entries: the customer's age and held products.
    age: Option<u32>,
    held: Bitset,
    channel: Channel,
    /// For proxy-driven entries: the customer's centred, masked features,
    /// which of them count as proxies, and the guard's threshold.
    d: Vec<f64>,
    is_proxy: Vec<bool>,
    threshold: f64,
}

/// A withheld offer's reason, with its names left as positions and any
/// values kept aside.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Why {
    /// Guard rule 1, with the provenance bits found.
    NotDeclared(LifeEvent, u8),
    /// Any other reason: an index into [`Compact`]'s reasons.
    Plain(u32),
}

/// What the engine keeps of a request for its audit.
pub(crate) struct Context<'a> {
    pub(crate) codes: &'a [Code],
    pub(crate) age: Option<u32>,
    pub(crate) held: &'a Bitset,
    pub(crate) channel: Channel,
    pub(crate) d: &'a [f64],
    pub(crate) is_proxy: &'a [bool],
    pub(crate) threshold: f64,
}

/// The stage of a withheld offer's rule code; with `budget` (nothing may be
/// offered), every offer past eligibility is withheld by the contact policy.
fn stage_of(code: Code, budget: bool) -> Stage {
    match code {
        Code::Held | Code::Extra => Stage::Eligibility,
        _ if budget => Stage::ContactPolicy,
        Code::Channel | Code::History => Stage::ContactPolicy,
        Code::Target | Code::Suitability | Code::Driven | Code::Passed => Stage::Guard,
    }
}

/// Offers withheld at each stage, in [`Stage`] order.
pub(crate) type StageCounts = [usize; 3];

impl Compact {
    /// Starts a new audit citing `names`, from the request's `context`;
    /// `budget` is the reason for every offer past eligibility when nothing
    /// may be offered. Returns the offers withheld at each stage.
    pub(crate) fn start(&mut self, names: &Arc<Names>, context: &Context, budget: Option<Reason>) -> StageCounts {
        if !Arc::ptr_eq(&self.names, names) {
            self.names = Arc::clone(names);
        }
        self.codes.clear();
        self.codes.extend_from_slice(context.codes);
        self.reasons.clear();
        self.details.clear();
        self.budget = budget.map(|reason| self.plain(reason));
        self.age = context.age;
        self.held.copy_from(context.held);
        self.channel = context.channel;
        self.d.clear();
        self.d.extend_from_slice(context.d);
        self.is_proxy.clear();
        self.is_proxy.extend_from_slice(context.is_proxy);
        self.threshold = context.threshold;
        // Byte comparisons summed in byte lanes (at most 255 per chunk),
        // which the compiler vectorises.
        let (mut eligibility, mut contact, mut guard) = (0usize, 0usize, 0usize);
        for chunk in self.codes.chunks(255) {
            let (mut e, mut c, mut g) = (0u8, 0u8, 0u8);
            for &code in chunk {
                let code = code as u8;
                e += u8::from(code <= Code::Extra as u8);
                c += u8::from(code.wrapping_sub(Code::Channel as u8) <= Code::History as u8 - Code::Channel as u8);
                g += u8::from(code.wrapping_sub(Code::Target as u8) <= Code::Driven as u8 - Code::Target as u8);
            }
            (eligibility, contact, guard) =
                (eligibility + usize::from(e), contact + usize::from(c), guard + usize::from(g));
        }
        let guard = if self.budget.is_some() {
            contact = self.codes.len() - eligibility;
            0
        } else {
            guard
        };
        self.len = eligibility + contact + guard;
        [eligibility, contact, guard]
    }

    /// Records the reason of offer `offer`, whose code is
    /// [`Code::History`], [`Code::Target`] or [`Code::Suitability`]; offers
    /// in increasing order.
    pub(crate) fn detail(&mut self, offer: usize, why: Why) {
        self.details.push((offer as u32, why));
    }

    /// Drops offer `offer`'s entry (whose reason could not be found) and
    /// returns its stage.
    pub(crate) fn forget(&mut self, offer: usize) -> Stage {
        let Some(code) = self.codes.get_mut(offer) else { return Stage::Eligibility };
        let stage = stage_of(*code, self.budget.is_some());
        *code = Code::Passed;
        self.len -= 1;
        stage
    }

    /// Keeps `reason` aside.
    pub(crate) fn plain(&mut self, reason: Reason) -> Why {
        self.reasons.push(reason);
        Why::Plain(self.reasons.len() as u32 - 1)
    }

    /// The reason `why` stands for.
    pub(crate) fn reason(&self, why: Why) -> Reason {
        match why {
            Why::NotDeclared(event, bits) => {
                Reason::LifeEventNotDeclared { event, found: crate::guard::provenances(bits).collect() }
            }
            Why::Plain(i) => self.reasons[i as usize].clone(),
        }
    }

    /// Offer `offer`'s stage and reason, if it was withheld.
    pub(crate) fn entry(&self, offer: usize) -> Option<(Stage, Reason)> {
        let code = *self.codes.get(offer)?;
        let own = &self.names.offers[offer];
        let detail = || {
            let i = self.details.binary_search_by_key(&(offer as u32), |d| d.0).ok()?;
            Some(self.reason(self.details[i].1))
        };
        let reason = match (code, self.budget) {
            (Code::Held, _) => Reason::AlreadyHeld { product: own.product.clone() },
            (Code::Extra, _) => self.eligibility(offer),
            (_, Some(why)) => self.reason(why),
            (Code::Channel, None) => Reason::ChannelNotOffered { channel: self.channel },
            (Code::History | Code::Target | Code::Suitability, None) => detail()?,
            (Code::Driven, None) => self.proxy_driven(offer),
            (Code::Passed, None) => return None,
        };
        Some((stage_of(code, self.budget.is_some()), reason))
    }

    /// The age or holdings rule offer `offer` failed, from the customer's
    /// age and holdings as the engine saw them.
    fn eligibility(&self, offer: usize) -> Reason {
        let own = &self.names.offers[offer];
        let failure = self.names.plan.as_ref().and_then(|plan| plan.extra_failure(offer, self.age, &self.held));
        // The code was recorded by the same rules on the same data, so one
        // of them fails; the fallbacks below are never reached.
        let cite = |list: &[ProductId], j: usize| list.get(j).unwrap_or(&own.product).clone();
        match failure {
            Some(Failure::Reason(reason)) => reason,
            Some(Failure::MissingRequiredHolding(j)) => {
                Reason::MissingRequiredHolding { product: cite(&own.requires, j) }
            }
            Some(Failure::ExcludedHolding(j)) => Reason::ExcludedHolding { product: cite(&own.excludes, j) },
            Some(Failure::MissingBaseProduct) | None => {
                Reason::MissingBaseProduct { product: own.base_product.clone().unwrap_or_else(|| own.product.clone()) }
            }
        }
    }

    /// Guard rule 3's reason for `offer`: the exact share, and the proxies
    /// contributing, largest first (ties by schema position).
    fn proxy_driven(&self, offer: usize) -> Reason {
        let row = self.names.models.as_ref().map_or(&[][..], |m| m.row(offer));
        let contributions = row.iter().zip(&self.d).map(|(w, d)| w * d);
        let share = crate::guard::proxy_share(contributions.clone().zip(self.is_proxy.iter().copied()));
        let mut proxies: Vec<(usize, f64)> =
            contributions.enumerate().filter(|&(i, c)| self.is_proxy[i] && c != 0.0).collect();
        proxies.sort_unstable_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        Reason::ProxyDriven {
            share,
            threshold: self.threshold,
            features: proxies.iter().map(|&(i, _)| self.names.features[i].name.clone()).collect(),
        }
    }

    fn withheld(&self, offer: usize) -> Option<Withheld> {
        let (stage, reason) = self.entry(offer)?;
        Some(Withheld { offer: self.names.offers[offer].id.clone(), stage, reason })
    }

    /// The first offer withheld from position `from` on.
    fn next_from(&self, from: usize) -> Option<(usize, Withheld)> {
        (from..self.codes.len()).find_map(|o| Some((o, self.withheld(o)?)))
    }
}

impl WithheldList {
    /// Number of offers withheld.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Owned(v) => v.len(),
            Repr::Compact(c) => c.len,
        }
    }

    /// `true` when nothing was withheld.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i`, in offer-id order. For a list written by the engine this
    /// walks the offers up to it; iterate to read them all.
    pub fn get(&self, i: usize) -> Option<Withheld> {
        match &self.repr {
            Repr::Owned(v) => v.get(i).cloned(),
            Repr::Compact(_) => self.iter().nth(i),
        }
    }

    /// The entry for offer `offer`, if it was withheld.
    pub fn find(&self, offer: &str) -> Option<Withheld> {
        match &self.repr {
            Repr::Owned(v) => v.iter().find(|w| w.offer.as_str() == offer).cloned(),
            Repr::Compact(c) => {
                // The engine's offers are in offer-id order.
                let o = c.names.offers.binary_search_by(|names| names.id.as_str().cmp(offer)).ok()?;
                c.withheld(o)
            }
        }
    }

    /// The entries, in offer-id order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { list: self, next: 0, position: 0 }
    }

    /// The entries as a vector.
    pub fn to_vec(&self) -> Vec<Withheld> {
        self.iter().collect()
    }

    /// The engine's form, started for a new audit (see [`Compact::start`]).
    pub(crate) fn compact(
        &mut self,
        names: &Arc<Names>,
        context: &Context,
        budget: Option<Reason>,
    ) -> (&mut Compact, StageCounts) {
        if let Repr::Owned(_) = self.repr {
            self.repr = Repr::Compact(Compact {
                names: Arc::clone(names),
                codes: Vec::new(),
                len: 0,
                budget: None,
                details: Vec::new(),
                reasons: Vec::new(),
                age: None,
                held: Bitset::default(),
                channel: context.channel,
                d: Vec::new(),
                is_proxy: Vec::new(),
                threshold: 0.0,
            });
        }
        match &mut self.repr {
            Repr::Compact(c) => {
                let counts = c.start(names, context, budget);
                (c, counts)
            }
            Repr::Owned(_) => unreachable!("just replaced"),
        }
    }
}

/// Iterator over a [`WithheldList`]'s entries.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a WithheldList,
    /// Entries returned so far.
    next: usize,
    /// Where the next one is looked for: a position in the list, or the
    /// offer position of the engine's form.
    position: usize,
}

impl Iterator for Iter<'_> {
    type Item = Withheld;

    fn next(&mut self) -> Option<Withheld> {
        let (position, item) = match &self.list.repr {
            Repr::Owned(v) => (self.position, v.get(self.position).cloned()?),
            Repr::Compact(c) => c.next_from(self.position)?,
        };
        self.position = position + 1;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.list.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a WithheldList {
    type Item = Withheld;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<Withheld>> for WithheldList {
    fn from(v: Vec<Withheld>) -> Self {
        WithheldList { repr: Repr::Owned(v) }
    }
}

impl FromIterator<Withheld> for WithheldList {
    fn from_iter<I: IntoIterator<Item = Withheld>>(iter: I) -> Self {
        WithheldList::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for WithheldList {
    /// Equal when the entries are, whatever the representation.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for WithheldList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for WithheldList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for WithheldList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Withheld>::deserialize(deserializer).map(WithheldList::from)
    }
}

impl JsonSchema for WithheldList {
    fn is_referenceable() -> bool {
        <Vec<Withheld>>::is_referenceable()
    }

    fn schema_name() -> String {
        <Vec<Withheld>>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Vec<Withheld>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offer: &str, reason: Reason) -> Withheld {
        Withheld { offer: offer.into(), stage: Stage::ContactPolicy, reason }
    }

    #[test]
    fn owned_lists_read_serialize_and_compare_like_vectors() {
        let v = vec![entry("a", Reason::ChannelNotOffered { channel: Channel::Sms }), entry("b", Reason::OptedOut)];
        let list = WithheldList::from(v.clone());
        assert_eq!((list.len(), list.is_empty()), (2, false));
        assert_eq!(list.to_vec(), v);
        assert_eq!(list.get(1), Some(v[1].clone()));
        assert_eq!(list.find("b"), Some(v[1].clone()));
        assert_eq!(list.find("c"), None);
        assert_eq!(serde_json::to_string(&list).unwrap(), serde_json::to_string(&v).unwrap());
        let back: WithheldList = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
        assert_eq!(back, list);
        assert_ne!(list, WithheldList::from(v[..1].to_vec()));
        assert_eq!(format!("{list:?}"), format!("{v:?}"));
        assert!(WithheldList::default().is_empty());
    }
}
