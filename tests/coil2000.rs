//! A reduced `CoIL` 2000 run (2,000 rows, 2 folds) through the example's own
//! code, plus the test-file path with and without a CARAVAN column.

#[path = "../examples/coil2000/chart.rs"]
mod chart;
#[allow(dead_code)]
#[path = "../examples/coil2000/data.rs"]
mod data;
#[path = "../examples/coil2000/experiment.rs"]
mod experiment;
#[path = "../examples/coil2000/nbo.rs"]
mod nbo;
#[path = "../examples/coil2000/summary.rs"]
mod summary;

use std::path::PathBuf;

use experiment::{Options, Report};
use tactful::proxy_audit::AuditParams;
use tactful::train::TrainParams;
use tactful::{Sensitivity, Weights};

fn train_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/coil2000/train.csv")
}

fn options(test: Option<PathBuf>) -> Options {
    Options {
        train: train_file(),
        test,
        folds: 2,
        seed: 7,
        select: 200,
        max_rows: Some(2000),
        params: TrainParams { l2_penalty: 0.3, ..TrainParams::default() },
        audit: AuditParams::default(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tactful-coil-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn assert_guarded(report: &Report) {
    let schema = &report.catalog.schema;
    for offer in &report.catalog.offers {
        let Weights::ByName(w) = &offer.model.weights else { panic!("trained weights are by name") };
        for name in w.keys() {
            let f = &schema.features[schema.index_of(name).unwrap()];
            assert!(
                !matches!(f.sensitivity, Sensitivity::Special(_) | Sensitivity::LifeEvent(_)),
                "{}: weighs sensitive feature {name}",
                offer.id
            );
        }
    }
}

#[test]
fn reduced_cross_validation_ranks_well_with_the_guard_on() {
    let report = experiment::run(&options(None)).unwrap();
    let result = |name: &str| report.task1.results.iter().find(|s| s.model == name).unwrap();
    let guarded = result("guarded");
    assert!(guarded.auc.unwrap() > 0.6, "guarded AUC {:?}", guarded.auc);
    assert_eq!(guarded.auc_per_split.len(), 2);
    assert!(guarded.found > 1.5 * result("random (expected)").found);
    assert!(result("all features").auc.unwrap() > 0.6);

    assert_guarded(&report);
    assert!(report.catalog.schema.index_of("MOSTYPE=20").is_some());

    let overall = &report.task2.overall;
    assert_eq!(report.task2.products.len(), 22);
    assert_eq!(overall[0].cases, overall[2].cases);
    assert!(overall[0].mrr > overall[2].mrr, "guarded {:?} vs popularity {:?}", overall[0], overall[2]);

    let audit = &report.proxy_audit;
    assert_eq!(audit.product.as_str(), "caravan");
    assert!(audit.rows.iter().all(|r| r.associations.iter().all(|a| (0.0..=1.0).contains(&a.eta2))));
    assert!(audit.rows.windows(2).all(|w| w[0].score >= w[1].score));

    let text = summary::Summary(&report).to_string();
    assert!(text.contains("Task 1") && text.contains("Task 2") && text.contains("Proxy audit"));
    assert!(serde_json::to_string(&report).unwrap().contains("\"task2\""));

    let png = scratch("gains.png");
    chart::draw(&report, &png).unwrap();
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn a_test_file_with_or_without_caravan_is_evaluated() {
    let text = std::fs::read_to_string(train_file()).unwrap();
    let rows: Vec<&str> = text.lines().skip(2001).take(600).collect();
    // Headerless and tab-separated, without the CARAVAN column.
    let unlabelled: String = rows
        .iter()
        .map(|r| {
            let fields: Vec<&str> = r.split(',').collect();
            fields[..85].join("\t") + "\n"
        })
        .collect();
    let path = scratch("eval.tsv");
    std::fs::write(&path, unlabelled).unwrap();
    let report = experiment::run(&options(Some(path))).unwrap();
    assert_eq!(report.task1.holders, 0);
    assert_eq!(report.task1.selected_rows.len(), 200);
    assert_eq!(report.task2.products.len(), 21);
    assert_guarded(&report);

    // With a header and CARAVAN: evaluated.
    let labelled: String = text.lines().take(1).chain(rows.iter().copied()).map(|l| l.to_owned() + "\n").collect();
    let path = scratch("eval.csv");
    std::fs::write(&path, labelled).unwrap();
    let report = experiment::run(&options(Some(path))).unwrap();
    assert!(report.task1.holders > 0);
    assert_eq!(report.task1.selected, 200);
    assert_eq!(report.task2.products.len(), 22);
}

#[test]
fn bad_files_say_where() {
    let path = scratch("bad.csv");
    let header = data::COLUMNS.join(",");
    let mut row = vec!["1"; 85];
    row[3] = "x";
    std::fs::write(&path, format!("{header}\n{}\n", row.join(","))).unwrap();
    let err = data::load(&path).unwrap_err().to_string();
    assert!(err.contains(":2, column `MGEMLEEF`"), "{err}");

    std::fs::write(&path, "MOSTYPE,MAANTHUI\n1,2\n").unwrap();
    let err = data::load(&path).unwrap_err().to_string();
    assert!(err.contains("no column `MGEMOMV`"), "{err}");

    let mut opts = options(Some(path));
    opts.test = None;
    opts.train = scratch("missing.csv");
    assert!(experiment::run(&opts).is_err());
}
