//! Builders shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use tactful::{
    Catalog, Channel, Consents, Contact, ContactOutcome, Customer, Decision, Engine, EngineParams, FeatureSchema,
    FeatureSpec, FeatureValues, LifeEvent, Offer, OfferKind, PropensityModel, ProxyTarget, Request, Sensitivity,
    SpecialCategory,
};

pub const NOW: &str = "2026-11-23T10:00:00Z";

/// Two ordinary features, one of each sensitive class.
pub fn schema() -> FeatureSchema {
    FeatureSchema::new(vec![
        FeatureSpec::new("income", "income"),
        FeatureSpec::new("tenure", "years as a customer"),
        FeatureSpec::new("religion", "religion").sensitivity(Sensitivity::Special(SpecialCategory::Religion)),
        FeatureSpec::new("pregnancy_signal", "pregnancy signal")
            .sensitivity(Sensitivity::LifeEvent(LifeEvent::NewChild)),
        FeatureSpec::new("baby_spend", "baby store spending")
            .sensitivity(Sensitivity::Proxy(ProxyTarget::LifeEvent(LifeEvent::NewChild))),
        FeatureSpec::new("neighbourhood_mix", "neighbourhood mix")
            .sensitivity(Sensitivity::Proxy(ProxyTarget::Special(SpecialCategory::Ethnicity))),
    ])
}

/// An offer for product `id` on e-mail, value 100, with the given weights.
pub fn offer(id: &str, bias: f64, weights: &[(&str, f64)]) -> Offer {
    Offer::new(id, id, OfferKind::CrossSell, 100.0, [Channel::Email], PropensityModel::by_name(bias, weights.to_vec()))
}

pub fn catalog(offers: Vec<Offer>) -> Catalog {
    Catalog { schema: schema(), offers }
}

pub fn engine(offers: Vec<Offer>) -> Engine {
    Engine::new(catalog(offers)).expect("valid catalog")
}

pub fn engine_with(offers: Vec<Offer>, params: EngineParams) -> Engine {
    Engine::builder().catalog(catalog(offers)).params(params).build().expect("valid catalog")
}

/// Consents to e-mail; every feature 1 except the sensitive ones at 0.
pub fn customer() -> Customer {
    let features: BTreeMap<String, f64> = schema().features.iter().map(|f| (f.name.to_string(), 0.0)).collect();
    let mut c = Customer {
        age: Some(40),
        consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
        ..Customer::new("c-1", FeatureValues::ByName(features))
    };
    set(&mut c, "income", 1.0);
    set(&mut c, "tenure", 1.0);
    c
}

pub fn set(customer: &mut Customer, feature: &str, value: f64) {
    match &mut customer.features {
        FeatureValues::ByName(map) => {
            map.insert(feature.to_owned(), value);
        }
        FeatureValues::Dense(_) => panic!("test customers use named features"),
    }
}

pub fn request(k: usize) -> Request {
    Request { now: NOW.parse().unwrap(), channel: Channel::Email, k }
}

/// A contact `days_ago` days before [`NOW`].
pub fn contact(offer: &str, days_ago: i64, outcome: ContactOutcome) -> Contact {
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().unwrap();
    Contact { offer: offer.into(), at: now - chrono::Duration::days(days_ago), channel: None, outcome }
}

pub fn ids(decision: &Decision) -> Vec<&str> {
    decision.recommendations.iter().map(|r| r.offer.as_str()).collect()
}
