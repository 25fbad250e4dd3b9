//! Task 2, next best offer: leave-one-product-out through the engine,
//! against a popularity baseline.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;
use tactful::{Channel, Consents, Customer, Engine, FeatureValues, Request, Stage};

use crate::data;
use crate::experiment::{BoxError, Layout};

/// Hit rates of one ranking method.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hits {
    /// Method.
    pub method: String,
    /// Hidden products (customer, product) ranked.
    pub cases: usize,
    /// Hidden product ranked first.
    pub hit_at_1: f64,
    /// Within the top 3.
    pub hit_at_3: f64,
    /// Within the top 5.
    pub hit_at_5: f64,
    /// Mean reciprocal rank (0 when not ranked).
    pub mrr: f64,
    /// Cases where the guard withheld the hidden product (proxy-driven).
    pub withheld_by_guard: usize,
}

/// Counts towards hit rates and MRR.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    cases: usize,
    hits: [usize; 3],
    rr: f64,
    withheld: usize,
}

impl Tally {
    fn add(&mut self, rank: Option<usize>) {
        self.cases += 1;
        if let Some(r) = rank {
            for (h, k) in self.hits.iter_mut().zip([1, 3, 5]) {
                *h += usize::from(r <= k);
            }
            self.rr += 1.0 / r as f64;
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        self.cases += other.cases;
        self.rr += other.rr;
        self.withheld += other.withheld;
        for (a, b) in self.hits.iter_mut().zip(other.hits) {
            *a += b;
        }
        self
    }

    fn hits(&self, method: &str) -> Hits {
        let n = self.cases.max(1) as f64;
        Hits {
            method: method.to_owned(),
            cases: self.cases,
            hit_at_1: self.hits[0] as f64 / n,
            hit_at_3: self.hits[1] as f64 / n,
            hit_at_5: self.hits[2] as f64 / n,
            mrr: self.rr / n,
            withheld_by_guard: self.withheld,
        }
    }
}

/// Task 2 for one product.
#[derive(Debug, Clone, Serialize)]
pub struct ProductHits {
    /// Product id.
    pub product: String,
    /// Guarded engine.
    pub guarded: Hits,
    /// Guarded engine with the audit's proxies marked (guard rule 3).
    pub proxies_marked: Hits,
    /// Popularity.
    pub popularity: Hits,
}

/// Task 2 on all splits.
#[derive(Debug, Clone, Serialize)]
pub struct Task2 {
    /// Products ranked.
    pub products: Vec<String>,
    /// Guarded models through the engine, the same with the proxy audit's
    /// flagged features marked `proxy`, and the popularity baseline.
    pub overall: Vec<Hits>,
    /// Per split: the features marked `proxy` for the second engine.
    pub marked_per_split: Vec<Vec<String>>,
    /// Per hidden product.
    pub per_product: Vec<ProductHits>,
    /// Per split: products that had too few holders to fit and used their
    /// prevalence instead.
    pub intercept_only: Vec<Vec<String>>,
}

fn rank_of(target: usize, scores: &[f64], held: &[bool]) -> Option<usize> {
    if held[target] {
        return None;
    }
    let better = (0..scores.len())
        .filter(|&q| !held[q] && q != target)
        .filter(|&q| scores[q] > scores[target] || (scores[q] == scores[target] && q < target))
        .count();
    Some(better + 1)
}

/// Per method (each engine, then popularity), per product.
pub type Tallies = Vec<Vec<Tally>>;

/// Leave-one-product-out on `test`: for each customer and each product
/// `p` held, hide `p`'s columns and holding, rank the products not held
/// with each engine and by `prevalence`, and tally `p`'s rank.
pub fn run(
    engines: &[Engine],
    layout: &Layout,
    test: ArrayView2<'_, f64>,
    held: &Array2<bool>,
    prevalence: &[f64],
    with_caravan: bool,
) -> Result<Tallies, BoxError> {
    let names = data::products();
    let n_products = if with_caravan { names.len() } else { names.len() - 1 };
    let request: Request = serde_json::from_value(serde_json::json!({
        "now": "2000-01-01T00:00:00Z", "channel": "email", "k": names.len()
    }))?;
    let per_customer = (0..test.nrows())
        .into_par_iter()
        .map(|i| -> Result<Tallies, BoxError> {
            let mut tallies = vec![vec![Tally::default(); names.len()]; engines.len() + 1];
            for p in (0..n_products).filter(|&p| held[[i, p]]) {
                let mut x = test.row(i).to_vec();
                if let Some(cols) = layout.columns.get(p) {
                    for &c in cols {
                        x[c] = 0.0;
                    }
                }
                let mut holds: Vec<bool> = held.row(i).to_vec();
                holds[p] = false;
                if !with_caravan {
                    // Unknown caravan holding: never offered, never hidden.
                    holds[names.len() - 1] = true;
                }
                let customer = Customer {
                    holdings: (0..names.len()).filter(|&q| holds[q]).map(|q| names[q].as_str().into()).collect(),
                    consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
                    ..Customer::new(format!("row-{}", i + 1), FeatureValues::Dense(x))
                };
                for (engine, tally) in engines.iter().zip(&mut tallies) {
                    let decision = engine.recommend(&customer, &request)?;
                    if decision.effective_k < request.k {
                        // A ranking cut short would count the products past
                        // the cut as misses, and popularity is never cut.
                        return Err(format!(
                            "customer {}: the contact limits cut the ranking to {} of {} offers",
                            decision.customer, decision.effective_k, request.k
                        )
                        .into());
                    }
                    let rank = decision.recommendations.iter().find(|r| r.product.as_str() == names[p]).map(|r| r.rank);
                    tally[p].add(rank);
                    if decision.withheld_reason(&names[p]).is_some_and(|w| w.stage == Stage::Guard) {
                        tally[p].withheld += 1;
                    }
                }
                tallies[engines.len()][p].add(rank_of(p, prevalence, &holds));
            }
            Ok(tallies)
        })
        .collect::<Vec<_>>();
    let mut total = vec![vec![Tally::default(); names.len()]; engines.len() + 1];
    for tallies in per_customer {
        for (t, c) in total.iter_mut().zip(tallies?) {
            for (a, b) in t.iter_mut().zip(c) {
                *a = a.merge(b);
            }
        }
    }
    Ok(total)
}

/// Sums the splits' tallies (guarded, proxies marked, popularity).
pub fn summary(
    tallies: &[&Tallies],
    marked: Vec<Vec<String>>,
    intercept_only: Vec<Vec<String>>,
    with_caravan: bool,
) -> Task2 {
    let mut names = data::products();
    if !with_caravan {
        names.pop();
    }
    let methods = ["guarded engine", "proxies marked", "popularity"];
    let sum = |m: usize, p: usize| tallies.iter().map(|t| t[m][p]).fold(Tally::default(), Tally::merge);
    let per_product: Vec<ProductHits> = names
        .iter()
        .enumerate()
        .map(|(p, name)| ProductHits {
            product: name.clone(),
            guarded: sum(0, p).hits(methods[0]),
            proxies_marked: sum(1, p).hits(methods[1]),
            popularity: sum(2, p).hits(methods[2]),
        })
        .collect();
    let overall = methods
        .iter()
        .enumerate()
        .map(|(m, name)| (0..names.len()).map(|p| sum(m, p)).fold(Tally::default(), Tally::merge).hits(name))
        .collect();
    Task2 { products: names.clone(), overall, per_product, marked_per_split: marked, intercept_only }
}
