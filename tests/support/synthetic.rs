//! A realistic synthetic bank catalog and customers, generated from a seed,
//! shared by `benches/ranking.rs`, `tests/alloc.rs` and `tests/fast_path.rs`.
//!
//! 64 features: 48 ordinary, 4 special-category, 4 life-event and 8 proxy
//! features (4 standing in for life events, 4 for special categories).
//! Offers come four to a product; about 90% are made by e-mail; 30% have
//! age bounds, 10% are up-sells of another product, 5% require and 5%
//! exclude a holding; 3% target a life event, 15% are unsuitable in
//! financial distress or gambling. Ordinary weights are dense (as trained
//! models are); 30% of the offers also weigh the proxy features.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tactful::{
    Catalog, Channel, Consents, Contact, ContactOutcome, Customer, EligibilityRules, EngineParams, FeatureSchema,
    FeatureSpec, FeatureValues, LifeEvent, LifeEventSignal, LifeEventUse, Marketing, Offer, OfferKind, PropensityModel,
    Provenance, ProxyTarget, Request, Sensitivity, SpecialCategory, Vulnerability, VulnerabilityMarker, Weights,
};

/// Features per customer.
pub const FEATURES: usize = 64;
const ORDINARY: usize = 48;
const SPECIAL: [SpecialCategory; 4] =
    [SpecialCategory::Religion, SpecialCategory::Ethnicity, SpecialCategory::Health, SpecialCategory::TradeUnion];
const EVENTS: [LifeEvent; 4] =
    [LifeEvent::NewChild, LifeEvent::Divorce, LifeEvent::JobLoss, LifeEvent::FinancialDistress];
const CHANNELS: [(Channel, f64); 7] = [
    (Channel::Email, 0.9),
    (Channel::App, 0.7),
    (Channel::Web, 0.5),
    (Channel::Sms, 0.3),
    (Channel::Phone, 0.2),
    (Channel::Post, 0.2),
    (Channel::Branch, 0.2),
];

/// The request time used throughout.
pub fn now() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().expect("valid time")
}

/// A top-5 e-mail request at [`now`].
pub fn request() -> Request {
    Request { now: now(), channel: Channel::Email, k: 5 }
}

/// Default parameters, except a frequency cap high enough that the
/// customers' contact histories leave room for all five offers.
pub fn params() -> EngineParams {
    let mut p = EngineParams::default();
    p.contact.frequency_cap = 8;
    p
}

fn normal(rng: &mut StdRng) -> f64 {
    // Irwin–Hall approximation: deterministic and good enough here.
    (0..12).map(|_| rng.gen::<f64>()).sum::<f64>() - 6.0
}

fn schema(rng: &mut StdRng) -> FeatureSchema {
    let mut features = Vec::with_capacity(FEATURES);
    for i in 0..ORDINARY {
        features
            .push(FeatureSpec::new(&format!("f{i:02}"), &format!("profile signal {i}")).baseline(0.2 * normal(rng)));
    }
    for (i, c) in SPECIAL.iter().enumerate() {
        features.push(FeatureSpec::new(&format!("special_{i}"), "special").sensitivity(Sensitivity::Special(*c)));
    }
    for (i, e) in EVENTS.iter().enumerate() {
        features.push(FeatureSpec::new(&format!("event_{i}"), "event").sensitivity(Sensitivity::LifeEvent(*e)));
    }
    for i in 0..8 {
        let target = if i < 4 { ProxyTarget::LifeEvent(EVENTS[i]) } else { ProxyTarget::Special(SPECIAL[i - 4]) };
        features.push(
            FeatureSpec::new(&format!("proxy_{i}"), "proxy").sensitivity(Sensitivity::Proxy(target)).baseline(0.1),
        );
    }
    FeatureSchema::new(features)
}

fn product(i: usize) -> tactful::ProductId {
    format!("product-{i:05}").into()
}

/// A catalog of `n_offers` offers over [`FEATURES`] features.
pub fn catalog(n_offers: usize, seed: u64) -> Catalog {
    let mut rng = StdRng::seed_from_u64(seed);
    let schema = schema(&mut rng);
    let n_products = n_offers.div_ceil(4).max(1);
    let offers = (0..n_offers)
        .map(|i| {
            let mut channels: Vec<Channel> =
                CHANNELS.iter().filter(|(_, p)| rng.gen_bool(*p)).map(|&(c, _)| c).collect();
            if channels.is_empty() {
                channels.push(Channel::Branch);
            }
            let mut eligibility = EligibilityRules::default();
            if rng.gen_bool(0.3) {
                eligibility.min_age = Some(18 + rng.gen_range(0..10));
                if rng.gen_bool(0.3) {
                    eligibility.max_age = Some(60 + rng.gen_range(0..20));
                }
            }
            let kind = if rng.gen_bool(0.1) {
                eligibility.base_product = Some(product(rng.gen_range(0..n_products)));
                OfferKind::UpSell
            } else if rng.gen_bool(0.05) {
                OfferKind::Retention
            } else {
                OfferKind::CrossSell
            };
            if rng.gen_bool(0.05) {
                eligibility.requires.push(product(rng.gen_range(0..n_products)));
            }
            if rng.gen_bool(0.05) {
                eligibility.excludes.push(product(rng.gen_range(0..n_products)));
            }
            let targets = if rng.gen_bool(0.03) { vec![EVENTS[rng.gen_range(0..4)]] } else { vec![] };
            let unsuitable_for = if rng.gen_bool(0.15) {
                vec![Vulnerability::FinancialDistress, Vulnerability::Gambling]
            } else {
                vec![]
            };
            let uses_proxies = rng.gen_bool(0.3);
            let weights = (0..FEATURES)
                .map(|f| match f {
                    f if f < ORDINARY => 0.15 * normal(&mut rng),
                    f if f < ORDINARY + 8 => 0.3 * normal(&mut rng),
                    _ if uses_proxies => 0.2 * normal(&mut rng),
                    _ => 0.0,
                })
                .collect();
            // Drawn in this order, so that the catalog stays the one measured.
            let value = 20.0 + 480.0 * rng.gen::<f64>();
            let weight = [1.0, 1.0, 1.0, 0.8, 1.2][rng.gen_range(0..5)];
            let model = PropensityModel { bias: -2.0 + 0.5 * normal(&mut rng), weights: Weights::Dense(weights) };
            Offer::new(format!("offer-{i:05}"), product(i / 4), kind, value, channels, model)
                .with_weight(weight)
                .with_eligibility(eligibility)
                .with_targets(targets)
                .with_unsuitable_for(unsuitable_for)
        })
        .collect();
    Catalog { schema, offers }
}

/// Customer number `i` for a catalog of `n_offers` offers: a few holdings, a
/// small contact history, an inferred life event; every fourth customer
/// declared one with consent, every tenth has an inferred vulnerability.
pub fn customer(n_offers: usize, i: u64) -> Customer {
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + i);
    let n_products = n_offers.div_ceil(4).max(1);
    let holdings = (0..6).map(|_| product(rng.gen_range(0..n_products))).collect();
    let features = FeatureValues::Dense((0..FEATURES).map(|_| normal(&mut rng)).collect());
    let mut life_events =
        vec![LifeEventSignal { event: LifeEvent::NewChild, provenance: Provenance::Inferred { confidence: 0.87 } }];
    let declared = i % 4 == 3;
    if declared {
        life_events.push(LifeEventSignal { event: EVENTS[rng.gen_range(0..4)], provenance: Provenance::Declared });
    }
    let vulnerabilities = if i % 10 == 9 {
        vec![VulnerabilityMarker {
            vulnerability: Vulnerability::Gambling,
            provenance: Provenance::Inferred { confidence: 0.6 },
        }]
    } else {
        vec![]
    };
    let offer = |rng: &mut StdRng| tactful::OfferId::from(format!("offer-{:05}", rng.gen_range(0..n_offers)));
    let contact_history = [(45, ContactOutcome::Shown), (20, ContactOutcome::Dismissed), (60, ContactOutcome::Shown)]
        .into_iter()
        .map(|(days, outcome)| Contact {
            offer: offer(&mut rng),
            at: now() - Duration::days(days),
            channel: None,
            outcome,
        })
        .collect();
    Customer {
        id: format!("customer-{i}").into(),
        age: Some(25 + rng.gen_range(0..50)),
        features,
        holdings,
        life_events,
        vulnerabilities,
        consents: Consents {
            marketing: Marketing::Allowed,
            channels: vec![Channel::Email, Channel::App],
            life_event_use: if declared { LifeEventUse::Consented } else { LifeEventUse::NotConsented },
        },
        contact_history,
        relationship: None,
        value: None,
    }
}
