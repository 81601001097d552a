//! Step 10, features: scikit-learn-compatible TF-IDF vectorizers and a CSR sparse matrix.
//!
//! [`TfidfParams`] -> `fit` -> [`FittedTfidf`] (vocabulary + idf, kept for every later transform);
//! [`TextFeaturesParams`] stacks the seed's word (1,2) and char (3,5) vectorizers side by side.
//! We own the TF-IDF rather than use linfa-preprocessing's because that one does not keep the fitted
//! idf, has no char analyzer and does not reproduce scikit-learn's tokenisation; see [`tfidf`].

pub mod analyzer;
pub mod csr;
pub mod features;
pub mod interner;
mod pyword;
pub mod termkey;
pub mod tfidf;

pub use csr::CsrMatrix;
pub use features::{FittedTextFeatures, RowScratch, TextFeaturesParams};
pub use tfidf::{Analyzer, DfBound, FittedTfidf, Norm, Scratch, TfidfError, TfidfParams};
