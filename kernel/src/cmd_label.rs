//! `revmod label`: steps 6-8 from the command line: a checkpointed, resumable labeling run
//! (`label_with_ckpt`) with the local Gemma model, an OpenAI-compatible server or the rules-only labeler.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
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

/// `--mode` of the local backend.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Picked from the model: a chat template (instruction tuned) gives `instruct`, else `fewshot`.
    Auto,
    /// The project's few-shot page scored by answer log-likelihoods (for base models).
    Fewshot,
    /// The seed's zero-shot JSON prompt (for instruction-tuned models).
    Instruct,
}

impl ModeArg {
    /// The local backend's mode setting (None: picked from the model).
    pub fn mode(self) -> Option<revmod::label::local::LabelMode> {
        use revmod::label::local::LabelMode;
        match self {
            ModeArg::Auto => None,
            ModeArg::Fewshot => Some(LabelMode::FewShot),
            ModeArg::Instruct => Some(LabelMode::Instruct),
        }
    }
}

/// Which backend labels, and its settings (shared by `revmod label` and `revmod label-eval`).
#[derive(Args)]
pub struct BackendArgs {
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
    /// Local: how the model is asked (auto: few-shot log-likelihood for base models, the JSON prompt for
    /// instruction-tuned ones).
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: ModeArg,
    /// Local: free greedy generation as the seed (no constrained decoding).
    #[arg(long)]
    pub free: bool,
    /// Local: recompute the system prompt for every review (no prefix KV cache).
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Local: reviews in flight at once (one batched forward per step for all of them). Few-shot labels are
    /// the same bit for bit; constrained JSON answers agree within a tested rounding bound. 1 labels one
    /// review at a time.
    #[arg(long, default_value_t = revmod::label::local::DEFAULT_BATCH as u16, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
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
    #[command(flatten)]
    pub backend: BackendArgs,
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

pub(crate) fn backend(a: &BackendArgs) -> Result<Box<dyn LabelBackend>> {
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
                mode: a.mode.mode(),
                constrained: !a.free,
                prefix_cache: !a.no_prefix_cache,
                batch: usize::from(a.batch),
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
    let mut labeler = Labeler::new(backend(&a.backend)?);
    eprintln!("labeler: {}", labeler.labeler_id());
    let opts = CkptOptions { seed: a.seed, out_dir: a.out_dir.clone(), restart_on_mismatch: a.restart };
    let run = label_with_ckpt(&loaded.df, a.n, a.part_size, &a.ckpt_dir, &mut labeler, &opts)?;
    println!("{run}");
    Ok(())
}

/// Arguments of `revmod label-eval`.
#[derive(Args)]
pub struct LabelEvalArgs {
    /// Gold CSV: a `text` column (optional business_name, category) and 0/1 columns for any of relevant, ads,
    /// irrelevant, non_visit, spam (empty = unknown).
    #[arg(long)]
    pub gold: PathBuf,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Label only the first N rows (a quick look).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also write every row's gold values, flags, probabilities and raw answer to this CSV.
    #[arg(long)]
    pub dump: Option<PathBuf>,
}

/// Labels a gold file and prints per-label support, precision, recall, F1 and flag rate.
pub fn label_eval(a: LabelEvalArgs) -> Result<()> {
    use revmod::label::eval::{label_eval, read_gold};
    let mut gold = read_gold(&a.gold)?;
    if let Some(n) = a.limit {
        gold.reviews.truncate(n);
        gold.truth.truncate(n);
    }
    for m in &gold.missing {
        eprintln!("label-eval: {} has no `{m}` column: {m} is skipped", a.gold.display());
    }
    let mut labeler = Labeler::new(backend(&a.backend)?);
    eprintln!("labeler: {}", labeler.labeler_id());
    let t0 = std::time::Instant::now();
    let (eval, records) = label_eval(&gold, &mut labeler)?;
    let secs = t0.elapsed().as_secs_f64();
    print!("{eval}");
    println!("{} reviews in {secs:.1} s ({:.2} reviews/s)", gold.reviews.len(), gold.reviews.len() as f64 / secs.max(1e-9));
    if let Some(path) = &a.dump {
        write_dump(path, &gold, &records)?;
        eprintln!("label-eval: rows written to {}", path.display());
    }
    Ok(())
}

fn write_dump(path: &std::path::Path, gold: &revmod::label::eval::Gold, records: &[revmod::label::LabelRecord]) -> Result<()> {
    use revmod::moderation::Label;
    use revmod::polars::prelude::*;
    let n = records.len();
    let mut cols = vec![Column::new("text".into(), gold.reviews.iter().map(|r| r.text.as_str()).collect::<Vec<_>>())];
    for l in Label::ALL {
        cols.push(Column::new(format!("gold_{l}").into(), gold.truth.iter().map(|t| t[l].map(i32::from)).collect::<Vec<_>>()));
        cols.push(Column::new(format!("pred_{l}").into(), records.iter().map(|r| i32::from(r.labels.flags()[l])).collect::<Vec<_>>()));
        cols.push(Column::new(format!("p_{l}").into(), records.iter().map(|r| r.probs.map(|p| p[l])).collect::<Vec<_>>()));
    }
    cols.push(Column::new("guarded".into(), records.iter().map(|r| i32::from(r.guarded)).collect::<Vec<_>>()));
    cols.push(Column::new("raw".into(), records.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>()));
    let mut df = DataFrame::new(n, cols)?;
    let mut f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    CsvWriter::new(&mut f).finish(&mut df)?;
    Ok(())
}

/// Arguments of `revmod label-calibrate`.
#[derive(Args)]
pub struct LabelCalibrateArgs {
    /// Gold CSV (the format of label-eval), e.g. the sample generator's `truth-Vermont.csv`.
    #[arg(long)]
    pub gold: PathBuf,
    /// Local model spec (default: the embedded Gemma-3 270M).
    #[arg(long)]
    pub model: Option<String>,
    /// Use only the first N rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Also write every scored row's five log-odds, rule hits and gold values to this CSV.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// A gold file with the real label rates (e.g. the whole truth file when --gold is a balanced subset of
    /// it): the fitted intercepts are moved from the subset's rates to these (guarded rows left out).
    #[arg(long)]
    pub rates_from: Option<PathBuf>,
}

/// Scores a gold file with the few-shot page and fits the per-label thresholds of the few-shot calibration.
pub fn label_calibrate(a: LabelCalibrateArgs) -> Result<()> {
    use revmod::label::eval::read_gold;
    use revmod::label::fewshot::{fit_calibration, rule_hits, Calibration, FEWSHOT_MAX_CHARS};
    use revmod::label::guard::{cheap_low_quality, clean_review};
    use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
    use revmod::label::prompt::prepare_text;
    use revmod::moderation::Label;
    let gold = read_gold(&a.gold)?;
    let n = a.limit.unwrap_or(usize::MAX).min(gold.reviews.len());
    let params = LocalParams { mode: Some(LabelMode::FewShot), ..Default::default() };
    let mut b = LocalGemmaBackend::load(a.model.as_deref(), params)?;
    let rules = RulesBackend::new();
    let (mut lo, mut hits, mut truth, mut texts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let mut r = gold.reviews[i].clone();
        r.text = clean_review(&r.text);
        if cheap_low_quality(&r.text) {
            continue; // the guard labels these without the model
        }
        lo.push(b.fewshot_log_odds(&r, FEWSHOT_MAX_CHARS)?);
        hits.push(rule_hits(&rules.judge(&prepare_text(&r.text, 1000))));
        truth.push(gold.truth[i]);
        texts.push(r.text);
        if lo.len() % 25 == 0 {
            eprintln!("label-calibrate: {} scored ({:.1} s)", lo.len(), t0.elapsed().as_secs_f64());
        }
    }
    let (mut fitted, f1) = fit_calibration(&Calibration::identity(), &lo, &truth);
    if let Some(path) = &a.rates_from {
        use revmod::label::fewshot::{positive_rates, shift_to_rates};
        let all = read_gold(path)?;
        let unguarded: Vec<_> =
            all.reviews.iter().zip(&all.truth).filter(|(r, _)| !cheap_low_quality(&clean_review(&r.text))).map(|(_, t)| *t).collect();
        let (from, to) = (positive_rates(&truth), positive_rates(&unguarded));
        println!("label rates: fitting rows {from:.3?}, {} {to:.3?}", path.display());
        shift_to_rates(&mut fitted, &from, &to);
    }
    println!("{} reviews scored (guarded ones left out) in {:.1} s", lo.len(), t0.elapsed().as_secs_f64());
    for l in Label::ALL {
        match f1[l] {
            Some(f) => println!("{:<10} bias {:+.3} weights {:?}  F1 on these rows (model alone) {f:.3}", l.name(), fitted.bias[l], fitted.weights[l]),
            None => println!("{:<10} not fitted (no positives or no negatives with gold)", l.name()),
        }
    }
    println!("{fitted:?}");
    if let Some(path) = &a.dump {
        use revmod::polars::prelude::*;
        let mut cols = vec![Column::new("text".into(), texts)];
        for l in Label::ALL {
            cols.push(Column::new(format!("lo_{l}").into(), lo.iter().map(|x| x[l]).collect::<Vec<f32>>()));
            cols.push(Column::new(format!("rule_{l}").into(), hits.iter().map(|x| i32::from(x[l])).collect::<Vec<_>>()));
            cols.push(Column::new(format!("gold_{l}").into(), truth.iter().map(|x| x[l].map(i32::from)).collect::<Vec<_>>()));
        }
        let mut df = DataFrame::new(lo.len(), cols)?;
        let mut f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        CsvWriter::new(&mut f).finish(&mut df)?;
    }
    Ok(())
}
