//! A bank, a small catalog and three situations:
//!
//! 1. Mr. Gupta's card purchases led a model to *infer* a coming baby: the
//!    nursery loan is withheld, and the audit says why.
//! 2. Mr. Gupta *declares* the baby and consents to its use: the nursery
//!    loan may now be offered.
//! 3. Ms. Novak declared financial distress: no credit offer reaches her.
//!
//! Run with `cargo run --example quickstart`.

use std::error::Error;

use tactful::{
    Catalog, Channel, Consents, Contact, ContactOutcome, Customer, Decision, Engine, FeatureValues, LifeEvent,
    LifeEventSignal, LifeEventUse, Provenance, Request, Vulnerability, VulnerabilityMarker,
};

const CATALOG: &str = include_str!("data/catalog.json");

fn features(values: &[(&str, f64)]) -> FeatureValues {
    FeatureValues::ByName(values.iter().map(|&(k, v)| (k.to_owned(), v)).collect())
}

fn gupta() -> Customer {
    Customer {
        id: "gupta".into(),
        age: Some(38),
        features: features(&[
            ("tenure_years", 9.0),
            ("savings_balance_k", 14.0),
            ("monthly_card_spend_k", 2.1),
            ("owns_car", 1.0),
            ("owns_home", 1.0),
            ("baby_store_spend_k", 0.9),
            ("religion_code", 4.0),
            ("household_size", 2.0),
            ("expecting_child", 1.0),
        ]),
        holdings: vec!["current_account".into(), "classic_card".into(), "car_insurance".into()],
        life_events: vec![LifeEventSignal {
            event: LifeEvent::NewChild,
            provenance: Provenance::Inferred { confidence: 0.87 },
        }],
        vulnerabilities: vec![],
        consents: Consents { channels: vec![Channel::Email, Channel::App], ..Consents::default() },
        // He dismissed the travel insurance twelve days ago: it cools down,
        // and the contact counts towards his monthly frequency cap.
        relationship: None,
        value: None,
        contact_history: vec![Contact {
            offer: "travel_insurance".into(),
            at: "2026-11-11T09:30:00Z".parse().expect("a valid time"),
            channel: Some(Channel::Email),
            outcome: ContactOutcome::Dismissed,
        }],
    }
}

fn novak() -> Customer {
    Customer {
        id: "novak".into(),
        age: Some(52),
        features: features(&[
            ("tenure_years", 14.0),
            ("savings_balance_k", 0.4),
            ("monthly_card_spend_k", 2.6),
            ("owns_car", 1.0),
            ("owns_home", 0.0),
            ("baby_store_spend_k", 0.0),
            ("religion_code", 1.0),
            ("household_size", 3.0),
            ("expecting_child", 0.0),
        ]),
        holdings: vec!["current_account".into(), "classic_card".into()],
        life_events: vec![],
        vulnerabilities: vec![VulnerabilityMarker {
            vulnerability: Vulnerability::FinancialDistress,
            provenance: Provenance::Declared,
        }],
        consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
        relationship: None,
        value: None,
        contact_history: vec![],
    }
}

fn show(title: &str, decision: &Decision) {
    println!("\n=== {title}");
    println!(
        "status {:?}; k {} (effective {}); {} offers -> {} eligible -> {} contactable -> {} allowed -> {} returned",
        decision.status,
        decision.requested_k,
        decision.effective_k,
        decision.funnel.offers,
        decision.funnel.eligible,
        decision.funnel.contactable,
        decision.funnel.allowed,
        decision.funnel.returned
    );
    println!("Recommendations:");
    for r in &decision.recommendations {
        println!("{}. {} ({:?})", r.rank, r.offer, r.kind);
        println!("   {}", r.explanation.to_text().replace('\n', "\n   "));
    }
    println!("Withheld (operator audit):");
    for w in &decision.withheld {
        println!("   {:<20} [{:?}] {}", w.offer.as_str(), w.stage, w.reason);
    }
    if !decision.masked_features.is_empty() {
        let masked: Vec<&str> = decision.masked_features.iter().map(|f| &**f).collect();
        println!("Masked before scoring: {}", masked.join(", "));
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let catalog: Catalog = serde_json::from_str(CATALOG)?;
    let engine = Engine::new(catalog)?;
    let request = Request { now: "2026-11-23T10:00:00Z".parse()?, channel: Channel::Email, k: 3 };

    let inferred = gupta();
    let decision = engine.recommend(&inferred, &request)?;
    show("Mr. Gupta: a model inferred a coming baby from his card purchases", &decision);

    let mut declared = gupta();
    declared.life_events = vec![LifeEventSignal { event: LifeEvent::NewChild, provenance: Provenance::Declared }];
    declared.consents.life_event_use = LifeEventUse::Consented;
    let decision = engine.recommend(&declared, &request)?;
    show("Mr. Gupta declared the baby and consented to its use", &decision);

    let decision = engine.recommend(&novak(), &request)?;
    show("Ms. Novak declared financial distress", &decision);
    Ok(())
}
