//! Seed cell 11: per label and split precision, recall, F1 and support at the model's thresholds, and the
//! worst misclassifications (top false positives by highest p, top false negatives by lowest p) saved as
//! `misclf_{label}_{split}_{FP|FN}.csv` like the seed and shown as tables with the review text.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{df, DataFrame};

use super::frame;
use super::metrics::Counts;
use crate::moderation::{target_column, Label, Scorer};
use crate::split::Part;
use crate::params::ParamError;
use crate::show::{DataFrameShow, Many, Text};

/// Error-analysis settings (seed defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorAnalysisParams {
    /// Splits to evaluate, in display order.
    pub splits: Vec<Part>,
    /// Misclassified examples kept per label, split and kind (the seed: 200).
    pub top_k: usize,
}

impl Default for ErrorAnalysisParams {
    fn default() -> Self {
        Self { splits: vec![Part::Val, Part::Test], top_k: 200 }
    }
}

impl ErrorAnalysisParams {
    /// Checks the parameters before any work ([`crate::params`]): at least one split.
    pub fn check(&self) -> Result<&Self, ParamError> {
        if self.splits.is_empty() {
            return Err(ParamError::Empty { name: "splits" });
        }
        Ok(self)
    }
}

/// The worst misclassified rows of one label, split and kind.
#[derive(Debug, Clone)]
pub struct Misclassified {
    /// Model label.
    pub label: String,
    /// The part of the split.
    pub split: Part,
    /// "FP" (predicted 1, truly 0; highest p first) or "FN" (predicted 0, truly 1; lowest p first).
    pub kind: &'static str,
    /// Columns `text`, `y_true`, `y_pred`, `p_<label>`.
    pub rows: DataFrame,
}

/// Result of [`error_analysis`]: the metrics table and the misclassified examples.
#[derive(Debug, Clone)]
pub struct ErrorAnalysis {
    /// label, split, n, support, flagged, precision, recall, f1, threshold.
    pub metrics: DataFrame,
    /// One entry per label x split x {FP, FN}.
    pub examples: Vec<Misclassified>,
    /// What was skipped and why (a split without rows); shown by [`ErrorAnalysis::show`].
    pub warnings: Vec<String>,
}

/// Seed cell 11: evaluates `model` on each split of `data` (text, y_* targets, split) at its own
/// thresholds and collects the top misclassifications. Pure apart from the model call; write the CSV
/// files with [`ErrorAnalysis::save`].
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-errors-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// # let labeled = label_with_ckpt(&df, 400, 200, dir.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default())?.labeled;
/// # let ml = split(&labeled, &SplitParams::default())?;
/// # let baseline = train_baseline(&ml, &BaselineParams::default())?.model;
/// let errors: ErrorAnalysis = error_analysis(&baseline, &ml.df, &ErrorAnalysisParams::default())?;
/// assert!(errors.metrics.height() > 0);
/// let files = errors.save(&dir)?; // error_metrics.csv and the misclassified examples
/// assert!(files.iter().all(|f| f.exists()));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn error_analysis(model: &dyn Scorer, data: &DataFrame, params: &ErrorAnalysisParams) -> Result<ErrorAnalysis> {
    params.check()?;
    let (texts, _) = frame::texts(data, "text")?;
    let mut warnings = Vec::new();
    let mut m_label = Vec::new();
    let mut m_split = Vec::new();
    let mut m_n = Vec::new();
    let mut m_support = Vec::new();
    let mut m_flagged = Vec::new();
    let mut m_p = Vec::new();
    let mut m_r = Vec::new();
    let mut m_f1 = Vec::new();
    let mut m_thr = Vec::new();
    let mut examples = Vec::new();
    let targets: Vec<Vec<bool>> = model
        .labels()
        .iter()
        .map(|l| target_column(data, Label::target_of(l)?))
        .collect::<Result<_>>()?;
    for &split in &params.splits {
        let rows = frame::split_rows(data, split)?;
        if rows.is_empty() {
            warnings.push(format!("error_analysis: no rows with split == \"{split}\", skipped"));
            continue;
        }
        let t = frame::take(&texts, &rows);
        let proba = model.predict_proba(&t);
        for (j, label) in model.labels().iter().enumerate() {
            let thr = model.thresholds()[j];
            let y = frame::take(&targets[j], &rows);
            let p: Vec<f64> = proba.column(j).to_vec();
            let c = Counts::at_threshold(&y, &p, thr)?;
            m_label.push(label.clone());
            m_split.push(split.as_str());
            m_n.push(c.total() as u32);
            m_support.push(c.support() as u32);
            m_flagged.push(c.flagged() as u32);
            m_p.push(c.precision());
            m_r.push(c.recall());
            m_f1.push(c.f1());
            m_thr.push(thr);
            for kind in ["FP", "FN"] {
                let mut idx: Vec<usize> = (0..y.len())
                    .filter(|&i| {
                        let pred = p[i] >= thr;
                        if kind == "FP" {
                            pred && !y[i]
                        } else {
                            !pred && y[i]
                        }
                    })
                    .collect();
                // FP: most confident wrong flags first; FN: most confidently missed first (stable on ties).
                if kind == "FP" {
                    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
                } else {
                    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
                }
                idx.truncate(params.top_k);
                let rows_df = df![
                    "text" => idx.iter().map(|&i| t[i]).collect::<Vec<_>>(),
                    "y_true" => idx.iter().map(|&i| y[i] as i32).collect::<Vec<_>>(),
                    "y_pred" => idx.iter().map(|&i| (p[i] >= thr) as i32).collect::<Vec<_>>(),
                    &format!("p_{label}") => idx.iter().map(|&i| p[i]).collect::<Vec<_>>(),
                ]?;
                examples.push(Misclassified { label: label.clone(), split, kind, rows: rows_df });
            }
        }
    }
    let metrics = df![
        "label" => m_label, "split" => m_split, "n" => m_n, "support" => m_support, "flagged" => m_flagged,
        "precision" => m_p, "recall" => m_r, "f1" => m_f1, "threshold" => m_thr,
    ]?;
    Ok(ErrorAnalysis { metrics, examples, warnings })
}

impl ErrorAnalysis {
    /// Writes `misclf_{label}_{split}_{FP|FN}.csv` (and `error_metrics.csv`) into `dir`; returns the paths.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut paths = Vec::new();
        let mut write = |name: String, df: &DataFrame| -> Result<()> {
            let path = dir.join(name);
            crate::output::write_csv(df, &path)?;
            paths.push(path);
            Ok(())
        };
        write("error_metrics.csv".into(), &self.metrics)?;
        for e in &self.examples {
            write(format!("misclf_{}_{}_{}.csv", e.label, e.split, e.kind), &e.rows)?;
        }
        Ok(paths)
    }

    /// The metrics table and, per label and split, the first `rows` FP and FN examples as tables.
    pub fn show(&self, rows: usize) -> Many {
        let mut m = Many::new();
        for w in &self.warnings {
            m = m.with(&Text(w.clone()));
        }
        let mut m = m.heading("Metrics per label and split (model thresholds)").with(&self.metrics.table(100));
        for e in &self.examples {
            let title = format!(
                "{} {} {} ({} kept; {})",
                e.label,
                e.split,
                e.kind,
                e.rows.height(),
                if e.kind == "FP" { "flagged but not labeled, highest p first" } else { "labeled but missed, lowest p first" }
            );
            m = m.heading(&title);
            if e.rows.height() == 0 {
                m = m.with(&Text("none".into()));
            } else {
                m = m.with(&e.rows.table(rows));
            }
        }
        m
    }

    /// Shows [`ErrorAnalysis::show`] with 5 example rows each in an evcxr cell.
    pub fn evcxr_display(&self) {
        self.show(5).evcxr_display();
    }
}
