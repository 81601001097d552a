//! HF safetensors checkpoints (f32 / bf16 / f16): the text-only layout of Gemma-3 1B/270M
//! (`model.layers.*`) and `Gemma3ForConditionalGeneration` (4B/12B/27B `-it`: `language_model.model.*`, or
//! `model.language_model.*` in newer exports; the vision tower and projector in the same files are skipped).
//!
//! How weights are held is a [`WeightsDtype`]: `f32` (exact, for parity checks), or `q8_0`, the default on
//! CPU: each projection and the embedding is quantized to Q8_0 (8.5 bits per weight, about a quarter of f32)
//! as it is read, with candle's quantizer (`BlockQ8_0::from_float`, the same bytes as llama.cpp's Q8_0 of those
//! f32 values).
//!
//! Why a reader of our own instead of a memory map: the pages of a mapped file that have been read count in
//! the process's resident memory until the mapping goes, so a mapped 24 GB bf16 12B checkpoint would add up to
//! 24 GB to the peak while loading. Here each tensor is read with positioned reads (`read_exact_at`), a few
//! MB of rows at a time, converted to f32 and quantized chunk by chunk into the final buffer; the file's pages
//! stay in the kernel's page cache (reclaimable, not ours). Peak memory while loading is the final weights
//! plus one tensor's transient copy (`scripts/bench-st-memory` measures it; figures in the README).

use super::gemma3::{Embedding, WeightSource};
use super::check::LoadError;
use anyhow::{bail, Context, Result};
use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the weights of a safetensors checkpoint are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsDtype {
    /// Every weight in f32: exact (the parity tests use it), 4 bytes per weight (48 GB for 12B).
    F32,
    /// Projections and the embedding quantized to Q8_0 while loading (34 bytes per 32 weights, ~12.8 GB for
    /// 12B), norms in f32. The default on CPU.
    Q8_0,
}

/// The environment variable that picks [`WeightsDtype`] when the caller does not (`f32` or `q8_0`).
pub const WEIGHTS_ENV: &str = "REVMOD_SAFETENSORS_WEIGHTS";

impl WeightsDtype {
    /// Parses `f32` or `q8_0` (case-insensitive; `q8` also accepted).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(WeightsDtype::F32),
            "q8_0" | "q8" => Ok(WeightsDtype::Q8_0),
            other => bail!("weights {other:?}: expected f32 or q8_0"),
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            WeightsDtype::F32 => "f32",
            WeightsDtype::Q8_0 => "q8_0",
        }
    }

    /// The default on a device: Q8_0 on CPU (a 12B fits in ~14 GB), f32 elsewhere.
    pub fn default_for(device: &Device) -> Self {
        if device.is_cpu() {
            WeightsDtype::Q8_0
        } else {
            WeightsDtype::F32
        }
    }

    /// `REVMOD_SAFETENSORS_WEIGHTS` when set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(WEIGHTS_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::parse(&v).map(Some).with_context(|| format!("{WEIGHTS_ENV}={v:?}")),
            _ => Ok(None),
        }
    }

    /// What to use: `explicit` (a library option or `--weights`), else `REVMOD_SAFETENSORS_WEIGHTS`, else
    /// [`WeightsDtype::default_for`] the device.
    pub fn resolve(explicit: Option<Self>, device: &Device) -> Result<Self> {
        Ok(match explicit {
            Some(w) => w,
            None => Self::from_env()?.unwrap_or_else(|| Self::default_for(device)),
        })
    }
}

impl std::fmt::Display for WeightsDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

/// Element types a checkpoint may store weights in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StDtype {
    F32,
    Bf16,
    F16,
}

impl StDtype {
    fn size(self) -> usize {
        match self {
            StDtype::F32 => 4,
            StDtype::Bf16 | StDtype::F16 => 2,
        }
    }

    /// Appends the f32 values of little-endian `bytes` to `out`.
    fn to_f32(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            StDtype::F32 => out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            StDtype::Bf16 => out.extend(bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())),
            StDtype::F16 => out.extend(bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
        }
    }
}

/// Where one tensor lies: file, dtype (as written, e.g. "BF16"), shape, absolute byte range.
#[derive(Debug, Clone)]
struct TensorEntry {
    file: usize,
    dtype: String,
    shape: Vec<usize>,
    start: u64,
    end: u64,
}

/// The tensors of a set of safetensors files, read from their JSON headers.
struct StIndex {
    files: Vec<(PathBuf, File)>,
    tensors: HashMap<String, TensorEntry>,
}

impl StIndex {
    fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = HashMap::new();
        for (i, p) in paths.iter().enumerate() {
            // framing (header length, JSON, every range inside the file) first: one-line errors for bad files
            super::check::check_safetensors(p)?;
            let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let mut n = [0u8; 8];
            f.read_exact_at(&mut n, 0)?;
            let hlen = u64::from_le_bytes(n);
            let mut h = vec![0u8; hlen as usize];
            f.read_exact_at(&mut h, 8)?;
            let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&h)
                .map_err(|e| anyhow::anyhow!("{}: corrupt safetensors header ({e})", p.display()))?;
            for (name, t) in header.into_iter().filter(|(k, _)| k != "__metadata__") {
                let bad = || anyhow::anyhow!("{}: corrupt safetensors header (tensor {name})", p.display());
                let dtype = t.get("dtype").and_then(|d| d.as_str()).ok_or_else(bad)?.to_string();
                let shape = t
                    .get("shape")
                    .and_then(|s| s.as_array())
                    .ok_or_else(bad)?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(bad)?;
                let off = t.get("data_offsets").and_then(|o| o.as_array()).ok_or_else(bad)?;
                let (a, b) = match off.as_slice() {
                    [a, b] => (a.as_u64().ok_or_else(bad)?, b.as_u64().ok_or_else(bad)?),
                    _ => return Err(bad()),
                };
                tensors.insert(name, TensorEntry { file: i, dtype, shape, start: 8 + hlen + a, end: 8 + hlen + b });
            }
            files.push((p.clone(), f));
        }
        Ok(Self { files, tensors })
    }

    fn path(&self, e: &TensorEntry) -> &Path {
        &self.files[e.file].0
    }

    /// The tensor's element type, checked against its byte length.
    fn dtype_of(&self, name: &str, e: &TensorEntry) -> Result<StDtype> {
        let dt = match e.dtype.as_str() {
            "F32" => StDtype::F32,
            "BF16" => StDtype::Bf16,
            "F16" => StDtype::F16,
            other => bail!("{}: tensor {name} has dtype {other}; supported: F32, BF16, F16", self.path(e).display()),
        };
        let elems: usize = e.shape.iter().product();
        if e.end < e.start || (e.end - e.start) as usize != elems * dt.size() {
            bail!(
                "{}: tensor {name} has {} bytes for shape {:?} of {} (corrupt header)",
                self.path(e).display(),
                e.end.saturating_sub(e.start),
                e.shape,
                e.dtype
            );
        }
        Ok(dt)
    }

    /// Calls `f` with consecutive runs of whole rows (`rows x cols` f32 values, row-major) of a tensor whose
    /// last dimension is `cols`, each run at most `chunk_bytes` of file data (or one row): the whole tensor is never
    /// in memory twice.
    fn for_row_chunks(&self, name: &str, cols: usize, chunk_bytes: usize, mut f: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let e = self.tensors.get(name).with_context(|| format!("tensor {name} missing"))?;
        let dt = self.dtype_of(name, e)?;
        let elems: usize = e.shape.iter().product();
        let row_bytes = cols * dt.size();
        let rows_per = (chunk_bytes / row_bytes.max(1)).max(1);
        let total_rows = if cols == 0 { 0 } else { elems / cols };
        let file = &self.files[e.file].1;
        let mut raw = Vec::new();
        let mut vals = Vec::new();
        let mut r = 0;
        while r < total_rows {
            let n = rows_per.min(total_rows - r);
            raw.resize(n * row_bytes, 0);
            file.read_exact_at(&mut raw, e.start + (r * row_bytes) as u64)
                .with_context(|| format!("{}: reading tensor {name}", self.path(e).display()))?;
            vals.clear();
            dt.to_f32(&raw, &mut vals);
            f(&vals)?;
            r += n;
        }
        Ok(())
    }
}

/// Safetensors weights with the tensor-name prefix of the checkpoint's layout, read on demand.
pub struct SafetensorsWeights {
    index: StIndex,
    prefix: String,
    device: Device,
    weights: WeightsDtype,
    chunk_bytes: usize,
}

/// File bytes read per step while loading a tensor (the transient buffers are this and its f32 values).
pub const CHUNK_BYTES: usize = 8 << 20;

/// Tensor-name prefixes of the text model, in the order they are tried.
const PREFIXES: [&str; 4] = ["model.", "language_model.model.", "model.language_model.", ""];

impl SafetensorsWeights {
    /// Reads the files' headers and detects the layout from where `embed_tokens.weight` is. Weights are f32
    /// until [`SafetensorsWeights::weights`] says otherwise.
    pub fn open(files: &[PathBuf], device: &Device) -> Result<Self> {
        let index = StIndex::open(files)?;
        let prefix = PREFIXES
            .iter()
            .find(|p| index.tensors.contains_key(&format!("{p}embed_tokens.weight")))
            .ok_or_else(|| {
                LoadError::WrongArchitecture(format!(
                    "{}: not a Gemma-3 checkpoint: no embed_tokens.weight under model., language_model.model. or model.language_model.",
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                ))
            })?
            .to_string();
        Ok(Self { index, prefix, device: device.clone(), weights: WeightsDtype::F32, chunk_bytes: CHUNK_BYTES })
    }

    /// Holds projections and the embedding as `w` (f32 or quantized to Q8_0 while loading).
    pub fn weights(mut self, w: WeightsDtype) -> Self {
        self.weights = w;
        self
    }

    /// Reads at most `n` file bytes per step (at least one row) instead of [`CHUNK_BYTES`]: the result is the
    /// same whatever the step (tests check it with tiny steps, so that tensors span many of them).
    pub fn chunk_bytes(mut self, n: usize) -> Self {
        self.chunk_bytes = n;
        self
    }

    /// The text model's tensor-name prefix ("model.", "language_model.model." or "model.language_model.").
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tensors the text model does not use (a `Gemma3ForConditionalGeneration`'s vision tower and
    /// multimodal projector): how many, and their bytes on disk. Nothing of them is read.
    pub fn skipped(&self) -> (usize, u64) {
        self.index
            .tensors
            .iter()
            .filter(|(n, _)| !n.starts_with(&self.prefix) && !n.ends_with("lm_head.weight"))
            .fold((0, 0), |(c, b), (_, e)| (c + 1, b + (e.end - e.start)))
    }

    fn full_name(&self, name: &str) -> String {
        format!("{}{name}.weight", self.prefix)
    }

    fn shape(&self, full: &str) -> Result<Vec<usize>> {
        Ok(self.index.tensors.get(full).with_context(|| format!("tensor {full} missing from the checkpoint"))?.shape.clone())
    }

    /// The whole tensor in f32 on the device.
    fn load_f32(&self, name: &str) -> Result<Tensor> {
        let full = self.full_name(name);
        let shape = self.shape(&full)?;
        let cols = *shape.last().unwrap_or(&1);
        let mut v = Vec::with_capacity(shape.iter().product());
        self.index.for_row_chunks(&full, cols, self.chunk_bytes, |c| {
            v.extend_from_slice(c);
            Ok(())
        })?;
        Ok(Tensor::from_vec(v, shape, &self.device)?)
    }

    /// The matrix quantized to Q8_0, chunk by chunk (candle's `BlockQ8_0::from_float` on each run of rows),
    /// straight into the final block buffer.
    fn load_q8_0(&self, name: &str) -> Result<QTensor> {
        let full = self.full_name(name);
        let shape = self.shape(&full)?;
        let cols = *shape.last().unwrap_or(&0);
        let qk = GgmlDType::Q8_0.block_size();
        if shape.len() != 2 || cols % qk != 0 {
            bail!("tensor {full} of shape {shape:?} cannot be quantized to Q8_0 (needs a matrix with columns a multiple of {qk})");
        }
        if !self.device.is_cpu() {
            // on an accelerator candle quantizes a device tensor; the f32 copy is one tensor at a time
            return Ok(QTensor::quantize(&self.load_f32(name)?, GgmlDType::Q8_0)?);
        }
        let mut blocks: Vec<BlockQ8_0> = Vec::with_capacity(shape[0] * cols / qk);
        self.index.for_row_chunks(&full, cols, self.chunk_bytes, |c| {
            let at = blocks.len();
            blocks.resize(at + c.len() / qk, BlockQ8_0::zeros());
            BlockQ8_0::from_float(c, &mut blocks[at..]);
            Ok(())
        })?;
        Ok(QTensor::new(QStorage::Cpu(Box::new(blocks)), shape)?)
    }

    fn check_matrix(&self, name: &str) -> Result<()> {
        let full = self.full_name(name);
        let shape = self.shape(&full)?;
        if shape.len() != 2 {
            bail!("tensor {full} has shape {shape:?}, expected a matrix");
        }
        Ok(())
    }
}

impl WeightSource for SafetensorsWeights {
    fn linear(&mut self, name: &str) -> Result<QMatMul> {
        self.check_matrix(name)?;
        Ok(match self.weights {
            WeightsDtype::Q8_0 => QMatMul::QTensor(Arc::new(self.load_q8_0(name)?)),
            WeightsDtype::F32 => QMatMul::Tensor(self.load_f32(name)?),
        })
    }

    fn norm(&mut self, name: &str) -> Result<Tensor> {
        // HF stores w, the model scales by (1 + w)
        Ok((self.load_f32(name)?.to_dtype(DType::F32)? + 1.0)?)
    }

    fn embedding(&mut self) -> Result<Embedding> {
        self.check_matrix("embed_tokens")?;
        Ok(match self.weights {
            WeightsDtype::Q8_0 => Embedding::Quantized(Arc::new(self.load_q8_0("embed_tokens")?)),
            WeightsDtype::F32 => Embedding::Dense(self.load_f32("embed_tokens")?),
        })
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
