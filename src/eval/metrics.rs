//! Binary classification counts and scores (precision, recall, F1, support), the way scikit-learn's
//! `precision_recall_fscore_support(..., average="binary", zero_division=0)` reports them.
//!
//! Pure functions on slices: `error_analysis` and `calibrate` wrap them with data frames and files.

use anyhow::{bail, Result};

/// Confusion counts of one label: what every metric in this module is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Predicted 1, truly 1.
    pub tp: usize,
    /// Predicted 1, truly 0.
    pub fp: usize,
    /// Predicted 0, truly 0.
    pub tn: usize,
    /// Predicted 0, truly 1.
    pub fn_: usize,
}

impl Counts {
    /// Counts `y_true` against `y_pred` (same length, else an error naming both lengths).
    pub fn from_predictions(y_true: &[bool], y_pred: &[bool]) -> Result<Self> {
        if y_true.len() != y_pred.len() {
            bail!("y_true has {} rows but y_pred has {}", y_true.len(), y_pred.len());
        }
        let mut c = Counts::default();
        for (&t, &p) in y_true.iter().zip(y_pred) {
            match (t, p) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        Ok(c)
    }

    /// Counts the predictions `score >= threshold` (the seed's and scikit-learn's decision rule).
    pub fn at_threshold(y_true: &[bool], scores: &[f64], threshold: f64) -> Result<Self> {
        let pred: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
        Self::from_predictions(y_true, &pred)
    }

    /// Number of truly positive rows (scikit-learn's `support` of the positive class).
    pub fn support(&self) -> usize {
        self.tp + self.fn_
    }

    /// Number of rows predicted positive ("flagged").
    pub fn flagged(&self) -> usize {
        self.tp + self.fp
    }

    /// All rows counted.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// tp / (tp + fp); 0 when nothing is flagged (scikit-learn's `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// tp / (tp + fn); 0 when there are no positives (scikit-learn's `zero_division=0`).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// 2 tp / (2 tp + fp + fn), the harmonic mean of precision and recall; 0 when undefined.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// Fraction of rows flagged: what the small-support guard compares with the base rate.
    pub fn flag_rate(&self) -> f64 {
        ratio(self.flagged(), self.total())
    }

    /// Fraction of rows truly positive (the labeled base rate).
    pub fn base_rate(&self) -> f64 {
        ratio(self.support(), self.total())
    }
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_scores_match_hand_computation() {
        let y = [true, true, false, false, true, false];
        let s = [0.9, 0.4, 0.6, 0.1, 0.5, 0.5];
        let c = Counts::at_threshold(&y, &s, 0.5).unwrap();
        assert_eq!(c, Counts { tp: 2, fp: 2, tn: 1, fn_: 1 });
        assert_eq!(c.precision(), 0.5);
        assert!((c.recall() - 2.0 / 3.0).abs() < 1e-15);
        assert!((c.f1() - 4.0 / 7.0).abs() < 1e-15);
        assert_eq!(c.flag_rate(), 4.0 / 6.0);
        assert_eq!(c.base_rate(), 0.5);
    }

    #[test]
    fn zero_division_gives_zero_like_sklearn() {
        let c = Counts::at_threshold(&[false, false], &[0.1, 0.2], 0.5).unwrap();
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
        assert!(Counts::from_predictions(&[true], &[]).is_err());
    }
}
