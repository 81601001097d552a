//! Every step checks its parameters before any work (linfa-style `check()`), with a typed error that names
//! the field: the steps are given input they could never finish on (an empty frame, a missing file), so an
//! error other than the parameter's would show that work started before the check.

use polars::prelude::*;
use revmod::config::Config;
use revmod::data::{write_sample, SampleParams};
use revmod::eval::{calibrate, error_analysis, CalibrateParams, ErrorAnalysisParams};
use revmod::moderation::Scorer;
use revmod::linear::{LogRegError, LogRegParams};
use revmod::params::ParamError;
use revmod::score::{score_all, score_files, ScoreFiles, ScoreParams};
use revmod::split::{split, SplitParams};
use revmod::text::{TextFeaturesParams, TfidfError, TfidfParams};
use revmod::train::BaselineParams;

/// A scorer that must never be called.
struct Never;
impl Scorer for Never {
    fn labels(&self) -> &[String] {
        unreachable!("the parameter check comes first")
    }
    fn thresholds(&self) -> &[f64] {
        unreachable!("the parameter check comes first")
    }
    fn predict_proba(&self, _: &[&str]) -> ndarray::Array2<f64> {
        unreachable!("the parameter check comes first")
    }
}

fn param_error(e: anyhow::Error) -> ParamError {
    e.downcast_ref::<ParamError>().unwrap_or_else(|| panic!("not a parameter error: {e:#}")).clone()
}

#[test]
fn split_checks_shares_and_stratify_order() {
    let empty = DataFrame::empty();
    let e = |p: SplitParams| param_error(split(&empty, &p).unwrap_err());
    assert_eq!(e(SplitParams { test_size: 0.0, ..Default::default() }), ParamError::OutsideUnitInterval { name: "test_size", value: 0.0 });
    assert_eq!(
        e(SplitParams { test_share_of_holdout: 1.0, ..Default::default() }),
        ParamError::OutsideUnitInterval { name: "test_share_of_holdout", value: 1.0 }
    );
    let mut order = SplitParams::default().stratify_order;
    order[0] = "y_bogus".into();
    assert!(matches!(e(SplitParams { stratify_order: order, ..Default::default() }), ParamError::Unknown { name: "stratify_order", .. }));
    let order = vec!["y_ads".to_string(), "y_ads".to_string()];
    assert_eq!(
        e(SplitParams { stratify_order: order, ..Default::default() }),
        ParamError::Repeated { name: "stratify_order", value: "y_ads".into() }
    );
    assert!(SplitParams::default().check().is_ok());
}

#[test]
fn train_baseline_checks_models_grid_and_labels() {
    let d = BaselineParams::default;
    assert!(d().check().is_ok());
    let bad_c = BaselineParams { logreg: LogRegParams { c: -1.0, ..Default::default() }, ..d() };
    assert_eq!(bad_c.check().unwrap_err(), ParamError::LogReg(LogRegError::InvalidC(-1.0)));
    let reversed = TextFeaturesParams { word: TfidfParams { ngram_range: (2, 1), ..TfidfParams::seed_word() }, ..Default::default() };
    assert_eq!(BaselineParams { features: reversed, ..d() }.check().unwrap_err(), ParamError::Tfidf(TfidfError::InvalidNgramRange(2, 1)));
    assert_eq!(
        BaselineParams { threshold_grid: vec![0.5, 1.0], ..d() }.check().unwrap_err(),
        ParamError::OutsideUnitInterval { name: "threshold_grid", value: 1.0 }
    );
    assert_eq!(BaselineParams { threshold_grid: vec![], ..d() }.check().unwrap_err(), ParamError::Empty { name: "threshold_grid" });
    assert!(matches!(
        BaselineParams { labels: vec!["adverts".into()], ..d() }.check().unwrap_err(),
        ParamError::Unknown { name: "labels", .. }
    ));
}

#[test]
fn calibrate_and_error_analysis_check_before_scoring() {
    let empty = DataFrame::empty();
    let e = |p: CalibrateParams| param_error(calibrate(&Never, &empty, &p).unwrap_err());
    assert_eq!(
        e(CalibrateParams { fallback_threshold: 1.5, ..Default::default() }),
        ParamError::OutsideUnitInterval { name: "fallback_threshold", value: 1.5 }
    );
    assert_eq!(
        e(CalibrateParams { max_flag_multiple: 0.0, ..Default::default() }),
        ParamError::NotPositive { name: "max_flag_multiple", value: 0.0 }
    );
    let p = ErrorAnalysisParams { splits: vec![], ..Default::default() };
    assert_eq!(param_error(error_analysis(&Never, &empty, &p).unwrap_err()), ParamError::Empty { name: "splits" });
}

#[test]
fn scoring_refuses_zero_sizes_instead_of_raising_them() {
    let df = df!("text" => ["a review"]).unwrap();
    let e = |p: ScoreParams| param_error(score_all(&Never, &df, &p).unwrap_err());
    assert_eq!(e(ScoreParams { batch_rows: 0, ..Default::default() }), ParamError::Zero { name: "batch_rows" });
    assert_eq!(e(ScoreParams { chunk_rows: 0, ..Default::default() }), ParamError::Zero { name: "chunk_rows" });
    let files = ScoreFiles { reviews: "/nonexistent/review.json".into(), meta: None, out: "/nonexistent/out.parquet".into() };
    let p = ScoreParams { batch_rows: 0, ..Default::default() };
    assert_eq!(param_error(score_files(&Never, &files, &p).unwrap_err()), ParamError::Zero { name: "batch_rows" });
}

#[test]
fn part_size_zero_is_an_error_everywhere() {
    let cfg = Config::new("/nonexistent").with_sizes(20, 1000, 0);
    assert_eq!(cfg.check().unwrap_err(), ParamError::Zero { name: "part_size" });
    let e = Config::new("/nonexistent").apply_vars(|k| (k == "REVMOD_PART_SIZE").then(|| "0".to_string())).unwrap_err();
    assert_eq!(param_error(e), ParamError::Zero { name: "part_size" });
    // labeling: checked before the checkpoint directory is touched
    let empty = DataFrame::empty();
    let mut rules = revmod::label::Labeler::rules();
    let opts = revmod::label::CkptOptions::default();
    let e = revmod::label::label_with_ckpt(&empty, 10, 0, "/nonexistent/ckpt", &mut rules, &opts).unwrap_err();
    assert_eq!(param_error(e), ParamError::Zero { name: "part_size" });
    let p = SampleParams { businesses: Some(0), ..Default::default() };
    assert_eq!(param_error(write_sample("/nonexistent/sample", &p).unwrap_err()), ParamError::Zero { name: "businesses" });
}
