//! Step 12 guard behaviour on real-ish validation scores of real review texts: 0, 1 and 5 positives,
//! the flag-rate rule, the guard switched off (the seed's behaviour), and the loud report.

use revmod::eval::{calibrate_label, pr_curve, CalibrateParams, Counts, Decision, GuardObjection};

#[path = "support/mod.rs"]
mod support;
use support::{nb_scores, violations};

/// Real-ish probabilities of "policy violation": smoothed word log-odds fit on part1, applied to part2.
fn scored_part2() -> (Vec<bool>, Vec<f64>) {
    let train = violations("part1.csv");
    let test = violations("part2.csv");
    let s = nb_scores(&train, &test, Some(-2.0));
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
    assert!(!c.decision.updated());
    assert_eq!(c.new_threshold, 0.5);
    assert_eq!(c.positives, 0);
    assert!(matches!(c.decision, Decision::Kept(GuardObjection::FewPositives { positives: 0, min_positives: 5, .. })), "{c:?}");
    assert_eq!(c.status(), "KEPT (guard)");
    // The seed's behaviour: with no positive, F1 is 0 everywhere and argmax picks the lowest score,
    // which flags every row.
    let off = CalibrateParams { guard: false, ..CalibrateParams::default() };
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &off).unwrap();
    assert!(c.decision.updated());
    let min = s.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(c.new_threshold, min);
    assert_eq!(c.best_flag_rate, 1.0);
    assert_eq!(c.status(), "UPDATED DESPITE GUARD (guard off)");
    assert!(matches!(c.decision, Decision::UpdatedDespiteGuard(GuardObjection::FewPositives { positives: 0, .. })), "the verdict is still reported with the guard off");
}

#[test]
fn one_positive_keeps_the_old_threshold_guard_off_takes_argmax_f1() {
    let (y, s) = val_set(1, false);
    let (c, _) = calibrate_label("spam", &y, &s, 0.3, &CalibrateParams::default()).unwrap();
    assert!(!c.decision.updated() && c.positives == 1);
    assert!(matches!(c.decision.objection(), Some(GuardObjection::FewPositives { positives: 1, .. })), "{c:?}");
    // the previous threshold is kept when it flags no more than 3x the base rate, else the fallback 0.5
    let old_ok = c.old_flag_rate <= 3.0 * c.base_rate;
    assert_eq!(matches!(c.decision, Decision::FellBack(_)), !old_ok, "{c:?}");
    assert_eq!(c.new_threshold, if old_ok { 0.3 } else { 0.5 });
    // a previous threshold below every score flags every row: never kept, the fallback replaces it
    let low = s.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let (c, _) = calibrate_label("spam", &y, &s, low, &CalibrateParams::default()).unwrap();
    assert_eq!(c.old_flag_rate, 1.0);
    assert!(matches!(c.decision, Decision::FellBack(_)) && c.new_threshold == 0.5 && c.status() == "FALLBACK (guard)", "{c:?}");
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
    assert_eq!(c.decision.updated(), flag <= 3.0 * c.base_rate, "{c:?}");
    assert_eq!(c.decision, Decision::Updated, "top-scored positives should calibrate: {c:?}");
    assert_eq!(c.new_threshold, c.best.threshold);
    // The same five with min_positives 6: kept by the count rule.
    let strict = CalibrateParams { min_positives: 6, ..CalibrateParams::default() };
    let (c6, _) = calibrate_label("ads", &y, &s, 0.5, &strict).unwrap();
    assert!(matches!(c6.decision, Decision::Kept(GuardObjection::FewPositives { positives: 5, min_positives: 6, .. })), "{c6:?}");
    // Five low-scored positives: the F1 optimum would flag many times the base rate -> kept.
    let (y, s) = val_set(5, false);
    let (c, _) = calibrate_label("ads", &y, &s, 0.5, &on).unwrap();
    assert!(c.best_flag_rate > 3.0 * c.base_rate, "{c:?}");
    assert!(!c.decision.updated() && c.new_threshold == 0.5);
    assert!(matches!(c.decision.objection(), Some(GuardObjection::FlagsTooMany { max_flag_multiple: 3.0, .. })), "{c:?}");
    // A looser multiple lets it through exactly when the rate is under it.
    let loose = CalibrateParams { max_flag_multiple: c.best_flag_rate / c.base_rate + 1.0, ..on.clone() };
    let (c2, _) = calibrate_label("ads", &y, &s, 0.5, &loose).unwrap();
    assert_eq!(c2.decision, Decision::Updated);
}


/// A baseline trained like the seed on 6,000 real reviews with derived labels (`spam` kept rare: a
/// handful of validation positives, the seed's situation), plus the split frame.
fn trained() -> (revmod::train::Baseline, revmod::split::MlReady) {
    support::trained_baseline(6000, 1500)
}

#[test]
fn calibrate_a_trained_baseline_guard_on_and_off_and_persist_thresholds() {
    use revmod::eval::{calibrate, frame};
    use revmod::moderation::Scorer;
    let (mut model, ml) = trained();
    let on = calibrate(&model, &ml.df, &CalibrateParams::default()).unwrap();
    let off = calibrate(&model, &ml.df, &CalibrateParams { guard: false, ..CalibrateParams::default() }).unwrap();
    // Curves are the PR curves of the model's validation probabilities.
    let val = frame::split_rows(&ml.df, revmod::split::Part::Val).unwrap();
    let (texts, _) = frame::texts(&ml.df, "text").unwrap();
    let p = model.predict_proba(&frame::take(&texts, &val));
    for (j, l) in on.labels.iter().enumerate() {
        let y = frame::take(&revmod::moderation::target_column(&ml.df, revmod::moderation::Label::target_of(&l.label).unwrap()).unwrap(), &val);
        assert_eq!(on.curves[j], pr_curve(&y, &p.column(j).to_vec()).unwrap(), "{}", l.label);
        assert_eq!(l.old_threshold, model.thresholds()[j]);
        // Guard off = the seed: argmax F1 everywhere. Guard on: same unless the guard objects.
        assert_eq!(off.labels[j].new_threshold, l.best.threshold);
        assert_eq!(l.decision.updated(), l.decision.objection().is_none());
        if l.positives < 5 {
            assert!(!l.decision.updated(), "{} has {} val positives", l.label, l.positives);
        }
    }
    let spam = &on.labels[4];
    assert!(spam.positives < 5, "the derived spam label should be rare on val: {spam:?}");
    assert!(on.warnings().iter().any(|w| w.contains("`spam`") && w.contains("kept previous threshold")));
    assert!(off.warnings().iter().any(|w| w.contains("`spam`") && w.contains("guard OFF")));
    let html = revmod::show::Show::html(&on.show().unwrap());
    assert!(html.contains("Small-support guard") && html.contains("KEPT (guard)") && html.contains("<svg"));

    // Persist: apply to the model, save it, update thresholds.json, load it back.
    let dir = std::env::temp_dir().join(format!("revmod-calibrate-{}", std::process::id()));
    on.apply(&mut model).unwrap();
    model.save(&dir).unwrap();
    on.update_thresholds_json(dir.join("thresholds.json")).unwrap();
    let back = revmod::train::Baseline::load(&dir).unwrap();
    assert_eq!(back.thresholds(), on.thresholds().as_slice());
    assert!(back.threshold_reasons()[4].starts_with("kept by the small-support guard"), "{:?}", back.threshold_reasons());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("thresholds.json")).unwrap()).unwrap();
    assert_eq!(json["calibration"]["guard"], true);
    assert_eq!(json["calibration"]["labels"]["spam"]["status"], "KEPT (guard)");
    assert!(json["calibration"]["labels"]["spam"]["reason"].as_str().unwrap().contains("validation positive"));
    let charts = on.save_charts(dir.join("charts")).unwrap();
    assert_eq!(charts.len(), 6);
    assert!(charts.iter().all(|c| std::fs::read_to_string(c).unwrap().starts_with("<svg")));

    // The seed's cautionary tale, measured: flag rates on reviews the model never saw.
    let unseen: Vec<String> = support::reviews(12000)[6000..].iter().map(|r| r.text.clone()).collect();
    let refs: Vec<&str> = unseen.iter().map(String::as_str).collect();
    let pu = model.predict_proba(&refs);
    for (j, l) in on.labels.iter().enumerate() {
        let rate = |t: f64| pu.column(j).iter().filter(|&&x| x >= t).count() as f64 / refs.len() as f64;
        eprintln!(
            "{:<10} val positives {:>4}  guard on: threshold {:.4} flags {:>5.1}%   guard off: threshold {:.4} flags {:>5.1}%",
            l.label,
            l.positives,
            l.new_threshold,
            100.0 * rate(l.new_threshold),
            off.labels[j].new_threshold,
            100.0 * rate(off.labels[j].new_threshold)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
