//! Writes the JSON Schemas of tactful's file formats into `schemas/` (or
//! the directory given as the first argument).
//!
//! Run with `cargo run --example schemas` after changing a format; the test
//! `tests/schemas.rs` fails while the shipped schemas are not current.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas"), PathBuf::from);
    match tactful::formats::write_schemas(&dir) {
        Ok(()) => {
            for s in tactful::formats::schemas() {
                println!("{}", dir.join(s.file_name).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("schemas: cannot write into {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}
