//! The examples in `docs/FORMAT.md` are valid, and the decision shown is
//! the one the engine gives for the catalog, customer and request shown.
//!
//! After a deliberate change, `TACTFUL_BLESS=1 cargo test --release --test
//! format_doc` rewrites the decision example; review the diff.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tactful::batch::ErrorRecord;
use tactful::{Catalog, Customer, Engine, EngineParams, Request};

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/FORMAT.md")
}

/// The byte range of the JSON block after `<!-- example: NAME -->`.
fn block(doc: &str, name: &str) -> std::ops::Range<usize> {
    let marker = format!("<!-- example: {name} -->\n```json\n");
    let start = doc.find(&marker).unwrap_or_else(|| panic!("no example `{name}` in docs/FORMAT.md")) + marker.len();
    let len = doc[start..].find("```").expect("closing fence");
    start..start + len
}

/// Equal JSON, numbers within a relative 1e-9.
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn format_examples_are_valid_and_current() {
    let doc = std::fs::read_to_string(doc_path()).expect("docs/FORMAT.md");
    let catalog: Catalog = serde_json::from_str(&doc[block(&doc, "catalog")]).expect("catalog example");
    let engine = Engine::builder().catalog(catalog).params(EngineParams::default()).build().expect("usable catalog");
    let customer: Customer = serde_json::from_str(&doc[block(&doc, "customer")]).expect("customer example");
    let request: Request = serde_json::from_str(&doc[block(&doc, "request")]).expect("request example");
    let _: ErrorRecord = serde_json::from_str(&doc[block(&doc, "error_record")]).expect("error record example");

    let decision = engine.recommend(&customer, &request).expect("a decision");
    let mut pretty = serde_json::to_string_pretty(&decision).expect("JSON");
    pretty.push('\n');
    let range = block(&doc, "decision");
    if std::env::var_os("TACTFUL_BLESS").is_some() {
        let mut updated = doc.clone();
        updated.replace_range(range.clone(), &pretty);
        std::fs::write(doc_path(), updated).expect("write docs/FORMAT.md");
        return;
    }
    let shown: Value =
        serde_json::from_str(&doc[range]).expect("the decision example is JSON (TACTFUL_BLESS=1 regenerates it)");
    let actual = serde_json::to_value(&decision).expect("JSON");
    assert!(close(&shown, &actual), "docs/FORMAT.md shows another decision; actual:\n{pretty}");
    // The example shows what it says it shows.
    assert!(decision.withheld_reason("nursery_loan").is_some());
    assert!(decision.withheld_reason("gold_card_upgrade").is_some());
    assert_eq!(decision.recommendations.len(), 1);
}
