//! The Hugging Face hub cache (the layout `huggingface_hub` and the `hf-hub` crate write):
//! `<cache>/models--<org>--<name>/{refs/<revision>, snapshots/<commit>/<files>, blobs/}`: model specs, the
//! cache location, the token, and lookup of a model already in the cache. Downloading is [`super::fetch`]'s
//! (hf-hub); this module only reads, so offline runs and `HF_HUB_OFFLINE=1` need nothing else.
//!
//! The variables are `huggingface_hub`'s: `HF_HUB_CACHE` (or `HUGGINGFACE_HUB_CACHE`), else `HF_HOME/hub`,
//! else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub` (hf-hub 0.4's own `Cache::from_env`
//! reads only `HF_HOME`, so the directory is computed here and handed to it). The token (sent to the hub only,
//! never printed) is `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`), else the file `HF_TOKEN_PATH`, else
//! `HF_HOME/token`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A model on the Hugging Face hub: `org/name`, a revision (branch, tag or commit) and optionally one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// `org/name`.
    pub repo: String,
    /// Branch, tag or 40-hex commit (default "main").
    pub revision: String,
    /// A file inside the repository (e.g. one `.gguf` of several), if chosen.
    pub file: Option<String>,
}

impl HubRef {
    /// Parses `org/name[@revision][:file]` (an optional `hf:` prefix is accepted).
    pub fn parse(spec: &str) -> Option<Self> {
        let s = spec.strip_prefix("hf:").unwrap_or(spec);
        let (main, file) = match s.split_once(':') {
            Some((m, f)) if !f.is_empty() => (m, Some(f.to_string())),
            Some(_) => return None,
            None => (s, None),
        };
        let (repo, revision) = match main.split_once('@') {
            Some((r, v)) if !v.is_empty() => (r, v.to_string()),
            Some(_) => return None,
            None => (main, "main".to_string()),
        };
        let mut parts = repo.split('/');
        let (org, name) = (parts.next()?, parts.next()?);
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if parts.next().is_some() || !ok(org) || !ok(name) {
            return None;
        }
        Some(Self { repo: repo.to_string(), revision, file })
    }
}

fn env_path(k: &str) -> Option<PathBuf> {
    std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/root"))
}

/// `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> PathBuf {
    env_path("HF_HOME").unwrap_or_else(|| {
        env_path("XDG_CACHE_HOME").unwrap_or_else(|| home().join(".cache")).join("huggingface")
    })
}

/// The hub cache directory (see the module doc for the order of variables).
pub fn hub_cache_dir() -> PathBuf {
    env_path("HF_HUB_CACHE")
        .or_else(|| env_path("HUGGINGFACE_HUB_CACHE"))
        .unwrap_or_else(|| hf_home().join("hub"))
}

/// The user's hub token if one is configured. Never print it.
pub fn hf_token() -> Option<String> {
    for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] {
        if let Ok(t) = std::env::var(k) {
            if !t.trim().is_empty() {
                return Some(t.trim().to_string());
            }
        }
    }
    let path = env_path("HF_TOKEN_PATH").unwrap_or_else(|| hf_home().join("token"));
    std::fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// Where a repository lives in the cache.
pub fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// Resolves a hub reference in the cache to a snapshot directory, or to the chosen file in it. Errors say what
/// is missing, how to fetch it, and, for gated repositories (Gemma's), whether a token is configured.
pub fn resolve(r: &HubRef) -> Result<PathBuf> {
    resolve_in(&hub_cache_dir(), r)
}

/// `resolve` against an explicit cache directory.
pub fn resolve_in(cache: &Path, r: &HubRef) -> Result<PathBuf> {
    let dir = repo_dir(cache, &r.repo);
    let fetch_hint = || {
        let gated = r.repo.to_ascii_lowercase().contains("gemma") || r.repo.starts_with("google/");
        let token = if hf_token().is_some() { "a token is configured" } else { "no token found (HF_TOKEN or the token file)" };
        let mut s = format!(
            "run online (without HF_HUB_OFFLINE / --offline) to download it, or `huggingface-cli download {}`",
            r.repo
        );
        if gated {
            s.push_str(&format!(
                "; {} is a gated model: accept its licence on the Hub and log in (`huggingface-cli login` or HF_TOKEN); {token}",
                r.repo
            ));
        }
        s
    };
    if !dir.is_dir() {
        bail!("model {} is not in the Hugging Face cache {}; {}", r.repo, cache.display(), fetch_hint());
    }
    let is_commit = r.revision.len() == 40 && r.revision.chars().all(|c| c.is_ascii_hexdigit());
    let commit = if is_commit {
        r.revision.clone()
    } else {
        let rf = dir.join("refs").join(&r.revision);
        std::fs::read_to_string(&rf)
            .with_context(|| format!("model {}: revision {:?} not in the cache ({} missing); {}", r.repo, r.revision, rf.display(), fetch_hint()))?
            .trim()
            .to_string()
    };
    let snap = dir.join("snapshots").join(&commit);
    if !snap.is_dir() {
        bail!("model {}: snapshot {} missing from the cache; {}", r.repo, snap.display(), fetch_hint());
    }
    match &r.file {
        None => Ok(snap),
        Some(f) => {
            let p = snap.join(f);
            if p.exists() {
                Ok(p)
            } else if dir.join(".no_exist").join(&commit).join(f).exists() {
                bail!("model {}: file {f} does not exist in revision {commit}", r.repo)
            } else {
                bail!("model {}: file {f} is not in the cached snapshot {}; {}", r.repo, snap.display(), fetch_hint())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repo_specs() {
        assert_eq!(
            HubRef::parse("google/gemma-3-1b-it").unwrap(),
            HubRef { repo: "google/gemma-3-1b-it".into(), revision: "main".into(), file: None }
        );
        let r = HubRef::parse("hf:unsloth/gemma-3-270m-it-GGUF@v1:gemma-3-270m-it-Q4_K_M.gguf").unwrap();
        assert_eq!(r.revision, "v1");
        assert_eq!(r.file.as_deref(), Some("gemma-3-270m-it-Q4_K_M.gguf"));
        assert!(HubRef::parse("/tmp/model.gguf").is_none());
        assert!(HubRef::parse("a/b/c").is_none());
        assert!(HubRef::parse("model.gguf").is_none());
    }

    #[test]
    fn resolves_the_cache_layout() {
        let tmp = std::env::temp_dir().join(format!("revmod-hub-test-{}", std::process::id()));
        let repo = repo_dir(&tmp, "org/m");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        std::fs::write(repo.join("snapshots").join(commit).join("m.gguf"), b"x").unwrap();
        let r = HubRef::parse("org/m:m.gguf").unwrap();
        assert_eq!(resolve_in(&tmp, &r).unwrap(), repo.join("snapshots").join(commit).join("m.gguf"));
        let e = resolve_in(&tmp, &HubRef::parse("google/gemma-3-1b-it").unwrap()).unwrap_err().to_string();
        assert!(e.contains("not in the Hugging Face cache") && e.contains("gated"), "{e}");
        let e = resolve_in(&tmp, &HubRef::parse("org/m@dev").unwrap()).unwrap_err().to_string();
        assert!(e.contains("revision \"dev\""), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
