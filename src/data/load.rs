//! Step 3 (seed cell 3): `load_df` — reviews joined to their businesses, with a report of everything
//! that was skipped or dropped.
//!
//! Semantics of the seed's pandas code: meta rows deduplicated on `gmap_id` (first kept); reviews
//! left-joined to meta on `gmap_id` in review order; reviews deduplicated on
//! `(user_id, gmap_id, text, time, rating)` keeping the first, null equal to null; the two `name`
//! columns renamed `reviewer_name` and `business_name`. Unlike the seed, a malformed line is skipped
//! and reported with its file and line number, never fatal and never silent. One deliberate difference
//! from pandas' `merge`: a review whose `gmap_id` is null joins no business (pandas would match it to a
//! meta row with a null id); such reviews are counted as without business.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{DataFrame, IdxCa, IdxSize, NewChunkedArray};
use rayon::prelude::*;

use super::jsonl::{parse_batch, BadLine, LineReader};
use super::records::{FieldIssues, MetaCols, ReviewCols};
use crate::show::{escape_html, DataFrameShow, Html, Many, Show};

/// Lines parsed per batch (bounds memory; each batch is parsed in parallel).
pub const BATCH_LINES: usize = 64 * 1024;

/// How many problem lines a report lists one by one (counts are always exact).
pub const MAX_LISTED: usize = 1000;

/// What `load_df` read, skipped and dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Review file read.
    pub reviews_file: PathBuf,
    /// Meta file read (`None` when scoring reviews without business data).
    pub meta_file: Option<PathBuf>,
    /// Non-blank lines in the review file.
    pub review_lines: usize,
    /// Review lines skipped because they are not JSON objects (count).
    pub review_bad: usize,
    /// Non-blank lines in the meta file.
    pub meta_lines: usize,
    /// Meta lines skipped because they are not JSON objects (count).
    pub meta_bad: usize,
    /// Skipped lines, file and line number and reason (the first [`MAX_LISTED`]).
    pub bad_lines: Vec<BadLine>,
    /// Fields with an unexpected type, set to null (count; the row is kept).
    pub field_issues: usize,
    /// Those fields, file and line (the first [`MAX_LISTED`]).
    pub field_issue_lines: Vec<BadLine>,
    /// Meta rows dropped as repeated `gmap_id`.
    pub meta_duplicates: usize,
    /// Reviews dropped as duplicates of an earlier review.
    pub review_duplicates: usize,
    /// Reviews kept whose `gmap_id` matches no business (their business columns are null).
    pub without_business: usize,
    /// Rows in the returned DataFrame.
    pub rows: usize,
}

impl LoadReport {
    fn note_bad(&mut self, bad: Vec<BadLine>) {
        for b in bad {
            if self.bad_lines.len() < MAX_LISTED {
                self.bad_lines.push(b);
            }
        }
    }

    fn note_fields(&mut self, issues: Vec<BadLine>) {
        self.field_issues += issues.len();
        for b in issues {
            if self.field_issue_lines.len() < MAX_LISTED {
                self.field_issue_lines.push(b);
            }
        }
    }

    /// The counts as (name, value) rows.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("review lines", self.review_lines),
            ("malformed review lines (skipped)", self.review_bad),
            ("meta lines", self.meta_lines),
            ("malformed meta lines (skipped)", self.meta_bad),
            ("fields with a wrong type (set to null)", self.field_issues),
            ("duplicate businesses dropped", self.meta_duplicates),
            ("duplicate reviews dropped", self.review_duplicates),
            ("reviews without a matching business", self.without_business),
            ("rows", self.rows),
        ]
    }

    /// The report as an HTML table plus the listed problem lines.
    pub fn to_html(&self) -> Html {
        let mut s = String::from("<table class=\"revmod-report\"><thead><tr><th>load report</th><th>count</th></tr></thead><tbody>");
        for (k, v) in self.counts() {
            s.push_str(&format!("<tr><td>{}</td><td>{v}</td></tr>", escape_html(k)));
        }
        s.push_str("</tbody></table>");
        for (title, lines) in [("skipped lines", &self.bad_lines), ("fields set to null", &self.field_issue_lines)] {
            if !lines.is_empty() {
                s.push_str(&format!("<details open><summary>{title}</summary><pre>"));
                for b in lines.iter().take(20) {
                    s.push_str(&escape_html(&b.to_string()));
                    s.push('\n');
                }
                if lines.len() > 20 {
                    s.push_str(&format!("... {} more listed in the report value\n", lines.len() - 20));
                }
                s.push_str("</pre></details>");
            }
        }
        Html(s)
    }

    /// Shows the report in an evcxr cell.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "reviews: {}", self.reviews_file.display())?;
        if let Some(m) = &self.meta_file {
            writeln!(f, "meta:    {}", m.display())?;
        }
        for (k, v) in self.counts() {
            writeln!(f, "{k:<42} {v}")?;
        }
        for b in &self.bad_lines {
            writeln!(f, "skipped {b}")?;
        }
        if self.review_bad + self.meta_bad > self.bad_lines.len() {
            writeln!(f, "... and {} more skipped lines", self.review_bad + self.meta_bad - self.bad_lines.len())?;
        }
        for b in self.field_issue_lines.iter().take(20) {
            writeln!(f, "field   {b}")?;
        }
        if self.field_issues > 20 {
            writeln!(f, "... and {} more field issues", self.field_issues - 20)?;
        }
        Ok(())
    }
}

impl serde::Serialize for LoadReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let lines = |v: &Vec<BadLine>| -> Vec<serde_json::Value> {
            v.iter()
                .map(|b| serde_json::json!({"file": b.file.display().to_string(), "line": b.line, "error": b.error}))
                .collect()
        };
        serde_json::json!({
            "reviews_file": self.reviews_file.display().to_string(),
            "meta_file": self.meta_file.as_ref().map(|p| p.display().to_string()),
            "review_lines": self.review_lines,
            "review_bad": self.review_bad,
            "meta_lines": self.meta_lines,
            "meta_bad": self.meta_bad,
            "field_issues": self.field_issues,
            "meta_duplicates": self.meta_duplicates,
            "review_duplicates": self.review_duplicates,
            "without_business": self.without_business,
            "rows": self.rows,
            "bad_lines": lines(&self.bad_lines),
            "field_issue_lines": lines(&self.field_issue_lines),
        })
        .serialize(s)
    }
}

/// Business metadata deduplicated on `gmap_id`, ready to be joined onto reviews.
pub struct MetaTable {
    /// Business columns (no gmap_id), one row per distinct gmap_id.
    pub df: DataFrame,
    index: HashMap<String, IdxSize>,
}

impl MetaTable {
    /// Reads a meta file, deduplicating on gmap_id (first kept); counts go into `report`.
    pub fn read(path: &Path, report: &mut LoadReport) -> Result<MetaTable> {
        report.meta_file = Some(path.to_path_buf());
        let mut reader = LineReader::open(path)?;
        let mut cols = MetaCols::default();
        let mut index: HashMap<String, IdxSize> = HashMap::new();
        let mut null_id_seen = false;
        while let Some(batch) = reader.next_batch(BATCH_LINES)? {
            report.meta_lines += batch.len();
            let (good, bad) = parse_batch(path, &batch);
            report.meta_bad += bad.len();
            report.note_bad(bad);
            let mut fi = FieldIssues { file: path, issues: Vec::new() };
            for (line, obj) in &good {
                let id = obj.get("gmap_id").and_then(|v| v.as_str());
                match id {
                    Some(id) if index.contains_key(id) => {
                        report.meta_duplicates += 1;
                        continue;
                    }
                    Some(id) => {
                        index.insert(id.to_string(), cols.gmap_id.len() as IdxSize);
                    }
                    None if null_id_seen => {
                        report.meta_duplicates += 1;
                        continue;
                    }
                    None => null_id_seen = true,
                }
                cols.push(&mut fi, *line, obj);
            }
            report.note_fields(fi.issues);
        }
        let n = cols.gmap_id.len();
        let df = DataFrame::new(n, cols.finish()?).with_context(|| format!("building meta columns of {}", path.display()))?;
        Ok(MetaTable { df, index })
    }

    /// Row of the business with this id.
    pub fn row_of(&self, gmap_id: &str) -> Option<IdxSize> {
        self.index.get(gmap_id).copied()
    }

    /// Number of distinct businesses.
    pub fn len(&self) -> usize {
        self.df.height()
    }

    /// True when no business was read.
    pub fn is_empty(&self) -> bool {
        self.df.height() == 0
    }
}

/// Reviews read batch by batch, deduplicated and joined to business data: bounded memory for files
/// larger than memory (streaming scoring), and the engine of [`load_df`].
pub struct ReviewStream {
    reader: LineReader,
    meta: Option<MetaTable>,
    seen: HashSet<u128>,
    report: LoadReport,
    batch_lines: usize,
}

impl ReviewStream {
    /// Opens the review file and reads the whole meta file (if given; meta is small).
    pub fn open(reviews: impl AsRef<Path>, meta: Option<&Path>) -> Result<ReviewStream> {
        let reviews = reviews.as_ref();
        let mut report = LoadReport { reviews_file: reviews.to_path_buf(), ..Default::default() };
        let reader = LineReader::open(reviews)?;
        let meta = match meta {
            Some(m) => Some(MetaTable::read(m, &mut report)?),
            None => None,
        };
        Ok(ReviewStream { reader, meta, seen: HashSet::new(), report, batch_lines: BATCH_LINES })
    }

    /// Sets how many lines each batch reads.
    pub fn with_batch_lines(mut self, n: usize) -> Self {
        self.batch_lines = n.max(1);
        self
    }

    /// The next batch as a DataFrame (review columns, then business columns when meta was given);
    /// `None` at the end. Batches may be empty when all their lines were skipped or duplicates.
    pub fn next_df(&mut self) -> Result<Option<DataFrame>> {
        let Some(batch) = self.reader.next_batch(self.batch_lines)? else {
            return Ok(None);
        };
        let path = self.reader.path().to_path_buf();
        self.report.review_lines += batch.len();
        // Lines -> typed columns and dedup keys in parallel chunks; then, in file order, the first of
        // each key is kept (so the result does not depend on the number of threads).
        let chunk = (batch.len() / (rayon::current_num_threads() * 4)).max(1024);
        let parts: Vec<(ReviewCols, Vec<BadLine>, Vec<u128>, Vec<BadLine>)> = batch
            .par_chunks(chunk)
            .map(|ch| {
                let mut fi = FieldIssues { file: &path, issues: Vec::new() };
                let mut cols = ReviewCols::default();
                let mut keys = Vec::with_capacity(ch.len());
                let mut bad = Vec::new();
                for (line, raw) in ch {
                    let i = cols.len();
                    match cols.push_line(&mut fi, *line, raw) {
                        Ok(()) => keys.push(dedup_key(&cols, i)),
                        Err(b) => bad.push(b),
                    }
                }
                (cols, fi.issues, keys, bad)
            })
            .collect();
        drop(batch);
        let mut cols = ReviewCols::default();
        for (part, issues, keys, bad) in parts {
            self.report.review_bad += bad.len();
            self.report.note_bad(bad);
            self.report.note_fields(issues);
            let keep: Vec<bool> = keys.iter().map(|k| self.seen.insert(*k)).collect();
            self.report.review_duplicates += keep.iter().filter(|k| !**k).count();
            cols.append_kept(part, &keep);
        }
        let n = cols.len();
        let mut idx: Vec<Option<IdxSize>> = Vec::new();
        if let Some(meta) = &self.meta {
            idx = cols.gmap_id.iter().map(|g| g.as_deref().and_then(|g| meta.row_of(g))).collect();
        }
        let mut df = DataFrame::new(n, cols.finish()?).context("building review columns")?;
        if let Some(meta) = &self.meta {
            self.report.without_business += idx.iter().filter(|i| i.is_none()).count();
            let idx = IdxCa::from_iter_options("idx".into(), idx.into_iter());
            let business = meta.df.take(&idx).context("joining businesses")?;
            df = df.hstack(business.columns()).context("joining businesses")?;
        }
        self.report.rows += df.height();
        Ok(Some(df))
    }

    /// A frame with no rows and this stream's columns (for empty inputs).
    pub fn empty_df(&self) -> Result<DataFrame> {
        let mut df = DataFrame::new(0, ReviewCols::default().finish()?)?;
        if let Some(meta) = &self.meta {
            df = df.hstack(meta.df.clear().columns())?;
        }
        Ok(df)
    }

    /// Counts so far (complete once `next_df` returned `None`).
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Ends the stream and returns its report.
    pub fn into_report(self) -> LoadReport {
        self.report
    }
}

impl ReviewCols {
    /// Moves the rows of `other` whose `keep` flag is set to the end of `self`, in order.
    fn append_kept(&mut self, other: ReviewCols, keep: &[bool]) {
        fn mv<T>(dst: &mut Vec<T>, src: Vec<T>, keep: &[bool]) {
            dst.extend(src.into_iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| v));
        }
        mv(&mut self.user_id, other.user_id, keep);
        mv(&mut self.name, other.name, keep);
        mv(&mut self.time, other.time, keep);
        mv(&mut self.rating, other.rating, keep);
        mv(&mut self.text, other.text, keep);
        mv(&mut self.pics, other.pics, keep);
        mv(&mut self.resp_time, other.resp_time, keep);
        mv(&mut self.resp_text, other.resp_text, keep);
        mv(&mut self.resp_valid, other.resp_valid, keep);
        mv(&mut self.gmap_id, other.gmap_id, keep);
        mv(&mut self.extra, other.extra, keep);
    }
}

/// 128-bit key of (user_id, gmap_id, text, time, rating) for row `i`: two runs of foldhash's quality hasher
/// with independent fixed seeds (fast on long review texts, unlike SipHash, and the same on every run), so
/// distinct reviews collide with probability ~2^-128 while memory stays 16 bytes per review.
fn dedup_key(c: &ReviewCols, i: usize) -> u128 {
    use std::hash::BuildHasher;
    let h = |seed: u64| foldhash::quality::FixedState::with_seed(seed).hash_one((&c.user_id[i], &c.gmap_id[i], &c.text[i], c.time[i], c.rating[i]));
    ((h(0x5EED_0001) as u128) << 64) | h(0x5EED_0002) as u128
}

/// A loaded data set: the joined DataFrame and its load report. Displays as the report plus a preview.
pub struct Loaded {
    /// Reviews joined to businesses.
    pub df: DataFrame,
    /// What was read, skipped and dropped.
    pub report: LoadReport,
}

impl Loaded {
    /// Report and first rows, for a notebook cell.
    pub fn display(&self) -> Many {
        Many::new().with(&self.report.to_html()).with(&self.df.table(5))
    }

    /// Shows report and preview in an evcxr cell.
    pub fn evcxr_display(&self) {
        self.display().evcxr_display();
    }
}

impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.display().text())
    }
}

/// Step 3: reads a Google Local review file and its meta file (JSON lines, plain or gzip) into one
/// DataFrame with the seed's semantics (see the module doc), skipping and reporting malformed lines.
///
/// Errors only when a file cannot be opened or read; bad lines never stop the load.
///
/// ```
/// use revmod::prelude::*;
/// let dir = std::env::temp_dir().join(format!("revmod-doc-load-{}", std::process::id()));
/// let data = write_sample(&dir, &SampleParams { reviews: 500, ..Default::default() })?; // 2 malformed lines
/// let loaded: Loaded = load_df(&data.review_path, &data.meta_path)?;
/// assert!(loaded.df.height() > 400 && loaded.df.column("text").is_ok());
/// println!("{}", loaded.report); // lines read, skipped (with file and line), duplicates dropped
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn load_df(reviews: impl AsRef<Path>, meta: impl AsRef<Path>) -> Result<Loaded> {
    let reviews = reviews.as_ref();
    let meta = meta.as_ref();
    let mut stream = ReviewStream::open(reviews, Some(meta))?;
    let mut parts: Vec<DataFrame> = Vec::new();
    while let Some(df) = stream.next_df()? {
        parts.push(df);
    }
    if parts.is_empty() {
        parts.push(stream.empty_df()?);
    }
    let report = stream.into_report();
    let mut it = parts.into_iter();
    let mut df = it.next().unwrap_or_default();
    for p in it {
        df.vstack_mut_owned(p).with_context(|| format!("stacking batches of {}", reviews.display()))?;
    }
    // One chunk per batch is kept as it is: polars reads chunked columns as well, and rechunking copied
    // every column once more (+0.5 GiB peak and ~10% of the time on 1M reviews, scripts/bench-load).
    Ok(Loaded { df, report })
}
