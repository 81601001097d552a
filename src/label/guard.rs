//! The cheap guard in front of the model (seed cell 6): clean Google's translation markers and flag
//! reviews too short or too degenerate to be worth a model call.
//!
//! A guarded review is labeled SPAM with a fixed rationale and never reaches a backend: this keeps the
//! model's time for reviews that can say something, exactly as the seed did.

/// Rationale written for every review the guard stops.
pub const GUARD_RATIONALE: &str = "Empty or low-quality review (guard): flagged as spam without a model call.";

/// Raw-output marker stored in `gemma_raw` for guarded reviews (no model output exists).
pub const GUARD_RAW: &str = "<guard: no model call>";

/// The seed's `clean_review`: drops the "(Translated by Google)" and "(Original)" markers that Google
/// inserts into translated reviews, then trims.
pub fn clean_review(text: &str) -> String {
    text.replace("(Translated by Google)", " ")
        .replace("(Original)", " ")
        .trim()
        .to_string()
}

/// Why the guard stopped a review (for reports and tests); `None` from [`low_quality_reason`] means it passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LowQuality {
    /// Nothing left after cleaning.
    Empty,
    /// Two words or fewer.
    FewWords,
    /// Fewer than 12 characters.
    TooShort,
    /// Not a single ASCII letter (emoji, digits, punctuation, or a non-Latin script only).
    NoAsciiLetter,
    /// The same non-space character four or more times in a row ("!!!!", "soooo").
    Repetition,
}

/// The seed's `cheap_low_quality` on an already cleaned text: empty; <= 2 words or < 12 characters;
/// no ASCII letter; a (non-whitespace) character repeated 4+ times in a row.
pub fn low_quality_reason(cleaned: &str) -> Option<LowQuality> {
    let t = cleaned.trim();
    if t.is_empty() {
        return Some(LowQuality::Empty);
    }
    if t.split_whitespace().count() <= 2 {
        return Some(LowQuality::FewWords);
    }
    if t.chars().count() < 12 {
        return Some(LowQuality::TooShort);
    }
    if !t.chars().any(|c| c.is_ascii_alphabetic()) {
        return Some(LowQuality::NoAsciiLetter);
    }
    let mut prev = None;
    let mut run = 0usize;
    for c in t.chars() {
        if Some(c) == prev {
            run += 1;
        } else {
            prev = Some(c);
            run = 1;
        }
        if run >= 4 && !c.is_whitespace() {
            return Some(LowQuality::Repetition);
        }
    }
    None
}

/// True when the guard stops this cleaned text (see [`low_quality_reason`]).
pub fn cheap_low_quality(cleaned: &str) -> bool {
    low_quality_reason(cleaned).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_markers() {
        let t = "(Translated by Google) Very good food\n\n(Original)\nMuy buena comida";
        let c = clean_review(t);
        assert!(!c.contains("Translated by Google") && !c.contains("(Original)"));
        assert!(c.starts_with("Very good food") && c.ends_with("Muy buena comida"));
    }

    #[test]
    fn guard_shapes() {
        assert_eq!(low_quality_reason(""), Some(LowQuality::Empty));
        assert_eq!(low_quality_reason("   "), Some(LowQuality::Empty));
        assert_eq!(low_quality_reason("Great place"), Some(LowQuality::FewWords));
        assert_eq!(low_quality_reason("ok ok ok"), Some(LowQuality::TooShort));
        assert_eq!(low_quality_reason("😀 😀 😀 😀 ❤️ 123 456"), Some(LowQuality::NoAsciiLetter));
        assert_eq!(low_quality_reason("とても 美味しい ラーメン でした"), Some(LowQuality::NoAsciiLetter));
        assert_eq!(low_quality_reason("Best tacos ever!!!!"), Some(LowQuality::Repetition));
        assert_eq!(low_quality_reason("sooooo good here"), Some(LowQuality::Repetition));
        assert_eq!(low_quality_reason("Good food,    friendly staff"), None);
        assert_eq!(low_quality_reason("The staff was friendly and the food was hot."), None);
        assert!(!cheap_low_quality("Three word review here"));
    }
}
