//! Training: one logistic propensity model per product, fitted with
//! linfa-logistic, in the catalog's own [`PropensityModel`] format.
//!
//! 1. A [`TrainingSchema`] describes the raw columns; the [`Encoder`]
//!    one-hot encodes categorical columns into the engine's
//!    [`FeatureSchema`], each level carrying its column's sensitivity
//!    unless it declares its own.
//! 2. The learner sees only allowed features: never `special` ones,
//!    `life_event` ones only with [`LifeEventFeatures::Include`], never
//!    constant ones, and never the columns a [`Target`] excludes (e.g. the
//!    product's own holding columns). Excluded features weigh 0, so the
//!    engine's masking of sensitive features does not change the score.
//! 3. Allowed features are standardised, positives are up-weighted
//!    ([`ClassWeight`]) and linfa fits an L2-regularised logistic
//!    regression.
//! 4. The fit is mapped back to the raw feature scale
//!    (`w = w_std / std`, `bias = b_std − Σ w·mean − ln k` for a positive
//!    weight `k`, the prior correction that undoes the up-weighting), so
//!    scores are calibrated probabilities, and each feature's baseline is
//!    its training mean.
//!
//! linfa labels the *more frequent* class as its positive class, so with
//! rare holders `predict_probabilities` returns P(not a holder). The fit
//! reads linfa's label mapping and flips the signs when needed
//! ([`FitSummary::orientation_flipped`]).
//!
//! ```
//! use ndarray::{array, Array1};
//! use tactful::train::{Column, Target, TrainParams, TrainingSchema};
//!
//! let schema = TrainingSchema::new(vec![Column::numeric("tenure", "tenure")]);
//! let records = array![[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]];
//! let holds: Array1<bool> = array![false, false, true, false, true, true];
//! let trained = TrainParams::default().check()?.fit(&schema, records.view(), &[Target::new("card", holds.view())])?;
//! let p = trained.predict("card", trained.encoder().encode(array![[1.0], [6.0]].view())?.view())?;
//! assert!(p[1] > p[0]);
//! # Ok::<(), tactful::train::TrainError>(())
//! ```

mod columns;
mod error;

use std::collections::BTreeMap;

use linfa::traits::Fit;
use linfa::ParamGuard as _;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use columns::{Column, ColumnKind, Encoder, Level, TrainingSchema};
pub use error::TrainError;

use crate::catalog::{ProductId, PropensityModel, Weights};
use crate::model::sigmoid;
use crate::schema::{FeatureSchema, Sensitivity};

/// How positive examples are weighted against negative ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClassWeight {
    /// Every example weighs 1.
    Unweighted,
    /// Positives weigh `max(1, round(negatives / positives))`, so both
    /// classes weigh about the same (default).
    Balanced,
    /// Positives weigh this integer factor (at least 1).
    Positive(u32),
}

/// Whether `life_event` features are given to the learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LifeEventFeatures {
    /// Kept from the learner (default): the model never depends on them.
    Exclude,
    /// Given to the learner. The engine still masks them unless the
    /// customer declared the event with consent, so engine scores then
    /// differ from [`TrainedModels::predict`].
    Include,
}

/// Training parameters, unchecked; [`TrainParams::check`] validates them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// L2 penalty λ on the standardised weights: the learner minimises the
    /// mean weighted log-loss plus `λ/2 · ‖w‖²` (linfa's `alpha` is λ times
    /// the total weight). Finite and `>= 0`; default 0.1, strong because
    /// marketing data are noisy and their columns correlated (on `CoIL` 2000,
    /// 5-fold cross-validation preferred 0.1 to 1 over 1e-4 to 10).
    pub l2_penalty: f64,
    /// Class-imbalance handling; default [`ClassWeight::Balanced`].
    pub class_weight: ClassWeight,
    /// Life-event features; default [`LifeEventFeatures::Exclude`].
    pub life_events: LifeEventFeatures,
    /// L-BFGS iteration limit, at least 1; default 100.
    pub max_iterations: u64,
    /// Stop when the gradient norm of the mean loss falls below this;
    /// finite and `> 0`; default `1e-5`.
    pub gradient_tolerance: f64,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            l2_penalty: 0.1,
            class_weight: ClassWeight::Balanced,
            life_events: LifeEventFeatures::Exclude,
            max_iterations: 100,
            gradient_tolerance: 1e-5,
        }
    }
}

/// [`TrainParams`] that passed [`TrainParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidTrainParams(TrainParams);

fn invalid(name: &'static str, value: f64, expected: &'static str) -> TrainError {
    TrainError::InvalidParameter { name, value, expected }
}

impl TrainParams {
    /// Checks every parameter's range.
    pub fn check(self) -> Result<ValidTrainParams, TrainError> {
        if !(self.l2_penalty.is_finite() && self.l2_penalty >= 0.0) {
            return Err(invalid("l2_penalty", self.l2_penalty, "a finite number >= 0"));
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return Err(invalid("gradient_tolerance", self.gradient_tolerance, "a finite number > 0"));
        }
        if self.max_iterations == 0 {
            return Err(invalid("max_iterations", 0.0, "at least 1"));
        }
        if self.class_weight == ClassWeight::Positive(0) {
            return Err(invalid("class_weight.positive", 0.0, "at least 1"));
        }
        Ok(ValidTrainParams(self))
    }
}

/// One product to train: its labels (does row `i` hold it?) and the raw
/// columns its learner must not see.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The product.
    pub product: ProductId,
    /// One label per row.
    pub labels: ArrayView1<'a, bool>,
    /// Raw column names withheld from this product's learner (all levels of
    /// a categorical column), e.g. the product's own holding columns.
    pub exclude: Vec<String>,
}

impl<'a> Target<'a> {
    /// A target that excludes nothing beyond the schema's rules.
    pub fn new(product: impl Into<ProductId>, labels: ArrayView1<'a, bool>) -> Self {
        Target { product: product.into(), labels, exclude: Vec::new() }
    }

    /// Withholds these raw columns from this product's learner.
    #[must_use]
    pub fn exclude<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.exclude.extend(columns.into_iter().map(Into::into));
        self
    }
}

/// What happened in one fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FitSummary {
    /// Positive examples.
    pub positives: usize,
    /// Negative examples.
    pub negatives: usize,
    /// Weight given to each positive (1 when unweighted).
    pub positive_weight: u32,
    /// Features the learner saw.
    pub learner_features: usize,
    /// `true` when linfa's probabilities were of the negative class and the
    /// signs were flipped.
    pub orientation_flipped: bool,
}

/// One product's trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrainedModel {
    /// The product.
    pub product: ProductId,
    /// The model on the raw feature scale; weights by name, features the
    /// learner did not see are absent (weight 0).
    pub model: PropensityModel,
    /// Fit details.
    pub summary: FitSummary,
}

/// Trained models over one feature schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModels {
    /// Maps raw records to the schema's features.
    pub encoder: Encoder,
    /// The expanded features; baselines are the training means.
    pub schema: FeatureSchema,
    /// One model per target, in target order.
    pub models: Vec<TrainedModel>,
}

impl TrainedModels {
    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The model of `product`.
    pub fn model(&self, product: &str) -> Option<&TrainedModel> {
        self.models.iter().find(|m| m.product.as_str() == product)
    }

    /// `product`'s weights, one per schema feature.
    pub fn dense_weights(&self, product: &str) -> Result<Vec<f64>, TrainError> {
        let model = self.model(product).ok_or_else(|| TrainError::UnknownProduct(product.into()))?;
        dense(&self.schema, &model.model.weights)
    }

    /// Probabilities that each row of `features` (encoded, one column per
    /// schema feature) holds `product`; no masking.
    pub fn predict(&self, product: &str, features: ArrayView2<'_, f64>) -> Result<Array1<f64>, TrainError> {
        let w = self.dense_weights(product)?;
        if features.ncols() != w.len() {
            return Err(TrainError::ColumnCount { expected: w.len(), found: features.ncols() });
        }
        let bias = self.model(product).map_or(0.0, |m| m.model.bias);
        Ok(features.dot(&Array1::from(w)).mapv(|z| sigmoid(bias + z)))
    }
}

/// Resolves weights to one per schema feature.
pub(crate) fn dense(schema: &FeatureSchema, weights: &Weights) -> Result<Vec<f64>, TrainError> {
    match weights {
        Weights::Dense(w) if w.len() == schema.len() => Ok(w.clone()),
        Weights::Dense(w) => Err(TrainError::ColumnCount { expected: schema.len(), found: w.len() }),
        Weights::ByName(map) => {
            let mut w = vec![0.0; schema.len()];
            for (name, &value) in map {
                let i = schema.index_of(name).ok_or_else(|| TrainError::UnknownFeature { feature: name.clone() })?;
                w[i] = value;
            }
            Ok(w)
        }
    }
}

/// The standardised learner matrix shared by every target.
struct Prepared {
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Schema positions of the columns of `z`.
    allowed: Vec<usize>,
    z: Array2<f64>,
}

fn learner_may_use(sensitivity: Sensitivity, life_events: LifeEventFeatures) -> bool {
    match sensitivity {
        Sensitivity::Special(_) => false,
        Sensitivity::LifeEvent(_) => life_events == LifeEventFeatures::Include,
        _ => true,
    }
}

impl ValidTrainParams {
    /// The checked parameters.
    pub fn params(&self) -> &TrainParams {
        &self.0
    }

    /// Encodes `records` with `columns` and fits one model per target
    /// (in parallel).
    pub fn fit(
        &self,
        columns: &TrainingSchema,
        records: ArrayView2<'_, f64>,
        targets: &[Target<'_>],
    ) -> Result<TrainedModels, TrainError> {
        let encoder = Encoder::new(columns.clone())?;
        let x = encoder.encode(records)?;
        self.fit_encoded(encoder, x.view(), targets)
    }

    /// Fits one model per target on features already encoded by `encoder`
    /// (encode once, then fit on row subsets, e.g. cross-validation folds).
    pub fn fit_encoded(
        &self,
        encoder: Encoder,
        x: ArrayView2<'_, f64>,
        targets: &[Target<'_>],
    ) -> Result<TrainedModels, TrainError> {
        let prepared = self.prepare(encoder.features(), x)?;
        let fits: Vec<Result<TrainedModel, TrainError>> =
            targets.par_iter().map(|t| self.fit_one(&encoder, &prepared, t)).collect();
        let models = fits.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut schema = encoder.features().clone();
        for (f, &mean) in schema.features.iter_mut().zip(&prepared.mean) {
            f.baseline = mean;
        }
        Ok(TrainedModels { encoder, schema, models })
    }

    fn prepare(&self, schema: &FeatureSchema, x: ArrayView2<'_, f64>) -> Result<Prepared, TrainError> {
        if x.ncols() != schema.len() {
            return Err(TrainError::ColumnCount { expected: schema.len(), found: x.ncols() });
        }
        if x.nrows() < 2 {
            return Err(TrainError::TooFewRows { needed: 2, found: x.nrows() });
        }
        if let Some(((row, j), &value)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(TrainError::NonFinite { row, column: schema.features[j].name.to_string(), value });
        }
        let n = x.nrows() as f64;
        let mean: Vec<f64> = x.columns().into_iter().map(|c| c.sum() / n).collect();
        let std: Vec<f64> = x
            .columns()
            .into_iter()
            .zip(&mean)
            .map(|(c, &m)| (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt())
            .collect();
        let allowed: Vec<usize> = (0..schema.len())
            .filter(|&j| learner_may_use(schema.features[j].sensitivity, self.0.life_events))
            // Rounding leaves a tiny spread on constant columns.
            .filter(|&j| std[j] > 1e-12 * (1.0 + mean[j].abs()))
            .collect();
        let mut z = Array2::zeros((x.nrows(), allowed.len()));
        for (k, &j) in allowed.iter().enumerate() {
            let (m, s) = (mean[j], std[j]);
            z.column_mut(k).zip_mut_with(&x.column(j), |z, &v| *z = (v - m) / s);
        }
        Ok(Prepared { mean, std, allowed, z })
    }

    fn fit_one(&self, encoder: &Encoder, prep: &Prepared, target: &Target<'_>) -> Result<TrainedModel, TrainError> {
        let product = &target.product;
        let n = prep.z.nrows();
        if target.labels.len() != n {
            return Err(TrainError::LabelCount { product: product.clone(), expected: n, found: target.labels.len() });
        }
        let positives = target.labels.iter().filter(|&&y| y).count();
        let negatives = n - positives;
        if positives == 0 || negatives == 0 {
            return Err(TrainError::SingleClass { product: product.clone(), positives, negatives });
        }
        let mut excluded = vec![false; encoder.features().len()];
        for column in &target.exclude {
            let range = encoder
                .feature_range(column)
                .ok_or_else(|| TrainError::UnknownColumn { product: product.clone(), column: column.clone() })?;
            excluded[range].iter_mut().for_each(|e| *e = true);
        }
        let cols: Vec<usize> = (0..prep.allowed.len()).filter(|&k| !excluded[prep.allowed[k]]).collect();
        if cols.is_empty() {
            return Err(TrainError::NoLearnerFeature { product: product.clone() });
        }
        let factor = match self.0.class_weight {
            ClassWeight::Unweighted => 1,
            ClassWeight::Balanced => ((negatives as f64 / positives as f64).round() as u32).max(1),
            ClassWeight::Positive(k) => k,
        };

        // linfa-logistic takes no sample weights: an integer weight k is k
        // copies of the row, which is the same weighted log-loss.
        let extra = (factor as usize - 1) * positives;
        let rows: Vec<usize> = (0..n)
            .chain((0..n).filter(|&i| target.labels[i]).flat_map(|i| std::iter::repeat_n(i, factor as usize - 1)))
            .collect();
        debug_assert_eq!(rows.len(), n + extra);
        let mut z = Array2::zeros((rows.len(), cols.len()));
        for (mut out, &i) in z.rows_mut().into_iter().zip(&rows) {
            for (o, &k) in out.iter_mut().zip(&cols) {
                *o = prep.z[[i, k]];
            }
        }
        let y: Array1<bool> = rows.iter().map(|&i| target.labels[i]).collect();
        let total_weight = rows.len() as f64;
        let learner =
            |e: linfa_logistic::error::Error| TrainError::Learner { product: product.clone(), message: e.to_string() };
        let fitted = LogisticRegression::default()
            .alpha(self.0.l2_penalty * total_weight)
            .max_iterations(self.0.max_iterations)
            .gradient_tolerance(self.0.gradient_tolerance * total_weight)
            .check()
            .map_err(learner)?
            .fit(&linfa::Dataset::new(z, y))
            .map_err(learner)?;

        // linfa's "positive" class is the more frequent one (see module docs).
        let flipped = !fitted.labels().pos.class;
        let sign = if flipped { -1.0 } else { 1.0 };
        let mut weights = BTreeMap::new();
        let mut bias = sign * fitted.intercept() - f64::from(factor).ln();
        for (&k, &w_std) in cols.iter().zip(fitted.params()) {
            let j = prep.allowed[k];
            let w = sign * w_std / prep.std[j];
            bias -= w * prep.mean[j];
            let name = &encoder.features().features[j].name;
            if !w.is_finite() {
                return Err(TrainError::NonFiniteModel { product: product.clone(), feature: name.to_string() });
            }
            weights.insert(name.to_string(), w);
        }
        if !bias.is_finite() {
            return Err(TrainError::NonFiniteModel { product: product.clone(), feature: "bias".into() });
        }
        Ok(TrainedModel {
            product: product.clone(),
            model: PropensityModel { bias, weights: Weights::ByName(weights) },
            summary: FitSummary {
                positives,
                negatives,
                positive_weight: factor,
                learner_features: cols.len(),
                orientation_flipped: flipped,
            },
        })
    }
}
