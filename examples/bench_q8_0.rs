//! Micro-benchmark of the Q8_0 product (src/llm/q8_0.rs) against candle-core's `QMatMul` on the shapes of
//! Gemma-3 270M: the 640-wide projections at prefill (m = 64) and decode (m = 1), and the 262,144-row tied
//! LM head. Prints, per shape, candle's time and each tiled path this CPU can run (AVX-512 VNNI, AVX2, NEON)
//! with its ratio to candle; rounds alternate the kernels and the best round counts.
//!
//! usage: cargo run --release --example bench_q8_0   (RAYON_NUM_THREADS / candle threads as usual)

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use revmod::llm::cpu::KernelPath;
use revmod::llm::q8_0::Q8_0Matrix;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let dev = Device::Cpu;
    println!("{}", revmod::llm::cpu::describe());
    let paths: Vec<KernelPath> = [KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Neon].into_iter().filter(|p| p.available()).collect();
    if paths.is_empty() {
        eprintln!("this CPU has no tiled path: nothing to compare");
        return;
    }
    for (n, k, m) in [(262144usize, 640usize, 1usize), (2048, 640, 1), (1024, 640, 1), (2048, 640, 64), (4096, 640, 242), (262144, 640, 4)] {
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).unwrap();
        let c = QMatMul::from_arc(q.clone()).unwrap();
        let ours: Vec<Q8_0Matrix> = paths.iter().map(|&p| Q8_0Matrix::with_path(&q, p).unwrap().unwrap()).collect();
        let reps = (4e8 as usize / (n * k * m)).clamp(3, 400);
        let time = |f: &dyn Fn()| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        };
        let mut best = vec![f64::MAX; 1 + ours.len()];
        for _ in 0..5 {
            best[0] = best[0].min(time(&|| drop(c.forward(&x).unwrap())));
            for (i, o) in ours.iter().enumerate() {
                best[1 + i] = best[1 + i].min(time(&|| drop(o.forward(&x).unwrap())));
            }
        }
        let mut line = format!("n {n} k {k} m {m}: candle {:.3} ms", best[0] * 1e3);
        for (p, t) in paths.iter().zip(&best[1..]) {
            line += &format!(", {} {:.3} ms ({:.2}x)", p.name(), t * 1e3, best[0] / t);
        }
        println!("{line}");
    }
}
