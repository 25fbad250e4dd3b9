//! The JSON Schemas shipped in `schemas/` are those of the current types,
//! `docs/FORMAT.md` documents every field and name they contain, and the
//! sample files follow them.
//!
//! Regenerate the schemas with `cargo run --example schemas` (or run this
//! test with `TACTFUL_BLESS=1`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tactful::formats;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dir() -> PathBuf {
    root().join("schemas")
}

fn schema(name: &str) -> Value {
    let s = formats::schemas().into_iter().find(|s| s.file_name == name).expect("schema");
    serde_json::to_value(&s.schema).expect("JSON")
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

/// Every property name and every enumerated name anywhere in `schema`.
fn names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            if let Some(Value::Array(values)) = map.get("enum") {
                out.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            map.values().for_each(|v| names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| names(v, out)),
        _ => {}
    }
}

/// `true` when `doc` mentions `name` as code: `` `name` ``, as part of a
/// dotted path such as `` `contact.name` ``, or quoted in JSON (`"name"`).
fn mentions(doc: &str, name: &str) -> bool {
    doc.match_indices(name).any(|(i, _)| {
        let before = doc[..i].chars().next_back();
        let after = doc[i + name.len()..].chars().next();
        matches!(before, Some('`' | '.' | '"')) && matches!(after, Some('`' | '.' | '"'))
    })
}

#[test]
fn format_doc_documents_every_field_and_name() {
    let doc = std::fs::read_to_string(root().join("docs/FORMAT.md")).expect("docs/FORMAT.md");
    let mut missing = Vec::new();
    for s in formats::schemas() {
        let mut all = BTreeSet::new();
        names(&serde_json::to_value(&s.schema).expect("JSON"), &mut all);
        missing.extend(all.into_iter().filter(|n| !mentions(&doc, n)).map(|n| format!("{n} ({})", s.file_name)));
    }
    assert!(missing.is_empty(), "docs/FORMAT.md does not document: {missing:?}");
}

/// The properties a schema's root object declares, and those it requires.
fn properties(schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let declared = schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    (declared, required)
}

/// Each JSON line of `file` has only declared keys and every required one.
fn follows(file: &str, pick: impl Fn(&Value) -> &'static str) {
    let text = std::fs::read_to_string(root().join("examples/data").join(file)).expect("sample file");
    for (i, line) in text.lines().enumerate() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let Some(object) = v.as_object() else { continue };
        let (declared, required) = properties(&schema(pick(&v)));
        let keys: BTreeSet<String> = object.keys().cloned().collect();
        let ok = keys.is_subset(&declared) && required.is_subset(&keys);
        let bad_on_purpose = file == "customers.jsonl"
            && object.get("id").and_then(Value::as_str).is_some_and(|id| id.starts_with("bad-"));
        assert!(ok || bad_on_purpose, "{file}:{}: keys {keys:?}, declared {declared:?}, required {required:?}", i + 1);
    }
}

#[test]
fn sample_files_follow_the_schemas() {
    follows("decisions.expected.jsonl", |v| {
        if v.get("error").is_some() {
            "error_record.schema.json"
        } else {
            "decision.schema.json"
        }
    });
    follows("customers.jsonl", |_| "customer.schema.json");
    let (declared, _) = properties(&schema("catalog.schema.json"));
    assert_eq!(declared, ["offers", "schema"].map(str::to_owned).into());
    let (declared, required) = properties(&schema("request.schema.json"));
    assert_eq!((declared.len(), required.len()), (3, 3));
}
