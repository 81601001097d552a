//! Architecture parity with the reference implementation, Hugging Face transformers' Gemma-3 (PyPI transformers +
//! torch, run by tests/peers/transformers_gemma3.py), on tiny random models whose configs switch on every feature
//! of the 12B/27B: several KV heads (4/2 and 6/2), linear RoPE x8 on the global layers with a different base on
//! the local ones, query_pre_attn_scalar != head_dim (48 vs 32; hidden/heads as the 27B), a sliding window (7, 4)
//! shorter than the 24-token prompt, the 5:1 local:global pattern over 7 and 12 layers, tied embeddings; configs
//! in transformers 5's form (rope_parameters, layer_types) and in the hub's older form; and the multimodal
//! Gemma3ForConditionalGeneration file (text model under language_model.model.* or model.language_model.*, a
//! vision tower beside it), which loads its text model and says it skipped the rest.
//!
//! Each checkpoint is loaded in f32: the logits of every prompt position, fed at once (candle's tensor ops) and
//! token by token (the CPU decode step), are within 1e-4 of transformers' (eager attention, f32), and greedy
//! decoding gives the same 8 tokens as `model.generate`.
//!
//! Slow (torch): opt-in, `REVMOD_SLOW=1 scripts/test` runs it (scripts/setup then installs torch and
//! transformers into $REVMOD_CACHE/venv-torch); by hand:
//! `cargo test --release --workspace --test llm_transformers_parity -- --ignored --nocapture`.

use candle_core::{Device, Tensor};
use revmod::llm::{self, GenerateParams, LoadOptions, WeightsDtype};
use std::path::PathBuf;
use std::process::Command;

/// The Python with torch + transformers: REVMOD_TORCH_PYTHON, else $REVMOD_CACHE/venv-torch (scripts/setup).
fn torch_python() -> PathBuf {
    if let Ok(p) = std::env::var("REVMOD_TORCH_PYTHON") {
        return p.into();
    }
    let cache = std::env::var("REVMOD_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/revmod")
    });
    cache.join("venv-torch/bin/python")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
#[ignore = "slow: needs torch + transformers (REVMOD_SLOW=1 scripts/test, or -- --ignored)"]
fn logits_and_greedy_tokens_match_transformers() {
    let dir = std::env::temp_dir().join(format!("revmod-hf-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let py = torch_python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/transformers_gemma3.py");
    let out = Command::new(&py).arg(script).arg(&dir).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}): run REVMOD_SLOW=1 scripts/setup to install torch + transformers", py.display())
    });
    assert!(out.status.success(), "transformers_gemma3.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("peer output is not JSON");
    eprintln!("reference: {}", r["versions"]);
    let names = ["12b", "12b-legacy", "27b", "mm", "mm-new-names"];
    for name in names {
        let case = &r[name];
        let prompt: Vec<u32> = serde_json::from_value(case["prompt"].clone()).unwrap();
        let want_rows: Vec<Vec<f32>> = serde_json::from_value(case["logits"].clone()).unwrap();
        let greedy: Vec<u32> = serde_json::from_value(case["greedy"].clone()).unwrap();
        let (n, vocab) = (want_rows.len(), want_rows[0].len());
        let want = Tensor::from_vec(want_rows.concat(), (n, vocab), &Device::Cpu).unwrap();

        let mut g = llm::load_path_with(&dir.join(name), &Device::Cpu, &LoadOptions::weights(WeightsDtype::F32))
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let cfg = g.config().clone();
        assert!(prompt.len() > cfg.sliding_window, "{name}: the prompt must be longer than the window");
        assert!(cfg.num_key_value_heads > 1 && cfg.global_rope_factor() == 8.0, "{name}: {cfg:?}");
        assert_ne!(cfg.query_pre_attn_scalar, cfg.head_dim as f64, "{name}");
        assert!((0..cfg.num_hidden_layers).filter(|&i| !cfg.is_sliding(i)).count() >= 1 && cfg.is_sliding(0), "{name}");
        let info = g.info().weight_types.clone();
        if name.starts_with("mm") {
            assert!(info.contains("skipped") && info.contains("vision tower"), "{name}: {info}");
        } else {
            assert_eq!(info, "f32", "{name}");
        }

        // the whole prompt at once
        g.model().reset();
        let at_once = g.model().forward(&prompt, true).unwrap();
        let d_once = max_abs_diff(&at_once, &want);
        // one token at a time (the CPU decode step, KV cache and sliding window)
        g.model().reset();
        let mut rows = Vec::with_capacity(n);
        for &t in &prompt {
            rows.push(g.model().forward(&[t], false).unwrap());
        }
        let stepwise = Tensor::stack(&rows, 0).unwrap();
        let d_step = max_abs_diff(&stepwise, &want);
        g.model().reset();
        let params = GenerateParams { max_new_tokens: greedy.len(), stop_at_eog: false, ..Default::default() };
        let got = g.generate_ids(&prompt, &params, None).unwrap().tokens;
        eprintln!("{name}: max |logit diff| vs transformers: prompt at once {d_once:.2e}, token by token {d_step:.2e}; greedy {got:?}");
        assert!(d_once < 1e-4, "{name}: prompt at once differs from transformers by {d_once}");
        assert!(d_step < 1e-4, "{name}: token by token differs from transformers by {d_step}");
        assert_eq!(got, greedy, "{name}: greedy tokens differ from transformers' generate");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
