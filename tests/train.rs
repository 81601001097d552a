//! `train_baseline` end to end on real reviews: same probabilities and thresholds as the seed's
//! scikit-learn pipeline (tests/peers/sklearn_baseline.py), artifacts that load back scoring
//! identically and that Python reads, and labels with few or no positives.

#[path = "support/mod.rs"]
mod support;

use std::sync::OnceLock;

use revmod::moderation::{Scorer, LABELS};
use revmod::split::{split, MlReady, Part, SplitParams};
use revmod::train::{artifacts, train_baseline, Baseline, BaselineParams, LabelModel, Metrics, Trained};
use serde_json::json;
use support::{labeled_frame, peer, reviews};

/// 2400 real reviews; spam marked only among the first 1200 rows (a handful of positives).
fn trained() -> &'static (MlReady, Baseline, Metrics) {
    static CELL: OnceLock<(MlReady, Baseline, Metrics)> = OnceLock::new();
    CELL.get_or_init(|| {
        let df = labeled_frame(&reviews(2400), 1200);
        let ml = split(&df, &SplitParams::default()).unwrap();
        let Trained { model: b, metrics: m } = train_baseline(&ml, &BaselineParams::default()).unwrap();
        (ml, b, m)
    })
}

fn label_rows(ml: &MlReady, part: Part) -> Vec<Vec<i32>> {
    let cols: Vec<Vec<i32>> = LABELS.iter().map(|l| ml.targets(l, part).unwrap()).collect();
    (0..cols[0].len()).map(|i| cols.iter().map(|c| c[i]).collect()).collect()
}

#[test]
fn baseline_matches_the_sklearn_pipeline() {
    let (ml, b, metrics) = trained();
    let spam_train: i32 = ml.targets("spam", Part::Train).unwrap().iter().sum();
    assert!((1..=10).contains(&spam_train), "spam should be rare, has {spam_train} train positives");
    let test_texts = ml.texts(Part::Test);
    let out = peer(
        "sklearn_baseline.py",
        &json!({"mode": "pipeline",
                "train_texts": ml.texts(Part::Train), "train_y": label_rows(ml, Part::Train),
                "val_texts": ml.texts(Part::Val), "val_y": label_rows(ml, Part::Val),
                "eval_texts": test_texts}),
    );
    assert_eq!(out["n_features"].as_u64().unwrap() as usize, b.features().n_features());
    let ours = b.predict_proba(&test_texts);
    for (j, label) in LABELS.iter().enumerate() {
        if matches!(b.models()[j], LabelModel::Constant { .. }) {
            assert!(out["thresholds"][j].is_null(), "{label}: sklearn fitted a label we could not");
            continue;
        }
        let mut d: f64 = 0.0;
        for (i, row) in out["proba"].as_array().unwrap().iter().enumerate() {
            d = d.max((ours[[i, j]] - row[j].as_f64().unwrap()).abs());
        }
        eprintln!("{label}: max |p_ours - p_sklearn| on test = {d:.2e}");
        assert!(d <= 1e-4, "{label}: predict_proba differs from sklearn by {d}");
        let t = out["thresholds"][j].as_f64().unwrap();
        assert!((b.thresholds()[j] - t).abs() < 1e-9, "{label}: threshold {} vs sklearn {t}", b.thresholds()[j]);
    }
    // Metrics: one row per label and split, thresholds as chosen.
    assert_eq!(metrics.rows.len(), LABELS.len() * 3);
    for r in &metrics.rows {
        assert!((0.0..=1.0).contains(&r.f1), "{r:?}");
        let j = b.label_index(&r.label).unwrap();
        assert_eq!(r.threshold, b.thresholds()[j]);
        let part = Part::parse(&r.split).unwrap();
        assert_eq!(r.support as i32, ml.targets(&r.label, part).unwrap().iter().sum::<i32>());
    }
}

/// Scoring goes from text to probabilities without a matrix (packed-key lookups, interleaved weights);
/// the result must be bit for bit the transform + matrix product the metrics were computed with, also on
/// texts whose n-grams are longer than a packed key, with NUL bytes, empty or whitespace only.
#[test]
fn fused_scoring_equals_transform_then_predict() {
    let (ml, b, _) = trained();
    let mut texts: Vec<String> = ml.texts(Part::Test).iter().map(|s| s.to_string()).collect();
    let long_terms = b.features().word.vocabulary().iter().filter(|t| t.len() > 15).take(50).cloned();
    texts.push(long_terms.collect::<Vec<_>>().join(" "));
    texts.extend(
        ["", "   \t\n ", "😀😀😀😀😀 amazing 😀😀😀😀😀", "nul\0byte the food\0was great", "Ὀδυσσεύς ΣΟΦΟΣ café"]
            .map(String::from),
    );
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let fused = b.predict_proba(&refs);
    let stacked = b.predict_proba_features(&b.transform(&refs));
    assert_eq!(fused.shape(), stacked.shape());
    for (i, (x, y)) in fused.iter().zip(stacked.iter()).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "entry {i}: fused {x} vs stacked {y}");
    }
    // The long-term text does hit the long-term columns (the packed path is not all there is).
    let word = &b.features().word;
    let row = word.transform_one(refs[refs.len() - 6]);
    let long: Vec<&String> = word.vocabulary().iter().filter(|t| t.len() > 15).take(50).collect();
    assert!(long.len() >= 10, "the fixture has long word bigrams: {}", long.len());
    for t in long {
        let c = word.column_of(t).unwrap() as u32;
        assert!(row.iter().any(|e| e.0 == c), "long term {t:?} (column {c}) not found");
    }
}

#[test]
fn artifacts_load_back_identically_and_python_reads_them() {
    let (ml, b, metrics) = trained();
    let dir = std::env::temp_dir().join(format!("revmod-train-{}", std::process::id()));
    artifacts::save_with_metrics(b, metrics, &dir).unwrap();
    for f in ["manifest.json", "vectorizer_word.json", "vectorizer_char.json", "models.json", "weights.safetensors", "thresholds.json", "metrics.csv"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + LABELS.len() * 3);
    assert!(csv.starts_with("label,split,support,precision,recall,f1,threshold"));
    let texts = ml.texts(Part::Val);
    let loaded = Baseline::load(&dir).unwrap();
    assert_eq!(loaded.labels(), b.labels());
    assert_eq!(loaded.thresholds(), b.thresholds());
    assert_eq!(loaded.predict_proba(&texts), b.predict_proba(&texts), "loaded model scores differently");
    // Python (numpy + scikit-learn only) scores the same from the files.
    let out = peer("sklearn_baseline.py", &json!({"mode": "artifacts", "dir": dir, "texts": texts}));
    let ours = b.predict_proba(&texts);
    let mut d: f64 = 0.0;
    for (i, row) in out["proba"].as_array().unwrap().iter().enumerate() {
        for j in 0..LABELS.len() {
            d = d.max((ours[[i, j]] - row[j].as_f64().unwrap()).abs());
        }
    }
    assert!(d <= 1e-9, "Python scoring of the saved model differs by {d}");
    // Calibration changes a threshold; it survives a save/load.
    let mut c = loaded.clone();
    c.set_threshold("ads", 0.35, "PR calibration").unwrap();
    assert!(c.set_threshold("nope", 0.3, "x").is_err());
    assert!(c.set_threshold("ads", 1.5, "x").is_err());
    c.save(&dir).unwrap();
    let again = Baseline::load(&dir).unwrap();
    assert_eq!(again.thresholds()[1], 0.35);
    assert_eq!(again.threshold_reasons()[1], "PR calibration");
    // A newer format version is refused with a clear message.
    let man = std::fs::read_to_string(dir.join("manifest.json")).unwrap().replace("\"version\":1", "\"version\":99");
    std::fs::write(dir.join("manifest.json"), man).unwrap();
    let e = format!("{:#}", Baseline::load(&dir).unwrap_err());
    assert!(e.contains("version 99"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    // The training output folder (what `revmod train --out` names) loads as its models/baseline_tfidf_lr.
    let out = std::env::temp_dir().join(format!("revmod-train-out-{}", std::process::id()));
    artifacts::save_with_metrics(b, metrics, &revmod::train::model_dir(&out)).unwrap();
    assert_eq!(Baseline::load(&out).unwrap().predict_proba(&texts), b.predict_proba(&texts));
    // a folder with neither says what it looked for
    let e = format!("{:#}", Baseline::load(out.join("models")).unwrap_err());
    assert!(e.contains("no model here") && e.contains("baseline_tfidf_lr"), "{e}");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_label_without_positives_is_reported_not_fatal() {
    let df = labeled_frame(&reviews(600), 0); // spam: no positives at all
    let ml = split(&df, &SplitParams::default()).unwrap();
    assert_eq!(ml.report.labels_without_positives, vec!["spam".to_string()]);
    let Trained { model: b, metrics: m } = train_baseline(&ml, &BaselineParams::default()).unwrap();
    let j = b.label_index("spam").unwrap();
    assert!(matches!(&b.models()[j], LabelModel::Constant { proba, .. } if *proba == 0.0));
    assert!(m.notes.iter().any(|n| n.contains("\"spam\"") && n.contains("0 positive")), "{:?}", m.notes);
    let p = b.predict_proba(&["great food, friendly staff", "call us now for a discount www.example.com"]);
    assert_eq!(p.shape(), &[2, LABELS.len()]);
    assert_eq!(p[[0, j]], 0.0);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
}
