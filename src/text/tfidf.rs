//! `TfidfVectorizer` with scikit-learn's semantics: fit a vocabulary and idf, transform texts to
//! l2-normalised tf-idf rows.
//!
//! Why our own and not linfa-preprocessing's: its `TfIdfVectorizer` does not keep the fitted idf (it
//! recomputes document frequencies from whatever it transforms), has no char analyzer, and tokenizes with
//! a different regex engine; the seed needs the training idf reused for every later transform and
//! scikit-learn's exact vocabulary.
//!
//! Fitting follows `CountVectorizer.fit_transform` + `TfidfTransformer`: count every n-gram, sort the
//! vocabulary by term (code point order), keep terms with `min_df <= df <= max_df`, then, if more than
//! `max_features` remain, the `max_features` with the highest corpus term frequency. Ties at that cut are
//! broken towards the alphabetically smaller term (scikit-learn uses numpy's unstable `argsort`, whose tie
//! order depends on the CPU's SIMD sort; see docs/model-format.md). idf = ln((1 + n) / (1 + df)) + 1
//! (smooth), tf = raw count (or 1 + ln(count) when sublinear), rows scaled to unit l2 norm.

use std::mem::MaybeUninit;

use anyhow::{ensure, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::analyzer::{for_each_char_ngram_span, for_each_word_ngram_tokens, join_tokens, normalize_whitespace, preprocess};
use super::csr::CsrMatrix;
use super::interner::Interner;
use super::termkey::{joined_key, short_key_at, ShortTable, TermIndex, PADDING, SHORT_MAX};

/// Why a vectorizer was not fitted (from [`TfidfParams::check`] or the fit itself).
#[derive(Clone, Debug, PartialEq)]
pub enum TfidfError {
    /// `ngram_range` is not `1 <= min <= max`.
    InvalidNgramRange(usize, usize),
    /// A document-frequency fraction outside [0, 1].
    InvalidDfFraction {
        /// `min_df` or `max_df`.
        name: &'static str,
        /// The fraction given.
        value: f64,
    },
    /// `min_df` asks for more documents than `max_df` allows.
    MinDfAboveMaxDf {
        /// The lower bound.
        min_df: DfBound,
        /// The upper bound.
        max_df: DfBound,
    },
    /// `max_features` is `Some(0)`.
    ZeroMaxFeatures,
    /// No documents to fit on.
    NoDocuments,
    /// The documents hold no term of the analyzer.
    EmptyVocabulary(Analyzer),
    /// Every term falls outside `min_df..=max_df`.
    NoTermsAfterPruning,
}

impl std::fmt::Display for TfidfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TfidfError::InvalidNgramRange(a, b) => write!(f, "invalid ngram_range ({a}, {b}): need 1 <= min <= max"),
            TfidfError::InvalidDfFraction { name, value } => write!(f, "{name}={value} is not a fraction in [0, 1]"),
            TfidfError::MinDfAboveMaxDf { min_df, max_df } => {
                write!(f, "max_df ({max_df:?}) corresponds to fewer documents than min_df ({min_df:?})")
            }
            TfidfError::ZeroMaxFeatures => f.write_str("max_features must be at least 1"),
            TfidfError::NoDocuments => f.write_str("cannot fit a vectorizer on zero documents"),
            TfidfError::EmptyVocabulary(a) => write!(f, "empty vocabulary: the documents contain no terms of the {a:?} analyzer"),
            TfidfError::NoTermsAfterPruning => f.write_str("after pruning, no terms remain; try a lower min_df or a higher max_df"),
        }
    }
}

impl std::error::Error for TfidfError {}

/// Which analyzer turns a text into terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Analyzer {
    /// Word n-grams of the tokens of `(?u)\b\w\w+\b`.
    Word,
    /// Character n-grams after whitespace normalisation (sklearn's `'char'`).
    Char,
}

/// A document-frequency bound: an absolute count or a fraction of the documents (sklearn's int/float).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DfBound {
    /// At least/at most this many documents.
    Count(usize),
    /// This fraction of the documents (`0.0..=1.0`).
    Fraction(f64),
}

impl DfBound {
    fn resolve(self, n_docs: usize) -> f64 {
        match self {
            DfBound::Count(c) => c as f64,
            DfBound::Fraction(f) => f * n_docs as f64,
        }
    }
}

/// Row normalisation after tf-idf weighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Unit Euclidean length (sklearn's default `'l2'`).
    L2,
    /// No normalisation.
    None,
}

/// Parameters of a tf-idf vectorizer (sklearn's `TfidfVectorizer` arguments that the seed uses).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TfidfParams {
    /// Word or char analyzer.
    pub analyzer: Analyzer,
    /// Smallest and largest n-gram length.
    pub ngram_range: (usize, usize),
    /// Keep terms in at least this many documents.
    pub min_df: DfBound,
    /// Keep terms in at most this many documents.
    pub max_df: DfBound,
    /// Keep at most this many terms, by corpus term frequency.
    pub max_features: Option<usize>,
    /// Lowercase before analysis.
    pub lowercase: bool,
    /// Add one to document frequencies (as if one extra document held every term).
    pub smooth_idf: bool,
    /// Replace tf with 1 + ln(tf).
    pub sublinear_tf: bool,
    /// Row normalisation.
    pub norm: Norm,
}

impl TfidfParams {
    /// The seed's word vectorizer: ngram (1, 2), min_df 2, max_df 0.9, max_features 200,000.
    pub fn seed_word() -> Self {
        TfidfParams {
            analyzer: Analyzer::Word,
            ngram_range: (1, 2),
            min_df: DfBound::Count(2),
            max_df: DfBound::Fraction(0.9),
            max_features: Some(200_000),
            lowercase: true,
            smooth_idf: true,
            sublinear_tf: false,
            norm: Norm::L2,
        }
    }

    /// The seed's char vectorizer: ngram (3, 5), min_df 2, max_features 300,000.
    pub fn seed_char() -> Self {
        TfidfParams {
            analyzer: Analyzer::Char,
            ngram_range: (3, 5),
            min_df: DfBound::Count(2),
            max_df: DfBound::Fraction(1.0),
            max_features: Some(300_000),
            ..Self::seed_word()
        }
    }

    /// Checks the parameters (linfa's `ParamGuard::check_ref`): n-gram lengths `1 <= min <= max`, fractions
    /// in [0, 1], `min_df <= max_df` when both are counts or both fractions, `max_features` at least 1.
    /// Every fit calls it before any work; bounds of mixed kinds are compared once the number of documents
    /// is known ([`TfidfError::MinDfAboveMaxDf`] too).
    pub fn check(&self) -> Result<&Self, TfidfError> {
        let (a, b) = self.ngram_range;
        if a < 1 || a > b {
            return Err(TfidfError::InvalidNgramRange(a, b));
        }
        for (name, d) in [("min_df", self.min_df), ("max_df", self.max_df)] {
            if let DfBound::Fraction(f) = d {
                if !(0.0..=1.0).contains(&f) {
                    return Err(TfidfError::InvalidDfFraction { name, value: f });
                }
            }
        }
        let crossed = match (self.min_df, self.max_df) {
            (DfBound::Count(lo), DfBound::Count(hi)) => lo > hi,
            (DfBound::Fraction(lo), DfBound::Fraction(hi)) => lo > hi,
            _ => false,
        };
        if crossed {
            return Err(TfidfError::MinDfAboveMaxDf { min_df: self.min_df, max_df: self.max_df });
        }
        if self.max_features == Some(0) {
            return Err(TfidfError::ZeroMaxFeatures);
        }
        Ok(self)
    }

    /// Learns vocabulary and idf from `docs`.
    pub fn fit(&self, docs: &[&str]) -> Result<FittedTfidf, TfidfError> {
        Ok(self.fit_transform(docs)?.0)
    }

    /// Learns vocabulary and idf from `docs` and returns their tf-idf matrix too.
    pub fn fit_transform(&self, docs: &[&str]) -> Result<(FittedTfidf, CsrMatrix), TfidfError> {
        let (fitted, rows) = self.fit_rows(docs)?;
        let x = CsrMatrix::build(fitted.n_features(), rows.lens.iter().copied(), |i, cols, vals| {
            rows.fill(&fitted, i, 0, cols, vals)
        });
        Ok((fitted, x))
    }

    /// Learns vocabulary and idf from `docs`, and keeps the counts that make their tf-idf rows, for the
    /// caller to write where it wants them ([`FitRows::fill`]): the seed's two vectorizers write
    /// theirs side by side into one matrix.
    pub(crate) fn fit_rows(&self, docs: &[&str]) -> Result<(FittedTfidf, FitRows), TfidfError> {
        self.check()?;
        let n_docs = docs.len();
        if n_docs == 0 {
            return Err(TfidfError::NoDocuments);
        }
        // 1. Count terms per chunk of documents (in parallel), with chunk-local term ids. Two chunks per
        // thread: enough to balance the two vectorizers fitted side by side, and each chunk's distinct
        // terms are merged one by one on one thread (four per thread was slower: docs/performance.md).
        let n_chunks = (rayon::current_num_threads() * 2).clamp(1, n_docs);
        let chunk_len = n_docs.div_ceil(n_chunks);
        let chunks: Vec<LocalCounts> =
            docs.par_chunks(chunk_len).map(|c| LocalCounts::count(self, c)).collect();
        // 2. Merge chunk vocabularies into global ids, with their document and term frequencies.
        let mut global = Interner::default();
        let mut maps: Vec<Vec<u32>> = Vec::with_capacity(chunks.len());
        let (mut df, mut tf): (Vec<u32>, Vec<u64>) = (Vec::new(), Vec::new());
        for ch in &chunks {
            let map = (0..ch.terms.len() as u32)
                .map(|i| {
                    let g = global.intern_hashed(ch.terms.get(i), ch.terms.hash_of(i));
                    if g as usize == df.len() {
                        df.push(0);
                        tf.push(0);
                    }
                    df[g as usize] += ch.df[i as usize];
                    tf[g as usize] += ch.tf[i as usize];
                    g
                })
                .collect();
            maps.push(map);
        }
        let n_terms = global.len();
        if n_terms == 0 {
            return Err(TfidfError::EmptyVocabulary(self.analyzer));
        }
        // 3. Prune by document frequency, rank by term frequency, sort by term.
        let high = self.max_df.resolve(n_docs);
        let low = self.min_df.resolve(n_docs);
        if high < low {
            return Err(TfidfError::MinDfAboveMaxDf { min_df: self.min_df, max_df: self.max_df });
        }
        let term = |g: usize| -> &str { global.get(g as u32) };
        let mut kept: Vec<u32> =
            (0..n_terms as u32).filter(|&g| (df[g as usize] as f64) <= high && (df[g as usize] as f64) >= low).collect();
        if kept.is_empty() {
            return Err(TfidfError::NoTermsAfterPruning);
        }
        kept.par_sort_unstable_by(|&a, &b| term(a as usize).cmp(term(b as usize)));
        if let Some(limit) = self.max_features {
            if kept.len() > limit {
                let mut order: Vec<usize> = (0..kept.len()).collect();
                order.sort_by(|&a, &b| tf[kept[b] as usize].cmp(&tf[kept[a] as usize]).then(a.cmp(&b)));
                let mut keep_mask = vec![false; kept.len()];
                for &o in &order[..limit] {
                    keep_mask[o] = true;
                }
                kept = kept.iter().zip(&keep_mask).filter(|(_, k)| **k).map(|(g, _)| *g).collect();
            }
        }
        let mut new_col = vec![u32::MAX; n_terms];
        for (c, &g) in kept.iter().enumerate() {
            new_col[g as usize] = c as u32;
        }
        let n_smooth = n_docs as f64 + if self.smooth_idf { 1.0 } else { 0.0 };
        let idf: Vec<f64> = kept
            .iter()
            .map(|&g| {
                let d = df[g as usize] as f64 + if self.smooth_idf { 1.0 } else { 0.0 };
                (n_smooth / d).ln() + 1.0
            })
            .collect();
        let vocab: Vec<String> = kept.iter().map(|&g| term(g as usize).to_string()).collect();
        // 4. The chunks' counts by column, and the length of each row
        let col_of: Vec<Vec<u32>> = maps.par_iter().map(|m| m.iter().map(|&g| new_col[g as usize]).collect()).collect();
        drop(global);
        // the interner's terms are distinct and there is one idf per term: from_parts cannot refuse them
        let fitted = FittedTfidf::from_parts(self.clone(), vocab, idf).expect("a fitted vocabulary has distinct terms");
        let mut rows = FitRows { chunks, col_of, chunk_len, lens: Vec::new() };
        rows.lens = (0..n_docs)
            .into_par_iter()
            .map(|i| {
                let (entries, col_of) = rows.doc(i);
                entries.iter().filter(|e| col_of[e.0 as usize] != u32::MAX).count()
            })
            .collect();
        Ok((fitted, rows))
    }
}

/// The tf-idf rows of the documents a vectorizer was fitted on, not yet written: each document's term
/// counts and the column of each term ([`TfidfParams::fit_rows`]).
pub(crate) struct FitRows {
    chunks: Vec<LocalCounts>,
    /// Column of each chunk-local term id, or `u32::MAX` for a pruned term.
    col_of: Vec<Vec<u32>>,
    chunk_len: usize,
    /// Number of entries of each row.
    pub(crate) lens: Vec<usize>,
}

impl FitRows {
    /// The `(local id, count)` pairs of document `i`, and the columns of its chunk's ids.
    fn doc(&self, i: usize) -> (&[(u32, u32)], &[u32]) {
        let (ch, d) = (&self.chunks[i / self.chunk_len], i % self.chunk_len);
        (&ch.entries[ch.doc_ptr[d]..ch.doc_ptr[d + 1]], &self.col_of[i / self.chunk_len])
    }

    /// Writes tf-idf row `i` into `cols` and `vals` (`lens[i]` long), columns sorted and shifted by
    /// `offset`: each (column, count) pair packed in one integer, sorted, weighed and normalised.
    pub(crate) fn fill(&self, fitted: &FittedTfidf, i: usize, offset: u32, cols: &mut [MaybeUninit<u32>], vals: &mut [MaybeUninit<f64>]) {
        let (entries, col_of) = self.doc(i);
        let mut packed: Vec<u64> = entries
            .iter()
            .filter_map(|&(lid, n)| {
                let c = col_of[lid as usize];
                (c != u32::MAX).then_some(u64::from(c) << 32 | u64::from(n))
            })
            .collect();
        packed.sort_unstable();
        assert!(packed.len() == cols.len() && packed.len() == vals.len(), "row {i} has {} entries", packed.len());
        for ((c, v), &p) in cols.iter_mut().zip(vals.iter_mut()).zip(&packed) {
            c.write((p >> 32) as u32 + offset);
            v.write(fitted.weight((p >> 32) as u32, (p as u32) as f64));
        }
        // SAFETY: every entry of `vals` was written just above
        let vals = unsafe { &mut *(vals as *mut [MaybeUninit<f64>] as *mut [f64]) };
        if let Some(n) = fitted.norm_of(vals.iter().copied()) {
            vals.iter_mut().for_each(|v| *v /= n);
        }
    }
}

/// Term counts of one chunk of documents with chunk-local term ids.
struct LocalCounts {
    terms: Interner,
    /// `(local id, count)` per document (in first-occurrence order), documents back to back.
    entries: Vec<(u32, u32)>,
    doc_ptr: Vec<usize>,
    /// Documents of the chunk that hold each term, and its occurrences in them.
    df: Vec<u32>,
    tf: Vec<u64>,
}

impl LocalCounts {
    /// Counts the terms of `docs`. Short terms are told apart by their packed key (one integer hash per
    /// occurrence, no string built or compared; see `termkey`); only the chunk's distinct terms are
    /// spelled out as strings, for the merge.
    fn count(p: &TfidfParams, docs: &[&str]) -> LocalCounts {
        let mut short = ShortTable::with_capacity(1 << 14);
        let mut long = Interner::default();
        // local id of each term of `long`
        let mut long_local: Vec<u32> = Vec::new();
        // local id -> the term's key, or its id in `long`
        let mut ids: Vec<Result<u128, u32>> = Vec::new();
        let mut entries: Vec<(u32, u32)> = Vec::new();
        let mut doc_ptr = vec![0];
        // per local id: the last document (+ 1) it occurred in, and its entry there
        let (mut last, mut slot): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        let mut scratch = Scratch::default();
        let mut keys: Vec<u128> = Vec::new();
        let mut seq: Vec<u32> = Vec::new();
        for (d, doc) in docs.iter().enumerate() {
            let d = d as u32 + 1;
            keys.clear();
            seq.clear();
            for_each_term(p, doc, &mut scratch, |t| match t {
                Term::Short(k) => keys.push(k),
                Term::Long(s) => {
                    let l = long.intern(s);
                    if l as usize == long_local.len() {
                        ids.push(Err(l));
                        long_local.push(ids.len() as u32 - 1);
                    }
                    seq.push(long_local[l as usize]);
                }
            });
            // the table is larger than the caches: look the keys up with the slots of later ones
            // being prefetched, as scoring does
            short.reserve(keys.len());
            const AHEAD: usize = 16;
            for &k in keys.iter().take(AHEAD) {
                short.prefetch(k);
            }
            for (i, &k) in keys.iter().enumerate() {
                if let Some(&next) = keys.get(i + AHEAD) {
                    short.prefetch(next);
                }
                let (id, new) = short.get_or_insert(k, ids.len() as u32);
                if new {
                    ids.push(Ok(k));
                }
                seq.push(id);
            }
            for &id in &seq {
                let i = id as usize;
                if i >= last.len() {
                    last.resize(i + 1, 0);
                    slot.resize(i + 1, 0);
                }
                if last[i] == d {
                    entries[slot[i] as usize].1 += 1;
                } else {
                    (last[i], slot[i]) = (d, entries.len() as u32);
                    entries.push((id, 1));
                }
            }
            doc_ptr.push(entries.len());
        }
        let mut terms = Interner::default();
        for id in &ids {
            match *id {
                Ok(k) => {
                    let b = k.to_le_bytes();
                    terms.push_distinct(std::str::from_utf8(&b[..b[15] as usize]).expect("a key holds a str slice"));
                }
                Err(l) => {
                    terms.push_distinct(long.get(l));
                }
            }
        }
        let (mut df, mut tf) = (vec![0u32; terms.len()], vec![0u64; terms.len()]);
        for &(id, n) in &entries {
            df[id as usize] += 1;
            tf[id as usize] += u64::from(n);
        }
        LocalCounts { terms, entries, doc_ptr, df, tf }
    }
}

/// Sorts term ids and calls `f(id, count)` for each distinct id, in increasing order.
fn for_each_run(seq: &mut [u32], mut f: impl FnMut(u32, u32)) {
    seq.sort_unstable();
    let mut i = 0;
    while i < seq.len() {
        let mut j = i + 1;
        while j < seq.len() && seq[j] == seq[i] {
            j += 1;
        }
        f(seq[i], (j - i) as u32);
        i = j;
    }
}

/// Reusable buffers for analysing texts one at a time (one per thread; see [`FittedTfidf::row_into`]).
#[derive(Default)]
pub struct Scratch {
    buf: String,
    offsets: Vec<usize>,
    /// The normalised text followed by [`PADDING`] zero bytes (for packed-key lookups).
    padded: Vec<u8>,
    /// Column of each in-vocabulary term occurrence.
    seq: Vec<u32>,
    /// Packed keys of a text's short terms, looked up together.
    keys: Vec<u128>,
}

/// A term of a text: its packed key when it is at most [`SHORT_MAX`] bytes long, else its text.
enum Term<'a> {
    Short(u128),
    Long(&'a str),
}

/// Calls `f` with every term of `doc` under the analyzer of `p`, in sklearn's order. Short terms come as
/// packed keys, so no string is built or hashed for them.
fn for_each_term(p: &TfidfParams, doc: &str, s: &mut Scratch, mut f: impl FnMut(Term)) {
    let pre = preprocess(doc, p.lowercase);
    match p.analyzer {
        Analyzer::Char => {
            let norm = normalize_whitespace(&pre);
            s.padded.clear();
            s.padded.extend_from_slice(norm.as_bytes());
            s.padded.extend_from_slice(&[0; PADDING]);
            let padded = &s.padded;
            for_each_char_ngram_span(&norm, p.ngram_range, &mut s.offsets, |a, b| {
                if b - a <= SHORT_MAX {
                    f(Term::Short(short_key_at(padded, a, b - a)));
                } else {
                    f(Term::Long(&norm[a..b]));
                }
            });
        }
        Analyzer::Word => {
            let (mut tokens, buf) = (Vec::new(), &mut s.buf);
            for_each_word_ngram_tokens(&pre, p.ngram_range, &mut tokens, |gram| match joined_key(gram) {
                Some(k) => f(Term::Short(k)),
                None => {
                    join_tokens(gram, buf);
                    f(Term::Long(buf));
                }
            });
        }
    }
}

/// A fitted tf-idf vectorizer: vocabulary (term of each column) and idf, reused for every transform.
#[derive(Clone, Debug)]
pub struct FittedTfidf {
    /// The parameters it was fitted with.
    pub params: TfidfParams,
    vocab: Vec<String>,
    index: TermIndex,
    idf: Vec<f64>,
}

impl FittedTfidf {
    /// Rebuilds a fitted vectorizer from its vocabulary (term per column, sorted) and idf (per column).
    pub fn from_parts(params: TfidfParams, vocab: Vec<String>, idf: Vec<f64>) -> Result<Self> {
        ensure!(vocab.len() == idf.len(), "vocabulary has {} terms but idf {} values", vocab.len(), idf.len());
        let index = TermIndex::new(&vocab)?;
        Ok(FittedTfidf { params, vocab, index, idf })
    }

    /// Number of columns (kept terms).
    pub fn n_features(&self) -> usize {
        self.vocab.len()
    }

    /// The term of each column (sorted in code point order, like sklearn's `get_feature_names_out`).
    pub fn vocabulary(&self) -> &[String] {
        &self.vocab
    }

    /// Column of a term, if it is in the vocabulary (sklearn's `vocabulary_[term]`).
    pub fn column_of(&self, term: &str) -> Option<usize> {
        self.index.get(term).map(|c| c as usize)
    }

    /// idf of each column.
    pub fn idf(&self) -> &[f64] {
        &self.idf
    }

    /// tf-idf weighting and normalisation, in place, of one row of `(column, count)` (columns sorted).
    fn weigh_in_place(&self, r: &mut [(u32, f64)]) {
        const AHEAD: usize = 8;
        for i in 0..r.len() {
            if let Some(next) = r.get(i + AHEAD) {
                crate::mem::prefetch(&self.idf[next.0 as usize]);
            }
            r[i].1 = self.weight(r[i].0, r[i].1);
        }
        if let Some(n) = self.norm_of(r.iter().map(|e| e.1)) {
            for e in r.iter_mut() {
                e.1 /= n;
            }
        }
    }

    /// tf-idf of `count` occurrences of column `col`, before normalisation.
    #[inline]
    fn weight(&self, col: u32, count: f64) -> f64 {
        let tf = if self.params.sublinear_tf { count.ln() + 1.0 } else { count };
        tf * self.idf[col as usize]
    }

    /// What a row's weights are divided by: their l2 norm under [`Norm::L2`] when it is positive.
    fn norm_of(&self, vals: impl IntoIterator<Item = f64>) -> Option<f64> {
        let n = (self.params.norm == Norm::L2).then(|| vals.into_iter().map(|v| v * v).sum::<f64>().sqrt())?;
        (n > 0.0).then_some(n)
    }

    /// The tf-idf row of one text (sorted `(column, value)`); terms outside the vocabulary are ignored.
    pub fn transform_one(&self, doc: &str) -> Vec<(u32, f64)> {
        let mut row = Vec::new();
        self.row_into(doc, &mut Scratch::default(), &mut row);
        row
    }

    /// Writes the tf-idf row of `doc` (sorted `(column, value)`) into `row`, reusing `s` and `row`'s
    /// buffers: the allocation-free form of [`FittedTfidf::transform_one`] for scoring loops.
    pub fn row_into(&self, doc: &str, s: &mut Scratch, row: &mut Vec<(u32, f64)>) {
        let mut seq = std::mem::take(&mut s.seq);
        seq.clear();
        // Every term of the text gets a packed key (or, if long, is looked up as a string at once); then
        // the keys are looked up with the table slots of the next ones being prefetched, so that the
        // cache misses of a text's hundreds of lookups overlap (see `termkey`).
        let mut keys = std::mem::take(&mut s.keys);
        keys.clear();
        for_each_term(&self.params, doc, s, |t| match t {
            Term::Short(k) => keys.push(k),
            Term::Long(t) => {
                if let Some(c) = self.index.get_long(t) {
                    seq.push(c);
                }
            }
        });
        const AHEAD: usize = 32;
        let table = self.index.short_table();
        for &k in keys.iter().take(AHEAD) {
            table.prefetch(k);
        }
        for (i, &k) in keys.iter().enumerate() {
            if let Some(&next) = keys.get(i + AHEAD) {
                table.prefetch(next);
            }
            if let Some(c) = table.get(k) {
                seq.push(c);
            }
        }
        s.keys = keys;
        row.clear();
        for_each_run(&mut seq, |c, n| row.push((c, n as f64)));
        s.seq = seq;
        self.weigh_in_place(row);
    }

    /// tf-idf matrix of `docs` with the fitted vocabulary and idf (rows in parallel).
    pub fn transform(&self, docs: &[&str]) -> CsrMatrix {
        let rows: Vec<Vec<(u32, f64)>> = docs
            .par_iter()
            .map_init(Scratch::default, |s, d| {
                let mut row = Vec::new();
                self.row_into(d, s, &mut row);
                row
            })
            .collect();
        CsrMatrix::from_rows(self.n_features(), rows)
    }
}
