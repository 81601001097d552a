//! Every table file of a walkthrough-sized run opens in the tools revmod's users have: pandas, pyarrow,
//! DuckDB and Python polars (tests/peers/read_outputs.py, peers pinned in tests/peers/requirements.txt).
//!
//! The run: the walkthrough's generated sample data (3,000 review lines), labeled with the rules backend
//! (300 reviews in 3 checkpoint parts), split, trained, error analysis, calibration, `score_all` and
//! `score_files` (the `revmod score` engine), each step writing its files as the notebook and the CLI do.
//! For every parquet and CSV file, each reader must see revmod's row count and column names, and the values
//! at sampled rows (first, middle, last, and the first row with a non-empty value of each nested column)
//! must equal what revmod holds, nested lists and structs included (CSV: nested columns as JSON text).

use std::path::{Path, PathBuf};

use revmod::data::{load_df, write_sample, SampleParams};
use revmod::eval::{calibrate, error_analysis, CalibrateParams, ErrorAnalysisParams};
use revmod::label::ckpt::{part_name, read_parquet};
use revmod::label::{label_with_ckpt, CkptOptions, Labeler};
use revmod::output::{json_values, write_csv, write_parquet};
use revmod::polars::prelude::*;
use revmod::score::{score_all, score_files, ScoreFiles, ScoreParams};
use revmod::split::{split, SplitParams};
use revmod::train::{artifacts, train_baseline, BaselineParams, Trained};
use serde_json::{json, Value};

const N_LABEL: usize = 300;
const PART_SIZE: usize = 100;

#[path = "support/mod.rs"]
mod support;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One file written by the run and the table revmod holds for it.
struct Artifact {
    path: PathBuf,
    expected: DataFrame,
}

impl Artifact {
    fn new(path: impl Into<PathBuf>, expected: &DataFrame) -> Self {
        let path = path.into();
        assert!(path.exists(), "the run did not write {}", path.display());
        Artifact { path, expected: expected.clone() }
    }

    fn is_csv(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "csv")
    }
}

/// The walkthrough's steps through the library, writing into `out`; returns every table file written.
fn run_walkthrough(out: &Path) -> Vec<Artifact> {
    let sample = write_sample(out.join("data"), &SampleParams::default()).unwrap();
    let loaded = load_df(&sample.review_path, &sample.meta_path).unwrap();
    let df = &loaded.df;
    let mut arts = Vec::new();

    // Step 8: labels and checkpoints.
    let ckpt_dir = out.join("labels_ckpt_1k");
    let mut labeler = Labeler::rules();
    let ckpt = label_with_ckpt(df, N_LABEL, PART_SIZE, &ckpt_dir, &mut labeler, &CkptOptions::default()).unwrap();
    assert_eq!(ckpt.labeled.height(), N_LABEL);
    let manifest = ckpt_dir.join("manifest.parquet");
    let (manifest_df, _) = read_parquet(&manifest).unwrap();
    assert_eq!(manifest_df.height(), N_LABEL);
    arts.push(Artifact::new(&manifest, &manifest_df));
    for k in 0..N_LABEL.div_ceil(PART_SIZE) {
        let part = ckpt.labeled.slice((k * PART_SIZE) as i64, PART_SIZE);
        arts.push(Artifact::new(ckpt_dir.join(part_name(k)), &part));
    }
    arts.push(Artifact::new(&ckpt.parquet_path, &ckpt.labeled));
    arts.push(Artifact::new(&ckpt.csv_path, &ckpt.labeled));

    // Steps 9-10: split, model, metrics.csv.
    let ml = split(&ckpt.labeled, &SplitParams::default()).unwrap();
    arts.push(Artifact::new(ml.save(out).unwrap(), &ml.df));
    let Trained { model: mut baseline, metrics } = train_baseline(&ml, &BaselineParams::default()).unwrap();
    let model_dir = out.join("models/baseline_tfidf_lr");
    artifacts::save_with_metrics(&baseline, &metrics, &model_dir).unwrap();
    arts.push(Artifact::new(model_dir.join("metrics.csv"), &metrics.table().unwrap()));

    // Steps 11-12: error analysis, calibration.
    let errors = error_analysis(&baseline, &ml.df, &ErrorAnalysisParams::default()).unwrap();
    let paths = errors.save(out).unwrap();
    assert_eq!(paths.len(), 1 + errors.examples.len());
    arts.push(Artifact::new(&paths[0], &errors.metrics));
    for (p, e) in paths[1..].iter().zip(&errors.examples) {
        arts.push(Artifact::new(p, &e.rows));
    }
    assert!(errors.examples.iter().any(|e| e.rows.height() > 0), "no misclassified rows to read back");
    calibrate(&baseline, &ml.df, &CalibrateParams::default()).unwrap().persist(&mut baseline, &model_dir).unwrap();

    // Step 14: the scored table (notebook: write_parquet), and as CSV with its nested columns as JSON.
    let quiet = ScoreParams { progress: false, ..ScoreParams::default() };
    let scored = score_all(&baseline, df, &quiet).unwrap().df;
    let scored_path = out.join("scored_reviews.parquet");
    write_parquet(&scored, &scored_path).unwrap();
    arts.push(Artifact::new(&scored_path, &scored));
    // CSV readers infer types: 21-digit user ids would come back as floats, so the CSV check takes the
    // text, the rating, the nested columns and the scores.
    let mut csv_cols: Vec<String> = vec!["text".into(), "rating".into()];
    for c in scored.columns() {
        if c.dtype().is_nested() || c.name().starts_with("p_") {
            csv_cols.push(c.name().to_string());
        }
    }
    let scored_csv = scored.select(csv_cols).unwrap();
    let csv_path = out.join("scored_reviews.csv");
    write_csv(&scored_csv, &csv_path).unwrap();
    arts.push(Artifact::new(&csv_path, &scored_csv));

    // `revmod score`: the same reviews streamed from JSON lines in several row groups.
    let stream_path = out.join("scored_stream.parquet");
    let files = ScoreFiles { reviews: sample.review_path.clone(), meta: Some(sample.meta_path.clone()), out: stream_path.clone() };
    let summary = score_files(&baseline, &files, &ScoreParams { batch_rows: 1000, ..quiet }).unwrap().summary;
    let (streamed, _) = read_parquet(&stream_path).unwrap();
    assert_eq!(streamed.height(), summary.rows);
    assert_eq!(streamed.height(), scored.height(), "revmod score and score_all scored different rows");
    arts.push(Artifact::new(&stream_path, &streamed));
    // `revmod score` without `--meta`: the review columns only.
    let bare_path = out.join("scored_no_meta.parquet");
    let files = ScoreFiles { reviews: sample.review_path.clone(), meta: None, out: bare_path.clone() };
    score_files(&baseline, &files, &ScoreParams { progress: false, ..ScoreParams::default() }).unwrap();
    let (bare, _) = read_parquet(&bare_path).unwrap();
    assert!(bare.column("business_name").is_err() && bare.column("pics").is_ok());
    arts.push(Artifact::new(&bare_path, &bare));

    // What real data can hold and the sample may not: a column without any value (MISC when no business
    // has one), empty lists, nulls inside lists, a struct whose fields are null, non-ASCII text.
    let edge = edge_cases();
    for name in ["edge_cases.parquet", "edge_cases.csv"] {
        let p = out.join(name);
        if name.ends_with(".csv") { write_csv(&edge, &p) } else { write_parquet(&edge, &p) }.unwrap();
        arts.push(Artifact::new(&p, &edge));
    }
    arts
}

fn edge_cases() -> DataFrame {
    let pics = Series::new(
        "pics".into(),
        [Some(Series::new("".into(), [Some("a.jpg"), None])), Some(Series::new("".into(), Vec::<&str>::new())), None],
    );
    let resp = StructChunked::from_series(
        "resp".into(),
        3,
        [
            Series::new("time".into(), [Some(1_609_459_200_000i64), None, None]),
            Series::new("text".into(), [Some("Merci, à bientôt ☕"), None, Some("")]),
        ]
        .iter(),
    )
    .unwrap()
    .into_series();
    DataFrame::new(
        3,
        vec![
            Column::new("text".into(), [Some("Crème brûlée, \"très\" bien\n2nd line"), Some("😀"), None]),
            pics.into(),
            resp.into(),
            Series::full_null("MISC".into(), 3, &DataType::Null).into(),
            Column::new("p".into(), [Some(0.1f64), Some(1e-300), None]),
        ],
    )
    .unwrap()
}

/// Rows to compare: first, middle, last, and for each nested column its first row with a non-empty value.
fn probe_rows(df: &DataFrame) -> Vec<usize> {
    let n = df.height();
    let mut rows: Vec<usize> = if n == 0 { vec![] } else { vec![0, n / 2, n - 1] };
    for c in df.columns().iter().filter(|c| c.dtype().is_nested()) {
        let vals = json_values(c.as_materialized_series()).unwrap();
        if let Some(i) = vals.iter().position(|v| match v {
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => o.values().any(|x| !x.is_null()),
            _ => false,
        }) {
            rows.push(i);
        }
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Equal as readers return them: numbers to `tol` relative; in CSV, a null and an empty string are the
/// same cell (an empty field).
fn same(expected: &Value, got: &Value, csv: bool, tol: f64) -> bool {
    match (expected, got) {
        (Value::Null, Value::Null) => true,
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
        }
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => csv && s.is_empty(),
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y, csv, tol)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| same(x, y, csv, tol)))
        }
        _ => false,
    }
}

/// Runs the peer on every artifact; returns its JSON answer.
fn read_with_peers(arts: &[Artifact], rows: &[Vec<usize>]) -> Value {
    let request: Vec<Value> = arts
        .iter()
        .zip(rows)
        .map(|(a, r)| {
            let json_columns: Vec<&str> =
                a.expected.columns().iter().filter(|c| c.dtype().is_nested()).map(|c| c.name().as_str()).collect();
            json!({
                "path": a.path,
                "format": if a.is_csv() { "csv" } else { "parquet" },
                "rows": r,
                "json_columns": if a.is_csv() { json_columns } else { vec![] },
            })
        })
        .collect();
    support::peer("read_outputs.py", &Value::Array(request))
}

#[test]
fn every_output_file_opens_in_pandas_pyarrow_duckdb_and_polars() {
    let out = tmpdir("outputs");
    let arts = run_walkthrough(&out);
    let rows: Vec<Vec<usize>> = arts.iter().map(|a| probe_rows(&a.expected)).collect();
    let answer = read_with_peers(&arts, &rows);
    eprintln!("peers: {}", answer["versions"]);
    let files = answer["files"].as_array().unwrap();
    assert_eq!(files.len(), arts.len());
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for ((a, rows), f) in arts.iter().zip(&rows).zip(files) {
        let name = a.path.strip_prefix(&out).unwrap().display().to_string();
        let names: Vec<String> = a.expected.get_column_names().iter().map(|s| s.to_string()).collect();
        let expected: Vec<Vec<Value>> =
            a.expected.columns().iter().map(|c| json_values(c.as_materialized_series()).unwrap()).collect();
        for reader in ["pandas", "pyarrow", "duckdb", "polars"] {
            let r = &f["readers"][reader];
            if let Some(e) = r["error"].as_str() {
                failures.push(format!("{name}: {reader} cannot read it: {e}"));
                continue;
            }
            if r["rows"].as_u64() != Some(a.expected.height() as u64) {
                failures.push(format!("{name}: {reader} reads {} rows, revmod wrote {}", r["rows"], a.expected.height()));
            }
            let got_names: Vec<&str> = r["columns"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            if got_names != names {
                failures.push(format!("{name}: {reader} reads columns {got_names:?}, revmod wrote {names:?}"));
                continue;
            }
            for (ci, col) in names.iter().enumerate() {
                let got = r["values"][col].as_array().unwrap();
                // CSV holds a float32 in its own shortest digits, which read back as the nearest float64.
                let f32_col = a.expected.column(col).unwrap().dtype() == &DataType::Float32;
                let tol = if a.is_csv() && f32_col { 1e-7 } else { 1e-12 };
                for (k, &row) in rows.iter().enumerate() {
                    checked += 1;
                    if !same(&expected[ci][row], &got[k], a.is_csv(), tol) {
                        failures.push(format!(
                            "{name}: {reader}, column {col}, row {row}: read {}, revmod holds {}",
                            got[k], expected[ci][row]
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    // The check must have looked at nested values, not only at flat columns.
    let scored = &arts.iter().find(|a| a.path.ends_with("scored_reviews.parquet")).unwrap().expected;
    for c in ["pics", "resp", "category", "hours", "MISC"] {
        assert!(scored.column(c).unwrap().dtype().is_nested(), "{c} should be nested");
    }
    assert!(checked > 1000, "only {checked} values compared");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn csv_writes_nested_columns_as_json_text_and_leaves_no_temporary_file() {
    let dir = tmpdir("outputs-csv");
    let pics = Series::new("pics".into(), [Some(Series::new("".into(), ["a.jpg", "b \"q\".jpg"])), None]);
    let resp = StructChunked::from_series(
        "resp".into(),
        2,
        [Series::new("time".into(), [Some(1i64), None]), Series::new("text".into(), [Some("thanks, \"Al\""), None])].iter(),
    )
    .unwrap()
    .into_series();
    let df = DataFrame::new(
        2,
        vec![Column::new("text".into(), ["x,y", "line\nbreak"]), pics.into(), resp.into(), Column::new("p".into(), [0.1f64, f64::NAN])],
    )
    .unwrap();
    let path = dir.join("t.csv");
    write_csv(&df, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let back = support::read_csv(&path);
    assert_eq!(back.height(), 2, "{text}");
    let pics_back: Vec<Option<&str>> = back.column("pics").unwrap().str().unwrap().iter().collect();
    assert_eq!(serde_json::from_str::<Value>(pics_back[0].unwrap()).unwrap(), json!(["a.jpg", "b \"q\".jpg"]));
    assert_eq!(pics_back[1], None, "a null list is an empty field: {text}");
    let resp_back: Vec<Option<&str>> = back.column("resp").unwrap().str().unwrap().iter().collect();
    assert_eq!(serde_json::from_str::<Value>(resp_back[0].unwrap()).unwrap(), json!({"time": 1, "text": "thanks, \"Al\""}));
    assert!(resp_back[0].unwrap().starts_with(r#"{"time":1,"text":"#), "struct fields in column order: {text}");
    let texts: Vec<Option<&str>> = back.column("text").unwrap().str().unwrap().iter().collect();
    assert_eq!(texts, [Some("x,y"), Some("line\nbreak")]);
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("t.csv")], "only the finished file remains");
    let _ = std::fs::remove_dir_all(&dir);
}
