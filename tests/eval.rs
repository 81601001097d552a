//! Step 11-12 math against scikit-learn: precision-recall curve points bit-identical to
//! `sklearn.metrics.precision_recall_curve` on real-ish scores of real review texts, including ties and
//! 0 / 1 / 5 positives, and the argmax-F1 threshold equal to the seed's numpy computation.
//!
//! Needs python3 (env REVMOD_PYTHON) with scikit-learn (tests/peers/requirements.txt).

use std::path::{Path, PathBuf};
use std::process::Command;

use revmod::eval::{pr_curve, Counts};

#[path = "support/mod.rs"]
mod support;
use support::{nb_scores, python, read_csv, violations};
use revmod::moderation::{target_column, Label};
use revmod::split::Part;

fn write_f64(path: &Path, v: &[f64]) {
    std::fs::write(path, v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs the scikit-learn peer on all cases and checks every curve point bit for bit.
fn check_against_sklearn(cases: &[(String, Vec<bool>, Vec<f64>)]) {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir: PathBuf = std::env::temp_dir().join(format!("revmod-eval-pr-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    std::fs::write(dir.join("cases.txt"), names.join("\n")).unwrap();
    for (name, y, s) in cases {
        std::fs::write(dir.join(format!("{name}.y")), y.iter().map(|&b| b as u8).collect::<Vec<u8>>()).unwrap();
        write_f64(&dir.join(format!("{name}.s")), s);
    }
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sklearn_pr.py");
    let out = Command::new(python()).arg(peer).arg(&dir).output().expect("running python3");
    assert!(out.status.success(), "peer failed: {}", String::from_utf8_lossy(&out.stderr));
    for (name, y, s) in cases {
        let c = pr_curve(y, s).unwrap();
        let p = read_f64(&dir.join(format!("{name}.prec")));
        let r = read_f64(&dir.join(format!("{name}.rec")));
        let t = read_f64(&dir.join(format!("{name}.thr")));
        let best = read_f64(&dir.join(format!("{name}.best")))[0];
        assert_eq!(bits(&c.thresholds), bits(&t), "{name}: thresholds differ from scikit-learn");
        assert_eq!(bits(&c.precision), bits(&p), "{name}: precision differs from scikit-learn");
        assert_eq!(bits(&c.recall), bits(&r), "{name}: recall differs from scikit-learn");
        assert_eq!(c.best_f1().threshold.to_bits(), best.to_bits(), "{name}: argmax-F1 threshold differs");
        assert_eq!(c.positives, y.iter().filter(|&&b| b).count());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn pr_curve_points_equal_scikit_learn_on_real_review_scores() {
    let train = violations("part1.csv");
    let test = violations("part2.csv");
    let s = nb_scores(&train, &test, None);
    let y: Vec<bool> = test.iter().map(|x| x.1).collect();
    assert!(y.iter().filter(|&&b| b).count() > 100, "the data must have violations");
    let round = |v: &[f64], k: f64| v.iter().map(|x| (x * k).round() / k).collect::<Vec<_>>();
    let clean: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).take(400).collect();
    let bad: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
    let subset = |npos: usize| {
        let idx: Vec<usize> = clean.iter().copied().chain(bad.iter().copied().take(npos)).collect();
        (idx.iter().map(|&i| y[i]).collect::<Vec<_>>(), idx.iter().map(|&i| s[i]).collect::<Vec<_>>())
    };
    let mut cases = vec![
        ("full".to_string(), y.clone(), s.clone()),
        ("ties_2dp".to_string(), y.clone(), round(&s, 100.0)),
        ("ties_1dp".to_string(), y.clone(), round(&s, 10.0)),
    ];
    for npos in [0, 1, 5] {
        let (yy, ss) = subset(npos);
        cases.push((format!("pos{npos}"), yy, ss));
    }
    cases.push(("one_row".into(), vec![true], vec![0.3]));
    cases.push(("all_tied".into(), vec![true, false, true], vec![0.5, 0.5, 0.5]));
    cases.push(("all_positive".into(), vec![true; 50], s[..50].to_vec()));
    check_against_sklearn(&cases);
}

#[test]
fn metrics_at_threshold_are_consistent_with_the_curve() {
    // Every curve point is the (precision, recall) of flagging `score >= threshold`.
    let train = violations("part3.csv");
    let test = violations("part6.csv");
    let s = nb_scores(&train, &test, None);
    let y: Vec<bool> = test.iter().map(|x| x.1).collect();
    let c = pr_curve(&y, &s).unwrap();
    for i in (0..c.thresholds.len()).step_by(97) {
        let k = Counts::at_threshold(&y, &s, c.thresholds[i]).unwrap();
        assert_eq!(k.precision(), c.precision[i]);
        assert_eq!(k.recall(), c.recall[i]);
        assert_eq!(k.total(), y.len());
    }
}


fn trained() -> (revmod::train::Baseline, revmod::split::MlReady) {
    support::trained_baseline(6000, 1500)
}

#[test]
fn pr_curve_equals_scikit_learn_on_a_trained_baselines_validation_probabilities() {
    use revmod::eval::frame;
    use revmod::moderation::Scorer;
    let (model, ml) = trained();
    let (texts, _) = frame::texts(&ml.df, "text").unwrap();
    let mut cases = Vec::new();
    for split in [Part::Val, Part::Test] {
        let rows = frame::split_rows(&ml.df, split).unwrap();
        let p = model.predict_proba(&frame::take(&texts, &rows));
        for (j, label) in model.labels().iter().enumerate() {
            let y = frame::take(&target_column(&ml.df, Label::target_of(label).unwrap()).unwrap(), &rows);
            cases.push((format!("{label}_{split}"), y, p.column(j).to_vec()));
        }
    }
    check_against_sklearn(&cases);
}

#[test]
fn error_analysis_metrics_and_misclassified_files() {
    use revmod::eval::{error_analysis, frame, ErrorAnalysisParams};
    use revmod::moderation::Scorer;
    let (model, ml) = trained();
    let params = ErrorAnalysisParams { top_k: 50, ..ErrorAnalysisParams::default() };
    let ea = error_analysis(&model, &ml.df, &params).unwrap();
    assert_eq!(ea.metrics.height(), 10, "5 labels x val/test");
    assert_eq!(ea.examples.len(), 20, "5 labels x 2 splits x FP/FN");
    let (texts, _) = frame::texts(&ml.df, "text").unwrap();
    for split in [Part::Val, Part::Test] {
        let rows = frame::split_rows(&ml.df, split).unwrap();
        let p = model.predict_proba(&frame::take(&texts, &rows));
        for (j, label) in model.labels().iter().enumerate() {
            let y = frame::take(&target_column(&ml.df, Label::target_of(label).unwrap()).unwrap(), &rows);
            let pj = p.column(j).to_vec();
            let c = Counts::at_threshold(&y, &pj, model.thresholds()[j]).unwrap();
            let r = ea.metrics.height();
            let row = (0..r)
                .find(|&i| {
                    ea.metrics.column("label").unwrap().str().unwrap().get(i) == Some(label.as_str())
                        && ea.metrics.column("split").unwrap().str().unwrap().get(i) == Some(split.as_str())
                })
                .unwrap();
            let get = |name: &str| ea.metrics.column(name).unwrap().get(row).unwrap().extract::<f64>().unwrap();
            assert_eq!(get("support") as usize, c.support());
            assert_eq!(get("precision"), c.precision());
            assert_eq!(get("recall"), c.recall());
            assert_eq!(get("f1"), c.f1());
            for e in ea.examples.iter().filter(|e| &e.label == label && e.split == split) {
                let want = if e.kind == "FP" { c.fp } else { c.fn_ };
                assert_eq!(e.rows.height(), want.min(50), "{label} {split} {}", e.kind);
                let pe: Vec<f64> = e.rows.column(&format!("p_{label}")).unwrap().f64().unwrap().iter().flatten().collect();
                if e.kind == "FP" {
                    assert!(pe.windows(2).all(|w| w[0] >= w[1]));
                    // The kept FPs are the highest-p ones: nothing left out scores higher.
                    let cut = pe.last().copied().unwrap_or(f64::INFINITY);
                    let higher = (0..y.len()).filter(|&i| !y[i] && pj[i] >= model.thresholds()[j] && pj[i] > cut).count();
                    assert!(higher <= e.rows.height());
                } else {
                    assert!(pe.windows(2).all(|w| w[0] <= w[1]));
                }
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("revmod-errors-{}", std::process::id()));
    let files = ea.save(&dir).unwrap();
    assert_eq!(files.len(), 21);
    assert!(dir.join("misclf_ads_val_FP.csv").exists() && dir.join("misclf_relevant_test_FN.csv").exists());
    let back = read_csv(&dir.join("misclf_irrelevant_val_FP.csv"));
    let orig = &ea.examples.iter().find(|e| e.label == "irrelevant" && e.split == Part::Val && e.kind == "FP").unwrap().rows;
    assert_eq!(back.height(), orig.height());
    assert_eq!(back.column("text").unwrap().str().unwrap().get(0), orig.column("text").unwrap().str().unwrap().get(0));
    let html = revmod::show::Show::html(&ea.show(3));
    assert!(html.contains("misclassified") || html.contains("flagged but not labeled"));
    std::fs::remove_dir_all(&dir).ok();
}
