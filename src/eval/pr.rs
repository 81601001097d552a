//! Precision-recall curve with scikit-learn's `precision_recall_curve` semantics (default
//! `drop_intermediate=False`), and the seed's threshold choice: the point of maximal F1.
//!
//! Same points as scikit-learn on the same scores: scores sorted descending, one point per distinct
//! score (the threshold), true/false positives counted at the last row of each run of ties;
//! precision = tp / (tp + fp); recall = tp / P, or 1 everywhere when there is no positive (scikit-learn
//! warns then); both reversed so that thresholds increase, with the final point (precision 1,
//! recall 0) that has no threshold.

use anyhow::{bail, Result};

/// One label's precision-recall curve: `precision.len() == recall.len() == thresholds.len() + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision at each threshold (increasing thresholds), then 1.0.
    pub precision: Vec<f64>,
    /// Recall at each threshold (non-increasing), then 0.0.
    pub recall: Vec<f64>,
    /// Distinct scores in increasing order: point `i` flags every row with `score >= thresholds[i]`.
    pub thresholds: Vec<f64>,
    /// Number of positive rows in `y_true`.
    pub positives: usize,
    /// Number of rows.
    pub n: usize,
}

/// The threshold the seed would pick: the curve point of maximal F1 (first one on ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestF1 {
    /// Index into [`PrCurve::thresholds`].
    pub index: usize,
    /// The threshold itself.
    pub threshold: f64,
    /// Precision, recall and F1 at that point.
    pub precision: f64,
    /// Recall at that point.
    pub recall: f64,
    /// F1 at that point (0 where precision + recall is 0).
    pub f1: f64,
}

/// Computes the precision-recall curve of `scores` against `y_true`, exactly as scikit-learn does.
///
/// Errors (instead of a silent wrong curve) on different lengths, no rows, or non-finite scores.
pub fn pr_curve(y_true: &[bool], scores: &[f64]) -> Result<PrCurve> {
    if y_true.len() != scores.len() {
        bail!("pr_curve: y_true has {} rows but scores has {}", y_true.len(), scores.len());
    }
    if scores.is_empty() {
        bail!("pr_curve: no rows to build a precision-recall curve from");
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        bail!("pr_curve: score at row {i} is {} (scores must be finite)", scores[i]);
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Stable descending sort; tie order does not change any point (counts are read at run ends).
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).expect("finite"));

    let mut tps: Vec<f64> = Vec::new();
    let mut fps: Vec<f64> = Vec::new();
    let mut thr: Vec<f64> = Vec::new();
    let mut tp = 0.0f64;
    for (k, &i) in order.iter().enumerate() {
        if y_true[i] {
            tp += 1.0;
        }
        let last_of_run = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last_of_run {
            tps.push(tp);
            fps.push(1.0 + k as f64 - tp);
            thr.push(scores[i]);
        }
    }
    let total_pos = *tps.last().expect("non-empty");
    let m = tps.len();
    let mut precision = Vec::with_capacity(m + 1);
    let mut recall = Vec::with_capacity(m + 1);
    for j in (0..m).rev() {
        let ps = tps[j] + fps[j];
        precision.push(if ps != 0.0 { tps[j] / ps } else { 0.0 });
        recall.push(if total_pos == 0.0 { 1.0 } else { tps[j] / total_pos });
    }
    precision.push(1.0);
    recall.push(0.0);
    thr.reverse();
    Ok(PrCurve { precision, recall, thresholds: thr, positives: total_pos as usize, n: scores.len() })
}

impl PrCurve {
    /// F1 = 2 p r / (p + r) at every point that has a threshold (0 where p + r = 0).
    pub fn f1(&self) -> Vec<f64> {
        (0..self.thresholds.len())
            .map(|i| {
                let (p, r) = (self.precision[i], self.recall[i]);
                if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The seed's choice: argmax F1 over the points that have a threshold (first maximum wins).
    pub fn best_f1(&self) -> BestF1 {
        let f1 = self.f1();
        let mut best = 0;
        for (i, &v) in f1.iter().enumerate() {
            if v > f1[best] {
                best = i;
            }
        }
        BestF1 {
            index: best,
            threshold: self.thresholds[best],
            precision: self.precision[best],
            recall: self.recall[best],
            f1: f1[best],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sklearn_doc_example() {
        // scikit-learn's docstring example: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8].
        let c = pr_curve(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert_eq!(c.precision, vec![0.5, 2.0 / 3.0, 0.5, 1.0, 1.0]);
        assert_eq!(c.recall, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(c.thresholds, vec![0.1, 0.35, 0.4, 0.8]);
        let b = c.best_f1();
        assert_eq!(b.threshold, 0.35);
    }

    #[test]
    fn ties_make_one_point_and_no_positive_gives_recall_one() {
        let c = pr_curve(&[false, false, false], &[0.2, 0.2, 0.7]).unwrap();
        assert_eq!(c.thresholds, vec![0.2, 0.7]);
        assert_eq!(c.recall, vec![1.0, 1.0, 0.0]);
        assert_eq!(c.precision, vec![0.0, 0.0, 1.0]);
        assert_eq!(c.positives, 0);
        assert!(pr_curve(&[true], &[f64::NAN]).is_err());
        assert!(pr_curve(&[], &[]).is_err());
    }
}
