// A tiny random Gemma-3, written by the test with candle into a temp dir in both formats (HF safetensors +
// config.json + tokenizer.json, and GGUF via candle-core's writer): several KV heads, sliding window shorter
// than the prompt, linear RoPE scaling on the global layers, query_pre_attn_scalar != head_dim.
// Checks: prompt fed at once == fed token by token (the CPU decode step and candle's ops alike); GGUF (f32) == safetensors; Q8_0 GGUF close; prefix KV
// snapshots and automatic prefix reuse change nothing; the logits hook restricts generation; clear errors.

use candle_core::Tensor;
use revmod::llm::{self, GenerateParams, Sampling};
use std::path::Path;

#[path = "llm_support/tiny.rs"]
mod tiny;
use tiny::*;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn prompt() -> Vec<u32> {
    // 14 tokens > window 5, mixing specials, bytes and words
    vec![2, 4, 270, 273, 265, 266, 0x41 + 6, 275, 5, 4, 274, 262, 270, 271]
}

fn at_once_vs_stepwise(g: &mut llm::Gemma, tol: f32) {
    let p = prompt();
    let m = g.model();
    m.reset();
    let all = m.forward(&p, true).unwrap();
    assert_eq!(all.dims(), &[p.len(), m.config().vocab_size]);
    m.reset();
    let mut rows = vec![];
    for &t in &p {
        rows.push(m.forward(&[t], false).unwrap());
    }
    let step = Tensor::stack(&rows, 0).unwrap();
    let d = max_abs_diff(&all, &step);
    let scale = all.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    eprintln!("at once vs token by token: max |diff| {d}, max |logit| {scale}");
    assert!(d < tol * scale.max(1.0), "at once vs token by token: max |diff| {d} (max |logit| {scale})");
    // the CPU decode step (the default for one token) and candle's tensor ops give the same logits
    m.reset();
    m.set_fast_decode(false);
    let slow: Vec<Tensor> = p.iter().map(|&t| m.forward(&[t], false).unwrap()).collect();
    m.set_fast_decode(true);
    let d3 = max_abs_diff(&step, &Tensor::stack(&slow, 0).unwrap());
    eprintln!("decode step vs tensor ops: max |diff| {d3}");
    assert!(d3 < tol * scale.max(1.0), "decode step vs tensor ops: max |diff| {d3}");
    // and in two chunks that straddle the window
    m.reset();
    let a = m.forward(&p[..7], true).unwrap();
    let b = m.forward(&p[7..], true).unwrap();
    let d2 = max_abs_diff(&all, &Tensor::cat(&[a, b], 0).unwrap());
    assert!(d2 < tol * scale.max(1.0), "two chunks: max |diff| {d2}");
    // the logits vary with position (the model is not trivially constant)
    let spread = max_abs_diff(&all.narrow(0, 0, 1).unwrap(), &all.narrow(0, 5, 1).unwrap());
    assert!(spread > 1e-2, "logits do not depend on the input: {spread}");
}

/// Loads one of the tiny GGUF files, renamed to `tiny.gguf` in the checkpoint directory.
/// The tiny HF checkpoint in f32 (exact: the comparisons below are at 1e-4; on CPU the default is Q8_0).
fn load_st_f32(t: &Tiny) -> llm::Gemma {
    llm::load_path_with(&t.dir, &candle_core::Device::Cpu, &llm::LoadOptions::weights(llm::WeightsDtype::F32)).unwrap()
}

fn load_as_gguf(t: &Tiny, file: &Path) -> llm::Gemma {
    let g_path = t.dir.join("tiny.gguf");
    std::fs::rename(file, &g_path).unwrap();
    llm::load_gemma(g_path.to_str().unwrap()).unwrap()
}

/// Logits of every position of [`prompt`], from an empty KV cache (whatever the model computed before).
fn prompt_logits(g: &mut llm::Gemma) -> Tensor {
    g.model().reset();
    g.model().forward(&prompt(), true).unwrap()
}

#[test]
fn safetensors_prompt_at_once_equals_token_by_token() {
    let t = make_tiny("st");
    let mut g = load_st_f32(&t);
    assert_eq!(g.info().format, "safetensors");
    at_once_vs_stepwise(&mut g, 1e-4);
    std::fs::remove_dir_all(&t.dir).unwrap();
}

#[test]
fn gguf_f32_equals_safetensors_and_steps_agree() {
    let t = make_tiny("gg");
    let mut st = load_st_f32(&t);
    let mut gg = load_as_gguf(&t, &t.gguf_f32);
    assert_eq!(gg.info().format, "gguf");
    assert_eq!(gg.config().sliding_window, WINDOW);
    assert_eq!(gg.config().global_rope_factor(), 2.0);
    let d = max_abs_diff(&prompt_logits(&mut st), &prompt_logits(&mut gg));
    assert!(d < 1e-4, "gguf vs safetensors: {d}");
    at_once_vs_stepwise(&mut gg, 1e-4);
    std::fs::remove_dir_all(&t.dir).unwrap();
}

#[test]
fn q8_gguf_loads_quantized_and_is_consistent() {
    let t = make_tiny("q8");
    let mut st = load_st_f32(&t);
    let mut q = load_as_gguf(&t, &t.gguf_q8);
    assert!(q.info().weight_types.contains("Q8_0"), "{}", q.info().weight_types);
    // candle quantizes activations to Q8 blocks on the one-token (gemv) path, while longer prompts may take a
    // different kernel: agreement is to quantization noise (about 1% of the logit range), not bit-exact
    at_once_vs_stepwise(&mut q, 2e-2);
    let a = prompt_logits(&mut st);
    let d = max_abs_diff(&a, &prompt_logits(&mut q));
    eprintln!("q8_0 vs f32: max |diff| {d}");
    let scale = a.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(d < 0.05 * scale, "q8_0 vs f32: {d} (scale {scale})");
    std::fs::remove_dir_all(&t.dir).unwrap();
}

#[test]
fn prefix_snapshot_and_hook() {
    let t = make_tiny("gen");
    let mut g = load_as_gguf(&t, &t.gguf_f32);
    let params = GenerateParams { max_new_tokens: 12, stop_at_eog: false, ..Default::default() };
    let sys = "ab abc\ncd";
    let full = llm::chat_prompt(Some(sys), "a b cd");
    g.model().reset();
    let fresh = g.generate(&full, &params, None).unwrap();
    assert_eq!(fresh.reused_tokens, 0);
    assert_eq!(fresh.tokens.len(), 12);
    // same prompt again: the cache is reused, the output is the same
    let again = g.generate(&full, &params, None).unwrap();
    assert!(again.reused_tokens > 0);
    assert_eq!(again.tokens, fresh.tokens);
    // explicit prefix snapshot, restored after unrelated use of the model
    let snap = g.prefix(&llm::chat_prefix(sys)).unwrap();
    g.model().reset();
    g.generate("<bos>e e e d c", &params, None).unwrap();
    let after = g.generate_after(&snap, &llm::chat_suffix("a b cd"), &params, None).unwrap();
    assert_eq!(after.reused_tokens, snap.tokens.len());
    assert_eq!(after.tokens, fresh.tokens, "prefix snapshot changes the output");
    // the hook restricts the next token to a set
    let allowed: Vec<u32> = ["a", "b", "▁ab"].iter().map(|s| g.tokenizer().token_id(s).unwrap()).collect();
    let mut calls = 0;
    let mut hook = |_gen: &[u32], logits: &mut [f32]| {
        calls += 1;
        for (i, l) in logits.iter_mut().enumerate() {
            if !allowed.contains(&(i as u32)) {
                *l = f32::NEG_INFINITY;
            }
        }
    };
    let r = g.generate(&full, &params, Some(&mut hook)).unwrap();
    assert_eq!(calls, 12);
    assert!(r.tokens.iter().all(|t| allowed.contains(t)), "{:?}", r.tokens);
    // seeded sampling: same seed same tokens
    let s1 = g.generate(&full, &GenerateParams { sampling: Sampling::Sample { temperature: 1.5, top_k: None, top_p: None, seed: 9 }, ..params.clone() }, None).unwrap();
    let s2 = g.generate(&full, &GenerateParams { sampling: Sampling::Sample { temperature: 1.5, top_k: None, top_p: None, seed: 9 }, ..params.clone() }, None).unwrap();
    assert_eq!(s1.tokens, s2.tokens);
    // stop at <end_of_turn>: force it as the only allowed token
    let eot = g.tokenizer().token_id("<end_of_turn>").unwrap();
    let mut force = |_g: &[u32], l: &mut [f32]| {
        for (i, x) in l.iter_mut().enumerate() {
            if i as u32 != eot {
                *x = f32::NEG_INFINITY;
            }
        }
    };
    let stop = g.generate(&full, &GenerateParams::default(), Some(&mut force)).unwrap();
    assert_eq!(stop.stop, llm::StopReason::Eog(eot));
    assert!(stop.tokens.is_empty());
    std::fs::remove_dir_all(&t.dir).unwrap();
}

#[test]
fn clear_errors() {
    let e = llm::load_gemma("/nonexistent/model.gguf").err().unwrap().to_string();
    assert!(e.contains("/nonexistent/model.gguf"), "{e}");
    let t = make_tiny("err");
    // not a Gemma-3: architecture llama
    let bytes = std::fs::read(&t.gguf_f32).unwrap();
    let pat = b"gemma3";
    let pos = bytes.windows(6).position(|w| w == pat).unwrap();
    let mut b2 = bytes.clone();
    b2[pos..pos + 6].copy_from_slice(b"llama3");
    let p = t.dir.join("llama.gguf");
    std::fs::write(&p, &b2).unwrap();
    let e = format!("{:#}", llm::load_gemma(p.to_str().unwrap()).err().unwrap());
    assert!(e.contains("not a Gemma-3"), "{e}");
    // unsupported quantization: patch the first tensor's type to IQ4_XS (23)
    let name = b"token_embd.weight";
    let pos = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let mut b3 = bytes.clone();
    let type_at = pos + name.len() + 4 + 2 * 8; // n_dims u32, 2 dims u64, then the type
    b3[type_at..type_at + 4].copy_from_slice(&23u32.to_le_bytes());
    let p = t.dir.join("iq4.gguf");
    std::fs::write(&p, &b3).unwrap();
    let e = format!("{:#}", llm::load_gemma(p.to_str().unwrap()).err().unwrap());
    assert!(e.contains("unsupported quantization") && e.contains("iq4.gguf"), "{e}");
    // HF config of another model
    std::fs::write(t.dir.join("config.json"), r#"{"model_type":"llama"}"#).unwrap();
    let e = format!("{:#}", llm::load_gemma(t.dir.to_str().unwrap()).err().unwrap());
    assert!(e.contains("not a Gemma-3"), "{e}");
    // hub id not in the cache, offline (tests/llm_hub.rs downloads from a local hub)
    std::env::set_var("HF_HUB_CACHE", t.dir.join("hub"));
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let e = format!("{:#}", llm::load_gemma("google/gemma-3-1b-it").err().unwrap());
    assert!(e.contains("not in the Hugging Face cache") && e.contains("gated"), "{e}");
    std::fs::remove_dir_all(&t.dir).unwrap();
}
