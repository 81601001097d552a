//! Micro-benchmark of the Q8_0 product (src/llm/q8_0.rs) against candle-core's `QMatMul` on the shapes of
//! Gemma-3 270M: the 640-wide projections at prefill (m = 64) and decode (m = 1), and the 262,144-row tied
//! LM head. Prints both times and the ratio. Needs a CPU with AVX-512 VNNI (else our kernel is not used).
//!
//! usage: cargo run --release --example bench_q8_0   (RAYON_NUM_THREADS / candle threads as usual)

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use std::sync::Arc;
fn main() {
    let dev = Device::Cpu;
    for (n, k, m) in [(262144usize, 640usize, 1usize), (2048, 640, 1), (1024, 640, 1), (2048, 640, 64), (262144, 640, 4)] {
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).unwrap();
        let c = QMatMul::from_arc(q.clone()).unwrap();
        let Some(o) = revmod::llm::q8_0::Q8_0Matrix::new(&q).unwrap() else {
            eprintln!("this CPU has no AVX-512 VNNI: nothing to compare");
            return;
        };
        let reps = if n > 100000 { 20 } else { 400 };
        for _ in 0..3 { c.forward(&x).unwrap(); o.forward(&x).unwrap(); }
        let t = std::time::Instant::now(); for _ in 0..reps { c.forward(&x).unwrap(); } let tc = t.elapsed().as_secs_f64() / reps as f64;
        let t = std::time::Instant::now(); for _ in 0..reps { o.forward(&x).unwrap(); } let to = t.elapsed().as_secs_f64() / reps as f64;
        println!("n {n} k {k} m {m}: candle {:.3} ms, ours {:.3} ms, ratio {:.2}", tc * 1e3, to * 1e3, tc / to);
    }
}
