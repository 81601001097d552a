//! Steps 13-19: score every review with a fitted [`Scorer`] and look at what got flagged.
//!
//! Scoring streams over batches of `batch_rows` rows: each batch's texts are split into chunks scored in
//! parallel on all cores (rayon), so the working memory (TF-IDF rows, probabilities) depends on the batch
//! size, not on the data size. Every row is scored independently, so the probabilities equal scoring the
//! rows one by one. [`score_all`] adds `p_<label>` (f64) and `<label>` (i32, `p >= threshold`) columns to
//! an in-memory frame; [`score_stream`] does the same for an iterator of batches and hands each scored
//! batch to a sink (the `revmod score` CLI writes them to parquet as they come).
//!
//! - [`files`]: `revmod score`, JSON-lines review files larger than memory -> parquet.
//! - [`summary`]: cells 15-19, predicted label distribution (table + bar chart) and example reviews.

pub mod files;
pub mod summary;

use anyhow::{Context, Result};
use ndarray::{concatenate, Array2, Axis};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;

use crate::moderation::{Label, Scorer};
use crate::params::{self, ParamError};
use crate::progress::{Progress, Unit};
pub use files::{score_files, ScoreFiles, ScoredFiles};
pub use summary::{examples_per_label, label_distribution, label_examples, LabelDistribution};

/// Scoring settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParams {
    /// Column holding the review text (nulls are scored as "", like the seed's `fillna("")`).
    pub text_column: String,
    /// Rows per batch: bounds the working memory.
    pub batch_rows: usize,
    /// Rows per parallel task inside a batch.
    pub chunk_rows: usize,
    /// Count progress for the installed drawer ([`crate::progress`]); false: draw nothing.
    pub progress: bool,
}

impl Default for ScoreParams {
    fn default() -> Self {
        Self { text_column: "text".into(), batch_rows: 16_384, chunk_rows: 256, progress: true }
    }
}

impl ScoreParams {
    /// Checks the parameters before any work ([`crate::params`]): `batch_rows` and `chunk_rows` at least 1
    /// (the one policy for sizes: 0 is an error, never silently raised to 1).
    pub fn check(&self) -> Result<&Self, ParamError> {
        params::nonzero("batch_rows", self.batch_rows)?;
        params::nonzero("chunk_rows", self.chunk_rows)?;
        Ok(self)
    }
}

/// What a scoring run did: rows, null texts, rows flagged per label.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSummary {
    /// Label names (model order).
    pub labels: Vec<String>,
    /// Thresholds used (model order).
    pub thresholds: Vec<f64>,
    /// Rows scored.
    pub rows: usize,
    /// Rows whose text was null (scored as "").
    pub null_texts: usize,
    /// Rows flagged per label.
    pub flagged: Vec<usize>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl ScoreSummary {
    /// Loud warnings: null texts, and any label other than `relevant` flagging more than half the rows
    /// (the seed flagged 66% of all reviews as ads after calibrating on 1-5 positives).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.null_texts > 0 {
            w.push(format!("note score: {} of {} rows had a null text, scored as \"\"", self.null_texts, self.rows));
        }
        for (i, l) in self.labels.iter().enumerate() {
            let rate = self.flagged[i] as f64 / self.rows.max(1) as f64;
            if Label::parse(l) != Some(Label::Relevant) && rate > 0.5 {
                w.push(format!(
                    "WARNING score: `{l}` flags {:.1}% of {} rows at threshold {:.4}: check the calibration \
                     (thresholds.json) before trusting these labels",
                    100.0 * rate,
                    self.rows,
                    self.thresholds[i]
                ));
            }
        }
        w
    }
}

impl ScoreSummary {
    /// Shows the summary (rows flagged per label, warnings) in an evcxr cell.
    pub fn evcxr_display(&self) {
        let html = format!("<pre>{}</pre>", crate::show::escape_html(&self.to_string()));
        crate::show::emit(&[("text/plain", self.to_string()), ("text/html", html)]);
    }
}

impl std::fmt::Display for ScoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scored {} rows in {:.2}s ({:.0} rows/s)", self.rows, self.seconds, self.rows as f64 / self.seconds.max(1e-9))?;
        for (i, l) in self.labels.iter().enumerate() {
            writeln!(
                f,
                "  {l:<12} threshold {:.4}  flagged {:>9} ({:.2}%)",
                self.thresholds[i],
                self.flagged[i],
                100.0 * self.flagged[i] as f64 / self.rows.max(1) as f64
            )?;
        }
        for w in self.warnings() {
            writeln!(f, "{w}")?;
        }
        Ok(())
    }
}

/// Probabilities of `texts` (rows) x labels (columns), scored in parallel chunks of `chunk_rows` texts,
/// rows in input order. Equal to `model.predict_proba(texts)` for a row-wise model.
pub fn predict_parallel(model: &dyn Scorer, texts: &[&str], chunk_rows: usize) -> Array2<f64> {
    let chunk = chunk_rows.max(1);
    if texts.len() <= chunk {
        return model.predict_proba(texts);
    }
    let parts: Vec<Array2<f64>> = texts.par_chunks(chunk).map(|c| model.predict_proba(c)).collect();
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    concatenate(Axis(0), &views).expect("every chunk has one column per label")
}

fn batch_texts<'a>(df: &'a DataFrame, column: &str) -> Result<(Vec<&'a str>, usize)> {
    crate::eval::frame::texts(df, column)
}

/// One scored batch ([`score_batch`]).
#[derive(Debug, Clone)]
pub struct ScoredBatch {
    /// The batch plus `p_<label>` and `<label>` columns.
    pub df: DataFrame,
    /// Rows whose text was null (scored as "").
    pub null_texts: usize,
    /// Rows flagged per label (model order).
    pub flagged: Vec<usize>,
}

/// Scores one batch: `batch` plus `p_<label>` and `<label>` columns, with its null-text count and flagged
/// count per label.
pub fn score_batch(model: &dyn Scorer, batch: &DataFrame, params: &ScoreParams) -> Result<ScoredBatch> {
    params.check()?;
    let (texts, nulls) = batch_texts(batch, &params.text_column)?;
    let proba = predict_parallel(model, &texts, params.chunk_rows);
    let (cols, flagged) = label_columns(model, &proba);
    let mut out = batch.clone();
    out.hstack_mut(&cols).context("cannot add the score columns (a p_<label> or <label> column already exists?)")?;
    Ok(ScoredBatch { df: out, null_texts: nulls, flagged })
}

fn label_columns(model: &dyn Scorer, proba: &Array2<f64>) -> (Vec<Column>, Vec<usize>) {
    let mut cols = Vec::new();
    let mut flagged = Vec::new();
    for (j, label) in model.labels().iter().enumerate() {
        let t = model.thresholds()[j];
        let p: Vec<f64> = proba.column(j).to_vec();
        let y: Vec<i32> = p.iter().map(|&x| (x >= t) as i32).collect();
        flagged.push(y.iter().filter(|&&v| v == 1).count());
        cols.push(Column::new(format!("p_{label}").into(), p));
        cols.push(Column::new(label.as_str().into(), y));
    }
    (cols, flagged)
}

/// Streams `batches` through the model: each scored batch (input columns + scores) goes to `sink` as
/// soon as it is ready, so memory stays bounded by one batch. `total_rows` (if known) sizes the bar.
pub fn score_stream<I, F>(model: &dyn Scorer, batches: I, params: &ScoreParams, total_rows: Option<u64>, mut sink: F) -> Result<ScoreSummary>
where
    I: IntoIterator<Item = Result<DataFrame>>,
    F: FnMut(DataFrame) -> Result<()>,
{
    params.check()?;
    let start = std::time::Instant::now();
    let mut progress = step_progress(total_rows, params.progress);
    let mut rows = 0;
    let mut null_texts = 0;
    let mut flagged = vec![0usize; model.labels().len()];
    for (i, batch) in batches.into_iter().enumerate() {
        let batch = batch.with_context(|| format!("reading batch {i} (rows from {rows})"))?;
        let ScoredBatch { df: scored, null_texts: nulls, flagged: f } =
            score_batch(model, &batch, params).with_context(|| format!("scoring batch {i} (rows from {rows})"))?;
        rows += batch.height();
        null_texts += nulls;
        for (a, b) in flagged.iter_mut().zip(f) {
            *a += b;
        }
        sink(scored).with_context(|| format!("writing batch {i}"))?;
        progress.advance(batch.height() as u64);
    }
    progress.finish();
    Ok(ScoreSummary {
        labels: model.labels().to_vec(),
        thresholds: model.thresholds().to_vec(),
        rows,
        null_texts,
        flagged,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Scoring's progress: rows, drawn by the installed drawer unless `show` is false.
fn step_progress(total_rows: Option<u64>, show: bool) -> Progress {
    let p = Progress::new("scoring", Unit::Rows, total_rows, 0);
    if show { p } else { p.quiet() }
}

/// What [`score_all`] returns: the scored frame and its summary.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The input frame plus `p_<label>` and `<label>` columns for every model label.
    pub df: DataFrame,
    /// Rows, null texts, rows flagged per label; its `Display` and [`ScoreSummary::warnings`] are what
    /// the caller shows.
    pub summary: ScoreSummary,
}

impl Scored {
    /// Step 14's write: the scored frame as parquet at `path` (atomically, [`crate::output::write_parquet`]),
    /// like the other steps' `save`.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::output::write_parquet(&self.df, path)
    }

    /// Shows the summary in an evcxr cell (the frame is shown with its own display).
    pub fn evcxr_display(&self) {
        self.summary.evcxr_display();
    }
}

/// Seed cells 13-14: `df` plus `p_<label>` and `<label>` columns for every model label, scored in
/// batches of `params.batch_rows` on all cores with a progress bar. Quiet: returns the scored frame with
/// its summary (rows flagged per label, loud warnings) for the caller to show.
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-score-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// # let labeled = label_with_ckpt(&df, 400, 200, dir.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default())?.labeled;
/// # let ml = split(&labeled, &SplitParams::default())?;
/// # let baseline = train_baseline(&ml, &BaselineParams::default())?.model;
/// let scored: Scored = score_all(&baseline, &df, &ScoreParams::default())?;
/// assert_eq!(scored.df.height(), df.height());
/// assert!(scored.df.column("p_ads").is_ok() && scored.df.column("ads").is_ok());
/// println!("{}", scored.summary); // rows flagged per label
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn score_all(model: &dyn Scorer, df: &DataFrame, params: &ScoreParams) -> Result<Scored> {
    params.check()?;
    let n = df.height();
    let step = params.batch_rows;
    let mut proba_parts: Vec<Array2<f64>> = Vec::new();
    // Score columns only (the input columns are not copied per batch).
    let start = std::time::Instant::now();
    let mut progress = step_progress(Some(n as u64), params.progress);
    let mut null_texts = 0;
    for off in (0..n).step_by(step) {
        let b = df.slice(off as i64, step.min(n - off));
        let (texts, nulls) = batch_texts(&b, &params.text_column)?;
        null_texts += nulls;
        proba_parts.push(predict_parallel(model, &texts, params.chunk_rows));
        progress.advance(b.height() as u64);
    }
    progress.finish();
    let proba = if proba_parts.is_empty() {
        Array2::zeros((0, model.labels().len()))
    } else {
        let views: Vec<_> = proba_parts.iter().map(|a| a.view()).collect();
        concatenate(Axis(0), &views)?
    };
    drop(proba_parts);
    let (cols, flagged) = label_columns(model, &proba);
    let mut out = df.clone();
    out.hstack_mut(&cols).context("cannot add the score columns (a p_<label> or <label> column already exists?)")?;
    let summary = ScoreSummary {
        labels: model.labels().to_vec(),
        thresholds: model.thresholds().to_vec(),
        rows: n,
        null_texts,
        flagged,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok(Scored { df: out, summary })
}
