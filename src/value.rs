//! Customer value: lifetime value, share of wallet and what is at stake if
//! the customer leaves. Used by arbitration to weigh offers by what they are
//! worth to the relationship, not only by propensity.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What the customer is worth, as far as the caller knows. All amounts are
/// per year, in one currency unit of the caller's choice (the same as offer
/// values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerValue {
    /// Margin the customer brings per year. `>= 0`.
    pub margin_per_year: f64,
    /// Probability that the customer stays another year, in `[0, 1]`.
    pub retention_rate: f64,
    /// Probability that the customer leaves soon, in `[0, 1]`, e.g. from a
    /// churn model of its own. Default: `1 − retention_rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn_risk: Option<f64>,
    /// What the customer spends per year on the products they hold with us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet_with_us: Option<f64>,
    /// Estimated total spend per year in the category (with us and with
    /// competitors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_spend: Option<f64>,
}

/// Parameters of the lifetime-value calculation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ValueParams {
    /// Yearly discount rate; `[0, 1]`, default 0.08.
    pub discount_rate: f64,
    /// Horizon in years; 1 to 100, default 5.
    pub horizon_years: u32,
}

impl Default for ValueParams {
    fn default() -> Self {
        ValueParams { discount_rate: 0.08, horizon_years: 5 }
    }
}

impl ValueParams {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.discount_rate) {
            return Err(ConfigError::InvalidParameter {
                name: "value.discount_rate",
                value: self.discount_rate,
                expected: "a rate in [0, 1]",
            });
        }
        if !(1..=100).contains(&self.horizon_years) {
            return Err(ConfigError::InvalidParameter {
                name: "value.horizon_years",
                value: f64::from(self.horizon_years),
                expected: "1 to 100 years",
            });
        }
        Ok(())
    }
}

/// Customer lifetime value: the discounted margin of the years the customer
/// is expected to stay,
///
/// `CLV = Σ_{t=1..H} m · rᵗ / (1 + d)ᵗ`
///
/// with margin `m` per year, retention rate `r`, discount rate `d` and
/// horizon `H`: the margin of year t is earned only if the customer is still
/// there, and is worth less the later it comes.
///
/// ```
/// // 100 a year, 80 % stay each year, 10 % discount, 3 years:
/// // 100 · (0.8/1.1 + 0.64/1.21 + 0.512/1.331) = 164.09
/// let clv = tactful::value::lifetime_value(100.0, 0.8, 0.1, 3);
/// assert!((clv - 164.087).abs() < 1e-3);
/// ```
pub fn lifetime_value(margin_per_year: f64, retention_rate: f64, discount_rate: f64, horizon_years: u32) -> f64 {
    // Year by year, qᵗ = q · qᵗ⁻¹: the order of operations is part of the
    // definition, so that every implementation gets the same bits.
    let q = retention_rate / (1.0 + discount_rate);
    let mut factor = 1.0;
    let mut sum = 0.0;
    for _ in 0..horizon_years {
        factor *= q;
        sum += margin_per_year * factor;
    }
    sum
}

/// Share of wallet: `wallet_with_us / category_spend`, clamped to `[0, 1]`;
/// `None` when either is unknown or the category spend is 0.
pub fn share_of_wallet(wallet_with_us: Option<f64>, category_spend: Option<f64>) -> Option<f64> {
    match (wallet_with_us, category_spend) {
        (Some(w), Some(c)) if c > 0.0 => Some((w / c).clamp(0.0, 1.0)),
        _ => None,
    }
}

/// Headroom for growth: the category spend we do not capture yet,
/// `max(0, category_spend − wallet_with_us)`.
pub fn headroom(wallet_with_us: Option<f64>, category_spend: Option<f64>) -> Option<f64> {
    match (wallet_with_us, category_spend) {
        (Some(w), Some(c)) => Some((c - w).max(0.0)),
        _ => None,
    }
}

/// The value figures of one customer, computed once per request.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ValueSummary {
    /// Customer lifetime value (0 when unknown).
    pub lifetime_value: f64,
    /// Churn risk (0 when unknown).
    pub churn_risk: f64,
    /// Value at stake if the customer leaves: `churn_risk × lifetime_value`.
    pub value_at_risk: f64,
    /// Share of wallet, when known.
    pub share_of_wallet: Option<f64>,
}

impl CustomerValue {
    /// Field-level check; `Err((field, value, expected))` names the first
    /// bad field.
    pub(crate) fn check(&self) -> Result<(), (&'static str, f64, &'static str)> {
        let amount = |v: f64| v.is_finite() && v >= 0.0;
        let probability = |v: f64| (0.0..=1.0).contains(&v);
        let checks = [
            ("margin_per_year", self.margin_per_year, amount(self.margin_per_year)),
            ("retention_rate", self.retention_rate, probability(self.retention_rate)),
            ("churn_risk", self.churn_risk.unwrap_or(0.0), self.churn_risk.is_none_or(probability)),
            ("wallet_with_us", self.wallet_with_us.unwrap_or(0.0), self.wallet_with_us.is_none_or(amount)),
            ("category_spend", self.category_spend.unwrap_or(0.0), self.category_spend.is_none_or(amount)),
        ];
        match checks.iter().find(|c| !c.2) {
            Some(&(field, value, _)) => {
                let expected = if field.ends_with("rate") || field == "churn_risk" {
                    "a probability in [0, 1]"
                } else {
                    "a finite amount >= 0"
                };
                Err((field, value, expected))
            }
            None => Ok(()),
        }
    }

    /// Lifetime value, churn risk, value at risk and share of wallet.
    pub fn summary(&self, params: &ValueParams) -> ValueSummary {
        let clv = lifetime_value(self.margin_per_year, self.retention_rate, params.discount_rate, params.horizon_years);
        let churn = self.churn_risk.unwrap_or(1.0 - self.retention_rate);
        ValueSummary {
            lifetime_value: clv,
            churn_risk: churn,
            value_at_risk: churn * clv,
            share_of_wallet: share_of_wallet(self.wallet_with_us, self.category_spend),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_value_against_hand_computed_values() {
        // One year: m · r / (1 + d).
        assert!((lifetime_value(110.0, 1.0, 0.1, 1) - 100.0).abs() < 1e-12);
        // No discount, full retention: m · H.
        assert_eq!(lifetime_value(50.0, 1.0, 0.0, 4), 200.0);
        // 1000 · (0.9/1.05 + 0.81/1.1025) = 857.142857 + 734.693878
        assert!((lifetime_value(1000.0, 0.9, 0.05, 2) - 1591.836735).abs() < 1e-6);
        // Nobody stays: nothing.
        assert_eq!(lifetime_value(1000.0, 0.0, 0.05, 10), 0.0);
        // A long horizon approaches the closed form m · r / (1 + d − r).
        let limit = 100.0 * 0.8 / (1.0 + 0.1 - 0.8);
        assert!((lifetime_value(100.0, 0.8, 0.1, 100) - limit).abs() < 1e-6);
    }

    #[test]
    fn share_of_wallet_and_headroom() {
        assert_eq!(share_of_wallet(Some(300.0), Some(1200.0)), Some(0.25));
        assert_eq!(headroom(Some(300.0), Some(1200.0)), Some(900.0));
        assert_eq!(share_of_wallet(Some(1500.0), Some(1200.0)), Some(1.0));
        assert_eq!(headroom(Some(1500.0), Some(1200.0)), Some(0.0));
        assert_eq!(share_of_wallet(None, Some(1.0)), None);
        assert_eq!(share_of_wallet(Some(1.0), Some(0.0)), None);
    }

    #[test]
    fn summary_defaults_churn_to_one_minus_retention() {
        let v = CustomerValue {
            margin_per_year: 100.0,
            retention_rate: 0.8,
            churn_risk: None,
            wallet_with_us: None,
            category_spend: None,
        };
        let s = v.summary(&ValueParams { discount_rate: 0.1, horizon_years: 3 });
        assert!((s.churn_risk - 0.2).abs() < 1e-12);
        assert!((s.value_at_risk - 0.2 * 164.087_152_516).abs() < 1e-6);
        let bad = CustomerValue { retention_rate: 1.5, ..v };
        assert_eq!(bad.check(), Err(("retention_rate", 1.5, "a probability in [0, 1]")));
    }
}
