//! The `score` tool: golden decisions for the sample customers, one output
//! line per input line whatever the input, exit statuses, and flat memory
//! on a million lines (ignored by default).
//!
//! Regenerate the golden file after a deliberate change with
//! `TACTFUL_BLESS=1 cargo test --release --test score_tool`, and check the
//! diff: each sample customer must still demonstrate its rule.

#[allow(dead_code)]
#[path = "../examples/score.rs"]
mod score;
mod synthetic;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{self, BufRead, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use proptest::prelude::*;
use serde_json::Value;
use tactful::batch::{self, BatchOptions, ErrorKind, JsonLinesSink, Record, Sink, Summary, VecSink};
use tactful::{Channel, Engine, EngineParams, Request};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data").join(name)
}

/// A `Write` whose bytes can be read after the tool has finished.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().map(|b| b.clone()).unwrap_or_default()).expect("UTF-8 output")
    }
}

struct Run {
    status: u8,
    stdout: String,
    stderr: String,
}

/// Runs the tool in-process with `args` after the program name and `stdin`.
fn run_with(args: &[&str], stdin: Box<dyn BufRead + Send>, stdout: Box<dyn Write + Send>, out: &Shared) -> Run {
    let mut stderr: Vec<u8> = Vec::new();
    let argv = std::iter::once(OsString::from("score")).chain(args.iter().map(OsString::from));
    let stdio = score::Stdio { stdin, stdout, stderr: &mut stderr, stderr_is_terminal: false };
    let status = score::run(argv, stdio);
    Run { status, stdout: out.text(), stderr: String::from_utf8(stderr).expect("UTF-8 stderr") }
}

fn run(args: &[&str], stdin: &str) -> Run {
    let out = Shared::default();
    run_with(args, Box::new(Cursor::new(stdin.as_bytes().to_vec())), Box::new(out.clone()), &out)
}

const NOW: &str = "2026-11-23T10:00:00Z";

fn catalog_full() -> String {
    data("catalog_full.json").display().to_string()
}

// ---------------------------------------------------------------- golden

/// Equal JSON, numbers within a relative 1e-9 (so that a benign change in
/// the last bits of a float does not fail the test).
fn same(expected: &Value, got: &Value, path: &str) -> Result<(), String> {
    match (expected, got) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
            let tolerance = 1e-9 * a.abs().max(b.abs()).max(1.0);
            if (a - b).abs() <= tolerance {
                Ok(())
            } else {
                Err(format!("{path}: expected {a}, got {b}"))
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{path}: expected {} items, got {}", a.len(), b.len()));
            }
            a.iter().zip(b).enumerate().try_for_each(|(i, (a, b))| same(a, b, &format!("{path}[{i}]")))
        }
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (BTreeSet<_>, BTreeSet<_>) = (a.keys().collect(), b.keys().collect());
            if ka != kb {
                return Err(format!("{path}: expected keys {ka:?}, got {kb:?}"));
            }
            a.iter().try_for_each(|(k, v)| same(v, &b[k], &format!("{path}.{k}")))
        }
        _ if expected == got => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {got}")),
    }
}

fn golden_run() -> Run {
    let customers = data("customers.jsonl").display().to_string();
    run(&["--catalog", &catalog_full(), "--customers", &customers, "--now", NOW, "--channel", "email", "--k", "3"], "")
}

#[test]
fn golden_decisions_match() {
    let got = golden_run();
    assert_eq!(got.status, 1, "the sample has bad lines: {}", got.stderr);
    assert!(got.stderr.starts_with("score: 23 lines read, 17 scored, 6 failed"), "{}", got.stderr);
    let expected_path = data("decisions.expected.jsonl");
    if std::env::var_os("TACTFUL_BLESS").is_some() {
        std::fs::write(&expected_path, &got.stdout).expect("write the golden file");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("the golden file");
    let input_lines = std::fs::read_to_string(data("customers.jsonl")).expect("customers").lines().count();
    assert_eq!(got.stdout.lines().count(), input_lines);
    assert_eq!(expected.lines().count(), input_lines, "golden file out of date: TACTFUL_BLESS=1 to regenerate");
    for (i, (e, g)) in expected.lines().zip(got.stdout.lines()).enumerate() {
        let (e, g): (Value, Value) =
            (serde_json::from_str(e).expect("golden JSON"), serde_json::from_str(g).expect("JSON"));
        if let Err(diff) = same(&e, &g, "") {
            panic!("line {}: {diff}\n(TACTFUL_BLESS=1 regenerates the golden file; check the change first)", i + 1);
        }
    }
}

/// Each sample customer demonstrates the rule it is named for.
#[test]
fn sample_customers_demonstrate_their_rules() {
    let out = golden_run().stdout;
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let by_id: BTreeMap<&str, &Value> = lines
        .iter()
        .filter_map(|d| d["customer"].as_str().filter(|_| d.get("status").is_some()).map(|c| (c, d)))
        .collect();
    let withheld = |customer: &str, offer: &str| -> Value {
        let d = by_id.get(customer).unwrap_or_else(|| panic!("no decision for {customer}"));
        d["withheld"]
            .as_array()
            .and_then(|w| w.iter().find(|w| w["offer"] == offer))
            .map_or(Value::Null, |w| w["reason"].clone())
    };
    let recommended = |customer: &str, offer: &str| -> bool {
        by_id[customer]["recommendations"].as_array().is_some_and(|r| r.iter().any(|r| r["offer"] == offer))
    };
    let masked = |customer: &str| -> Vec<&str> {
        by_id[customer]["masked_features"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let rule = |customer: &str, offer: &str| withheld(customer, offer)["rule"].as_str().unwrap_or("-").to_owned();

    // Mr. Gupta, four ways.
    assert_eq!(withheld("gupta-inferred", "nursery_loan")["found"], serde_json::json!(["inferred"]));
    assert_eq!(withheld("gupta-observed", "nursery_loan")["found"], serde_json::json!(["observed"]));
    assert_eq!(rule("gupta-declared-no-consent", "nursery_loan"), "life_event_use_not_consented");
    assert!(recommended("gupta-declared-consented", "nursery_loan"));
    assert!(masked("gupta-inferred").contains(&"expecting_child"));
    assert!(!masked("gupta-declared-consented").contains(&"expecting_child"));
    // Guard rule 3: baby-store spending drives the personal loan unless the
    // baby was declared with consent.
    assert_eq!(rule("gupta-inferred", "personal_loan"), "proxy_driven");
    assert_eq!(rule("ivanova-dense-features", "personal_loan"), "proxy_driven");
    assert_eq!(rule("gupta-declared-consented", "personal_loan"), "-");
    // Guard rule 1 without any signal, and a declared, consented event.
    assert_eq!(withheld("novak-distress-declared", "joint_account")["found"], serde_json::json!([]));
    assert!(recommended("tanaka-family-declared", "joint_account"));
    assert!(!masked("tanaka-family-declared").contains(&"household_size"));
    // Guard rule 2: special features are always masked.
    assert!(by_id.keys().all(|c| masked(c).contains(&"religion_code")));
    // Guard rule 4: each provenance protects.
    for (customer, vulnerability, provenance) in [
        ("novak-distress-declared", "financial_distress", "declared"),
        ("okafor-gambling-observed", "gambling", "observed"),
        ("lindqvist-job-loss-inferred", "job_loss", "inferred"),
    ] {
        let r = withheld(customer, "personal_loan");
        assert_eq!(
            (r["rule"].as_str(), r["vulnerability"].as_str(), r["provenance"].as_str()),
            (Some("unsuitable"), Some(vulnerability), Some(provenance))
        );
    }
    // Contact rules.
    assert_eq!(by_id["moreau-opted-out"]["status"], "opted_out");
    assert_eq!(by_id["silva-sms-only"]["status"], "channel_not_consented");
    assert_eq!(by_id["kowalski-cap-reached"]["status"], "frequency_cap_reached");
    assert_eq!(rule("kowalski-cap-reached", "savings_account"), "frequency_cap");
    assert_eq!(
        (
            by_id["haddad-cap-partly-used"]["effective_k"].as_u64(),
            by_id["haddad-cap-partly-used"]["recommendations"].as_array().map(Vec::len)
        ),
        (Some(2), Some(2))
    );
    assert_eq!(rule("gupta-inferred", "travel_insurance"), "cooldown");
    assert_eq!(rule("brennan-rested", "savings_account"), "rested");
    assert!(recommended("brennan-rested", "travel_insurance"), "the cooldown is over");
    assert!(recommended("brennan-rested", "loyalty_fee_waiver"), "an acceptance restarts the rest count");
    assert_eq!(rule("gupta-inferred", "mortgage_review"), "channel_not_offered");
    // Eligibility.
    assert_eq!(rule("dubois-student", "gold_card_upgrade"), "too_young");
    assert_eq!(rule("dubois-student", "loyalty_fee_waiver"), "missing_required_holding");
    assert_eq!(rule("ferrari-retired", "mortgage_review"), "too_old");
    assert_eq!(rule("ferrari-retired", "personal_loan"), "excluded_holding");
    assert_eq!(rule("anon-age-unknown", "car_insurance"), "age_unknown");
    assert_eq!(rule("novak-distress-declared", "breakdown_cover"), "missing_base_product");
    assert_eq!(rule("gupta-inferred", "car_insurance"), "already_held");

    // Between them the sample customers hit every withholding rule.
    let rules: BTreeSet<String> = by_id
        .values()
        .flat_map(|d| d["withheld"].as_array().into_iter().flatten())
        .filter_map(|w| w["reason"]["rule"].as_str().map(str::to_owned))
        .collect();
    let every = [
        "already_held",
        "missing_base_product",
        "missing_required_holding",
        "excluded_holding",
        "too_young",
        "too_old",
        "age_unknown",
        "opted_out",
        "channel_not_consented",
        "channel_not_offered",
        "frequency_cap",
        "cooldown",
        "rested",
        "life_event_not_declared",
        "life_event_use_not_consented",
        "proxy_driven",
        "unsuitable",
    ];
    assert_eq!(rules, every.iter().map(std::string::ToString::to_string).collect(), "rules covered");

    // And the bad lines name their line and problem.
    let errors: Vec<(u64, &str)> =
        lines.iter().filter_map(|l| Some((l.get("line")?.as_u64()?, l["error"]["kind"].as_str()?))).collect();
    assert_eq!(
        errors,
        [
            (5, "unknown_feature"),
            (11, "non_finite_number"),
            (12, "blank_line"),
            (18, "number_out_of_range"),
            (19, "unknown_field"),
            (23, "malformed_json")
        ]
    );
}

// ------------------------------------------------------------ exit status

fn good_lines(n: u64) -> String {
    let text = synthetic::lines(n * 2, 7);
    // Keep only lines that score.
    let engine = engine();
    let mut out = String::new();
    let scored = text
        .lines()
        .enumerate()
        .filter(|(i, l)| batch::score_line(engine, &request(), *i as u64 + 1, l.as_bytes()).is_ok())
        .take(n as usize);
    for (_, l) in scored {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[test]
fn all_scored_exits_0_and_keeps_order() {
    let input = good_lines(40);
    let r = run(&["--catalog", &catalog_full(), "--now", NOW, "--chunk-lines", "3", "--threads", "2"], &input);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let ids: Vec<String> =
        r.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["customer"].to_string()).collect();
    let expected: Vec<String> =
        input.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].to_string()).collect();
    assert_eq!(ids, expected);
    assert!(r.stderr.starts_with("score: 40 lines read, 40 scored, 0 failed in "), "{}", r.stderr);
}

#[test]
fn a_failed_line_exits_1_and_names_its_line() {
    let mut input = good_lines(3);
    input.insert_str(0, "{\"id\": \"x\"}\n");
    input.push_str("not json\n");
    let r = run(&["--catalog", &catalog_full(), "--now", NOW], &input);
    assert_eq!(r.status, 1);
    let out: Vec<Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.len(), 5);
    assert_eq!((out[0]["line"].as_u64(), out[0]["customer"].as_str()), (Some(1), Some("x")));
    assert_eq!(out[0]["error"]["kind"], "missing_field");
    assert_eq!((out[4]["line"].as_u64(), &out[4]["customer"]), (Some(5), &Value::Null));
    assert!(
        r.stderr.contains("5 lines read, 3 scored, 2 failed (malformed_json: 1, missing_field: 1; first at line 1)"),
        "{}",
        r.stderr
    );
}

#[test]
fn empty_input_exits_0() {
    let r = run(&["--catalog", &catalog_full(), "--now", NOW], "");
    assert_eq!((r.status, r.stdout.as_str()), (0, ""));
    assert!(r.stderr.starts_with("score: 0 lines read, 0 scored, 0 failed"), "{}", r.stderr);
}

#[test]
fn usage_and_catalog_errors_exit_2_without_output() {
    let line = good_lines(1);
    let r = run(&["--catalog", &catalog_full()], &line);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("--now"), "{}", r.stderr);
    let r = run(&["--catalog", &catalog_full(), "--now", "tomorrow"], &line);
    assert_eq!(r.status, 2);
    let r = run(&["--catalog", &catalog_full(), "--now", NOW, "--channel", "fax"], &line);
    assert_eq!(r.status, 2);
    let r = run(&["--catalog", &catalog_full(), "--now", NOW, "--k", "0"], &line);
    assert_eq!(r.status, 2);
    let r = run(&["--catalog", "/nonexistent/catalog.json", "--now", NOW], &line);
    assert_eq!(r.status, 2);
    let r = run(&["--catalog", &catalog_full(), "--now", NOW, "--customers", "/nonexistent/c.jsonl"], &line);
    assert_eq!(r.status, 2);

    let dir = std::env::temp_dir().join(format!("tactful-score-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let original = std::fs::read_to_string(data("catalog_full.json")).unwrap();
    for (name, bad, expected) in [
        (
            "weights.json",
            original.replace(r#""household_size": 0.6"#, r#""household_sise": 0.6"#),
            "offer `joint_account`: weight for unknown feature `household_sise`",
        ),
        (
            "channel.json",
            original.replace(r#"["branch", "phone"]"#, r#"["branch", "pigeon"]"#),
            "offers[10] (`mortgage_review`)",
        ),
        ("syntax.json", original.replace(r#""offers": ["#, r#""offers": [,"#), "not valid JSON"),
        (
            "age.json",
            original.replace(r#""max_age": 70"#, r#""max_age": 20"#),
            "offer `mortgage_review`: min_age 25 is above max_age 20",
        ),
    ] {
        assert_ne!(bad, original, "{name}");
        let path = dir.join(name);
        std::fs::write(&path, bad).unwrap();
        let r = run(&["--catalog", &path.display().to_string(), "--now", NOW], &line);
        assert_eq!(r.status, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(expected), "{name}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{name}");
    }
    let params = dir.join("params.json");
    std::fs::write(&params, r#"{"contact": {"frequency_cap": 0}}"#).unwrap();
    let r = run(&["--catalog", &catalog_full(), "--now", NOW, "--params", &params.display().to_string()], &line);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("contact.frequency_cap"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);

    let r = run(&["--help"], "");
    assert_eq!(r.status, 0);
    assert!(r.stdout.contains("Exit status"), "{}", r.stdout);
}

#[test]
fn params_file_and_output_file_are_used() {
    let dir = std::env::temp_dir().join(format!("tactful-score-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let params = dir.join("params.json");
    std::fs::write(&params, r#"{"explain": {"max_contributions": 1}}"#).unwrap();
    let output = dir.join("decisions.jsonl");
    let r = run(
        &[
            "--catalog",
            &catalog_full(),
            "--now",
            NOW,
            "--params",
            &params.display().to_string(),
            "--output",
            &output.display().to_string(),
        ],
        &good_lines(5),
    );
    assert_eq!((r.status, r.stdout.as_str()), (0, ""), "{}", r.stderr);
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written.lines().count(), 5);
    for l in written.lines() {
        let d: Value = serde_json::from_str(l).unwrap();
        for r in d["recommendations"].as_array().unwrap() {
            assert!(r["explanation"]["contributions"].as_array().unwrap().len() <= 1);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Fails every write after `ok` bytes.
struct FailingWriter {
    ok: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "pipe closed"));
        }
        let n = buf.len().min(self.ok);
        self.ok -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Fails after `ok` bytes.
struct FailingReader {
    inner: Cursor<Vec<u8>>,
    ok: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.ok);
        let n = self.inner.read(&mut buf[..n])?;
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn io_failures_part_way_exit_3() {
    let input = good_lines(30);
    let out = Shared::default();
    let r = run_with(
        &["--catalog", &catalog_full(), "--now", NOW, "--chunk-lines", "4"],
        Box::new(Cursor::new(input.clone().into_bytes())),
        Box::new(FailingWriter { ok: 10_000 }),
        &out,
    );
    assert_eq!(r.status, 3);
    assert!(r.stderr.contains("writing the decisions failed after"), "{}", r.stderr);

    let reader = FailingReader { inner: Cursor::new(input.into_bytes()), ok: 5_000 };
    let r = run_with(
        &["--catalog", &catalog_full(), "--now", NOW, "--chunk-lines", "2"],
        Box::new(io::BufReader::with_capacity(64, reader)),
        Box::new(out.clone()),
        &out,
    );
    assert_eq!(r.status, 3);
    assert!(r.stderr.contains("reading the customers failed after"), "{}", r.stderr);
    assert!(r.stdout.lines().count() >= 2, "the lines before the failure are written");
}

// ------------------------------------------------------- never loses a line

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let text = std::fs::read_to_string(data("catalog_full.json")).expect("catalog");
        batch::load_engine(&text, EngineParams::default()).expect("valid catalog")
    })
}

fn request() -> Request {
    Request { now: NOW.parse().expect("time"), channel: Channel::Email, k: 3 }
}

fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u64..1000).prop_map(|seed| {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
            synthetic::customer_line(seed, &mut rng).into_bytes()
        }),
        1 => Just(Vec::new()),
        1 => Just(b"   \t".to_vec()),
        1 => Just(b"{\"id\": \"t\", \"features\": {\"owns_car\": \"NaN\"}}".to_vec()),
        1 => Just(b"{\"id\": \"t\", \"features\": [1e999]}".to_vec()),
        1 => Just(b"{\"id\": 1}\r".to_vec()),
        1 => Just(vec![0xff, 0xfe, b'{']),
        2 => proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..60),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Output line count = input line count, numbered in order, for any mix
    /// of good and bad lines, any chunking.
    #[test]
    fn never_loses_a_line(
        lines in proptest::collection::vec(line_strategy(), 0..40),
        trailing_newline in any::<bool>(),
        chunk_lines in 1usize..9,
        max_line_bytes in prop_oneof![Just(usize::MAX), 20usize..400],
    ) {
        let mut input = lines.join(&b'\n');
        if trailing_newline && !lines.is_empty() {
            input.push(b'\n');
        }
        // What a reader of the file counts as its lines.
        let expected = if input.is_empty() { 0 } else { input.split(|&b| b == b'\n').count() - usize::from(input.ends_with(b"\n")) };
        let options = BatchOptions { chunk_lines, max_line_bytes, ..BatchOptions::default() };

        let mut sink = VecSink::default();
        let summary = batch::score_stream(&input[..], engine(), &request(), &options, &mut sink).unwrap();
        prop_assert_eq!(sink.records.len(), expected);
        prop_assert_eq!(summary.lines as usize, expected);
        prop_assert_eq!(summary.scored + summary.failed, summary.lines);
        for (i, r) in sink.records.iter().enumerate() {
            prop_assert_eq!(r.line, i as u64 + 1);
            if let Err(e) = &r.outcome {
                prop_assert_eq!(e.line, r.line);
            }
        }

        let mut out = Vec::new();
        batch::score_stream(&input[..], engine(), &request(), &options, JsonLinesSink::new(&mut out)).unwrap();
        let text = String::from_utf8(out).unwrap();
        prop_assert_eq!(text.lines().count(), expected);
        for (i, l) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap();
            prop_assert!(v.get("status").is_some() || v["line"].as_u64() == Some(i as u64 + 1), "line {}: {}", i + 1, l);
        }
    }
}

#[test]
fn overlong_lines_are_reported_not_kept() {
    let long = format!("{{\"id\": \"{}\"}}", "x".repeat(5000));
    let input = format!("{long}\n{}", good_lines(1));
    let options = BatchOptions { max_line_bytes: 1000, ..BatchOptions::default() };
    let mut sink = VecSink::default();
    let summary = batch::score_stream(input.as_bytes(), engine(), &request(), &options, &mut sink).unwrap();
    assert_eq!((summary.lines, summary.scored), (2, 1));
    let e = sink.records[0].outcome.as_ref().unwrap_err();
    assert_eq!((e.line, e.error.kind), (1, ErrorKind::LineTooLong));
}

/// The same input gives byte-identical output with 1 or 2 threads and any
/// chunk size.
#[test]
fn output_is_deterministic() {
    let input = synthetic::lines(500, 3);
    let mut outputs = Vec::new();
    for (threads, chunk_lines) in [(1, 1024), (2, 7), (2, 1024)] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let options = BatchOptions { chunk_lines, ..BatchOptions::default() };
        let mut out = Vec::new();
        pool.install(|| {
            batch::score_stream(input.as_bytes(), engine(), &request(), &options, JsonLinesSink::new(&mut out))
        })
        .unwrap();
        outputs.push(out);
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

// --------------------------------------------------------- flat memory

/// Peak resident memory of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts output lines and notes the peak memory after the warm-up.
struct Meter {
    bytes: u64,
    newlines: u64,
    peak_after_warmup: Option<u64>,
}

impl Sink for Meter {
    type Item = Vec<u8>;

    fn prepare(record: Record) -> Vec<u8> {
        <JsonLinesSink<io::Sink> as Sink>::prepare(record)
    }

    fn write(&mut self, item: Vec<u8>) -> io::Result<()> {
        self.bytes += item.len() as u64;
        self.newlines += item.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(())
    }

    fn chunk_done(&mut self, summary: &Summary) -> io::Result<()> {
        if summary.lines >= 100_000 && self.peak_after_warmup.is_none() {
            self.peak_after_warmup = peak_rss_kib();
        }
        Ok(())
    }
}

/// Streams a million generated lines; the peak memory after the first
/// 100,000 lines must not grow by more than 16 MiB by the end.
/// `cargo test --release --test score_tool -- --ignored --nocapture`
#[test]
#[ignore = "streams a million lines (about a minute)"]
fn a_million_lines_in_flat_memory() {
    const N: u64 = 1_000_000;
    let reader = io::BufReader::with_capacity(1 << 16, synthetic::Generator::new(N, 11));
    let mut meter = Meter { bytes: 0, newlines: 0, peak_after_warmup: None };
    let started = std::time::Instant::now();
    let summary = batch::score_stream(reader, engine(), &request(), &BatchOptions::default(), &mut meter).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let (warm, end) = (meter.peak_after_warmup.expect("VmHWM"), peak_rss_kib().expect("VmHWM"));
    println!(
        "{N} lines ({}) -> {} output bytes in {elapsed:.1} s ({:.0} lines/s); peak RSS {} KiB after 100k lines, {} KiB at the end",
        summary,
        meter.bytes,
        N as f64 / elapsed,
        warm,
        end
    );
    assert_eq!((summary.lines, meter.newlines), (N, N));
    assert!(end - warm < 16 * 1024, "memory grew from {warm} KiB to {end} KiB");
}
