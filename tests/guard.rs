//! One test group per intrusiveness-guard rule.

mod common;

use common::*;
use tactful::{
    DecisionStatus, EngineParams, GuardParams, LifeEvent, LifeEventSignal, LifeEventUse, Provenance, ProvenanceKind,
    Reason, Stage, Vulnerability, VulnerabilityMarker,
};

fn nursery_loan() -> tactful::Offer {
    let mut o = offer("nursery_loan", 1.0, &[("income", 0.2)]);
    o.targets = vec![LifeEvent::NewChild];
    o.value = 1_000.0; // would win if allowed
    o
}

fn signal(provenance: Provenance) -> LifeEventSignal {
    LifeEventSignal { event: LifeEvent::NewChild, provenance }
}

fn nursery_reason(customer: &tactful::Customer) -> Option<Reason> {
    let engine = engine(vec![nursery_loan(), offer("savings", 0.0, &[("income", 0.5)])]);
    let d = engine.recommend(customer, &request(2)).unwrap();
    if let Some(w) = d.withheld_reason("nursery_loan") {
        assert_eq!(w.stage, Stage::Guard);
        assert!(!ids(&d).contains(&"nursery_loan"));
        Some(w.reason.clone())
    } else {
        assert_eq!(ids(&d)[0], "nursery_loan");
        None
    }
}

// Rule 1: a targeted life event must be declared, with consent.

#[test]
fn rule1_no_signal_is_not_shown_and_says_so() {
    let reason = nursery_reason(&customer());
    assert_eq!(reason, Some(Reason::LifeEventNotDeclared { event: LifeEvent::NewChild, found: vec![] }));
}

#[test]
fn rule1_inferred_signal_is_suppressed_even_with_consent() {
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Inferred { confidence: 0.99 })];
    c.consents.life_event_use = LifeEventUse::Consented;
    let reason = nursery_reason(&c);
    assert_eq!(
        reason,
        Some(Reason::LifeEventNotDeclared { event: LifeEvent::NewChild, found: vec![ProvenanceKind::Inferred] })
    );
}

#[test]
fn rule1_observed_signal_is_suppressed() {
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Observed), signal(Provenance::Inferred { confidence: 0.5 })];
    c.consents.life_event_use = LifeEventUse::Consented;
    let found = vec![ProvenanceKind::Observed, ProvenanceKind::Inferred];
    assert_eq!(nursery_reason(&c), Some(Reason::LifeEventNotDeclared { event: LifeEvent::NewChild, found }));
}

#[test]
fn rule1_declared_without_consent_is_suppressed() {
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Declared)];
    assert_eq!(nursery_reason(&c), Some(Reason::LifeEventUseNotConsented { event: LifeEvent::NewChild }));
}

#[test]
fn rule1_declared_with_consent_is_allowed() {
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Declared)];
    c.consents.life_event_use = LifeEventUse::Consented;
    assert_eq!(nursery_reason(&c), None);
}

#[test]
fn rule1_every_target_must_be_declared() {
    let mut o = nursery_loan();
    o.targets = vec![LifeEvent::NewChild, LifeEvent::Divorce];
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Declared)];
    c.consents.life_event_use = LifeEventUse::Consented;
    let d = engine(vec![o]).recommend(&c, &request(1)).unwrap();
    assert!(d.recommendations.is_empty());
    let reason = &d.withheld_reason("nursery_loan").unwrap().reason;
    assert_eq!(reason, &Reason::LifeEventNotDeclared { event: LifeEvent::Divorce, found: vec![] });
}

// Rule 2: special features always masked, life-event features unless declared with consent.

#[test]
fn rule2_special_features_never_change_the_score() {
    let engine = engine(vec![offer("a", 0.0, &[("religion", 3.0), ("income", 0.1)])]);
    let mut c = customer();
    let before = engine.recommend(&c, &request(1)).unwrap();
    set(&mut c, "religion", 7.0);
    let after = engine.recommend(&c, &request(1)).unwrap();
    assert_eq!(before, after);
    assert!((after.recommendations[0].explanation.components.logit - 0.1).abs() < 1e-12);
    assert!(after.masked_features.iter().any(|f| &**f == "religion"));
}

#[test]
fn rule2_life_event_features_are_masked_unless_declared_with_consent() {
    let engine = engine(vec![offer("a", 0.0, &[("pregnancy_signal", 2.0)])]);
    let logit = |c: &tactful::Customer| engine.recommend(c, &request(1)).unwrap().recommendations[0].priority;
    let mut c = customer();
    set(&mut c, "pregnancy_signal", 1.0);
    let masked = logit(&c);
    c.life_events = vec![signal(Provenance::Inferred { confidence: 0.9 })];
    c.consents.life_event_use = LifeEventUse::Consented;
    assert_eq!(logit(&c), masked, "an inference must not unmask");
    c.life_events = vec![signal(Provenance::Declared)];
    c.consents.life_event_use = LifeEventUse::NotConsented;
    assert_eq!(logit(&c), masked, "a declaration without consent must not unmask");
    c.consents.life_event_use = LifeEventUse::Consented;
    assert!(logit(&c) > masked, "declared with consent: the signal is used");
    let d = engine.recommend(&c, &request(1)).unwrap();
    assert!(d.masked_features.iter().all(|f| &**f != "pregnancy_signal"));
}

#[test]
fn rule2_masking_uses_the_baseline() {
    let mut catalog = catalog(vec![offer("a", 0.0, &[("religion", 1.0)])]);
    catalog.schema.features[2].baseline = 5.0;
    let engine = tactful::Engine::new(catalog).unwrap();
    let mut c = customer();
    set(&mut c, "religion", 9.0);
    let d = engine.recommend(&c, &request(1)).unwrap();
    // bias 0 + weight 1 × baseline 5: the value 9 is never seen.
    assert!((d.recommendations[0].explanation.components.logit - 5.0).abs() < 1e-12);
}

// Rule 3: proxy-driven offers are suppressed.

fn proxy_offer() -> tactful::Offer {
    offer("p", 0.0, &[("income", 1.0), ("neighbourhood_mix", 1.0)])
}

#[test]
fn rule3_proxy_driven_offer_is_suppressed_with_features_named() {
    let mut c = customer();
    set(&mut c, "neighbourhood_mix", 0.5); // 0.5 / 1.5 = 33% > 25%
    let d = engine(vec![proxy_offer()]).recommend(&c, &request(1)).unwrap();
    assert!(d.recommendations.is_empty());
    match &d.withheld_reason("p").unwrap().reason {
        Reason::ProxyDriven { share, threshold, features } => {
            assert!((share - 1.0 / 3.0).abs() < 1e-12);
            assert_eq!(*threshold, 0.25);
            assert_eq!(features.iter().map(|f| &**f).collect::<Vec<_>>(), ["neighbourhood_mix"]);
        }
        other => panic!("unexpected reason {other:?}"),
    }
}

#[test]
fn rule3_below_threshold_is_allowed_and_threshold_is_configurable() {
    let mut c = customer();
    set(&mut c, "neighbourhood_mix", 0.2); // 0.2 / 1.2 = 16.7%
    assert_eq!(ids(&engine(vec![proxy_offer()]).recommend(&c, &request(1)).unwrap()), ["p"]);
    let params = EngineParams { guard: GuardParams { proxy_share_threshold: 0.1 }, ..EngineParams::default() };
    let d = engine_with(vec![proxy_offer()], params).recommend(&c, &request(1)).unwrap();
    assert!(matches!(d.withheld_reason("p").unwrap().reason, Reason::ProxyDriven { .. }));
}

/// Rule 3 is decided in rank order until the top-k is full: a
/// proxy-driven offer ranked ahead of the last recommendation is withheld
/// (the next allowed offer takes its place); one ranked after it is left
/// unranked and unaudited, as it would not have been shown anyway. The
/// same with the value cut, which scores the offers weighing a proxy first.
#[test]
fn rule3_is_decided_where_the_ranking_reaches() {
    let mut c = customer();
    set(&mut c, "neighbourhood_mix", 0.5); // 33% for the "p" offers
    let proxy = |id: &str, bias: f64| offer(id, bias, &[("income", 1.0), ("neighbourhood_mix", 1.0)]);
    let offers = vec![
        proxy("p_high", 3.0),
        offer("a", 2.0, &[("income", 1.0)]),
        offer("b", 1.0, &[("income", 1.0)]),
        proxy("p_low", -3.0),
    ];
    let plain = engine(offers);
    let grouped = plain.clone().with_grouped_from(0);
    let variants = [
        plain.clone(),
        grouped.clone().with_integer_scoring(false),
        grouped.with_integer_scoring(true),
        plain.with_value_cut_from(0),
    ];
    for e in variants {
        let d = e.recommend(&c, &request(2)).unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        assert!(matches!(d.withheld_reason("p_high").unwrap().reason, Reason::ProxyDriven { .. }));
        assert_eq!(d.withheld_reason("p_low"), None, "ranked after the last recommendation");
        assert_eq!((d.withheld.len(), d.funnel.allowed), (1, 3));
        // With room for a third, the ranking reaches it.
        let d = e.recommend(&c, &request(3)).unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        assert!(matches!(d.withheld_reason("p_low").unwrap().reason, Reason::ProxyDriven { .. }));
        assert_eq!((d.withheld.len(), d.funnel.allowed), (2, 2));
    }
}

#[test]
fn rule3_proxy_of_a_declared_consented_event_does_not_count() {
    let o = offer("p", 0.0, &[("income", 1.0), ("baby_spend", 1.0)]);
    let mut c = customer();
    set(&mut c, "baby_spend", 3.0);
    let d = engine(vec![o.clone()]).recommend(&c, &request(1)).unwrap();
    assert!(matches!(d.withheld_reason("p").unwrap().reason, Reason::ProxyDriven { .. }));
    c.life_events = vec![signal(Provenance::Declared)];
    c.consents.life_event_use = LifeEventUse::Consented;
    assert_eq!(ids(&engine(vec![o]).recommend(&c, &request(1)).unwrap()), ["p"]);
}

// Rule 4: inferences may protect, never target.

#[test]
fn rule4_vulnerability_of_any_provenance_suppresses_unsuitable_offers() {
    let mut credit = offer("credit", 2.0, &[]);
    credit.unsuitable_for = vec![Vulnerability::FinancialDistress];
    let engine = engine(vec![credit, offer("savings", 0.0, &[])]);
    for provenance in [Provenance::Declared, Provenance::Observed, Provenance::Inferred { confidence: 0.3 }] {
        let mut c = customer();
        c.vulnerabilities = vec![VulnerabilityMarker { vulnerability: Vulnerability::FinancialDistress, provenance }];
        let d = engine.recommend(&c, &request(2)).unwrap();
        assert_eq!(ids(&d), ["savings"]);
        let w = d.withheld_reason("credit").unwrap();
        assert_eq!(w.stage, Stage::Guard);
        assert_eq!(
            w.reason,
            Reason::Unsuitable { vulnerability: Vulnerability::FinancialDistress, provenance: provenance.kind() }
        );
    }
    let mut c = customer();
    c.vulnerabilities =
        vec![VulnerabilityMarker { vulnerability: Vulnerability::Gambling, provenance: Provenance::Declared }];
    assert_eq!(ids(&engine.recommend(&c, &request(2)).unwrap()), ["credit", "savings"]);
}

// Rule 5: never camouflage.

#[test]
fn rule5_suppressed_offers_are_withheld_not_demoted_and_fewer_than_k_may_return() {
    let mut c = customer();
    c.life_events = vec![signal(Provenance::Inferred { confidence: 0.9 })];
    let offers = vec![nursery_loan(), offer("b", 0.5, &[]), offer("c", 0.0, &[])];
    let d = engine(offers).recommend(&c, &request(3)).unwrap();
    assert_eq!(ids(&d), ["b", "c"], "the next allowed offers fill the slots; nothing else is slipped in");
    assert_eq!(d.status, DecisionStatus::Ranked);
    assert_eq!(d.funnel.allowed, 2);
    assert_eq!(d.funnel.returned, 2);
    assert_eq!(d.recommendations.iter().map(|r| r.rank).collect::<Vec<_>>(), [1, 2]);
}

// Rule 6: explanations never cite sensitive data.

#[test]
fn rule6_explanations_cite_ordinary_features_only() {
    let o = offer(
        "a",
        0.0,
        &[("income", 0.1), ("religion", 5.0), ("pregnancy_signal", 5.0), ("baby_spend", 0.01), ("tenure", 0.2)],
    );
    let mut c = customer();
    set(&mut c, "religion", 1.0);
    set(&mut c, "pregnancy_signal", 1.0);
    set(&mut c, "baby_spend", 1.0);
    c.life_events = vec![signal(Provenance::Declared)];
    c.consents.life_event_use = LifeEventUse::Consented; // unmasks the life-event feature: used, still not cited
    let d = engine(vec![o]).recommend(&c, &request(1)).unwrap();
    let e = &d.recommendations[0].explanation;
    let cited: Vec<String> = e.contributions.iter().map(|k| k.feature.to_string()).collect();
    assert_eq!(cited, ["tenure", "income"]);
    for word in ["religion", "pregnancy", "baby", "child"] {
        assert!(!e.reason.contains(word), "{word} in {:?}", e.reason);
        assert!(!serde_json::to_string(e).unwrap().contains(word), "{word} in the explanation");
    }
    assert_eq!(e.reason, "Suggested mainly because of your years as a customer and your income.");
    // The life-event feature was used: the logit includes its contribution.
    assert!(e.components.logit > 5.0);
}
