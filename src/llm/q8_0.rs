//! Q8_0 weights times f32 activations, tiled: the Gemma-3 270M's hot product, for AVX-512 VNNI, AVX2 and NEON.
//!
//! Why: in the 270M Q4_K_M file every projection whose input is the 640-wide hidden state is Q8_0 (or Q5_0,
//! which `super::repack` turns into Q8_0 exactly), and so is the 262,144-row tied LM head. candle-core 0.11
//! has tiled kernels only when the inner dimension is a multiple of 256 (and on x86 only with VNNI); for 640
//! it computes one dot product per output (`vec_dot_q8_0_q8_0`, converting both f16 scales for every block),
//! which was about half of prefill time.
//!
//! What: the arithmetic of candle's (and llama.cpp's) `Q8_0 x Q8_0` path. Each activation row is quantized to
//! Q8_0 exactly as candle does (`d = amax / 127`, f16 scale, `round(x / d)`); each 32-value block pair gives
//! exact integer sums, which are converted to f32, scaled by `d_w * d_x` and accumulated. The work is arranged
//! for reuse:
//! - a tile of weight rows x activation rows loads each weight block once for all its activation rows and
//!   each activation block once for all its weight rows; a single activation row (decode) streams the
//!   weights once;
//! - weight rows are split over candle's CPU worker pool.
//!
//! One kernel per instruction set ([`super::cpu::kernel_path`] picks it at run time; `kernels` holds them):
//! - AVX-512 VNNI: bit-identical to candle. Eight i32 partial sums per block pair (lane `l` = values
//!   `4l..4l+3`, as candle's `maddubs`+`madd`), `fma(sums, d_w * d_x, acc)`, candle's horizontal sum at the
//!   end; weight scales converted from f16 once, at load; 4 x 4 tiles with `vpdpbusd` (`|w|` times
//!   `sign(x, w)`, the sign trick of candle's AVX2 kernel) doing a block's products in one instruction.
//! - AVX2 + FMA + F16C: the weights are re-laid at load in groups of eight rows ([`kernels::pack8`]: per
//!   block, four values of eight rows per 32 bytes), so one register holds eight rows' sums: per four
//!   activation values (broadcast) `vpmaddubsw(|w|, sign(x, w))` then `vpmaddwd` by ones (exact: the pairs
//!   stay below 2 * 127 * 127 < 2^15), added in i32 over the block, then one `fma(sum, d_w * d_x, acc)` per
//!   block for eight outputs, with no horizontal sums. That is half the instructions of candle's per-output
//!   layout (measured on this AMD EPYC, one thread, 4096 x 640 weights: 64 rows 3.5-4.7 ms against 8.5 ms
//!   for 4 x 2 tiles of candle's layout; decode 0.08 ms against 0.16-0.21 ms). The block sum is exact, so
//!   each output has one rounding per block where candle has eight partial sums: not bit-identical, and
//!   tested against the rounding bound of the exact product (`every_path_is_within_the_rounding_bound...`)
//!   and against llama.cpp (tests/llm_llama_parity.rs). The packed copy replaces the tensor's blocks in the
//!   matrix (the tied LM head's blocks stay for the embedding lookup).
//! - NEON with the dot-product extension (aarch64): `sdot` gives the four-value sums directly; accumulated as
//!   candle's NEON `vec_dot_q8_0_q8_0` does (4 lanes, multiply then add, unfused), in 4 x 4 tiles. candle-core
//!   0.11 on aarch64 runs its own repacked kernels, whose rounding differs, so the bound test applies there;
//!   tests/llm_kernels_cross.rs runs it under QEMU against a scalar reference of its arithmetic.
//!
//! Otherwise (or with `REVMOD_CPU_KERNEL=candle`) candle's kernel runs.
//! Measured and dropped (VNNI): reading the f16 scales in place with `vcvtph2ps` (2x slower on the small
//! decode products) and 2- or 4-row tiles at one activation row (the LM head took 12-13 ms instead of 6-7).

use std::sync::Arc;

use super::cpu::KernelPath;
use anyhow::{ensure, Context, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

mod kernels;
use kernels::{Acts, BLOCK_BYTES, QK};
/// Weight rows per parallel task (a multiple of the AVX2 layout's 8-row groups).
const ROWS_PER_TASK: usize = 64;

/// True when this process runs a tiled kernel (the CPU has one and `REVMOD_CPU_KERNEL` does not say `candle`).
pub fn supported() -> bool {
    super::cpu::kernel_path() != KernelPath::Candle
}

/// A Q8_0 weight matrix `(n, k)` (rows = outputs), laid out for its kernel path.
#[derive(Debug)]
pub struct Q8_0Matrix {
    n: usize,
    k: usize,
    path: KernelPath,
    weights: Weights,
}

/// The weights as a kernel reads them.
#[derive(Debug)]
enum Weights {
    /// The tensor's own ggml blocks, with the block scales also in f32 (VNNI and NEON kernels).
    Blocks { q: Arc<QTensor>, scales: Vec<f32> },
    /// 8-row interleaved groups ([`kernels::pack8`], AVX2 kernel): the same bytes, moved.
    Groups(Vec<u8>),
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
        Self::with_path(q, super::cpu::kernel_path())
    }

    /// [`Q8_0Matrix::new`] with a given kernel path (tests and benchmarks compare paths); `None` also when
    /// `path` is `Candle` or this CPU cannot run it.
    pub fn with_path(q: &Arc<QTensor>, path: KernelPath) -> Result<Option<Self>> {
        if q.dtype() != GgmlDType::Q8_0 || !matches!(q.device(), Device::Cpu) || path == KernelPath::Candle || !path.available() {
            return Ok(None);
        }
        let (n, k) = q.shape().dims2().context("Q8_0 weight is not a matrix")?;
        if k % QK != 0 {
            return Ok(None);
        }
        let data = q.data()?;
        ensure!(data.len() == n * k / QK * BLOCK_BYTES, "Q8_0 tensor ({n}, {k}) has {} bytes", data.len());
        let weights = match path {
            KernelPath::Avx2 => Weights::Groups(kernels::pack8(&data, n, k)),
            _ => Weights::Blocks {
                q: q.clone(),
                scales: data.chunks_exact(BLOCK_BYTES).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            },
        };
        Ok(Some(Q8_0Matrix { n, k, path, weights }))
    }

    /// The weights as ggml Q8_0 bytes (`n` rows of `k / 32` blocks).
    fn ggml_bytes(&self) -> Result<Vec<u8>> {
        Ok(match &self.weights {
            Weights::Blocks { q, .. } => q.data()?.into_owned(),
            Weights::Groups(p) => kernels::unpack8(p, self.n, self.k),
        })
    }

    /// Output features (rows).
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Input features (columns).
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The kernel this matrix's products run on.
    pub fn path(&self) -> KernelPath {
        self.path
    }

    /// Whether the weights were re-laid for the kernel (AVX2's 8-row groups) rather than kept as the
    /// tensor's blocks.
    pub fn is_relaid(&self) -> bool {
        matches!(self.weights, Weights::Groups(_))
    }

    /// Row `r` dequantized as candle does (`q as f32 * d`, `d` the f16 scale): an embedding lookup.
    pub fn row_values(&self, r: usize) -> Result<Vec<f32>> {
        ensure!(r < self.n, "row {r} of a matrix with {} rows", self.n);
        let kb = self.k / QK;
        let mut v = Vec::with_capacity(self.k);
        let mut push = |d: [u8; 2], qs: &mut dyn Iterator<Item = u8>| {
            let d = half::f16::from_le_bytes(d).to_f32();
            v.extend(qs.map(|q| q as i8 as f32 * d));
        };
        match &self.weights {
            Weights::Blocks { q, .. } => {
                let data = q.data()?;
                for blk in data[r * kb * BLOCK_BYTES..(r + 1) * kb * BLOCK_BYTES].chunks_exact(BLOCK_BYTES) {
                    push([blk[0], blk[1]], &mut blk[2..].iter().copied());
                }
            }
            Weights::Groups(p) => {
                let (g, i) = (r / kernels::GROUP, r % kernels::GROUP);
                for b in 0..kb {
                    let blk = &p[(g * kb + b) * kernels::GROUP_BLOCK_BYTES..][..kernels::GROUP_BLOCK_BYTES];
                    let vals = (0..QK).map(|c| blk[kernels::GROUP * 2 + (c / 4) * 32 + 4 * i + c % 4]);
                    push([blk[2 * i], blk[2 * i + 1]], &mut vals.into_iter());
                }
            }
        }
        Ok(v)
    }

    /// One matrix holding the rows of `parts` in order (same input width): projections of one input
    /// (q/k/v, gate/up) then cost one product, one activation quantization and one dispatch to the
    /// worker pool instead of several, which is most of a small product's time at decode.
    pub fn stack(parts: &[&Q8_0Matrix]) -> Result<Q8_0Matrix> {
        let (k, path) = parts.first().map(|p| (p.k, p.path)).context("nothing to stack")?;
        ensure!(parts.iter().all(|p| p.k == k), "stacked matrices need one input width");
        ensure!(parts.iter().all(|p| p.path == path), "stacked matrices need one kernel path");
        let n: usize = parts.iter().map(|p| p.n).sum();
        let mut bytes = Vec::with_capacity(n * k / QK * BLOCK_BYTES);
        for p in parts {
            bytes.extend_from_slice(&p.ggml_bytes()?);
        }
        let storage = candle_core::quantized::QStorage::from_data(std::borrow::Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0)?;
        let q = Arc::new(QTensor::new(storage, (n, k))?);
        Self::with_path(&q, path)?.context("stacking Q8_0 matrices")
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
        let data = match &self.weights {
            Weights::Blocks { q, .. } => Some(q.data()?),
            Weights::Groups(_) => None,
        };
        // Tasks own weight rows, i.e. columns of `out`, which are not contiguous: so the pool is driven
        // directly rather than through `ops::pool_chunks_mut` (same pool, same reason).
        let out_ptr = super::ops::SendPtr(out.as_mut_ptr());
        let path = self.path;
        candle_core::utils::barrier_pool().execute_chunked(n.div_ceil(ROWS_PER_TASK), |tasks| {
            let j0 = tasks.start * ROWS_PER_TASK;
            let j1 = (tasks.end * ROWS_PER_TASK).min(n);
            let out_ptr = &out_ptr;
            let acts = Acts { m: a.m, qs: &a.qs, scales: &a.scales };
            let a = &acts;
            // SAFETY: the CPU can run `path` (checked in `with_path`); these tasks write only columns j0..j1
            // of `out`.
            unsafe {
                match (path, &self.weights, &data) {
                    #[cfg(target_arch = "x86_64")]
                    (KernelPath::Avx512Vnni, Weights::Blocks { scales, .. }, Some(d)) => kernels::vnni::rows(d, scales, self.k, a, j0, j1, out_ptr.0, n),
                    #[cfg(target_arch = "x86_64")]
                    (KernelPath::Avx2, Weights::Groups(p), _) => kernels::avx2::rows_packed(p, self.k, a, j0 / kernels::GROUP, j1.div_ceil(kernels::GROUP), out_ptr.0, n),
                    #[cfg(target_arch = "aarch64")]
                    (KernelPath::Neon, Weights::Blocks { scales, .. }, Some(d)) => kernels::neon::rows(d, scales, self.k, a, j0, j1, out_ptr.0, n),
                    _ => unreachable!("no {} kernel for this layout on this architecture", path.name()),
                }
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    /// The tiled paths this CPU can run.
    fn paths() -> Vec<KernelPath> {
        [KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Neon].into_iter().filter(|p| p.available()).collect()
    }

    /// Shapes like prefill and decode, including row counts that are not multiples of any tile; inner
    /// dimensions not multiples of 256, so candle runs its per-row `vec_dot_q8_0_q8_0` on every x86 CPU.
    const SHAPES: [(usize, usize, usize); 5] = [(256, 640, 37), (70, 64, 1), (132, 96, 5), (4, 32, 4), (9, 160, 7)];

    /// The AVX-512 VNNI path is bit-identical to candle's Q8_0 matmul.
    #[test]
    fn vnni_product_equals_candles_bit_for_bit() {
        let x86: Vec<KernelPath> = paths().into_iter().filter(|p| *p == KernelPath::Avx512Vnni).collect();
        if x86.is_empty() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        let dev = Device::Cpu;
        for (n, k, m) in SHAPES {
            let w = (Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap() * 3.0).unwrap();
            let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
            let x = Tensor::randn(0f32, 2.0, (1, m, k), &dev).unwrap();
            let want: Vec<f32> = QMatMul::from_arc(q.clone()).unwrap().forward(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            for &path in &x86 {
                let ours = Q8_0Matrix::with_path(&q, path).unwrap().expect("Q8_0 on CPU");
                assert_eq!(ours.path(), path);
                let got_t = ours.forward(&x).unwrap();
                assert_eq!(got_t.dims(), &[1, m, n]);
                let got: Vec<f32> = got_t.flatten_all().unwrap().to_vec1().unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{path:?} ({n}, {k}, m {m}) element {i}: ours {a} candle {b}");
                }
            }
        }
    }

    /// Every path (NEON included, where candle's own aarch64 kernels round differently) is within the f32
    /// rounding bound of the exact product of the same quantized values: per output, `kb + 4` roundings of
    /// partial sums no larger than the sum of the magnitudes of the four-value lane products (a block's
    /// magnitude alone is too small for the lane-split paths: lanes of one block can cancel, and the VNNI
    /// path, bit-identical to candle, went past that bound on this AMD EPYC in 1 of 5 shapes).
    #[test]
    fn every_path_is_within_the_rounding_bound_of_the_exact_product() {
        let dev = Device::Cpu;
        for (n, k, m) in SHAPES {
            let w = (Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap() * 3.0).unwrap();
            let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
            let data = q.data().unwrap();
            let x: Vec<f32> = Tensor::randn(0f32, 2.0, (m, k), &dev).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let xq = Q8_0Rows::quantize(&x, m, k);
            let kb = k / QK;
            for path in paths() {
                let got = Q8_0Matrix::with_path(&q, path).unwrap().unwrap().matmul(&xq).unwrap();
                for r in 0..m {
                    for j in 0..n {
                        let (mut exact, mut mag) = (0f64, 0f64);
                        for b in 0..kb {
                            let blk = &data[(j * kb + b) * BLOCK_BYTES..(j * kb + b + 1) * BLOCK_BYTES];
                            let wd = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32() as f64;
                            let xd = xq.scales[r * kb + b] as f64;
                            let prod = |i: usize| blk[2 + i] as i8 as i64 * xq.qs[r * k + b * QK + i] as i64;
                            let isum: i64 = (0..QK).map(prod).sum();
                            exact += wd * xd * isum as f64;
                            // the magnitude of the partial sums a path rounds: per lane of four values (the
                            // VNNI and NEON paths keep 8 or 4 lanes and sum them at the end, candle's order),
                            // which is at least the block's |sum| (the AVX2 path's one sum per block)
                            let lanes: i64 = (0..QK / 4).map(|l| (4 * l..4 * l + 4).map(prod).sum::<i64>().abs()).sum();
                            mag += (wd * xd).abs() * lanes as f64;
                        }
                        let bound = (kb + 4) as f64 * 2.0 * f32::EPSILON as f64 * mag + f32::MIN_POSITIVE as f64;
                        let g = got[r * n + j] as f64;
                        assert!((g - exact).abs() <= bound, "{path:?} ({n}, {k}, m {m}) [{r}, {j}]: {g} exact {exact} bound {bound}");
                    }
                }
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
        let dev = Device::Cpu;
        for path in paths() {
            let mk = |n: usize, k: usize| {
                let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
                Q8_0Matrix::with_path(&Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()), path).unwrap().unwrap()
            };
            let (a, b) = (mk(8, 64), mk(12, 64));
            let s = Q8_0Matrix::stack(&[&a, &b]).unwrap();
            assert_eq!((s.rows(), s.path()), (20, path));
            let x = Tensor::randn(0f32, 1.0, (3, 64), &dev).unwrap();
            let whole = s.forward(&x).unwrap();
            let parts = Tensor::cat(&[a.forward(&x).unwrap(), b.forward(&x).unwrap()], 1).unwrap();
            let (w, p): (Vec<f32>, Vec<f32>) = (whole.flatten_all().unwrap().to_vec1().unwrap(), parts.flatten_all().unwrap().to_vec1().unwrap());
            assert_eq!(w, p);
            assert!(Q8_0Matrix::stack(&[&mk(4, 64), &mk(4, 32)]).is_err(), "different input widths");
        }
    }

    /// Rows read back from every layout equal candle's embedding lookup (dequantization) bit for bit.
    #[test]
    fn row_values_equal_candles_embedding_lookup() {
        let dev = Device::Cpu;
        let w = (Tensor::randn(0f32, 1.0, (21, 96), &dev).unwrap() * 3.0).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let ids = Tensor::new(&[0u32, 7, 8, 20, 3], &dev).unwrap();
        let want: Vec<f32> = q.embedding(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for path in paths() {
            let m = Q8_0Matrix::with_path(&q, path).unwrap().unwrap();
            assert_eq!(m.is_relaid(), path == KernelPath::Avx2);
            let got: Vec<f32> = [0usize, 7, 8, 20, 3].iter().flat_map(|&r| m.row_values(r).unwrap()).collect();
            assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{path:?}");
            assert!(m.row_values(21).is_err());
        }
    }

    #[test]
    fn other_types_and_the_candle_path_are_left_to_candle() {
        let w = Tensor::randn(0f32, 1.0, (8, 256), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        assert!(Q8_0Matrix::new(&q).unwrap().is_none());
        let q8 = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        assert!(Q8_0Matrix::with_path(&q8, KernelPath::Candle).unwrap().is_none());
        for p in [KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Neon] {
            assert_eq!(Q8_0Matrix::with_path(&q8, p).unwrap().is_some(), p.available(), "{p:?}");
        }
    }
}
