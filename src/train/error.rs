//! Errors of training, encoding and auditing. Rows are 0-based positions
//! in the records array given; columns are named.

use thiserror::Error;

use crate::catalog::ProductId;

/// Why a model could not be trained, data encoded or an audit run.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The training schema has no column.
    #[error("the training schema has no column")]
    EmptySchema,
    /// Two columns, or two expanded features, share a name.
    #[error("name `{name}` is used twice in the training schema")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A categorical column declares no level.
    #[error("categorical column `{column}` declares no level")]
    NoLevels {
        /// The column.
        column: String,
    },
    /// A categorical column declares the same level code twice.
    #[error("categorical column `{column}` declares level {code} twice")]
    DuplicateLevel {
        /// The column.
        column: String,
        /// The repeated code.
        code: i64,
    },
    /// The records have the wrong number of columns.
    #[error("the records have {found} columns, the schema expects {expected}")]
    ColumnCount {
        /// Columns the schema (or model) expects.
        expected: usize,
        /// Columns found.
        found: usize,
    },
    /// Too few rows to standardise and fit.
    #[error("{found} rows given, at least {needed} are needed")]
    TooFewRows {
        /// Rows needed.
        needed: usize,
        /// Rows given.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("row {row}, column `{column}`: {value} is not a finite number")]
    NonFinite {
        /// Row (0-based).
        row: usize,
        /// Column or feature name.
        column: String,
        /// The value found.
        value: f64,
    },
    /// A categorical value that is not one of the declared level codes.
    #[error("row {row}, column `{column}`: {value} is not a declared level")]
    UnknownLevel {
        /// Row (0-based).
        row: usize,
        /// The column.
        column: String,
        /// The value found.
        value: f64,
    },
    /// A target's labels do not match the number of rows.
    #[error("product `{product}`: {found} labels for {expected} rows")]
    LabelCount {
        /// The product.
        product: ProductId,
        /// Rows.
        expected: usize,
        /// Labels given.
        found: usize,
    },
    /// A target has no positive or no negative example.
    #[error("product `{product}`: {positives} positive and {negatives} negative examples; both classes are needed")]
    SingleClass {
        /// The product.
        product: ProductId,
        /// Positive examples.
        positives: usize,
        /// Negative examples.
        negatives: usize,
    },
    /// A target excludes a column the schema does not have.
    #[error("product `{product}`: excluded column `{column}` is not in the training schema")]
    UnknownColumn {
        /// The product.
        product: ProductId,
        /// The unknown column.
        column: String,
    },
    /// Nothing is left for the learner once sensitive, constant and
    /// excluded features are removed.
    #[error("product `{product}`: no feature is left for the learner")]
    NoLearnerFeature {
        /// The product.
        product: ProductId,
    },
    /// A training or audit parameter is out of range.
    #[error("parameter `{name}` = {value} is invalid ({expected})")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// The value found.
        value: f64,
        /// What is expected.
        expected: &'static str,
    },
    /// linfa-logistic failed.
    #[error("product `{product}`: the logistic learner failed: {message}")]
    Learner {
        /// The product.
        product: ProductId,
        /// linfa's message.
        message: String,
    },
    /// The fitted weights are not finite (the data are too badly scaled).
    #[error("product `{product}`: the fitted model has a non-finite weight for `{feature}`")]
    NonFiniteModel {
        /// The product.
        product: ProductId,
        /// The feature (or `bias`).
        feature: String,
    },
    /// No trained model for this product.
    #[error("no trained model for product `{0}`")]
    UnknownProduct(ProductId),
    /// A model weighs a feature the schema does not have.
    #[error("weight for unknown feature `{feature}`")]
    UnknownFeature {
        /// The feature.
        feature: String,
    },
}
