//! Steps 1-2 (seed cells 1-2): `mount` — where everything lives and the run parameters.
//!
//! The seed mounted Google Drive and set module-level constants (OUT_DIR, CACHE_DIR, CKPT_DIR, N_PREVIEW,
//! N_LABEL, PART_SIZE, seeds). Here that is one value, [`Config`], built from any local directory,
//! overridable from code (builder methods, or plain field assignment in a notebook cell) and from
//! environment variables (`REVMOD_*`, see [`Config::apply_env`]). [`mount`] creates the directories.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::show::{escape_html, Html};

/// Run configuration: output locations, input files and the seed's run parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Everything the run writes goes below this directory (the seed's OUT_DIR).
    pub out_dir: PathBuf,
    /// Model and download caches (the seed's CACHE_DIR); default `<out_dir>/cache`.
    pub cache_dir: PathBuf,
    /// Label checkpoints (the seed's CKPT_DIR); default `<out_dir>/labels_ckpt_1k`.
    pub ckpt_dir: PathBuf,
    /// Google Local review file (JSON lines, plain or .gz); default `<out_dir>/data/review-Vermont.json`.
    pub review_path: PathBuf,
    /// Google Local business metadata file; default `<out_dir>/data/meta-Vermont.json`.
    pub meta_path: PathBuf,
    /// Reviews labeled in the preview step (step 7).
    pub n_preview: usize,
    /// Reviews labeled with checkpoints (step 8): the training sample size.
    pub n_label: usize,
    /// Reviews per checkpoint part file (step 8).
    pub part_size: usize,
    /// Seed of the labeling sample (step 8, `CkptOptions::seed`; the seed notebook used 42). The split
    /// keeps the seed's own two seeds (`SplitParams::seed`, `holdout_seed`: 42 and 43) and the solver its
    /// fixed visiting order, so that results match the seed's whatever this is.
    pub seed: u64,
}

impl Config {
    /// The seed's defaults, with every path derived from `out_dir`. Creates nothing.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        let out_dir = out_dir.into();
        Config {
            cache_dir: out_dir.join("cache"),
            ckpt_dir: out_dir.join("labels_ckpt_1k"),
            review_path: out_dir.join("data").join("review-Vermont.json"),
            meta_path: out_dir.join("data").join("meta-Vermont.json"),
            out_dir,
            n_preview: 20,
            n_label: 1000,
            part_size: 100,
            seed: 42,
        }
    }

    /// Overrides fields from the `REVMOD_*` environment variables: `REVMOD_OUT_DIR`, `REVMOD_CACHE_DIR`,
    /// `REVMOD_CKPT_DIR`, `REVMOD_REVIEWS`, `REVMOD_META`, `REVMOD_N_PREVIEW`, `REVMOD_N_LABEL`,
    /// `REVMOD_PART_SIZE`, `REVMOD_SEED`.
    ///
    /// `REVMOD_OUT_DIR` re-derives the default paths below it (fields set by other variables win).
    /// A variable that does not parse is an error naming it, never silently ignored.
    pub fn apply_env(self) -> Result<Self> {
        self.apply_vars(|k| std::env::var(k).ok())
    }

    /// [`Config::apply_env`] over any lookup (tests pass a map instead of the process environment).
    pub fn apply_vars(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        if let Some(out) = get("REVMOD_OUT_DIR") {
            let fresh = Config::new(out);
            let old = Config::new(&self.out_dir);
            // Keep fields the caller changed away from the old defaults.
            let keep = |cur: &PathBuf, old_default: &PathBuf, new_default: PathBuf| {
                if cur == old_default { new_default } else { cur.clone() }
            };
            self.cache_dir = keep(&self.cache_dir, &old.cache_dir, fresh.cache_dir);
            self.ckpt_dir = keep(&self.ckpt_dir, &old.ckpt_dir, fresh.ckpt_dir);
            self.review_path = keep(&self.review_path, &old.review_path, fresh.review_path);
            self.meta_path = keep(&self.meta_path, &old.meta_path, fresh.meta_path);
            self.out_dir = fresh.out_dir;
        }
        let num = |key: &str| -> Result<Option<u64>> {
            match get(key) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .with_context(|| format!("environment variable {key}={v:?} is not a whole number")),
            }
        };
        if let Some(v) = get("REVMOD_CACHE_DIR") {
            self.cache_dir = v.into();
        }
        if let Some(v) = get("REVMOD_CKPT_DIR") {
            self.ckpt_dir = v.into();
        }
        if let Some(v) = get("REVMOD_REVIEWS") {
            self.review_path = v.into();
        }
        if let Some(v) = get("REVMOD_META") {
            self.meta_path = v.into();
        }
        if let Some(v) = num("REVMOD_N_PREVIEW")? {
            self.n_preview = v as usize;
        }
        if let Some(v) = num("REVMOD_N_LABEL")? {
            self.n_label = v as usize;
        }
        if let Some(v) = num("REVMOD_PART_SIZE")? {
            self.part_size = v as usize;
            self.check().context("environment variable REVMOD_PART_SIZE")?;
        }
        if let Some(v) = num("REVMOD_SEED")? {
            self.seed = v;
        }
        Ok(self)
    }

    /// Checks the run parameters ([`crate::params`]): `part_size` at least 1 (the one policy: 0 is an
    /// error, from [`mount`], the environment or the labeling step, never silently raised to 1).
    pub fn check(&self) -> Result<&Self, crate::params::ParamError> {
        crate::params::nonzero("part_size", self.part_size)?;
        Ok(self)
    }

    /// Sets the review and meta files (builder style, for a notebook cell).
    pub fn with_data(mut self, review_path: impl Into<PathBuf>, meta_path: impl Into<PathBuf>) -> Self {
        self.review_path = review_path.into();
        self.meta_path = meta_path.into();
        self
    }

    /// Sets the sample sizes of steps 7-8 and the checkpoint part size (0 is refused by [`Config::check`]
    /// and by the labeling step).
    pub fn with_sizes(mut self, n_preview: usize, n_label: usize, part_size: usize) -> Self {
        self.n_preview = n_preview;
        self.n_label = n_label;
        self.part_size = part_size;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Creates out_dir, cache_dir and ckpt_dir (and nothing else), naming the one that fails.
    pub fn create_dirs(&self) -> Result<()> {
        for d in [&self.out_dir, &self.cache_dir, &self.ckpt_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create directory {}", d.display()))?;
        }
        Ok(())
    }

    /// Path of a file directly under out_dir.
    pub fn out(&self, name: impl AsRef<Path>) -> PathBuf {
        self.out_dir.join(name)
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OUT_DIR", self.out_dir.display().to_string()),
            ("CACHE_DIR", self.cache_dir.display().to_string()),
            ("CKPT_DIR", self.ckpt_dir.display().to_string()),
            ("REVIEWS", self.review_path.display().to_string()),
            ("META", self.meta_path.display().to_string()),
            ("N_PREVIEW", self.n_preview.to_string()),
            ("N_LABEL", self.n_label.to_string()),
            ("PART_SIZE", self.part_size.to_string()),
            ("SEED", self.seed.to_string()),
        ]
    }

    /// The configuration as a small two-column HTML table.
    pub fn to_html(&self) -> Html {
        let mut s = String::from("<table class=\"revmod-config\"><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>");
        for (k, v) in self.rows() {
            s.push_str(&format!("<tr><td><code>{}</code></td><td>{}</td></tr>", k, escape_html(&v)));
        }
        s.push_str("</tbody></table>");
        Html(s)
    }

    /// Renders in an evcxr notebook cell (HTML table, text fallback).
    pub fn evcxr_display(&self) {
        crate::show::emit(&[("text/plain", self.to_string()), ("text/html", self.to_html().0)]);
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in self.rows() {
            writeln!(f, "{k:<10} {v}")?;
        }
        Ok(())
    }
}

/// Step 2: the configuration for a run under `out_dir`, with `REVMOD_*` environment overrides applied and
/// the output, cache and checkpoint directories created.
///
/// Any local directory works (the seed needed Google Drive). Change fields afterwards in code if needed.
///
/// ```
/// use revmod::prelude::*;
/// let dir = std::env::temp_dir().join(format!("revmod-doc-mount-{}", std::process::id()));
/// let cfg: Config = mount(&dir)?.with_sizes(5, 60, 20).with_seed(42);
/// assert!(cfg.ckpt_dir.is_dir() && cfg.out("scored.parquet").starts_with(&dir));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn mount(out_dir: impl Into<PathBuf>) -> Result<Config> {
    let cfg = Config::new(out_dir).apply_env()?;
    cfg.check()?;
    cfg.create_dirs()?;
    Ok(cfg)
}
