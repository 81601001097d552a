//! Step 12 guard behaviour on real-ish validation scores of real review texts: 0, 1 and 5 positives,
//! the flag-rate rule, the guard switched off (the seed's behaviour), and the loud report.

use std::collections::HashMap;

use polars::prelude::*;
use revmod::eval::{calibrate_label, pr_curve, CalibrateParams, Counts};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/reviews-40k");

fn reviews(part: &str) -> Vec<(String, bool)> {
    let path = format!("{DATA}/{part}");
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.clone().into()))
        .unwrap()
        .finish()
        .unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let text = df.column("text").unwrap().str().unwrap().clone();
    let lab = df.column("policy_label").unwrap().cast(&DataType::Int64).unwrap();
    text.iter()
        .zip(lab.i64().unwrap().iter())
        .filter_map(|(t, l)| Some((t?.to_string(), l? == 0)))
        .collect()
}

fn words(t: &str) -> Vec<String> {
    t.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(str::to_string).collect()
}

/// Real-ish probabilities of "policy violation": smoothed word log-odds fit on part1, applied to part2.
fn scored_part2() -> (Vec<bool>, Vec<f64>) {
    let train = reviews("part1.csv");
    let test = reviews("part2.csv");
    let mut pos: HashMap<String, f64> = HashMap::new();
    let mut neg: HashMap<String, f64> = HashMap::new();
    for (t, y) in &train {
        for w in words(t) {
            *(if *y { &mut pos } else { &mut neg }).entry(w).or_default() += 1.0;
        }
    }
    let s = test
        .iter()
        .map(|(t, _)| {
            let mut z = -2.0;
            for w in words(t) {
                z += ((pos.get(&w).unwrap_or(&0.0) + 1.0) / (neg.get(&w).unwrap_or(&0.0) + 1.0)).ln() * 0.05;
            }
            1.0 / (1.0 + (-z).exp())
        })
        .collect();
    (test.iter().map(|x| x.1).collect(), s)
}

/// 600 clean validation rows plus `npos` violations, chosen by `pick` from the violations sorted by score.
fn val_set(npos: usize, highest: bool) -> (Vec<bool>, Vec<f64>) {
    let (y, s) = scored_part2();
    let clean: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).take(600).collect();
    let mut bad: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
    bad.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    if highest {
        bad.reverse();
    }
    let idx: Vec<usize> = clean.into_iter().chain(bad.into_iter().take(npos)).collect();
    (idx.iter().map(|&i| y[i]).collect(), idx.iter().map(|&i| s[i]).collect())
}

#[test]
fn zero_positives_keeps_the_old_threshold_and_guard_off_flags_everything() {
    let (y, s) = val_set(0, true);
    let on = CalibrateParams::default();
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &on).unwrap();
    assert!(!c.updated);
    assert_eq!(c.new_threshold, 0.5);
    assert_eq!(c.positives, 0);
    assert!(c.guard_reason.as_deref().unwrap().contains("only 0 validation positive"), "{c:?}");
    assert_eq!(c.status(), "KEPT (guard)");
    // The seed's behaviour: with no positive, F1 is 0 everywhere and argmax picks the lowest score,
    // which flags every row.
    let off = CalibrateParams { guard: false, ..CalibrateParams::default() };
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &off).unwrap();
    assert!(c.updated);
    let min = s.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(c.new_threshold, min);
    assert_eq!(c.best_flag_rate, 1.0);
    assert_eq!(c.status(), "UPDATED DESPITE GUARD (guard off)");
    assert!(c.guard_reason.is_some(), "the verdict is still reported with the guard off");
}

#[test]
fn one_positive_keeps_the_old_threshold_guard_off_takes_argmax_f1() {
    let (y, s) = val_set(1, false);
    let (c, _) = calibrate_label("spam", &y, &s, 0.3, &CalibrateParams::default()).unwrap();
    assert!(!c.updated && c.new_threshold == 0.3 && c.positives == 1);
    assert!(c.guard_reason.as_deref().unwrap().contains("only 1 validation positive"));
    let off = CalibrateParams { guard: false, ..CalibrateParams::default() };
    let (c, curve) = calibrate_label("spam", &y, &s, 0.3, &off).unwrap();
    assert_eq!(c.new_threshold, pr_curve(&y, &s).unwrap().best_f1().threshold);
    assert_eq!(curve.thresholds.len() + 1, curve.precision.len());
    // A low-scored lone positive: the seed's argmax F1 threshold flags far more than its base rate.
    assert!(c.best_flag_rate > 3.0 * c.base_rate, "{c:?}");
}

#[test]
fn five_positives_pass_the_count_rule_and_meet_the_flag_rate_rule() {
    let on = CalibrateParams::default();
    // Five well-separated positives: the F1 optimum flags about the base rate -> updated.
    let (y, s) = val_set(5, true);
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &on).unwrap();
    let flag = Counts::at_threshold(&y, &s, c.best.threshold).unwrap().flag_rate();
    assert_eq!(c.best_flag_rate, flag);
    assert_eq!(c.positives, 5);
    assert_eq!(c.updated, flag <= 3.0 * c.base_rate, "{c:?}");
    assert!(c.updated, "top-scored positives should calibrate: {c:?}");
    assert_eq!(c.new_threshold, c.best.threshold);
    // The same five with min_positives 6: kept by the count rule.
    let strict = CalibrateParams { min_positives: 6, ..CalibrateParams::default() };
    let (c6, _) = calibrate_label("ads", &y, &s, 0.5, &strict).unwrap();
    assert!(!c6.updated && c6.guard_reason.unwrap().contains("< min_positives 6"));
    // Five low-scored positives: the F1 optimum would flag many times the base rate -> kept.
    let (y, s) = val_set(5, false);
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &on).unwrap();
    assert!(c.best_flag_rate > 3.0 * c.base_rate, "{c:?}");
    assert!(!c.updated && c.new_threshold == 0.5);
    assert!(c.guard_reason.as_deref().unwrap().contains("base rate"), "{c:?}");
    // A looser multiple lets it through exactly when the rate is under it.
    let loose = CalibrateParams { max_flag_multiple: c.best_flag_rate / c.base_rate + 1.0, ..on.clone() };
    let (c2, _) = calibrate_label("ads", &y, &s, 0.5, &loose).unwrap();
    assert!(c2.updated && c2.guard_reason.is_none());
}
