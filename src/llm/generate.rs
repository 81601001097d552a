//! Generation parameters, token choice (greedy or seeded sampling) and the result of a generation.
//!
//! Pure functions on logits, apart from the model: `choose` picks the next token from a logits vector;
//! `softmax` turns logits into probabilities (what the labeling step reads for true/false and each violation).

use anyhow::{bail, Result};
use crate::rng::SplitMix64;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// Highest logit (the seed's `do_sample=False`); ties go to the lowest id.
    Greedy,
    /// Seeded sampling from `softmax(logits / temperature)`, optionally cut to the `top_k` best tokens and to
    /// the smallest set with probability mass `top_p`.
    Sample {
        /// Softmax temperature (> 0; 0 means greedy).
        temperature: f32,
        /// Keep only the k most likely tokens (None: all).
        top_k: Option<usize>,
        /// Keep the most likely tokens up to this cumulative probability (None: all).
        top_p: Option<f32>,
        /// RNG seed: the same seed, model and prompt give the same tokens.
        seed: u64,
    },
}

/// Parameters of `Gemma::generate`, with the seed notebook's defaults (greedy, 96 new tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to generate (the stop token is not counted).
    pub max_new_tokens: usize,
    /// Greedy or seeded sampling.
    pub sampling: Sampling,
    /// Stop at an end-of-generation token (`<end_of_turn>`, `<eos>`).
    pub stop_at_eog: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self { max_new_tokens: 96, sampling: Sampling::Greedy, stop_at_eog: true }
    }
}

impl GenerateParams {
    /// Seeded sampling at `temperature` (no top-k/top-p cut).
    pub fn sampled(temperature: f32, seed: u64) -> Self {
        Self { sampling: Sampling::Sample { temperature, top_k: None, top_p: None, seed }, ..Self::default() }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// An end-of-generation token was chosen (it is not part of `tokens`).
    Eog(u32),
    /// `max_new_tokens` were generated.
    MaxTokens,
}

/// The result of a generation: tokens, text and timings.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated token ids (without the stop token).
    pub tokens: Vec<u32>,
    /// Their decoded text (control tokens left out).
    pub text: String,
    /// Why it stopped.
    pub stop: StopReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV cache was reused instead of recomputed.
    pub reused_tokens: usize,
    /// Seconds spent on the prompt (prefill of the non-reused tokens).
    pub prefill_secs: f64,
    /// Seconds spent generating after the prompt.
    pub decode_secs: f64,
    /// Forward passes of one token during decoding.
    pub decode_steps: usize,
}

impl Generation {
    /// Prompt tokens computed per second (reused ones excluded).
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        let n = (self.prompt_tokens - self.reused_tokens) as f64;
        if self.prefill_secs > 0.0 { n / self.prefill_secs } else { 0.0 }
    }

    /// Generated tokens per second (one forward pass each).
    pub fn decode_tokens_per_sec(&self) -> f64 {
        if self.decode_secs > 0.0 { self.decode_steps as f64 / self.decode_secs } else { 0.0 }
    }
}

/// Index of the highest logit (lowest id on ties); None if every logit is -inf or NaN.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() || l == f32::NEG_INFINITY {
            continue;
        }
        if best.map_or(true, |(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

/// Softmax of logits (f64 accumulation); masked (-inf) entries get probability 0.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().filter(|x| !x.is_nan()).fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let e: Vec<f64> = logits.iter().map(|&l| if l.is_nan() { 0.0 } else { ((l - m) as f64).exp() }).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| (x / s) as f32).collect()
}

/// Chooses the next token from logits. Errors if every token is masked.
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut SplitMix64) -> Result<u32> {
    match sampling {
        Sampling::Greedy => argmax(logits).ok_or_else(|| anyhow::anyhow!("every token is masked: nothing to choose")),
        Sampling::Sample { temperature, top_k, top_p, .. } => {
            if *temperature <= 0.0 {
                return choose(logits, &Sampling::Greedy, rng);
            }
            let mut cand: Vec<(u32, f32)> = logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan() && **l != f32::NEG_INFINITY)
                .map(|(i, &l)| (i as u32, l / temperature))
                .collect();
            if cand.is_empty() {
                bail!("every token is masked: nothing to choose");
            }
            cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if let Some(k) = top_k {
                cand.truncate((*k).max(1));
            }
            let m = cand[0].1;
            let mut p: Vec<f64> = cand.iter().map(|(_, l)| ((l - m) as f64).exp()).collect();
            let s: f64 = p.iter().sum();
            p.iter_mut().for_each(|x| *x /= s);
            if let Some(tp) = top_p {
                let mut acc = 0.0;
                let mut keep = p.len();
                for (i, x) in p.iter().enumerate() {
                    acc += x;
                    if acc >= *tp as f64 {
                        keep = i + 1;
                        break;
                    }
                }
                p.truncate(keep);
                cand.truncate(keep);
                let s: f64 = p.iter().sum();
                p.iter_mut().for_each(|x| *x /= s);
            }
            let u = rng.next_f64();
            let mut acc = 0.0;
            for (i, x) in p.iter().enumerate() {
                acc += x;
                if u < acc {
                    return Ok(cand[i].0);
                }
            }
            Ok(cand[cand.len() - 1].0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_max_and_respects_masks() {
        let mut rng = SplitMix64::new(1);
        assert_eq!(choose(&[0.1, 3.0, 3.0, -1.0], &Sampling::Greedy, &mut rng).unwrap(), 1);
        assert_eq!(choose(&[0.1, f32::NEG_INFINITY, 0.5], &Sampling::Greedy, &mut rng).unwrap(), 2);
        assert!(choose(&[f32::NEG_INFINITY; 3], &Sampling::Greedy, &mut rng).is_err());
    }

    #[test]
    fn sampling_is_seeded_and_follows_probabilities() {
        let logits = [0.0f32, (3f32).ln(), f32::NEG_INFINITY];
        let s = Sampling::Sample { temperature: 1.0, top_k: None, top_p: None, seed: 7 };
        let draw = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..4000).map(|_| choose(&logits, &s, &mut rng).unwrap()).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let ones = a.iter().filter(|&&x| x == 1).count() as f64 / a.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        assert!(!a.contains(&2));
        // top_k 1 is greedy
        let g = Sampling::Sample { temperature: 1.0, top_k: Some(1), top_p: None, seed: 1 };
        let mut rng = SplitMix64::new(3);
        assert!((0..50).all(|_| choose(&logits, &g, &mut rng).unwrap() == 1));
    }

    #[test]
    fn softmax_sums_to_one() {
        let p = softmax(&[1.0, 2.0, f32::NEG_INFINITY]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(p[2], 0.0);
    }
}
