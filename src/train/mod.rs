//! Step 10: `train_baseline` — word + char TF-IDF and one logistic regression per label, thresholds
//! picked on validation, metrics per split; saved to and loaded from `models/baseline_tfidf_lr/`.
//!
//! Seed semantics (cell 10): fit `TfidfVectorizer(word, (1,2), min_df 2, max_df 0.9, max_features 200k)`
//! and `TfidfVectorizer(char, (3,5), min_df 2, max_features 300k)` on the train texts, hstack them, fit
//! `LogisticRegression(solver='liblinear', C=1.0, class_weight='balanced')` per label, and choose each
//! label's threshold as the first best validation F1 on the grid 0.10, 0.15, ..., 0.90.
//! A label whose train part has one class only cannot be fitted: it gets a constant model (probability
//! 0 or 1) and a note in [`Metrics::notes`] instead of a crash.

pub mod artifacts;

use anyhow::{bail, Context, Result};
use ndarray::Array2;
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::moderation::{Label, Scorer, LABELS};
use crate::linear::{expit, LogRegModel, LogRegParams};
use crate::mem::HugeVec;
use crate::split::{MlReady, Part};
use crate::text::{CsrMatrix, FittedTextFeatures, RowScratch, TextFeaturesParams};
use crate::params::{self, ParamError};

/// Folder name of the saved model under `<out>/models/` (seed: `models/baseline_tfidf_lr`).
pub const MODEL_DIR: &str = "baseline_tfidf_lr";

/// Where a training run with output folder `out` keeps its model: `<out>/models/baseline_tfidf_lr` (the
/// seed's layout; `revmod train --out` writes there, [`Baseline::load`] also accepts `out` itself).
pub fn model_dir(out: &std::path::Path) -> std::path::PathBuf {
    out.join("models").join(MODEL_DIR)
}

/// Parameters of [`train_baseline`] (seed defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineParams {
    /// The two vectorizers.
    pub features: TextFeaturesParams,
    /// The per-label logistic regression.
    pub logreg: LogRegParams,
    /// Candidate thresholds, tried in order (first best F1 wins).
    pub threshold_grid: Vec<f64>,
    /// Labels to train (names of [`LABELS`]).
    pub labels: Vec<String>,
}

/// The seed's threshold grid: `np.arange(0.1, 0.91, 0.05)` = 0.10, 0.15, ..., 0.90.
pub fn seed_threshold_grid() -> Vec<f64> {
    (0..17).map(|k| 0.1 + k as f64 * 0.05).collect()
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            features: TextFeaturesParams::default(),
            logreg: LogRegParams::default(),
            threshold_grid: seed_threshold_grid(),
            labels: Label::ALL.iter().map(|l| l.name().to_string()).collect(),
        }
    }
}

impl BaselineParams {
    /// Checks the parameters before any work ([`crate::params`]): the vectorizers' and the logistic
    /// regression's own checks, a non-empty threshold grid strictly inside (0, 1), known labels, none twice.
    pub fn check(&self) -> Result<&Self, ParamError> {
        self.features.check()?;
        self.logreg.check()?;
        if self.threshold_grid.is_empty() {
            return Err(ParamError::Empty { name: "threshold_grid" });
        }
        for &t in &self.threshold_grid {
            params::unit_open("threshold_grid", t)?;
        }
        if self.labels.is_empty() {
            return Err(ParamError::Empty { name: "labels" });
        }
        params::known_names("labels", &self.labels, &LABELS)?;
        Ok(self)
    }
}

/// The model of one label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LabelModel {
    /// A fitted logistic regression.
    Logreg(LogRegModel),
    /// A constant probability, used when the train part has one class only.
    Constant {
        /// The probability returned for every text.
        proba: f64,
        /// Why no model was fitted.
        reason: String,
    },
}

impl LabelModel {
    fn proba_row(&self, cols: &[u32], vals: &[f64]) -> f64 {
        match self {
            LabelModel::Logreg(m) => expit(m.decision_row(cols, vals)),
            LabelModel::Constant { proba, .. } => *proba,
        }
    }
}

/// The fitted baseline: vectorizers, one model and one threshold per label.
#[derive(Clone, Debug)]
pub struct Baseline {
    labels: Vec<String>,
    features: FittedTextFeatures,
    models: Vec<LabelModel>,
    thresholds: Vec<f64>,
    threshold_reasons: Vec<String>,
    /// Every label's weights interleaved by feature (`weights[f * labels + j]`, 0 for constant models):
    /// scoring reads one cache line per feature instead of one per feature and label (on huge pages,
    /// see [`crate::mem`]).
    weights: HugeVec<f64>,
}

impl Baseline {
    /// Assembles a baseline from its parts (used by [`Baseline::load`]).
    pub fn from_parts(
        labels: Vec<String>,
        features: FittedTextFeatures,
        models: Vec<LabelModel>,
        thresholds: Vec<f64>,
        threshold_reasons: Vec<String>,
    ) -> Result<Self> {
        let n = labels.len();
        if models.len() != n || thresholds.len() != n || threshold_reasons.len() != n {
            bail!("baseline parts disagree: {n} labels, {} models, {} thresholds", models.len(), thresholds.len());
        }
        for (l, m) in labels.iter().zip(&models) {
            if let LabelModel::Logreg(m) = m {
                if m.coef.len() != features.n_features() {
                    bail!("model {l:?} has {} weights for {} features", m.coef.len(), features.n_features());
                }
            }
        }
        let k = labels.len();
        let weights = HugeVec::from_fn(features.n_features() * k, |i| match &models[i % k] {
            LabelModel::Logreg(m) => m.coef[i / k],
            LabelModel::Constant { .. } => 0.0,
        });
        Ok(Baseline { labels, features, models, thresholds, threshold_reasons, weights })
    }

    /// The fitted vectorizers.
    pub fn features(&self) -> &FittedTextFeatures {
        &self.features
    }

    /// The model of each label (same order as the labels).
    pub fn models(&self) -> &[LabelModel] {
        &self.models
    }

    /// Why each threshold has its value ("best val F1 ...", or what calibration wrote).
    pub fn threshold_reasons(&self) -> &[String] {
        &self.threshold_reasons
    }

    /// Index of a label name.
    pub fn label_index(&self, label: &str) -> Result<usize> {
        self.labels
            .iter()
            .position(|l| l == label)
            .with_context(|| format!("unknown label {label:?} (model labels: {:?})", self.labels))
    }

    /// Replaces one label's threshold (calibration), recording why.
    pub fn set_threshold(&mut self, label: &str, threshold: f64, reason: &str) -> Result<()> {
        if !(0.0..=1.0).contains(&threshold) {
            bail!("threshold {threshold} for {label:?} is not in [0, 1]");
        }
        let i = self.label_index(label)?;
        self.thresholds[i] = threshold;
        self.threshold_reasons[i] = reason.to_string();
        Ok(())
    }

    /// The stacked tf-idf matrix of `texts` (the first half of [`Scorer::predict_proba`]).
    pub fn transform(&self, texts: &[&str]) -> CsrMatrix {
        self.features.transform(texts)
    }

    /// Probabilities (rows x labels) of already transformed rows.
    pub fn predict_proba_features(&self, x: &CsrMatrix) -> Array2<f64> {
        let k = self.labels.len();
        let mut flat = vec![0.0; x.n_rows * k];
        flat.par_chunks_mut(k.max(1)).enumerate().for_each(|(i, row)| {
            let (c, v) = x.row(i);
            for (j, m) in self.models.iter().enumerate() {
                row[j] = m.proba_row(c, v);
            }
        });
        Array2::from_shape_vec((x.n_rows, k), flat).expect("rows x labels")
    }

    /// Probabilities of one text into `out` (one per label), without building a matrix. The sums run in
    /// the stacked row's column order, so the result is bit-identical to
    /// [`Baseline::predict_proba_features`] on [`Baseline::transform`].
    fn proba_text(&self, text: &str, s: &mut RowScratch, out: &mut [f64]) {
        let k = self.labels.len();
        let (word, char) = self.features.row_parts(text, s);
        let offset = self.features.word.n_features();
        out.fill(0.0);
        // Weights of the entry 8 ahead are prefetched: the gathers are the cost here.
        const AHEAD: usize = 8;
        let n = word.len() + char.len();
        let entry = |i: usize| match word.get(i) {
            Some(&(c, v)) => (c as usize, v),
            None => (char[i - word.len()].0 as usize + offset, char[i - word.len()].1),
        };
        for i in 0..n {
            if i + AHEAD < n {
                let next = entry(i + AHEAD).0 * k;
                crate::mem::prefetch(&self.weights[next]);
                crate::mem::prefetch(&self.weights[next + k - 1]);
            }
            let (c, v) = entry(i);
            for (o, w) in out.iter_mut().zip(&self.weights[c * k..c * k + k]) {
                *o += v * w;
            }
        }
        for (o, m) in out.iter_mut().zip(&self.models) {
            *o = match m {
                LabelModel::Logreg(m) => expit(m.intercept + *o),
                LabelModel::Constant { proba, .. } => *proba,
            };
        }
    }

    /// Writes the artifacts to `dir` (see docs/model-format.md).
    pub fn save(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        artifacts::save(self, dir.as_ref())
    }

    /// Reads artifacts written by [`Baseline::save`].
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        artifacts::load(dir.as_ref())
    }
}

impl Scorer for Baseline {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// Text by text, in parallel: each text's tf-idf row goes straight into the five dot products
    /// (memory is the output and one row per thread). Same values as transform + predict_proba_features.
    fn predict_proba(&self, texts: &[&str]) -> Array2<f64> {
        const CHUNK: usize = 256;
        let k = self.labels.len();
        let mut flat = vec![0.0; texts.len() * k];
        if k > 0 {
            flat.par_chunks_mut(CHUNK * k).zip(texts.par_chunks(CHUNK)).for_each_init(RowScratch::default, |s, (out, tx)| {
                for (row, t) in out.chunks_mut(k).zip(tx) {
                    self.proba_text(t, s, row);
                }
            });
        }
        Array2::from_shape_vec((texts.len(), k), flat).expect("rows x labels")
    }
}

/// One line of the metrics table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// Label name.
    pub label: String,
    /// "train", "val" or "test".
    pub split: String,
    /// Positive rows in that split.
    pub support: usize,
    /// Precision at the threshold (0 when nothing is flagged).
    pub precision: f64,
    /// Recall at the threshold (0 when there are no positives).
    pub recall: f64,
    /// F1 at the threshold (0 when precision + recall is 0).
    pub f1: f64,
    /// The label's threshold.
    pub threshold: f64,
}

/// What [`train_baseline`] measured: the metrics table, notes (labels that could not be fitted, ...)
/// and timings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// One row per label and split.
    pub rows: Vec<MetricRow>,
    /// Things the user must know (degenerate labels, thresholds chosen without positives).
    pub notes: Vec<String>,
    /// Seconds spent fitting the vectorizers.
    pub vectorize_seconds: f64,
    /// Seconds spent fitting the models.
    pub fit_seconds: f64,
}

impl Metrics {
    /// The table (label, split, support, precision, recall, f1, threshold) as a DataFrame.
    pub fn table(&self) -> Result<DataFrame> {
        let r = &self.rows;
        Ok(DataFrame::new(
            r.len(),
            vec![
                Column::new("label".into(), r.iter().map(|m| m.label.clone()).collect::<Vec<_>>()),
                Column::new("split".into(), r.iter().map(|m| m.split.clone()).collect::<Vec<_>>()),
                Column::new("support".into(), r.iter().map(|m| m.support as i64).collect::<Vec<_>>()),
                Column::new("precision".into(), r.iter().map(|m| m.precision).collect::<Vec<_>>()),
                Column::new("recall".into(), r.iter().map(|m| m.recall).collect::<Vec<_>>()),
                Column::new("f1".into(), r.iter().map(|m| m.f1).collect::<Vec<_>>()),
                Column::new("threshold".into(), r.iter().map(|m| m.threshold).collect::<Vec<_>>()),
            ],
        )?)
    }

    /// Writes the table as CSV.
    pub fn save_csv(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        crate::output::write_csv(&self.table()?, path)
    }
}

/// Precision, recall and F1 of `p >= t` against `y` (scikit-learn's with `zero_division=0`).
pub fn precision_recall_f1(y: &[bool], p: &[f64], t: f64) -> (f64, f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&y, &p) in y.iter().zip(p) {
        match (y, p >= t) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
    }
    let prec = if tp + fp > 0 { tp as f64 / (tp + fp) as f64 } else { 0.0 };
    let rec = if tp + fn_ > 0 { tp as f64 / (tp + fn_) as f64 } else { 0.0 };
    let f1 = if 2 * tp + fp + fn_ > 0 { 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64 } else { 0.0 };
    (prec, rec, f1)
}

/// The first threshold of `grid` with the best F1 of `p >= t` against `y`, and that F1.
pub fn best_threshold(y: &[bool], p: &[f64], grid: &[f64]) -> (f64, f64) {
    let mut best = (grid.first().copied().unwrap_or(0.5), f64::NEG_INFINITY);
    for &t in grid {
        let f1 = precision_recall_f1(y, p, t).2;
        if f1 > best.1 {
            best = (t, f1);
        }
    }
    best
}

/// What [`train_baseline`] returns: the fitted model and what training measured.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The fitted baseline (vectorizers, one model per label, thresholds).
    pub model: Baseline,
    /// Metrics per label and part, notes and timings.
    pub metrics: Metrics,
}

/// Fits the baseline on the `train` part of `ml`, picks thresholds on `val`, reports train/val/test.
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-train-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// # let labeled = label_with_ckpt(&df, 400, 200, dir.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default())?.labeled;
/// let ml: MlReady = split(&labeled, &SplitParams::default())?;
/// let Trained { model, metrics } = train_baseline(&ml, &BaselineParams::default())?;
/// assert_eq!(model.labels().len(), 5);
/// println!("{}", metrics.table()?.table(15)); // precision, recall, F1 per label and part
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn train_baseline(ml: &MlReady, params: &BaselineParams) -> Result<Trained> {
    params.check()?;
    let mut metrics = Metrics::default();
    let train_texts = ml.texts(Part::Train);
    anyhow::ensure!(!train_texts.is_empty(), "the train part is empty: nothing to fit");
    let t0 = std::time::Instant::now();
    let (features, x_train) = params.features.fit_transform(&train_texts).context("fitting the TF-IDF features")?;
    metrics.vectorize_seconds = t0.elapsed().as_secs_f64();
    let mut xs = vec![(Part::Train, x_train)];
    for part in [Part::Val, Part::Test] {
        xs.push((part, features.transform(&ml.texts(part))));
    }
    let ys: Vec<Vec<Vec<bool>>> = params
        .labels
        .iter()
        .map(|l| {
            Part::ALL
                .iter()
                .map(|&p| Ok(ml.targets(l, p)?.into_iter().map(|v| v == 1).collect()))
                .collect::<Result<Vec<Vec<bool>>>>()
        })
        .collect::<Result<_>>()?;
    let t1 = std::time::Instant::now();
    // labels with one class get a constant; the others are fitted, on rows prepared once for all of them
    let constant = |label: &str, y: &[bool]| {
        let pos = y.iter().filter(|&&b| b).count();
        (pos == 0 || pos == y.len()).then(|| {
            let proba = if pos == 0 { 0.0 } else { 1.0 };
            let reason = format!(
                "label {label:?}: {pos} positive of {} train rows; one class only, so no model was fitted \
                 (constant probability {proba})",
                y.len()
            );
            LabelModel::Constant { proba, reason }
        })
    };
    let mut models: Vec<Option<LabelModel>> = params.labels.iter().zip(&ys).map(|(l, y)| constant(l, &y[0])).collect();
    let todo: Vec<usize> = (0..models.len()).filter(|&j| models[j].is_none()).collect();
    let targets: Vec<&[bool]> = todo.iter().map(|&j| ys[j][0].as_slice()).collect();
    for (&j, m) in todo.iter().zip(params.logreg.fit_many(&xs[0].1, Some(&features.idf()), &targets)) {
        let m = m.with_context(|| format!("fitting label {:?}", params.labels[j]))?;
        models[j] = Some(LabelModel::Logreg(m));
    }
    let models: Vec<LabelModel> = models.into_iter().map(|m| m.expect("every label has a model")).collect();
    metrics.fit_seconds = t1.elapsed().as_secs_f64();
    for m in &models {
        if let LabelModel::Constant { reason, .. } = m {
            metrics.notes.push(reason.clone());
        }
        if let LabelModel::Logreg(LogRegModel { solver: Some(s), .. }) = m {
            if !s.converged {
                metrics.notes.push(format!("a solver stopped before its tolerance: {s:?}"));
            }
        }
    }
    let probas: Vec<Vec<Vec<f64>>> = models
        .iter()
        .map(|m| {
            xs.iter()
                .map(|(_, x)| (0..x.n_rows).map(|i| { let (c, v) = x.row(i); m.proba_row(c, v) }).collect())
                .collect()
        })
        .collect();
    let mut thresholds = Vec::new();
    let mut reasons = Vec::new();
    for (j, label) in params.labels.iter().enumerate() {
        let (yv, pv) = (&ys[j][1], &probas[j][1]);
        let (t, f1) = best_threshold(yv, pv, &params.threshold_grid);
        let npos = yv.iter().filter(|&&b| b).count();
        let reason = if npos == 0 {
            metrics.notes.push(format!(
                "label {label:?}: no positives in val, threshold {t} is the first of the grid, not a choice"
            ));
            "no positives in val: first grid value".to_string()
        } else {
            format!("best val F1 {f1:.4} on grid")
        };
        thresholds.push(t);
        reasons.push(reason);
        for (k, part) in Part::ALL.iter().enumerate() {
            let (p, r, f) = precision_recall_f1(&ys[j][k], &probas[j][k], t);
            metrics.rows.push(MetricRow {
                label: label.clone(),
                split: part.as_str().to_string(),
                support: ys[j][k].iter().filter(|&&b| b).count(),
                precision: p,
                recall: r,
                f1: f,
                threshold: t,
            });
        }
    }
    let baseline = Baseline::from_parts(params.labels.clone(), features, models, thresholds, reasons)?;
    Ok(Trained { model: baseline, metrics })
}
