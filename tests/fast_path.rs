//! The fast path (`recommend_into`: f32 SIMD scores, bounds, shortlist,
//! exact f64 rescoring, compiled rules, in-place decisions) against the
//! naive f64 reference of `tests/support/reference.rs`: the same decision,
//! bit for bit (rankings, withheld reasons, shares, explanations), with the
//! kernels of every instruction set this CPU runs (AVX-512, AVX2,
//! portable), on fresh and reused buffers.

mod common;
#[path = "support/reference.rs"]
mod reference;
#[path = "support/synthetic.rs"]
mod synthetic;
#[path = "support/world.rs"]
mod world;

use std::cell::RefCell;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reference::{Dot, Reference};
use tactful::{
    Catalog, Channel, Consents, Customer, Decision, Engine, EngineParams, FeatureSchema, FeatureSpec, FeatureValues,
    Offer, OfferKind, PropensityModel, ProxyTarget, Request, Sensitivity, SpecialCategory, Weights, Workspace,
};
use world::{pick, CustomerMix, CHANNELS, EVENTS, VULNS};

const PRODUCTS: [&str; 6] = ["p0", "p1", "p2", "p3", "p4", "p5"];

thread_local! {
    /// Buffers reused across cases and engines of different sizes.
    static REUSED: RefCell<(Workspace, Decision)> = RefCell::new((Workspace::new(), Decision::default()));
}

/// Values from a small set (exact ties), continuous values, and now and
/// then a magnitude that stresses f32 (tiny, huge).
fn number(rng: &mut StdRng, scale: f64, wild: bool) -> f64 {
    match rng.gen_range(0..20) {
        0..=7 => [-1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 2.0][rng.gen_range(0..7)] * scale,
        8..=17 => (rng.gen::<f64>() * 2.0 - 1.0) * scale,
        18 if wild => [1e-40, -3e-39, 1e-310, 7e5][rng.gen_range(0..4)],
        19 if wild && rng.gen_bool(0.2) => [1e31, -2e35, 1e150][rng.gen_range(0..3)],
        _ => 0.25 * scale,
    }
}

fn sensitivity(rng: &mut StdRng) -> Sensitivity {
    let event = EVENTS[rng.gen_range(0..EVENTS.len())];
    match rng.gen_range(0..7) {
        0 => Sensitivity::Special(SpecialCategory::Religion),
        1 => Sensitivity::LifeEvent(event),
        2 | 3 => Sensitivity::Proxy(ProxyTarget::LifeEvent(event)),
        4 => Sensitivity::Proxy(ProxyTarget::Special(SpecialCategory::Ethnicity)),
        _ => Sensitivity::Ordinary,
    }
}

fn product(rng: &mut StdRng) -> tactful::ProductId {
    PRODUCTS[rng.gen_range(0..PRODUCTS.len())].into()
}

fn world(seed: u64) -> (Catalog, EngineParams, Customer, Request) {
    let mut rng = StdRng::seed_from_u64(seed);
    let wild = rng.gen_bool(0.3);
    let n_features = rng.gen_range(1..24);
    let features: Vec<FeatureSpec> = (0..n_features)
        .map(|i| {
            let s = if i == 0 { Sensitivity::Ordinary } else { sensitivity(&mut rng) };
            FeatureSpec::new(&format!("f{i}"), &format!("feature {i}"))
                .sensitivity(s)
                .baseline(number(&mut rng, 0.5, false))
        })
        .collect();
    let schema = FeatureSchema::new(features);
    let n_offers = rng.gen_range(1..140);
    let mut offers: Vec<Offer> = Vec::with_capacity(n_offers);
    for i in 0..n_offers {
        let mut channels = pick(&mut rng, &CHANNELS, 0.7);
        if channels.is_empty() {
            channels.push(Channel::Email);
        }
        // Drawn in this order, which the stored regression seeds depend on.
        let id = format!("offer-{:03}", (i * 37) % 997);
        let sold: tactful::ProductId = if rng.gen_bool(0.3) { product(&mut rng) } else { format!("own-{i}").into() };
        let value = match rng.gen_range(0..12) {
            0 => 0.0,
            1 if wild => 1e-200,
            2..=5 => 100.0,
            _ => rng.gen_range(1.0..500.0),
        };
        let weight = [0.5, 1.0, 1.0, 1.0, 1.2][rng.gen_range(0..5)];
        let targets = pick(&mut rng, &EVENTS, 0.1);
        let unsuitable_for = pick(&mut rng, &VULNS, 0.15);
        let bias = number(&mut rng, 2.0, false);
        let weights: Vec<f64> = (0..n_features).map(|_| number(&mut rng, 1.0, wild)).collect();
        let mut o = Offer::new(id, sold, OfferKind::CrossSell, value, channels, PropensityModel::dense(bias, weights))
            .with_weight(weight)
            .with_targets(targets)
            .with_unsuitable_for(unsuitable_for);
        // Exact and near ties: a twin of an earlier offer, or the same
        // model with a value one ulp away.
        if i > 0 && rng.gen_bool(0.15) {
            let twin = &offers[rng.gen_range(0..i)];
            o.model = twin.model.clone();
            o.value = if rng.gen_bool(0.5) { twin.value } else { f64::from_bits(twin.value.to_bits() + 1) };
            o.weight = twin.weight;
        }
        let e = &mut o.eligibility;
        if rng.gen_bool(0.2) {
            e.min_age = Some(rng.gen_range(18..40));
        }
        if rng.gen_bool(0.15) {
            e.max_age = Some(rng.gen_range(40..80));
        }
        if rng.gen_bool(0.15) {
            e.base_product = Some(product(&mut rng));
        }
        if rng.gen_bool(0.1) {
            e.requires = vec![product(&mut rng), product(&mut rng)];
        }
        if rng.gen_bool(0.1) {
            e.excludes = vec![product(&mut rng)];
        }
        offers.push(o);
    }
    offers.sort_by(|a, b| a.id.cmp(&b.id));
    offers.dedup_by(|a, b| a.id == b.id);
    let now = synthetic::now();
    let x: Vec<f64> = (0..n_features).map(|_| number(&mut rng, 2.0, wild)).collect();
    let features = if rng.gen_bool(0.3) {
        FeatureValues::ByName(schema.features.iter().zip(&x).map(|(f, &v)| (f.name.to_string(), v)).collect())
    } else {
        FeatureValues::Dense(x)
    };
    let mix =
        CustomerMix { products: &PRODUCTS, events_below: 4, opt_out: 0.03, channel_consent: 0.85, contacts_below: 8 };
    let customer = world::customer(&mut rng, &format!("c{seed}"), &mix, |_| features, &offers, now);
    let mut params = EngineParams::default();
    params.contact.frequency_cap = rng.gen_range(1..12);
    params.guard.proxy_share_threshold = [0.0, 0.25, 0.5, 0.5, 0.9, rng.gen_range(0.0..1.0)][rng.gen_range(0..6)];
    params.explain.max_contributions = rng.gen_range(1..6);
    let k = if rng.gen_bool(0.1) { rng.gen_range(10..200) } else { rng.gen_range(1..8) };
    let request = Request { now, channel: CHANNELS[rng.gen_range(0..3)], k };
    let mut customer = customer;
    relationship_world(seed, &mut offers, &mut customer, &mut params);
    (Catalog { schema, offers }, params, customer, request)
}

/// Relationship-aware arbitration on top of a world, from its own random
/// stream (so the worlds above, and their saved regressions, stay as they
/// were): retention offers, product families, customer value figures,
/// relationship levels and non-default arbitration weights.
fn relationship_world(seed: u64, offers: &mut [Offer], customer: &mut Customer, params: &mut EngineParams) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7e1a_7105);
    for o in offers.iter_mut() {
        if rng.gen_bool(0.2) {
            o.kind = OfferKind::Retention;
        }
        if rng.gen_bool(0.4) {
            o.family = Some(format!("family-{}", rng.gen_range(0..3)));
        }
    }
    if rng.gen_bool(0.5) {
        customer.value = Some(tactful::CustomerValue {
            margin_per_year: [0.0, 1e-120, 50.0, rng.gen_range(0.0..5_000.0)][rng.gen_range(0..4)],
            retention_rate: rng.gen_range(0.0..=1.0),
            churn_risk: if rng.gen_bool(0.5) { Some(rng.gen_range(0.0..=1.0)) } else { None },
            wallet_with_us: if rng.gen_bool(0.6) { Some(rng.gen_range(0.0..3_000.0)) } else { None },
            category_spend: if rng.gen_bool(0.6) { Some(rng.gen_range(0.0..4_000.0)) } else { None },
        });
    }
    if rng.gen_bool(0.4) {
        use tactful::RelationshipLevel as L;
        customer.relationship =
            Some([L::Basic, L::Reactive, L::Accountable, L::Proactive, L::Partnership][rng.gen_range(0..5)]);
    }
    if rng.gen_bool(0.3) {
        params.arbitration.lifetime_value_weight = [0.0, 0.01, 0.5][rng.gen_range(0..3)];
        params.arbitration.value_weight = [1.0, 0.5, 2.0][rng.gen_range(0..3)];
        params.arbitration.wallet_share_damping = rng.gen_range(0.0..=1.0);
    }
    if rng.gen_bool(0.2) {
        params.fatigue.budget = rng.gen_range(1.0..8.0);
    }
}

/// Every path gives the reference's answer, exactly.
fn check(engine: &Engine, customer: &Customer, request: &Request) -> Result<(), TestCaseError> {
    let expected = Reference::new(engine).recommend(customer, request, Dot::Sequential);
    // Each instruction set, with the value cut at its usual size (which
    // these small catalogs never reach) and always, and the grouped 16-bit
    // scoring always (from the bf16 and from the integer weights) and never
    // (its usual size is not reached either).
    let variants = engine.kernel_variants().into_iter().flat_map(|e| {
        let cut = e.clone().with_value_cut_from(0);
        let grouped = e.clone().with_grouped_from(0);
        [
            grouped.clone().with_integer_scoring(false),
            grouped.with_integer_scoring(true),
            e.with_grouped_from(usize::MAX),
            cut.clone().with_grouped_from(0),
            cut,
        ]
    });
    for e in &variants.collect::<Vec<_>>() {
        let fresh = e.recommend(customer, request);
        prop_assert_eq!(&fresh, &expected, "fresh buffers, {} kernels", e.kernels());
        let reused = REUSED.with(|cell| {
            let (ws, decision) = &mut *cell.borrow_mut();
            e.recommend_into(customer, request, ws, decision).map(|()| decision.clone())
        });
        prop_assert_eq!(&reused, &expected, "reused buffers, {} kernels", e.kernels());
        if let Ok(decision) = &fresh {
            check_withheld_list(decision)?;
        }
    }
    Ok(())
}

/// The audit's accessors agree with its iterator (the engine's form builds
/// entries when read).
fn check_withheld_list(decision: &tactful::Decision) -> Result<(), TestCaseError> {
    let list = &decision.withheld;
    let all = list.to_vec();
    prop_assert_eq!(all.len(), list.len());
    prop_assert_eq!(list.iter().len(), list.len());
    let n = all.len();
    for i in [0, n / 3, n / 2, n.saturating_sub(1), n] {
        prop_assert_eq!(list.get(i), all.get(i).cloned());
    }
    for w in all.iter().take(12).chain(all.last()) {
        let found = list.find(w.offer.as_str());
        prop_assert_eq!(found.as_ref(), Some(w));
    }
    for r in &decision.recommendations {
        prop_assert_eq!(list.find(r.offer.as_str()), None);
    }
    prop_assert_eq!(&tactful::WithheldList::from(all), list);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_equals_the_naive_f64_reference(seed in any::<u64>()) {
        let (catalog, params, customer, request) = world(seed);
        match Engine::builder().catalog(catalog).params(params).build() {
            Ok(engine) => check(&engine, &customer, &request)?,
            Err(e) => prop_assert!(false, "catalog rejected: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The batch path (per-thread workspaces, rayon) gives each customer's
    /// own decision, errors included, in input order.
    #[test]
    fn batch_equals_one_by_one(seed in any::<u64>(), n in 1usize..80) {
        let (catalog, params, _, request) = world(seed);
        let engine = Engine::builder().catalog(catalog.clone()).params(params).build().unwrap();
        let customers: Vec<Customer> = (0..n as u64)
            .map(|i| {
                // Customers of other worlds over the same schema and offers.
                let mut c = world(seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)).2;
                let len = catalog.schema.len();
                let mut rng = StdRng::seed_from_u64(seed + i);
                c.features = FeatureValues::Dense((0..len).map(|_| number(&mut rng, 2.0, i % 7 == 3)).collect());
                c.contact_history.retain(|h| catalog.offers.iter().any(|o| o.id == h.offer));
                c
            })
            .collect();
        let batch = engine.recommend_batch(&customers, &request);
        prop_assert_eq!(batch.len(), customers.len());
        let reference = Reference::new(&engine);
        for (c, got) in customers.iter().zip(&batch) {
            prop_assert_eq!(got, &reference.recommend(c, &request, Dot::Sequential));
        }
        // Again into the same buffers, with the portable kernels, then with
        // the grouped 16-bit scoring (bf16 and integer weights).
        let mut out = batch;
        let grouped = engine.clone().with_grouped_from(0);
        let variants = [
            engine.clone().with_portable_kernels(),
            grouped.clone().with_integer_scoring(false),
            grouped.with_integer_scoring(true),
        ];
        for e in variants {
            e.recommend_batch_into(&customers, &request, &mut out);
            for (c, got) in customers.iter().zip(&out) {
                prop_assert_eq!(got, &reference.recommend(c, &request, Dot::Sequential));
            }
        }
    }
}

#[test]
fn synthetic_batch_equals_the_reference() {
    let n = 1_000;
    let engine = Engine::builder().catalog(synthetic::catalog(n, 42)).params(synthetic::params()).build().unwrap();
    let customers: Vec<Customer> = (0..300).map(|i| synthetic::customer(n, i)).collect();
    let request = synthetic::request();
    let reference = Reference::new(&engine);
    let batch = engine.recommend_batch(&customers, &request);
    for (c, got) in customers.iter().zip(&batch) {
        assert_eq!(got, &reference.recommend(c, &request, Dot::Sequential));
    }
}

#[test]
fn synthetic_catalogs_equal_the_reference_for_many_customers() {
    for n in [100, 1_000] {
        let engine = Engine::builder().catalog(synthetic::catalog(n, 42)).params(synthetic::params()).build().unwrap();
        for i in 0..60 {
            let mut request = synthetic::request();
            request.k = [5, 1, 3, 20][i as usize % 4];
            check(&engine, &synthetic::customer(n, i), &request).unwrap();
        }
    }
}

#[test]
fn near_ties_in_priority_keep_the_f64_order() {
    // Offers whose priorities differ by an ulp or tie exactly: f32 scores
    // cannot tell them apart, the f64 rescoring must.
    let schema = FeatureSchema::new(vec![FeatureSpec::new("a", "a"), FeatureSpec::new("b", "b")]);
    let mut offers = Vec::new();
    for i in 0..40u64 {
        let value = f64::from_bits(100f64.to_bits() + i % 3);
        let model = PropensityModel::by_name(0.1 + (i % 2) as f64 * 1e-15, [("a", 0.3), ("b", -0.2)]);
        offers.push(Offer::new(
            format!("o{:02}", 39 - i),
            format!("p{i}"),
            OfferKind::CrossSell,
            value,
            [Channel::Email],
            model,
        ));
    }
    let engine = Engine::new(Catalog { schema, offers }).unwrap();
    let customer = Customer {
        consents: Consents { channels: vec![Channel::Email], ..Consents::default() },
        ..Customer::new("c", FeatureValues::Dense(vec![1.0, 0.5]))
    };
    for k in [1, 2, 3, 5] {
        check(&engine, &customer, &Request { now: synthetic::now(), channel: Channel::Email, k }).unwrap();
    }
}

#[test]
fn cancellation_beyond_f32_precision_keeps_the_f64_order() {
    // Large opposite contributions cancel; the offers differ by less than
    // f32 can see (its ulp at 1000 is 6e-5), so only the error bounds and
    // the f64 rescoring keep the order right.
    let names = ["a", "b", "c", "d"];
    let schema = FeatureSchema::new(names.iter().map(|n| FeatureSpec::new(n, n)).collect());
    let engine = ranked_by_model(schema, |i| {
        let delta = |j: u32| f64::from((i * 7919 + j * 104_729) % 601) * 3e-7;
        let weights = vec![1000.0 + delta(0), -1000.0 + delta(1), 731.3 + delta(2), -731.3 + delta(3)];
        PropensityModel { bias: -1.0, weights: Weights::Dense(weights) }
    });
    for x in [[1.1, 1.1, 0.9, 0.9], [1.3, 1.29, 0.7, 0.71], [3.7, 3.7, -2.1, -2.1]] {
        check_top_k(&engine, &x);
    }
}

/// 300 cross-sell offers of value 100 by e-mail, differing only in their
/// models (`model(i)` for offer `i`).
fn ranked_by_model(schema: FeatureSchema, model: impl Fn(u32) -> PropensityModel) -> Engine {
    let offers = (0..300u32)
        .map(|i| {
            let mut offer = common::offer(&format!("o{i:03}"), 0.0, &[]);
            offer.model = model(i);
            offer
        })
        .collect();
    Engine::new(Catalog { schema, offers }).unwrap()
}

/// [`check`] for a customer with features `x` and nothing else, top 1, 3, 5.
fn check_top_k(engine: &Engine, x: &[f64]) {
    let customer = Customer { age: None, features: FeatureValues::Dense(x.to_vec()), ..common::customer() };
    for k in [1, 3, 5] {
        check(engine, &customer, &Request { now: synthetic::now(), channel: Channel::Email, k }).unwrap();
    }
}

#[test]
fn large_base_logits_beyond_f32_precision_keep_the_f64_order() {
    // The intercepts are far larger than the logits they end in, and differ
    // by less than f32 can see at that size (its ulp at 5000 is 5e-4): the
    // rounding of the base logit to f32 must be within the error bounds.
    let mut spec = FeatureSpec::new("a", "a");
    spec.baseline = 2.0;
    let schema = FeatureSchema::new(vec![spec, FeatureSpec::new("b", "b")]);
    let engine = ranked_by_model(schema, |i| PropensityModel {
        bias: 5000.0 + f64::from((i * 7919) % 601) * 3e-7,
        weights: Weights::Dense(vec![-1000.0, 0.5 + f64::from(i % 3) * 1e-9]),
    });
    for (a, b) in [(5.0, 0.0), (5.0001, 0.2), (4.999, -1.0), (5.002, 4.0)] {
        check_top_k(&engine, &[a, b]);
    }
}

#[test]
fn proxy_shares_at_and_near_the_threshold_keep_the_f64_rule() {
    // Offer i's proxy share is 1/4 exactly, or off by a relative 1e-15 to
    // 1e-5 either way: the f32 signed sum P − θ·T decides the clear cases,
    // the f64 rule the close ones (threshold 0.25, `share > threshold`).
    let proxy = Sensitivity::Proxy(ProxyTarget::Special(SpecialCategory::Religion));
    let schema = FeatureSchema::new(vec![
        FeatureSpec::new("a", "a"),
        FeatureSpec::new("p", "p").sensitivity(proxy),
        FeatureSpec::new("b", "b"),
    ]);
    let engine = ranked_by_model(schema, |i| {
        let offsets = [0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7, 1e-5, -1e-5];
        let off = offsets[i as usize % offsets.len()] * f64::from(1 + i / 11);
        // With x = (1, 1, 1): T = 2 + 1 + |w_b|, P = 1 · (1 + off); w_b = -1.
        PropensityModel { bias: -1.0, weights: Weights::Dense(vec![2.0, 1.0 + off, -1.0]) }
    });
    let customer = Customer { age: None, features: FeatureValues::Dense(vec![1.0, 1.0, 1.0]), ..common::customer() };
    let request = Request { now: synthetic::now(), channel: Channel::Email, k: 5 };
    let decision = engine.recommend(&customer, &request).unwrap();
    let driven = decision.withheld.iter().filter(|w| matches!(w.reason, tactful::Reason::ProxyDriven { .. })).count();
    // Offsets > 0 make the share exceed 1/4: 5 of every 11 offers.
    assert_eq!(driven, 136, "proxy-driven offers");
    for k in [1, 5, 50] {
        check(&engine, &customer, &Request { k, ..request }).unwrap();
    }
}
