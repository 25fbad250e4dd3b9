//! Pieces of the random test worlds of `tests/fast_path.rs` and
//! `tests/properties.rs`: the customer generator and its helpers. Values are
//! drawn in a fixed order, which the stored proptest regression seeds
//! depend on: keep it when changing this file.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use tactful::{
    Channel, Consents, Contact, ContactOutcome, Customer, FeatureValues, LifeEvent, LifeEventSignal, LifeEventUse,
    Marketing, Offer, Provenance, Vulnerability, VulnerabilityMarker,
};

pub const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::App];
pub const EVENTS: [LifeEvent; 3] = [LifeEvent::NewChild, LifeEvent::Divorce, LifeEvent::FinancialDistress];
pub const VULNS: [Vulnerability; 2] = [Vulnerability::FinancialDistress, Vulnerability::Gambling];

/// Each item with probability `p`, in order.
pub fn pick<T: Clone>(rng: &mut StdRng, items: &[T], p: f64) -> Vec<T> {
    items.iter().filter(|_| rng.gen_bool(p)).cloned().collect()
}

/// Declared, observed or inferred with a random confidence.
pub fn provenance(rng: &mut StdRng) -> Provenance {
    match rng.gen_range(0..3) {
        0 => Provenance::Declared,
        1 => Provenance::Observed,
        _ => Provenance::Inferred { confidence: rng.gen_range(0.0..=1.0) },
    }
}

/// Where the two suites' customers differ.
pub struct CustomerMix {
    /// Products a customer may hold (each with probability 0.4).
    pub products: &'static [&'static str],
    /// Life-event signals: fewer than this many. (An `i32`: the type
    /// drawn is part of the order.)
    pub events_below: i32,
    /// Probability of a marketing opt-out.
    pub opt_out: f64,
    /// Probability of each channel's consent.
    pub channel_consent: f64,
    /// Contacts with the offers: fewer than this many.
    pub contacts_below: i32,
}

/// A random customer `id` of the world of `offers`: age, `features` (drawn
/// by the caller's closure at this point of the order), holdings, life
/// events, vulnerabilities, consents and a contact history around `now`.
pub fn customer(
    rng: &mut StdRng,
    id: &str,
    mix: &CustomerMix,
    features: impl FnOnce(&mut StdRng) -> FeatureValues,
    offers: &[Offer],
    now: DateTime<Utc>,
) -> Customer {
    let age = if rng.gen_bool(0.9) { Some(rng.gen_range(16..90)) } else { None };
    let features = features(rng);
    let holdings = pick(rng, mix.products, 0.4).into_iter().map(Into::into).collect();
    let life_events = (0..rng.gen_range(0..mix.events_below))
        .map(|_| LifeEventSignal { event: EVENTS[rng.gen_range(0..3)], provenance: provenance(rng) })
        .collect();
    let vulnerabilities = (0..rng.gen_range(0..2))
        .map(|_| VulnerabilityMarker { vulnerability: VULNS[rng.gen_range(0..2)], provenance: provenance(rng) })
        .collect();
    let consents = Consents {
        marketing: if rng.gen_bool(mix.opt_out) { Marketing::OptedOut } else { Marketing::Allowed },
        channels: pick(rng, &CHANNELS, mix.channel_consent),
        life_event_use: if rng.gen_bool(0.5) { LifeEventUse::Consented } else { LifeEventUse::NotConsented },
    };
    let contact_history = (0..rng.gen_range(0..mix.contacts_below))
        .map(|_| Contact {
            offer: offers[rng.gen_range(0..offers.len())].id.clone(),
            at: now - chrono::Duration::days(rng.gen_range(-5..120)),
            channel: None,
            outcome: [ContactOutcome::Shown, ContactOutcome::Dismissed, ContactOutcome::Accepted][rng.gen_range(0..3)],
        })
        .collect();
    Customer {
        age,
        features,
        holdings,
        life_events,
        vulnerabilities,
        consents,
        contact_history,
        ..Customer::new(id, FeatureValues::Dense(Vec::new()))
    }
}
