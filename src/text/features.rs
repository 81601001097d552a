//! The seed's feature map: word tf-idf and char tf-idf fitted separately, hstacked (word columns first).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::csr::CsrMatrix;
use super::tfidf::{FittedTfidf, Scratch, TfidfParams};

/// Parameters of the two vectorizers (seed defaults: [`TfidfParams::seed_word`], [`TfidfParams::seed_char`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextFeaturesParams {
    /// Word vectorizer.
    pub word: TfidfParams,
    /// Char vectorizer.
    pub char: TfidfParams,
}

impl Default for TextFeaturesParams {
    fn default() -> Self {
        TextFeaturesParams { word: TfidfParams::seed_word(), char: TfidfParams::seed_char() }
    }
}

impl TextFeaturesParams {
    /// Checks both vectorizers' parameters ([`TfidfParams::check`]).
    pub fn check(&self) -> Result<&Self, super::tfidf::TfidfError> {
        self.word.check()?;
        self.char.check()?;
        Ok(self)
    }

    /// Fits both vectorizers on `docs` (in parallel) and returns the stacked training matrix, each
    /// text's word and char rows written side by side straight into it.
    pub fn fit_transform(&self, docs: &[&str]) -> Result<(FittedTextFeatures, CsrMatrix)> {
        let (w, c) = rayon::join(|| self.word.fit_rows(docs), || self.char.fit_rows(docs));
        let (word, rw) = w.context("fitting the word vectorizer")?;
        let (char, rc) = c.context("fitting the char vectorizer")?;
        let off = u32::try_from(word.n_features()).context("too many word columns")?;
        let lens = rw.lens.iter().zip(&rc.lens).map(|(a, b)| a + b);
        let x = CsrMatrix::build(word.n_features() + char.n_features(), lens, |i, cols, vals| {
            let (cw, cc) = cols.split_at_mut(rw.lens[i]);
            let (vw, vc) = vals.split_at_mut(rw.lens[i]);
            rw.fill(&word, i, 0, cw, vw);
            rc.fill(&char, i, off, cc, vc);
        });
        Ok((FittedTextFeatures { word, char }, x))
    }
}

/// Fitted word + char vectorizers.
#[derive(Clone, Debug)]
pub struct FittedTextFeatures {
    /// Fitted word vectorizer (columns `0..word.n_features()`).
    pub word: FittedTfidf,
    /// Fitted char vectorizer (the columns after the word ones).
    pub char: FittedTfidf,
}

impl FittedTextFeatures {
    /// Total number of columns.
    pub fn n_features(&self) -> usize {
        self.word.n_features() + self.char.n_features()
    }

    /// The idf of every stacked column, word columns first: the factor of each column in the tf-idf
    /// matrix (what [`crate::linear::LogRegParams::fit_many`] takes to speed up its solver).
    pub fn idf(&self) -> Vec<f64> {
        self.word.idf().iter().chain(self.char.idf()).copied().collect()
    }

    /// The stacked row of one text in two parts, word entries then char entries, with the char columns
    /// local to the char vectorizer (add `word.n_features()` for the stacked column). Reuses `s`'s
    /// buffers: scoring uses it to go from text to probabilities without building a matrix.
    pub fn row_parts<'s>(&self, doc: &str, s: &'s mut RowScratch) -> (&'s [(u32, f64)], &'s [(u32, f64)]) {
        self.word.row_into(doc, &mut s.scratch, &mut s.word);
        self.char.row_into(doc, &mut s.scratch, &mut s.char);
        (&s.word, &s.char)
    }

    /// The stacked tf-idf matrix of `docs`.
    pub fn transform(&self, docs: &[&str]) -> CsrMatrix {
        let (xw, xc) = rayon::join(|| self.word.transform(docs), || self.char.transform(docs));
        CsrMatrix::hstack(&xw, &xc).expect("same number of rows")
    }
}

/// Reusable buffers of [`FittedTextFeatures::row_parts`] (one per thread).
#[derive(Default)]
pub struct RowScratch {
    scratch: Scratch,
    word: Vec<(u32, f64)>,
    char: Vec<(u32, f64)>,
}
