//! Regression tests from fuzzing (`fuzz/`): every input the fuzzers found
//! a problem with, replayed through the same checks as the fuzz target,
//! plus hand-picked edge inputs. Raw inputs live under `tests/regressions/`:
//! `catalog/` (catalog JSON files, as the `catalog` target reads them) and
//! `customer/` (a selector byte, then customer JSON lines, as the
//! `customer` target reads them). Structured `recommend` findings are
//! written out below as Rust.

use std::path::Path;

use chrono::{DateTime, Utc};

use tactful::batch::{self, BatchOptions, JsonLinesSink, VecSink};
use tactful::value::CustomerValue;
use tactful::{
    Catalog, Channel, Consents, Customer, Decision, Engine, FeatureSchema, FeatureSpec, FeatureValues, LifeEvent,
    LifeEventSignal, LifeEventUse, Marketing, Offer, OfferKind, PropensityModel, Provenance, Request, RequestError,
    Sensitivity, Workspace,
};

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions").join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.into_iter().map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())).collect()
}

/// The invariants the fuzz targets check on every decision.
fn check(catalog: &Catalog, c: &Customer, r: &Request, d: &Decision) {
    assert!(d.recommendations.len() <= r.k && d.recommendations.len() <= d.effective_k);
    for rec in &d.recommendations {
        assert!(rec.priority.is_finite() && rec.priority >= 0.0);
        let x = &rec.explanation;
        assert!(!x.components.logit.is_nan() && !x.components.propensity.is_nan());
        assert!(d.withheld.iter().all(|w| w.offer != rec.offer));
        let offer = catalog.offers.iter().find(|o| o.id == rec.offer).unwrap();
        for e in &offer.targets {
            assert!(
                c.consents.life_event_use == LifeEventUse::Consented
                    && c.life_events.iter().any(|s| s.event == *e && s.provenance == Provenance::Declared)
            );
        }
        for m in &c.vulnerabilities {
            assert!(!offer.unsuitable_for.contains(&m.vulnerability));
        }
        for k in &x.contributions {
            assert!(!k.contribution.is_nan());
            let spec = catalog.schema.features.iter().find(|f| f.name == k.feature).unwrap();
            assert_eq!(spec.sensitivity, Sensitivity::Ordinary);
        }
    }
    let text = serde_json::to_string(d).unwrap();
    assert_eq!(&serde_json::from_str::<Decision>(&text).unwrap(), d);
}

/// `recommend`, `recommend_into` on a reused workspace, the portable
/// kernels and the batch API agree bit for bit, errors included.
fn agree(engine: &Engine, c: &Customer, other: &Customer, r: &Request) -> Result<Decision, RequestError> {
    let plain = engine.recommend(c, r);
    let mut ws = Workspace::new();
    let mut d = Decision::default();
    let _ = engine.recommend_into(other, r, &mut ws, &mut d);
    let into = engine.recommend_into(c, r, &mut ws, &mut d).map(|()| d.clone());
    assert_eq!(format!("{plain:?}"), format!("{into:?}"));
    let portable = engine.clone().with_portable_kernels().recommend(c, r);
    assert_eq!(format!("{plain:?}"), format!("{portable:?}"));
    let batch = engine.recommend_batch(&[other.clone(), c.clone()], r);
    assert_eq!(format!("{plain:?}"), format!("{:?}", batch[1]));
    plain
}

#[test]
fn catalog_inputs_replay() {
    for (name, bytes) in inputs("catalog") {
        let Ok(text) = std::str::from_utf8(&bytes) else { continue };
        let parsed = serde_json::from_str::<Catalog>(text);
        assert_eq!(parsed.is_ok(), batch::parse_catalog(text).is_ok(), "{name}");
        let Ok(catalog) = parsed else { continue };
        let back: Catalog = serde_json::from_str(&serde_json::to_string(&catalog).unwrap()).unwrap();
        assert_eq!(back, catalog, "{name}");
        let Ok(engine) = Engine::new(catalog.clone()) else { continue };
        let values = catalog.schema.features.iter().map(|f| f.baseline).collect();
        let customer = Customer {
            age: Some(40),
            consents: Consents {
                marketing: Marketing::Allowed,
                channels: Channel::ALL.to_vec(),
                life_event_use: LifeEventUse::NotConsented,
            },
            ..Customer::new("fuzz", FeatureValues::Dense(values))
        };
        for k in [1, 3, usize::MAX] {
            let request = Request { now: now(), channel: Channel::Email, k };
            if let Ok(d) = agree(&engine, &customer, &customer, &request) {
                check(&catalog, &customer, &request, &d);
            }
        }
    }
}

#[test]
fn customer_inputs_replay() {
    let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap();
    let engine = Engine::new(catalog.clone()).unwrap();
    for (name, bytes) in inputs("customer") {
        let Some((&selector, body)) = bytes.split_first() else { continue };
        let request = Request {
            now: now(),
            channel: Channel::ALL[usize::from(selector) % 7],
            k: [1, 3, usize::MAX, 0][usize::from(selector >> 3) % 4],
        };
        let direct = serde_json::from_slice::<Customer>(body);
        let parsed = batch::parse_customer(1, body);
        assert_eq!(direct.is_ok(), parsed.is_ok(), "{name}");
        if let Ok(c) = &parsed {
            if let Ok(d) = agree(&engine, c, c, &request) {
                check(&catalog, c, &request, &d);
            }
        }
        let newlines = body.iter().filter(|&&b| b == b'\n').count() as u64;
        let expected = newlines + u64::from(body.last().is_some_and(|&b| b != b'\n'));
        for options in [BatchOptions::default(), BatchOptions { chunk_lines: 1, chunk_bytes: 0, max_line_bytes: 64 }] {
            let mut sink = VecSink::default();
            let summary = batch::score_stream(body, &engine, &request, &options, &mut sink).unwrap();
            assert_eq!((summary.lines, sink.records.len() as u64), (expected, expected), "{name}");
            let mut out = Vec::new();
            batch::score_stream(body, &engine, &request, &options, JsonLinesSink::new(&mut out)).unwrap();
            assert_eq!(String::from_utf8(out).unwrap().lines().count() as u64, expected, "{name}");
        }
    }
}

/// First `recommend` fuzz finding (a bug in the harness, kept as a test of
/// the engine's contract): a NaN inference confidence is a typed
/// `InvalidConfidence` error, the same from every entry point, and the
/// error carries the NaN (so errors must be compared bit for bit, not with
/// `==`).
#[test]
fn nan_confidence_is_the_same_typed_error_everywhere() {
    let schema = FeatureSchema::new(vec![FeatureSpec::new("f0", "feature 0")]);
    let offer = Offer::new("o0", "p0", OfferKind::CrossSell, 1.0, [Channel::Email], PropensityModel::dense(0.0, [1.0]));
    let catalog = Catalog { schema, offers: vec![offer] };
    let engine = Engine::new(catalog).unwrap();
    let mut c = Customer {
        life_events: vec![LifeEventSignal {
            event: LifeEvent::NewChild,
            provenance: Provenance::Inferred { confidence: f64::NAN },
        }],
        consents: Consents { channels: Channel::ALL.to_vec(), ..Consents::default() },
        ..Customer::new("c", FeatureValues::Dense(vec![0.5]))
    };
    let other = Customer { life_events: vec![], ..c.clone() };
    let request = Request { now: now(), channel: Channel::Web, k: usize::MAX };
    let e = agree(&engine, &c, &other, &request).unwrap_err();
    assert!(
        matches!(e, RequestError::InvalidConfidence { ref field, value, .. } if field == "life_events[0]" && value.is_nan())
    );
    c.life_events.clear();
    assert!(agree(&engine, &c, &other, &request).is_ok());
}

fn one_offer_world(kind: OfferKind, value: f64) -> (Engine, Customer) {
    let schema = FeatureSchema::new(vec![FeatureSpec::new("f0", "feature 0")]);
    let offer = Offer::new("o0", "p0", kind, value, [Channel::Web], PropensityModel::dense(0.0, [1.0]));
    let engine = Engine::new(Catalog { schema, offers: vec![offer] }).unwrap();
    let customer = Customer {
        consents: Consents { channels: vec![Channel::Web], ..Consents::default() },
        ..Customer::new("c", FeatureValues::Dense(vec![0.5]))
    };
    (engine, customer)
}

/// `recommend` fuzz finding (crash-09a35ea7…, under
/// `tests/regressions/recommend/`): a customer value with a finite but huge
/// `margin_per_year` (`f64::MAX`) passed the value check, but its lifetime
/// value overflowed to infinity; the decision's `customer_value` then held
/// infinities, which JSON writes as `null`, so the decision (and the
/// scoring tool's output line) did not parse back, and a stake built on it
/// could make a priority infinite or NaN. Now a typed
/// `InvalidCustomerValue` error.
#[test]
fn a_lifetime_value_that_overflows_is_a_typed_error() {
    let (engine, mut c) = one_offer_world(OfferKind::Retention, 1.0);
    let other = c.clone();
    let request = Request { now: DateTime::<Utc>::MAX_UTC, channel: Channel::Web, k: usize::MAX };
    c.value = Some(CustomerValue {
        margin_per_year: f64::MAX,
        retention_rate: 180.0 / 255.0,
        churn_risk: None,
        wallet_with_us: None,
        category_spend: None,
    });
    let e = agree(&engine, &c, &other, &request).unwrap_err();
    assert!(matches!(e, RequestError::InvalidCustomerValue { field: "margin_per_year", .. }), "{e:?}");
    // A large but representable value is answered, and round-trips.
    c.value.as_mut().unwrap().margin_per_year = 1e300;
    let d = agree(&engine, &c, &other, &request).unwrap();
    check(&Catalog::default(), &c, &request, &Decision { recommendations: vec![], ..d.clone() });
    assert_eq!(serde_json::from_str::<Decision>(&serde_json::to_string(&d).unwrap()).unwrap(), d);
}

/// Found with the fix above: a stake (value weight × offer value, plus
/// lifetime value or value at risk) can overflow even when each part is
/// finite; the request is refused with `ScoreOverflow` rather than ranking
/// an infinite or NaN priority.
#[test]
fn a_stake_that_overflows_is_a_typed_error() {
    for kind in [OfferKind::CrossSell, OfferKind::Retention] {
        let (_, mut c) = one_offer_world(kind, f64::MAX);
        let schema = FeatureSchema::new(vec![FeatureSpec::new("f0", "feature 0")]);
        let mut params = tactful::EngineParams::default();
        params.arbitration.value_weight = 4.0;
        let (plain, _) = one_offer_world(kind, f64::MAX);
        let catalog = Catalog { schema, offers: plain.offers().to_vec() };
        let engine = Engine::builder().catalog(catalog).params(params).build().unwrap();
        let request = Request { now: now(), channel: Channel::Web, k: 3 };
        let e = agree(&engine, &c, &c.clone(), &request).unwrap_err();
        assert!(matches!(e, RequestError::ScoreOverflow { .. }), "{e:?}");
        c.value = Some(CustomerValue {
            margin_per_year: 1e307,
            retention_rate: 1.0,
            churn_risk: Some(1.0),
            wallet_with_us: None,
            category_spend: None,
        });
        let engine = Engine::new(Catalog {
            schema: FeatureSchema::new(vec![FeatureSpec::new("f0", "feature 0")]),
            offers: plain.offers().to_vec(),
        })
        .unwrap();
        match agree(&engine, &c, &c.clone(), &request) {
            Ok(d) => assert!(d.recommendations.iter().all(|r| r.priority.is_finite())),
            Err(e) => assert!(
                matches!(e, RequestError::ScoreOverflow { .. } | RequestError::InvalidCustomerValue { .. }),
                "{e:?}"
            ),
        }
    }
}

/// `recommend` fuzz finding (crash-9b44ca47…, under
/// `tests/regressions/recommend/`): with an empty contact history the
/// contact fatigue was an empty f64 sum, `-0.0`, while one contact of
/// weight 0 gives `0.0`. The two compare equal, so `recommend_into` on a
/// workspace reused from such a customer kept the other sign in the
/// audit's `ContactFatigue` reason: not the same bits (nor the same JSON)
/// as `recommend`. Fatigue is now never `-0.0`.
#[test]
fn contact_fatigue_is_never_negative_zero() {
    let (_, c) = one_offer_world(OfferKind::CrossSell, 1.0);
    let mut params = tactful::EngineParams::default();
    params.fatigue.budget = 5e-324;
    params.fatigue.accepted_weight = 0.0;
    let (plain, _) = one_offer_world(OfferKind::CrossSell, 1.0);
    let catalog = Catalog { schema: plain.schema().clone(), offers: plain.offers().to_vec() };
    let engine = Engine::builder().catalog(catalog).params(params).build().unwrap();
    let request = Request { now: now(), channel: Channel::Web, k: 4 };
    let mut other = c.clone();
    other.contact_history.push(tactful::Contact {
        offer: "o0".into(),
        at: now() - chrono::Duration::days(400),
        channel: None,
        outcome: tactful::ContactOutcome::Accepted,
    });
    for (a, b) in [(&c, &other), (&other, &c)] {
        let d = agree(&engine, a, b, &request).unwrap();
        for w in &d.withheld {
            if let tactful::Reason::ContactFatigue { fatigue, .. } = w.reason {
                assert!(fatigue.is_sign_positive(), "{fatigue:?}");
            }
        }
        assert!(!serde_json::to_string(&d).unwrap().contains("-0.0"));
    }
}
