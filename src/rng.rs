//! The crate's one seeded random number generator: SplitMix64.
//!
//! Why our own: every seeded step (the sample-data generator, the dual solver's visiting order, test inputs)
//! must give the same stream on every platform and with every dependency version, so the generator is a few
//! lines we own rather than a crate whose output may change. SplitMix64 (Steele, Lea & Flood 2014) is tiny,
//! fast and passes BigCrush; its output for a seed is fixed by the four constants below.

/// SplitMix64: `next_u64` returns the next number of the sequence that starts after `seed`.
///
/// The state is public so that callers (and tests) can write `SplitMix64(seed)` and store it plainly.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// A generator whose first number is the one after `seed` in the SplitMix64 sequence.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1) (the top 53 bits of the next number).
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n` as `next_u64() % n` (slightly biased for huge `n`; kept because the solver's
    /// visiting order and saved test streams depend on it). `n` must be positive.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Shuffles the first `n` places of `xs` (partial Fisher-Yates with [`SplitMix64::below`]): afterwards
    /// `xs[..n]` is a uniform sample, in random order, of the whole slice. `n` is clamped to `xs.len()`.
    pub fn shuffle_prefix<T>(&mut self, xs: &mut [T], n: usize) {
        let len = xs.len();
        for i in 0..n.min(len) {
            let j = i + self.below(len - i);
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_numbers_are_the_reference_splitmix64_stream() {
        // Reference values of SplitMix64 from seed 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn shuffle_prefix_is_a_permutation_and_repeats_per_seed() {
        let mut a: Vec<usize> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64::new(7).shuffle_prefix(&mut a, 100);
        SplitMix64::new(7).shuffle_prefix(&mut b, 100);
        assert_eq!(a, b);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(a, (0..100).collect::<Vec<_>>());
    }
}
