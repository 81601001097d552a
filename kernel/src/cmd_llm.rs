//! `revmod tokenize`, `revmod generate` and `revmod fetch`: the Gemma-3 of `revmod::llm` from the command line.

use anyhow::Result;
use clap::Args;
use revmod::llm::{self, GenerateParams, Sampling};

/// `revmod tokenize --model SPEC TEXT`
#[derive(Args)]
pub struct TokenizeArgs {
    /// Model: a .gguf file, a checkpoint directory, an HF repo id (org/name[@rev][:file], downloaded into the HF cache when missing), or `default`.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// Print JSON (ids and token texts) instead of the ids on one line.
    #[arg(long)]
    pub json: bool,
    /// Do not add <bos>.
    #[arg(long)]
    pub no_bos: bool,
    /// Treat control tokens written in the text (<start_of_turn>, ...) as plain text.
    #[arg(long)]
    pub no_special: bool,
    /// The text to tokenize.
    pub text: String,
}

/// `revmod generate --model SPEC [--chat] [--max-new-tokens N] [--seed S --temperature T] PROMPT`
#[derive(Args)]
pub struct GenerateArgs {
    /// Model: a .gguf file, a checkpoint directory, an HF repo id (org/name[@rev][:file], downloaded into the HF cache when missing), or `default`.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// How a safetensors checkpoint's weights are held: q8_0 (quantized while loading; the default on CPU) or
    /// f32 (exact, 4 bytes a weight). Default: REVMOD_SAFETENSORS_WEIGHTS, else q8_0 on CPU. GGUF keeps its types.
    #[arg(long, value_parser = ["f32", "q8_0"])]
    pub weights: Option<String>,
    /// Wrap the prompt in the Gemma-3-it chat template.
    #[arg(long)]
    pub chat: bool,
    /// System prompt (with --chat; folded into the user turn).
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 96)]
    pub max_new_tokens: usize,
    /// Sampling temperature (with --seed; greedy when absent or 0).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Seed of the sampler (sampling needs --temperature > 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep only the k most likely tokens when sampling.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Keep the most likely tokens up to this probability mass when sampling.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Print JSON: text, token ids, stop reason, timings (prefill and decode tokens per second).
    #[arg(long)]
    pub json: bool,
    /// Do not stop at <end_of_turn>/<eos> (always generate --max-new-tokens; for benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Run one untimed forward pass first (weight repacking, allocations), as llama.cpp's warm-up does.
    #[arg(long)]
    pub warmup: bool,
    /// The prompt.
    pub prompt: String,
}

/// `revmod fetch org/name[@revision][:file]`
#[derive(Args)]
pub struct FetchArgs {
    /// Hugging Face repo id, e.g. google/gemma-3-12b-it or unsloth/gemma-3-12b-it-GGUF:gemma-3-12b-it-Q4_K_M.gguf.
    pub spec: String,
}

/// Runs `revmod fetch`: downloads what the HF cache lacks (or, offline, checks it is there) and prints the path.
pub fn fetch(a: FetchArgs) -> Result<()> {
    let Some(r) = llm::hub::HubRef::parse(&a.spec) else {
        anyhow::bail!("{:?} is not a Hugging Face repo id (org/name[@revision][:file])", a.spec);
    };
    let path = llm::fetch::fetch(&r, &llm::fetch::HubOptions::from_env())?;
    println!("{}", path.display());
    Ok(())
}

/// Runs `revmod tokenize`.
pub fn tokenize(a: TokenizeArgs) -> Result<()> {
    let g = llm::load_gemma(&a.model)?;
    let tok = g.tokenizer();
    let ids = tok.encode_with(&a.text, !a.no_bos, !a.no_special);
    if a.json {
        let pieces: Vec<&str> = ids.iter().map(|&i| tok.token_text(i).unwrap_or("")).collect();
        println!("{}", serde_json::json!({ "ids": ids, "tokens": pieces, "count": ids.len() }));
    } else {
        println!("{}", ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(" "));
    }
    Ok(())
}

/// Runs `revmod generate`.
pub fn generate(a: GenerateArgs) -> Result<()> {
    let weights = a.weights.as_deref().map(llm::WeightsDtype::parse).transpose()?;
    let mut g = llm::load_gemma_opts(&a.model, &llm::LoadOptions { weights })?;
    let prompt = if a.chat { llm::chat_prompt(a.system.as_deref(), &a.prompt) } else { a.prompt.clone() };
    let sampling = match (a.temperature, a.seed) {
        (Some(t), seed) if t > 0.0 => Sampling::Sample { temperature: t, top_k: a.top_k, top_p: a.top_p, seed: seed.unwrap_or(0) },
        (None, Some(_)) => anyhow::bail!("--seed needs --temperature > 0 (greedy decoding has no randomness)"),
        _ => Sampling::Greedy,
    };
    let params = GenerateParams { max_new_tokens: a.max_new_tokens, sampling, stop_at_eog: !a.ignore_eos };
    if a.warmup {
        let bos = g.tokenizer().bos_id().unwrap_or(0);
        g.next_logits(&[bos, bos])?;
        g.model().reset();
    }
    let r = g.generate(&prompt, &params, None)?;
    if a.json {
        let stop = match r.stop {
            llm::StopReason::Eog(t) => format!("eog:{}", g.tokenizer().token_text(t).unwrap_or("?")),
            llm::StopReason::MaxTokens => "max_new_tokens".into(),
        };
        println!(
            "{}",
            serde_json::json!({
                "text": r.text, "tokens": r.tokens, "stop": stop,
                "prompt_tokens": r.prompt_tokens, "generated_tokens": r.tokens.len(),
                "prefill_secs": r.prefill_secs, "decode_secs": r.decode_secs,
                "prefill_tokens_per_sec": r.prefill_tokens_per_sec(), "decode_tokens_per_sec": r.decode_tokens_per_sec(),
                "model": g.info().path.display().to_string(), "format": g.info().format, "load_secs": g.info().load_secs,
                "weight_types": g.info().weight_types,
                // which product kernels ran, and on what CPU: a speed figure always comes with its path
                "kernel": llm::cpu::kernel_path().name(), "candle_kquant_level": llm::cpu::candle_kquant_level(),
                "cpu_features": llm::cpu::features(),
            })
        );
    } else {
        println!("{}", r.text);
    }
    Ok(())
}
