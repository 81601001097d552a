// The tiny random Gemma-3 of the llm tests, written with candle into a temp dir in both formats (HF safetensors +
// config.json + tokenizer.json, and GGUF via candle-core's writer): several KV heads, sliding window shorter
// than the prompt, linear RoPE scaling on the global layers, query_pre_attn_scalar != head_dim.
// Shared by tests/llm_tiny.rs, tests/llm_hub.rs (the checkpoint a local hub serves) and tests/llm_bad_input.rs.
#![allow(dead_code)]

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use revmod::llm;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const HIDDEN: usize = 64;
pub const INTER: usize = 128;
pub const LAYERS: usize = 4;
pub const HEADS: usize = 4;
pub const KV: usize = 2;
pub const HEAD_DIM: usize = 16;
pub const WINDOW: usize = 5;

/// Random weights from the crate's seeded RNG, uniform in [-1, 1).
pub struct Rng(revmod::rng::SplitMix64);
impl Rng {
    pub fn next(&mut self) -> f32 {
        (self.0.next_f64() as f32) * 2.0 - 1.0
    }
    pub fn tensor(&mut self, shape: &[usize], scale: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.next() * scale).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
}

/// The vocabulary: Gemma's first specials, turn markers, 256 byte tokens, some words.
pub fn vocab() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut t: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"].iter().map(|s| s.to_string()).collect();
    let mut ty = vec![3, 3, 3, 2, 3, 3];
    for b in 0..256 {
        t.push(format!("<0x{b:02X}>"));
        ty.push(6);
    }
    for w in ["▁", "a", "b", "c", "d", "e", "▁a", "ab", "cd", "▁ab", "abc", "user", "model", "\n"] {
        t.push(w.to_string());
        ty.push(1);
    }
    let scores = (0..t.len()).map(|i| -(i as f32)).collect();
    (t, scores, ty)
}

pub struct Tiny {
    pub dir: PathBuf,
    pub gguf_f32: PathBuf,
    pub gguf_q8: PathBuf,
}

pub fn hf_names() -> Vec<(String, Vec<usize>, bool)> {
    // (logical name, shape, is_norm)
    let mut v = vec![];
    for i in 0..LAYERS {
        let p = format!("layers.{i}");
        v.push((format!("{p}.input_layernorm"), vec![HIDDEN], true));
        v.push((format!("{p}.self_attn.q_proj"), vec![HEADS * HEAD_DIM, HIDDEN], false));
        v.push((format!("{p}.self_attn.k_proj"), vec![KV * HEAD_DIM, HIDDEN], false));
        v.push((format!("{p}.self_attn.v_proj"), vec![KV * HEAD_DIM, HIDDEN], false));
        v.push((format!("{p}.self_attn.o_proj"), vec![HIDDEN, HEADS * HEAD_DIM], false));
        v.push((format!("{p}.self_attn.q_norm"), vec![HEAD_DIM], true));
        v.push((format!("{p}.self_attn.k_norm"), vec![HEAD_DIM], true));
        v.push((format!("{p}.post_attention_layernorm"), vec![HIDDEN], true));
        v.push((format!("{p}.pre_feedforward_layernorm"), vec![HIDDEN], true));
        v.push((format!("{p}.mlp.gate_proj"), vec![INTER, HIDDEN], false));
        v.push((format!("{p}.mlp.up_proj"), vec![INTER, HIDDEN], false));
        v.push((format!("{p}.mlp.down_proj"), vec![HIDDEN, INTER], false));
        v.push((format!("{p}.post_feedforward_layernorm"), vec![HIDDEN], true));
    }
    v.push(("norm".into(), vec![HIDDEN], true));
    v
}

pub fn make_tiny(tag: &str) -> Tiny {
    let dir = std::env::temp_dir().join(format!("revmod-tiny-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (tokens, scores, types) = vocab();
    let n_vocab = tokens.len();
    let mut rng = Rng(revmod::rng::SplitMix64(42));
    let embed = rng.tensor(&[n_vocab, HIDDEN], 0.5);
    let mut st: HashMap<String, Tensor> = HashMap::new();
    st.insert("model.embed_tokens.weight".into(), embed.clone());
    let mut gg: Vec<(String, Tensor)> = vec![("token_embd.weight".into(), embed)];
    for (name, shape, is_norm) in hf_names() {
        let t = if is_norm { rng.tensor(&shape, 0.3) } else { rng.tensor(&shape, 0.6 / (shape[1] as f32).sqrt() * 1.7) };
        st.insert(format!("model.{name}.weight"), t.clone());
        let g = if is_norm { (t + 1.0).unwrap() } else { t };
        gg.push((llm::gguf::gguf_tensor_name(&name).unwrap(), g));
    }
    candle_core::safetensors::save(&st, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "model_type": "gemma3_text", "vocab_size": n_vocab, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV, "head_dim": HEAD_DIM,
        "sliding_window": WINDOW, "sliding_window_pattern": 2, "query_pre_attn_scalar": HEAD_DIM,
        "rope_scaling": {"rope_type": "linear", "factor": 2.0}, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
        "final_logit_softcapping": 30.0, "rms_norm_eps": 1e-6, "max_position_embeddings": 512
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    // tokenizer.json: the same vocabulary as BPE, a few merges
    let vocab_json: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().filter(|(i, _)| *i > 5).map(|(i, t)| (t.clone(), serde_json::json!(i))).collect();
    let added: Vec<_> = tokens[..6].iter().enumerate().map(|(i, t)| serde_json::json!({"id": i, "content": t, "special": true})).collect();
    let tj = serde_json::json!({
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": null,
        "added_tokens": added,
        "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "vocab": vocab_json,
                  "merges": ["a b", "c d", "▁ a", "▁a b", "ab c"]}
    });
    std::fs::write(dir.join("tokenizer.json"), tj.to_string()).unwrap();
    // GGUF metadata as llama.cpp's converter writes it
    let arr_s = gguf_file::Value::Array(tokens.iter().map(|t| gguf_file::Value::String(t.clone())).collect());
    let arr_f = gguf_file::Value::Array(scores.iter().map(|&s| gguf_file::Value::F32(s)).collect());
    let arr_t = gguf_file::Value::Array(types.iter().map(|&t| gguf_file::Value::I32(t)).collect());
    let md: Vec<(&str, gguf_file::Value)> = vec![
        ("general.architecture", gguf_file::Value::String("gemma3".into())),
        ("gemma3.context_length", gguf_file::Value::U32(512)),
        ("gemma3.embedding_length", gguf_file::Value::U32(HIDDEN as u32)),
        ("gemma3.block_count", gguf_file::Value::U32(LAYERS as u32)),
        ("gemma3.feed_forward_length", gguf_file::Value::U32(INTER as u32)),
        ("gemma3.attention.head_count", gguf_file::Value::U32(HEADS as u32)),
        ("gemma3.attention.head_count_kv", gguf_file::Value::U32(KV as u32)),
        ("gemma3.attention.key_length", gguf_file::Value::U32(HEAD_DIM as u32)),
        ("gemma3.attention.value_length", gguf_file::Value::U32(HEAD_DIM as u32)),
        ("gemma3.attention.layer_norm_rms_epsilon", gguf_file::Value::F32(1e-6)),
        ("gemma3.attention.sliding_window", gguf_file::Value::U32(WINDOW as u32)),
        ("gemma3.attention.sliding_window_pattern", gguf_file::Value::U32(2)),
        ("gemma3.rope.freq_base", gguf_file::Value::F32(1_000_000.0)),
        ("gemma3.rope.scaling.type", gguf_file::Value::String("linear".into())),
        ("gemma3.rope.scaling.factor", gguf_file::Value::F32(2.0)),
        ("gemma3.final_logit_softcapping", gguf_file::Value::F32(30.0)),
        ("tokenizer.ggml.model", gguf_file::Value::String("llama".into())),
        ("tokenizer.ggml.tokens", arr_s),
        ("tokenizer.ggml.scores", arr_f),
        ("tokenizer.ggml.token_type", arr_t),
        ("tokenizer.ggml.bos_token_id", gguf_file::Value::U32(2)),
        ("tokenizer.ggml.eos_token_id", gguf_file::Value::U32(1)),
        ("tokenizer.ggml.unknown_token_id", gguf_file::Value::U32(3)),
        ("tokenizer.ggml.add_bos_token", gguf_file::Value::Bool(true)),
        ("tokenizer.ggml.add_space_prefix", gguf_file::Value::Bool(false)),
    ];
    let write = |path: &Path, dt: GgmlDType| {
        let qs: Vec<(String, QTensor)> = gg
            .iter()
            .map(|(n, t)| {
                let d = if t.rank() == 1 { GgmlDType::F32 } else { dt };
                (n.clone(), QTensor::quantize(t, d).unwrap())
            })
            .collect();
        let mdr: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
        let tr: Vec<(&str, &QTensor)> = qs.iter().map(|(n, q)| (n.as_str(), q)).collect();
        let mut f = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut f, &mdr, &tr).unwrap();
    };
    let gguf_f32 = dir.join("tiny-f32.gguf.bin");
    let gguf_q8 = dir.join("tiny-q8_0.gguf.bin");
    write(&gguf_f32, GgmlDType::F32);
    write(&gguf_q8, GgmlDType::Q8_0);
    Tiny { dir, gguf_f32, gguf_q8 }
}
