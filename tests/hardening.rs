//! Hardening: JSON round trips of every public serde type; the streaming
//! scorer never loses a line; extreme values give a result or a typed
//! error, never a panic or a NaN; guard invariants under randomised
//! catalogs. See also `fuzz/` (cargo-fuzz targets) and `tests/regressions.rs`.

use std::collections::BTreeMap;
use std::fmt::Debug;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::Serialize;

use tactful::batch::{self, BatchOptions, ErrorKind, ErrorRecord, JsonLinesSink, LineProblem, VecSink};
use tactful::relationship::RelationshipLevel;
use tactful::value::CustomerValue;
use tactful::{
    Catalog, Channel, Consents, Contact, ContactOutcome, ContactPolicy, Customer, Decision, DecisionStatus,
    EligibilityRules, Engine, EngineParams, Error, ExplainParams, FeatureSchema, FeatureSpec, FeatureValues,
    GuardParams, LifeEvent, LifeEventSignal, LifeEventUse, Marketing, Offer, OfferKind, PropensityModel, Provenance,
    ProxyTarget, Request, Sensitivity, SpecialCategory, Vulnerability, VulnerabilityMarker, Weights, Workspace,
};

const NOW: &str = "2026-11-23T10:00:00Z";
/// Numbers at the edges of f64, and tame ones.
const EXTREMES: [f64; 16] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e30,
    -1e30,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    5e-324,
    f64::EPSILON,
    1e-300,
    1e300,
    123_456.789,
];
const NAMES: [&str; 8] = [
    "plain",
    "ünïcödé",
    "家族の人数",
    "שם עברי",
    "emoji 👶🏽 family",
    "quote \" and back\\slash",
    "nul \u{0} inside",
    "e\u{301}\u{301} combining",
];

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// Serialises, parses back and checks the value is the same, bit for bit
/// (compares `Debug` text, so -0.0 and 0.0 differ), and that serialising
/// again gives the same text.
fn round_trip<T: Serialize + DeserializeOwned + Debug>(value: &T) {
    let text = serde_json::to_string(value).expect("serialises");
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parses back: {e}\n{text}"));
    assert_eq!(format!("{value:?}"), format!("{back:?}"), "round trip of {text}");
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    let pretty = serde_json::to_string_pretty(value).unwrap();
    let back: T = serde_json::from_str(&pretty).unwrap();
    assert_eq!(format!("{value:?}"), format!("{back:?}"));
}

fn pick<T: Clone>(rng: &mut StdRng, items: &[T], p: f64) -> Vec<T> {
    items.iter().filter(|_| rng.gen_bool(p)).cloned().collect()
}

fn number(rng: &mut StdRng, extreme: bool) -> f64 {
    if extreme && rng.gen_bool(0.3) {
        EXTREMES[rng.gen_range(0..EXTREMES.len())]
    } else {
        [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0][rng.gen_range(0..7)]
    }
}

/// A random world. Sensitive features are named `s{i}_secret` and
/// described as `«secret {i}»`, ordinary ones `o{i}` / `trait number {i}`,
/// so that a sensitive name or description can be looked for as a string.
fn world(seed: u64, extreme: bool) -> (Catalog, Customer, Request) {
    let mut rng = StdRng::seed_from_u64(seed);
    let n_features = rng.gen_range(1..12);
    let events = LifeEvent::ALL;
    let features: Vec<FeatureSpec> = (0..n_features)
        .map(|i| {
            let event = events[rng.gen_range(0..events.len())];
            let special = SpecialCategory::ALL[rng.gen_range(0..SpecialCategory::ALL.len())];
            let s = match rng.gen_range(0..8) {
                0 => Sensitivity::Special(special),
                1 => Sensitivity::LifeEvent(event),
                2 => Sensitivity::Proxy(ProxyTarget::LifeEvent(event)),
                3 => Sensitivity::Proxy(ProxyTarget::Special(special)),
                _ => Sensitivity::Ordinary,
            };
            let (name, description) = if s.is_sensitive() {
                (format!("s{i}_secret"), format!("«secret {i}»"))
            } else if extreme && rng.gen_bool(0.3) {
                (format!("o{i}_{}", NAMES[rng.gen_range(0..NAMES.len())]), format!("trait {}", NAMES[i % 8]))
            } else {
                (format!("o{i}"), format!("trait number {i}"))
            };
            FeatureSpec::new(&name, &description).sensitivity(s).baseline(number(&mut rng, extreme) / 2.0)
        })
        .collect();
    let schema = FeatureSchema::new(features);
    let n_offers = rng.gen_range(1..30);
    let products = ["p0", "p1", "p2", "p3", "p4", "p5"];
    let offers: Vec<Offer> = (0..n_offers)
        .map(|i| {
            let mut channels = pick(&mut rng, &Channel::ALL, 0.5);
            if channels.is_empty() {
                channels.push(Channel::Email);
            }
            let weights: Vec<f64> = (0..n_features).map(|_| number(&mut rng, extreme)).collect();
            let weights = if rng.gen_bool(0.5) {
                Weights::ByName(schema.features.iter().zip(&weights).map(|(f, w)| (f.name.to_string(), *w)).collect())
            } else {
                Weights::Dense(weights)
            };
            let id = if extreme && rng.gen_bool(0.1) {
                format!("{}-{i}", NAMES[rng.gen_range(0..NAMES.len())].repeat(rng.gen_range(1..200)))
            } else {
                format!("offer-{i:02}")
            };
            // Drawn in this order, which the stored regression seeds depend on.
            let product: String =
                if rng.gen_bool(0.3) { products[rng.gen_range(0..6)].into() } else { format!("own-{i}") };
            let kind = [OfferKind::CrossSell, OfferKind::UpSell, OfferKind::Retention][rng.gen_range(0..3)];
            let value = [0.0, 1.0, 50.0, 100.0, 300.0][rng.gen_range(0..5)];
            let weight = [0.0, 0.5, 1.0, 1.0, 2.0][rng.gen_range(0..5)];
            let eligibility = EligibilityRules {
                min_age: rng.gen_bool(0.2).then(|| rng.gen_range(0..40)),
                max_age: rng.gen_bool(0.2).then(|| rng.gen_range(40..100)),
                base_product: rng.gen_bool(0.1).then(|| products[rng.gen_range(0..6)].into()),
                requires: if rng.gen_bool(0.1) { vec![products[rng.gen_range(0..6)].into()] } else { vec![] },
                excludes: if rng.gen_bool(0.1) { vec![products[rng.gen_range(0..6)].into()] } else { vec![] },
            };
            let targets = pick(&mut rng, &events, 0.1);
            let family = rng.gen_bool(0.3).then(|| format!("fam{}", rng.gen_range(0..3)));
            let unsuitable_for = pick(&mut rng, &Vulnerability::ALL, 0.2);
            let model = PropensityModel { bias: number(&mut rng, extreme), weights };
            let mut offer = Offer::new(id, product, kind, value, channels, model)
                .with_weight(weight)
                .with_eligibility(eligibility)
                .with_targets(targets)
                .with_unsuitable_for(unsuitable_for);
            offer.family = family;
            offer
        })
        .collect();
    let provenance = |rng: &mut StdRng| match rng.gen_range(0..3) {
        0 => Provenance::Declared,
        1 => Provenance::Observed,
        _ => Provenance::Inferred { confidence: rng.gen_range(0.0..=1.0) },
    };
    let values: Vec<f64> = (0..n_features).map(|_| number(&mut rng, extreme)).collect();
    let customer = Customer {
        id: if extreme { NAMES[rng.gen_range(0..NAMES.len())].into() } else { "c".into() },
        age: rng.gen_bool(0.9).then(|| rng.gen_range(0..110)),
        features: if rng.gen_bool(0.5) {
            FeatureValues::ByName(schema.features.iter().zip(&values).map(|(f, v)| (f.name.to_string(), *v)).collect())
        } else {
            FeatureValues::Dense(values)
        },
        holdings: pick(&mut rng, &products, 0.3).into_iter().map(Into::into).collect(),
        life_events: (0..rng.gen_range(0..4))
            .map(|_| LifeEventSignal {
                event: events[rng.gen_range(0..events.len())],
                provenance: provenance(&mut rng),
            })
            .collect(),
        vulnerabilities: (0..rng.gen_range(0..3))
            .map(|_| VulnerabilityMarker {
                vulnerability: Vulnerability::ALL[rng.gen_range(0..6)],
                provenance: provenance(&mut rng),
            })
            .collect(),
        consents: Consents {
            marketing: if rng.gen_bool(0.05) { Marketing::OptedOut } else { Marketing::Allowed },
            channels: pick(&mut rng, &Channel::ALL, 0.7),
            life_event_use: if rng.gen_bool(0.5) { LifeEventUse::Consented } else { LifeEventUse::NotConsented },
        },
        relationship: rng.gen_bool(0.4).then(|| RelationshipLevel::ALL[rng.gen_range(0..RelationshipLevel::ALL.len())]),
        value: rng.gen_bool(0.4).then(|| CustomerValue {
            margin_per_year: number(&mut rng, extreme).abs() * if extreme { 1.0 } else { 100.0 },
            retention_rate: rng.gen_range(0.0..=1.0),
            churn_risk: rng.gen_bool(0.5).then(|| rng.gen_range(0.0..=1.0)),
            wallet_with_us: rng.gen_bool(0.5).then(|| number(&mut rng, extreme).abs()),
            category_spend: rng.gen_bool(0.5).then(|| number(&mut rng, extreme).abs()),
        }),
        contact_history: (0..rng.gen_range(0..6))
            .map(|_| Contact {
                offer: offers[rng.gen_range(0..offers.len())].id.clone(),
                at: now() - Duration::days(rng.gen_range(-5..120)),
                channel: rng.gen_bool(0.5).then(|| Channel::ALL[rng.gen_range(0..7)]),
                outcome: [ContactOutcome::Shown, ContactOutcome::Dismissed, ContactOutcome::Accepted]
                    [rng.gen_range(0..3)],
            })
            .collect(),
    };
    let k = match rng.gen_range(0..10) {
        0 => usize::MAX,
        1 => n_offers + 1,
        _ => rng.gen_range(1..6),
    };
    let request = Request { now: now(), channel: Channel::ALL[rng.gen_range(0..7)], k };
    (Catalog { schema, offers }, customer, request)
}

fn declared(c: &Customer, e: LifeEvent) -> bool {
    c.consents.life_event_use == LifeEventUse::Consented
        && c.life_events.iter().any(|s| s.event == e && s.provenance == Provenance::Declared)
}

/// Every invariant of a decision that does not need a reference model.
fn check(catalog: &Catalog, c: &Customer, r: &Request, d: &Decision) {
    assert!(d.recommendations.len() <= r.k && d.recommendations.len() <= d.effective_k && d.effective_k <= r.k);
    assert_eq!(d.funnel.returned, d.recommendations.len());
    let mut last = f64::INFINITY;
    for (i, rec) in d.recommendations.iter().enumerate() {
        assert_eq!(rec.rank, i + 1);
        let x = &rec.explanation;
        for v in [rec.priority, x.priority, x.components.logit, x.components.propensity, x.components.value] {
            assert!(!v.is_nan(), "NaN in {rec:?}");
        }
        assert!(rec.priority.is_finite() && rec.priority >= 0.0 && rec.priority <= last);
        last = rec.priority;
        for k in &x.contributions {
            assert!(k.value.is_finite() && k.weight.is_finite() && !k.contribution.is_nan(), "{k:?}");
        }
        assert!(d.withheld.iter().all(|w| w.offer != rec.offer), "{} recommended and withheld", rec.offer);
        let offer = catalog.offers.iter().find(|o| o.id == rec.offer).expect("a catalog offer");
        // Guard rule 1: only declared, consented life events target.
        for &e in &offer.targets {
            assert!(declared(c, e), "{} targets undeclared {e:?}", offer.id);
        }
        // Guard rule 4: any marker suppresses unsuitable offers.
        for m in &c.vulnerabilities {
            assert!(!offer.unsuitable_for.contains(&m.vulnerability), "{} shown despite {m:?}", offer.id);
        }
        // Guard rule 6: no sensitive feature named or described anywhere in
        // the explanation.
        let json = serde_json::to_string(x).unwrap();
        for f in catalog.schema.features.iter().filter(|f| f.sensitivity.is_sensitive()) {
            assert!(!json.contains(&*f.name), "explanation of {} names {}: {json}", offer.id, f.name);
            assert!(!json.contains(&*f.description), "explanation of {} describes {}: {json}", offer.id, f.name);
        }
    }
    // Special features are always masked.
    for f in &catalog.schema.features {
        if let Sensitivity::Special(_) = f.sensitivity {
            if d.status == DecisionStatus::Ranked {
                assert!(d.masked_features.contains(&f.name), "{} not masked", f.name);
            }
        }
    }
    // Every unsuitable offer is withheld when the customer is ranked at all.
    if d.status == DecisionStatus::Ranked {
        for o in &catalog.offers {
            if c.vulnerabilities.iter().any(|m| o.unsuitable_for.contains(&m.vulnerability)) {
                assert!(d.withheld_reason(o.id.as_str()).is_some(), "{} unsuitable but not withheld", o.id);
            }
        }
    }
}

/// Runs `recommend`, `recommend_into` (reused workspace), the portable
/// kernels and the batch API; they agree, and an answer satisfies [`check`].
fn decide_all(
    catalog: &Catalog,
    engine: &Engine,
    c: &Customer,
    r: &Request,
) -> Result<Decision, tactful::RequestError> {
    let plain = engine.recommend(c, r);
    if let Ok(d) = &plain {
        check(catalog, c, r, d);
    }
    let mut ws = Workspace::new();
    let mut into = Decision::default();
    let again = engine.recommend_into(c, r, &mut ws, &mut into).map(|()| into.clone());
    assert_eq!(format!("{plain:?}"), format!("{again:?}"));
    let again = engine.recommend_into(c, r, &mut ws, &mut into).map(|()| into.clone());
    assert_eq!(format!("{plain:?}"), format!("{again:?}"));
    let portable = engine.clone().with_portable_kernels().recommend(c, r);
    assert_eq!(format!("{plain:?}"), format!("{portable:?}"));
    let batch = engine.recommend_batch(std::slice::from_ref(c), r);
    assert_eq!(format!("{plain:?}"), format!("{:?}", batch[0]));
    plain
}

// ---------------------------------------------------------------------------
// JSON round trips

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn catalogs_customers_requests_and_decisions_round_trip(seed in any::<u64>(), extreme in any::<bool>()) {
        let (catalog, customer, request) = world(seed, extreme);
        round_trip(&catalog);
        round_trip(&catalog.schema);
        round_trip(&customer);
        round_trip(&request);
        if let Ok(engine) = Engine::new(catalog.clone()) {
            if let Ok(decision) = engine.recommend(&customer, &request) {
                round_trip(&decision);
                for r in &decision.recommendations {
                    round_trip(&r.explanation);
                }
                for w in &decision.withheld {
                    round_trip(&w.reason);
                    round_trip(&w.stage);
                }
            }
        }
    }

    #[test]
    fn parameters_round_trip(
        cap in any::<u32>(), window in any::<u32>(), cooldown in any::<u32>(), rest in any::<u32>(),
        rest_window in any::<u32>(), share in prop::num::f64::ANY, max in any::<usize>(),
    ) {
        let params = EngineParams {
            contact: ContactPolicy {
                frequency_cap: cap,
                frequency_window_days: window,
                dismissal_cooldown_days: cooldown,
                rest_after_shows: rest,
                rest_window_days: rest_window,
            },
            guard: GuardParams { proxy_share_threshold: if share.is_finite() { share } else { 0.25 } },
            explain: ExplainParams { max_contributions: max },
            ..EngineParams::default()
        };
        round_trip(&params);
        round_trip(&params.contact);
        round_trip(&params.guard);
        round_trip(&params.explain);
        // Out-of-range parameters are a typed error, never a panic.
        let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap();
        let _ = Engine::builder().catalog(catalog).params(params).build();
    }

    #[test]
    fn extreme_floats_round_trip_bit_for_bit(x in prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO) {
        let mut spec = FeatureSpec::new("f", "f");
        spec.baseline = x;
        round_trip(&spec);
        round_trip(&Weights::Dense(vec![x, -x]));
        round_trip(&FeatureValues::ByName(BTreeMap::from([("a".to_owned(), x)])));
    }
}

#[test]
fn every_enum_value_round_trips() {
    for c in Channel::ALL {
        round_trip(&c);
    }
    for s in SpecialCategory::ALL {
        round_trip(&Sensitivity::Special(s));
        round_trip(&Sensitivity::Proxy(ProxyTarget::Special(s)));
    }
    for e in LifeEvent::ALL {
        round_trip(&e);
        round_trip(&Sensitivity::LifeEvent(e));
        round_trip(&Sensitivity::Proxy(ProxyTarget::LifeEvent(e)));
    }
    for v in Vulnerability::ALL {
        round_trip(&v);
    }
    for p in [Provenance::Declared, Provenance::Observed, Provenance::Inferred { confidence: 0.0 }] {
        round_trip(&p);
        round_trip(&p.kind());
    }
    for k in [OfferKind::CrossSell, OfferKind::UpSell, OfferKind::Retention] {
        round_trip(&k);
    }
    for o in [ContactOutcome::Shown, ContactOutcome::Dismissed, ContactOutcome::Accepted] {
        round_trip(&o);
    }
    for s in [
        DecisionStatus::Ranked,
        DecisionStatus::OptedOut,
        DecisionStatus::ChannelNotConsented,
        DecisionStatus::FrequencyCapReached,
    ] {
        round_trip(&s);
    }
    round_trip(&Decision::default());
    round_trip(&tactful::Funnel::default());
}

#[test]
fn batch_records_round_trip() {
    let kinds = [
        ErrorKind::BlankLine,
        ErrorKind::LineTooLong,
        ErrorKind::InvalidUtf8,
        ErrorKind::MalformedJson,
        ErrorKind::NumberOutOfRange,
        ErrorKind::NonFiniteNumber,
        ErrorKind::MissingField,
        ErrorKind::UnknownField,
        ErrorKind::DuplicateField,
        ErrorKind::WrongType,
        ErrorKind::UnknownVariant,
        ErrorKind::InvalidValue,
        ErrorKind::UnknownFeature,
        ErrorKind::MissingFeature,
        ErrorKind::FeatureCount,
        ErrorKind::NonFiniteFeature,
        ErrorKind::InvalidConfidence,
        ErrorKind::UnknownOffer,
        ErrorKind::ScoreOverflow,
        ErrorKind::InvalidRequest,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        round_trip(&kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        let record = ErrorRecord {
            line: u64::MAX - i as u64,
            customer: (i % 2 == 0).then(|| NAMES[i % NAMES.len()].into()),
            error: LineProblem { kind, message: format!("problem {}", NAMES[i % NAMES.len()]), column: Some(i) },
        };
        round_trip(&record);
        round_trip(&record.error);
    }
}

#[test]
fn value_and_relationship_types_round_trip() {
    use tactful::relationship::{FatigueParams, RelationshipPolicy};
    use tactful::value::{CustomerValue, ValueParams, ValueSummary};
    round_trip(&ValueParams::default());
    round_trip(&RelationshipPolicy::default());
    round_trip(&FatigueParams::default());
    round_trip(&ValueSummary::default());
    let v: CustomerValue = serde_json::from_str(
        r#"{"margin_per_year": 1e30, "retention_rate": 0.9, "churn_risk": 5e-324, "wallet_with_us": -0.0}"#,
    )
    .unwrap();
    round_trip(&v);
    for level in
        [tactful::relationship::RelationshipLevel::Basic, tactful::relationship::RelationshipLevel::Partnership]
    {
        round_trip(&level);
    }
}

#[test]
fn training_and_audit_reports_round_trip() {
    use ndarray::{Array1, Array2};
    use tactful::proxy_audit::{AuditParams, ProxyAuditor};
    use tactful::train::{ClassWeight, Column, Level, Target, TrainParams, TrainingSchema};

    let schema = TrainingSchema::new(vec![
        Column::numeric("income", "income"),
        Column::categorical("segment", "segment", vec![Level::new(1, "one"), Level::new(2, "two ünï")]),
        Column::numeric("religion", "religion").sensitivity(Sensitivity::Special(SpecialCategory::Religion)),
        Column::numeric("baby", "baby spend")
            .sensitivity(Sensitivity::Proxy(ProxyTarget::LifeEvent(LifeEvent::NewChild))),
        Column::numeric("household", "household").sensitivity(Sensitivity::LifeEvent(LifeEvent::FamilyStatus)),
    ]);
    round_trip(&schema);
    let mut rng = StdRng::seed_from_u64(7);
    let n = 300;
    let mut x = Array2::zeros((n, 5));
    let mut y = Array1::from_elem(n, false);
    for i in 0..n {
        let household = f64::from(rng.gen_range(1..5));
        let row = [
            rng.gen_range(0.0..50.0),
            f64::from(rng.gen_range(1..=2)),
            f64::from(rng.gen_range(0..4)),
            household * 0.3,
            household,
        ];
        for (j, v) in row.iter().enumerate() {
            x[[i, j]] = *v;
        }
        y[i] = rng.gen_bool(if row[0] > 25.0 { 0.6 } else { 0.2 });
    }
    for params in [
        TrainParams::default(),
        TrainParams { class_weight: ClassWeight::Positive(3), ..TrainParams::default() },
        TrainParams { class_weight: ClassWeight::Unweighted, ..TrainParams::default() },
    ] {
        round_trip(&params);
        let models = params.check().unwrap().fit(&schema, x.view(), &[Target::new("offer", y.view())]).unwrap();
        round_trip(&models);
        for m in &models.models {
            round_trip(m);
            round_trip(&m.summary);
        }
        let features = models.encoder().encode(x.view()).unwrap();
        let auditor =
            ProxyAuditor::new(&models.schema, features.view(), AuditParams::default().check().unwrap()).unwrap();
        round_trip(&AuditParams::default());
        let audit = auditor.audit(&"offer".into(), &models.models[0].model).unwrap();
        round_trip(&audit);
        for row in &audit.rows {
            round_trip(row);
            for a in &row.associations {
                round_trip(a);
            }
        }
    }
    let gains = tactful::metrics::cumulative_gains(&[0.1, 0.9, 0.5, 0.5], &[false, true, true, false], 4).unwrap();
    for g in &gains {
        round_trip(g);
    }
}

#[test]
fn extreme_times_round_trip_or_are_refused_cleanly() {
    // The earliest and latest times chrono represents: a request that holds
    // them must still serialise, and parse back to the same instant.
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::UNIX_EPOCH] {
        let request = Request { now: t, channel: Channel::Email, k: usize::MAX };
        round_trip(&request);
    }
}

// ---------------------------------------------------------------------------
// The streaming scorer never loses a line

const GOOD: &str = r#"{"id": "C-1", "age": 41, "features": {"tenure_years": 6, "savings_balance_k": 12, "monthly_card_spend_k": 1.8, "owns_car": 1, "owns_home": 1, "baby_store_spend_k": 0.6, "religion_code": 3, "household_size": 2, "expecting_child": 1}, "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#;

fn line_kinds() -> Vec<Vec<u8>> {
    vec![
        GOOD.as_bytes().to_vec(),
        GOOD.replace("C-1", "家族 👶").into_bytes(),
        GOOD.replace(r#""owns_car": 1"#, r#""owns_car": 1e999"#).into_bytes(),
        GOOD.replace(r#""owns_car": 1"#, r#""owns_car": "NaN""#).into_bytes(),
        GOOD.replace(r#""owns_car": 1"#, r#""owns_car": 1.7976931348623157e308"#).into_bytes(),
        GOOD.replace(r#""owns_car": 1"#, r#""owns_car": -0.0"#).into_bytes(),
        GOOD.replace(r#""owns_car""#, r#""owns_boat""#).into_bytes(),
        GOOD.replace(r#""age": 41"#, r#""age": 99999999999"#).into_bytes(),
        GOOD.replace("C-1", &"x".repeat(3000)).into_bytes(),
        GOOD.replace('}', "").into_bytes(),
        b"{not json".to_vec(),
        b"".to_vec(),
        b"   \t ".to_vec(),
        b"\r".to_vec(),
        b"{\"id\": \"\xff\xfe\"}".to_vec(),
        b"\xc3".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"\\ud800\"".to_vec(),
        b"{\"id\": \"a\\u0000b\", \"features\": []}".to_vec(),
        vec![b'{'; 2000],
        vec![b'['; 200_000],
    ]
}

fn expected_lines(input: &[u8]) -> u64 {
    let newlines = input.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(input.last().is_some_and(|&b| b != b'\n'))
}

fn sample_engine() -> Engine {
    batch::load_engine(include_str!("../examples/data/catalog.json"), EngineParams::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_scorer_never_loses_a_line(
        picks in prop::collection::vec((0usize..22, any::<bool>()), 0..40),
        trailing_newline in any::<bool>(),
        chunk_lines in 0usize..6,
        chunk_bytes in 0usize..5000,
        max_line_bytes in 0usize..6000,
        k in prop_oneof![Just(0usize), Just(1), Just(3), Just(usize::MAX)],
    ) {
        let kinds = line_kinds();
        let mut input = Vec::new();
        for (i, (kind, crlf)) in picks.iter().enumerate() {
            input.extend_from_slice(&kinds[*kind]);
            if i + 1 < picks.len() || trailing_newline {
                input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
        let expected = expected_lines(&input);
        let engine = sample_engine();
        let request = Request { now: now(), channel: Channel::Email, k };
        let options = BatchOptions { chunk_lines, chunk_bytes, max_line_bytes };
        let mut sink = VecSink::default();
        let summary = batch::score_stream(&input[..], &engine, &request, &options, &mut sink).unwrap();
        prop_assert_eq!(summary.lines, expected);
        prop_assert_eq!(summary.scored + summary.failed, expected);
        prop_assert_eq!(sink.records.len() as u64, expected);
        for (i, r) in sink.records.iter().enumerate() {
            prop_assert_eq!(r.line, i as u64 + 1);
            if let Err(e) = &r.outcome {
                prop_assert_eq!(e.line, r.line);
            }
            if let Ok(d) = &r.outcome {
                let customer: Customer = serde_json::from_slice(
                    input.split(|&b| b == b'\n').nth(i).unwrap().strip_suffix(b"\r").unwrap_or_else(|| input.split(|&b| b == b'\n').nth(i).unwrap()),
                ).unwrap();
                let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap();
                check(&catalog, &customer, &request, d);
            }
        }
        let mut out = Vec::new();
        let again = batch::score_stream(&input[..], &engine, &request, &options, JsonLinesSink::new(&mut out)).unwrap();
        prop_assert_eq!(&again, &summary);
        let text = String::from_utf8(out).unwrap();
        prop_assert_eq!(text.lines().count() as u64, expected);
        for (i, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(n) = v.get("line") {
                prop_assert_eq!(n.as_u64(), Some(i as u64 + 1));
            }
        }
    }
}

#[test]
fn score_line_never_panics_on_each_kind_of_line() {
    let engine = sample_engine();
    for k in [1, usize::MAX] {
        let request = Request { now: now(), channel: Channel::Email, k };
        for (i, line) in line_kinds().iter().enumerate() {
            match batch::score_line(&engine, &request, i as u64 + 1, line) {
                Ok(d) => assert!(d.recommendations.iter().all(|r| r.priority.is_finite())),
                Err(e) => {
                    assert_eq!(e.line, i as u64 + 1);
                    assert!(!e.error.message.is_empty());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Extreme values: a result or a typed error

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn extreme_worlds_give_a_result_or_a_typed_error(seed in any::<u64>()) {
        let (catalog, customer, request) = world(seed, true);
        let engine = match Engine::new(catalog.clone()) {
            Ok(engine) => engine,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        match decide_all(&catalog, &engine, &customer, &request) {
            Ok(_) => {}
            Err(e) => prop_assert!(!Error::from(e).to_string().is_empty()),
        }
    }

    #[test]
    fn guard_invariants_hold_on_random_catalogs(seed in any::<u64>()) {
        let (catalog, customer, request) = world(seed, false);
        let engine = Engine::new(catalog.clone()).expect("tame worlds are valid");
        let decision = decide_all(&catalog, &engine, &customer, &request).expect("tame worlds are answered");
        // Inferred and observed signals unlock nothing: turning every
        // declared signal into an inferred one never adds a targeting offer.
        let mut guessed = customer.clone();
        for s in &mut guessed.life_events {
            if s.provenance == Provenance::Declared {
                s.provenance = Provenance::Inferred { confidence: 1.0 };
            }
        }
        let d = decide_all(&catalog, &engine, &guessed, &request).unwrap();
        for r in &d.recommendations {
            let o = catalog.offers.iter().find(|o| o.id == r.offer).unwrap();
            prop_assert!(o.targets.is_empty(), "{} targets {:?} on inferred signals", o.id, o.targets);
        }
        // A vulnerability marker of any provenance suppresses every
        // unsuitable offer.
        for v in Vulnerability::ALL {
            for provenance in [Provenance::Inferred { confidence: 0.0 }, Provenance::Observed, Provenance::Declared] {
                let mut marked = customer.clone();
                marked.vulnerabilities.push(VulnerabilityMarker { vulnerability: v, provenance });
                let d = decide_all(&catalog, &engine, &marked, &request).unwrap();
                for r in &d.recommendations {
                    let o = catalog.offers.iter().find(|o| o.id == r.offer).unwrap();
                    prop_assert!(!o.unsuitable_for.contains(&v));
                }
            }
        }
        prop_assert!(decision.recommendations.len() <= request.k);
    }
}

fn one_feature_catalog(offers: usize, weight: f64, value: f64) -> Catalog {
    let schema = FeatureSchema::new(vec![
        FeatureSpec::new("x", "x"),
        FeatureSpec::new("secret", "secret").sensitivity(Sensitivity::Special(SpecialCategory::Health)),
    ]);
    let offers = (0..offers)
        .map(|i| {
            let model = PropensityModel::dense(0.0, [weight, weight]);
            Offer::new(format!("o{i:05}"), format!("p{i}"), OfferKind::CrossSell, value, [Channel::Email], model)
        })
        .collect();
    Catalog { schema, offers }
}

fn customer_with(x: f64, secret: f64) -> Customer {
    Customer {
        id: "c".into(),
        age: None,
        features: FeatureValues::Dense(vec![x, secret]),
        holdings: vec![],
        life_events: vec![],
        vulnerabilities: vec![],
        consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
        relationship: None,
        value: None,
        contact_history: vec![],
    }
}

#[test]
fn zero_one_and_many_offers() {
    assert_eq!(Engine::new(one_feature_catalog(0, 1.0, 1.0)).unwrap_err(), tactful::ConfigError::EmptyCatalog);
    assert_eq!(
        Engine::new(Catalog { schema: FeatureSchema::default(), offers: one_feature_catalog(1, 1.0, 1.0).offers })
            .unwrap_err(),
        tactful::ConfigError::EmptySchema
    );
    for n in [1, 2, 7, 8, 9, 33, 2500] {
        let catalog = one_feature_catalog(n, 0.5, 10.0);
        let engine = Engine::new(catalog.clone()).unwrap();
        for k in [1, n, n + 1, usize::MAX] {
            let c = customer_with(1.0, 1.0);
            let r = Request { now: now(), channel: Channel::Email, k };
            let d = decide_all(&catalog, &engine, &c, &r).unwrap();
            assert_eq!(d.recommendations.len(), k.min(n).min(5));
            assert_eq!(d.effective_k, k.min(5));
        }
    }
    let r = Request { now: now(), channel: Channel::Email, k: 0 };
    let engine = Engine::new(one_feature_catalog(3, 1.0, 1.0)).unwrap();
    assert_eq!(engine.recommend(&customer_with(1.0, 1.0), &r).unwrap_err(), tactful::RequestError::ZeroK);
}

#[test]
fn features_and_weights_at_the_limits_of_f64() {
    let weights = [0.0, -0.0, 1.0, -1.0, 1e30, -1e30, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324, 1e-300];
    let values = [0.0, -0.0, 1.0, 1e30, -1e30, f64::MAX, f64::MIN, f64::MIN_POSITIVE, -f64::MIN_POSITIVE, 5e-324];
    let offer_values = [0.0, 1.0, 1e30, f64::MAX, f64::MIN_POSITIVE];
    let mut answered = 0;
    let mut refused = 0;
    for &w in &weights {
        for &value in &offer_values {
            let catalog = one_feature_catalog(3, w, value);
            let Ok(engine) = Engine::new(catalog.clone()) else {
                refused += 1;
                continue;
            };
            for &x in &values {
                for &s in &[0.0, f64::MAX] {
                    let c = customer_with(x, s);
                    for k in [1, usize::MAX] {
                        let r = Request { now: now(), channel: Channel::Email, k };
                        match decide_all(&catalog, &engine, &c, &r) {
                            Ok(d) => {
                                answered += 1;
                                for rec in &d.recommendations {
                                    assert!(rec.priority.is_finite());
                                    assert!(rec.explanation.contributions.iter().all(|c| &*c.feature == "x"));
                                }
                            }
                            Err(e) => {
                                refused += 1;
                                assert!(
                                    matches!(e, tactful::RequestError::ScoreOverflow { .. }),
                                    "unexpected {e:?} for w={w} x={x} value={value}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(answered > 0 && refused > 0);
}

#[test]
fn non_finite_inputs_are_typed_errors() {
    let catalog = one_feature_catalog(2, 1.0, 1.0);
    let engine = Engine::new(catalog.clone()).unwrap();
    let r = Request { now: now(), channel: Channel::Email, k: 3 };
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = engine.recommend(&customer_with(bad, 0.0), &r).unwrap_err();
        assert!(matches!(e, tactful::RequestError::NonFiniteFeature { .. }), "{e:?}");
        let e = engine.recommend(&customer_with(0.0, bad), &r).unwrap_err();
        assert!(matches!(e, tactful::RequestError::NonFiniteFeature { .. }), "{e:?}");
        let mut c = customer_with(0.0, 0.0);
        c.life_events
            .push(LifeEventSignal { event: LifeEvent::NewChild, provenance: Provenance::Inferred { confidence: bad } });
        assert!(matches!(engine.recommend(&c, &r), Err(tactful::RequestError::InvalidConfidence { .. })));
        for field in ["value", "weight", "bias", "weight_x", "baseline"] {
            let mut cat = catalog.clone();
            match field {
                "value" => cat.offers[0].value = bad,
                "weight" => cat.offers[0].weight = bad,
                "bias" => cat.offers[0].model.bias = bad,
                "weight_x" => cat.offers[0].model.weights = Weights::Dense(vec![bad, 0.0]),
                _ => cat.schema.features[0].baseline = bad,
            }
            assert!(Engine::new(cat).is_err(), "{field} = {bad} accepted");
        }
    }
    // The engine stays usable after errors.
    assert!(engine.recommend(&customer_with(1.0, 1.0), &r).is_ok());
}

#[test]
fn very_long_ids_and_unicode_names() {
    let long = "長".repeat(100_000);
    let schema = FeatureSchema::new(
        NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let s = if i % 2 == 0 {
                    Sensitivity::Ordinary
                } else {
                    Sensitivity::Special(SpecialCategory::ALL[i % SpecialCategory::ALL.len()])
                };
                FeatureSpec::new(&format!("{n}{i}{}", if i == 0 { long.as_str() } else { "" }), n).sensitivity(s)
            })
            .collect(),
    );
    let offers = (0..3)
        .map(|i| {
            let model = PropensityModel::dense(0.0, vec![0.5; NAMES.len()]);
            Offer::new(
                format!("{long}{i}"),
                format!("{}{i}", NAMES[i + 3]),
                OfferKind::UpSell,
                1.0,
                [Channel::Web],
                model,
            )
        })
        .collect();
    let catalog = Catalog { schema, offers };
    round_trip(&catalog);
    let engine = Engine::new(catalog.clone()).unwrap();
    let mut c = customer_with(0.0, 0.0);
    c.id = long.as_str().into();
    c.features = FeatureValues::Dense(vec![1.0; NAMES.len()]);
    c.consents.channels = vec![Channel::Web];
    let r = Request { now: now(), channel: Channel::Web, k: usize::MAX };
    let d = decide_all(&catalog, &engine, &c, &r).unwrap();
    assert_eq!(d.recommendations.len(), 3);
    round_trip(&d);
    // Through the scorer too: one line in, one line out.
    let line = serde_json::to_string(&c).unwrap();
    let mut out = Vec::new();
    let summary =
        batch::score_stream(line.as_bytes(), &engine, &r, &BatchOptions::default(), JsonLinesSink::new(&mut out))
            .unwrap();
    assert_eq!((summary.lines, summary.scored), (1, 1));
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
}

#[test]
fn extreme_request_times_and_contact_dates() {
    let catalog = one_feature_catalog(3, 1.0, 1.0);
    let engine = Engine::new(catalog.clone()).unwrap();
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::UNIX_EPOCH] {
        let mut c = customer_with(1.0, 0.0);
        for (i, at) in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, t].into_iter().enumerate() {
            for outcome in [ContactOutcome::Dismissed, ContactOutcome::Shown, ContactOutcome::Accepted] {
                c.contact_history.push(Contact { offer: format!("o{i:05}").into(), at, channel: None, outcome });
            }
        }
        let mut params = EngineParams::default();
        params.contact.frequency_cap = 100;
        params.contact.dismissal_cooldown_days = tactful::config::MAX_WINDOW_DAYS;
        params.contact.rest_window_days = tactful::config::MAX_WINDOW_DAYS;
        params.contact.frequency_window_days = tactful::config::MAX_WINDOW_DAYS;
        let engine2 = Engine::builder().catalog(catalog.clone()).params(params).build().unwrap();
        for e in [&engine, &engine2] {
            let r = Request { now: t, channel: Channel::Email, k: usize::MAX };
            let d = decide_all(&catalog, e, &c, &r).unwrap();
            round_trip(&d);
        }
    }
}

/// The random worlds above are not vacuous: many are answered with
/// recommendations, some by a typed error, and targeting, proxy and
/// suitability rules all fire.
#[test]
fn random_worlds_exercise_answers_errors_and_guard_rules() {
    let (mut answered, mut refused, mut targeted, mut unsuitable, mut proxy) = (0, 0, 0, 0, 0);
    for seed in 0..400 {
        for extreme in [false, true] {
            let (catalog, customer, request) = world(seed, extreme);
            let Ok(engine) = Engine::new(catalog.clone()) else {
                refused += 1;
                continue;
            };
            match engine.recommend(&customer, &request) {
                Ok(d) => {
                    answered += usize::from(!d.recommendations.is_empty());
                    for r in &d.recommendations {
                        let o = catalog.offers.iter().find(|o| o.id == r.offer).unwrap();
                        targeted += usize::from(!o.targets.is_empty());
                    }
                    for w in &d.withheld {
                        match w.reason {
                            tactful::Reason::Unsuitable { .. } => unsuitable += 1,
                            tactful::Reason::ProxyDriven { .. } => proxy += 1,
                            _ => {}
                        }
                    }
                }
                Err(_) => refused += 1,
            }
        }
    }
    assert!(answered > 150, "{answered}");
    assert!(refused > 5, "{refused}");
    assert!(targeted > 0 && unsuitable > 20 && proxy > 20, "{targeted} {unsuitable} {proxy}");
}
