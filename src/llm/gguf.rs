//! GGUF checkpoints (llama.cpp's format): config from `gemma3.*` metadata, the SentencePiece vocabulary from
//! `tokenizer.ggml.*`, quantized weights kept quantized for candle's quantized matmul.

use super::config::Gemma3Config;
use super::gemma3::{Embedding, WeightSource};
use super::tokenizer::Tokenizer;
use super::check::LoadError;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// llama.cpp's tensor name for a logical (HF-style, without `model.` and `.weight`) tensor name.
pub fn gguf_tensor_name(hf: &str) -> Result<String> {
    if hf == "embed_tokens" {
        return Ok("token_embd.weight".into());
    }
    if hf == "norm" {
        return Ok("output_norm.weight".into());
    }
    let rest = hf.strip_prefix("layers.").ok_or_else(|| anyhow!("unknown tensor {hf}"))?;
    let (i, part) = rest.split_once('.').ok_or_else(|| anyhow!("unknown tensor {hf}"))?;
    let g = match part {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "post_attention_layernorm" => "post_attention_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => bail!("unknown tensor {hf}"),
    };
    Ok(format!("blk.{i}.{g}.weight"))
}

/// An opened GGUF file: metadata read, tensors read on demand.
pub struct GgufFile {
    path: PathBuf,
    content: gguf_file::Content,
    reader: BufReader<File>,
    device: Device,
}

const SUPPORTED: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K";

impl GgufFile {
    /// Opens and parses the header of a GGUF file. Errors name the file; an unknown tensor type is reported as
    /// an unsupported quantization with the list of supported ones.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let f = File::open(path).with_context(|| format!("cannot open model file {}", path.display()))?;
        let mut reader = BufReader::new(f);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| {
            let msg = super::check::candle_line(&e);
            let eof = ["failed to fill whole buffer", "unexpected end of file", "remaining"];
            let msg = if eof.iter().any(|m| msg.contains(m)) {
                format!("truncated: the file ends inside its header ({msg})")
            } else {
                msg
            };
            if msg.contains("unknown dtype") {
                anyhow!(LoadError::Unsupported(format!(
                    "unsupported quantization in {}: {msg} (candle's quantized matmul supports {SUPPORTED}; \
                     re-quantize e.g. to Q4_K_M or Q8_0)",
                    path.display()
                )))
            } else {
                anyhow!(LoadError::BadFile(format!("{} is not a readable GGUF file: {msg}", path.display())))
            }
        })?;
        super::check::check_gguf_extent(path, &content)?;
        Ok(Self { path: path.to_path_buf(), content, reader, device: device.clone() })
    }

    /// The raw metadata.
    pub fn metadata(&self) -> &HashMap<String, gguf_file::Value> {
        &self.content.metadata
    }

    /// The Gemma-3 config (errors when the architecture is not gemma3).
    pub fn config(&self) -> Result<Gemma3Config> {
        Gemma3Config::from_gguf(&self.content.metadata).with_context(|| format!("reading {}", self.path.display()))
    }

    /// The SentencePiece tokenizer stored in the metadata.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        Tokenizer::from_gguf(&self.content.metadata).with_context(|| format!("reading the tokenizer of {}", self.path.display()))
    }

    /// The quantization types of the tensors, with counts (for reports).
    pub fn tensor_types(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<String, usize> = HashMap::new();
        for ti in self.content.tensor_infos.values() {
            *m.entry(format!("{:?}", ti.ggml_dtype)).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort();
        v
    }

    fn qtensor(&mut self, name: &str) -> Result<QTensor> {
        self.content
            .tensor(&mut self.reader, name, &self.device)
            .map_err(|e| anyhow!("reading tensor {name} from {}: {}", self.path.display(), super::check::candle_line(&e)))
    }
}

/// Whether candle-core 0.11's CPU matmul has a SIMD kernel for this type. Q4_1, Q5_0, Q5_1 and Q8_1 only have
/// scalar dot products there (about 10x slower than Q8_0 on AVX2/AVX-512); llama.cpp's Q4_K_M files use Q5_0 for
/// several projections (Gemma-3 270M: q, k, gate, up).
fn has_fast_cpu_kernel(t: GgmlDType) -> bool {
    !matches!(t, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1)
}

impl WeightSource for GgufFile {
    /// Quantized projections stay quantized. On CPU, types without a SIMD kernel in candle move to Q8_0:
    /// Q5_0 losslessly (see [`super::repack`]: the same values, so the same products as llama.cpp), Q4_1, Q5_1
    /// and Q8_1 by re-quantizing their exact dequantization (the added error is below 1/254 of each 32-value
    /// block's largest weight, under the original step, but it is a change of the weights).
    fn linear(&mut self, name: &str) -> Result<QMatMul> {
        let g = gguf_tensor_name(name)?;
        let mut q = self.qtensor(&g)?;
        if self.device.is_cpu() && !has_fast_cpu_kernel(q.dtype()) {
            q = if q.dtype() == GgmlDType::Q5_0 {
                let bytes = super::repack::q5_0_to_q8_0(&q.data()?).with_context(|| format!("re-encoding {g}"))?;
                let storage = QStorage::from_data(Cow::Owned(bytes), &self.device, GgmlDType::Q8_0)?;
                QTensor::new(storage, q.shape().clone())?
            } else {
                let f = q.dequantize(&self.device)?;
                QTensor::quantize(&f, GgmlDType::Q8_0).with_context(|| format!("re-quantizing {g} to Q8_0"))?
            };
        }
        Ok(QMatMul::from_arc(Arc::new(q))?)
    }

    fn norm(&mut self, name: &str) -> Result<Tensor> {
        // llama.cpp's Gemma converters store 1 + w already
        let g = gguf_tensor_name(name)?;
        let q = self.qtensor(&g)?;
        Ok(q.dequantize(&self.device)?.to_dtype(DType::F32)?)
    }

    fn embedding(&mut self) -> Result<Embedding> {
        let q = self.qtensor("token_embd.weight")?;
        Ok(match q.dtype() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                Embedding::Dense(q.dequantize(&self.device)?.to_dtype(DType::F32)?)
            }
            _ => Embedding::Quantized(Arc::new(q)),
        })
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_cpp() {
        let t = [
            ("embed_tokens", "token_embd.weight"),
            ("norm", "output_norm.weight"),
            ("layers.3.input_layernorm", "blk.3.attn_norm.weight"),
            ("layers.3.self_attn.o_proj", "blk.3.attn_output.weight"),
            ("layers.0.pre_feedforward_layernorm", "blk.0.ffn_norm.weight"),
            ("layers.0.post_feedforward_layernorm", "blk.0.post_ffw_norm.weight"),
            ("layers.11.post_attention_layernorm", "blk.11.post_attention_norm.weight"),
            ("layers.1.mlp.down_proj", "blk.1.ffn_down.weight"),
        ];
        for (h, g) in t {
            assert_eq!(gguf_tensor_name(h).unwrap(), g);
        }
        assert!(gguf_tensor_name("layers.1.mlp.foo").is_err());
    }
}
