//! Customer value, relationship levels, contact fatigue and the
//! relationship-aware arbitration formula.

mod common;

use common::*;
use proptest::prelude::*;
use tactful::relationship::RelationshipLevel;
use tactful::value::CustomerValue;
use tactful::{
    ArbitrationParams, Channel, ContactOutcome, Customer, DecisionStatus, EngineParams, FatigueParams, OfferKind,
    Reason, RequestError,
};

fn value(margin: f64, retention: f64, churn: Option<f64>) -> CustomerValue {
    CustomerValue {
        margin_per_year: margin,
        retention_rate: retention,
        churn_risk: churn,
        wallet_with_us: None,
        category_spend: None,
    }
}

/// A retention offer worth little on its own, and a growth offer worth more.
fn offers() -> Vec<tactful::Offer> {
    let mut keep = offer("keep", 0.0, &[]);
    keep.kind = OfferKind::Retention;
    keep.value = 20.0;
    let grow = offer("grow", 0.0, &[]); // value 100
    vec![keep, grow]
}

#[test]
fn retention_wins_when_value_at_risk_is_high() {
    let engine = engine(offers());
    let mut c = customer();
    assert_eq!(ids(&engine.recommend(&c, &request(2)).unwrap()), ["grow", "keep"], "no value figures: offer values");

    c.value = Some(value(500.0, 0.9, Some(0.05)));
    let d = engine.recommend(&c, &request(2)).unwrap();
    assert_eq!(ids(&d), ["grow", "keep"], "loyal customer: growth first");

    c.value = Some(value(500.0, 0.6, Some(0.5)));
    let d = engine.recommend(&c, &request(2)).unwrap();
    assert_eq!(ids(&d), ["keep", "grow"], "likely to leave and valuable: retention first");
    let summary = d.customer_value.expect("value figures are audited");
    let keep = &d.recommendations[0].explanation.components;
    assert!((keep.value_at_risk - 0.5 * summary.lifetime_value).abs() < 1e-9);
    assert!((keep.stake - (20.0 + keep.value_at_risk)).abs() < 1e-9);
    assert!((d.recommendations[0].priority - keep.propensity * keep.stake * keep.weight).abs() < 1e-9);
}

#[test]
fn share_of_wallet_damps_growth_offers() {
    let engine = engine(offers());
    let mut c = customer();
    c.value =
        Some(CustomerValue { wallet_with_us: Some(900.0), category_spend: Some(1000.0), ..value(0.0, 1.0, None) });
    let d = engine.recommend(&c, &request(2)).unwrap();
    let grow = d.recommendations.iter().find(|r| r.offer.as_str() == "grow").unwrap();
    assert!((grow.explanation.components.growth_factor - (1.0 - 0.5 * 0.9)).abs() < 1e-12);
    assert!((grow.explanation.components.stake - 55.0).abs() < 1e-9);
}

#[test]
fn lifetime_value_weight_invests_in_valuable_customers() {
    let params = EngineParams {
        arbitration: ArbitrationParams { lifetime_value_weight: 0.1, ..Default::default() },
        ..Default::default()
    };
    let engine = engine_with(offers(), params);
    let mut c = customer();
    c.value = Some(value(1000.0, 1.0, Some(0.0)));
    let d = engine.recommend(&c, &request(2)).unwrap();
    let grow = &d.recommendations[0].explanation.components;
    // 5 years, 8 % discount: 1000 · Σ 1.08⁻ᵗ = 3992.71
    assert!((grow.lifetime_value - 3992.710037).abs() < 1e-5);
    assert!((grow.stake - (100.0 + 399.2710037)).abs() < 1e-5);
}

#[test]
fn relationship_level_decides_channels_and_cap() {
    let many: Vec<_> = (0..10).map(|i| offer(&format!("o{i}"), 0.0, &[])).collect();
    let engine = engine(many);
    let mut c = customer();
    c.consents.channels = vec![Channel::Email, Channel::App];
    c.relationship = Some(RelationshipLevel::Basic);
    let d = engine.recommend(&c, &request(10)).unwrap();
    assert_eq!(d.status, DecisionStatus::ChannelNotForLevel);
    assert!(d.recommendations.is_empty());
    assert_eq!(
        d.withheld_reason("o0").unwrap().reason,
        Reason::RelationshipChannel { level: RelationshipLevel::Basic, channel: Channel::Email }
    );

    let mut app = request(10);
    app.channel = Channel::App;
    let mut app_engine_offers: Vec<_> = (0..10).map(|i| offer(&format!("o{i}"), 0.0, &[])).collect();
    for o in &mut app_engine_offers {
        o.channels = vec![Channel::App];
    }
    let app_engine = common::engine(app_engine_offers);
    let d = app_engine.recommend(&c, &app).unwrap();
    assert_eq!(d.effective_k, 2, "basic: cap 2");
    c.relationship = Some(RelationshipLevel::Partnership);
    assert_eq!(app_engine.recommend(&c, &app).unwrap().effective_k, 8, "partnership: cap 8");
    assert_eq!(engine.recommend(&c, &request(10)).unwrap().recommendations.len(), 8, "partnership: outbound allowed");
}

#[test]
fn fatigue_budget_spent_recommends_nothing() {
    let engine = engine(offers());
    let mut c = customer();
    // Four contacts today: fatigue 4 of the default budget 10.
    c.contact_history = (0..4).map(|_| contact("grow", 0, ContactOutcome::Shown)).collect();
    let d = engine.recommend(&c, &request(5)).unwrap();
    assert_eq!(d.effective_k, 1, "cap 5 − 4 = 1; fatigue leaves 6");
    // Four dismissals yesterday: fatigue ≈ 4 + 4 · 2 · 2^(−1/14) ≈ 11.6 > 10.
    c.contact_history.extend((0..4).map(|_| contact("keep", 1, ContactOutcome::Dismissed)));
    let params = EngineParams {
        contact: tactful::ContactPolicy { frequency_cap: 50, ..Default::default() },
        ..Default::default()
    };
    let d = engine_with(offers(), params).recommend(&c, &request(5)).unwrap();
    assert_eq!(d.status, DecisionStatus::ContactBudgetExhausted);
    assert!(d.recommendations.is_empty());
    assert!(
        matches!(d.withheld_reason("grow").unwrap().reason, Reason::ContactFatigue { budget, .. } if budget == 10.0)
    );
}

#[test]
fn dismissals_lower_the_product_family() {
    let mut card = offer("card", 0.0, &[]);
    card.family = Some("credit".into());
    let mut loan = offer("loan", 0.0, &[]);
    loan.family = Some("credit".into());
    let engine = engine(vec![card, loan, offer("savings", 0.0, &[])]);
    let mut c = customer();
    c.contact_history = vec![contact("card", 40, ContactOutcome::Dismissed)];
    let d = engine.recommend(&c, &request(3)).unwrap();
    assert_eq!(ids(&d), ["savings", "card", "loan"]);
    let loan = &d.recommendations[2].explanation.components;
    assert!((loan.family_factor - 0.7).abs() < 1e-12);
    assert!((d.recommendations[2].priority - 0.7 * d.recommendations[0].priority).abs() < 1e-9);
    // After the memory period the family recovers.
    c.contact_history = vec![contact("card", 91, ContactOutcome::Dismissed)];
    assert_eq!(ids(&engine.recommend(&c, &request(3)).unwrap()), ["card", "loan", "savings"]);
}

#[test]
fn invalid_customer_value_is_a_request_error() {
    let engine = engine(offers());
    let mut c = customer();
    c.value = Some(value(100.0, 1.2, None));
    let err = engine.recommend(&c, &request(1)).unwrap_err();
    assert!(matches!(err, RequestError::InvalidCustomerValue { field: "retention_rate", .. }), "{err}");
    c.value = Some(value(f64::NAN, 0.5, None));
    assert!(engine.recommend(&c, &request(1)).is_err());
}

#[test]
fn invalid_relationship_parameters_are_config_errors() {
    let params = EngineParams { fatigue: FatigueParams { budget: 0.0, ..Default::default() }, ..Default::default() };
    let err = tactful::Engine::builder().catalog(catalog(offers())).params(params).build().unwrap_err();
    assert!(err.to_string().contains("fatigue.budget"), "{err}");
}

/// Position of `id` in the ranking; `usize::MAX` when it is not returned.
fn rank_of(engine: &tactful::Engine, c: &Customer, id: &str) -> usize {
    let d = engine.recommend(c, &request(20)).unwrap();
    d.recommendations.iter().position(|r| r.offer.as_str() == id).unwrap_or(usize::MAX)
}

proptest! {
    /// Raising an offer's value never lowers its rank.
    #[test]
    fn raising_value_never_lowers_rank(
        biases in prop::collection::vec(-2.0f64..2.0, 2..12),
        values in prop::collection::vec(0.0f64..500.0, 12),
        which in 0usize..12,
        raise in 0.0f64..1000.0,
        margin in 0.0f64..2000.0,
        retention in 0.0f64..1.0,
    ) {
        let which = which % biases.len();
        let build = |bump: f64| {
            let offers = biases.iter().enumerate().map(|(i, &b)| {
                let mut o = offer(&format!("o{i:02}"), b, &[("income", 0.3)]);
                o.value = values[i] + if i == which { bump } else { 0.0 };
                if i % 3 == 0 { o.kind = OfferKind::Retention; }
                o
            }).collect();
            engine(offers)
        };
        let mut c = customer();
        c.value = Some(value(margin, retention, None));
        let id = format!("o{which:02}");
        let before = rank_of(&build(0.0), &c, &id);
        let after = rank_of(&build(raise), &c, &id);
        prop_assert!(after <= before, "rank {before} -> {after}");
    }

    /// A dismissed offer never returns before its cooldown ends.
    #[test]
    fn dismissed_offer_waits_for_its_cooldown(days_ago in 0i64..30, bias in -3.0f64..3.0) {
        let engine = engine(vec![offer("a", bias + 5.0, &[]), offer("b", bias, &[])]);
        let mut c = customer();
        c.contact_history = vec![contact("a", days_ago, ContactOutcome::Dismissed)];
        let d = engine.recommend(&c, &request(2)).unwrap();
        prop_assert!(!ids(&d).contains(&"a"));
        let is_cooldown = matches!(d.withheld_reason("a").unwrap().reason, Reason::Cooldown { .. });
        prop_assert!(is_cooldown);
    }

    /// With the contact budget exhausted nothing is recommended.
    #[test]
    fn exhausted_budget_recommends_nothing(shown in 11usize..30, hours_ago in 0i64..24) {
        let params = EngineParams { contact: tactful::ContactPolicy { frequency_cap: 100, ..Default::default() }, ..Default::default() };
        let engine = engine_with(offers(), params);
        let mut c = customer();
        let now: chrono::DateTime<chrono::Utc> = NOW.parse().unwrap();
        c.contact_history = (0..shown).map(|_| tactful::Contact {
            offer: "grow".into(),
            at: now - chrono::Duration::hours(hours_ago),
            channel: None,
            outcome: ContactOutcome::Shown,
        }).collect();
        let d = engine.recommend(&c, &request(3)).unwrap();
        prop_assert!(d.recommendations.is_empty());
        prop_assert_eq!(d.status, DecisionStatus::ContactBudgetExhausted);
    }
}
