//! `revmod sample-data` and `revmod load`: step 3's data in, from the command line.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use revmod::data::{load_df, write_sample, SampleParams};

/// Arguments of `revmod sample-data`.
#[derive(Args)]
pub struct SampleDataArgs {
    /// Output directory (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Review lines to write.
    #[arg(long, default_value_t = SampleParams::default().reviews)]
    pub reviews: usize,
    /// Distinct businesses (default: one per 40 reviews, at least 30).
    #[arg(long)]
    pub businesses: Option<usize>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Malformed review lines to insert (0 for files pandas can read).
    #[arg(long, default_value_t = SampleParams::default().malformed)]
    pub malformed: usize,
    /// State name in the file names (review-<STATE>.json, meta-<STATE>.json).
    #[arg(long, default_value = "Vermont")]
    pub state: String,
}

/// Writes the sample files and prints what was written.
pub fn sample_data(a: SampleDataArgs) -> Result<()> {
    let p = SampleParams { reviews: a.reviews, businesses: a.businesses, seed: a.seed, malformed: a.malformed, state: a.state, truth: true };
    let t = std::time::Instant::now();
    let s = write_sample(&a.out, &p)?;
    print!("{s}");
    eprintln!("generated in {:.2}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Arguments of `revmod load`.
#[derive(Args)]
pub struct LoadArgs {
    /// Review file (JSON lines, plain or gzip).
    #[arg(long)]
    pub reviews: PathBuf,
    /// Business meta file (JSON lines, plain or gzip).
    #[arg(long)]
    pub meta: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Loads like step 3 and prints the load report (text or JSON).
pub fn load(a: LoadArgs) -> Result<()> {
    let t = std::time::Instant::now();
    let loaded = load_df(&a.reviews, &a.meta)?;
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&loaded.report)?;
        v["columns"] = serde_json::json!(loaded.df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>());
        v["seconds"] = serde_json::json!(secs);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", loaded.report);
        println!("columns: {}", loaded.df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "));
        eprintln!("loaded in {secs:.2}s");
    }
    Ok(())
}
