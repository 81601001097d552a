//! Gemma's tokenizer, our own: SentencePiece built from GGUF metadata with llama.cpp's algorithm
//! (`llm_tokenizer_spm`), and a small reader of HF `tokenizer.json` (BPE with byte fallback, Gemma's layout).
//!
//! Encoding, as llama.cpp's `llama_tokenize(..., parse_special)`:
//! 1. split the text around special tokens (control, user-defined, unknown; longest first), where control and
//!    unknown tokens are only recognised with `parse_special` (user-defined ones always are);
//! 2. in each remaining text piece, spaces become `▁` (and a `▁` is prepended when the vocabulary asks for it);
//! 3. the piece is split into UTF-8 characters and adjacent symbols are merged, best bigram first: for
//!    SentencePiece the bigram whose merged text is a token with the highest score, for BPE the pair with the
//!    lowest merge rank; ties go to the leftmost;
//! 4. symbols that are not tokens are re-split along their merge history, and what is left falls back to
//!    `<0xXX>` byte tokens.
//!
//! Token ids are identical to llama.cpp's on real review text (tests/llm_llama_parity.rs).

use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::gguf_file;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// What kind of token an id is (GGUF `tokenizer.ggml.token_type`, llama.cpp's attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Ordinary text piece (`▁` stands for a space).
    Normal,
    /// The unknown token.
    Unknown,
    /// Control token (`<bos>`, `<start_of_turn>`, ...): not printed when decoding text.
    Control,
    /// User-defined token: matched before splitting, printed as is.
    UserDefined,
    /// Unused slot.
    Unused,
    /// A `<0xXX>` byte-fallback token.
    Byte,
}

impl TokenKind {
    fn from_gguf(t: i32) -> Self {
        match t {
            2 => TokenKind::Unknown,
            3 => TokenKind::Control,
            4 => TokenKind::UserDefined,
            5 => TokenKind::Unused,
            6 => TokenKind::Byte,
            _ => TokenKind::Normal,
        }
    }
    fn is_special(self) -> bool {
        matches!(self, TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown)
    }
}

#[derive(Debug, Clone)]
enum Merges {
    /// SentencePiece: a bigram's priority is the score of the merged token.
    Spm,
    /// BPE: a pair's priority is its merge rank ("left\u{1}right" -> rank, lower is better).
    Bpe(HashMap<String, u32>),
}

/// Texts llama.cpp treats as end-of-generation (and forces to control type); Gemma-3 has `<end_of_turn>`,
/// `<eos>` and `</s>` among them.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
    "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
];

/// A SentencePiece/BPE tokenizer with Gemma's special tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    tokens: Vec<String>,
    scores: Vec<f32>,
    kinds: Vec<TokenKind>,
    pieces: Vec<Vec<u8>>,
    token_to_id: HashMap<String, u32>,
    special: Vec<u32>,
    special_ac: Option<aho_corasick::AhoCorasick>,
    byte_ids: Vec<Option<u32>>,
    merges: Merges,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_space_prefix: bool,
}

#[derive(Clone, Copy)]
struct Symbol {
    prev: isize,
    next: isize,
    start: usize,
    n: usize,
}

struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost.
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then_with(|| o.left.cmp(&self.left))
    }
}

fn utf8_len(b: u8) -> usize {
    const L: [usize; 16] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
    L[(b >> 4) as usize]
}

fn gguf_strings(md: &HashMap<String, gguf_file::Value>, k: &str) -> Result<Vec<String>> {
    let v = md.get(k).with_context(|| format!("GGUF metadata lacks {k}"))?.to_vec()?;
    v.iter().map(|x| Ok(x.to_string()?.clone())).collect()
}

fn gguf_u32(md: &HashMap<String, gguf_file::Value>, k: &str) -> Option<u32> {
    md.get(k).and_then(|v| match v {
        gguf_file::Value::U32(x) => Some(*x),
        gguf_file::Value::I32(x) => Some(*x as u32),
        gguf_file::Value::U64(x) => Some(*x as u32),
        gguf_file::Value::I64(x) => Some(*x as u32),
        _ => None,
    })
}

fn gguf_bool(md: &HashMap<String, gguf_file::Value>, k: &str) -> Option<bool> {
    md.get(k).and_then(|v| v.to_bool().ok())
}

impl Tokenizer {
    /// Builds the tokenizer from GGUF metadata (`tokenizer.ggml.model` must be `llama`, i.e. SentencePiece).
    pub fn from_gguf(md: &HashMap<String, gguf_file::Value>) -> Result<Self> {
        let model = md.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if model != "llama" {
            bail!("unsupported tokenizer model {model:?} in GGUF (Gemma uses SentencePiece, \"llama\")");
        }
        let tokens = gguf_strings(md, "tokenizer.ggml.tokens")?;
        let n = tokens.len();
        let scores: Vec<f32> = match md.get("tokenizer.ggml.scores") {
            Some(v) => v.to_vec()?.iter().map(|x| x.to_f32()).collect::<candle_core::Result<_>>()?,
            None => vec![0.0; n],
        };
        let kinds: Vec<TokenKind> = match md.get("tokenizer.ggml.token_type") {
            Some(v) => v.to_vec()?.iter().map(|x| x.to_i32().map(TokenKind::from_gguf)).collect::<candle_core::Result<_>>()?,
            None => vec![TokenKind::Normal; n],
        };
        if scores.len() != n || kinds.len() != n {
            bail!("GGUF tokenizer arrays disagree: {n} tokens, {} scores, {} types", scores.len(), kinds.len());
        }
        let bos = gguf_u32(md, "tokenizer.ggml.bos_token_id");
        let eos = gguf_u32(md, "tokenizer.ggml.eos_token_id");
        let unk = gguf_u32(md, "tokenizer.ggml.unknown_token_id");
        let add_bos = gguf_bool(md, "tokenizer.ggml.add_bos_token").unwrap_or(true);
        let add_space_prefix = gguf_bool(md, "tokenizer.ggml.add_space_prefix").unwrap_or(true);
        Self::build(tokens, scores, kinds, Merges::Spm, bos, eos, unk, add_bos, add_space_prefix)
    }

    /// Reads an HF `tokenizer.json` of Gemma's kind: a BPE model with byte fallback, a normalizer replacing
    /// spaces by `▁` (optionally prepending one), no pre-tokenizer, and added special tokens. Other layouts are
    /// rejected with a message saying what is not supported.
    pub fn from_tokenizer_json(json: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(json).context("tokenizer.json is not valid JSON")?;
        let m = v.get("model").context("tokenizer.json has no model")?;
        let ty = m.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if ty != "BPE" {
            bail!("tokenizer.json model type {ty:?} is not supported (expected Gemma's BPE)");
        }
        if let Some(p) = v.get("pre_tokenizer") {
            if !p.is_null() {
                bail!("tokenizer.json with a pre_tokenizer is not supported (Gemma's has none): {p}");
            }
        }
        // normalizer: Replace(" " -> "▁"), optionally Prepend("▁"), possibly in a Sequence
        let mut add_space_prefix = false;
        let mut replaces_space = false;
        let mut norms = vec![];
        if let Some(n) = v.get("normalizer").filter(|n| !n.is_null()) {
            if n.get("type").and_then(|t| t.as_str()) == Some("Sequence") {
                norms.extend(n["normalizers"].as_array().cloned().unwrap_or_default());
            } else {
                norms.push(n.clone());
            }
        }
        for n in &norms {
            match n.get("type").and_then(|t| t.as_str()) {
                Some("Replace") if n["pattern"]["String"] == " " && n["content"] == "▁" => replaces_space = true,
                Some("Prepend") if n["prepend"] == "▁" => add_space_prefix = true,
                _ => bail!("tokenizer.json normalizer {n} is not supported"),
            }
        }
        if !replaces_space {
            bail!("tokenizer.json: expected a normalizer replacing ' ' by '▁' (Gemma's)");
        }
        let vocab = m.get("vocab").and_then(|x| x.as_object()).context("tokenizer.json model has no vocab")?;
        let mut tokens = vec![String::new(); vocab.len()];
        for (t, id) in vocab {
            let id = id.as_u64().context("vocab id is not a number")? as usize;
            if id >= tokens.len() {
                tokens.resize(id + 1, String::new());
            }
            tokens[id] = t.clone();
        }
        let mut kinds: Vec<TokenKind> = tokens
            .iter()
            .map(|t| if parse_byte_token(t).is_some() { TokenKind::Byte } else { TokenKind::Normal })
            .collect();
        let mut special_ids = HashMap::new();
        for a in v.get("added_tokens").and_then(|x| x.as_array()).cloned().unwrap_or_default() {
            let id = a["id"].as_u64().context("added token without id")? as usize;
            let content = a["content"].as_str().context("added token without content")?.to_string();
            if id >= tokens.len() {
                tokens.resize(id + 1, String::new());
                kinds.resize(id + 1, TokenKind::Normal);
            }
            tokens[id] = content.clone();
            kinds[id] = if a["special"].as_bool().unwrap_or(false) { TokenKind::Control } else { TokenKind::UserDefined };
            special_ids.insert(content, id as u32);
        }
        let mut ranks = HashMap::new();
        for (r, mg) in m.get("merges").and_then(|x| x.as_array()).cloned().unwrap_or_default().iter().enumerate() {
            let (a, b) = match mg {
                serde_json::Value::String(s) => {
                    let (a, b) = s.split_once(' ').ok_or_else(|| anyhow!("bad merge {s:?}"))?;
                    (a.to_string(), b.to_string())
                }
                serde_json::Value::Array(p) if p.len() == 2 => {
                    (p[0].as_str().unwrap_or("").to_string(), p[1].as_str().unwrap_or("").to_string())
                }
                other => bail!("bad merge {other}"),
            };
            ranks.entry(format!("{a}\u{1}{b}")).or_insert(r as u32);
        }
        let unk = m.get("unk_token").and_then(|u| u.as_str()).and_then(|u| vocab.get(u)).and_then(|i| i.as_u64()).map(|i| i as u32);
        let bos = special_ids.get("<bos>").copied();
        let eos = special_ids.get("<eos>").copied();
        let scores = vec![0.0; tokens.len()];
        Self::build(tokens, scores, kinds, Merges::Bpe(ranks), bos, eos, unk, true, add_space_prefix)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        tokens: Vec<String>,
        scores: Vec<f32>,
        mut kinds: Vec<TokenKind>,
        merges: Merges,
        bos: Option<u32>,
        eos: Option<u32>,
        unk: Option<u32>,
        add_bos: bool,
        add_space_prefix: bool,
    ) -> Result<Self> {
        let n = tokens.len();
        if n == 0 {
            bail!("empty vocabulary");
        }
        for (name, id) in [("bos", bos), ("eos", eos), ("unk", unk)] {
            if let Some(i) = id {
                if i as usize >= n {
                    bail!("{name} token id {i} is outside the vocabulary ({n} tokens)");
                }
            }
        }
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            token_to_id.insert(t.clone(), i as u32); // later duplicates win, as in llama.cpp
        }
        // end-of-generation tokens, forced to control type as llama.cpp does
        let mut eog = vec![];
        for t in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*t) {
                kinds[id as usize] = TokenKind::Control;
                eog.push(id);
            }
        }
        if let Some(e) = eos {
            if !eog.contains(&e) {
                eog.push(e);
            }
        }
        eog.sort_unstable();
        let mut byte_ids = vec![None; 256];
        for b in 0..256usize {
            byte_ids[b] = token_to_id.get(&format!("<0x{b:02X}>")).copied();
        }
        let pieces = tokens
            .iter()
            .zip(&kinds)
            .map(|(t, k)| match k {
                TokenKind::Normal => t.replace('▁', " ").into_bytes(),
                TokenKind::Byte => vec![parse_byte_token(t).unwrap_or(0)],
                _ => t.clone().into_bytes(),
            })
            .collect();
        let mut special: Vec<u32> = (0..n as u32).filter(|&i| kinds[i as usize].is_special() && !tokens[i as usize].is_empty()).collect();
        special.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()).then(a.cmp(&b)));
        let special_ac = if special.is_empty() {
            None
        } else {
            Some(
                aho_corasick::AhoCorasick::builder()
                    .build(special.iter().map(|&i| tokens[i as usize].as_bytes()))
                    .context("building the special-token matcher")?,
            )
        };
        Ok(Self {
            tokens,
            scores,
            kinds,
            pieces,
            token_to_id,
            special,
            special_ac,
            byte_ids,
            merges,
            bos,
            eos,
            unk,
            eog,
            add_bos,
            add_space_prefix,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The `<bos>` id.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The `<eos>` id.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The end-of-generation ids (`<eos>`, `<end_of_turn>`, and the others llama.cpp stops on).
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether generation stops at this token.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The id of a token given its exact vocabulary text (`"<start_of_turn>"`, `"▁true"`, ...).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The raw vocabulary text of a token (`▁` for spaces, `<0x0A>` for byte tokens).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(|s| s.as_str())
    }

    /// The bytes a token contributes to decoded text (spaces restored, byte tokens as their byte, special tokens
    /// as their text). What a constrained decoder needs to know what each token would add.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(|p| p.as_slice())
    }

    /// The kind of a token.
    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// Encodes text, recognising special tokens written in it (`<start_of_turn>`...), as llama.cpp's
    /// `llama_tokenize(text, add_special = add_bos, parse_special = true)`: `<bos>` comes first when `add_bos`
    /// and the vocabulary asks for it (GGUF `tokenizer.ggml.add_bos_token`, true for Gemma-3).
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        self.encode_with(text, add_bos, true)
    }

    /// Encodes text; with `parse_special = false` control tokens written in the text are treated as plain text
    /// (use it for untrusted text such as reviews, so a review cannot close the user turn).
    pub fn encode_with(&self, text: &str, add_bos: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos && self.add_bos {
            if let Some(b) = self.bos {
                out.push(b);
            }
        }
        let mut is_prev_special = true;
        for frag in self.partition(text, parse_special) {
            match frag {
                Frag::Token(id) => {
                    out.push(id);
                    is_prev_special = true;
                }
                Frag::Text(s, e) => {
                    let mut t = String::with_capacity(e - s + 3);
                    if self.add_space_prefix && is_prev_special {
                        t.push(' ');
                    }
                    t.push_str(&text[s..e]);
                    let t = t.replace(' ', "▁");
                    self.encode_piece(t.as_bytes(), &mut out);
                    is_prev_special = false;
                }
            }
        }
        out
    }

    /// Decodes ids to text, leaving out control tokens (as llama.cpp with `special = false`). Invalid UTF-8 from
    /// partial byte sequences is replaced by U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, false)).into_owned()
    }

    /// Decodes ids to bytes; `special` keeps control tokens' text.
    pub fn decode_bytes(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            let Some(k) = self.kinds.get(id as usize) else { continue };
            if !special && matches!(k, TokenKind::Control | TokenKind::Unknown) {
                continue;
            }
            out.extend_from_slice(&self.pieces[id as usize]);
        }
        out
    }

    /// Splits the text around special tokens, longest first, as llama.cpp's `tokenizer_st_partition`.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Frag> {
        let mut frags = vec![Frag::Text(0, text.len())];
        let Some(ac) = &self.special_ac else { return frags };
        // only the specials that occur in the text can split it (fast path for the ~6k Gemma specials)
        let mut present = vec![];
        for m in ac.find_overlapping_iter(text.as_bytes()) {
            present.push(m.pattern().as_usize());
        }
        if present.is_empty() {
            return frags;
        }
        present.sort_unstable();
        present.dedup();
        let b = text.as_bytes();
        for &pi in &present {
            let id = self.special[pi];
            let kind = self.kinds[id as usize];
            if !parse_special && matches!(kind, TokenKind::Control | TokenKind::Unknown) {
                continue;
            }
            let pat = self.tokens[id as usize].as_bytes();
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Frag::Token(_) => next.push(f),
                    Frag::Text(mut s, e) => {
                        while let Some(off) = find(&b[s..e], pat) {
                            if off > 0 {
                                next.push(Frag::Text(s, s + off));
                            }
                            next.push(Frag::Token(id));
                            s += off + pat.len();
                        }
                        if s < e {
                            next.push(Frag::Text(s, e));
                        }
                    }
                }
            }
            frags = next;
        }
        frags
    }

    fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        std::str::from_utf8(bytes).ok().and_then(|s| self.token_to_id.get(s).copied())
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize` on one escaped text piece (BPE uses the same loop with
    /// merge ranks as priorities).
    fn encode_piece(&self, text: &[u8], out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
        let mut offs = 0;
        while offs < text.len() {
            let n = utf8_len(text[offs]).min(text.len() - offs);
            let idx = syms.len() as isize;
            syms.push(Symbol { prev: idx - 1, next: if offs + n == text.len() { -1 } else { idx + 1 }, start: offs, n });
            offs += n;
        }
        let mut heap = BinaryHeap::new();
        let mut rev_merge: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
        for i in 1..syms.len() {
            self.try_add_bigram(text, &syms, i as isize - 1, i as isize, &mut heap, &mut rev_merge);
        }
        while let Some(bg) = heap.pop() {
            let (l, r) = (syms[bg.left], syms[bg.right]);
            if l.n == 0 || r.n == 0 || l.n + r.n != bg.size {
                continue;
            }
            syms[bg.left].n += r.n;
            syms[bg.right].n = 0;
            syms[bg.left].next = r.next;
            if r.next >= 0 {
                syms[r.next as usize].prev = bg.left as isize;
            }
            let prev = syms[bg.left].prev;
            let next = syms[bg.left].next;
            self.try_add_bigram(text, &syms, prev, bg.left as isize, &mut heap, &mut rev_merge);
            self.try_add_bigram(text, &syms, bg.left as isize, next, &mut heap, &mut rev_merge);
        }
        let mut i: isize = 0;
        while i != -1 {
            self.resegment(text, &syms, i as usize, &rev_merge, out);
            i = syms[i as usize].next;
        }
    }

    fn try_add_bigram(
        &self,
        text: &[u8],
        syms: &[Symbol],
        left: isize,
        right: isize,
        heap: &mut BinaryHeap<Bigram>,
        rev_merge: &mut HashMap<Vec<u8>, (usize, usize)>,
    ) {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (syms[left as usize], syms[right as usize]);
        let merged = &text[l.start..l.start + l.n + r.n];
        let score = match &self.merges {
            Merges::Spm => match self.lookup(merged) {
                Some(id) => self.scores[id as usize],
                None => return,
            },
            Merges::Bpe(ranks) => {
                let (Ok(a), Ok(b)) = (
                    std::str::from_utf8(&text[l.start..l.start + l.n]),
                    std::str::from_utf8(&text[r.start..r.start + r.n]),
                ) else {
                    return;
                };
                match ranks.get(&format!("{a}\u{1}{b}")) {
                    Some(&rank) if self.lookup(merged).is_some() => -(rank as f32),
                    _ => return,
                }
            }
        };
        heap.push(Bigram { left: left as usize, right: right as usize, score, size: merged.len() });
        rev_merge.insert(merged.to_vec(), (left as usize, right as usize));
    }

    fn resegment(&self, text: &[u8], syms: &[Symbol], i: usize, rev_merge: &HashMap<Vec<u8>, (usize, usize)>, out: &mut Vec<u32>) {
        let s = syms[i];
        let piece = &text[s.start..s.start + s.n];
        if let Some(id) = self.lookup(piece) {
            out.push(id);
            return;
        }
        if let Some(&(a, b)) = rev_merge.get(piece) {
            self.resegment(text, syms, a, rev_merge, out);
            self.resegment(text, syms, b, rev_merge, out);
            return;
        }
        for &byte in piece {
            match self.byte_ids[byte as usize].or(self.unk) {
                Some(id) => out.push(id),
                None => {}
            }
        }
    }
}

enum Frag {
    Text(usize, usize),
    Token(u32),
}

fn find(hay: &[u8], pat: &[u8]) -> Option<usize> {
    if pat.is_empty() || pat.len() > hay.len() {
        return None;
    }
    hay.windows(pat.len()).position(|w| w == pat)
}

fn parse_byte_token(t: &str) -> Option<u8> {
    let h = t.strip_prefix("<0x")?.strip_suffix('>')?;
    if h.len() != 2 {
        return None;
    }
    u8::from_str_radix(h, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        // vocabulary: specials, bytes, and a few merges with scores
        let mut tokens: Vec<String> = vec!["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
            .into_iter()
            .map(String::from)
            .collect();
        let mut kinds = vec![TokenKind::Control, TokenKind::Control, TokenKind::Control, TokenKind::Unknown, TokenKind::Control, TokenKind::Control];
        for b in 0..256 {
            tokens.push(format!("<0x{b:02X}>"));
            kinds.push(TokenKind::Byte);
        }
        let words = ["▁", "h", "e", "l", "o", "he", "ll", "llo", "hello", "▁hello", "▁w", "o▁"];
        let mut scores = vec![0.0; tokens.len()];
        for (i, w) in words.iter().enumerate() {
            tokens.push(w.to_string());
            kinds.push(TokenKind::Normal);
            scores.push(-(i as f32));
        }
        tokens.push("<b>".into());
        kinds.push(TokenKind::UserDefined);
        scores.push(0.0);
        Tokenizer::build(tokens, scores, kinds, Merges::Spm, Some(2), Some(1), Some(3), true, false).unwrap()
    }

    #[test]
    fn spm_merges_by_score_and_falls_back_to_bytes() {
        let t = tiny();
        let ids = t.encode("hello hello!", true);
        let texts: Vec<&str> = ids.iter().map(|&i| t.token_text(i).unwrap()).collect();
        assert_eq!(texts, vec!["<bos>", "hello", "▁hello", "<0x21>"]);
        assert_eq!(t.decode(&ids), "hello hello!");
    }

    #[test]
    fn bos_only_when_asked_and_the_vocabulary_wants_it() {
        let mut t = tiny();
        assert_eq!(t.encode("hello", true)[0], 2);
        assert_ne!(t.encode("hello", false)[0], 2);
        t.add_bos = false; // a vocabulary with tokenizer.ggml.add_bos_token = false
        assert_ne!(t.encode("hello", true)[0], 2);
    }

    #[test]
    fn specials_are_split_out_only_when_asked() {
        let t = tiny();
        let with = t.encode_with("<start_of_turn>hello<b>", false, true);
        assert_eq!(with[0], t.token_id("<start_of_turn>").unwrap());
        assert_eq!(*with.last().unwrap(), t.token_id("<b>").unwrap());
        let without = t.encode_with("<start_of_turn>hello<b>", false, false);
        assert_ne!(without[0], t.token_id("<start_of_turn>").unwrap());
        // user-defined tokens are still matched
        assert_eq!(*without.last().unwrap(), t.token_id("<b>").unwrap());
        assert_eq!(t.decode(&without), "<start_of_turn>hello<b>");
        assert!(t.is_eog(t.token_id("<end_of_turn>").unwrap()) && t.is_eog(1));
    }

    #[test]
    fn multibyte_text_round_trips() {
        let t = tiny();
        let s = "héllo 😀  x";
        assert_eq!(t.decode(&t.encode(s, false)), s);
    }

    #[test]
    fn tokenizer_json_bpe() {
        let j = r#"{"normalizer":{"type":"Replace","pattern":{"String":" "},"content":"▁"},"pre_tokenizer":null,
          "added_tokens":[{"id":0,"content":"<pad>","special":true},{"id":1,"content":"<eos>","special":true},
                          {"id":2,"content":"<bos>","special":true}],
          "model":{"type":"BPE","byte_fallback":true,"unk_token":null,
            "vocab":{"<pad>":0,"<eos>":1,"<bos>":2,"a":3,"b":4,"▁":5,"ab":6,"▁ab":7,"<0x63>":8,"bb":9},
            "merges":["a b","▁ ab","b b"]}}"#;
        let t = Tokenizer::from_tokenizer_json(j).unwrap();
        let ids = t.encode("ab abb c", true);
        let texts: Vec<&str> = ids.iter().map(|&i| t.token_text(i).unwrap()).collect();
        // "ab" ; "▁ab" then "b" (a+b merges before b+b); "▁" ; byte c
        assert_eq!(texts, vec!["<bos>", "ab", "▁ab", "b", "▁", "<0x63>"]);
        assert_eq!(t.decode(&ids), "ab abb c");
    }
}
