//! Cell 8: labeling a sample in checkpointed parts that survive a crash at any instant.
//!
//! Layout (the seed's): `<ckpt_dir>/manifest.parquet` (orig_index, text, business_name, category of the
//! sample, in labeling order), `<ckpt_dir>/part_0000.parquet`, `part_0001.parquet`, ... (labeled rows of
//! each slice of `part_size`), and the final `labeled_preview_<rows>.parquet` / `.csv` next to the
//! checkpoint directory.
//!
//! Crash safety: every file is written to a temporary name, synced, then renamed (atomic on POSIX; the
//! project's one writer, [`crate::output`], which also keeps the files readable by pandas), so a
//! part either exists whole or not at all; a kill -9 at any instant loses at most the part being labeled
//! and never duplicates rows. The manifest's parquet metadata carries fingerprints of the sample, the
//! prompt and the labeler (backend, model, settings) and the part size; each part carries the run
//! fingerprint. A resume with a different sample, prompt, labeler or part size stops with an error that
//! says what changed, instead of mixing old and new labels. An exclusive lock keeps two runs out of
//! the same directory.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use polars::prelude::{DataFrame, ParquetReader, SerReader};

use crate::output::{write_csv, write_parquet_with_metadata};
use super::frame::{manifest_frame, records_to_frame, reviews_from_df, sample_indices, LabelSummary, DEFAULT_SEED};
use super::progress::Progress;
use super::prompt::Fnv;
use super::{Labeler, ReviewInput};

/// Options of [`label_with_ckpt`] beyond the seed's arguments.
#[derive(Clone, Debug)]
pub struct CkptOptions {
    /// Sampling seed (the seed's 42).
    pub seed: u64,
    /// Where the final parquet/csv go; `None`: the checkpoint directory's parent.
    pub out_dir: Option<PathBuf>,
    /// On a fingerprint mismatch, delete the old manifest and parts and start over instead of failing.
    pub restart_on_mismatch: bool,
}

impl Default for CkptOptions {
    fn default() -> Self {
        Self { seed: DEFAULT_SEED, out_dir: None, restart_on_mismatch: false }
    }
}

/// Result of a checkpointed run.
#[derive(Clone, Debug)]
pub struct CkptRun {
    /// All labeled rows in manifest order (what the final parquet holds).
    pub labeled: DataFrame,
    /// The seed's per-label counts.
    pub summary: LabelSummary,
    /// Final parquet file.
    pub parquet_path: PathBuf,
    /// Final CSV file.
    pub csv_path: PathBuf,
    /// Parts found complete from an earlier session.
    pub parts_resumed: usize,
    /// Parts labeled in this session.
    pub parts_written: usize,
}

impl fmt::Display for CkptRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary)?;
        writeln!(f, "parts resumed: {}, parts labeled now: {}", self.parts_resumed, self.parts_written)?;
        write!(f, "wrote {} and {}", self.parquet_path.display(), self.csv_path.display())
    }
}

const K_SAMPLE: &str = "revmod.sample_fingerprint";
const K_PROMPT: &str = "revmod.prompt_fingerprint";
const K_LABELER: &str = "revmod.labeler";
const K_PART_SIZE: &str = "revmod.part_size";
const K_RUN: &str = "revmod.run_fingerprint";

/// Name of part `k` (`part_0000.parquet`).
pub fn part_name(k: usize) -> String {
    format!("part_{k:04}.parquet")
}

/// Cell 8: labels a seeded sample of `n` rows of `df` in parts of `part_size`, checkpointed in `ckpt_dir`,
/// resuming from whatever complete parts are there; writes `labeled_preview_<rows>.parquet` and `.csv`.
pub fn label_with_ckpt(
    df: &DataFrame,
    n: usize,
    part_size: usize,
    ckpt_dir: impl AsRef<Path>,
    labeler: &mut Labeler,
    opts: &CkptOptions,
) -> Result<CkptRun> {
    let dir = ckpt_dir.as_ref();
    ensure!(part_size > 0, "part_size must be at least 1");
    let (all, warnings) = reviews_from_df(df)?;
    for w in &warnings {
        eprintln!("label_with_ckpt: {w}");
    }
    let idx = sample_indices(all.len(), n, opts.seed);
    let orig: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
    let reviews: Vec<ReviewInput> = idx.iter().map(|&i| all[i].clone()).collect();
    drop(all);

    fs::create_dir_all(dir).with_context(|| format!("creating checkpoint directory {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!("another labeling run holds {} (lock {}); wait for it or use another directory", dir.display(), lock_path.display());
    }
    remove_temporaries(dir)?;

    let meta = vec![
        (K_SAMPLE.to_string(), sample_fingerprint(&orig, &reviews)),
        (K_PROMPT.to_string(), labeler.prompt.fingerprint()),
        (K_LABELER.to_string(), labeler.labeler_id()),
        (K_PART_SIZE.to_string(), part_size.to_string()),
    ];
    let run_fp = {
        let mut h = Fnv::new();
        for (k, v) in &meta {
            h.write_str(k);
            h.write_str(v);
        }
        h.hex()
    };
    let manifest_path = dir.join("manifest.parquet");
    if manifest_path.exists() {
        if let Err(e) = check_manifest(&manifest_path, &meta) {
            if !opts.restart_on_mismatch {
                return Err(e.context(format!(
                    "checkpoint {} belongs to another run; parts are never mixed: use another directory, delete it, \
                     or restart (CkptOptions::restart_on_mismatch / --restart)",
                    dir.display()
                )));
            }
            eprintln!("label_with_ckpt: {e:#}; restarting: removing old manifest and parts in {}", dir.display());
            remove_checkpoint(dir)?;
        }
    } else if let Some(p) = existing_parts(dir)?.first() {
        bail!("{} holds parts ({}) but no manifest.parquet: not a checkpoint this run can trust; remove them or use another directory", dir.display(), p.display());
    }
    if !manifest_path.exists() {
        let m = manifest_frame(&orig, &reviews)?;
        write_parquet_with_metadata(&m, &manifest_path, meta.clone())?;
    }

    let n_parts = reviews.len().div_ceil(part_size);
    let mut done = vec![false; n_parts];
    for (k, d) in done.iter_mut().enumerate() {
        let path = dir.join(part_name(k));
        if path.exists() {
            let (lo, hi) = (k * part_size, ((k + 1) * part_size).min(reviews.len()));
            verify_part(&path, &run_fp, &orig[lo..hi])?;
            *d = true;
        }
    }
    for p in existing_parts(dir)? {
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        let k: usize = name.trim_start_matches("part_").trim_end_matches(".parquet").parse().unwrap_or(usize::MAX);
        ensure!(k < n_parts, "{} is beyond this run's {n_parts} parts: the checkpoint is inconsistent", p.display());
    }
    let parts_resumed = done.iter().filter(|d| **d).count();
    let resumed_rows: usize = (0..n_parts).filter(|&k| done[k]).map(|k| part_len(k, part_size, reviews.len())).sum();
    let mut progress = Progress::new("label_with_ckpt", reviews.len(), resumed_rows);
    let backend = labeler.backend.backend_name();
    let model = labeler.backend.model_id();
    let step = labeler.backend.preferred_batch().max(1);
    let mut parts_written = 0;
    for k in 0..n_parts {
        if done[k] {
            continue;
        }
        let (lo, hi) = (k * part_size, ((k + 1) * part_size).min(reviews.len()));
        let mut records = Vec::with_capacity(hi - lo);
        for chunk in reviews[lo..hi].chunks(step) {
            records.extend(labeler.label(chunk));
            progress.advance(chunk.len());
        }
        let all_failed = records.iter().all(|r| r.failed);
        if all_failed && !records.is_empty() {
            bail!(
                "every review of part {k} failed in the backend (first: {}); stopping so the part can be retried: \
                 {parts_written} new parts are saved in {}",
                records[0].raw,
                dir.display()
            );
        }
        let part = records_to_frame(&orig[lo..hi], &reviews[lo..hi], &records, &backend, &model)?;
        write_parquet_with_metadata(&part, &dir.join(part_name(k)), vec![(K_RUN.to_string(), run_fp.clone())])?;
        parts_written += 1;
    }
    progress.finish();

    let mut labeled: Option<DataFrame> = None;
    for k in 0..n_parts {
        let path = dir.join(part_name(k));
        let part = read_parquet(&path)?.0;
        match &mut labeled {
            None => labeled = Some(part),
            Some(acc) => {
                acc.vstack_mut_owned(part).with_context(|| format!("appending {}", path.display()))?;
            }
        }
    }
    let mut labeled = match labeled {
        Some(df) => df,
        None => records_to_frame(&[], &[], &[], &backend, &model)?,
    };
    labeled.rechunk_mut_par();
    let out_dir = match &opts.out_dir {
        Some(d) => d.clone(),
        None => dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
    };
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let rows = labeled.height();
    let parquet_path = out_dir.join(format!("labeled_preview_{rows}.parquet"));
    let csv_path = out_dir.join(format!("labeled_preview_{rows}.csv"));
    write_parquet_with_metadata(&labeled, &parquet_path, vec![(K_RUN.to_string(), run_fp)])?;
    write_csv(&labeled, &csv_path)?;
    let summary = LabelSummary::from_frame(&labeled)?;
    drop(lock);
    Ok(CkptRun { labeled, summary, parquet_path, csv_path, parts_resumed, parts_written })
}

fn part_len(k: usize, part_size: usize, total: usize) -> usize {
    ((k + 1) * part_size).min(total) - k * part_size
}

/// Hash of the sample: every row's orig_index, text, business name and category, in order.
pub fn sample_fingerprint(orig: &[u64], reviews: &[ReviewInput]) -> String {
    let mut h = Fnv::new();
    h.write(&(orig.len() as u64).to_le_bytes());
    for (i, r) in orig.iter().zip(reviews) {
        h.write(&i.to_le_bytes());
        h.write_str(&r.text);
        h.write_str(&r.business_name);
        h.write_str(&r.category);
    }
    h.hex()
}

fn check_manifest(path: &Path, want: &[(String, String)]) -> Result<()> {
    let (_, kv) = read_parquet(path)?;
    for (key, value) in want {
        let stored = kv.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let what = match key.as_str() {
            K_SAMPLE => "sample (data, n or seed)",
            K_PROMPT => "prompt",
            K_LABELER => "labeler (backend, model or settings)",
            _ => "part size",
        };
        match stored {
            Some(s) if s == value => {}
            Some(s) => bail!("{} records a different {what}: stored {s:?}, this run {value:?}", path.display()),
            None => bail!("{} has no {key} fingerprint: not written by this labeler", path.display()),
        }
    }
    Ok(())
}

fn verify_part(path: &Path, run_fp: &str, orig: &[u64]) -> Result<()> {
    let (df, kv) = read_parquet(path)?;
    let stored = kv.iter().find(|(k, _)| k == K_RUN).map(|(_, v)| v.as_str());
    ensure!(stored == Some(run_fp), "{} was written by another run (fingerprint {stored:?}, this run {run_fp:?})", path.display());
    ensure!(df.height() == orig.len(), "{} has {} rows, expected {}", path.display(), df.height(), orig.len());
    let got: Vec<Option<u64>> = df.column("orig_index")?.u64()?.iter().collect();
    ensure!(got.iter().copied().eq(orig.iter().map(|&i| Some(i))), "{} holds other rows than its slice of the manifest", path.display());
    Ok(())
}

/// Reads a parquet file and its key/value metadata, naming the file in errors.
pub fn read_parquet(path: &Path) -> Result<(DataFrame, Vec<(String, String)>)> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = ParquetReader::new(f);
    let kv = reader
        .get_metadata()
        .with_context(|| format!("reading parquet metadata of {}", path.display()))?
        .key_value_metadata
        .as_ref()
        .map(|v| v.iter().map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default())).collect())
        .unwrap_or_default();
    let df = reader.finish().with_context(|| format!("reading {}", path.display()))?;
    Ok((df, kv))
}

fn remove_temporaries(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if name.starts_with('.') && name.ends_with(".tmp") {
            fs::remove_file(&p).with_context(|| format!("removing stale temporary {}", p.display()))?;
        }
    }
    Ok(())
}

fn existing_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        if name.starts_with("part_") && name.ends_with(".parquet") {
            parts.push(p);
        }
    }
    parts.sort();
    Ok(parts)
}

fn remove_checkpoint(dir: &Path) -> Result<()> {
    for p in existing_parts(dir)? {
        fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    let m = dir.join("manifest.parquet");
    fs::remove_file(&m).with_context(|| format!("removing {}", m.display()))?;
    Ok(())
}
