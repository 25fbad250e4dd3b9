//! Proxy audit: which features a model may use stand in for a sensitive
//! feature it may not?
//!
//! For every candidate feature (sensitivity `ordinary` or `proxy`) and
//! every sensitive feature (`special` or `life_event`), the audit measures
//!
//! - **association**: the correlation ratio η² of the sensitive feature
//!   given the candidate, `between-group variance / total variance` of the
//!   sensitive feature over the groups of equal candidate values (quantile
//!   bins when a candidate has more than [`AuditParams::max_groups`]
//!   values), bias-adjusted for the number of groups like an adjusted R²,
//!   in `[0, 1]`. η² is the share of the sensitive feature's variance that
//!   the candidate's value reveals, through any function of it: what makes
//!   a proxy. Unlike a correlation it needs no linear relation; unlike
//!   Cramér's V it needs no binning of the sensitive side (a religion share
//!   or a 0/1 subtype level alike) and is directed from the candidate to
//!   what it reveals; unlike mutual information it is bounded and reads as
//!   a share, so one threshold fits every pair. Per category (e.g.
//!   religion) the most revealed sensitive feature counts.
//! - **influence** in the model: `|weight| × std`, the log-odds moved by
//!   one standard deviation of the feature.
//!
//! A feature is flagged when `association × influence` exceeds
//! [`AuditParams::threshold`] for some category: its influence on the
//! score could carry that much log-odds of sensitive information.
//! [`ProxyAudit::mark`] then marks it `proxy` in the schema, so guard rule
//! 3 suppresses offers driven by such features.

use std::fmt;

use ndarray::ArrayView2;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{ProductId, PropensityModel};
use crate::schema::{FeatureSchema, ProxyTarget, Sensitivity};
use crate::train::{dense, TrainError};

/// Audit parameters, unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuditParams {
    /// Flag when `association × influence` exceeds this; finite and
    /// `>= 0`; default 0.01: e.g. a feature that reveals half of a
    /// sensitive feature's variance and whose one-std move shifts the score
    /// by more than 0.02 log-odds. Influence shrinks as the L2 penalty
    /// grows, so the threshold suits regularised models like those of
    /// [`crate::train`] with its default penalty; on `CoIL` 2000 it flags a
    /// handful of features per product.
    pub threshold: f64,
    /// Candidates with more distinct values are cut into this many
    /// quantile bins; 2 to 1000, default 10.
    pub max_groups: usize,
}

impl Default for AuditParams {
    fn default() -> Self {
        AuditParams { threshold: 0.01, max_groups: 10 }
    }
}

/// [`AuditParams`] that passed [`AuditParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidAuditParams(AuditParams);

impl AuditParams {
    /// Checks every parameter's range.
    pub fn check(self) -> Result<ValidAuditParams, TrainError> {
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(TrainError::InvalidParameter {
                name: "threshold",
                value: self.threshold,
                expected: "a finite number >= 0",
            });
        }
        if !(2..=1000).contains(&self.max_groups) {
            return Err(TrainError::InvalidParameter {
                name: "max_groups",
                value: self.max_groups as f64,
                expected: "2 to 1000",
            });
        }
        Ok(ValidAuditParams(self))
    }
}

/// How strongly a candidate reveals one sensitive category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Association {
    /// The category.
    pub target: ProxyTarget,
    /// The sensitive feature of that category it reveals most.
    pub via: String,
    /// Correlation ratio η² (share of its variance revealed), in `[0, 1]`.
    pub eta2: f64,
}

/// One candidate feature in the audit of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRow {
    /// The feature.
    pub feature: String,
    /// Its current sensitivity (`ordinary` or `proxy`).
    pub sensitivity: Sensitivity,
    /// `|weight| × std`, in log-odds.
    pub influence: f64,
    /// Association with each sensitive category, strongest first.
    pub associations: Vec<Association>,
    /// `influence × η²` of the strongest association (0 when none).
    pub score: f64,
    /// `score > threshold`.
    pub flagged: bool,
}

impl AuditRow {
    /// The strongest association, if any sensitive feature exists.
    pub fn strongest(&self) -> Option<&Association> {
        self.associations.first()
    }
}

/// The proxy audit of one model; rows by score, highest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProxyAudit {
    /// The audited product.
    pub product: ProductId,
    /// The flag threshold used.
    pub threshold: f64,
    /// One row per candidate feature.
    pub rows: Vec<AuditRow>,
}

impl ProxyAudit {
    /// Flagged rows.
    pub fn flagged(&self) -> impl Iterator<Item = &AuditRow> {
        self.rows.iter().filter(|r| r.flagged)
    }

    /// Marks every flagged `ordinary` feature of `schema` as a proxy of its
    /// strongest category; returns the names marked.
    pub fn mark(&self, schema: &mut FeatureSchema) -> Vec<String> {
        let mut marked = Vec::new();
        for row in self.flagged() {
            let (Some(i), Some(a)) = (schema.index_of(&row.feature), row.strongest()) else { continue };
            let feature = &mut schema.features[i];
            if feature.sensitivity == Sensitivity::Ordinary {
                feature.sensitivity = Sensitivity::Proxy(a.target);
                marked.push(row.feature.clone());
            }
        }
        marked
    }

    /// The table of the `limit` highest-scored rows (flagged rows always).
    pub fn table(&self, limit: usize) -> AuditTable<'_> {
        AuditTable { audit: self, limit }
    }
}

/// A human-readable table of a [`ProxyAudit`].
#[derive(Debug, Clone, Copy)]
pub struct AuditTable<'a> {
    audit: &'a ProxyAudit,
    limit: usize,
}

/// Short name of a category, e.g. `religion` or `family_status`.
pub fn category_name(target: ProxyTarget) -> String {
    let json = serde_json::to_value(target).unwrap_or_default();
    match json {
        serde_json::Value::Object(map) => map.values().next().and_then(|v| v.as_str()).unwrap_or("?").to_owned(),
        other => other.as_str().unwrap_or("?").to_owned(),
    }
}

impl fmt::Display for AuditTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.audit;
        writeln!(f, "Proxy audit of `{}`: flag when association x influence > {:.3}", a.product, a.threshold)?;
        writeln!(
            f,
            "{:<12} {:>9}  {:<32} {:>6}  {:>6}  flag",
            "feature", "influence", "most revealed (via)", "eta2", "score"
        )?;
        let shown = a.rows.iter().enumerate().filter(|(i, r)| *i < self.limit || r.flagged);
        for (_, row) in shown {
            let (what, eta) = match row.strongest() {
                Some(s) => (format!("{} ({})", category_name(s.target), s.via), s.eta2),
                None => ("-".to_owned(), 0.0),
            };
            writeln!(
                f,
                "{:<12} {:>9.3}  {:<32} {:>6.3}  {:>6.3}  {}",
                row.feature,
                row.influence,
                what,
                eta,
                row.score,
                if row.flagged { "PROXY" } else { "" }
            )?;
        }
        let hidden = a.rows.len() - a.rows.iter().enumerate().filter(|(i, r)| *i < self.limit || r.flagged).count();
        if hidden > 0 {
            writeln!(f, "({hidden} lower-scored features not shown)")?;
        }
        Ok(())
    }
}

impl fmt::Display for ProxyAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table(self.rows.len()).fmt(f)
    }
}

/// Associations computed once from data, then used to audit any model over
/// the same schema.
#[derive(Debug, Clone)]
pub struct ProxyAuditor {
    params: ValidAuditParams,
    schema: FeatureSchema,
    std: Vec<f64>,
    /// Candidate feature positions.
    candidates: Vec<usize>,
    /// Per candidate: associations, strongest first.
    associations: Vec<Vec<Association>>,
}

fn target_of(sensitivity: Sensitivity) -> Option<ProxyTarget> {
    match sensitivity {
        Sensitivity::Special(c) => Some(ProxyTarget::Special(c)),
        Sensitivity::LifeEvent(e) => Some(ProxyTarget::LifeEvent(e)),
        _ => None,
    }
}

/// Group id per row (equal values share a group) and the number of groups.
fn groups(values: &[f64], max_groups: usize) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let distinct = 1 + order.windows(2).filter(|w| values[w[0]] != values[w[1]]).count();
    let n = values.len();
    let mut group = vec![0; n];
    let (mut current, mut count) = (0, 0);
    for (rank, &i) in order.iter().enumerate() {
        let new_value = rank == 0 || values[i] != values[order[rank - 1]];
        if new_value {
            // Distinct values each get a group; else quantile bins by rank.
            let g = if distinct <= max_groups { count } else { rank * max_groups / n };
            if rank == 0 || g != current {
                count += 1;
            }
            current = g;
        }
        group[i] = count - 1;
    }
    (group, count)
}

/// Bias-adjusted correlation ratio η² of `s` over `groups`.
fn eta(s: &[f64], group: &[usize], k: usize) -> f64 {
    let n = s.len() as f64;
    let mean = s.iter().sum::<f64>() / n;
    let total: f64 = s.iter().map(|v| (v - mean) * (v - mean)).sum();
    if total <= 0.0 || s.len() <= k {
        return 0.0;
    }
    let mut sums = vec![0.0; k];
    let mut counts = vec![0usize; k];
    for (&v, &g) in s.iter().zip(group) {
        sums[g] += v;
        counts[g] += 1;
    }
    let between: f64 =
        sums.iter().zip(&counts).filter(|(_, &c)| c > 0).map(|(&sum, &c)| sum * sum / c as f64).sum::<f64>()
            - n * mean * mean;
    let eta2 = (between / total).clamp(0.0, 1.0);
    let adjusted = 1.0 - (1.0 - eta2) * (n - 1.0) / (n - k as f64);
    adjusted.max(0.0)
}

impl ProxyAuditor {
    /// Measures every candidate's association with every sensitive feature
    /// on `features` (encoded, one column per schema feature; use the
    /// training data).
    pub fn new(
        schema: &FeatureSchema,
        features: ArrayView2<'_, f64>,
        params: ValidAuditParams,
    ) -> Result<Self, TrainError> {
        if features.ncols() != schema.len() {
            return Err(TrainError::ColumnCount { expected: schema.len(), found: features.ncols() });
        }
        if features.nrows() < 2 {
            return Err(TrainError::TooFewRows { needed: 2, found: features.nrows() });
        }
        if let Some(((row, j), &value)) = features.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(TrainError::NonFinite { row, column: schema.features[j].name.to_string(), value });
        }
        let columns: Vec<Vec<f64>> = features.columns().into_iter().map(|c| c.to_vec()).collect();
        let n = features.nrows() as f64;
        let std = columns
            .iter()
            .map(|c| {
                let m = c.iter().sum::<f64>() / n;
                (c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt()
            })
            .collect();
        let sensitive: Vec<(usize, ProxyTarget)> =
            schema.features.iter().enumerate().filter_map(|(i, f)| target_of(f.sensitivity).map(|t| (i, t))).collect();
        let candidates: Vec<usize> = (0..schema.len())
            .filter(|&i| matches!(schema.features[i].sensitivity, Sensitivity::Ordinary | Sensitivity::Proxy(_)))
            .collect();
        let associations = candidates
            .iter()
            .map(|&c| {
                let (group, k) = groups(&columns[c], params.0.max_groups);
                let mut best: Vec<Association> = Vec::new();
                for &(s, target) in &sensitive {
                    let e = eta(&columns[s], &group, k);
                    let via = schema.features[s].name.to_string();
                    match best.iter_mut().find(|a| a.target == target) {
                        Some(a) if e > a.eta2 => *a = Association { target, via, eta2: e },
                        Some(_) => {}
                        None => best.push(Association { target, via, eta2: e }),
                    }
                }
                best.sort_by(|a, b| b.eta2.total_cmp(&a.eta2));
                best
            })
            .collect();
        Ok(ProxyAuditor { params, schema: schema.clone(), std, candidates, associations })
    }

    /// Audits one model over the auditor's schema.
    pub fn audit(&self, product: &ProductId, model: &PropensityModel) -> Result<ProxyAudit, TrainError> {
        let w = dense(&self.schema, &model.weights)?;
        let threshold = self.params.0.threshold;
        let mut rows: Vec<AuditRow> = self
            .candidates
            .iter()
            .zip(&self.associations)
            .map(|(&c, assoc)| {
                let influence = w[c].abs() * self.std[c];
                let score = assoc.first().map_or(0.0, |a| a.eta2 * influence);
                AuditRow {
                    feature: self.schema.features[c].name.to_string(),
                    sensitivity: self.schema.features[c].sensitivity,
                    influence,
                    associations: assoc.clone(),
                    score,
                    flagged: score > threshold,
                }
            })
            .collect();
        rows.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.feature.cmp(&b.feature)));
        Ok(ProxyAudit { product: product.clone(), threshold, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FeatureSpec, SpecialCategory};
    use ndarray::Array2;
    use std::collections::BTreeMap;

    #[test]
    fn eta_is_one_for_a_function_and_near_zero_for_noise() {
        let x: Vec<f64> = (0..200).map(|i| (i % 4) as f64).collect();
        let (g, k) = groups(&x, 10);
        assert_eq!(k, 4);
        let s: Vec<f64> = x.iter().map(|v| (v - 1.5) * (v - 1.5)).collect();
        assert!((eta(&s, &g, k) - 1.0).abs() < 1e-12);
        let noise: Vec<f64> = (0..200).map(|i| ((i * 7919) % 13) as f64).collect();
        assert!(eta(&noise, &g, k) < 0.2);
    }

    #[test]
    fn many_values_are_binned() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let (g, k) = groups(&x, 10);
        assert_eq!(k, 10);
        assert_eq!(g[0], 0);
        assert_eq!(g[999], 9);
    }

    #[test]
    fn a_proxy_is_flagged_and_marked() {
        let religion = Sensitivity::Special(SpecialCategory::Religion);
        let mut schema = FeatureSchema::new(vec![
            FeatureSpec::new("church_distance", "distance"),
            FeatureSpec::new("tenure", "tenure"),
            FeatureSpec::new("religion", "religion").sensitivity(religion),
        ]);
        let x = Array2::from_shape_fn((300, 3), |(i, j)| match j {
            0 | 2 => (i % 3) as f64,
            _ => ((i * 31) % 7) as f64,
        });
        let auditor = ProxyAuditor::new(&schema, x.view(), AuditParams::default().check().unwrap()).unwrap();
        let weights = BTreeMap::from([("church_distance".to_owned(), 1.0), ("tenure".to_owned(), 1.0)]);
        let model = PropensityModel { bias: 0.0, weights: crate::catalog::Weights::ByName(weights) };
        let audit = auditor.audit(&"p".into(), &model).unwrap();
        assert_eq!(audit.rows[0].feature, "church_distance");
        assert!(audit.rows[0].flagged && !audit.rows[1].flagged);
        assert_eq!(audit.mark(&mut schema), ["church_distance"]);
        assert_eq!(schema.features[0].sensitivity, Sensitivity::Proxy(ProxyTarget::Special(SpecialCategory::Religion)));
        assert!(audit.to_string().contains("PROXY"));
    }
}
