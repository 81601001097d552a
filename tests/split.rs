//! `split` against iterstrat itself (tests/peers/iterstrat_split.py): random label matrices with rare
//! and empty labels, and the seed's two-stage 70/15/15 split of real reviews.

#[path = "support/mod.rs"]
mod support;

use revmod::moderation::{LABELS, TARGETS};
use revmod::split::iterstrat::{multilabel_stratified_shuffle_split, LabelMatrix};
use revmod::split::{split, MlReady, Part, SplitParams};
use serde_json::json;
use support::{labeled_frame, peer, reviews, SplitMix64};

fn random_matrix(rng: &mut SplitMix64) -> Vec<Vec<bool>> {
    let n = 10 + rng.below(500);
    let l = 2 + rng.below(5);
    let probs = [0.5, 0.2, 0.05, 0.01, 0.0];
    let p: Vec<f64> = (0..l).map(|_| probs[rng.below(probs.len())]).collect();
    let mut y: Vec<Vec<bool>> = (0..n).map(|_| p.iter().map(|&p| rng.next_f64() < p).collect()).collect();
    // Some labels get exactly 1-5 positives.
    for j in 0..l {
        if rng.next_f64() < 0.3 {
            for row in y.iter_mut() {
                row[j] = false;
            }
            for _ in 0..1 + rng.below(5) {
                let i = rng.below(n);
                y[i][j] = true;
            }
        }
    }
    y
}

fn supports(y: &[Vec<bool>], idx: &[usize]) -> Vec<usize> {
    (0..y[0].len()).map(|j| idx.iter().filter(|&&i| y[i][j]).count()).collect()
}

#[test]
fn matches_iterstrat_on_random_label_matrices() {
    let mut rng = SplitMix64(2024);
    let test_sizes = [0.3, 0.5, 0.15];
    let cases: Vec<(Vec<Vec<bool>>, f64, u32)> = (0..150)
        .map(|_| (random_matrix(&mut rng), test_sizes[rng.below(3)], rng.below(1000) as u32))
        .collect();
    let input = json!({"cases": cases.iter().map(|(y, t, s)| json!({
        "y": y.iter().map(|r| r.iter().map(|&b| b as u8).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "test_size": t, "seed": s})).collect::<Vec<_>>()});
    let out = peer("iterstrat_split.py", &input);
    let mut identical = 0;
    for (k, (y, t, s)) in cases.iter().enumerate() {
        let ours = multilabel_stratified_shuffle_split(&LabelMatrix::from_rows(y), *t, *s).unwrap().1;
        let theirs: Vec<usize> = serde_json::from_value(out["cases"][k]["test"].clone()).unwrap();
        // Parity with iterstrat: equal sizes, every label's support within +-1 ...
        assert_eq!(ours.len(), theirs.len(), "case {k}: test sizes differ");
        for (a, b) in supports(y, &ours).iter().zip(supports(y, &theirs)) {
            assert!(a.abs_diff(b) <= 1, "case {k}: label support {a} vs iterstrat {b}");
        }
        // ... and in fact the very same rows, since numpy's generator is reproduced.
        identical += usize::from(ours == theirs);
    }
    assert_eq!(identical, cases.len(), "rows differ from iterstrat in {} cases", cases.len() - identical);
}

#[test]
fn seed_split_of_real_reviews_matches_iterstrat() {
    let revs = reviews(4000);
    let df = labeled_frame(&revs, 600);
    let ml = split(&df, &SplitParams::default()).unwrap();
    let dups = revs.len() - ml.len();
    assert_eq!(ml.report.n_duplicates, dups, "every dropped row is a counted duplicate");
    // iterstrat on the same de-duplicated label matrix, in the seed's column order.
    let order = SplitParams::default().stratify_order;
    let y: Vec<Vec<i32>> = (0..ml.len())
        .map(|i| order.iter().map(|c| ml.df.column(c).unwrap().i32().unwrap().get(i).unwrap()).collect())
        .collect();
    let out = peer("iterstrat_split.py", &json!({"seed_split": [{"y": y}]}));
    let theirs: Vec<String> = serde_json::from_value(out["seed_split"][0]["part"].clone()).unwrap();
    let ours: Vec<&str> = ml.parts().iter().map(|p| p.as_str()).collect();
    assert_eq!(ours, theirs);
    let [tr, va, te] = ml.part_sizes();
    assert_eq!(tr + va + te, ml.len());
    assert!((tr as f64 / ml.len() as f64 - 0.70).abs() < 0.01, "train share {tr}/{}", ml.len());
    // spam is rare (a handful of positives) and must still be spread.
    let spam: usize = Part::ALL.iter().map(|&p| ml.targets("spam", p).unwrap().iter().sum::<i32>() as usize).sum();
    assert!((1..=8).contains(&spam), "spam positives {spam}");
    // Supports table agrees with the targets.
    let sup = ml.supports().unwrap();
    assert_eq!(sup.height(), LABELS.len() + 1);
    let val_ads = sup.column("val").unwrap().i64().unwrap().get(1).unwrap();
    assert_eq!(val_ads as i32, ml.targets("ads", Part::Val).unwrap().iter().sum::<i32>());
    // Save / load round trip.
    let dir = std::env::temp_dir().join(format!("revmod-split-{}", std::process::id()));
    let path = ml.save(&dir).unwrap();
    let back = MlReady::load(&path).unwrap();
    assert_eq!(back.parts(), ml.parts());
    assert_eq!(back.texts(Part::Test), ml.texts(Part::Test));
    for t in TARGETS {
        assert_eq!(back.targets(t, Part::Val).unwrap(), ml.targets(t, Part::Val).unwrap());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_named_and_nothing_is_dropped_silently() {
    let revs = reviews(50);
    let mut df = labeled_frame(&revs, 0);
    // A label value that is not 0/1: the error names the column and the row.
    let mut bad: Vec<i32> = vec![0; revs.len()];
    bad[7] = 2;
    df.with_column(polars::prelude::Column::new("is_spam".into(), bad)).unwrap();
    let err = format!("{:#}", split(&df, &SplitParams::default()).unwrap_err());
    assert!(err.contains("is_spam") && err.contains("row 7"), "{err}");
    // Missing text and missing labels are skipped and counted; a label without positives is reported.
    let mut df = labeled_frame(&revs, 0);
    let mut texts: Vec<Option<String>> = revs.iter().map(|r| Some(r.text.clone())).collect();
    texts[3] = None;
    texts[4] = Some("   ".into());
    df.with_column(polars::prelude::Column::new("text".into(), texts)).unwrap();
    let mut ads: Vec<Option<i32>> = vec![Some(0); revs.len()];
    ads[9] = None;
    df.with_column(polars::prelude::Column::new("is_advertisement".into(), ads)).unwrap();
    let ml = split(&df, &SplitParams::default()).unwrap();
    let r = &ml.report;
    assert_eq!(r.n_missing_text, 2);
    assert_eq!((r.n_missing_label, r.first_missing_label), (1, Some(9)));
    assert_eq!(r.n_input, ml.len() + r.n_missing_text + r.n_missing_label + r.n_duplicates);
    assert!(r.labels_without_positives.contains(&"spam".to_string()));
    assert!(r.labels_without_positives.contains(&"ads".to_string()));
    // No such column: named.
    let err = format!("{:#}", split(&df.drop("is_spam").unwrap(), &SplitParams::default()).unwrap_err());
    assert!(err.contains("is_spam"), "{err}");
}
