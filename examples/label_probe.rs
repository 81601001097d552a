//! The relevance probe's tools (`src/label/probe.rs`), on the embedded model in few-shot mode:
//!
//! - `label_probe features GOLD.csv OUT.csv LAYERS [LIMIT]`: per review of a gold CSV, what the few-shot
//!   labeler reads: the five question log-odds, the keyword rules' hits and the mean hidden state of the
//!   chosen layers (comma-separated, 0-based) over the review's block, captured in the same forward; one
//!   CSV row per review (`index, guarded, 5 gold values, 5 log-odds, 5 rule hits, features...`). For
//!   studying probes and replaying combinations on whole data sets.
//! - `label_probe fit FEATURES.csv LAYERS LAYER OUT.txt [L2]`: from a `features` file of the project's
//!   training reviews (`data/probe-train.csv`) written with LAYERS, fits the probe's heads for irrelevant
//!   and non_visit on LAYER ([`revmod::label::probe::fit_probe`]) and writes its text form (the
//!   embedded one is `src/label/probe-gemma3-270m.txt`).

use std::io::Write;

use anyhow::{bail, ensure, Context, Result};
use revmod::label::eval::read_gold;
use revmod::label::fewshot::{rule_hits, FEWSHOT_MAX_CHARS};
use revmod::label::guard::{cheap_low_quality, clean_review};
use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
use revmod::label::probe::fit_probe;
use revmod::label::prompt::prepare_text;
use revmod::label::rules::RulesBackend;
use revmod::label::ReviewInput;
use revmod::moderation::{Label, PerLabel};

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    ensure!(a.len() >= 5, "usage: label_probe features GOLD.csv OUT.csv LAYERS [LIMIT] | fit FEATURES.csv LAYERS LAYER OUT.txt [L2]");
    if a[1] == "fit" {
        return fit(&a);
    }
    let gold = read_gold(&a[2])?;
    let layers: Vec<usize> = a[4].split(',').map(|s| s.parse().context("LAYERS")).collect::<Result<_>>()?;
    let mut b = LocalGemmaBackend::load(None, LocalParams { mode: Some(LabelMode::FewShot), probe: None, ..Default::default() })?;
    b.set_capture_layers(&layers);
    let rules = RulesBackend::new();
    let limit: usize = if a[1] == "features" { a.get(5).map(|s| s.parse()).transpose()?.unwrap_or(usize::MAX) } else { usize::MAX };
    let t0 = std::time::Instant::now();
    let mut rows = Vec::new();
    for (i, r) in gold.reviews.iter().enumerate().take(limit) {
        let cleaned = clean_review(&r.text);
        if cheap_low_quality(&cleaned) {
            rows.push((i, None));
            continue;
        }
        let input = ReviewInput { text: cleaned.clone(), ..r.clone() };
        let lo = b.fewshot_log_odds(&input, FEWSHOT_MAX_CHARS)?;
        let feats = b.take_hidden();
        ensure!(feats.len() == layers.len(), "row {i}: {} hidden states captured for {} layers", feats.len(), layers.len());
        let hits = rule_hits(&rules.judge(&prepare_text(&cleaned, 1000)));
        rows.push((i, Some((lo, hits, feats))));
        if i % 20 == 0 {
            eprintln!("{i} rows, {:.1}s", t0.elapsed().as_secs_f64());
        }
    }
    match a[1].as_str() {
        "features" => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&a[3])?);
            for (i, got) in &rows {
                let truth: Vec<String> = gold.truth[*i].iter().map(|t| t.map_or(String::new(), |x| u8::from(x).to_string())).collect();
                let Some((lo, hits, feats)) = got else {
                    writeln!(out, "{i},1,{}", truth.join(","))?;
                    continue;
                };
                let mut row = format!("{i},0,{}", truth.join(","));
                lo.iter().for_each(|x| row.push_str(&format!(",{x:.4}")));
                hits.iter().for_each(|h| row.push_str(&format!(",{}", u8::from(*h))));
                feats.iter().flatten().for_each(|x| row.push_str(&format!(",{x:.4}")));
                writeln!(out, "{row}")?;
            }
        }
        other => bail!("unknown subcommand {other:?}"),
    }
    Ok(())
}

/// `fit FEATURES.csv LAYERS LAYER OUT.txt [L2]`.
fn fit(a: &[String]) -> Result<()> {
    ensure!(a.len() >= 6, "usage: label_probe fit FEATURES.csv LAYERS LAYER OUT.txt [L2]");
    let layers: Vec<usize> = a[3].split(',').map(|s| s.parse().context("LAYERS")).collect::<Result<_>>()?;
    let layer: usize = a[4].parse().context("LAYER")?;
    let at = layers.iter().position(|&l| l == layer).with_context(|| format!("layer {layer} is not among {layers:?}"))?;
    let l2: f64 = a.get(6).map(|s| s.parse()).transpose()?.unwrap_or(1e-2);
    let text = std::fs::read_to_string(&a[2]).with_context(|| format!("reading {}", a[2]))?;
    let (mut feats, mut truth) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        ensure!(f.len() >= 7, "{} line {}: too few fields", a[2], n + 1);
        if f[1] == "1" {
            continue; // guarded: the model never sees it
        }
        let t = PerLabel::from_fn(|l| match f[2 + l as usize] {
            "" => None,
            v => Some(v == "1"),
        });
        let x: Vec<f32> = f[17..].iter().map(|v| v.parse::<f32>()).collect::<Result<_, _>>().with_context(|| format!("{} line {}", a[2], n + 1))?;
        ensure!(x.len() % layers.len() == 0, "{} line {}: {} features for {} layers", a[2], n + 1, x.len(), layers.len());
        let d = x.len() / layers.len();
        feats.push(x[at * d..(at + 1) * d].to_vec());
        truth.push(t);
    }
    let probe = fit_probe(layer, &feats, &truth, &[Label::Irrelevant, Label::NonVisit], l2)?;
    std::fs::write(&a[5], probe.to_text())?;
    println!("fitted on {} reviews: heads for {:?}, fingerprint {}, written to {}", feats.len(), probe.heads.iter().map(|h| h.label.name()).collect::<Vec<_>>(), probe.fingerprint(), a[5]);
    Ok(())
}
