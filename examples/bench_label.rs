//! Benchmark of the local labeling backend: reviews per second of the seed's naive loop (free greedy
//! generation, the whole prompt recomputed for every review) against the prefix KV cache + constrained
//! decoding, and the few-shot log-likelihood mode (the default for base models) against it, on the same real reviews, same model, same machine, one run each. Run: scripts/bench-label.
//!
//! Usage: bench_label [N_REVIEWS] [MODEL_SPEC] [--all] [--fewshot]   (defaults: 8, the embedded Gemma-3 270M;
//! --all adds the two half-way configurations; --fewshot runs only the few-shot mode with and without the
//! hidden-state probe). Both wall-clock and process CPU time are printed: on a shared
//! machine the CPU-time ratio is the steadier one.

use std::time::Instant;

use anyhow::Result;
use revmod::data::load_df;
use revmod::label::guard::{cheap_low_quality, clean_review};
use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
use revmod::label::{parse_output, reviews_from_df, sample_indices, LabelBackend, ModeratorPrompt, ReviewInput};

const UTAH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/google-local-utah");

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let all_configs = args.iter().any(|a| a == "--all");
    // --fewshot: only the few-shot mode with and without the probe
    let fewshot_only = args.iter().any(|a| a == "--fewshot");
    let pos: Vec<&String> = args.iter().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = pos.first().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let spec = pos.get(1).map(|s| s.to_string());
    let df = load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json"))?.df;
    let (all, _) = reviews_from_df(&df)?;
    // reviews that pass the guard (the ones a model sees), in a seeded order
    let reviews: Vec<ReviewInput> = sample_indices(all.len(), all.len(), 42)
        .into_iter()
        .map(|i| all[i].clone())
        .filter(|r| !cheap_low_quality(&clean_review(&r.text)))
        .take(n)
        .collect();
    let prompt = ModeratorPrompt::default();
    println!("bench-label: {} real reviews (Utah sample), model {:?}, threads: candle default", reviews.len(), spec.as_deref().unwrap_or("embedded default"));
    let instruct = LocalParams { mode: Some(LabelMode::Instruct), ..Default::default() };
    let mut configs = vec![
        ("naive: free generation, no prefix cache (seed)", LocalParams { constrained: false, prefix_cache: false, ..instruct.clone() }),
        ("instruct JSON: prefix cache + constrained (old)", instruct.clone()),
        ("few-shot log-likelihood + prefix cache (default)", LocalParams { mode: Some(LabelMode::FewShot), ..Default::default() }),
    ];
    // the same few-shot mode without the hidden-state probe (the default before the probe): the probe's capture
    // must not slow labeling down
    configs.push(("few-shot without the probe (before)", LocalParams { mode: Some(LabelMode::FewShot), probe: None, ..Default::default() }));
    if fewshot_only {
        configs.drain(..2);
    }
    if all_configs {
        configs.push(("prefix cache only", LocalParams { constrained: false, prefix_cache: true, ..instruct.clone() }));
        configs.push(("constrained only", LocalParams { constrained: true, prefix_cache: false, ..instruct.clone() }));
    }
    let mut rates = Vec::new();
    for (name, params) in configs {
        let mut b = LocalGemmaBackend::load(spec.as_deref(), params)?;
        // warm-up on one review (masks, allocations), not timed
        let _ = b.answer(&prompt, &reviews[..1]);
        b.stats = Default::default();
        let t = Instant::now();
        let c0 = cpu_secs();
        let outs = b.answer(&prompt, &reviews);
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs() - c0;
        let parsed = outs.iter().filter(|o| o.as_ref().is_ok_and(|o| parse_output(&o.raw).parse_success)).count();
        let rate = reviews.len() as f64 / secs;
        let cpu_rate = reviews.len() as f64 / cpu;
        println!(
            "{name:<48} {rate:7.3} reviews/s wall, {cpu_rate:7.3} reviews per CPU-second  ({secs:6.1} s wall, {cpu:6.1} s CPU; parse_success {parsed}/{}; prefill {} tok, reused {} tok, decode steps {})",
            reviews.len(),
            b.stats.prefill_tokens,
            b.stats.reused_tokens,
            b.stats.decode_steps
        );
        rates.push((rate, cpu_rate));
    }
    let off = if fewshot_only { 2 } else { 0 };
    if !fewshot_only {
        println!(
            "ratio (prefix cache + constrained) / naive: {:.2}x wall-clock, {:.2}x CPU time",
            rates[1].0 / rates[0].0,
            rates[1].1 / rates[0].1
        );
        println!(
            "ratio few-shot (new default) / instruct JSON (old default): {:.2}x wall-clock, {:.2}x CPU time",
            rates[2].0 / rates[1].0,
            rates[2].1 / rates[1].1
        );
    }
    println!(
        "ratio few-shot with the probe (default) / without it (before): {:.2}x wall-clock, {:.2}x CPU time",
        rates[2 - off].0 / rates[3 - off].0,
        rates[2 - off].1 / rates[3 - off].1
    );
    Ok(())
}

/// User + system CPU seconds of this process so far (Linux /proc; 0 elsewhere).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the ")" that closes the command name: utime is the 12th, stime the 13th
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ is 100 on Linux
}
