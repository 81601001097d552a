//! Several reviews in flight (`LocalParams::batch`, `Gemma3Model::forward_batch`): the batched forward gives each
//! sequence the logits of the one-sequence forward bit for bit, on the tiny random Gemma-3 (Q8_0 and f32
//! weights, several KV heads, a sliding window shorter than the prefix, soft-capping) and on the embedded 270M;
//! lockstep constrained decoding gives the one-at-a-time answers (a toy model with look-aheads, the tiny model,
//! the 270M); few-shot labels of real reviews do not depend on the batch; and a checkpointed run with batches,
//! killed with SIGKILL at random instants and resumed, gives the uninterrupted one-at-a-time labels.
//!
//! The real-model tests are skipped with a message when scripts/setup-model has not installed the model.

#[path = "llm_support/tiny.rs"]
mod tiny;
#[path = "support/toy_step.rs"]
mod toy_step;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use revmod::label::constrained::{decode_constrained, decode_constrained_batch, AnswerGrammar, BatchStepModel, StepModel, TokenMasks};
use revmod::label::local::{LabelMode, LocalGemmaBackend, LocalParams};
use revmod::label::{label_with_ckpt, CkptOptions, LabelBackend, Labeler, ModeratorPrompt, ReviewInput};
use revmod::llm::{self, Gemma3Model, KvSnapshot};
use toy_step::Toy;

const UTAH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/google-local-utah");

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// How close batched logits must be to the one-at-a-time ones: the same bits (None), or within
/// `tol * max |logit|` of the row.
#[derive(Clone, Copy)]
struct Tol {
    /// Pieces of several tokens (the tensor path).
    multi: Option<f32>,
    /// Pieces of one token (the CPU decode path).
    single: Option<f32>,
}

const EXACT: Tol = Tol { multi: None, single: None };

/// Feeds rounds of token pieces to several sequences that share `prefix`, batched and one at a time, and
/// checks every sequence's logits against `tol`. Returns the largest relative difference seen.
fn check_batched_equals_single(model: &mut Gemma3Model, prefix: &[u32], rounds: &[Vec<Vec<u32>>], what: &str, tol: Tol) -> f32 {
    model.reset();
    let logits = model.forward(prefix, false).unwrap().to_vec1::<f32>().unwrap();
    let snap: KvSnapshot = model.snapshot(logits).unwrap();
    let n = rounds[0].len();
    // batched
    let mut seqs: Vec<_> = (0..n).map(|_| model.new_seq()).collect();
    for s in &mut seqs {
        model.restore_seq(s, &snap).unwrap();
    }
    let mut batched: Vec<Vec<Vec<f32>>> = vec![Vec::new(); n];
    for round in rounds {
        let mut batch: Vec<(&mut llm::SeqCache, &[u32])> =
            seqs.iter_mut().zip(round).filter(|(_, t)| !t.is_empty()).map(|(s, t)| (s, t.as_slice())).collect();
        let out = model.forward_batch(&mut batch).unwrap();
        let fed: Vec<usize> = (0..n).filter(|&i| !round[i].is_empty()).collect();
        for (i, l) in fed.into_iter().zip(out) {
            batched[i].push(l);
        }
    }
    // one at a time, through the model's own cache
    let mut worst = 0f32;
    for i in 0..n {
        model.restore(&snap).unwrap();
        let mut k = 0;
        // after a bounded (not exact) piece, the sequence's cache holds those values: later pieces are bounded too
        let mut inexact = false;
        for (r, round) in rounds.iter().enumerate() {
            if round[i].is_empty() {
                continue;
            }
            let single = model.forward(&round[i], false).unwrap().to_vec1::<f32>().unwrap();
            let b = &batched[i][k];
            inexact |= (if round[i].len() == 1 { tol.single } else { tol.multi }).is_some();
            match if inexact { tol.single.or(tol.multi) } else { None } {
                None => assert_eq!(bits(&single), bits(b), "{what}: sequence {i}, round {r} ({} tokens)", round[i].len()),
                Some(tol) => {
                    let scale = single.iter().fold(0f32, |m, x| m.max(x.abs()));
                    let diff = single.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                    assert!(diff <= tol * scale, "{what}: sequence {i}, round {r}: max |diff| {diff} > {tol} * {scale}");
                    worst = worst.max(diff / scale);
                }
            }
            k += 1;
        }
        assert_eq!(model.context(), seqs[i].context(), "{what}: sequence {i}'s context");
    }
    worst
}

/// Rounds for three sequences: different prompt lengths, then one-token steps (decode path), a sequence that
/// sits a round out, and multi-token pieces again.
fn rounds(vocab: u32) -> Vec<Vec<Vec<u32>>> {
    let t = |xs: &[u32]| xs.iter().map(|x| x % vocab).collect::<Vec<u32>>();
    vec![
        vec![t(&[270, 271, 272, 9, 10, 11, 12]), t(&[280]), t(&[7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17])],
        vec![t(&[273]), t(&[281, 282, 283]), t(&[18])],
        vec![t(&[274]), vec![], t(&[19])],
        vec![t(&[275, 276]), t(&[284]), t(&[20, 21, 22, 23, 24, 25])],
    ]
}

#[test]
fn tiny_model_batched_forward_is_bit_identical_to_one_at_a_time() {
    let t = tiny::make_tiny("batch");
    // the prefix is longer than the sliding window (5), so the local layers' window moves inside it
    let prefix: Vec<u32> = vec![2, 262, 263, 264, 265, 266, 267, 268, 269, 100, 101, 102];
    // Quantized weights: bit for bit (each activation row is quantized on its own, each output is one dot
    // product in a fixed order, whatever the number of rows).
    let mut g = llm::load_path(&t.gguf_q8, &Device::Cpu).unwrap();
    let vocab = g.config().vocab_size as u32;
    check_batched_equals_single(g.model(), &prefix, &rounds(vocab), "tiny Q8_0", EXACT);
    // the tensor path for single tokens too (the switch of the decode check)
    g.model().set_fast_decode(false);
    check_batched_equals_single(g.model(), &prefix, &rounds(vocab), "tiny Q8_0, tensor path", EXACT);
    // Dense f32 weights (safetensors, f32 GGUF): candle's f32 matmul blocks its sums differently for another
    // number of rows, so the last bits move: within 1e-5 of the largest logit (f32 rounding of sums of 64-128
    // products, amplified by 4 layers), far below any label decision.
    for (path, what) in [(&t.gguf_f32, "tiny f32 GGUF"), (&t.dir, "tiny safetensors")] {
        let mut g = llm::load_path(path, &Device::Cpu).unwrap();
        let worst = check_batched_equals_single(g.model(), &prefix, &rounds(vocab), what, Tol { multi: Some(1e-5), single: Some(1e-5) });
        eprintln!("{what}: largest difference {worst:e} of max |logit|");
    }
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn forward_batch_rejects_bad_input() {
    let t = tiny::make_tiny("batch-bad");
    let mut g = llm::load_path(&t.gguf_q8, &Device::Cpu).unwrap();
    let m = g.model();
    let mut a = m.new_seq();
    let err = m.forward_batch(&mut [(&mut a, &[][..])]).unwrap_err().to_string();
    assert!(err.contains("no tokens"), "{err}");
    let err = m.forward_batch(&mut [(&mut a, &[1_000_000u32][..])]).unwrap_err().to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
    assert!(a.context().is_empty(), "a refused batch leaves the sequence alone");
    let _ = std::fs::remove_dir_all(&t.dir);
}

/// Several toys ([`Toy`], tests/support/toy_step.rs) decoded in lockstep; `.1` counts the batched feeds.
struct Toys(Vec<Toy>, usize);

impl BatchStepModel for Toys {
    fn feed_batch(&mut self, feeds: &[Vec<u32>]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.1 += 1;
        feeds.iter().zip(&mut self.0).map(|(f, t)| if f.is_empty() { Ok(Vec::new()) } else { t.feed(f) }).collect()
    }
    fn context_len(&self, i: usize) -> usize {
        self.0[i].context_len()
    }
    fn truncate(&mut self, i: usize, len: usize) -> anyhow::Result<()> {
        self.0[i].truncate(len)
    }
}

fn toy_vocab() -> Vec<Option<Vec<u8>>> {
    let mut v: Vec<Option<Vec<u8>>> = (0x20u8..=0x7e).map(|c| Some(vec![c])).collect();
    for w in ["\"]", "\"ADS\"", "\"A", ", \"", "], \"", "SP", "AM", "IR", "NON_", " true", " false", "\"}", "]"] {
        v.push(Some(w.as_bytes().to_vec()));
    }
    v
}

#[test]
fn lockstep_constrained_decoding_gives_the_one_at_a_time_answers() {
    let vocab = toy_vocab();
    let mut masks = TokenMasks::new(AnswerGrammar { max_rationale: 40 }, &vocab).unwrap();
    let mut lookaheads = 0;
    for round in 0..8u64 {
        let toys: Vec<Toy> = (0..5).map(|i| Toy::plain(vocab.len(), round * 31 + i)).collect();
        let prompts: Vec<Vec<u32>> = (0..5).map(|i| (0..(i as u32 % 3)).map(|k| 40 + k).collect()).collect();
        let budget = if round % 2 == 0 { 60 } else { 9 }; // an odd round runs out of steps
        let single: Vec<_> = toys
            .iter()
            .zip(&prompts)
            .map(|(t, p)| {
                let mut t = t.clone();
                let a = decode_constrained(&mut t, &mut masks, p, budget).unwrap();
                lookaheads += t.truncates;
                (a, t.ctx)
            })
            .collect();
        let mut batch = Toys(toys, 0);
        let answers = decode_constrained_batch(&mut batch, &mut masks, &prompts, budget).unwrap();
        for (i, (a, (s, ctx))) in answers.iter().zip(&single).enumerate() {
            assert_eq!(a, s, "round {round}, sequence {i}");
            assert_eq!(&batch.0[i].ctx, ctx, "round {round}, sequence {i}: the same tokens were fed");
        }
        let most = single.iter().map(|(a, _)| a.steps).max().unwrap();
        assert!(batch.1 >= most && batch.1 <= most + 8, "rounds {} for at most {most} steps each", batch.1);
    }
    assert!(lookaheads > 0, "the toy never took a look-ahead: the test does not cover it");
}

#[test]
fn tiny_model_lockstep_instruct_answers_equal_one_at_a_time() {
    let t = tiny::make_tiny("batch-instruct");
    let prompt = ModeratorPrompt { system: "Label it.".into(), user_template: "{business_name}: {text}".into(), max_text_chars: 60 };
    let reviews: Vec<ReviewInput> = ["ab cd", "a", "abc abc abc d", "cd cd", "b"]
        .iter()
        .map(|t| ReviewInput { text: t.to_string(), business_name: "ab".into(), category: String::new() })
        .collect();
    let answer = |batch: usize| {
        let g = llm::load_path(&t.gguf_q8, &Device::Cpu).unwrap();
        let p = LocalParams { mode: Some(LabelMode::Instruct), max_new_tokens: 24, max_rationale: 30, batch, ..Default::default() };
        let mut b = LocalGemmaBackend::new(g, "tiny", p).unwrap();
        let out: Vec<_> = b.answer(&prompt, &reviews).into_iter().map(|r| r.unwrap()).collect();
        (out, b.stats.clone())
    };
    let (one, s1) = answer(1);
    let (three, s3) = answer(3);
    for (i, (a, b)) in one.iter().zip(&three).enumerate() {
        // Q8_0 weights: exact, one-token steps included
        assert_eq!(a.raw, b.raw, "review {i}");
        assert_eq!(a.probs.map(|p| bits(&(*p)[..])), b.probs.map(|p| bits(&(*p)[..])), "review {i}");
        assert!(revmod::label::parse_output(&a.raw).parse_success, "{}", a.raw);
    }
    assert_eq!((s1.decode_steps, s1.reviews), (s3.decode_steps, s3.reviews));
    let _ = std::fs::remove_dir_all(&t.dir);
}

fn model_spec() -> Option<String> {
    match llm::embedded::embedded_model_path() {
        Ok(p) if p.exists() => Some(p.to_string_lossy().into_owned()),
        _ => {
            eprintln!("SKIP: the embedded model is not installed (scripts/setup-model)");
            None
        }
    }
}

#[test]
fn real_model_batched_forward_is_exact_for_several_token_pieces_and_bounded_after_single_ones() {
    let Some(spec) = model_spec() else { return };
    let mut g = llm::load_gemma(&spec).unwrap();
    let tok = g.tokenizer().clone();
    let enc = |s: &str| tok.encode_with(s, false, false);
    let mut prefix = tok.encode_with("", true, false);
    prefix.extend(enc("Google Maps reviews checked by a moderator.\n\nPlace: Harbor Grill (Seafood restaurant)\nReview: Waited 40 minutes and the chowder was cold.\nAbout this place: yes\n\n"));
    let rounds = vec![
        vec![enc("Place: Tony's Tire\nReview: Honest shop, fixed my flat fast.\nAbout this place:"), enc("Place: Golden Wok\nReview: Message me on WhatsApp for crypto tips\nAbout this place:"), enc(" no")],
        vec![enc(" yes\nSpam:"), enc(" no"), enc(" yes")],
        vec![enc(" no"), enc(" yes\nSomething else:"), enc("\n\nPlace: Shell\nReview: wrong place")],
    ];
    // Pieces of several tokens (all that few-shot scoring feeds): bit for bit. A piece of one token runs
    // candle's Q6_K product on one row (a GEMV over the compact blocks) where the batch runs it on several
    // rows (repacked tiles), whose float sums round differently; the next layer's 8-bit activation
    // quantization can turn such a last-bit difference into a step of 1/127, so the logits move by up to a few
    // percent (measured 2.9e-2 of the largest logit on these pieces): bounded, not exact.
    let worst = check_batched_equals_single(g.model(), &prefix, &rounds, "Gemma-3 270M", Tol { multi: None, single: Some(0.1) });
    eprintln!("Gemma-3 270M, one-token pieces: largest difference {worst:e} of max |logit|");
}

fn utah_reviews(n: usize) -> Vec<ReviewInput> {
    let df = revmod::data::load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json")).unwrap().df;
    let (all, _) = revmod::label::reviews_from_df(&df).unwrap();
    revmod::label::sample_indices(all.len(), n, 7).into_iter().map(|i| all[i].clone()).collect()
}

#[test]
fn real_model_fewshot_labels_do_not_depend_on_the_batch() {
    let Some(spec) = model_spec() else { return };
    let reviews = utah_reviews(11);
    let label = |batch: usize| {
        let p = LocalParams { batch, ..Default::default() };
        let b = LocalGemmaBackend::load(Some(&spec), p).unwrap();
        assert_eq!(b.mode(), LabelMode::FewShot);
        let mut l = Labeler::new(Box::new(b));
        l.label(&reviews)
    };
    let one = label(1);
    let four = label(4);
    assert_eq!(one.len(), reviews.len());
    let mut modeled = 0;
    for (i, (a, b)) in one.iter().zip(&four).enumerate() {
        assert!(!a.failed && !b.failed, "review {i}: {} / {}", a.raw, b.raw);
        assert_eq!(a.raw, b.raw, "review {i}");
        assert_eq!(a.probs.map(|p| bits(&(*p)[..])), b.probs.map(|p| bits(&(*p)[..])), "review {i}");
        assert_eq!(a.labels, b.labels, "review {i}");
        modeled += usize::from(!a.guarded);
    }
    assert!(modeled >= 8, "only {modeled} reviews reached the model");
}

#[test]
fn real_model_lockstep_instruct_answers_equal_one_at_a_time() {
    let Some(spec) = model_spec() else { return };
    let prompt = ModeratorPrompt::default();
    let reviews = utah_reviews(5);
    let answer = |batch: usize| {
        let p = LocalParams { mode: Some(LabelMode::Instruct), max_new_tokens: 24, batch, ..Default::default() };
        let mut b = LocalGemmaBackend::load(Some(&spec), p).unwrap();
        b.answer(&prompt, &reviews).into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()
    };
    let one = answer(1);
    let three = answer(3);
    // One-token decode steps in a batch round Q6_K sums differently (see real_model_batched_forward_is_exact...): the
    // same answers on these reviews, probabilities within 2e-2.
    for (i, (a, b)) in one.iter().zip(&three).enumerate() {
        assert_eq!(a.raw, b.raw, "review {i}");
        let (p, q) = (a.probs.unwrap(), b.probs.unwrap());
        let d = p.iter().zip(q.iter()).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d <= 2e-2, "review {i}: probabilities {p:?} / {q:?}");
    }
}

// ---- resume safety: SIGKILL during a batched checkpointed run ----

const CKPT_N: usize = 12;
const CKPT_PART: usize = 4;

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-label-batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_ckpt(spec: &str, ckpt: &Path, batch: usize) -> anyhow::Result<revmod::label::CkptRun> {
    let df = revmod::data::load_df(format!("{UTAH}/review-Utah.sample.json"), format!("{UTAH}/meta-Utah.partial.json"))?.df;
    let b = LocalGemmaBackend::load(Some(spec), LocalParams { batch, ..Default::default() })?;
    label_with_ckpt(&df, CKPT_N, CKPT_PART, ckpt, &mut Labeler::new(Box::new(b)), &CkptOptions::default())
}

/// Not a test: the child process of the kill test, which runs it explicitly (`--ignored --exact`).
#[test]
#[ignore = "the kill test's child process, run by real_model_batched_ckpt_run_survives_sigkill"]
fn batch_child_process_entry() {
    let ckpt = std::env::var("REVMOD_BATCH_CHILD").expect("batch_child_process_entry is the kill test's child process");
    run_ckpt(&model_spec().unwrap(), Path::new(&ckpt), 4).unwrap();
}

#[test]
fn real_model_batched_ckpt_run_survives_sigkill() {
    let Some(spec) = model_spec() else { return };
    let root = tmp_dir("kill");
    // reference: uninterrupted, one review at a time
    let t0 = Instant::now();
    let reference = run_ckpt(&spec, &root.join("ref/labels_ckpt"), 1).unwrap().labeled;
    let full = t0.elapsed();
    assert_eq!(reference.height(), CKPT_N);
    let mut rng = revmod::rng::SplitMix64(0x5eed);
    let mut kills = 0;
    for trial in 0..3 {
        let ckpt = root.join(format!("t{trial}/labels_ckpt"));
        // kill at a random instant of a run (model load included), then resume in this process
        let delay = Duration::from_millis(rng.next_u64() % (full.as_millis() as u64 + 1));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "batch_child_process_entry", "--ignored", "--test-threads", "1"])
            .env("REVMOD_BATCH_CHILD", &ckpt)
            .env("REVMOD_NO_PROGRESS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let run = run_ckpt(&spec, &ckpt, 4).unwrap();
        assert!(run.labeled.equals_missing(&reference), "trial {trial}: the resumed batched run differs from the one-at-a-time run");
    }
    eprintln!("{kills} of 3 runs killed");
    let _ = std::fs::remove_dir_all(&root);
}

