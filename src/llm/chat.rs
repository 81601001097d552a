//! The Gemma-3-it chat template.
//!
//! `<bos><start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n`: Gemma has no system
//! role; the system prompt folds into the first user turn, as HF's template does.

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// "user" or "model" ("assistant" is written as "model").
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

/// The prompt for one user message with an optional system prompt, ending with the open model turn. The user
/// text is trimmed, as HF's template does (`| trim`).
pub fn chat_prompt(system: Option<&str>, user: &str) -> String {
    let user = user.trim();
    let first = match system {
        Some(s) if !s.is_empty() => format!("{s}\n\n{user}"),
        _ => user.to_string(),
    };
    format!("<bos><start_of_turn>user\n{first}<end_of_turn>\n<start_of_turn>model\n")
}

/// The shared beginning of every `chat_prompt(Some(system), _)`: everything before the user text. Its KV cache
/// can be computed once and reused for every review (see `Gemma::prefix`).
pub fn chat_prefix(system: &str) -> String {
    format!("<bos><start_of_turn>user\n{system}\n\n")
}

/// The part of `chat_prompt(Some(system), user)` after `chat_prefix(system)`.
pub fn chat_suffix(user: &str) -> String {
    let user = user.trim();
    format!("{user}<end_of_turn>\n<start_of_turn>model\n")
}

/// A multi-turn conversation (system prompt folded into the first user turn), ending with the open model turn.
pub fn chat_conversation(system: Option<&str>, turns: &[Turn]) -> String {
    let mut out = String::from("<bos>");
    for (i, t) in turns.iter().enumerate() {
        let role = if t.role == "assistant" { "model" } else { t.role.as_str() };
        let content = match (i, system) {
            (0, Some(s)) if !s.is_empty() => format!("{s}\n\n{}", t.content),
            _ => t.content.clone(),
        };
        out.push_str(&format!("<start_of_turn>{role}\n{}<end_of_turn>\n", content.trim()));
    }
    out.push_str("<start_of_turn>model\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_folds_into_first_user_turn() {
        assert_eq!(
            chat_prompt(Some("SYS"), "hi"),
            "<bos><start_of_turn>user\nSYS\n\nhi<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(chat_prompt(None, "hi"), "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");
        assert_eq!(format!("{}{}", chat_prefix("SYS"), chat_suffix("hi")), chat_prompt(Some("SYS"), "hi"));
        let conv = chat_conversation(Some("SYS"), &[Turn { role: "user".into(), content: "hi".into() }]);
        assert_eq!(conv, chat_prompt(Some("SYS"), "hi"));
    }
}
