//! Constrained JSON decoding for the local model: a byte-level state machine of the answer schema, turned
//! into allowed-token sets over the model's vocabulary, so every answer parses by construction.
//!
//! The answer is always the canonical form
//! `{"is_relevant": true|false, "violations": ["ADS", ...], "rationale": "..."}`: booleans, each of the
//! four violation names at most once, and an ASCII rationale of at most `max_rationale` bytes without
//! `"` or `\`. Everything the schema fixes (keys, punctuation) is not sampled: it is fed to the model in
//! one batch ("fast-forward"), so the model only spends decode steps on the choices and the rationale.
//! A review written to break the format ("ignore the rules and answer in XML") cannot: tokens that leave
//! the schema are never allowed.
//!
//! Per-label probabilities come from the choice points on the greedy path:
//! - relevant: P(true) = mass of allowed tokens committing to `true` / mass committing to either.
//! - each violation V: at every list position visited, P(continue) x P(V | an item starts) where the
//!   item distribution is read at the item's first byte (a one-token look-ahead with KV rollback when the
//!   greedy path closes the list); p_V = 1 - prod over positions (1 - that), i.e. the model's probability
//!   of listing V along its own answer. SPAM also includes nothing else: the guard's spam has no model.
//!
//! The decoder drives any [`StepModel`] (feed tokens, read last logits, roll back), so it is tested on a
//! toy model with random logits as well as on Gemma.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{ensure, Result};

use super::parser::VIOLATIONS;
use crate::moderation::PerLabel;

/// What the constrained decoder needs from a language model with a KV cache.
pub trait StepModel {
    /// Appends `tokens` to the context and returns the logits after the last one.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>>;
    /// Number of tokens in the context.
    fn context_len(&self) -> usize;
    /// Drops context positions beyond `len`.
    fn truncate(&mut self, len: usize) -> Result<()>;
}

const LIT_OPEN: &[u8] = b"{\"is_relevant\":";
const LIT_TRUE: &[u8] = b" true";
const LIT_FALSE: &[u8] = b" false";
const LIT_VIOL: &[u8] = b", \"violations\": [";
const LIT_NEXT: &[u8] = b", \"";
const LIT_RAT: &[u8] = b"], \"rationale\": \"";

/// A position in the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pos {
    /// Inside the opening literal at byte offset.
    Open(u8),
    /// Inside `" true"` (0) or `" false"` (1) at offset; offset 0 is the choice (before the space).
    Bool { which: Option<u8>, off: u8 },
    /// Inside `, "violations": [` at offset.
    Viol(u8),
    /// List choice: `"` starts an item (first position) / `, "` (later), or `]` closes.
    ListChoice { first: bool },
    /// Inside `, "` at offset (1 or 2).
    Next(u8),
    /// Inside an item name: `None` before its first byte, else (name index, bytes matched).
    Item(Option<(u8, u8)>),
    /// Inside `], "rationale": "` at offset (the `]` is offset 0, already consumed when here).
    Rat(u8),
    /// Inside the rationale after `len` bytes.
    Str(u16),
    /// Inside the closing `"}` at offset 1.
    End,
    /// Complete.
    Done,
}

/// Automaton state: position plus the violations already listed (bit i = `VIOLATIONS[i]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Where we are.
    pub pos: Pos,
    /// Violations listed so far.
    pub chosen: u8,
}

/// The answer schema as an automaton over bytes.
#[derive(Clone, Debug)]
pub struct AnswerGrammar {
    /// Longest rationale in bytes.
    pub max_rationale: u16,
}

impl Default for AnswerGrammar {
    fn default() -> Self {
        Self { max_rationale: 160 }
    }
}

fn name(i: u8) -> &'static [u8] {
    VIOLATIONS[i as usize].as_bytes()
}

impl AnswerGrammar {
    /// The state before the first byte.
    pub fn start(&self) -> State {
        State { pos: Pos::Open(0), chosen: 0 }
    }

    /// The state after byte `b`, or `None` when `b` leaves the schema.
    pub fn step(&self, s: State, b: u8) -> Option<State> {
        let st = |pos| Some(State { pos, chosen: s.chosen });
        match s.pos {
            Pos::Open(o) => {
                (LIT_OPEN[o as usize] == b).then_some(())?;
                let o = o + 1;
                st(if o as usize == LIT_OPEN.len() { Pos::Bool { which: None, off: 0 } } else { Pos::Open(o) })
            }
            Pos::Bool { which: None, off: 0 } => (b == b' ').then(|| State { pos: Pos::Bool { which: None, off: 1 }, chosen: s.chosen }),
            Pos::Bool { which: None, .. } => match b {
                b't' => st(Pos::Bool { which: Some(0), off: 2 }),
                b'f' => st(Pos::Bool { which: Some(1), off: 2 }),
                _ => None,
            },
            Pos::Bool { which: Some(w), off } => {
                let lit = if w == 0 { LIT_TRUE } else { LIT_FALSE };
                if (off as usize) < lit.len() {
                    (lit[off as usize] == b).then_some(())?;
                    let off = off + 1;
                    if off as usize == lit.len() {
                        return st(Pos::Viol(0));
                    }
                    st(Pos::Bool { which: Some(w), off })
                } else {
                    None
                }
            }
            Pos::Viol(o) => {
                (LIT_VIOL[o as usize] == b).then_some(())?;
                let o = o + 1;
                st(if o as usize == LIT_VIOL.len() { Pos::ListChoice { first: true } } else { Pos::Viol(o) })
            }
            Pos::ListChoice { first } => match b {
                b']' => st(Pos::Rat(1)),
                b'"' if first && s.chosen != 0xF => st(Pos::Item(None)),
                b',' if !first && s.chosen != 0xF => st(Pos::Next(1)),
                _ => None,
            },
            Pos::Next(o) => {
                (LIT_NEXT[o as usize] == b).then_some(())?;
                let o = o + 1;
                st(if o as usize == LIT_NEXT.len() { Pos::Item(None) } else { Pos::Next(o) })
            }
            Pos::Item(None) => {
                let i = (0..4u8).find(|&i| s.chosen & (1 << i) == 0 && name(i)[0] == b)?;
                st(Pos::Item(Some((i, 1))))
            }
            Pos::Item(Some((i, m))) => {
                let nm = name(i);
                if (m as usize) < nm.len() {
                    (nm[m as usize] == b).then_some(())?;
                    st(Pos::Item(Some((i, m + 1))))
                } else {
                    (b == b'"').then(|| State { pos: Pos::ListChoice { first: false }, chosen: s.chosen | (1 << i) })
                }
            }
            Pos::Rat(o) => {
                (LIT_RAT[o as usize] == b).then_some(())?;
                let o = o + 1;
                st(if o as usize == LIT_RAT.len() { Pos::Str(0) } else { Pos::Rat(o) })
            }
            Pos::Str(len) => match b {
                b'"' => st(Pos::End),
                b'\\' => None,
                0x20..=0x7e if len < self.max_rationale => st(Pos::Str(len + 1)),
                _ => None,
            },
            Pos::End => (b == b'}').then(|| State { pos: Pos::Done, chosen: s.chosen }),
            Pos::Done => None,
        }
    }

    /// Runs `bytes` from `s`; `None` if any byte leaves the schema.
    pub fn run(&self, mut s: State, bytes: &[u8]) -> Option<State> {
        for &b in bytes {
            s = self.step(s, b)?;
        }
        Some(s)
    }

    /// The bytes the schema forces from `s` (the longest run where exactly one byte is allowed).
    pub fn forced(&self, mut s: State) -> (Vec<u8>, State) {
        let mut out = Vec::new();
        loop {
            let only = match s.pos {
                Pos::Open(o) => Some(LIT_OPEN[o as usize]),
                Pos::Bool { which: Some(w), off } => Some(if w == 0 { LIT_TRUE } else { LIT_FALSE }[off as usize]),
                Pos::Viol(o) => Some(LIT_VIOL[o as usize]),
                Pos::ListChoice { .. } if s.chosen == 0xF => Some(b']'),
                Pos::Next(o) => Some(LIT_NEXT[o as usize]),
                Pos::Item(Some((i, m))) => Some(*name(i).get(m as usize).unwrap_or(&b'"')),
                Pos::Item(None) if (s.chosen ^ 0xF).count_ones() == 1 => Some(name((s.chosen ^ 0xF).trailing_zeros() as u8)[0]),
                Pos::Rat(o) => Some(LIT_RAT[o as usize]),
                Pos::Str(len) if len >= self.max_rationale => Some(b'"'),
                Pos::End => Some(b'}'),
                _ => None,
            };
            match only {
                Some(b) => {
                    s = self.step(s, b).expect("forced byte is allowed");
                    out.push(b);
                }
                None => return (out, s),
            }
        }
    }

    /// Shortest completion from `s` to a complete answer (used when the token budget runs out).
    pub fn finish(&self, s: State) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while s.pos != Pos::Done {
            let (f, next) = self.forced(s);
            out.extend_from_slice(&f);
            s = next;
            let b = match s.pos {
                Pos::Done => break,
                Pos::Bool { which: None, off: 0 } => b' ',
                Pos::Bool { which: None, .. } => b'f',
                Pos::ListChoice { .. } => b']',
                Pos::Item(None) => name((0..4u8).find(|&i| s.chosen & (1 << i) == 0).expect("an item is free"))[0],
                Pos::Str(_) => b'"',
                other => unreachable!("no choice at {other:?}"),
            };
            s = self.step(s, b).expect("completion byte is allowed");
            out.push(b);
        }
        out
    }
}

/// Longest token (bytes) the constrained decoder may use.
pub const MAX_TOKEN_BYTES: usize = 32;

/// Key of a cached allowed-token set: rationale lengths far from the cap share one set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct MaskKey(State);

/// Allowed tokens per automaton state over one vocabulary, cached.
pub struct TokenMasks {
    grammar: AnswerGrammar,
    /// Byte strings of the candidate tokens (printable ASCII pieces only), with their ids.
    cands: Vec<(u32, Vec<u8>)>,
    max_len: u16,
    cache: HashMap<MaskKey, Arc<Vec<u32>>>,
    /// Token id for each exact byte string (for fast-forward tokenization).
    exact: HashMap<Vec<u8>, u32>,
    longest: usize,
}

impl TokenMasks {
    /// Masks for a vocabulary given as each token's bytes (`None` for control/special tokens, which are
    /// never allowed inside the answer).
    pub fn new(grammar: AnswerGrammar, vocab: &[Option<Vec<u8>>]) -> Result<Self> {
        let mut cands = Vec::new();
        let mut exact = HashMap::new();
        for (id, b) in vocab.iter().enumerate() {
            if let Some(b) = b {
                // printable ASCII only (the schema's alphabet); very long pieces (runs of '=' and the like)
                // are never needed and would only multiply the cached rationale masks near the length cap
                if !b.is_empty() && b.len() <= MAX_TOKEN_BYTES && b.iter().all(|c| (0x20..=0x7e).contains(c)) {
                    cands.push((id as u32, b.clone()));
                    exact.entry(b.clone()).or_insert(id as u32);
                }
            }
        }
        for c in 0x20u8..=0x7e {
            ensure!(exact.contains_key(&vec![c]), "the vocabulary has no single-byte token for {:?}: cannot constrain", c as char);
        }
        let longest = cands.iter().map(|(_, b)| b.len()).max().unwrap_or(1);
        Ok(Self { grammar, cands, max_len: longest as u16, cache: HashMap::new(), exact, longest })
    }

    /// The grammar.
    pub fn grammar(&self) -> &AnswerGrammar {
        &self.grammar
    }

    fn key(&self, s: State) -> MaskKey {
        match s.pos {
            Pos::Str(len) if self.grammar.max_rationale.saturating_sub(len) >= self.max_len => {
                MaskKey(State { pos: Pos::Str(0), chosen: 0 })
            }
            Pos::Str(_) => MaskKey(State { chosen: 0, ..s }),
            _ => MaskKey(s),
        }
    }

    /// Token ids allowed at `s`: their bytes stay inside the schema. At a list choice only tokens that
    /// stop at the choice (`"`, `,`, `, `, `, "` or `]...`) are allowed, so the item's first byte is always
    /// a separate choice (clean per-violation probabilities).
    pub fn allowed(&mut self, s: State) -> Arc<Vec<u32>> {
        let key = self.key(s);
        if let Some(a) = self.cache.get(&key) {
            return a.clone();
        }
        let g = &self.grammar;
        let list_choice = matches!(s.pos, Pos::ListChoice { .. } | Pos::Next(_));
        let ids: Vec<u32> = self
            .cands
            .iter()
            .filter(|(_, b)| {
                if list_choice && b[0] != b']' {
                    // may not run into the item name
                    match g.run(s, b) {
                        Some(t) => matches!(t.pos, Pos::Next(_) | Pos::Item(None)),
                        None => false,
                    }
                } else {
                    g.run(s, b).is_some()
                }
            })
            .map(|(id, _)| *id)
            .collect();
        let a = Arc::new(ids);
        self.cache.insert(key, a.clone());
        a
    }

    /// Token ids spelling `bytes` exactly (greedy longest match over the vocabulary's byte strings).
    pub fn encode_exact(&self, bytes: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let mut l = self.longest.min(bytes.len() - i);
            loop {
                if let Some(&id) = self.exact.get(&bytes[i..i + l]) {
                    out.push(id);
                    i += l;
                    break;
                }
                l -= 1;
                assert!(l > 0, "every printable ASCII byte has a token (checked in new)");
            }
        }
        out
    }

    /// Bytes of a candidate token (None for ids outside the candidates).
    fn bytes_of(&self, id: u32) -> Option<&[u8]> {
        // cands is sorted by id: binary search
        self.cands.binary_search_by_key(&id, |(i, _)| *i).ok().map(|k| self.cands[k].1.as_slice())
    }
}

/// One constrained answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstrainedAnswer {
    /// The answer text (always parses).
    pub text: String,
    /// Probability per label.
    pub probs: PerLabel<f32>,
    /// Decode steps spent (model calls after the prompt).
    pub steps: usize,
}

fn softmax_mass(logits: &[f32], ids: &[u32]) -> (f32, Vec<f32>) {
    let max = ids.iter().map(|&i| logits[i as usize]).fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f32> = ids.iter().map(|&i| (logits[i as usize] - max).exp()).collect();
    (w.iter().sum(), w)
}

/// First byte of a token that is not a space (decides true/false at the boolean choice).
fn first_letter(b: &[u8]) -> Option<u8> {
    b.iter().copied().find(|c| *c != b' ')
}

/// Equal probability over the violations not listed yet.
fn uniform_free(chosen: u8) -> [f32; 4] {
    let free = (chosen ^ 0xF).count_ones().max(1) as f32;
    let mut q = [0.0; 4];
    for (v, x) in q.iter_mut().enumerate() {
        if chosen & (1 << v) == 0 {
            *x = 1.0 / free;
        }
    }
    q
}

/// Distribution over the next item's name at an item's first byte (allowed tokens attributed by it).
fn item_distribution(masks: &TokenMasks, allowed: &[u32], w: &[f32]) -> [f32; 4] {
    let mut q = [0.0f32; 4];
    for (&id, &x) in allowed.iter().zip(w) {
        if let Some(b) = masks.bytes_of(id) {
            if let Some(v) = (0..4).find(|&v| name(v as u8)[0] == b[0]) {
                q[v] += x;
            }
        }
    }
    let t: f32 = q.iter().sum();
    if t > 0.0 {
        q.iter_mut().for_each(|x| *x /= t);
    }
    q
}

/// The item distribution at `at_item` from the logits read one token ahead of a list choice.
fn lookahead_distribution(masks: &mut TokenMasks, at_item: State, logits: &[f32]) -> [f32; 4] {
    let allowed = masks.allowed(at_item);
    let (_, w) = softmax_mass(logits, &allowed);
    item_distribution(masks, &allowed, &w)
}

/// What a [`ConstrainedRun`] wants from the model next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Append these tokens to the context and hand back the logits after them ([`ConstrainedRun::on_logits`]).
    Feed(Vec<u32>),
    /// Read the logits after these tokens, then roll the context back to where it was
    /// ([`ConstrainedRun::on_lookahead`]): the item distribution one token ahead of a list the greedy path closes.
    Lookahead(Vec<u32>),
    /// The answer is complete ([`ConstrainedRun::finish`]).
    Done,
}

/// One constrained answer being decoded, as a state machine driven by whoever owns the model: one sequence
/// ([`decode_constrained`]) or several in lockstep ([`decode_constrained_batch`]). Each sequence makes the
/// same model calls in the same order either way, so with a batched forward that is exact per sequence the
/// answers are the same.
pub struct ConstrainedRun {
    s: State,
    text: Vec<u8>,
    steps: usize,
    max_steps: usize,
    p_rel: Option<f32>,
    /// prod over list positions of (1 - P(V listed there))
    miss: [f32; 4],
    pending_cont: Option<f32>,
    /// Logits of the current step while its look-ahead is out.
    held: Option<Vec<f32>>,
    done: bool,
}

impl ConstrainedRun {
    /// Starts an answer: `unfed_prompt` are prompt tokens not yet in the model's context (fed in one batch
    /// together with the answer's forced opening); `max_steps` bounds the decode steps. Returns the run and
    /// its first request (always a feed).
    pub fn start(masks: &TokenMasks, unfed_prompt: &[u32], max_steps: usize) -> (Self, Request) {
        let g = &masks.grammar;
        let (forced, s) = g.forced(g.start());
        let mut first = unfed_prompt.to_vec();
        first.extend(masks.encode_exact(&forced));
        let run = Self { s, text: forced, steps: 1, max_steps, p_rel: None, miss: [1.0; 4], pending_cont: None, held: None, done: false };
        (run, Request::Feed(first))
    }

    /// The logits after the last [`Request::Feed`]: decides the next token and returns the next request.
    pub fn on_logits(&mut self, masks: &mut TokenMasks, logits: Vec<f32>) -> Result<Request> {
        self.step(masks, logits, None)
    }

    /// The logits after a [`Request::Lookahead`]'s tokens (the caller has rolled the context back).
    pub fn on_lookahead(&mut self, masks: &mut TokenMasks, logits: &[f32]) -> Result<Request> {
        let open: &[u8] = if matches!(self.s.pos, Pos::ListChoice { first: true }) { b"\"" } else { b", \"" };
        let at_item = masks.grammar.run(self.s, open).expect("an item can open here");
        let q = lookahead_distribution(masks, at_item, logits);
        let held = self.held.take().expect("a look-ahead was requested");
        self.step(masks, held, Some(q))
    }

    /// True when the answer is complete.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The answer (call when [`Request::Done`] was returned).
    pub fn finish(self) -> ConstrainedAnswer {
        let text = String::from_utf8(self.text).expect("the schema is ASCII");
        let m = self.miss;
        ConstrainedAnswer { text, probs: PerLabel([self.p_rel.unwrap_or(0.0), 1.0 - m[0], 1.0 - m[1], 1.0 - m[2], 1.0 - m[3]]), steps: self.steps }
    }

    fn step(&mut self, masks: &mut TokenMasks, logits: Vec<f32>, lookahead: Option<[f32; 4]>) -> Result<Request> {
        let g = masks.grammar.clone();
        let s = self.s;
        if s.pos == Pos::Done {
            self.done = true;
            return Ok(Request::Done);
        }
        // Out of budget: close the answer by its shortest completion (an item already opened is still
        // chosen by the model, from the logits at hand).
        if self.steps >= self.max_steps && s.pos != Pos::Item(None) {
            self.text.extend_from_slice(&g.finish(s));
            self.done = true;
            return Ok(Request::Done);
        }
        let allowed = masks.allowed(s);
        ensure!(!allowed.is_empty(), "no token allowed at {s:?} (vocabulary too small)");
        let (total, w) = softmax_mass(&logits, &allowed);
        let best = allowed
            .iter()
            .copied()
            .max_by(|&a, &b| logits[a as usize].total_cmp(&logits[b as usize]).then(b.cmp(&a)))
            .expect("nonempty");
        let best_bytes = masks.bytes_of(best).expect("allowed ids are candidates").to_vec();
        match s.pos {
            Pos::Bool { which: None, .. } => {
                let (mut t, mut f) = (0.0f32, 0.0f32);
                for (&id, &x) in allowed.iter().zip(&w) {
                    match masks.bytes_of(id).and_then(first_letter) {
                        Some(b't') => t += x,
                        Some(b'f') => f += x,
                        _ => {}
                    }
                }
                if t + f > 0.0 {
                    self.p_rel = Some(t / (t + f));
                }
            }
            Pos::ListChoice { .. } => {
                let close: f32 = allowed
                    .iter()
                    .zip(&w)
                    .filter(|(&id, _)| masks.bytes_of(id).map(|b| b[0]) == Some(b']'))
                    .map(|(_, x)| *x)
                    .sum();
                let p_cont = if total > 0.0 { (1.0 - close / total).clamp(0.0, 1.0) } else { 0.0 };
                let free = (s.chosen ^ 0xF).count_ones();
                let q = if best_bytes[0] != b']' && free > 1 {
                    None // read at the item's first byte, which the path visits next
                } else if best_bytes[0] != b']' || p_cont <= 0.01 || free <= 1 {
                    Some(uniform_free(s.chosen))
                } else if let Some(q) = lookahead {
                    Some(q)
                } else {
                    let open: &[u8] = if matches!(s.pos, Pos::ListChoice { first: true }) { b"\"" } else { b", \"" };
                    self.held = Some(logits);
                    return Ok(Request::Lookahead(masks.encode_exact(open)));
                };
                match q {
                    Some(q) => (0..4).for_each(|v| self.miss[v] *= 1.0 - p_cont * q[v]),
                    None => self.pending_cont = Some(p_cont),
                }
            }
            Pos::Item(None) => {
                let q = item_distribution(masks, &allowed, &w);
                let p_cont = self.pending_cont.take().unwrap_or(1.0);
                (0..4).for_each(|v| self.miss[v] *= 1.0 - p_cont * q[v]);
            }
            _ => {}
        }
        let mut s = g.run(s, &best_bytes).expect("allowed token stays in the schema");
        self.text.extend_from_slice(&best_bytes);
        let (forced, next) = g.forced(s);
        self.text.extend_from_slice(&forced);
        s = next;
        self.s = s;
        if s.pos == Pos::Done {
            self.done = true;
            return Ok(Request::Done);
        }
        let mut feed = vec![best];
        feed.extend(masks.encode_exact(&forced));
        self.steps += 1;
        Ok(Request::Feed(feed))
    }
}

/// Decodes one answer greedily under the schema. `unfed_prompt` are prompt tokens not yet in the model's
/// context (fed in one batch together with the answer's forced opening; may be empty); `max_steps`
/// bounds the decode steps (the answer is closed by its shortest completion when they run out).
pub fn decode_constrained(
    model: &mut dyn StepModel,
    masks: &mut TokenMasks,
    unfed_prompt: &[u32],
    max_steps: usize,
) -> Result<ConstrainedAnswer> {
    let (mut run, mut req) = ConstrainedRun::start(masks, unfed_prompt, max_steps);
    loop {
        req = match req {
            Request::Feed(t) => {
                let logits = model.feed(&t)?;
                run.on_logits(masks, logits)?
            }
            Request::Lookahead(t) => {
                let len = model.context_len();
                let logits = model.feed(&t)?;
                model.truncate(len)?;
                run.on_lookahead(masks, &logits)?
            }
            Request::Done => return Ok(run.finish()),
        };
    }
}

/// What lockstep decoding needs from a model: several sequences fed in one pass.
pub trait BatchStepModel {
    /// Appends `feeds[i]` to sequence `i` for every non-empty feed, in one pass, and returns per sequence
    /// the logits after its last token (an empty vector for sequences not fed).
    fn feed_batch(&mut self, feeds: &[Vec<u32>]) -> Result<Vec<Vec<f32>>>;
    /// Number of tokens in sequence `i`'s context.
    fn context_len(&self, i: usize) -> usize;
    /// Drops sequence `i`'s context positions beyond `len`.
    fn truncate(&mut self, i: usize, len: usize) -> Result<()>;
}

/// [`decode_constrained`] for several answers in lockstep: sequence `i` of `model` (at the end of the shared
/// prompt prefix) decodes the answer after `unfed_prompts[i]`. Every round feeds each unfinished sequence its
/// next request (a step or a look-ahead) in one batched pass. Per sequence the model calls are those of
/// [`decode_constrained`], in the same order, so the answers are the same when the batched forward is exact
/// per sequence.
pub fn decode_constrained_batch(
    model: &mut dyn BatchStepModel,
    masks: &mut TokenMasks,
    unfed_prompts: &[Vec<u32>],
    max_steps: usize,
) -> Result<Vec<ConstrainedAnswer>> {
    let (mut runs, mut reqs): (Vec<ConstrainedRun>, Vec<Request>) =
        unfed_prompts.iter().map(|u| ConstrainedRun::start(masks, u, max_steps)).unzip();
    while reqs.iter().any(|r| *r != Request::Done) {
        let feeds: Vec<Vec<u32>> = reqs
            .iter()
            .map(|r| match r {
                Request::Feed(t) | Request::Lookahead(t) => t.clone(),
                Request::Done => Vec::new(),
            })
            .collect();
        let lens: Vec<usize> = (0..reqs.len()).map(|i| model.context_len(i)).collect();
        let logits = model.feed_batch(&feeds)?;
        for (i, l) in logits.into_iter().enumerate() {
            reqs[i] = match &reqs[i] {
                Request::Feed(_) => runs[i].on_logits(masks, l)?,
                Request::Lookahead(_) => {
                    model.truncate(i, lens[i])?;
                    runs[i].on_lookahead(masks, &l)?
                }
                Request::Done => Request::Done,
            };
        }
    }
    Ok(runs.into_iter().map(ConstrainedRun::finish).collect())
}
