//! Catalog JSON parsing (serde and `batch::parse_catalog`), a JSON round
//! trip of what parses, `Engine::new` validation, and a few requests
//! against every engine that builds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tactful::batch;
use tactful::{Catalog, Channel, Consents, Customer, Engine, FeatureValues, LifeEventUse, Marketing, Request};
use tactful_fuzz::{base_now, check_decision};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = serde_json::from_str::<Catalog>(text);
    let via_batch = batch::parse_catalog(text);
    match (&parsed, &via_batch) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(e)) => {
            let _ = e.to_string();
        }
        _ => panic!("serde and parse_catalog disagree: {:?} / {:?}", parsed.is_ok(), via_batch.is_ok()),
    }
    let Ok(catalog) = parsed else { return };
    let json = serde_json::to_string(&catalog).expect("a catalog serialises");
    let back: Catalog = serde_json::from_str(&json).expect("a serialised catalog parses");
    assert_eq!(back, catalog, "catalog JSON round trip");
    let engine = match Engine::new(catalog.clone()) {
        Ok(engine) => engine,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(batch::load_engine(text, Default::default()).is_ok());
    let n = catalog.schema.len();
    for (i, fill) in [0.0, 1.0, -1.0e6].into_iter().enumerate() {
        let values = if i == 0 { catalog.schema.features.iter().map(|f| f.baseline).collect() } else { vec![fill; n] };
        let customer = Customer {
            age: Some(40),
            consents: Consents {
                marketing: Marketing::Allowed,
                channels: Channel::ALL.to_vec(),
                life_event_use: LifeEventUse::NotConsented,
            },
            ..Customer::new("fuzz", FeatureValues::Dense(values))
        };
        for (channel, k) in [(Channel::Email, 3), (Channel::App, usize::MAX), (Channel::Branch, 1)] {
            let request = Request { now: base_now(), channel, k };
            match engine.recommend(&customer, &request) {
                Ok(d) => check_decision(&catalog, &customer, &request, &d),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
