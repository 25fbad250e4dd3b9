//! The catalog's rules compiled once into indices, masks and bit sets, so
//! that a request touches only the offers a rule can actually fail: offers
//! of held products, ages sorted so that the offers an age fails are a
//! prefix, offers grouped by base and excluded product, contacted,
//! targeted and vulnerability-sensitive offers. Marking records each
//! offer's first failing rule as a [`Code`]; the audit then fills in the
//! details for the withheld offers only, giving the same [`Reason`] as the
//! stage modules (debug builds check each one against them).

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxBuildHasher;

use crate::catalog::{Channel, Offer, Vulnerability};
use crate::customer::Customer;
use crate::decision::Reason;
use crate::kernel::{self, Isa};

/// A growable bit set over positions `0..len`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// `len` bits, all clear (reuses the allocation).
    pub(crate) fn reset(&mut self, len: usize) {
        self.words.clear();
        self.words.resize(len.div_ceil(64), 0);
    }

    /// A copy of `other` (reuses the allocation).
    pub(crate) fn copy_from(&mut self, other: &Bitset) {
        self.words.clear();
        self.words.extend_from_slice(&other.words);
    }

    pub(crate) fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub(crate) fn clear(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// Sets bit `i` when `on`, without a branch.
    #[inline]
    pub(crate) fn set_if(&mut self, i: usize, on: bool) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= u64::from(on) << (i % 64);
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

/// Positions of the set bits of `word`, offset by `base`.
pub(crate) fn bits(word: u64, base: usize) -> impl Iterator<Item = usize> {
    let mut w = word;
    std::iter::from_fn(move || {
        if w == 0 {
            return None;
        }
        let i = w.trailing_zeros() as usize;
        w &= w - 1;
        Some(base + i)
    })
}

const NONE: u32 = u32::MAX;

/// Number of [`Channel`] variants.
const CHANNELS: usize = Channel::ALL.len();

fn channel_index(c: Channel) -> usize {
    match c {
        Channel::Email => 0,
        Channel::Sms => 1,
        Channel::Phone => 2,
        Channel::Post => 3,
        Channel::App => 4,
        Channel::Web => 5,
        Channel::Branch => 6,
    }
}

fn vulnerability_bit(v: Vulnerability) -> u8 {
    1 << match v {
        Vulnerability::FinancialDistress => 0,
        Vulnerability::SeriousIllness => 1,
        Vulnerability::Bereavement => 2,
        Vulnerability::Gambling => 3,
        Vulnerability::ReducedCapacity => 4,
        Vulnerability::JobLoss => 5,
    }
}

/// Offers grouped by a key (a product): `items[start[k]..start[k + 1]]`.
#[derive(Debug, Clone, Default)]
struct Groups {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Groups {
    /// Groups the `(key, offer)` pairs, keys below `n_keys`, offers in the
    /// order given.
    fn new(n_keys: usize, pairs: &[(u32, u32)]) -> Groups {
        let mut start = vec![0u32; n_keys + 1];
        for &(k, _) in pairs {
            start[k as usize + 1] += 1;
        }
        for k in 0..n_keys {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(k, o) in pairs {
            items[fill[k as usize] as usize] = o;
            fill[k as usize] += 1;
        }
        Groups { start, items }
    }

    fn get(&self, k: usize) -> &[u32] {
        match (self.start.get(k), self.start.get(k + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Extra eligibility rules of one offer, by product index.
#[derive(Debug, Clone, Copy)]
struct Extra {
    min_age: Option<u32>,
    max_age: Option<u32>,
    base: u32,
    requires: (u32, u32),
    excludes: (u32, u32),
}

/// The compiled rules of every offer, in engine order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    product_index: HashMap<Arc<str>, u32, FxBuildHasher>,
    n_products: usize,
    /// Per offer, its product.
    product_of: Vec<u32>,
    /// Offers selling each product.
    by_product: Groups,
    /// Per offer, its age and holdings rules.
    extra: Vec<Extra>,
    /// Offers with an age rule; `(min_age, offer)` by decreasing age and
    /// `(max_age, offer)` by increasing age, so that the offers an age
    /// fails are a prefix of each.
    age_rules: Vec<u32>,
    min_ages: Vec<(u32, u32)>,
    max_ages: Vec<(u32, u32)>,
    /// Offers with a base product, and the offers of each base product.
    has_base: Bitset,
    by_base: Groups,
    /// `(offer, product)` for each product an offer requires.
    requiring: Vec<(u32, u32)>,
    /// The offers each product excludes.
    excluded_by: Groups,
    pool: Vec<u32>,
    /// Per channel, every offer's code before the other rules: `Channel`
    /// for the offers not made on it, else `Passed` (copied per request).
    channel_codes: [Vec<Code>; CHANNELS],
    /// Offers with targets, and per offer the targets as life-event bits.
    targeted: Vec<u32>,
    targets: Vec<u32>,
    /// Offers with `unsuitable_for`, and per offer those as bits.
    sensitive: Vec<u32>,
    unsuitable: Vec<u8>,
}

impl Plan {
    pub(crate) fn compile(offers: &[Offer]) -> Plan {
        let mut product_index: HashMap<Arc<str>, u32, FxBuildHasher> = HashMap::default();
        let mut intern = |p: &crate::catalog::ProductId| {
            let next = product_index.len() as u32;
            *product_index.entry(p.0.clone()).or_insert(next)
        };
        let mut product = Vec::with_capacity(offers.len());
        let mut extra = Vec::with_capacity(offers.len());
        let mut pool = Vec::new();
        let mut channel_codes: [Vec<Code>; CHANNELS] = Default::default();
        let (mut targeted, mut targets, mut sensitive, mut unsuitable) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut age_rules, mut min_ages, mut max_ages, mut requiring) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut bases, mut exclusions) = (Vec::new(), Vec::new());
        let mut has_base = Bitset::default();
        has_base.reset(offers.len());
        for (o, offer) in offers.iter().enumerate() {
            let o32 = o as u32;
            product.push(intern(&offer.product));
            let e = &offer.eligibility;
            let mut range = |list: &[crate::catalog::ProductId]| {
                let start = pool.len() as u32;
                for p in list {
                    let i = intern(p);
                    pool.push(i);
                }
                (start, pool.len() as u32)
            };
            let requires = range(&e.requires);
            let excludes = range(&e.excludes);
            let base = e.base_product.as_ref().map_or(NONE, &mut intern);
            extra.push(Extra { min_age: e.min_age, max_age: e.max_age, base, requires, excludes });
            if e.min_age.is_some() || e.max_age.is_some() {
                age_rules.push(o32);
            }
            min_ages.extend(e.min_age.map(|m| (m, o32)));
            max_ages.extend(e.max_age.map(|m| (m, o32)));
            if base != NONE {
                has_base.set(o);
                bases.push((base, o32));
            }
            requiring.extend(pool[requires.0 as usize..requires.1 as usize].iter().map(|&p| (o32, p)));
            exclusions.extend(pool[excludes.0 as usize..excludes.1 as usize].iter().map(|&p| (p, o32)));
            for (c, codes) in channel_codes.iter_mut().enumerate() {
                let on = offer.channels.iter().any(|&ch| channel_index(ch) == c);
                codes.push(if on { Code::Passed } else { Code::Channel });
            }
            targets.push(offer.targets.iter().fold(0u32, |m, e| m | 1 << e.index()));
            if !offer.targets.is_empty() {
                targeted.push(o32);
            }
            unsuitable.push(offer.unsuitable_for.iter().fold(0u8, |m, &v| m | vulnerability_bit(v)));
            if !offer.unsuitable_for.is_empty() {
                sensitive.push(o32);
            }
        }
        min_ages.sort_unstable_by(|a, b| b.cmp(a));
        max_ages.sort_unstable();
        let n_products = product_index.len();
        let owners: Vec<(u32, u32)> = product.iter().enumerate().map(|(o, &p)| (p, o as u32)).collect();
        Plan {
            by_product: Groups::new(n_products, &owners),
            product_of: product,
            product_index,
            n_products,
            extra,
            age_rules,
            min_ages,
            max_ages,
            has_base,
            by_base: Groups::new(n_products, &bases),
            requiring,
            excluded_by: Groups::new(n_products, &exclusions),
            pool,
            channel_codes,
            targeted,
            targets,
            sensitive,
            unsuitable,
        }
    }

    /// The catalog products the customer holds.
    pub(crate) fn held(&self, customer: &Customer, held: &mut Bitset) {
        held.reset(self.n_products);
        for h in &customer.holdings {
            if let Some(&p) = self.product_index.get(h.as_str()) {
                held.set(p as usize);
            }
        }
    }

    /// Records in `codes` each offer's first failing rule before scoring
    /// (eligibility, channel, targets, suitability), in pipeline order,
    /// and `Passed` for the others; the contact history is the caller's.
    /// Offers failing a target or suitability rule are also marked in
    /// `detailed` (their reasons need the customer; it must hold a bit per
    /// offer). With
    /// `eligibility_only` (nothing may be offered at all), only eligibility
    /// is checked. `isa` picks the kernel that marks the offers missing
    /// their base product.
    #[allow(clippy::too_many_arguments)] // one call site, in the engine
    pub(crate) fn mark_failures(
        &self,
        customer: &Customer,
        channel: Channel,
        usable_events: u32,
        held: &Bitset,
        eligibility_only: bool,
        isa: Isa,
        (codes, missing_base, detailed): (&mut Vec<Code>, &mut Bitset, &mut Bitset),
    ) {
        let n = self.product_of.len();
        codes.clear();
        if eligibility_only {
            codes.resize(n, Code::Passed);
        } else {
            codes.extend_from_slice(&self.channel_codes[channel_index(channel)]);
        }
        for (w, &word) in held.words().iter().enumerate() {
            for p in bits(word, w * 64) {
                for &o in self.by_product.get(p) {
                    codes[o as usize] = Code::Held;
                }
            }
        }
        // The age and holdings rules, each touching only the offers it
        // fails (which of them fails first is worked out for the audit).
        let mut mark = |o: u32| {
            codes[o as usize] = codes[o as usize].min(Code::Extra);
        };
        match customer.age {
            None => self.age_rules.iter().for_each(|&o| mark(o)),
            Some(age) => {
                self.min_ages.iter().take_while(|&&(m, _)| m > age).for_each(|&(_, o)| mark(o));
                self.max_ages.iter().take_while(|&&(m, _)| m < age).for_each(|&(_, o)| mark(o));
            }
        }
        missing_base.copy_from(&self.has_base);
        for (w, &word) in held.words().iter().enumerate() {
            for p in bits(word, w * 64) {
                self.by_base.get(p).iter().for_each(|&o| missing_base.clear(o as usize));
                self.excluded_by.get(p).iter().for_each(|&o| mark(o));
            }
        }
        kernel::lower_where(isa, codes, missing_base.words(), Code::Extra);
        // The rest without a branch per offer: which offers fail depends
        // on the customer, so branches on it would mispredict.
        for &(o, p) in &self.requiring {
            lower(&mut codes[o as usize], !held.get(p as usize), Code::Extra);
        }
        if eligibility_only {
            return;
        }
        let fails = |o: u32| self.targets[o as usize] & !usable_events != 0;
        mark_listed(codes, &self.targeted, fails, Code::Target, detailed);
        let vulnerable = customer.vulnerabilities.iter().fold(0u8, |m, v| m | vulnerability_bit(v.vulnerability));
        if vulnerable != 0 {
            let fails = |o: u32| self.unsuitable[o as usize] & vulnerable != 0;
            mark_listed(codes, &self.sensitive, fails, Code::Suitability, detailed);
        }
    }

    /// The eligibility rules after "not already held", in order.
    pub(crate) fn extra_failure(&self, o: usize, age: Option<u32>, held: &Bitset) -> Option<Failure> {
        let e = self.extra.get(o)?;
        if e.min_age.is_some() || e.max_age.is_some() {
            let Some(age) = age else {
                return Some(Failure::Reason(Reason::AgeUnknown));
            };
            if let Some(min_age) = e.min_age.filter(|&m| age < m) {
                return Some(Failure::Reason(Reason::TooYoung { age, min_age }));
            }
            if let Some(max_age) = e.max_age.filter(|&m| age > m) {
                return Some(Failure::Reason(Reason::TooOld { age, max_age }));
            }
        }
        let is_held = |p: u32| held.get(p as usize);
        if e.base != NONE && !is_held(e.base) {
            return Some(Failure::MissingBaseProduct);
        }
        let list = |(a, b): (u32, u32)| &self.pool[a as usize..b as usize];
        if let Some(j) = list(e.requires).iter().position(|&p| !is_held(p)) {
            return Some(Failure::MissingRequiredHolding(j));
        }
        if let Some(j) = list(e.excludes).iter().position(|&p| is_held(p)) {
            return Some(Failure::ExcludedHolding(j));
        }
        None
    }
}

/// `*code = min(*code, lower)` when `fails`, as a select rather than a
/// branch.
fn lower(code: &mut Code, fails: bool, lower: Code) {
    *code = (*code).min(std::hint::select_unpredictable(fails, lower, Code::Passed));
}

/// For each listed offer that `fails`: its code lowered to `code`, and the
/// offer marked in `detailed`, without a branch per offer.
fn mark_listed(codes: &mut [Code], list: &[u32], fails: impl Fn(u32) -> bool, code: Code, detailed: &mut Bitset) {
    for &o in list {
        let f = fails(o);
        lower(&mut codes[o as usize], f, code);
        detailed.set_if(o as usize, f);
    }
}

/// The first rule an offer failed before scoring, in pipeline order (so
/// the smallest code recorded for an offer is the one its audit cites).
/// Recorded once while marking, so that the audit need not run the rules
/// again; a reason's details are filled in for the withheld offers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)] // one byte, so that resetting the codes is a memset
pub(crate) enum Code {
    /// Eligibility: the product is held.
    Held,
    /// Eligibility: an age or holdings rule ([`Plan::extra_failure`]).
    Extra,
    /// Contact policy: the offer is not made on the requested channel.
    Channel,
    /// Contact policy: the offer's own contact history.
    History,
    /// Guard rule 1: a life-event target.
    Target,
    /// Guard rule 4: suitability.
    Suitability,
    /// Guard rule 3: scored, proxy-driven, and reached by the ranking.
    Driven,
    /// No rule failed before scoring.
    Passed,
}

/// Why an offer is not eligible; product-naming rules give the position of
/// the product in the offer's own rules, so that the reason can cite the
/// offer's `ProductId` without a new allocation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// `offer.eligibility.base_product` is not held.
    MissingBaseProduct,
    /// `offer.eligibility.requires[j]` is not held.
    MissingRequiredHolding(usize),
    /// `offer.eligibility.excludes[j]` is held.
    ExcludedHolding(usize),
    /// An age rule, whose reason holds no name.
    Reason(Reason),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_basics() {
        let mut b = Bitset::default();
        b.reset(70);
        assert_eq!(b.words(), [0, 0]);
        b.set(3);
        assert!(b.get(3) && !b.get(2));
        assert_eq!(bits(b.words()[0], 0).collect::<Vec<_>>(), vec![3]);
        assert_eq!(bits(0b1010, 64).collect::<Vec<_>>(), vec![65, 67]);
    }
}
