//! Engine parameters with documented defaults, checked once into a
//! validated form (as linfa does) before the engine uses them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::arbitration::ArbitrationParams;
use crate::error::ConfigError;
use crate::relationship::{FatigueParams, RelationshipPolicy};
use crate::value::ValueParams;

/// Contact-policy parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContactPolicy {
    /// At most this many contacts (any offer, any channel) in the window;
    /// default 5. Also lowers `k` to what is left.
    pub frequency_cap: u32,
    /// Frequency-cap window in days; default 30.
    pub frequency_window_days: u32,
    /// After a dismissal the offer is not made again for this many days;
    /// default 30.
    pub dismissal_cooldown_days: u32,
    /// An offer shown this many times without acceptance within the rest
    /// window is rested; default 3.
    pub rest_after_shows: u32,
    /// Rest window in days; default 90.
    pub rest_window_days: u32,
}

impl Default for ContactPolicy {
    fn default() -> Self {
        ContactPolicy {
            frequency_cap: 5,
            frequency_window_days: 30,
            dismissal_cooldown_days: 30,
            rest_after_shows: 3,
            rest_window_days: 90,
        }
    }
}

/// Intrusiveness-guard parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GuardParams {
    /// An offer is suppressed as proxy-driven when more than this share of
    /// its absolute log-odds contributions comes from proxy features;
    /// in `[0, 1)`, default 0.25.
    pub proxy_share_threshold: f64,
}

impl Default for GuardParams {
    fn default() -> Self {
        GuardParams { proxy_share_threshold: 0.25 }
    }
}

/// Explanation parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ExplainParams {
    /// Contributions listed per recommendation; 1 to 64, default 3.
    pub max_contributions: usize,
}

impl Default for ExplainParams {
    fn default() -> Self {
        ExplainParams { max_contributions: 3 }
    }
}

/// All engine parameters, unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineParams {
    /// Contact policy.
    pub contact: ContactPolicy,
    /// Intrusiveness guard.
    pub guard: GuardParams,
    /// Explanations.
    pub explain: ExplainParams,
    /// Contact rules per relationship level.
    pub relationship: RelationshipPolicy,
    /// Contact fatigue.
    pub fatigue: FatigueParams,
    /// Customer lifetime value.
    pub value: ValueParams,
    /// Weights of the arbitration formula.
    pub arbitration: ArbitrationParams,
}

/// [`EngineParams`] that passed [`EngineParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidEngineParams(EngineParams);

impl ValidEngineParams {
    /// Contact policy.
    pub fn contact(&self) -> &ContactPolicy {
        &self.0.contact
    }
    /// Intrusiveness guard.
    pub fn guard(&self) -> &GuardParams {
        &self.0.guard
    }
    /// Explanations.
    pub fn explain(&self) -> &ExplainParams {
        &self.0.explain
    }
    /// Contact rules per relationship level.
    pub fn relationship(&self) -> &RelationshipPolicy {
        &self.0.relationship
    }
    /// Contact fatigue.
    pub fn fatigue(&self) -> &FatigueParams {
        &self.0.fatigue
    }
    /// Customer lifetime value.
    pub fn value(&self) -> &ValueParams {
        &self.0.value
    }
    /// Weights of the arbitration formula.
    pub fn arbitration(&self) -> &ArbitrationParams {
        &self.0.arbitration
    }
}

/// Longest window accepted, in days (about 100 years).
pub const MAX_WINDOW_DAYS: u32 = 36_525;

fn positive(name: &'static str, value: u32) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::InvalidParameter { name, value: 0.0, expected: "at least 1" });
    }
    Ok(())
}

fn window(name: &'static str, value: u32) -> Result<(), ConfigError> {
    if value == 0 || value > MAX_WINDOW_DAYS {
        return Err(ConfigError::InvalidParameter { name, value: f64::from(value), expected: "1 to 36525 days" });
    }
    Ok(())
}

impl EngineParams {
    /// The defaults, but with no limit on how many offers one decision may
    /// return: for offline evaluation, which needs every offer ranked.
    ///
    /// The frequency caps (the policy's and every relationship level's) are
    /// `u32::MAX` and the fatigue budget as large, so neither lowers `k`.
    /// (By default a decision returns at most 5 offers, fewer after recent
    /// contacts; and raising the frequency cap alone still leaves the
    /// fatigue budget's 10.) Everything else stays: opt-outs,
    /// channel consent, the relationship levels' channel scopes, cooldowns
    /// and rests after a contact history, eligibility and the guard. Not
    /// for live contact decisions: it lets one customer be sent any number
    /// of offers.
    ///
    /// ```
    /// # use tactful::EngineParams;
    /// let params = EngineParams::for_evaluation();
    /// assert_eq!(params.contact.frequency_cap, u32::MAX);
    /// assert_eq!(params.guard, EngineParams::default().guard);
    /// ```
    pub fn for_evaluation() -> Self {
        let mut params = EngineParams::default();
        params.contact.frequency_cap = u32::MAX;
        let r = &mut params.relationship;
        for level in [&mut r.basic, &mut r.reactive, &mut r.accountable, &mut r.proactive, &mut r.partnership] {
            level.frequency_cap = u32::MAX;
        }
        params.fatigue.budget = f64::from(u32::MAX);
        params
    }

    /// Checks every parameter's range.
    pub fn check(self) -> Result<ValidEngineParams, ConfigError> {
        let c = &self.contact;
        positive("contact.frequency_cap", c.frequency_cap)?;
        window("contact.frequency_window_days", c.frequency_window_days)?;
        window("contact.dismissal_cooldown_days", c.dismissal_cooldown_days)?;
        positive("contact.rest_after_shows", c.rest_after_shows)?;
        window("contact.rest_window_days", c.rest_window_days)?;
        let t = self.guard.proxy_share_threshold;
        if !(0.0..1.0).contains(&t) {
            return Err(ConfigError::InvalidParameter {
                name: "guard.proxy_share_threshold",
                value: t,
                expected: "a share in [0, 1)",
            });
        }
        let m = self.explain.max_contributions;
        if !(1..=64).contains(&m) {
            return Err(ConfigError::InvalidParameter {
                name: "explain.max_contributions",
                value: m as f64,
                expected: "1 to 64",
            });
        }
        self.relationship.check()?;
        self.fatigue.check()?;
        self.value.check()?;
        self.arbitration.check()?;
        Ok(ValidEngineParams(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(EngineParams::default().check().is_ok());
    }

    #[test]
    fn out_of_range_parameters_are_named() {
        let mut p = EngineParams::default();
        p.contact.frequency_cap = 0;
        assert!(matches!(p.check(), Err(ConfigError::InvalidParameter { name: "contact.frequency_cap", .. })));
        let mut p = EngineParams::default();
        p.guard.proxy_share_threshold = f64::NAN;
        assert!(matches!(p.check(), Err(ConfigError::InvalidParameter { name: "guard.proxy_share_threshold", .. })));
        let mut p = EngineParams::default();
        p.explain.max_contributions = 0;
        assert!(p.check().is_err());
    }
}
