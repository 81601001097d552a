//! Step 9: `split` — labeled reviews -> train / val / test (70/15/15) by iterative multilabel
//! stratification, as the seed's cell 9 does with iterstrat.
//!
//! Seed semantics: drop duplicate texts (keep the first), build the `y_*` targets from the labeler's
//! `is_*` columns, then `MultilabelStratifiedShuffleSplit(test_size=0.30, random_state=42)` and, on the
//! held-out 30%, `MultilabelStratifiedShuffleSplit(test_size=0.50, random_state=43)`: its train side is
//! `val`, its test side `test`. The stratification itself ([`iterstrat`]) and numpy's random generator
//! ([`numpy_rng`]) are reproduced draw for draw, so the rows land where iterstrat puts them.
//! Rows without text or with a missing label are skipped and counted in [`SplitReport`], never dropped
//! silently.

pub mod iterstrat;
pub mod numpy_rng;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polars::prelude::{Column, CsvReadOptions, DataFrame, DataType, IdxCa, IdxSize, ParquetReader, SerReader};

use crate::moderation::{Label, LABELS, LABEL_COLUMNS, TARGETS};
use crate::params::{self, ParamError};
use iterstrat::{multilabel_stratified_shuffle_split, LabelMatrix};

/// File name of the saved split (seed: `labeled_reviews_ml_ready.parquet` under OUT_DIR).
pub const ML_READY_FILE: &str = "labeled_reviews_ml_ready.parquet";

/// Parameters of [`split`], with the seed's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitParams {
    /// Name of the text column.
    pub text_column: String,
    /// Held-out share of the first split (seed: 0.30).
    pub test_size: f64,
    /// Seed of the first split (seed: 42).
    pub seed: u32,
    /// Share of the held-out part that becomes `test` (seed: 0.50; the rest is `val`).
    pub test_share_of_holdout: f64,
    /// Seed of the second split (seed: 43).
    pub holdout_seed: u32,
    /// Order of the target columns in the label matrix given to the stratifier. It decides how ties
    /// between labels are broken, so it is the seed's order:
    /// `y_ads, y_irrelevant, y_non_visit_rant, y_spam, y_relevant`.
    pub stratify_order: Vec<String>,
}

impl Default for SplitParams {
    fn default() -> Self {
        SplitParams {
            text_column: "text".into(),
            test_size: 0.30,
            seed: 42,
            test_share_of_holdout: 0.50,
            holdout_seed: 43,
            stratify_order: ["y_ads", "y_irrelevant", "y_non_visit_rant", "y_spam", "y_relevant"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl SplitParams {
    /// Checks the parameters before any work ([`crate::params`]): both shares strictly between 0 and 1,
    /// `stratify_order` target columns of [`TARGETS`], none twice.
    pub fn check(&self) -> Result<&Self, ParamError> {
        params::unit_open("test_size", self.test_size)?;
        params::unit_open("test_share_of_holdout", self.test_share_of_holdout)?;
        if self.stratify_order.is_empty() {
            return Err(ParamError::Empty { name: "stratify_order" });
        }
        params::known_names("stratify_order", &self.stratify_order, &TARGETS)?;
        Ok(self)
    }
}

/// One of the three parts of the split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// Training rows (70%).
    Train,
    /// Validation rows (15%): thresholds are chosen here.
    Val,
    /// Test rows (15%): reported, never tuned on.
    Test,
}

impl Part {
    /// All parts in display order.
    pub const ALL: [Part; 3] = [Part::Train, Part::Val, Part::Test];

    /// The value in the `split` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }

    /// Parses a `split` column value.
    pub fn parse(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for Part {
    /// The value in the `split` column (`train`, `val`, `test`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`split`] did with its input rows: nothing is dropped without a count here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SplitReport {
    /// Rows in the input DataFrame.
    pub n_input: usize,
    /// Rows skipped because the text was null or blank.
    pub n_missing_text: usize,
    /// Rows skipped because a label column was null (first such row index in `first_missing_label`).
    pub n_missing_label: usize,
    /// First input row (0-based) with a null label, if any.
    pub first_missing_label: Option<usize>,
    /// Rows dropped as duplicate texts (the first occurrence is kept).
    pub n_duplicates: usize,
    /// Labels without a single positive row (they train nothing useful; reported, not fatal).
    pub labels_without_positives: Vec<String>,
}

impl std::fmt::Display for SplitReport {
    /// One line of counts, then a warning line when some label has no positive row.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "split: {} input rows, {} without text, {} with a missing label",
            self.n_input, self.n_missing_text, self.n_missing_label
        )?;
        if let Some(row) = self.first_missing_label {
            write!(f, " (first at row {row})")?;
        }
        write!(f, ", {} duplicate texts dropped", self.n_duplicates)?;
        if !self.labels_without_positives.is_empty() {
            write!(f, "\nwarning: labels without any positive row: {}", self.labels_without_positives.join(", "))?;
        }
        Ok(())
    }
}

/// The split data: `text`, the five `y_*` Int32 targets, the `split` column ("train"/"val"/"test"),
/// plus the input's other columns; saved as `labeled_reviews_ml_ready.parquet`.
#[derive(Clone, Debug)]
pub struct MlReady {
    /// The table (row order: the de-duplicated input order).
    pub df: DataFrame,
    /// What happened to the input rows.
    pub report: SplitReport,
}

/// Reads a labeled table from a `.parquet` or `.csv` file (chosen by extension; CSV with a header).
pub fn read_table(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "parquet" => {
            let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            Ok(ParquetReader::new(f).finish().with_context(|| format!("reading parquet {}", path.display()))?)
        }
        "csv" => Ok(CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .with_context(|| format!("opening {}", path.display()))?
            .finish()
            .with_context(|| format!("reading CSV {}", path.display()))?),
        _ => bail!("{}: expected a .parquet or .csv file", path.display()),
    }
}

/// Splits the labeled reviews 70/15/15 like the seed (see the module doc).
///
/// Input: the labeler's DataFrame with the text column and the five `is_*` columns of
/// [`LABEL_COLUMNS`] (0/1 integers, floats or booleans); for each label the `y_*` column of [`TARGETS`]
/// or a column named like the label ([`LABELS`]) is accepted instead. Other columns are kept.
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-split-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// # let labeled = label_with_ckpt(&df, 400, 200, dir.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default())?.labeled;
/// let ml: MlReady = split(&labeled, &SplitParams::default())?;
/// let r = &ml.report; // every input row is kept or counted: blank texts, missing labels, duplicate texts
/// assert_eq!(ml.df.height() + r.n_missing_text + r.n_missing_label + r.n_duplicates, 400);
/// println!("{}", ml.report); // rows and positives per part
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn split(labeled: &DataFrame, params: &SplitParams) -> Result<MlReady> {
    params.check()?;
    let n = labeled.height();
    let texts = labeled
        .column(&params.text_column)
        .with_context(|| format!("text column {:?} is missing", params.text_column))?
        .str()
        .with_context(|| format!("text column {:?} is not a string column", params.text_column))?
        .clone();
    let mut flags: Vec<Vec<Option<bool>>> = Vec::with_capacity(LABELS.len());
    for i in 0..LABELS.len() {
        let name = [LABEL_COLUMNS[i], TARGETS[i], LABELS[i]]
            .into_iter()
            .find(|c| labeled.column(c).is_ok())
            .unwrap_or(LABEL_COLUMNS[i]);
        flags.push(crate::moderation::flag_column(labeled, name).with_context(|| {
            format!("reading label {:?} (column {}, {} or {})", LABELS[i], LABEL_COLUMNS[i], TARGETS[i], LABELS[i])
        })?);
    }
    let mut report = SplitReport { n_input: n, ..Default::default() };
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut keep: Vec<IdxSize> = Vec::with_capacity(n);
    for (i, t) in texts.iter().enumerate() {
        let Some(t) = t.filter(|t| !t.trim().is_empty()) else {
            report.n_missing_text += 1;
            continue;
        };
        if flags.iter().any(|f| f[i].is_none()) {
            report.n_missing_label += 1;
            report.first_missing_label.get_or_insert(i);
            continue;
        }
        if !seen.insert(t) {
            report.n_duplicates += 1;
            continue;
        }
        keep.push(i as IdxSize);
    }
    let mut df = labeled.take(&IdxCa::from_vec("idx".into(), keep.clone()))?;
    for i in 0..LABELS.len() {
        let y: Vec<i32> = keep.iter().map(|&r| flags[i][r as usize].unwrap() as i32).collect();
        if !y.iter().any(|&v| v == 1) {
            report.labels_without_positives.push(LABELS[i].to_string());
        }
        df.with_column(Column::new(TARGETS[i].into(), y))?;
    }
    if params.text_column != "text" {
        let t = df.column(&params.text_column)?.clone().with_name("text".into());
        df.with_column(t)?;
    }
    let order: Vec<usize> = params
        .stratify_order
        .iter()
        .map(|c| {
            let t = Label::target_of(c)?;
            Ok(TARGETS.iter().position(|x| *x == t).unwrap())
        })
        .collect::<Result<_>>()?;
    let m = keep.len();
    let mut data = Vec::with_capacity(m * order.len());
    for r in 0..m {
        for &j in &order {
            data.push(flags[j][keep[r] as usize].unwrap());
        }
    }
    let y = LabelMatrix { data, n_labels: order.len() };
    let parts = assign_parts(&y, params).with_context(|| format!("splitting {m} de-duplicated rows"))?;
    let parts_col: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
    df.with_column(Column::new("split".into(), parts_col))?;
    Ok(MlReady { df, report })
}

/// The pure part of [`split`]: the part of each row of a label matrix (two stratified shuffle splits).
pub fn assign_parts(y: &LabelMatrix, params: &SplitParams) -> Result<Vec<Part>> {
    let (_train, hold) = multilabel_stratified_shuffle_split(y, params.test_size, params.seed)?;
    let mut parts = vec![Part::Train; y.n_rows()];
    let yh = y.select(&hold);
    let (val, test) =
        multilabel_stratified_shuffle_split(&yh, params.test_share_of_holdout, params.holdout_seed)
            .context("splitting the held-out rows into val and test")?;
    for i in val {
        parts[hold[i]] = Part::Val;
    }
    for i in test {
        parts[hold[i]] = Part::Test;
    }
    Ok(parts)
}

impl MlReady {
    /// Wraps a DataFrame that already has `text`, the `y_*` targets and `split` (checks them).
    pub fn from_df(df: DataFrame) -> Result<Self> {
        df.column("text").context("ML-ready table has no `text` column")?.str().context("`text` is not a string column")?;
        let mut df = df;
        for t in TARGETS {
            let c = df.column(t).with_context(|| format!("ML-ready table has no {t:?} column"))?;
            let c = c.cast(&DataType::Int32)?;
            df.with_column(c)?;
        }
        let s = df.column("split").context("ML-ready table has no `split` column")?.str()?;
        for (i, v) in s.iter().enumerate() {
            match v {
                Some(v) if Part::parse(v).is_some() => {}
                other => bail!("ML-ready table, row {i}: split value {other:?} is not train/val/test"),
            }
        }
        let mut report = SplitReport { n_input: df.height(), ..Default::default() };
        for (i, t) in TARGETS.iter().enumerate() {
            if !df.column(t)?.i32()?.iter().any(|v| v == Some(1)) {
                report.labels_without_positives.push(LABELS[i].to_string());
            }
        }
        Ok(MlReady { df, report })
    }

    /// Reads a saved `labeled_reviews_ml_ready.parquet`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let df = ParquetReader::new(f).finish().with_context(|| format!("reading parquet {}", path.display()))?;
        Self::from_df(df).with_context(|| format!("in {}", path.display()))
    }

    /// Writes `out_dir/labeled_reviews_ml_ready.parquet` (creating the folder); returns the path.
    pub fn save(&self, out_dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = out_dir.as_ref();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(ML_READY_FILE);
        crate::output::write_parquet(&self.df, &path)?;
        Ok(path)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.df.height()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.df.height() == 0
    }

    /// The part of every row.
    pub fn parts(&self) -> Vec<Part> {
        let s = self.df.column("split").expect("checked").str().expect("checked");
        s.iter().map(|v| v.and_then(Part::parse).expect("checked")).collect()
    }

    /// Texts of one part, in table order.
    pub fn texts(&self, part: Part) -> Vec<&str> {
        let t = self.df.column("text").expect("checked").str().expect("checked");
        t.iter()
            .zip(self.parts())
            .filter(|(_, p)| *p == part)
            .map(|(t, _)| t.unwrap_or(""))
            .collect()
    }

    /// 0/1 targets of one label (name, `y_*` or `is_*` column) in one part, in table order.
    pub fn targets(&self, label: &str, part: Part) -> Result<Vec<i32>> {
        let col = Label::target_of(label)?;
        let y = self.df.column(col)?.i32()?;
        Ok(y.iter()
            .zip(self.parts())
            .filter(|(_, p)| *p == part)
            .map(|(v, _)| v.unwrap_or(0))
            .collect())
    }

    /// Rows per part.
    pub fn part_sizes(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for p in self.parts() {
            n[Part::ALL.iter().position(|q| *q == p).unwrap()] += 1;
        }
        n
    }

    /// Positive support of each label per part: columns `label, train, val, test, total`, plus a last
    /// row `rows` with the part sizes. Render it with the show module.
    pub fn supports(&self) -> Result<DataFrame> {
        let parts = self.parts();
        let mut names: Vec<String> = Vec::new();
        let mut cols: [Vec<i64>; 4] = Default::default();
        for (i, t) in TARGETS.iter().enumerate() {
            let y = self.df.column(t)?.i32()?;
            let mut c = [0i64; 3];
            for (v, p) in y.iter().zip(&parts) {
                if v == Some(1) {
                    c[Part::ALL.iter().position(|q| q == p).unwrap()] += 1;
                }
            }
            names.push(LABELS[i].to_string());
            for k in 0..3 {
                cols[k].push(c[k]);
            }
            cols[3].push(c.iter().sum());
        }
        let sizes = self.part_sizes();
        names.push("rows".into());
        for k in 0..3 {
            cols[k].push(sizes[k] as i64);
        }
        cols[3].push(self.len() as i64);
        let [a, b, c, d] = cols;
        Ok(DataFrame::new(
            names.len(),
            vec![
                Column::new("label".into(), names),
                Column::new("train".into(), a),
                Column::new("val".into(), b),
                Column::new("test".into(), c),
                Column::new("total".into(), d),
            ],
        )?)
    }
}
