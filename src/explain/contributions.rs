//! An explanation's cited contributions, stored compactly.
//!
//! A decision cites a few features per recommendation. Had each entry its
//! own `Arc<str>` names, rewriting a reused decision for another customer
//! would cost two atomic reference-count updates per name changed, which
//! was most of what distinct customers cost over one. The engine's form
//! keeps positions into the workspace's copy of the schema instead, and
//! one handle to it, which stays the same from one decision to the next;
//! entries are built when read.

use std::fmt;
use std::sync::Arc;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Contribution;
use crate::schema::FeatureSpec;
use crate::workspace::Names;

/// The contributions an [`Explanation`](super::Explanation) cites, largest
/// first by absolute size.
///
/// Entries are built when read: [`Contributions::iter`] and
/// [`Contributions::get`] return owned [`Contribution`] values (which share
/// their names with the decision). Serialized, it is a JSON list of
/// [`Contribution`] objects.
///
/// ```
/// # use tactful::{Catalog, Customer, Engine, Request};
/// # let catalog: Catalog = serde_json::from_str(include_str!("../../examples/data/catalog.json"))?;
/// # let engine = Engine::new(catalog)?;
/// # let customer: Customer = serde_json::from_str(r#"{"id": "C-1", "age": 41, "features": [6, 12, 1.8, 1, 1, 0.6, 3, 2, 1],
/// #     "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#)?;
/// # let request: Request = serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#)?;
/// let decision = engine.recommend(&customer, &request)?;
/// let best = &decision.recommendations[0].explanation;
/// for c in &best.contributions {
///     println!("{:+.3} log-odds from {} ({})", c.contribution, c.feature, c.description);
/// }
/// assert!(best.contributions.iter().all(|c| c.contribution != 0.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Contributions {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Built from values (deserialized, or made by hand).
    Owned(Vec<Contribution>),
    /// Written by the engine: positions in `names.features`.
    Cited { names: Arc<Names>, items: Vec<Cited> },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Owned(Vec::new())
    }
}

/// One contribution of the engine's form: the feature's schema position
/// and the figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cited {
    pub(crate) feature: usize,
    pub(crate) value: f64,
    pub(crate) weight: f64,
    pub(crate) contribution: f64,
}

/// One entry, borrowing its names.
#[derive(Serialize)]
struct View<'a> {
    feature: &'a str,
    description: &'a str,
    value: f64,
    weight: f64,
    contribution: f64,
}

impl Contributions {
    /// Number of contributions.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Owned(v) => v.len(),
            Repr::Cited { items, .. } => items.len(),
        }
    }

    /// `true` when no feature is cited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Contribution `i` (0 is the largest).
    pub fn get(&self, i: usize) -> Option<Contribution> {
        match &self.repr {
            Repr::Owned(v) => v.get(i).cloned(),
            Repr::Cited { names, items } => items.get(i).map(|c| {
                let spec = &names.features[c.feature];
                Contribution {
                    feature: Arc::clone(&spec.name),
                    description: Arc::clone(&spec.description),
                    value: c.value,
                    weight: c.weight,
                    contribution: c.contribution,
                }
            }),
        }
    }

    /// The contributions, largest first.
    pub fn iter(&self) -> Iter<'_> {
        Iter { list: self, next: 0, end: self.len() }
    }

    /// The contributions as a vector.
    pub fn to_vec(&self) -> Vec<Contribution> {
        self.iter().collect()
    }

    /// Each entry's `(description, contribution)`, without building it.
    pub(crate) fn descriptions(&self) -> Descriptions<'_> {
        match &self.repr {
            Repr::Owned(v) => Descriptions::Owned(v.iter()),
            Repr::Cited { names, items } => Descriptions::Cited(&names.features, items.iter()),
        }
    }

    /// Entry `i` (in range), borrowing its names.
    fn view(&self, i: usize) -> View<'_> {
        match &self.repr {
            Repr::Owned(v) => {
                let c = &v[i];
                View {
                    feature: &c.feature,
                    description: &c.description,
                    value: c.value,
                    weight: c.weight,
                    contribution: c.contribution,
                }
            }
            Repr::Cited { names, items } => {
                let (c, spec) = (&items[i], &names.features[items[i].feature]);
                View {
                    feature: &spec.name,
                    description: &spec.description,
                    value: c.value,
                    weight: c.weight,
                    contribution: c.contribution,
                }
            }
        }
    }

    /// Overwrites the list with `items`, citing `names`, reusing its
    /// allocation; the handle is replaced only when it changes.
    pub(crate) fn set(&mut self, names: &Arc<Names>, items: impl Iterator<Item = Cited>) {
        match &mut self.repr {
            Repr::Cited { names: held, items: list } => {
                if !Arc::ptr_eq(held, names) {
                    *held = Arc::clone(names);
                }
                list.clear();
                list.extend(items);
            }
            Repr::Owned(_) => self.repr = Repr::Cited { names: Arc::clone(names), items: items.collect() },
        }
    }
}

/// See [`Contributions::descriptions`].
#[derive(Clone)]
pub(crate) enum Descriptions<'a> {
    Owned(std::slice::Iter<'a, Contribution>),
    Cited(&'a [FeatureSpec], std::slice::Iter<'a, Cited>),
}

impl<'a> Iterator for Descriptions<'a> {
    type Item = (&'a str, f64);

    fn next(&mut self) -> Option<(&'a str, f64)> {
        match self {
            Descriptions::Owned(it) => it.next().map(|c| (&*c.description, c.contribution)),
            Descriptions::Cited(features, it) => it.next().map(|c| (&*features[c.feature].description, c.contribution)),
        }
    }
}

/// Iterator over [`Contributions`].
#[derive(Clone)]
pub struct Iter<'a> {
    list: &'a Contributions,
    next: usize,
    end: usize,
}

impl Iterator for Iter<'_> {
    type Item = Contribution;

    fn next(&mut self) -> Option<Contribution> {
        if self.next == self.end {
            return None;
        }
        self.next += 1;
        self.list.get(self.next - 1)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Contribution> {
        if self.next == self.end {
            return None;
        }
        self.end -= 1;
        self.list.get(self.end)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Contributions {
    type Item = Contribution;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<Contribution>> for Contributions {
    fn from(v: Vec<Contribution>) -> Self {
        Contributions { repr: Repr::Owned(v) }
    }
}

impl FromIterator<Contribution> for Contributions {
    fn from_iter<I: IntoIterator<Item = Contribution>>(iter: I) -> Self {
        Contributions::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for Contributions {
    /// Equal when the entries are, whatever the representation.
    fn eq(&self, other: &Self) -> bool {
        let same = |i| {
            let (a, b) = (self.view(i), other.view(i));
            (a.feature, a.description, a.value, a.weight, a.contribution)
                == (b.feature, b.description, b.value, b.weight, b.contribution)
        };
        self.len() == other.len() && (0..self.len()).all(same)
    }
}

impl fmt::Debug for Contributions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Contributions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.len()).map(|i| self.view(i)))
    }
}

impl<'de> Deserialize<'de> for Contributions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Contribution>::deserialize(deserializer).map(Contributions::from)
    }
}

impl JsonSchema for Contributions {
    fn is_referenceable() -> bool {
        <Vec<Contribution>>::is_referenceable()
    }

    fn schema_name() -> String {
        <Vec<Contribution>>::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        <Vec<Contribution>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(feature: &str, description: &str, contribution: f64) -> Contribution {
        Contribution {
            feature: Arc::from(feature),
            description: Arc::from(description),
            value: 2.0,
            weight: contribution / 2.0,
            contribution,
        }
    }

    fn names() -> Arc<Names> {
        let features = vec![FeatureSpec::new("a", "apples"), FeatureSpec::new("b", "bananas")];
        Arc::new(Names { features, ..Names::default() })
    }

    fn cited(feature: usize, contribution: f64) -> Cited {
        Cited { feature, value: 2.0, weight: contribution / 2.0, contribution }
    }

    #[test]
    fn owned_lists_read_serialize_and_compare_like_vectors() {
        let v = vec![owned("a", "apples", 0.5), owned("b", "bananas", -0.25)];
        let list = Contributions::from(v.clone());
        assert_eq!((list.len(), list.is_empty()), (2, false));
        assert_eq!(list.to_vec(), v);
        assert_eq!(list.get(1), Some(v[1].clone()));
        assert_eq!(list.get(2), None);
        assert_eq!(list.iter().rev().collect::<Vec<_>>(), [v[1].clone(), v[0].clone()]);
        assert_eq!(list.iter().len(), 2);
        assert_eq!(serde_json::to_string(&list).unwrap(), serde_json::to_string(&v).unwrap());
        let back: Contributions = serde_json::from_str(&serde_json::to_string(&list).unwrap()).unwrap();
        assert_eq!(back, list);
        assert_ne!(list, Contributions::from(v[..1].to_vec()));
        assert_ne!(list, Contributions::from(vec![v[0].clone(), owned("b", "bananas", -0.5)]));
        assert_eq!(format!("{list:?}"), format!("{v:?}"));
        assert!(Contributions::default().is_empty());
    }

    /// The engine's form reads, serializes and compares as the list of
    /// the entries it stands for.
    #[test]
    fn the_engines_form_stands_for_its_entries() {
        let names = names();
        let mut list = Contributions::default();
        list.set(&names, [cited(1, 0.5), cited(0, -0.25)].into_iter());
        let expected = Contributions::from(vec![owned("b", "bananas", 0.5), owned("a", "apples", -0.25)]);
        assert_eq!(list, expected);
        assert_eq!(expected, list);
        assert_eq!(list.to_vec(), expected.to_vec());
        assert_eq!(list.get(1), expected.get(1));
        assert_eq!(serde_json::to_string(&list).unwrap(), serde_json::to_string(&expected).unwrap());
        assert_eq!(format!("{list:?}"), format!("{expected:?}"));
        assert_eq!(list.descriptions().collect::<Vec<_>>(), [("bananas", 0.5), ("apples", -0.25)]);
        // Entries share the names they cite.
        assert!(Arc::ptr_eq(&list.get(0).unwrap().feature, &names.features[1].name));
    }

    /// Rewriting a list for another decision keeps its handle when the
    /// names are the same (no reference-count update) and its allocation.
    #[test]
    fn rewriting_keeps_the_handle_and_the_allocation() {
        let names = names();
        let mut list = Contributions::default();
        list.set(&names, [cited(0, 1.0), cited(1, 1.0)].into_iter());
        let count = Arc::strong_count(&names);
        list.set(&names, [cited(1, -1.0)].into_iter());
        assert_eq!(Arc::strong_count(&names), count);
        assert_eq!(list.to_vec(), [owned("b", "bananas", -1.0)]);
        let other = self::names();
        list.set(&other, std::iter::empty());
        assert_eq!((Arc::strong_count(&names), Arc::strong_count(&other)), (count - 1, 2));
        assert!(list.is_empty());
        // A hand-made list becomes the engine's form.
        let mut list = Contributions::from(vec![owned("x", "xylophones", 3.0)]);
        list.set(&names, [cited(0, 1.0)].into_iter());
        assert_eq!(list.to_vec(), [owned("a", "apples", 1.0)]);
    }
}
