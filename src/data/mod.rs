//! Step 3: data in. Google Local 2021 JSON-lines files -> one polars DataFrame with a load report.
//!
//! - [`jsonl`]: numbered, batched line reading (plain or gzip) and parallel parsing; bad lines are
//!   reported with file and line, never fatal.
//! - [`records`]: JSON objects -> typed columns (nested fields stay nested).
//! - [`load`]: [`load_df`] (the seed's cell 3 semantics) and [`ReviewStream`] for bounded-memory reading.
//! - [`sample`]: a deterministic generator of realistic review/meta files for the default run and
//!   benchmarks.

pub mod jsonl;
pub mod load;
pub mod records;
pub mod sample;

pub use jsonl::{BadLine, LineReader};
pub use load::{load_df, LoadReport, Loaded, MetaTable, ReviewStream};
pub use records::{META_COLUMNS, REVIEW_COLUMNS};
pub use sample::{write_sample, SampleParams, SampleSummary};
