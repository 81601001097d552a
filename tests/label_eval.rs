//! `label-eval`'s library side: gold files (good and malformed), the metrics, and the sample generator's
//! truth file as a gold file. No model needed: the rules-only labeler labels.

use revmod::data::{write_sample, SampleParams};
use revmod::label::eval::{agreement, compare_labeled, label_eval, label_eval_file, read_gold};
use revmod::label::{label_with_ckpt, CkptOptions, Labeler};
use revmod::moderation::{Label, PerLabel};

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-label-eval-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn gold_file_reads_labels_unknowns_and_skips_missing_columns() {
    let d = tmp("good");
    let p = write(&d, "g.csv", "text,business_name,ads,relevant\n\"Call 801-555-0142 now, use code SAVE20\",Bob's,1,0\n\"The tacos were great, staff friendly\",Rosa,0,1\n\"Nice, \"\"quoted\"\" place\",,,1\n");
    let g = read_gold(&p).unwrap();
    assert_eq!(g.reviews.len(), 3);
    assert_eq!(g.reviews[2].text, "Nice, \"quoted\" place");
    assert_eq!(g.reviews[0].business_name, "Bob's");
    assert_eq!(g.truth[0], PerLabel([Some(false), Some(true), None, None, None]));
    assert_eq!(g.truth[2][Label::Ads], None, "an empty cell is unknown");
    assert_eq!(g.missing, vec!["irrelevant", "non_visit", "spam"]);
    let ev = label_eval_file(&p, &mut Labeler::rules()).unwrap();
    let ads = ev.get("ads").unwrap();
    assert_eq!((ads.rows, ads.support, ads.flagged, ads.true_pos), (2, 1, 1, 1));
    assert!(ev.get("spam").is_none());
    let shown = ev.to_string();
    assert!(shown.contains("skipped (no gold column): irrelevant, non_visit, spam"), "{shown}");
    assert!(shown.contains("precision") && shown.contains("flag rate"), "{shown}");
    assert_eq!(ev.to_frame().unwrap().height(), 2);
}

#[test]
fn malformed_gold_files_get_clear_errors() {
    let d = tmp("bad");
    let no_text = write(&d, "no_text.csv", "review,ads\nhello there friend,1\n");
    let e = format!("{:#}", read_gold(&no_text).unwrap_err());
    assert!(e.contains("no_text.csv") && e.contains("no `text` column"), "{e}");

    let bad_value = write(&d, "bad_value.csv", "text,ads\nfine review here,0\nanother review here,1\nthird one here,yes please\n");
    let e = format!("{:#}", read_gold(&bad_value).unwrap_err());
    assert!(e.contains("bad_value.csv") && e.contains("data row 3") && e.contains("`ads`") && e.contains("yes please"), "{e}");

    let two = write(&d, "two.csv", "text,spam\nok review text,0\nbad one,2\n");
    let e = format!("{:#}", read_gold(&two).unwrap_err());
    assert!(e.contains("data row 2") && e.contains("`spam`"), "{e}");

    let no_labels = write(&d, "no_labels.csv", "text,stars\nsome text here,5\n");
    let e = format!("{:#}", read_gold(&no_labels).unwrap_err());
    assert!(e.contains("none of the label columns"), "{e}");

    let e = format!("{:#}", read_gold(d.join("absent.csv")).unwrap_err());
    assert!(e.contains("absent.csv"), "{e}");
}

#[test]
fn agreement_of_perfect_constant_and_inverted_labelers() {
    let truth: Vec<PerLabel<Option<bool>>> = (0..20).map(|i| PerLabel([Some(i % 4 != 0), Some(i % 4 == 0), None, None, None])).collect();
    let perfect: Vec<PerLabel<bool>> = truth.iter().map(|t| PerLabel([t[Label::Relevant].unwrap(), t[Label::Ads].unwrap(), false, false, false])).collect();
    let s = agreement(&perfect, &truth);
    assert!(s.iter().all(|x| x.f1 == 1.0 && (x.flag_rate - x.true_rate).abs() < 1e-12));
    let constant = vec![PerLabel([true, false, false, false, false]); 20];
    let s = agreement(&constant, &truth);
    assert_eq!(s[1].f1, 0.0);
    assert!((s[0].precision - 0.75).abs() < 1e-12 && s[0].recall == 1.0);
    let inverted: Vec<PerLabel<bool>> = perfect.iter().map(|p| PerLabel([!p[Label::Relevant], !p[Label::Ads], false, false, false])).collect();
    assert!(agreement(&inverted, &truth).iter().all(|x| x.f1 == 0.0));
}

/// The generator knows the kind of every review it writes: its truth file is a gold file, and the keyword
/// rules (written against the same kinds of phenomena) agree with it closely on ads and rants.
#[test]
fn sample_truth_is_a_gold_file_and_measures_step_8() {
    let d = tmp("sample");
    let s = write_sample(&d, &SampleParams { reviews: 600, ..Default::default() }).unwrap();
    let truth_path = s.truth_path.clone().expect("truth file written");
    let gold = read_gold(&truth_path).unwrap();
    assert!(gold.missing.is_empty());
    let ads: usize = gold.truth.iter().filter(|t| t[Label::Ads] == Some(true)).count();
    let kinds_ads = s.kinds.iter().find(|(k, _)| format!("{k:?}") == "Ad").unwrap().1;
    assert_eq!(ads, kinds_ads, "one truth row per generated ad");
    let (ev, _) = label_eval(&gold, &mut Labeler::rules()).unwrap();
    assert!(ev.get("ads").unwrap().f1 > 0.9, "{ev}");
    assert!(ev.get("non_visit").unwrap().f1 > 0.6, "{ev}");

    // step 8b: step 8's labeled rows matched to the truth by text
    let loaded = revmod::data::load_df(&s.review_path, &s.meta_path).unwrap();
    let run = label_with_ckpt(&loaded.df, 80, 40, d.join("ckpt"), &mut Labeler::rules(), &CkptOptions::default()).unwrap();
    let cmp = compare_labeled(&run.labeled, &gold, "rules").unwrap();
    assert!(cmp.rows >= 60, "most sampled rows have a truth row: {cmp}");
    assert!(cmp.get("spam").unwrap().support > 0, "{cmp}");
}
