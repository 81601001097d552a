//! # revmod: Google Maps review moderation, one notebook step per function
//!
//! revmod turns the TikTok TechJam 2025 review-moderation notebook (19 Python cells) into a Rust
//! support crate that evcxr notebooks `:dep`, a `revmod` binary (CLI, headless runner, kernelspec) and a
//! walkthrough notebook. Each notebook step is one public function in the module named after its step;
//! the notebook cell is the call plus its display.
//!
//! | step (seed cell) | function | module |
//! |---|---|---|
//! | 1-2 imports, config | [`config::mount`] -> [`config::Config`] | [`config`] |
//! | 3 load data | [`data::load_df`] -> [`data::Loaded`] (DataFrame + [`data::LoadReport`]) | [`data`] |
//! | 4-5 token, model | `load_gemma` | [`llm`] |
//! | 6-8 prompt, preview, labeling | `label_preview`, `label_with_ckpt` | [`label`] |
//! | 9 split | `split` | [`split`] |
//! | 10 TF-IDF + logistic regression | `train_baseline` | [`train`] ([`text`], [`linear`]) |
//! | 11-12 errors, calibration | `error_analysis`, `calibrate` | [`eval`] |
//! | 13-19 scoring, distribution, examples | `score_all` | [`score`] |
//!
//! Data flows as values: each function takes what it needs and returns a value the next cell uses, and
//! writes its files where the seed wrote them (under the run's OUT_DIR) so a run can resume from any
//! step. Displays ([`show`]) are values too: the same value prints in the CLI and renders as HTML/SVG in
//! JupyterLab through evcxr. Math (TF-IDF, solver, split, PR curve) is kept apart from I/O. The steps share
//! one vocabulary, [`moderation`]: the five moderation labels ([`moderation::Label`], [`moderation::PerLabel`])
//! and the [`moderation::Scorer`] interface of every fitted model (not to be confused with [`label`], the
//! language-model labeler of steps 6-8). Two support modules serve several steps: [`mem`], the huge-page
//! tables that scoring's random lookups need, and [`output`], the one writer of every parquet and CSV file
//! (readable by pandas, pyarrow, DuckDB and polars; `docs/outputs.md` lists the files), which writes every
//! file atomically. [`rng`] is the one seeded random number generator, [`progress`] the one progress count of
//! the long steps.
//!
//! The library never prints: warnings are values in what a step returns (`CkptRun::warnings`,
//! `Preview::warnings`, `ErrorAnalysis::warnings`, ...), and progress is drawn only by a drawer the caller
//! installs ([`progress::draw_on_stderr`]: the CLI at start, the notebook in its first cell).
//!
//! The crate never depends on evcxr, and re-exports [`polars`] so that notebook cells use the very same
//! polars build (`use revmod::polars::prelude::*;`) instead of compiling a second one.

/// The polars this crate is built with (notebooks should use this instead of a separate `:dep`).
pub use polars;

pub mod config;
pub mod moderation;
/// The old name of [`moderation`] (before it was told apart from [`label`], the labeler): kept, hidden, so
/// that user notebooks written against `revmod::labels::...` still compile. New code uses `moderation`.
#[doc(hidden)]
pub use moderation as labels;
pub mod data;
pub mod show;

pub mod split;
pub mod text;
pub mod linear;
pub mod mem;
pub mod output;
pub mod interrupt;
pub mod params;
pub mod progress;
pub mod rng;
pub mod train;
pub mod eval;
pub mod score;
pub mod llm;
pub mod label;

/// Everything a notebook cell needs, in one `use revmod::prelude::*;`.
pub mod prelude {
    pub use polars::prelude::{DataFrame, Series, Column, DataType};
    pub use crate::config::{mount, Config};
    pub use crate::data::{load_df, write_sample, LoadReport, Loaded, SampleParams};
    pub use crate::moderation::{Label, Scorer, LABELS, TARGETS, LABEL_COLUMNS};
    pub use crate::show::{DataFrameShow, Html, Many, Show, Svg, Table};
    pub use crate::eval::{calibrate, error_analysis, CalibrateParams, Calibration, ErrorAnalysis, ErrorAnalysisParams};
    pub use crate::score::{examples_per_label, label_distribution, label_examples, score_all, LabelDistribution, ScoreParams, ScoreSummary, Scored};
    pub use crate::label::{label_preview, label_with_ckpt, CkptOptions, CkptRun, LabelSummary, Labeler, ModeratorPrompt, Preview};
    pub use crate::split::{split, MlReady, Part, SplitParams, SplitReport};
    pub use crate::train::{train_baseline, Baseline, BaselineParams, LabelModel, Metrics, Trained};
    pub use crate::output::{write_csv, write_parquet};
    pub use crate::label::eval::{compare_labeled, label_eval_file, read_gold, LabelEval};
    // step re-exports: add one `pub use` line per public step function / value type here.
}
