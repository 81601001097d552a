//! https for the OpenAI-compatible backend (rustls): against tests/peers/openai_tls_server.py, an
//! OpenAI-compatible server on 127.0.0.1 whose certificate the test makes (a throw-away CA via the `openssl`
//! command line, installed by scripts/setup). Trusting that CA (`ca_file`, what `SSL_CERT_FILE` sets) the
//! backend labels over TLS with its bearer key; without it the certificate is refused at once with a hint;
//! a wrong key is a clear 401 that never repeats the key, even when the server quotes it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

use revmod::label::openai::{ping_with, OpenAiBackend, OpenAiParams};
use revmod::label::{parse_output, LabelBackend, Labeler, ModeratorPrompt, ReviewInput};

const KEY: &str = "sk-test-Very-Secret-7d1e";

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(tag: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("revmod-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/openai_tls_server.py");
        let python = std::env::var("REVMOD_PYTHON").ok().filter(|p| Path::new(p).exists()).unwrap_or_else(|| "python3".into());
        let mut child = Command::new(python).arg(script).arg(&dir).arg(KEY).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.strip_prefix("READY ").and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("TLS server did not start (openssl installed?): {line:?}"));
        Server { child, port, dir }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/v1", self.port)
    }

    fn params(&self, key: Option<&str>, trust: bool) -> OpenAiParams {
        let mut p = OpenAiParams::new(&self.url(), "gemma-3-12b-it");
        p.api_key = key.map(str::to_string);
        p.ca_file = trust.then(|| self.dir.join("ca.pem"));
        p.max_retries = 2;
        p.backoff = std::time::Duration::from_millis(20);
        p.concurrency = 2;
        p
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn review(text: &str) -> ReviewInput {
    ReviewInput { text: text.into(), business_name: "Cafe Rio".into(), category: "Mexican restaurant".into() }
}

#[test]
fn labels_over_tls_with_the_test_ca_and_key() {
    let s = Server::start("ok");
    let models = ping_with(&s.params(Some(KEY), true)).expect("GET /v1/models over TLS");
    assert_eq!(models["data"][0]["id"], "gemma-3-12b-it");
    let reviews = vec![
        review("Great tacos and friendly staff, the salsa bar is fresh."),
        review("Use coupon SAVE20 at www.deals.example for cheap tacos!"),
        review("Never been there but I heard the owner is rude."),
    ];
    let mut b = OpenAiBackend::new(s.params(Some(KEY), true)).unwrap();
    let out = b.answer(&ModeratorPrompt::default(), &reviews);
    let parsed: Vec<_> = out.iter().map(|o| parse_output(&o.as_ref().expect("answered over TLS").raw)).collect();
    assert!(parsed.iter().all(|p| p.parse_success));
    assert!(!parsed[0].ads && parsed[0].is_relevant && !parsed[0].non_visit);
    assert!(parsed[1].ads && !parsed[1].is_relevant);
    assert!(parsed[2].non_visit && !parsed[2].ads);
    assert_eq!(b.requests.load(Ordering::Relaxed), 3, "one request per review, no retries");
    let log = std::fs::read_to_string(s.dir.join("requests.log")).unwrap();
    assert_eq!(log.matches(r#""response_format": "json_schema""#).count(), 3, "{log}");
    // through the Labeler as the notebook's step 8 does
    let mut labeler = Labeler::new(Box::new(b));
    let recs = labeler.label(&reviews[..1]);
    assert!(!recs[0].failed && recs[0].labels.parse_success);
    assert!(labeler.backend.model_id().starts_with("gemma-3-12b-it @ https://127.0.0.1:"));
}

#[test]
fn an_untrusted_certificate_is_refused_at_once_with_a_hint() {
    let s = Server::start("untrusted");
    let mut b = OpenAiBackend::new(s.params(Some(KEY), false)).unwrap();
    let out = b.answer(&ModeratorPrompt::default(), &[review("Good food.")]);
    let e = format!("{:#}", out[0].as_ref().unwrap_err());
    assert!(e.contains("TLS") && e.contains("SSL_CERT_FILE") && e.to_lowercase().contains("certificate"), "{e}");
    assert!(!e.contains(KEY), "{e}");
    assert_eq!(b.requests.load(Ordering::Relaxed), 1, "a certificate error is not retried");
    assert!(ping_with(&s.params(Some(KEY), false)).is_err());
}

#[test]
fn a_wrong_key_is_a_clear_error_that_never_shows_a_key() {
    let s = Server::start("key");
    let wrong = "sk-wrong-Key-Quoted-Back-42";
    let mut b = OpenAiBackend::new(s.params(Some(wrong), true)).unwrap();
    let out = b.answer(&ModeratorPrompt::default(), &[review("Good food.")]);
    let e = format!("{:#}", out[0].as_ref().unwrap_err());
    assert!(e.contains("HTTP 401") && e.contains("API key was refused"), "{e}");
    assert!(!e.contains(wrong) && e.contains("***"), "the key quoted by the server must be hidden: {e}");
    assert_eq!(b.requests.load(Ordering::Relaxed), 1, "a refused key is not retried");
    let e = format!("{:#}", ping_with(&s.params(Some(wrong), true)).unwrap_err());
    assert!(e.contains("401") && !e.contains(wrong), "{e}");
    // no key at all
    let mut b = OpenAiBackend::new(s.params(None, true)).unwrap();
    let e = format!("{:#}", b.answer(&ModeratorPrompt::default(), &[review("Good food.")])[0].as_ref().unwrap_err());
    assert!(e.contains("no API key was sent"), "{e}");
    // Debug never shows it either
    let d = format!("{:?}", s.params(Some(wrong), true));
    assert!(!d.contains(wrong) && d.contains("<hidden>"), "{d}");
}

#[test]
fn api_key_from_a_named_variable_and_certificate_file_errors() {
    // a variable that is not set is named, and no value is invented
    let e = OpenAiParams::new("https://x.example/v1", "m").with_api_key_env("REVMOD_TEST_UNSET_KEY_VAR").unwrap_err().to_string();
    assert!(e.contains("REVMOD_TEST_UNSET_KEY_VAR"), "{e}");
    // PATH is always set: its value becomes the key
    let p = OpenAiParams::new("https://x.example/v1", "m").with_api_key_env("PATH").unwrap();
    assert_eq!(p.api_key.as_deref(), Some(std::env::var("PATH").unwrap().trim()));
    // SSL_CERT_FILE that is not a certificate file
    let bad = std::env::temp_dir().join(format!("revmod-not-a-cert-{}.pem", std::process::id()));
    std::fs::write(&bad, "hello").unwrap();
    let mut p = OpenAiParams::new("https://x.example/v1", "m");
    p.ca_file = Some(bad.clone());
    let e = format!("{:#}", OpenAiBackend::new(p).err().unwrap());
    assert!(e.contains("SSL_CERT_FILE") && e.contains(&bad.display().to_string()), "{e}");
    let _ = std::fs::remove_file(&bad);
    let e = OpenAiBackend::new(OpenAiParams::new("localhost:8000", "m")).err().unwrap().to_string();
    assert!(e.contains("http:// or https://"), "{e}");
}
