//! The rules-only labeler: keyword rules instead of a language model, for teaching and for runs without
//! a model. Its outputs say so (`backend` = "rules-only", `model` = [`RULES_MODEL_ID`]).
//!
//! It writes the same JSON a model would, so its answers go through the seed's parser like any other.

use regex::Regex;

use super::backend::{LabelBackend, RawOutput};
use super::{ModeratorPrompt, ReviewInput};

/// Value of the `model` column for rules-only labels.
pub const RULES_MODEL_ID: &str = "keyword-rules-v1 (no language model)";

/// Keyword rules for the four policies plus a relevance rule; see [`RulesBackend::judge`].
#[derive(Debug)]
pub struct RulesBackend {
    ads: Vec<(Regex, &'static str)>,
    non_visit: Regex,
    irrelevant: Regex,
    spam: Regex,
    experience: Regex,
}

impl Default for RulesBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// The rules' verdict for one review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RulesVerdict {
    /// Relevant to the place.
    pub is_relevant: bool,
    /// Violation names found, in the prompt's order.
    pub violations: Vec<&'static str>,
    /// Which rules fired.
    pub rationale: String,
}

impl RulesBackend {
    /// The default rule set.
    pub fn new() -> Self {
        let re = |s: &str| Regex::new(s).expect("static rules regex");
        Self {
            ads: vec![
                (re(r"(?i)\b(https?://|www\.)\S+|\b[a-z0-9-]+\.(com|net|org|io|biz|shop)\b"), "a URL"),
                (re(r"\(?\b\d{3}\)?[-. ]?\d{3}[-. ]\d{4}\b"), "a phone number"),
                (re(r"(?i)\b(use|promo|coupon|discount)\s+code\b|\bcoupon\b"), "a coupon or promo code"),
                (re(r"(?i)\b\d{1,3}\s?% off\b|\b\d{1,3}\s?percent off\b"), "a discount"),
                (re(r"(?i)\bcall (us )?now\b|\bbook now\b|\border now\b|\bvisit our (website|site|page|store)\b|\bfollow us\b|\bdm (me|us)\b|\bcheck out my\b"), "a call to action"),
            ],
            // the prompt's visit signals, plus hearsay and phone-only complaints
            non_visit: re(r"(?i)\b(never been|never went|never visited|haven'?t (been|visited)|have not (been|visited)|i heard|heard that|didn'?t go in(side)?|did not go in(side)?|won'?t go|will never go|never set foot|didn'?t even go|my friend (said|told)|drove (past|by)|read online|nobody (ever )?(answered|picks? up)|never answered)\b"),
            // other topics (politics, money schemes, personal news, weather, greetings, lost pets) or another place
            irrelevant: re(r"(?i)\b(bitcoin|crypto(currency)?|forex|election|vote for|president|politic(s|al)|my ex\b|subscribe to my|my channel|lottery|weight loss pills?|wedding|the weather|happy (fourth|new year|holidays|thanksgiving|easter|halloween)|lost (dog|cat|pet)|does anyone know|across the street|another (place|location|restaurant|store)|test(ing)? my (new )?(phone|keyboard)|this review is about)"),
            spam: re(r"(?i)\b(click here|free money|make money fast|work from home|lorem ipsum|best best best|buy followers)\b"),
            experience: re(r"(?i)\b(food|service|staff|friendly|rude|clean|dirty|price[sd]?|tast(y|e|ed)|delicious|order(ed)?|waited|wait|room|store|shop|place|employees?|manager|visit(ed)?|came|went|ate|stay(ed)?|atmosphere|menu|help(ful|ed)?|recommend(ed)?|great|good|bad|terrible|awesome|amazing|excellent|nice|love[d]?|worst|best|experience|coffee|pizza|burger|doctor|nurse|car|parking)\b"),
        }
    }

    /// Applies the rules to one review's text (as prepared for the model).
    pub fn judge(&self, text: &str) -> RulesVerdict {
        let mut violations = Vec::new();
        let mut why = Vec::new();
        let ad_hits: Vec<&str> = self.ads.iter().filter(|(r, _)| r.is_match(text)).map(|(_, w)| *w).collect();
        if !ad_hits.is_empty() {
            violations.push("ADS");
            why.push(format!("promotes with {}", ad_hits.join(", ")));
        }
        if let Some(m) = self.irrelevant.find(text) {
            violations.push("IRRELEVANT");
            why.push(format!("off-topic keyword '{}'", m.as_str()));
        }
        if let Some(m) = self.non_visit.find(text) {
            violations.push("NON_VISIT_RANT");
            why.push(format!("no visit: '{}'", m.as_str()));
        }
        let spam_kw = self.spam.find(text).map(|m| m.as_str().to_string());
        let repeated = dominant_word_share(text) > 0.5;
        if spam_kw.is_some() || repeated {
            violations.push("SPAM");
            why.push(match spam_kw {
                Some(k) => format!("spam phrase '{k}'"),
                None => "one word repeated over and over".to_string(),
            });
        }
        let off = violations.contains(&"IRRELEVANT") || violations.contains(&"SPAM");
        let is_relevant = !off && self.experience.is_match(text);
        if why.is_empty() {
            why.push(if is_relevant { "describes the place, no rule fired".into() } else { "no sign of an experience at the place".into() });
        }
        RulesVerdict { is_relevant, violations, rationale: format!("rules: {}", why.join("; ")) }
    }
}

/// Share of the most frequent word among the words of `text` (0 for fewer than 4 words).
fn dominant_word_share(text: &str) -> f64 {
    let words: Vec<String> = text.split_whitespace().map(|w| w.to_lowercase()).collect();
    if words.len() < 4 {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for w in &words {
        *counts.entry(w.as_str()).or_insert(0usize) += 1;
    }
    *counts.values().max().unwrap_or(&0) as f64 / words.len() as f64
}

impl LabelBackend for RulesBackend {
    fn backend_name(&self) -> String {
        "rules-only".into()
    }
    fn model_id(&self) -> String {
        RULES_MODEL_ID.into()
    }
    fn preferred_batch(&self) -> usize {
        64
    }
    fn answer(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Vec<anyhow::Result<RawOutput>> {
        reviews
            .iter()
            .map(|r| {
                let text = super::prompt::prepare_text(&r.text, prompt.max_text_chars);
                let v = self.judge(&text);
                let raw = serde_json::json!({
                    "is_relevant": v.is_relevant,
                    "violations": v.violations,
                    "rationale": v.rationale,
                })
                .to_string();
                Ok(RawOutput { raw, probs: None })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire() {
        let r = RulesBackend::new();
        let ad = r.judge("Great pizza! Use code SAVE20 for 20% off, call 801-555-1234 or visit www.pizza.com");
        assert_eq!(ad.violations, vec!["ADS"]);
        assert!(ad.is_relevant);
        let rant = r.judge("Never been there but I heard the owner is a crook, avoid");
        assert_eq!(rant.violations, vec!["NON_VISIT_RANT"]);
        let off = r.judge("Buy bitcoin now, the election is rigged and nobody cares");
        assert!(off.violations.contains(&"IRRELEVANT") && !off.is_relevant);
        let spam = r.judge("wow wow wow wow wow wow nice");
        assert!(spam.violations.contains(&"SPAM") && !spam.is_relevant);
        let ok = r.judge("The staff were friendly and the food came out hot.");
        assert!(ok.violations.is_empty() && ok.is_relevant);
    }
}
