//! Step 3 (`load_df`) on real Google Local lines and on generated data, against the seed's pandas
//! semantics (tests/peers/pandas_load.py), plus `mount` and the sample generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use revmod::data::{load_df, write_sample, LoadReport, SampleParams};
use revmod::prelude::*;

#[path = "support/mod.rs"]
mod support;
use support::python;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the pandas peer on the same files.
fn pandas(reviews: &Path, meta: &Path) -> serde_json::Value {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pandas_load.py");
    let out = Command::new(python()).arg(&peer).arg(reviews).arg(meta).output().expect("run python peer");
    assert!(out.status.success(), "pandas peer failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn str_col(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
}

/// Compares every count and every joined row (in order) with pandas.
fn assert_matches_pandas(loaded: &Loaded, reviews: &Path, meta: &Path) -> serde_json::Value {
    let p = pandas(reviews, meta);
    let r = &loaded.report;
    assert_eq!(r.review_lines as u64, p["review_lines"].as_u64().unwrap(), "review lines");
    assert_eq!(r.meta_lines as u64, p["meta_lines"].as_u64().unwrap(), "meta lines");
    let bad: Vec<u64> = r.bad_lines.iter().filter(|b| b.file == reviews).map(|b| b.line as u64).collect();
    let pbad: Vec<u64> = p["review_bad_lines"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(bad, pbad, "malformed review line numbers");
    assert_eq!(r.review_bad, pbad.len());
    assert_eq!(r.meta_duplicates as u64, p["meta_duplicates"].as_u64().unwrap(), "meta duplicates");
    assert_eq!(r.review_duplicates as u64, p["review_duplicates"].as_u64().unwrap(), "review duplicates");
    assert_eq!(r.without_business as u64, p["without_business"].as_u64().unwrap(), "without business");
    assert_eq!(r.rows as u64, p["rows"].as_u64().unwrap(), "rows");
    assert_eq!(loaded.df.height(), r.rows);
    assert_eq!(loaded.df.column("text").unwrap().null_count() as u64, p["null_text"].as_u64().unwrap());
    let (u, g, t, b) = (
        str_col(&loaded.df, "user_id"),
        str_col(&loaded.df, "gmap_id"),
        str_col(&loaded.df, "text"),
        str_col(&loaded.df, "business_name"),
    );
    let keys = p["keys"].as_array().unwrap();
    assert_eq!(keys.len(), u.len());
    for (i, k) in keys.iter().enumerate() {
        let k: Vec<Option<String>> = k.as_array().unwrap().iter().map(|v| v.as_str().map(str::to_string)).collect();
        assert_eq!(k, vec![u[i].clone(), g[i].clone(), t[i].clone(), b[i].clone()], "row {i} differs from pandas");
    }
    p
}

#[test]
fn utah_real_lines_match_pandas_semantics() {
    let reviews = shared("google-local-utah/review-Utah.sample.json");
    let meta = shared("google-local-utah/meta-Utah.partial.json");
    let loaded = load_df(&reviews, &meta).unwrap();
    assert_matches_pandas(&loaded, &reviews, &meta);
    // Facts of the file documented in shared/data/README.md, independent of pandas:
    let r: &LoadReport = &loaded.report;
    assert_eq!(r.review_lines, 200);
    assert_eq!(r.review_bad, 1);
    assert_eq!(r.bad_lines[0].line, 112, "the malformed line is line 112");
    let msg = r.bad_lines[0].to_string();
    assert!(msg.contains("review-Utah.sample.json:112: invalid JSON"), "{msg}");
    assert_eq!(loaded.df.column("text").unwrap().null_count(), 33);
    // Column layout: renamed names, nested fields typed, the extra `relevant` field kept in `extra`.
    let names: Vec<String> = loaded.df.get_column_names().iter().map(|c| c.to_string()).collect();
    for c in revmod::data::REVIEW_COLUMNS.iter().chain(revmod::data::META_COLUMNS.iter()) {
        assert!(names.contains(&c.to_string()), "missing column {c}: {names:?}");
    }
    assert!(!names.contains(&"name".to_string()));
    let df = &loaded.df;
    assert_eq!(df.column("category").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
    assert!(matches!(df.column("resp").unwrap().dtype(), DataType::Struct(_)));
    assert_eq!(df.column("time").unwrap().dtype(), &DataType::Int64);
    let extra = str_col(df, "extra");
    assert!(extra.iter().flatten().any(|e| e.contains("\"relevant\"")), "the extra `relevant` field is kept");
    // A review with a business: category list usable.
    let cats = df.column("category").unwrap().list().unwrap();
    let first_with = (0..df.height()).find(|&i| cats.get_as_series(i).is_some()).unwrap();
    assert!(cats.get_as_series(first_with).unwrap().len() >= 1);
}

#[test]
fn generated_sample_matches_its_summary_and_pandas_plain_and_gzip() {
    let dir = tmpdir("sample");
    let p = SampleParams { reviews: 5000, malformed: 3, ..Default::default() };
    let s = write_sample(&dir, &p).unwrap();
    assert_eq!(s.review_lines, 5000);
    assert!(s.duplicate_reviews > 10 && s.duplicate_meta > 0 && s.orphan_reviews > 0, "{s}");
    assert_eq!(s.malformed, 3);
    let loaded = load_df(&s.review_path, &s.meta_path).unwrap();
    let r = &loaded.report;
    assert_eq!(r.review_bad, s.malformed);
    assert_eq!(r.review_duplicates, s.duplicate_reviews);
    assert_eq!(r.meta_duplicates, s.duplicate_meta);
    assert_eq!(r.without_business, s.orphan_reviews);
    assert_eq!(r.rows, 5000 - s.malformed - s.duplicate_reviews);
    assert_eq!(r.field_issues, 0);
    assert_matches_pandas(&loaded, &s.review_path, &s.meta_path);
    // MISC and hours stay nested and usable.
    let misc = loaded.df.column("MISC").unwrap();
    assert!(matches!(misc.dtype(), DataType::Struct(_)), "{:?}", misc.dtype());
    let hours = loaded.df.column("hours").unwrap();
    assert_eq!(hours.dtype(), &DataType::List(Box::new(DataType::List(Box::new(DataType::String)))));

    // The same files gzipped load identically.
    for f in [&s.review_path, &s.meta_path] {
        let st = Command::new("gzip").arg("-kf").arg(f).status().unwrap();
        assert!(st.success());
    }
    let gz = |p: &Path| PathBuf::from(format!("{}.gz", p.display()));
    let loaded_gz = load_df(gz(&s.review_path), gz(&s.meta_path)).unwrap();
    assert!(loaded_gz.df.equals_missing(&loaded.df));
    assert_eq!(loaded_gz.report.rows, r.rows);
    std::fs::remove_dir_all(&dir).ok();
}

/// More lines than one batch (`BATCH_LINES`): the frame keeps one chunk per batch (no rechunk copy), and every
/// row still matches pandas in order, with duplicates dropped across batch boundaries.
#[test]
fn several_batches_stay_chunked_and_match_pandas() {
    let dir = tmpdir("batches");
    let n = 2 * revmod::data::load::BATCH_LINES + 5000;
    let s = write_sample(&dir, &SampleParams { reviews: n, malformed: 2, ..Default::default() }).unwrap();
    let loaded = load_df(&s.review_path, &s.meta_path).unwrap();
    assert!(loaded.df.first_col_n_chunks() >= 3, "{} chunks", loaded.df.first_col_n_chunks());
    assert_eq!(loaded.report.rows, n - s.malformed - s.duplicate_reviews);
    assert_eq!(loaded.report.review_duplicates, s.duplicate_reviews);
    assert_matches_pandas(&loaded, &s.review_path, &s.meta_path);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn generator_is_deterministic_and_has_the_phenomena() {
    let (a, b) = (tmpdir("det-a"), tmpdir("det-b"));
    let p = SampleParams { reviews: 20_000, ..Default::default() };
    write_sample(&a, &p).unwrap();
    let s = write_sample(&b, &p).unwrap();
    for f in ["review-Vermont.json", "meta-Vermont.json"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs between runs");
    }
    let text = std::fs::read_to_string(&s.review_path).unwrap();
    for needle in ["(Translated by Google)", "(Original)", "www.", "555-", "% off", "Never been here", "\"text\": null", "\"text\":null", "👍"] {
        if needle.starts_with("\"text\"") {
            continue;
        }
        assert!(text.contains(needle), "sample lacks {needle:?}");
    }
    let loaded = load_df(&s.review_path, &s.meta_path).unwrap();
    assert!(loaded.df.column("text").unwrap().null_count() > 100);
    let texts = str_col(&loaded.df, "text");
    assert!(texts.iter().flatten().any(|t| t.is_empty()), "an empty text");
    assert!(texts.iter().flatten().any(|t| t.chars().all(|c| !c.is_ascii_alphanumeric()) && !t.is_empty()), "emoji-only text");
    let cat_col = loaded.df.column("category").unwrap().list().unwrap().clone();
    let mut cats: std::collections::HashSet<String> = std::collections::HashSet::new();
    for i in 0..cat_col.len() {
        if let Some(s) = cat_col.get_as_series(i) {
            cats.extend(s.str().unwrap().iter().flatten().map(str::to_string));
        }
    }
    assert!(cats.len() >= 30, "many categories: {cats:?}");
    let meta = std::fs::read_to_string(&s.meta_path).unwrap();
    let first: serde_json::Value = serde_json::from_str(meta.lines().next().unwrap()).unwrap();
    for k in ["name", "address", "gmap_id", "description", "latitude", "longitude", "category", "avg_rating", "num_of_reviews", "price", "hours", "MISC", "state", "relative_results", "url"] {
        assert!(first.get(k).is_some(), "meta lacks field {k}");
    }
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}

#[test]
fn wrong_types_and_junk_lines_are_reported_not_fatal() {
    let dir = tmpdir("junk");
    let r = dir.join("review-X.json");
    let m = dir.join("meta-X.json");
    std::fs::write(
        &r,
        "{\"user_id\":\"1\",\"name\":\"A\",\"time\":1,\"rating\":\"five\",\"text\":\"ok place\",\"pics\":null,\"resp\":null,\"gmap_id\":\"g1\"}\n\
         not json at all\n\
         \"a string\"\n\
         {\"user_id\":\"2\",\"name\":\"B\",\"time\":2,\"rating\":4,\"text\":null,\"pics\":null,\"resp\":{\"time\":3,\"text\":\"thanks\"},\"gmap_id\":\"g2\"}\n",
    )
    .unwrap();
    std::fs::write(&m, "{\"name\":\"Biz\",\"gmap_id\":\"g1\",\"category\":\"Cafe\"}\n{oops\n").unwrap();
    let l = load_df(&r, &m).unwrap();
    assert_eq!(l.report.rows, 2);
    assert_eq!(l.report.review_bad, 2);
    assert_eq!(l.report.meta_bad, 1);
    assert_eq!(l.report.field_issues, 1);
    let fi = l.report.field_issue_lines[0].to_string();
    assert!(fi.contains("review-X.json:1: field `rating`: expected an integer, found a string"), "{fi}");
    let lines: Vec<String> = l.report.bad_lines.iter().map(|b| b.to_string()).collect();
    assert!(lines.iter().any(|x| x.contains("review-X.json:2: invalid JSON")), "{lines:?}");
    assert!(lines.iter().any(|x| x.contains("review-X.json:3: expected a JSON object, found a string")), "{lines:?}");
    assert!(lines.iter().any(|x| x.contains("meta-X.json:2: invalid JSON")), "{lines:?}");
    assert_eq!(l.report.without_business, 1);
    // A single string where a list is expected becomes a one-element list.
    let cat = l.df.column("category").unwrap().list().unwrap().get_as_series(0).unwrap();
    assert_eq!(cat.str().unwrap().get(0), Some("Cafe"));
    let text = l.report.to_string();
    assert!(text.contains("malformed review lines (skipped)") && text.contains(":2: invalid JSON"), "{text}");
    // An unreadable file is an error that names it.
    let e = load_df(dir.join("missing.json"), &m).err().unwrap();
    assert!(format!("{e:#}").contains("missing.json"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn empty_review_file_gives_an_empty_frame_with_the_columns() {
    let dir = tmpdir("empty");
    std::fs::write(dir.join("r.json"), "").unwrap();
    std::fs::write(dir.join("m.json"), "{\"name\":\"Biz\",\"gmap_id\":\"g1\"}\n").unwrap();
    let l = load_df(dir.join("r.json"), dir.join("m.json")).unwrap();
    assert_eq!(l.df.height(), 0);
    assert!(l.df.column("business_name").is_ok() && l.df.column("text").is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mount_creates_dirs_and_env_overrides_apply() {
    let dir = tmpdir("mount");
    let cfg = mount(dir.join("out")).unwrap();
    assert!(cfg.out_dir.is_dir() && cfg.cache_dir.is_dir() && cfg.ckpt_dir.is_dir());
    assert_eq!(cfg.seed, 42);
    assert_eq!(cfg.review_path, dir.join("out/data/review-Vermont.json"));
    let vars = |k: &str| match k {
        "REVMOD_OUT_DIR" => Some("/tmp/elsewhere".to_string()),
        "REVMOD_N_LABEL" => Some("250".to_string()),
        "REVMOD_REVIEWS" => Some("/data/review-Utah.json".to_string()),
        _ => None,
    };
    let c2 = Config::new("out").apply_vars(vars).unwrap();
    assert_eq!(c2.out_dir, PathBuf::from("/tmp/elsewhere"));
    assert_eq!(c2.ckpt_dir, PathBuf::from("/tmp/elsewhere/labels_ckpt_1k"));
    assert_eq!(c2.meta_path, PathBuf::from("/tmp/elsewhere/data/meta-Vermont.json"));
    assert_eq!(c2.review_path, PathBuf::from("/data/review-Utah.json"));
    assert_eq!(c2.n_label, 250);
    let bad = Config::new("out").apply_vars(|k| (k == "REVMOD_SEED").then(|| "forty-two".to_string()));
    assert!(format!("{:#}", bad.unwrap_err()).contains("REVMOD_SEED"));
    let html = cfg.to_html().0;
    assert!(html.contains("<code>N_LABEL</code>") && html.contains("1000"));
    std::fs::remove_dir_all(&dir).ok();
}
