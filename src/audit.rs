//! The audit of a decision: every offer withheld, with the first rule it
//! failed, stored compactly.
//!
//! A decision withholds hundreds of offers when the catalog is large, and
//! most services log the audit rather than read it. The engine therefore
//! records each withheld offer as its position, its stage and the rule's
//! few customer-specific values; the names it cites (offer ids, products,
//! proxy features) are looked up in the workspace's copy of the engine's
//! names only when an entry is read or serialized. A proxy-driven offer's
//! share and proxies are worked out when read, too, from the decision's
//! copy of the customer's centred features and the engine's weights: the
//! same f64 arithmetic the guard uses. Serialized, it is a list of
//! [`Withheld`] objects.

use std::fmt;
use std::sync::Arc;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::Channel;
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

/// The engine's form: small entries naming offers and products by
/// position, with the few reasons that carry values kept aside.
#[derive(Clone)]
pub(crate) struct Compact {
    names: Arc<Names>,
    entries: Vec<Entry>,
    /// Reasons of [`Why::Plain`] entries.
    reasons: Vec<Reason>,
    /// For [`Why::ProxyDriven`] entries: the customer's centred, masked
    /// features, which of them count as proxies, and the guard's threshold.
    d: Vec<f64>,
    is_proxy: Vec<bool>,
    threshold: f64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    offer: u32,
    stage: Stage,
    why: Why,
}

/// A withheld offer's reason, with its names left as positions and any
/// values kept aside (16 bytes an entry, so that writing hundreds is cheap).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Why {
    /// The offer's product is held.
    AlreadyHeld,
    /// The offer's base product is not held.
    MissingBaseProduct,
    /// The offer's `requires[j]` is not held.
    MissingRequiredHolding(u32),
    /// The offer's `excludes[j]` is held.
    ExcludedHolding(u32),
    /// The offer is not made on the channel.
    ChannelNotOffered(Channel),
    /// Guard rule 1, with the provenance bits found.
    NotDeclared(LifeEvent, u8),
    /// Guard rule 3; the share and proxies are computed when read.
    ProxyDriven,
    /// Any other reason: an index into [`Compact`]'s reasons.
    Plain(u32),
}

impl Compact {
    /// Starts a new audit citing `names`.
    pub(crate) fn start(&mut self, names: &Arc<Names>) {
        if !Arc::ptr_eq(&self.names, names) {
            self.names = Arc::clone(names);
        }
        self.entries.clear();
        self.reasons.clear();
        self.d.clear();
        self.is_proxy.clear();
    }

    /// Keeps what proxy-driven entries are worked out from: the customer's
    /// centred, masked features `d`, which count as proxies, and the
    /// guard's threshold.
    pub(crate) fn proxy_inputs(&mut self, d: &[f64], is_proxy: &[bool], threshold: f64) {
        self.d.extend_from_slice(d);
        self.is_proxy.extend_from_slice(is_proxy);
        self.threshold = threshold;
    }

    /// Appends offer `offer`, withheld at `stage` because of `why`.
    pub(crate) fn push(&mut self, offer: usize, stage: Stage, why: Why) {
        self.entries.push(Entry { offer: offer as u32, stage, why });
    }

    /// Keeps `reason` aside for [`Why::Plain`] entries.
    pub(crate) fn plain(&mut self, reason: Reason) -> Why {
        self.reasons.push(reason);
        Why::Plain(self.reasons.len() as u32 - 1)
    }

    /// The reason `why` stands for, for offer `offer`.
    pub(crate) fn reason(&self, offer: usize, why: Why) -> Reason {
        let own = &self.names.offers[offer];
        match why {
            Why::AlreadyHeld => Reason::AlreadyHeld { product: own.product.clone() },
            // The engine records these only when the offer has the product.
            Why::MissingBaseProduct => {
                Reason::MissingBaseProduct { product: own.base_product.clone().unwrap_or_else(|| own.product.clone()) }
            }
            Why::MissingRequiredHolding(j) => {
                Reason::MissingRequiredHolding { product: own.requires[j as usize].clone() }
            }
            Why::ExcludedHolding(j) => Reason::ExcludedHolding { product: own.excludes[j as usize].clone() },
            Why::ChannelNotOffered(channel) => Reason::ChannelNotOffered { channel },
            Why::NotDeclared(event, bits) => {
                Reason::LifeEventNotDeclared { event, found: crate::guard::provenances(bits).collect() }
            }
            Why::ProxyDriven => self.proxy_driven(offer),
            Why::Plain(i) => self.reasons[i as usize].clone(),
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

    fn withheld(&self, e: &Entry) -> Withheld {
        let offer = e.offer as usize;
        Withheld { offer: self.names.offers[offer].id.clone(), stage: e.stage, reason: self.reason(offer, e.why) }
    }
}

impl WithheldList {
    /// Number of offers withheld.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Owned(v) => v.len(),
            Repr::Compact(c) => c.entries.len(),
        }
    }

    /// `true` when nothing was withheld.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i`, in offer-id order.
    pub fn get(&self, i: usize) -> Option<Withheld> {
        match &self.repr {
            Repr::Owned(v) => v.get(i).cloned(),
            Repr::Compact(c) => c.entries.get(i).map(|e| c.withheld(e)),
        }
    }

    /// The entry for offer `offer`, if it was withheld.
    pub fn find(&self, offer: &str) -> Option<Withheld> {
        match &self.repr {
            Repr::Owned(v) => v.iter().find(|w| w.offer.as_str() == offer).cloned(),
            Repr::Compact(c) => {
                c.entries.iter().find(|e| c.names.offers[e.offer as usize].id.as_str() == offer).map(|e| c.withheld(e))
            }
        }
    }

    /// The entries, in offer-id order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { list: self, next: 0 }
    }

    /// The entries as a vector.
    pub fn to_vec(&self) -> Vec<Withheld> {
        self.iter().collect()
    }

    /// The engine's form, emptied for a new audit.
    pub(crate) fn compact(&mut self, names: &Arc<Names>) -> &mut Compact {
        if let Repr::Owned(_) = self.repr {
            let empty = Compact {
                names: Arc::clone(names),
                entries: Vec::new(),
                reasons: Vec::new(),
                d: Vec::new(),
                is_proxy: Vec::new(),
                threshold: 0.0,
            };
            self.repr = Repr::Compact(empty);
        }
        match &mut self.repr {
            Repr::Compact(c) => {
                c.start(names);
                c
            }
            Repr::Owned(_) => unreachable!("just replaced"),
        }
    }
}

/// Iterator over a [`WithheldList`]'s entries.
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a WithheldList,
    next: usize,
}

impl Iterator for Iter<'_> {
    type Item = Withheld;

    fn next(&mut self) -> Option<Withheld> {
        let item = self.list.get(self.next)?;
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
