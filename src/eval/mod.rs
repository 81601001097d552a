//! Steps 11-12: evaluation of a fitted [`Scorer`](crate::moderation::Scorer) on the ML-ready frame.
//!
//! - [`metrics`]: confusion counts, precision / recall / F1 / support (pure).
//! - [`pr`]: the precision-recall curve with scikit-learn's semantics and the argmax-F1 point (pure).
//! - [`calibrate`](mod@calibrate): seed cell 12, thresholds from validation PR curves with the small-support guard.
//! - [`errors`]: seed cell 11, per label and split metrics and the misclassified examples.
//! - [`frame`]: reading `text`, `y_*` and `split` out of the data frame with row-naming errors.

pub mod calibrate;
pub mod errors;
pub mod frame;
pub mod metrics;
pub mod pr;

pub use calibrate::{calibrate, calibrate_label, CalibrateParams, Calibration, Decision, GuardObjection, LabelCalibration};
pub use errors::{error_analysis, ErrorAnalysis, ErrorAnalysisParams, Misclassified};
pub use metrics::Counts;
pub use pr::{pr_curve, BestF1, PrCurve};
