//! A naive reference implementation of the tactful pipeline, written
//! against the public API only: per-offer dot products, a full sort of all
//! candidates and explanations computed eagerly for every candidate.
//!
//! It is the oracle of `tests/fast_path.rs` (with [`Dot::Sequential`], the
//! engine's documented f64 arithmetic: `base + Σ wᵢ·dᵢ` summed in feature
//! order) and the naive baseline of `benches/ranking.rs` (with
//! [`Dot::Ndarray`], ndarray's generic `dot`).

#![allow(dead_code)]

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use ndarray::ArrayView1;
use tactful::arbitration::priority;
use tactful::model::{dense_weights, sigmoid};
use tactful::relationship::ChannelScope;
use tactful::value::ValueSummary;
use tactful::{
    Channel, Components, ContactOutcome, Contribution, Customer, Decision, DecisionStatus, Engine, Explanation,
    FeatureValues, Funnel, LifeEvent, LifeEventUse, Marketing, Offer, OfferId, OfferKind, Provenance, ProvenanceKind,
    ProxyTarget, Reason, Recommendation, Request, RequestError, Rule, Sensitivity, Stage, Withheld,
};

/// How the reference computes `Σ wᵢ·dᵢ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dot {
    /// Plain f64 sum in feature order: the engine's definition, bit for bit.
    Sequential,
    /// `ndarray::ArrayView1::dot` (unrolled; equal within rounding).
    Ndarray,
}

/// The reference ranker for one engine's catalog and parameters.
pub struct Reference<'e> {
    engine: &'e Engine,
    weights: Vec<Vec<f64>>,
    base: Vec<f64>,
    feature_index: HashMap<String, usize>,
    offer_index: HashMap<String, usize>,
}

struct Candidate {
    offer: usize,
    logit: f64,
    propensity: f64,
    priority: f64,
    parts: Parts,
    /// Guard rule 3's verdict, when proxy-driven: the withheld entry.
    driven: Option<Withheld>,
    explanation: Option<Recommendation>,
}

/// The arbitration parts besides the propensity.
#[derive(Clone, Copy)]
struct Parts {
    stake: f64,
    growth: f64,
    family: f64,
    value: ValueSummary,
}

/// Lifetime value summed year by year, churn risk and share of wallet.
fn naive_value(v: &tactful::value::CustomerValue, params: &tactful::ValidEngineParams) -> ValueSummary {
    let p = params.value();
    let (q, mut q_t, mut clv) = (v.retention_rate / (1.0 + p.discount_rate), 1.0, 0.0);
    for _ in 0..p.horizon_years {
        q_t *= q;
        clv += v.margin_per_year * q_t;
    }
    let churn = v.churn_risk.unwrap_or(1.0 - v.retention_rate);
    let share = match (v.wallet_with_us, v.category_spend) {
        (Some(w), Some(c)) if c > 0.0 => Some((w / c).clamp(0.0, 1.0)),
        _ => None,
    };
    ValueSummary { lifetime_value: clv, churn_risk: churn, value_at_risk: churn * clv, share_of_wallet: share }
}

/// The stake and growth factor of the module docs of `tactful::arbitration`.
fn naive_stake(offer: &Offer, value: Option<&ValueSummary>, params: &tactful::ValidEngineParams) -> (f64, f64) {
    let a = params.arbitration();
    match value {
        None => (a.value_weight * offer.value, 1.0),
        Some(v) if offer.kind == OfferKind::Retention => {
            (a.value_weight * offer.value + a.retention_weight * v.value_at_risk, 1.0)
        }
        Some(v) => {
            let growth = 1.0 - a.wallet_share_damping * v.share_of_wallet.unwrap_or(0.0);
            (a.value_weight * offer.value * growth + a.lifetime_value_weight * v.lifetime_value, growth)
        }
    }
}

const GENERIC_REASON: &str = tactful::explain::GENERIC_REASON;

impl<'e> Reference<'e> {
    /// Compiles the engine's offers the naive way (one `Vec` per offer).
    pub fn new(engine: &'e Engine) -> Self {
        let schema = engine.schema();
        let mut weights = Vec::new();
        let mut base = Vec::new();
        for offer in engine.offers() {
            let w = dense_weights(&offer.id, schema, &offer.model.weights).expect("engine validated the weights");
            base.push(offer.model.bias + w.iter().zip(&schema.features).map(|(w, f)| w * f.baseline).sum::<f64>());
            weights.push(w);
        }
        let feature_index = schema.features.iter().enumerate().map(|(i, f)| (f.name.to_string(), i)).collect();
        let offer_index = engine.offers().iter().enumerate().map(|(i, o)| (o.id.to_string(), i)).collect();
        Reference { engine, weights, base, feature_index, offer_index }
    }

    fn features(&self, customer: &Customer) -> Result<Vec<f64>, RequestError> {
        let schema = self.engine.schema();
        let n = schema.len();
        let non_finite = |i: usize, value: f64| RequestError::NonFiniteFeature {
            customer: customer.id.clone(),
            feature: schema.features[i].name.to_string(),
            value,
        };
        let x = match &customer.features {
            FeatureValues::Dense(v) if v.len() != n => {
                return Err(RequestError::FeatureCount { customer: customer.id.clone(), expected: n, found: v.len() })
            }
            FeatureValues::Dense(v) => v.clone(),
            FeatureValues::ByName(map) => {
                let mut x = vec![f64::NAN; n];
                for (name, &value) in map {
                    let i = *self.feature_index.get(name.as_str()).ok_or_else(|| RequestError::UnknownFeature {
                        customer: customer.id.clone(),
                        feature: name.clone(),
                    })?;
                    if !value.is_finite() {
                        return Err(non_finite(i, value));
                    }
                    x[i] = value;
                }
                if map.len() != n {
                    let missing = x.iter().position(|v| v.is_nan()).unwrap_or(0);
                    return Err(RequestError::MissingFeature {
                        customer: customer.id.clone(),
                        feature: schema.features[missing].name.to_string(),
                    });
                }
                x
            }
        };
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(non_finite(i, x[i]));
        }
        Ok(x)
    }

    fn check_customer(&self, customer: &Customer) -> Result<Vec<usize>, RequestError> {
        let life = customer.life_events.iter().map(|s| ("life_events", s.provenance));
        let vuln = customer.vulnerabilities.iter().map(|m| ("vulnerabilities", m.provenance));
        let mut counts = [0usize; 2];
        for (field, provenance) in life.chain(vuln) {
            let slot = usize::from(field == "vulnerabilities");
            let index = counts[slot];
            counts[slot] += 1;
            if let Provenance::Inferred { confidence } = provenance {
                if !(0.0..=1.0).contains(&confidence) {
                    return Err(RequestError::InvalidConfidence {
                        customer: customer.id.clone(),
                        field: format!("{field}[{index}]"),
                        value: confidence,
                    });
                }
            }
        }
        customer
            .contact_history
            .iter()
            .enumerate()
            .map(|(index, c)| {
                self.offer_index.get(c.offer.as_str()).copied().ok_or_else(|| RequestError::UnknownOffer {
                    customer: customer.id.clone(),
                    index,
                    offer: c.offer.clone(),
                })
            })
            .collect()
    }

    /// The decision the engine must return, computed naively.
    pub fn recommend(&self, customer: &Customer, request: &Request, dot: Dot) -> Result<Decision, RequestError> {
        if request.k == 0 {
            return Err(RequestError::ZeroK);
        }
        let schema = self.engine.schema();
        let params = self.engine.params();
        let x = self.features(customer)?;
        let contact_offers = self.check_customer(customer)?;

        let consent = customer.consents.life_event_use == LifeEventUse::Consented;
        let usable = |e: LifeEvent| {
            consent
                && customer.life_events.iter().any(|s| s.event == e && s.provenance.kind() == ProvenanceKind::Declared)
        };
        let mut masked_features = Vec::new();
        let mut d = Vec::new();
        let mut is_proxy = Vec::new();
        for (f, &xi) in schema.features.iter().zip(&x) {
            let masked = match f.sensitivity {
                Sensitivity::Special(_) => true,
                Sensitivity::LifeEvent(e) => !usable(e),
                _ => false,
            };
            if masked {
                masked_features.push(f.name.clone());
                d.push(0.0);
            } else {
                d.push(xi - f.baseline);
            }
            is_proxy.push(match f.sensitivity {
                Sensitivity::Proxy(ProxyTarget::LifeEvent(e)) => !usable(e),
                Sensitivity::Proxy(_) => true,
                _ => false,
            });
        }

        let policy = params.contact();
        let budget = budget(customer, request, params);
        let value = customer.value.map(|v| naive_value(&v, params));
        if let Some(v) = &customer.value {
            let probability = |p: f64| (0.0..=1.0).contains(&p);
            let amount = |a: f64| a.is_finite() && a >= 0.0;
            let ok = amount(v.margin_per_year)
                && probability(v.retention_rate)
                && v.churn_risk.is_none_or(probability)
                && v.wallet_with_us.is_none_or(amount)
                && v.category_spend.is_none_or(amount);
            if !ok {
                let engine_says = self.engine.recommend(customer, request);
                assert!(matches!(engine_says, Err(RequestError::InvalidCustomerValue { .. })));
                return engine_says;
            }
        }
        let (status, effective_k) = match &budget {
            Ok(left) => (DecisionStatus::Ranked, request.k.min(*left as usize)),
            Err((status, _)) => (*status, 0),
        };
        let threshold = params.guard().proxy_share_threshold;
        let mut funnel = Funnel { offers: self.engine.offers().len(), ..Funnel::default() };
        let mut withheld = Vec::new();
        let mut candidates = Vec::new();
        for (o, offer) in self.engine.offers().iter().enumerate() {
            let withhold = |stage, reason| Withheld { offer: offer.id.clone(), stage, reason };
            if let Err(reason) = eligibility(offer, customer) {
                withheld.push(withhold(Stage::Eligibility, reason));
                continue;
            }
            funnel.eligible += 1;
            let contact_rule = if let Err((_, reason)) = &budget {
                Err(reason.clone())
            } else {
                let contacts: Vec<_> = contact_offers
                    .iter()
                    .zip(&customer.contact_history)
                    .filter(|(&i, _)| i == o)
                    .map(|(_, c)| c)
                    .collect();
                contact_check(offer, &contacts, request, policy)
            };
            if let Err(reason) = contact_rule {
                withheld.push(withhold(Stage::ContactPolicy, reason));
                continue;
            }
            funnel.contactable += 1;
            if let Err(reason) = targets(offer, customer, &usable).and_then(|()| suitability(offer, customer)) {
                withheld.push(withhold(Stage::Guard, reason));
                continue;
            }
            let w = &self.weights[o];
            let sum = match dot {
                Dot::Sequential => w.iter().zip(&d).map(|(w, x)| w * x).sum::<f64>(),
                Dot::Ndarray => ArrayView1::from(&w[..]).dot(&ArrayView1::from(&d[..])),
            };
            let logit = self.base[o] + sum;
            let (mut proxy, mut total) = (0.0, 0.0);
            for (i, (w, d)) in w.iter().zip(&d).enumerate() {
                let c: f64 = w * d;
                total += c.abs();
                if is_proxy[i] {
                    proxy += c.abs();
                }
            }
            let share = if total > 0.0 { proxy / total } else { 0.0 };
            if !logit.is_finite() || !share.is_finite() {
                return Err(RequestError::ScoreOverflow { customer: customer.id.clone(), offer: offer.id.clone() });
            }
            let driven = (share > threshold).then(|| {
                let mut proxies: Vec<(usize, f64)> = w
                    .iter()
                    .zip(&d)
                    .map(|(w, d)| w * d)
                    .enumerate()
                    .filter(|&(i, c)| is_proxy[i] && c != 0.0)
                    .collect();
                proxies.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
                let features = proxies.iter().map(|&(i, _)| schema.features[i].name.clone()).collect();
                withhold(Stage::Guard, Reason::ProxyDriven { share, threshold, features })
            });
            let propensity = sigmoid(logit);
            let (stake, growth) = naive_stake(offer, value.as_ref(), params);
            let family = self.family_factor(o, customer, &contact_offers, request);
            let priority = priority(propensity, stake, offer.weight) * family;
            let parts = Parts { stake, growth, family, value: value.unwrap_or_default() };
            candidates.push(Candidate { offer: o, logit, propensity, priority, parts, driven, explanation: None });
        }
        // Eager explanations, then a full sort.
        for c in &mut candidates {
            c.explanation = Some(self.recommendation(c, &x, &d));
        }
        candidates.sort_by(|a, b| b.priority.total_cmp(&a.priority).then(a.offer.cmp(&b.offer)));
        // Guard rule 3 in rank order, until `effective_k` offers pass it:
        // the proxy-driven ones met on the way are withheld, in offer order
        // with the rest; the offers after them are allowed, not ranked.
        let mut kept = Vec::new();
        let mut driven = Vec::new();
        for c in candidates {
            if kept.len() == effective_k {
                funnel.allowed += 1;
            } else if let Some(w) = c.driven.clone() {
                driven.push((c.offer, w));
            } else {
                funnel.allowed += 1;
                kept.push(c);
            }
        }
        let position = |id: &OfferId| self.engine.offers().iter().position(|o| &o.id == id);
        for (o, w) in driven {
            let at = withheld.partition_point(|w: &Withheld| position(&w.offer) < Some(o));
            withheld.insert(at, w);
        }
        let candidates = kept;
        funnel.returned = candidates.len();
        let recommendations = candidates
            .into_iter()
            .enumerate()
            .map(|(rank, c)| Recommendation { rank: rank + 1, ..c.explanation.expect("explained") })
            .collect();
        Ok(Decision {
            customer: customer.id.clone(),
            now: request.now,
            channel: request.channel,
            requested_k: request.k,
            effective_k,
            status,
            recommendations,
            withheld: withheld.into(),
            masked_features,
            funnel,
            customer_value: value,
        })
    }

    /// `factor^n` for the `n` dismissals, within the memory, of offers of
    /// the offer's family (its product when it names none).
    fn family_factor(&self, o: usize, customer: &Customer, contact_offers: &[usize], request: &Request) -> f64 {
        let offers = self.engine.offers();
        let family = |i: usize| offers[i].family.clone().unwrap_or_else(|| offers[i].product.to_string());
        let f = self.engine.params().fatigue();
        let since = days_before(request.now, f.family_memory_days);
        let n = customer
            .contact_history
            .iter()
            .zip(contact_offers)
            .filter(|(c, &i)| {
                c.outcome == ContactOutcome::Dismissed && c.at > since && c.at <= request.now && family(i) == family(o)
            })
            .count();
        f.family_dismissal_factor.powi(n as i32)
    }

    fn recommendation(&self, c: &Candidate, x: &[f64], d: &[f64]) -> Recommendation {
        let offer = &self.engine.offers()[c.offer];
        let features = &self.engine.schema().features;
        let w = &self.weights[c.offer];
        let mut top: Vec<(usize, f64)> = w
            .iter()
            .zip(d)
            .enumerate()
            .filter(|&(i, _)| features[i].sensitivity == Sensitivity::Ordinary)
            .map(|(i, (w, d))| (i, w * d))
            .filter(|&(_, c)| c != 0.0)
            .collect();
        top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        top.truncate(self.engine.params().explain().max_contributions);
        let contributions: Vec<Contribution> = top
            .iter()
            .map(|&(i, contribution)| Contribution {
                feature: features[i].name.clone(),
                description: features[i].description.clone(),
                value: x[i],
                weight: w[i],
                contribution,
            })
            .collect();
        let reason = sentence(&contributions);
        Recommendation {
            rank: 0,
            offer: offer.id.clone(),
            product: offer.product.clone(),
            kind: offer.kind,
            priority: c.priority,
            explanation: Explanation {
                priority: c.priority,
                components: Components {
                    logit: c.logit,
                    propensity: c.propensity,
                    value: offer.value,
                    weight: offer.weight,
                    stake: c.parts.stake,
                    growth_factor: c.parts.growth,
                    family_factor: c.parts.family,
                    lifetime_value: c.parts.value.lifetime_value,
                    value_at_risk: c.parts.value.value_at_risk,
                },
                contributions: contributions.into(),
                rules_passed: rules(offer),
                reason,
            },
        }
    }
}

fn sentence(contributions: &[Contribution]) -> String {
    let positive: Vec<&str> = contributions.iter().filter(|c| c.contribution > 0.0).map(|c| &*c.description).collect();
    if positive.is_empty() {
        return GENERIC_REASON.to_owned();
    }
    let mut s = String::from("Suggested mainly because of your ");
    for (i, d) in positive.iter().enumerate() {
        if i > 0 {
            s.push_str(if i + 1 == positive.len() { " and your " } else { ", your " });
        }
        s.push_str(d);
    }
    s.push('.');
    s
}

fn rules(offer: &Offer) -> Vec<Rule> {
    let mut rules = vec![Rule::NotHeld];
    let r = &offer.eligibility;
    if r.min_age.is_some() || r.max_age.is_some() {
        rules.push(Rule::AgeBounds);
    }
    if r.base_product.is_some() {
        rules.push(Rule::BaseProductHeld);
    }
    if !r.requires.is_empty() {
        rules.push(Rule::RequiredHoldings);
    }
    if !r.excludes.is_empty() {
        rules.push(Rule::NoExcludedHolding);
    }
    rules.extend([Rule::ChannelConsent, Rule::FrequencyCap, Rule::Cooldown, Rule::Rest]);
    if !offer.targets.is_empty() {
        rules.push(Rule::LifeEventConsent);
    }
    rules.extend([Rule::SensitiveDataMasked, Rule::ProxyShare]);
    if !offer.unsuitable_for.is_empty() {
        rules.push(Rule::Suitability);
    }
    rules
}

fn eligibility(offer: &Offer, customer: &Customer) -> Result<(), Reason> {
    if customer.holds(&offer.product) {
        return Err(Reason::AlreadyHeld { product: offer.product.clone() });
    }
    let rules = &offer.eligibility;
    if rules.min_age.is_some() || rules.max_age.is_some() {
        let Some(age) = customer.age else {
            return Err(Reason::AgeUnknown);
        };
        if let Some(min_age) = rules.min_age.filter(|&m| age < m) {
            return Err(Reason::TooYoung { age, min_age });
        }
        if let Some(max_age) = rules.max_age.filter(|&m| age > m) {
            return Err(Reason::TooOld { age, max_age });
        }
    }
    if let Some(base) = rules.base_product.as_ref().filter(|p| !customer.holds(p)) {
        return Err(Reason::MissingBaseProduct { product: base.clone() });
    }
    if let Some(p) = rules.requires.iter().find(|p| !customer.holds(p)) {
        return Err(Reason::MissingRequiredHolding { product: p.clone() });
    }
    if let Some(p) = rules.excludes.iter().find(|p| customer.holds(p)) {
        return Err(Reason::ExcludedHolding { product: p.clone() });
    }
    Ok(())
}

fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::days(i64::from(days))).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn days_after(t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    t.checked_add_signed(Duration::days(i64::from(days))).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn budget(
    customer: &Customer,
    request: &Request,
    params: &tactful::ValidEngineParams,
) -> Result<u32, (DecisionStatus, Reason)> {
    if customer.consents.marketing == Marketing::OptedOut {
        return Err((DecisionStatus::OptedOut, Reason::OptedOut));
    }
    if !customer.consents.channels.contains(&request.channel) {
        return Err((DecisionStatus::ChannelNotConsented, Reason::ChannelNotConsented { channel: request.channel }));
    }
    let mut policy = *params.contact();
    if let Some(level) = customer.relationship {
        let rules = params.relationship().level(level);
        let inbound = matches!(request.channel, Channel::App | Channel::Web | Channel::Branch);
        if rules.channels == ChannelScope::InboundOnly && !inbound {
            // The frequency cap is reported first when it is reached too.
            frequency(customer, request, &policy)?;
            return Err((
                DecisionStatus::ChannelNotForLevel,
                Reason::RelationshipChannel { level, channel: request.channel },
            ));
        }
        policy.frequency_cap = rules.frequency_cap;
    }
    let left = frequency(customer, request, &policy)?;
    let f = params.fatigue();
    let fatigue: f64 = customer
        .contact_history
        .iter()
        .filter(|c| c.at <= request.now)
        .map(|c| {
            let weight = match c.outcome {
                ContactOutcome::Shown => f.shown_weight,
                ContactOutcome::Dismissed => f.dismissed_weight,
                ContactOutcome::Accepted => f.accepted_weight,
                _ => unreachable!("a new contact outcome needs a fatigue weight"),
            };
            weight * 0.5f64.powf((request.now - c.at).num_seconds() as f64 / 86_400.0 / f.half_life_days)
        })
        .sum();
    if f.budget - fatigue < 1.0 {
        return Err((DecisionStatus::ContactBudgetExhausted, Reason::ContactFatigue { fatigue, budget: f.budget }));
    }
    Ok(left.min((f.budget - fatigue).floor() as u32))
}

fn frequency(
    customer: &Customer,
    request: &Request,
    policy: &tactful::ContactPolicy,
) -> Result<u32, (DecisionStatus, Reason)> {
    let since = days_before(request.now, policy.frequency_window_days);
    let recent = customer.contact_history.iter().filter(|c| c.at > since && c.at <= request.now).count();
    let contacts = u32::try_from(recent).unwrap_or(u32::MAX);
    if contacts >= policy.frequency_cap {
        return Err((
            DecisionStatus::FrequencyCapReached,
            Reason::FrequencyCap { contacts, cap: policy.frequency_cap, window_days: policy.frequency_window_days },
        ));
    }
    Ok(policy.frequency_cap - contacts)
}

fn contact_check(
    offer: &Offer,
    contacts: &[&tactful::Contact],
    request: &Request,
    policy: &tactful::ContactPolicy,
) -> Result<(), Reason> {
    if !offer.channels.contains(&request.channel) {
        return Err(Reason::ChannelNotOffered { channel: request.channel });
    }
    let past: Vec<_> = contacts.iter().filter(|c| c.at <= request.now).collect();
    let last = |outcome| past.iter().filter(|c| c.outcome == outcome).map(|c| c.at).max();
    let last_acceptance = last(ContactOutcome::Accepted);
    if let Some(dismissed_at) = last(ContactOutcome::Dismissed) {
        let until = days_after(dismissed_at, policy.dismissal_cooldown_days);
        if request.now < until {
            return Err(Reason::Cooldown { dismissed_at, until });
        }
    }
    let since = days_before(request.now, policy.rest_window_days);
    let since = last_acceptance.map_or(since, |a| since.max(a));
    let shows = past.iter().filter(|c| c.at > since && c.outcome != ContactOutcome::Accepted).count();
    let shows = u32::try_from(shows).unwrap_or(u32::MAX);
    if shows >= policy.rest_after_shows {
        return Err(Reason::Rested { shows, window_days: policy.rest_window_days });
    }
    Ok(())
}

fn targets(offer: &Offer, customer: &Customer, usable: &dyn Fn(LifeEvent) -> bool) -> Result<(), Reason> {
    for &event in &offer.targets {
        if usable(event) {
            continue;
        }
        let kinds: Vec<ProvenanceKind> =
            customer.life_events.iter().filter(|s| s.event == event).map(|s| s.provenance.kind()).collect();
        if kinds.contains(&ProvenanceKind::Declared) {
            return Err(Reason::LifeEventUseNotConsented { event });
        }
        let found = [ProvenanceKind::Declared, ProvenanceKind::Observed, ProvenanceKind::Inferred]
            .into_iter()
            .filter(|k| kinds.contains(k))
            .collect();
        return Err(Reason::LifeEventNotDeclared { event, found });
    }
    Ok(())
}

fn suitability(offer: &Offer, customer: &Customer) -> Result<(), Reason> {
    match customer.vulnerabilities.iter().find(|m| offer.unsuitable_for.contains(&m.vulnerability)) {
        Some(m) => Err(Reason::Unsuitable { vulnerability: m.vulnerability, provenance: m.provenance.kind() }),
        None => Ok(()),
    }
}
