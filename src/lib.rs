//! # tactful: privacy-aware next-best-offer ranking
//!
//! For one customer and a catalog of offers, tactful returns the top-k
//! offers, each with an [`Explanation`], and an audit of every offer it
//! withheld and why. It is built for banks and insurers that want to offer
//! the next product that helps a customer without being creepy: an
//! inferred pregnancy never selects a nursery loan.
//!
//! ## The pipeline
//!
//! [`Engine::recommend`] runs these stages in order; each lives in its own
//! module. An offer stops at the first rule it fails, and the
//! [`Decision`]'s `withheld` list records that rule as a typed [`Reason`].
//!
//! 1. **[`eligibility`]**: not already held; within age bounds; base
//!    product held for an up-sell; required and excluded holdings.
//! 2. **[`contact`] policy**: marketing opt-out (nothing is offered);
//!    channel consented by the customer and offered by the offer; frequency
//!    cap over a rolling window (which also lowers `k` to what is left);
//!    cooldown after a dismissal; rest after repeated unaccepted shows.
//!    Defaults are in [`ContactPolicy`].
//! 3. **Scoring** ([`model`]): each offer's logistic propensity model over
//!    the [`FeatureSchema`], with sensitive features masked to their
//!    baseline first (guard rule 2). Contributions are measured against the
//!    baseline, so a masked feature contributes exactly zero: the score is
//!    what it would be if the sensitive value were unknown.
//! 4. **[`guard`]**, the intrusiveness guard:
//!    1. an offer aimed at a life event (e.g. a nursery loan at a new child)
//!       needs the event *declared* by the customer and consent to use it;
//!       observed or inferred signals never unlock it;
//!    2. `special` features (religion, ethnicity, health, …) are always
//!       masked, `life_event` features unless declared with consent;
//!    3. an offer whose evidence comes mostly from `proxy` features (more
//!       than [`GuardParams::proxy_share_threshold`] of its absolute
//!       log-odds contributions) is suppressed. Decided in rank order until
//!       the top-k is full: offers ranked after the last recommendation are
//!       not shown either way, and are left unranked rather than audited;
//!    4. a vulnerability marker of *any* provenance suppresses offers
//!       unsuitable for it: inferences may protect, never target;
//!    5. a suppressed offer is withheld, never disguised or demoted: the
//!       next allowed offers fill the slots, and fewer than k may be returned;
//!    6. explanations cite ordinary features only.
//! 5. **[`arbitration`]**: `priority = propensity × stake × weight × family
//!    factor`, ties broken by offer id. The stake is the offer's value, or
//!    more for a retention offer to a valuable customer at risk ([`value`]);
//!    the contact stage also applies [`relationship`] levels and fatigue.
//! 6. **Top-k** and **[`explain`]**: the k best, each with the priority's
//!    components, the largest signed contributions of cited features, the
//!    rules passed and a plain sentence.
//!
//! [`Engine::recommend_into`] is the same pipeline with a reusable
//! [`Workspace`]: no heap allocation once warmed up. [`Engine::recommend_batch`]
//! scores many customers on every core; [`batch`] streams JSON lines.
//!
//! ## Training
//!
//! [`train`] fits one logistic propensity model per product with
//! linfa-logistic from raw columns (numeric or one-hot categorical). It
//! never shows `special` features to the learner, nor `life_event` ones
//! unless asked, and returns raw-scale weights and a schema (baselines at
//! the training means) that load straight into a [`Catalog`].
//! [`proxy_audit`] flags features that reveal sensitive ones and weigh in
//! the model, so they can be marked `proxy`; [`metrics`] has AUC, gains and
//! seeded stratified folds. `examples/coil2000.rs` runs it all on real
//! insurance data.
//!
//! ## Example
//!
//! ```
//! use tactful::{Catalog, Customer, Engine, Request};
//!
//! let catalog: Catalog = serde_json::from_str(include_str!("../examples/data/catalog.json"))?;
//! let engine = Engine::new(catalog)?;
//! let customer: Customer = serde_json::from_str(r#"{
//!     "id": "C-1", "age": 41,
//!     "features": {"tenure_years": 6, "savings_balance_k": 12, "monthly_card_spend_k": 1.8,
//!                  "owns_car": 1, "owns_home": 1, "baby_store_spend_k": 0.6,
//!                  "religion_code": 3, "household_size": 2, "expecting_child": 1},
//!     "holdings": ["current_account", "classic_card", "car_insurance"],
//!     "life_events": [{"event": "new_child", "provenance": {"kind": "inferred", "confidence": 0.87}}],
//!     "consents": {"channels": ["email", "app"]}
//! }"#)?;
//! let request: Request = serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#)?;
//!
//! let decision = engine.recommend(&customer, &request)?;
//! assert!(decision.offer_ids().all(|id| id.as_str() != "nursery_loan"));
//! assert!(decision.withheld_reason("nursery_loan").is_some());
//! for r in &decision.recommendations {
//!     println!("{}. {}: {}", r.rank, r.offer, r.explanation.reason);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod arbitration;
pub mod audit;
pub mod batch;
pub mod catalog;
mod compiled;
pub mod config;
pub mod contact;
pub mod customer;
pub mod decision;
pub mod eligibility;
pub mod engine;
pub mod error;
pub mod explain;
pub mod formats;
pub mod guard;
mod kernel;
pub mod metrics;
pub mod model;
pub mod proxy_audit;
pub mod relationship;
pub mod schema;
pub mod train;
pub mod value;
mod values;
mod workspace;

pub use arbitration::ArbitrationParams;
pub use audit::WithheldList;
pub use catalog::{
    Catalog, Channel, CustomerId, EligibilityRules, Offer, OfferId, OfferKind, ProductId, PropensityModel,
    Vulnerability, Weights,
};
pub use config::{ContactPolicy, EngineParams, ExplainParams, GuardParams, ValidEngineParams};
pub use customer::{
    Consents, Contact, ContactOutcome, Customer, FeatureValues, LifeEventSignal, LifeEventUse, Marketing, Provenance,
    ProvenanceKind, Request, VulnerabilityMarker,
};
pub use decision::{Decision, DecisionStatus, Funnel, Reason, Recommendation, Stage, Withheld};
pub use engine::{Engine, EngineBuilder};
pub use error::{ConfigError, Error, RequestError};
pub use explain::{Components, Contribution, Contributions, Explanation, Rule};
pub use relationship::{ChannelScope, FatigueParams, LevelPolicy, RelationshipLevel, RelationshipPolicy};
pub use schema::{FeatureSchema, FeatureSpec, LifeEvent, ProxyTarget, Sensitivity, SpecialCategory};
pub use value::{CustomerValue, ValueParams, ValueSummary};
pub use workspace::Workspace;
