//! The default labeler (the embedded Gemma-3 270M, a base model, in few-shot log-likelihood mode) measured
//! against human labels on real reviews: per-label F1 above floors measured for it (see README, "How good are
//! the labels"), and checks that it reads the text (not constant, not blind to the review).
//!
//! Skipped with a message when scripts/setup-model has not installed the model. The data sets are read from
//! ../shared/data (never copied into the repository): the Utah sample's hand label `relevant`, and gold-dev
//! (another TechJam team's human labels, see its README).

use revmod::label::eval::{label_eval, read_gold, Gold};
use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
use revmod::label::backend::LabelBackend;
use revmod::label::{Labeler, ReviewInput};
use revmod::moderation::{Label, PerLabel};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn model() -> Option<String> {
    match revmod::llm::embedded::embedded_model_path() {
        Ok(p) if p.exists() => Some(p.to_string_lossy().into_owned()),
        _ => {
            eprintln!("SKIP: the embedded model is not installed (scripts/setup-model)");
            None
        }
    }
}

fn labeler(spec: &str) -> Labeler {
    let b = LocalGemmaBackend::load(Some(spec), LocalParams::default()).unwrap();
    assert_eq!(b.mode(), LabelMode::FewShot, "the embedded 270M is a base model (no chat template)");
    Labeler::new(Box::new(b))
}

/// The Utah sample's reviews with a hand label and a text (each text once): relevant = "Yes", ads =
/// "No, advertisement"; the place's name and categories from the meta file. The malformed line is skipped.
fn utah_gold() -> Gold {
    use serde_json::Value;
    let dir = format!("{DATA}/google-local-utah");
    let lines = |f: &str| -> Vec<Value> {
        std::fs::read_to_string(format!("{dir}/{f}")).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    };
    let mut meta = std::collections::HashMap::new();
    for m in lines("meta-Utah.partial.json") {
        let id = m["gmap_id"].as_str().unwrap_or_default().to_string();
        let cats: Vec<&str> = m["category"].as_array().map(|a| a.iter().filter_map(|c| c.as_str()).collect()).unwrap_or_default();
        meta.entry(id).or_insert((m["name"].as_str().unwrap_or_default().to_string(), cats.join(", ")));
    }
    let mut gold = Gold { path: dir.clone().into(), reviews: Vec::new(), truth: Vec::new(), missing: vec!["irrelevant", "non_visit", "spam"] };
    let mut seen = std::collections::HashSet::new();
    for v in lines("review-Utah.sample.json") {
        let (Some(label), Some(text)) = (v["relevant"].as_str(), v["text"].as_str()) else { continue };
        if !seen.insert(text.to_string()) {
            continue;
        }
        let (name, category) = meta.get(v["gmap_id"].as_str().unwrap_or_default()).cloned().unwrap_or_default();
        gold.reviews.push(ReviewInput { text: text.into(), business_name: name, category });
        gold.truth.push(PerLabel([Some(label == "Yes"), Some(label.contains("advertisement")), None, None, None]));
    }
    gold
}

#[test]
fn default_labeler_f1_on_real_human_labels_is_above_measured_floors() {
    let Some(spec) = model() else { return };
    let mut lab = labeler(&spec);
    assert!(lab.labeler_id().contains("mode=fewshot-loglik"), "{}", lab.labeler_id());

    let utah = utah_gold();
    assert!(utah.reviews.len() > 150, "{}", utah.reviews.len());
    let (ev, _) = label_eval(&utah, &mut lab).unwrap();
    eprintln!("{ev}");
    let rel = ev.get("relevant").unwrap();
    assert!(rel.f1 >= FLOOR_UTAH_RELEVANT, "{ev}");

    // gold-dev's held-out part (the rows whose text hash is odd, `Gold::split_tune_held`; nothing was tuned
    // on it): every ad and off-topic row and every 2nd other row (~160 reviews, to keep the test short)
    let (_, mut gold) = read_gold(format!("{DATA}/gold-dev/augeliua-536.csv")).unwrap().split_tune_held();
    gold.retain(|i, _, t| t[1] == Some(true) || t[2] == Some(true) || i % 2 == 0);
    assert_eq!(gold.reviews.len(), 159);
    let (ev, _) = label_eval(&gold, &mut lab).unwrap();
    eprintln!("{ev}");
    let (ads, irr, rel) = (ev.get("ads").unwrap(), ev.get("irrelevant").unwrap(), ev.get("relevant").unwrap());
    assert!(ads.f1 >= FLOOR_GOLD_ADS, "{ev}");
    assert!(irr.f1 >= FLOOR_GOLD_IRRELEVANT, "{ev}");
    assert!(rel.f1 >= FLOOR_GOLD_RELEVANT, "{ev}");
    for s in [ads, irr] {
        assert!(s.flag_rate <= 3.0 * s.true_rate, "{} flagged at {:.3}, more than 3x its rate {:.3}", s.label, s.flag_rate, s.true_rate);
    }
    // the labels are not constant on real reviews
    assert!(rel.flagged > 0 && rel.flagged < rel.rows, "{ev}");
    assert!(irr.flagged > 0 && irr.flagged < irr.rows, "{ev}");
}

// Floors: a little under what the default measured on exactly these rows (README, "How good are the
// labels"), on both kernel paths (AVX-512 VNNI = candle's arithmetic; AVX2 with REVMOD_CPU_KERNEL=avx2), on
// an AMD EPYC with AVX-512 VNNI: Utah relevant 0.947 / 0.944 (0.910 before the guard stopped only
// degenerate repetition, 0.891 before `fewshot-v3`); gold-dev held-out subset ads 1.000 / 1.000, irrelevant
// 0.545 / 0.522 (15 positives: one miss moves it by ~0.05), relevant 0.927 / 0.918 (0.893 before the guard
// change, 0.869 before v3).
const FLOOR_UTAH_RELEVANT: f64 = 0.92;
const FLOOR_GOLD_ADS: f64 = 0.95;
const FLOOR_GOLD_IRRELEVANT: f64 = 0.45;
const FLOOR_GOLD_RELEVANT: f64 = 0.90;

#[test]
fn default_labeler_reads_the_text() {
    let Some(spec) = model() else { return };
    let mut b = LocalGemmaBackend::load(Some(&spec), LocalParams::default()).unwrap();
    let r = |t: &str| ReviewInput { text: t.into(), business_name: "Maple Diner".into(), category: "Restaurant".into() };
    let genuine = [
        "The pancakes were fluffy and our waitress kept the coffee coming. Will be back.",
        "Burger was cold and the fries were soggy, and we waited 45 minutes for a table.",
        "Great breakfast spot, friendly staff and the hash browns are crispy.",
    ];
    let ads = [
        "Best deals in town! Visit www.cheapwatches-online.com and use code SAVE30 for 30% off today!",
        "Need a plumber? Call Joe at 385-555-0199 for a free quote, 24/7 service!",
        "Follow my page @fitlife_coach for daily workout plans and supplement discounts, DM me!",
    ];
    let off = [
        "Does anyone know when the county fair starts this year? Looking for tickets.",
        "My son just got his driver's license today, so proud of him!",
    ];
    let score = |b: &mut LocalGemmaBackend, t: &str| b.fewshot_log_odds(&r(t), 400).unwrap();
    let g: Vec<PerLabel<f32>> = genuine.iter().map(|t| score(&mut b, t)).collect();
    let a: Vec<PerLabel<f32>> = ads.iter().map(|t| score(&mut b, t)).collect();
    let o: Vec<PerLabel<f32>> = off.iter().map(|t| score(&mut b, t)).collect();
    // not constant: the scores move with the text
    let all: Vec<&PerLabel<f32>> = g.iter().chain(&a).chain(&o).collect();
    for k in Label::ALL {
        let (lo, hi) = all.iter().fold((f32::MAX, f32::MIN), |(l, h), x| (l.min(x[k]), h.max(x[k])));
        assert!(hi - lo > 0.1, "label {k}: log-odds barely move with the text ({lo}..{hi})");
    }
    // reads the text: genuine reviews score higher on relevance than off-topic ones. (The 270M's own ads
    // answer barely separates these ads from genuine reviews, and by how much depends on the kernel path:
    // mean log-odds -2.63 against -2.99 on the AVX2 path, -2.63 against -2.69 on candle's arithmetic
    // (AVX-512 VNNI), because a first answer at its tie flips between paths and the later questions are
    // asked after it (README); the rules carry ads, so ads are checked on the whole labeler below.)
    let mean = |v: &[PerLabel<f32>], k: Label| v.iter().map(|x| x[k]).sum::<f32>() / v.len() as f32;
    assert!(mean(&g, Label::Relevant) > mean(&o, Label::Relevant), "relevance: genuine {g:?} vs off-topic {o:?}");
    // the same review scored twice gives the same numbers (the page's KV cache is reused, not corrupted)
    assert_eq!(score(&mut b, genuine[0]), g[0]);
    // the whole labeler (answers + hidden-state probe + rules): every ad is flagged as an ad, far above the rest;
    // off-topic posts score higher on irrelevant than genuine reviews, and the flags are not the same for
    // every text
    assert!(b.probe().is_some(), "the embedded model gets the embedded probe");
    let prompt = revmod::label::ModeratorPrompt::default();
    let inputs: Vec<ReviewInput> = genuine.iter().chain(&off).chain(&ads).map(|t| r(t)).collect();
    let probs: Vec<PerLabel<f32>> = b.answer(&prompt, &inputs).into_iter().map(|o| o.unwrap().probs.unwrap()).collect();
    let (pg, po, pa) = (&probs[..genuine.len()], &probs[genuine.len()..genuine.len() + off.len()], &probs[genuine.len() + off.len()..]);
    let ad = Label::Ads;
    // (not "nothing else is": on candle's arithmetic "Great breakfast spot, friendly staff and ..." gets p(ads)
    // 0.58; enthusiastic praise reading as promotion is the 270M's known false positive, README)
    let mean_p = |v: &[PerLabel<f32>]| v.iter().map(|p| p[ad]).sum::<f32>() / v.len() as f32;
    let others: Vec<PerLabel<f32>> = pg.iter().chain(po).cloned().collect();
    assert!(pa.iter().all(|p| p[ad] >= 0.5) && mean_p(pa) > mean_p(&others) + 0.4, "p(ads): ads {pa:?} others {others:?}");
    let irr = Label::Irrelevant;
    let max_g = pg.iter().map(|p| p[irr]).fold(0f32, f32::max);
    assert!(po.iter().all(|p| p[irr] > max_g), "p(irrelevant): off-topic {po:?} vs genuine {pg:?}");
    assert!(po.iter().any(|p| p[irr] >= 0.5) && pg.iter().all(|p| p[irr] < 0.5), "off-topic {po:?} genuine {pg:?}");
}
