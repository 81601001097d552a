//! src/llm/q8_0/kernels.rs compiled alone, with scalar references of each kernel's exact arithmetic.
//!
//! The references compute, in plain Rust, the same operations in the same order as the SIMD code (and as
//! candle's per-row kernels of the same instruction set): integer four-value sums, then per block
//! `acc_lane = fma(d_w * d_x, sum_lane, acc_lane)` for AVX-512 VNNI (8 lanes, candle's `hsum_float_8` at the
//! end), `acc = fma(block_sum, d_w * d_x, acc)` for AVX2's interleaved layout (exact block sums), and
//! `acc_lane = acc_lane + sum_lane * (d_w * d_x)` unfused on NEON (4 lanes, pairwise `vaddvq_f32`). The kernels
//! must match them bit for bit on every tile shape and tail.

#[path = "../../../src/llm/q8_0/kernels.rs"]
pub mod kernels;

#[cfg(test)]
mod tests {
    use super::kernels::{Acts, BLOCK_BYTES, QK};

    /// A small deterministic generator (no dependencies).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) as u32
        }
        fn i8(&mut self, lim: i32) -> i8 {
            ((self.next() % (2 * lim as u32 + 1)) as i32 - lim) as i8
        }
        fn scale(&mut self) -> f32 {
            // f16-representable positive scales, as the blocks hold
            let v = 1e-3 + (self.next() % 10_000) as f32 * 1e-5;
            f16_round(v)
        }
    }

    /// Rounds to the nearest f16 (normal range) and back: enough for test scales.
    fn f16_round(v: f32) -> f32 {
        let b = v.to_bits();
        let keep = b & !0x1FFF;
        let rem = b & 0x1FFF;
        let r = if rem > 0x1000 || (rem == 0x1000 && keep & 0x2000 != 0) { keep + 0x2000 } else { keep };
        f32::from_bits(r)
    }

    fn f16_bits(v: f32) -> u16 {
        let b = v.to_bits();
        let exp = ((b >> 23) & 0xFF) as i32 - 127 + 15;
        assert!((1..31).contains(&exp), "test scale out of f16 normal range");
        (((b >> 16) & 0x8000) | ((exp as u32) << 10) | ((b >> 13) & 0x3FF)) as u16
    }

    struct Case {
        n: usize,
        k: usize,
        m: usize,
        w: Vec<u8>,
        ws: Vec<f32>,
        qs: Vec<i8>,
        xs: Vec<f32>,
    }

    fn case(n: usize, k: usize, m: usize, seed: u64) -> Case {
        let mut g = Lcg(seed);
        let kb = k / QK;
        let (mut w, mut ws) = (Vec::new(), Vec::new());
        for _ in 0..n * kb {
            let d = g.scale();
            ws.push(d);
            w.extend_from_slice(&f16_bits(d).to_le_bytes());
            // Q8_0 weights are in -127..=127 (and -16..=15 when re-encoded from Q5_0)
            w.extend((0..QK).map(|_| g.i8(127) as u8));
        }
        let qs = (0..m * k).map(|_| g.i8(127)).collect();
        let xs = (0..m * kb).map(|_| g.scale()).collect();
        Case { n, k, m, w, ws, qs, xs }
    }

    /// Four-value integer sums of one block pair: `sums[i]` = values `4i..4i+3`.
    fn sums4(c: &Case, j: usize, r: usize, b: usize) -> [i32; 8] {
        let kb = c.k / QK;
        let wb = &c.w[(j * kb + b) * BLOCK_BYTES + 2..][..QK];
        let xb = &c.qs[r * c.k + b * QK..][..QK];
        let mut s = [0i32; 8];
        for i in 0..QK {
            s[i / 4] += wb[i] as i8 as i32 * xb[i] as i32;
        }
        s
    }

    #[allow(dead_code)]
    fn reference_x86(c: &Case, r: usize, j: usize) -> f32 {
        let kb = c.k / QK;
        let mut acc = [0f32; 8];
        for b in 0..kb {
            let d = c.ws[j * kb + b] * c.xs[r * kb + b];
            let s = sums4(c, j, r, b);
            for l in 0..8 {
                acc[l] = d.mul_add(s[l] as f32, acc[l]);
            }
        }
        let x = acc;
        ((x[4] + x[0]) + (x[6] + x[2])) + ((x[5] + x[1]) + (x[7] + x[3]))
    }

    #[allow(dead_code)]
    fn reference_neon(c: &Case, r: usize, j: usize) -> f32 {
        let kb = c.k / QK;
        let mut acc = [0f32; 4];
        for b in 0..kb {
            let d = c.ws[j * kb + b] * c.xs[r * kb + b];
            let s = sums4(c, j, r, b);
            for l in 0..4 {
                acc[l] += (s[l] + s[l + 4]) as f32 * d;
            }
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }

    /// Runs `rows` over all weight rows in two ranges (as two pool tasks would) and compares every output.
    fn check(name: &str, rows: unsafe fn(&[u8], &[f32], usize, &Acts, usize, usize, *mut f32, usize), reference: fn(&Case, usize, usize) -> f32) {
        let shapes = [(37usize, 640usize, 1usize), (37, 640, 9), (64, 96, 4), (5, 32, 3), (2, 64, 2), (1, 32, 1), (11, 160, 6)];
        for (i, &(n, k, m)) in shapes.iter().enumerate() {
            let c = case(n, k, m, 7 + i as u64);
            let acts = Acts { m, qs: &c.qs, scales: &c.xs };
            let mut out = vec![f32::NAN; m * n];
            let split = n / 3;
            // SAFETY: the caller checked the CPU features; both calls write disjoint columns of `out`.
            unsafe {
                rows(&c.w, &c.ws, k, &acts, 0, split, out.as_mut_ptr(), n);
                rows(&c.w, &c.ws, k, &acts, split, n, out.as_mut_ptr(), n);
            }
            for r in 0..m {
                for j in 0..n {
                    let (got, want) = (out[r * n + j], reference(&c, r, j));
                    assert_eq!(got.to_bits(), want.to_bits(), "{name} ({n}, {k}, m {m}) [{r}, {j}]: {got} reference {want}");
                }
            }
            let _ = (c.n, c.m);
        }
    }

    /// The interleaved layout's arithmetic: exact block sums, one `fma` per block in block order.
    #[allow(dead_code)]
    fn reference_packed(c: &Case, r: usize, j: usize) -> f32 {
        let kb = c.k / QK;
        let mut acc = 0f32;
        for b in 0..kb {
            let s: i32 = sums4(c, j, r, b).iter().sum();
            acc = (s as f32).mul_add(c.ws[j * kb + b] * c.xs[r * kb + b], acc);
        }
        acc
    }

    #[test]
    fn pack8_moves_every_value_and_scale() {
        let c = case(11, 96, 1, 3);
        let p = super::kernels::pack8(&c.w, 11, 96);
        let kb = 3;
        assert_eq!(p.len(), 2 * kb * super::kernels::GROUP_BLOCK_BYTES);
        for j in 0..11 {
            for b in 0..kb {
                let src = &c.w[(j * kb + b) * BLOCK_BYTES..][..BLOCK_BYTES];
                let blk = &p[((j / 8) * kb + b) * super::kernels::GROUP_BLOCK_BYTES..];
                assert_eq!(&blk[2 * (j % 8)..2 * (j % 8) + 2], &src[..2]);
                for i in 0..QK {
                    assert_eq!(blk[16 + (i / 4) * 32 + 4 * (j % 8) + i % 4], src[2 + i], "row {j} block {b} value {i}");
                }
            }
        }
        // padding rows 11..16 (rows 3..8 of the second group) are zero
        for b in 0..kb {
            let blk = &p[(kb + b) * super::kernels::GROUP_BLOCK_BYTES..][..super::kernels::GROUP_BLOCK_BYTES];
            assert!(blk[6..16].iter().all(|&v| v == 0));
            assert!((0..8).all(|c| blk[16 + c * 32 + 12..16 + c * 32 + 32].iter().all(|&v| v == 0)));
        }
        assert_eq!(super::kernels::unpack8(&p, 11, 96), c.w, "unpack8 inverts pack8");
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_packed_kernel_matches_its_reference() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")) {
            eprintln!("skipped: no AVX2");
            return;
        }
        fn run(w: &[u8], _ws: &[f32], k: usize, a: &Acts, j0: usize, j1: usize, out: *mut f32, n: usize) {
            // whole groups only: round the split down to a group boundary
            let g0 = j0 / 8;
            let g1 = if j1 == n { n.div_ceil(8) } else { j1 / 8 };
            let p = super::kernels::pack8(w, n, k);
            unsafe { super::kernels::avx2::rows_packed(&p, k, a, g0, g1, out, n) }
        }
        check("avx2 packed", |w, ws, k, a, j0, j1, out, n| run(w, ws, k, a, (j0 / 8) * 8, if j1 == n { n } else { (j1 / 8) * 8 }, out, n), reference_packed);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vnni_kernel_matches_its_reference() {
        if !(is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")) {
            eprintln!("skipped: no AVX-512 VNNI");
            return;
        }
        check("vnni", super::kernels::vnni::rows, reference_x86);
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_kernel_matches_its_reference() {
        assert!(std::arch::is_aarch64_feature_detected!("dotprod"), "no dot-product extension (QEMU: -cpu max)");
        check("neon", super::kernels::neon::rows, reference_neon);
    }
}
