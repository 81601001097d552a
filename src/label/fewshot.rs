//! Few-shot labeling for pretrained *base* models (the embedded Gemma-3 270M): the model continues a page of
//! moderated reviews, and each label is read from the log-likelihood of its answer word, not from generated JSON.
//!
//! A base model does not follow a system prompt (it has no chat template); it continues text. So the prompt is a
//! page this project wrote: a one-line header, then [`EXAMPLES`] (short reviews invented for this purpose, not
//! taken from any data set), each followed by five question lines answered `yes` or `no`:
//!
//! ```text
//! Place: Rosa's Taqueria (Mexican restaurant)
//! Review: The carne asada tacos were juicy and the salsa bar is great.
//! About this place: yes
//! Something else: no
//! Advertisement: no
//! Never visited: no
//! Spam: no
//! ```
//!
//! For a new review the page (the shared prefix, its KV cache computed once) is followed by the review's own
//! `Place:`/`Review:` lines and `About this place:`; the score of a label is the log-odds
//! `logit(" yes") - logit(" no")` of the next token. The model's more likely answer is then fed with the next
//! question, so the five questions cost one prefill of the review plus four forwards of ~5 tokens
//! ([`score_review`]). Every piece is tokenized on its own, in the prefix as at scoring time, so the token
//! boundaries the model sees in the examples are the ones it sees for the review.
//!
//! Turning scores into labels ([`Calibration::combine_with_probe`], the one documented combination): the
//! model's logit for label k comes from a small logistic layer over all five answers, `bias_k + weights_k .
//! log_odds`, plus, for irrelevant and non_visit, the hidden-state probe's logit
//! (`probe_weight_k * z_k + probe_bias_k`, [`super::probe`]: a logistic layer over the mean hidden state of
//! layer 11 while the review was fed, fitted on reviews the project wrote), and `p_model = sigmoid(logit)`;
//! the keyword rules ([`super::rules`]) are a second, independent detector with a fixed probability `p_rule`
//! when they fire for the label ([`RULE_PROBS`]); the two are joined as a noisy-OR,
//! `p = 1 - (1 - p_model) (1 - p_rule * rule_hit)`, and a label is flagged when `p >= 0.5`: a rule hit
//! flags by itself, and the rule probability says how much a hit adds to the model's doubt in `p`. The
//! answer weights and biases are fitted ([`fit_calibration`], `revmod label-calibrate`) on reviews the
//! project generates (the sample generator's truth file: it knows each review's kind), without the rules.
//!
//! Relevant ([`relevance_kept`]) is `p_relevant >= 0.5` unless something outweighs it. Off-topic text and
//! junk always do: they are the negation of relevance (the seed's definition). An ad the keyword rules find
//! (a URL, a phone number, a code) always does: the seed's prompt let an ad stay relevant, both
//! human-labeled development sets say it is not. The model's own ads and never-visited answers (its
//! calibrated probability, answers plus probe, without the rules) remove relevance only when they are at
//! least as probable as its relevance answer: the two are different questions about the same text, so a
//! review the model reads far more surely as "about this place" than as an ad or as a remark without a
//! visit stays relevant, and one it reads more surely as never visited does not (a remark without a visit
//! describes no experience at the place; gold-dev files such remarks as not relevant). The rules'
//! never-visited phrases ("I heard", "haven't been") do not remove relevance by themselves: on the Utah
//! hand labels all six of their hits were inside real visit stories ("I was excited when I heard this
//! place was opening. I went in ..."). The flags of ads and non_visit themselves are unchanged by this.

use anyhow::{ensure, Result};

use super::constrained::{BatchStepModel, StepModel};
use super::prompt::prepare_text;
use super::rules::RulesVerdict;
use super::ReviewInput;
use crate::llm::tokenizer::Tokenizer;
use crate::moderation::{Label, PerLabel};

/// Version of the few-shot page, calibration and combination (part of the labeler's settings, so checkpoints
/// notice a change). v3: relevance weighs the model's ads and never-visited answers ([`relevance_kept`]).
pub const FEWSHOT_VERSION: &str = "fewshot-v3";

/// Review text handed to the few-shot scorer is cut to this many characters (the seed cut at 1000 for a 12B
/// model; the verdict of a review is in its first lines, and prefill is the scorer's whole cost).
pub const FEWSHOT_MAX_CHARS: usize = 400;

/// The question lines, in the order they are asked, with the label each one answers.
///
/// The order matters to a 270M model: the first questions after the review read it best (the log-odds of
/// later ones lean on the earlier answers). On a 70-review development subset, "About this place" first and
/// "Something else" second separated relevant (AUC 0.95) and irrelevant (0.77) reviews best, where
/// "Advertisement" first separated ads best (0.91) but irrelevant not at all (0.49); the keyword rules
/// catch most ads (URLs, phone numbers, codes), nothing catches off-topic text, so relevance comes first.
pub const QUESTIONS: [(&str, Label); 5] = [
    ("About this place", Label::Relevant),
    ("Something else", Label::Irrelevant),
    ("Advertisement", Label::Ads),
    ("Never visited", Label::NonVisit),
    ("Spam", Label::Spam),
];

/// First line of the page.
pub const HEADER: &str = "Google Maps reviews checked by a moderator.\n\n";

/// One example review of the page: place, text and its answer per label.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// Name of the place.
    pub name: &'static str,
    /// Category of the place.
    pub category: &'static str,
    /// Review text.
    pub text: &'static str,
    /// The answer of each label's question (`answers[Label::Ads]`: "Advertisement: yes").
    pub answers: PerLabel<bool>,
}

/// An example from its answers written as 0/1 in the order advertisement, off-topic, never visited, spam,
/// about this place (the order of the table below).
const fn ex(name: &'static str, category: &'static str, text: &'static str, a: [u8; 5]) -> Example {
    // PerLabel holds relevant, ads, irrelevant, non_visit, spam (Label::ALL order)
    Example { name, category, text, answers: PerLabel([a[4] == 1, a[0] == 1, a[1] == 1, a[2] == 1, a[3] == 1]) }
}

/// The project's example reviews (written for this page; none is copied from a data set). Answers are
/// advertisement, off-topic, never visited, spam, about this place (not the order they are asked in).
pub const EXAMPLES: &[Example] = &[
    ex("Rosa's Taqueria", "Mexican restaurant", "The carne asada tacos were juicy and the salsa bar is great. Staff were quick even at the lunch rush.", [0, 0, 0, 0, 1]),
    ex("Fade Kings", "Barber shop", "Best fades in the city! Book online at www.fadekingscuts.com and get 20% off your first cut with code FRESH20.", [1, 0, 0, 0, 0]),
    ex("Harbor Grill", "Seafood restaurant", "Waited 40 minutes for a table and the chowder was cold. Our server never came back to check on us.", [0, 0, 0, 0, 1]),
    ex("Pine Valley Park", "Park", "Does anybody know if the city is doing fireworks this year? Trying to plan our weekend.", [0, 1, 0, 0, 0]),
    ex("Summit Dental", "Dentist", "Never been inside but my neighbor says they overcharge everyone. Not going to bother with them.", [0, 0, 1, 0, 0]),
    ex("Lakeside Inn", "Hotel", "Room was spotless and the bed was comfy. Front desk let us check in early after a long drive.", [0, 0, 0, 0, 1]),
    ex("Blue Door Cafe", "Coffee shop", "Looking for a roofer you can trust? Call Dave's Roofing at 801-555-0142 for a free estimate today!", [1, 1, 0, 0, 0]),
    ex("Quick Lube", "Oil change service", "sdfkj weoiru xcvb lkjh qwop zzxm", [0, 0, 0, 1, 0]),
    ex("Tony's Tire", "Tire shop", "They found the nail in my tire in ten minutes and did not even charge me. Honest shop.", [0, 0, 0, 0, 1]),
    ex("Maple Street Market", "Grocery store", "My daughter graduated from high school today, so proud of her!", [0, 1, 0, 0, 0]),
    ex("City Cable", "Internet service provider", "Called twice about their prices and nobody picked up. I will not even try them.", [0, 0, 1, 0, 0]),
    ex("Bluebird Bakery", "Bakery", "We are hiring! Follow us on Instagram @bluebirdbakes for weekly deals and free cookie Fridays.", [1, 0, 0, 0, 0]),
    ex("Corner Pharmacy", "Pharmacy", "Pharmacist took time to explain my new prescription. Line was long but it moved.", [0, 0, 0, 0, 1]),
    ex("Shell", "Gas station", "This review is for the car wash down the road, not this place. Their dryers do not work.", [0, 1, 0, 0, 0]),
    ex("Red Rock Trail", "Hiking area", "Beautiful hike to the falls but the parking lot is full by 9 am, so go early.", [0, 0, 0, 0, 1]),
    ex("Golden Wok", "Chinese restaurant", "Made $5000 last week from home with this crypto trick, message me on WhatsApp +1 385 555 0199", [1, 1, 0, 0, 0]),
    ex("Sunrise Motel", "Motel", "Drove by and it looks run down. I heard the rooms have bugs. Would never stay there.", [0, 0, 1, 0, 0]),
    ex("Elm Street Salon", "Hair salon", "good good good good good nice nice nice nice", [0, 0, 0, 1, 0]),
    ex("Pizza Palace", "Pizza restaurant", "Crust was soggy and they forgot our wings, but the manager fixed it right away.", [0, 0, 0, 0, 1]),
    ex("Valley Auto", "Auto repair shop", "Politicians keep raising taxes and nobody does anything about the potholes in this state.", [0, 1, 0, 0, 0]),
    ex("Green Leaf Spa", "Day spa", "Massage was relaxing and the therapist listened to what I needed. Pricey but worth it.", [0, 0, 0, 0, 1]),
];

impl Example {
    /// The answer of `label`'s question.
    pub fn answer(&self, label: Label) -> bool {
        self.answers[label]
    }
}

/// The review's own lines: `Place: NAME (CATEGORY)` and `Review: TEXT`, each ending in a newline. The text is
/// prepared as for the instruction prompt (ASCII, folded whitespace, cut to `max_chars`).
pub fn review_block(name: &str, category: &str, text: &str, max_chars: usize) -> String {
    let name = prepare_text(name, 120);
    // the first category only; a Python list written as text ("['Bar', 'Cafe']") counts as a list
    let first = category.split(',').next().unwrap_or("").trim_matches(|c: char| c == '[' || c == ']' || c == '\'' || c == '"' || c.is_whitespace());
    let category = prepare_text(first, 80);
    let text = prepare_text(text, max_chars);
    let place = match (name.is_empty(), category.is_empty()) {
        (false, false) => format!("{name} ({category})"),
        (false, true) => name,
        (true, false) => format!("a {category}"),
        (true, true) => "unknown".to_string(),
    };
    format!("Place: {place}\nReview: {text}\n")
}

/// Token pieces the scorer feeds, tokenized once per model.
#[derive(Clone, Debug)]
pub struct FewShotTokens {
    /// The whole page (with `<bos>`): header and every example with its answers.
    pub prefix: Vec<u32>,
    /// `About this place:` (the first question, fed after the review block).
    pub first_question: Vec<u32>,
    /// After question q (0-based): the answer and the next question, `" no\nSomething else:"` /
    /// `" yes\nSomething else:"`, ..., the last one `" no\n\n"` (index: `[q][yes as usize]`).
    pub next_question: Vec<[Vec<u32>; 2]>,
    /// The answer tokens read: `" yes"` and `" no"`.
    pub yes: u32,
    /// See `yes`.
    pub no: u32,
}

impl FewShotTokens {
    /// Tokenizes the page for `tok`. Errors if `" yes"` or `" no"` is not a single token.
    pub fn new(tok: &Tokenizer, max_chars: usize) -> Result<Self> {
        let enc = |s: &str| tok.encode_with(s, false, false);
        let single = |s: &str| -> Result<u32> {
            let ids = enc(s);
            ensure!(ids.len() == 1, "the answer {s:?} is {} tokens for this tokenizer; few-shot scoring needs one", ids.len());
            Ok(ids[0])
        };
        let yes = single(" yes")?;
        let no = single(" no")?;
        let first_question = enc(&format!("{}:", QUESTIONS[0].0));
        let next_question: Vec<[Vec<u32>; 2]> = (1..=QUESTIONS.len())
            .map(|q| {
                let next = if q < QUESTIONS.len() { format!("\n{}:", QUESTIONS[q].0) } else { "\n\n".to_string() };
                [enc(&format!(" no{next}")), enc(&format!(" yes{next}"))]
            })
            .collect();
        let mut prefix = tok.encode_with("", true, false);
        prefix.extend(enc(HEADER));
        for e in EXAMPLES {
            prefix.extend(enc(&review_block(e.name, e.category, e.text, max_chars)));
            prefix.extend(&first_question);
            for (q, &(_, label)) in QUESTIONS.iter().enumerate() {
                prefix.extend(&next_question[q][usize::from(e.answer(label))]);
            }
        }
        Ok(Self { prefix, first_question, next_question, yes, no })
    }
}

/// Scores one review whose block tokens are `review`, with the model's context already at the end of the page
/// (`tokens.prefix`). Returns the five log-odds (one per label) and the number of tokens fed.
pub fn score_review(model: &mut dyn StepModel, tokens: &FewShotTokens, review: &[u32]) -> Result<(PerLabel<f32>, usize)> {
    let mut feed: Vec<u32> = review.to_vec();
    feed.extend(&tokens.first_question);
    let mut out = PerLabel::<f32>::default();
    let mut fed = 0;
    for (q, &(_, label)) in QUESTIONS.iter().enumerate() {
        let logits = model.feed(&feed)?;
        fed += feed.len();
        let lo = logits[tokens.yes as usize] - logits[tokens.no as usize];
        out[label] = lo;
        if q + 1 < QUESTIONS.len() {
            feed = tokens.next_question[q][usize::from(lo > 0.0)].clone();
        }
    }
    Ok((out, fed))
}

/// [`score_review`] for several reviews at once: sequence `i` of `model` (each at the end of the page) scores
/// `reviews[i]`, and each question is one batched feed of every review's next piece, so the weights are read
/// once per question for all of them. Per review the model is fed exactly what [`score_review`] feeds; with a
/// batched forward that is exact per sequence (`Gemma3Model::forward_batch`) the log-odds are the same.
pub fn score_reviews(model: &mut dyn BatchStepModel, tokens: &FewShotTokens, reviews: &[Vec<u32>]) -> Result<Vec<(PerLabel<f32>, usize)>> {
    let mut feeds: Vec<Vec<u32>> = reviews
        .iter()
        .map(|r| {
            let mut f = r.clone();
            f.extend(&tokens.first_question);
            f
        })
        .collect();
    let mut out = vec![(PerLabel::<f32>::default(), 0usize); reviews.len()];
    for (q, &(_, label)) in QUESTIONS.iter().enumerate() {
        let logits = model.feed_batch(&feeds)?;
        for (i, l) in logits.iter().enumerate() {
            let lo = l[tokens.yes as usize] - l[tokens.no as usize];
            out[i].0[label] = lo;
            out[i].1 += feeds[i].len();
            if q + 1 < QUESTIONS.len() {
                feeds[i] = tokens.next_question[q][usize::from(lo > 0.0)].clone();
            }
        }
    }
    Ok(out)
}

/// Logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// How log-odds and rule hits become probabilities (see the module doc), per label k:
/// `p_model_k = sigmoid(bias_k + sum_j weights_k[j] * log_odds_j)`, a small logistic layer over all five
/// answers (the relevance answer helps tell off-topic text, for instance), joined with the rules by noisy-OR.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Weights of the five log-odds in each label's logit (`weights[k][j]`: of label j's answer in label k's logit).
    pub weights: PerLabel<PerLabel<f32>>,
    /// Intercept of each label's logit (it places the label's decision threshold at p = 0.5).
    pub bias: PerLabel<f32>,
    /// Probability that a review is positive when the keyword rules fire for the label (0 for relevant). Fixed.
    pub rule_prob: PerLabel<f32>,
    /// Weight of the hidden-state probe's logit in each label's logit (0: the probe is not used for the label).
    pub probe_weight: PerLabel<f32>,
    /// Added with the probe's term: moves the probe's class-balanced logit to the label's real rate.
    pub probe_bias: PerLabel<f32>,
}

/// Rule probabilities: a hit of any rule flags on its own (p >= 0.5 whatever the model says). The ads patterns
/// (a URL, a phone number, a code) are rarely wrong (0.9); the non-visit and junk patterns less so (0.7); the
/// off-topic keywords are the weakest (0.5): they fired on 1 of 700 real reviews of the development sets, so
/// on real text the model's layer decides off-topic almost alone.
pub const RULE_PROBS: PerLabel<f32> = PerLabel([0.0, 0.9, 0.5, 0.7, 0.7]);

/// Default weight of the probe's logit per label (see [`Calibration::probe_weight`]): irrelevant and
/// non_visit take the probe's logit as it is, added to the answers' calibrated logit (the probe is fitted
/// class-balanced, so its logit is evidence on top of the prior the answers' intercept carries); relevant,
/// ads and spam are left to the answers and the rules (relevant still drops every review flagged off-topic).
/// Chosen on gold-dev's tuning part and the Utah hand labels (README, "How good are the labels"): weight 1
/// and no shift did as well as the tried alternatives (0.5, shifts -1 and -2); the probe's relevant head
/// helped gold-dev (F1 0.897 against 0.885) but cost Utah more (0.861 against 0.891), so it is not used.
pub const PROBE_WEIGHT: PerLabel<f32> = PerLabel([0.0, 0.0, 1.0, 1.0, 0.0]);
/// Default shift of the probe's term per label (see [`Calibration::probe_bias`]): none.
pub const PROBE_BIAS: PerLabel<f32> = PerLabel([0.0, 0.0, 0.0, 0.0, 0.0]);

impl Calibration {
    /// The identity layer: each label's own log-odds, threshold 0, the default rule weights.
    pub fn identity() -> Self {
        let weights = PerLabel::from_fn(|k| PerLabel::from_fn(|j| if j == k { 1.0 } else { 0.0 }));
        let zero = PerLabel([0.0; 5]);
        Self { weights, bias: zero, rule_prob: RULE_PROBS, probe_weight: zero, probe_bias: zero }
    }

    /// The logit of label `k` without the rule term.
    pub fn model_logit(&self, k: Label, log_odds: &PerLabel<f32>) -> f32 {
        self.bias[k] + self.weights[k].iter().zip(log_odds.iter()).map(|(w, x)| w * x).sum::<f32>()
    }
}

impl Default for Calibration {
    /// The layer fitted for the embedded 270M on the sample generator's reviews (a balanced set of 97 distinct
    /// texts from the default sample's truth file, 79 past the guard), the intercepts moved to the whole
    /// sample's label rates:
    /// `revmod sample-data --out S; revmod label-calibrate --gold SUBSET.csv --rates-from S/truth-Vermont.csv`.
    fn default() -> Self {
        Self {
            weights: PerLabel([
                PerLabel([2.54, 0.3925, -0.7557, -0.1814, -0.9111]),
                PerLabel([-1.636, 1.432, -1.6, -0.04593, -0.1739]),
                PerLabel([-0.2504, 0.074, 1.138, -0.03669, 0.4124]),
                PerLabel([-1.459, -1.496, -0.2404, 1.46, 0.6867]),
                PerLabel([-0.2357, -0.3177, -0.02992, 0.2444, 0.723]),
            ]),
            bias: PerLabel([1.16, -1.124, 1.234, 0.5889, 2.647]),
            rule_prob: RULE_PROBS,
            probe_weight: PROBE_WEIGHT,
            probe_bias: PROBE_BIAS,
        }
    }
}

/// The labels of one review from the few-shot scorer.
#[derive(Clone, Debug, PartialEq)]
pub struct FewShotVerdict {
    /// Probability per label.
    pub probs: PerLabel<f32>,
    /// Flag per label (relevant already excludes what outweighs it, see [`relevance_kept`]).
    pub flags: PerLabel<bool>,
}

impl Calibration {
    /// Combines the model's log-odds with the rules' verdict (see the module doc), without a probe.
    pub fn combine(&self, log_odds: &PerLabel<f32>, rules: &RulesVerdict) -> FewShotVerdict {
        self.combine_with_probe(log_odds, &PerLabel([None; 5]), rules)
    }

    /// Combines the model's log-odds, the hidden-state probe's logits ([`super::probe`]; None where the
    /// probe has no head or no probe is loaded) and the rules' verdict: the probe's logit, scaled by
    /// [`Calibration::probe_weight`] and shifted by [`Calibration::probe_bias`], is added to the label's model
    /// logit before the noisy-OR with the rules (see the module doc).
    pub fn combine_with_probe(&self, log_odds: &PerLabel<f32>, probe: &PerLabel<Option<f32>>, rules: &RulesVerdict) -> FewShotVerdict {
        let hit = rule_hits(rules);
        let p_model = PerLabel::from_fn(|k| {
            let z = probe[k].map_or(0.0, |z| self.probe_weight[k] * z + self.probe_bias[k]);
            sigmoid(self.model_logit(k, log_odds) + z)
        });
        let probs = PerLabel::from_fn(|k| {
            let p_rule = if hit[k] { self.rule_prob[k] } else { 0.0 };
            1.0 - (1.0 - p_model[k]) * (1.0 - p_rule)
        });
        let mut flags = probs.map(|p| p >= 0.5);
        flags[Label::Relevant] = relevance_kept(&flags, &p_model, &hit);
        FewShotVerdict { probs, flags }
    }
}

/// The prompt's violation name of each label (relevant is not a violation: "").
const VIOLATION: PerLabel<&str> = PerLabel(["", "ADS", "IRRELEVANT", "NON_VISIT_RANT", "SPAM"]);

/// The rule hits of a verdict per label (relevant never has one).
pub fn rule_hits(rules: &RulesVerdict) -> PerLabel<bool> {
    PerLabel::from_fn(|l| l != Label::Relevant && rules.violations.contains(&VIOLATION[l]))
}

/// Whether a review stays relevant (see the module doc): `flags` are the labels' `p >= 0.5` flags (model
/// and rules joined), `p_model` the model's own probabilities (answers and probe, without the rules) and
/// `hit` the rules' hits. Relevant needs its own flag and no off-topic or junk flag; an ad removes it when
/// the rules found it or when the model's ads probability is at least its relevance probability; a
/// never-visited remark removes it when the model's probability for it is at least its relevance
/// probability (the rules' never-visited phrases alone do not).
///
/// Why the weighing: on the Utah hand labels the model's ads answer alone flagged six enthusiastic real
/// reviews (and none of the three real ads), each read as about the place with p >= 0.999; and gold-dev's
/// remarks without a visit ("No idea what this place even is.") were relevant before, because nothing
/// but the rules' phrases took relevance away for a missing visit. Measured (README, "How good are the
/// labels"): relevant F1 0.891 -> 0.910 on Utah, 0.885 -> 0.928 on gold-dev's tuning subset, ads and
/// irrelevant unchanged.
pub fn relevance_kept(flags: &PerLabel<bool>, p_model: &PerLabel<f32>, hit: &PerLabel<bool>) -> bool {
    use Label::*;
    let outweighs = |l: Label| p_model[l] >= p_model[Relevant];
    flags[Relevant]
        && !flags[Irrelevant]
        && !flags[Spam]
        && !(flags[Ads] && (hit[Ads] || outweighs(Ads)))
        && !(flags[NonVisit] && outweighs(NonVisit))
}

/// Fits the logistic layer on scored examples with known labels (the rule probabilities of `base` are kept, and the
/// rules are left out of the fit so the layer learns what the model alone tells). Per label, over the rows whose
/// truth is known: an L2-regularized logistic regression on the five log-odds (batch gradient descent), then
/// the intercept moved so that the decision `p >= 0.5` sits at the threshold that maximizes F1 on these rows.
/// A label without positives or negatives keeps `base`'s row. Returns the layer and each label's F1 on these
/// rows (model alone, None when not fitted).
pub fn fit_calibration(base: &Calibration, log_odds: &[PerLabel<f32>], truth: &[PerLabel<Option<bool>>]) -> (Calibration, PerLabel<Option<f64>>) {
    let mut c = base.clone();
    let mut f1s = PerLabel([None; 5]);
    for k in Label::ALL {
        let rows: Vec<(&PerLabel<f32>, bool)> = (0..log_odds.len()).filter_map(|i| truth[i][k].map(|t| (&log_odds[i], t))).collect();
        let pos = rows.iter().filter(|r| r.1).count();
        if pos == 0 || pos == rows.len() {
            continue;
        }
        let n = rows.len() as f64;
        let (mut w, mut b) = (PerLabel([0f64; 5]), 0f64);
        let (lr, l2) = (0.05, 1e-2);
        for _ in 0..2000 {
            let (mut gw, mut gb) = (PerLabel([0f64; 5]), 0f64);
            for &(x, t) in &rows {
                let z = b + Label::ALL.iter().map(|&j| w[j] * f64::from(x[j])).sum::<f64>();
                let err = 1.0 / (1.0 + (-z).exp()) - f64::from(u8::from(t));
                gb += err;
                for j in Label::ALL {
                    gw[j] += err * f64::from(x[j]);
                }
            }
            b -= lr * gb / n;
            for j in Label::ALL {
                w[j] -= lr * (gw[j] / n + l2 * w[j]);
            }
        }
        // the F1-best cut on the fitted scores
        let mut scored: Vec<(f64, bool)> = rows.iter().map(|&(x, t)| (Label::ALL.iter().map(|&j| w[j] * f64::from(x[j])).sum::<f64>(), t)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut tp, mut best, mut cut) = (0usize, 0.0f64, scored[0].0 + 1.0);
        for (i, &(z, t)) in scored.iter().enumerate() {
            tp += usize::from(t);
            let f1 = 2.0 * tp as f64 / (i + 1 + pos) as f64;
            let next = scored.get(i + 1).map_or(z - 1.0, |x| x.0);
            if f1 > best && next < z {
                best = f1;
                cut = (z + next) / 2.0;
            }
        }
        c.weights[k] = w.map(|x| x as f32);
        c.bias[k] = -cut as f32;
        f1s[k] = Some(best);
    }
    (c, f1s)
}

/// Moves each fitted label's intercept from the positive rate of the fitting rows to `rates[k]` (Bayes' prior
/// correction: `bias += logit(rate) - logit(fit_rate)`). The calibration set over-samples the rare kinds so
/// that each has enough examples; the labeler must flag them at their real rate, not at the set's.
pub fn shift_to_rates(c: &mut Calibration, fit_rates: &PerLabel<Option<f64>>, rates: &PerLabel<Option<f64>>) {
    let logit = |p: f64| (p.clamp(1e-4, 1.0 - 1e-4) / (1.0 - p.clamp(1e-4, 1.0 - 1e-4))).ln();
    for k in Label::ALL {
        if let (Some(f), Some(r)) = (fit_rates[k], rates[k]) {
            c.bias[k] += (logit(r) - logit(f)) as f32;
        }
    }
}

/// The positive rate of each label over the rows whose truth is known (None without any).
pub fn positive_rates(truth: &[PerLabel<Option<bool>>]) -> PerLabel<Option<f64>> {
    PerLabel::from_fn(|k| {
        let known: Vec<bool> = truth.iter().filter_map(|t| t[k]).collect();
        (!known.is_empty()).then(|| known.iter().filter(|&&x| x).count() as f64 / known.len() as f64)
    })
}

/// The seed's answer JSON for a verdict, so few-shot answers go through the same parser as every backend.
pub fn answer_json(v: &FewShotVerdict, log_odds: &PerLabel<f32>) -> String {
    let violations: Vec<String> =
        v.flags.by_label().filter(|&(l, &f)| f && l != Label::Relevant).map(|(l, _)| format!("\"{}\"", VIOLATION[l])).collect();
    let lo: Vec<String> = QUESTIONS.iter().map(|&(q, k)| format!("{} {:+.2}", q.to_lowercase(), log_odds[k])).collect();
    format!(
        "{{\"is_relevant\": {}, \"violations\": [{}], \"rationale\": \"few-shot log-odds: {}\"}}",
        v.flags[Label::Relevant],
        violations.join(", "),
        lo.join(", ")
    )
}

/// The review block for a [`ReviewInput`] (its text already cleaned by the guard).
pub fn block_for(review: &ReviewInput, max_chars: usize) -> String {
    review_block(&review.business_name, &review.category, &review.text, max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_shapes() {
        assert_eq!(review_block("Café Rio", "Mexican restaurant, Bar", "Très  bon", 1000), "Place: Cafe Rio (Mexican restaurant)\nReview: Tres bon\n");
        assert_eq!(review_block("", "", "x", 1000), "Place: unknown\nReview: x\n");
        assert_eq!(review_block("", "Bar", "x", 1000), "Place: a Bar\nReview: x\n");
        assert_eq!(review_block("Buona Sera", "['Italian restaurant', 'Restaurant']", "x", 1000), "Place: Buona Sera (Italian restaurant)\nReview: x\n");
    }

    #[test]
    fn examples_cover_every_label() {
        for l in Label::ALL {
            let pos = EXAMPLES.iter().filter(|e| e.answer(l)).count();
            assert!(pos >= 2 && pos + 3 < EXAMPLES.len(), "question of {l}: {pos} positives");
        }
    }

    #[test]
    fn example_answers_belong_to_their_labels() {
        // the table's columns: advertisement, off-topic, never visited, spam, about this place
        let (taqueria, barber, park, dentist, lube) = (EXAMPLES[0], EXAMPLES[1], EXAMPLES[3], EXAMPLES[4], EXAMPLES[7]);
        assert_eq!(taqueria.answers, PerLabel([true, false, false, false, false]));
        assert_eq!(barber.answers, PerLabel([false, true, false, false, false]));
        assert!(park.answer(Label::Irrelevant) && dentist.answer(Label::NonVisit) && lube.answer(Label::Spam));
    }

    #[test]
    fn fit_separates_and_uses_other_answers() {
        // irrelevant is told apart only by the relevance answer (low) in these rows
        let lo: Vec<PerLabel<f32>> = (0..40)
            .map(|i| {
                let pos = i % 4 == 0;
                let noise = (i as f32 * 0.37).sin();
                PerLabel([if pos { -2.0 } else { 1.0 } + 0.3 * noise, noise, 0.5 * noise, -2.0, -3.0])
            })
            .collect();
        let truth: Vec<PerLabel<Option<bool>>> = (0..40).map(|i| PerLabel([None, None, Some(i % 4 == 0), Some(false), None])).collect();
        let (c, f1) = fit_calibration(&Calibration::identity(), &lo, &truth);
        use Label::*;
        assert_eq!(f1[Irrelevant], Some(1.0));
        assert!(c.weights[Irrelevant][Relevant] < 0.0, "{:?}", c.weights[Irrelevant]);
        let none = RulesVerdict { is_relevant: true, violations: vec![], rationale: String::new() };
        for (x, t) in lo.iter().zip(&truth) {
            assert_eq!(c.combine(x, &none).flags[Irrelevant], t[Irrelevant].unwrap());
        }
        assert_eq!((f1[Relevant], f1[NonVisit]), (None, None), "no truth / no positives: not fitted");
        assert_eq!(c.weights[NonVisit], Calibration::identity().weights[NonVisit]);
    }

    #[test]
    fn combine_applies_rules_and_relevance() {
        let c = Calibration::identity();
        let none = RulesVerdict { is_relevant: true, violations: vec![], rationale: String::new() };
        let v = c.combine(&PerLabel([3.0, -3.0, -3.0, -3.0, -3.0]), &none);
        assert_eq!(v.flags, PerLabel([true, false, false, false, false]));
        let ads = RulesVerdict { violations: vec!["ADS"], ..none.clone() };
        assert!(c.combine(&PerLabel([3.0, -2.0, -3.0, -3.0, -3.0]), &ads).flags[Label::Ads]);
        let v = c.combine(&PerLabel([3.0, -3.0, 2.0, -3.0, -3.0]), &none);
        assert_eq!(v.flags, PerLabel([false, false, true, false, false]), "irrelevant is never relevant");
        let va = c.combine(&PerLabel([3.0, -2.0, -3.0, -3.0, -3.0]), &ads);
        assert_eq!(va.flags, PerLabel([false, true, false, false, false]), "an ad the rules find is not a relevant review");
        // the model's own ads and never-visited answers are weighed against its relevance answer
        assert_eq!(c.combine(&PerLabel([3.0, 1.0, -3.0, -3.0, -3.0]), &none).flags, PerLabel([true, true, false, false, false]), "weaker ad answer");
        assert_eq!(c.combine(&PerLabel([1.0, 2.0, -3.0, -3.0, -3.0]), &none).flags, PerLabel([false, true, false, false, false]), "stronger ad answer");
        assert_eq!(c.combine(&PerLabel([3.0, -3.0, -3.0, 1.0, -3.0]), &none).flags, PerLabel([true, false, false, true, false]), "weaker non-visit answer");
        assert_eq!(c.combine(&PerLabel([1.0, -3.0, -3.0, 1.0, -3.0]), &none).flags, PerLabel([false, false, false, true, false]), "as probable: removed");
        let nv_rule = RulesVerdict { violations: vec!["NON_VISIT_RANT"], ..none.clone() };
        assert_eq!(c.combine(&PerLabel([3.0, -3.0, -3.0, -3.0, -3.0]), &nv_rule).flags, PerLabel([true, false, false, true, false]), "rule phrase alone");
        assert_eq!(c.combine(&PerLabel([1.0, -3.0, -3.0, 2.0, -3.0]), &nv_rule).flags, PerLabel([false, false, false, true, false]));
        assert!(!relevance_kept(&PerLabel([true, false, false, false, true]), &PerLabel([0.9, 0.1, 0.1, 0.1, 0.6]), &PerLabel([false; 5])), "junk");
        assert!(!relevance_kept(&PerLabel([false, false, false, false, false]), &PerLabel([0.4, 0.1, 0.1, 0.1, 0.1]), &PerLabel([false; 5])), "no relevance");
        // the probe's logit moves only the labels it has a weight for
        use Label::*;
        let d = Calibration::default();
        let lo = PerLabel([2.0, -3.0, -3.0, -3.0, -3.0]);
        let none_probe = d.combine_with_probe(&lo, &PerLabel([None; 5]), &none);
        let off = d.combine_with_probe(&lo, &PerLabel([Some(-8.0), Some(9.0), Some(9.0), Some(-8.0), Some(9.0)]), &none);
        assert!(!none_probe.flags[Irrelevant] && off.flags[Irrelevant] && !off.flags[Relevant], "{none_probe:?} {off:?}");
        assert_eq!((off.probs[Ads], off.probs[Spam]), (none_probe.probs[Ads], none_probe.probs[Spam]), "no probe weight for ads and spam");
        assert_eq!(d.combine(&lo, &none), none_probe);
        let j = answer_json(&v, &PerLabel([3.0, -3.0, 2.0, -3.0, -3.0]));
        let p = super::super::parse_output(&j);
        assert!(p.parse_success && p.irrelevant && !p.is_relevant, "{j}");
    }
}
