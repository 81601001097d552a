//! The five moderation labels and the scorer interface: [`Label`] (name, target column, labeler column,
//! display name), [`PerLabel`] (one value per label), the reading of their 0/1 columns, and [`Scorer`], the
//! one interface every fitted model offers. (The labeler that writes these columns is [`crate::label`].)
//!
//! Shared vocabulary between steps: labeling (step 8) writes the `is_*` columns, `split` (step 9) turns
//! them into `y_*` targets, `train_baseline` (step 10) fits one model per label, and `error_analysis`,
//! `calibrate` and `score_all` (steps 11-14) only need the [`Scorer`] trait below.

/// One of the five moderation labels: its model name, its target column, its labeler column and its
/// display name, in one place (the arrays below are these, in the seed's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// The review is about the place (the seed's `is_relevant_overall`).
    Relevant,
    /// Advertising or promotion.
    Ads,
    /// Not about the place.
    Irrelevant,
    /// A rant from someone who never visited.
    NonVisit,
    /// Junk text.
    Spam,
}

impl Label {
    /// All labels in the seed's order.
    pub const ALL: [Label; 5] = [Label::Relevant, Label::Ads, Label::Irrelevant, Label::NonVisit, Label::Spam];

    /// Model label name (`p_<name>` / `<name>` columns when scoring).
    pub const fn name(self) -> &'static str {
        match self {
            Label::Relevant => "relevant",
            Label::Ads => "ads",
            Label::Irrelevant => "irrelevant",
            Label::NonVisit => "non_visit",
            Label::Spam => "spam",
        }
    }

    /// Target column made by `split` (the seed's cell 9).
    pub const fn target(self) -> &'static str {
        match self {
            Label::Relevant => "y_relevant",
            Label::Ads => "y_ads",
            Label::Irrelevant => "y_irrelevant",
            Label::NonVisit => "y_non_visit_rant",
            Label::Spam => "y_spam",
        }
    }

    /// Column written by the labeler (the seed's cells 7-8).
    pub const fn labeler_column(self) -> &'static str {
        match self {
            Label::Relevant => "is_relevant_overall",
            Label::Ads => "is_advertisement",
            Label::Irrelevant => "is_irrelevant",
            Label::NonVisit => "is_rant_without_visit",
            Label::Spam => "is_spam",
        }
    }

    /// Name for people (tables, charts).
    pub const fn display(self) -> &'static str {
        match self {
            Label::Relevant => "Relevant",
            Label::Ads => "Ads",
            Label::Irrelevant => "Irrelevant",
            Label::NonVisit => "Non-visit rant",
            Label::Spam => "Spam",
        }
    }

    /// The label of a model label name (`ads`).
    pub fn parse(name: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The label of any of its names: model name, target column or labeler column.
    pub fn of_column(name: &str) -> Option<Label> {
        Label::ALL.into_iter().find(|l| l.name() == name || l.target() == name || l.labeler_column() == name)
    }

    /// The target column of a label given by any of its names ([`Label::of_column`]); an unknown name is an
    /// error listing the model names.
    pub fn target_of(name: &str) -> anyhow::Result<&'static str> {
        Label::of_column(name)
            .map(Label::target)
            .ok_or_else(|| anyhow::anyhow!("unknown label {name:?} (expected one of {LABELS:?} or {TARGETS:?})"))
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One value per label (a review's probabilities, flags or counts), indexed by [`Label`]: `probs[Label::Ads]`.
/// Stored in [`Label::ALL`] order; derefs to that array (and takes a position, `probs[1]`) for code that walks
/// the five columns in order. Its `Debug` is the array's (`[0.1, 0.9, ...]`): the few-shot labeler's settings
/// string, which checkpoints compare, prints its calibration that way.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct PerLabel<T>(pub [T; 5]);

impl<T: std::fmt::Debug> std::fmt::Debug for PerLabel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl<T> PerLabel<T> {
    /// The value `f(label)` for each label.
    pub fn from_fn(f: impl FnMut(Label) -> T) -> Self {
        PerLabel(Label::ALL.map(f))
    }

    /// Each label with its value, in [`Label::ALL`] order.
    pub fn by_label(&self) -> impl Iterator<Item = (Label, &T)> {
        Label::ALL.into_iter().zip(self.0.iter())
    }

    /// `f` applied to every label's value (a per-label value of another type).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerLabel<U> {
        PerLabel(self.0.map(f))
    }
}

impl<T> From<[T; 5]> for PerLabel<T> {
    fn from(values: [T; 5]) -> Self {
        PerLabel(values)
    }
}

impl<T> std::ops::Index<Label> for PerLabel<T> {
    type Output = T;
    fn index(&self, label: Label) -> &T {
        &self.0[label as usize]
    }
}

impl<T> std::ops::IndexMut<Label> for PerLabel<T> {
    fn index_mut(&mut self, label: Label) -> &mut T {
        &mut self.0[label as usize]
    }
}

impl<T> std::ops::Index<usize> for PerLabel<T> {
    type Output = T;
    fn index(&self, position: usize) -> &T {
        &self.0[position]
    }
}

impl<T> std::ops::Deref for PerLabel<T> {
    type Target = [T; 5];
    fn deref(&self) -> &[T; 5] {
        &self.0
    }
}

/// Model label names, in the seed's order ([`Label::name`] of [`Label::ALL`]).
pub const LABELS: [&str; 5] = [
    Label::Relevant.name(),
    Label::Ads.name(),
    Label::Irrelevant.name(),
    Label::NonVisit.name(),
    Label::Spam.name(),
];

/// Target column made by `split` for each label of [`LABELS`] (same order, [`Label::target`]).
pub const TARGETS: [&str; 5] = [
    Label::Relevant.target(),
    Label::Ads.target(),
    Label::Irrelevant.target(),
    Label::NonVisit.target(),
    Label::Spam.target(),
];

/// Column written by the labeler for each label of [`LABELS`] (same order, [`Label::labeler_column`]).
pub const LABEL_COLUMNS: [&str; 5] = [
    Label::Relevant.labeler_column(),
    Label::Ads.labeler_column(),
    Label::Irrelevant.labeler_column(),
    Label::NonVisit.labeler_column(),
    Label::Spam.labeler_column(),
];

/// A 0/1 label or target column (bool, any integer or float type) as `Option<bool>` per row (None: null).
/// Any other value is an error naming the column and the row; nothing is rounded or dropped.
pub fn flag_column(df: &polars::prelude::DataFrame, name: &str) -> anyhow::Result<Vec<Option<bool>>> {
    use anyhow::Context;
    let col = df.column(name).with_context(|| format!("label column {name:?} is missing"))?;
    let as_f = col
        .cast(&polars::prelude::DataType::Float64)
        .with_context(|| format!("label column {name:?} ({}) is not numeric or boolean", col.dtype()))?;
    as_f.f64()?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(None),
            Some(x) if x == 0.0 => Ok(Some(false)),
            Some(x) if x == 1.0 => Ok(Some(true)),
            Some(x) => anyhow::bail!("label column {name:?}, row {i}: value {x} is not 0/1"),
        })
        .collect()
}

/// A 0/1 target column without nulls ([`flag_column`]; a null is an error naming the row).
pub fn target_column(df: &polars::prelude::DataFrame, name: &str) -> anyhow::Result<Vec<bool>> {
    flag_column(df, name)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| anyhow::anyhow!("target column {name:?}, row {i}: null target")))
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_label_is_indexed_by_label_and_prints_as_its_array() {
        let mut p = PerLabel([0.5f32, 0.25, 0.125, 1.0, 0.0]);
        assert_eq!((p[Label::Ads], p[Label::NonVisit]), (0.25, 1.0));
        p[Label::Spam] = 0.75;
        assert_eq!(p[4], 0.75, "positions follow Label::ALL");
        assert_eq!(PerLabel::from_fn(|l| l.name()).0, LABELS);
        // the labeler's settings string (compared by checkpoints) prints calibrations with {:?}
        let a = [[1.5f32, -2.0, 0.0, 3.25, 1e-3]; 5];
        assert_eq!(format!("{:?}", PerLabel(a.map(PerLabel))), format!("{a:?}"));
        assert_eq!(format!("{:.3?}", PerLabel([Some(0.5f64), None, None, None, None])), "[Some(0.500), None, None, None, None]");
    }
}
