//! `revmod generate --model org/name` as a user runs it, against a Hugging Face hub served on 127.0.0.1
//! (../tests/peers/hub_server.py) through the environment a user sets: HF_ENDPOINT, HF_HOME, HF_TOKEN, and
//! `--offline`. The served model is the real Gemma-3 270M GGUF (scripts/setup-model), in a gated repository:
//! without a token the command fails with one line naming the model page; with it, the first run downloads
//! (progress on stderr, the token nowhere in the output) and generates what the local file generates; with
//! the hub stopped, `--offline` generates the same again from the cache.
//! Skipped with a message when the model is not installed (scripts/setup installs it; CI runs this).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TOKEN: &str = "hf_cli_test_Token_93b1";
const REPO: &str = "google/gemma-3-270m-hubtest";
const FILE: &str = "gemma-3-270m-q4_k_m.gguf";

fn model_path() -> PathBuf {
    let dir = std::env::var_os("REVMOD_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        cache.join("revmod/models")
    });
    dir.join(FILE)
}

/// `revmod ARGS` with a clean Hugging Face environment: the cache under `hf_home`, the hub at `endpoint`.
fn revmod(hf_home: &Path, endpoint: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_revmod"));
    for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "RUST_BACKTRACE"] {
        c.env_remove(k);
    }
    c.env("HF_HOME", hf_home).env("HF_ENDPOINT", endpoint);
    if let Some(t) = token {
        c.env("HF_TOKEN", t);
    }
    c.args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn generate_downloads_a_gated_model_then_runs_offline() {
    let model = model_path();
    if !model.exists() {
        eprintln!("SKIP generate_downloads_a_gated_model_then_runs_offline: needs {} (scripts/setup-model)", model.display());
        return;
    }
    let tmp = std::env::temp_dir().join(format!("revmod-cli-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (root, hf_home) = (tmp.join("hub-root"), tmp.join("hf-home"));
    std::fs::create_dir_all(root.join(REPO)).unwrap();
    std::os::unix::fs::symlink(&model, root.join(REPO).join(FILE)).unwrap();
    std::fs::write(root.join("hub.json"), serde_json::json!({"token": TOKEN, "gated": [REPO]}).to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/hub_server.py");
    let mut hub = Command::new("python3").arg(script).arg(&root).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(hub.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.strip_prefix("READY ").unwrap().trim().parse().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let gen = ["generate", "--model", REPO, "--max-new-tokens", "8", "The capital of France is"];

    // no token: one line naming the page where the licence is accepted
    let out = revmod(&hf_home, &endpoint, None, &gen);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{endpoint}/{REPO}")) && err.contains("accept the licence") && err.contains("gated"), "{err}");

    // with the token: downloads (progress on stderr) and generates what the local file generates
    let out = revmod(&hf_home, &endpoint, Some(TOKEN), &gen);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("downloading {FILE}")), "no progress line: {err}");
    let first = text(&out.stdout);
    assert!(!first.contains(TOKEN) && !err.contains(TOKEN));
    let local = revmod(&hf_home, &endpoint, None, &["generate", "--model", model.to_str().unwrap(), "--max-new-tokens", "8", "The capital of France is"]);
    assert_eq!(first, text(&local.stdout), "the downloaded model generates differently");
    let snapshot = hf_home.join("hub").join(format!("models--{}", REPO.replace('/', "--")));
    assert!(snapshot.join("refs/main").is_file());

    // the hub is gone: --offline reads the cache, and `fetch` prints the cached path
    drop(hub.stdin.take());
    let _ = hub.kill();
    let _ = hub.wait();
    let mut offline = vec!["--offline"];
    offline.extend(gen);
    let out = revmod(&hf_home, &endpoint, None, &offline);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), first);
    let out = revmod(&hf_home, &endpoint, None, &["fetch", "--offline", REPO]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(Path::new(text(&out.stdout).trim()).starts_with(&snapshot), "{}", text(&out.stdout));
    // a repository that is not cached, offline: says so in one line
    let out = revmod(&hf_home, &endpoint, None, &["--offline", "fetch", "google/not-here"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("offline") && err.contains("google/not-here"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
