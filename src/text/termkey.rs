//! Term lookup without string hashing: terms of up to 15 bytes are packed into one `u128` key.
//!
//! Transforming a review touches hundreds of char n-grams of 3-5 code points, nearly all of them a few
//! bytes long. Hashing each as a string and comparing it byte by byte against the table was two thirds of
//! scoring time. A short term's bytes, with its length in the top byte, are an exact key (no two terms
//! share one, NUL bytes included), so a lookup is one integer hash and one integer compare. Longer terms
//! (rare: 5 emoji, long word bigrams) go to an ordinary string map.
//!
//! The short keys live in [`ShortTable`], an open-addressing table whose slots are half a cache line:
//! with 300,000 char n-grams the table is larger than the caches, so a lookup is one memory access,
//! and [`ShortTable::prefetch`] lets a caller that knows its next keys (all n-grams of a text) start
//! those accesses early. The slots are a [`HugeVec`], so the lookups do not also miss the TLB.

use std::collections::HashMap;

use anyhow::{bail, Result};
use foldhash::fast::FixedState;

use crate::mem::HugeVec;

/// Longest term, in bytes, that gets a packed key.
pub const SHORT_MAX: usize = 15;

/// Zero bytes to append to a text before [`short_key_at`] reads from it.
pub const PADDING: usize = 16;

/// The packed key of a term of at most [`SHORT_MAX`] bytes: its bytes little-endian, its length in byte 15.
#[inline]
pub fn short_key(term: &[u8]) -> Option<u128> {
    if term.len() > SHORT_MAX {
        return None;
    }
    let mut b = [0u8; 16];
    b[..term.len()].copy_from_slice(term);
    b[15] = term.len() as u8;
    Some(u128::from_le_bytes(b))
}

/// The packed key of the word n-gram `gram` (tokens joined by single spaces), if it is at most
/// [`SHORT_MAX`] bytes long and not empty; equal to [`short_key`] of the joined string.
#[inline]
pub fn joined_key(gram: &[&str]) -> Option<u128> {
    let len = gram.iter().map(|t| t.len()).sum::<usize>() + gram.len().saturating_sub(1);
    if len > SHORT_MAX || len == 0 {
        return None;
    }
    let mut b = [0u8; 16];
    let mut at = 0;
    for (k, t) in gram.iter().enumerate() {
        if k > 0 {
            b[at] = b' ';
            at += 1;
        }
        b[at..at + t.len()].copy_from_slice(t.as_bytes());
        at += t.len();
    }
    b[15] = len as u8;
    Some(u128::from_le_bytes(b))
}

/// The packed key of `padded[start..start + len]` (`len <= SHORT_MAX`), read with one unaligned load;
/// `padded` must have [`PADDING`] readable bytes after the text. Equal to [`short_key`] of the same bytes.
#[inline]
pub fn short_key_at(padded: &[u8], start: usize, len: usize) -> u128 {
    debug_assert!(len <= SHORT_MAX);
    let raw = u128::from_le_bytes(padded[start..start + 16].try_into().expect("16 bytes"));
    let mask = (1u128 << (8 * len)) - 1;
    (raw & mask) | ((len as u128) << 120)
}

/// One slot of [`ShortTable`]: a packed key (0 = empty) and its column, 32-byte aligned so that a slot
/// never straddles two cache lines.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
struct Slot {
    key: u128,
    col: u32,
}

/// Open-addressing (linear probing) map from packed keys to columns, at most half full. The key 0 (the
/// empty term) marks an empty slot, so the empty term cannot be stored here.
#[derive(Clone, Debug)]
pub struct ShortTable {
    slots: HugeVec<Slot>,
    shift: u32,
    len: usize,
}

impl ShortTable {
    /// A table for up to `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        let bits = (2 * n.max(4)).next_power_of_two().trailing_zeros();
        ShortTable { slots: HugeVec::filled(Slot::default(), 1 << bits), shift: 64 - bits, len: 0 }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `extra` more keys without passing half full, rehashing into a larger table if
    /// needed (for callers that do not know their number of keys in advance: term counting).
    pub fn reserve(&mut self, extra: usize) {
        if 2 * (self.len + extra) <= self.slots.len() {
            return;
        }
        let mut bigger = ShortTable::with_capacity((self.len + extra).max(self.slots.len()));
        for s in self.slots.iter().filter(|s| s.key != 0) {
            bigger.insert(s.key, s.col);
        }
        *self = bigger;
    }

    /// The value of `key`, after storing `value` for it if it was absent (then the flag is true). The
    /// table must have room ([`ShortTable::reserve`]).
    #[inline]
    pub fn get_or_insert(&mut self, key: u128, value: u32) -> (u32, bool) {
        debug_assert!(key != 0 && 2 * self.len < self.slots.len());
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            if s.key == key {
                return (s.col, false);
            }
            if s.key == 0 {
                *s = Slot { key, col: value };
                self.len += 1;
                return (value, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// Home slot of `key`: a folded 64x64-bit multiply of its halves, then Fibonacci hashing.
    #[inline]
    fn home(&self, key: u128) -> usize {
        let (lo, hi) = (key as u64 ^ 0x243f_6a88_85a3_08d3, (key >> 64) as u64 ^ 0x1319_8a2e_0370_7344);
        let m = lo as u128 * hi as u128;
        let h = (m as u64) ^ ((m >> 64) as u64);
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Adds `key -> col`; false if `key` was already present (the table is unchanged then).
    pub fn insert(&mut self, key: u128, col: u32) -> bool {
        assert!(key != 0, "the empty key cannot be stored");
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &mut self.slots[i];
            if s.key == key {
                return false;
            }
            if s.key == 0 {
                *s = Slot { key, col };
                self.len += 1;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// Column of `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.key == key {
                return Some(s.col);
            }
            if s.key == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Starts loading `key`'s home slot into the cache (a hint; no effect on results).
    #[inline]
    pub fn prefetch(&self, key: u128) {
        crate::mem::prefetch(&self.slots[self.home(key)]);
    }
}

/// Column of each vocabulary term: packed keys for short terms, strings for the rest.
#[derive(Clone, Debug)]
pub struct TermIndex {
    short: ShortTable,
    long: HashMap<Box<str>, u32, FixedState>,
}

impl TermIndex {
    /// Index of `vocab` (term `i` -> column `i`); a term listed twice is an error.
    pub fn new(vocab: &[String]) -> Result<Self> {
        let mut idx = TermIndex { short: ShortTable::with_capacity(vocab.len()), long: HashMap::default() };
        for (i, t) in vocab.iter().enumerate() {
            let fresh = match short_key(t.as_bytes()) {
                Some(k) if k != 0 => idx.short.insert(k, i as u32),
                _ => idx.long.insert(t.as_str().into(), i as u32).is_none(),
            };
            if !fresh {
                bail!("term {t:?} appears twice in the vocabulary");
            }
        }
        Ok(idx)
    }

    /// The table of short terms, for callers that batch their lookups (see [`ShortTable::prefetch`]).
    pub fn short_table(&self) -> &ShortTable {
        &self.short
    }

    /// Column of `term`, if it is in the vocabulary.
    #[inline]
    pub fn get(&self, term: &str) -> Option<u32> {
        match short_key(term.as_bytes()) {
            Some(k) if k != 0 => self.short.get(k),
            _ => self.get_long(term),
        }
    }

    /// Column of a term that has no packed key (longer than [`SHORT_MAX`] bytes, or empty).
    #[inline]
    pub fn get_long(&self, term: &str) -> Option<u32> {
        self.long.get(term).copied()
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_are_exact() {
        // Same bytes with and without trailing NULs, and prefixes, get different keys.
        let terms = ["ab", "ab\0", "a", "", "abc", "ab\0\0", "é😀x", "fifteen_bytes__"];
        let keys: Vec<u128> = terms.iter().map(|t| short_key(t.as_bytes()).unwrap()).collect();
        for i in 0..keys.len() {
            for j in 0..i {
                assert_ne!(keys[i], keys[j], "{:?} vs {:?}", terms[i], terms[j]);
            }
        }
        assert_eq!(short_key(b"sixteen_bytes___"), None);
        assert_eq!(joined_key(&["ab", "cd"]), short_key(b"ab cd"));
        assert_eq!(joined_key(&["great"]), short_key(b"great"));
        assert_eq!(joined_key(&["fifteen", "bytes"]), short_key(b"fifteen bytes"));
        assert_eq!(joined_key(&["sixteen", "bytes___"]), None);
        assert_eq!(joined_key(&[]), None);
        // The unaligned read gives the same key as the copy, at every offset and length.
        let text = "a😀 bé\0cd efghijklmnopq";
        let mut padded = text.as_bytes().to_vec();
        padded.extend_from_slice(&[0; PADDING]);
        for s in 0..text.len() {
            for len in 0..=SHORT_MAX.min(text.len() - s) {
                assert_eq!(short_key_at(&padded, s, len), short_key(&text.as_bytes()[s..s + len]).unwrap());
            }
        }
    }

    #[test]
    fn index_finds_short_and_long_terms() {
        let vocab: Vec<String> =
            ["abc", "a long word bigram", "😀😀😀😀", "x"].iter().map(|s| s.to_string()).collect();
        let idx = TermIndex::new(&vocab).unwrap();
        for (i, t) in vocab.iter().enumerate() {
            assert_eq!(idx.get(t), Some(i as u32));
            if t.len() <= SHORT_MAX {
                let mut p = t.as_bytes().to_vec();
                p.extend_from_slice(&[0; PADDING]);
                assert_eq!(idx.short_table().get(short_key_at(&p, 0, t.len())), Some(i as u32));
            }
        }
        assert_eq!(idx.get("ab"), None);
        assert_eq!(idx.get(""), None);
        assert_eq!(idx.get("a long word bigra"), None);
        assert!(TermIndex::new(&["abc".into(), "abc".into()]).is_err());
        assert!(TermIndex::new(&["a long word bigram".into(), "a long word bigram".into()]).is_err());
        // The empty term (key 0, the empty-slot marker) is stored with the long terms.
        assert_eq!(TermIndex::new(&["".into(), "x".into()]).unwrap().get(""), Some(0));
    }

    #[test]
    fn short_table_holds_many_keys() {
        // 50,000 distinct 3-byte keys: all found with their columns, absent ones not found.
        let keys: Vec<u128> = (0..50_000u32).map(|i| short_key(&i.to_le_bytes()[..3]).unwrap()).collect();
        let mut t = ShortTable::with_capacity(keys.len());
        for (c, &k) in keys.iter().enumerate() {
            assert!(t.insert(k, c as u32));
        }
        assert!(!t.insert(keys[7], 0));
        for (c, &k) in keys.iter().enumerate() {
            t.prefetch(k);
            assert_eq!(t.get(k), Some(c as u32));
        }
        assert_eq!(t.get(short_key(b"\xff\xff\xff\xff").unwrap()), None);
    }

    #[test]
    fn short_table_grows_while_counting() {
        // Keys arrive in batches with repeats, as term counting sees them: the first value given to a
        // key stays its value through every rehash.
        let mut t = ShortTable::with_capacity(4);
        let mut next = 0u32;
        for batch in 0..200u32 {
            let keys: Vec<u128> = (0..500u32).map(|i| short_key(&((batch * 250 + i) % 60_000).to_le_bytes()[..3]).unwrap()).collect();
            t.reserve(keys.len());
            for &k in &keys {
                let (v, new) = t.get_or_insert(k, next);
                if new {
                    next += 1;
                }
                assert!(v < next);
            }
        }
        assert_eq!(t.len(), next as usize);
        assert_eq!(next, 50_250);
        // first-seen order: key n (n < 500) came first in batch 0
        for n in 0..500u32 {
            assert_eq!(t.get(short_key(&n.to_le_bytes()[..3]).unwrap()), Some(n));
        }
    }
}
