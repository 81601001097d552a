//! `revmod score`: score Google Local review files larger than memory into a parquet file.
//!
//! Three stages overlap on bounded channels (at most a few batches in flight, whatever the file size):
//! a reader thread ([`ReviewStream`]: JSON lines, plain or gzip, bad lines skipped and reported,
//! duplicates dropped and counted, business columns joined from the meta file), the scorer (all cores), and
//! a writer thread appending each scored batch to the parquet file as one row group ([`ParquetSink`]).

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use anyhow::{anyhow, Context, Result};
use polars::prelude::DataFrame;

use super::{score_stream, ScoreParams, ScoreSummary};
use crate::data::load::{LoadReport, ReviewStream};
use crate::moderation::Scorer;
use crate::output::ParquetSink;

/// Where `revmod score` reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreFiles {
    /// Review JSON-lines file (plain or gzip).
    pub reviews: PathBuf,
    /// Optional business meta JSON-lines file (joined by gmap_id).
    pub meta: Option<PathBuf>,
    /// Output parquet file.
    pub out: PathBuf,
}

/// What [`score_files`] returns.
#[derive(Debug, Clone)]
pub struct ScoredFiles {
    /// Rows, null texts, rows flagged per label.
    pub summary: ScoreSummary,
    /// What reading the review (and meta) files found: bad lines, duplicates, missing businesses.
    pub report: LoadReport,
}

/// Scores `files.reviews` batch by batch into `files.out` (input columns + `p_<label>` + `<label>`).
/// Memory is bounded by `params.batch_rows` (plus the meta table and 16 bytes per review for dedup).
/// Returns the scoring summary and the load report (bad lines, duplicates, missing businesses).
pub fn score_files(model: &dyn Scorer, files: &ScoreFiles, params: &ScoreParams) -> Result<ScoredFiles> {
    params.check()?;
    let stream = ReviewStream::open(&files.reviews, files.meta.as_deref())?.with_batch_lines(params.batch_rows);
    if let Some(dir) = files.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let total = None; // line count unknown without reading the file twice: the bar shows rows and rows/s
    let (batch_tx, batch_rx) = sync_channel::<Result<DataFrame>>(1);
    let (out_tx, out_rx) = sync_channel::<DataFrame>(1);
    let out_path = files.out.clone();
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut stream = stream;
            loop {
                match stream.next_df() {
                    Ok(Some(df)) if df.height() == 0 => continue,
                    Ok(Some(df)) => {
                        if batch_tx.send(Ok(df)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = batch_tx.send(Err(e));
                        break;
                    }
                }
            }
            stream.into_report()
        });
        let writer = s.spawn(move || write_parquet(&out_path, out_rx));
        let summary = score_stream(model, batch_rx, params, total, |df| {
            out_tx.send(df).map_err(|_| anyhow!("the parquet writer stopped"))
        });
        drop(out_tx);
        let written = writer.join().map_err(|_| anyhow!("parquet writer panicked"))?;
        let report = reader.join().map_err(|_| anyhow!("review reader panicked"))?;
        let summary = summary?;
        anyhow::ensure!(
            summary.rows > 0,
            "no reviews to score in {} (see the load report: {:?})",
            files.reviews.display(),
            report.counts()
        );
        let rows = written.with_context(|| format!("writing {}", files.out.display()))?;
        anyhow::ensure!(rows == summary.rows, "wrote {rows} rows but scored {}", summary.rows);
        Ok(ScoredFiles { summary, report })
    })
}

/// Appends each received frame to `path` as a parquet row group ([`ParquetSink`], the project's one
/// parquet writer: pandas-readable types, the file renamed into place only when complete); returns the
/// rows written (no file is created when no batch arrives: the caller reports that as an error).
fn write_parquet(path: &Path, rx: std::sync::mpsc::Receiver<DataFrame>) -> Result<usize> {
    let mut sink: Option<ParquetSink> = None;
    for df in rx {
        let s = match &mut sink {
            Some(s) => s,
            None => sink.insert(ParquetSink::create(path, df.schema().as_ref())?),
        };
        s.write(df)?;
    }
    sink.map_or(Ok(0), ParquetSink::finish)
}

/// Plain-text report of a `revmod score` run: the load report's counts and the scoring summary.
pub fn report_text(summary: &ScoreSummary, report: &LoadReport, out: &Path) -> String {
    let mut s = String::new();
    for (k, v) in report.counts() {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s.push_str(&summary.to_string());
    s.push_str(&format!("wrote {}\n", out.display()));
    s
}
