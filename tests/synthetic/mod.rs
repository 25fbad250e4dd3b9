//! Synthetic customers for the sample catalog (`examples/data/catalog_full.json`),
//! generated on the fly: shared by the score-tool tests and the throughput
//! benchmark.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{self, Read};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The decision time the synthetic contact histories are relative to.
pub const NOW: &str = "2026-11-23T10:00:00Z";
const PRODUCTS: [&str; 6] =
    ["current_account", "classic_card", "car_insurance", "home_insurance", "savings_account", "debt_management_plan"];
const OFFERS: [&str; 8] = [
    "savings_account",
    "gold_card_upgrade",
    "home_insurance",
    "car_insurance",
    "breakdown_cover",
    "travel_insurance",
    "loyalty_fee_waiver",
    "personal_loan",
];
const OUTCOMES: [&str; 3] = ["shown", "dismissed", "accepted"];
const PROVENANCES: [&str; 3] =
    [r#"{"kind": "declared"}"#, r#"{"kind": "observed"}"#, r#"{"kind": "inferred", "confidence": 0.7}"#];

fn date(days_ago: i64) -> String {
    let now: DateTime<Utc> = NOW.parse().unwrap_or_default();
    (now - Duration::days(days_ago) - Duration::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Customer `i` as one JSON line (no newline); about 1 in 100 lines is bad
/// (an unknown feature, a malformed line or a blank line).
pub fn customer_line(i: u64, rng: &mut StdRng) -> String {
    match rng.gen_range(0..300) {
        0 => return format!(r#"{{"id": "S-{i}", "features": {{"salary": 1}}}}"#),
        1 => return format!(r#"{{"id": "S-{i}", "age": 4"#),
        2 => return String::new(),
        _ => {}
    }
    let mut s = format!(r#"{{"id": "S-{i}""#);
    if rng.gen_bool(0.97) {
        let _ = write!(s, r#", "age": {}"#, rng.gen_range(18..90));
    }
    let _ = write!(
        s,
        r#", "features": {{"tenure_years": {:.1}, "savings_balance_k": {:.2}, "monthly_card_spend_k": {:.2}, "owns_car": {}, "owns_home": {}, "baby_store_spend_k": {:.2}, "religion_code": {}, "household_size": {}, "expecting_child": {}}}"#,
        rng.gen_range(0.0..30.0),
        rng.gen_range(0.0..60.0),
        rng.gen_range(0.0..5.0),
        u8::from(rng.gen_bool(0.6)),
        u8::from(rng.gen_bool(0.5)),
        if rng.gen_bool(0.1) { rng.gen_range(0.0..2.0) } else { 0.0 },
        rng.gen_range(0..8),
        rng.gen_range(1..6),
        u8::from(rng.gen_bool(0.05)),
    );
    let holdings: Vec<String> = PRODUCTS.iter().filter(|_| rng.gen_bool(0.4)).map(|p| format!("\"{p}\"")).collect();
    let _ = write!(s, r#", "holdings": [{}]"#, holdings.join(", "));
    if rng.gen_bool(0.1) {
        let event = if rng.gen_bool(0.5) { "new_child" } else { "family_status" };
        let _ = write!(
            s,
            r#", "life_events": [{{"event": "{event}", "provenance": {}}}]"#,
            PROVENANCES[rng.gen_range(0..3)]
        );
    }
    if rng.gen_bool(0.05) {
        let _ = write!(
            s,
            r#", "vulnerabilities": [{{"vulnerability": "financial_distress", "provenance": {}}}]"#,
            PROVENANCES[rng.gen_range(0..3)]
        );
    }
    let channels = if rng.gen_bool(0.9) { r#"["email", "app"]"# } else { r#"["sms"]"# };
    let marketing = if rng.gen_bool(0.03) { "opted_out" } else { "allowed" };
    let use_ = if rng.gen_bool(0.3) { "consented" } else { "not_consented" };
    let _ = write!(
        s,
        r#", "consents": {{"marketing": "{marketing}", "channels": {channels}, "life_event_use": "{use_}"}}"#
    );
    let contacts = rng.gen_range(0..7);
    if contacts > 0 {
        let history: Vec<String> = (0..contacts)
            .map(|_| {
                format!(
                    r#"{{"offer": "{}", "at": "{}", "channel": "email", "outcome": "{}"}}"#,
                    OFFERS[rng.gen_range(0..OFFERS.len())],
                    date(rng.gen_range(0..120)),
                    OUTCOMES[rng.gen_range(0..3)]
                )
            })
            .collect();
        let _ = write!(s, r#", "contact_history": [{}]"#, history.join(", "));
    }
    s.push('}');
    s
}

/// `n` synthetic lines, newline-terminated, as a single string.
pub fn lines(n: u64, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&customer_line(i, &mut rng));
        out.push('\n');
    }
    out
}

/// A reader producing `n` synthetic lines on the fly, in constant memory.
pub struct Generator {
    rng: StdRng,
    next: u64,
    n: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Generator {
    /// `n` lines from `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        Generator { rng: StdRng::seed_from_u64(seed), next: 0, n, buf: Vec::new(), pos: 0 }
    }
}

impl Read for Generator {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next == self.n {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            self.buf.extend_from_slice(customer_line(self.next, &mut self.rng).as_bytes());
            self.buf.push(b'\n');
            self.next += 1;
        }
        let k = out.len().min(self.buf.len() - self.pos);
        out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil() {
        assert_eq!(super::date(0), "2026-11-23T09:30:00Z");
        assert_eq!(super::date(23), "2026-10-31T09:30:00Z");
    }
}
