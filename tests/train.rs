//! Training on seeded synthetic data: what the learner may see, probability
//! orientation, raw-scale weights, engine agreement, JSON round-trips and
//! typed errors.

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tactful::train::{
    ClassWeight, Column, Level, LifeEventFeatures, Target, TrainError, TrainParams, TrainedModels, TrainingSchema,
};
use tactful::{
    Catalog, Channel, Consents, Customer, Engine, FeatureValues, LifeEvent, Offer, OfferKind, Request, Sensitivity,
    SpecialCategory, Weights,
};

fn schema() -> TrainingSchema {
    TrainingSchema::new(vec![
        Column::numeric("income", "income"),
        Column::numeric("tenure", "tenure"),
        Column::categorical(
            "segment",
            "segment",
            vec![
                Level::new(1, "segment one"),
                Level::new(2, "segment two"),
                Level::new(3, "segment three").sensitivity(Sensitivity::Special(SpecialCategory::Ethnicity)),
            ],
        ),
        Column::numeric("religion", "religion").sensitivity(Sensitivity::Special(SpecialCategory::Religion)),
        Column::numeric("household", "household size").sensitivity(Sensitivity::LifeEvent(LifeEvent::FamilyStatus)),
        Column::numeric("constant", "constant"),
    ])
}

/// Records and labels drawn from a known logistic model (seeded).
fn data(n: usize, seed: u64) -> (Array2<f64>, Array1<bool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, 6));
    let mut y = Array1::from_elem(n, false);
    for i in 0..n {
        let income = rng.gen_range(0.0..100.0);
        let tenure = f64::from(rng.gen_range(0..20));
        let segment = f64::from(rng.gen_range(1..=3));
        let religion = f64::from(rng.gen_range(0..10));
        let household = f64::from(rng.gen_range(1..6));
        let row = [income, tenure, segment, religion, household, 5.0];
        x.row_mut(i).assign(&Array1::from(row.to_vec()));
        let logit = -4.0 + 0.03 * income + 0.1 * tenure + 0.8 * f64::from(segment == 2.0) + 0.2 * religion;
        y[i] = rng.gen::<f64>() < 1.0 / (1.0 + (-logit).exp());
    }
    (x, y)
}

fn fit(params: TrainParams, x: &Array2<f64>, targets: &[Target<'_>]) -> TrainedModels {
    params.check().unwrap().fit(&schema(), x.view(), targets).unwrap()
}

fn weight_names(models: &TrainedModels, product: &str) -> Vec<String> {
    match &models.model(product).unwrap().model.weights {
        Weights::ByName(map) => map.keys().cloned().collect(),
        Weights::Dense(_) => panic!("trained weights are by name"),
    }
}

fn mean_by_label(p: &Array1<f64>, y: &Array1<bool>, label: bool) -> f64 {
    let v: Vec<f64> = p.iter().zip(y).filter(|(_, &l)| l == label).map(|(&p, _)| p).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn special_and_undeclared_life_event_features_never_reach_the_learner() {
    let (x, y) = data(2000, 1);
    let models = fit(TrainParams::default(), &x, &[Target::new("offer", y.view())]);
    let names = weight_names(&models, "offer");
    assert_eq!(names, ["income", "segment=1", "segment=2", "tenure"]);
    for f in &models.schema.features {
        if f.sensitivity != Sensitivity::Ordinary {
            assert!(!names.contains(&f.name.to_string()), "{} is sensitive", f.name);
        }
    }

    let params = TrainParams { life_events: LifeEventFeatures::Include, ..TrainParams::default() };
    let names = weight_names(&fit(params, &x, &[Target::new("offer", y.view())]), "offer");
    assert!(names.contains(&"household".to_owned()));
    assert!(!names.iter().any(|n| n == "religion" || n == "segment=3" || n == "constant"));

    let excluded = Target::new("offer", y.view()).exclude(["income"]);
    let names = weight_names(&fit(TrainParams::default(), &x, &[excluded]), "offer");
    assert!(!names.contains(&"income".to_owned()));
}

#[test]
fn positives_score_higher_whatever_linfa_calls_positive() {
    let (x, y) = data(2000, 2);
    let rare = y.clone();
    let common = y.mapv(|l| !l);
    assert!(rare.iter().filter(|&&l| l).count() < 1000);
    for class_weight in [ClassWeight::Balanced, ClassWeight::Unweighted] {
        let params = TrainParams { class_weight, ..TrainParams::default() };
        let models = fit(params, &x, &[Target::new("rare", rare.view()), Target::new("common", common.view())]);
        let features = models.encoder().encode(x.view()).unwrap();
        for (product, labels) in [("rare", &rare), ("common", &common)] {
            let p = models.predict(product, features.view()).unwrap();
            assert!(
                mean_by_label(&p, labels, true) > mean_by_label(&p, labels, false) + 0.05,
                "{product} ({class_weight:?}): positives must score higher"
            );
        }
        // Unweighted, linfa's positive class is the majority: the rare
        // target needs the flip, the common one does not.
        if class_weight == ClassWeight::Unweighted {
            assert!(models.model("rare").unwrap().summary.orientation_flipped);
            assert!(!models.model("common").unwrap().summary.orientation_flipped);
        }
    }
}

#[test]
fn raw_scale_weights_recover_the_generating_model_and_stay_calibrated() {
    let (x, y) = data(4000, 3);
    let prevalence = y.iter().filter(|&&l| l).count() as f64 / y.len() as f64;
    for class_weight in [ClassWeight::Balanced, ClassWeight::Unweighted, ClassWeight::Positive(3)] {
        let params = TrainParams { class_weight, l2_penalty: 1e-4, ..TrainParams::default() };
        let models = fit(params, &x, &[Target::new("offer", y.view())]);
        let Weights::ByName(w) = &models.model("offer").unwrap().model.weights else { panic!() };
        // Raw scale: per unit of income and tenure, close to 0.03 and 0.1.
        assert!((w["income"] - 0.03).abs() < 0.01, "{class_weight:?}: income weight {}", w["income"]);
        assert!((w["tenure"] - 0.1).abs() < 0.04, "{class_weight:?}: tenure weight {}", w["tenure"]);
        assert!(w["segment=2"] - w["segment=1"] > 0.4);
        // The prior correction keeps the mean probability near the prevalence.
        let features = models.encoder().encode(x.view()).unwrap();
        let mean = models.predict("offer", features.view()).unwrap().mean().unwrap();
        assert!((mean - prevalence).abs() < 0.03, "{class_weight:?}: mean {mean} vs prevalence {prevalence}");
        // Baselines are the training means.
        let income = models.schema.index_of("income").unwrap();
        assert!((models.schema.features[income].baseline - x.column(0).mean().unwrap()).abs() < 1e-9);
    }
}

fn catalog(models: &TrainedModels) -> Catalog {
    let model = models.model("offer").unwrap().model.clone();
    let offer = Offer::new("offer", "offer", OfferKind::CrossSell, 1.0, [Channel::Email], model);
    Catalog { schema: models.schema.clone(), offers: vec![offer] }
}

fn engine_propensities(engine: &Engine, features: &Array2<f64>) -> Vec<f64> {
    let request: Request =
        serde_json::from_str(r#"{"now": "2026-01-01T00:00:00Z", "channel": "email", "k": 1}"#).unwrap();
    features
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let customer = Customer {
                consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
                ..Customer::new(format!("c{i}"), FeatureValues::Dense(row.to_vec()))
            };
            let decision = engine.recommend(&customer, &request).unwrap();
            decision.recommendations[0].explanation.components.propensity
        })
        .collect()
}

#[test]
fn trained_models_drop_into_the_engine_and_survive_json() {
    let (x, y) = data(1500, 4);
    let models = fit(TrainParams::default(), &x, &[Target::new("offer", y.view())]);
    let features = models.encoder().encode(x.slice(ndarray::s![..200, ..]).view()).unwrap();
    let expected = models.predict("offer", features.view()).unwrap();

    let engine = Engine::new(catalog(&models)).unwrap();
    let scores = engine_propensities(&engine, &features);
    for (s, e) in scores.iter().zip(&expected) {
        assert!((s - e).abs() < 1e-12, "engine {s} vs trained model {e}");
    }

    let json = serde_json::to_string(&catalog(&models)).unwrap();
    let reloaded = Engine::new(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(engine_propensities(&reloaded, &features), scores);

    let json = serde_json::to_string(&models).unwrap();
    let back: TrainedModels = serde_json::from_str(&json).unwrap();
    assert_eq!(back, models);
    assert_eq!(back.predict("offer", features.view()).unwrap(), expected);
}

#[test]
fn training_is_deterministic() {
    let (x, y) = data(1000, 5);
    let targets = [Target::new("a", y.view()), Target::new("b", y.view()).exclude(["tenure"])];
    assert_eq!(fit(TrainParams::default(), &x, &targets), fit(TrainParams::default(), &x, &targets));
}

#[test]
fn bad_input_is_a_typed_error_that_says_where() {
    let (mut x, y) = data(100, 6);
    let params = TrainParams::default().check().unwrap();
    let one = |t: Target<'_>, x: &Array2<f64>| params.fit(&schema(), x.view(), &[t]).unwrap_err();

    let all_false = Array1::from_elem(100, false);
    assert!(matches!(
        one(Target::new("p", all_false.view()), &x),
        TrainError::SingleClass { positives: 0, negatives: 100, .. }
    ));
    assert!(matches!(
        one(Target::new("p", y.view()).exclude(["nope"]), &x),
        TrainError::UnknownColumn { ref column, .. } if column == "nope"
    ));
    let short = y.slice(ndarray::s![..10]);
    assert!(matches!(one(Target::new("p", short), &x), TrainError::LabelCount { expected: 100, found: 10, .. }));

    x[[7, 2]] = 4.0;
    assert_eq!(
        one(Target::new("p", y.view()), &x),
        TrainError::UnknownLevel { row: 7, column: "segment".into(), value: 4.0 }
    );
    x[[7, 2]] = 1.0;
    x[[9, 1]] = f64::NAN;
    assert!(matches!(
        one(Target::new("p", y.view()), &x),
        TrainError::NonFinite { row: 9, ref column, .. } if column == "tenure"
    ));

    for bad in [
        TrainParams { l2_penalty: -1.0, ..TrainParams::default() },
        TrainParams { gradient_tolerance: 0.0, ..TrainParams::default() },
        TrainParams { max_iterations: 0, ..TrainParams::default() },
        TrainParams { class_weight: ClassWeight::Positive(0), ..TrainParams::default() },
    ] {
        assert!(matches!(bad.check(), Err(TrainError::InvalidParameter { .. })));
    }
}
