//! numpy's legacy `RandomState` (MT19937), just the calls iterstrat makes.
//!
//! iterstrat's `MultilabelStratifiedShuffleSplit` draws from `sklearn.utils.check_random_state(seed)`,
//! i.e. `numpy.random.RandomState(seed)`: one `shuffle` of the row indices, then `choice(k)` calls to break
//! ties. Reproducing those draws bit for bit makes our split identical to iterstrat's, not merely similar.
//! Written from the MT19937 reference algorithm (Matsumoto & Nishimura 1998) and numpy's documented
//! legacy semantics: integer seeding with `init_genrand`, Fisher-Yates `shuffle` from the last index down
//! with masked rejection sampling, and `randint`/`choice` with the same masked rejection sampling.

const N: usize = 624;
const M: usize = 397;

/// numpy's `RandomState(seed)` for an integer seed: the Mersenne Twister MT19937.
#[derive(Clone, Debug)]
pub struct RandomState {
    key: [u32; N],
    pos: usize,
}

impl RandomState {
    /// Seeds like `numpy.random.RandomState(seed)` with an integer seed (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut key = [0u32; N];
        let mut s = seed;
        for (i, k) in key.iter_mut().enumerate() {
            *k = s;
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(i as u32 + 1);
        }
        RandomState { key, pos: N }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..N {
            let y = (self.key[i] & UPPER) | (self.key[(i + 1) % N] & LOWER);
            let mut v = self.key[(i + M) % N] ^ (y >> 1);
            if y & 1 == 1 {
                v ^= MATRIX_A;
            }
            self.key[i] = v;
        }
        self.pos = 0;
    }

    /// Next raw 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.generate();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Uniform integer in `0..=max` by masked rejection sampling (numpy's `random_interval` and the
    /// legacy masked bounded-integer path; `max` below 2^32 as all our uses are).
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.choice(n)` for an integer `n >= 1`: a uniform index in `0..n`.
    pub fn choice(&mut self, n: usize) -> usize {
        assert!(n >= 1, "choice of an empty range");
        self.interval((n - 1) as u32) as usize
    }

    /// `RandomState.shuffle(x)` for a 1-d array: Fisher-Yates from the last position down.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.interval(i as u32) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_reference_outputs() {
        // First outputs of MT19937 seeded with init_genrand(5489) (the reference implementation's
        // default seed), as published with mt19937ar.c.
        let mut r = RandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        assert_eq!(r.next_u32(), 581_869_302);
        assert_eq!(r.next_u32(), 3_890_346_734);
    }

    #[test]
    fn shuffle_and_choice_follow_numpy() {
        // numpy 2.4: r = RandomState(42); a = arange(10); r.shuffle(a); [r.choice(3) for _ in range(5)]
        let mut r = RandomState::new(42);
        let mut a: Vec<usize> = (0..10).collect();
        r.shuffle(&mut a);
        assert_eq!(a, vec![8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        let c: Vec<usize> = (0..5).map(|_| r.choice(3)).collect();
        assert_eq!(c, vec![2, 2, 2, 2, 0]);
    }
}
