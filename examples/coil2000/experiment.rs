//! The `CoIL` 2000 experiment: task 1 (select likely caravan holders) and
//! task 2 (leave-one-product-out next best offer through the engine), on
//! cross-validation folds of the training file or on a separate test file.

use std::error::Error;
use std::path::PathBuf;

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tactful::metrics::{self, GainPoint};
use tactful::proxy_audit::{AuditParams, ProxyAudit, ProxyAuditor};
use tactful::train::{Encoder, Target, TrainParams, TrainedModels, ValidTrainParams};
use tactful::{Catalog, Channel, Engine, EngineParams, FeatureSchema, Offer, OfferKind, PropensityModel, Weights};

use crate::data::{self, Data};
use crate::nbo::{self, Tallies, Task2};

/// Products with fewer training holders than this get an intercept-only
/// model (their prevalence): too few to fit weights on.
pub const MIN_HOLDERS: usize = 5;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Training file.
    pub train: PathBuf,
    /// Separate evaluation file; `None` for cross-validation.
    pub test: Option<PathBuf>,
    /// Cross-validation folds.
    pub folds: usize,
    /// Seed of the folds and of the random baseline.
    pub seed: u64,
    /// Customers selected in task 1 with a test file.
    pub select: usize,
    /// Use only the first rows of the training file (for quick runs).
    pub max_rows: Option<usize>,
    /// Training parameters.
    pub params: TrainParams,
    /// Proxy-audit parameters.
    pub audit: AuditParams,
}

/// One model's task-1 result.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// Which model.
    pub model: String,
    /// Holders among the selected customers (summed over folds); for the
    /// random baseline, the expected number.
    pub found: f64,
    /// Per fold (one entry with a test file).
    pub found_per_split: Vec<f64>,
    /// Mean AUC over the splits (`None` for baselines).
    pub auc: Option<f64>,
    /// Per split.
    pub auc_per_split: Vec<f64>,
}

/// Task 1 on all splits.
#[derive(Debug, Clone, Serialize)]
pub struct Task1 {
    /// What "selected" means in this run.
    pub selection: String,
    /// Customers selected (summed over splits).
    pub selected: usize,
    /// Caravan holders among the evaluated customers.
    pub holders: usize,
    /// Customers evaluated.
    pub customers: usize,
    /// All features, guarded, random (expected), random (seeded draw).
    pub results: Vec<Selection>,
    /// Mean cumulative gains per model (all features, guarded, random).
    pub gains: Vec<(String, Vec<GainPoint>)>,
    /// Without labels: the 1-based data rows of the test file selected by
    /// the guarded model, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selected_rows: Vec<usize>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How the models were evaluated.
    pub evaluation: String,
    /// Training file.
    pub train: String,
    /// Test file, if any.
    pub test: Option<String>,
    /// Training rows used.
    pub train_rows: usize,
    /// Training parameters.
    pub params: TrainParams,
    /// Task 1.
    pub task1: Task1,
    /// Task 2.
    pub task2: Task2,
    /// Proxy audit of the guarded caravan model trained on the whole
    /// training file.
    pub proxy_audit: ProxyAudit,
    /// Per product, the features its guarded model's audit flags.
    pub flagged: Vec<(String, Vec<String>)>,
    /// Features marked `proxy` in the catalog (the union of `flagged`).
    pub marked_proxies: Vec<String>,
    /// The guarded catalog trained on the whole training file, proxies
    /// marked: loads straight into the engine.
    #[serde(skip)]
    pub catalog: Catalog,
}

/// Feature positions of the product columns.
pub struct Layout {
    /// Per line: its P and A feature positions.
    pub columns: Vec<[usize; 2]>,
}

impl Layout {
    fn new(encoder: &Encoder) -> Result<Layout, BoxError> {
        let at = |name: &str| encoder.feature_range(name).map(|r| r.start).ok_or(format!("no column {name}"));
        let columns = data::LINES
            .iter()
            .map(|(s, _)| Ok([at(&format!("P{s}"))?, at(&format!("A{s}"))?]))
            .collect::<Result<_, BoxError>>()?;
        Ok(Layout { columns })
    }

    /// Does each row hold each product (22 columns; caravan from `caravan`)?
    fn holdings(&self, x: ArrayView2<'_, f64>, caravan: Option<&[bool]>) -> Array2<bool> {
        let mut held = Array2::from_elem((x.nrows(), self.columns.len() + 1), false);
        for (i, row) in x.rows().into_iter().enumerate() {
            for (p, [_, a]) in self.columns.iter().enumerate() {
                held[[i, p]] = row[*a] > 0.0;
            }
            held[[i, self.columns.len()]] = caravan.is_some_and(|c| c[i]);
        }
        held
    }
}

/// Per-product models over one schema, with a dense weight matrix.
struct Fitted {
    schema: FeatureSchema,
    models: Vec<PropensityModel>,
    intercept_only: Vec<String>,
    weights: Array2<f64>,
    bias: Array1<f64>,
}

impl Fitted {
    /// Probabilities, one row per customer, one column per product.
    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut z = x.dot(&self.weights.t());
        for mut row in z.rows_mut() {
            row.zip_mut_with(&self.bias, |z, b| *z = 1.0 / (1.0 + (-(*z + b)).exp()));
        }
        z
    }
}

fn dense(schema: &FeatureSchema, model: &PropensityModel) -> Vec<f64> {
    let mut w = vec![0.0; schema.len()];
    if let Weights::ByName(map) = &model.weights {
        for (name, v) in map {
            if let Some(i) = schema.index_of(name) {
                w[i] = *v;
            }
        }
    }
    w
}

/// Fits `products` (positions in [`data::products`]); rare ones get their
/// prevalence.
fn fit(
    params: &ValidTrainParams,
    encoder: &Encoder,
    x: ArrayView2<'_, f64>,
    held: &Array2<bool>,
    products: &[usize],
) -> Result<Fitted, BoxError> {
    let names = data::products();
    let n = x.nrows();
    let count = |p: usize| held.column(p).iter().filter(|&&h| h).count();
    let targets: Vec<Target<'_>> = products
        .iter()
        .filter(|&&p| count(p) >= MIN_HOLDERS && n - count(p) >= MIN_HOLDERS)
        .map(|&p| Target::new(names[p].as_str(), held.column(p)).exclude(data::product_columns(p)))
        .collect();
    if !targets.iter().any(|t| t.product.as_str() == data::CARAVAN_PRODUCT) {
        return Err(format!("fewer than {MIN_HOLDERS} caravan holders (or non-holders) to train on").into());
    }
    let trained: TrainedModels = params.fit_encoded(encoder.clone(), x, &targets)?;
    let mut models = Vec::new();
    let mut intercept_only = Vec::new();
    for &p in products {
        if let Some(m) = trained.model(&names[p]) {
            models.push(m.model.clone());
        } else {
            let prevalence = (count(p) as f64 + 0.5) / (n as f64 + 1.0);
            models.push(PropensityModel { bias: (prevalence / (1.0 - prevalence)).ln(), weights: Weights::default() });
            intercept_only.push(names[p].clone());
        }
    }
    let schema = trained.schema;
    let mut weights = Array2::zeros((models.len(), schema.len()));
    for (mut row, m) in weights.rows_mut().into_iter().zip(&models) {
        row.assign(&Array1::from(dense(&schema, m)));
    }
    let bias = models.iter().map(|m| m.bias).collect();
    Ok(Fitted { schema, models, intercept_only, weights, bias })
}

fn catalog(fitted: &Fitted) -> Catalog {
    let offers = data::products()
        .into_iter()
        .zip(&fitted.models)
        .map(|(p, model)| {
            Offer::new(p.as_str(), p.as_str(), OfferKind::CrossSell, 1.0, [Channel::Email], model.clone())
        })
        .collect();
    Catalog { schema: fitted.schema.clone(), offers }
}

fn engine(catalog: Catalog) -> Result<Engine, BoxError> {
    // Evaluation needs every offer ranked: by default the frequency cap (5)
    // and the fatigue budget (10) each lower k. `nbo::run` checks that no
    // decision was cut.
    Ok(Engine::builder().catalog(catalog).params(EngineParams::for_evaluation()).build()?)
}

/// One train/evaluate split, features encoded.
struct Split {
    train: Array2<f64>,
    train_caravan: Vec<bool>,
    test: Array2<f64>,
    test_caravan: Option<Vec<bool>>,
}

struct SplitResult {
    /// all features, guarded: (found, auc, gains)
    selections: [(f64, Option<f64>, Option<Vec<GainPoint>>); 2],
    selected: usize,
    holders: usize,
    customers: usize,
    random_expected: f64,
    random_draw: f64,
    selected_rows: Vec<usize>,
    /// Guarded, proxies marked, popularity.
    tallies: Tallies,
    marked: Vec<String>,
    intercept_only: Vec<String>,
}

/// Audits every model of `fitted` on `x` and marks the flagged features
/// `proxy` in its catalog; returns the catalog, the audits and the names
/// marked.
fn audit(
    fitted: &Fitted,
    x: ArrayView2<'_, f64>,
    params: &AuditParams,
) -> Result<(Catalog, Vec<ProxyAudit>, Vec<String>), BoxError> {
    let auditor = ProxyAuditor::new(&fitted.schema, x, params.check()?)?;
    let audits = data::products()
        .into_iter()
        .zip(&fitted.models)
        .map(|(name, model)| auditor.audit(&name.as_str().into(), model))
        .collect::<Result<Vec<ProxyAudit>, _>>()?;
    // Each flagged feature becomes a proxy of the category it reveals most
    // (in the first audit that flags it).
    let mut catalog = catalog(fitted);
    let mut marked: Vec<String> = audits.iter().flat_map(|a| a.mark(&mut catalog.schema)).collect();
    marked.sort();
    Ok((catalog, audits, marked))
}

fn run_split(
    params: &ValidTrainParams,
    audit_params: &AuditParams,
    encoders: &[Encoder; 2],
    layout: &Layout,
    split: &Split,
    selected: usize,
    seed: u64,
) -> Result<SplitResult, BoxError> {
    let caravan = data::products().len() - 1;
    let train_held = layout.holdings(split.train.view(), Some(&split.train_caravan));
    let test_held = layout.holdings(split.test.view(), split.test_caravan.as_deref());
    let all_products: Vec<usize> = (0..=caravan).collect();
    let naive = fit(params, &encoders[0], split.train.view(), &train_held, &[caravan])?;
    let guarded = fit(params, &encoders[1], split.train.view(), &train_held, &all_products)?;

    // Task 1.
    let naive_scores = naive.scores(split.test.view()).column(0).to_vec();
    let guarded_scores = guarded.scores(split.test.view()).column(caravan).to_vec();
    let n = split.test.nrows();
    let selected = selected.min(n);
    let mut rng = StdRng::seed_from_u64(seed);
    let random_scores: Vec<f64> = (0..n).map(|_| rng.gen()).collect();
    let (selections, holders, random_expected, random_draw) = match &split.test_caravan {
        Some(labels) => {
            let evaluate = |scores: &[f64]| -> Result<_, BoxError> {
                let found = metrics::hits_in_top(scores, labels, selected)? as f64;
                let auc = metrics::auc(scores, labels).ok();
                let gains = metrics::cumulative_gains(scores, labels, 100).ok();
                Ok((found, auc, gains))
            };
            let holders = labels.iter().filter(|&&y| y).count();
            let expected = selected as f64 * holders as f64 / n as f64;
            let draw = metrics::hits_in_top(&random_scores, labels, selected)? as f64;
            ([evaluate(&naive_scores)?, evaluate(&guarded_scores)?], holders, expected, draw)
        }
        None => ([(f64::NAN, None, None), (f64::NAN, None, None)], 0, f64::NAN, f64::NAN),
    };
    let selected_rows = match &split.test_caravan {
        None => metrics::ranking(&guarded_scores).into_iter().take(selected).map(|i| i + 1).collect(),
        Some(_) => Vec::new(),
    };

    // Task 2, through the engine with the guarded catalog.
    let prevalence: Vec<f64> =
        train_held.columns().into_iter().map(|c| c.iter().filter(|&&h| h).count() as f64 / c.len() as f64).collect();
    let (marked_catalog, _, marked) = audit(&guarded, split.train.view(), audit_params)?;
    let engines = [engine(catalog(&guarded))?, engine(marked_catalog)?];
    let tallies = nbo::run(&engines, layout, split.test.view(), &test_held, &prevalence, split.test_caravan.is_some())?;
    Ok(SplitResult {
        selections,
        selected,
        holders,
        customers: n,
        random_expected,
        random_draw,
        selected_rows,
        tallies,
        marked,
        intercept_only: guarded.intercept_only,
    })
}

fn rows(x: &Array2<f64>, keep: &[usize]) -> Array2<f64> {
    x.select(Axis(0), keep)
}

fn mean_gains(curves: &[Vec<GainPoint>]) -> Vec<GainPoint> {
    let Some(first) = curves.first() else { return Vec::new() };
    (0..first.len())
        .map(|i| GainPoint {
            contacted: first[i].contacted,
            found: curves.iter().map(|c| c[i].found).sum::<f64>() / curves.len() as f64,
        })
        .collect()
}

/// Runs everything.
pub fn run(opts: &Options) -> Result<Report, BoxError> {
    let params = opts.params.check()?;
    let train_data = data::load(&opts.train)?;
    let Data { records, caravan } = train_data;
    let caravan = caravan.ok_or_else(|| format!("{}: no CARAVAN column to train on", opts.train.display()))?;
    let keep = opts.max_rows.unwrap_or(records.nrows()).min(records.nrows());
    let records = records.slice(ndarray::s![..keep, ..]).to_owned();
    let caravan = caravan[..keep].to_vec();
    let encoders = [data::schema(false), data::schema(true)].map(Encoder::new);
    let encoders = [encoders[0].clone()?, encoders[1].clone()?];
    let layout = Layout::new(&encoders[1])?;
    let x = encoders[1].encode(records.view())?;

    let (splits, selected_per_split, evaluation): (Vec<Split>, Vec<usize>, String) = if let Some(path) = &opts.test {
        let test = data::load(path)?;
        let test_x = encoders[1].encode(test.records.view())?;
        let evaluation =
            format!("trained on {} ({} rows), evaluated on {}", opts.train.display(), keep, path.display());
        let selected = opts.select.min(test_x.nrows());
        let split =
            Split { train: x.clone(), train_caravan: caravan.clone(), test: test_x, test_caravan: test.caravan };
        (vec![split], vec![selected], evaluation)
    } else {
        let fold = metrics::stratified_folds(&caravan, opts.folds, opts.seed)?;
        let mut splits = Vec::new();
        let mut selected = Vec::new();
        for f in 0..opts.folds {
            let (test_rows, train_rows): (Vec<usize>, Vec<usize>) = (0..keep).partition(|&i| fold[i] == f);
            selected.push((test_rows.len() as f64 * 0.2).round() as usize);
            splits.push(Split {
                train: rows(&x, &train_rows),
                train_caravan: train_rows.iter().map(|&i| caravan[i]).collect(),
                test: rows(&x, &test_rows),
                test_caravan: Some(test_rows.iter().map(|&i| caravan[i]).collect()),
            });
        }
        let evaluation = format!(
            "stratified {}-fold cross-validation of {} ({} rows), seed {}",
            opts.folds,
            opts.train.display(),
            keep,
            opts.seed
        );
        (splits, selected, evaluation)
    };

    let results = splits
        .iter()
        .zip(&selected_per_split)
        .enumerate()
        .map(|(i, (split, &selected))| {
            run_split(&params, &opts.audit, &encoders, &layout, split, selected, opts.seed + i as u64)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let task1 = task1_summary(opts, &results);
    let task2 = nbo::summary(
        &results.iter().map(|r| &r.tallies).collect::<Vec<_>>(),
        results.iter().map(|r| r.marked.clone()).collect(),
        results.iter().map(|r| r.intercept_only.clone()).collect(),
        opts.test.is_none() || splits[0].test_caravan.is_some(),
    );

    // Proxy audit of the guarded models trained on the whole training file.
    let held = layout.holdings(x.view(), Some(&caravan));
    let all_products: Vec<usize> = (0..data::products().len()).collect();
    let full = fit(&params, &encoders[1], x.view(), &held, &all_products)?;
    let (catalog, audits, marked) = audit(&full, x.view(), &opts.audit)?;
    let flagged: Vec<(String, Vec<String>)> =
        audits.iter().map(|a| (a.product.to_string(), a.flagged().map(|r| r.feature.clone()).collect())).collect();
    let proxy_audit = audits.into_iter().last().ok_or("no caravan model")?;

    Ok(Report {
        evaluation,
        train: opts.train.display().to_string(),
        test: opts.test.as_ref().map(|p| p.display().to_string()),
        train_rows: keep,
        params: opts.params,
        task1,
        task2,
        proxy_audit,
        flagged,
        marked_proxies: marked,
        catalog,
    })
}

fn task1_summary(opts: &Options, results: &[SplitResult]) -> Task1 {
    let names = ["all features", "guarded"];
    let mut out: Vec<Selection> = names
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let found: Vec<f64> = results.iter().map(|r| r.selections[m].0).collect();
            let aucs: Vec<f64> = results.iter().filter_map(|r| r.selections[m].1).collect();
            Selection {
                model: (*name).to_owned(),
                found: found.iter().sum(),
                found_per_split: found,
                auc: (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64),
                auc_per_split: aucs,
            }
        })
        .collect();
    for (name, get) in [
        ("random (expected)", (|r: &SplitResult| r.random_expected) as fn(&SplitResult) -> f64),
        ("random (seeded draw)", |r: &SplitResult| r.random_draw),
    ] {
        let found: Vec<f64> = results.iter().map(get).collect();
        out.push(Selection {
            model: name.to_owned(),
            found: found.iter().sum(),
            found_per_split: found,
            auc: None,
            auc_per_split: vec![],
        });
    }
    let curve = |m: usize| -> Vec<GainPoint> {
        mean_gains(&results.iter().filter_map(|r| r.selections[m].2.clone()).collect::<Vec<_>>())
    };
    let random = (0..=100).map(|i| GainPoint { contacted: i as f64 / 100.0, found: i as f64 / 100.0 }).collect();
    let selected: usize = results.iter().map(|r| r.selected).sum();
    let selection = match &opts.test {
        Some(_) => format!("the {selected} customers of the test file with the highest caravan propensity"),
        None => format!(
            "the top 20% of each held-out fold by caravan propensity ({selected} customers over {} folds), holders found summed over the folds",
            results.len()
        ),
    };
    Task1 {
        selection,
        selected,
        holders: results.iter().map(|r| r.holders).sum(),
        customers: results.iter().map(|r| r.customers).sum(),
        results: out,
        gains: vec![("all features".into(), curve(0)), ("guarded".into(), curve(1)), ("random".into(), random)],
        selected_rows: results.iter().flat_map(|r| r.selected_rows.iter().copied()).collect(),
    }
}
