//! `revmod`: the command line over the revmod support crate, the headless notebook runner and the
//! JupyterLab kernelspec installer.
//!
//! Each subcommand is a thin shell over the same library function a notebook cell calls; its code lives
//! in `cmd_<area>.rs` (one file per area) so this file stays a table of contents.

use clap::{Parser, Subcommand};

mod cmd_data;
mod cmd_score;
mod cmd_kernel;
mod cmd_label;
mod cmd_llm;
mod cmd_run;
mod cmd_train;
mod runner;
#[cfg(feature = "notebook")]
mod jupyter;

/// Google Maps review moderation: the TechJam 2025 notebook as software.
#[derive(Parser)]
#[command(name = "revmod", version, about, long_about = None)]
struct Cli {
    /// Never use the network for Hugging Face models: read the local HF cache only (as HF_HUB_OFFLINE=1).
    #[arg(long, global = true)]
    offline: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write generated Google Local-shaped review and meta files (the embedded sample data).
    SampleData(cmd_data::SampleDataArgs),
    /// Load review + meta files like step 3 and print the load report.
    Load(cmd_data::LoadArgs),
    /// Execute a notebook headless (papermill-like): parameters, outputs, failure detection, HTML report.
    Run(cmd_run::RunArgs),
    /// JupyterLab kernel: `revmod kernel install [--user|--sys-prefix|--prefix P] [--name N]`.
    Kernel(cmd_kernel::KernelArgs),
    /// Label a seeded sample with checkpoints (steps 6-8): --backend local|openai|rules.
    Label(cmd_label::LabelArgs),
    /// How good are the labels: label a gold CSV and print per-label precision, recall, F1 and flag rate.
    LabelEval(cmd_label::LabelEvalArgs),
    /// Fit the few-shot labeler's per-label thresholds on a gold CSV (e.g. the generator's truth file).
    LabelCalibrate(cmd_label::LabelCalibrateArgs),
    /// Split labeled reviews 70/15/15 and train the TF-IDF + logistic regression baseline (steps 9-10).
    Train(cmd_train::TrainArgs),
    /// Tokenize text with Gemma-3's tokenizer (ids on one line, or --json).
    Tokenize(cmd_llm::TokenizeArgs),
    /// Generate with Gemma-3 (greedy by default; --chat for the -it template; --json for ids and timings).
    Generate(cmd_llm::GenerateArgs),
    /// Download a model from the Hugging Face hub into the HF cache (org/name[@revision][:file]) and print its path.
    Fetch(cmd_llm::FetchArgs),
    /// Score review files larger than memory into parquet (steps 13-14): `revmod score --model DIR --reviews R [--meta M] --out scored.parquet`.
    Score(cmd_score::ScoreArgs),
    // New subcommands: one variant here + one match arm below, code in cmd_<area>.rs.
}

fn main() {
    // First: this binary is also evcxr's evaluation process, the runner's proxy and the Jupyter kernel.
    cmd_kernel::early_hooks();
    let cli = Cli::parse();
    // The library never prints: the CLI draws the labeling, scoring and download progress on stderr.
    revmod::progress::draw_on_stderr();
    if let Some(w) = revmod::llm::cpu::kernel_path_warning() {
        eprintln!("revmod: {w}");
    }
    if cli.offline {
        // before any thread starts: the hub client reads it (revmod::llm::fetch::offline_from_env)
        std::env::set_var("HF_HUB_OFFLINE", "1");
    }
    let result = match cli.command {
        Command::SampleData(a) => cmd_data::sample_data(a),
        Command::Load(a) => cmd_data::load(a),
        Command::Score(a) => cmd_score::score(a),
        Command::Run(a) => cmd_run::run(a),
        Command::Kernel(a) => cmd_kernel::run(a),
        Command::Label(a) => cmd_label::label(a),
        Command::LabelEval(a) => cmd_label::label_eval(a),
        Command::LabelCalibrate(a) => cmd_label::label_calibrate(a),
        Command::Train(a) => cmd_train::train(a),
        Command::Tokenize(a) => cmd_llm::tokenize(a),
        Command::Generate(a) => cmd_llm::generate(a),
        Command::Fetch(a) => cmd_llm::fetch(a),
    };
    if let Err(e) = result {
        eprintln!("revmod: error: {e:#}");
        std::process::exit(1);
    }
}
