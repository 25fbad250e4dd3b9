//! Stage 2, contact policy: opt-out, channel consent, frequency cap,
//! cooldown after a dismissal, rest after repeated unaccepted shows.

use chrono::{DateTime, Duration, Utc};

use crate::catalog::Offer;
use crate::config::{ContactPolicy, ValidEngineParams};
use crate::customer::{ContactOutcome, Customer, Marketing, Request};
use crate::decision::{DecisionStatus, Reason};
use crate::relationship::ChannelScope;

/// Contact history of one offer, as of the request time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct OfferHistory {
    /// Latest dismissal at or before `now`.
    last_dismissal: Option<DateTime<Utc>>,
    /// Latest acceptance at or before `now`.
    last_acceptance: Option<DateTime<Utc>>,
}

/// `now` minus `days`, saturating at the earliest representable time.
fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::days(i64::from(days))).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The start of each contact window at one request time: `now` minus the
/// frequency window, the rest window and the family memory. Worked out once
/// per request time and window lengths (a workspace keeps the last), not
/// per decision and offer: chrono's calendar arithmetic was about 400
/// instructions of a decision at 100 offers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Windows {
    /// The request time and the three lengths in days.
    key: (DateTime<Utc>, [u32; 3]),
    pub(crate) frequency: DateTime<Utc>,
    pub(crate) rest: DateTime<Utc>,
    pub(crate) family: DateTime<Utc>,
}

impl Windows {
    /// The windows at `now` under `params`: `last` when it is for the same
    /// time and lengths, else new ones, kept in `last`.
    pub(crate) fn at(now: DateTime<Utc>, params: &ValidEngineParams, last: &mut Option<Windows>) -> Windows {
        let (contact, fatigue) = (params.contact(), params.fatigue());
        let days = [contact.frequency_window_days, contact.rest_window_days, fatigue.family_memory_days];
        match *last {
            Some(w) if w.key == (now, days) => w,
            _ => *last.insert(Windows {
                key: (now, days),
                frequency: days_before(now, days[0]),
                rest: days_before(now, days[1]),
                family: days_before(now, days[2]),
            }),
        }
    }
}

/// `t` plus `days`, saturating at the latest representable time.
fn days_after(t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    t.checked_add_signed(Duration::days(i64::from(days))).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Customer-level rules, contacts counted from `since` (the frequency
/// window's start). `Ok(n)`: at most `n` more contacts may be made; `Err`:
/// nothing may be offered.
fn customer_budget(
    customer: &Customer,
    request: &Request,
    policy: &ContactPolicy,
    since: DateTime<Utc>,
) -> Result<u32, (DecisionStatus, Reason)> {
    if customer.consents.marketing == Marketing::OptedOut {
        return Err((DecisionStatus::OptedOut, Reason::OptedOut));
    }
    if !customer.consents.channels.contains(&request.channel) {
        return Err((DecisionStatus::ChannelNotConsented, Reason::ChannelNotConsented { channel: request.channel }));
    }
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

/// Customer-level rules with the relationship level and contact fatigue.
/// `Ok(n)`: at most `n` more contacts may be made; `Err`: nothing may be
/// offered.
pub(crate) fn customer_limits(
    customer: &Customer,
    request: &Request,
    params: &ValidEngineParams,
    windows: &Windows,
) -> Result<u32, (DecisionStatus, Reason)> {
    let mut policy = *params.contact();
    if let Some(level) = customer.relationship {
        let rules = params.relationship().level(level);
        if rules.channels == ChannelScope::InboundOnly && !request.channel.is_inbound() {
            let reason = Reason::RelationshipChannel { level, channel: request.channel };
            // Opt-out and channel consent come first: they say more.
            customer_budget(customer, request, &policy, windows.frequency)?;
            return Err((DecisionStatus::ChannelNotForLevel, reason));
        }
        policy.frequency_cap = rules.frequency_cap;
    }
    let left = customer_budget(customer, request, &policy, windows.frequency)?;
    let fatigue_params = params.fatigue();
    let fatigue = fatigue_params.fatigue(&customer.contact_history, request.now);
    let spare = (fatigue_params.budget - fatigue).floor();
    if spare < 1.0 {
        return Err((
            DecisionStatus::ContactBudgetExhausted,
            Reason::ContactFatigue { fatigue, budget: fatigue_params.budget },
        ));
    }
    // `spare` is at most the budget, a finite f64: the cast saturates.
    Ok(left.min(spare as u32))
}

/// Offer-level rules; `contacts` are the customer's contacts with this
/// offer, any order.
pub(crate) fn check_offer<'a>(
    offer: &Offer,
    contacts: impl Iterator<Item = &'a crate::customer::Contact> + Clone,
    request: &Request,
    policy: &ContactPolicy,
    windows: &Windows,
) -> Result<(), Reason> {
    if !offer.channels.contains(&request.channel) {
        return Err(Reason::ChannelNotOffered { channel: request.channel });
    }
    let past = contacts.filter(|c| c.at <= request.now);
    let mut history = OfferHistory::default();
    for c in past.clone() {
        let slot = match c.outcome {
            ContactOutcome::Dismissed => &mut history.last_dismissal,
            ContactOutcome::Accepted => &mut history.last_acceptance,
            ContactOutcome::Shown => continue,
        };
        *slot = Some(slot.map_or(c.at, |t| t.max(c.at)));
    }
    if let Some(dismissed_at) = history.last_dismissal {
        let until = days_after(dismissed_at, policy.dismissal_cooldown_days);
        if request.now < until {
            return Err(Reason::Cooldown { dismissed_at, until });
        }
    }
    let since = history.last_acceptance.map_or(windows.rest, |a| windows.rest.max(a));
    let shows = past.filter(|c| c.at > since && c.outcome != ContactOutcome::Accepted).count();
    let shows = u32::try_from(shows).unwrap_or(u32::MAX);
    if shows >= policy.rest_after_shows {
        return Err(Reason::Rested { shows, window_days: policy.rest_window_days });
    }
    Ok(())
}
