//! `revmod label`: steps 6-8 from the command line: a checkpointed, resumable labeling run
//! (`label_with_ckpt`) with the local Gemma model, an OpenAI-compatible server or the rules-only labeler.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use revmod::data::load_df;
use revmod::label::openai::{OpenAiBackend, OpenAiParams, ResponseFormat};
use revmod::label::{label_with_ckpt, CkptOptions, LabelBackend, Labeler, RulesBackend};

/// Which backend answers.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendKind {
    /// Gemma-3 on this machine (candle), constrained JSON decoding, KV-cached system prompt.
    Local,
    /// An OpenAI-compatible chat-completions server (vLLM, llama-server, Ollama, ...).
    Openai,
    /// Keyword rules only, no language model (teaching, smoke runs).
    Rules,
}

/// Arguments of `revmod label`.
#[derive(Args)]
pub struct LabelArgs {
    /// Review file (JSON lines, plain or gzip).
    #[arg(long)]
    pub reviews: PathBuf,
    /// Business meta file (JSON lines, plain or gzip).
    #[arg(long)]
    pub meta: PathBuf,
    /// Reviews to sample and label (the seed's 1000).
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// Reviews per checkpoint part.
    #[arg(long, default_value_t = 50)]
    pub part_size: usize,
    /// Checkpoint directory (the seed's OUT_DIR/labels_ckpt_1k); final files go to its parent.
    #[arg(long)]
    pub ckpt_dir: PathBuf,
    /// Backend.
    #[arg(long, value_enum, default_value = "local")]
    pub backend: BackendKind,
    /// Local: model spec (file, directory, HF repo id; default: the embedded 270M). OpenAI: model name.
    #[arg(long)]
    pub model: Option<String>,
    /// OpenAI: server base URL including /v1 (e.g. http://127.0.0.1:8080/v1 or
    /// https://generativelanguage.googleapis.com/v1beta/openai); https trusts the system roots + SSL_CERT_FILE.
    #[arg(long)]
    pub url: Option<String>,
    /// OpenAI: the environment variable holding the API key (default OPENAI_API_KEY), e.g. GEMINI_API_KEY.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// OpenAI: requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// OpenAI: seconds per request.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// OpenAI: retries per request.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// OpenAI: do not send a JSON-schema response_format (free text, parsed as the seed did).
    #[arg(long)]
    pub no_schema: bool,
    /// Local: free greedy generation as the seed (no constrained decoding).
    #[arg(long)]
    pub free: bool,
    /// Local: recompute the system prompt for every review (no prefix KV cache).
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Start over when the checkpoint belongs to another sample, prompt or labeler.
    #[arg(long)]
    pub restart: bool,
    /// Directory of the final parquet/csv (default: the checkpoint directory's parent).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

fn backend(a: &LabelArgs) -> Result<Box<dyn LabelBackend>> {
    Ok(match a.backend {
        BackendKind::Rules => Box::new(RulesBackend::new()),
        BackendKind::Openai => {
            let (Some(url), Some(model)) = (&a.url, &a.model) else {
                bail!("--backend openai needs --url URL (e.g. http://127.0.0.1:8080/v1) and --model NAME");
            };
            let mut p = OpenAiParams::new(url, model);
            if let Some(var) = &a.api_key_env {
                p = p.with_api_key_env(var)?;
            }
            p.concurrency = a.concurrency.max(1);
            p.timeout = Duration::from_secs(a.timeout.max(1));
            p.max_retries = a.retries;
            if a.no_schema {
                p.response_format = ResponseFormat::None;
            }
            Box::new(OpenAiBackend::new(p)?)
        }
        BackendKind::Local => {
            let params = revmod::label::local::LocalParams {
                constrained: !a.free,
                prefix_cache: !a.no_prefix_cache,
                ..Default::default()
            };
            Box::new(revmod::label::local::LocalGemmaBackend::load(a.model.as_deref(), params)?)
        }
    })
}

/// Runs a checkpointed labeling and prints the seed's summary counts.
pub fn label(a: LabelArgs) -> Result<()> {
    let loaded = load_df(&a.reviews, &a.meta)?;
    eprintln!("loaded {} reviews from {}", loaded.df.height(), a.reviews.display());
    let mut labeler = Labeler::new(backend(&a)?);
    eprintln!("labeler: {}", labeler.labeler_id());
    let opts = CkptOptions { seed: a.seed, out_dir: a.out_dir.clone(), restart_on_mismatch: a.restart };
    let run = label_with_ckpt(&loaded.df, a.n, a.part_size, &a.ckpt_dir, &mut labeler, &opts)?;
    println!("{run}");
    Ok(())
}
