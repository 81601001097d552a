//! The local Gemma-3 model as a labeling backend (seed cell 7's `generate`, on candle via `crate::llm`).
//!
//! Two modes, picked from the model ([`LabelMode::for_model`]) and named in the labeler id (`mode=...`):
//! - [`LabelMode::FewShot`] for pretrained base models (no chat template, e.g. the embedded Gemma-3 270M):
//!   the project's few-shot page and answer log-likelihoods ([`super::fewshot`]), calibrated and combined
//!   with the keyword rules; the page's KV cache is computed once.
//! - [`LabelMode::Instruct`] for instruction-tuned models (Gemma-3-*-it: a chat template in the GGUF or
//!   checkpoint): the seed's zero-shot JSON prompt, as below.
//!
//! Two speed-ups over the seed's loop, each switchable off to measure it (scripts/bench-label):
//! - prefix cache: the chat prefix holding the long system prompt is computed once; every review starts
//!   from that KV cache (truncating back to it) and only its own user turn is prefilled (without the cache the
//!   prefix is recomputed for every review, in the same batches, so both give bit-identical answers);
//! - constrained decoding ([`super::constrained`]): the schema's fixed bytes are fed in one batch and only
//!   the choices and the rationale are decoded, with per-label probabilities; the answer parses by
//!   construction. Off, the model generates freely (greedy, `max_new_tokens` 96) as in the seed.
//!
//! Several reviews in flight ([`LocalParams::batch`]): each review gets a slot of a [`PrefixBatch`] (its own KV
//! cache after the shared prefix) and every step feeds all of them in one batched forward; few-shot scoring
//! ([`fewshot::score_reviews`]) and constrained decoding in lockstep
//! ([`super::constrained::decode_constrained_batch`]) drive it.
//!
//! The review text is tokenized with special tokens disabled, so a review cannot close its own turn.

use std::time::Instant;

use anyhow::{Context, Result};

use super::backend::{LabelBackend, RawOutput};
use super::constrained::{decode_constrained, decode_constrained_batch, AnswerGrammar, BatchStepModel, StepModel, TokenMasks};
use super::fewshot::{self, Calibration, FewShotTokens};
use super::probe::Probe;
use super::rules::RulesBackend;
use super::{ModeratorPrompt, ReviewInput};
use crate::llm::chat::chat_prefix;
use crate::llm::gemma3::{Gemma3Model, PrefixBatch};
use crate::llm::generate::GenerateParams;
use crate::llm::tokenizer::TokenKind;
use crate::llm::{load_gemma, Gemma};
use crate::moderation::PerLabel;

/// How the local model is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelMode {
    /// A base model continues the project's few-shot page; labels from answer log-likelihoods.
    FewShot,
    /// An instruction-tuned model answers the seed's zero-shot JSON prompt (constrained or free).
    Instruct,
}

impl LabelMode {
    /// The mode a model calls for: instruct when it is instruction tuned (a chat template, or an `-it` /
    /// instruct name), few-shot otherwise.
    pub fn for_model(info: &crate::llm::ModelInfo) -> Self {
        if info.is_instruction_tuned() { LabelMode::Instruct } else { LabelMode::FewShot }
    }

    /// Short name used in the labeler id and the notebook.
    pub fn name(self) -> &'static str {
        match self {
            LabelMode::FewShot => "fewshot-loglik",
            LabelMode::Instruct => "instruct-json",
        }
    }
}

/// Settings of the local backend.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalParams {
    /// The mode; None picks it from the model ([`LabelMode::for_model`]).
    pub mode: Option<LabelMode>,
    /// Few-shot mode: how scores, probe logits and rule hits become labels.
    pub calibration: Calibration,
    /// Few-shot mode: the hidden-state probe ([`super::probe`]); used only with the model it was fitted for
    /// (the embedded one). None: the few-shot answers alone.
    pub probe: Option<Probe>,
    /// Constrained JSON decoding (true) or the seed's free greedy generation (false).
    pub constrained: bool,
    /// Reuse the KV cache of the system-prompt prefix for every review.
    pub prefix_cache: bool,
    /// The seed's max_new_tokens (free generation) and the decode-step budget (constrained).
    pub max_new_tokens: usize,
    /// Longest rationale in bytes under constrained decoding.
    pub max_rationale: u16,
    /// Reviews in flight at once: each has its own KV cache after the shared prefix, and every step feeds
    /// all of them in one batched forward ([`crate::llm::PrefixBatch`]). 1 labels one review at a time.
    /// Few-shot scores are the one-at-a-time ones bit for bit; constrained JSON answers agree within a tested
    /// rounding bound (one-token decode steps, see `crate::llm::gemma3`'s batch module; tests/label_batch.rs).
    /// Free generation and `prefix_cache: false` (which recomputes the
    /// prefix for every review, to measure the cache) always run one review at a time.
    pub batch: usize,
}

impl Default for LocalParams {
    fn default() -> Self {
        Self {
            mode: None,
            calibration: Calibration::default(),
            probe: Probe::embedded().ok(),
            constrained: true,
            prefix_cache: true,
            max_new_tokens: 96,
            max_rationale: 160,
            batch: DEFAULT_BATCH,
        }
    }
}

/// Default of [`LocalParams::batch`]: measured with `scripts/bench-label --batch` on a 2-core AMD EPYC (AVX2),
/// see the README's speed section.
pub const DEFAULT_BATCH: usize = 8;

/// Counters of what the backend did (for benchmarks and reports).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalStats {
    /// Reviews answered.
    pub reviews: usize,
    /// Prompt tokens computed (prefill), excluding reused prefix tokens.
    pub prefill_tokens: usize,
    /// Prompt tokens reused from the prefix cache.
    pub reused_tokens: usize,
    /// Decode steps (forward calls after the prompt).
    pub decode_steps: usize,
    /// Seconds spent in the model.
    pub secs: f64,
}

/// Gemma-3 behind the [`LabelBackend`] trait.
pub struct LocalGemmaBackend {
    gemma: Gemma,
    model_id: String,
    params: LocalParams,
    mode: LabelMode,
    /// Few-shot mode: the page and answer tokens, and the rules used as an extra signal.
    fewshot: Option<(FewShotTokens, RulesBackend)>,
    /// Few-shot mode: the hidden-state probe, when the model is the one it was fitted for.
    probe: Option<Probe>,
    /// Layers whose mean hidden state is captured per review (the probe's, and any asked for).
    capture: Vec<usize>,
    /// Hidden states the last batched few-shot scoring captured, per review (see `capture`).
    batch_hidden: Vec<Vec<Vec<f32>>>,
    masks: Option<TokenMasks>,
    /// (system prompt, prefix tokens) whose KV cache sits at the start of the model's context.
    prefix: Option<(String, Vec<u32>)>,
    /// Batched labeling: the slots over the shared prefix (the few-shot page, or the system prompt's chat
    /// prefix), kept between calls so their buffers hold the prefix.
    slots: Option<PrefixBatch>,
    /// What the backend did so far.
    pub stats: LocalStats,
}

struct Step<'a>(&'a mut Gemma3Model);

/// The slots of a [`PrefixBatch`] as the labeler's [`BatchStepModel`].
struct Slots<'a> {
    model: &'a Gemma3Model,
    batch: &'a mut PrefixBatch,
}

impl BatchStepModel for Slots<'_> {
    fn feed_batch(&mut self, feeds: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.batch.feed(self.model, feeds)
    }
    fn context_len(&self, i: usize) -> usize {
        self.batch.context_len(i)
    }
    fn truncate(&mut self, i: usize, len: usize) -> Result<()> {
        self.batch.truncate(i, len);
        Ok(())
    }
}

impl StepModel for Step<'_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let t = self.0.forward(tokens, false)?;
        Ok(t.to_vec1::<f32>()?)
    }
    fn context_len(&self) -> usize {
        self.0.context().len()
    }
    fn truncate(&mut self, len: usize) -> Result<()> {
        self.0.truncate(len);
        Ok(())
    }
}

impl LocalGemmaBackend {
    /// Loads a model with `crate::llm::load_gemma` (None or "": the embedded Gemma-3 270M).
    pub fn load(spec: Option<&str>, params: LocalParams) -> Result<Self> {
        let spec = spec.unwrap_or("");
        let gemma = load_gemma(spec).with_context(|| format!("loading the local model {spec:?}"))?;
        let id = gemma.info().path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| spec.to_string());
        Self::new(gemma, &id, params)
    }

    /// A backend over a loaded model; `model_id` names it in the `model` column.
    pub fn new(mut gemma: Gemma, model_id: &str, params: LocalParams) -> Result<Self> {
        let mode = params.mode.unwrap_or_else(|| LabelMode::for_model(gemma.info()));
        let fewshot = if mode == LabelMode::FewShot {
            let max_chars = fewshot::FEWSHOT_MAX_CHARS;
            Some((FewShotTokens::new(gemma.tokenizer(), max_chars).context("tokenizing the few-shot page")?, RulesBackend::new()))
        } else {
            None
        };
        let masks = if params.constrained && mode == LabelMode::Instruct {
            let tok = gemma.tokenizer();
            let vocab: Vec<Option<Vec<u8>>> = (0..tok.vocab_size() as u32)
                .map(|id| match tok.token_kind(id) {
                    Some(TokenKind::Normal) | Some(TokenKind::Byte) => tok.token_bytes(id).map(<[u8]>::to_vec),
                    _ => None,
                })
                .collect();
            let grammar = AnswerGrammar { max_rationale: params.max_rationale };
            Some(TokenMasks::new(grammar, &vocab).context("building the constrained-decoding token masks")?)
        } else {
            None
        };
        // the probe reads the hidden states of the model it was fitted on (the embedded 270M): another model's
        // differ even at the same size, so it gets none
        let embedded = gemma.info().path.file_name().is_some_and(|f| f == crate::llm::embedded::EMBEDDED_FILE);
        let cfg = gemma.model().config().clone();
        let probe = params
            .probe
            .clone()
            .filter(|p| mode == LabelMode::FewShot && embedded && p.dim() == cfg.hidden_size && p.layer < cfg.num_hidden_layers);
        let capture = probe.iter().map(|p| p.layer).collect();
        anyhow::ensure!(params.batch >= 1, "LocalParams.batch is 0: at least one review must be in flight");
        Ok(Self { gemma, model_id: model_id.to_string(), params, mode, fewshot, probe, capture, batch_hidden: Vec::new(), masks, prefix: None, slots: None, stats: LocalStats::default() })
    }

    /// Few-shot mode: also capture these layers' mean hidden states over each review's block (the probe's
    /// layer is always among them); read them with [`LocalGemmaBackend::take_hidden`] after
    /// [`LocalGemmaBackend::fewshot_log_odds`]. For fitting and studying probes.
    pub fn set_capture_layers(&mut self, layers: &[usize]) {
        let mut l = layers.to_vec();
        if let Some(p) = &self.probe {
            if !l.contains(&p.layer) {
                l.push(p.layer);
            }
        }
        self.capture = l;
    }

    /// The layers captured per review, in the order [`LocalGemmaBackend::take_hidden`] returns them.
    pub fn capture_layers(&self) -> &[usize] {
        &self.capture
    }

    /// The hidden states captured while scoring the last review (one per [`LocalGemmaBackend::capture_layers`]),
    /// taken out of the model.
    pub fn take_hidden(&mut self) -> Vec<Vec<f32>> {
        self.gemma.model().take_captured()
    }

    /// The probe in use (few-shot mode with the model it was fitted for), if any.
    pub fn probe(&self) -> Option<&Probe> {
        self.probe.as_ref()
    }

    /// The mode in use.
    pub fn mode(&self) -> LabelMode {
        self.mode
    }

    /// Few-shot mode: the five log-odds (one per label) of one review, the page's KV cache reused.
    /// `review.text` should already be cleaned by the guard.
    pub fn fewshot_log_odds(&mut self, review: &ReviewInput, max_chars: usize) -> Result<PerLabel<f32>> {
        let Some((tokens, _)) = self.fewshot.as_ref() else { anyhow::bail!("the backend is not in few-shot mode") };
        let block = self.gemma.tokenizer().encode_with(&fewshot::block_for(review, max_chars), false, false);
        let prefix_len = tokens.prefix.len();
        let model = self.gemma.model();
        let cached = self.params.prefix_cache && model.context().starts_with(&tokens.prefix);
        let mut step = Step(model);
        if cached {
            step.truncate(prefix_len)?;
            self.stats.reused_tokens += prefix_len;
        } else {
            step.0.reset();
            step.feed(&tokens.prefix)?;
            self.stats.prefill_tokens += prefix_len;
        }
        if !self.capture.is_empty() {
            step.0.capture_next(&self.capture);
        }
        let (lo, fed) = fewshot::score_review(&mut step, tokens, &block)?;
        self.stats.prefill_tokens += fed;
        self.stats.decode_steps += fewshot::QUESTIONS.len() - 1;
        Ok(lo)
    }

    /// Slots over the prefix `tokens`, `n` of them started: the prefix's KV cache is computed as the
    /// one-at-a-time path computes it (the model's context reset and the prefix fed in one batch) and
    /// snapshotted once.
    fn start_slots(&mut self, tokens: &[u32], n: usize) -> Result<()> {
        let keep = self.slots.as_ref().is_some_and(|b| b.prefix().tokens == tokens);
        if !keep {
            let model = self.gemma.model();
            model.reset();
            let logits = model.forward(tokens, false)?.to_vec1::<f32>()?;
            self.stats.prefill_tokens += tokens.len();
            self.slots = Some(PrefixBatch::new(model.snapshot(logits)?));
            // the model's own context was reset: the one-at-a-time path recomputes its chat prefix
            self.prefix = None;
        } else {
            self.stats.reused_tokens += tokens.len();
        }
        self.stats.reused_tokens += tokens.len() * (n - 1);
        let slots = self.slots.as_mut().expect("made above");
        slots.start(self.gemma.model(), n)
    }

    /// Few-shot mode: the five log-odds of each review, all reviews in flight at once (one batched forward per
    /// question). The same values as [`LocalGemmaBackend::fewshot_log_odds`] per review.
    pub fn fewshot_log_odds_batch(&mut self, reviews: &[ReviewInput], max_chars: usize) -> Result<Vec<PerLabel<f32>>> {
        let Some((tokens, _)) = self.fewshot.as_ref() else { anyhow::bail!("the backend is not in few-shot mode") };
        let tokens = tokens.clone();
        let blocks: Vec<Vec<u32>> =
            reviews.iter().map(|r| self.gemma.tokenizer().encode_with(&fewshot::block_for(r, max_chars), false, false)).collect();
        self.start_slots(&tokens.prefix, reviews.len())?;
        if !self.capture.is_empty() {
            self.slots.as_mut().expect("started").capture_next(&self.capture);
        }
        let mut slots = Slots { model: self.gemma.model(), batch: self.slots.as_mut().expect("started") };
        let scored = fewshot::score_reviews(&mut slots, &tokens, &blocks)?;
        self.batch_hidden = self.slots.as_mut().expect("started").take_captured();
        self.stats.prefill_tokens += scored.iter().map(|s| s.1).sum::<usize>();
        self.stats.decode_steps += (fewshot::QUESTIONS.len() - 1) * reviews.len();
        Ok(scored.into_iter().map(|s| s.0).collect())
    }

    /// Several answers at once: few-shot scores, or constrained JSON answers decoded in lockstep. Free
    /// generation is not batched (None).
    fn answer_batch(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Result<Option<Vec<RawOutput>>> {
        if self.mode == LabelMode::FewShot {
            let max_chars = prompt.max_text_chars.min(fewshot::FEWSHOT_MAX_CHARS);
            let los = self.fewshot_log_odds_batch(reviews, max_chars)?;
            let hidden = std::mem::take(&mut self.batch_hidden);
            let mut out = Vec::with_capacity(reviews.len());
            for (i, (lo, r)) in los.iter().zip(reviews).enumerate() {
                let z = self.probe_logits(hidden.get(i).map(Vec::as_slice).unwrap_or(&[]))?;
                let (_, rules) = self.fewshot.as_ref().expect("few-shot mode");
                let verdict = self.params.calibration.combine_with_probe(lo, &z, &rules.judge(&super::prompt::prepare_text(&r.text, prompt.max_text_chars)));
                out.push(RawOutput { raw: fewshot::answer_json(&verdict, lo), probs: Some(verdict.probs) });
            }
            return Ok(Some(out));
        }
        if self.masks.is_none() {
            return Ok(None);
        }
        let mut prefix = Vec::new();
        let mut tails = Vec::with_capacity(reviews.len());
        for r in reviews {
            let (p, t) = self.prompt_tokens(prompt, r);
            prefix = p;
            tails.push(t);
        }
        self.start_slots(&prefix, reviews.len())?;
        self.stats.prefill_tokens += tails.iter().map(Vec::len).sum::<usize>();
        let masks = self.masks.as_mut().expect("checked above");
        let mut slots = Slots { model: self.gemma.model(), batch: self.slots.as_mut().expect("started") };
        let answers = decode_constrained_batch(&mut slots, masks, &tails, self.params.max_new_tokens)?;
        self.stats.decode_steps += answers.iter().map(|a| a.steps).sum::<usize>();
        Ok(Some(answers.into_iter().map(|a| RawOutput { raw: a.text, probs: Some(a.probs) }).collect()))
    }

    /// The probe's logits from one review's captured hidden states (None per label without a probe).
    fn probe_logits(&self, hidden: &[Vec<f32>]) -> Result<PerLabel<Option<f32>>> {
        Ok(match &self.probe {
            Some(p) => {
                let at = self.capture.iter().position(|&l| l == p.layer).context("the probe's layer was not captured")?;
                p.logits(hidden.get(at).context("no hidden state was captured for the review")?)?
            }
            None => PerLabel([None; 5]),
        })
    }

    fn answer_fewshot(&mut self, prompt: &ModeratorPrompt, review: &ReviewInput) -> Result<RawOutput> {
        let max_chars = prompt.max_text_chars.min(fewshot::FEWSHOT_MAX_CHARS);
        let lo = self.fewshot_log_odds(review, max_chars)?;
        let hidden = self.take_hidden();
        let z = self.probe_logits(&hidden)?;
        let (_, rules) = self.fewshot.as_ref().expect("few-shot mode");
        let verdict = self.params.calibration.combine_with_probe(&lo, &z, &rules.judge(&super::prompt::prepare_text(&review.text, prompt.max_text_chars)));
        Ok(RawOutput { raw: fewshot::answer_json(&verdict, &lo), probs: Some(verdict.probs) })
    }

    /// The settings in use.
    pub fn params(&self) -> &LocalParams {
        &self.params
    }

    /// Prompt tokens for one review: (shared prefix, review-specific tail). The user text is encoded with
    /// special tokens disabled.
    fn prompt_tokens(&self, prompt: &ModeratorPrompt, review: &ReviewInput) -> (Vec<u32>, Vec<u32>) {
        let tok = self.gemma.tokenizer();
        let prefix = tok.encode_with(&chat_prefix(&prompt.system), false, true);
        let user = prompt.user_turn(review);
        let mut tail = tok.encode_with(user.trim(), false, false);
        tail.extend(tok.encode_with("<end_of_turn>\n<start_of_turn>model\n", false, true));
        (prefix, tail)
    }

    /// Puts the model's context at the end of the prompt's shared prefix (reusing its KV cache when
    /// enabled) and returns the tokens still to feed.
    fn prepare(&mut self, prompt: &ModeratorPrompt, review: &ReviewInput) -> Result<Vec<u32>> {
        let (prefix, tail) = self.prompt_tokens(prompt, review);
        let mut step = Step(self.gemma.model());
        if self.params.prefix_cache {
            let cached = matches!(&self.prefix, Some((sys, toks)) if *sys == prompt.system && *toks == prefix)
                && step.0.context().starts_with(&prefix);
            if cached {
                step.truncate(prefix.len())?;
                self.stats.reused_tokens += prefix.len();
            } else {
                step.0.reset();
                step.feed(&prefix)?;
                self.stats.prefill_tokens += prefix.len();
                self.prefix = Some((prompt.system.clone(), prefix));
            }
            self.stats.prefill_tokens += tail.len();
            Ok(tail)
        } else {
            // Recompute the prefix, fed as its own batch exactly as when it is cached: quantized matmuls round
            // activations to 8 bits, and a different batching changes the last bits (see issue 6's parity test),
            // so the cache must change the speed and nothing else.
            step.0.reset();
            step.feed(&prefix)?;
            self.stats.prefill_tokens += prefix.len() + tail.len();
            Ok(tail)
        }
    }

    /// One answer: constrained (text + probabilities) or free greedy generation (text only).
    pub fn answer_one(&mut self, prompt: &ModeratorPrompt, review: &ReviewInput) -> Result<RawOutput> {
        let t0 = Instant::now();
        if self.mode == LabelMode::FewShot {
            let out = self.answer_fewshot(prompt, review)?;
            self.stats.reviews += 1;
            self.stats.secs += t0.elapsed().as_secs_f64();
            return Ok(out);
        }
        let unfed = self.prepare(prompt, review)?;
        let out = if let Some(masks) = self.masks.as_mut() {
            let a = decode_constrained(&mut Step(self.gemma.model()), masks, &unfed, self.params.max_new_tokens)?;
            self.stats.decode_steps += a.steps;
            RawOutput { raw: a.text, probs: Some(a.probs) }
        } else {
            // The seed's free greedy generation, through llm's generate (context = prompt minus `unfed`).
            let mut ids = self.gemma.model().context().to_vec();
            ids.extend(unfed);
            let params = GenerateParams { max_new_tokens: self.params.max_new_tokens, ..GenerateParams::default() };
            let g = self.gemma.generate_ids(&ids, &params, None)?;
            self.stats.decode_steps += g.decode_steps;
            RawOutput { raw: g.text, probs: None }
        };
        self.stats.reviews += 1;
        self.stats.secs += t0.elapsed().as_secs_f64();
        Ok(out)
    }

    /// The constrained-decoding masks (None when constrained decoding is off).
    pub fn masks(&mut self) -> Option<&mut TokenMasks> {
        self.masks.as_mut()
    }
}

impl LabelBackend for LocalGemmaBackend {
    fn backend_name(&self) -> String {
        "local-gemma".into()
    }
    fn model_id(&self) -> String {
        self.model_id.clone()
    }
    fn settings(&self) -> String {
        match self.mode {
            LabelMode::FewShot => {
                let c = &self.params.calibration;
                let probe = self.probe.as_ref().map_or("none".to_string(), |p| format!("layer{}-{}", p.layer, p.fingerprint()));
                format!(
                    "mode={} page={} bias={:?} weights={:?} rule_prob={:?} probe={probe} probe_weight={:?} probe_bias={:?}",
                    self.mode.name(),
                    fewshot::FEWSHOT_VERSION,
                    c.bias,
                    c.weights,
                    c.rule_prob,
                    c.probe_weight,
                    c.probe_bias
                )
            }
            LabelMode::Instruct => format!(
                "mode={} constrained={} max_new_tokens={} max_rationale={}",
                self.mode.name(),
                self.params.constrained,
                self.params.max_new_tokens,
                self.params.max_rationale
            ),
        }
    }
    fn preferred_batch(&self) -> usize {
        self.params.batch
    }
    fn answer(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Vec<Result<RawOutput>> {
        if self.params.batch <= 1 || !self.params.prefix_cache {
            return reviews.iter().map(|r| self.answer_one(prompt, r)).collect();
        }
        let mut out = Vec::with_capacity(reviews.len());
        for chunk in reviews.chunks(self.params.batch) {
            let t0 = Instant::now();
            match self.answer_batch(prompt, chunk) {
                Ok(Some(answers)) => {
                    self.stats.reviews += chunk.len();
                    self.stats.secs += t0.elapsed().as_secs_f64();
                    out.extend(answers.into_iter().map(Ok));
                }
                // not batchable (free generation), or the batch failed: one at a time, so that an error
                // is reported for its own review only
                Ok(None) | Err(_) => out.extend(chunk.iter().map(|r| self.answer_one(prompt, r))),
            }
        }
        out
    }
}
