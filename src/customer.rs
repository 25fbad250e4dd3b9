//! The customer: features, holdings, life-event and vulnerability signals
//! with their provenance, consents and contact history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{Channel, CustomerId, OfferId, ProductId, Vulnerability};
use crate::relationship::RelationshipLevel;
use crate::schema::LifeEvent;
use crate::value::CustomerValue;

/// Where a signal about the customer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Provenance {
    /// The customer told us.
    Declared,
    /// A verified fact (e.g. a registered change of address).
    Observed,
    /// A model's guess.
    Inferred {
        /// The model's confidence, in `[0, 1]`.
        confidence: f64,
    },
}

impl Provenance {
    /// The provenance without its payload.
    pub fn kind(self) -> ProvenanceKind {
        match self {
            Provenance::Declared => ProvenanceKind::Declared,
            Provenance::Observed => ProvenanceKind::Observed,
            Provenance::Inferred { .. } => ProvenanceKind::Inferred,
        }
    }
}

/// [`Provenance`] without its payload, as reported in the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProvenanceKind {
    /// The customer told us.
    Declared,
    /// A verified fact.
    Observed,
    /// A model's guess.
    Inferred,
}

/// A signal that a life event happened or is happening.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifeEventSignal {
    /// The event.
    pub event: LifeEvent,
    /// Where the signal comes from.
    pub provenance: Provenance,
}

/// A vulnerability marker. Any provenance protects, even an inference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VulnerabilityMarker {
    /// The vulnerability.
    pub vulnerability: Vulnerability,
    /// Where the marker comes from.
    pub provenance: Provenance,
}

/// Whether the customer accepts marketing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Marketing {
    /// Marketing allowed (subject to channel consent).
    #[default]
    Allowed,
    /// The customer opted out: nothing is recommended.
    OptedOut,
}

/// Whether declared life events may be used to select offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LifeEventUse {
    /// Not consented (the default): declared events stay unused.
    #[default]
    NotConsented,
    /// The customer consented to offers based on events they declared.
    Consented,
}

/// The customer's consents. The default allows marketing on no channel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Consents {
    /// Marketing opt-in/opt-out (default `allowed`).
    #[serde(default)]
    pub marketing: Marketing,
    /// Channels the customer agreed to be contacted on.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Use of declared life events (default `not_consented`).
    #[serde(default)]
    pub life_event_use: LifeEventUse,
}

/// What happened when an offer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContactOutcome {
    /// Shown, no reaction.
    Shown,
    /// Shown and dismissed by the customer.
    Dismissed,
    /// Shown and accepted.
    Accepted,
}

/// One past contact. Every outcome counts as a contact made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The offer made.
    pub offer: OfferId,
    /// When (UTC). Contacts after the request's `now` are not yet known
    /// and are not counted.
    pub at: DateTime<Utc>,
    /// Channel used, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// What happened.
    pub outcome: ContactOutcome,
}

/// Feature values, either one per schema feature in order, or by name
/// (every schema feature must be given).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FeatureValues {
    /// One value per feature, in schema order.
    Dense(Vec<f64>),
    /// Values by feature name.
    ByName(BTreeMap<String, f64>),
}

impl<'de> Deserialize<'de> for FeatureValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::values::dense_or_named(deserializer, FeatureValues::Dense, FeatureValues::ByName)
    }
}

impl Default for FeatureValues {
    fn default() -> Self {
        FeatureValues::Dense(Vec::new())
    }
}

/// Everything the engine knows about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Unique id.
    pub id: CustomerId,
    /// Age in whole years, if known. Offers with age bounds are not
    /// eligible when it is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    /// Feature values over the catalog's schema.
    pub features: FeatureValues,
    /// Products held.
    #[serde(default)]
    pub holdings: Vec<ProductId>,
    /// Life-event signals with their provenance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub life_events: Vec<LifeEventSignal>,
    /// Vulnerability markers with their provenance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<VulnerabilityMarker>,
    /// Consents.
    #[serde(default)]
    pub consents: Consents,
    /// Past contacts, any order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_history: Vec<Contact>,
    /// Relationship level; absent: the plain contact policy applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<RelationshipLevel>,
    /// What the customer is worth; absent: offers are weighed by their own
    /// value only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<CustomerValue>,
}

impl Customer {
    /// A customer with only an id and feature values, and the defaults of
    /// the JSON format for everything else: age unknown, no holdings,
    /// signals, markers or contacts, default consents (marketing allowed,
    /// no channel, life-event use not consented), no relationship level
    /// and no value figures.
    ///
    /// ```
    /// # use tactful::{Customer, FeatureValues};
    /// let c = Customer { age: Some(40), ..Customer::new("C-1", FeatureValues::Dense(vec![1.0, 0.5])) };
    /// let json: Customer = serde_json::from_str(r#"{"id": "C-1", "age": 40, "features": [1.0, 0.5]}"#)?;
    /// assert_eq!(c, json);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn new(id: impl Into<CustomerId>, features: FeatureValues) -> Customer {
        Customer {
            id: id.into(),
            age: None,
            features,
            holdings: Vec::new(),
            life_events: Vec::new(),
            vulnerabilities: Vec::new(),
            consents: Consents::default(),
            contact_history: Vec::new(),
            relationship: None,
            value: None,
        }
    }

    /// `true` when the customer holds `product`.
    pub fn holds(&self, product: &ProductId) -> bool {
        self.holdings.contains(product)
    }
}

/// One ranking request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The decision time; contact windows are measured back from it.
    pub now: DateTime<Utc>,
    /// The channel the offers will be made on.
    pub channel: Channel,
    /// How many offers to return at most (`>= 1`).
    pub k: usize,
}
