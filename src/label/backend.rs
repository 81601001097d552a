//! One interface for every way of producing a raw moderation answer: the local Gemma model, an
//! OpenAI-compatible server, or the rules-only labeler.
//!
//! A backend only answers; the guard runs before it and the parser after it (see [`super::Labeler`]), so
//! every backend's output goes through the same seed semantics and lands in the same columns.

use super::{ModeratorPrompt, ReviewInput};
use crate::moderation::PerLabel;

/// What a backend returns for one review.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawOutput {
    /// The model's (or the rules') answer text, stored as `gemma_raw`.
    pub raw: String,
    /// Per-label probabilities, when the backend can tell them (the local model with constrained
    /// decoding); `None` otherwise.
    pub probs: Option<PerLabel<f32>>,
}

/// A producer of raw moderation answers.
pub trait LabelBackend: Send {
    /// Short backend name written to the `backend` column ("local-gemma", "openai", "rules-only").
    fn backend_name(&self) -> String;
    /// Model identity written to the `model` column (file name, server model name, rules version).
    fn model_id(&self) -> String;
    /// Settings that change answers (e.g. constrained decoding on/off); part of the checkpoint fingerprint.
    fn settings(&self) -> String {
        String::new()
    }
    /// How many reviews the labeler should hand over per call (a concurrent client wants several).
    fn preferred_batch(&self) -> usize {
        1
    }
    /// Warnings since the last call (a server that refused an answer format, ...), for the caller to show:
    /// the library never prints them.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Answers for `reviews`, one result per review in the same order. An `Err` is recorded as a failed
    /// parse with the error text in `gemma_raw`; it never aborts the other reviews.
    fn answer(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Vec<anyhow::Result<RawOutput>>;
}

impl<B: LabelBackend + ?Sized> LabelBackend for Box<B> {
    fn backend_name(&self) -> String {
        (**self).backend_name()
    }
    fn model_id(&self) -> String {
        (**self).model_id()
    }
    fn settings(&self) -> String {
        (**self).settings()
    }
    fn preferred_batch(&self) -> usize {
        (**self).preferred_batch()
    }
    fn take_warnings(&mut self) -> Vec<String> {
        (**self).take_warnings()
    }
    fn answer(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Vec<anyhow::Result<RawOutput>> {
        (**self).answer(prompt, reviews)
    }
}
