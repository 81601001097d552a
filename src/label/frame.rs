//! DataFrame in, DataFrame out: reading reviews from `load_df`'s frame, the seeded sample, the labeled
//! table's columns, and the seed's per-label summary counts.

use std::fmt;

use anyhow::{bail, Context, Result};
use polars::prelude::{Column, DataFrame, DataType};

use super::{LabelRecord, ReviewInput};
use crate::moderation::{Label, PerLabel};
use crate::rng::SplitMix64;

/// The seed's sampling seed (`random_state=42`).
pub const DEFAULT_SEED: u64 = 42;

/// Probability columns written next to the labels (null when the backend gives none).
pub const PROB_COLUMNS: [&str; 5] = ["llm_p_relevant", "llm_p_ads", "llm_p_irrelevant", "llm_p_non_visit", "llm_p_spam"];

/// Reads `text`, `business_name` and `category` from every row of `df`.
///
/// `text` is required (null -> ""). A missing `business_name` or `category` column is not an error: the
/// prompt gets "" and the returned warnings say so. `category` may be a list of strings (joined with
/// ", ") or a string column.
pub fn reviews_from_df(df: &DataFrame) -> Result<(Vec<ReviewInput>, Vec<String>)> {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let mut warnings = Vec::new();
    let text = df
        .column("text")
        .ok()
        .with_context(|| format!("the DataFrame has no `text` column (columns: {})", names.join(", ")))?;
    let texts = string_values(text).context("reading column `text`")?;
    let business = match df.column("business_name") {
        Ok(c) => string_values(c).context("reading column `business_name`")?,
        Err(_) => {
            warnings.push("no `business_name` column: the prompt gets an empty place name".to_string());
            vec![String::new(); df.height()]
        }
    };
    let category = match df.column("category") {
        Ok(c) => string_values(c).context("reading column `category`")?,
        Err(_) => {
            warnings.push("no `category` column: the prompt gets an empty category".to_string());
            vec![String::new(); df.height()]
        }
    };
    let reviews = texts
        .into_iter()
        .zip(business)
        .zip(category)
        .map(|((text, business_name), category)| ReviewInput { text, business_name, category })
        .collect();
    Ok((reviews, warnings))
}

/// Values of a string or list-of-strings column as strings (nulls -> "", lists joined with ", ").
fn string_values(col: &Column) -> Result<Vec<String>> {
    match col.dtype() {
        DataType::String => Ok(col.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect()),
        DataType::List(inner) if **inner == DataType::String => {
            let lists = col.list()?;
            let mut out = Vec::with_capacity(col.len());
            for i in 0..lists.len() {
                out.push(match lists.get_as_series(i) {
                    Some(s) => s.str()?.iter().flatten().collect::<Vec<_>>().join(", "),
                    None => String::new(),
                });
            }
            Ok(out)
        }
        DataType::Null => Ok(vec![String::new(); col.len()]),
        other => bail!("column `{}` has type {other}, expected a string or a list of strings", col.name()),
    }
}

/// A seeded sample of `min(n, len)` distinct row indices in `0..len` (a partial Fisher-Yates shuffle on the
/// crate's one RNG, [`crate::rng::SplitMix64`]): the same `(len, n, seed)` always gives the same sample, on
/// every platform.
pub fn sample_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    let n = n.min(len);
    let mut idx: Vec<usize> = (0..len).collect();
    SplitMix64::new(seed).shuffle_prefix(&mut idx, n);
    idx.truncate(n);
    idx
}

/// The manifest's columns (seed layout): `orig_index`, `text`, `business_name`, `category`.
pub fn manifest_frame(orig_index: &[u64], reviews: &[ReviewInput]) -> Result<DataFrame> {
    let cols = vec![
        Column::new("orig_index".into(), orig_index),
        Column::new("text".into(), reviews.iter().map(|r| r.text.as_str()).collect::<Vec<_>>()),
        Column::new("business_name".into(), reviews.iter().map(|r| r.business_name.as_str()).collect::<Vec<_>>()),
        Column::new("category".into(), reviews.iter().map(|r| r.category.as_str()).collect::<Vec<_>>()),
    ];
    Ok(DataFrame::new(orig_index.len(), cols)?)
}

/// The labeled table: manifest columns, the five label columns (0/1), rationale, gemma_raw,
/// parse_success, backend, model, guarded, and the `llm_p_*` probability columns.
pub fn records_to_frame(
    orig_index: &[u64],
    reviews: &[ReviewInput],
    records: &[LabelRecord],
    backend: &str,
    model: &str,
) -> Result<DataFrame> {
    anyhow::ensure!(orig_index.len() == reviews.len() && reviews.len() == records.len(), "length mismatch");
    let n = records.len();
    let mut cols = manifest_frame(orig_index, reviews)?.into_columns();
    for label in Label::ALL {
        let v: Vec<i32> = records.iter().map(|r| i32::from(r.labels.flags()[label])).collect();
        cols.push(Column::new(label.labeler_column().into(), v));
    }
    cols.push(Column::new("rationale".into(), records.iter().map(|r| r.labels.rationale.as_str()).collect::<Vec<_>>()));
    cols.push(Column::new("gemma_raw".into(), records.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>()));
    cols.push(Column::new("parse_success".into(), records.iter().map(|r| i32::from(r.labels.parse_success)).collect::<Vec<_>>()));
    cols.push(Column::new("backend".into(), vec![backend; n]));
    cols.push(Column::new("model".into(), vec![model; n]));
    cols.push(Column::new("guarded".into(), records.iter().map(|r| i32::from(r.guarded)).collect::<Vec<_>>()));
    for (label, name) in Label::ALL.into_iter().zip(PROB_COLUMNS) {
        let v: Vec<Option<f32>> = records.iter().map(|r| r.probs.map(|p| p[label])).collect();
        cols.push(Column::new(name.into(), v));
    }
    Ok(DataFrame::new(n, cols)?)
}

/// The seed's closing counts: how many reviews carry each label, parsed, guarded or failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSummary {
    /// Rows labeled.
    pub rows: usize,
    /// Positives per label column (`positives[Label::Ads]`: rows with `is_advertisement` = 1).
    pub positives: PerLabel<usize>,
    /// Rows with parse_success = 1.
    pub parsed: usize,
    /// Rows stopped by the guard.
    pub guarded: usize,
    /// Rows whose backend call failed (`<error: ...>` in gemma_raw).
    pub failed: usize,
}

impl LabelSummary {
    /// Counts from a labeled table (as written by [`records_to_frame`]).
    pub fn from_frame(df: &DataFrame) -> Result<Self> {
        let count = |name: &str| -> Result<usize> {
            Ok(df.column(name).with_context(|| format!("no `{name}` column"))?.i32()?.iter().flatten().filter(|v| *v != 0).count())
        };
        let mut positives = PerLabel::default();
        for label in Label::ALL {
            positives[label] = count(label.labeler_column())?;
        }
        let failed = df.column("gemma_raw")?.str()?.iter().flatten().filter(|s| s.starts_with("<error:")).count();
        Ok(Self { rows: df.height(), positives, parsed: count("parse_success")?, guarded: count("guarded")?, failed })
    }
}

impl fmt::Display for LabelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "labeled rows: {}", self.rows)?;
        let pct = |k: usize| if self.rows == 0 { 0.0 } else { 100.0 * k as f64 / self.rows as f64 };
        for (label, &pos) in self.positives.by_label() {
            let name = label.labeler_column();
            writeln!(f, "  {name:<22} 1: {:>6} ({:5.1}%)   0: {:>6}", pos, pct(pos), self.rows - pos)?;
        }
        writeln!(f, "  {:<22} {:>6} ({:5.1}%)", "parse_success", self.parsed, pct(self.parsed))?;
        writeln!(f, "  {:<22} {:>6}", "guarded (no model call)", self.guarded)?;
        write!(f, "  {:<22} {:>6}", "backend errors", self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::{NamedFrom, Series};

    #[test]
    fn sample_is_seeded_distinct_and_bounded() {
        let a = sample_indices(1000, 100, 42);
        assert_eq!(a, sample_indices(1000, 100, 42));
        assert_ne!(a, sample_indices(1000, 100, 43));
        let mut s = a.clone();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 100);
        assert!(a.iter().all(|&i| i < 1000));
        assert_eq!(sample_indices(5, 10, 1).len(), 5);
        assert!(sample_indices(0, 10, 1).is_empty());
    }

    #[test]
    fn list_category_is_joined_and_missing_columns_warn() {
        let cats = Series::new("category".into(), [Some(Series::new("".into(), ["Cafe", "Bakery"])), None]);
        let df = DataFrame::new(2, vec![Column::new("text".into(), [Some("good"), None]), cats.into()]).unwrap();
        let (r, w) = reviews_from_df(&df).unwrap();
        assert_eq!(r[0].category, "Cafe, Bakery");
        assert_eq!(r[1].text, "");
        assert_eq!(w.len(), 1);
        let no_text = DataFrame::new(1, vec![Column::new("body".into(), ["x"])]).unwrap();
        let err = format!("{:#}", reviews_from_df(&no_text).unwrap_err());
        assert!(err.contains("no `text` column") && err.contains("body"), "{err}");
    }
}
