//! Q8_0 weights times f32 activations, tiled for AVX-512 VNNI: the Gemma-3 270M's hot product.
//!
//! Why: in the 270M Q4_K_M file every projection whose input is the 640-wide hidden state is Q8_0 (or Q5_0,
//! which `super::repack` turns into Q8_0 exactly), and so is the 262,144-row tied LM head. candle-core 0.11
//! has tiled VNNI kernels only when the inner dimension is a multiple of 256; for 640 it computes one dot
//! product per output (`vec_dot_q8_0_q8_0`, converting both f16 scales for every block), which was about
//! half of prefill time.
//!
//! What: the same arithmetic as candle's (and llama.cpp's) `Q8_0 x Q8_0` path. Each activation row is
//! quantized to Q8_0 exactly as candle does (`d = amax / 127`, f16 scale, `round(x / d)`); each 32-value block
//! pair gives eight exact i32 partial sums (lane `l` = values `4l..4l+3`, as candle's `maddubs`+`madd`),
//! converted to f32 and accumulated with `fma(sums, d_w * d_x, acc)`, then summed horizontally in candle's
//! order. So the results are bit-identical to candle's; only the work is arranged differently:
//! - weight scales are converted from f16 once, at load;
//! - a 4 x 4 tile (4 weight rows x 4 activation rows) loads each weight block once for 4 activation rows
//!   and each activation block once for 4 weight rows, with `vpdpbusd` (`|w|` times `sign(x, w)`, the sign
//!   trick of candle's AVX2 kernel) doing a block's products in one instruction; a single activation row
//!   (decode) goes through the weights one row at a time, which streams them fastest;
//! - weight rows are split over candle's CPU worker pool.
//!
//! Used when the CPU has AVX2, FMA and AVX-512 F/VL/VNNI (checked at run time); otherwise candle's kernel runs.
//! Measured and dropped: reading the f16 scales in place with `vcvtph2ps` (2x slower on the small decode
//! products) and 2- or 4-row tiles at one activation row (the LM head took 12-13 ms instead of 6-7).

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Values per Q8_0 block.
const QK: usize = 32;
/// Bytes per Q8_0 block: f16 scale + 32 signed bytes.
const BLOCK_BYTES: usize = 2 + QK;
/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// True when this CPU runs the tiled kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A Q8_0 weight matrix `(n, k)` (rows = outputs) with its block scales in f32.
#[derive(Debug)]
pub struct Q8_0Matrix {
    q: Arc<QTensor>,
    n: usize,
    k: usize,
    scales: Vec<f32>,
}

/// Activations quantized to Q8_0: `m` rows of `k` bytes, one f32 (f16-rounded) scale per block.
pub struct Q8_0Rows {
    m: usize,
    k: usize,
    qs: Vec<i8>,
    scales: Vec<f32>,
}

impl Q8_0Rows {
    /// Quantizes `m` rows of `k` values (row-major) like candle's `BlockQ8_0::from_float`.
    pub fn quantize(x: &[f32], m: usize, k: usize) -> Self {
        assert!(k % QK == 0 && x.len() == m * k, "{} values are not {m} rows of {k} (k a multiple of {QK})", x.len());
        let mut qs = vec![0i8; m * k];
        let mut scales = vec![0f32; m * k / QK];
        for ((xb, qb), s) in x.chunks_exact(QK).zip(qs.chunks_exact_mut(QK)).zip(scales.iter_mut()) {
            let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            *s = half::f16::from_f32(d).to_f32();
            for (q, &v) in qb.iter_mut().zip(xb) {
                *q = round_half_away(v * id) as i8;
            }
        }
        Q8_0Rows { m, k, qs, scales }
    }
}

/// `f32::round` (half away from zero) for |x| < 2^23 without the libm call that SSE2 code makes for it:
/// truncate, then step away from zero when the dropped fraction is at least one half (exact: `x - trunc`
/// is exact in f32 at these magnitudes).
#[inline(always)]
fn round_half_away(x: f32) -> f32 {
    let t = x as i32 as f32;
    let f = x - t;
    t + if f >= 0.5 { 1.0 } else if f <= -0.5 { -1.0 } else { 0.0 }
}

impl Q8_0Matrix {
    /// Wraps a 2-d Q8_0 tensor on the CPU; `None` for other types or devices, or when the CPU lacks the
    /// instructions (the caller keeps candle's matmul then).
    pub fn new(q: &Arc<QTensor>) -> Result<Option<Self>> {
        if q.dtype() != GgmlDType::Q8_0 || !matches!(q.device(), Device::Cpu) || !supported() {
            return Ok(None);
        }
        let (n, k) = q.shape().dims2().context("Q8_0 weight is not a matrix")?;
        if k % QK != 0 {
            return Ok(None);
        }
        let data = q.data()?;
        ensure!(data.len() == n * k / QK * BLOCK_BYTES, "Q8_0 tensor ({n}, {k}) has {} bytes", data.len());
        let scales = data.chunks_exact(BLOCK_BYTES).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
        Ok(Some(Q8_0Matrix { q: q.clone(), n, k, scales }))
    }

    /// Output features (rows).
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input features (columns).
    pub fn cols(&self) -> usize {
        self.k
    }

    /// One matrix holding the rows of `parts` in order (same input width): projections of one input
    /// (q/k/v, gate/up) then cost one product, one activation quantization and one dispatch to the
    /// worker pool instead of several, which is most of a small product's time at decode.
    pub fn stack(parts: &[&Q8_0Matrix]) -> Result<Q8_0Matrix> {
        let k = parts.first().context("nothing to stack")?.k;
        ensure!(parts.iter().all(|p| p.k == k), "stacked matrices need one input width");
        let n: usize = parts.iter().map(|p| p.n).sum();
        let mut bytes = Vec::with_capacity(n * k / QK * BLOCK_BYTES);
        for p in parts {
            bytes.extend_from_slice(&p.q.data()?);
        }
        let storage = candle_core::quantized::QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0)?;
        let q = QTensor::new(storage, (n, k))?;
        let scales = parts.iter().flat_map(|p| p.scales.iter().copied()).collect();
        Ok(Q8_0Matrix { q: Arc::new(q), n, k, scales })
    }

    /// `x W^T` for `x` of shape `(..., k)`: shape `(..., n)`, like candle's `QMatMul::forward`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().context("scalar input")?;
        ensure!(k == self.k, "input has {k} features, the weight {}", self.k);
        let xs: Vec<f32> = x.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1()?;
        let out = self.forward_rows(&xs)?;
        let mut shape = dims;
        *shape.last_mut().unwrap() = self.n;
        Ok(Tensor::from_vec(out, shape, x.device())?)
    }

    /// `x W^T` for row-major rows of `k` values in `x`: row-major `(rows, n)`.
    pub fn forward_rows(&self, x: &[f32]) -> Result<Vec<f32>> {
        ensure!(x.len() % self.k == 0, "{} values are not rows of {}", x.len(), self.k);
        self.matmul(&Q8_0Rows::quantize(x, x.len() / self.k, self.k))
    }

    /// Row-major `(m, n)` products of quantized activations with this matrix.
    pub fn matmul(&self, a: &Q8_0Rows) -> Result<Vec<f32>> {
        ensure!(a.k == self.k, "activations have {} features, the weight {}", a.k, self.k);
        let (m, n) = (a.m, self.n);
        let mut out = vec![0f32; m * n];
        let data = self.q.data()?;
        // Tasks own weight rows, i.e. columns of `out`, which are not contiguous: so the pool is driven
        // directly rather than through `ops::pool_chunks_mut` (same pool, same reason).
        let out_ptr = super::ops::SendPtr(out.as_mut_ptr());
        candle_core::utils::barrier_pool().execute_chunked(n.div_ceil(ROWS_PER_TASK), |tasks| {
            let j0 = tasks.start * ROWS_PER_TASK;
            let j1 = (tasks.end * ROWS_PER_TASK).min(n);
            let out_ptr = &out_ptr;
            // SAFETY: the CPU features were checked in `new`; these tasks write only columns j0..j1 of `out`.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                kernel::rows(&data, &self.scales, self.k, a, j0, j1, out_ptr.0, n)
            };
        });
        Ok(out)
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel {
    use super::{Q8_0Rows, BLOCK_BYTES, QK};
    use std::arch::x86_64::*;

    /// candle's `hsum_float_8`, so the horizontal sum rounds the same way.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(x: __m256) -> f32 {
        let r = _mm256_extractf128_ps(x, 1);
        let r = _mm_add_ps(r, _mm256_castps256_ps128(x));
        let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        let r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    /// Weight rows `j0..j1` against every activation row, into `out[r * n + j]`.
    ///
    /// # Safety
    /// AVX2, FMA, AVX-512 F/VL/VNNI available; `out` points to `a.m * n` floats, of which only the columns
    /// `j0..j1` are written.
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn rows(w: &[u8], ws: &[f32], k: usize, a: &Q8_0Rows, j0: usize, j1: usize, out: *mut f32, n: usize) {
        // One activation row (decode): one weight row at a time streams the weights best (the 262,144-row
        // LM head: 7.3 ms against 13.4 ms with 4-row tiles and candle's 9.8 ms, examples/bench_q8_0).
        if a.m == 1 {
            for j in j0..j1 {
                tile::<1, 1>(w, ws, k, a, 0, j, out, n);
            }
            return;
        }
        let mut j = j0;
        while j < j1 {
            let nr = (j1 - j).min(4);
            let mut r = 0;
            while r < a.m {
                let mr = (a.m - r).min(4);
                match (mr, nr) {
                    (4, 4) => tile::<4, 4>(w, ws, k, a, r, j, out, n),
                    (3, 4) => tile::<3, 4>(w, ws, k, a, r, j, out, n),
                    (2, 4) => tile::<2, 4>(w, ws, k, a, r, j, out, n),
                    (1, 4) => tile::<1, 4>(w, ws, k, a, r, j, out, n),
                    (4, _) => tile::<4, 1>(w, ws, k, a, r, j, out, n),
                    (3, _) => tile::<3, 1>(w, ws, k, a, r, j, out, n),
                    (2, _) => tile::<2, 1>(w, ws, k, a, r, j, out, n),
                    _ => tile::<1, 1>(w, ws, k, a, r, j, out, n),
                }
                r += mr;
            }
            j += if nr == 4 { 4 } else { 1 };
        }
    }

    /// Activation rows `r0..r0+MR` times weight rows `j0..j0+NR`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
    unsafe fn tile<const MR: usize, const NR: usize>(
        w: &[u8],
        ws: &[f32],
        k: usize,
        a: &Q8_0Rows,
        r0: usize,
        j0: usize,
        out: *mut f32,
        n: usize,
    ) {
        let kb = k / QK;
        let mut acc = [[_mm256_setzero_ps(); NR]; MR];
        let wbase = w.as_ptr().add(j0 * kb * BLOCK_BYTES + 2);
        let abase = a.qs.as_ptr().add(r0 * k);
        for b in 0..kb {
            let mut wv = [_mm256_setzero_si256(); NR];
            let mut wabs = [_mm256_setzero_si256(); NR];
            let mut wd = [0f32; NR];
            for jj in 0..NR {
                wv[jj] = _mm256_loadu_si256(wbase.add((jj * kb + b) * BLOCK_BYTES) as *const __m256i);
                wabs[jj] = _mm256_sign_epi8(wv[jj], wv[jj]);
                wd[jj] = *ws.get_unchecked((j0 + jj) * kb + b);
            }
            for rr in 0..MR {
                let av = _mm256_loadu_si256(abase.add(rr * k + b * QK) as *const __m256i);
                let ad = *a.scales.get_unchecked((r0 + rr) * kb + b);
                for jj in 0..NR {
                    let sa = _mm256_sign_epi8(av, wv[jj]);
                    let p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wabs[jj], sa);
                    acc[rr][jj] = _mm256_fmadd_ps(_mm256_set1_ps(wd[jj] * ad), _mm256_cvtepi32_ps(p), acc[rr][jj]);
                }
            }
        }
        for rr in 0..MR {
            for jj in 0..NR {
                *out.add((r0 + rr) * n + j0 + jj) = hsum(acc[rr][jj]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    /// Bit-identical to candle's Q8_0 matmul for prefill-like and decode-like shapes, including row counts
    /// that are not multiples of the 4 x 4 tile.
    #[test]
    fn tiled_product_equals_candles_bit_for_bit() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (candle's kernel is used instead)");
            return;
        }
        let dev = Device::Cpu;
        for (n, k, m) in [(256usize, 640usize, 37usize), (70, 64, 1), (132, 96, 5), (4, 32, 4)] {
            let w = (Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap() * 3.0).unwrap();
            let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
            let x = Tensor::randn(0f32, 2.0, (1, m, k), &dev).unwrap();
            let want: Vec<f32> = QMatMul::from_arc(q.clone()).unwrap().forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let ours = Q8_0Matrix::new(&q).unwrap().expect("Q8_0 on CPU");
            let got_t = ours.forward(&x).unwrap();
            assert_eq!(got_t.dims(), &[1, m, n]);
            let got: Vec<f32> = got_t.flatten_all().unwrap().to_vec1().unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "({n}, {k}, m {m}) element {i}: ours {a} candle {b}");
            }
        }
    }

    #[test]
    fn rounding_is_f32_round() {
        let mut x = -130.0f32;
        while x < 130.0 {
            assert_eq!(round_half_away(x), x.round(), "{x}");
            x = f32::from_bits(x.to_bits() - if x < 0.0 { 4096 } else { 0 } + if x >= 0.0 { 4096 } else { 0 });
            if x.abs() < 1e-3 {
                x = 1e-3;
            }
        }
        for x in [0.5f32, -0.5, 1.5, -2.5, 0.49999997, -0.49999997, 126.5, -127.0] {
            assert_eq!(round_half_away(x), x.round(), "{x}");
        }
    }

    #[test]
    fn stacked_matrices_give_the_parts_products() {
        if !supported() {
            return;
        }
        let dev = Device::Cpu;
        let mk = |n: usize| {
            let w = Tensor::randn(0f32, 1.0, (n, 64), &dev).unwrap();
            Q8_0Matrix::new(&Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap())).unwrap().unwrap()
        };
        let (a, b) = (mk(8), mk(12));
        let s = Q8_0Matrix::stack(&[&a, &b]).unwrap();
        assert_eq!(s.rows(), 20);
        let x = Tensor::randn(0f32, 1.0, (3, 64), &dev).unwrap();
        let whole = s.forward(&x).unwrap();
        let parts = Tensor::cat(&[a.forward(&x).unwrap(), b.forward(&x).unwrap()], 1).unwrap();
        let (w, p): (Vec<f32>, Vec<f32>) = (whole.flatten_all().unwrap().to_vec1().unwrap(), parts.flatten_all().unwrap().to_vec1().unwrap());
        assert_eq!(w, p);
        let c = mk(4);
        let other = Q8_0Matrix::new(&Arc::new(QTensor::quantize(&Tensor::randn(0f32, 1.0, (4, 32), &dev).unwrap(), GgmlDType::Q8_0).unwrap())).unwrap().unwrap();
        assert!(Q8_0Matrix::stack(&[&c, &other]).is_err(), "different input widths");
    }

    #[test]
    fn other_types_are_left_to_candle() {
        let w = Tensor::randn(0f32, 1.0, (8, 256), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        assert!(Q8_0Matrix::new(&q).unwrap().is_none());
    }
}
