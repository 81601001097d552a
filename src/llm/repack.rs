//! Lossless re-encoding of llama.cpp's Q5_0 blocks as Q8_0 blocks (pure byte math, no I/O).
//!
//! Why: llama.cpp's Q4_K_M files keep several projections in Q5_0 (Gemma-3 270M: q, k, gate and up), and
//! candle-core 0.11's CPU backend has only a scalar dot product for Q5_0 (and Q4_1, Q5_1), about 10x slower
//! than its AVX2 Q8_0 kernel. Re-quantizing the dequantized weights to Q8_0 would be fast but changes the
//! weights (and the logits, by up to 0.16 in log-probability against llama.cpp on the 270M). It is not needed:
//! a Q5_0 value is `d * (q - 16)` with `q` in 0..32, which fits a signed byte. So a Q8_0 block with the same
//! f16 scale `d` and the bytes `q - 16` holds exactly the same 32 numbers, and its dot product with a Q8_0 activation block is exactly
//! llama.cpp's `Q5_0 x Q8_0` integer sum times `d_x * d_y`.
//!
//! Q4_0 needs no re-encoding (candle has a SIMD kernel for it). Q4_1 and Q5_1 (`d * q + m`) carry an offset
//! that a Q8_0 block cannot hold; they are not handled here.
//!
//! Block layouts (ggml's `block_q5_0` and friends, little-endian):
//! - Q5_0, 22 bytes: f16 `d`, a u32 `qh` of fifth bits (bit `j` for value `j`), then 16 bytes of nibbles:
//!   value `j` is the low nibble of byte `j`, value `j + 16` the high nibble.
//! - Q8_0, 34 bytes: f16 `d`, 32 signed bytes.

use anyhow::{bail, Result};

/// Values per block in Q5_0 and Q8_0.
pub const BLOCK: usize = 32;
/// Bytes of one Q5_0 block.
pub const Q5_0_BYTES: usize = 2 + 4 + BLOCK / 2;
/// Bytes of one Q8_0 block.
pub const Q8_0_BYTES: usize = 2 + BLOCK;

/// The 32 signed values (before the scale) of one Q5_0 block.
fn q5_0_values(b: &[u8]) -> [i8; BLOCK] {
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..6 + BLOCK / 2];
    let mut v = [0i8; BLOCK];
    for j in 0..BLOCK / 2 {
        let lo = (qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        let hi = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        v[j] = lo as i8 - 16;
        v[j + BLOCK / 2] = hi as i8 - 16;
    }
    v
}

/// Re-encodes Q5_0 blocks as Q8_0 blocks holding exactly the same values.
pub fn q5_0_to_q8_0(src: &[u8]) -> Result<Vec<u8>> {
    if src.len() % Q5_0_BYTES != 0 {
        bail!("Q5_0 data of {} bytes is not a whole number of {Q5_0_BYTES}-byte blocks", src.len());
    }
    let mut out = Vec::with_capacity(src.len() / Q5_0_BYTES * Q8_0_BYTES);
    for b in src.chunks_exact(Q5_0_BYTES) {
        out.extend_from_slice(&b[..2]); // the same f16 scale
        out.extend(q5_0_values(b).iter().map(|&q| q as u8));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QStorage, QTensor};
    use candle_core::{Device, Tensor};
    use std::borrow::Cow;

    /// Quantizes random weights with candle (ggml's reference quantizer), re-encodes the blocks and checks
    /// that both dequantize to bit-identical f32 values.
    #[test]
    fn q5_0_as_q8_0_is_exact() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (8, 256), &dev).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let bytes = q5_0_to_q8_0(&q.data().unwrap()).unwrap();
        let q8 = QTensor::new(QStorage::from_data(Cow::Owned(bytes), &dev, GgmlDType::Q8_0).unwrap(), (8, 256)).unwrap();
        let a: Vec<f32> = q.dequantize(&dev).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = q8.dequantize(&dev).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        // and (nearly) every one of the 32 levels occurs, so the bit fiddling is exercised
        let levels: std::collections::BTreeSet<i8> = q8.data().unwrap().chunks(Q8_0_BYTES).flat_map(|c| c[2..].iter().map(|&x| x as i8).collect::<Vec<_>>()).collect();
        assert!(levels.len() >= 31, "{levels:?}");
    }

    #[test]
    fn partial_blocks_are_an_error() {
        assert!(q5_0_to_q8_0(&[0u8; 23]).is_err());
    }
}
