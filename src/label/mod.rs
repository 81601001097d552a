//! Steps 6-8: labeling reviews with a strict moderator prompt (seed cells 6, 7 and 8).
//!
//! The pipeline for one review is guard -> backend -> parser:
//! - [`guard`]: the seed's `clean_review` and `cheap_low_quality`; a stopped review is SPAM, no model call.
//! - a [`LabelBackend`]: the local Gemma model ([`local`], constrained JSON decoding, per-label
//!   probabilities, a KV-cached system prompt), any OpenAI-compatible server ([`openai`]), or the
//!   rules-only labeler ([`rules`]).
//! - [`parser`]: the seed's parsing of the raw answer into the label columns.
//!
//! [`label_preview`] (cell 7) labels a seeded sample and returns a table; [`label_with_ckpt`] (cell 8)
//! labels a larger sample in parts that survive a crash at any instant ([`ckpt`]).
//!
//! In a notebook:
//! ```text
//! let mut labeler = Labeler::local(None)?;          // or Labeler::rules(), Labeler::openai(url, model)?
//! labeler.prompt.system.push_str("\nBe strict about phone numbers.");   // the prompt is a value
//! let preview = label_preview(&df, 20, &mut labeler)?;                    // cell 7: a table
//! let run = label_with_ckpt(&df, 1000, 50, "out/labels_ckpt_1k", &mut labeler, &CkptOptions::default())?;
//! println!("{run}");                                                       // cell 8: counts per label
//! ```

pub mod backend;
pub mod ckpt;
pub mod constrained;
pub mod eval;
pub mod fewshot;
pub mod frame;
pub mod guard;
pub mod local;
pub mod openai;
pub mod parser;
pub mod probe;
pub mod prompt;
pub mod rules;
pub mod tls;

use anyhow::Result;
use polars::prelude::DataFrame;

use crate::progress::{Progress, Unit};

pub use backend::{LabelBackend, RawOutput};
pub use ckpt::{label_with_ckpt, CkptOptions, CkptRun};
pub use frame::{reviews_from_df, sample_indices, LabelSummary, DEFAULT_SEED};
pub use parser::{parse_output, ParsedLabels};
pub use prompt::ModeratorPrompt;
pub use rules::RulesBackend;

/// What the labeler needs from one review: its text and its place's name and category.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ReviewInput {
    /// Review text as written (null texts become "").
    pub text: String,
    /// Name of the place ("" when unknown).
    pub business_name: String,
    /// Categories of the place joined with ", " ("" when unknown).
    pub category: String,
}

/// The labels of one review plus where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelRecord {
    /// Parsed labels (for guarded reviews: spam, not relevant, the guard's rationale, parse_success 1).
    pub labels: ParsedLabels,
    /// Raw answer (`gemma_raw`): the backend's text, the guard marker, or `<error: ...>`.
    pub raw: String,
    /// Per-label probabilities when the backend gives them.
    pub probs: Option<crate::moderation::PerLabel<f32>>,
    /// The guard stopped this review (no backend call).
    pub guarded: bool,
    /// The backend failed on this review (the error text is in `raw`).
    pub failed: bool,
}

/// Prompt + backend: labels reviews with the guard -> backend -> parser pipeline.
pub struct Labeler {
    /// The moderator prompt (a value: edit it in a cell, the fingerprint follows).
    pub prompt: ModeratorPrompt,
    /// Where raw answers come from.
    pub backend: Box<dyn LabelBackend>,
}

impl Labeler {
    /// A labeler with the default prompt.
    pub fn new(backend: Box<dyn LabelBackend>) -> Self {
        Self { prompt: ModeratorPrompt::default(), backend }
    }

    /// The rules-only labeler with the default prompt (no model needed).
    pub fn rules() -> Self {
        Self::new(Box::new(RulesBackend::new()))
    }

    /// The local Gemma-3 backend (`spec` as `llm::load_gemma`; None: the embedded 270M) with constrained
    /// decoding and the prefix KV cache.
    pub fn local(spec: Option<&str>) -> Result<Self> {
        Ok(Self::new(Box::new(local::LocalGemmaBackend::load(spec, local::LocalParams::default())?)))
    }

    /// An OpenAI-compatible server at `base_url` (up to `/v1`) serving `model`, with default client settings.
    pub fn openai(base_url: &str, model: &str) -> Result<Self> {
        Ok(Self::new(Box::new(openai::OpenAiBackend::new(openai::OpenAiParams::new(base_url, model))?)))
    }

    /// Identity of everything that decides the answers except the prompt: backend, model, settings.
    pub fn labeler_id(&self) -> String {
        format!("{}|{}|{}", self.backend.backend_name(), self.backend.model_id(), self.backend.settings())
    }

    /// Labels `reviews` in order; one record per review. Never fails: a backend error becomes a record
    /// with `failed` set and parse_success 0.
    pub fn label(&mut self, reviews: &[ReviewInput]) -> Vec<LabelRecord> {
        let mut out: Vec<Option<LabelRecord>> = vec![None; reviews.len()];
        let mut todo_idx = Vec::new();
        let mut todo = Vec::new();
        for (i, r) in reviews.iter().enumerate() {
            let cleaned = guard::clean_review(&r.text);
            if guard::cheap_low_quality(&cleaned) {
                out[i] = Some(guarded_record());
            } else {
                todo_idx.push(i);
                todo.push(ReviewInput { text: cleaned, ..r.clone() });
            }
        }
        if !todo.is_empty() {
            let answers = self.backend.answer(&self.prompt, &todo);
            for (k, i) in todo_idx.into_iter().enumerate() {
                let rec = match answers.get(k) {
                    Some(Ok(a)) => LabelRecord {
                        labels: parse_output(&a.raw),
                        raw: a.raw.clone(),
                        probs: a.probs,
                        guarded: false,
                        failed: false,
                    },
                    Some(Err(e)) => failed_record(format!("{e:#}")),
                    None => failed_record("backend returned fewer answers than reviews".into()),
                };
                out[i] = Some(rec);
            }
        }
        out.into_iter().map(|r| r.expect("every review gets a record")).collect()
    }
}

fn guarded_record() -> LabelRecord {
    LabelRecord {
        labels: ParsedLabels {
            is_relevant: false,
            spam: true,
            rationale: guard::GUARD_RATIONALE.to_string(),
            parse_success: true,
            ..Default::default()
        },
        raw: guard::GUARD_RAW.to_string(),
        probs: None,
        guarded: true,
        failed: false,
    }
}

fn failed_record(msg: String) -> LabelRecord {
    LabelRecord { labels: ParsedLabels::default(), raw: format!("<error: {msg}>"), probs: None, guarded: false, failed: true }
}

/// What [`label_preview`] returns: the labeled rows and the warnings the caller shows (a missing
/// `business_name` or `category` column, replaced by ""). Derefs to the table, so `preview.height()`,
/// `preview.column(..)` work as on a DataFrame; a notebook cell shows the warnings above the table.
#[derive(Clone, Debug)]
pub struct Preview {
    /// `orig_index`, text, business_name, category, the label columns, rationale, gemma_raw, parse_success,
    /// backend, model, guarded, llm_p_*.
    pub table: DataFrame,
    /// What was filled in or skipped on the way, one sentence each.
    pub warnings: Vec<String>,
}

impl std::ops::Deref for Preview {
    type Target = DataFrame;
    fn deref(&self) -> &DataFrame {
        &self.table
    }
}

impl Preview {
    /// The warnings (if any) and the first rows, as one display.
    pub fn show(&self) -> crate::show::Many {
        use crate::show::DataFrameShow;
        let mut m = crate::show::Many::new();
        for w in &self.warnings {
            m.push(&crate::show::Text(format!("warning: {w}")));
        }
        m.with(&self.table.table(crate::show::DEFAULT_ROWS))
    }

    /// Shows [`Preview::show`] in an evcxr cell.
    pub fn evcxr_display(&self) {
        self.show().evcxr_display();
    }
}

/// Cell 7: labels a seeded sample of `n` rows of `df` (seed [`DEFAULT_SEED`]) and returns them as a table
/// with the warnings the caller shows ([`Preview`]). Needs a `text` column; business_name and category
/// fall back to "" with a warning.
///
/// ```
/// use revmod::prelude::*;
/// # let dir = std::env::temp_dir().join(format!("revmod-doc-preview-{}", std::process::id()));
/// # let data = revmod::data::write_sample(dir.join("data"), &SampleParams { reviews: 800, ..Default::default() })?;
/// # let df = load_df(&data.review_path, &data.meta_path)?.df;
/// let preview: Preview = label_preview(&df, 20, &mut Labeler::rules())?; // or Labeler::local(None)?
/// assert_eq!(preview.height(), 20);
/// assert!(preview.column("is_relevant_overall").is_ok() && preview.warnings.is_empty());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn label_preview(df: &DataFrame, n: usize, labeler: &mut Labeler) -> Result<Preview> {
    label_preview_seeded(df, n, DEFAULT_SEED, labeler)
}

/// [`label_preview`] with an explicit sampling seed.
pub fn label_preview_seeded(df: &DataFrame, n: usize, seed: u64, labeler: &mut Labeler) -> Result<Preview> {
    let (all, mut warnings) = reviews_from_df(df)?;
    let idx = sample_indices(all.len(), n, seed);
    let reviews: Vec<ReviewInput> = idx.iter().map(|&i| all[i].clone()).collect();
    let mut progress = Progress::new("label_preview", Unit::Reviews, Some(reviews.len() as u64), 0);
    let mut records = Vec::with_capacity(reviews.len());
    let step = labeler.backend.preferred_batch().max(1);
    let _interrupt = crate::interrupt::watch();
    for chunk in reviews.chunks(step) {
        if crate::interrupt::requested() {
            progress.finish();
            return Err(anyhow::Error::new(crate::interrupt::Interrupted {
                detail: format!("label_preview stopped after {} of {} reviews (label_with_ckpt keeps parts)", records.len(), reviews.len()),
            }));
        }
        records.extend(labeler.label(chunk));
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    warnings.extend(labeler.backend.take_warnings());
    let orig: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
    let table = frame::records_to_frame(&orig, &reviews, &records, &labeler.backend.backend_name(), &labeler.backend.model_id())?;
    Ok(Preview { table, warnings })
}
