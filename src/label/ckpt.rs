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

use crate::params::ParamError;
use crate::progress::{Progress, Unit};
use crate::output::{try_lock, write_csv, write_parquet_with_metadata};
use super::frame::{manifest_frame, records_to_frame, reviews_from_df, sample_indices, LabelSummary, DEFAULT_SEED};
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

impl CkptOptions {
    /// Checks the run's settings before any work ([`crate::params`]' one policy): `part_size` at least 1
    /// (a part of 0 reviews could never finish the sample).
    pub fn check(&self, part_size: usize) -> Result<(), ParamError> {
        crate::params::nonzero("part_size", part_size)
    }
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
    /// What the caller should show: a missing business column filled with "", a restart that removed an
    /// old checkpoint, a backend's notices.
    pub warnings: Vec<String>,
}

impl fmt::Display for CkptRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        writeln!(f, "{}", self.summary)?;
        writeln!(f, "parts resumed: {}, parts labeled now: {}", self.parts_resumed, self.parts_written)?;
        write!(f, "wrote {} and {}", self.parquet_path.display(), self.csv_path.display())
    }
}

/// A recorded setting of a checkpoint: what its manifest fingerprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CkptField {
    /// The sample: data, `n` or seed.
    Sample,
    /// The moderator prompt.
    Prompt,
    /// The labeler: backend, model or settings.
    Labeler,
    /// The part size.
    PartSize,
}

impl CkptField {
    /// The manifest's metadata key of this setting.
    fn key(self) -> &'static str {
        match self {
            CkptField::Sample => K_SAMPLE,
            CkptField::Prompt => K_PROMPT,
            CkptField::Labeler => K_LABELER,
            CkptField::PartSize => K_PART_SIZE,
        }
    }
}

impl fmt::Display for CkptField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CkptField::Sample => "sample (data, n or seed)",
            CkptField::Prompt => "prompt",
            CkptField::Labeler => "labeler (backend, model or settings)",
            CkptField::PartSize => "part size",
        })
    }
}

/// Why a checkpoint directory cannot be resumed by this run: a caller (the CLI's `--restart` hint, a
/// notebook, a test) tells the cases apart by variant. Each names the file or directory concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CkptError {
    /// The manifest records another sample, prompt, labeler or part size than this run's.
    Mismatch {
        /// The manifest.
        file: PathBuf,
        /// The setting that differs.
        field: CkptField,
        /// Its fingerprint in the manifest.
        stored: String,
        /// Its fingerprint in this run.
        this_run: String,
    },
    /// The manifest lacks a setting's fingerprint: not written by this labeler.
    Unrecorded {
        /// The manifest.
        file: PathBuf,
        /// The missing setting.
        field: CkptField,
    },
    /// A part was written by another run (its run fingerprint is not this run's).
    PartOfAnotherRun {
        /// The part.
        file: PathBuf,
        /// Its run fingerprint (`None`: it has none).
        stored: Option<String>,
        /// This run's.
        this_run: String,
    },
    /// A part of this run holds other rows than its slice of the manifest.
    PartRows {
        /// The part.
        file: PathBuf,
        /// What differs (row count or rows).
        why: String,
    },
    /// The directory holds parts but no manifest: nothing says which run wrote them.
    PartsWithoutManifest {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The first part found.
        part: PathBuf,
    },
    /// A part numbered beyond this run's parts.
    PartBeyond {
        /// The part.
        file: PathBuf,
        /// How many parts this run has.
        parts: usize,
    },
    /// Another labeling run holds the directory's lock.
    Locked {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
}

impl fmt::Display for CkptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CkptError::Mismatch { file, field, stored, this_run } => {
                write!(f, "{} records a different {field}: stored {stored:?}, this run {this_run:?}", file.display())
            }
            CkptError::Unrecorded { file, field } => {
                write!(f, "{} has no {} fingerprint: not written by this labeler", file.display(), field.key())
            }
            CkptError::PartOfAnotherRun { file, stored, this_run } => {
                write!(f, "{} was written by another run (fingerprint {stored:?}, this run {this_run:?})", file.display())
            }
            CkptError::PartRows { file, why } => write!(f, "{} {why}", file.display()),
            CkptError::PartsWithoutManifest { dir, part } => write!(
                f,
                "{} holds parts ({}) but no manifest.parquet: not a checkpoint this run can trust; remove them or use another directory",
                dir.display(),
                part.display()
            ),
            CkptError::PartBeyond { file, parts } => {
                write!(f, "{} is beyond this run's {parts} parts: the checkpoint is inconsistent", file.display())
            }
            CkptError::Locked { dir, lock } => {
                write!(f, "another labeling run holds {} (lock {}); wait for it or use another directory", dir.display(), lock.display())
            }
        }
    }
}

impl std::error::Error for CkptError {}

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
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-ckpt-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// let ckpt_dir = dir.join("labels_ckpt");
/// let run: CkptRun = label_with_ckpt(&df, 100, 40, &ckpt_dir, &mut Labeler::rules(), &CkptOptions::default())?;
/// assert_eq!((run.labeled.height(), run.parts_written), (100, 3)); // parts of 40, 40 and 20 reviews
/// println!("{run}"); // positives per label, warnings, the files written
/// // a second call resumes: every part is already there, nothing is labeled again
/// let again = label_with_ckpt(&df, 100, 40, &ckpt_dir, &mut Labeler::rules(), &CkptOptions::default())?;
/// assert_eq!((again.parts_resumed, again.parts_written), (3, 0));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn label_with_ckpt(
    df: &DataFrame,
    n: usize,
    part_size: usize,
    ckpt_dir: impl AsRef<Path>,
    labeler: &mut Labeler,
    opts: &CkptOptions,
) -> Result<CkptRun> {
    opts.check(part_size)?;
    let dir = ckpt_dir.as_ref();
    let (all, mut warnings) = reviews_from_df(df)?;
    let idx = sample_indices(all.len(), n, opts.seed);
    let orig: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
    let reviews: Vec<ReviewInput> = idx.iter().map(|&i| all[i].clone()).collect();
    drop(all);

    fs::create_dir_all(dir).with_context(|| format!("creating checkpoint directory {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let Some(lock) = try_lock(&lock_path)? else {
        bail!(CkptError::Locked { dir: dir.to_path_buf(), lock: lock_path });
    };
    remove_temporaries(dir)?;

    let meta = vec![
        (CkptField::Sample, sample_fingerprint(&orig, &reviews)),
        (CkptField::Prompt, labeler.prompt.fingerprint()),
        (CkptField::Labeler, labeler.labeler_id()),
        (CkptField::PartSize, part_size.to_string()),
    ];
    let meta_kv: Vec<(String, String)> = meta.iter().map(|(f, v)| (f.key().to_string(), v.clone())).collect();
    let run_fp = {
        let mut h = Fnv::new();
        for (k, v) in &meta_kv {
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
            warnings.push(format!("{e:#}; restarting: removed the old manifest and parts in {}", dir.display()));
            remove_checkpoint(dir)?;
        }
    } else if let Some(p) = existing_parts(dir)?.first() {
        bail!(CkptError::PartsWithoutManifest { dir: dir.to_path_buf(), part: p.clone() });
    }
    if !manifest_path.exists() {
        let m = manifest_frame(&orig, &reviews)?;
        write_parquet_with_metadata(&m, &manifest_path, meta_kv)?;
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
        ensure!(k < n_parts, CkptError::PartBeyond { file: p.clone(), parts: n_parts });
    }
    let parts_resumed = done.iter().filter(|d| **d).count();
    let resumed_rows: usize = (0..n_parts).filter(|&k| done[k]).map(|k| part_len(k, part_size, reviews.len())).sum();
    let mut progress = Progress::new("label_with_ckpt", Unit::Reviews, Some(reviews.len() as u64), resumed_rows as u64);
    let backend = labeler.backend.backend_name();
    let model = labeler.backend.model_id();
    let step = labeler.backend.preferred_batch().max(1);
    let mut parts_written = 0;
    // Kernel > Interrupt (SIGINT) stops between reviews; finished parts stay saved.
    let _interrupt = crate::interrupt::watch();
    for k in 0..n_parts {
        if done[k] {
            continue;
        }
        let (lo, hi) = (k * part_size, ((k + 1) * part_size).min(reviews.len()));
        let mut records = Vec::with_capacity(hi - lo);
        for chunk in reviews[lo..hi].chunks(step) {
            if crate::interrupt::requested() {
                progress.finish();
                let saved = parts_resumed + parts_written;
                return Err(anyhow::Error::new(crate::interrupt::Interrupted {
                    detail: format!(
                        "label_with_ckpt: {saved} of {n_parts} parts are saved in {}; run the cell again to resume",
                        dir.display()
                    ),
                }));
            }
            records.extend(labeler.label(chunk));
            progress.advance(chunk.len() as u64);
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
    warnings.extend(labeler.backend.take_warnings());

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
    Ok(CkptRun { labeled, summary, parquet_path, csv_path, parts_resumed, parts_written, warnings })
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

fn check_manifest(path: &Path, want: &[(CkptField, String)]) -> Result<()> {
    let (_, kv) = read_parquet(path)?;
    for (field, value) in want {
        let stored = kv.iter().find(|(k, _)| k == field.key()).map(|(_, v)| v.as_str());
        let file = path.to_path_buf();
        match stored {
            Some(s) if s == value => {}
            Some(s) => bail!(CkptError::Mismatch { file, field: *field, stored: s.to_string(), this_run: value.clone() }),
            None => bail!(CkptError::Unrecorded { file, field: *field }),
        }
    }
    Ok(())
}

fn verify_part(path: &Path, run_fp: &str, orig: &[u64]) -> Result<()> {
    let (df, kv) = read_parquet(path)?;
    let stored = kv.iter().find(|(k, _)| k == K_RUN).map(|(_, v)| v.as_str());
    let file = path.to_path_buf();
    ensure!(
        stored == Some(run_fp),
        CkptError::PartOfAnotherRun { file, stored: stored.map(str::to_string), this_run: run_fp.to_string() }
    );
    let rows = |why: String| CkptError::PartRows { file: path.to_path_buf(), why };
    ensure!(df.height() == orig.len(), rows(format!("has {} rows, expected {}", df.height(), orig.len())));
    let got: Vec<Option<u64>> = df.column("orig_index")?.u64()?.iter().collect();
    ensure!(got.iter().copied().eq(orig.iter().map(|&i| Some(i))), rows("holds other rows than its slice of the manifest".into()));
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
