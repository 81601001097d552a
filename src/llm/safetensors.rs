//! HF safetensors checkpoints (f32 / bf16 / f16): the text-only layout of Gemma-3 1B/270M
//! (`model.layers.*`) and `Gemma3ForConditionalGeneration` (12B/27B: `language_model.model.*`, or
//! `model.language_model.*` in newer exports). Weights are converted to f32 for the CPU forward pass, or, with
//! [`SafetensorsWeights::quantize_to`] (`REVMOD_SAFETENSORS_WEIGHTS=q8_0`), each projection and the embedding
//! is quantized to Q8_0 as it is read (one f32 tensor at a time), about a quarter of the f32 memory: the same
//! Q8_0 bytes as llama.cpp-style quantization of those f32 values (candle's quantizer).

use super::gemma3::{Embedding, WeightSource};
use super::check::LoadError;
use anyhow::{bail, Context, Result};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The safetensors files of a checkpoint directory: `model.safetensors.index.json`'s shards, else every
/// `*.safetensors` file.
pub fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.is_file() {
        let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index)?)
            .with_context(|| format!("{} is not valid JSON", index.display()))?;
        let map = j.get("weight_map").and_then(|m| m.as_object()).with_context(|| format!("{} has no weight_map", index.display()))?;
        let mut v: Vec<PathBuf> = map.values().filter_map(|f| f.as_str()).map(|f| dir.join(f)).collect();
        v.sort();
        v.dedup();
        v
    } else {
        super::files_with_extension(dir, "safetensors")?
    };
    if files.is_empty() {
        bail!("no .safetensors files in {}", dir.display());
    }
    for f in &files {
        if !f.is_file() {
            bail!("checkpoint file {} is missing", f.display());
        }
    }
    files.dedup();
    Ok(files)
}

/// Memory-mapped safetensors weights with the tensor-name prefix of the checkpoint's layout.
pub struct SafetensorsWeights {
    st: MmapedSafetensors,
    prefix: String,
    device: Device,
    quant: Option<GgmlDType>,
}

impl SafetensorsWeights {
    /// Maps the files and detects the layout from where `embed_tokens.weight` is.
    pub fn open(files: &[PathBuf], device: &Device) -> Result<Self> {
        for f in files {
            super::check::check_safetensors(f)?;
        }
        // SAFETY: the files are memory-mapped read-only model checkpoints; revmod never writes them, and a
        // checkpoint changed by another process while loaded is outside what we support (documented).
        let st = unsafe { MmapedSafetensors::multi(files) }
            .with_context(|| format!("reading safetensors {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")))?;
        let prefixes = ["model.", "language_model.model.", "model.language_model.", ""];
        let prefix = prefixes
            .iter()
            .find(|p| st.get(&format!("{p}embed_tokens.weight")).is_ok())
            .ok_or_else(|| {
                LoadError::WrongArchitecture(
                    "not a Gemma-3 checkpoint: no embed_tokens.weight under model., language_model.model. or model.language_model.".into(),
                )
            })?
            .to_string();
        Ok(Self { st, prefix, device: device.clone(), quant: None })
    }

    /// Quantize projections and the embedding to `q` while loading (None: keep f32).
    pub fn quantize_to(mut self, q: Option<GgmlDType>) -> Self {
        self.quant = q;
        self
    }

    fn load(&self, name: &str) -> Result<Tensor> {
        let full = format!("{}{name}.weight", self.prefix);
        let t = self
            .st
            .load(&full, &self.device)
            .map_err(|e| anyhow::anyhow!("tensor {full} missing or unreadable: {}", super::check::candle_line(&e)))?;
        match t.dtype() {
            DType::F32 => Ok(t),
            DType::BF16 | DType::F16 => Ok(t.to_dtype(DType::F32)?),
            other => bail!("tensor {full} has dtype {other:?}; supported: f32, bf16, f16"),
        }
    }
}

impl WeightSource for SafetensorsWeights {
    fn linear(&mut self, name: &str) -> Result<QMatMul> {
        let t = self.load(name)?;
        Ok(match self.quant {
            Some(q) => QMatMul::QTensor(Arc::new(QTensor::quantize(&t, q)?)),
            None => QMatMul::Tensor(t),
        })
    }

    fn norm(&mut self, name: &str) -> Result<Tensor> {
        // HF stores w, the model scales by (1 + w)
        Ok((self.load(name)? + 1.0)?)
    }

    fn embedding(&mut self) -> Result<Embedding> {
        let t = self.load("embed_tokens")?;
        Ok(match self.quant {
            Some(q) => Embedding::Quantized(Arc::new(QTensor::quantize(&t, q)?)),
            None => Embedding::Dense(t),
        })
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
