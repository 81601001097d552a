//! Gemma-3 text configuration: the fields of Hugging Face's `Gemma3TextConfig`, with HF's defaults, read
//! from a `config.json` (text-only checkpoints or the `text_config` of `Gemma3ForConditionalGeneration`)
//! or from GGUF metadata (llama.cpp's `gemma3.*` keys).
//!
//! Why our own: the 12B/27B `config.json` files omit fields that HF fills with defaults (`rope_theta`,
//! `query_pre_attn_scalar`, `sliding_window_pattern`, ...); reading them with the defaults spelled out here
//! keeps one model for all sizes.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde::Deserialize;
use super::check::LoadError;

/// Linear RoPE scaling of the global (full-attention) layers (`rope_scaling: {rope_type: "linear", factor}`
/// in HF, `rope.scaling.type/factor` in GGUF). Gemma-3 4B/12B/27B use factor 8.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RopeScaling {
    /// Only "linear" is supported (that is what Gemma-3 uses).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Positions are divided by this factor on the global layers.
    pub factor: f64,
}

/// The Gemma-3 text model hyper-parameters, named as in HF's `Gemma3TextConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Gemma3Config {
    /// Vocabulary size (rows of the embedding).
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    /// Model width.
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    /// MLP inner width.
    #[serde(default = "d_inter")]
    pub intermediate_size: usize,
    /// Number of decoder layers.
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    /// Query heads.
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    #[serde(default = "d_kv_heads")]
    pub num_key_value_heads: usize,
    /// Width of one head.
    #[serde(default = "d_head_dim")]
    pub head_dim: usize,
    /// Activation of the MLP gate; Gemma-3 uses `gelu_pytorch_tanh`.
    #[serde(default = "d_act")]
    pub hidden_activation: String,
    /// Trained context length.
    #[serde(default = "d_maxpos")]
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    #[serde(default = "d_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base of the global layers.
    #[serde(default = "d_theta")]
    pub rope_theta: f64,
    /// RoPE base of the sliding-window (local) layers.
    #[serde(default = "d_local_theta")]
    pub rope_local_base_freq: f64,
    /// Attention scale is `query_pre_attn_scalar ^ -0.5`.
    #[serde(default = "d_qpas")]
    pub query_pre_attn_scalar: f64,
    /// Window of the local layers: a query at position p sees keys p-W+1..=p.
    #[serde(default = "d_window")]
    pub sliding_window: usize,
    /// Every `sliding_window_pattern`-th layer is global (when `layer_types` is absent).
    #[serde(default = "d_pattern")]
    pub sliding_window_pattern: usize,
    /// Explicit per-layer kinds ("sliding_attention" / "full_attention"), newer HF configs.
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// tanh soft-capping of the final logits, when set.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// tanh soft-capping of the attention scores, when set.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// Linear RoPE scaling of the global layers, when set.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// Bias in the attention projections (false for every released Gemma-3).
    #[serde(default)]
    pub attention_bias: bool,
    /// The LM head is the embedding matrix (true for Gemma-3).
    #[serde(default = "d_true")]
    pub tie_word_embeddings: bool,
}

fn d_vocab() -> usize { 262_208 }
fn d_hidden() -> usize { 2304 }
fn d_inter() -> usize { 9216 }
fn d_layers() -> usize { 26 }
fn d_heads() -> usize { 8 }
fn d_kv_heads() -> usize { 4 }
fn d_head_dim() -> usize { 256 }
fn d_act() -> String { "gelu_pytorch_tanh".into() }
fn d_maxpos() -> usize { 131_072 }
fn d_eps() -> f64 { 1e-6 }
fn d_theta() -> f64 { 1_000_000.0 }
fn d_local_theta() -> f64 { 10_000.0 }
fn d_qpas() -> f64 { 256.0 }
fn d_window() -> usize { 4096 }
fn d_pattern() -> usize { 6 }
fn d_true() -> bool { true }

/// Brings the two ways HF writes a Gemma-3 text config to the fields of [`Gemma3Config`]:
/// - the hub's (4.x) form: `rope_theta`, `rope_local_base_freq`, `rope_scaling` (global layers only);
/// - transformers 5's form: `rope_parameters: {full_attention: {rope_type, rope_theta, factor},
///   sliding_attention: {rope_type, rope_theta}}` (or one flat dict for every layer), without the three above.
///
/// Values in `rope_parameters` win, as in transformers. A RoPE scaling on the sliding layers, and
/// `use_bidirectional_attention` (EmbeddingGemma), are refused rather than silently ignored. A
/// `sliding_window` of null means no window.
fn normalize_hf_text_config(mut v: serde_json::Value) -> Result<serde_json::Value> {
    let Some(obj) = v.as_object_mut() else { bail!("the Gemma-3 text config is not a JSON object") };
    if obj.get("use_bidirectional_attention").and_then(|b| b.as_bool()) == Some(true) {
        bail!("config: use_bidirectional_attention=true (an embedding model) is not supported");
    }
    if obj.get("sliding_window").is_some_and(|w| w.is_null()) {
        obj.insert("sliding_window".into(), serde_json::json!(usize::MAX));
    }
    if let Some(rp) = obj.get("rope_parameters").cloned().filter(|r| !r.is_null()) {
        let (full, sliding) = match (rp.get("full_attention"), rp.get("sliding_attention")) {
            (None, None) => (Some(rp.clone()), None),
            (f, s) => (f.cloned(), s.cloned()),
        };
        if let Some(f) = full {
            if let Some(t) = f.get("rope_theta") {
                obj.insert("rope_theta".into(), t.clone());
            }
            let ty = f.get("rope_type").or_else(|| f.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
            if ty == "default" {
                obj.remove("rope_scaling");
            } else {
                let factor = f.get("factor").cloned().context("config: rope_parameters.full_attention has no factor")?;
                obj.insert("rope_scaling".into(), serde_json::json!({"rope_type": ty, "factor": factor}));
            }
        }
        if let Some(s) = sliding {
            if let Some(t) = s.get("rope_theta") {
                obj.insert("rope_local_base_freq".into(), t.clone());
            }
            let ty = s.get("rope_type").or_else(|| s.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
            if ty != "default" {
                bail!("config: rope_parameters.sliding_attention has rope_type {ty:?}; only the global layers may scale RoPE");
            }
        }
    }
    Ok(v)
}

impl Default for Gemma3Config {
    /// HF's `Gemma3TextConfig()` defaults.
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults parse")
    }
}

impl Gemma3Config {
    /// Parses an HF `config.json`: a text config (`model_type` "gemma3_text") or a
    /// `Gemma3ForConditionalGeneration` config (`model_type` "gemma3", the text part under `text_config`).
    pub fn from_hf_json(json: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json).context("config.json is not valid JSON")?;
        let model_type = v.get("model_type").and_then(|m| m.as_str()).unwrap_or("");
        let text = match model_type {
            "gemma3" => v.get("text_config").cloned().unwrap_or_else(|| serde_json::json!({})),
            "gemma3_text" => v.clone(),
            other => bail!(LoadError::WrongArchitecture(format!(
                "not a Gemma-3 checkpoint: config.json has model_type {other:?} (expected \"gemma3\" or \"gemma3_text\")"
            ))),
        };
        let text = normalize_hf_text_config(text)?;
        let cfg: Gemma3Config = serde_json::from_value(text).context("reading the Gemma-3 text config")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads the config from GGUF metadata (architecture must be `gemma3`), following llama.cpp's reading of
    /// the same keys: sliding-window pattern 6 unless stated, local RoPE base 10k unless stated, and the
    /// attention scale of the 27B (62 layers) from hidden/heads, as llama.cpp and gemma_pytorch do.
    pub fn from_gguf(md: &std::collections::HashMap<String, gguf_file::Value>) -> Result<Self> {
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
            .unwrap_or("<missing>");
        if arch != "gemma3" {
            bail!(LoadError::WrongArchitecture(format!("not a Gemma-3 model: GGUF general.architecture is {arch:?} (expected \"gemma3\")")));
        }
        let get_u = |k: &str| -> Result<Option<usize>> {
            match md.get(&format!("gemma3.{k}")) {
                None => Ok(None),
                Some(v) => Ok(Some(match v {
                    gguf_file::Value::U32(x) => *x as usize,
                    gguf_file::Value::I32(x) => *x as usize,
                    gguf_file::Value::U64(x) => *x as usize,
                    gguf_file::Value::I64(x) => *x as usize,
                    other => bail!("GGUF key gemma3.{k} has an unexpected type {:?}", other.value_type()),
                })),
            }
        };
        let get_f = |k: &str| -> Option<f64> {
            md.get(&format!("gemma3.{k}")).and_then(|v| match v {
                gguf_file::Value::F32(x) => Some(*x as f64),
                gguf_file::Value::F64(x) => Some(*x),
                _ => None,
            })
        };
        let need = |k: &str| -> Result<usize> {
            get_u(k)?.with_context(|| format!("GGUF metadata lacks gemma3.{k}"))
        };
        let hidden = need("embedding_length")?;
        let layers = need("block_count")?;
        let heads = need("attention.head_count")?;
        let kv = get_u("attention.head_count_kv")?.unwrap_or(heads);
        let head_dim = get_u("attention.key_length")?.unwrap_or(hidden / heads);
        let vocab = md
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.len())
            .unwrap_or_else(d_vocab);
        let rope_scaling = match md.get("gemma3.rope.scaling.type").and_then(|v| v.to_string().ok()) {
            Some(t) if t == "linear" => {
                let f = get_f("rope.scaling.factor").unwrap_or(1.0);
                (f != 1.0).then(|| RopeScaling { rope_type: "linear".into(), factor: f })
            }
            Some(t) if t == "none" => None,
            Some(t) => bail!("unsupported RoPE scaling type {t:?} in GGUF (Gemma-3 uses linear)"),
            None => None,
        };
        let window = get_u("attention.sliding_window")?.unwrap_or(0);
        let cfg = Gemma3Config {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: need("feed_forward_length")?,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            head_dim,
            hidden_activation: d_act(),
            max_position_embeddings: get_u("context_length")?.unwrap_or_else(d_maxpos),
            rms_norm_eps: get_f("attention.layer_norm_rms_epsilon").unwrap_or_else(d_eps),
            rope_theta: get_f("rope.freq_base").unwrap_or_else(d_theta),
            rope_local_base_freq: get_f("rope.freq_base_swa").unwrap_or_else(d_local_theta),
            query_pre_attn_scalar: if layers == 62 { (hidden / heads) as f64 } else { head_dim as f64 },
            // window 0 means: no sliding window (all layers global), as in llama.cpp
            sliding_window: if window == 0 { usize::MAX } else { window },
            sliding_window_pattern: get_u("attention.sliding_window_pattern")?.unwrap_or(6),
            layer_types: None,
            final_logit_softcapping: get_f("final_logit_softcapping").filter(|x| *x != 0.0),
            attn_logit_softcapping: get_f("attn_logit_softcapping").filter(|x| *x != 0.0),
            rope_scaling,
            attention_bias: false,
            tie_word_embeddings: true,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            bail!("config: head counts must be positive");
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            bail!(
                "config: num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.num_key_value_heads
            );
        }
        if self.head_dim % 2 != 0 {
            bail!("config: head_dim {} must be even for RoPE", self.head_dim);
        }
        if !matches!(self.hidden_activation.as_str(), "gelu_pytorch_tanh" | "gelu") {
            bail!("config: unsupported hidden_activation {:?}", self.hidden_activation);
        }
        if let Some(rs) = &self.rope_scaling {
            if rs.rope_type != "linear" && rs.rope_type != "default" {
                bail!("config: unsupported rope_scaling type {:?} (Gemma-3 uses linear)", rs.rope_type);
            }
        }
        if let Some(lt) = &self.layer_types {
            if lt.len() != self.num_hidden_layers {
                bail!("config: layer_types has {} entries for {} layers", lt.len(), self.num_hidden_layers);
            }
        }
        if !self.tie_word_embeddings {
            bail!("config: tie_word_embeddings=false is not supported (every released Gemma-3 ties its LM head to the embedding)");
        }
        if self.attention_bias {
            bail!("config: attention_bias=true is not supported (no released Gemma-3 uses it)");
        }
        Ok(())
    }

    /// Whether layer `i` is a sliding-window (local) layer: `layer_types` when given, else HF's pattern rule
    /// (every `sliding_window_pattern`-th layer, counting from 1, is global).
    pub fn is_sliding(&self, i: usize) -> bool {
        if self.sliding_window == usize::MAX {
            return false;
        }
        match &self.layer_types {
            Some(lt) => lt[i] == "sliding_attention",
            None => self.sliding_window_pattern == 0 || (i + 1) % self.sliding_window_pattern != 0,
        }
    }

    /// The linear RoPE factor of the global layers (1.0 when not scaled).
    pub fn global_rope_factor(&self) -> f64 {
        match &self.rope_scaling {
            Some(rs) if rs.rope_type == "linear" => rs.factor,
            _ => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_defaults_fill_missing_fields() {
        // a 27B-like ConditionalGeneration config that omits most text fields
        let j = r#"{"model_type":"gemma3","text_config":{"hidden_size":5376,"num_hidden_layers":62,
            "num_attention_heads":32,"num_key_value_heads":16,"head_dim":128,"intermediate_size":21504,
            "query_pre_attn_scalar":168,"rope_scaling":{"factor":8.0,"rope_type":"linear"},"sliding_window":1024}}"#;
        let c = Gemma3Config::from_hf_json(j).unwrap();
        assert_eq!(c.rope_theta, 1_000_000.0);
        assert_eq!(c.rope_local_base_freq, 10_000.0);
        assert_eq!(c.vocab_size, 262_208);
        assert_eq!(c.global_rope_factor(), 8.0);
        assert!(c.is_sliding(0) && c.is_sliding(4) && !c.is_sliding(5) && !c.is_sliding(11));
        assert_eq!(c.query_pre_attn_scalar, 168.0);
    }

    #[test]
    fn rejects_other_models() {
        let e = Gemma3Config::from_hf_json(r#"{"model_type":"llama"}"#).unwrap_err();
        assert!(format!("{e:#}").contains("not a Gemma-3"), "{e:#}");
    }

    #[test]
    fn transformers_5_rope_parameters() {
        // what transformers 5 writes: no rope_theta / rope_local_base_freq / rope_scaling
        let j = r#"{"model_type":"gemma3_text","num_hidden_layers":7,"sliding_window":7,
            "rope_parameters":{"full_attention":{"factor":8.0,"rope_theta":500000.0,"rope_type":"linear"},
                               "sliding_attention":{"rope_theta":20000.0,"rope_type":"default"}}}"#;
        let c = Gemma3Config::from_hf_json(j).unwrap();
        assert_eq!((c.rope_theta, c.rope_local_base_freq, c.global_rope_factor()), (500_000.0, 20_000.0, 8.0));
        let j = r#"{"model_type":"gemma3_text","rope_parameters":{"rope_theta":1000.0,"rope_type":"default"}}"#;
        let c = Gemma3Config::from_hf_json(j).unwrap();
        assert_eq!((c.rope_theta, c.global_rope_factor()), (1000.0, 1.0));
        let j = r#"{"model_type":"gemma3_text","rope_parameters":{"full_attention":{"rope_type":"default"},
            "sliding_attention":{"rope_type":"linear","factor":2.0}}}"#;
        let e = Gemma3Config::from_hf_json(j).unwrap_err();
        assert!(format!("{e:#}").contains("sliding_attention"), "{e:#}");
        let e = Gemma3Config::from_hf_json(r#"{"model_type":"gemma3_text","tie_word_embeddings":false}"#).unwrap_err();
        assert!(format!("{e:#}").contains("tie_word_embeddings"), "{e:#}");
    }

    #[test]
    fn layer_types_override_pattern() {
        let j = r#"{"model_type":"gemma3_text","num_hidden_layers":3,
            "layer_types":["full_attention","sliding_attention","full_attention"]}"#;
        let c = Gemma3Config::from_hf_json(j).unwrap();
        assert!(!c.is_sliding(0) && c.is_sliding(1) && !c.is_sliding(2));
    }
}
