//! The relationship: how proactively a customer may be contacted (their
//! relationship level) and how tired they are of contacts (fatigue).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::Channel;
use crate::customer::{Contact, ContactOutcome};
use crate::error::ConfigError;

/// The relationship level, from the CRM ladder: how much the customer
/// expects us to reach out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelationshipLevel {
    /// Sells and leaves it there: respond only when the customer comes to us.
    Basic,
    /// The customer may call with questions: inbound only.
    Reactive,
    /// Checks in after a sale: outbound allowed, sparingly.
    Accountable,
    /// Reaches out with suggestions: outbound allowed.
    Proactive,
    /// Works with the customer continuously: outbound, higher cap.
    Partnership,
}

impl RelationshipLevel {
    /// Every level, from least to most proactive.
    pub const ALL: [RelationshipLevel; 5] = [
        RelationshipLevel::Basic,
        RelationshipLevel::Reactive,
        RelationshipLevel::Accountable,
        RelationshipLevel::Proactive,
        RelationshipLevel::Partnership,
    ];
}

impl Channel {
    /// `true` for channels the customer starts (app, web, branch): an offer
    /// shown there answers a visit rather than interrupting.
    pub fn is_inbound(self) -> bool {
        matches!(self, Channel::App | Channel::Web | Channel::Branch)
    }
}

/// Which channels a level allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChannelScope {
    /// Only channels the customer starts ([`Channel::is_inbound`]).
    InboundOnly,
    /// Inbound and outbound.
    Any,
}

/// Contact rules for one relationship level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelPolicy {
    /// Channels allowed.
    pub channels: ChannelScope,
    /// Frequency cap in the contact policy's window (replaces
    /// `ContactPolicy::frequency_cap` for customers at this level).
    pub frequency_cap: u32,
}

/// Contact rules per relationship level. Customers without a level follow
/// the plain [`ContactPolicy`](crate::ContactPolicy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RelationshipPolicy {
    /// Default: inbound only, cap 2.
    pub basic: LevelPolicy,
    /// Default: inbound only, cap 3.
    pub reactive: LevelPolicy,
    /// Default: any channel, cap 3.
    pub accountable: LevelPolicy,
    /// Default: any channel, cap 5.
    pub proactive: LevelPolicy,
    /// Default: any channel, cap 8.
    pub partnership: LevelPolicy,
}

impl Default for RelationshipPolicy {
    fn default() -> Self {
        let level = |channels, frequency_cap| LevelPolicy { channels, frequency_cap };
        RelationshipPolicy {
            basic: level(ChannelScope::InboundOnly, 2),
            reactive: level(ChannelScope::InboundOnly, 3),
            accountable: level(ChannelScope::Any, 3),
            proactive: level(ChannelScope::Any, 5),
            partnership: level(ChannelScope::Any, 8),
        }
    }
}

impl RelationshipPolicy {
    /// The rules for `level`.
    pub fn level(&self, level: RelationshipLevel) -> &LevelPolicy {
        match level {
            RelationshipLevel::Basic => &self.basic,
            RelationshipLevel::Reactive => &self.reactive,
            RelationshipLevel::Accountable => &self.accountable,
            RelationshipLevel::Proactive => &self.proactive,
            RelationshipLevel::Partnership => &self.partnership,
        }
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let levels = [
            ("relationship.basic.frequency_cap", self.basic),
            ("relationship.reactive.frequency_cap", self.reactive),
            ("relationship.accountable.frequency_cap", self.accountable),
            ("relationship.proactive.frequency_cap", self.proactive),
            ("relationship.partnership.frequency_cap", self.partnership),
        ];
        match levels.iter().find(|(_, l)| l.frequency_cap == 0) {
            Some(&(name, _)) => Err(ConfigError::InvalidParameter { name, value: 0.0, expected: "at least 1" }),
            None => Ok(()),
        }
    }
}

/// Contact fatigue: every past contact weighs on the customer, less as it
/// ages (half-life decay), across all offers and channels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FatigueParams {
    /// Half-life of a contact's weight, in days; `> 0`, default 14.
    pub half_life_days: f64,
    /// Fatigue budget; each new offer costs 1, so at most
    /// `floor(budget − fatigue)` more are made. `> 0`, default 10 (above
    /// the highest default frequency cap, so that fatigue bites on bursts
    /// of recent contacts rather than on the cap's steady rate).
    pub budget: f64,
    /// Weight of a shown contact; default 1.
    pub shown_weight: f64,
    /// Weight of a dismissed contact; default 2.
    pub dismissed_weight: f64,
    /// Weight of an accepted contact; default 0 (welcome contacts do not tire).
    pub accepted_weight: f64,
    /// Each dismissal of an offer of the same product family within
    /// `family_memory_days` multiplies the propensity by this; `(0, 1]`,
    /// default 0.7.
    pub family_dismissal_factor: f64,
    /// How long a dismissal lowers its family's propensity, in days;
    /// default 90.
    pub family_memory_days: u32,
}

impl Default for FatigueParams {
    fn default() -> Self {
        FatigueParams {
            half_life_days: 14.0,
            budget: 10.0,
            shown_weight: 1.0,
            dismissed_weight: 2.0,
            accepted_weight: 0.0,
            family_dismissal_factor: 0.7,
            family_memory_days: 90,
        }
    }
}

impl FatigueParams {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let checks = [
            ("fatigue.half_life_days", self.half_life_days, self.half_life_days > 0.0, "a number of days > 0"),
            ("fatigue.budget", self.budget, self.budget > 0.0, "a number > 0"),
            ("fatigue.shown_weight", self.shown_weight, self.shown_weight >= 0.0, "a weight >= 0"),
            ("fatigue.dismissed_weight", self.dismissed_weight, self.dismissed_weight >= 0.0, "a weight >= 0"),
            ("fatigue.accepted_weight", self.accepted_weight, self.accepted_weight >= 0.0, "a weight >= 0"),
            (
                "fatigue.family_dismissal_factor",
                self.family_dismissal_factor,
                self.family_dismissal_factor > 0.0 && self.family_dismissal_factor <= 1.0,
                "a factor in (0, 1]",
            ),
            (
                "fatigue.family_memory_days",
                f64::from(self.family_memory_days),
                (1..=crate::config::MAX_WINDOW_DAYS).contains(&self.family_memory_days),
                "1 to 36525 days",
            ),
        ];
        // `is_finite` also rejects NaN, which every comparison above lets through as false.
        match checks.iter().find(|c| !c.2 || !c.1.is_finite()) {
            Some(&(name, value, _, expected)) => Err(ConfigError::InvalidParameter { name, value, expected }),
            None => Ok(()),
        }
    }

    fn weight(&self, outcome: ContactOutcome) -> f64 {
        match outcome {
            ContactOutcome::Shown => self.shown_weight,
            ContactOutcome::Dismissed => self.dismissed_weight,
            ContactOutcome::Accepted => self.accepted_weight,
        }
    }

    /// The customer's fatigue at `now`: `Σ weight(outcome) · 2^(−age / half-life)`
    /// over contacts at or before `now`.
    pub fn fatigue<'a>(&self, contacts: impl IntoIterator<Item = &'a Contact>, now: DateTime<Utc>) -> f64 {
        contacts
            .into_iter()
            .filter(|c| c.at <= now)
            .map(|c| {
                let age_days = (now - c.at).num_seconds() as f64 / 86_400.0;
                self.weight(c.outcome) * (-age_days / self.half_life_days).exp2()
            })
            .sum::<f64>()
            // An empty sum is -0.0: report 0.0, so that the audit's bits do
            // not depend on the history (or on a reused workspace).
            + 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(days_ago: i64, outcome: ContactOutcome) -> Contact {
        let now: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().unwrap();
        Contact { offer: "o".into(), at: now - chrono::Duration::days(days_ago), channel: None, outcome }
    }

    #[test]
    fn fatigue_halves_every_half_life() {
        let p = FatigueParams::default();
        let now = "2026-11-23T00:00:00Z".parse().unwrap();
        let f = |c: Vec<Contact>| p.fatigue(&c, now);
        assert_eq!(f(vec![contact(0, ContactOutcome::Shown)]), 1.0);
        assert!((f(vec![contact(14, ContactOutcome::Shown)]) - 0.5).abs() < 1e-12);
        assert!((f(vec![contact(28, ContactOutcome::Dismissed)]) - 0.5).abs() < 1e-12);
        assert_eq!(f(vec![contact(0, ContactOutcome::Accepted)]), 0.0);
        assert_eq!(f(vec![contact(-1, ContactOutcome::Shown)]), 0.0, "future contacts are not known yet");
    }

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        assert!(FatigueParams::default().check().is_ok());
        assert!(RelationshipPolicy::default().check().is_ok());
        let p = FatigueParams { half_life_days: f64::NAN, ..FatigueParams::default() };
        assert!(matches!(p.check(), Err(ConfigError::InvalidParameter { name: "fatigue.half_life_days", .. })));
        let mut r = RelationshipPolicy::default();
        r.partnership.frequency_cap = 0;
        assert!(r.check().is_err());
    }

    #[test]
    fn inbound_channels() {
        assert!(Channel::App.is_inbound() && Channel::Branch.is_inbound());
        assert!(!Channel::Email.is_inbound() && !Channel::Phone.is_inbound());
    }
}
