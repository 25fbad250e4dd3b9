//! The training schema (raw columns, numeric or categorical) and the
//! encoder that expands it into the engine's [`FeatureSchema`]: one feature
//! per numeric column, one 0/1 feature per categorical level (full one-hot,
//! so that a sensitive level can be masked on its own).

use std::collections::HashSet;
use std::ops::Range;

use ndarray::{Array2, ArrayView2};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::schema::{FeatureSchema, FeatureSpec, Sensitivity};

/// One level of a categorical column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// The integer code found in the data.
    pub code: i64,
    /// Noun phrase for explanations, e.g. `neighbourhood type: village families`.
    pub description: String,
    /// Overrides the column's sensitivity for this level (e.g. a subtype
    /// that names a religion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
}

impl Level {
    /// A level that inherits its column's sensitivity.
    pub fn new(code: i64, description: &str) -> Self {
        Level { code, description: description.to_owned(), sensitivity: None }
    }

    /// Sets this level's own sensitivity.
    #[must_use]
    pub fn sensitivity(mut self, sensitivity: Sensitivity) -> Self {
        self.sensitivity = Some(sensitivity);
        self
    }
}

/// How a raw column is encoded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ColumnKind {
    /// Used as is (ordinal codes included).
    #[default]
    Numeric,
    /// Integer codes, one-hot encoded into one feature per level, named
    /// `COLUMN=CODE`. A code not declared is an error.
    Categorical {
        /// The declared levels.
        levels: Vec<Level>,
    },
}

/// One raw column of the training records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Unique name.
    pub name: String,
    /// Noun phrase for explanations (numeric columns).
    pub description: String,
    /// Sensitivity of the column (and default of its levels).
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// Numeric (default) or categorical, e.g.
    /// `{"categorical": {"levels": [{"code": 1, "description": "…"}]}}`.
    #[serde(default)]
    pub kind: ColumnKind,
}

impl Column {
    /// An ordinary numeric column.
    pub fn numeric(name: &str, description: &str) -> Self {
        Column {
            name: name.to_owned(),
            description: description.to_owned(),
            sensitivity: Sensitivity::Ordinary,
            kind: ColumnKind::Numeric,
        }
    }

    /// An ordinary categorical column with the given levels.
    pub fn categorical(name: &str, description: &str, levels: Vec<Level>) -> Self {
        Column { kind: ColumnKind::Categorical { levels }, ..Column::numeric(name, description) }
    }

    /// Sets the column's sensitivity.
    #[must_use]
    pub fn sensitivity(mut self, sensitivity: Sensitivity) -> Self {
        self.sensitivity = sensitivity;
        self
    }
}

/// The raw columns of the training records, in record order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TrainingSchema {
    /// The columns.
    pub columns: Vec<Column>,
}

impl TrainingSchema {
    /// A schema from its columns, in record order.
    pub fn new(columns: Vec<Column>) -> Self {
        TrainingSchema { columns }
    }

    /// Position of the column called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Where one column's expanded features are.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Numeric(usize),
    /// First feature index and the sorted `(code, offset)` pairs.
    Categorical(usize, Vec<(i64, usize)>),
}

/// Expands raw records into the features of a [`FeatureSchema`]. Built
/// from (and serialised as) its validated [`TrainingSchema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TrainingSchema", into = "TrainingSchema")]
pub struct Encoder {
    columns: TrainingSchema,
    slots: Vec<Slot>,
    features: FeatureSchema,
}

impl TryFrom<TrainingSchema> for Encoder {
    type Error = TrainError;

    fn try_from(columns: TrainingSchema) -> Result<Self, TrainError> {
        Encoder::new(columns)
    }
}

impl From<Encoder> for TrainingSchema {
    fn from(encoder: Encoder) -> Self {
        encoder.columns
    }
}

impl Encoder {
    /// Validates the schema: at least one column, unique names (expanded
    /// names included), at least one level per categorical column and no
    /// repeated level code.
    pub fn new(columns: TrainingSchema) -> Result<Self, TrainError> {
        if columns.columns.is_empty() {
            return Err(TrainError::EmptySchema);
        }
        let mut column_names = HashSet::new();
        let mut names = HashSet::new();
        let mut features = Vec::new();
        let mut slots = Vec::with_capacity(columns.columns.len());
        let mut push = |spec: FeatureSpec, features: &mut Vec<FeatureSpec>| {
            if !names.insert(spec.name.clone()) {
                return Err(TrainError::DuplicateName { name: spec.name.to_string() });
            }
            features.push(spec);
            Ok(())
        };
        for column in &columns.columns {
            if !column_names.insert(column.name.as_str()) {
                return Err(TrainError::DuplicateName { name: column.name.clone() });
            }
            match &column.kind {
                ColumnKind::Numeric => {
                    slots.push(Slot::Numeric(features.len()));
                    let spec = FeatureSpec::new(&column.name, &column.description).sensitivity(column.sensitivity);
                    push(spec, &mut features)?;
                }
                ColumnKind::Categorical { levels } => {
                    if levels.is_empty() {
                        return Err(TrainError::NoLevels { column: column.name.clone() });
                    }
                    let first = features.len();
                    let mut codes: Vec<(i64, usize)> = levels.iter().enumerate().map(|(i, l)| (l.code, i)).collect();
                    codes.sort_unstable();
                    if let Some(pair) = codes.windows(2).find(|p| p[0].0 == p[1].0) {
                        return Err(TrainError::DuplicateLevel { column: column.name.clone(), code: pair[0].0 });
                    }
                    for level in levels {
                        let name = format!("{}={}", column.name, level.code);
                        let sensitivity = level.sensitivity.unwrap_or(column.sensitivity);
                        push(FeatureSpec::new(&name, &level.description).sensitivity(sensitivity), &mut features)?;
                    }
                    slots.push(Slot::Categorical(first, codes));
                }
            }
        }
        Ok(Encoder { columns, slots, features: FeatureSchema::new(features) })
    }

    /// The training schema.
    pub fn columns(&self) -> &TrainingSchema {
        &self.columns
    }

    /// The expanded features (baselines 0; training sets them to the means).
    pub fn features(&self) -> &FeatureSchema {
        &self.features
    }

    /// The expanded features of column `name`.
    pub fn feature_range(&self, name: &str) -> Option<Range<usize>> {
        let i = self.columns.index_of(name)?;
        Some(match &self.slots[i] {
            Slot::Numeric(j) => *j..*j + 1,
            Slot::Categorical(first, codes) => *first..*first + codes.len(),
        })
    }

    /// Encodes raw records (one row per customer, one column per schema
    /// column) into expanded features.
    pub fn encode(&self, records: ArrayView2<'_, f64>) -> Result<Array2<f64>, TrainError> {
        let expected = self.columns.columns.len();
        if records.ncols() != expected {
            return Err(TrainError::ColumnCount { expected, found: records.ncols() });
        }
        let mut out = Array2::zeros((records.nrows(), self.features.len()));
        for (row, (raw, mut encoded)) in records.rows().into_iter().zip(out.rows_mut()).enumerate() {
            for ((slot, column), &value) in self.slots.iter().zip(&self.columns.columns).zip(raw) {
                if !value.is_finite() {
                    return Err(TrainError::NonFinite { row, column: column.name.clone(), value });
                }
                match slot {
                    Slot::Numeric(j) => encoded[*j] = value,
                    Slot::Categorical(first, codes) => {
                        let unknown = || TrainError::UnknownLevel { row, column: column.name.clone(), value };
                        // Codes are integers; a fractional value is no level.
                        if value.fract() != 0.0 || value.abs() > 9.0e15 {
                            return Err(unknown());
                        }
                        let code = value as i64;
                        let k = codes.binary_search_by_key(&code, |&(c, _)| c).map_err(|_| unknown())?;
                        encoded[*first + codes[k].1] = 1.0;
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SpecialCategory;
    use ndarray::array;

    fn schema() -> TrainingSchema {
        TrainingSchema::new(vec![
            Column::numeric("age", "age"),
            Column::categorical(
                "type",
                "type",
                vec![
                    Level::new(3, "three"),
                    Level::new(1, "one").sensitivity(Sensitivity::Special(SpecialCategory::Religion)),
                ],
            ),
        ])
    }

    #[test]
    fn one_hot_follows_declared_level_order() {
        let encoder = Encoder::new(schema()).unwrap();
        let names: Vec<&str> = encoder.features().features.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["age", "type=3", "type=1"]);
        assert_eq!(encoder.features().features[2].sensitivity, Sensitivity::Special(SpecialCategory::Religion));
        let x = encoder.encode(array![[40.0, 1.0], [50.0, 3.0]].view()).unwrap();
        assert_eq!(x, array![[40.0, 0.0, 1.0], [50.0, 1.0, 0.0]]);
        assert_eq!(encoder.feature_range("type"), Some(1..3));
    }

    #[test]
    fn bad_values_name_row_and_column() {
        let encoder = Encoder::new(schema()).unwrap();
        let err = encoder.encode(array![[40.0, 1.0], [50.0, 2.0]].view()).unwrap_err();
        assert_eq!(err, TrainError::UnknownLevel { row: 1, column: "type".into(), value: 2.0 });
        let err = encoder.encode(array![[f64::NAN, 1.0]].view()).unwrap_err();
        assert!(matches!(err, TrainError::NonFinite { row: 0, ref column, .. } if column == "age"));
        assert!(matches!(encoder.encode(array![[1.0]].view()), Err(TrainError::ColumnCount { expected: 2, found: 1 })));
    }

    #[test]
    fn invalid_schemas_are_rejected() {
        let mut s = schema();
        s.columns.push(Column::numeric("type=3", "clash"));
        assert!(matches!(Encoder::new(s), Err(TrainError::DuplicateName { .. })));
        let s = TrainingSchema::new(vec![Column::categorical("c", "c", vec![Level::new(1, "a"), Level::new(1, "b")])]);
        assert!(matches!(Encoder::new(s), Err(TrainError::DuplicateLevel { code: 1, .. })));
        assert_eq!(Encoder::new(TrainingSchema::default()), Err(TrainError::EmptySchema));
    }

    #[test]
    fn encoder_round_trips_through_json() {
        let encoder = Encoder::new(schema()).unwrap();
        let json = serde_json::to_string(&encoder).unwrap();
        assert_eq!(serde_json::from_str::<Encoder>(&json).unwrap(), encoder);
    }
}
