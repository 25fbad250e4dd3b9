//! The feature schema: named numeric features, their sensitivity class and
//! the human description used in explanations.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A category of special-category (GDPR art. 9 style) personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpecialCategory {
    /// Religious or philosophical beliefs.
    Religion,
    /// Racial or ethnic origin.
    Ethnicity,
    /// Health, including disability.
    Health,
    /// Sex life or sexual orientation.
    SexualOrientation,
    /// Political opinions.
    PoliticalOpinion,
    /// Trade-union membership.
    TradeUnion,
    /// Genetic or biometric data.
    Biometric,
}

impl SpecialCategory {
    /// Every special category, in declaration order.
    pub const ALL: [SpecialCategory; 7] = [
        SpecialCategory::Religion,
        SpecialCategory::Ethnicity,
        SpecialCategory::Health,
        SpecialCategory::SexualOrientation,
        SpecialCategory::PoliticalOpinion,
        SpecialCategory::TradeUnion,
        SpecialCategory::Biometric,
    ];
}

/// A life event whose inference is intrusive unless the customer declared it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LifeEvent {
    /// Pregnancy or a new child in the household.
    NewChild,
    /// Death of a close relative or partner.
    Bereavement,
    /// Serious illness of the customer or a close relative.
    SeriousIllness,
    /// Divorce or separation.
    Divorce,
    /// Loss of employment.
    JobLoss,
    /// Financial difficulty (arrears, debt collection, hardship).
    FinancialDistress,
    /// Change in household composition or family status (marriage,
    /// moving in together, children leaving home).
    FamilyStatus,
}

impl LifeEvent {
    /// Every life event, in declaration order.
    pub const ALL: [LifeEvent; 7] = [
        LifeEvent::NewChild,
        LifeEvent::Bereavement,
        LifeEvent::SeriousIllness,
        LifeEvent::Divorce,
        LifeEvent::JobLoss,
        LifeEvent::FinancialDistress,
        LifeEvent::FamilyStatus,
    ];

    /// Position in [`LifeEvent::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a `proxy` feature stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProxyTarget {
    /// Stands in for a special category.
    Special(SpecialCategory),
    /// Stands in for a life event.
    LifeEvent(LifeEvent),
}

/// How sensitive a feature is; decides how the guard treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Sensitivity {
    /// Ordinary data: used for scoring and may be cited in explanations.
    #[default]
    Ordinary,
    /// Special-category data: always masked to its baseline before scoring.
    Special(SpecialCategory),
    /// A signal of a life event: masked unless the customer declared the
    /// event and consented to its use.
    LifeEvent(LifeEvent),
    /// Looks harmless but stands in for a sensitive category or event: used
    /// for scoring, never cited, and an offer driven by such features is
    /// suppressed (guard rule 3).
    Proxy(ProxyTarget),
}

impl Sensitivity {
    /// `true` for every class except [`Sensitivity::Ordinary`]: such a
    /// feature is never cited in an explanation.
    pub fn is_sensitive(self) -> bool {
        !matches!(self, Sensitivity::Ordinary)
    }
}

/// One feature of the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Unique name, e.g. `holds_car_policy`.
    pub name: Arc<str>,
    /// Noun phrase that reads after "your" in an explanation, e.g.
    /// `car policy` gives "Suggested mainly because of your car policy".
    pub description: Arc<str>,
    /// Sensitivity class (default `ordinary`).
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// Value used when the feature is masked (default 0; a training mean is
    /// a good choice). Contributions are measured against it.
    #[serde(default)]
    pub baseline: f64,
}

impl FeatureSpec {
    /// An ordinary feature with baseline 0.
    pub fn new(name: &str, description: &str) -> Self {
        FeatureSpec {
            name: Arc::from(name),
            description: Arc::from(description),
            sensitivity: Sensitivity::Ordinary,
            baseline: 0.0,
        }
    }

    /// Sets the sensitivity class.
    #[must_use]
    pub fn sensitivity(mut self, sensitivity: Sensitivity) -> Self {
        self.sensitivity = sensitivity;
        self
    }

    /// Sets the baseline used when the feature is masked.
    #[must_use]
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = baseline;
        self
    }
}

/// The ordered list of features every customer vector and every model
/// weight vector follows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct FeatureSchema {
    /// The features, in vector order.
    pub features: Vec<FeatureSpec>,
}

impl FeatureSchema {
    /// A schema from its features, in vector order.
    pub fn new(features: Vec<FeatureSpec>) -> Self {
        FeatureSchema { features }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// `true` when the schema has no feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Position of the feature called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| &*f.name == name)
    }
}
