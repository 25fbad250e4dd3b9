//! One catalog, four customers: how relationship level, churn risk, share of
//! wallet and contact fatigue change what is offered, and why.
//!
//! Run with `cargo run --example retention`.

use std::error::Error;

use tactful::relationship::RelationshipLevel;
use tactful::value::CustomerValue;
use tactful::{Catalog, Channel, Contact, ContactOutcome, Customer, Decision, Engine, Request};

const CATALOG: &str = include_str!("data/catalog.json");

/// An ordinary customer of the sample bank; each scenario changes a few fields.
fn base(id: &str) -> Result<Customer, serde_json::Error> {
    serde_json::from_str(&format!(
        r#"{{
        "id": "{id}", "age": 45,
        "features": {{"tenure_years": 8, "savings_balance_k": 10, "monthly_card_spend_k": 1.9,
                     "owns_car": 1, "owns_home": 1, "baby_store_spend_k": 0,
                     "religion_code": 2, "household_size": 2, "expecting_child": 0}},
        "holdings": ["current_account", "classic_card", "car_insurance"],
        "consents": {{"channels": ["email", "app"]}}
    }}"#
    ))
}

fn value(margin: f64, retention: f64, churn: f64, wallet: f64, category: f64) -> CustomerValue {
    CustomerValue {
        margin_per_year: margin,
        retention_rate: retention,
        churn_risk: Some(churn),
        wallet_with_us: Some(wallet),
        category_spend: Some(category),
    }
}

fn show(title: &str, d: &Decision) {
    println!("\n=== {title}");
    print!("status {:?}, k {} -> {}", d.status, d.requested_k, d.effective_k);
    if let Some(v) = &d.customer_value {
        print!(
            "; lifetime value {:.0}, churn risk {:.0}%, value at risk {:.0}",
            v.lifetime_value,
            v.churn_risk * 100.0,
            v.value_at_risk
        );
        if let Some(s) = v.share_of_wallet {
            print!(", share of wallet {:.0}%", s * 100.0);
        }
    }
    println!();
    if !d.recommendations.is_empty() {
        println!(
            "  {:<2} {:<20} {:>9} = {:>6} x {:>7} x {:>5} x {:>6}   (growth, offer value)",
            "#", "offer", "priority", "prop.", "stake", "lever", "family"
        );
    }
    for r in &d.recommendations {
        let c = &r.explanation.components;
        println!(
            "  {:<2} {:<20} {:>9.2} = {:>6.3} x {:>7.1} x {:>5.2} x {:>6.2}   ({:.2}, {:.0})",
            r.rank,
            r.offer.as_str(),
            r.priority,
            c.propensity,
            c.stake,
            c.weight,
            c.family_factor,
            c.growth_factor,
            c.value
        );
    }
    for w in d.withheld.iter().filter(|w| !matches!(w.reason, tactful::Reason::AlreadyHeld { .. })) {
        println!("  withheld {:<20} {}", w.offer.as_str(), w.reason);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let catalog: Catalog = serde_json::from_str(CATALOG)?;
    let engine = Engine::new(catalog)?;
    let now = "2026-11-23T10:00:00Z".parse()?;
    let email = Request { now, channel: Channel::Email, k: 3 };
    let app = Request { now, channel: Channel::App, k: 3 };

    // A basic relationship: we answer when she comes to us, never interrupt.
    let mut ines = base("ines")?;
    ines.relationship = Some(RelationshipLevel::Basic);
    show("Ines, basic relationship, by e-mail", &engine.recommend(&ines, &email)?);
    show("Ines, basic relationship, when she opens the app", &engine.recommend(&ines, &app)?);

    // Valuable and likely to leave: keeping him is worth more than selling.
    let mut bram = base("bram")?;
    bram.relationship = Some(RelationshipLevel::Proactive);
    bram.value = Some(value(800.0, 0.7, 0.45, 1_500.0, 4_000.0));
    show("Bram, proactive, 45% churn risk, margin 800 a year", &engine.recommend(&bram, &email)?);

    // Loyal and already buys nearly everything from us: growth offers damped.
    let mut chen = base("chen")?;
    chen.relationship = Some(RelationshipLevel::Partnership);
    chen.value = Some(value(800.0, 0.95, 0.03, 3_600.0, 4_000.0));
    show("Chen, partnership, loyal, 90% share of wallet", &engine.recommend(&chen, &email)?);

    // Dismissed the card upgrade twice: the whole credit family is lowered
    // for a while (0.7 per dismissal), and recent contacts tire her.
    let mut dara = base("dara")?;
    dara.relationship = Some(RelationshipLevel::Partnership);
    dara.value = Some(value(300.0, 0.9, 0.1, 900.0, 2_500.0));
    let at = |days: i64| now - chrono::Duration::days(days);
    dara.contact_history = vec![
        Contact {
            offer: "gold_card_upgrade".into(),
            at: at(45),
            channel: Some(Channel::Email),
            outcome: ContactOutcome::Dismissed,
        },
        Contact {
            offer: "gold_card_upgrade".into(),
            at: at(35),
            channel: Some(Channel::Email),
            outcome: ContactOutcome::Dismissed,
        },
        Contact {
            offer: "savings_account".into(),
            at: at(3),
            channel: Some(Channel::App),
            outcome: ContactOutcome::Shown,
        },
        Contact {
            offer: "home_insurance".into(),
            at: at(2),
            channel: Some(Channel::Email),
            outcome: ContactOutcome::Shown,
        },
    ];
    let five = Request { k: 5, ..email };
    show(
        "Dara, partnership, dismissed the gold card twice, contacted twice this week",
        &engine.recommend(&dara, &five)?,
    );
    Ok(())
}
