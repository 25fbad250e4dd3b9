//! Propensity models compiled into one offer-major weight matrix, with the
//! intercept moved to the feature baselines so that a masked feature
//! (value = baseline) contributes exactly zero.

use crate::catalog::{Offer, OfferId, Weights};
use crate::error::ConfigError;
use crate::schema::FeatureSchema;

/// The logistic function.
pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

/// Resolves `weights` to one weight per schema feature, checking names,
/// count and finiteness.
pub fn dense_weights(offer: &OfferId, schema: &FeatureSchema, weights: &Weights) -> Result<Vec<f64>, ConfigError> {
    let dense = match weights {
        Weights::Dense(w) => {
            if w.len() != schema.len() {
                return Err(ConfigError::WeightCount { offer: offer.clone(), expected: schema.len(), found: w.len() });
            }
            w.clone()
        }
        Weights::ByName(map) => {
            let mut w = vec![0.0; schema.len()];
            for (name, &value) in map {
                let i = schema
                    .index_of(name)
                    .ok_or_else(|| ConfigError::UnknownWeightFeature { offer: offer.clone(), feature: name.clone() })?;
                w[i] = value;
            }
            w
        }
    };
    if let Some((i, &value)) = dense.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(ConfigError::NonFiniteWeight {
            offer: offer.clone(),
            feature: schema.features[i].name.to_string(),
            value,
        });
    }
    Ok(dense)
}

/// All offers' models as one matrix.
#[derive(Debug, Clone)]
pub(crate) struct ModelMatrix {
    n_features: usize,
    /// Offer-major weights, `n_offers × n_features`.
    weights: Vec<f64>,
    /// `bias + Σ wᵢ·baselineᵢ`: the logit of a customer at the baseline.
    base_logit: Vec<f64>,
}

impl ModelMatrix {
    /// Compiles the offers' models (in the given order).
    pub(crate) fn compile(schema: &FeatureSchema, offers: &[Offer]) -> Result<Self, ConfigError> {
        let n_features = schema.len();
        let mut weights = Vec::with_capacity(offers.len() * n_features);
        let mut base_logit = Vec::with_capacity(offers.len());
        for offer in offers {
            let bias = offer.model.bias;
            if !bias.is_finite() {
                return Err(ConfigError::NonFiniteWeight {
                    offer: offer.id.clone(),
                    feature: "bias".into(),
                    value: bias,
                });
            }
            let w = dense_weights(&offer.id, schema, &offer.model.weights)?;
            let base = bias + w.iter().zip(&schema.features).map(|(w, f)| w * f.baseline).sum::<f64>();
            if !base.is_finite() {
                return Err(ConfigError::NonFiniteWeight {
                    offer: offer.id.clone(),
                    feature: "bias + weights x baselines".into(),
                    value: base,
                });
            }
            weights.extend_from_slice(&w);
            base_logit.push(base);
        }
        Ok(ModelMatrix { n_features, weights, base_logit })
    }

    /// Weights of offer `o`.
    pub(crate) fn row(&self, o: usize) -> &[f64] {
        &self.weights[o * self.n_features..(o + 1) * self.n_features]
    }

    /// Logit of offer `o` for the centred, masked feature vector `d`
    /// (`dᵢ = xᵢ − baselineᵢ`, 0 when masked).
    pub(crate) fn logit(&self, o: usize, d: &[f64]) -> f64 {
        self.base_logit[o] + self.row(o).iter().zip(d).map(|(w, x)| w * x).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureSpec;
    use std::collections::BTreeMap;

    fn schema() -> FeatureSchema {
        FeatureSchema::new(vec![FeatureSpec::new("a", "a"), FeatureSpec::new("b", "b").baseline(2.0)])
    }

    #[test]
    fn weights_by_name_and_dense_agree() {
        let id = OfferId::from("o");
        let by_name = Weights::ByName(BTreeMap::from([("b".to_owned(), 3.0)]));
        assert_eq!(dense_weights(&id, &schema(), &by_name).unwrap(), vec![0.0, 3.0]);
        assert_eq!(dense_weights(&id, &schema(), &Weights::Dense(vec![0.0, 3.0])).unwrap(), vec![0.0, 3.0]);
    }

    #[test]
    fn bad_weights_are_named() {
        let id = OfferId::from("o");
        let unknown = Weights::ByName(BTreeMap::from([("zz".to_owned(), 1.0)]));
        assert!(
            matches!(dense_weights(&id, &schema(), &unknown), Err(ConfigError::UnknownWeightFeature { feature, .. }) if feature == "zz")
        );
        assert!(matches!(
            dense_weights(&id, &schema(), &Weights::Dense(vec![1.0])),
            Err(ConfigError::WeightCount { expected: 2, found: 1, .. })
        ));
        assert!(matches!(
            dense_weights(&id, &schema(), &Weights::Dense(vec![1.0, f64::INFINITY])),
            Err(ConfigError::NonFiniteWeight { feature, .. }) if feature == "b"
        ));
    }

    #[test]
    fn sigmoid_is_a_probability() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(40.0) <= 1.0 && sigmoid(-40.0) >= 0.0);
        assert!(sigmoid(2.0) > sigmoid(1.0));
    }
}
