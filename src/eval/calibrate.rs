//! Seed cell 12: per-label threshold = argmax F1 on the validation precision-recall curve, with the
//! small-support guard the seed lacked.
//!
//! The seed calibrated on 1-5 validation positives, picked thresholds of 0.025-0.058 and then flagged 66%
//! of 842,851 reviews as ads. The guard keeps the previous threshold (and says why, loudly, in the display,
//! on stderr and in thresholds.json) when a label has fewer than `min_positives` validation positives, or
//! when the F1-optimal threshold would flag more than `max_flag_multiple` times the labeled base rate of
//! the validation rows. If the previous threshold fails that flag-rate rule too (it came from the same few
//! positives), the guard falls back to `fallback_threshold` (0.5). `guard: false` reproduces the seed (the
//! verdict is still reported).

use std::io::Write;

use anyhow::{Context, Result};
use polars::prelude::{df, DataFrame};

use super::frame;
use super::metrics::Counts;
use super::pr::{pr_curve, BestF1, PrCurve};
use crate::moderation::{target_column, Label, Scorer};
use crate::split::Part;
use crate::params::{self, ParamError};

/// Calibration settings; defaults: guard on, at least 5 validation positives, at most 3x the base rate.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateParams {
    /// Part of the split the curves are computed on (the seed: validation).
    pub split: Part,
    /// Guard on (recommended) or off (reproduces the seed's thresholds).
    pub guard: bool,
    /// Fewer validation positives than this keeps the previous threshold.
    pub min_positives: usize,
    /// A threshold flagging more than this multiple of the labeled validation base rate is rejected.
    pub max_flag_multiple: f64,
    /// Used instead of the previous threshold when the guard rejects the new one and the previous one fails
    /// the flag-rate rule too (it came from the same few positives, e.g. the grid's 0.1 on one validation
    /// positive): 0.5, the decision point of a class-balanced logistic regression.
    pub fallback_threshold: f64,
}

impl Default for CalibrateParams {
    fn default() -> Self {
        Self { split: Part::Val, guard: true, min_positives: 5, max_flag_multiple: 3.0, fallback_threshold: 0.5 }
    }
}

impl CalibrateParams {
    /// Checks the parameters before any work ([`crate::params`]): `max_flag_multiple` positive,
    /// `fallback_threshold` strictly between 0 and 1.
    pub fn check(&self) -> Result<&Self, ParamError> {
        params::positive("max_flag_multiple", self.max_flag_multiple)?;
        params::unit_open("fallback_threshold", self.fallback_threshold)?;
        Ok(self)
    }
}

/// What calibration decided for one label, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelCalibration {
    /// Model label name.
    pub label: String,
    /// Validation rows.
    pub n: usize,
    /// Validation positives.
    pub positives: usize,
    /// positives / n.
    pub base_rate: f64,
    /// Threshold before calibration (the model's).
    pub old_threshold: f64,
    /// Validation flag rate at the old threshold.
    pub old_flag_rate: f64,
    /// The seed's choice: argmax F1 on the curve.
    pub best: BestF1,
    /// Validation flag rate at the F1-optimal threshold.
    pub best_flag_rate: f64,
    /// Threshold after calibration.
    pub new_threshold: f64,
    /// What was decided and why ([`Decision::decide`]): `status()`, `warnings()` and `reasons()` all
    /// read it.
    pub decision: Decision,
}

/// The small-support guard's objection to a label's F1-optimal threshold.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardObjection {
    /// Fewer validation positives than `min_positives`: a PR curve on so few points is noise.
    FewPositives {
        /// Validation positives.
        positives: usize,
        /// The guard's minimum.
        min_positives: usize,
        /// The F1-optimal threshold.
        threshold: f64,
        /// Validation flag rate at that threshold.
        flag_rate: f64,
    },
    /// The F1-optimal threshold flags more than `max_flag_multiple` times the labeled base rate.
    FlagsTooMany {
        /// The F1-optimal threshold.
        threshold: f64,
        /// Validation flag rate at that threshold.
        flag_rate: f64,
        /// The guard's multiple.
        max_flag_multiple: f64,
        /// Validation positives / rows.
        base_rate: f64,
    },
}

impl std::fmt::Display for GuardObjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            GuardObjection::FewPositives { positives, min_positives, threshold, flag_rate } => write!(
                f,
                "only {positives} validation positive(s) (< min_positives {min_positives}): a PR curve on so few \
                 points is noise; the F1-optimal threshold {threshold:.4} would flag {:.1}% of validation rows",
                100.0 * flag_rate
            ),
            GuardObjection::FlagsTooMany { threshold, flag_rate, max_flag_multiple, base_rate } => write!(
                f,
                "the F1-optimal threshold {threshold:.4} would flag {:.1}% of validation rows, more than \
                 {max_flag_multiple}x the labeled base rate {:.1}%",
                100.0 * flag_rate,
                100.0 * base_rate
            ),
        }
    }
}

/// What calibration decided for one label: one value instead of three flags that had to agree.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The F1-optimal threshold, with no objection from the guard.
    Updated,
    /// The F1-optimal threshold although the guard objects (guard off: the seed's behaviour).
    UpdatedDespiteGuard(GuardObjection),
    /// The previous threshold kept by the guard.
    Kept(GuardObjection),
    /// The guard's fallback threshold: it objects to the F1-optimal one and the previous one flags too
    /// much as well.
    FellBack(GuardObjection),
}

impl Decision {
    /// The one place the decision is made: the guard's `objection` (if any) stops the F1-optimal
    /// threshold only when the guard is on; then the previous threshold is kept if `old_ok` (it passes
    /// the flag-rate rule, or is the fallback), else the fallback replaces it.
    pub fn decide(guard: bool, objection: Option<GuardObjection>, old_ok: bool) -> Decision {
        match objection {
            None => Decision::Updated,
            Some(o) if !guard => Decision::UpdatedDespiteGuard(o),
            Some(o) if old_ok => Decision::Kept(o),
            Some(o) => Decision::FellBack(o),
        }
    }

    /// Whether the new threshold is the F1-optimal one.
    pub fn updated(&self) -> bool {
        matches!(self, Decision::Updated | Decision::UpdatedDespiteGuard(_))
    }

    /// The guard's objection, if any (reported even with the guard off).
    pub fn objection(&self) -> Option<&GuardObjection> {
        match self {
            Decision::Updated => None,
            Decision::UpdatedDespiteGuard(o) | Decision::Kept(o) | Decision::FellBack(o) => Some(o),
        }
    }
}

impl LabelCalibration {
    /// One-word outcome for tables: `updated`, `KEPT (guard)`, `FALLBACK (guard)` or
    /// `UPDATED DESPITE GUARD (guard off)`.
    pub fn status(&self) -> &'static str {
        match self.decision {
            Decision::Updated => "updated",
            Decision::FellBack(_) => "FALLBACK (guard)",
            Decision::Kept(_) => "KEPT (guard)",
            Decision::UpdatedDespiteGuard(_) => "UPDATED DESPITE GUARD (guard off)",
        }
    }
}

/// Calibrates one label from its validation targets and scores (pure; [`calibrate`] wraps it).
pub fn calibrate_label(
    label: &str,
    y: &[bool],
    p: &[f64],
    old_threshold: f64,
    params: &CalibrateParams,
) -> Result<(LabelCalibration, PrCurve)> {
    let curve = pr_curve(y, p).with_context(|| format!("label `{label}`"))?;
    let best = curve.best_f1();
    let n = y.len();
    let positives = curve.positives;
    let base_rate = positives as f64 / n as f64;
    let old_flag_rate = Counts::at_threshold(y, p, old_threshold)?.flag_rate();
    let best_flag_rate = Counts::at_threshold(y, p, best.threshold)?.flag_rate();
    let objection = if positives < params.min_positives {
        Some(GuardObjection::FewPositives {
            positives,
            min_positives: params.min_positives,
            threshold: best.threshold,
            flag_rate: best_flag_rate,
        })
    } else if best_flag_rate > params.max_flag_multiple * base_rate {
        Some(GuardObjection::FlagsTooMany {
            threshold: best.threshold,
            flag_rate: best_flag_rate,
            max_flag_multiple: params.max_flag_multiple,
            base_rate,
        })
    } else {
        None
    };
    // The previous threshold is kept only if it passes the flag-rate rule itself (or is the fallback).
    let old_ok = old_flag_rate <= params.max_flag_multiple * base_rate || old_threshold == params.fallback_threshold;
    let decision = Decision::decide(params.guard, objection, old_ok);
    let new_threshold = match decision {
        Decision::Updated | Decision::UpdatedDespiteGuard(_) => best.threshold,
        Decision::FellBack(_) => params.fallback_threshold,
        Decision::Kept(_) => old_threshold,
    };
    Ok((
        LabelCalibration {
            label: label.to_string(),
            n,
            positives,
            base_rate,
            old_threshold,
            old_flag_rate,
            best,
            best_flag_rate,
            new_threshold,
            decision,
        },
        curve,
    ))
}

/// Result of [`calibrate`]: per-label decisions and curves, with displays and file output.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Settings used.
    pub params: CalibrateParams,
    /// One entry per model label, in the model's order.
    pub labels: Vec<LabelCalibration>,
    /// The validation precision-recall curve of each label (same order).
    pub curves: Vec<PrCurve>,
}

/// Seed cell 12: PR curve per label on the validation split of `data` (the ML-ready frame with `text`,
/// `y_*` and `split`), threshold = argmax F1, guarded. Quiet: the guard's warnings are values ([`Calibration::warnings`],
/// shown by its display; the caller prints them where it wants); does not change
/// the model (apply [`Calibration::thresholds`] and save with [`Calibration::update_thresholds_json`]).
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-calibrate-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// # let labeled = label_with_ckpt(&df, 400, 200, dir.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default())?.labeled;
/// # let ml = split(&labeled, &SplitParams::default())?;
/// # let baseline = train_baseline(&ml, &BaselineParams::default())?.model;
/// let cal: Calibration = calibrate(&baseline, &ml.df, &CalibrateParams::default())?;
/// assert_eq!(cal.labels.len(), 5);
/// for w in cal.warnings() { println!("warning: {w}"); } // the small-support guard's refusals, as values
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn calibrate(model: &dyn Scorer, data: &DataFrame, params: &CalibrateParams) -> Result<Calibration> {
    params.check()?;
    let rows = frame::split_rows(data, params.split)?;
    anyhow::ensure!(!rows.is_empty(), "calibrate: no rows with split == \"{}\"", params.split);
    let (all_texts, _) = frame::texts(data, "text")?;
    let texts = frame::take(&all_texts, &rows);
    let proba = model.predict_proba(&texts);
    let mut labels = Vec::new();
    let mut curves = Vec::new();
    for (j, label) in model.labels().iter().enumerate() {
        let y = frame::take(&target_column(data, Label::target_of(label)?)?, &rows);
        let p: Vec<f64> = proba.column(j).to_vec();
        let (lc, curve) = calibrate_label(label, &y, &p, model.thresholds()[j], params)?;
        labels.push(lc);
        curves.push(curve);
    }
    Ok(Calibration { params: params.clone(), labels, curves })
}

impl Calibration {
    /// New threshold per label (model order).
    pub fn thresholds(&self) -> Vec<f64> {
        self.labels.iter().map(|l| l.new_threshold).collect()
    }

    /// Loud one-line warnings, one per label the guard objected to.
    pub fn warnings(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter_map(|l| {
                Some(match &l.decision {
                    Decision::Updated => return None,
                    Decision::UpdatedDespiteGuard(r) => format!(
                        "WARNING calibrate: `{}`: guard OFF, threshold {:.4} applied although {r}",
                        l.label, l.new_threshold
                    ),
                    Decision::FellBack(r) => format!(
                            "WARNING calibrate: `{}`: threshold set to the fallback {:.4}: the previous {:.4} flags \
                             {:.1}% of validation rows (more than {}x the base rate {:.1}%) and {r}",
                            l.label,
                            l.new_threshold,
                            l.old_threshold,
                            100.0 * l.old_flag_rate,
                            self.params.max_flag_multiple,
                            100.0 * l.base_rate
                        ),
                    Decision::Kept(r) => format!(
                        "WARNING calibrate: `{}`: kept previous threshold {:.4} because {r}",
                        l.label, l.old_threshold
                    ),
                })
            })
            .collect()
    }

    /// Old vs new thresholds table (the seed's cell 12 output plus the guard's columns).
    pub fn table(&self) -> Result<DataFrame> {
        let l = &self.labels;
        let df = df![
            "label" => l.iter().map(|x| x.label.clone()).collect::<Vec<_>>(),
            "val_positives" => l.iter().map(|x| x.positives as u32).collect::<Vec<_>>(),
            "val_rows" => l.iter().map(|x| x.n as u32).collect::<Vec<_>>(),
            "base_rate" => l.iter().map(|x| x.base_rate).collect::<Vec<_>>(),
            "old_threshold" => l.iter().map(|x| x.old_threshold).collect::<Vec<_>>(),
            "old_flag_rate" => l.iter().map(|x| x.old_flag_rate).collect::<Vec<_>>(),
            "f1_threshold" => l.iter().map(|x| x.best.threshold).collect::<Vec<_>>(),
            "f1" => l.iter().map(|x| x.best.f1).collect::<Vec<_>>(),
            "f1_flag_rate" => l.iter().map(|x| x.best_flag_rate).collect::<Vec<_>>(),
            "new_threshold" => l.iter().map(|x| x.new_threshold).collect::<Vec<_>>(),
            "status" => l.iter().map(|x| x.status().to_string()).collect::<Vec<_>>(),
            "reason" => l.iter().map(|x| x.decision.objection().map(|o| o.to_string())).collect::<Vec<_>>(),
        ]?;
        Ok(df)
    }
}

/// Point of `curve` at threshold `t`: the curve point of the smallest curve threshold >= t (what
/// `score >= t` flags), or the final (recall 0, precision 1) point when t is above every score.
fn point_at(curve: &PrCurve, t: f64) -> (f64, f64) {
    let i = curve.thresholds.partition_point(|&x| x < t);
    (curve.recall[i], curve.precision[i])
}

impl Calibration {
    /// PR curves of all labels in one chart: the applied threshold as a filled circle, an F1-optimal
    /// threshold the guard rejected as a cross.
    pub fn chart(&self) -> Result<crate::show::Svg> {
        use crate::show::chart::{pr_curves, PrSeries};
        let series: Vec<PrSeries<'_>> = self
            .labels
            .iter()
            .zip(&self.curves)
            .map(|(l, c)| PrSeries {
                name: &l.label,
                recall: &c.recall,
                precision: &c.precision,
                chosen: Some(point_at(c, l.new_threshold)),
                rejected: (!l.decision.updated()).then(|| (l.best.recall, l.best.precision)),
            })
            .collect();
        let title = format!(
            "Precision-recall on {} (guard {}): • applied, × rejected by guard",
            self.params.split,
            if self.params.guard { "on" } else { "OFF" }
        );
        pr_curves(&title, &series)
    }

    /// Warnings (red), the old vs new thresholds table and the PR chart, as one cell output.
    pub fn show(&self) -> Result<crate::show::Many> {
        use crate::show::{escape_html, DataFrameShow, Html, Many};
        let mut m = Many::new();
        let w = self.warnings();
        if !w.is_empty() {
            let items: String = w.iter().map(|x| format!("<li>{}</li>", escape_html(x))).collect();
            m = m.with(&Html(format!(
                "<div style=\"border:3px solid #c00;background:#fee;padding:6px;color:#900\"><b>Small-support \
                 guard ({} of {} labels)</b><ul>{items}</ul></div>",
                w.len(),
                self.labels.len()
            )));
        }
        Ok(m.heading("Thresholds: old vs new").with(&self.table()?.table(20)).with(&self.chart()?))
    }

    /// Shows [`Calibration::show`] in an evcxr cell.
    pub fn evcxr_display(&self) {
        match self.show() {
            Ok(m) => m.evcxr_display(),
            Err(e) => crate::show::emit(&[("text/plain", format!("calibration display failed: {e:#}"))]),
        }
    }

    /// Saves the charts: `pr_curves.svg` (all labels) and `pr_<label>.svg` (one per label) in `dir`.
    pub fn save_charts(&self, dir: impl AsRef<std::path::Path>) -> Result<Vec<std::path::PathBuf>> {
        use crate::show::chart::{pr_curves, PrSeries};
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut paths = vec![dir.join("pr_curves.svg")];
        self.chart()?.save(&paths[0])?;
        for (l, c) in self.labels.iter().zip(&self.curves) {
            let p = dir.join(format!("pr_{}.svg", l.label));
            let s = PrSeries {
                name: &l.label,
                recall: &c.recall,
                precision: &c.precision,
                chosen: Some(point_at(c, l.new_threshold)),
                rejected: (!l.decision.updated()).then(|| (l.best.recall, l.best.precision)),
            };
            let title = format!(
                "{}: {} val positives, threshold {:.4} ({})",
                l.label,
                l.positives,
                l.new_threshold,
                l.status()
            );
            pr_curves(&title, &[s])?.save(&p)?;
            paths.push(p);
        }
        Ok(paths)
    }

    /// Per-label JSON record written into thresholds.json under `"calibration"`: the decision and why.
    pub fn records(&self) -> serde_json::Value {
        let per_label: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|l| {
                (
                    l.label.clone(),
                    serde_json::json!({
                        "status": l.status(),
                        "old_threshold": l.old_threshold,
                        "f1_threshold": l.best.threshold,
                        "f1": l.best.f1,
                        "new_threshold": l.new_threshold,
                        "val_positives": l.positives,
                        "val_rows": l.n,
                        "base_rate": l.base_rate,
                        "f1_flag_rate": l.best_flag_rate,
                        "reason": l.decision.objection().map(|o| o.to_string()),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "method": "argmax F1 on the validation precision-recall curve (scikit-learn semantics)",
            "split": self.params.split.as_str(),
            "guard": self.params.guard,
            "min_positives": self.params.min_positives,
            "max_flag_multiple": self.params.max_flag_multiple,
            "fallback_threshold": self.params.fallback_threshold,
            "labels": per_label,
        })
    }
}

impl Calibration {
    /// Why each label has its new threshold, one line per label (goes into thresholds.json `reasons`).
    pub fn reasons(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|l| match &l.decision {
                Decision::Updated => format!(
                    "calibrated: argmax F1 {:.4} on the {} PR curve ({} positives of {} rows)",
                    l.best.f1, self.params.split, l.positives, l.n
                ),
                Decision::FellBack(r) => format!(
                    "fallback {:.4} by the small-support guard (the previous {:.4} flags {:.1}% of {} rows): {r}",
                    l.new_threshold,
                    l.old_threshold,
                    100.0 * l.old_flag_rate,
                    self.params.split
                ),
                Decision::Kept(r) => format!("kept by the small-support guard: {r}"),
                Decision::UpdatedDespiteGuard(r) => format!("calibrated with the guard OFF (seed behaviour) although {r}"),
            })
            .collect()
    }

    /// Sets the new thresholds (and their reasons) on the fitted baseline; save it to persist them.
    pub fn apply(&self, model: &mut crate::train::Baseline) -> Result<()> {
        for (l, why) in self.labels.iter().zip(self.reasons()) {
            model.set_threshold(&l.label, l.new_threshold, &why)?;
        }
        Ok(())
    }

    /// Seed cell 12's side effects in one call: sets the thresholds on `model`, updates
    /// `<model_dir>/thresholds.json` (thresholds, reasons, guard record) and saves the PR charts as
    /// `<model_dir>/pr_curves/*.svg`. Returns the files written.
    pub fn persist(&self, model: &mut crate::train::Baseline, model_dir: impl AsRef<std::path::Path>) -> Result<Vec<std::path::PathBuf>> {
        let dir = model_dir.as_ref();
        self.apply(model)?;
        let th = dir.join("thresholds.json");
        self.update_thresholds_json(&th)?;
        let mut files = vec![th];
        files.extend(self.save_charts(dir.join("pr_curves"))?);
        Ok(files)
    }

    /// Updates `thresholds.json` in place (the model directory's file): `thresholds` and `reasons` per
    /// label, plus a `calibration` record with the guard's settings and each label's decision. Other keys
    /// are kept, so the model still loads.
    pub fn update_thresholds_json(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        use serde_json::{json, Value};
        let path = path.as_ref();
        let mut v: Value = match std::fs::read_to_string(path) {
            Ok(s) => serde_json::from_str(&s).with_context(|| format!("parsing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"version": 1}),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let obj = v.as_object_mut().with_context(|| format!("{} is not a JSON object", path.display()))?;
        for key in ["thresholds", "reasons"] {
            if !obj.get(key).is_some_and(Value::is_object) {
                obj.insert(key.into(), json!({}));
            }
        }
        for (l, why) in self.labels.iter().zip(self.reasons()) {
            obj["thresholds"][&l.label] = json!(l.new_threshold);
            obj["reasons"][&l.label] = json!(why);
        }
        obj.insert("calibration".into(), self.records());
        let text = serde_json::to_string_pretty(&v)?;
        crate::output::write_atomic(path, |f| Ok(f.write_all(text.as_bytes())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_at_follows_the_flag_rule() {
        let c = pr_curve(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert_eq!(point_at(&c, 0.35), (1.0, 2.0 / 3.0));
        assert_eq!(point_at(&c, 0.36), (0.5, 0.5));
        assert_eq!(point_at(&c, 0.9), (0.0, 1.0));
    }
}
