//! A string interner for n-gram counting: all terms in one byte arena, a hash table of ids.
//!
//! Counting char n-grams touches tens of millions of short strings; one allocation per distinct term
//! and one hash per occurrence (hashes are stored, so growing the table and merging interners never
//! rehash a string) keep the vectorizer fast.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// Hash of a term (FxHash of its bytes), shared by every interner so hashes can be reused on merge.
#[inline]
pub fn term_hash(s: &str) -> u64 {
    let mut h = FxBuildHasher.build_hasher();
    h.write(s.as_bytes());
    h.finish()
}

/// Distinct terms with dense ids `0..len()` in first-seen order.
#[derive(Default)]
pub struct Interner {
    arena: String,
    /// End offset of each term in `arena` (term `i` spans `ends[i-1]..ends[i]`).
    ends: Vec<usize>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
}

impl Interner {
    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no term was interned.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The term with id `i`.
    #[inline]
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let a = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.arena[a..self.ends[i]]
    }

    /// Stored hash of the term with id `i`.
    #[inline]
    pub fn hash_of(&self, i: u32) -> u64 {
        self.hashes[i as usize]
    }

    /// Id of `s`, adding it if new.
    #[inline]
    pub fn intern(&mut self, s: &str) -> u32 {
        self.intern_hashed(s, term_hash(s))
    }

    /// Id of `s` whose [`term_hash`] is `h`, adding it if new.
    pub fn intern_hashed(&mut self, s: &str, h: u64) -> u32 {
        let Interner { arena, ends, hashes, table } = self;
        let get = |i: u32| {
            let i = i as usize;
            let a = if i == 0 { 0 } else { ends[i - 1] };
            &arena[a..ends[i]]
        };
        if let Some(&id) = table.find(h, |&id| hashes[id as usize] == h && get(id) == s) {
            return id;
        }
        self.push_new(s, h)
    }

    /// Appends `s`, which the caller knows is not present yet, and returns its id.
    pub fn push_distinct(&mut self, s: &str) -> u32 {
        self.push_new(s, term_hash(s))
    }

    /// Appends `s` (absent, with hash `h`) under the next id.
    fn push_new(&mut self, s: &str, h: u64) -> u32 {
        let Interner { arena, ends, hashes, table } = self;
        let id = ends.len() as u32;
        table.insert_unique(h, id, |&id| hashes[id as usize]);
        arena.push_str(s);
        ends.push(arena.len());
        hashes.push(h);
        id
    }

    /// Id of `s` if present.
    pub fn find(&self, s: &str) -> Option<u32> {
        let h = term_hash(s);
        self.table.find(h, |&id| self.hashes[id as usize] == h && self.get(id) == s).copied()
    }
}
