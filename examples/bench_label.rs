//! Benchmark of the local labeling backend: reviews per second of the seed's naive loop (free greedy
//! generation, the whole prompt recomputed for every review) against the prefix KV cache + constrained
//! decoding, and the few-shot log-likelihood mode (the default for base models) against it, on the same real reviews, same model, same machine, one run each. Run: scripts/bench-label.
//!
//! Usage: bench_label [N_REVIEWS] [MODEL_SPEC] [--all] [--fewshot]   (defaults: 8, the embedded Gemma-3 270M;
//! --all adds the two half-way configurations; --fewshot runs only the few-shot mode with and without the
//! hidden-state probe). Both wall-clock and process CPU time are printed: on a shared
//! machine the CPU-time ratio is the steadier one.
//!
//! Batched labeling: bench_label --batch B [--runs R] [--instruct] [--llama [--parallel P]] [N_REVIEWS] [MODEL_SPEC]
//! prints, per run, the few-shot labeler's reviews/s one review at a time (batch 1) and with B reviews in
//! flight, their ratio and whether the answers are identical; --instruct does the same for constrained JSON
//! decoding in lockstep; --llama adds llama.cpp's server (xllamacpp, P parallel slots, default 4,
//! tests/peers/llama_label_peer.py) labeling the same token pieces with the same five yes/no questions under a
//! `" yes" | " no"` grammar, its reviews/s and the ratio revmod batch B / llama.cpp. Each run also prints the
//! machine load (/proc/loadavg), the CPU and revmod's kernel path.

use std::time::Instant;

use anyhow::Result;
use revmod::data::load_df;
use revmod::label::guard::{cheap_low_quality, clean_review};
use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
use revmod::label::{parse_output, reviews_from_df, sample_indices, LabelBackend, ModeratorPrompt, ReviewInput};

const UTAH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/google-local-utah");

/// The first `n` real Utah reviews that pass the guard (the ones a model sees), in a seeded order.
fn utah_reviews(n: usize) -> Result<Vec<ReviewInput>> {
    let df = load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json"))?.df;
    let (all, _) = reviews_from_df(&df)?;
    Ok(sample_indices(all.len(), all.len(), 42)
        .into_iter()
        .map(|i| all[i].clone())
        .filter(|r| !cheap_low_quality(&clean_review(&r.text)))
        .take(n)
        .collect())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--batch") {
        return batch_main(&args, i);
    }
    let all_configs = args.iter().any(|a| a == "--all");
    // --fewshot: only the few-shot mode with and without the probe
    let fewshot_only = args.iter().any(|a| a == "--fewshot");
    let pos: Vec<&String> = args.iter().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = pos.first().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let spec = pos.get(1).map(|s| s.to_string());
    let reviews = utah_reviews(n)?;
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

/// The value after flag `name`, parsed.
fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>> {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
            Ok(Some(v.parse().map_err(|_| anyhow::anyhow!("{name} {v:?}: not a number"))?))
        }
        None => Ok(None),
    }
}

/// Machine load as `uptime` prints it (1, 5, 15 minute averages).
fn load() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let f: Vec<&str> = l.split_whitespace().take(3).collect();
    format!("load average {}", f.join(", "))
}

/// Times `backend.answer` on `reviews` after an untimed warm-up batch: (reviews/s wall, reviews per
/// CPU-second, answers).
fn timed(b: &mut LocalGemmaBackend, prompt: &ModeratorPrompt, reviews: &[ReviewInput], warm: usize) -> Result<(f64, f64, Vec<revmod::label::RawOutput>, usize)> {
    let _ = b.answer(prompt, &reviews[..warm.min(reviews.len())]);
    b.stats = Default::default();
    let t = Instant::now();
    let c0 = cpu_secs();
    let outs = b.answer(prompt, reviews).into_iter().collect::<Result<Vec<_>>>()?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - c0);
    Ok((reviews.len() as f64 / secs, reviews.len() as f64 / cpu, outs, b.stats.prefill_tokens))
}

fn batch_main(args: &[String], at: usize) -> Result<()> {
    let batch: usize = args.get(at + 1).and_then(|s| s.parse().ok()).filter(|&b| b >= 1).ok_or_else(|| anyhow::anyhow!("--batch needs a number >= 1"))?;
    let runs: usize = flag(args, "--runs")?.unwrap_or(1);
    let parallel: usize = flag(args, "--parallel")?.unwrap_or(4);
    let with_values = ["--batch", "--runs", "--parallel"];
    let pos: Vec<&String> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(i, a)| !a.starts_with("--") && !with_values.contains(&args[i - 1].as_str()))
        .map(|(_, a)| a)
        .collect();
    let n: usize = pos.first().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let spec = pos.get(1).map(|s| s.to_string());
    let (instruct, llama) = (args.iter().any(|a| a == "--instruct"), args.iter().any(|a| a == "--llama"));
    let reviews = utah_reviews(n)?;
    let prompt = ModeratorPrompt::default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())).unwrap_or_default();
    println!(
        "bench-label --batch {batch}: {} real reviews (Utah sample), model {:?}, CPU {cpu} ({} cores), revmod kernel path {}",
        reviews.len(),
        spec.as_deref().unwrap_or("embedded default"),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        revmod::llm::cpu::kernel_path().name()
    );
    let pieces = if llama { Some(write_pieces(spec.as_deref(), &prompt, &reviews)?) } else { None };
    for run in 1..=runs {
        println!("run {run}/{runs} ({} at start)", load());
        let mut modes = vec![("few-shot", LabelMode::FewShot)];
        if instruct {
            modes.push(("instruct JSON (constrained)", LabelMode::Instruct));
        }
        let mut fewshot_rate = 0.0;
        let mut fewshot_answers = Vec::new();
        let mut fewshot_computed = 0;
        for (name, mode) in modes {
            let params = |b: usize| LocalParams { mode: Some(mode), batch: b, ..Default::default() };
            let (r1, c1, o1, _) = timed(&mut LocalGemmaBackend::load(spec.as_deref(), params(1))?, &prompt, &reviews, 1)?;
            let (rb, cb, ob, computed) = timed(&mut LocalGemmaBackend::load(spec.as_deref(), params(batch))?, &prompt, &reviews, batch)?;
            let same = o1 == ob;
            println!("  {name:<28} batch 1: {r1:7.3} reviews/s ({c1:6.3} per CPU-s)   batch {batch}: {rb:7.3} reviews/s ({cb:6.3} per CPU-s)   ratio {:.2}x wall, {:.2}x CPU   answers identical: {same}", rb / r1, cb / c1);
            if mode == LabelMode::FewShot {
                fewshot_rate = rb;
                fewshot_computed = computed;
                fewshot_answers = ob;
            }
        }
        if let Some(path) = &pieces {
            let out = std::process::Command::new(std::env::var("REVMOD_PYTHON").unwrap_or_else(|_| "python3".into()))
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/llama_label_peer.py"))
                .args(["fewshot", &revmod_model_path(spec.as_deref())?, path])
                .args([std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).to_string(), parallel.to_string()])
                .stderr(std::process::Stdio::null())
                .output()?;
            anyhow::ensure!(out.status.success(), "llama.cpp peer failed: {}", String::from_utf8_lossy(&out.stdout));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let rate = v["reviews_per_sec"].as_f64().unwrap_or(0.0);
            // agreement of the yes/no answers (revmod's from its log-odds in the answer's rationale order)
            let theirs: Vec<Vec<bool>> = serde_json::from_value(v["answers"].clone())?;
            let ours: Vec<Vec<bool>> = fewshot_answers.iter().map(|o| answers_of(&o.raw)).collect();
            let agree = ours.iter().zip(&theirs).map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x == y).count()).sum::<usize>();
            println!(
                "  llama.cpp server (xllamacpp, {parallel} slots, yes/no grammar): {rate:7.3} reviews/s   revmod batch {batch} / llama.cpp: {:.2}x   same yes/no answers: {agree}/{}",
                fewshot_rate / rate,
                5 * theirs.len()
            );
            println!(
                "  prompt tokens computed (not from a cache): llama.cpp {}, revmod batch {batch} {fewshot_computed}",
                v["prompt_tokens_computed"].as_u64().map_or("?".to_string(), |n| n.to_string())
            );
            if run == 1 {
                println!("  llama.cpp: {}", v["system_info"].as_str().unwrap_or("?"));
            }
        }
        println!("  ({} at end)", load());
    }
    if let Some(p) = pieces {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// The yes/no answers (question order) in a few-shot answer's rationale: the sign of each log-odds.
fn answers_of(raw: &str) -> Vec<bool> {
    let r = raw.split("few-shot log-odds: ").nth(1).unwrap_or("");
    r.split(", ").map(|p| p.rsplit(' ').next().unwrap_or("").trim_end_matches(|c| c == '"' || c == '}').parse::<f32>().unwrap_or(0.0) > 0.0).collect()
}

fn revmod_model_path(spec: Option<&str>) -> Result<String> {
    Ok(match spec {
        Some(s) if !s.is_empty() && s != "default" => s.to_string(),
        _ => revmod::llm::embedded::embedded_model_path()?.to_string_lossy().into_owned(),
    })
}

/// The few-shot token pieces of these reviews, as revmod feeds them, for the llama.cpp peer (a temp file).
fn write_pieces(spec: Option<&str>, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Result<String> {
    use revmod::label::fewshot::{block_for, FewShotTokens, FEWSHOT_MAX_CHARS};
    let g = revmod::llm::load_gemma(spec.unwrap_or(""))?;
    let tok = g.tokenizer();
    let t = FewShotTokens::new(tok, FEWSHOT_MAX_CHARS)?;
    let max_chars = prompt.max_text_chars.min(FEWSHOT_MAX_CHARS);
    let blocks: Vec<Vec<u32>> = reviews
        .iter()
        .map(|r| {
            let mut b = tok.encode_with(&block_for(r, max_chars), false, false);
            b.extend(&t.first_question);
            b
        })
        .collect();
    let v = serde_json::json!({"prefix": t.prefix, "reviews": blocks, "next": t.next_question, "yes": t.yes, "no": t.no});
    let path = std::env::temp_dir().join(format!("revmod-bench-label-pieces-{}.json", std::process::id()));
    std::fs::write(&path, v.to_string())?;
    Ok(path.to_string_lossy().into_owned())
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
