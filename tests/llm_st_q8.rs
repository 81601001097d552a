//! Safetensors quantized to Q8_0 while loading (src/llm/safetensors.rs, the default on CPU): on the tiny random
//! Gemma-3, the model loaded from its f32 safetensors with Q8_0 quantization gives the same logits, bit for bit,
//! as the Q8_0 GGUF the test writes from the same f32 weights with candle's quantizer; and they differ from the
//! f32 model's (the quantization happened). Which weights a load gets: the explicit option, else
//! REVMOD_SAFETENSORS_WEIGHTS, else Q8_0 on CPU.

use candle_core::{Device, Tensor};
use revmod::llm;
use std::time::Instant;

#[path = "llm_support/tiny.rs"]
mod tiny;

fn logits(g: &mut llm::Gemma) -> Tensor {
    g.model().reset();
    g.model().forward(&[2, 4, 270, 273, 265, 266, 0x41 + 6, 275, 5], true).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn q8_0_while_loading_equals_the_q8_0_gguf() {
    let t = tiny::make_tiny("stq8");
    let mut st_q8 = llm::load_safetensors_with(&t.dir, &Device::Cpu, llm::WeightsDtype::Q8_0, Instant::now()).unwrap();
    assert!(st_q8.info().weight_types.starts_with("Q8_0"), "{}", st_q8.info().weight_types);
    let g = t.dir.join("tiny.gguf");
    std::fs::rename(&t.gguf_q8, &g).unwrap();
    let mut gguf_q8 = llm::load_gemma(g.to_str().unwrap()).unwrap();
    let mut st_f32 = llm::load_safetensors_with(&t.dir, &Device::Cpu, llm::WeightsDtype::F32, Instant::now()).unwrap();
    let (a, b, f) = (logits(&mut st_q8), logits(&mut gguf_q8), logits(&mut st_f32));
    assert_eq!(max_abs_diff(&a, &b), 0.0, "Q8_0 while loading differs from the Q8_0 GGUF");
    let d = max_abs_diff(&a, &f);
    assert!(d > 0.0 && d < 0.5, "Q8_0 vs f32: max |diff| {d}");
    let _ = std::fs::remove_dir_all(&t.dir);
}

/// One test (it sets REVMOD_SAFETENSORS_WEIGHTS, which every load in this binary reads).
#[test]
fn default_is_q8_0_on_cpu_env_and_option_override() {
    let t = tiny::make_tiny("stdef");
    let types = |o: &llm::LoadOptions| llm::load_path_with(&t.dir, &Device::Cpu, o).unwrap().info().weight_types.clone();
    std::env::remove_var(llm::safetensors::WEIGHTS_ENV);
    assert!(types(&llm::LoadOptions::default()).starts_with("Q8_0"), "the CPU default is not Q8_0");
    assert_eq!(types(&llm::LoadOptions::weights(llm::WeightsDtype::F32)), "f32");
    std::env::set_var(llm::safetensors::WEIGHTS_ENV, "f32");
    assert_eq!(types(&llm::LoadOptions::default()), "f32", "the environment variable is not honoured");
    assert!(types(&llm::LoadOptions::weights(llm::WeightsDtype::Q8_0)).starts_with("Q8_0"), "the option does not beat the environment");
    std::env::set_var(llm::safetensors::WEIGHTS_ENV, "bf17");
    let e = llm::load_path_with(&t.dir, &Device::Cpu, &llm::LoadOptions::default()).err().unwrap().to_string();
    assert!(e.contains("REVMOD_SAFETENSORS_WEIGHTS") && e.contains("expected f32 or q8_0"), "{e}");
    std::env::remove_var(llm::safetensors::WEIGHTS_ENV);
    assert_eq!(llm::WeightsDtype::default_for(&Device::Cpu), llm::WeightsDtype::Q8_0);
    let _ = std::fs::remove_dir_all(&t.dir);
}
