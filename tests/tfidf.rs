//! TF-IDF parity with scikit-learn's TfidfVectorizer (tests/peers/sklearn_tfidf.py) on real review
//! texts and on texts built to hit the Unicode corners (combining marks, Python-only whitespace).

#[path = "support/mod.rs"]
mod support;

use revmod::text::analyzer::{is_py_space, is_py_word};
use revmod::text::{Analyzer, CsrMatrix, DfBound, TextFeaturesParams, TfidfError, TfidfParams};
use serde_json::{json, Value};
use support::{peer, reviews};

fn spec(p: &TfidfParams, transform: Option<&[&str]>) -> Value {
    let df = |d: DfBound| match d {
        DfBound::Count(c) => json!(c),
        DfBound::Fraction(f) => json!(f),
    };
    let mut s = json!({
        "analyzer": match p.analyzer { revmod::text::Analyzer::Word => "word", revmod::text::Analyzer::Char => "char" },
        "ngram_range": [p.ngram_range.0, p.ngram_range.1],
        "min_df": df(p.min_df), "max_df": df(p.max_df), "max_features": p.max_features,
    });
    if let Some(t) = transform {
        s["transform_texts"] = json!(t);
    }
    s
}

fn csr_of(v: &Value, n_rows: usize, n_cols: usize) -> CsrMatrix {
    CsrMatrix::from_parts(
        n_rows,
        n_cols,
        serde_json::from_value(v["indptr"].clone()).unwrap(),
        serde_json::from_value(v["indices"].clone()).unwrap(),
        serde_json::from_value(v["data"].clone()).unwrap(),
    )
    .unwrap()
}

fn assert_same_matrix(ours: &CsrMatrix, theirs: &CsrMatrix, what: &str) {
    assert_eq!((ours.n_rows, ours.n_cols), (theirs.n_rows, theirs.n_cols), "{what}: shape");
    assert_eq!(ours.indptr, theirs.indptr, "{what}: row structure");
    assert_eq!(ours.indices, theirs.indices, "{what}: columns");
    let d = ours.data.iter().zip(&theirs.data).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d <= 1e-9, "{what}: max |value difference| {d}");
}

/// Fits ours and sklearn's on `fit`, transforms `other`; asserts identical vocabulary, idf within
/// 1e-9 and identical matrices (1e-9) for both, and ours bit-identical to our transform of `fit`.
fn check_parity(p: &TfidfParams, fit: &[&str], other: &[&str], what: &str) -> usize {
    let (f, x) = p.fit_transform(fit).unwrap();
    let out = peer("sklearn_tfidf.py", &json!({"texts": fit, "vectorizers": [spec(p, Some(other))]}));
    let v = &out["vectorizers"][0];
    let vocab: Vec<String> = serde_json::from_value(v["vocabulary"].clone()).unwrap();
    assert_eq!(f.vocabulary().len(), vocab.len(), "{what}: vocabulary size");
    assert!(f.vocabulary() == vocab.as_slice(), "{what}: vocabulary differs");
    let idf: Vec<f64> = serde_json::from_value(v["idf"].clone()).unwrap();
    let d = f.idf().iter().zip(&idf).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d <= 1e-9, "{what}: idf max difference {d}");
    assert_same_matrix(&x, &csr_of(v, fit.len(), vocab.len()), &format!("{what} fit_transform"));
    // fit_transform builds its matrix from the counts of the fit; transform recounts each text
    assert!(x == f.transform(fit), "{what}: fit_transform and transform of the same texts differ");
    let xt = f.transform(other);
    assert_same_matrix(&xt, &csr_of(&v["transform"], other.len(), vocab.len()), &format!("{what} transform"));
    vocab.len()
}

#[test]
fn seed_vectorizers_match_sklearn_on_real_reviews() {
    let revs = reviews(3500);
    let texts: Vec<&str> = revs.iter().map(|r| r.text.as_str()).collect();
    let (fit, other) = texts.split_at(3000);
    let nw = check_parity(&TfidfParams::seed_word(), fit, other, "word (1,2)");
    let nc = check_parity(&TfidfParams::seed_char(), fit, other, "char (3,5)");
    assert!(nw > 3000 && nc > 20000, "suspiciously small vocabularies: {nw} {nc}");
}

#[test]
fn max_features_and_max_df_prune_like_sklearn() {
    let revs = reviews(1500);
    let texts: Vec<&str> = revs.iter().map(|r| r.text.as_str()).collect();
    // Pick a cap that does not cut through a group of equal frequencies (scikit-learn's order inside
    // such a group is numpy's unstable argsort: not reproducible across CPUs).
    for cap in [300usize, 200, 150, 120, 100, 80, 60] {
        let p = TfidfParams { max_features: Some(cap), max_df: DfBound::Fraction(0.5), ..TfidfParams::seed_word() };
        let out = peer("sklearn_tfidf.py", &json!({"texts": texts, "vectorizers": [spec(&p, None)]}));
        let theirs = out["vectorizers"][0]["vocabulary"].as_array().unwrap().len();
        assert_eq!(p.fit(&texts).unwrap().n_features(), theirs, "kept-term count with max_features={cap}");
        if out["vectorizers"][0]["tie_at_cut"].as_bool().unwrap() {
            continue;
        }
        let n = check_parity(&p, &texts, &texts[..10], &format!("word max_features={cap}"));
        assert_eq!(n, cap);
        return;
    }
    panic!("every candidate cap cut through a tie; pick other caps");
}

#[test]
fn unicode_corners_match_sklearn() {
    let texts = [
        "Cafe\u{301} cafe\u{301} CAFÉ café — naïve coöperate",            // combining acute: not \w in Python
        "Ὀδυσσεύς ΣΟΦΟΣ σοφός ΟΔΟΣ. ΟΔΟΣ",                                // Greek, final sigma
        "İstanbul İSTANBUL ıi ǅemal",                                      // dotted I, titlecase
        "tab\there  two\u{a0}\u{a0}nbsp\u{1c}\u{1d}sep\nnew\r\n\r\nlines",   // Python-only whitespace runs
        "x²+y³ ½ ① ٣٤ 四五 snake_case ‿tie‿ e\u{200d}f",                   // numerics, Pc, ZWJ
        "😀😀 great!!! 10/10 👍🏽 ok",                                      // emoji + skin tone modifier
        "Ⓐⓑ circled ǅ ß STRASSE ﬁne",                                     // So letters, ligature
        "cafe\u{301} naïve ok ok 😀😀 10/10 ΣΟΦΟΣ snake_case tab\there",
        "😀😀😀😀😀 wow 𝕏𝕐𝕑𝕒𝕓 nul\0byte 😀😀😀😀😀 𝕏𝕐𝕑𝕒𝕓 nul\0byte", // n-grams over 15 bytes, NUL
    ];
    let docs: Vec<&str> = texts.to_vec();
    for base in [TfidfParams::seed_word(), TfidfParams::seed_char()] {
        let p = TfidfParams { min_df: DfBound::Count(1), max_df: DfBound::Fraction(1.0), ..base };
        check_parity(&p, &docs, &docs, &format!("{:?} unicode", p.analyzer));
    }
}

#[test]
fn python_character_classes_are_the_running_pythons() {
    let out = std::process::Command::new(support::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sklearn_word_chars.py"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (key, f) in [("word", is_py_word as fn(char) -> bool), ("space", is_py_space)] {
        let ranges: Vec<(u32, u32)> = serde_json::from_value(v[key].clone()).unwrap();
        let mut inside = vec![false; 0x110000];
        for (a, b) in ranges {
            for c in a..=b {
                inside[c as usize] = true;
            }
        }
        for cp in 0..0x110000u32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(f(c), inside[cp as usize], "{key} class differs at U+{cp:04X}");
            }
        }
    }
}

#[test]
fn errors_are_clear() {
    let e = TfidfParams::seed_word().fit(&[]).unwrap_err();
    assert_eq!(e, TfidfError::NoDocuments, "{e}");
    let e = TfidfParams::seed_word().fit(&["a b c", "! ?"]).unwrap_err();
    assert_eq!(e, TfidfError::EmptyVocabulary(Analyzer::Word), "{e}");
    let docs = ["the cat sat", "the dog sat", "a cat ran"];
    let e = TfidfParams { min_df: DfBound::Count(3), max_df: DfBound::Fraction(1.0), ..TfidfParams::seed_word() }.fit(&docs).unwrap_err();
    assert_eq!(e, TfidfError::NoTermsAfterPruning, "{e}");
}

#[test]
fn bad_parameters_are_typed_errors_before_any_work() {
    let docs = ["the cat sat", "the dog sat"];
    let w = TfidfParams::seed_word;
    let fit = |p: TfidfParams| p.fit(&docs).unwrap_err();
    assert_eq!(fit(TfidfParams { ngram_range: (2, 1), ..w() }), TfidfError::InvalidNgramRange(2, 1));
    assert_eq!(fit(TfidfParams { ngram_range: (0, 1), ..w() }), TfidfError::InvalidNgramRange(0, 1));
    assert_eq!(fit(TfidfParams { max_df: DfBound::Fraction(1.5), ..w() }), TfidfError::InvalidDfFraction { name: "max_df", value: 1.5 });
    let (lo, hi) = (DfBound::Count(5), DfBound::Count(2));
    assert_eq!(fit(TfidfParams { min_df: lo, max_df: hi, ..w() }), TfidfError::MinDfAboveMaxDf { min_df: lo, max_df: hi });
    let (lo, hi) = (DfBound::Fraction(0.8), DfBound::Fraction(0.5));
    assert_eq!(fit(TfidfParams { min_df: lo, max_df: hi, ..w() }), TfidfError::MinDfAboveMaxDf { min_df: lo, max_df: hi });
    // mixed kinds: compared on the documents (2 documents: max_df 0.5 is 1 document, min_df 2)
    let (lo, hi) = (DfBound::Count(2), DfBound::Fraction(0.5));
    assert!(TfidfParams { min_df: lo, max_df: hi, ..w() }.check().is_ok());
    assert_eq!(fit(TfidfParams { min_df: lo, max_df: hi, ..w() }), TfidfError::MinDfAboveMaxDf { min_df: lo, max_df: hi });
    assert_eq!(fit(TfidfParams { max_features: Some(0), ..w() }), TfidfError::ZeroMaxFeatures);
    let bad = TextFeaturesParams { char: TfidfParams { ngram_range: (5, 3), ..TfidfParams::seed_char() }, ..Default::default() };
    assert_eq!(bad.check().unwrap_err(), TfidfError::InvalidNgramRange(5, 3));
}
