//! Several sequences in flight: one forward pass for B sequences, each with its own KV cache.
//!
//! Why: labeling feeds every review the same way (a shared prefix, then the review, then a few short
//! steps). One review at a time, each step of a few tokens reads every weight matrix once for those few
//! rows, and the 262,144-row LM head once per step for one row; the products are then bound by memory, not
//! arithmetic. [`Gemma3Model::forward_batch`] stacks the rows of B sequences so that each weight matrix is
//! read once per step for all of them, as llama.cpp's server does with parallel slots.
//!
//! What stays per sequence: its KV cache ([`SeqCache`]), its positions (rope, masks) and its attention.
//! Everything between the attentions works row by row (embedding, RMSNorm, the quantized products, which
//! quantize each activation row on its own, GELU, residuals), so a sequence's rows get the same arithmetic
//! whether they are stacked with others or not; attention runs per sequence through the very functions of
//! the one-sequence forward ([`super::attend_seq`] for several tokens, [`super::attend_row`] for one on the
//! CPU decode path). That is why a batched sequence's logits are the one-at-a-time logits bit for bit
//! (tests/label_batch.rs checks it on the tiny random model and the embedded 270M), with two exceptions:
//! - a sequence fed a single token, when the model has candle Q6_K weights (Q4_K_M files): alone, candle runs
//!   that product on one row as a GEMV over the compact blocks, in a batch as repacked tiles, whose float
//!   sums round differently, and the next layer's 8-bit activation quantization can turn a last-bit
//!   difference into a quantization step: the logits then differ by up to a few percent (2.9e-2 of the
//!   largest logit measured on the 270M). Few-shot scoring never feeds a single token (bit for bit);
//!   lockstep constrained decoding does (tested: the same answers, probabilities within 2e-2);
//! - dense f32 weights, where candle's f32 matmul sums in another order for another number of rows (within
//!   1e-5 of the largest logit on the tiny model).
//!
//! [`PrefixBatch`] is the labeler's view: B slots that all start from one prefix snapshot (the few-shot
//! page, the system prompt). A slot's buffers keep the prefix after its review is done, so the next review
//! in the slot starts by truncating back to it (no copy); the prefix is copied once per slot.

use anyhow::{bail, ensure, Context, Result};
use candle_core::{DType, Tensor};

use super::{attend_row, copy_snapshot, attend_seq, softcap_row, softcap_tensor, Gemma3Model, KvSnapshot, LayerCache, RowPlan, SeqPlan};

/// The KV cache and context of one sequence, held apart from the model's own cache: the state of one slot
/// of [`Gemma3Model::forward_batch`].
#[derive(Clone, Default)]
pub struct SeqCache {
    cache: Vec<LayerCache>,
    tokens: Vec<u32>,
}

impl SeqCache {
    /// Tokens in this sequence's cache.
    pub fn context(&self) -> &[u32] {
        &self.tokens
    }

    /// Drops cached positions beyond `len`.
    pub fn truncate(&mut self, len: usize) {
        let len = len.min(self.tokens.len());
        for c in &mut self.cache {
            c.len = len;
        }
        self.tokens.truncate(len);
    }
}

/// How one sequence of a batch goes through attention this call.
enum Plan {
    /// One token on the CPU decode path (as [`Gemma3Model::forward`] would run it alone).
    Row(RowPlan),
    /// Several tokens (or a non-CPU device) on the tensor path.
    Seq(SeqPlan),
}

impl Gemma3Model {
    /// An empty sequence cache for [`Gemma3Model::forward_batch`].
    pub fn new_seq(&self) -> SeqCache {
        SeqCache { cache: vec![LayerCache::default(); self.cache.len()], tokens: Vec::new() }
    }

    /// Puts a prefix snapshot into a sequence cache. When the sequence already starts with the prefix it is
    /// only truncated to it (the buffers are reused, nothing is copied).
    pub fn restore_seq(&self, seq: &mut SeqCache, snap: &KvSnapshot) -> Result<()> {
        if seq.cache.len() != self.cache.len() {
            *seq = self.new_seq();
        }
        if seq.tokens.starts_with(&snap.tokens) {
            seq.truncate(snap.tokens.len());
            return Ok(());
        }
        seq.truncate(0);
        copy_snapshot(&mut seq.cache, snap, &self.cfg, &self.device)?;
        seq.tokens = snap.tokens.clone();
        Ok(())
    }

    /// Feeds each sequence its tokens (every feed non-empty) in one pass and returns, per sequence, the logits
    /// of the token after its last fed token `(vocab,)`. Rows of all sequences are stacked for the products;
    /// each sequence attends over its own cache. A sequence gets the logits [`Gemma3Model::forward`] gives
    /// for the same context and tokens, bit for bit for quantized weights (see the module doc for the
    /// exceptions and their bounds).
    pub fn forward_batch(&self, batch: &mut [(&mut SeqCache, &[u32])]) -> Result<Vec<Vec<f32>>> {
        Ok(self.forward_batch_capture(batch, &[])?.0)
    }

    /// [`Gemma3Model::forward_batch`] that also returns, per sequence and per layer in `layers` (in that
    /// order), the mean over the sequence's fed positions of the residual stream after that layer: the
    /// batched twin of [`Gemma3Model::capture_next`], for the labeler's hidden-state probe.
    pub fn forward_batch_capture(
        &self,
        batch: &mut [(&mut SeqCache, &[u32])],
        layers: &[usize],
    ) -> Result<(Vec<Vec<f32>>, Vec<Vec<Vec<f32>>>)> {
        if batch.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut captured = vec![vec![Vec::new(); layers.len()]; batch.len()];
        let vocab = self.embed.rows()?;
        for (seq, toks) in batch.iter() {
            ensure!(!toks.is_empty(), "forward_batch: a sequence has no tokens to feed");
            if let Some(&bad) = toks.iter().find(|&&t| t as usize >= vocab) {
                bail!("token id {bad} is outside the vocabulary (size {vocab})");
            }
            ensure!(seq.cache.len() == self.cache.len(), "forward_batch: a sequence cache of another model (make it with new_seq)");
        }
        let cfg = &self.cfg;
        let dev = &self.device;
        let eps = cfg.rms_norm_eps as f32;
        let q_width = cfg.num_attention_heads * cfg.head_dim;
        let fast = self.fast_decode && dev.is_cpu();
        // row offsets of the sequences in the stacked activations
        let mut offsets = Vec::with_capacity(batch.len());
        let mut ids = Vec::new();
        for (_, toks) in batch.iter() {
            offsets.push(ids.len());
            ids.extend_from_slice(toks);
        }
        let plans: Vec<Plan> = batch
            .iter()
            .map(|(seq, toks)| {
                let pos = seq.tokens.len();
                Ok(if toks.len() == 1 && fast { Plan::Row(self.row_plan(pos)) } else { Plan::Seq(self.seq_plan(pos, toks.len())?) })
            })
            .collect::<Result<_>>()?;
        let mut x = (self.embed.lookup(&Tensor::new(ids.as_slice(), dev)?)? * (cfg.hidden_size as f64).sqrt())?; // (rows, hidden)
        for (li, layer) in self.layers.iter().enumerate() {
            let a = &layer.attn;
            let h = candle_nn::ops::rms_norm(&x, &layer.input_norm, eps)?;
            let qkv = a.qkv.forward(&h)?;
            let mut outs = Vec::with_capacity(batch.len());
            for (i, (seq, toks)) in batch.iter_mut().enumerate() {
                let (off, n) = (offsets[i], toks.len());
                let cache = &mut seq.cache[li];
                let part = |t: &Tensor| t.narrow(0, off, n);
                match &plans[i] {
                    Plan::Seq(p) => outs.push(attend_seq(cfg, a, cache, &part(&qkv[0])?, &part(&qkv[1])?, &part(&qkv[2])?, p)?),
                    Plan::Row(p) => {
                        let row = |t: &Tensor| -> Result<Vec<f32>> { Ok(part(t)?.flatten_all()?.to_vec1::<f32>()?) };
                        let o = attend_row(cfg, a, &layer.vec, cache, row(&qkv[0])?, row(&qkv[1])?, row(&qkv[2])?, p, dev)?;
                        outs.push(Tensor::from_vec(o, (1, q_width), dev)?);
                    }
                }
            }
            let o = if outs.len() == 1 { outs.pop().context("one output")? } else { Tensor::cat(&outs, 0)? };
            x = layer.finish_seq(x, &o, eps)?;
            for (slot, _) in layers.iter().enumerate().filter(|(_, &l)| l == li) {
                for (i, (_, toks)) in batch.iter().enumerate() {
                    captured[i][slot] = x.narrow(0, offsets[i], toks.len())?.mean(0)?.to_dtype(DType::F32)?.to_vec1()?;
                }
            }
        }
        for (seq, toks) in batch.iter_mut() {
            seq.tokens.extend_from_slice(toks);
        }
        // the last row of every sequence: final norm and LM head for all of them at once
        let last: Vec<u32> = batch.iter().zip(&offsets).map(|((_, t), &o)| (o + t.len() - 1) as u32).collect();
        let xl = x.index_select(&Tensor::new(last.as_slice(), dev)?, 0)?;
        let xl = candle_nn::ops::rms_norm(&xl, &self.final_norm, eps)?;
        let logits = self.lm_head.forward(&xl)?;
        let mut out = Vec::with_capacity(batch.len());
        for (i, plan) in plans.iter().enumerate() {
            let row = logits.narrow(0, i, 1)?;
            out.push(match plan {
                Plan::Row(_) => {
                    let mut v = row.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                    softcap_row(&mut v, cfg.final_logit_softcapping);
                    v
                }
                Plan::Seq(_) => softcap_tensor(row, cfg.final_logit_softcapping)?.flatten_all()?.to_vec1::<f32>()?,
            });
        }
        Ok((out, captured))
    }
}

/// B sequences that each continue one shared prefix (the labeler's batch): slot `i` holds its own KV cache,
/// which starts as the prefix ([`PrefixBatch::start`]) and grows as [`PrefixBatch::feed`] appends tokens.
pub struct PrefixBatch {
    prefix: KvSnapshot,
    slots: Vec<SeqCache>,
    active: usize,
    /// Layers the next feed captures ([`PrefixBatch::capture_next`]), and what the last armed feed captured.
    capture: (Vec<usize>, Vec<Vec<Vec<f32>>>),
}

impl PrefixBatch {
    /// A batch over `prefix` with no slots yet.
    pub fn new(prefix: KvSnapshot) -> Self {
        Self { prefix, slots: Vec::new(), active: 0, capture: (Vec::new(), Vec::new()) }
    }

    /// The shared prefix.
    pub fn prefix(&self) -> &KvSnapshot {
        &self.prefix
    }

    /// Puts `n` slots at the end of the prefix (slots made earlier are truncated back to it, new ones get a
    /// copy of it).
    pub fn start(&mut self, model: &Gemma3Model, n: usize) -> Result<()> {
        while self.slots.len() < n {
            self.slots.push(model.new_seq());
        }
        for s in &mut self.slots[..n] {
            model.restore_seq(s, &self.prefix)?;
        }
        self.active = n;
        Ok(())
    }

    /// Slots in use since the last [`PrefixBatch::start`].
    pub fn len(&self) -> usize {
        self.active
    }

    /// True when no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.active == 0
    }

    /// Tokens in slot `i`'s context (prefix included).
    pub fn context_len(&self, i: usize) -> usize {
        self.slots[i].tokens.len()
    }

    /// Drops slot `i`'s positions beyond `len`.
    pub fn truncate(&mut self, i: usize, len: usize) {
        self.slots[i].truncate(len);
    }

    /// Appends `feeds[i]` to slot `i` for every slot with a non-empty feed, in one batched forward, and returns
    /// per slot the logits after its last token (an empty vector for slots not fed).
    pub fn feed(&mut self, model: &Gemma3Model, feeds: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        ensure!(feeds.len() <= self.active, "{} feeds for {} slots", feeds.len(), self.active);
        let fed: Vec<usize> = (0..feeds.len()).filter(|&i| !feeds[i].is_empty()).collect();
        let mut batch: Vec<(&mut SeqCache, &[u32])> = self
            .slots
            .iter_mut()
            .zip(feeds)
            .filter(|(_, f)| !f.is_empty())
            .map(|(s, f)| (s, f.as_slice()))
            .collect();
        let layers = std::mem::take(&mut self.capture.0);
        let (logits, captured) = model.forward_batch_capture(&mut batch, &layers)?;
        let mut out = vec![Vec::new(); feeds.len()];
        if !layers.is_empty() {
            self.capture.1 = vec![Vec::new(); feeds.len()];
        }
        for ((i, l), c) in fed.into_iter().zip(logits).zip(captured) {
            out[i] = l;
            if !layers.is_empty() {
                self.capture.1[i] = c;
            }
        }
        Ok(out)
    }

    /// Hidden-state capture for probes, the batched twin of [`Gemma3Model::capture_next`]: the next
    /// [`PrefixBatch::feed`] stores, per fed slot and per listed layer, the mean over the slot's fed positions
    /// of the residual stream after that layer; read it with [`PrefixBatch::take_captured`].
    pub fn capture_next(&mut self, layers: &[usize]) {
        self.capture = (layers.to_vec(), Vec::new());
    }

    /// Per slot of the armed feed, the captured vectors (one per layer given to [`PrefixBatch::capture_next`],
    /// in that order; empty for slots not fed), taken out of the batch.
    pub fn take_captured(&mut self) -> Vec<Vec<Vec<f32>>> {
        std::mem::take(&mut self.capture.1)
    }
}
