//! A toy step model for the constrained-decoding tests (tests/label_constrained.rs, tests/label_batch.rs):
//! seeded pseudo-random logits that depend on the whole context, plus a per-token bias, so a test can make the
//! model want tokens that break the answer format. Included by `#[path]` (one definition for both tests).
#![allow(dead_code)] // each test uses part of it

use revmod::label::constrained::StepModel;

/// Seeded random logits over `bias.len()` tokens, a function of the seed and every token fed so far.
#[derive(Clone)]
pub struct Toy {
    /// The tokens fed so far.
    pub ctx: Vec<u32>,
    /// Added to each token's logit (zeros: the plain random model).
    pub bias: Vec<f32>,
    /// Seed of the logits.
    pub seed: u64,
    /// How many times the decoder truncated the context (its look-aheads).
    pub truncates: usize,
}

impl Toy {
    /// A toy whose context starts as `[1, 2, 3]`, with `bias` added to the logits of each token.
    pub fn new(bias: Vec<f32>, seed: u64) -> Self {
        Toy { ctx: vec![1, 2, 3], bias, seed, truncates: 0 }
    }

    /// [`Toy::new`] without a bias, over `vocab` tokens.
    pub fn plain(vocab: usize, seed: u64) -> Self {
        Toy::new(vec![0.0; vocab], seed)
    }
}

impl StepModel for Toy {
    fn feed(&mut self, t: &[u32]) -> anyhow::Result<Vec<f32>> {
        self.ctx.extend_from_slice(t);
        let mut h = self.seed;
        for &x in &self.ctx {
            h = (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
        }
        Ok((0..self.bias.len())
            .map(|i| {
                let mut z = h.wrapping_add(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                z ^= z >> 29;
                (z % 1000) as f32 / 100.0 + self.bias[i]
            })
            .collect())
    }
    fn context_len(&self) -> usize {
        self.ctx.len()
    }
    fn truncate(&mut self, len: usize) -> anyhow::Result<()> {
        self.truncates += 1;
        self.ctx.truncate(len);
        Ok(())
    }
}
