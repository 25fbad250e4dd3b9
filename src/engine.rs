//! The engine: a validated catalog and parameters, and `recommend`, which
//! runs the pipeline stages in order.

use std::collections::HashMap;
use std::sync::Arc;

use crate::arbitration::{self, Candidate};
use crate::catalog::{Catalog, Offer};
use crate::config::{EngineParams, ValidEngineParams};
use crate::contact;
use crate::customer::{Customer, FeatureValues, Provenance, Request};
use crate::decision::{Decision, DecisionStatus, Funnel, Recommendation, Stage, Withheld};
use crate::eligibility;
use crate::error::{ConfigError, RequestError};
use crate::explain::{self, Components, Contribution, Explanation, Rule};
use crate::guard::{self, SignalState};
use crate::model::{sigmoid, ModelMatrix};
use crate::schema::{FeatureSchema, Sensitivity};

/// Builds an [`Engine`] from a catalog and optional parameters.
///
/// ```
/// # use tactful::{Engine, EngineParams, Catalog};
/// # fn catalog() -> Catalog { serde_json::from_str(include_str!("../examples/data/catalog.json")).unwrap() }
/// let mut params = EngineParams::default();
/// params.contact.dismissal_cooldown_days = 60;
/// let engine = Engine::builder().catalog(catalog()).params(params).build()?;
/// assert_eq!(engine.params().contact().dismissal_cooldown_days, 60);
/// # Ok::<(), tactful::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EngineBuilder {
    catalog: Option<Catalog>,
    params: EngineParams,
}

impl EngineBuilder {
    /// The catalog to rank (required).
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// All parameters at once (default: [`EngineParams::default`]).
    pub fn params(mut self, params: EngineParams) -> Self {
        self.params = params;
        self
    }

    /// Contact-policy parameters.
    pub fn contact_policy(mut self, policy: crate::config::ContactPolicy) -> Self {
        self.params.contact = policy;
        self
    }

    /// Guard parameters.
    pub fn guard(mut self, guard: crate::config::GuardParams) -> Self {
        self.params.guard = guard;
        self
    }

    /// Explanation parameters.
    pub fn explain(mut self, explain: crate::config::ExplainParams) -> Self {
        self.params.explain = explain;
        self
    }

    /// Validates the catalog and parameters and compiles the models.
    pub fn build(self) -> Result<Engine, ConfigError> {
        let catalog = self.catalog.ok_or(ConfigError::MissingCatalog)?;
        Engine::compile(catalog, self.params.check()?)
    }
}

/// Ranks a catalog's offers for one customer at a time. `Send + Sync`:
/// share one engine across threads.
#[derive(Debug, Clone)]
pub struct Engine {
    schema: FeatureSchema,
    /// Sorted by offer id, so positions follow the tie-break order.
    offers: Vec<Offer>,
    offer_index: HashMap<Arc<str>, usize>,
    feature_index: HashMap<Arc<str>, usize>,
    models: ModelMatrix,
    /// Per offer: the rules it must pass, cited when it is recommended.
    rules: Vec<Vec<Rule>>,
    params: ValidEngineParams,
}

fn check_offer_fields(offer: &Offer) -> Result<(), ConfigError> {
    let field = |field, value: f64, ok: bool, expected| {
        if ok {
            Ok(())
        } else {
            Err(ConfigError::InvalidOfferField { offer: offer.id.clone(), field, value, expected })
        }
    };
    field("value", offer.value, offer.value.is_finite() && offer.value >= 0.0, "a finite number >= 0")?;
    field("weight", offer.weight, offer.weight.is_finite() && offer.weight >= 0.0, "a finite number >= 0")?;
    let product = offer.value * offer.weight;
    field("value x weight", product, product.is_finite(), "a finite product")?;
    if offer.channels.is_empty() {
        return Err(ConfigError::NoChannel(offer.id.clone()));
    }
    if let (Some(min), Some(max)) = (offer.eligibility.min_age, offer.eligibility.max_age) {
        if min > max {
            return Err(ConfigError::InvertedAgeBounds { offer: offer.id.clone(), min, max });
        }
    }
    Ok(())
}

fn offer_rules(offer: &Offer) -> Vec<Rule> {
    let mut rules = Vec::new();
    eligibility::rules(offer, &mut rules);
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

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine with default parameters.
    pub fn new(catalog: Catalog) -> Result<Engine, ConfigError> {
        Engine::builder().catalog(catalog).build()
    }

    fn compile(catalog: Catalog, params: ValidEngineParams) -> Result<Engine, ConfigError> {
        let Catalog { schema, mut offers } = catalog;
        if schema.is_empty() {
            return Err(ConfigError::EmptySchema);
        }
        if offers.is_empty() {
            return Err(ConfigError::EmptyCatalog);
        }
        let mut feature_index = HashMap::with_capacity(schema.len());
        for (i, f) in schema.features.iter().enumerate() {
            if let Some(first) = feature_index.insert(f.name.clone(), i) {
                return Err(ConfigError::DuplicateFeature { name: f.name.to_string(), first, second: i });
            }
            if !f.baseline.is_finite() {
                return Err(ConfigError::NonFiniteBaseline { name: f.name.to_string(), value: f.baseline });
            }
        }
        offers.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(pair) = offers.windows(2).find(|p| p[0].id == p[1].id) {
            return Err(ConfigError::DuplicateOffer(pair[0].id.clone()));
        }
        offers.iter().try_for_each(check_offer_fields)?;
        let models = ModelMatrix::compile(&schema, &offers)?;
        let offer_index = offers.iter().enumerate().map(|(i, o)| (o.id.0.clone(), i)).collect();
        let rules = offers.iter().map(offer_rules).collect();
        Ok(Engine { schema, offers, offer_index, feature_index, models, rules, params })
    }

    /// The feature schema.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// The offers, in offer-id order.
    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }

    /// The validated parameters.
    pub fn params(&self) -> &ValidEngineParams {
        &self.params
    }

    /// Checks the customer's feature values and returns them in schema order.
    fn feature_vector(&self, customer: &Customer) -> Result<Vec<f64>, RequestError> {
        let n = self.schema.len();
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
                        return Err(self.non_finite(customer, i, value));
                    }
                    x[i] = value;
                }
                if map.len() != n {
                    let missing = x.iter().position(|v| v.is_nan()).unwrap_or(0);
                    return Err(RequestError::MissingFeature {
                        customer: customer.id.clone(),
                        feature: self.schema.features[missing].name.to_string(),
                    });
                }
                x
            }
        };
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(self.non_finite(customer, i, x[i]));
        }
        Ok(x)
    }

    fn non_finite(&self, customer: &Customer, i: usize, value: f64) -> RequestError {
        RequestError::NonFiniteFeature {
            customer: customer.id.clone(),
            feature: self.schema.features[i].name.to_string(),
            value,
        }
    }

    /// Checks signals and history; returns, per contact, its offer position.
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

    /// Ranks the catalog for `customer`: eligibility → contact policy →
    /// scoring → guard → arbitration → top-k → explanations.
    pub fn recommend(&self, customer: &Customer, request: &Request) -> Result<Decision, RequestError> {
        if request.k == 0 {
            return Err(RequestError::ZeroK);
        }
        let x = self.feature_vector(customer)?;
        let contact_offers = self.check_customer(customer)?;
        let signals = SignalState::new(customer);

        // Rule 2: masked features sit at their baseline, so contribute 0.
        let mut masked_features = Vec::new();
        let mut d = Vec::with_capacity(x.len());
        let mut is_proxy = Vec::with_capacity(x.len());
        for (f, &xi) in self.schema.features.iter().zip(&x) {
            if signals.masks(f.sensitivity) {
                masked_features.push(f.name.clone());
                d.push(0.0);
            } else {
                d.push(xi - f.baseline);
            }
            is_proxy.push(signals.counts_as_proxy(f.sensitivity));
        }

        let policy = self.params.contact();
        let budget = contact::customer_budget(customer, request, policy);
        let (status, effective_k) = match &budget {
            Ok(left) => (DecisionStatus::Ranked, request.k.min(*left as usize)),
            Err((status, _)) => (*status, 0),
        };
        let threshold = self.params.guard().proxy_share_threshold;

        let mut funnel = Funnel { offers: self.offers.len(), ..Funnel::default() };
        let mut withheld = Vec::new();
        let mut candidates = Vec::new();
        for (o, offer) in self.offers.iter().enumerate() {
            let withhold = |stage, reason| Withheld { offer: offer.id.clone(), stage, reason };
            if let Err(reason) = eligibility::check(offer, customer) {
                withheld.push(withhold(Stage::Eligibility, reason));
                continue;
            }
            funnel.eligible += 1;
            let contacts =
                contact_offers.iter().zip(&customer.contact_history).filter(|(&i, _)| i == o).map(|(_, c)| c);
            let contact_rule = match &budget {
                Err((_, reason)) => Err(reason.clone()),
                Ok(_) => contact::check_offer(offer, contacts, request, policy),
            };
            if let Err(reason) = contact_rule {
                withheld.push(withhold(Stage::ContactPolicy, reason));
                continue;
            }
            funnel.contactable += 1;
            let guard_rule =
                signals.check_targets(&offer.targets).and_then(|()| guard::check_suitability(offer, customer));
            if let Err(reason) = guard_rule {
                withheld.push(withhold(Stage::Guard, reason));
                continue;
            }
            let logit = self.models.logit(o, &d);
            let row = self.models.row(o);
            let contributions = row.iter().zip(&d).map(|(w, d)| w * d);
            let share = guard::proxy_share(contributions.clone().zip(is_proxy.iter().copied()));
            if !logit.is_finite() || !share.is_finite() {
                return Err(RequestError::ScoreOverflow { customer: customer.id.clone(), offer: offer.id.clone() });
            }
            if share > threshold {
                let mut proxies: Vec<(usize, f64)> =
                    contributions.enumerate().filter(|&(i, c)| is_proxy[i] && c != 0.0).collect();
                proxies.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
                let features = proxies.iter().map(|&(i, _)| self.schema.features[i].name.clone()).collect();
                withheld
                    .push(withhold(Stage::Guard, crate::decision::Reason::ProxyDriven { share, threshold, features }));
                continue;
            }
            funnel.allowed += 1;
            let propensity = sigmoid(logit);
            let priority = arbitration::priority(propensity, offer.value, offer.weight);
            candidates.push(Candidate { offer: o, logit, propensity, priority });
        }

        arbitration::top_k(&mut candidates, effective_k);
        funnel.returned = candidates.len();
        let recommendations =
            candidates.iter().enumerate().map(|(rank, c)| self.recommendation(rank + 1, c, &x, &d)).collect();
        Ok(Decision {
            customer: customer.id.clone(),
            now: request.now,
            channel: request.channel,
            requested_k: request.k,
            effective_k,
            status,
            recommendations,
            withheld,
            masked_features,
            funnel,
        })
    }

    fn recommendation(&self, rank: usize, c: &Candidate, x: &[f64], d: &[f64]) -> Recommendation {
        let offer = &self.offers[c.offer];
        let row = self.models.row(c.offer);
        let features = &self.schema.features;
        // Rule 6: only ordinary features are ever cited.
        let cited = row
            .iter()
            .zip(d)
            .enumerate()
            .filter(|&(i, _)| features[i].sensitivity == Sensitivity::Ordinary)
            .map(|(i, (w, d))| (i, w * d));
        let mut top = Vec::new();
        explain::top_contributions(cited, self.params.explain().max_contributions, &mut top);
        let contributions: Vec<Contribution> = top
            .iter()
            .map(|&(i, contribution)| Contribution {
                feature: features[i].name.clone(),
                description: features[i].description.clone(),
                value: x[i],
                weight: row[i],
                contribution,
            })
            .collect();
        let reason = explain::sentence(&contributions);
        Recommendation {
            rank,
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
                },
                contributions,
                rules_passed: self.rules[c.offer].clone(),
                reason,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Engine>();
    }
}
