//! `revmod score`: steps 13-14 from the command line, for review files larger than memory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use revmod::score::{files::report_text, score_files, ScoreFiles, ScoreParams};

/// Arguments of `revmod score`.
#[derive(Args)]
pub struct ScoreArgs {
    /// Model directory written by `revmod train` / `train_baseline` (e.g. models/baseline_tfidf_lr).
    #[arg(long)]
    pub model: PathBuf,
    /// Review file (Google Local JSON lines, plain or gzip).
    #[arg(long)]
    pub reviews: PathBuf,
    /// Business meta file (JSON lines), joined by gmap_id.
    #[arg(long)]
    pub meta: Option<PathBuf>,
    /// Output parquet file: the review (+ business) columns, p_<label> and <label> for each label.
    #[arg(long)]
    pub out: PathBuf,
    /// Reviews per batch (bounds memory).
    #[arg(long, default_value_t = ScoreParams::default().batch_rows)]
    pub batch_rows: usize,
    /// No progress bar / progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// Loads the model, streams the reviews through it into parquet, prints the load and score summary.
pub fn score(a: ScoreArgs) -> Result<()> {
    let model = revmod::train::Baseline::load(&a.model)
        .with_context(|| format!("loading the model from {}", a.model.display()))?;
    let params = ScoreParams { batch_rows: a.batch_rows, progress: !a.quiet, ..ScoreParams::default() };
    let files = ScoreFiles { reviews: a.reviews, meta: a.meta, out: a.out };
    let revmod::score::ScoredFiles { summary, report } = score_files(&model, &files, &params)?;
    print!("{}", report_text(&summary, &report, &files.out));
    Ok(())
}
