//! Bad input gives a typed error that says what and where, never a panic.

mod common;

use common::*;
use tactful::{
    Catalog, ConfigError, Customer, Engine, EngineParams, FeatureValues, LifeEvent, LifeEventSignal, Provenance,
    RequestError, Weights,
};

fn build(catalog: Catalog) -> ConfigError {
    Engine::new(catalog).expect_err("the catalog is invalid")
}

#[test]
fn empty_catalog_and_schema() {
    assert_eq!(build(catalog(vec![])), ConfigError::EmptyCatalog);
    let mut c = catalog(vec![offer("a", 0.0, &[])]);
    c.schema.features.clear();
    c.offers[0].model.weights = Weights::Dense(vec![]);
    assert_eq!(build(c), ConfigError::EmptySchema);
    assert_eq!(Engine::builder().build().unwrap_err(), ConfigError::MissingCatalog);
}

#[test]
fn duplicate_offer_and_feature() {
    let err = build(catalog(vec![offer("a", 0.0, &[]), offer("b", 0.0, &[]), offer("a", 1.0, &[])]));
    assert_eq!(err, ConfigError::DuplicateOffer("a".into()));
    assert_eq!(err.to_string(), "offer id `a` is used twice");
    let mut c = catalog(vec![offer("a", 0.0, &[])]);
    c.schema.features.push(c.schema.features[1].clone());
    assert!(matches!(build(c), ConfigError::DuplicateFeature { name, first: 1, second: 6 } if name == "tenure"));
}

#[test]
fn weights_not_matching_the_schema() {
    let err = build(catalog(vec![offer("a", 0.0, &[("salary", 1.0)])]));
    assert_eq!(err.to_string(), "offer `a`: weight for unknown feature `salary`");
    let mut o = offer("a", 0.0, &[]);
    o.model.weights = Weights::Dense(vec![0.0; 5]);
    assert!(matches!(build(catalog(vec![o])), ConfigError::WeightCount { expected: 6, found: 5, .. }));
    assert!(matches!(
        build(catalog(vec![offer("a", f64::NAN, &[])])),
        ConfigError::NonFiniteWeight { feature, .. } if feature == "bias"
    ));
    assert!(matches!(
        build(catalog(vec![offer("a", 0.0, &[("income", f64::NEG_INFINITY)])])),
        ConfigError::NonFiniteWeight { feature, .. } if feature == "income"
    ));
}

#[test]
fn offer_fields_out_of_range() {
    let mut o = offer("a", 0.0, &[]);
    o.value = -1.0;
    assert!(matches!(build(catalog(vec![o])), ConfigError::InvalidOfferField { field: "value", .. }));
    let mut o = offer("a", 0.0, &[]);
    o.weight = f64::INFINITY;
    assert!(matches!(build(catalog(vec![o])), ConfigError::InvalidOfferField { field: "weight", .. }));
    let mut o = offer("a", 0.0, &[]);
    o.channels.clear();
    assert_eq!(build(catalog(vec![o])), ConfigError::NoChannel("a".into()));
    let mut o = offer("a", 0.0, &[]);
    o.eligibility.min_age = Some(60);
    o.eligibility.max_age = Some(20);
    assert!(matches!(build(catalog(vec![o])), ConfigError::InvertedAgeBounds { min: 60, max: 20, .. }));
    let mut c = catalog(vec![offer("a", 0.0, &[])]);
    c.schema.features[0].baseline = f64::NAN;
    assert!(matches!(build(c), ConfigError::NonFiniteBaseline { .. }));
}

#[test]
fn invalid_parameters_are_config_errors() {
    let mut p = EngineParams::default();
    p.contact.rest_window_days = 0;
    let err = Engine::builder().catalog(catalog(vec![offer("a", 0.0, &[])])).params(p).build().unwrap_err();
    assert!(err.to_string().contains("contact.rest_window_days"), "{err}");
}

fn recommend(customer: &Customer) -> RequestError {
    engine(vec![offer("a", 0.0, &[("income", 1.0)])]).recommend(customer, &request(1)).expect_err("bad request")
}

#[test]
fn k_zero() {
    let err = engine(vec![offer("a", 0.0, &[])]).recommend(&customer(), &request(0)).unwrap_err();
    assert_eq!(err, RequestError::ZeroK);
}

#[test]
fn non_finite_features_are_named() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut c = customer();
        set(&mut c, "tenure", bad);
        assert!(matches!(recommend(&c), RequestError::NonFiniteFeature { feature, .. } if feature == "tenure"));
        c.features = FeatureValues::Dense(vec![0.0, 0.0, bad, 0.0, 0.0, 0.0]);
        assert!(matches!(recommend(&c), RequestError::NonFiniteFeature { feature, .. } if feature == "religion"));
    }
}

#[test]
fn wrong_feature_count_unknown_and_missing_names() {
    let mut c = customer();
    c.features = FeatureValues::Dense(vec![1.0; 4]);
    assert_eq!(recommend(&c).to_string(), "customer `c-1`: 4 feature values given, the schema has 6");
    let mut c = customer();
    set(&mut c, "salary", 1.0);
    assert_eq!(recommend(&c).to_string(), "customer `c-1`: unknown feature `salary`");
    let mut c = customer();
    if let FeatureValues::ByName(map) = &mut c.features {
        map.remove("baby_spend");
    }
    assert_eq!(recommend(&c).to_string(), "customer `c-1`: no value for feature `baby_spend`");
}

#[test]
fn unknown_offer_in_history_and_bad_confidence() {
    let mut c = customer();
    c.contact_history =
        vec![contact("a", 1, tactful::ContactOutcome::Shown), contact("zz", 1, tactful::ContactOutcome::Shown)];
    assert_eq!(recommend(&c).to_string(), "customer `c-1`: contact_history[1] names unknown offer `zz`");
    let mut c = customer();
    c.life_events =
        vec![LifeEventSignal { event: LifeEvent::Divorce, provenance: Provenance::Inferred { confidence: 1.5 } }];
    assert!(recommend(&c).to_string().contains("life_events[0] has confidence 1.5"));
    c.life_events[0].provenance = Provenance::Inferred { confidence: f64::NAN };
    assert!(matches!(recommend(&c), RequestError::InvalidConfidence { .. }));
}

#[test]
fn overflowing_score_is_an_error_not_a_nan() {
    let e = engine(vec![offer("a", 0.0, &[("income", 1e300)])]);
    let mut c = customer();
    set(&mut c, "income", 1e300);
    let err = e.recommend(&c, &request(1)).unwrap_err();
    assert!(matches!(err, RequestError::ScoreOverflow { .. }), "{err}");
}

#[test]
fn malformed_json_is_a_serde_error_with_a_position() {
    let err = serde_json::from_str::<Customer>(r#"{"id": "x", "features": [1, 2,]}"#).unwrap_err();
    assert!(err.line() == 1 && err.column() > 0);
    let err = serde_json::from_str::<Customer>(r#"{"id": "x", "features": [1e999]}"#).unwrap_err();
    assert!(err.to_string().contains("number out of range at line 1"), "{err}");
    let err = serde_json::from_str::<Customer>(r#"{"id": "x", "features": {"a": "NaN"}}"#).unwrap_err();
    assert!(err.to_string().contains("invalid type: string \"NaN\", expected f64"), "{err}");
    let err = serde_json::from_str::<Customer>(r#"{"id": "x", "features": [], "colour": 1}"#).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}
