//! JSON Schemas of tactful's file formats, generated from the serde types.
//!
//! The shipped copies live in `schemas/` at the root of the repository and
//! are described in `docs/FORMAT.md`. Regenerate them after changing a
//! format with `cargo run --example schemas`; a test fails while they are
//! not current.

use std::io;
use std::path::Path;

use schemars::schema::RootSchema;
use schemars::schema_for;

use crate::batch::ErrorRecord;
use crate::catalog::Catalog;
use crate::config::EngineParams;
use crate::customer::{Customer, Request};
use crate::decision::Decision;

/// One schema and the file it ships in.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// File name in `schemas/`, e.g. `catalog.schema.json`.
    pub file_name: &'static str,
    /// The schema.
    pub schema: RootSchema,
}

impl SchemaFile {
    /// The schema as shipped: pretty-printed JSON and a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.schema).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Every format's schema: catalog, customer (one line of the `score` tool's
/// input), request, decision and error record (the two kinds of output
/// line), and engine parameters.
pub fn schemas() -> Vec<SchemaFile> {
    vec![
        SchemaFile { file_name: "catalog.schema.json", schema: schema_for!(Catalog) },
        SchemaFile { file_name: "customer.schema.json", schema: schema_for!(Customer) },
        SchemaFile { file_name: "request.schema.json", schema: schema_for!(Request) },
        SchemaFile { file_name: "decision.schema.json", schema: schema_for!(Decision) },
        SchemaFile { file_name: "error_record.schema.json", schema: schema_for!(ErrorRecord) },
        SchemaFile { file_name: "engine_params.schema.json", schema: schema_for!(EngineParams) },
    ]
}

/// Writes every schema into `dir` (created if needed).
pub fn write_schemas(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for s in schemas() {
        std::fs::write(dir.join(s.file_name), s.to_json())?;
    }
    Ok(())
}

/// The files in `dir` that are missing or differ from [`schemas`].
pub fn stale_schemas(dir: &Path) -> Vec<&'static str> {
    schemas()
        .into_iter()
        .filter(|s| std::fs::read_to_string(dir.join(s.file_name)).ok().as_deref() != Some(s.to_json().as_str()))
        .map(|s| s.file_name)
        .collect()
}
