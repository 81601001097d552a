//! Hub download (src/llm/fetch.rs, hf-hub) against a Hugging Face hub served on 127.0.0.1 by
//! tests/peers/hub_server.py (the endpoints and headers hf-hub 0.4 uses, standard library only), serving the
//! tiny random Gemma-3 of tests/llm_support/tiny.rs:
//! - first use downloads into an empty HF cache and generates the same tokens as the original checkpoint;
//!   a connection cut mid-file is resumed with a Range request; the sha256 matches;
//! - second use runs with the hub gone, and with offline set;
//! - an interrupted download (no retries) keeps its .part file and the next run continues it;
//! - 401/403 on a gated repo -> the gated error naming the model page; a typo'd repo, a missing revision or
//!   file, no network, a corrupted transfer and offline-without-cache -> their own errors; the token is sent
//!   but never written to the cache or shown in an error.

use revmod::llm::fetch::{fetch, HubError, HubOptions};
use revmod::llm::hub::HubRef;
use revmod::llm::{self, GenerateParams, ModelSpec};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

#[path = "llm_support/tiny.rs"]
mod tiny;

const TOKEN: &str = "hf_localtest_Secret_4f9a";

struct Hub {
    child: Child,
    port: u16,
    root: PathBuf,
}

impl Hub {
    /// Starts the hub on a free port serving `root` (repositories as root/org/name/...).
    fn start(root: &Path) -> Hub {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/hub_server.py");
        let python = std::env::var("REVMOD_PYTHON").ok().filter(|p| Path::new(p).exists()).unwrap_or_else(|| "python3".into());
        let mut child = Command::new(python)
            .arg(script)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tests/peers/hub_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("hub did not start: {line:?}"));
        Hub { child, port, root: root.to_path_buf() }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests served so far (tests/peers/hub_server.py logs one JSON line each).
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.root.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("revmod-hub-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(root: &Path, repo: &str, file: &str, from: &Path) {
    let dir = root.join(repo);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(from, dir.join(file)).unwrap();
}

fn opts(endpoint: &str, cache: &Path, token: Option<&str>) -> HubOptions {
    HubOptions {
        endpoint: endpoint.into(),
        cache: cache.to_path_buf(),
        token: token.map(str::to_string),
        offline: false,
        retries: 3,
        progress: true,
    }
}

fn hub_ref(s: &str) -> HubRef {
    HubRef::parse(s).unwrap()
}

/// Greedy tokens of the tiny model from a spec, loaded with `o`.
fn generate(spec: &ModelSpec, o: &HubOptions) -> Vec<u32> {
    let mut g = llm::load_gemma_with(spec, &candle_core::Device::Cpu, o).unwrap();
    let params = GenerateParams { max_new_tokens: 8, stop_at_eog: false, ..Default::default() };
    g.generate_ids(&[2, 4, 270, 273, 265], &params, None).unwrap().tokens
}

fn sha256(p: &Path) -> String {
    llm::embedded::sha256_file(p).unwrap()
}

/// Every byte under `dir` (files only), to check the token was never written.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.extend(b);
        }
    }
    out
}

#[test]
fn downloads_resumes_a_cut_transfer_generates_then_runs_offline() {
    let t = tiny::make_tiny("hubdl");
    let root = tmp("dl-root");
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        put(&root, "org/tiny-gemma", f, &t.dir.join(f));
    }
    std::fs::write(root.join("org/tiny-gemma/README.md"), "# a tiny random Gemma-3\n").unwrap();
    std::fs::write(root.join("hub.json"), r#"{"cut_once": ["org/tiny-gemma/model.safetensors"]}"#).unwrap();
    let cache = tmp("dl-cache");
    let hub = Hub::start(&root);
    let o = opts(&hub.endpoint(), &cache, None);
    let spec = ModelSpec::parse("org/tiny-gemma").unwrap();
    assert!(matches!(spec, ModelSpec::Hub(_)));

    // first use: downloads into the empty cache and generates what the original checkpoint generates
    let got = generate(&spec, &o);
    let want = generate(&ModelSpec::Path(t.dir.clone()), &o);
    assert_eq!(got, want, "the downloaded checkpoint generates differently");
    let snap = fetch(&hub_ref("org/tiny-gemma"), &o).unwrap();
    assert!(snap.starts_with(cache.join("models--org--tiny-gemma/snapshots")), "{}", snap.display());
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert_eq!(sha256(&snap.join(f)), sha256(&t.dir.join(f)), "{f}");
    }
    assert!(!snap.join("README.md").exists(), "only the files the model needs are downloaded");
    let reqs = hub.requests();
    let st: Vec<&serde_json::Value> = reqs.iter().filter(|r| r["path"].as_str().unwrap().ends_with("/model.safetensors")).collect();
    assert!(st.iter().any(|r| r["status"] == "cut"), "the hub did not cut the transfer: {st:?}");
    let resumed = st.iter().find(|r| r["range"].as_str().is_some_and(|g| g.starts_with("bytes=") && !g.starts_with("bytes=0-")));
    let resumed = resumed.unwrap_or_else(|| panic!("no Range request resumed the cut transfer: {st:?}"));
    assert_eq!(resumed["status"], 206);
    let n_before = reqs.len();

    // second use: the hub is gone; the cache is complete, so nothing is requested
    hub.stop();
    assert_eq!(generate(&spec, &o), want);
    let offline = HubOptions { offline: true, ..o.clone() };
    assert_eq!(generate(&spec, &offline), want);
    assert_eq!(std::fs::read_to_string(root.join("requests.log")).unwrap().lines().count(), n_before);
    // a model that is not cached needs the (now unreachable) hub: the network error says so, offline says offline
    match fetch(&hub_ref("org/other"), &o) {
        Err(e @ HubError::Network { .. }) => assert!(e.to_string().contains("HF_HUB_OFFLINE"), "{e}"),
        other => panic!("expected a network error, got {other:?}"),
    }
    match fetch(&hub_ref("org/other"), &offline) {
        Err(e @ HubError::NotCached { .. }) => assert!(e.to_string().contains("org/other"), "{e}"),
        other => panic!("expected not-cached, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn an_interrupted_download_continues_in_the_next_run() {
    let t = tiny::make_tiny("hubpart");
    let root = tmp("part-root");
    put(&root, "org/tiny-gguf", "tiny-q8_0.gguf", &t.gguf_q8);
    std::fs::write(root.join("hub.json"), r#"{"cut_once": ["org/tiny-gguf/tiny-q8_0.gguf"]}"#).unwrap();
    let cache = tmp("part-cache");
    let hub = Hub::start(&root);
    let o = HubOptions { retries: 0, ..opts(&hub.endpoint(), &cache, None) };
    let r = hub_ref("org/tiny-gguf");
    match fetch(&r, &o) {
        Err(e @ HubError::Interrupted { .. }) => assert!(e.to_string().contains("run again to resume"), "{e}"),
        other => panic!("expected an interrupted download, got {other:?}"),
    }
    let blobs = cache.join("models--org--tiny-gguf/blobs");
    let part = std::fs::read_dir(&blobs).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "part")).expect("a .part file");
    let kept = std::fs::metadata(&part).unwrap().len();
    let full = std::fs::metadata(&t.gguf_q8).unwrap().len();
    assert!(kept > 0 && kept < full, "partial file has {kept} of {full} bytes");
    // next run: continues from the partial file and loads the GGUF repository's only file
    let path = fetch(&r, &o).unwrap();
    assert_eq!(sha256(&path.join("tiny-q8_0.gguf")), sha256(&t.gguf_q8));
    let reqs = hub.requests();
    let want_range = format!("bytes={kept}-");
    assert!(reqs.iter().any(|q| q["range"] == want_range.as_str() && q["status"] == 206), "no request continued at byte {kept}: {reqs:?}");
    let g = llm::load_gemma_with(&ModelSpec::Hub(r), &candle_core::Device::Cpu, &o).unwrap();
    assert_eq!(g.info().format, "gguf");
    hub.stop();
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn gated_typo_missing_corrupt_and_offline_errors() {
    let t = tiny::make_tiny("huberr");
    let root = tmp("err-root");
    put(&root, "google/gated-tiny", "tiny-q8_0.gguf", &t.gguf_q8);
    put(&root, "org/corrupt", "model.gguf", &t.gguf_q8);
    put(&root, "org/two", "a.gguf", &t.gguf_q8);
    put(&root, "org/two", "b.gguf", &t.gguf_f32);
    std::fs::write(
        root.join("hub.json"),
        serde_json::json!({"token": TOKEN, "gated": ["google/gated-tiny"], "corrupt": ["org/corrupt/model.gguf"]}).to_string(),
    )
    .unwrap();
    let cache = tmp("err-cache");
    let hub = Hub::start(&root);
    let ep = hub.endpoint();
    let gated = hub_ref("google/gated-tiny");
    let page = format!("{ep}/google/gated-tiny");

    // 401 without a token, 403 with a token that has no access: the gated error naming the model page
    match fetch(&gated, &opts(&ep, &cache, None)) {
        Err(e @ HubError::Gated { token_sent: false, .. }) => {
            let s = e.to_string();
            assert!(s.contains(&page) && s.contains("accept the licence") && s.contains("no token"), "{s}");
        }
        other => panic!("expected the gated error, got {other:?}"),
    }
    let wrong = "hf_wrong_token_0000";
    match fetch(&gated, &opts(&ep, &cache, Some(wrong))) {
        Err(e @ HubError::Gated { token_sent: true, .. }) => {
            let s = e.to_string();
            assert!(s.contains(&page) && s.contains("no access") && !s.contains(wrong), "{s}");
        }
        other => panic!("expected the gated error, got {other:?}"),
    }
    // with the right token it downloads; the token was sent and is nowhere in the cache
    let p = fetch(&gated, &opts(&ep, &cache, Some(TOKEN))).unwrap();
    assert_eq!(sha256(&p.join("tiny-q8_0.gguf")), sha256(&t.gguf_q8));
    assert!(hub.requests().iter().any(|r| r["valid_token"] == true));
    let bytes = all_bytes(&cache);
    assert!(!bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()), "the token was written into the cache");

    let o = opts(&ep, &cache, Some(TOKEN));
    match fetch(&hub_ref("org/tiny-gemmaa"), &o) {
        Err(e @ HubError::RepoNotFound { .. }) => assert!(e.to_string().contains("org/tiny-gemmaa") && e.to_string().contains("check the name"), "{e}"),
        other => panic!("expected repo-not-found, got {other:?}"),
    }
    match fetch(&hub_ref("google/gated-tiny:nope.gguf"), &o) {
        Err(e @ HubError::FileNotFound { .. }) => assert!(e.to_string().contains("nope.gguf"), "{e}"),
        other => panic!("expected file-not-found, got {other:?}"),
    }
    match fetch(&hub_ref("google/gated-tiny@v9"), &o) {
        Err(e @ HubError::RevisionNotFound { .. }) => assert!(e.to_string().contains("v9"), "{e}"),
        other => panic!("expected revision-not-found, got {other:?}"),
    }
    match fetch(&hub_ref("org/two"), &o) {
        Err(e @ HubError::Layout { .. }) => assert!(e.to_string().contains("a.gguf, b.gguf") && e.to_string().contains("org/two:FILE"), "{e}"),
        other => panic!("expected the several-GGUF error, got {other:?}"),
    }
    // bytes that do not match the announced sha256 are rejected and removed
    match fetch(&hub_ref("org/corrupt:model.gguf"), &o) {
        Err(e @ HubError::Checksum { .. }) => assert!(e.to_string().contains("model.gguf") && e.to_string().contains("sha256"), "{e}"),
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(fetch(&hub_ref("org/corrupt:model.gguf"), &HubOptions { offline: true, ..o.clone() }).is_err(), "the corrupt file stayed in the cache");
    // no network: nothing listens on the port
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    match fetch(&hub_ref("org/tiny-gemma"), &opts(&format!("http://127.0.0.1:{dead}"), &cache, Some(TOKEN))) {
        Err(e @ HubError::Network { .. }) => {
            let s = e.to_string();
            assert!(s.contains(&dead.to_string()) && !s.contains(TOKEN) && !s.contains('\n'), "{s}");
        }
        other => panic!("expected a network error, got {other:?}"),
    }
    hub.stop();
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&t.dir);
}
