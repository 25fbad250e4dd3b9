//! Ranking metrics for propensity models: AUC, holders found in the top k,
//! cumulative gains, and seeded stratified folds for cross-validation.
//!
//! Rankings sort by score, highest first, ties broken by row position, so
//! every result is deterministic.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Inputs a metric cannot use.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// Scores and labels differ in length.
    #[error("{scores} scores for {labels} labels")]
    LengthMismatch {
        /// Scores given.
        scores: usize,
        /// Labels given.
        labels: usize,
    },
    /// A score is NaN or infinite.
    #[error("score {index} is {value}, not a finite number")]
    NonFiniteScore {
        /// Position.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The metric needs both positives and negatives.
    #[error("{positives} positives and {negatives} negatives; both classes are needed")]
    SingleClass {
        /// Positives.
        positives: usize,
        /// Negatives.
        negatives: usize,
    },
    /// Fewer than 2 folds, or more folds than rows.
    #[error("{folds} folds for {rows} rows: need 2 <= folds <= rows")]
    InvalidFolds {
        /// Folds asked for.
        folds: usize,
        /// Rows.
        rows: usize,
    },
}

fn check(scores: &[f64], labels: &[bool]) -> Result<(), MetricsError> {
    if scores.len() != labels.len() {
        return Err(MetricsError::LengthMismatch { scores: scores.len(), labels: labels.len() });
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(index) => Err(MetricsError::NonFiniteScore { index, value: scores[index] }),
        None => Ok(()),
    }
}

/// Row positions by score, highest first, ties by position.
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Area under the ROC curve: the chance that a random positive scores above
/// a random negative, ties counting one half.
pub fn auc(scores: &[f64], labels: &[bool]) -> Result<f64, MetricsError> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|&&y| y).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(MetricsError::SingleClass { positives, negatives });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with mid-ranks for ties.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mid_rank = (start + end + 1) as f64 / 2.0;
        rank_sum += mid_rank * order[start..end].iter().filter(|&&i| labels[i]).count() as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Positives among the `k` best-scored rows.
pub fn hits_in_top(scores: &[f64], labels: &[bool], k: usize) -> Result<usize, MetricsError> {
    check(scores, labels)?;
    Ok(ranking(scores).iter().take(k).filter(|&&i| labels[i]).count())
}

/// One point of a cumulative-gains curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GainPoint {
    /// Share of rows contacted, best-scored first, in `[0, 1]`.
    pub contacted: f64,
    /// Share of all positives among them, in `[0, 1]`.
    pub found: f64,
}

/// Cumulative gains at `steps + 1` evenly spaced contact shares, 0 to 1.
pub fn cumulative_gains(scores: &[f64], labels: &[bool], steps: usize) -> Result<Vec<GainPoint>, MetricsError> {
    check(scores, labels)?;
    let positives = labels.iter().filter(|&&y| y).count();
    if positives == 0 || steps == 0 {
        return Err(MetricsError::SingleClass { positives, negatives: labels.len() - positives });
    }
    let order = ranking(scores);
    let mut found_before = Vec::with_capacity(order.len() + 1);
    found_before.push(0usize);
    for &i in &order {
        found_before.push(found_before.last().copied().unwrap_or(0) + usize::from(labels[i]));
    }
    let n = order.len();
    Ok((0..=steps)
        .map(|s| {
            let contacted = s as f64 / steps as f64;
            let k = (contacted * n as f64).round() as usize;
            GainPoint { contacted, found: found_before[k.min(n)] as f64 / positives as f64 }
        })
        .collect())
}

/// Assigns each row a fold in `0..folds` so that every fold gets about the
/// same number of positives and of negatives; the shuffle is seeded.
pub fn stratified_folds(labels: &[bool], folds: usize, seed: u64) -> Result<Vec<usize>, MetricsError> {
    if folds < 2 || folds > labels.len() {
        return Err(MetricsError::InvalidFolds { folds, rows: labels.len() });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold = vec![0; labels.len()];
    let mut next = 0;
    for class in [true, false] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rows.shuffle(&mut rng);
        for i in rows {
            fold[i] = next % folds;
            next += 1;
        }
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.9, 0.1, 0.5, 0.5], &[true, false, true, false]).unwrap(), 0.875);
        assert_eq!(auc(&[0.1, 0.9], &[true, false]).unwrap(), 0.0);
        assert!(matches!(auc(&[0.1], &[true]), Err(MetricsError::SingleClass { .. })));
        assert!(matches!(auc(&[f64::NAN, 0.1], &[true, false]), Err(MetricsError::NonFiniteScore { index: 0, .. })));
    }

    #[test]
    fn top_k_and_gains_agree() {
        let scores = [0.9, 0.8, 0.7, 0.6];
        let labels = [true, false, true, false];
        assert_eq!(hits_in_top(&scores, &labels, 2).unwrap(), 1);
        let gains = cumulative_gains(&scores, &labels, 4).unwrap();
        let found: Vec<f64> = gains.iter().map(|g| g.found).collect();
        assert_eq!(found, [0.0, 0.5, 0.5, 1.0, 1.0]);
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let labels: Vec<bool> = (0..100).map(|i| i % 10 == 0).collect();
        let folds = stratified_folds(&labels, 5, 7).unwrap();
        assert_eq!(folds, stratified_folds(&labels, 5, 7).unwrap());
        for f in 0..5 {
            let rows: Vec<usize> = (0..100).filter(|&i| folds[i] == f).collect();
            assert_eq!(rows.len(), 20);
            assert_eq!(rows.iter().filter(|&&i| labels[i]).count(), 2);
        }
        assert!(stratified_folds(&labels, 1, 0).is_err());
    }
}
