//! The offer catalog: what can be offered, to whom, through which channel,
//! and the propensity model of each offer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{FeatureSchema, LifeEvent};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone (a reference-counted string).
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Arc<str>);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(Arc::from(s))
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(Arc::from(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Identifies an offer in the catalog.
    OfferId
);
string_id!(
    /// Identifies a product a customer can hold (several offers may sell
    /// the same product).
    ProductId
);
string_id!(
    /// Identifies a customer.
    CustomerId
);

/// A contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Channel {
    /// E-mail (outbound).
    Email,
    /// Text message (outbound).
    Sms,
    /// Telephone call (outbound).
    Phone,
    /// Letter (outbound).
    Post,
    /// In-app message shown when the customer opens the app (inbound).
    App,
    /// Web site, shown while the customer is logged in (inbound).
    Web,
    /// Branch or call-centre conversation the customer started (inbound).
    Branch,
}

impl Channel {
    /// Every channel, in declaration order.
    pub const ALL: [Channel; 7] =
        [Channel::Email, Channel::Sms, Channel::Phone, Channel::Post, Channel::App, Channel::Web, Channel::Branch];
}

/// Why the offer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OfferKind {
    /// A product the customer does not hold yet.
    CrossSell,
    /// A better version of a product the customer holds (its base product).
    UpSell,
    /// Keeps a customer who may leave.
    Retention,
}

/// A vulnerability for which some offers must never be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Vulnerability {
    /// Arrears, debt collection, hardship.
    FinancialDistress,
    /// Serious illness.
    SeriousIllness,
    /// Recent bereavement.
    Bereavement,
    /// Gambling problem.
    Gambling,
    /// Reduced capacity to make financial decisions.
    ReducedCapacity,
    /// Recent loss of employment.
    JobLoss,
}

impl Vulnerability {
    /// Every vulnerability, in declaration order.
    pub const ALL: [Vulnerability; 6] = [
        Vulnerability::FinancialDistress,
        Vulnerability::SeriousIllness,
        Vulnerability::Bereavement,
        Vulnerability::Gambling,
        Vulnerability::ReducedCapacity,
        Vulnerability::JobLoss,
    ];
}

/// Who may receive an offer. Empty lists and absent bounds mean "no rule".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRules {
    /// Minimum age in whole years, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<u32>,
    /// Maximum age in whole years, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// For an up-sell: the product the customer must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_product: Option<ProductId>,
    /// Products the customer must all hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<ProductId>,
    /// Products none of which the customer may hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<ProductId>,
}

/// Model weights, either one per schema feature in order, or by feature
/// name (absent names weigh 0). Hand-written and trained models use the
/// same format.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Weights {
    /// One weight per feature, in schema order.
    Dense(Vec<f64>),
    /// Weights by feature name; features not named weigh 0.
    ByName(BTreeMap<String, f64>),
}

impl<'de> Deserialize<'de> for Weights {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::values::dense_or_named(deserializer, Weights::Dense, Weights::ByName)
    }
}

impl Default for Weights {
    fn default() -> Self {
        Weights::ByName(BTreeMap::new())
    }
}

/// A logistic propensity model: `p = 1 / (1 + exp(-(bias + Σ wᵢ·xᵢ)))`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PropensityModel {
    /// Intercept, in log-odds.
    pub bias: f64,
    /// Weights over the schema's features, in log-odds per unit.
    #[serde(default)]
    pub weights: Weights,
}

impl PropensityModel {
    /// A model with one weight per schema feature, in schema order.
    pub fn dense(bias: f64, weights: impl Into<Vec<f64>>) -> Self {
        PropensityModel { bias, weights: Weights::Dense(weights.into()) }
    }

    /// A model with weights by feature name; features not named weigh 0.
    ///
    /// ```
    /// # use tactful::PropensityModel;
    /// let model = PropensityModel::by_name(-2.0, [("tenure_years", 0.1), ("savings", 0.4)]);
    /// assert_eq!(model.bias, -2.0);
    /// ```
    pub fn by_name<N: Into<String>>(bias: f64, weights: impl IntoIterator<Item = (N, f64)>) -> Self {
        PropensityModel { bias, weights: Weights::ByName(weights.into_iter().map(|(n, w)| (n.into(), w)).collect()) }
    }
}

fn default_weight() -> f64 {
    1.0
}

/// One offer of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Offer {
    /// Unique id.
    pub id: OfferId,
    /// The product sold; a customer holding it is not eligible.
    pub product: ProductId,
    /// Cross-sell, up-sell or retention.
    pub kind: OfferKind,
    /// Business value if accepted (e.g. expected margin, in the currency
    /// unit of your choice; only ratios between offers matter). `>= 0`.
    pub value: f64,
    /// Business lever multiplying the priority (default 1). `>= 0`.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Channels through which the offer may be made.
    pub channels: Vec<Channel>,
    /// Who may receive it.
    #[serde(default)]
    pub eligibility: EligibilityRules,
    /// Life events the offer is aimed at; shown only to customers who
    /// declared every one of them and consented to their use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<LifeEvent>,
    /// Vulnerabilities for which the offer must never be shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsuitable_for: Vec<Vulnerability>,
    /// Product family (e.g. `credit`): dismissals of any offer of the
    /// family lower the propensity of all of them for a while. Default: the
    /// offer's product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Propensity model over the catalog's schema.
    pub model: PropensityModel,
}

/// Usually read from the catalog's JSON. In Rust, [`Offer::new`] takes the
/// fields the format requires and gives the others their defaults; the
/// `with_*` methods set those. (`Offer` is `#[non_exhaustive]`, so that new
/// optional fields are not breaking changes.)
impl Offer {
    /// An offer with the format's defaults for the optional fields: weight
    /// 1, no eligibility rules, no life-event targets, suitable for every
    /// vulnerability, and its product as its family.
    ///
    /// The values are checked when the engine is built (e.g. a negative
    /// value is a [`ConfigError`](crate::ConfigError) naming the offer),
    /// not here.
    ///
    /// ```
    /// # use tactful::{Channel, EligibilityRules, Offer, OfferKind, PropensityModel};
    /// let offer = Offer::new(
    ///     "travel_insurance",
    ///     "travel_insurance",
    ///     OfferKind::CrossSell,
    ///     40.0,
    ///     [Channel::Email, Channel::App],
    ///     PropensityModel::by_name(-1.5, [("trips_per_year", 0.3)]),
    /// )
    /// .with_eligibility(EligibilityRules { min_age: Some(18), ..Default::default() });
    /// assert_eq!((offer.weight, offer.eligibility.min_age), (1.0, Some(18)));
    /// ```
    pub fn new(
        id: impl Into<OfferId>,
        product: impl Into<ProductId>,
        kind: OfferKind,
        value: f64,
        channels: impl IntoIterator<Item = Channel>,
        model: PropensityModel,
    ) -> Self {
        Offer {
            id: id.into(),
            product: product.into(),
            kind,
            value,
            weight: default_weight(),
            channels: channels.into_iter().collect(),
            eligibility: EligibilityRules::default(),
            targets: Vec::new(),
            unsuitable_for: Vec::new(),
            family: None,
            model,
        }
    }

    /// Sets the business lever multiplying the priority.
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets who may receive the offer.
    pub fn with_eligibility(mut self, eligibility: EligibilityRules) -> Self {
        self.eligibility = eligibility;
        self
    }

    /// Sets the life events the offer is aimed at.
    pub fn with_targets(mut self, targets: impl IntoIterator<Item = LifeEvent>) -> Self {
        self.targets = targets.into_iter().collect();
        self
    }

    /// Sets the vulnerabilities for which the offer must never be shown.
    pub fn with_unsuitable_for(mut self, vulnerabilities: impl IntoIterator<Item = Vulnerability>) -> Self {
        self.unsuitable_for = vulnerabilities.into_iter().collect();
        self
    }

    /// Sets the product family.
    pub fn with_family(mut self, family: impl Into<String>) -> Self {
        self.family = Some(family.into());
        self
    }
}

/// A feature schema and the offers scored over it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Features every customer provides and every model weighs.
    pub schema: FeatureSchema,
    /// The offers.
    pub offers: Vec<Offer>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Offer::new` gives the optional fields the defaults the JSON format
    /// gives them, and each `with_*` sets its own field only.
    #[test]
    fn new_offers_have_the_formats_defaults() {
        let json = r#"{"id": "o", "product": "p", "kind": "up_sell", "value": 5.0, "channels": ["sms", "web"],
            "model": {"bias": -1.0, "weights": {"a": 0.5}}}"#;
        let read: Offer = serde_json::from_str(json).unwrap();
        let model = PropensityModel::by_name(-1.0, [("a", 0.5)]);
        let made = Offer::new("o", "p", OfferKind::UpSell, 5.0, [Channel::Sms, Channel::Web], model);
        assert_eq!(made, read);
        let rules = EligibilityRules { max_age: Some(70), ..EligibilityRules::default() };
        let full = made
            .clone()
            .with_weight(2.0)
            .with_eligibility(rules.clone())
            .with_targets([LifeEvent::NewChild])
            .with_unsuitable_for([Vulnerability::Gambling])
            .with_family("credit");
        let expected = Offer {
            weight: 2.0,
            eligibility: rules,
            targets: vec![LifeEvent::NewChild],
            unsuitable_for: vec![Vulnerability::Gambling],
            family: Some("credit".to_owned()),
            ..made
        };
        assert_eq!(full, expected);
        let dense = PropensityModel::dense(0.5, [1.0, -2.0]);
        assert_eq!(dense, PropensityModel { bias: 0.5, weights: Weights::Dense(vec![1.0, -2.0]) });
    }
}
