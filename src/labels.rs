//! The five moderation labels and the one interface every fitted scorer offers.
//!
//! Shared vocabulary between steps: labeling (step 8) writes the `is_*` columns, `split` (step 9) turns
//! them into `y_*` targets, `train_baseline` (step 10) fits one model per label, and `error_analysis`,
//! `calibrate` and `score_all` (steps 11-14) only need the [`Scorer`] trait below.

/// Model label names, in the seed's order (`p_<label>` / `<label>` columns when scoring).
pub const LABELS: [&str; 5] = ["relevant", "ads", "irrelevant", "non_visit", "spam"];

/// Target column made by `split` for each label of [`LABELS`] (same order), as in the seed's cell 9.
pub const TARGETS: [&str; 5] = ["y_relevant", "y_ads", "y_irrelevant", "y_non_visit_rant", "y_spam"];

/// Column written by the labeler for each label of [`LABELS`] (same order), as in the seed's cells 7-8.
pub const LABEL_COLUMNS: [&str; 5] = [
    "is_relevant_overall",
    "is_advertisement",
    "is_irrelevant",
    "is_rant_without_visit",
    "is_spam",
];

/// A fitted multi-label text scorer: what evaluation, calibration and scoring need from a model.
///
/// `train_baseline` returns a type implementing this; `score_all` and `calibrate` are written against it
/// so they do not care how the probabilities are produced.
pub trait Scorer: Send + Sync {
    /// Label names of the columns returned by [`Scorer::predict_proba`], in order.
    fn labels(&self) -> &[String];
    /// Decision threshold per label (same order as [`Scorer::labels`]): `p >= t` flags the label.
    fn thresholds(&self) -> &[f64];
    /// Probability of the positive class for every text (rows) and label (columns).
    fn predict_proba(&self, texts: &[&str]) -> ndarray::Array2<f64>;
}
