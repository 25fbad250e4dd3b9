//! The JSON Schemas shipped in `schemas/` are those of the current types,
//! and the sample files follow them.
//!
//! Regenerate with `cargo run --example schemas` (or run this test with
//! `TACTFUL_BLESS=1`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tactful::formats;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

#[test]
fn shipped_schemas_are_current() {
    if std::env::var_os("TACTFUL_BLESS").is_some() {
        formats::write_schemas(&dir()).expect("write the schemas");
    }
    let stale = formats::stale_schemas(&dir());
    assert!(stale.is_empty(), "schemas/{stale:?} are not current: run `cargo run --example schemas` and commit them");
    // No stray schema of a format that no longer exists.
    let shipped: Vec<String> = std::fs::read_dir(dir())
        .expect("schemas/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    for name in &shipped {
        assert!(formats::schemas().iter().any(|s| s.file_name == name), "schemas/{name} is not generated any more");
    }
}

/// The properties a schema's root object declares.
fn properties(schema: &Value) -> Vec<&str> {
    let mut names: Vec<&str> =
        schema["properties"].as_object().map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
    names.sort_unstable();
    names
}

#[test]
fn schemas_describe_the_sample_files() {
    let schema = |name: &str| -> Value {
        let s = formats::schemas().into_iter().find(|s| s.file_name == name).expect("schema");
        serde_json::to_value(&s.schema).expect("JSON")
    };
    assert_eq!(properties(&schema("catalog.schema.json")), ["offers", "schema"]);
    assert_eq!(
        properties(&schema("customer.schema.json")),
        ["age", "consents", "contact_history", "features", "holdings", "id", "life_events", "vulnerabilities"]
    );
    assert_eq!(properties(&schema("request.schema.json")), ["channel", "k", "now"]);
    assert_eq!(properties(&schema("error_record.schema.json")), ["customer", "error", "line"]);
    let decision = schema("decision.schema.json");
    let error_record = schema("error_record.schema.json");
    let samples =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/decisions.expected.jsonl"))
            .expect("golden decisions");
    // Every key of every sample decision is a property of the schema.
    for line in samples.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        let expected = if v.get("error").is_some() { properties(&error_record) } else { properties(&decision) };
        let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, expected, "{line}");
    }
}
