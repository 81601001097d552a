//! Turning a model's raw answer into labels (seed cell 6's parser), total on every input.
//!
//! Seed semantics: take the content of a ```` ```json ```` fenced block when there is one, else the
//! outermost `{...}` of the text; parse it as JSON; read `is_relevant`, `violations` and `rationale`.
//! Violations are upper-cased with spaces turned into underscores and unknown names dropped; a single
//! string instead of a list is accepted (split on commas). `parse_success` is true only when all three
//! keys are present. The function never panics (fuzzed in tests/label_parser.rs).

use serde_json::Value;

use crate::moderation::PerLabel;

/// The four violation names of the prompt, in the order of the label columns.
pub const VIOLATIONS: [&str; 4] = ["ADS", "IRRELEVANT", "NON_VISIT_RANT", "SPAM"];

/// Longest rationale kept (characters), as the seed's `[:200]`.
pub const MAX_RATIONALE_CHARS: usize = 200;

/// Labels read from one raw answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedLabels {
    /// `is_relevant` (false when missing or unreadable).
    pub is_relevant: bool,
    /// `violations` contains "ADS".
    pub ads: bool,
    /// `violations` contains "IRRELEVANT".
    pub irrelevant: bool,
    /// `violations` contains "NON_VISIT_RANT".
    pub non_visit: bool,
    /// `violations` contains "SPAM".
    pub spam: bool,
    /// The rationale, cut to [`MAX_RATIONALE_CHARS`] characters ("" when missing).
    pub rationale: String,
    /// All three keys were present in a JSON object.
    pub parse_success: bool,
}

impl ParsedLabels {
    /// The five label values, indexed by [`Label`](crate::moderation::Label) (`flags[Label::Ads]`).
    pub fn flags(&self) -> PerLabel<bool> {
        PerLabel([self.is_relevant, self.ads, self.irrelevant, self.non_visit, self.spam])
    }
}

/// The JSON candidate the seed would parse: the outermost braces inside a ```` ```json ```` fenced block
/// (an unclosed fence runs to the end), else the outermost braces of the whole text. When the fenced
/// candidate is not a JSON object with any of the answer's keys (e.g. a fence written inside the
/// rationale) the whole text's braces are tried too. `None` when there is no `{ ... }` pair.
pub fn extract_json(raw: &str) -> Option<&str> {
    let whole = outermost_braces(raw);
    let Some(start) = raw.find("```json") else { return whole };
    let after = &raw[start + "```json".len()..];
    let body = match after.find("```") {
        Some(end) => &after[..end],
        None => after,
    };
    match outermost_braces(body) {
        Some(fenced) if is_answer_object(fenced) => Some(fenced),
        Some(fenced) => whole.filter(|w| is_answer_object(w)).or(Some(fenced)),
        None => whole,
    }
}

/// A JSON object with at least one of the answer's keys.
fn is_answer_object(s: &str) -> bool {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(o)) => ["is_relevant", "violations", "rationale"].iter().any(|k| o.contains_key(*k)),
        _ => false,
    }
}

fn outermost_braces(s: &str) -> Option<&str> {
    let open = s.find('{')?;
    let close = s.rfind('}')?;
    (close > open).then(|| &s[open..=close])
}

/// Normalised violation name (upper case, spaces to underscores), if it is one of [`VIOLATIONS`].
pub fn normalize_violation(name: &str) -> Option<&'static str> {
    let norm: String = name.trim().to_uppercase().replace(' ', "_");
    VIOLATIONS.iter().copied().find(|v| *v == norm)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1"),
        _ => false,
    }
}

/// Parses a raw model answer with the seed's semantics. Total: any input gives a value, never a panic.
pub fn parse_output(raw: &str) -> ParsedLabels {
    let mut out = ParsedLabels::default();
    let parsed = extract_json(raw).and_then(|candidate| serde_json::from_str::<Value>(candidate).ok());
    let Some(Value::Object(obj)) = parsed else { return out };
    if let Some(v) = obj.get("is_relevant") {
        out.is_relevant = truthy(v);
    }
    let names: Vec<&'static str> = match obj.get("violations") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .flat_map(|s| s.split(','))
            .filter_map(normalize_violation)
            .collect(),
        Some(Value::String(s)) => s.split(',').filter_map(normalize_violation).collect(),
        _ => Vec::new(),
    };
    out.ads = names.contains(&"ADS");
    out.irrelevant = names.contains(&"IRRELEVANT");
    out.non_visit = names.contains(&"NON_VISIT_RANT");
    out.spam = names.contains(&"SPAM");
    if let Some(r) = obj.get("rationale") {
        let text = match r {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        out.rationale = text.chars().take(MAX_RATIONALE_CHARS).collect();
    }
    out.parse_success = ["is_relevant", "violations", "rationale"].iter().all(|k| obj.contains_key(*k));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_json() {
        let p = parse_output(r#"{"is_relevant": true, "violations": ["ADS"], "rationale": "promo code"}"#);
        assert!(p.parse_success && p.is_relevant && p.ads && !p.spam);
        assert_eq!(p.rationale, "promo code");
    }

    #[test]
    fn fenced_block_wins_over_other_braces() {
        let raw = "Sure! {not json}\n```json\n{\"is_relevant\": false, \"violations\": [\"spam\"], \"rationale\": \"x\"}\n```\nbye {}";
        let p = parse_output(raw);
        assert!(p.parse_success && p.spam && !p.is_relevant);
    }

    #[test]
    fn normalises_and_drops_unknown() {
        let p = parse_output(r#"{"is_relevant":1,"violations":["non visit rant"," irrelevant ","HATE"],"rationale":"r"}"#);
        assert!(p.parse_success && p.is_relevant && p.non_visit && p.irrelevant && !p.ads && !p.spam);
        let s = parse_output(r#"{"is_relevant":false,"violations":"ADS, SPAM","rationale":"r"}"#);
        assert!(s.ads && s.spam && s.parse_success);
    }

    #[test]
    fn missing_key_is_failure_but_keeps_values() {
        let p = parse_output(r#"{"is_relevant": true, "violations": ["ADS"]}"#);
        assert!(!p.parse_success && p.is_relevant && p.ads);
        assert!(!parse_output("no json here").parse_success);
        assert!(!parse_output("{\"is_relevant\": true, \"violations\": [], \"rationale\": \"cut").parse_success);
        assert!(!parse_output("}{").parse_success);
        assert!(!parse_output("[1,2]").parse_success);
    }

    #[test]
    fn rationale_is_cut() {
        let raw = format!(r#"{{"is_relevant":true,"violations":[],"rationale":"{}"}}"#, "é".repeat(500));
        assert_eq!(parse_output(&raw).rationale.chars().count(), MAX_RATIONALE_CHARS);
    }
}
