//! Steps 13-19: streaming scoring equals in-memory scoring equals row-by-row scoring, on real review
//! texts; `score_files` (the `revmod score` engine) on a Google Local-shaped JSON-lines file with bad
//! lines; the label distribution and examples.

use std::io::Write;

use ndarray::Array2;
use polars::prelude::*;
#[path = "support/mod.rs"]
mod support;

use revmod::moderation::{Scorer, LABELS};
use revmod::score::{
    examples_per_label, label_distribution, label_examples, score_all, score_files, score_stream, ScoreFiles,
    ScoreParams, Scored, ScoredFiles,
};

fn texts(part: &str) -> Vec<Option<String>> {
    let df = support::read_csv(&std::path::Path::new(support::REVIEWS_40K).join(part));
    df.column("text").unwrap().str().unwrap().iter().map(|t| t.map(str::to_string)).collect()
}

/// A small real scorer: per label, a logistic model over hashed lower-case words, normalised by length.
/// Row-independent like the baseline, cheap enough to test streaming on 10k+ rows.
struct HashScorer {
    labels: Vec<String>,
    thresholds: Vec<f64>,
}

impl HashScorer {
    fn new() -> Self {
        Self { labels: LABELS.iter().map(|s| s.to_string()).collect(), thresholds: vec![0.5, 0.52, 0.55, 0.5, 0.6] }
    }
    fn row(&self, t: &str) -> [f64; 5] {
        let mut z = [0.0f64; 5];
        let mut n = 0.0f64;
        for w in t.to_lowercase().split_whitespace() {
            n += 1.0;
            let mut h: u64 = 1469598103934665603;
            for b in w.bytes() {
                h = (h ^ b as u64).wrapping_mul(1099511628211);
            }
            for (j, zj) in z.iter_mut().enumerate() {
                *zj += (((h >> (8 * j)) & 0xff) as f64 - 127.5) / 64.0;
            }
        }
        let mut p = [0.0; 5];
        for j in 0..5 {
            p[j] = 1.0 / (1.0 + (-(z[j] / (n + 1.0).sqrt())).exp());
        }
        p
    }
}

impl Scorer for HashScorer {
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }
    fn predict_proba(&self, texts: &[&str]) -> Array2<f64> {
        let mut a = Array2::zeros((texts.len(), 5));
        for (i, t) in texts.iter().enumerate() {
            for (j, v) in self.row(t).into_iter().enumerate() {
                a[[i, j]] = v;
            }
        }
        a
    }
}

fn frame(n: usize) -> DataFrame {
    let mut t = texts("part1.csv");
    t.extend(texts("part2.csv"));
    t.truncate(n);
    t[3] = None; // a null text is scored as ""
    let ids: Vec<u32> = (0..t.len() as u32).collect();
    df!["id" => ids, "text" => t].unwrap()
}

fn quiet(batch_rows: usize, chunk_rows: usize) -> ScoreParams {
    ScoreParams { batch_rows, chunk_rows, progress: false, ..ScoreParams::default() }
}

/// Streaming (small batches, parallel chunks) == one in-memory batch == each row alone, bit for bit.
fn check_streaming_equals_row_by_row(model: &dyn Scorer, df: &DataFrame) {
    let Scored { df: a, summary: sa } = score_all(model, df, &quiet(1000, 37)).unwrap();
    let Scored { df: b, summary: sb } = score_all(model, df, &quiet(usize::MAX, usize::MAX)).unwrap();
    assert_eq!(sa.rows, df.height());
    assert_eq!(sa.null_texts, df.column("text").unwrap().null_count());
    assert_eq!(sa.flagged, sb.flagged);
    assert!(a.equals_missing(&b), "batched and one-shot scoring differ");
    let text = df.column("text").unwrap().str().unwrap();
    for (j, label) in model.labels().iter().enumerate() {
        let p = a.column(&format!("p_{label}")).unwrap().f64().unwrap();
        let y = a.column(label).unwrap().i32().unwrap();
        for i in (0..df.height()).step_by(7) {
            let alone = model.predict_proba(&[text.get(i).unwrap_or("")])[[0, j]];
            assert_eq!(p.get(i).unwrap().to_bits(), alone.to_bits(), "row {i} label {label}");
            assert_eq!(y.get(i).unwrap(), (alone >= model.thresholds()[j]) as i32);
        }
    }
    // score_stream over slices hands out the same frames.
    let mut parts = Vec::new();
    let batches = (0..df.height()).step_by(4096).map(|o| Ok(df.slice(o as i64, 4096)));
    let s = score_stream(model, batches, &quiet(4096, 100), None, |d| {
        parts.push(d);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.rows, df.height());
    let mut c = parts[0].clone();
    for p in &parts[1..] {
        c.vstack_mut(p).unwrap();
    }
    assert!(c.equals_missing(&a), "score_stream differs from score_all");
}

#[test]
fn streaming_equals_in_memory_equals_row_by_row_hash_scorer() {
    check_streaming_equals_row_by_row(&HashScorer::new(), &frame(15_000));
}

#[test]
fn distribution_and_examples_follow_the_scored_columns() {
    let model = HashScorer::new();
    let Scored { df: scored, summary } = score_all(&model, &frame(5000), &quiet(512, 64)).unwrap();
    let d = label_distribution(&scored).unwrap();
    let flagged: Vec<u64> = d.table.column("flagged").unwrap().u64().unwrap().into_no_null_iter().collect();
    assert_eq!(flagged, summary.flagged.iter().map(|&x| x as u64).collect::<Vec<_>>());
    assert!(d.chart.0.contains("<svg") && d.chart.0.contains("\nads\n</text>"));
    let ex = label_examples(&scored, "ads", 7, "text", &["id", "nope"]).unwrap();
    assert_eq!(ex.get_column_names().iter().map(|s| s.as_str()).collect::<Vec<_>>(), vec!["text", "p_ads", "id"]);
    assert_eq!(ex.height(), 7.min(summary.flagged[1]));
    let p: Vec<f64> = ex.column("p_ads").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]) && p.iter().all(|&x| x >= 0.52));
    let html = revmod::show::Show::html(&examples_per_label(&scored, 3, "text", &[]).unwrap());
    assert!(html.contains("Predicted spam") && html.contains("Predicted non_visit"));
    assert!(label_distribution(&frame(10)).is_err(), "unscored frame: clear error");
}

#[test]
fn score_files_streams_json_lines_to_parquet_with_bad_lines_reported() {
    let model = HashScorer::new();
    let dir = std::env::temp_dir().join(format!("revmod-score-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let reviews = dir.join("review-Test.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&reviews).unwrap());
    let t = texts("part3.csv");
    for (i, text) in t.iter().take(3000).enumerate() {
        if i == 100 {
            writeln!(f, "{{not json").unwrap();
        }
        let v = serde_json::json!({
            "user_id": format!("u{i}"), "name": "N", "time": 1600000000000i64 + i as i64, "rating": 5,
            "text": if i == 7 { None } else { text.clone() }, "pics": null, "resp": null,
            "gmap_id": format!("g{}", i % 13)
        });
        writeln!(f, "{v}").unwrap();
    }
    drop(f);
    let out = dir.join("sub/scored.parquet");
    let files = ScoreFiles { reviews: reviews.clone(), meta: None, out: out.clone() };
    let ScoredFiles { summary, report } = score_files(&model, &files, &quiet(256, 50)).unwrap();
    assert_eq!(report.review_bad, 1);
    assert_eq!(report.bad_lines[0].line, 101);
    assert_eq!(summary.rows, 3000 - report.review_duplicates);
    let back = ParquetReader::new(std::fs::File::open(&out).unwrap()).finish().unwrap();
    assert_eq!(back.height(), summary.rows);
    let text = back.column("text").unwrap().str().unwrap();
    let p = back.column("p_spam").unwrap().f64().unwrap();
    for i in 0..back.height() {
        let want = model.predict_proba(&[text.get(i).unwrap_or("")])[[0, 4]];
        assert_eq!(p.get(i).unwrap().to_bits(), want.to_bits(), "row {i}");
    }
    assert_eq!(back.column("spam").unwrap().i32().unwrap().into_no_null_iter().filter(|&v| v == 1).count(), summary.flagged[4]);
    // No review at all: a clear error naming the file.
    let empty = dir.join("review-Empty.json");
    std::fs::write(&empty, "{bad\n").unwrap();
    let e = score_files(&model, &ScoreFiles { reviews: empty, meta: None, out: dir.join("e.parquet") }, &quiet(256, 50))
        .unwrap_err();
    assert!(format!("{e:#}").contains("review-Empty.json"), "{e:#}");
    std::fs::remove_dir_all(&dir).ok();
}


#[test]
fn streaming_equals_in_memory_equals_row_by_row_trained_baseline() {
    let reviews = support::reviews(4000);
    let labeled = support::labeled_frame(&reviews, 1000);
    let ml = revmod::split::split(&labeled, &revmod::split::SplitParams::default()).unwrap();
    let model = revmod::train::train_baseline(&ml, &revmod::train::BaselineParams::default()).unwrap().model;
    // Score reviews the model never saw.
    check_streaming_equals_row_by_row(&model, &frame(12_000).slice(4000, 8000));
}
