//! The result of one request: the recommendations, each with its
//! explanation, and the audit of everything withheld and why.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::{Channel, CustomerId, OfferId, OfferKind, ProductId, Vulnerability};
use crate::customer::ProvenanceKind;
use crate::explain::Explanation;
use crate::relationship::RelationshipLevel;
use crate::schema::LifeEvent;
use crate::value::ValueSummary;

/// The outcome of a decision as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionStatus {
    /// Offers were ranked (the list may still be empty if none was allowed).
    Ranked,
    /// The customer opted out of marketing: nothing is recommended.
    OptedOut,
    /// The customer did not consent to the requested channel.
    ChannelNotConsented,
    /// The contact frequency cap is reached: nothing is recommended.
    FrequencyCapReached,
    /// The customer's relationship level allows no contact on the
    /// requested channel (e.g. outbound for a basic relationship).
    ChannelNotForLevel,
    /// The customer's contact-fatigue budget is spent.
    ContactBudgetExhausted,
}

/// The pipeline stage that withheld an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Product and age rules.
    Eligibility,
    /// Opt-out, channel consent, frequency cap, cooldown, rest.
    ContactPolicy,
    /// The intrusiveness guard.
    Guard,
}

/// Why an offer was withheld; each variant names the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The customer already holds the product.
    AlreadyHeld {
        /// The product.
        product: ProductId,
    },
    /// Up-sell without the base product.
    MissingBaseProduct {
        /// The base product.
        product: ProductId,
    },
    /// A required holding is missing.
    MissingRequiredHolding {
        /// The product.
        product: ProductId,
    },
    /// The customer holds an excluding product.
    ExcludedHolding {
        /// The product.
        product: ProductId,
    },
    /// Age below the offer's minimum.
    TooYoung {
        /// Customer age.
        age: u32,
        /// Minimum age.
        min_age: u32,
    },
    /// Age above the offer's maximum.
    TooOld {
        /// Customer age.
        age: u32,
        /// Maximum age.
        max_age: u32,
    },
    /// The offer has age bounds and the customer's age is unknown.
    AgeUnknown,
    /// The customer opted out of marketing.
    OptedOut,
    /// The customer did not consent to the requested channel.
    ChannelNotConsented {
        /// The requested channel.
        channel: Channel,
    },
    /// The offer is not made on the requested channel.
    ChannelNotOffered {
        /// The requested channel.
        channel: Channel,
    },
    /// The customer was contacted too often in the window.
    FrequencyCap {
        /// Contacts in the window.
        contacts: u32,
        /// The cap.
        cap: u32,
        /// The window, in days.
        window_days: u32,
    },
    /// The relationship level does not allow the requested channel.
    RelationshipChannel {
        /// The customer's level.
        level: RelationshipLevel,
        /// The requested channel.
        channel: Channel,
    },
    /// The customer's contact-fatigue budget is spent.
    ContactFatigue {
        /// Fatigue now (decayed sum of past contacts).
        fatigue: f64,
        /// The budget.
        budget: f64,
    },
    /// The customer dismissed this offer recently.
    Cooldown {
        /// The latest dismissal.
        dismissed_at: DateTime<Utc>,
        /// When the offer may be made again.
        until: DateTime<Utc>,
    },
    /// Shown too often without acceptance: rested.
    Rested {
        /// Unaccepted shows in the window.
        shows: u32,
        /// The window, in days.
        window_days: u32,
    },
    /// Guard rule 1: the offer targets a life event the customer did not
    /// declare. `found` lists the provenances of the signals present (empty:
    /// no signal at all).
    LifeEventNotDeclared {
        /// The targeted event.
        event: LifeEvent,
        /// Provenances of the signals found for it.
        found: Vec<ProvenanceKind>,
    },
    /// Guard rule 1: the event was declared but its use was not consented.
    LifeEventUseNotConsented {
        /// The targeted event.
        event: LifeEvent,
    },
    /// Guard rule 3: the score is driven by proxy features.
    ProxyDriven {
        /// Share of the absolute log-odds contributions from proxies.
        share: f64,
        /// The configured threshold.
        threshold: f64,
        /// The proxy features responsible, largest contribution first.
        features: Vec<Arc<str>>,
    },
    /// Guard rule 4: a vulnerability marker (of any provenance) makes the
    /// offer unsuitable.
    Unsuitable {
        /// The vulnerability.
        vulnerability: Vulnerability,
        /// Where the marker came from.
        provenance: ProvenanceKind,
    },
}

/// One offer withheld, for the operator's audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Withheld {
    /// The offer.
    pub offer: OfferId,
    /// The stage that withheld it.
    pub stage: Stage,
    /// The first rule it failed, in pipeline order.
    pub reason: Reason,
}

/// One recommended offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Recommendation {
    /// 1-based rank.
    pub rank: usize,
    /// The offer.
    pub offer: OfferId,
    /// The product it sells.
    pub product: ProductId,
    /// Its kind.
    pub kind: OfferKind,
    /// The arbitration priority it was ranked by.
    pub priority: f64,
    /// Why it was recommended; cites only ordinary features.
    pub explanation: Explanation,
}

/// How many offers reached each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Funnel {
    /// Offers in the catalog.
    pub offers: usize,
    /// Offers that passed eligibility.
    pub eligible: usize,
    /// Offers that also passed the contact policy.
    pub contactable: usize,
    /// Offers that also passed the guard: the candidates ranked. Those
    /// ranked after the last recommendation count here whatever their proxy
    /// share, which guard rule 3 decides in rank order only until the
    /// top-k is full (see [`guard`](crate::guard)).
    pub allowed: usize,
    /// Offers returned.
    pub returned: usize,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// The customer.
    pub customer: CustomerId,
    /// The request time.
    pub now: DateTime<Utc>,
    /// The requested channel.
    pub channel: Channel,
    /// The `k` asked for.
    pub requested_k: usize,
    /// At most how many offers could be returned: `k`, lowered to what is
    /// left of the frequency cap.
    pub effective_k: usize,
    /// Overall outcome.
    pub status: DecisionStatus,
    /// The recommendations, best first (may be fewer than `k`).
    pub recommendations: Vec<Recommendation>,
    /// Audit: every offer withheld by a rule, in offer-id order.
    pub withheld: crate::audit::WithheldList,
    /// Audit: features masked to their baseline for this customer.
    pub masked_features: Vec<Arc<str>>,
    /// Audit: offers reaching each stage.
    pub funnel: Funnel,
    /// The customer's value figures used by arbitration, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_value: Option<ValueSummary>,
}

impl Decision {
    /// The withheld entry for `offer`, if any (built on demand from the
    /// compact audit, see [`WithheldList`](crate::WithheldList)).
    pub fn withheld_reason(&self, offer: &str) -> Option<Withheld> {
        self.withheld.find(offer)
    }

    /// The recommended offer ids, best first.
    pub fn offer_ids(&self) -> impl Iterator<Item = &OfferId> {
        self.recommendations.iter().map(|r| &r.offer)
    }
}

fn list<T: fmt::Debug>(items: &[T]) -> String {
    items.iter().map(|i| format!("{i:?}")).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Reason {
    /// A one-line, operator-facing description of the rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::AlreadyHeld { product } => write!(f, "already holds {product}"),
            Reason::MissingBaseProduct { product } => write!(f, "up-sell needs base product {product}"),
            Reason::MissingRequiredHolding { product } => write!(f, "requires holding {product}"),
            Reason::ExcludedHolding { product } => write!(f, "excluded because {product} is held"),
            Reason::TooYoung { age, min_age } => write!(f, "age {age} below minimum {min_age}"),
            Reason::TooOld { age, max_age } => write!(f, "age {age} above maximum {max_age}"),
            Reason::AgeUnknown => f.write_str("offer has age bounds and the age is unknown"),
            Reason::OptedOut => f.write_str("customer opted out of marketing"),
            Reason::ChannelNotConsented { channel } => write!(f, "no consent for channel {channel:?}"),
            Reason::ChannelNotOffered { channel } => write!(f, "offer not made on channel {channel:?}"),
            Reason::FrequencyCap { contacts, cap, window_days } => {
                write!(f, "frequency cap: {contacts} contacts in {window_days} days (cap {cap})")
            }
            Reason::RelationshipChannel { level, channel } => {
                write!(f, "relationship level {level:?} allows no contact on channel {channel:?}")
            }
            Reason::ContactFatigue { fatigue, budget } => {
                write!(f, "contact fatigue {fatigue:.2} leaves less than one contact of the budget {budget}")
            }
            Reason::Cooldown { dismissed_at, until } => {
                write!(f, "dismissed on {}, cooling down until {}", dismissed_at.date_naive(), until.date_naive())
            }
            Reason::Rested { shows, window_days } => {
                write!(f, "rested: shown {shows} times in {window_days} days without acceptance")
            }
            Reason::LifeEventNotDeclared { event, found } if found.is_empty() => {
                write!(f, "targets life event {event:?}, which the customer did not declare (no signal)")
            }
            Reason::LifeEventNotDeclared { event, found } => write!(
                f,
                "targets life event {event:?}, which the customer did not declare (found only: {})",
                list(found)
            ),
            Reason::LifeEventUseNotConsented { event } => {
                write!(f, "targets life event {event:?}: declared, but its use for offers was not consented")
            }
            Reason::ProxyDriven { share, threshold, features } => write!(
                f,
                "proxy-driven: {:.0}% of the evidence comes from proxy features ({}) above the {:.0}% threshold",
                share * 100.0,
                features.join(", "),
                threshold * 100.0
            ),
            Reason::Unsuitable { vulnerability, provenance } => {
                write!(f, "unsuitable for a customer with vulnerability {vulnerability:?} ({provenance:?})")
            }
        }
    }
}
