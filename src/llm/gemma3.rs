//! The Gemma-3 text decoder, written for revmod on candle-core (+ candle-nn's fused ops).
//!
//! What it gets right that candle-transformers 0.11 does not (see issue 6): GELU-tanh MLP (not SiLU), several
//! KV heads with multi-token prompts (the KV cache only ever receives contiguous tensors), linear RoPE scaling
//! on the global layers, the attention scale from `query_pre_attn_scalar`, soft-capping when configured.
//!
//! Shapes: one sequence (batch 1). Activations are f32. Weights are either quantized (`QMatMul::QTensor`, from
//! GGUF) or dense (`QMatMul::Tensor`, from safetensors); RMSNorm weights are stored as `1 + w` (GGUF already
//! stores them that way; safetensors loading adds the 1).
//!
//! KV cache: per layer a preallocated `(kv_heads, capacity, head_dim)` buffer for keys and one for values,
//! filled in place (`slice_set`) and grown by doubling, so a decode step copies only the new token.
//!
//! Speed on CPU (the 270M Q4_K_M against llama.cpp, `scripts/bench-llm`): Q8_0 weights (and Q5_0, re-encoded)
//! go through our tiled product ([`super::q8_0`]: AVX-512 VNNI, AVX2 or NEON, [`super::cpu`] picks), stacked per input (q/k/v, gate/up); GELU*up is one
//! vectorized pass ([`super::ops`]); prompts run as candle tensor ops, while a single token (decode) runs
//! through [`Gemma3Model::forward`]'s steps on plain vectors between the products (`decode_row`), which
//! removes ~30 small tensor ops per layer. `set_fast_decode(false)` keeps the tensor-op path for checks.

use super::config::Gemma3Config;
use anyhow::{bail, Context, Result};
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use std::sync::Arc;

mod batch;
pub use batch::{PrefixBatch, SeqCache};

/// Where the weights come from: a loader maps the model's logical (HF-style) names to its tensors.
pub trait WeightSource {
    /// A projection `W` (out, in) by HF name without `.weight`, e.g. `layers.0.self_attn.q_proj`.
    fn linear(&mut self, name: &str) -> Result<QMatMul>;
    /// An RMSNorm weight by HF name, returned as `1 + w` in f32.
    fn norm(&mut self, name: &str) -> Result<Tensor>;
    /// The token embedding (vocab, hidden), also used as the tied LM head.
    fn embedding(&mut self) -> Result<Embedding>;
    /// The device tensors are placed on.
    fn device(&self) -> &Device;
}

/// The token embedding matrix: quantized (GGUF) or dense f32.
#[derive(Clone)]
pub enum Embedding {
    /// A quantized matrix (rows looked up with candle's quantized embedding kernel).
    Quantized(Arc<QTensor>),
    /// A dense f32 matrix.
    Dense(Tensor),
    /// A Q8_0 matrix in our tiled layout, shared with the tied LM head (so its bytes are held once).
    Tiled(Arc<super::q8_0::Q8_0Matrix>),
}

impl Embedding {
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Embedding::Quantized(q) => q.embedding(ids)?,
            Embedding::Dense(t) => t.index_select(ids, 0)?,
            Embedding::Tiled(m) => {
                let list: Vec<u32> = ids.flatten_all()?.to_dtype(DType::U32)?.to_vec1()?;
                let mut v = Vec::with_capacity(list.len() * m.cols());
                for &i in &list {
                    v.extend(m.row_values(i as usize)?);
                }
                let mut shape = ids.dims().to_vec();
                shape.push(m.cols());
                Tensor::from_vec(v, shape, ids.device())?
            }
        })
    }

    fn as_lm_head(&self) -> Result<Linear> {
        match self {
            Embedding::Quantized(q) => Linear::new(QMatMul::QTensor(q.clone())),
            Embedding::Dense(t) => Linear::new(QMatMul::Tensor(t.clone())),
            Embedding::Tiled(m) => Ok(Linear::Q8_0(m.clone())),
        }
    }

    fn cols(&self) -> Result<usize> {
        Ok(match self {
            Embedding::Quantized(q) => q.shape().dims2()?.1,
            Embedding::Dense(t) => t.dims2()?.1,
            Embedding::Tiled(m) => m.cols(),
        })
    }

    fn rows(&self) -> Result<usize> {
        Ok(match self {
            Embedding::Quantized(q) => q.shape().dims2()?.0,
            Embedding::Dense(t) => t.dims2()?.0,
            Embedding::Tiled(m) => m.rows(),
        })
    }

    /// The embedding and the tied LM head. When the head is a re-laid Q8_0 matrix, the embedding reads its
    /// rows from it (the same values: [`super::q8_0::Q8_0Matrix::row_values`]) and the original tensor is
    /// dropped, so the 270M's 178 MB table is not held twice.
    fn with_lm_head(self) -> Result<(Embedding, Linear)> {
        let head = self.as_lm_head()?;
        if let (Embedding::Quantized(_), Linear::Q8_0(m)) = (&self, &head) {
            if m.is_relaid() {
                return Ok((Embedding::Tiled(m.clone()), head));
            }
        }
        Ok((self, head))
    }
}

/// A projection: candle's `QMatMul`, or for Q8_0 weights on a CPU with a tiled path (AVX-512 VNNI, AVX2,
/// NEON) our tiled kernel ([`super::q8_0`]), which gives candle's results bit for bit on x86, faster.
enum Linear {
    Candle(QMatMul),
    Q8_0(Arc<super::q8_0::Q8_0Matrix>),
}

impl Linear {
    fn new(m: QMatMul) -> Result<Self> {
        if let QMatMul::QTensor(q) = &m {
            if let Some(t) = super::q8_0::Q8_0Matrix::new(q)? {
                return Ok(Linear::Q8_0(Arc::new(t)));
            }
        }
        Ok(Linear::Candle(m))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Candle(m) => Ok(m.forward(x)?),
            Linear::Q8_0(m) => m.forward(x),
        }
    }

    /// The product of one row (decode), slice in and out.
    fn forward_row(&self, x: &[f32], dev: &Device) -> Result<Vec<f32>> {
        match self {
            Linear::Candle(m) => Ok(m.forward(&Tensor::from_slice(x, (1, x.len()), dev)?)?.flatten_all()?.to_vec1()?),
            Linear::Q8_0(m) => m.forward_rows(x),
        }
    }
}

/// Projections of one input (q/k/v; gate/up): stacked into one Q8_0 product when all are tiled Q8_0
/// (outputs split by column afterwards), else applied one by one.
enum Projections {
    Stacked(super::q8_0::Q8_0Matrix, Vec<usize>),
    Each(Vec<Linear>),
}

impl Projections {
    fn new(parts: Vec<Linear>) -> Result<Self> {
        let tiled: Vec<&super::q8_0::Q8_0Matrix> =
            parts.iter().filter_map(|p| if let Linear::Q8_0(m) = p { Some(&**m) } else { None }).collect();
        if tiled.len() == parts.len() && tiled.windows(2).all(|w| w[0].cols() == w[1].cols()) {
            let rows = tiled.iter().map(|m| m.rows()).collect();
            return Ok(Projections::Stacked(super::q8_0::Q8_0Matrix::stack(&tiled)?, rows));
        }
        Ok(Projections::Each(parts))
    }

    /// One output row per projection for one input row (decode).
    fn forward_row(&self, x: &[f32], dev: &Device) -> Result<Vec<Vec<f32>>> {
        match self {
            Projections::Each(ps) => ps.iter().map(|p| p.forward_row(x, dev)).collect(),
            Projections::Stacked(m, rows) => {
                let all = m.forward_rows(x)?;
                let mut at = 0;
                Ok(rows.iter().map(|&n| { at += n; all[at - n..at].to_vec() }).collect())
            }
        }
    }

    /// One output per projection, in order.
    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Projections::Each(ps) => ps.iter().map(|p| p.forward(x)).collect(),
            Projections::Stacked(m, rows) => {
                let all = m.forward(x)?;
                let mut at = 0;
                rows.iter()
                    .map(|&n| {
                        at += n;
                        Ok(all.narrow(candle_core::D::Minus1, at - n, n)?)
                    })
                    .collect()
            }
        }
    }
}

struct Attention {
    /// q, k and v.
    qkv: Projections,
    o_proj: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
    sliding: bool,
}

struct Mlp {
    /// gate and up.
    gate_up: Projections,
    down: Linear,
}

impl Mlp {
    /// `down(gelu_tanh(gate(h)) * up(h))`.
    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up.forward(h)?;
        let (g, u) = (&gu[0], &gu[1]);
        let gu = if h.device().is_cpu() { super::ops::gelu_mul(g, u)? } else { (g.gelu()? * u)? };
        self.down.forward(&gu)
    }
}

/// Attention of a single query position (decode) on CPU: `qv` the `heads * hd` query values (roped, not
/// yet scaled), `k`/`v` the cache views `(kv, L, hd)` with contiguous rows. Scores `scale * q . k_j`
/// (soft-capped when configured), softmax over the L keys (all visible: the view starts at the window),
/// then the weighted sum of the value rows: `heads * hd` values.
///
/// Why not the batched path: at one query the two `matmul`s spend more time setting up gemm and copying the
/// grouped query than multiplying (about 7% of decode time); here the cache rows are read where they are.
fn decode_attention(qv: &[f32], k: &Tensor, v: &Tensor, scale: f32, softcap: Option<f64>, n_rep: usize) -> Result<Vec<f32>> {
    use candle_core::Storage;
    let (kv, l, hd) = k.dims3()?;
    let nh = kv * n_rep;
    if qv.len() != nh * hd || v.dims3()? != (kv, l, hd) {
        bail!("decode attention: q has {} values for {nh} heads of {hd}, v {:?}", qv.len(), v.dims());
    }
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (Storage::Cpu(kc), Storage::Cpu(vc)) = (&*ks, &*vs) else { bail!("decode attention needs CPU tensors") };
    let (kd, vd) = (kc.as_slice::<f32>()?, vc.as_slice::<f32>()?);
    if kl.stride()[2] != 1 || vl.stride()[2] != 1 {
        bail!("decode attention needs contiguous cache rows");
    }
    // element range of row j of KV head g in a cache view
    let row = |lay: &candle_core::Layout, g: usize, j: usize| -> std::ops::Range<usize> {
        let o = lay.start_offset() + g * lay.stride()[0] + j * lay.stride()[1];
        o..o + hd
    };
    let mut out = vec![0f32; nh * hd];
    // heads in parallel on candle's worker pool, each writing its own hd outputs
    super::ops::pool_chunks_mut(&mut out, hd, |h, oh| {
        let mut sc = vec![0f32; l];
        let g = h / n_rep;
        let qh: Vec<f32> = qv[h * hd..(h + 1) * hd].iter().map(|x| x * scale).collect();
        for (j, s) in sc.iter_mut().enumerate() {
            *s = dot(&qh, &kd[row(kl, g, j)]);
        }
        if let Some(cap) = softcap {
            let cap = cap as f32;
            sc.iter_mut().for_each(|s| *s = (*s / cap).tanh() * cap);
        }
        let m = sc.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0f32;
        for s in sc.iter_mut() {
            *s = (*s - m).exp();
            sum += *s;
        }
        for (j, &p) in sc.iter().enumerate() {
            let p = p / sum;
            for (o, &x) in oh.iter_mut().zip(&vd[row(vl, g, j)]) {
                *o += p * x;
            }
        }
    });
    Ok(out)
}

/// Dot product with eight independent partial sums (so it vectorizes).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Per-call data of one single-token sequence on the decode path: rope values of its position and the
/// sliding window's first key.
struct RowPlan {
    rope_local: (Vec<f32>, Vec<f32>),
    rope_global: (Vec<f32>, Vec<f32>),
    local_start: usize,
}

/// Per-call data of one sequence on the tensor path: rope tables and masks of its positions.
struct SeqPlan {
    seq: usize,
    rope_local: (Tensor, Tensor),
    rope_global: (Tensor, Tensor),
    local_start: usize,
    mask_local: Option<Tensor>,
    mask_global: Option<Tensor>,
}

/// One layer's attention for the `plan.seq` tokens of one sequence on the tensor path: `q`, `k`, `v` are
/// the projections' outputs `(seq, heads * hd)`, `(seq, kv * hd)` (any layout); q/k norms, rope, the keys
/// and values appended to `cache`, attention over the cached keys. Returns `(seq, heads * hd)`. Shared by
/// [`Gemma3Model::forward`] and the batched forward, so a sequence gets the same values in both.
fn attend_seq(cfg: &Gemma3Config, a: &Attention, cache: &mut LayerCache, q: &Tensor, k: &Tensor, v: &Tensor, plan: &SeqPlan) -> Result<Tensor> {
    let (nh, kv, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
    let n_rep = nh / kv;
    let eps = cfg.rms_norm_eps as f32;
    let scale = cfg.query_pre_attn_scalar.powf(-0.5);
    let seq = plan.seq;
    let q = q.reshape((1, seq, nh, hd))?;
    let k = k.reshape((1, seq, kv, hd))?;
    let v = v.reshape((seq, kv, hd))?;
    let q = candle_nn::ops::rms_norm(&q, &a.q_norm, eps)?;
    let k = candle_nn::ops::rms_norm(&k, &a.k_norm, eps)?;
    let (cos, sin) = if a.sliding { &plan.rope_local } else { &plan.rope_global };
    let q = candle_nn::rotary_emb::rope_thd(&q, cos, sin)?;
    let k = candle_nn::rotary_emb::rope_thd(&k, cos, sin)?;
    // (kv, seq, hd) contiguous into the cache
    let k = k.squeeze(0)?.transpose(0, 1)?.contiguous()?;
    let v = v.transpose(0, 1)?.contiguous()?;
    cache.append(&k, &v)?;
    let (start, mask) = if a.sliding { (plan.local_start, &plan.mask_local) } else { (0, &plan.mask_global) };
    let (k_all, v_all) = cache.view(start)?; // (kv, L, hd)
    let n_keys = k_all.dims()[1];
    // queries grouped by their KV head: (kv, n_rep*seq, hd)
    let q = (q.squeeze(0)?.transpose(0, 1)?.contiguous()? * scale)?.reshape((kv, n_rep * seq, hd))?;
    let mut att = q.matmul(&k_all.t()?)?; // (kv, n_rep*seq, L)
    if let Some(cap) = cfg.attn_logit_softcapping {
        att = ((att / cap)?.tanh()? * cap)?;
    }
    if let Some(m) = mask {
        att = att.reshape((kv, n_rep, seq, n_keys))?.broadcast_add(m)?.reshape((kv, n_rep * seq, n_keys))?;
    }
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    let o = att.matmul(&v_all.contiguous_if_strided()?)?; // (kv, n_rep*seq, hd)
    Ok(o.reshape((nh, seq, hd))?.transpose(0, 1)?.reshape((seq, nh * hd))?)
}

/// One layer's attention for one token on the decode path (plain vectors): q/k norms and rope per head,
/// the key and value appended to `cache`, [`decode_attention`] over the cached keys. Returns `heads * hd`
/// values. Shared by [`Gemma3Model::decode_row`] and the batched forward.
#[allow(clippy::too_many_arguments)]
fn attend_row(cfg: &Gemma3Config, a: &Attention, nv: &LayerNormVecs, cache: &mut LayerCache, mut q: Vec<f32>, mut k: Vec<f32>, v: Vec<f32>, plan: &RowPlan, dev: &Device) -> Result<Vec<f32>> {
    let (nh, kv, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
    let eps = cfg.rms_norm_eps as f32;
    let scale = cfg.query_pre_attn_scalar.powf(-0.5) as f32;
    let (cos, sin) = if a.sliding { &plan.rope_local } else { &plan.rope_global };
    for head in q.chunks_exact_mut(hd) {
        let n = rms_norm_row(head, &nv.q, eps);
        head.copy_from_slice(&n);
        rope_row(head, cos, sin);
    }
    for head in k.chunks_exact_mut(hd) {
        let n = rms_norm_row(head, &nv.k, eps);
        head.copy_from_slice(&n);
        rope_row(head, cos, sin);
    }
    cache.append(&Tensor::from_vec(k, (kv, 1, hd), dev)?, &Tensor::from_vec(v, (kv, 1, hd), dev)?)?;
    let (k_all, v_all) = cache.view(if a.sliding { plan.local_start } else { 0 })?;
    decode_attention(&q, &k_all, &v_all, scale, cfg.attn_logit_softcapping, nh / kv)
}

/// Final logit soft-capping on the decode path: `tanh(l / cap) * cap` per value.
fn softcap_row(logits: &mut [f32], cap: Option<f64>) {
    if let Some(cap) = cap {
        let cap = cap as f32;
        logits.iter_mut().for_each(|l| *l = (*l / cap).tanh() * cap);
    }
}

/// Final logit soft-capping on the tensor path (candle's ops: a multiply by `1 / cap`, tanh, a multiply).
fn softcap_tensor(logits: Tensor, cap: Option<f64>) -> Result<Tensor> {
    Ok(match cap {
        Some(cap) => ((logits / cap)?.tanh()? * cap)?,
        None => logits,
    })
}

struct Layer {
    input_norm: Tensor,
    attn: Attention,
    post_attn_norm: Tensor,
    pre_ff_norm: Tensor,
    mlp: Mlp,
    post_ff_norm: Tensor,
    /// The same norm weights as plain vectors, for the CPU decode step.
    vec: LayerNormVecs,
}

impl Layer {
    /// The rest of the layer after attention, on a sequence of rows: the output projection of the heads'
    /// output `o`, its norm and residual add onto `x`, then the feed-forward block with its two norms and
    /// residual (Gemma-3's sandwich norms). Shared by the one-sequence and the batched forward.
    fn finish_seq(&self, x: Tensor, o: &Tensor, eps: f32) -> Result<Tensor> {
        let o = self.attn.o_proj.forward(o)?;
        let o = candle_nn::ops::rms_norm(&o, &self.post_attn_norm, eps)?;
        let x = (x + o)?;
        let h = candle_nn::ops::rms_norm(&x, &self.pre_ff_norm, eps)?;
        let f = self.mlp.forward(&h)?;
        let f = candle_nn::ops::rms_norm(&f, &self.post_ff_norm, eps)?;
        Ok((x + f)?)
    }
}

/// A layer's RMSNorm weights (`1 + w`) as vectors: input, post-attention, pre-FF, post-FF, q, k.
struct LayerNormVecs {
    input: Vec<f32>,
    post_attn: Vec<f32>,
    pre_ff: Vec<f32>,
    post_ff: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
}

/// candle-nn's `rms_norm` on one row: `x / sqrt(mean(x^2) + eps) * w`, the sum in f32 in order.
fn rms_norm_row(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let sum2 = x.iter().map(|v| v * v).sum::<f32>();
    let m = (sum2 / x.len() as f32 + eps).sqrt();
    x.iter().zip(w).map(|(v, w)| *v / m * *w).collect()
}

/// candle-nn's `rope_thd` on one head of one position: pairs `(i, i + hd/2)` rotated by `(cos_i, sin_i)`.
fn rope_row(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = a * sin[i] + b * cos[i];
    }
}

/// One layer's keys and values, `(kv_heads, capacity, head_dim)`, the first `len` positions valid.
#[derive(Clone, Default)]
struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
}

impl LayerCache {
    fn capacity(&self) -> usize {
        self.k.as_ref().map(|k| k.dims()[1]).unwrap_or(0)
    }

    /// Makes room for `need` positions, keeping the first `len` ones.
    fn reserve(&mut self, need: usize, kv: usize, hd: usize, dev: &Device) -> Result<()> {
        if need <= self.capacity() {
            return Ok(());
        }
        let cap = need.max(2 * self.capacity()).max(256).next_power_of_two();
        let nk = Tensor::zeros((kv, cap, hd), DType::F32, dev)?;
        let nv = Tensor::zeros((kv, cap, hd), DType::F32, dev)?;
        if self.len > 0 {
            let (k, v) = (self.k.as_ref().unwrap(), self.v.as_ref().unwrap());
            nk.slice_set(&k.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
            nv.slice_set(&v.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
        }
        self.k = Some(nk);
        self.v = Some(nv);
        Ok(())
    }

    /// Appends `(kv, s, hd)` contiguous keys/values.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let (kv, s, hd) = k.dims3()?;
        self.reserve(self.len + s, kv, hd, &k.device().clone())?;
        self.k.as_ref().unwrap().slice_set(k, 1, self.len)?;
        self.v.as_ref().unwrap().slice_set(v, 1, self.len)?;
        self.len += s;
        Ok(())
    }

    /// Keys/values of positions `start..len` (views into the buffers).
    fn view(&self, start: usize) -> Result<(Tensor, Tensor)> {
        let n = self.len - start;
        Ok((
            self.k.as_ref().unwrap().narrow(1, start, n)?,
            self.v.as_ref().unwrap().narrow(1, start, n)?,
        ))
    }
}

/// A saved KV cache of a token prefix (e.g. the shared system prompt): restore it into the model instead of
/// recomputing the prefix. It owns copies of the keys/values, so later use of the model cannot change it.
#[derive(Clone)]
pub struct KvSnapshot {
    /// The tokens the cache was computed from (position 0 first).
    pub tokens: Vec<u32>,
    layers: Vec<(Tensor, Tensor)>,
    /// The logits after the last prefix token (vocab,), so generation can start without another forward.
    pub last_logits: Vec<f32>,
}

/// The Gemma-3 text model with its KV cache.
pub struct Gemma3Model {
    cfg: Gemma3Config,
    embed: Embedding,
    lm_head: Linear,
    layers: Vec<Layer>,
    final_norm: Tensor,
    final_norm_vec: Vec<f32>,
    cache: Vec<LayerCache>,
    tokens: Vec<u32>,
    device: Device,
    inv_freq_local: Vec<f32>,
    inv_freq_global: Vec<f32>,
    /// Decode one token on the CPU with [`Gemma3Model::decode_row`] (default) rather than candle tensor ops.
    fast_decode: bool,
    /// Layers whose residual stream the next multi-token forward averages over its fed positions (see
    /// [`Gemma3Model::capture_next`]), and what the last armed forward captured.
    capture: (Vec<usize>, Vec<Vec<f32>>),
}

fn linear(ws: &mut dyn WeightSource, name: String, want: [usize; 2]) -> Result<Linear> {
    Linear::new(checked_shape(&name, ws.linear(&name)?, want)?)
}

/// A projection's weights must be `want` ([out, in]) for the config; otherwise the config and the weights
/// are of different models (a 1B config.json beside 270M weights, say).
fn checked_shape(name: &str, m: QMatMul, want: [usize; 2]) -> Result<QMatMul> {
    let got: Vec<usize> = match &m {
        QMatMul::QTensor(q) => q.shape().dims().to_vec(),
        QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims().to_vec(),
    };
    if got != want {
        bail!(super::LoadError::ConfigMismatch(format!(
            "tensor {name} is {got:?} but the config needs {want:?} (hidden_size, heads x head_dim, intermediate_size): \
             the config and the weights belong to different models"
        )));
    }
    Ok(m)
}

fn inv_freq(base: f64, head_dim: usize, factor: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (1.0 / base.powf(2.0 * i as f64 / head_dim as f64) / factor) as f32)
        .collect()
}

impl Gemma3Model {
    /// Builds the model from a weight source.
    pub fn load(cfg: Gemma3Config, ws: &mut dyn WeightSource) -> Result<Self> {
        cfg.validate()?;
        let device = ws.device().clone();
        let embed = ws.embedding().context("loading the token embedding")?;
        let rows = embed.rows()?;
        if rows == 0 {
            bail!("the token embedding is empty");
        }
        if rows < cfg.vocab_size || embed.cols()? != cfg.hidden_size {
            bail!(super::LoadError::ConfigMismatch(format!(
                "the token embedding is {rows} x {} but the config needs {} tokens x hidden_size {}: the config or the \
                 tokenizer belongs to another model",
                embed.cols()?,
                cfg.vocab_size,
                cfg.hidden_size
            )));
        }
        let (embed, lm_head) = embed.with_lm_head()?;
        let (h, q, kv, inter) = (cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim, cfg.intermediate_size);
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("layers.{i}");
            let qkv = vec![
                linear(ws, format!("{p}.self_attn.q_proj"), [q, h])?,
                linear(ws, format!("{p}.self_attn.k_proj"), [kv, h])?,
                linear(ws, format!("{p}.self_attn.v_proj"), [kv, h])?,
            ];
            let o_proj = linear(ws, format!("{p}.self_attn.o_proj"), [h, q])?;
            let gate_up = vec![linear(ws, format!("{p}.mlp.gate_proj"), [inter, h])?, linear(ws, format!("{p}.mlp.up_proj"), [inter, h])?];
            let down = linear(ws, format!("{p}.mlp.down_proj"), [h, inter])?;
            let attn = Attention {
                qkv: Projections::new(qkv)?,
                o_proj,
                q_norm: ws.norm(&format!("{p}.self_attn.q_norm"))?,
                k_norm: ws.norm(&format!("{p}.self_attn.k_norm"))?,
                sliding: cfg.is_sliding(i),
            };
            let mlp = Mlp { gate_up: Projections::new(gate_up)?, down };
            let input_norm = ws.norm(&format!("{p}.input_layernorm"))?;
            let post_attn_norm = ws.norm(&format!("{p}.post_attention_layernorm"))?;
            let pre_ff_norm = ws.norm(&format!("{p}.pre_feedforward_layernorm"))?;
            let post_ff_norm = ws.norm(&format!("{p}.post_feedforward_layernorm"))?;
            let v = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?) };
            let vec = LayerNormVecs {
                input: v(&input_norm)?,
                post_attn: v(&post_attn_norm)?,
                pre_ff: v(&pre_ff_norm)?,
                post_ff: v(&post_ff_norm)?,
                q: v(&attn.q_norm)?,
                k: v(&attn.k_norm)?,
            };
            layers.push(Layer { input_norm, attn, post_attn_norm, pre_ff_norm, mlp, post_ff_norm, vec });
        }
        let final_norm = ws.norm("norm")?;
        let final_norm_vec = final_norm.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
        let inv_freq_local = inv_freq(cfg.rope_local_base_freq, cfg.head_dim, 1.0);
        let inv_freq_global = inv_freq(cfg.rope_theta, cfg.head_dim, cfg.global_rope_factor());
        let n = cfg.num_hidden_layers;
        Ok(Self {
            cfg,
            embed,
            lm_head,
            layers,
            final_norm,
            final_norm_vec,
            fast_decode: true,
            capture: (Vec::new(), Vec::new()),
            cache: vec![LayerCache::default(); n],
            tokens: Vec::new(),
            device,
            inv_freq_local,
            inv_freq_global,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Gemma3Config {
        &self.cfg
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokens currently in the KV cache (the context the next token is predicted from).
    pub fn context(&self) -> &[u32] {
        &self.tokens
    }

    /// Empties the KV cache: the next `forward` starts at position 0. Buffers are kept for reuse.
    pub fn reset(&mut self) {
        for c in &mut self.cache {
            c.len = 0;
        }
        self.tokens.clear();
    }

    /// Drops cached positions beyond `len` (keeps the first `len` tokens of the context).
    pub fn truncate(&mut self, len: usize) {
        let len = len.min(self.tokens.len());
        for c in &mut self.cache {
            c.len = len;
        }
        self.tokens.truncate(len);
    }

    /// Saves the current KV cache (all cached positions), with the logits that followed the last token.
    pub fn snapshot(&self, last_logits: Vec<f32>) -> Result<KvSnapshot> {
        let len = self.tokens.len();
        let mut layers = Vec::with_capacity(self.cache.len());
        for c in &self.cache {
            if len == 0 {
                layers.push((Tensor::zeros(0, DType::F32, &self.device)?, Tensor::zeros(0, DType::F32, &self.device)?));
                continue;
            }
            let (k, v) = c.view(0)?;
            layers.push((k.contiguous()?.copy()?, v.contiguous()?.copy()?));
        }
        Ok(KvSnapshot { tokens: self.tokens.clone(), layers, last_logits })
    }

    /// Replaces the KV cache by a snapshot (copies it into the model's buffers).
    pub fn restore(&mut self, snap: &KvSnapshot) -> Result<()> {
        self.reset();
        copy_snapshot(&mut self.cache, snap, &self.cfg, &self.device)?;
        self.tokens = snap.tokens.clone();
        Ok(())
    }

    /// Uses the CPU decode step for single tokens (`true`, the default) or candle's tensor ops for every
    /// call (`false`): both give the same logits up to float rounding; the switch exists for that check.
    pub fn set_fast_decode(&mut self, on: bool) {
        self.fast_decode = on;
    }

    /// Hidden-state capture for probes: the next forward of two or more tokens stores, per listed layer
    /// (0-based; `num_hidden_layers - 1` is the last, before the final norm), the mean over the fed positions
    /// of the residual stream after that layer, and capture stops until called again. It is read from the
    /// forward the labeler runs anyway (a review's prefill), so a probe costs no extra model call.
    pub fn capture_next(&mut self, layers: &[usize]) {
        self.capture = (layers.to_vec(), Vec::new());
    }

    /// The vectors the armed forward captured (one per layer given to [`Gemma3Model::capture_next`], in that
    /// order), taken out of the model; empty when nothing was captured since.
    pub fn take_captured(&mut self) -> Vec<Vec<f32>> {
        std::mem::take(&mut self.capture.1)
    }

    /// One token through the model on the CPU with plain vectors between the products: the same steps as
    /// [`Gemma3Model::forward`] (norms, rope, attention on the KV cache, GELU MLP), without the ~30 small
    /// tensor ops per layer whose set-up and pool dispatch were a third of decode time on the 270M.
    /// Returns the logits of the next token.
    fn decode_row(&mut self, token: u32) -> Result<Vec<f32>> {
        let cfg = &self.cfg;
        let dev = self.device.clone();
        let pos = self.tokens.len();
        let eps = cfg.rms_norm_eps as f32;
        let ids = Tensor::new(&[token], &dev)?;
        let mut x: Vec<f32> = (self.embed.lookup(&ids)? * (cfg.hidden_size as f64).sqrt())?.flatten_all()?.to_vec1()?;
        let plan = self.row_plan(pos);
        for (layer, cache) in self.layers.iter().zip(self.cache.iter_mut()) {
            let (a, nv) = (&layer.attn, &layer.vec);
            let h = rms_norm_row(&x, &nv.input, eps);
            let mut qkv = a.qkv.forward_row(&h, &dev)?.into_iter();
            let (q, k, v) = (qkv.next().context("q")?, qkv.next().context("k")?, qkv.next().context("v")?);
            let o = attend_row(cfg, a, nv, cache, q, k, v, &plan, &dev)?;
            let o = a.o_proj.forward_row(&o, &dev)?;
            for (x, o) in x.iter_mut().zip(rms_norm_row(&o, &nv.post_attn, eps)) {
                *x += o;
            }
            let h = rms_norm_row(&x, &nv.pre_ff, eps);
            let mut gu = layer.mlp.gate_up.forward_row(&h, &dev)?;
            let up = gu.pop().context("up")?;
            let mut act = gu.pop().context("gate")?;
            super::ops::gelu_mul_slice(&mut act, &up);
            let f = layer.mlp.down.forward_row(&act, &dev)?;
            for (x, f) in x.iter_mut().zip(rms_norm_row(&f, &nv.post_ff, eps)) {
                *x += f;
            }
        }
        self.tokens.push(token);
        let h = rms_norm_row(&x, &self.final_norm_vec, eps);
        let mut logits = self.lm_head.forward_row(&h, &dev)?;
        softcap_row(&mut logits, cfg.final_logit_softcapping);
        Ok(logits)
    }

    /// What the decode step of one token at `pos` needs besides the weights: its rope values and where the
    /// sliding layers' window starts.
    fn row_plan(&self, pos: usize) -> RowPlan {
        RowPlan {
            rope_local: self.rope_values(false, pos, 1),
            rope_global: self.rope_values(true, pos, 1),
            local_start: (pos + 1).saturating_sub(self.cfg.sliding_window),
        }
    }

    /// What the tensor path needs for `seq` tokens at `pos..pos+seq`: rope tables, masks, window start.
    fn seq_plan(&self, pos: usize, seq: usize) -> Result<SeqPlan> {
        let window = self.cfg.sliding_window;
        // keys a sliding layer needs: from the first query's window start
        let local_start = (pos + 1).saturating_sub(window);
        Ok(SeqPlan {
            seq,
            rope_local: self.rope_tables(false, pos, seq)?,
            rope_global: self.rope_tables(true, pos, seq)?,
            local_start,
            mask_local: self.mask(pos, seq, local_start, pos + seq - local_start, Some(window))?,
            mask_global: self.mask(pos, seq, 0, pos + seq, None)?,
        })
    }

    /// cos and sin of the rotation angles of positions `pos..pos+seq`, `(seq * hd/2)` each, row-major.
    fn rope_values(&self, global: bool, pos: usize, seq: usize) -> (Vec<f32>, Vec<f32>) {
        let inv = if global { &self.inv_freq_global } else { &self.inv_freq_local };
        let half = inv.len();
        let mut cos = Vec::with_capacity(seq * half);
        let mut sin = Vec::with_capacity(seq * half);
        for p in pos..pos + seq {
            for &f in inv {
                // angle in f64 for accuracy at large positions, as llama.cpp computes theta in float per step
                let a = p as f64 * f as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        (cos, sin)
    }

    fn rope_tables(&self, global: bool, pos: usize, seq: usize) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq_local.len();
        let (cos, sin) = self.rope_values(global, pos, seq);
        Ok((
            Tensor::from_vec(cos, (seq, half), &self.device)?,
            Tensor::from_vec(sin, (seq, half), &self.device)?,
        ))
    }

    /// Additive mask (seq, n_keys) for queries at `pos..pos+seq` over keys at `start..start+n_keys`, or None
    /// when every key is visible to every query.
    fn mask(&self, pos: usize, seq: usize, start: usize, n_keys: usize, window: Option<usize>) -> Result<Option<Tensor>> {
        let visible = |p: usize, j: usize| j <= p && window.map_or(true, |w| p - j < w);
        let mut all = true;
        let mut m = vec![0f32; seq * n_keys];
        for r in 0..seq {
            let p = pos + r;
            for c in 0..n_keys {
                if !visible(p, start + c) {
                    m[r * n_keys + c] = f32::NEG_INFINITY;
                    all = false;
                }
            }
        }
        if all {
            return Ok(None);
        }
        Ok(Some(Tensor::from_vec(m, (seq, n_keys), &self.device)?))
    }

    /// Feeds `tokens` after the cached context and returns the logits: of the last position `(vocab,)` when
    /// `all_positions` is false, else of every fed position `(seq, vocab)`.
    pub fn forward(&mut self, tokens: &[u32], all_positions: bool) -> Result<Tensor> {
        if tokens.is_empty() {
            bail!("forward: no tokens to feed");
        }
        let vocab = self.embed.rows()?;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            bail!("token id {bad} is outside the vocabulary (size {vocab})");
        }
        if tokens.len() == 1 && self.fast_decode && self.device.is_cpu() {
            let logits = self.decode_row(tokens[0])?;
            let n = logits.len();
            let t = Tensor::from_vec(logits, n, &self.device)?;
            return Ok(if all_positions { t.reshape((1, n))? } else { t });
        }
        let cfg = &self.cfg;
        let seq = tokens.len();
        let pos = self.tokens.len();
        let eps = cfg.rms_norm_eps as f32;

        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = (self.embed.lookup(&ids)? * (cfg.hidden_size as f64).sqrt())?; // (seq, hidden)

        let plan = self.seq_plan(pos, seq)?;
        let mut captured = vec![Vec::new(); self.capture.0.len()];
        for (li, (layer, cache)) in self.layers.iter().zip(self.cache.iter_mut()).enumerate() {
            let a = &layer.attn;
            let h = candle_nn::ops::rms_norm(&x, &layer.input_norm, eps)?;
            let qkv = a.qkv.forward(&h)?;
            let o = attend_seq(cfg, a, cache, &qkv[0], &qkv[1], &qkv[2], &plan)?;
            x = layer.finish_seq(x, &o, eps)?;
            for (slot, _) in self.capture.0.iter().enumerate().filter(|(_, &l)| l == li) {
                captured[slot] = x.mean(0)?.to_dtype(DType::F32)?.to_vec1()?;
            }
        }
        if !self.capture.0.is_empty() {
            self.capture = (Vec::new(), captured);
        }
        self.tokens.extend_from_slice(tokens);
        let x = if all_positions { x } else { x.narrow(0, seq - 1, 1)? };
        let x = candle_nn::ops::rms_norm(&x, &self.final_norm, eps)?;
        let logits = softcap_tensor(self.lm_head.forward(&x)?, cfg.final_logit_softcapping)?;
        if all_positions {
            Ok(logits)
        } else {
            Ok(logits.squeeze(0)?)
        }
    }
}

/// Copies a snapshot's keys and values into empty layer caches (the model's own, or a batch slot's).
fn copy_snapshot(caches: &mut [LayerCache], snap: &KvSnapshot, cfg: &Gemma3Config, device: &Device) -> Result<()> {
    let len = snap.tokens.len();
    if len == 0 {
        return Ok(());
    }
    let (kv, hd) = (cfg.num_key_value_heads, cfg.head_dim);
    for (c, (k, v)) in caches.iter_mut().zip(&snap.layers) {
        c.reserve(len, kv, hd, device)?;
        c.k.as_ref().context("reserved")?.slice_set(k, 1, 0)?;
        c.v.as_ref().context("reserved")?.slice_set(v, 1, 0)?;
        c.len = len;
    }
    Ok(())
}

trait ContiguousIfStrided {
    fn contiguous_if_strided(&self) -> candle_core::Result<Tensor>;
}

impl ContiguousIfStrided for Tensor {
    /// candle's CPU matmul accepts a narrowed cache view whose rows are contiguous; other layouts are copied.
    fn contiguous_if_strided(&self) -> candle_core::Result<Tensor> {
        let st = self.stride();
        let d = self.dims();
        if st[d.len() - 1] == 1 {
            Ok(self.clone())
        } else {
            self.contiguous()
        }
    }
}
