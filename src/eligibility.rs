//! Stage 1, eligibility: product holdings and age.

use crate::catalog::Offer;
use crate::customer::Customer;
use crate::decision::Reason;
use crate::explain::Rule;

/// The first eligibility rule `offer` fails for `customer`, if any.
pub(crate) fn check(offer: &Offer, customer: &Customer) -> Result<(), Reason> {
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

/// The eligibility rules that apply to `offer`, in the order checked.
pub(crate) fn rules(offer: &Offer, out: &mut Vec<Rule>) {
    out.push(Rule::NotHeld);
    let r = &offer.eligibility;
    if r.min_age.is_some() || r.max_age.is_some() {
        out.push(Rule::AgeBounds);
    }
    if r.base_product.is_some() {
        out.push(Rule::BaseProductHeld);
    }
    if !r.requires.is_empty() {
        out.push(Rule::RequiredHoldings);
    }
    if !r.excludes.is_empty() {
        out.push(Rule::NoExcludedHolding);
    }
}
