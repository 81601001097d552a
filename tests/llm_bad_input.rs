//! Bad model input gives one line naming the file and what is wrong (src/llm/check.rs), never candle's
//! multi-line error or backtrace: truncated and corrupt safetensors and GGUF files, a config.json of another
//! architecture or size than the weights, a tokenizer of another model. Built on the tiny random Gemma-3
//! of tests/llm_support/tiny.rs. RUST_BACKTRACE=1 is set so that candle would append its backtrace. Each
//! case is told apart by its [`LoadError`] variant; the message is checked for the file it names.

use revmod::llm::{self, LoadError};
use std::path::{Path, PathBuf};

#[path = "llm_support/tiny.rs"]
mod tiny;

/// The error of loading `path`: asserts it is a [`LoadError`] whose message is one line naming `names`.
fn load_err(path: &Path, names: &str) -> LoadError {
    std::env::set_var("RUST_BACKTRACE", "1");
    let err = match llm::load_gemma(path.to_str().unwrap()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e,
    };
    let shown = format!("{err:#}");
    let e = err.downcast_ref::<LoadError>().unwrap_or_else(|| panic!("not a LoadError: {shown}")).clone();
    assert_eq!(shown, e.message(), "the CLI shows the message alone");
    let m = e.message();
    assert!(!m.contains('\n'), "not one line: {m}");
    assert!(!m.contains("backtrace") && !m.contains("at /rustc"), "backtrace in: {m}");
    assert!(m.contains(names), "{m} should name {names}");
    e
}

/// A copy of the tiny HF checkpoint (config.json, tokenizer.json, model.safetensors) in its own directory.
fn checkpoint_copy(t: &tiny::Tiny, tag: &str) -> PathBuf {
    let d = t.dir.join(tag);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(t.dir.join(f), d.join(f)).unwrap();
    }
    d
}

fn truncate(path: &Path, frac: f64) {
    let b = std::fs::read(path).unwrap();
    std::fs::write(path, &b[..(b.len() as f64 * frac) as usize]).unwrap();
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let t = tiny::make_tiny("bad-st");
    let d = checkpoint_copy(&t, "trunc");
    truncate(&d.join("model.safetensors"), 0.7);
    let e = load_err(&d, &d.join("model.safetensors").display().to_string());
    assert!(matches!(e, LoadError::BadFile(_)), "{e:?}");
    assert!(e.message().contains("truncated safetensors file") && e.message().contains("fetch it again"), "{e}");
    // cut inside the JSON header
    truncate(&d.join("model.safetensors"), 0.001);
    let e = load_err(&d, "model.safetensors");
    assert!(matches!(e, LoadError::BadFile(_)) && e.message().contains("truncated"), "{e:?}");
    // bytes of the JSON header overwritten
    let d = checkpoint_copy(&t, "corrupt");
    let p = d.join("model.safetensors");
    let mut b = std::fs::read(&p).unwrap();
    b[9..20].copy_from_slice(b"\x00\xff garbage!");
    std::fs::write(&p, b).unwrap();
    let e = load_err(&d, "model.safetensors");
    assert!(matches!(e, LoadError::BadFile(_)) && e.message().contains("corrupt safetensors header"), "{e:?}");
    // not a safetensors file at all
    std::fs::write(&p, "this is a text file, not weights\n".repeat(4)).unwrap();
    let e = load_err(&d, "model.safetensors");
    assert!(matches!(e, LoadError::BadFile(_)), "{e:?}");
    assert!(e.message().contains("not a safetensors file") || e.message().contains("truncated"), "{e}");
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn truncated_and_corrupt_gguf() {
    let t = tiny::make_tiny("bad-gguf");
    let g = t.dir.join("cut.gguf");
    std::fs::copy(&t.gguf_q8, &g).unwrap();
    truncate(&g, 0.6);
    let e = load_err(&g, &g.display().to_string());
    assert!(matches!(e, LoadError::BadFile(_)), "{e:?}");
    assert!(e.message().contains("truncated GGUF file") && e.message().contains("the file has"), "{e}");
    // cut inside the metadata
    truncate(&g, 0.02);
    let e = load_err(&g, "cut.gguf");
    assert!(matches!(e, LoadError::BadFile(_)) && e.message().contains("truncated"), "{e:?}");
    // not a GGUF file
    let g = t.dir.join("text.gguf");
    std::fs::write(&g, "hello, I am not a model ".repeat(20)).unwrap();
    let e = load_err(&g, "text.gguf");
    assert!(matches!(e, LoadError::BadFile(_)) && e.message().contains("not a readable GGUF file"), "{e:?}");
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn a_config_of_another_architecture_or_size() {
    let t = tiny::make_tiny("bad-cfg");
    let d = checkpoint_copy(&t, "llama");
    std::fs::write(d.join("config.json"), r#"{"model_type":"llama","hidden_size":64}"#).unwrap();
    let e = load_err(&d, "config.json");
    assert!(matches!(e, LoadError::WrongArchitecture(_)), "{e:?}");
    assert!(e.message().contains("not a Gemma-3") && e.message().contains("llama"), "{e}");
    // a Gemma-3 config of another size than the weights (hidden 128 instead of 64)
    let d = checkpoint_copy(&t, "size");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    cfg["hidden_size"] = 128.into();
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&d, &d.display().to_string());
    assert!(matches!(e, LoadError::ConfigMismatch(_)), "{e:?}");
    assert!(e.message().contains("belongs to another model") || e.message().contains("belong to different models"), "{e}");
    // intermediate size only: caught at the first projection, named
    let d = checkpoint_copy(&t, "inter");
    cfg["hidden_size"] = tiny::HIDDEN.into();
    cfg["intermediate_size"] = (tiny::INTER * 2).into();
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&d, "layers.0.mlp.gate_proj");
    assert!(matches!(e, LoadError::ConfigMismatch(_)) && e.message().contains("belong to different models"), "{e:?}");
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn a_tokenizer_of_another_model() {
    let t = tiny::make_tiny("bad-tok");
    let tok: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(t.dir.join("tokenizer.json")).unwrap()).unwrap();
    // more tokens than the model has embedding rows
    let d = checkpoint_copy(&t, "bigger");
    let mut big = tok.clone();
    let vocab = big["model"]["vocab"].as_object_mut().unwrap();
    let n = vocab.len() + 6;
    for i in 0..50 {
        vocab.insert(format!("extra{i}"), (n + i).into());
    }
    std::fs::write(d.join("tokenizer.json"), big.to_string()).unwrap();
    let e = load_err(&d, "tokenizer.json");
    assert!(matches!(e, LoadError::TokenizerMismatch(_)), "{e:?}");
    assert!(e.message().contains("different models") && e.message().contains("tokens"), "{e}");
    // no Gemma chat markers: a tokenizer of another family
    let d = checkpoint_copy(&t, "family");
    let mut other = tok.clone();
    for a in other["added_tokens"].as_array_mut().unwrap() {
        if a["content"] == "<start_of_turn>" {
            a["content"] = "<|im_start|>".into();
        }
    }
    std::fs::write(d.join("tokenizer.json"), other.to_string()).unwrap();
    let e = load_err(&d, "tokenizer.json");
    assert!(matches!(e, LoadError::TokenizerMismatch(_)), "{e:?}");
    assert!(e.message().contains("not a Gemma-3 tokenizer") && e.message().contains("<start_of_turn>"), "{e}");
    let _ = std::fs::remove_dir_all(&t.dir);
}
