//! scikit-learn's `CountVectorizer` analyzers, character for character.
//!
//! * preprocessing: `str.lower()` (Rust's `to_lowercase` implements the same Unicode full case mapping,
//!   final sigma included; only code points newer than Python's Unicode tables could differ);
//! * word analyzer: `re.findall(r"(?u)\b\w\w+\b")` with **Python's** `\w` (letters, numbers and `_`, no
//!   combining marks — see [`is_py_word`]), i.e. maximal runs of at least two word characters, then word
//!   n-grams joined by one space;
//! * char analyzer: runs of two or more Python-`\s` characters become one space (`re.sub(r"\s\s+", " ")`;
//!   a single tab or newline stays as it is), then every n-gram of code points.

use super::pyword::{SPACE_RANGES, WORD_RANGES};
use std::borrow::Cow;

fn in_ranges(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    match table.binary_search_by(|&(a, b)| {
        if b < c {
            std::cmp::Ordering::Less
        } else if a > c {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Python's `\w` for str patterns: `c.isalnum() or c == '_'` (Unicode letters and numbers; unlike
/// Rust regex's `\w`, combining marks and connector punctuation other than `_` are not word characters).
#[inline]
pub fn is_py_word(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        in_ranges(WORD_RANGES, c)
    }
}

/// Python's `\s` for str patterns (`str.isspace()`), which includes U+001C..U+001F.
#[inline]
pub fn is_py_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ')
    } else {
        in_ranges(SPACE_RANGES, c)
    }
}

/// `str.lower()` when `lowercase` is set (ASCII text is lowered without allocation checks).
pub fn preprocess(doc: &str, lowercase: bool) -> Cow<'_, str> {
    if !lowercase {
        return Cow::Borrowed(doc);
    }
    if doc.is_ascii() {
        if doc.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(doc.to_ascii_lowercase())
        } else {
            Cow::Borrowed(doc)
        }
    } else {
        Cow::Owned(doc.to_lowercase())
    }
}

/// The tokens of sklearn's default `token_pattern` `(?u)\b\w\w+\b`: maximal runs of two or more
/// Python word characters, as slices of `doc`.
pub fn word_tokens<'a>(doc: &'a str, out: &mut Vec<&'a str>) {
    out.clear();
    let mut start: Option<usize> = None;
    let mut nchars = 0usize;
    for (i, c) in doc.char_indices() {
        if is_py_word(c) {
            if start.is_none() {
                start = Some(i);
                nchars = 0;
            }
            nchars += 1;
        } else if let Some(s) = start.take() {
            if nchars >= 2 {
                out.push(&doc[s..i]);
            }
        }
    }
    if let Some(s) = start {
        if nchars >= 2 {
            out.push(&doc[s..]);
        }
    }
}

/// Calls `f` with every word n-gram (`min_n..=max_n`) of the preprocessed `doc`, as sklearn's
/// `_word_ngrams` makes them (tokens joined by one space). `buf` and `tokens` are scratch space.
pub fn for_each_word_ngram<'a>(
    doc: &'a str,
    range: (usize, usize),
    tokens: &mut Vec<&'a str>,
    buf: &mut String,
    mut f: impl FnMut(&str),
) {
    for_each_word_ngram_tokens(doc, range, tokens, |gram| {
        if let [one] = gram {
            f(one);
        } else {
            join_tokens(gram, buf);
            f(buf);
        }
    });
}

/// Calls `f` with the tokens of every word n-gram of [`for_each_word_ngram`], in the same order, without
/// joining them (a caller that only needs a key of the n-gram avoids building the string).
pub fn for_each_word_ngram_tokens<'a>(
    doc: &'a str,
    (min_n, max_n): (usize, usize),
    tokens: &mut Vec<&'a str>,
    mut f: impl FnMut(&[&'a str]),
) {
    word_tokens(doc, tokens);
    let nt = tokens.len();
    for n in min_n.max(1)..=max_n.min(nt) {
        for i in 0..=(nt - n) {
            f(&tokens[i..i + n]);
        }
    }
}

/// Writes the tokens of one word n-gram joined by single spaces into `buf`.
pub fn join_tokens(gram: &[&str], buf: &mut String) {
    buf.clear();
    for (k, t) in gram.iter().enumerate() {
        if k > 0 {
            buf.push(' ');
        }
        buf.push_str(t);
    }
}

/// sklearn's char-analyzer whitespace normalisation: each run of two or more Python-`\s` characters
/// becomes a single space; single whitespace characters are kept as they are.
pub fn normalize_whitespace(doc: &str) -> Cow<'_, str> {
    let mut prev_space = false;
    let mut needs = false;
    for c in doc.chars() {
        let s = is_py_space(c);
        if s && prev_space {
            needs = true;
            break;
        }
        prev_space = s;
    }
    if !needs {
        return Cow::Borrowed(doc);
    }
    let chars: Vec<char> = doc.chars().collect();
    let mut out = String::with_capacity(doc.len());
    let mut i = 0;
    while i < chars.len() {
        if is_py_space(chars[i]) && i + 1 < chars.len() && is_py_space(chars[i + 1]) {
            while i < chars.len() && is_py_space(chars[i]) {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// Calls `f` with every char n-gram (`min_n..=max_n` code points) of the whitespace-normalised `doc`,
/// as sklearn's `_char_ngrams`. `offsets` is scratch space.
pub fn for_each_char_ngram(doc: &str, range: (usize, usize), offsets: &mut Vec<usize>, mut f: impl FnMut(&str)) {
    for_each_char_ngram_span(doc, range, offsets, |a, b| f(&doc[a..b]));
}

/// The byte span `(start, end)` in `doc` of every char n-gram of [`for_each_char_ngram`], grouped by start
/// position (all lengths at one position, then the next) rather than by length: the same multiset of
/// n-grams, in an order that keeps a text's bytes in cache. `offsets` is scratch space.
pub fn for_each_char_ngram_span(
    doc: &str,
    (min_n, max_n): (usize, usize),
    offsets: &mut Vec<usize>,
    mut f: impl FnMut(usize, usize),
) {
    offsets.clear();
    offsets.extend(doc.char_indices().map(|(i, _)| i));
    offsets.push(doc.len());
    let len = offsets.len() - 1;
    let min_n = min_n.max(1);
    for i in 0..len {
        for n in min_n..=max_n.min(len - i) {
            f(offsets[i], offsets[i + n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_word_class_excludes_marks() {
        assert!(is_py_word('é'));
        assert!(!is_py_word('\u{301}')); // combining acute: \w in Rust regex, not in Python
        assert!(is_py_word('²')); // No: Python isnumeric
        assert!(!is_py_word('‿')); // Pc other than '_'
        assert!(is_py_space('\x1f'));
    }

    #[test]
    fn tokens_and_ngrams() {
        let mut t = Vec::new();
        word_tokens("a bc dé\u{301}f x_y", &mut t);
        assert_eq!(t, vec!["bc", "dé", "x_y"]);
        let mut got = Vec::new();
        let (mut tk, mut buf) = (Vec::new(), String::new());
        for_each_word_ngram("aa bb cc", (1, 2), &mut tk, &mut buf, |s| got.push(s.to_string()));
        assert_eq!(got, vec!["aa", "bb", "cc", "aa bb", "bb cc"]);
        assert_eq!(normalize_whitespace("a \t b\nc"), "a b\nc");
        let mut off = Vec::new();
        let mut g = Vec::new();
        for_each_char_ngram("abcd", (3, 5), &mut off, |s| g.push(s.to_string()));
        assert_eq!(g, vec!["abc", "abcd", "bcd"]);
    }
}
