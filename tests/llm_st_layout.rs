//! Safetensors layouts and reading (src/llm/safetensors.rs), on the tiny random Gemma-3 of llm_support/tiny.rs:
//! - the multimodal `Gemma3ForConditionalGeneration` file (config `model_type: gemma3` with `text_config`, text
//!   model under `language_model.model.*` or `model.language_model.*`, a vision tower and projector beside it)
//!   gives the same logits as the text-only checkpoint, and says what it skipped;
//! - a bf16 checkpoint loads (f32 values = the bf16 values), and reading a few bytes at a time gives the same
//!   model, bit for bit, as reading 8 MB at a time (f32 and Q8_0).

use candle_core::{DType, Device, Tensor};
use revmod::llm::{self, safetensors::SafetensorsWeights, Gemma3Config, Gemma3Model, LoadOptions, WeightsDtype};
use std::collections::HashMap;
use std::path::Path;

#[path = "llm_support/tiny.rs"]
mod tiny;

fn logits(g: &mut Gemma3Model) -> Tensor {
    g.reset();
    g.forward(&[2, 4, 270, 273, 265, 266, 0x41 + 6, 275, 5, 4, 274, 262], true).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn load(dir: &Path, w: WeightsDtype) -> llm::Gemma {
    llm::load_path_with(dir, &Device::Cpu, &LoadOptions::weights(w)).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()))
}

/// A copy of the tiny checkpoint with its tensors renamed by `rename` and `extra` tensors added, and the config
/// and tokenizer given.
fn rewrite(src: &Path, dst: &Path, rename: impl Fn(&str) -> String, extra: HashMap<String, Tensor>, config: &str) {
    std::fs::create_dir_all(dst).unwrap();
    let mut ts: HashMap<String, Tensor> =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap().into_iter().map(|(k, v)| (rename(&k), v)).collect();
    ts.extend(extra);
    candle_core::safetensors::save(&ts, dst.join("model.safetensors")).unwrap();
    std::fs::write(dst.join("config.json"), config).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dst.join("tokenizer.json")).unwrap();
}

#[test]
fn conditional_generation_layouts_load_the_text_model_and_skip_the_vision_tower() {
    let t = tiny::make_tiny("mm");
    let text_cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(t.dir.join("config.json")).unwrap()).unwrap();
    let mm_cfg = serde_json::json!({
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": text_cfg, "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32},
        "mm_tokens_per_image": 4
    })
    .to_string();
    let mut rng = revmod::rng::SplitMix64(7);
    let vision: HashMap<String, Tensor> = [
        ("vision_tower.vision_model.embeddings.patch_embedding.weight", vec![32, 3, 14, 14]),
        ("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", vec![64, 32]),
        ("multi_modal_projector.mm_input_projection_weight", vec![32, tiny::HIDDEN]),
    ]
    .into_iter()
    .map(|(n, s)| {
        let v: Vec<f32> = (0..s.iter().product()).map(|_| rng.next_f64() as f32 * 0.1).collect();
        (n.to_string(), Tensor::from_vec(v, s, &Device::Cpu).unwrap())
    })
    .collect();
    let want: HashMap<&str, Tensor> =
        [WeightsDtype::F32, WeightsDtype::Q8_0].into_iter().map(|w| (w.name(), logits(load(&t.dir, w).model()))).collect();
    for (tag, new_prefix) in [("hub", "language_model.model."), ("new", "model.language_model.")] {
        let dir = t.dir.join(format!("mm-{tag}"));
        let vis = vision
            .iter()
            .map(|(k, v)| (if tag == "new" { format!("model.{k}") } else { k.clone() }, v.clone()))
            .collect();
        rewrite(&t.dir, &dir, |k| k.replacen("model.", new_prefix, 1), vis, &mm_cfg);
        for w in [WeightsDtype::F32, WeightsDtype::Q8_0] {
            let mut g = load(&dir, w);
            let info = &g.info().weight_types;
            assert!(info.contains(&format!("text model under {new_prefix}")), "{tag}: {info}");
            assert!(info.contains("3 other tensors") && info.contains("vision tower") && info.contains("skipped"), "{tag}: {info}");
            let d = max_abs_diff(&logits(g.model()), &want[w.name()]);
            assert_eq!(d, 0.0, "{tag} {w}: the multimodal file's text model differs from the text-only one by {d}");
        }
    }
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn bf16_checkpoint_and_small_read_steps_give_the_same_model() {
    let t = tiny::make_tiny("bf16");
    let dir = t.dir.join("bf16");
    let cfg = std::fs::read_to_string(t.dir.join("config.json")).unwrap();
    // as HF ships Gemma-3: every tensor in bf16
    std::fs::create_dir_all(&dir).unwrap();
    let ts = candle_core::safetensors::load(t.dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let bf: HashMap<String, Tensor> = ts.iter().map(|(k, v)| (k.clone(), v.to_dtype(DType::BF16).unwrap())).collect();
    candle_core::safetensors::save(&bf, dir.join("model.safetensors")).unwrap();
    // the f32 checkpoint of the bf16-rounded values: what the bf16 file must load as
    let rounded: HashMap<String, Tensor> = bf.iter().map(|(k, v)| (k.clone(), v.to_dtype(DType::F32).unwrap())).collect();
    let rdir = t.dir.join("rounded");
    std::fs::create_dir_all(&rdir).unwrap();
    candle_core::safetensors::save(&rounded, rdir.join("model.safetensors")).unwrap();
    for d in [&dir, &rdir] {
        std::fs::write(d.join("config.json"), &cfg).unwrap();
        std::fs::copy(t.dir.join("tokenizer.json"), d.join("tokenizer.json")).unwrap();
    }
    for w in [WeightsDtype::F32, WeightsDtype::Q8_0] {
        let a = logits(load(&dir, w).model());
        let b = logits(load(&rdir, w).model());
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{w}: bf16 file vs its f32 values");
        // one row per read step instead of 8 MB
        let files = llm::safetensors::checkpoint_files(&dir).unwrap();
        let mut ws = SafetensorsWeights::open(&files, &Device::Cpu).unwrap().weights(w).chunk_bytes(1);
        let c = Gemma3Config::from_hf_json(&cfg).unwrap();
        let mut m = Gemma3Model::load(c, &mut ws).unwrap();
        assert_eq!(max_abs_diff(&logits(&mut m), &a), 0.0, "{w}: small read steps change the model");
    }
    let _ = std::fs::remove_dir_all(&t.dir);
}
