//! `CoIL` 2000 data: the 85 attribute columns, their training schema (with
//! and without sensitivities), the 22 products, and a CSV loader that
//! names the file, line and column of anything it cannot read.

use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use tactful::train::{Column, Level, TrainingSchema};
use tactful::{LifeEvent, Sensitivity, SpecialCategory};

/// Attribute columns 1–85, in the original order.
pub const COLUMNS: [&str; 85] = [
    "MOSTYPE", "MAANTHUI", "MGEMOMV", "MGEMLEEF", "MOSHOOFD", "MGODRK", "MGODPR", "MGODOV", "MGODGE", "MRELGE",
    "MRELSA", "MRELOV", "MFALLEEN", "MFGEKIND", "MFWEKIND", "MOPLHOOG", "MOPLMIDD", "MOPLLAAG", "MBERHOOG", "MBERZELF",
    "MBERBOER", "MBERMIDD", "MBERARBG", "MBERARBO", "MSKA", "MSKB1", "MSKB2", "MSKC", "MSKD", "MHHUUR", "MHKOOP",
    "MAUT1", "MAUT2", "MAUT0", "MZFONDS", "MZPART", "MINKM30", "MINK3045", "MINK4575", "MINK7512", "MINK123M",
    "MINKGEM", "MKOOPKLA", "PWAPART", "PWABEDR", "PWALAND", "PPERSAUT", "PBESAUT", "PMOTSCO", "PVRAAUT", "PAANHANG",
    "PTRACTOR", "PWERKT", "PBROM", "PLEVEN", "PPERSONG", "PGEZONG", "PWAOREG", "PBRAND", "PZEILPL", "PPLEZIER",
    "PFIETS", "PINBOED", "PBYSTAND", "AWAPART", "AWABEDR", "AWALAND", "APERSAUT", "ABESAUT", "AMOTSCO", "AVRAAUT",
    "AAANHANG", "ATRACTOR", "AWERKT", "ABROM", "ALEVEN", "APERSONG", "AGEZONG", "AWAOREG", "ABRAND", "AZEILPL",
    "APLEZIER", "AFIETS", "AINBOED", "ABYSTAND",
];

/// The target column of the original challenge.
pub const CARAVAN: &str = "CARAVAN";

/// The 21 insurance lines (suffix of their P/A columns, description); the
/// 22nd product is the caravan policy.
pub const LINES: [(&str, &str); 21] = [
    ("WAPART", "private third-party insurance"),
    ("WABEDR", "third-party insurance for firms"),
    ("WALAND", "agricultural third-party insurance"),
    ("PERSAUT", "car policy"),
    ("BESAUT", "delivery van policy"),
    ("MOTSCO", "motorcycle/scooter policy"),
    ("VRAAUT", "lorry policy"),
    ("AANHANG", "trailer policy"),
    ("TRACTOR", "tractor policy"),
    ("WERKT", "agricultural machines policy"),
    ("BROM", "moped policy"),
    ("LEVEN", "life insurance"),
    ("PERSONG", "private accident insurance"),
    ("GEZONG", "family accidents insurance"),
    ("WAOREG", "disability insurance"),
    ("BRAND", "fire policy"),
    ("ZEILPL", "surfboard policy"),
    ("PLEZIER", "boat policy"),
    ("FIETS", "bicycle policy"),
    ("INBOED", "property insurance"),
    ("BYSTAND", "social security insurance"),
];

/// Product id of the caravan policy.
pub const CARAVAN_PRODUCT: &str = "caravan";

/// Product ids: the 21 lines in lower case, then `caravan`.
pub fn products() -> Vec<String> {
    LINES.iter().map(|(s, _)| s.to_lowercase()).chain([CARAVAN_PRODUCT.to_owned()]).collect()
}

/// Raw columns describing product `p`'s holding (none for the caravan).
pub fn product_columns(p: usize) -> Vec<String> {
    LINES.get(p).map(|(s, _)| vec![format!("P{s}"), format!("A{s}")]).unwrap_or_default()
}

const SUBTYPES: [&str; 41] = [
    "High income, expensive child",
    "Very important provincials",
    "High status seniors",
    "Affluent senior apartments",
    "Mixed seniors",
    "Career and childcare",
    "Dinkis (double income no kids)",
    "Middle class families",
    "Modern, complete families",
    "Stable family",
    "Family starters",
    "Affluent young families",
    "Young all-American family",
    "Junior cosmopolitan",
    "Senior cosmopolitans",
    "Students in apartments",
    "Fresh masters in the city",
    "Single youth",
    "Suburban youth",
    "Ethnically diverse",
    "Young urban have-nots",
    "Mixed apartment dwellers",
    "Young and rising",
    "Young, low educated",
    "Young seniors in the city",
    "Own home elderly",
    "Seniors in apartments",
    "Residential elderly",
    "Porchless seniors",
    "Religious elderly singles",
    "Low income catholics",
    "Mixed seniors",
    "Lower class large families",
    "Large family, employed child",
    "Village families",
    "Couples with teens",
    "Mixed small town dwellers",
    "Traditional families",
    "Large religious families",
    "Large family farms",
    "Mixed rurals",
];

const MAIN_TYPES: [&str; 10] = [
    "Successful hedonists",
    "Driven growers",
    "Average family",
    "Career loners",
    "Living well",
    "Cruising seniors",
    "Retired and religious",
    "Family with grown-ups",
    "Conservative families",
    "Farmers",
];

fn describe(name: &str) -> String {
    let share = |what: &str| format!("neighbourhood's share of {what}");
    let fixed = match name {
        "MAANTHUI" => "number of houses",
        "MGEMOMV" => "neighbourhood's average household size",
        "MGEMLEEF" => "neighbourhood's average age",
        "MINKGEM" => "neighbourhood's average income",
        "MKOOPKLA" => "neighbourhood's purchasing power class",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_owned();
    }
    let groups = [
        ("MGODRK", "Roman catholics"),
        ("MGODPR", "Protestants"),
        ("MGODOV", "other religions"),
        ("MGODGE", "people of no religion"),
        ("MRELGE", "married people"),
        ("MRELSA", "people living together"),
        ("MRELOV", "other relations"),
        ("MFALLEEN", "singles"),
        ("MFGEKIND", "households without children"),
        ("MFWEKIND", "households with children"),
        ("MOPLHOOG", "high education"),
        ("MOPLMIDD", "medium education"),
        ("MOPLLAAG", "lower education"),
        ("MBERHOOG", "high status"),
        ("MBERZELF", "entrepreneurs"),
        ("MBERBOER", "farmers"),
        ("MBERMIDD", "middle management"),
        ("MBERARBG", "skilled labourers"),
        ("MBERARBO", "unskilled labourers"),
        ("MSKA", "social class A"),
        ("MSKB1", "social class B1"),
        ("MSKB2", "social class B2"),
        ("MSKC", "social class C"),
        ("MSKD", "social class D"),
        ("MHHUUR", "rented houses"),
        ("MHKOOP", "home owners"),
        ("MAUT1", "1-car households"),
        ("MAUT2", "2-car households"),
        ("MAUT0", "households without a car"),
        ("MZFONDS", "national health service"),
        ("MZPART", "private health insurance"),
        ("MINKM30", "incomes under 30k"),
        ("MINK3045", "incomes 30-45k"),
        ("MINK4575", "incomes 45-75k"),
        ("MINK7512", "incomes 75-122k"),
        ("MINK123M", "incomes over 123k"),
    ];
    if let Some((_, what)) = groups.iter().find(|(n, _)| *n == name) {
        return share(what);
    }
    let line = |suffix: &str| LINES.iter().find(|(s, _)| *s == suffix).map(|(_, d)| *d);
    match (name.get(..1), name.get(1..).and_then(line)) {
        (Some("P"), Some(d)) => format!("{d} premium level"),
        (Some("A"), Some(d)) => format!("number of {d} contracts"),
        _ => name.to_owned(),
    }
}

/// The schema. `guarded`: religion (6–9) and the subtype levels that name
/// a religion or ethnicity are `special`, household composition (10–15) is
/// a `life_event(family_status)` signal; otherwise every column is
/// ordinary (what a model built without the guard would use).
pub fn schema(guarded: bool) -> TrainingSchema {
    let religion = Sensitivity::Special(SpecialCategory::Religion);
    let ethnicity = Sensitivity::Special(SpecialCategory::Ethnicity);
    let family = Sensitivity::LifeEvent(LifeEvent::FamilyStatus);
    let levels = |names: &[&str], prefix: &str, special: &[(i64, Sensitivity)]| -> Vec<Level> {
        (1..)
            .zip(names)
            .map(|(code, name)| {
                let level = Level::new(code, &format!("{prefix}: {name}"));
                match special.iter().find(|(c, _)| *c == code) {
                    Some(&(_, s)) if guarded => level.sensitivity(s),
                    _ => level,
                }
            })
            .collect()
    };
    let columns = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, &name)| match name {
            "MOSTYPE" => Column::categorical(
                name,
                "customer subtype",
                levels(
                    &SUBTYPES,
                    "customer subtype",
                    &[(20, ethnicity), (30, religion), (31, religion), (39, religion)],
                ),
            ),
            "MOSHOOFD" => Column::categorical(
                name,
                "customer main type",
                levels(&MAIN_TYPES, "customer main type", &[(7, religion)]),
            ),
            _ => {
                let column = Column::numeric(name, &describe(name));
                match i + 1 {
                    6..=9 if guarded => column.sensitivity(religion),
                    10..=15 if guarded => column.sensitivity(family),
                    _ => column,
                }
            }
        })
        .collect();
    TrainingSchema::new(columns)
}

/// Why a CSV file cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file cannot be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has no data row.
    Empty(PathBuf),
    /// A header lacks a required column.
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A row has the wrong number of fields.
    FieldCount {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A field is not a finite number.
    Value {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The column.
        column: String,
        /// The text found.
        text: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            LoadError::Empty(path) => write!(f, "{}: no data row", path.display()),
            LoadError::MissingColumn { path, column } => {
                write!(f, "{}: the header has no column `{column}`", path.display())
            }
            LoadError::FieldCount { path, line, expected, found } => {
                write!(f, "{}:{line}: {found} fields, expected {expected}", path.display())
            }
            LoadError::Value { path, line, column, text } => {
                write!(f, "{}:{line}, column `{column}`: `{text}` is not a number", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded file: the 85 attributes, and the caravan target when present.
#[derive(Debug, Clone)]
pub struct Data {
    /// One row per customer, the 85 attribute columns in [`COLUMNS`] order.
    pub records: Array2<f64>,
    /// Caravan holders (`CARAVAN > 0`), if the file has that column.
    pub caravan: Option<Vec<bool>>,
}

fn split(line: &str, delimiter: Option<char>) -> Vec<&str> {
    match delimiter {
        Some(d) => line.split(d).map(str::trim).collect(),
        None => line.split_whitespace().collect(),
    }
}

/// Reads a `CoIL` file: comma-, tab- or space-separated, with a header
/// naming the columns (any order, extra columns ignored, `CARAVAN`
/// optional) or without one (columns in the original order, 85 or 86).
pub fn load(path: &Path) -> Result<Data, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.into(), source })?;
    parse(&text, path)
}

/// [`load`] on text already read; `path` is only used in errors.
pub fn parse(text: &str, path: &Path) -> Result<Data, LoadError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
    let (first_no, first) = lines.next().ok_or_else(|| LoadError::Empty(path.into()))?;
    let delimiter = [',', '\t', ';'].into_iter().find(|&d| first.contains(d));
    let fields = split(first, delimiter);
    let has_header = fields.first().is_some_and(|f| f.parse::<f64>().is_err());
    // Positions of the 85 attributes and of CARAVAN among the fields.
    let (positions, caravan_at, width): (Vec<usize>, Option<usize>, usize) = if has_header {
        let find = |name: &str| fields.iter().position(|f| f.trim_matches('"').eq_ignore_ascii_case(name));
        let positions = COLUMNS
            .iter()
            .map(|&c| find(c).ok_or(LoadError::MissingColumn { path: path.into(), column: c }))
            .collect::<Result<_, _>>()?;
        (positions, find(CARAVAN), fields.len())
    } else {
        let caravan = (fields.len() == COLUMNS.len() + 1).then_some(COLUMNS.len());
        if fields.len() != COLUMNS.len() && caravan.is_none() {
            return Err(LoadError::FieldCount {
                path: path.into(),
                line: first_no,
                expected: COLUMNS.len(),
                found: fields.len(),
            });
        }
        ((0..COLUMNS.len()).collect(), caravan, fields.len())
    };
    let data_lines: Vec<(usize, &str)> =
        if has_header { lines.collect() } else { std::iter::once((first_no, first)).chain(lines).collect() };
    if data_lines.is_empty() {
        return Err(LoadError::Empty(path.into()));
    }
    let mut records = Array2::zeros((data_lines.len(), COLUMNS.len()));
    let mut caravan = caravan_at.map(|_| Vec::with_capacity(data_lines.len()));
    for (row, &(line, text)) in data_lines.iter().enumerate() {
        let fields = split(text, delimiter);
        if fields.len() != width {
            return Err(LoadError::FieldCount { path: path.into(), line, expected: width, found: fields.len() });
        }
        let number = |at: usize, column: &str| {
            let text = fields[at];
            text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| LoadError::Value {
                path: path.into(),
                line,
                column: column.to_owned(),
                text: text.to_owned(),
            })
        };
        for (j, (&at, &name)) in positions.iter().zip(&COLUMNS).enumerate() {
            records[[row, j]] = number(at, name)?;
        }
        if let (Some(at), Some(c)) = (caravan_at, caravan.as_mut()) {
            c.push(number(at, CARAVAN)? > 0.0);
        }
    }
    Ok(Data { records, caravan })
}
