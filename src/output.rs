//! The one writer of every table revmod saves: parquet that pandas, pyarrow, DuckDB and Python polars
//! all open, CSV that pandas reads back with the same rows and values, both written atomically.
//!
//! Every step that saves a table calls this module: the labeling checkpoints and labels
//! (`label::ckpt`), the ML-ready split (`split::MlReady::save`), the metrics and misclassification CSVs
//! (`train::Metrics::save_csv`, `eval::ErrorAnalysis::save`), the scored reviews of step 14
//! ([`write_parquet`] in the notebook) and `revmod score`'s streaming output ([`ParquetSink`]).
//! `docs/outputs.md` lists every file with its columns and types.
//!
//! **Parquet types.** polars 0.55 writes its in-memory Arrow types into the file's `ARROW:schema`
//! metadata, which pyarrow (and so pandas) restores on reading: strings as `string_view`, also inside
//! lists and structs. pyarrow 26 cannot turn a `list<string_view>` into pandas objects ("Not
//! implemented type for Arrow list to pandas: string_view"), so the review table's `pics`, `resp`,
//! `category`, `hours` and `MISC` columns broke `pandas.read_parquet`. polars 0.55's `ParquetWriter` has
//! no compatibility setting, so this module writes the `ARROW:schema` itself, from polars' oldest
//! compatibility level ([`CompatLevel::oldest`]): `String` is `large_string`, `Binary` is
//! `large_binary`, at every nesting depth; `List` stays `large_list`. The parquet column types and the
//! pages are the same either way (strings are `BYTE_ARRAY` with the `UTF8` annotation), so DuckDB, which
//! reads the parquet types only, and polars, which reads both, see the same data as before.
//!
//! **CSV.** Columns of nested types (lists, structs, fixed-size arrays) are written as JSON text, one
//! JSON value per cell (`["a","b"]`, `{"time":1,"text":"x"}`); a null cell is an empty field, as for every
//! other type. Floats that JSON cannot hold (NaN, infinities) are `null` inside JSON text. Everything else
//! is polars' CSV: a header line, comma-separated, `"`-quoted where needed (RFC 4180), UTF-8 without BOM,
//! `\n` line ends.
//!
//! **Atomic.** Each file is written to `.<name>.tmp` in the same folder, synced, then renamed over
//! `<name>`: a reader (or a crash) sees the old file or the whole new one, never half a file.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::io::parquet::write::{BatchedWriter, KeyValueMetadata};
use polars::prelude::{
    Column, CompatLevel, CsvWriter, DataFrame, DataType, ParquetWriter, Schema, SchemaExt, SerWriter, Series,
};
use serde_json::Value as Json;

/// Writes `df` to `path` as parquet that pandas, pyarrow, DuckDB and polars read (see the module docs),
/// atomically; creates the parent folder.
pub fn write_parquet(df: &DataFrame, path: impl AsRef<Path>) -> Result<()> {
    write_parquet_with_metadata(df, path, Vec::new())
}

/// [`write_parquet`] with extra file-level key/value metadata (the checkpoints' fingerprints).
pub fn write_parquet_with_metadata(df: &DataFrame, path: impl AsRef<Path>, kv: Vec<(String, String)>) -> Result<()> {
    let path = path.as_ref();
    create_parent(path)?;
    let mut df = df.clone();
    let schema = df.schema().as_ref().clone();
    write_atomic(path, |f| {
        ParquetWriter::new(f).with_key_value_metadata(Some(file_metadata(&schema, kv))).finish(&mut df)?;
        Ok(())
    })
}

/// The key/value metadata of a file: `kv` plus `ARROW:schema` at polars' oldest compatibility level.
fn file_metadata(schema: &Schema, mut kv: Vec<(String, String)>) -> KeyValueMetadata {
    let arrow = schema.to_arrow(CompatLevel::oldest());
    let key = polars_parquet::write::schema_to_metadata_key(&arrow);
    kv.retain(|(k, _)| k != &key.key);
    kv.insert(0, (key.key, key.value.unwrap_or_default()));
    KeyValueMetadata::from_static(kv)
}

/// A parquet file written batch by batch (one row group per batch), for tables larger than memory
/// (`revmod score`). Same types as [`write_parquet`]; the file appears under its name only when
/// [`finish`](Self::finish) succeeds (until then it is `.<name>.tmp`, removed on error or drop).
pub struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    schema: Schema,
    writer: Option<BatchedWriter<File>>,
    /// A second handle on the temporary file, to sync it once polars has written the footer.
    file: File,
    rows: usize,
}

impl ParquetSink {
    /// Starts `path` for frames of `schema` (later batches are cast to it, see [`write`](Self::write)).
    pub fn create(path: impl AsRef<Path>, schema: &Schema) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        create_parent(&path)?;
        let tmp = tmp_path(&path)?;
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let file = f.try_clone().with_context(|| format!("cannot reopen {}", tmp.display()))?;
        let writer = ParquetWriter::new(f)
            .with_key_value_metadata(Some(file_metadata(schema, Vec::new())))
            .batched(schema)
            .with_context(|| format!("cannot start parquet file {}", path.display()))?;
        Ok(Self { path, tmp, schema: schema.clone(), writer: Some(writer), file, rows: 0 })
    }

    /// Appends `df` as one row group, cast to the first schema (a column that was all-null in one batch
    /// may be typed differently); errors name the file and the column that does not fit.
    pub fn write(&mut self, df: DataFrame) -> Result<()> {
        let df = conform(df, &self.schema).with_context(|| format!("writing {}", self.path.display()))?;
        let w = self.writer.as_mut().expect("present until finish");
        w.write_batch(&df).with_context(|| format!("writing {}", self.tmp.display()))?;
        self.rows += df.height();
        Ok(())
    }

    /// Writes the footer, syncs and renames the file into place; returns the rows written.
    pub fn finish(mut self) -> Result<usize> {
        let w = self.writer.take().expect("present until finish");
        let finished = w.finish().with_context(|| format!("finishing {}", self.tmp.display()));
        drop(w);
        finished
            .map(|_| ())
            .and_then(|_| self.file.sync_all().with_context(|| format!("syncing {}", self.tmp.display())))
            .and_then(|_| commit(&self.tmp, &self.path))
            .inspect_err(|_| {
                let _ = fs::remove_file(&self.tmp);
            })?;
        Ok(self.rows)
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Casts a batch to `schema`, column by column; errors name the column that does not fit.
fn conform(df: DataFrame, schema: &Schema) -> Result<DataFrame> {
    if df.schema().as_ref() == schema {
        return Ok(df);
    }
    let mut cols = Vec::with_capacity(schema.len());
    for (name, dtype) in schema.iter() {
        let c = df.column(name).with_context(|| format!("batch lacks column `{name}` of the first batch"))?;
        cols.push(if c.dtype() == dtype {
            c.clone()
        } else {
            c.cast(dtype).with_context(|| format!("column `{name}`: cannot cast {} to {dtype}", c.dtype()))?
        });
    }
    Ok(DataFrame::new(df.height(), cols)?)
}

/// Writes `df` to `path` as CSV (see the module docs: nested columns as JSON text), atomically; creates
/// the parent folder.
pub fn write_csv(df: &DataFrame, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    create_parent(path)?;
    let mut flat = nested_as_json(df).with_context(|| format!("preparing {}", path.display()))?;
    write_atomic(path, |f| {
        CsvWriter::new(f).finish(&mut flat)?;
        Ok(())
    })
}

/// `df` with every nested column (list, struct, array) replaced by a string column of JSON text (null
/// stays null); other columns are untouched.
pub fn nested_as_json(df: &DataFrame) -> Result<DataFrame> {
    let mut cols: Vec<Column> = Vec::with_capacity(df.width());
    for c in df.columns() {
        if !c.dtype().is_nested() {
            cols.push(c.clone());
            continue;
        }
        let text = json_texts(c.as_materialized_series()).with_context(|| format!("column `{}` as JSON", c.name()))?;
        cols.push(Column::new(c.name().clone(), text));
    }
    Ok(DataFrame::new(df.height(), cols)?)
}

/// The JSON text of every row of `s`, `None` for a null row; struct fields keep their column order.
pub fn json_texts(s: &Series) -> Result<Vec<Option<String>>> {
    let n = s.len();
    let dt = s.dtype();
    Ok(match dt {
        DataType::List(_) => {
            let ca = s.list()?;
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(match ca.get_as_series(i) {
                    Some(inner) => {
                        let items: Vec<String> =
                            json_texts(&inner)?.into_iter().map(|t| t.unwrap_or_else(|| "null".into())).collect();
                        Some(format!("[{}]", items.join(",")))
                    }
                    None => None,
                });
            }
            out
        }
        DataType::Struct(_) => {
            let fields: Vec<(String, Vec<Option<String>>)> = s
                .struct_()?
                .fields_as_series()
                .iter()
                .map(|f| Ok((Json::String(f.name().to_string()).to_string(), json_texts(f)?)))
                .collect::<Result<_>>()?;
            let valid = s.is_not_null();
            (0..n)
                .map(|i| {
                    (valid.get(i) == Some(true)).then(|| {
                        let kv: Vec<String> =
                            fields.iter().map(|(k, v)| format!("{k}:{}", v[i].as_deref().unwrap_or("null"))).collect();
                        format!("{{{}}}", kv.join(","))
                    })
                })
                .collect()
        }
        _ if dt.is_nested() => {
            json_texts(&s.cast(&DataType::List(Box::new(dt.inner_dtype().cloned().unwrap_or(DataType::Null))))?)?
        }
        _ => json_values(s)?.into_iter().map(|v| (!v.is_null()).then(|| v.to_string())).collect(),
    })
}

/// The JSON value of every row of `s` (nulls as `Json::Null`).
pub fn json_values(s: &Series) -> Result<Vec<Json>> {
    let n = s.len();
    let dt = s.dtype();
    let out: Vec<Json> = match dt {
        DataType::Null => vec![Json::Null; n],
        DataType::Boolean => s.bool()?.iter().map(|v| v.map_or(Json::Null, Json::Bool)).collect(),
        DataType::String => s.str()?.iter().map(|v| v.map_or(Json::Null, |x| Json::String(x.to_string()))).collect(),
        DataType::Float32 | DataType::Float64 => s
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.and_then(serde_json::Number::from_f64).map_or(Json::Null, Json::Number))
            .collect(),
        _ if dt.is_unsigned_integer() => {
            s.cast(&DataType::UInt64)?.u64()?.iter().map(|v| v.map_or(Json::Null, Json::from)).collect()
        }
        _ if dt.is_signed_integer() => {
            s.cast(&DataType::Int64)?.i64()?.iter().map(|v| v.map_or(Json::Null, Json::from)).collect()
        }
        DataType::List(_) => {
            let ca = s.list()?;
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(match ca.get_as_series(i) {
                    Some(inner) => Json::Array(json_values(&inner)?),
                    None => Json::Null,
                });
            }
            out
        }
        DataType::Struct(_) => {
            let ca = s.struct_()?;
            let fields: Vec<(String, Vec<Json>)> = ca
                .fields_as_series()
                .iter()
                .map(|f| Ok((f.name().to_string(), json_values(f)?)))
                .collect::<Result<_>>()?;
            let valid = s.is_not_null();
            (0..n)
                .map(|i| {
                    if valid.get(i) == Some(true) {
                        Json::Object(fields.iter().map(|(k, v)| (k.clone(), v[i].clone())).collect())
                    } else {
                        Json::Null
                    }
                })
                .collect()
        }
        _ if dt.is_nested() => {
            let as_list = s.cast(&DataType::List(Box::new(dt.inner_dtype().cloned().unwrap_or(DataType::Null))))?;
            json_values(&as_list)?
        }
        _ => s.cast(&DataType::String)?.str()?.iter().map(|v| v.map_or(Json::Null, |x| Json::String(x.to_string()))).collect(),
    };
    Ok(out)
}

/// Creates `path` atomically: `write` fills `.<name>.tmp`, which is synced and renamed over `path`; on
/// error the temporary file is removed.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    write(f.file()).with_context(|| format!("writing {}", f.tmp.display()))?;
    f.commit()
}

/// A file written atomically when its content comes piece by piece (the sample generator's review, meta
/// and truth files): written as `.<name>.tmp`, renamed over `path` by [`commit`](Self::commit), removed
/// if dropped before (an error or a crash never leaves half a file under `path`).
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Starts `.<name>.tmp` beside `path` (the parent folder must exist).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let tmp = tmp_path(&path)?;
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Self { path, tmp, file: Some(file) })
    }

    /// The temporary file, to write into.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until commit")
    }

    /// Syncs the temporary file and renames it over `path`.
    pub fn commit(mut self) -> Result<()> {
        let f = self.file.take().expect("open until commit");
        let synced = f.sync_all().with_context(|| format!("syncing {}", self.tmp.display()));
        drop(f);
        synced.and_then(|_| commit(&self.tmp, &self.path)).inspect_err(|_| {
            let _ = fs::remove_file(&self.tmp);
        })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// An exclusive lock on a file, held until dropped (the file is only kept open, never read).
#[derive(Debug)]
pub struct FileLock(#[allow(dead_code)] File);

/// Takes the exclusive lock of `path` (created if missing, never truncated) without waiting: `None` when
/// another process (or another handle in this one) holds it. The one lock of the project: the labeling
/// checkpoints' directory lock and the notebook runner's build slots.
pub fn try_lock(path: &Path) -> Result<Option<FileLock>> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(FileLock(f))),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(anyhow::Error::new(e).context(format!("locking {}", path.display()))),
    }
}

/// `.<name>.tmp` next to `path`.
fn tmp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().and_then(|s| s.to_str()).with_context(|| format!("bad file name {}", path.display()))?;
    Ok(path.with_file_name(format!(".{name}.tmp")))
}

/// Renames the finished temporary file over `path` and syncs the folder (so the rename survives a crash).
fn commit(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}
