//! Hub download (step 5's `-p MODEL=google/gemma-3-12b-it`): a model spec `org/name[@revision][:file]` that is
//! not complete in the Hugging Face cache is downloaded into it with the `hf-hub` crate (0.4's blocking API on
//! ureq + rustls), in the cache layout `huggingface_hub` writes, so Python and Rust share one copy.
//!
//! - Cache and token as in [`super::hub`]: `HF_HUB_CACHE` / `HF_HOME`; token from `HF_TOKEN` or the token file,
//!   sent as a bearer header and never printed or written anywhere (the options' `Debug` hides it).
//! - `HF_ENDPOINT` chooses the hub (tests serve one on 127.0.0.1); `HF_HUB_OFFLINE=1` (or `revmod --offline`)
//!   never touches the network and reads the cache only.
//! - A model already complete in the cache is used without any request (hf-hub's `get` rule), so a second
//!   run works offline.
//! - Which files: `:file` downloads that file; otherwise the repository listing decides: an HF checkpoint
//!   (`config.json`, `tokenizer.json`, `model.safetensors` or the shards of `model.safetensors.index.json`)
//!   or the repository's single `.gguf` file (several: name one).
//! - Resume: hf-hub writes `blobs/<etag>.part` and continues it with a `Range` request, both within a run
//!   (after a cut connection, `retries` times with backoff) and in the next run (the `.part` file is kept).
//! - Integrity: the hub announces the sha256 of large-file-storage files (`x-linked-etag`, the blob's name);
//!   each such file is hashed after download and removed when it does not match.
//! - Errors are typed ([`HubError`]): a gated model without access names the page where the licence is
//!   accepted; a typo'd repository, a missing revision or file, no network and an interrupted download each
//!   say so in one line.

use super::hub::{self, HubRef};
use crate::progress::{Progress, Unit};
use hf_hub::api::sync::{Api, ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use std::path::{Path, PathBuf};

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to download. Build with [`HubOptions::from_env`] and change fields as needed.
#[derive(Clone)]
pub struct HubOptions {
    /// Hub URL (`HF_ENDPOINT`, default <https://huggingface.co>).
    pub endpoint: String,
    /// The hub cache directory (see [`hub::hub_cache_dir`]).
    pub cache: PathBuf,
    /// Bearer token (never printed).
    pub token: Option<String>,
    /// Read the cache only (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Attempts to resume a broken transfer within one run (each continues the partial file).
    pub retries: usize,
    /// Count the download's progress for the installed drawer ([`crate::progress`]); false: draw nothing.
    pub progress: bool,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache", &self.cache)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("offline", &self.offline)
            .field("retries", &self.retries)
            .field("progress", &self.progress)
            .finish()
    }
}

/// `HF_HUB_OFFLINE` as `huggingface_hub` reads it: 1, true, yes or on (any case).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

impl HubOptions {
    /// From the environment: `HF_ENDPOINT`, the cache and token variables of [`hub`], `HF_HUB_OFFLINE`;
    /// 5 in-run resume attempts; progress on (drawn when the caller installed a drawer).
    pub fn from_env() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.trim().is_empty()).unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        Self {
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            cache: hub::hub_cache_dir(),
            token: hub::hf_token(),
            offline: offline_from_env(),
            retries: 5,
            progress: true,
        }
    }

    /// The web page of a repository (where a gated model's licence is accepted).
    pub fn model_page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.endpoint)
    }
}

/// Why a hub download failed. Messages are one line and never contain the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// 401/403 for a gated repository: the licence is not accepted (or no token was sent).
    Gated { repo: String, page: String, token_sent: bool },
    /// The hub knows no such repository (or it is private and the token cannot see it).
    RepoNotFound { repo: String, endpoint: String },
    /// The repository has no such branch, tag or commit.
    RevisionNotFound { repo: String, revision: String },
    /// The repository has no such file at this revision.
    FileNotFound { repo: String, revision: String, file: String },
    /// The hub could not be reached (no network, DNS, refused, TLS).
    Network { endpoint: String, detail: String },
    /// A transfer broke and could not be resumed in this run; the partial file is kept for the next one.
    Interrupted { file: String, attempts: usize, detail: String },
    /// The downloaded bytes do not have the sha256 the hub announced (the file was removed).
    Checksum { file: String, expected: String, got: String },
    /// Offline and the model is not (completely) in the cache.
    NotCached { repo: String, detail: String },
    /// The repository holds no loadable model, or several GGUF files and none was named.
    Layout { repo: String, detail: String },
    /// Anything else (I/O in the cache, an unexpected answer).
    Other(String),
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubError::Gated { repo, page, token_sent } => write!(
                f,
                "{repo} is a gated model and {}: open {page}, log in and accept the licence, then set HF_TOKEN or run \
                 `huggingface-cli login` with that account's token",
                if *token_sent { "the token in use has no access to it" } else { "no token was found (HF_TOKEN or the token file)" }
            ),
            HubError::RepoNotFound { repo, endpoint } => write!(
                f,
                "model repository {repo} not found on {endpoint}: check the name (org/name, e.g. google/gemma-3-12b-it); \
                 a private repository also needs a token"
            ),
            HubError::RevisionNotFound { repo, revision } => write!(f, "model {repo} has no revision {revision:?} (a branch, tag or commit)"),
            HubError::FileNotFound { repo, revision, file } => write!(f, "model {repo} has no file {file} at revision {revision}"),
            HubError::Network { endpoint, detail } => write!(
                f,
                "cannot reach the Hugging Face hub at {endpoint} ({detail}): check the network (or HTTPS_PROXY), or run \
                 offline (HF_HUB_OFFLINE=1 or --offline) with a model already in the cache"
            ),
            HubError::Interrupted { file, attempts, detail } => write!(
                f,
                "download of {file} broke off ({detail}; {attempts} attempt(s)); the partial file is kept in the cache: \
                 run again to resume it"
            ),
            HubError::Checksum { file, expected, got } => write!(
                f,
                "{file}: downloaded bytes have sha256 {got}, the hub announced {expected}; the file was removed: run again"
            ),
            HubError::NotCached { repo, detail } => write!(f, "offline (HF_HUB_OFFLINE / --offline) and {repo} is not in the cache: {detail}"),
            HubError::Layout { repo, detail } => write!(f, "model {repo}: {detail}"),
            HubError::Other(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for HubError {}

/// Resolves a hub reference to a local path (a snapshot directory, or the chosen file), downloading what the
/// cache lacks unless offline. See the module doc.
pub fn fetch(r: &HubRef, opts: &HubOptions) -> Result<PathBuf, HubError> {
    if let Some(p) = cached_complete(r, &opts.cache) {
        return Ok(p);
    }
    if opts.offline {
        let detail = match hub::resolve_in(&opts.cache, r) {
            Ok(p) => format!("{} is incomplete (an interrupted download?)", p.display()),
            Err(e) => format!("{e:#}"),
        };
        return Err(HubError::NotCached { repo: r.repo.clone(), detail });
    }
    let api = build_api(opts)?;
    let repo = api.repo(Repo::with_revision(r.repo.clone(), RepoType::Model, r.revision.clone()));
    let files = match &r.file {
        Some(f) => vec![f.clone()],
        None => files_to_fetch(r, opts, &repo)?,
    };
    for f in &files {
        download_one(r, opts, &repo, f)?;
    }
    hub::resolve_in(&opts.cache, r).map_err(|e| HubError::Other(format!("{e:#}")))
}

/// The cached path when the model is complete in the cache: the named file, or a snapshot directory that
/// [`super::load_path`] can load (config + tokenizer + every shard, or exactly one GGUF).
pub fn cached_complete(r: &HubRef, cache: &Path) -> Option<PathBuf> {
    let p = hub::resolve_in(cache, r).ok()?;
    if r.file.is_some() {
        return p.is_file().then_some(p);
    }
    let checkpoint = p.join("config.json").is_file() && p.join("tokenizer.json").is_file() && super::safetensors::checkpoint_files(&p).is_ok();
    let one_gguf = super::files_with_extension(&p, "gguf").is_ok_and(|g| g.len() == 1);
    (checkpoint || one_gguf).then_some(p)
}

fn build_api(opts: &HubOptions) -> Result<Api, HubError> {
    ApiBuilder::from_cache(Cache::new(opts.cache.clone()))
        .with_endpoint(opts.endpoint.clone())
        .with_token(opts.token.clone())
        .with_progress(false)
        .with_retries(opts.retries)
        .with_user_agent("revmod", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(|e| HubError::Other(format!("cannot set up the hub client: {e}")))
}

/// Which files make the model: from the repository listing (`/api/models/{repo}/revision/{rev}`).
fn files_to_fetch(r: &HubRef, opts: &HubOptions, repo: &ApiRepo) -> Result<Vec<String>, HubError> {
    let info = repo.info().map_err(|e| classify(e, r, opts, None))?;
    let names: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    let top_level = |ext: &str| names.iter().filter(|n| !n.contains('/') && n.ends_with(ext)).cloned().collect::<Vec<_>>();
    let shards = top_level(".safetensors");
    if has("config.json") && (!shards.is_empty() || has("model.safetensors.index.json")) {
        if !has("tokenizer.json") {
            return Err(HubError::Layout { repo: r.repo.clone(), detail: "the checkpoint has no tokenizer.json".into() });
        }
        let mut files = vec!["config.json".to_string(), "tokenizer.json".to_string()];
        if has("model.safetensors.index.json") {
            let index = download_one(r, opts, repo, "model.safetensors.index.json")?;
            files.extend(index_shards(&index)?);
        } else {
            files.extend(shards);
        }
        return Ok(files);
    }
    let ggufs = top_level(".gguf");
    match ggufs.len() {
        1 => Ok(ggufs),
        0 => Err(HubError::Layout {
            repo: r.repo.clone(),
            detail: "neither an HF checkpoint (config.json + *.safetensors + tokenizer.json) nor a .gguf file".into(),
        }),
        _ => Err(HubError::Layout {
            repo: r.repo.clone(),
            detail: format!("holds several .gguf files ({}); name one as {}:FILE", ggufs.join(", "), r.repo),
        }),
    }
}

/// The shard file names listed in a `model.safetensors.index.json`.
fn index_shards(index: &Path) -> Result<Vec<String>, HubError> {
    let bad = |why: String| HubError::Other(format!("{}: {why}", index.display()));
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad("no weight_map".into()))?;
    let mut shards: Vec<String> = map.values().filter_map(|f| f.as_str()).map(str::to_string).collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Downloads one file into the cache unless its snapshot link is already there; checks the sha256.
fn download_one(r: &HubRef, opts: &HubOptions, repo: &ApiRepo, file: &str) -> Result<PathBuf, HubError> {
    let one = HubRef { file: Some(file.to_string()), ..r.clone() };
    if let Some(p) = cached_complete(&one, &opts.cache) {
        return Ok(p);
    }
    let progress = DownloadProgress { file: file.to_string(), enabled: opts.progress, bar: None, fresh: false, total: 0 };
    let path = repo.download_with_progress(file, progress).map_err(|e| classify(e, r, opts, Some(file)))?;
    verify_blob(&path, file)?;
    Ok(path)
}

/// The blob behind a snapshot link is named after the hub's etag; for large-file-storage files that is the
/// sha256 of the content. A mismatch removes the blob and the link.
fn verify_blob(link: &Path, file: &str) -> Result<(), HubError> {
    let blob = std::fs::canonicalize(link).map_err(|e| HubError::Other(format!("{}: {e}", link.display())))?;
    let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    if etag.len() != 64 || !etag.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(()); // a git-stored small file: its etag is a git object id, not a sha256
    }
    let got = super::embedded::sha256_file(&blob).map_err(|e| HubError::Other(format!("{e:#}")))?;
    if got.eq_ignore_ascii_case(&etag) {
        return Ok(());
    }
    let _ = std::fs::remove_file(link);
    let _ = std::fs::remove_file(&blob);
    Err(HubError::Checksum { file: file.to_string(), expected: etag.to_ascii_lowercase(), got })
}

/// Maps hf-hub's error to a [`HubError`] from the status and the hub's `X-Error-Code` header.
fn classify(e: ApiError, r: &HubRef, opts: &HubOptions, file: Option<&str>) -> HubError {
    let attempts = opts.retries + 1;
    match e {
        ApiError::RequestError(boxed) => match *boxed {
            ureq2::Error::Status(status, resp) => {
                let code = resp.header("x-error-code").unwrap_or("").to_string();
                match (status, code.as_str()) {
                    (_, "RepoNotFound") => HubError::RepoNotFound { repo: r.repo.clone(), endpoint: opts.endpoint.clone() },
                    (_, "GatedRepo") | (401 | 403, _) => {
                        HubError::Gated { repo: r.repo.clone(), page: opts.model_page(&r.repo), token_sent: opts.token.is_some() }
                    }
                    (_, "RevisionNotFound") => HubError::RevisionNotFound { repo: r.repo.clone(), revision: r.revision.clone() },
                    (404, _) | (_, "EntryNotFound") => HubError::FileNotFound {
                        repo: r.repo.clone(),
                        revision: r.revision.clone(),
                        file: file.unwrap_or("(listing)").to_string(),
                    },
                    _ => HubError::Other(format!("{}: HTTP {status} {code}", resp.get_url())),
                }
            }
            ureq2::Error::Transport(t) => HubError::Network { endpoint: opts.endpoint.clone(), detail: one_line(&t.to_string()) },
        },
        ApiError::TooManyRetries(inner) => {
            HubError::Interrupted { file: file.unwrap_or("?").to_string(), attempts, detail: one_line(&inner.to_string()) }
        }
        ApiError::IoError(io) if file.is_some() => {
            HubError::Interrupted { file: file.unwrap_or("?").to_string(), attempts, detail: io.to_string() }
        }
        ApiError::LockAcquisition(p) => HubError::Other(format!("another process is downloading into {} (lock held)", p.display())),
        ApiError::InvalidResume => HubError::Other(format!(
            "the partial download of {} is longer than the file: delete the .part file in {}",
            file.unwrap_or("?"),
            hub::repo_dir(&opts.cache, &r.repo).join("blobs").display()
        )),
        other => HubError::Other(format!("model {}: unexpected answer from {} ({})", r.repo, opts.endpoint, one_line(&other.to_string()))),
    }
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// hf-hub's progress callbacks on revmod's progress line (in bytes). hf-hub calls `init` before each
/// attempt and then `update(offset)` with the bytes already in the partial file: that first update is the
/// resumed part, not transfer.
struct DownloadProgress {
    file: String,
    enabled: bool,
    bar: Option<Progress>,
    fresh: bool,
    total: usize,
}

impl hf_hub::api::Progress for DownloadProgress {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = size;
        self.fresh = true;
    }

    fn update(&mut self, size: usize) {
        if !self.enabled {
            return;
        }
        if self.fresh {
            self.fresh = false;
            let label = format!("downloading {}", self.file);
            self.bar = Some(Progress::new(&label, Unit::Bytes, Some(self.total as u64), size as u64));
            return;
        }
        if let Some(b) = self.bar.as_mut() {
            b.advance(size as u64);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.as_mut() {
            b.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_the_token() {
        let o = HubOptions {
            endpoint: "http://h".into(),
            cache: "/tmp".into(),
            token: Some("hf_secret_value".into()),
            offline: false,
            retries: 1,
            progress: false,
        };
        let d = format!("{o:?}");
        assert!(!d.contains("hf_secret_value") && d.contains("<hidden>"), "{d}");
    }

    #[test]
    fn gated_error_names_the_model_page() {
        let e = HubError::Gated { repo: "google/gemma-3-12b-it".into(), page: "https://huggingface.co/google/gemma-3-12b-it".into(), token_sent: false };
        let s = e.to_string();
        assert!(s.contains("https://huggingface.co/google/gemma-3-12b-it") && s.contains("accept the licence") && !s.contains('\n'), "{s}");
    }
}
