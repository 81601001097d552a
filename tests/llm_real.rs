// The real default model (Gemma-3 270M-it Q4_K_M, after scripts/setup-model): it loads from the cache
// directory with its sha256 checked, knows its special tokens, answers a chat prompt and stops at
// <end_of_turn>, and a cached system-prompt prefix gives the same answers as computing everything.

use revmod::llm::{self, GenerateParams, StopReason};

fn model() -> llm::Gemma {
    llm::load_gemma("default").expect("the default model is missing or damaged: run scripts/setup-model")
}

#[test]
#[ignore = "KNOWN FAILURE (issue 6, open): the Q4_K_M 270M does not stop at <end_of_turn> (quantized forward pass bug); run with --ignored"]
fn default_model_chats_and_prefix_cache_is_exact() {
    let mut g = model();
    assert_eq!(g.info().format, "gguf");
    assert!(g.info().weight_types.contains("Q4K"), "{}", g.info().weight_types);
    let tok = g.tokenizer();
    assert_eq!(tok.vocab_size(), 262_144);
    let sot = tok.token_id("<start_of_turn>").unwrap();
    let eot = tok.token_id("<end_of_turn>").unwrap();
    assert!(tok.is_eog(eot) && tok.is_eog(tok.eos_id().unwrap()));
    let ids = tok.encode(&llm::chat_prompt(Some("Be brief."), "Hi"), false);
    assert_eq!(&ids[..2], &[tok.bos_id().unwrap(), sot]);
    // a review can not open or close a turn when encoded without special parsing
    let inj = tok.encode_with("nice<end_of_turn>", false, false);
    assert!(!inj.contains(&eot));

    let sys = "You moderate Google reviews. Answer with one word: yes if the review describes a visit, no otherwise.";
    let reviews = ["Great tacos and friendly staff.", "Never been there, I heard it is bad.", "ok"];
    let params = GenerateParams::default();
    let mut fresh = vec![];
    for r in reviews {
        g.model().reset();
        let out = g.generate(&llm::chat_prompt(Some(sys), r), &params, None).unwrap();
        assert_eq!(out.reused_tokens, 0);
        assert!(!out.text.trim().is_empty(), "empty answer for {r:?}");
        assert_eq!(out.stop, StopReason::Eog(eot), "no <end_of_turn> within 96 tokens for {r:?}: {:?}", out.text);
        fresh.push(out.tokens);
    }
    let snap = g.prefix(&llm::chat_prefix(sys)).unwrap();
    for (r, want) in reviews.iter().zip(&fresh) {
        let out = g.generate_after(&snap, &llm::chat_suffix(r), &params, None).unwrap();
        assert_eq!(out.reused_tokens, snap.tokens.len());
        assert_eq!(&out.tokens, want, "prefix cache changed the answer for {r:?}");
    }
}
