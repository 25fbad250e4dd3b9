//! Errors: configuration errors (found once, when the engine is built) are
//! kept apart from request errors (found per call).

use thiserror::Error;

use crate::catalog::{CustomerId, OfferId};

/// A catalog or engine configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The catalog has no offer.
    #[error("the catalog has no offer")]
    EmptyCatalog,
    /// The schema has no feature.
    #[error("the feature schema has no feature")]
    EmptySchema,
    /// Two features share a name.
    #[error("feature `{name}` is defined twice (positions {first} and {second})")]
    DuplicateFeature {
        /// The repeated name.
        name: String,
        /// First position.
        first: usize,
        /// Second position.
        second: usize,
    },
    /// A feature's baseline is NaN or infinite.
    #[error("feature `{name}`: baseline {value} is not a finite number")]
    NonFiniteBaseline {
        /// The feature.
        name: String,
        /// The value found.
        value: f64,
    },
    /// Two offers share an id.
    #[error("offer id `{0}` is used twice")]
    DuplicateOffer(OfferId),
    /// An offer field is out of range.
    #[error("offer `{offer}`: {field} = {value} is invalid ({expected})")]
    InvalidOfferField {
        /// The offer.
        offer: OfferId,
        /// The field, e.g. `value`.
        field: &'static str,
        /// The value found.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
    /// An offer cannot be made on any channel.
    #[error("offer `{0}` allows no channel")]
    NoChannel(OfferId),
    /// An offer's age bounds are inverted.
    #[error("offer `{offer}`: min_age {min} is above max_age {max}")]
    InvertedAgeBounds {
        /// The offer.
        offer: OfferId,
        /// Lower bound.
        min: u32,
        /// Upper bound.
        max: u32,
    },
    /// Dense weights of the wrong length.
    #[error("offer `{offer}`: {found} weights given, the schema has {expected} features")]
    WeightCount {
        /// The offer.
        offer: OfferId,
        /// Schema length.
        expected: usize,
        /// Weights given.
        found: usize,
    },
    /// A weight names a feature the schema does not have.
    #[error("offer `{offer}`: weight for unknown feature `{feature}`")]
    UnknownWeightFeature {
        /// The offer.
        offer: OfferId,
        /// The unknown name.
        feature: String,
    },
    /// A bias or weight is NaN or infinite.
    #[error("offer `{offer}`: weight of `{feature}` is {value}, not a finite number")]
    NonFiniteWeight {
        /// The offer.
        offer: OfferId,
        /// The feature (or `bias`).
        feature: String,
        /// The value found.
        value: f64,
    },
    /// A policy or guard parameter is out of range.
    #[error("parameter `{name}` = {value} is invalid ({expected})")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// The value found.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
    /// The builder was not given a catalog.
    #[error("no catalog was given to the engine builder")]
    MissingCatalog,
}

/// A request that cannot be answered; the engine stays usable.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// `k` is zero.
    #[error("k must be at least 1")]
    ZeroK,
    /// Dense features of the wrong length.
    #[error("customer `{customer}`: {found} feature values given, the schema has {expected}")]
    FeatureCount {
        /// The customer.
        customer: CustomerId,
        /// Schema length.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A named value for a feature the schema does not have.
    #[error("customer `{customer}`: unknown feature `{feature}`")]
    UnknownFeature {
        /// The customer.
        customer: CustomerId,
        /// The unknown name.
        feature: String,
    },
    /// A schema feature without a value.
    #[error("customer `{customer}`: no value for feature `{feature}`")]
    MissingFeature {
        /// The customer.
        customer: CustomerId,
        /// The missing feature.
        feature: String,
    },
    /// A feature value is NaN or infinite.
    #[error("customer `{customer}`: feature `{feature}` is {value}, not a finite number")]
    NonFiniteFeature {
        /// The customer.
        customer: CustomerId,
        /// The feature.
        feature: String,
        /// The value found.
        value: f64,
    },
    /// An inference confidence outside `[0, 1]`.
    #[error("customer `{customer}`: {field} has confidence {value}, expected a number in [0, 1]")]
    InvalidConfidence {
        /// The customer.
        customer: CustomerId,
        /// Where, e.g. `life_events[2]`.
        field: String,
        /// The value found.
        value: f64,
    },
    /// A customer-value figure out of range.
    #[error("customer `{customer}`: value.{field} is {value}, expected {expected}")]
    InvalidCustomerValue {
        /// The customer.
        customer: CustomerId,
        /// The field, e.g. `retention_rate`.
        field: &'static str,
        /// The value found.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
    /// The contact history names an offer the catalog does not have.
    #[error("customer `{customer}`: contact_history[{index}] names unknown offer `{offer}`")]
    UnknownOffer {
        /// The customer.
        customer: CustomerId,
        /// Position in the history.
        index: usize,
        /// The unknown offer.
        offer: OfferId,
    },
    /// Feature values and weights so large that a score is not a finite
    /// number.
    #[error(
        "customer `{customer}`: the score of offer `{offer}` overflows (feature values too large for its weights)"
    )]
    ScoreOverflow {
        /// The customer.
        customer: CustomerId,
        /// The offer.
        offer: OfferId,
    },
}

/// Any tactful error, for callers that handle both kinds alike.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the engine failed.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A request failed.
    #[error("request: {0}")]
    Request(#[from] RequestError),
}
