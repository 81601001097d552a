//! Bad model input, caught before (or instead of) candle's errors: a truncated or corrupt safetensors or GGUF
//! file, a tokenizer that does not belong to the model. Each is one line naming the file and what is wrong
//! ("truncated: tensor X ends at byte N, the file has M bytes"), where candle would report a bare I/O error
//! (and, with `RUST_BACKTRACE` set, a multi-line backtrace) from deep inside the loader.
//!
//! [`one_line`] flattens an error chain into one line with candle's backtraces removed; [`super::load_path`]
//! returns its errors through it as a [`LoadError`], so the CLI, notebooks and tests all see the same single
//! line, and callers tell a bad file from a model of another architecture or a foreign tokenizer by variant.

use super::config::Gemma3Config;
use super::tokenizer::Tokenizer;
use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;
use std::io::Read;
use std::path::Path;

/// Why a model could not be loaded. Each variant holds the one-line message (naming the file and what is
/// wrong) that `Display` prints; the variant says which kind of problem it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The path does not exist, or a directory holds no model files.
    NotFound(String),
    /// A truncated or corrupt safetensors or GGUF file, or not a model file at all: fetch it again.
    BadFile(String),
    /// A weight type candle's quantized matmul cannot run: re-quantize.
    Unsupported(String),
    /// Config or weights of another architecture than Gemma-3.
    WrongArchitecture(String),
    /// A Gemma-3 config and weights of different sizes (a 1B config.json beside 270M weights).
    ConfigMismatch(String),
    /// A tokenizer that does not belong to the model (more tokens than embedding rows, no Gemma chat markers).
    TokenizerMismatch(String),
    /// Anything else (an unreadable file, a bad setting).
    Other(String),
}

impl LoadError {
    /// The one-line message.
    pub fn message(&self) -> &str {
        match self {
            LoadError::NotFound(m)
            | LoadError::BadFile(m)
            | LoadError::Unsupported(m)
            | LoadError::WrongArchitecture(m)
            | LoadError::ConfigMismatch(m)
            | LoadError::TokenizerMismatch(m)
            | LoadError::Other(m) => m,
        }
    }

    /// The same kind of error with another message.
    fn with_message(&self, m: String) -> Self {
        match self {
            LoadError::NotFound(_) => LoadError::NotFound(m),
            LoadError::BadFile(_) => LoadError::BadFile(m),
            LoadError::Unsupported(_) => LoadError::Unsupported(m),
            LoadError::WrongArchitecture(_) => LoadError::WrongArchitecture(m),
            LoadError::ConfigMismatch(_) => LoadError::ConfigMismatch(m),
            LoadError::TokenizerMismatch(_) => LoadError::TokenizerMismatch(m),
            LoadError::Other(_) => LoadError::Other(m),
        }
    }

    /// A loader error chain as one [`LoadError`]: the kind raised deepest in the chain (`Other` when none
    /// was), the message the whole chain on one line ([`one_line`]).
    pub fn from_chain(e: &anyhow::Error) -> Self {
        let kind = e.chain().find_map(|c| c.downcast_ref::<LoadError>()).cloned().unwrap_or(LoadError::Other(String::new()));
        kind.with_message(one_line(e))
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for LoadError {}

/// Largest safetensors JSON header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// What to say after "truncated" (the usual cause, and the cure).
const REFETCH: &str = "an interrupted download or copy? fetch it again";

/// Checks a safetensors file's framing without reading the weights: the 8-byte header length, the JSON
/// header, and that every tensor's data range lies inside the file (a truncated file fails here).
pub fn check_safetensors(path: &Path) -> Result<()> {
    let d = path.display();
    let len = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read {d}: {e}"))?.len();
    if len < 8 {
        bail!(LoadError::BadFile(format!("{d}: truncated safetensors file ({len} bytes; {REFETCH})")));
    }
    let mut f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {d}: {e}"))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER {
        bail!(LoadError::BadFile(format!("{d}: not a safetensors file (its first 8 bytes give a header of {header_len} bytes)")));
    }
    if 8 + header_len > len {
        bail!(LoadError::BadFile(format!("{d}: truncated safetensors file: the header needs {} bytes, the file has {len} ({REFETCH})", 8 + header_len)));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header)?;
    let corrupt = |why: String| LoadError::BadFile(format!("{d}: corrupt safetensors header ({why})"));
    let v: serde_json::Value = serde_json::from_slice(&header).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let obj = v.as_object().ok_or_else(|| corrupt("not a JSON object".into()))?;
    let mut end = 0u64;
    let mut last = "";
    for (name, t) in obj.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let off = t.get("data_offsets").and_then(|o| o.as_array()).filter(|o| o.len() == 2);
        let off = off.ok_or_else(|| corrupt(format!("tensor {name} has no data_offsets")))?;
        let b = off[1].as_u64().ok_or_else(|| corrupt(format!("tensor {name}")))?;
        if b >= end {
            end = b;
            last = name;
        }
    }
    let data = len - 8 - header_len;
    if end > data {
        bail!(LoadError::BadFile(format!(
            "{d}: truncated safetensors file: tensor {last} ends at byte {} of the file, which has {len} bytes ({REFETCH})",
            8 + header_len + end
        )));
    }
    Ok(())
}

/// Checks that every tensor of a parsed GGUF file lies inside the file (a truncated file fails here).
pub fn check_gguf_extent(path: &Path, content: &gguf_file::Content) -> Result<()> {
    let len = std::fs::metadata(path)?.len();
    let mut worst: Option<(u64, &str)> = None;
    for (name, ti) in &content.tensor_infos {
        let elems = ti.shape.elem_count() as u64;
        let bytes = elems / ti.ggml_dtype.block_size() as u64 * ti.ggml_dtype.type_size() as u64;
        let end = content.tensor_data_offset + ti.offset + bytes;
        if end > len && worst.is_none_or(|(w, _)| end > w) {
            worst = Some((end, name));
        }
    }
    if let Some((end, name)) = worst {
        bail!(LoadError::BadFile(format!("{}: truncated GGUF file: tensor {name} ends at byte {end}, the file has {len} bytes ({REFETCH})", path.display())));
    }
    Ok(())
}

/// The tokenizer must fit the model: no more tokens than embedding rows, and Gemma-3's chat markers.
/// `source` names the file the tokenizer came from.
pub fn check_tokenizer(tok: &Tokenizer, cfg: &Gemma3Config, source: &Path) -> Result<()> {
    let d = source.display();
    if tok.vocab_size() > cfg.vocab_size {
        bail!(LoadError::TokenizerMismatch(format!(
            "{d}: the tokenizer has {} tokens but the model's vocabulary has {} (vocab_size): they belong to different models",
            tok.vocab_size(),
            cfg.vocab_size
        )));
    }
    for t in ["<start_of_turn>", "<end_of_turn>"] {
        if tok.token_id(t).is_none() {
            bail!(LoadError::TokenizerMismatch(format!("{d}: not a Gemma-3 tokenizer (it has no {t} token): it belongs to another model")));
        }
    }
    if tok.bos_id().is_none() {
        bail!(LoadError::TokenizerMismatch(format!("{d}: the tokenizer has no <bos> token: not Gemma-3's")));
    }
    Ok(())
}

/// candle's error without its backtrace, on one line (candle joins context and cause with newlines and,
/// with `RUST_BACKTRACE` set, appends the whole backtrace).
pub fn candle_line(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_line(inner),
        E::Context { inner, context } => format!("{context}: {}", candle_line(inner)),
        E::WithPath { inner, path } => format!("{}: {}", path.display(), candle_line(inner)),
        other => squash(&other.to_string()),
    }
}

/// An error chain as one line: `context: cause: cause`, candle errors through [`candle_line`], newlines
/// folded, repeated parts skipped.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = vec![];
    for cause in e.chain() {
        let s = match cause.downcast_ref::<candle_core::Error>() {
            Some(c) => candle_line(c),
            None => squash(&cause.to_string()),
        };
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn squash(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
