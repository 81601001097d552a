//! Any OpenAI-compatible chat-completions server as a labeling backend (vLLM, llama.cpp's llama-server,
//! Ollama, llama-cpp-python's server, hosted APIs such as Google's Gemini API or OpenRouter): how users label
//! at scale on a GPU cluster.
//!
//! N requests run concurrently (one thread each, a shared work queue); transport errors, timeouts,
//! 429 and 5xx answers are retried with exponential backoff and jitter; each request has a time limit.
//! The answer is constrained with a JSON-schema `response_format` when the server accepts it; a server
//! that rejects it (HTTP 400 naming the field) is asked again with `json_object`, then with none, and
//! that choice is remembered for the rest of the run. `http://` and `https://` (rustls; trust roots: the system
//! bundle plus `SSL_CERT_FILE`, see [`super::tls`]). The API key comes from `OPENAI_API_KEY` or a named
//! variable ([`OpenAiParams::with_api_key_env`]); it is sent as a bearer header only, hidden from `Debug`
//! and removed from any server text quoted in an error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::backend::{LabelBackend, RawOutput};
use super::parser::VIOLATIONS;
use super::{ModeratorPrompt, ReviewInput};

/// How the answer format is requested from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResponseFormat {
    /// `{"type": "json_schema", ...}` with the moderation schema (vLLM, llama.cpp, OpenAI).
    JsonSchema,
    /// `{"type": "json_object"}`: any JSON object.
    JsonObject,
    /// No `response_format`: free text, parsed with the seed's rules.
    None,
}

/// Settings of the OpenAI-compatible client (`Debug` hides the API key).
#[derive(Clone)]
pub struct OpenAiParams {
    /// Base URL up to and including `/v1` (e.g. `http://127.0.0.1:8080/v1`).
    pub base_url: String,
    /// Model name sent in each request (as the server knows it).
    pub model: String,
    /// Bearer token (default: env `OPENAI_API_KEY` when set); never printed.
    pub api_key: Option<String>,
    /// Extra trusted certificates for https (default: env `SSL_CERT_FILE`), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries after the first attempt for retryable failures.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry (with jitter), capped at 30 s.
    pub backoff: Duration,
    /// Time limit of one request (connect + answer).
    pub timeout: Duration,
    /// The seed's max_new_tokens.
    pub max_tokens: u32,
    /// 0 = greedy, as the seed's do_sample=False.
    pub temperature: f32,
    /// Preferred answer format (downgraded automatically when the server rejects it).
    pub response_format: ResponseFormat,
    /// Send the rules as a `system` message (true) or fold them into the user turn as Gemma's template does.
    pub system_role: bool,
}

impl OpenAiParams {
    /// Defaults for a server at `base_url` serving `model`: 8 concurrent requests, 4 retries from 0.5 s,
    /// 120 s per request, 96 new tokens, greedy, JSON schema, rules folded into the user turn.
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.trim().is_empty()).map(|k| k.trim().to_string()),
            ca_file: std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()).map(PathBuf::from),
            concurrency: 8,
            max_retries: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(120),
            max_tokens: 96,
            temperature: 0.0,
            response_format: ResponseFormat::JsonSchema,
            system_role: false,
        }
    }
}

impl OpenAiParams {
    /// Takes the API key from the environment variable `name` (e.g. `GEMINI_API_KEY`, `OPENROUTER_API_KEY`);
    /// an unset or empty variable is an error naming it (never the value).
    pub fn with_api_key_env(mut self, name: &str) -> Result<Self> {
        match std::env::var(name) {
            Ok(k) if !k.trim().is_empty() => {
                self.api_key = Some(k.trim().to_string());
                Ok(self)
            }
            _ => bail!("the API key variable {name} is not set (or empty)"),
        }
    }
}

impl std::fmt::Debug for OpenAiParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiParams")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("ca_file", &self.ca_file)
            .field("concurrency", &self.concurrency)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("response_format", &self.response_format)
            .field("system_role", &self.system_role)
            .finish()
    }
}

/// The HTTP agent for `params`: its time limit, connection pool, and for https the trust roots of
/// [`super::tls::root_certs`]. Errors: a URL that is not http(s), an unreadable `SSL_CERT_FILE`.
fn make_agent(params: &OpenAiParams) -> Result<ureq::Agent> {
    let url = params.base_url.as_str();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        bail!("{url}: the server URL must start with http:// or https://");
    }
    let mut cfg = ureq::Agent::config_builder()
        .timeout_global(Some(params.timeout))
        .http_status_as_error(false)
        .max_idle_connections_per_host(params.concurrency.max(1));
    if url.starts_with("https://") {
        let roots = super::tls::root_certs(params.ca_file.as_deref()).with_context(|| format!("setting up TLS for {url}"))?;
        cfg = cfg.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    Ok(cfg.build().into())
}

/// The JSON schema of the moderator's answer. `maxItems` and `maxLength` keep grammar-constrained servers
/// (llama.cpp ignores `uniqueItems`) from running past the token budget.
pub fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "is_relevant": {"type": "boolean"},
            "violations": {"type": "array", "items": {"type": "string", "enum": VIOLATIONS}, "uniqueItems": true, "maxItems": 4},
            "rationale": {"type": "string", "maxLength": 160}
        },
        "required": ["is_relevant", "violations", "rationale"],
        "additionalProperties": false
    })
}

/// OpenAI-compatible chat-completions backend.
pub struct OpenAiBackend {
    params: OpenAiParams,
    agent: ureq::Agent,
    format: Mutex<ResponseFormat>,
    /// Requests sent (including retries), for reports and tests.
    pub requests: AtomicUsize,
    /// Retries made.
    pub retries: AtomicUsize,
    /// Warnings not yet handed to the caller ([`LabelBackend::take_warnings`]).
    warnings: Mutex<Vec<String>>,
}

/// One failed attempt: retry it or give up.
enum Failure {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
    FormatRejected(anyhow::Error),
}

impl OpenAiBackend {
    /// A client for `params` (no request is made until labeling starts).
    pub fn new(params: OpenAiParams) -> Result<Self> {
        let agent = make_agent(&params)?;
        let format = Mutex::new(params.response_format);
        Ok(Self { params, agent, format, requests: AtomicUsize::new(0), retries: AtomicUsize::new(0), warnings: Mutex::new(Vec::new()) })
    }

    /// The settings in use.
    pub fn params(&self) -> &OpenAiParams {
        &self.params
    }

    /// The request body for one review.
    pub fn request_body(&self, prompt: &ModeratorPrompt, review: &ReviewInput, format: ResponseFormat) -> Value {
        let user = prompt.user_turn(review);
        let messages = if self.params.system_role {
            json!([{"role": "system", "content": prompt.system}, {"role": "user", "content": user}])
        } else {
            json!([{"role": "user", "content": format!("{}\n\n{}", prompt.system, user)}])
        };
        let mut body = json!({
            "model": self.params.model,
            "messages": messages,
            "max_tokens": self.params.max_tokens,
            "temperature": self.params.temperature,
            "stream": false,
        });
        match format {
            ResponseFormat::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "moderation", "strict": true, "schema": answer_schema()}
                })
            }
            ResponseFormat::JsonObject => body["response_format"] = json!({"type": "json_object"}),
            ResponseFormat::None => {}
        }
        body
    }

    fn attempt(&self, body: &Value) -> std::result::Result<String, Failure> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/chat/completions", self.params.base_url);
        let mut req = self.agent.post(&url).header("Content-Type", "application/json");
        if let Some(key) = &self.params.api_key {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        let mut resp = match req.send(body.to_string()) {
            Ok(r) => r,
            Err(e) if is_tls_error(&e) => {
                return Err(Failure::Fatal(anyhow!(
                    "POST {url}: TLS: {e} (if the server uses a private CA, point SSL_CERT_FILE at its certificate)"
                )))
            }
            Err(e) => return Err(Failure::Retry(anyhow!("POST {url}: {e}"))),
        };
        let status = resp.status().as_u16();
        let text = self.redact(resp.body_mut().with_config().limit(16 << 20).read_to_string().unwrap_or_default());
        if status == 401 || status == 403 {
            let key = if self.params.api_key.is_some() { "the API key was refused" } else { "no API key was sent (OPENAI_API_KEY)" };
            return Err(Failure::Fatal(anyhow!("POST {url}: HTTP {status}, {key}: {}", snippet(&text))));
        }
        if status == 429 || status >= 500 {
            return Err(Failure::Retry(anyhow!("POST {url}: HTTP {status}: {}", snippet(&text))));
        }
        if status >= 400 {
            let lower = text.to_lowercase();
            let about_format = lower.contains("response_format")
                || lower.contains("json_schema")
                || lower.contains("schema")
                || lower.contains("json mode");
            let err = anyhow!("POST {url}: HTTP {status}: {}", snippet(&text));
            return Err(if about_format && body.get("response_format").is_some() { Failure::FormatRejected(err) } else { Failure::Fatal(err) });
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Retry(anyhow!("POST {url}: answer is not JSON ({e}): {}", snippet(&text))))?;
        let content = &v["choices"][0]["message"]["content"];
        match content {
            Value::String(s) => Ok(s.clone()),
            _ => Err(Failure::Fatal(anyhow!("POST {url}: no choices[0].message.content in {}", snippet(&text)))),
        }
    }

    /// `text` with the API key replaced by `***` (servers may quote the request in an error).
    fn redact(&self, text: String) -> String {
        match &self.params.api_key {
            Some(k) if k.len() >= 4 && text.contains(k.as_str()) => text.replace(k.as_str(), "***"),
            _ => text,
        }
    }

    /// Labels one review: retries with backoff, downgrades the answer format when the server rejects it.
    pub fn complete(&self, prompt: &ModeratorPrompt, review: &ReviewInput) -> Result<String> {
        let mut tries = 0u32;
        loop {
            let format = *self.format.lock().expect("format lock");
            let body = self.request_body(prompt, review, format);
            match self.attempt(&body) {
                Ok(s) => return Ok(s),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::FormatRejected(e)) => {
                    let mut f = self.format.lock().expect("format lock");
                    let next = match format {
                        ResponseFormat::JsonSchema => ResponseFormat::JsonObject,
                        _ => ResponseFormat::None,
                    };
                    if *f < next {
                        let w = format!("openai backend: server rejected response_format {format:?} ({e:#}); using {next:?}");
                        self.warnings.lock().expect("warnings lock").push(w);
                        *f = next;
                    }
                }
                Err(Failure::Retry(e)) => {
                    if tries >= self.params.max_retries {
                        return Err(e.context(format!("giving up after {} attempts", tries + 1)));
                    }
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    let base = self.params.backoff.as_millis() as u64 * (1u64 << tries.min(16));
                    let jitter = jitter_ms(base / 4 + 1);
                    std::thread::sleep(Duration::from_millis((base + jitter).min(30_000)));
                    tries += 1;
                }
            }
        }
    }
}

/// A TLS failure (untrusted or invalid certificate, handshake refused): not worth retrying. rustls errors
/// reach ureq through I/O during the handshake, so the message is looked at too.
fn is_tls_error(e: &ureq::Error) -> bool {
    if matches!(e, ureq::Error::Rustls(_) | ureq::Error::Tls(_)) {
        return true;
    }
    let s = e.to_string().to_lowercase();
    matches!(e, ureq::Error::Io(_)) && (s.contains("certificate") || s.contains("fatal alert") || s.contains("handshake"))
}

fn snippet(s: &str) -> String {
    let t: String = s.chars().take(300).collect();
    t.replace('\n', " ")
}

fn jitter_ms(bound: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    u64::from(nanos) % bound.max(1)
}

impl LabelBackend for OpenAiBackend {
    fn backend_name(&self) -> String {
        "openai".into()
    }
    fn model_id(&self) -> String {
        format!("{} @ {}", self.params.model, self.params.base_url)
    }
    fn settings(&self) -> String {
        format!("max_tokens={} temperature={} format={:?}", self.params.max_tokens, self.params.temperature, self.params.response_format)
    }
    fn preferred_batch(&self) -> usize {
        self.params.concurrency.max(1) * 4
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("warnings lock"))
    }
    fn answer(&mut self, prompt: &ModeratorPrompt, reviews: &[ReviewInput]) -> Vec<Result<RawOutput>> {
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<RawOutput>>>> = reviews.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.params.concurrency.max(1).min(reviews.len());
        let this = &*self;
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= reviews.len() {
                        break;
                    }
                    let r = this.complete(prompt, &reviews[i]).map(|raw| RawOutput { raw, probs: None });
                    *slots[i].lock().expect("slot lock") = Some(r);
                });
            }
        });
        slots
            .into_iter()
            .map(|m| m.into_inner().expect("slot lock").unwrap_or_else(|| Err(anyhow!("request was not made"))))
            .collect()
    }
}

/// Checks that a server answers at `base_url` (GET /models) with the defaults of [`OpenAiParams::new`]
/// (key from `OPENAI_API_KEY`, `SSL_CERT_FILE`), with context naming the URL.
pub fn ping(base_url: &str, timeout: Duration) -> Result<Value> {
    let mut p = OpenAiParams::new(base_url, "");
    p.timeout = timeout;
    ping_with(&p)
}

/// [`ping`] with explicit settings (URL, key, trust roots, time limit).
pub fn ping_with(params: &OpenAiParams) -> Result<Value> {
    let agent = make_agent(params)?;
    let url = format!("{}/models", params.base_url);
    let mut req = agent.get(&url);
    if let Some(key) = &params.api_key {
        req = req.header("Authorization", &format!("Bearer {key}"));
    }
    let mut resp = req.call().with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().with_context(|| format!("reading GET {url}"))?;
    let text = match &params.api_key {
        Some(k) if k.len() >= 4 => text.replace(k.as_str(), "***"),
        _ => text,
    };
    if status >= 400 {
        bail!("GET {url}: HTTP {status}: {}", snippet(&text));
    }
    serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {}", snippet(&text)))
}
