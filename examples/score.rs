//! `score`: batch scoring from the command line.
//!
//! Reads customers as JSON lines (one customer per line), writes one line
//! per input line, in input order: the full decision as JSON, or an error
//! record naming the input line and the problem. A summary goes to stderr.
//!
//! ```text
//! cargo run --release --example score -- \
//!     --catalog examples/data/catalog.json --customers examples/data/customers.jsonl \
//!     --now 2026-11-23T10:00:00Z [--k 3] [--channel email] [--output decisions.jsonl]
//! ```
//!
//! Without `--customers` it reads stdin; without `--output` it writes stdout.
//! `--now` is required so that a run can be repeated with the same result.
//! Formats: `docs/FORMAT.md`.
//!
//! Exit status: 0 every line scored; 1 the run finished but some lines
//! failed (they have error records); 2 nothing was scored: bad arguments, or
//! a catalog, parameter file or input/output file that cannot be used;
//! 3 reading or writing failed part way (the output is incomplete).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use tactful::batch::{self, BatchOptions, JsonLinesSink, Record, Sink, Summary};
use tactful::{Channel, EngineParams, Request};

/// Every line was scored.
const EXIT_OK: u8 = 0;
/// Some lines failed and have error records; the rest were scored.
const EXIT_FAILED_LINES: u8 = 1;
/// Nothing was scored: bad arguments or unusable catalog, parameters or files.
const EXIT_USAGE: u8 = 2;
/// Reading or writing failed part way; the output is incomplete.
const EXIT_IO: u8 = 3;

/// Scores customers (JSON lines) against a catalog and writes one decision
/// per line (JSON lines).
#[derive(Debug, Parser)]
#[command(
    name = "score",
    version,
    after_help = "Exit status: 0 all lines scored; 1 some lines failed (see their error records); \
                  2 bad arguments or unusable catalog/files, nothing scored; 3 read/write failed part way.\n\
                  Formats: docs/FORMAT.md"
)]
struct Args {
    /// The catalog (JSON): feature schema and offers.
    #[arg(long, value_name = "CATALOG.json")]
    catalog: PathBuf,
    /// Customers, one JSON object per line [default: stdin].
    #[arg(long, value_name = "CUSTOMERS.jsonl")]
    customers: Option<PathBuf>,
    /// Where to write the decisions, one per line [default: stdout].
    #[arg(long, value_name = "DECISIONS.jsonl")]
    output: Option<PathBuf>,
    /// The decision time (RFC 3339, e.g. 2026-11-23T10:00:00Z); contact
    /// windows are measured back from it. Required, so runs are repeatable.
    #[arg(long, value_parser = parse_now)]
    now: DateTime<Utc>,
    /// At most this many offers per customer.
    #[arg(long, default_value_t = 3, value_parser = parse_k)]
    k: usize,
    /// The channel the offers will be made on: email, sms, phone, post, app,
    /// web or branch.
    #[arg(long, default_value = "email", value_parser = parse_channel)]
    channel: Channel,
    /// Engine parameters (JSON: contact policy, guard, explanations);
    /// defaults otherwise.
    #[arg(long, value_name = "PARAMS.json")]
    params: Option<PathBuf>,
    /// Worker threads; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Most customers scored per chunk (memory grows with it).
    #[arg(long, default_value_t = batch::DEFAULT_CHUNK_LINES)]
    chunk_lines: usize,
    /// Never show the progress line (shown by default when stderr is a
    /// terminal).
    #[arg(long)]
    no_progress: bool,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: expected an RFC 3339 time such as 2026-11-23T10:00:00Z"))
}

fn parse_k(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err("expected a whole number >= 1".to_owned()),
    }
}

fn parse_channel(s: &str) -> Result<Channel, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| "expected one of email, sms, phone, post, app, web, branch".to_owned())
}

/// Shows a progress line on stderr, at most four times a second.
struct Progress<'a, S> {
    inner: S,
    stderr: Option<&'a mut (dyn Write + Send)>,
    started: Instant,
    last: Instant,
}

impl<S: Sink> Sink for Progress<'_, S> {
    type Item = S::Item;

    fn prepare(record: Record) -> Self::Item {
        S::prepare(record)
    }

    fn write(&mut self, item: Self::Item) -> io::Result<()> {
        self.inner.write(item)
    }

    fn chunk_done(&mut self, summary: &Summary) -> io::Result<()> {
        self.inner.chunk_done(summary)?;
        if let Some(stderr) = self.stderr.as_deref_mut() {
            if self.last.elapsed() >= Duration::from_millis(250) {
                self.last = Instant::now();
                let rate = summary.lines as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                // Progress is best effort: a failure to show it is ignored.
                let _ = write!(
                    stderr,
                    "\r{} lines: {} scored, {} failed ({rate:.0} customers/s)\x1b[K",
                    summary.lines, summary.scored, summary.failed
                );
            }
        }
        Ok(())
    }
}

/// The tool's standard streams (the tests pass their own).
pub(crate) struct Stdio<'a> {
    /// Read when `--customers` is not given.
    pub(crate) stdin: Box<dyn BufRead + Send>,
    /// Written when `--output` is not given (and for `--help`).
    pub(crate) stdout: Box<dyn Write + Send>,
    /// Summary, progress and error messages.
    pub(crate) stderr: &'a mut (dyn Write + Send),
    /// Whether stderr is a terminal (progress is shown only then).
    pub(crate) stderr_is_terminal: bool,
}

/// Runs the tool with `args` (the program name first) and returns its exit
/// status.
pub(crate) fn run(args: impl IntoIterator<Item = OsString>, stdio: Stdio<'_>) -> u8 {
    let Stdio { stdin, mut stdout, stderr, stderr_is_terminal } = stdio;
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            // --help and --version go to stdout with status 0; usage errors
            // to stderr with status 2.
            let out: &mut dyn Write = if e.use_stderr() { &mut *stderr } else { &mut *stdout };
            let _ = write!(out, "{}", e.render());
            let _ = out.flush();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    macro_rules! fail {
        ($($arg:tt)*) => {{
            let _ = writeln!(stderr, "score: {}", format_args!($($arg)*));
            return EXIT_USAGE;
        }};
    }

    let catalog = match std::fs::read_to_string(&args.catalog) {
        Ok(text) => text,
        Err(e) => fail!("cannot read the catalog {}: {e}", args.catalog.display()),
    };
    let params = match &args.params {
        None => EngineParams::default(),
        Some(path) => match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|text| {
            serde_json::from_str::<EngineParams>(&text).map_err(|e| format!("not valid engine parameters: {e}"))
        }) {
            Ok(p) => p,
            Err(e) => fail!("{}: {e}", path.display()),
        },
    };
    let engine = match batch::load_engine(&catalog, params) {
        Ok(engine) => engine,
        Err(e) => fail!("{}: {e}", args.catalog.display()),
    };
    let request = Request { now: args.now, channel: args.channel, k: args.k };

    let input: Box<dyn BufRead + Send> = match &args.customers {
        None => stdin,
        Some(path) => match File::open(path) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 16, f)),
            Err(e) => fail!("cannot read the customers {}: {e}", path.display()),
        },
    };
    let output: Box<dyn Write + Send> = match &args.output {
        None => stdout,
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::with_capacity(1 << 16, f)),
            Err(e) => fail!("cannot write the decisions {}: {e}", path.display()),
        },
    };
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(args.threads).build() {
        Ok(pool) => pool,
        Err(e) => fail!("cannot start the worker threads: {e}"),
    };

    let options = BatchOptions { chunk_lines: args.chunk_lines, ..BatchOptions::default() };
    let show = !args.no_progress && stderr_is_terminal;
    let started = Instant::now();
    let mut sink =
        Progress { inner: JsonLinesSink::new(output), stderr: show.then_some(&mut *stderr), started, last: started };
    let result = pool.install(|| batch::score_stream(input, &engine, &request, &options, &mut sink));
    drop(sink);
    if show {
        let _ = write!(stderr, "\r\x1b[K");
    }
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(summary) => {
            let rate = summary.lines as f64 / elapsed.max(1e-9);
            let _ = writeln!(stderr, "score: {summary} in {elapsed:.2} s ({rate:.0} lines/s)");
            if summary.all_scored() {
                EXIT_OK
            } else {
                EXIT_FAILED_LINES
            }
        }
        Err(e) => {
            let _ = writeln!(stderr, "score: {e}");
            EXIT_IO
        }
    }
}

fn main() -> ExitCode {
    let mut stderr = io::stderr();
    let stdio = Stdio {
        stdin: Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        stdout: Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
        stderr_is_terminal: stderr.is_terminal(),
        stderr: &mut stderr,
    };
    ExitCode::from(run(std::env::args_os(), stdio))
}
