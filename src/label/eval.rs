//! How good are the labels? Agreement of a labeler with human (or generator) labels: per-label support,
//! precision, recall, F1 and flag rate (`revmod label-eval`, the walkthrough's step "How good are these labels?").
//!
//! A gold file is a CSV with a `text` column, optional `business_name` and `category`, and 0/1 columns for any
//! of the five labels: `relevant`, `ads`, `irrelevant`, `non_visit`, `spam` (the labeler's column names
//! `is_relevant_overall`, `is_advertisement`, ... are accepted too). An empty cell means "not labeled" for that
//! row and label; a label without a column is skipped and said so; any other value is an error naming the file,
//! the data row and the column.
//!
//! The metrics ([`agreement`]) are pure functions of predicted flags and gold values; [`label_eval`] labels
//! the gold texts with a [`Labeler`] and scores them.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use polars::prelude::*;

use super::{LabelRecord, Labeler, ReviewInput};
use crate::moderation::{Label, PerLabel, LABELS};

/// A gold file: the reviews and, per review and label, the gold value (None: not labeled).
#[derive(Clone, Debug)]
pub struct Gold {
    /// Where it was read from.
    pub path: PathBuf,
    /// The reviews, in file order.
    pub reviews: Vec<ReviewInput>,
    /// Gold values per review and label (`truth[i][Label::Ads]`; None: not labeled).
    pub truth: Vec<PerLabel<Option<bool>>>,
    /// Labels without a column in the file (skipped).
    pub missing: Vec<&'static str>,
}

impl Gold {
    /// Keeps the rows for which `keep(row index, review, truth)` is true (the order is kept).
    pub fn retain(&mut self, mut keep: impl FnMut(usize, &ReviewInput, &PerLabel<Option<bool>>) -> bool) {
        let keep: Vec<bool> = self.reviews.iter().zip(&self.truth).enumerate().map(|(i, (r, t))| keep(i, r, t)).collect();
        let mut k = keep.iter();
        self.reviews.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        self.truth.retain(|_| *k.next().unwrap_or(&false));
    }

    /// Splits the rows into a tuning part and a held-out part by the text: a row is held out when the first
    /// byte of the sha256 of its text is odd. Repeated texts (gold-dev's written rows repeat) land in the same
    /// part, so the held-out part never holds a text tuned on; the split does not depend on the row order.
    pub fn split_tune_held(&self) -> (Gold, Gold) {
        let held = |r: &ReviewInput| {
            use sha2::{Digest, Sha256};
            Sha256::digest(r.text.as_bytes())[0] % 2 == 1
        };
        let (mut tune, mut hold) = (self.clone(), self.clone());
        tune.retain(|_, r, _| !held(r));
        hold.retain(|_, r, _| held(r));
        (tune, hold)
    }
}

/// Parses one gold cell: "" -> None, 0/1 (also 0.0/1.0, true/false, yes/no) -> Some.
pub fn parse_gold_value(v: &str) -> Option<Option<bool>> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "na" | "nan" | "null" => Some(None),
        "1" | "1.0" | "true" | "yes" => Some(Some(true)),
        "0" | "0.0" | "false" | "no" => Some(Some(false)),
        _ => None,
    }
}

/// Reads a gold CSV (see the module doc). Errors name the file, and for a bad value the data row (1 = the
/// first row after the header) and the column.
pub fn read_gold(path: impl AsRef<Path>) -> Result<Gold> {
    let path = path.as_ref();
    let read = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish());
    let df = anyhow::Context::with_context(read, || format!("gold file {}: not a readable CSV", path.display()))?;
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    let col = |name: &str| -> Result<Option<Vec<Option<String>>>> {
        if !names.iter().any(|n| n == name) {
            return Ok(None);
        }
        let c = df.column(name)?.cast(&DataType::String)?;
        Ok(Some(c.str()?.iter().map(|v| v.map(str::to_string)).collect()))
    };
    let Some(text) = col("text")? else {
        bail!("gold file {}: no `text` column (columns: {})", path.display(), names.join(", "));
    };
    let name = col("business_name")?;
    let category = col("category")?;
    let n = text.len();
    let mut truth = vec![PerLabel::<Option<bool>>::default(); n];
    let mut missing = Vec::new();
    for l in Label::ALL {
        let label = l.name();
        let values = match col(label)? {
            Some(v) => v,
            None => match col(l.labeler_column())? {
                Some(v) => v,
                None => {
                    missing.push(label);
                    continue;
                }
            },
        };
        for (i, v) in values.iter().enumerate() {
            let v = v.as_deref().unwrap_or("");
            truth[i][l] = parse_gold_value(v).ok_or_else(|| {
                anyhow::anyhow!("gold file {}: data row {}: column `{label}`: {v:?} is not 0 or 1 (or empty for unknown)", path.display(), i + 1)
            })?;
        }
    }
    if missing.len() == LABELS.len() {
        bail!("gold file {}: none of the label columns {} is present", path.display(), LABELS.join(", "));
    }
    let get = |c: &Option<Vec<Option<String>>>, i: usize| c.as_ref().and_then(|v| v[i].clone()).unwrap_or_default();
    let text = Some(text);
    let reviews = (0..n)
        .map(|i| ReviewInput { text: get(&text, i), business_name: get(&name, i), category: get(&category, i) })
        .collect();
    Ok(Gold { path: path.to_path_buf(), reviews, truth, missing })
}

/// Agreement on one label.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelScore {
    /// Label name (`moderation::LABELS`).
    pub label: &'static str,
    /// Rows with a gold value for this label.
    pub rows: usize,
    /// Gold positives.
    pub support: usize,
    /// Rows the labeler flagged.
    pub flagged: usize,
    /// Flagged and gold positive.
    pub true_pos: usize,
    /// tp / flagged (0 when nothing is flagged).
    pub precision: f64,
    /// tp / support (0 when there are no positives).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when either is 0).
    pub f1: f64,
    /// flagged / rows.
    pub flag_rate: f64,
    /// support / rows.
    pub true_rate: f64,
}

/// Per-label agreement of predicted flags with gold values (rows whose gold value is None are left out for
/// that label). Labels without any gold value are not returned.
pub fn agreement(pred: &[PerLabel<bool>], truth: &[PerLabel<Option<bool>>]) -> Vec<LabelScore> {
    assert_eq!(pred.len(), truth.len(), "one prediction per gold row");
    let mut out = Vec::new();
    for l in Label::ALL {
        let (mut rows, mut support, mut flagged, mut tp) = (0, 0, 0, 0);
        for (p, t) in pred.iter().zip(truth) {
            let Some(t) = t[l] else { continue };
            rows += 1;
            support += usize::from(t);
            flagged += usize::from(p[l]);
            tp += usize::from(t && p[l]);
        }
        if rows == 0 {
            continue;
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(tp, flagged), ratio(tp, support));
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        out.push(LabelScore {
            label: l.name(),
            rows,
            support,
            flagged,
            true_pos: tp,
            precision,
            recall,
            f1,
            flag_rate: ratio(flagged, rows),
            true_rate: ratio(support, rows),
        });
    }
    out
}

/// The result of a label evaluation: what was compared and the per-label scores.
#[derive(Clone, Debug)]
pub struct LabelEval {
    /// What the labels were compared with (a file, "the generator's truth").
    pub source: String,
    /// Who labeled (`Labeler::labeler_id`, or a description).
    pub labeler: String,
    /// Rows compared.
    pub rows: usize,
    /// Per-label scores.
    pub scores: Vec<LabelScore>,
    /// Labels skipped because the gold has no column for them.
    pub skipped: Vec<&'static str>,
}

impl LabelEval {
    /// The score of one label, if it was evaluated.
    pub fn get(&self, label: &str) -> Option<&LabelScore> {
        self.scores.iter().find(|s| s.label == label)
    }

    /// The scores as a table (label, rows, support, flagged, precision, recall, f1, flag_rate, true_rate).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let s = &self.scores;
        let n = s.len();
        let f = |g: fn(&LabelScore) -> f64| s.iter().map(|x| (g(x) * 1000.0).round() / 1000.0).collect::<Vec<f64>>();
        let u = |g: fn(&LabelScore) -> usize| s.iter().map(|x| g(x) as u64).collect::<Vec<u64>>();
        Ok(DataFrame::new(
            n,
            vec![
                Column::new("label".into(), s.iter().map(|x| x.label).collect::<Vec<_>>()),
                Column::new("rows".into(), u(|x| x.rows)),
                Column::new("support".into(), u(|x| x.support)),
                Column::new("flagged".into(), u(|x| x.flagged)),
                Column::new("precision".into(), f(|x| x.precision)),
                Column::new("recall".into(), f(|x| x.recall)),
                Column::new("f1".into(), f(|x| x.f1)),
                Column::new("flag_rate".into(), f(|x| x.flag_rate)),
                Column::new("true_rate".into(), f(|x| x.true_rate)),
            ],
        )?)
    }
}

impl fmt::Display for LabelEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "labels of {} against {} ({} rows)", self.labeler, self.source, self.rows)?;
        writeln!(f, "{:<11} {:>6} {:>8} {:>8} {:>9} {:>7} {:>6} {:>10} {:>10}", "label", "rows", "support", "flagged", "precision", "recall", "F1", "flag rate", "true rate")?;
        for s in &self.scores {
            writeln!(
                f,
                "{:<11} {:>6} {:>8} {:>8} {:>9.3} {:>7.3} {:>6.3} {:>10.3} {:>10.3}",
                s.label, s.rows, s.support, s.flagged, s.precision, s.recall, s.f1, s.flag_rate, s.true_rate
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped (no gold column): {}", self.skipped.join(", "))?;
        }
        Ok(())
    }
}

/// Labels every review of `gold` with `labeler` (guard -> backend -> parser, in batches of the backend's size)
/// and compares the flags with the gold values. Also returns the records, in gold order.
pub fn label_eval(gold: &Gold, labeler: &mut Labeler) -> Result<(LabelEval, Vec<LabelRecord>)> {
    let mut progress = crate::progress::Progress::new("label_eval", crate::progress::Unit::Reviews, Some(gold.reviews.len() as u64), 0);
    let mut records = Vec::with_capacity(gold.reviews.len());
    let step = labeler.backend.preferred_batch().max(1);
    for chunk in gold.reviews.chunks(step) {
        records.extend(labeler.label(chunk));
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    let pred: Vec<PerLabel<bool>> = records.iter().map(|r| r.labels.flags()).collect();
    let eval = LabelEval {
        source: gold.path.display().to_string(),
        labeler: labeler.labeler_id(),
        rows: gold.reviews.len(),
        scores: agreement(&pred, &gold.truth),
        skipped: gold.missing.clone(),
    };
    Ok((eval, records))
}

/// [`read_gold`] + [`label_eval`]: what `revmod label-eval --gold FILE` and the notebook's `-p GOLD=path` call.
pub fn label_eval_file(path: impl AsRef<Path>, labeler: &mut Labeler) -> Result<LabelEval> {
    Ok(label_eval(&read_gold(path)?, labeler)?.0)
}

/// Agreement of an already labeled table (the label columns `is_*` and `text`, as step 8 writes them) with a
/// gold file, matched on the review text: rows whose text is not in the gold file (or appears there with
/// different gold values) are left out. The walkthrough uses it with the sample generator's truth file.
pub fn compare_labeled(labeled: &DataFrame, gold: &Gold, labeler: &str) -> Result<LabelEval> {
    use std::collections::HashMap;
    let mut by_text: HashMap<&str, Option<PerLabel<Option<bool>>>> = HashMap::new();
    for (r, t) in gold.reviews.iter().zip(&gold.truth) {
        by_text.entry(r.text.as_str()).and_modify(|e| if e.as_ref() != Some(t) { *e = None }).or_insert(Some(*t));
    }
    let texts = anyhow::Context::context(labeled.column("text"), "the labeled table has no `text` column")?.cast(&DataType::String)?;
    let texts = texts.str()?;
    let mut cols = Vec::new();
    for l in Label::ALL {
        let c = l.labeler_column();
        let v = anyhow::Context::with_context(labeled.column(c), || format!("the labeled table has no `{c}` column"))?.cast(&DataType::Int64)?;
        cols.push(v.i64()?.clone());
    }
    let (mut pred, mut truth) = (Vec::new(), Vec::new());
    for i in 0..labeled.height() {
        let Some(Some(t)) = texts.get(i).and_then(|s| by_text.get(s)) else { continue };
        let p = PerLabel::from_fn(|l| cols[l as usize].get(i).unwrap_or(0) != 0);
        pred.push(p);
        truth.push(*t);
    }
    Ok(LabelEval {
        source: gold.path.display().to_string(),
        labeler: labeler.to_string(),
        rows: pred.len(),
        scores: agreement(&pred, &truth),
        skipped: gold.missing.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_counts() {
        let t = |r: Option<bool>, a: Option<bool>| PerLabel([r, a, None, Some(false), None]);
        let truth = vec![t(Some(true), Some(true)), t(Some(true), Some(false)), t(Some(false), Some(true)), t(None, Some(false))];
        let pred = [[true, true, false, false, false], [true, true, false, false, false], [true, false, false, false, false], [false; 5]].map(PerLabel);
        let s = agreement(&pred, &truth);
        assert_eq!(s.iter().map(|x| x.label).collect::<Vec<_>>(), ["relevant", "ads", "non_visit"]);
        let ads = &s[1];
        assert_eq!((ads.rows, ads.support, ads.flagged, ads.true_pos), (4, 2, 2, 1));
        assert!((ads.precision - 0.5).abs() < 1e-12 && (ads.recall - 0.5).abs() < 1e-12 && (ads.f1 - 0.5).abs() < 1e-12);
        assert_eq!(s[0].rows, 3);
        assert!((s[0].precision - 2.0 / 3.0).abs() < 1e-12 && s[0].recall == 1.0);
        assert_eq!((s[2].support, s[2].flagged, s[2].f1), (0, 0, 0.0));
    }

    #[test]
    fn gold_values() {
        assert_eq!(parse_gold_value(" 1 "), Some(Some(true)));
        assert_eq!(parse_gold_value("0.0"), Some(Some(false)));
        assert_eq!(parse_gold_value(""), Some(None));
        assert_eq!(parse_gold_value("2"), None);
        assert_eq!(parse_gold_value("maybe"), None);
    }
}
