// Parity with llama.cpp (the peer: PyPI `xllamacpp`, a prebuilt llama.cpp, driven by tests/peers/llama_peer.py)
// on the real default model, Gemma-3 270M Q4_K_M, the base model (after scripts/setup-model):
// - token ids identical on 1,000 real review texts (emoji, accents, URLs, whitespace runs, non-Latin);
// - greedy continuations of 32 tokens identical for 11 prompts (one longer than the sliding window), and at every
//   position the same top-1 token with log-probabilities as close as llama.cpp is to itself (see the test).
// Needs: scripts/setup-model (the model and xllamacpp). Fails with that hint when they are missing.

use revmod::llm::{self, GenerateParams};
use std::path::PathBuf;
use std::process::Command;

#[path = "support/mod.rs"]
mod support;
use support::python;

fn peer(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/llama_peer.py");
    let out = Command::new(python()).arg(script).args(args).envs(env.iter().copied()).output().expect("cannot run python");
    assert!(
        out.status.success(),
        "llama_peer.py {:?} failed (run scripts/setup-model to install xllamacpp and the model):\n{}",
        args,
        String::from_utf8_lossy(&out.stderr).chars().rev().take(3000).collect::<String>().chars().rev().collect::<String>()
    );
    serde_json::from_slice(&out.stdout).expect("peer output is not JSON")
}

fn model_path() -> PathBuf {
    llm::embedded::embedded_model_path().expect("the default model is missing: run scripts/setup-model")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-llama-parity-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn tokenizer_ids_match_llama_cpp_on_1000_reviews_and_200_variants() {
    let model = model_path();
    let texts = peer(&["texts", "1000"], &[]);
    let texts: Vec<String> = serde_json::from_value(texts).unwrap();
    assert_eq!(texts.len(), 1200); // 1,000 real texts + 200 variants with inserted emoji, accents, URLs, ...
    let kinds = [
        ("emoji", texts.iter().filter(|t| t.chars().any(|c| c as u32 > 0xFFFF)).count()),
        ("accents", texts.iter().filter(|t| t.chars().any(|c| (0xC0..=0x24F).contains(&(c as u32)))).count()),
        ("url", texts.iter().filter(|t| t.contains("http") || t.contains("www.")).count()),
        ("whitespace runs", texts.iter().filter(|t| t.contains("  ") || t.contains('\n')).count()),
    ];
    for (k, n) in kinds {
        assert!(n >= 15, "only {n} texts with {k}");
    }
    let f = tmp("texts.json");
    std::fs::write(&f, serde_json::to_string(&texts).unwrap()).unwrap();
    let theirs: Vec<Vec<u32>> = serde_json::from_value(peer(&["tokenize", model.to_str().unwrap(), f.to_str().unwrap()], &[])).unwrap();
    let g = llm::load_gemma(model.to_str().unwrap()).unwrap();
    let tok = g.tokenizer();
    let mut bad = vec![];
    for (i, (t, ids)) in texts.iter().zip(&theirs).enumerate() {
        let ours = tok.encode(t, true);
        if &ours != ids {
            bad.push(format!("#{i} {t:?}\n  ours   {ours:?}\n  llama  {ids:?}"));
        }
    }
    assert!(bad.is_empty(), "{} of 1200 texts tokenize differently:\n{}", bad.len(), bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n"));
    // decoding gives the text back (Gemma's vocabulary covers it with byte fallback)
    for t in texts.iter().take(200) {
        assert_eq!(&tok.decode(&tok.encode(t, true)), t);
    }
}

fn prompts() -> Vec<String> {
    let sys = "You are a strict moderator of Google location reviews. Answer in JSON.";
    let reviews = [
        "Great tacos, friendly staff, but the parking lot is tiny.",
        "Never been here but I heard the owner is rude. Avoid!!!",
        "Call now 555-123-4567 and use code SAVE20 for 20% off! www.example.com",
        "Le café était excellent 😀 et le personnel très sympa.",
        "ok",
    ];
    let mut v: Vec<String> = reviews.iter().map(|r| llm::chat_prompt(Some(sys), &format!("Place: Taqueria (Mexican restaurant)\nReview: {r}"))).collect();
    v.push(llm::chat_prompt(None, "Write one sentence about Salt Lake City."));
    v.push("The capital of France is".into());
    v.push("<bos>Once upon a time, in a small village,".into());
    v.push("def fibonacci(n):\n    ".into());
    v.push("Review:   The   food was     cold.\n\nRating:".into());
    v
}

/// A prompt of ~950 tokens (30 real reviews), longer than the 270M's sliding window of 512: the local layers
/// must forget the start while the global ones keep it.
fn long_prompt() -> String {
    let texts: Vec<String> = serde_json::from_value(peer(&["texts", "1000"], &[])).unwrap();
    format!("Reviews of the week:\n\n{}", texts[200..230].join("\n\n"))
}

/// Top-1 log-probabilities of two runs along their common greedy prefix, position by position.
fn top1_diffs(a: &[Vec<(u32, f32)>], b: &[Vec<(u32, f32)>]) -> Vec<f32> {
    a.iter().zip(b).take_while(|(x, y)| x[0].0 == y[0].0).map(|(x, y)| (x[0].1 - y[0].1).abs()).collect()
}

fn median_max(mut v: Vec<f32>) -> (f32, f32) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], *v.last().unwrap())
}

/// Greedy tokens must be identical up to any near-tie, and the top-1 token the same at every shared position. Log-probabilities cannot be
/// bit-equal: llama.cpp and candle both quantize activations to 8 bits per block before each quantized matmul,
/// and Gemma's large activations make that rounding sensitive to any last-bit difference upstream. How large
/// that noise is gets measured on llama.cpp itself: the same prompts with a micro-batch of 512 (prompt at once)
/// and of 1 (token by token). Ours must stay within 3x llama.cpp's own spread (median and max).
#[test]
fn greedy_continuations_and_top1_match_llama_cpp() {
    let model = model_path();
    let mut ps = prompts();
    ps.push(long_prompt());
    // llama.cpp's server adds <bos> itself and would double a literal one: give it the prompts without it
    let for_llama: Vec<&str> = ps.iter().map(|p| p.strip_prefix("<bos>").unwrap_or(p)).collect();
    let f = tmp("prompts.json");
    std::fs::write(&f, serde_json::to_string(&for_llama).unwrap()).unwrap();
    let args = ["greedy", model.to_str().unwrap(), f.to_str().unwrap(), "5", "32"];
    let theirs = peer(&args, &[]);
    let theirs_u1 = peer(&args, &[("REVMOD_LLAMA_UBATCH", "1")]);
    let mut g = llm::load_gemma(model.to_str().unwrap()).unwrap();
    let params = GenerateParams { max_new_tokens: 32, stop_at_eog: false, ..Default::default() };
    let (mut ours_d, mut self_d) = (vec![], vec![]);
    // (prompt, tokens in common, llama.cpp's top-1 minus top-2 log-probability where we part)
    let mut parted: Vec<(String, usize, f32, String)> = vec![];
    let mut self_parted = 0;
    for ((p, t), t1) in ps.iter().zip(theirs.as_array().unwrap()).zip(theirs_u1.as_array().unwrap()) {
        let their_tokens: Vec<u32> = serde_json::from_value(t["tokens"].clone()).unwrap();
        let top: Vec<Vec<(u32, f32)>> = serde_json::from_value(t["top"].clone()).unwrap();
        let top_u1: Vec<Vec<(u32, f32)>> = serde_json::from_value(t1["top"].clone()).unwrap();
        let u1_tokens: Vec<u32> = serde_json::from_value(t1["tokens"].clone()).unwrap();
        self_parted += (u1_tokens != their_tokens) as usize;
        // our log-probabilities along the generated sequence, position by position
        let mut steps: Vec<Vec<(u32, f32)>> = vec![];
        let mut hook = |_gen: &[u32], logits: &mut [f32]| {
            let pr = llm::generate::softmax(logits);
            let mut idx: Vec<u32> = (0..pr.len() as u32).collect();
            idx.sort_by(|a, b| pr[*b as usize].total_cmp(&pr[*a as usize]));
            steps.push(idx[..5].iter().map(|&i| (i, pr[i as usize].ln())).collect());
        };
        let ours = g.generate(p, &params, Some(&mut hook)).unwrap();
        let n_same = ours.tokens.iter().zip(&their_tokens).take_while(|(a, b)| a == b).count();
        if n_same < their_tokens.len() {
            let gap = top[n_same][0].1 - top[n_same][1].1;
            parted.push((p.clone(), n_same, gap, format!("ours top-5 {:?}\n  llama top-5 {:?}\n  ours  {:?}\n  llama {:?}",
                steps[n_same], top[n_same], g.tokenizer().decode(&ours.tokens), g.tokenizer().decode(&their_tokens))));
        }
        ours_d.extend(top1_diffs(&steps[..n_same], &top[..n_same]));
        self_d.extend(top1_diffs(&top_u1, &top));
    }
    let ((om, ox), (sm, sx)) = (median_max(ours_d), median_max(self_d));
    eprintln!(
        "top-1 log-probability |ours - llama.cpp|: median {om:.4} max {ox:.4}; llama.cpp ubatch 1 vs 512: median {sm:.4} max {sx:.4}"
    );
    eprintln!(
        "greedy continuations identical to llama.cpp's for {} of {} prompts (llama.cpp ubatch 1 vs 512: {} of {})",
        ps.len() - parted.len(), ps.len(), ps.len() - self_parted, ps.len()
    );
    for (p, n, gap, why) in &parted {
        eprintln!("parted after {n} tokens at a top-2 gap of {gap:.4} in {p:?}\n  {why}");
    }
    // A continuation may part only at a near-tie: where llama.cpp's own top-2 gap is within its noise.
    let tie = 2.0 * sx.max(0.01);
    let bad: Vec<_> = parted.iter().filter(|(_, _, gap, _)| *gap > tie).collect();
    assert!(bad.is_empty(), "{} continuations part from llama.cpp where its top-2 gap exceeds {tie}: {:?}", bad.len(),
        bad.iter().map(|(p, n, g, _)| (p, n, g)).collect::<Vec<_>>());
    assert!(parted.len() * 2 <= ps.len(), "{} of {} continuations part from llama.cpp", parted.len(), ps.len());
    assert!(om <= 3.0 * sm.max(0.002), "median difference {om} vs llama.cpp's own {sm}");
    assert!(ox <= 3.0 * sx.max(0.01), "largest difference {ox} vs llama.cpp's own {sx}");
}
