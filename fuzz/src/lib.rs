//! Shared parts of the tactful fuzz targets: a structured fuzz input that
//! maps to a catalog, a customer, a request and engine parameters, and the
//! invariants every decision must satisfy.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use chrono::{DateTime, Duration, Utc};
use tactful::relationship::RelationshipLevel;
use tactful::value::CustomerValue;
use tactful::{
    Catalog, Channel, Consents, Contact, ContactOutcome, Customer, Decision, EligibilityRules, Engine, EngineParams,
    FeatureSchema, FeatureSpec, FeatureValues, LifeEvent, LifeEventSignal, LifeEventUse, Marketing, Offer, OfferKind,
    PropensityModel, Provenance, ProxyTarget, Request, Sensitivity, SpecialCategory, Vulnerability,
    VulnerabilityMarker, Weights,
};

/// A number: mostly tame, sometimes extreme, sometimes any bit pattern.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Num {
    Zero,
    NegZero,
    One,
    MinusOne,
    /// `n / 4`.
    Small(i8),
    /// `n / 16`, often around the proxy threshold.
    Fine(i16),
    /// ±1e30.
    Huge(bool),
    /// ±f64::MAX.
    Max(bool),
    /// f64::MIN_POSITIVE, or the smallest subnormal.
    Tiny(bool),
    /// Any bit pattern (NaN and infinities included).
    Raw(f64),
}

impl Num {
    pub fn get(self) -> f64 {
        match self {
            Num::Zero => 0.0,
            Num::NegZero => -0.0,
            Num::One => 1.0,
            Num::MinusOne => -1.0,
            Num::Small(n) => f64::from(n) / 4.0,
            Num::Fine(n) => f64::from(n) / 16.0,
            Num::Huge(neg) => {
                if neg {
                    -1e30
                } else {
                    1e30
                }
            }
            Num::Max(neg) => {
                if neg {
                    f64::MIN
                } else {
                    f64::MAX
                }
            }
            Num::Tiny(sub) => {
                if sub {
                    5e-324
                } else {
                    f64::MIN_POSITIVE
                }
            }
            Num::Raw(x) => x,
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub struct FeatureIn {
    pub class: u8,
    pub which: u8,
    pub baseline: Num,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct OfferIn {
    /// Offer id is `o{index}`, or `o{id % 32}` when `Some` (duplicates possible).
    pub id: Option<u8>,
    pub product: u8,
    pub kind: u8,
    pub value: Num,
    pub weight: Num,
    pub channels: u8,
    pub min_age: Option<u8>,
    pub max_age: Option<u8>,
    pub base_product: Option<u8>,
    pub requires: Vec<u8>,
    pub excludes: Vec<u8>,
    pub targets: u8,
    pub unsuitable_for: u8,
    pub bias: Num,
    pub weights: Vec<Num>,
    pub by_name: bool,
    /// Product family `f{family % 4}`.
    pub family: Option<u8>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ProvIn {
    Declared,
    Observed,
    Inferred(u8),
    InferredRaw(f64),
}

impl ProvIn {
    fn get(self) -> Provenance {
        match self {
            ProvIn::Declared => Provenance::Declared,
            ProvIn::Observed => Provenance::Observed,
            ProvIn::Inferred(c) => Provenance::Inferred { confidence: f64::from(c) / 255.0 },
            ProvIn::InferredRaw(c) => Provenance::Inferred { confidence: c },
        }
    }
}

#[derive(Debug, Clone, Arbitrary)]
pub struct ContactIn {
    pub offer: u8,
    pub days_ago: i16,
    pub channel: Option<u8>,
    pub outcome: u8,
}

#[derive(Debug, Clone, Arbitrary)]
pub struct CustomerIn {
    pub age: Option<u8>,
    pub values: Vec<Num>,
    pub by_name: bool,
    pub holdings: u16,
    pub life_events: Vec<(u8, ProvIn)>,
    pub vulnerabilities: Vec<(u8, ProvIn)>,
    pub opted_out: bool,
    pub channels: u8,
    pub life_event_use: bool,
    pub history: Vec<ContactIn>,
    pub relationship: Option<u8>,
    pub value: Option<ValueIn>,
}

/// A customer's value figures.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct ValueIn {
    pub margin_per_year: Num,
    pub retention_rate: u8,
    pub churn_risk: Option<u8>,
    pub wallet_with_us: Option<Num>,
    pub category_spend: Option<Num>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum NowIn {
    Offset(i16),
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum KIn {
    Small(u8),
    Max,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct ParamsIn {
    pub frequency_cap: u8,
    pub frequency_window_days: u16,
    pub dismissal_cooldown_days: u16,
    pub rest_after_shows: u8,
    pub rest_window_days: u16,
    pub proxy_share_threshold: u8,
    pub max_contributions: u8,
    /// Relationship-level frequency caps.
    pub level_caps: [u8; 5],
    pub half_life_days: Num,
    pub fatigue_budget: Num,
    pub fatigue_weights: [u8; 3],
    pub family_dismissal_factor: u8,
    pub family_memory_days: u16,
    pub discount_rate: u8,
    pub horizon_years: u8,
    pub arbitration: [u8; 4],
}

/// The whole fuzz input of the `recommend` target.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    pub features: Vec<FeatureIn>,
    pub offers: Vec<OfferIn>,
    pub customer: CustomerIn,
    /// A second customer, scored first into the same workspace.
    pub other: CustomerIn,
    pub channel: u8,
    pub k: KIn,
    pub now: NowIn,
    pub params: Option<ParamsIn>,
}

fn products(n: usize) -> String {
    format!("p{}", n % 12)
}

fn channels(mask: u8) -> Vec<Channel> {
    Channel::ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, c)| *c).collect()
}

pub fn base_now() -> DateTime<Utc> {
    "2026-11-23T10:00:00Z".parse().expect("a valid time")
}

impl Input {
    pub fn schema(&self) -> FeatureSchema {
        let features = self
            .features
            .iter()
            .take(12)
            .enumerate()
            .map(|(i, f)| {
                let which = usize::from(f.which);
                let event = LifeEvent::ALL[which % LifeEvent::ALL.len()];
                let sensitivity = match f.class % 6 {
                    0 | 1 => Sensitivity::Ordinary,
                    2 => Sensitivity::Special(SpecialCategory::ALL[which % SpecialCategory::ALL.len()]),
                    3 => Sensitivity::LifeEvent(event),
                    4 => Sensitivity::Proxy(ProxyTarget::LifeEvent(event)),
                    _ => Sensitivity::Proxy(ProxyTarget::Special(
                        SpecialCategory::ALL[which % SpecialCategory::ALL.len()],
                    )),
                };
                // No description contains another (as "feature number 1" is in
                // "feature number 10"), so that the text checks below are exact.
                FeatureSpec::new(&format!("f{i}"), &format!("feature {i} level"))
                    .sensitivity(sensitivity)
                    .baseline(f.baseline.get())
            })
            .collect();
        FeatureSchema::new(features)
    }

    pub fn catalog(&self) -> Catalog {
        let schema = self.schema();
        let n = schema.len();
        let offers = self
            .offers
            .iter()
            .take(24)
            .enumerate()
            .map(|(i, o)| {
                let id = match o.id {
                    Some(id) => format!("o{}", id % 32),
                    None => format!("o{i}"),
                };
                let mut chans = channels(o.channels);
                if chans.is_empty() {
                    chans.push(Channel::Email);
                }
                let weights: Vec<f64> = (0..n).map(|j| o.weights.get(j).map_or(0.0, |w| w.get())).collect();
                let weights = if o.by_name {
                    Weights::ByName(
                        weights
                            .iter()
                            .enumerate()
                            .filter(|(_, w)| **w != 0.0)
                            .map(|(j, w)| (format!("f{j}"), *w))
                            .collect(),
                    )
                } else {
                    Weights::Dense(weights)
                };
                let offer = Offer::new(
                    id,
                    products(usize::from(o.product)),
                    [OfferKind::CrossSell, OfferKind::UpSell, OfferKind::Retention][usize::from(o.kind % 3)],
                    o.value.get(),
                    chans,
                    PropensityModel { bias: o.bias.get(), weights },
                )
                .with_weight(o.weight.get())
                .with_eligibility(EligibilityRules {
                    min_age: o.min_age.map(u32::from),
                    max_age: o.max_age.map(u32::from),
                    base_product: o.base_product.map(|p| products(usize::from(p)).into()),
                    requires: o.requires.iter().take(3).map(|&p| products(usize::from(p)).into()).collect(),
                    excludes: o.excludes.iter().take(3).map(|&p| products(usize::from(p)).into()).collect(),
                })
                .with_targets(
                    LifeEvent::ALL
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| o.targets & (1 << j) != 0 && o.targets & 0x80 != 0)
                        .map(|(_, e)| *e),
                )
                .with_unsuitable_for(
                    Vulnerability::ALL
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| o.unsuitable_for & (1 << j) != 0)
                        .map(|(_, v)| *v),
                );
                match o.family {
                    Some(f) => offer.with_family(format!("f{}", f % 4)),
                    None => offer,
                }
            })
            .collect();
        Catalog { schema, offers }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.now {
            NowIn::Offset(d) => base_now() + Duration::days(i64::from(d)),
            NowIn::Min => DateTime::<Utc>::MIN_UTC,
            NowIn::Max => DateTime::<Utc>::MAX_UTC,
        }
    }

    pub fn request(&self) -> Request {
        Request {
            now: self.now(),
            channel: Channel::ALL[usize::from(self.channel) % Channel::ALL.len()],
            k: match self.k {
                KIn::Small(k) => usize::from(k % 12),
                KIn::Max => usize::MAX,
            },
        }
    }

    pub fn params(&self) -> EngineParams {
        let mut p = EngineParams::default();
        if let Some(q) = self.params {
            p.contact.frequency_cap = u32::from(q.frequency_cap % 8);
            p.contact.frequency_window_days = u32::from(q.frequency_window_days);
            p.contact.dismissal_cooldown_days = u32::from(q.dismissal_cooldown_days);
            p.contact.rest_after_shows = u32::from(q.rest_after_shows % 6);
            p.contact.rest_window_days = u32::from(q.rest_window_days);
            p.guard.proxy_share_threshold = f64::from(q.proxy_share_threshold) / 256.0;
            p.explain.max_contributions = usize::from(q.max_contributions % 70);
            let r = &mut p.relationship;
            for (level, cap) in
                [&mut r.basic, &mut r.reactive, &mut r.accountable, &mut r.proactive, &mut r.partnership]
                    .into_iter()
                    .zip(q.level_caps)
            {
                level.frequency_cap = u32::from(cap % 10);
            }
            let f = &mut p.fatigue;
            f.half_life_days = q.half_life_days.get();
            f.budget = q.fatigue_budget.get();
            f.shown_weight = f64::from(q.fatigue_weights[0]) / 16.0;
            f.dismissed_weight = f64::from(q.fatigue_weights[1]) / 16.0;
            f.accepted_weight = f64::from(q.fatigue_weights[2]) / 16.0;
            f.family_dismissal_factor = f64::from(q.family_dismissal_factor) / 255.0;
            f.family_memory_days = u32::from(q.family_memory_days);
            p.value.discount_rate = f64::from(q.discount_rate) / 255.0;
            p.value.horizon_years = u32::from(q.horizon_years % 120);
            let a = &mut p.arbitration;
            a.value_weight = f64::from(q.arbitration[0]) / 64.0;
            a.lifetime_value_weight = f64::from(q.arbitration[1]) / 64.0;
            a.retention_weight = f64::from(q.arbitration[2]) / 64.0;
            a.wallet_share_damping = f64::from(q.arbitration[3]) / 255.0;
        }
        p
    }

    pub fn customer_from(&self, c: &CustomerIn, id: &str, catalog: &Catalog) -> Customer {
        let n = catalog.schema.len();
        let values: Vec<f64> = (0..n).map(|j| c.values.get(j).map_or(0.5, |v| v.get())).collect();
        let features = if c.by_name {
            FeatureValues::ByName(
                values.iter().enumerate().map(|(j, v)| (format!("f{j}"), *v)).collect::<BTreeMap<_, _>>(),
            )
        } else {
            FeatureValues::Dense(values)
        };
        let now = self.now();
        let n_offers = catalog.offers.len().max(1);
        Customer {
            id: id.into(),
            age: c.age.map(u32::from),
            features,
            holdings: (0..12).filter(|i| c.holdings & (1 << i) != 0).map(|i| products(i).into()).collect(),
            life_events: c
                .life_events
                .iter()
                .take(8)
                .map(|(e, p)| LifeEventSignal { event: LifeEvent::ALL[usize::from(*e) % 7], provenance: p.get() })
                .collect(),
            vulnerabilities: c
                .vulnerabilities
                .iter()
                .take(4)
                .map(|(v, p)| VulnerabilityMarker {
                    vulnerability: Vulnerability::ALL[usize::from(*v) % Vulnerability::ALL.len()],
                    provenance: p.get(),
                })
                .collect(),
            consents: Consents {
                marketing: if c.opted_out { Marketing::OptedOut } else { Marketing::Allowed },
                channels: channels(c.channels),
                life_event_use: if c.life_event_use { LifeEventUse::Consented } else { LifeEventUse::NotConsented },
            },
            relationship: c.relationship.map(|l| RelationshipLevel::ALL[usize::from(l) % RelationshipLevel::ALL.len()]),
            value: c.value.map(|v| CustomerValue {
                margin_per_year: v.margin_per_year.get(),
                retention_rate: f64::from(v.retention_rate) / 255.0,
                churn_risk: v.churn_risk.map(|c| f64::from(c) / 255.0),
                wallet_with_us: v.wallet_with_us.map(Num::get),
                category_spend: v.category_spend.map(Num::get),
            }),
            contact_history: c
                .history
                .iter()
                .take(16)
                .filter_map(|h| {
                    let offer = catalog.offers.get(usize::from(h.offer) % n_offers)?.id.clone();
                    let at = now.checked_sub_signed(Duration::days(i64::from(h.days_ago))).unwrap_or(now);
                    Some(Contact {
                        offer,
                        at,
                        channel: h.channel.map(|c| Channel::ALL[usize::from(c) % Channel::ALL.len()]),
                        outcome: [ContactOutcome::Shown, ContactOutcome::Dismissed, ContactOutcome::Accepted]
                            [usize::from(h.outcome % 3)],
                    })
                })
                .collect(),
        }
    }
}

fn finite(x: f64, what: &str) {
    assert!(x.is_finite(), "{what} is {x}");
}

/// The invariants of one decision for `customer` and `request` from an
/// engine built over `catalog`.
pub fn check_decision(catalog: &Catalog, customer: &Customer, request: &Request, d: &Decision) {
    assert_eq!(d.customer, customer.id);
    assert_eq!(d.requested_k, request.k);
    assert!(d.recommendations.len() <= request.k, "more than k results");
    assert!(d.recommendations.len() <= d.effective_k, "more than effective_k results");
    assert!(d.effective_k <= request.k);
    let declared = |e: LifeEvent| {
        customer.consents.life_event_use == LifeEventUse::Consented
            && customer.life_events.iter().any(|s| s.event == e && s.provenance == Provenance::Declared)
    };
    let mut last = f64::INFINITY;
    for (i, r) in d.recommendations.iter().enumerate() {
        assert_eq!(r.rank, i + 1);
        finite(r.priority, "priority");
        assert!(r.priority >= 0.0, "negative priority {}", r.priority);
        assert!(r.priority <= last, "priorities not in order");
        last = r.priority;
        let x = &r.explanation;
        finite(x.priority, "explanation priority");
        for (v, what) in [
            (x.components.logit, "logit"),
            (x.components.propensity, "propensity"),
            (x.components.value, "value"),
            (x.components.weight, "weight"),
        ] {
            assert!(!v.is_nan(), "{what} is NaN");
        }
        assert!((0.0..=1.0).contains(&x.components.propensity));
        for c in &x.contributions {
            assert!(!c.value.is_nan() && !c.weight.is_nan() && !c.contribution.is_nan(), "NaN contribution {c:?}");
            let spec = catalog.schema.features.iter().find(|f| f.name == c.feature).expect("cited feature exists");
            assert_eq!(spec.sensitivity, Sensitivity::Ordinary, "explanation cites {}", c.feature);
        }
        assert!(d.withheld.iter().all(|w| w.offer != r.offer), "{} is both recommended and withheld", r.offer);
        let offer = catalog.offers.iter().find(|o| o.id == r.offer).expect("recommended offer exists");
        for e in &offer.targets {
            assert!(declared(*e), "{} targets undeclared {e:?}", r.offer);
        }
        for m in &customer.vulnerabilities {
            assert!(
                !offer.unsuitable_for.contains(&m.vulnerability),
                "{} is unsuitable for {:?}",
                r.offer,
                m.vulnerability
            );
        }
        assert!(channel_ok(offer, customer, request));
        // Neither name nor description of a sensitive feature in the text.
        let json = serde_json::to_string(x).expect("serialisable");
        for f in catalog.schema.features.iter().filter(|f| f.sensitivity.is_sensitive()) {
            assert!(!json.contains(&format!("\"{}\"", f.name)), "explanation names {}", f.name);
            assert!(!x.reason.contains(&*f.description), "reason mentions {}", f.description);
        }
    }
    let mut previous: Option<tactful::OfferId> = None;
    for w in &d.withheld {
        if let tactful::Reason::ProxyDriven { share, threshold, .. } = &w.reason {
            assert!(!share.is_nan() && !threshold.is_nan());
        }
        if let Some(p) = &previous {
            assert!(p.as_str() < w.offer.as_str(), "withheld not in offer-id order or repeated");
        }
        previous = Some(w.offer);
    }
    let f = d.funnel;
    assert!(f.offers >= f.eligible && f.eligible >= f.contactable && f.contactable >= f.allowed);
    assert!(f.allowed >= f.returned && f.returned == d.recommendations.len());
    let text = serde_json::to_string(d).expect("a decision serialises");
    let back: Decision = serde_json::from_str(&text).expect("a decision parses back");
    assert_eq!(&back, d, "decision JSON round trip");
}

fn channel_ok(offer: &Offer, customer: &Customer, request: &Request) -> bool {
    offer.channels.contains(&request.channel)
        && customer.consents.channels.contains(&request.channel)
        && customer.consents.marketing == Marketing::Allowed
}

/// Runs every entry point on one world and checks they agree.
pub fn run_world(engine: &Engine, catalog: &Catalog, customer: &Customer, other: &Customer, request: &Request) {
    let plain = engine.recommend(customer, request);
    if let Ok(d) = &plain {
        check_decision(catalog, customer, request, d);
    }
    // A workspace and decision used for another customer first.
    let mut ws = tactful::Workspace::new();
    let mut into = Decision::default();
    let _ = engine.recommend_into(other, request, &mut ws, &mut into);
    let again = engine.recommend_into(customer, request, &mut ws, &mut into).map(|()| into.clone());
    same(&plain, &again, "recommend and recommend_into on a reused workspace differ");
    let _ = engine.recommend_into(other, request, &mut ws, &mut into);
    let third = engine.recommend_into(customer, request, &mut ws, &mut into).map(|()| into.clone());
    same(&plain, &third, "recommend_into differs on the third use of a workspace");
    // Every kernel this CPU has (portable, AVX2, AVX-512), each also with
    // the value cut, which only large catalogs reach, always on.
    for variant in engine.kernel_variants() {
        let kernels = variant.kernels();
        same(&plain, &variant.recommend(customer, request), &format!("{kernels} kernels differ"));
        let cut = variant.with_value_cut_from(0).recommend(customer, request);
        same(&plain, &cut, &format!("the value cut changes the decision ({kernels} kernels)"));
    }
    let batch = engine.recommend_batch(&[other.clone(), customer.clone(), customer.clone()], request);
    assert_eq!(batch.len(), 3);
    same(&plain, &batch[1], "batch differs");
    same(&plain, &batch[2], "batch differs (second copy)");
}

/// Equal, bit for bit (NaN payloads in errors compare equal, -0.0 and 0.0
/// do not): compares the `Debug` text.
pub fn same<T: std::fmt::Debug>(a: &T, b: &T, what: &str) {
    let (a, b) = (format!("{a:?}"), format!("{b:?}"));
    assert!(a == b, "{what}:\n  left: {a}\n right: {b}");
}
