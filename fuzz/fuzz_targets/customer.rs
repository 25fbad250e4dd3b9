//! Customer JSON parsing (serde and `batch::parse_customer`), a JSON round
//! trip, `recommend` against the sample catalog, and the streaming scorer
//! on the same bytes as a multi-line file: one record per input line.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tactful::batch::{self, BatchOptions, JsonLinesSink, VecSink};
use tactful::{Catalog, Channel, Customer, Engine, Request};
use tactful_fuzz::{base_now, check_decision};

const CATALOG: &str = include_str!("../../examples/data/catalog.json");

fn world() -> &'static (Catalog, Engine) {
    static WORLD: OnceLock<(Catalog, Engine)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let catalog: Catalog = serde_json::from_str(CATALOG).expect("the sample catalog parses");
        let engine = Engine::new(catalog.clone()).expect("the sample catalog is valid");
        (catalog, engine)
    })
}

fn lines_in(data: &[u8]) -> u64 {
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

fuzz_target!(|data: &[u8]| {
    let (catalog, engine) = world();
    let Some((&selector, body)) = data.split_first() else { return };
    let request = Request {
        now: base_now(),
        channel: Channel::ALL[usize::from(selector) % Channel::ALL.len()],
        k: [1, 3, usize::MAX, 0][usize::from(selector >> 3) % 4],
    };
    let direct = serde_json::from_slice::<Customer>(body);
    let parsed = batch::parse_customer(7, body);
    match (&direct, &parsed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(record)) => {
            assert_eq!(record.line, 7);
            let _ = record.to_string();
        }
        _ => panic!("serde and parse_customer disagree: {:?} / {:?}", direct.is_ok(), parsed.is_ok()),
    }
    let scored = batch::score_line(engine, &request, 7, body);
    if let Ok(customer) = &parsed {
        let json = serde_json::to_string(customer).expect("a customer serialises");
        let back: Customer = serde_json::from_str(&json).expect("a serialised customer parses");
        assert_eq!(&back, customer, "customer JSON round trip");
        let plain = engine.recommend(customer, &request);
        if let Ok(d) = &plain {
            check_decision(catalog, customer, &request, d);
        }
        assert_eq!(plain.is_ok(), scored.is_ok());
        if let (Ok(a), Ok(b)) = (&plain, &scored) {
            assert_eq!(a, b);
        }
    } else {
        assert!(scored.is_err());
    }
    // The same bytes as a file of lines: nothing lost, order kept.
    let expected = lines_in(body);
    let options = BatchOptions { chunk_lines: 2, chunk_bytes: 64, max_line_bytes: 512 };
    let mut sink = VecSink::default();
    let summary = batch::score_stream(body, engine, &request, &options, &mut sink).expect("in-memory I/O cannot fail");
    assert_eq!(summary.lines, expected);
    assert_eq!(summary.scored + summary.failed, expected);
    assert_eq!(sink.records.len() as u64, expected);
    for (i, r) in sink.records.iter().enumerate() {
        assert_eq!(r.line, i as u64 + 1);
    }
    let mut out = Vec::new();
    batch::score_stream(body, engine, &request, &options, JsonLinesSink::new(&mut out)).expect("in-memory I/O");
    let text = String::from_utf8(out).expect("UTF-8 output");
    assert_eq!(text.lines().count() as u64, expected);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("every output line is JSON");
        assert!(v.get("customer").is_some());
    }
});
