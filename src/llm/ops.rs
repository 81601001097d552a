//! Elementwise CPU kernels of the Gemma-3 forward pass that candle runs one value at a time.
//!
//! `gelu_mul` is the MLP's `gelu_tanh(gate) * up` in one pass. candle computes GELU with libm's `tanhf` per
//! value and the product as a second op; on the 270M at prefill that was about a tenth of the time. Here the
//! tanh form is rewritten as a logistic function, which needs one `exp` and no cancellation:
//!
//! `0.5 v (1 + tanh(u)) = v / (1 + exp(-2u))`, with `u = sqrt(2/pi) (v + 0.044715 v^3)`,
//!
//! and `exp` is a branch-free polynomial (Cephes' `expf` coefficients, round-to-nearest via the 1.5 * 2^23
//! trick, exponent bits set directly) that the compiler vectorizes. Relative error against the libm form:
//! below 1e-6 (test below), far under the 8-bit activation quantization that follows.

use anyhow::{bail, Result};
use candle_core::{Storage, Tensor};

/// `exp(x)` for f32, branch-free: relative error about 2e-7 on [-87, 88]; 0 below, `exp(88.3)` above.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer
    let x = x.max(-87.3).min(88.3);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// GELU with the tanh approximation (candle's `gelu`, HF's `gelu_pytorch_tanh`), as a logistic function.
#[inline(always)]
pub fn gelu_tanh(v: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * v * (1.0 + 0.044_715 * v * v);
    v / (1.0 + exp_f32(-2.0 * u))
}

/// Contiguous f32 values of a CPU tensor, copied.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// `g[i] = gelu_tanh(g[i]) * u[i]`: the MLP activation on one row (decode) or one chunk.
pub fn gelu_mul_slice(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        *g = gelu_tanh(*g) * u;
    }
}

/// `gelu_tanh(g) * u` elementwise for CPU f32 tensors of one shape; chunks split over candle's worker pool.
pub fn gelu_mul(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    if g.dims() != u.dims() {
        bail!("gelu_mul: shapes {:?} and {:?} differ", g.dims(), u.dims());
    }
    let u = u.contiguous()?;
    let (us, ul) = u.storage_and_layout();
    let Storage::Cpu(uc) = &*us else { bail!("gelu_mul needs CPU tensors") };
    let uv = &uc.as_slice::<f32>()?[ul.start_offset()..ul.start_offset() + u.elem_count()];
    let mut out = values(g)?;
    const CHUNK: usize = 4096;
    pool_chunks_mut(&mut out, CHUNK, |i, o| gelu_mul_slice(o, &uv[i * CHUNK..]));
    Ok(Tensor::from_vec(out, g.dims(), g.device())?)
}

/// Calls `f(i, chunk)` for every `chunk_len`-long chunk `i` of `out` (the last may be shorter), on
/// candle's CPU worker pool: the pool the model's other ops run on, so no second set of workers spins
/// beside it (which halved decode speed on two cores).
pub fn pool_chunks_mut(out: &mut [f32], chunk_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let n = out.len();
    let ptr = SendPtr(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(n.div_ceil(chunk_len.max(1)), |chunks| {
        let ptr = &ptr;
        for i in chunks {
            let (a, b) = (i * chunk_len, ((i + 1) * chunk_len).min(n));
            // SAFETY: each chunk index is handed to one worker once; chunks are disjoint and inside `out`,
            // which outlives the call.
            f(i, unsafe { std::slice::from_raw_parts_mut(ptr.0.add(a), b - a) });
        }
    });
}

/// A pointer into one output buffer, shared by workers that write disjoint parts of it.
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the workers holding it write disjoint elements of one live buffer.
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_gelu_match_libm() {
        let mut worst_exp = 0f64;
        let mut worst_gelu = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 4e-4; // -80 .. 80
            let e = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst_exp = worst_exp.max(((e - want) / want).abs());
            let v = i as f32 * 1e-4; // -20 .. 20
            let want = 0.5 * v as f64 * (1.0 + (0.797_884_560_8 * v as f64 * (1.0 + 0.044715 * (v as f64).powi(2))).tanh());
            let got = gelu_tanh(v) as f64;
            // relative to the value, with an absolute floor where GELU is ~0
            worst_gelu = worst_gelu.max((got - want).abs() / want.abs().max(1e-3));
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_gelu < 2e-6, "gelu relative error {worst_gelu}");
        assert!(exp_f32(-200.0) <= 1.3e-38 && exp_f32(200.0).is_finite());
        assert!(gelu_tanh(-30.0).abs() < 1e-20 && gelu_tanh(30.0) == 30.0);
    }

    /// Against the exact (f64) GELU times `u`, and no farther from it than candle's f32 ops, which lose
    /// digits in `1 + tanh(u)` where GELU is near 0.
    #[test]
    fn gelu_mul_is_as_exact_as_candles_ops() {
        let dev = candle_core::Device::Cpu;
        let g = (Tensor::randn(0f32, 1.0, (37, 300), &dev).unwrap() * 4.0).unwrap();
        let u = Tensor::randn(0f32, 1.0, (37, 300), &dev).unwrap();
        let candle: Vec<f32> = (g.gelu().unwrap() * &u).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let got: Vec<f32> = gelu_mul(&g, &u).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let (gv, uv) = (values(&g).unwrap(), values(&u).unwrap());
        for i in 0..got.len() {
            let v = gv[i] as f64;
            let exact = 0.5 * v * (1.0 + (0.797_884_560_8 * v * (1.0 + 0.044715 * v * v)).tanh()) * uv[i] as f64;
            let (ours, theirs) = ((got[i] as f64 - exact).abs(), (candle[i] as f64 - exact).abs());
            assert!(ours <= 2e-6 * exact.abs() + 1e-12 || ours <= theirs, "{i}: ours {} candle {} exact {exact}", got[i], candle[i]);
        }
        assert!(gelu_mul(&g, &u.narrow(1, 0, 10).unwrap()).is_err());
    }
}
