//! The moderator prompt (seed cell 6): the rules as a value, and the user turn built from one review.
//!
//! The system prompt and the user template are plain strings inside [`ModeratorPrompt`], so a notebook
//! cell can print them, edit them and pass the edited value on. Everything that reaches the model is
//! derived from this value, and [`ModeratorPrompt::fingerprint`] hashes it so a checkpointed run can tell
//! that the prompt changed between two sessions.

use super::ReviewInput;

/// The seed's moderation rules, in this project's words.
pub const DEFAULT_SYSTEM_PROMPT: &str = r#"You moderate reviews of places on Google Maps and you are strict about it.
Judge a review only from its text together with the name and the category of the place. Never assume the
writer visited the place unless the text says so. A review may break several policies at once. If you are
not sure, report no violation and mark the review as not relevant.

Policies (violation names in capitals):
- ADS: the review promotes something: a URL or website, a phone number, a coupon or promo code, a discount
  percentage, "call now", "use code", or any other advertising.
- IRRELEVANT: the review is mostly about some other topic, or about a different place than this one.
- NON_VISIT_RANT: a complaint with no sign that the writer was there ("never been", "I heard",
  "didn't go inside", "won't go"). A complaint about a phone call only counts as a non-visit rant, unless
  the place itself is a phone service.
- SPAM: nearly empty text, a single word or emoji, gibberish, repeated text, or boilerplate.

Relevance: a review is relevant when it describes the experience at this place: its service, staff,
products or setting. It is not relevant when it is IRRELEVANT or nothing but SPAM. A review with ADS can
still be relevant.

Answer with one JSON object and nothing else, with exactly these keys:
- "is_relevant": true or false
- "violations": a list of the violation names that apply, empty when none applies
- "rationale": one short reason, at most 25 words
Example: {"is_relevant": true, "violations": [], "rationale": "Describes the food and the staff at this place."}"#;

/// The seed's user turn: place name, category, then the prepared review text.
pub const DEFAULT_USER_TEMPLATE: &str =
    "Place name: {business_name}\nPlace category: {category}\nReview text: {text}";

/// The seed's cut: review text handed to the model is at most this many characters (after transliteration).
pub const DEFAULT_MAX_TEXT_CHARS: usize = 1000;

/// The prompt a labeler sends: system rules, a user-turn template and the text length cut.
///
/// The template's placeholders are `{business_name}`, `{category}` and `{text}`; unknown placeholders are
/// left as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeratorPrompt {
    /// System rules (Gemma has no system role: the chat template folds this into the first user turn).
    pub system: String,
    /// User-turn template with `{business_name}`, `{category}`, `{text}` placeholders.
    pub user_template: String,
    /// Maximum characters of review text after transliteration and whitespace folding.
    pub max_text_chars: usize,
}

impl Default for ModeratorPrompt {
    fn default() -> Self {
        Self {
            system: DEFAULT_SYSTEM_PROMPT.to_string(),
            user_template: DEFAULT_USER_TEMPLATE.to_string(),
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
        }
    }
}

impl ModeratorPrompt {
    /// The user turn for one review: template filled with the name, the category and the prepared text.
    pub fn user_turn(&self, review: &ReviewInput) -> String {
        let text = prepare_text(&review.text, self.max_text_chars);
        let name = prepare_text(&review.business_name, 200);
        let category = prepare_text(&review.category, 200);
        // Fill in one pass so a placeholder-looking string inside the review is never expanded.
        let mut out = String::with_capacity(self.user_template.len() + text.len() + 64);
        let mut rest = self.user_template.as_str();
        while let Some(pos) = rest.find('{') {
            out.push_str(&rest[..pos]);
            let tail = &rest[pos..];
            let (value, len) = if tail.starts_with("{business_name}") {
                (name.as_str(), "{business_name}".len())
            } else if tail.starts_with("{category}") {
                (category.as_str(), "{category}".len())
            } else if tail.starts_with("{text}") {
                (text.as_str(), "{text}".len())
            } else {
                ("{", 1)
            };
            out.push_str(value);
            rest = &tail[len..];
        }
        out.push_str(rest);
        out
    }

    /// Stable 64-bit FNV-1a hash (hex) of system prompt, template and cut: changes iff the prompt changes.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv::new();
        h.write_str(&self.system);
        h.write_str(&self.user_template);
        h.write(&(self.max_text_chars as u64).to_le_bytes());
        h.hex()
    }
}

/// Text as the model sees it: transliterated to ASCII, whitespace runs folded to one space, cut to
/// `max_chars` characters.
pub fn prepare_text(text: &str, max_chars: usize) -> String {
    // Fold first (deunicode drops some whitespace such as tabs), then fold what transliteration adds.
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let ascii = deunicode::deunicode(&folded);
    let mut out = String::with_capacity(ascii.len().min(max_chars + 1));
    let mut n = 0usize;
    for word in ascii.split_whitespace() {
        let sep = usize::from(n > 0);
        if n + sep >= max_chars {
            break;
        }
        if sep == 1 {
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n >= max_chars {
                break;
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

/// FNV-1a, 64 bit: a tiny, dependency-free, stable hash for fingerprints (not for security).
#[derive(Clone, Debug)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    /// Writes a length-prefixed string, so ("ab","c") and ("a","bc") hash differently.
    pub(crate) fn write_str(&mut self, s: &str) {
        self.write(&(s.len() as u64).to_le_bytes());
        self.write(s.as_bytes());
    }
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(text: &str) -> ReviewInput {
        ReviewInput { text: text.into(), business_name: "Café Rio".into(), category: "Mexican restaurant".into() }
    }

    #[test]
    fn prepare_transliterates_folds_and_cuts() {
        assert_eq!(prepare_text("  Très   bon\n\n café\t!  ", 1000), "Tres bon cafe !");
        let long = "word ".repeat(400);
        let p = prepare_text(&long, 1000);
        assert!(p.chars().count() <= 1000, "{}", p.len());
        assert!(p.len() >= 995);
        assert!(prepare_text("日本", 1000).is_ascii());
        assert_eq!(prepare_text("", 1000), "");
    }

    #[test]
    fn user_turn_fills_template_once() {
        let p = ModeratorPrompt::default();
        let u = p.user_turn(&review("Great {category} tacos"));
        assert_eq!(u, "Place name: Cafe Rio\nPlace category: Mexican restaurant\nReview text: Great {category} tacos");
    }

    #[test]
    fn fingerprint_tracks_every_part() {
        let a = ModeratorPrompt::default();
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.system.push('!');
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = a.clone();
        c.max_text_chars = 999;
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
