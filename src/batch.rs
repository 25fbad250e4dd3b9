//! Batch scoring: customers as JSON lines in, one decision (or one error
//! record) per line out, in input order, in bounded memory, on all cores.
//!
//! This is the library half of the `score` example tool; the file formats
//! are described in `docs/FORMAT.md`.
//!
//! * [`score_line`] turns one input line into a [`Decision`] or an
//!   [`ErrorRecord`] naming the line and the problem. It never panics and
//!   never gives up on the lines after a bad one.
//! * [`score_stream`] reads a whole stream in chunks (at most
//!   [`BatchOptions::chunk_lines`] lines and about
//!   [`BatchOptions::chunk_bytes`] bytes), scores and encodes each chunk in
//!   parallel on the current rayon pool, and hands the results to a [`Sink`]
//!   in input order. Memory is bounded by the chunk size, not by the input.
//! * [`JsonLinesSink`] writes the records as JSON lines; [`VecSink`] keeps
//!   them (for tests and small jobs).
//! * [`parse_catalog`] and [`load_engine`] read a catalog and name the offer
//!   or feature at fault when it is wrong.
//!
//! ```
//! use tactful::batch::{self, BatchOptions, JsonLinesSink};
//! use tactful::{EngineParams, Request};
//!
//! let engine = batch::load_engine(include_str!("../examples/data/catalog.json"), EngineParams::default())?;
//! let request: Request = serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#)?;
//! let input = concat!(
//!     r#"{"id": "C-1", "age": 41, "features": {"tenure_years": 6, "savings_balance_k": 12,"#,
//!     r#" "monthly_card_spend_k": 1.8, "owns_car": 1, "owns_home": 1, "baby_store_spend_k": 0.6,"#,
//!     r#" "religion_code": 3, "household_size": 2, "expecting_child": 1},"#,
//!     r#" "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#, "\n",
//!     "{not json\n",
//! );
//! let mut out = Vec::new();
//! let summary = batch::score_stream(input.as_bytes(), &engine, &request, &BatchOptions::default(), &mut JsonLinesSink::new(&mut out))?;
//! assert_eq!((summary.lines, summary.scored, summary.failed), (2, 1, 1));
//! let text = String::from_utf8(out)?;
//! let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap())?;
//! assert_eq!(second["line"], 2);
//! assert_eq!(second["error"]["kind"], "malformed_json");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, CustomerId, Offer};
use crate::config::EngineParams;
use crate::customer::{Customer, Request};
use crate::decision::Decision;
use crate::engine::Engine;
use crate::error::{ConfigError, RequestError};
use crate::schema::FeatureSpec;

/// Default [`BatchOptions::chunk_lines`].
pub const DEFAULT_CHUNK_LINES: usize = 1024;
/// Default [`BatchOptions::chunk_bytes`] (8 MiB).
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;
/// Default [`BatchOptions::max_line_bytes`] (4 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 4 << 20;

/// How [`score_stream`] cuts its input into chunks.
///
/// At most one chunk of input lines and its encoded output are held in
/// memory at a time: about `chunk_bytes + max_line_bytes` of input plus the
/// chunk's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most lines per chunk (default 1,024; 0 counts as 1).
    pub chunk_lines: usize,
    /// A chunk is closed once its lines add up to this many bytes (default
    /// 8 MiB).
    pub chunk_bytes: usize,
    /// A longer line is not kept: it gets a `line_too_long` error record
    /// (default 4 MiB).
    pub max_line_bytes: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            chunk_lines: DEFAULT_CHUNK_LINES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// What was wrong with an input line, as written in its error record's
/// `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line is empty or only white space.
    BlankLine,
    /// The line is longer than [`BatchOptions::max_line_bytes`].
    LineTooLong,
    /// The line is not UTF-8.
    InvalidUtf8,
    /// The line is not JSON (syntax error, truncated line, trailing text).
    MalformedJson,
    /// A JSON number too large for a 64-bit float (e.g. `1e999`).
    NumberOutOfRange,
    /// A non-finite number written as a string (`"NaN"`, `"Infinity"`, …)
    /// where a number is expected.
    NonFiniteNumber,
    /// A required field is missing (e.g. `id` or `features`).
    MissingField,
    /// A field the format does not have (often a typo).
    UnknownField,
    /// A field given twice, or a feature named twice.
    DuplicateField,
    /// A value of the wrong JSON type (e.g. a string where a number goes).
    WrongType,
    /// An unknown name where one of a fixed set is expected (channel,
    /// life event, provenance, …).
    UnknownVariant,
    /// A value of the right type that cannot be used (e.g. a negative age,
    /// a time that is not RFC 3339).
    InvalidValue,
    /// A feature name the catalog's schema does not have.
    UnknownFeature,
    /// A schema feature without a value.
    MissingFeature,
    /// A list of feature values of the wrong length.
    FeatureCount,
    /// A feature value that is not a finite number.
    NonFiniteFeature,
    /// An inference confidence outside `[0, 1]`.
    InvalidConfidence,
    /// The contact history names an offer the catalog does not have.
    UnknownOffer,
    /// Feature values so large that a score is not a finite number.
    ScoreOverflow,
    /// Any other request the engine refused (e.g. `k` = 0).
    InvalidRequest,
}

impl ErrorKind {
    /// The name written in error records, e.g. `malformed_json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BlankLine => "blank_line",
            ErrorKind::LineTooLong => "line_too_long",
            ErrorKind::InvalidUtf8 => "invalid_utf8",
            ErrorKind::MalformedJson => "malformed_json",
            ErrorKind::NumberOutOfRange => "number_out_of_range",
            ErrorKind::NonFiniteNumber => "non_finite_number",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::UnknownField => "unknown_field",
            ErrorKind::DuplicateField => "duplicate_field",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::UnknownVariant => "unknown_variant",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::UnknownFeature => "unknown_feature",
            ErrorKind::MissingFeature => "missing_feature",
            ErrorKind::FeatureCount => "feature_count",
            ErrorKind::NonFiniteFeature => "non_finite_feature",
            ErrorKind::InvalidConfidence => "invalid_confidence",
            ErrorKind::UnknownOffer => "unknown_offer",
            ErrorKind::ScoreOverflow => "score_overflow",
            ErrorKind::InvalidRequest => "invalid_request",
        }
    }

    fn of_request_error(e: &RequestError) -> ErrorKind {
        match e {
            RequestError::UnknownFeature { .. } => ErrorKind::UnknownFeature,
            RequestError::MissingFeature { .. } => ErrorKind::MissingFeature,
            RequestError::FeatureCount { .. } => ErrorKind::FeatureCount,
            RequestError::NonFiniteFeature { .. } => ErrorKind::NonFiniteFeature,
            RequestError::InvalidConfidence { .. } => ErrorKind::InvalidConfidence,
            RequestError::UnknownOffer { .. } => ErrorKind::UnknownOffer,
            RequestError::ScoreOverflow { .. } => ErrorKind::ScoreOverflow,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The problem found on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineProblem {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// A one-line description naming the field, feature or offer at fault.
    pub message: String,
    /// 1-based byte column in the line where the JSON parser stopped, when
    /// the problem was found while parsing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// The output line written for an input line that could not be scored.
///
/// ```json
/// {"line": 7, "customer": "C-3", "error": {"kind": "unknown_feature", "message": "customer `C-3`: unknown feature `salary`"}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRecord {
    /// 1-based input line number.
    pub line: u64,
    /// The customer's `id` when it could be read, else `null`.
    pub customer: Option<CustomerId>,
    /// The problem.
    pub error: LineProblem,
}

impl ErrorRecord {
    fn new(line: u64, customer: Option<CustomerId>, kind: ErrorKind, message: String, column: Option<usize>) -> Self {
        ErrorRecord { line, customer, error: LineProblem { kind, message, column } }
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = &self.customer {
            write!(f, " (customer `{c}`)")?;
        }
        write!(f, ": {}: {}", self.error.kind, self.error.message)?;
        if let Some(c) = self.error.column {
            write!(f, " (column {c})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorRecord {}

/// The outcome of one input line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based input line number.
    pub line: u64,
    /// The decision, or why there is none.
    pub outcome: Result<Decision, ErrorRecord>,
}

impl Record {
    /// The record as one line of JSON, without the newline: the
    /// [`Decision`] or the [`ErrorRecord`].
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // serde_json writes UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the record as one line of JSON, newline included, to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        self.write_json(out);
        out.push(b'\n');
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let written = match &self.outcome {
            Ok(decision) => serde_json::to_writer(&mut *out, decision),
            Err(record) => serde_json::to_writer(&mut *out, record),
        };
        if written.is_err() {
            // Serialising these types into memory cannot fail (no maps with
            // non-string keys, no non-finite floats reach a decision), but a
            // line is never lost: fall back to an error record.
            out.truncate(start);
            let fallback = format!(
                r#"{{"line":{},"customer":null,"error":{{"kind":"invalid_request","message":"the decision could not be serialised"}}}}"#,
                self.line
            );
            out.extend_from_slice(fallback.as_bytes());
        }
    }
}

/// Counts of a run, updated chunk by chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Summary {
    /// Input lines read (blank lines included).
    pub lines: u64,
    /// Lines that gave a decision.
    pub scored: u64,
    /// Lines that gave an error record.
    pub failed: u64,
    /// Failed lines by kind.
    pub failures: BTreeMap<ErrorKind, u64>,
    /// The first line that failed, if any.
    pub first_failed_line: Option<u64>,
}

impl Summary {
    /// `true` when every line read was scored.
    pub fn all_scored(&self) -> bool {
        self.failed == 0
    }

    fn add(&mut self, line: u64, failure: Option<ErrorKind>) {
        self.lines += 1;
        match failure {
            None => self.scored += 1,
            Some(kind) => {
                self.failed += 1;
                *self.failures.entry(kind).or_insert(0) += 1;
                self.first_failed_line.get_or_insert(line);
            }
        }
    }
}

impl fmt::Display for Summary {
    /// `5 lines read, 3 scored, 2 failed (malformed_json: 1, unknown_feature: 1; first at line 4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines read, {} scored, {} failed", self.lines, self.scored, self.failed)?;
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self.failures.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            write!(f, " ({}", kinds.join(", "))?;
            if let Some(line) = self.first_failed_line {
                write!(f, "; first at line {line}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Receives the records of [`score_stream`], in input order.
///
/// [`Sink::prepare`] runs on the worker threads (so encoding is parallel
/// too); [`Sink::write`] runs on the calling thread, once per input line, in
/// input order.
pub trait Sink {
    /// What a record is turned into on the worker threads.
    type Item: Send;

    /// Turns a record into an item; called in parallel, in any order.
    fn prepare(record: Record) -> Self::Item;

    /// Takes the item of the next input line.
    fn write(&mut self, item: Self::Item) -> io::Result<()>;

    /// Called after each chunk with the counts so far (e.g. to flush or to
    /// show progress). Does nothing by default.
    fn chunk_done(&mut self, summary: &Summary) -> io::Result<()> {
        let _ = summary;
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    type Item = S::Item;

    fn prepare(record: Record) -> Self::Item {
        S::prepare(record)
    }

    fn write(&mut self, item: Self::Item) -> io::Result<()> {
        (**self).write(item)
    }

    fn chunk_done(&mut self, summary: &Summary) -> io::Result<()> {
        (**self).chunk_done(summary)
    }
}

/// Writes each record as one line of JSON (see [`Record::write_json_line`]).
/// Buffer the writer (e.g. with [`io::BufWriter`]) for speed; the sink
/// flushes it after each chunk.
#[derive(Debug)]
pub struct JsonLinesSink<W: Write> {
    writer: W,
}

impl<W: Write> JsonLinesSink<W> {
    /// A sink writing to `writer`.
    pub fn new(writer: W) -> Self {
        JsonLinesSink { writer }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<W: Write> Sink for JsonLinesSink<W> {
    type Item = Vec<u8>;

    fn prepare(record: Record) -> Vec<u8> {
        let mut out = Vec::with_capacity(2048);
        record.write_json_line(&mut out);
        out
    }

    fn write(&mut self, item: Vec<u8>) -> io::Result<()> {
        self.writer.write_all(&item)
    }

    fn chunk_done(&mut self, _: &Summary) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Keeps every record in memory, in input order.
#[derive(Debug, Default)]
pub struct VecSink {
    /// The records received.
    pub records: Vec<Record>,
}

impl Sink for VecSink {
    type Item = Record;

    fn prepare(record: Record) -> Record {
        record
    }

    fn write(&mut self, item: Record) -> io::Result<()> {
        self.records.push(item);
        Ok(())
    }
}

/// [`score_stream`] stopped because it could not read or write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Reading the input failed.
    #[error("reading the customers failed after {lines_done} lines: {source}")]
    Read {
        /// Lines fully processed and written before the failure.
        lines_done: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// The sink failed (e.g. the output could not be written).
    #[error("writing the decisions failed after {lines_done} lines: {source}")]
    Write {
        /// Lines fully processed and written before the failure.
        lines_done: u64,
        /// The I/O error.
        source: io::Error,
    },
}

/// One line as read: its bytes, or how long it was if it was too long.
#[derive(Debug)]
enum RawLine {
    Text(Vec<u8>),
    TooLong(usize),
}

/// Reads one line of at most `max` bytes (newline and a trailing `\r`
/// excluded) into `buf`. `Ok(None)` at the end of the input. A longer line
/// is consumed but not kept.
fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<Option<RawLine>> {
    let mut buf = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (part, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        len = len.saturating_add(part.len());
        if len <= max.saturating_add(1) {
            // Keep one byte beyond `max` so that a trailing `\r` can still
            // be stripped from a line of exactly `max` bytes.
            buf.extend_from_slice(part);
        }
        reader.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') && len <= max.saturating_add(1) {
        buf.pop();
        len -= 1;
    }
    if len > max {
        return Ok(Some(RawLine::TooLong(len)));
    }
    Ok(Some(RawLine::Text(buf)))
}

/// Reads the next chunk of lines, numbered from `first`. The flag is `true`
/// at the end of the input.
fn read_chunk(reader: &mut impl BufRead, first: u64, options: &BatchOptions) -> io::Result<(Chunk, bool)> {
    let chunk_lines = options.chunk_lines.max(1);
    let mut chunk = Vec::with_capacity(chunk_lines.min(DEFAULT_CHUNK_LINES));
    let mut bytes = 0usize;
    while chunk.len() < chunk_lines && bytes < options.chunk_bytes.max(1) {
        match read_line(reader, options.max_line_bytes)? {
            None => return Ok((chunk, true)),
            Some(raw) => {
                if let RawLine::Text(t) = &raw {
                    bytes += t.len();
                }
                chunk.push((first + chunk.len() as u64, raw));
            }
        }
    }
    Ok((chunk, false))
}

/// A chunk of numbered input lines.
type Chunk = Vec<(u64, RawLine)>;

/// One line scored and prepared: its number, its failure kind if any, and
/// the sink's item.
type Prepared<T> = (u64, Option<ErrorKind>, T);

/// Scores and prepares a chunk in parallel, keeping its order.
fn score_chunk<S: Sink>(
    chunk: &[(u64, RawLine)],
    engine: &Engine,
    request: &Request,
    options: &BatchOptions,
) -> Vec<Prepared<S::Item>> {
    chunk
        .par_iter()
        .map(|(line, raw)| {
            let outcome = match raw {
                RawLine::Text(bytes) => score_line(engine, request, *line, bytes),
                RawLine::TooLong(len) => Err(ErrorRecord::new(
                    *line,
                    None,
                    ErrorKind::LineTooLong,
                    format!("the line has {len} bytes, more than the limit of {}", options.max_line_bytes),
                    None,
                )),
            };
            let failure = outcome.as_ref().err().map(|e| e.error.kind);
            (*line, failure, S::prepare(Record { line: *line, outcome }))
        })
        .collect()
}

/// Hands a scored chunk to the sink, in order, and counts it.
fn write_chunk<S: Sink>(sink: &mut S, items: Vec<Prepared<S::Item>>, summary: &mut Summary) -> Result<(), StreamError> {
    if items.is_empty() {
        return Ok(());
    }
    for (line, failure, item) in items {
        sink.write(item).map_err(|source| StreamError::Write { lines_done: summary.lines, source })?;
        summary.add(line, failure);
    }
    sink.chunk_done(summary).map_err(|source| StreamError::Write { lines_done: summary.lines, source })
}

/// Scores every line of `reader` (one customer as JSON per line) with
/// `engine` and `request`, and hands one [`Record`] per input line to
/// `sink`, in input order.
///
/// Lines are processed in chunks (see [`BatchOptions`]); each chunk is
/// scored and encoded in parallel on the current rayon thread pool (run it
/// inside [`rayon::ThreadPool::install`] to choose the number of threads),
/// while the previous chunk is written and the next one read. At most three
/// chunks are in memory at a time. A bad line never stops the run: it gets
/// an [`ErrorRecord`]. Only an I/O error of the reader or the sink does; the
/// lines before it have then all been handed to the sink.
///
/// Lines are numbered from 1 and end at `\n` (a `\r` before it is dropped);
/// text after the last `\n` is a last line, and an empty input has no line.
pub fn score_stream<R: BufRead + Send, S: Sink + Send>(
    mut reader: R,
    engine: &Engine,
    request: &Request,
    options: &BatchOptions,
    mut sink: S,
) -> Result<Summary, StreamError> {
    let mut summary = Summary::default();
    let read_error = |summary: &Summary, source| StreamError::Read { lines_done: summary.lines, source };
    let (mut current, mut at_end) = read_chunk(&mut reader, 1, options).map_err(|e| read_error(&summary, e))?;
    let mut lines_read = current.len() as u64;
    let mut scored: Vec<Prepared<S::Item>> = Vec::new();
    while !current.is_empty() || !scored.is_empty() {
        // Score this chunk on the pool while this thread writes the
        // previous one and reads the next.
        let (next_scored, io) = rayon::join(
            || score_chunk::<S>(&current, engine, request, options),
            || -> Result<Option<(Chunk, bool)>, StreamError> {
                write_chunk(&mut sink, std::mem::take(&mut scored), &mut summary)?;
                if at_end {
                    return Ok(None);
                }
                read_chunk(&mut reader, lines_read + 1, options).map(Some).map_err(|e| read_error(&summary, e))
            },
        );
        scored = next_scored;
        match io {
            Ok(Some((next, end))) => {
                lines_read += next.len() as u64;
                current = next;
                at_end = end;
            }
            Ok(None) => current = Vec::new(),
            Err(e @ StreamError::Write { .. }) => return Err(e),
            Err(StreamError::Read { source, .. }) => {
                write_chunk(&mut sink, scored, &mut summary)?;
                return Err(read_error(&summary, source));
            }
        }
    }
    Ok(summary)
}

/// Scores one input line (`line` is its 1-based number, used in the error
/// record): parses the customer and asks `engine` for a decision.
pub fn score_line(engine: &Engine, request: &Request, line: u64, bytes: &[u8]) -> Result<Decision, ErrorRecord> {
    let customer = parse_customer(line, bytes)?;
    engine.recommend(&customer, request).map_err(|e| {
        ErrorRecord::new(line, Some(customer.id.clone()), ErrorKind::of_request_error(&e), e.to_string(), None)
    })
}

/// Parses one input line into a [`Customer`], or an [`ErrorRecord`] saying
/// what is wrong and where.
pub fn parse_customer(line: u64, bytes: &[u8]) -> Result<Customer, ErrorRecord> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ErrorRecord::new(
            line,
            None,
            ErrorKind::InvalidUtf8,
            format!("the line is not UTF-8 (invalid byte at column {})", e.valid_up_to() + 1),
            Some(e.valid_up_to() + 1),
        )
    })?;
    if text.trim().is_empty() {
        return Err(ErrorRecord::new(
            line,
            None,
            ErrorKind::BlankLine,
            "blank line: every line must hold one customer".to_owned(),
            None,
        ));
    }
    serde_json::from_str(text).map_err(|e| diagnose(line, text, &e))
}

/// `serde_json`'s message without its " at line L column C" suffix.
fn bare_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

fn is_non_finite_word(s: &str) -> bool {
    let s = s.trim().trim_start_matches(['+', '-']).to_ascii_lowercase();
    matches!(s.as_str(), "nan" | "inf" | "infinity")
}

/// The last object key written before byte `end` of `text` (a heuristic for
/// naming the field of a number that overflows).
fn key_before(text: &str, end: usize) -> Option<&str> {
    let mut end = end.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let mut search = head.len();
    while let Some(colon) = head[..search].rfind(':') {
        search = colon;
        let before = head[..colon].trim_end();
        if let Some(inner) = before.strip_suffix('"') {
            if let Some(open) = inner.rfind('"') {
                return Some(&inner[open + 1..]);
            }
        }
    }
    None
}

/// Explains why `text` is not a customer.
fn diagnose(line: u64, text: &str, e: &serde_json::Error) -> ErrorRecord {
    let column = Some(e.column()).filter(|&c| c > 0);
    let message = bare_message(e);
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
            if message.starts_with("number out of range") =>
        {
            let near = key_before(text, e.column()).map(|k| format!(" (in `{k}`)")).unwrap_or_default();
            let message = format!("a number is too large for a 64-bit float{near}: values must be finite numbers");
            return ErrorRecord::new(line, None, ErrorKind::NumberOutOfRange, message, column);
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            return ErrorRecord::new(
                line,
                None,
                ErrorKind::MalformedJson,
                format!("not valid JSON: {message}"),
                column,
            );
        }
        serde_json::error::Category::Data => {}
    }
    // The line is JSON (at least up to the error): read what we can.
    let value: Option<Value> = serde_json::from_str(text).ok();
    let customer = value.as_ref().and_then(|v| v.get("id")).and_then(Value::as_str).map(CustomerId::from);
    if let Some(found) = value.as_ref().and_then(non_finite_string) {
        let message =
            format!("{found} is a string; values must be finite JSON numbers (NaN and infinity are not allowed)");
        return ErrorRecord::new(line, customer, ErrorKind::NonFiniteNumber, message, column);
    }
    let kind = if message.starts_with("missing field") {
        ErrorKind::MissingField
    } else if message.starts_with("unknown field") {
        ErrorKind::UnknownField
    } else if message.starts_with("duplicate field") || message.ends_with("is given twice") {
        ErrorKind::DuplicateField
    } else if message.starts_with("invalid type") {
        ErrorKind::WrongType
    } else if message.starts_with("unknown variant") {
        ErrorKind::UnknownVariant
    } else {
        // "invalid value", "invalid length", and the messages of custom
        // parsers such as timestamps.
        ErrorKind::InvalidValue
    };
    let message = with_field(text, e, message);
    ErrorRecord::new(line, customer, kind, message, column)
}

/// Prefixes a message with the field it is about when serde's message does
/// not already name it (e.g. `invalid type: string "x", expected f64`).
fn with_field(text: &str, e: &serde_json::Error, message: String) -> String {
    if ["missing field", "unknown field", "duplicate field"].iter().any(|p| message.starts_with(p)) {
        return message;
    }
    match key_before(text, e.column()) {
        Some(key) if !message.contains(&format!("`{key}`")) => format!("`{key}`: {message}"),
        _ => message,
    }
}

/// The first place in `value` (depth first) where a non-finite number is
/// written as a string, described as e.g. "feature `age` (\"NaN\")".
fn non_finite_string(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut Vec<String>) -> Option<String> {
        match value {
            Value::String(s) if is_non_finite_word(s) => {
                let field = if path.is_empty() { "the value".to_owned() } else { format!("`{}`", path.join(".")) };
                Some(format!("{field} = {s:?}"))
            }
            Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| {
                path.push(i.to_string());
                let r = walk(v, path);
                path.pop();
                r
            }),
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                path.push(k.clone());
                let r = walk(v, path);
                path.pop();
                r
            }),
            _ => None,
        }
    }
    walk(value, &mut Vec::new())
}

/// A catalog that cannot be used, naming the offer or feature at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file is not JSON.
    #[error("the catalog is not valid JSON: {message} (line {line}, column {column})")]
    Json {
        /// The parser's message.
        message: String,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A part of the catalog does not follow the format.
    #[error("catalog {location}: {message}")]
    Format {
        /// Where, e.g. ``offers[2] (`gold_card_upgrade`)`` or ``schema[4] (`owns_home`)``.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The catalog follows the format but cannot be used.
    #[error("catalog: {0}")]
    Config(#[from] ConfigError),
}

/// Parses a catalog, naming the offer or feature at fault when the JSON does
/// not follow the format.
pub fn parse_catalog(text: &str) -> Result<Catalog, CatalogError> {
    let error = match serde_json::from_str::<Catalog>(text) {
        Ok(catalog) => return Ok(catalog),
        Err(e) => e,
    };
    let whole = || CatalogError::Format { location: "file".to_owned(), message: error.to_string() };
    if error.classify() != serde_json::error::Category::Data {
        return Err(CatalogError::Json { message: bare_message(&error), line: error.line(), column: error.column() });
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else { return Err(whole()) };
    let name =
        |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(|s| format!(" (`{s}`)")).unwrap_or_default();
    if let Some(features) = value.get("schema").and_then(Value::as_array) {
        for (i, f) in features.iter().enumerate() {
            if let Err(e) = FeatureSpec::deserialize(f) {
                return Err(CatalogError::Format {
                    location: format!("schema[{i}]{}", name(f, "name")),
                    message: e.to_string(),
                });
            }
        }
    }
    if let Some(offers) = value.get("offers").and_then(Value::as_array) {
        for (i, o) in offers.iter().enumerate() {
            if let Err(e) = Offer::deserialize(o) {
                return Err(CatalogError::Format {
                    location: format!("offers[{i}]{}", name(o, "id")),
                    message: e.to_string(),
                });
            }
        }
    }
    Err(whole())
}

/// Parses a catalog and builds an engine with `params`.
pub fn load_engine(text: &str, params: EngineParams) -> Result<Engine, CatalogError> {
    let catalog = parse_catalog(text)?;
    Ok(Engine::builder().catalog(catalog).params(params).build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../examples/data/catalog.json");

    fn engine() -> Engine {
        load_engine(CATALOG, EngineParams::default()).expect("the sample catalog is valid")
    }

    fn request() -> Request {
        serde_json::from_str(r#"{"now": "2026-11-23T10:00:00Z", "channel": "email", "k": 3}"#).unwrap()
    }

    const GOOD: &str = r#"{"id": "C-1", "age": 41, "features": {"tenure_years": 6, "savings_balance_k": 12, "monthly_card_spend_k": 1.8, "owns_car": 1, "owns_home": 1, "baby_store_spend_k": 0.6, "religion_code": 3, "household_size": 2, "expecting_child": 1}, "holdings": ["current_account"], "consents": {"channels": ["email"]}}"#;

    fn problem(line: &str) -> ErrorRecord {
        score_line(&engine(), &request(), 9, line.as_bytes()).expect_err("the line is bad")
    }

    #[test]
    fn a_good_line_gives_a_decision() {
        let d = score_line(&engine(), &request(), 1, GOOD.as_bytes()).unwrap();
        assert_eq!(d.customer.as_str(), "C-1");
    }

    #[test]
    fn bad_lines_name_line_kind_and_field() {
        let e = problem("{not json");
        assert_eq!((e.line, e.error.kind, e.customer.clone()), (9, ErrorKind::MalformedJson, None));
        assert!(e.error.column.is_some());

        let e = problem(&GOOD.replace(r#""owns_car": 1"#, r#""owns_car": "NaN""#));
        assert_eq!(e.error.kind, ErrorKind::NonFiniteNumber, "{e}");
        assert_eq!(e.customer.as_ref().map(super::super::catalog::CustomerId::as_str), Some("C-1"));
        assert!(e.error.message.contains("features.owns_car"), "{e}");

        let e = problem(&GOOD.replace(r#""owns_car": 1"#, r#""owns_car": 1e999"#));
        assert_eq!(e.error.kind, ErrorKind::NumberOutOfRange, "{e}");
        assert!(e.error.message.contains("`owns_car`"), "{e}");

        let e = problem(&GOOD.replace(r#""owns_car": 1"#, r#""owns_car": "1""#));
        assert_eq!(e.error.kind, ErrorKind::WrongType, "{e}");

        let e = problem(&GOOD.replace(r#""owns_car""#, r#""owns_boat""#));
        assert_eq!(e.error.kind, ErrorKind::UnknownFeature, "{e}");
        assert!(e.error.message.contains("owns_boat"), "{e}");

        let e = problem(&GOOD.replace(r#""age": 41"#, r#""agee": 41"#));
        assert_eq!(e.error.kind, ErrorKind::UnknownField, "{e}");
        assert!(e.error.message.contains("agee"), "{e}");

        let e = problem(&GOOD.replace(r#""id": "C-1", "#, ""));
        assert_eq!(e.error.kind, ErrorKind::MissingField, "{e}");
        assert!(e.error.message.contains("`id`"), "{e}");

        let e = problem(&GOOD.replace(r#""age": 41"#, r#""age": -4"#));
        assert_eq!(e.error.kind, ErrorKind::InvalidValue, "{e}");

        let e = problem(&GOOD.replace(r#"["email"]"#, r#"["fax"]"#));
        assert_eq!(e.error.kind, ErrorKind::UnknownVariant, "{e}");
        assert!(e.error.message.contains("fax"), "{e}");

        let e = problem("   ");
        assert_eq!(e.error.kind, ErrorKind::BlankLine);
        let e = problem("[1, 2]");
        assert_eq!(e.error.kind, ErrorKind::WrongType, "{e}");
        let e = score_line(&engine(), &request(), 3, b"{\"id\": \"\xff\"}").unwrap_err();
        assert_eq!((e.line, e.error.kind), (3, ErrorKind::InvalidUtf8));
    }

    #[test]
    fn engine_errors_keep_the_customer() {
        let mut r = request();
        r.k = 0;
        let e = score_line(&engine(), &r, 2, GOOD.as_bytes()).unwrap_err();
        assert_eq!(
            (e.error.kind, e.customer.as_ref().map(super::super::catalog::CustomerId::as_str)),
            (ErrorKind::InvalidRequest, Some("C-1"))
        );
    }

    #[test]
    fn lines_are_split_on_newlines_with_limits() {
        let input = b"a\r\n\nbb\nccccc\nlast";
        let mut r = &input[..];
        let mut got = Vec::new();
        while let Some(line) = read_line(&mut r, 4).unwrap() {
            got.push(match line {
                RawLine::Text(t) => String::from_utf8(t).unwrap(),
                RawLine::TooLong(n) => format!("<{n}>"),
            });
        }
        assert_eq!(got, ["a", "", "bb", "<5>", "last"]);
        let mut r = &b"abcd\r\n"[..];
        assert!(matches!(read_line(&mut r, 4).unwrap(), Some(RawLine::Text(t)) if t == b"abcd"));
        assert!(read_line(&mut r, 4).unwrap().is_none());
    }

    #[test]
    fn stream_keeps_order_and_counts() {
        let mut input = String::new();
        for i in 0..50 {
            match i % 5 {
                0 => input.push_str("oops\n"),
                1 => input.push('\n'),
                _ => {
                    input.push_str(&GOOD.replace("C-1", &format!("C-{i}")));
                    input.push('\n');
                }
            }
        }
        let options = BatchOptions { chunk_lines: 7, ..BatchOptions::default() };
        let mut sink = VecSink::default();
        let summary = score_stream(input.as_bytes(), &engine(), &request(), &options, &mut sink).unwrap();
        assert_eq!((summary.lines, summary.scored, summary.failed), (50, 30, 20));
        assert_eq!(summary.first_failed_line, Some(1));
        assert_eq!(summary.failures[&ErrorKind::BlankLine], 10);
        for (i, r) in sink.records.iter().enumerate() {
            assert_eq!(r.line, i as u64 + 1);
            match &r.outcome {
                Ok(d) => assert_eq!(d.customer.as_str(), format!("C-{i}")),
                Err(e) => assert_eq!(e.line, r.line),
            }
        }
        assert_eq!(
            summary.to_string(),
            "50 lines read, 30 scored, 20 failed (blank_line: 10, malformed_json: 10; first at line 1)"
        );
    }

    /// Gives `ok` bytes of `data`, then fails.
    struct FailAfter<'a> {
        data: &'a [u8],
        ok: usize,
    }

    impl io::Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.ok).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.ok -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_stops_after_handing_over_every_complete_chunk() {
        let input = format!("{GOOD}\n").repeat(20);
        let reader = io::BufReader::with_capacity(16, FailAfter { data: input.as_bytes(), ok: GOOD.len() * 9 });
        let options = BatchOptions { chunk_lines: 2, ..BatchOptions::default() };
        let mut sink = VecSink::default();
        let e = score_stream(reader, &engine(), &request(), &options, &mut sink).unwrap_err();
        let StreamError::Read { lines_done, .. } = e else { panic!("{e}") };
        // 8 whole lines were read before the failure, in 4 chunks.
        assert_eq!((lines_done, sink.records.len()), (8, 8));
        assert!(sink.records.iter().enumerate().all(|(i, r)| r.line == i as u64 + 1 && r.outcome.is_ok()));
    }

    #[test]
    fn catalog_errors_name_the_offer_or_feature() {
        let bad = CATALOG.replace(
            r#""channels": ["email", "app", "web"],
      "eligibility": {"base_product""#,
            r#""channels": ["email", "fax", "web"],
      "eligibility": {"base_product""#,
        );
        assert_ne!(bad, CATALOG);
        let e = parse_catalog(&bad).unwrap_err();
        assert!(e.to_string().contains("offers[2] (`gold_card_upgrade`)"), "{e}");
        assert!(e.to_string().contains("fax"), "{e}");

        let bad = CATALOG.replace(r#""baseline": 1.2"#, r#""baseline": 1.2, "unit": "k""#);
        let e = parse_catalog(&bad).unwrap_err();
        assert!(e.to_string().contains("schema[2] (`monthly_card_spend_k`)"), "{e}");

        let bad = CATALOG.replace(r#""savings_balance_k": 0.06"#, r#""savings_balnce_k": 0.06"#);
        let e = load_engine(&bad, EngineParams::default()).unwrap_err();
        assert_eq!(e.to_string(), "catalog: offer `savings_account`: weight for unknown feature `savings_balnce_k`");

        assert!(matches!(parse_catalog("{").unwrap_err(), CatalogError::Json { line: 1, .. }));
    }
}
