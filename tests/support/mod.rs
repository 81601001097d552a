//! Shared helpers of the integration tests: the Python peers (`python()`, `peer()`), the real review texts of
//! ../shared/data/reviews-40k (with labels derived from them, or with their policy violation flag), CSV
//! reading and the crate's seeded RNG. `toy_step.rs` beside it (the toy step model of the constrained-decoding
//! tests) is included on its own by `#[path]`, so those tests do not build these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use polars::prelude::*;

mod python;
pub use python::python;

/// Runs `tests/peers/<script>` with `input` as JSON on stdin and parses its JSON stdout.
pub fn peer(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let path = format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {} {path}: {e}", python()));
    let body = serde_json::to_vec(input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "peer {script} failed (install tests/peers/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("peer {script} printed bad JSON: {e}"))
}

/// A CSV file with a header row, read by polars (panics naming the file).
pub fn read_csv(path: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
        .finish()
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The folder of the real review texts (reviews-40k, four CSV parts).
pub const REVIEWS_40K: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/reviews-40k");

/// (text, violation) of the real reviews of one reviews-40k part (`part1.csv`...) that have both:
/// `policy_label == 0` is a policy violation.
pub fn violations(part: &str) -> Vec<(String, bool)> {
    let df = read_csv(&Path::new(REVIEWS_40K).join(part));
    let text = df.column("text").unwrap().str().unwrap().clone();
    let lab = df.column("policy_label").unwrap().cast(&DataType::Int64).unwrap();
    let lab = lab.i64().unwrap();
    text.iter().zip(lab.iter()).filter_map(|(t, l)| Some((t?.to_string(), l? == 0))).collect()
}

fn words(t: &str) -> Vec<String> {
    t.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(str::to_string).collect()
}

/// Real-ish probabilities of "violation": a smoothed word log-odds model fit on `train`, applied to the texts of
/// `test`; the intercept is `intercept`, or the prior log-odds of `train` when None.
pub fn nb_scores(train: &[(String, bool)], test: &[(String, bool)], intercept: Option<f64>) -> Vec<f64> {
    let mut pos: HashMap<String, f64> = HashMap::new();
    let mut neg: HashMap<String, f64> = HashMap::new();
    for (t, y) in train {
        for w in words(t) {
            *(if *y { &mut pos } else { &mut neg }).entry(w).or_default() += 1.0;
        }
    }
    let prior = (train.iter().filter(|x| x.1).count() as f64 + 1.0) / (train.len() as f64 + 2.0);
    let z0 = intercept.unwrap_or((prior / (1.0 - prior)).ln());
    test.iter()
        .map(|(t, _)| {
            let mut z = z0;
            for w in words(t) {
                z += ((pos.get(&w).unwrap_or(&0.0) + 1.0) / (neg.get(&w).unwrap_or(&0.0) + 1.0)).ln() * 0.05;
            }
            1.0 / (1.0 + (-z).exp())
        })
        .collect()
}

/// One review of reviews-40k.
#[derive(Clone, Debug)]
pub struct Review {
    pub text: String,
    pub rating: i64,
    /// 1 = fine, 0 = policy violation, None = missing.
    pub policy_label: Option<i64>,
}

/// The first `n` reviews with a text, across the four CSV parts in file-name order.
pub fn reviews(n: usize) -> Vec<Review> {
    let dir = REVIEWS_40K;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let df = read_csv(&f);
        let text = df.column("text").unwrap().str().unwrap().clone();
        let rating = df.column("rating").unwrap().cast(&DataType::Int64).unwrap();
        let rating = rating.i64().unwrap().clone();
        let pl = df.column("policy_label").unwrap().cast(&DataType::Int64).unwrap();
        let pl = pl.i64().unwrap().clone();
        for ((t, r), p) in text.iter().zip(rating.iter()).zip(pl.iter()) {
            if let Some(t) = t {
                out.push(Review { text: t.to_string(), rating: r.unwrap_or(0), policy_label: p });
                if out.len() == n {
                    return out;
                }
            }
        }
    }
    out
}

fn has_any(t: &str, words: &[&str]) -> bool {
    let l = t.to_lowercase();
    words.iter().any(|w| l.contains(w))
}

/// Labels derived from a review, in LABELS order (relevant, ads, irrelevant, non_visit, spam):
/// policy_label for relevance, keyword rules for the others; `spam` is kept rare on purpose
/// (reviews with "!!!!" among the first `spam_rows` rows only).
pub fn derived_labels(r: &Review, row: usize, spam_rows: usize) -> [bool; 5] {
    let relevant = r.policy_label == Some(1);
    let ads = has_any(&r.text, &["http", "www.", ".com", "discount", "coupon", "promo", "call us"]);
    let irrelevant = r.policy_label == Some(0) && !ads;
    let non_visit = has_any(&r.text, &["never been", "haven't been", "have not been", "never went", "didn't go"]);
    let spam = row < spam_rows && r.text.contains("!!!!");
    [relevant, ads, irrelevant, non_visit, spam]
}

/// A labeler-style DataFrame (`text` + the five `is_*` columns as 0/1 Int32 + `rating`) of `reviews`.
pub fn labeled_frame(reviews: &[Review], spam_rows: usize) -> DataFrame {
    let labels: Vec<[bool; 5]> = reviews.iter().enumerate().map(|(i, r)| derived_labels(r, i, spam_rows)).collect();
    let mut cols = vec![
        Column::new("text".into(), reviews.iter().map(|r| r.text.clone()).collect::<Vec<_>>()),
        Column::new("rating".into(), reviews.iter().map(|r| r.rating).collect::<Vec<_>>()),
    ];
    for (j, name) in revmod::moderation::LABEL_COLUMNS.iter().enumerate() {
        cols.push(Column::new((*name).into(), labels.iter().map(|l| l[j] as i32).collect::<Vec<_>>()));
    }
    DataFrame::new(reviews.len(), cols).unwrap()
}

/// The crate's seeded RNG, for random test inputs.
#[allow(unused_imports)]
pub use revmod::rng::SplitMix64;

/// A baseline trained like the seed on `n` real reviews with derived labels (`spam_rows` rows may be spam, so
/// `spam` stays rare: a handful of validation positives, the seed's situation), with its split frame.
pub fn trained_baseline(n: usize, spam_rows: usize) -> (revmod::train::Baseline, revmod::split::MlReady) {
    let labeled = labeled_frame(&reviews(n), spam_rows);
    let ml = revmod::split::split(&labeled, &revmod::split::SplitParams::default()).unwrap();
    let model = revmod::train::train_baseline(&ml, &revmod::train::BaselineParams::default()).unwrap().model;
    (model, ml)
}
