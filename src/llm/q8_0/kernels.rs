//! The SIMD inner loops of the tiled Q8_0 product (see [`super`] for what they compute and why), one module per
//! instruction set: [`vnni`] (AVX-512 VNNI), [`avx2`] (AVX2 + FMA), [`neon`] (aarch64 + dot product).
//!
//! This file uses nothing but `core::arch`, so that `tests/kernels-aarch64` can compile it alone for aarch64
//! and run the NEON kernel under QEMU (no aarch64 machine here); its types are plain slices.
//!
//! Layout: the VNNI and NEON kernels read ggml Q8_0 blocks (`BLOCK_BYTES` = f16 scale + 32 signed bytes) of
//! `k / 32` blocks per row, with their scales also given as f32 (`ws`, one per block, row-major); the AVX2
//! kernel reads the interleaved layout of [`pack8`]. Activations are an [`Acts`].

/// Values per Q8_0 block.
pub const QK: usize = 32;
/// Bytes per Q8_0 block: f16 scale + 32 signed bytes.
pub const BLOCK_BYTES: usize = 2 + QK;

/// Quantized activations: `m` rows of `k` signed bytes and one f32 scale per 32-value block.
pub struct Acts<'a> {
    /// Rows (of `k` values, a multiple of [`QK`], given to the kernels beside).
    pub m: usize,
    /// `m * k` quantized values, row-major.
    pub qs: &'a [i8],
    /// `m * k / QK` block scales, row-major.
    pub scales: &'a [f32],
}

/// Weight rows per group of the interleaved layout ([`pack8`]).
pub const GROUP: usize = 8;
/// Bytes of one block of one row group in the interleaved layout: 8 f16 scales, then 8 x 32 values.
pub const GROUP_BLOCK_BYTES: usize = GROUP * 2 + GROUP * QK;

/// Re-lays ggml Q8_0 rows (`n` rows of `k / 32` blocks) in groups of [`GROUP`] rows: per group and block,
/// the 8 rows' f16 scales (16 bytes), then for each 4-value column group `g` (0..8) the 8 rows' values
/// `4g..4g+3` (32 bytes: row `r` at bytes `4r..4r+3`). One 256-bit load then holds four values of eight rows,
/// so a product broadcasts four activation values and keeps eight rows' sums in one register. Rows beyond `n`
/// (the last group's padding) are zero. Pure byte moves: the values and scales are unchanged.
pub fn pack8(w: &[u8], n: usize, k: usize) -> Vec<u8> {
    let kb = k / QK;
    assert_eq!(w.len(), n * kb * BLOCK_BYTES, "Q8_0 data is not {n} rows of {kb} blocks");
    let groups = n.div_ceil(GROUP);
    let mut out = vec![0u8; groups * kb * GROUP_BLOCK_BYTES];
    for j in 0..n {
        let (g, r) = (j / GROUP, j % GROUP);
        for b in 0..kb {
            let src = &w[(j * kb + b) * BLOCK_BYTES..][..BLOCK_BYTES];
            let dst = &mut out[(g * kb + b) * GROUP_BLOCK_BYTES..][..GROUP_BLOCK_BYTES];
            dst[2 * r..2 * r + 2].copy_from_slice(&src[..2]);
            for c in 0..QK / 4 {
                dst[GROUP * 2 + c * 32 + 4 * r..][..4].copy_from_slice(&src[2 + 4 * c..][..4]);
            }
        }
    }
    out
}

/// The inverse of [`pack8`]: the ggml Q8_0 bytes of the `n` rows.
pub fn unpack8(p: &[u8], n: usize, k: usize) -> Vec<u8> {
    let kb = k / QK;
    assert_eq!(p.len(), n.div_ceil(GROUP) * kb * GROUP_BLOCK_BYTES, "packed data is not {n} rows of {kb} blocks");
    let mut out = vec![0u8; n * kb * BLOCK_BYTES];
    for j in 0..n {
        let (g, r) = (j / GROUP, j % GROUP);
        for b in 0..kb {
            let src = &p[(g * kb + b) * GROUP_BLOCK_BYTES..][..GROUP_BLOCK_BYTES];
            let dst = &mut out[(j * kb + b) * BLOCK_BYTES..][..BLOCK_BYTES];
            dst[..2].copy_from_slice(&src[2 * r..2 * r + 2]);
            for c in 0..QK / 4 {
                dst[2 + 4 * c..][..4].copy_from_slice(&src[GROUP * 2 + c * 32 + 4 * r..][..4]);
            }
        }
    }
    out
}

/// The tile walk the 4 x 4-tiled kernels (VNNI, NEON) share, expanded inside each one's `rows`: weight rows
/// `j0..j1` four at a time (then one at a time at the end), activation rows up to four at a time, each pair
/// of groups one `$tile::<MR, NR>` call. One activation row (decode) goes one weight row at a time, which
/// streams the weights best (the 262,144-row LM head: 7.3 ms against 13.4 ms with 4-row tiles and candle's
/// 9.8 ms, examples/bench_q8_0). A macro rather than a function so that every `tile` call stays inside the
/// caller's `#[target_feature]` function and is inlined there.
#[allow(unused_macros)]
macro_rules! tiled_rows {
    ($tile:ident, $w:expr, $ws:expr, $k:expr, $a:expr, $j0:expr, $j1:expr, $out:expr, $n:expr) => {{
        let (w, ws, k, a, j0, j1, out, n) = ($w, $ws, $k, $a, $j0, $j1, $out, $n);
        if a.m == 1 {
            for j in j0..j1 {
                $tile::<1, 1>(w, ws, k, a, 0, j, out, n);
            }
        } else {
            let mut j = j0;
            while j < j1 {
                let nr = (j1 - j).min(4);
                let mut r = 0;
                while r < a.m {
                    let mr = (a.m - r).min(4);
                    match (mr, nr) {
                        (4, 4) => $tile::<4, 4>(w, ws, k, a, r, j, out, n),
                        (3, 4) => $tile::<3, 4>(w, ws, k, a, r, j, out, n),
                        (2, 4) => $tile::<2, 4>(w, ws, k, a, r, j, out, n),
                        (1, 4) => $tile::<1, 4>(w, ws, k, a, r, j, out, n),
                        (4, _) => $tile::<4, 1>(w, ws, k, a, r, j, out, n),
                        (3, _) => $tile::<3, 1>(w, ws, k, a, r, j, out, n),
                        (2, _) => $tile::<2, 1>(w, ws, k, a, r, j, out, n),
                        _ => $tile::<1, 1>(w, ws, k, a, r, j, out, n),
                    }
                    r += mr;
                }
                j += if nr == 4 { 4 } else { 1 };
            }
        }
    }};
}

/// The AVX-512 VNNI kernel: 4 x 4 tiles, `vpdpbusd` on 256-bit vectors.
#[cfg(target_arch = "x86_64")]
pub mod vnni {
    use super::{Acts, BLOCK_BYTES, QK};
    use std::arch::x86_64::*;

    /// candle's `hsum_float_8`, so the horizontal sum rounds the same way.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn hsum(x: __m256) -> f32 {
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
    pub unsafe fn rows(w: &[u8], ws: &[f32], k: usize, a: &Acts, j0: usize, j1: usize, out: *mut f32, n: usize) {
        tiled_rows!(tile, w, ws, k, a, j0, j1, out, n);
    }

    /// Activation rows `r0..r0+MR` times weight rows `j0..j0+NR`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
    unsafe fn tile<const MR: usize, const NR: usize>(
        w: &[u8],
        ws: &[f32],
        k: usize,
        a: &Acts,
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

/// The AVX2 + FMA + F16C kernel on the interleaved layout of [`pack8`]: eight weight rows per register.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::{Acts, QK};
    use std::arch::x86_64::*;

    /// Row groups `g0..g1` of a [`super::pack8`] matrix against every activation row, into `out[r * n + j]`:
    /// per block, eight 4-value column groups are multiplied and summed in i32 (`maddubs(|w|, sign(x, w))`,
    /// `madd` by ones, add), then converted once and accumulated with `fma(sum, d_w * d_x, acc)` for eight
    /// rows at a time. The block sum is exact, so each output is `sum_b d_w d_x isum_b` with one rounding per
    /// block (candle rounds eight partial sums per block and adds them at the end: not bit-identical, within
    /// the bound that `q8_0`'s tests check).
    ///
    /// # Safety
    /// AVX2, FMA and F16C available; `p` holds `n.div_ceil(8)` groups of `k / 32` blocks; `out` points to
    /// `a.m * n` floats, of which only the columns of groups `g0..g1` are written.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn rows_packed(p: &[u8], k: usize, a: &Acts, g0: usize, g1: usize, out: *mut f32, n: usize) {
        for g in g0..g1 {
            let mut r = 0;
            while r < a.m {
                let mr = (a.m - r).min(PMR);
                match mr {
                    4 => group::<4>(p, k, a, r, g, out, n),
                    3 => group::<3>(p, k, a, r, g, out, n),
                    2 => group::<2>(p, k, a, r, g, out, n),
                    _ => group::<1>(p, k, a, r, g, out, n),
                }
                r += mr;
            }
        }
    }

    /// Activation rows per step of [`rows_packed`].
    const PMR: usize = 4;

    /// Activation rows `r0..r0+MR` times the eight rows of group `g`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn group<const MR: usize>(p: &[u8], k: usize, a: &Acts, r0: usize, g: usize, out: *mut f32, n: usize) {
        let kb = k / QK;
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); MR];
        let base = p.as_ptr().add(g * kb * super::GROUP_BLOCK_BYTES);
        let abase = a.qs.as_ptr().add(r0 * k);
        for b in 0..kb {
            let blk = base.add(b * super::GROUP_BLOCK_BYTES);
            let mut isum = [_mm256_setzero_si256(); MR];
            for c in 0..QK / 4 {
                let w = _mm256_loadu_si256(blk.add(super::GROUP * 2 + c * 32) as *const __m256i);
                let wabs = _mm256_sign_epi8(w, w);
                for rr in 0..MR {
                    let x = _mm256_set1_epi32(std::ptr::read_unaligned(abase.add(rr * k + b * QK + 4 * c) as *const i32));
                    let s = _mm256_madd_epi16(ones, _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(x, w)));
                    isum[rr] = _mm256_add_epi32(isum[rr], s);
                }
            }
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(blk as *const __m128i));
            for rr in 0..MR {
                let dx = _mm256_broadcast_ss(a.scales.get_unchecked((r0 + rr) * kb + b));
                acc[rr] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[rr]), _mm256_mul_ps(dw, dx), acc[rr]);
            }
        }
        let j0 = g * super::GROUP;
        let live = (n - j0).min(super::GROUP);
        for rr in 0..MR {
            let o = out.add((r0 + rr) * n + j0);
            if live == super::GROUP {
                _mm256_storeu_ps(o, acc[rr]);
            } else {
                let mut t = [0f32; super::GROUP];
                _mm256_storeu_ps(t.as_mut_ptr(), acc[rr]);
                std::ptr::copy_nonoverlapping(t.as_ptr(), o, live);
            }
        }
    }
}

/// The aarch64 kernel: `sdot` (dot-product extension) in 4 x 4 tiles, accumulated like candle's NEON
/// `vec_dot_q8_0_q8_0` (4 f32 lanes, `vmlaq_n_f32`, then `vaddvq_f32`).
#[cfg(target_arch = "aarch64")]
pub mod neon {
    use super::{Acts, BLOCK_BYTES, QK};
    use std::arch::aarch64::*;

    /// `acc + sdot(a, b)`: lane `l` adds the products of bytes `4l..4l+3` (as candle's `vdotq_s32`; the
    /// intrinsic is not stable in Rust).
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        core::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
        acc
    }

    /// Weight rows `j0..j1` against every activation row, into `out[r * n + j]`.
    ///
    /// # Safety
    /// NEON with the dot-product extension; `out` points to `a.m * n` floats, of which only the columns
    /// `j0..j1` are written.
    #[target_feature(enable = "neon,dotprod")]
    pub unsafe fn rows(w: &[u8], ws: &[f32], k: usize, a: &Acts, j0: usize, j1: usize, out: *mut f32, n: usize) {
        tiled_rows!(tile, w, ws, k, a, j0, j1, out, n);
    }

    /// Activation rows `r0..r0+MR` times weight rows `j0..j0+NR`.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn tile<const MR: usize, const NR: usize>(
        w: &[u8],
        ws: &[f32],
        k: usize,
        a: &Acts,
        r0: usize,
        j0: usize,
        out: *mut f32,
        n: usize,
    ) {
        let kb = k / QK;
        let mut acc = [[vdupq_n_f32(0.0); NR]; MR];
        let wbase = w.as_ptr().add(j0 * kb * BLOCK_BYTES + 2) as *const i8;
        let abase = a.qs.as_ptr().add(r0 * k);
        for b in 0..kb {
            let mut w0 = [vdupq_n_s8(0); NR];
            let mut w1 = [vdupq_n_s8(0); NR];
            let mut wd = [0f32; NR];
            for jj in 0..NR {
                let p = wbase.add((jj * kb + b) * BLOCK_BYTES);
                w0[jj] = vld1q_s8(p);
                w1[jj] = vld1q_s8(p.add(16));
                wd[jj] = *ws.get_unchecked((j0 + jj) * kb + b);
            }
            for rr in 0..MR {
                let p = abase.add(rr * k + b * QK);
                let (a0, a1) = (vld1q_s8(p), vld1q_s8(p.add(16)));
                let ad = *a.scales.get_unchecked((r0 + rr) * kb + b);
                for jj in 0..NR {
                    let s = sdot(sdot(vdupq_n_s32(0), w0[jj], a0), w1[jj], a1);
                    acc[rr][jj] = vmlaq_n_f32(acc[rr][jj], vcvtq_f32_s32(s), wd[jj] * ad);
                }
            }
        }
        for rr in 0..MR {
            for jj in 0..NR {
                *out.add((r0 + rr) * n + j0 + jj) = vaddvq_f32(acc[rr][jj]);
            }
        }
    }
}
