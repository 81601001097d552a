//! `revmod train`: steps 9-10 from the command line — split the labeled reviews 70/15/15 and train the
//! TF-IDF + logistic regression baseline; writes what the seed's cells 9-10 write.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use revmod::split::{read_table, split, MlReady, SplitParams};
use revmod::train::{artifacts, model_dir, train_baseline, BaselineParams};

/// Arguments of `revmod train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Labeled reviews: the labeler's parquet/CSV (`text` + the five `is_*` 0/1 columns; `y_*` or bare
    /// label names also accepted), or an already split `labeled_reviews_ml_ready.parquet`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output directory: gets labeled_reviews_ml_ready.parquet and models/baseline_tfidf_lr/.
    #[arg(long)]
    pub out: PathBuf,
}

/// Splits (unless the input is already split), trains, saves, and prints supports and metrics.
pub fn train(a: TrainArgs) -> Result<()> {
    let df = read_table(&a.input)?;
    let pre_split = df.column("split").is_ok();
    let ml = if pre_split {
        eprintln!("{}: already split (has a `split` column); using it as is", a.input.display());
        MlReady::from_df(df).with_context(|| format!("in {}", a.input.display()))?
    } else {
        let ml = split(&df, &SplitParams::default()).with_context(|| format!("splitting {}", a.input.display()))?;
        eprintln!("{}", ml.report);
        let p = ml.save(&a.out)?;
        eprintln!("wrote {}", p.display());
        ml
    };
    if pre_split && !ml.report.labels_without_positives.is_empty() {
        eprintln!("warning: labels without any positive row: {:?}", ml.report.labels_without_positives);
    }
    println!("label supports per split:\n{}", ml.supports()?);
    let t = std::time::Instant::now();
    let revmod::train::Trained { model, metrics } = train_baseline(&ml, &BaselineParams::default())?;
    let dir = model_dir(&a.out);
    artifacts::save_with_metrics(&model, &metrics, &dir)?;
    println!("metrics:\n{}", metrics.table()?);
    for n in &metrics.notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "trained in {:.2}s (vectorizers {:.2}s, models {:.2}s); model written to {}",
        t.elapsed().as_secs_f64(),
        metrics.vectorize_seconds,
        metrics.fit_seconds,
        dir.display()
    );
    Ok(())
}
