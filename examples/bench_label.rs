//! Benchmark of the local labeling backend: reviews per second of the seed's naive loop (free greedy
//! generation, the whole prompt recomputed for every review) against the prefix KV cache + constrained
//! decoding, on the same real reviews, same model, same machine, one run each. Run: scripts/bench-label.
//!
//! Usage: bench_label [N_REVIEWS] [MODEL_SPEC]   (defaults: 24, the embedded Gemma-3 270M)

use std::time::Instant;

use anyhow::Result;
use revmod::data::load_df;
use revmod::label::guard::{cheap_low_quality, clean_review};
use revmod::label::local::{LocalGemmaBackend, LocalParams};
use revmod::label::{parse_output, reviews_from_df, sample_indices, LabelBackend, ModeratorPrompt, ReviewInput};

const UTAH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/google-local-utah");

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(24);
    let spec = args.get(2).cloned();
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
    let configs = [
        ("naive: free generation, no prefix cache (seed)", LocalParams { constrained: false, prefix_cache: false, ..Default::default() }),
        ("prefix cache only", LocalParams { constrained: false, prefix_cache: true, ..Default::default() }),
        ("constrained only", LocalParams { constrained: true, prefix_cache: false, ..Default::default() }),
        ("prefix cache + constrained (revmod default)", LocalParams::default()),
    ];
    let mut rates = Vec::new();
    for (name, params) in configs {
        let mut b = LocalGemmaBackend::load(spec.as_deref(), params)?;
        // warm-up on one review (masks, allocations), not timed
        let _ = b.answer(&prompt, &reviews[..1]);
        b.stats = Default::default();
        let t = Instant::now();
        let outs = b.answer(&prompt, &reviews);
        let secs = t.elapsed().as_secs_f64();
        let parsed = outs.iter().filter(|o| o.as_ref().is_ok_and(|o| parse_output(&o.raw).parse_success)).count();
        let rate = reviews.len() as f64 / secs;
        println!(
            "{name:<48} {rate:7.3} reviews/s  ({secs:6.1} s; parse_success {parsed}/{}; prefill {} tok, reused {} tok, decode steps {})",
            reviews.len(),
            b.stats.prefill_tokens,
            b.stats.reused_tokens,
            b.stats.decode_steps
        );
        rates.push(rate);
    }
    println!("ratio (prefix cache + constrained) / naive: {:.2}x", rates[3] / rates[0]);
    Ok(())
}
