//! Contact-policy and eligibility rules.

mod common;

use common::*;
use tactful::{
    Channel, ContactOutcome, ContactPolicy, Customer, DecisionStatus, EngineParams, Marketing, Offer, OfferKind,
    Reason, RelationshipLevel, Stage,
};

fn two_offers() -> Vec<Offer> {
    vec![offer("a", 1.0, &[]), offer("b", 0.0, &[])]
}

#[test]
fn opt_out_recommends_nothing_and_says_so() {
    let mut c = customer();
    c.consents.marketing = Marketing::OptedOut;
    c.holdings = vec!["b".into()];
    let d = engine(two_offers()).recommend(&c, &request(2)).unwrap();
    assert_eq!(d.status, DecisionStatus::OptedOut);
    assert!(d.recommendations.is_empty());
    assert_eq!(d.effective_k, 0);
    let a = d.withheld_reason("a").unwrap();
    assert_eq!((a.stage, &a.reason), (Stage::ContactPolicy, &Reason::OptedOut));
    // Pipeline order: the ineligible offer is recorded by eligibility.
    assert_eq!(d.withheld_reason("b").unwrap().stage, Stage::Eligibility);
}

#[test]
fn channel_must_be_consented_by_the_customer() {
    let mut c = customer();
    c.consents.channels = vec![Channel::Sms];
    let d = engine(two_offers()).recommend(&c, &request(2)).unwrap();
    assert_eq!(d.status, DecisionStatus::ChannelNotConsented);
    assert!(d.recommendations.is_empty());
    assert_eq!(d.withheld_reason("a").unwrap().reason, Reason::ChannelNotConsented { channel: Channel::Email });
}

#[test]
fn channel_must_be_offered_by_the_offer() {
    let mut sms_only = offer("a", 1.0, &[]);
    sms_only.channels = vec![Channel::Sms];
    let d = engine(vec![sms_only, offer("b", 0.0, &[])]).recommend(&customer(), &request(2)).unwrap();
    assert_eq!(ids(&d), ["b"]);
    assert_eq!(d.withheld_reason("a").unwrap().reason, Reason::ChannelNotOffered { channel: Channel::Email });
}

#[test]
fn frequency_cap_blocks_when_reached_and_lowers_k_when_partly_used() {
    let policy = ContactPolicy { frequency_cap: 2, ..ContactPolicy::default() };
    let params = EngineParams { contact: policy, ..EngineParams::default() };
    let engine = engine_with(vec![offer("a", 1.0, &[]), offer("b", 0.5, &[]), offer("c", 0.0, &[])], params);

    let mut c = customer();
    c.contact_history = vec![contact("c", 3, ContactOutcome::Shown)];
    let d = engine.recommend(&c, &request(3)).unwrap();
    assert_eq!((d.requested_k, d.effective_k), (3, 1));
    assert_eq!(ids(&d), ["a"]);

    c.contact_history.push(contact("c", 29, ContactOutcome::Shown));
    let d = engine.recommend(&c, &request(3)).unwrap();
    assert_eq!(d.status, DecisionStatus::FrequencyCapReached);
    assert!(d.recommendations.is_empty());
    assert_eq!(d.withheld_reason("a").unwrap().reason, Reason::FrequencyCap { contacts: 2, cap: 2, window_days: 30 });

    // A contact older than the window no longer counts.
    c.contact_history[1] = contact("c", 31, ContactOutcome::Shown);
    assert_eq!(engine.recommend(&c, &request(3)).unwrap().effective_k, 1);
}

#[test]
fn contacts_after_now_are_not_yet_known() {
    let policy = ContactPolicy { frequency_cap: 1, ..ContactPolicy::default() };
    let params = EngineParams { contact: policy, ..EngineParams::default() };
    let mut c = customer();
    c.contact_history = vec![contact("a", -2, ContactOutcome::Dismissed)];
    let d = engine_with(two_offers(), params).recommend(&c, &request(1)).unwrap();
    assert_eq!(ids(&d), ["a"]);
}

#[test]
fn cooldown_after_a_dismissal() {
    let engine = engine(two_offers());
    let mut c = customer();
    c.contact_history = vec![contact("a", 29, ContactOutcome::Dismissed)];
    let d = engine.recommend(&c, &request(2)).unwrap();
    assert_eq!(ids(&d), ["b"]);
    let w = d.withheld_reason("a").unwrap();
    assert_eq!(w.stage, Stage::ContactPolicy);
    match &w.reason {
        Reason::Cooldown { dismissed_at, until } => assert_eq!((*until - *dismissed_at).num_days(), 30),
        other => panic!("unexpected {other:?}"),
    }
    c.contact_history = vec![contact("a", 30, ContactOutcome::Dismissed)];
    assert_eq!(ids(&engine.recommend(&c, &request(2)).unwrap()), ["a", "b"]);
}

#[test]
fn offer_shown_too_often_without_acceptance_is_rested() {
    let engine = engine(two_offers());
    let mut c = customer();
    c.contact_history = vec![
        contact("a", 80, ContactOutcome::Shown),
        contact("a", 60, ContactOutcome::Shown),
        contact("a", 40, ContactOutcome::Shown),
    ];
    let d = engine.recommend(&c, &request(2)).unwrap();
    assert_eq!(d.withheld_reason("a").unwrap().reason, Reason::Rested { shows: 3, window_days: 90 });
    // Outside the 90-day window the oldest show no longer counts.
    c.contact_history[0] = contact("a", 91, ContactOutcome::Shown);
    assert_eq!(ids(&engine.recommend(&c, &request(2)).unwrap()), ["a", "b"]);
    // An acceptance resets the count.
    c.contact_history[0] = contact("a", 80, ContactOutcome::Shown);
    c.contact_history.push(contact("a", 50, ContactOutcome::Accepted));
    assert_eq!(ids(&engine.recommend(&c, &request(2)).unwrap()), ["a", "b"]);
}

#[test]
fn eligibility_rules_in_order() {
    let mut upsell = offer("gold", 0.0, &[]);
    upsell.kind = OfferKind::UpSell;
    upsell.eligibility.base_product = Some("classic".into());
    let mut adult = offer("loan", 0.0, &[]);
    adult.eligibility.min_age = Some(18);
    adult.eligibility.max_age = Some(70);
    let mut needs = offer("addon", 0.0, &[]);
    needs.eligibility.requires = vec!["current".into()];
    let mut excl = offer("basic", 0.0, &[]);
    excl.eligibility.excludes = vec!["premium".into()];
    let engine = engine(vec![upsell, adult, needs, excl, offer("held", 0.0, &[])]);

    let mut c = customer();
    c.holdings = vec!["held".into(), "premium".into()];
    c.age = Some(17);
    let d = engine.recommend(&c, &request(5)).unwrap();
    let reason = |id| d.withheld_reason(id).map(|w| (w.stage, w.reason.clone()));
    assert_eq!(reason("held"), Some((Stage::Eligibility, Reason::AlreadyHeld { product: "held".into() })));
    assert_eq!(reason("gold"), Some((Stage::Eligibility, Reason::MissingBaseProduct { product: "classic".into() })));
    assert_eq!(reason("loan"), Some((Stage::Eligibility, Reason::TooYoung { age: 17, min_age: 18 })));
    assert_eq!(
        reason("addon"),
        Some((Stage::Eligibility, Reason::MissingRequiredHolding { product: "current".into() }))
    );
    assert_eq!(reason("basic"), Some((Stage::Eligibility, Reason::ExcludedHolding { product: "premium".into() })));
    assert!(d.recommendations.is_empty());

    c.age = Some(71);
    let d = engine.recommend(&c, &request(5)).unwrap();
    assert_eq!(d.withheld_reason("loan").unwrap().reason, Reason::TooOld { age: 71, max_age: 70 });
    c.age = None;
    let d = engine.recommend(&c, &request(5)).unwrap();
    assert_eq!(d.withheld_reason("loan").unwrap().reason, Reason::AgeUnknown);

    c.age = Some(40);
    c.holdings = vec!["classic".into(), "current".into()];
    let d = engine.recommend(&c, &request(5)).unwrap();
    assert_eq!(ids(&d), ["addon", "basic", "gold", "held", "loan"], "equal priorities: offer-id order");
    assert!(d.withheld.is_empty());
}

/// `EngineParams::for_evaluation` ranks every eligible offer whatever the
/// caps, relationship level or recent contacts, and keeps the rules that
/// withhold offers.
#[test]
fn evaluation_parameters_rank_every_offer() {
    let offers: Vec<Offer> = (0..12).map(|i| offer(&format!("o{i:02}"), f64::from(i) / 10.0, &[])).collect();
    let mut c = customer();
    // Recent contacts: with the defaults they use up most of the cap of 5
    // and tire the customer; `o00` was dismissed a day ago (cooldown).
    c.contact_history = vec![
        contact("o00", 1, ContactOutcome::Dismissed),
        contact("o01", 2, ContactOutcome::Shown),
        contact("o02", 3, ContactOutcome::Shown),
    ];
    let default = engine(offers.clone()).recommend(&c, &request(20)).unwrap();
    assert!(default.effective_k < 5, "the defaults cut k: {}", default.effective_k);
    let evaluation = engine_with(offers, EngineParams::for_evaluation());
    let d = evaluation.recommend(&c, &request(20)).unwrap();
    assert_eq!(d.effective_k, 20);
    assert_eq!(d.recommendations.len(), 11, "every offer but the one in its cooldown");
    assert!(matches!(d.withheld_reason("o00").unwrap().reason, Reason::Cooldown { .. }));
    for level in [RelationshipLevel::Basic, RelationshipLevel::Accountable, RelationshipLevel::Partnership] {
        let c = Customer { relationship: Some(level), ..c.clone() };
        let d = evaluation.recommend(&c, &request(20)).unwrap();
        // Basic is inbound only, and e-mail is outbound: its channel scope
        // still applies.
        let expected = if level == RelationshipLevel::Basic { 0 } else { 11 };
        assert_eq!(d.recommendations.len(), expected, "{level:?}");
    }
    let mut opted_out = c.clone();
    opted_out.consents.marketing = Marketing::OptedOut;
    assert!(evaluation.recommend(&opted_out, &request(20)).unwrap().recommendations.is_empty());
}

/// A workspace keeps the contact windows of the last request time: a new
/// time, or an engine with other windows, must not reuse them.
#[test]
fn one_workspace_follows_the_request_time_and_the_windows() {
    let mut short = EngineParams::default();
    short.contact.rest_window_days = 30;
    let engines = [engine(two_offers()), engine_with(two_offers(), short)];
    let mut c = customer();
    c.contact_history = vec![
        contact("a", 40, ContactOutcome::Shown),
        contact("a", 60, ContactOutcome::Shown),
        contact("a", 80, ContactOutcome::Shown),
    ];
    let now = request(2);
    let later = tactful::Request { now: now.now + chrono::Duration::days(45), ..now };
    // Rested under the 90-day window now, but not 45 days later (one show
    // left in it), nor under a 30-day window.
    let rested = |e: usize, r: &tactful::Request| e == 0 && r.now == now.now;
    let (mut workspace, mut decision) = (tactful::Workspace::new(), tactful::Decision::default());
    for (e, r) in [(0, &now), (1, &now), (0, &now), (0, &later), (1, &later), (0, &now), (1, &now)] {
        engines[e].recommend_into(&c, r, &mut workspace, &mut decision).unwrap();
        assert_eq!(decision, engines[e].recommend(&c, r).unwrap(), "engine {e} at {}", r.now);
        let reason = decision.withheld_reason("a").map(|w| w.reason);
        let expected = rested(e, r).then_some(Reason::Rested { shows: 3, window_days: 90 });
        assert_eq!(reason, expected, "engine {e} at {}", r.now);
    }
}
