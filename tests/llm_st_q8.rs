//! Safetensors quantized to Q8_0 while loading (src/llm/safetensors.rs, REVMOD_SAFETENSORS_WEIGHTS=q8_0): on the
//! tiny random Gemma-3, the model loaded from its f32 safetensors with Q8_0 quantization gives the same logits,
//! bit for bit, as the Q8_0 GGUF the test writes from the same f32 weights with candle's quantizer; and they
//! differ from the f32 model's (the quantization happened).

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
    let q8 = Some(candle_core::quantized::GgmlDType::Q8_0);
    let mut st_q8 = llm::load_safetensors_with(&t.dir, &Device::Cpu, q8, Instant::now()).unwrap();
    assert!(st_q8.info().weight_types.starts_with("Q8_0"), "{}", st_q8.info().weight_types);
    let g = t.dir.join("tiny.gguf");
    std::fs::rename(&t.gguf_q8, &g).unwrap();
    let mut gguf_q8 = llm::load_gemma(g.to_str().unwrap()).unwrap();
    let mut st_f32 = llm::load_safetensors_with(&t.dir, &Device::Cpu, None, Instant::now()).unwrap();
    let (a, b, f) = (logits(&mut st_q8), logits(&mut gguf_q8), logits(&mut st_f32));
    assert_eq!(max_abs_diff(&a, &b), 0.0, "Q8_0 while loading differs from the Q8_0 GGUF");
    let d = max_abs_diff(&a, &f);
    assert!(d > 0.0 && d < 0.5, "Q8_0 vs f32: max |diff| {d}");
    let _ = std::fs::remove_dir_all(&t.dir);
}
