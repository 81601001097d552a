//! Executes cells with the evcxr library (`CommandContext`, the engine of the evcxr Jupyter
//! kernel), so `:dep`, `:opt`, variables across cells and `evcxr_display` behave as in JupyterLab.
//!
//! Failure detection: compile errors come back from evcxr; panics, `Err` from `?` and the death
//! of the evaluation process are read from the event lines our proxy adds (see `proxy`); a
//! watchdog kills the evaluation process (and any cargo build we started) past the cell timeout.
//!
//! Reuse between runs: evcxr builds in a fixed folder (`EVCXR_TMPDIR`) outside any Cargo
//! workspace, one locked slot per live session (see `slots`: a fresh slot starts as a copy of a
//! warm one), so compiled dependencies stay warm and a re-run compiles only the cells.

use super::slots::{self, Slot};
use super::outputs::{panic_message, CellRun, Event, Failure};
use super::proxy::{DISPLAY_PREFIX, EVENT_PREFIX, PROXY_ENV};
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One raw line from the evaluation process.
#[derive(Debug, Clone)]
pub enum Line {
    /// A line on stdout (including the proxy's event and display lines).
    Out(String),
    /// A line on stderr.
    Err(String),
}

impl Line {
    /// True for the proxy's bookkeeping lines (events, display copies) and evcxr's display
    /// framing, which are not printed output.
    pub fn is_protocol(&self) -> bool {
        match self {
            Line::Out(l) => {
                l.starts_with(EVENT_PREFIX)
                    || l.starts_with(DISPLAY_PREFIX)
                    || l.starts_with("EVCXR_")
            }
            Line::Err(_) => false,
        }
    }
}

/// Where a session copies its output lines as they arrive (the Jupyter kernel streams them to
/// the cell while it runs; the headless runner only records them).
pub type Tap = crossbeam_channel::Sender<Line>;

/// A live evcxr session with its evaluation process.
pub struct Session {
    ctx: evcxr::CommandContext,
    lines: Arc<Mutex<Vec<Line>>>,
    slot: Slot,
    tap: Option<Tap>,
    /// The evcxr build folder used by this session.
    pub build_dir: PathBuf,
}

/// Where evcxr builds (the root of the build slots): `REVMOD_EVCXR_DIR`, else `EVCXR_TMPDIR`,
/// else `$XDG_CACHE_HOME/revmod/evcxr` (`~/.cache/revmod/evcxr`): outside any workspace, kept
/// between runs.
pub fn default_build_root() -> PathBuf {
    for var in ["REVMOD_EVCXR_DIR", "EVCXR_TMPDIR"] {
        if let Some(d) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("revmod").join("evcxr")
}

impl Session {
    /// Starts evcxr with the notebook's folder as working directory, loading the user's evcxr
    /// configuration (`init.evcxr`, `prelude.rs`) as the Jupyter kernel does.
    pub fn start(notebook_dir: &Path, build_root: &Path) -> Result<Session> {
        let mut s = Session::start_bare(notebook_dir, build_root, None)?;
        s.load_config()?;
        Ok(s)
    }

    /// Starts evcxr without the user's configuration (fast: no `:dep` build yet); `tap`, when
    /// given, receives every output line as it arrives. Call [`Session::load_config`] next.
    pub fn start_bare(notebook_dir: &Path, build_root: &Path, tap: Option<Tap>) -> Result<Session> {
        let slot = slots::take(build_root)?;
        let build_dir = slot.dir.clone();
        forget_cargo_package_env();
        // evcxr reads its build folder from the environment when it starts; the working folder
        // is inherited by the evaluation process, so relative `:dep` and data paths resolve
        // against the notebook's folder, as in JupyterLab.
        std::env::set_var("EVCXR_TMPDIR", &build_dir);
        std::env::set_current_dir(notebook_dir)
            .with_context(|| format!("entering the notebook folder {}", notebook_dir.display()))?;
        let mut proxy = std::process::Command::new(std::env::current_exe()?);
        proxy.env(PROXY_ENV, "1");
        let (eval, outputs) = evcxr::EvalContext::with_subprocess_command(proxy)
            .map_err(|e| anyhow!("starting evcxr: {e}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        spawn_drain(outputs.stdout, lines.clone(), Line::Out, tap.clone());
        spawn_drain(outputs.stderr, lines.clone(), Line::Err, tap.clone());
        let mut ctx = evcxr::CommandContext::with_eval_context(eval);
        // evcxr's own compiled-dependency cache stays off unless asked for (REVMOD_EVCXR_CACHE_MB):
        // its keys hold the absolute OUT_DIR of build scripts, so it misses across slots and then
        // stores a second copy; a fresh slot is seeded from a warm one instead (see `slots`).
        if let Some(mb) = std::env::var("REVMOD_EVCXR_CACHE_MB").ok().filter(|v| !v.is_empty() && v != "0") {
            ctx.execute(&format!(":cache {mb}")).map_err(|e| anyhow!("turning on evcxr's cache: {e}"))?;
        }
        let s = Session { ctx, lines, slot, build_dir, tap };
        s.take_lines();
        Ok(s)
    }

    /// Runs the user's evcxr configuration (`init.evcxr`: `:dep revmod`, then `prelude.rs`) from
    /// `EVCXR_CONFIG_DIR`: this is where the support crate is built or loaded.
    pub fn load_config(&mut self) -> Result<()> {
        let tap = self.tap.clone();
        let _build = self.slot.prepare(|note| {
            let line = Line::Err(format!("revmod: {note}"));
            match &tap {
                Some(t) => drop(t.send(line)),
                None => self.lines.lock().unwrap().push(line),
            }
        })?;
        let r = self.ctx.execute(":load_config --quiet");
        let lines = self.take_lines();
        r.map_err(|e| {
            let stderr: Vec<&str> =
                lines.iter().filter_map(|l| if let Line::Err(s) = l { Some(s.as_str()) } else { None }).collect();
            let tail = stderr[stderr.len().saturating_sub(20)..].join("\n");
            anyhow!("loading evcxr config (init.evcxr, prelude.rs): {e}\n{tail}")
        })?;
        Ok(())
    }

    /// Marks this session's build slot warm (copyable by other sessions, see `slots`) now: for a caller
    /// that knows its dependencies are built and no further dependency build will run in this session
    /// (the kernel after `init.evcxr` loaded the support crate). Every slot is marked when its session ends.
    pub fn mark_slot_warm(&self) -> Result<()> {
        self.slot.mark_warm()
    }

    /// The evaluation process (our proxy); evcxr swaps the child inside when it restarts it.
    pub fn process_handle(&self) -> Arc<Mutex<std::process::Child>> {
        self.ctx.process_handle()
    }

    /// The cell line a panic location (`src/lib.rs:L:C` of evcxr's generated crate) points to:
    /// 1-based line number in `source` and its text, when the generated line is found in the cell.
    pub fn panic_cell_line(&self, panic: &str, source: &str) -> Option<(usize, String)> {
        let loc = panic.split("panicked at ").nth(1)?;
        let rest = loc.strip_prefix("src/lib.rs:")?;
        let line: usize = rest.split(':').next()?.parse().ok()?;
        let generated = std::fs::read_to_string(self.build_dir.join("src/lib.rs")).ok()?;
        let text = generated.lines().nth(line.checked_sub(1)?)?.trim();
        if text.is_empty() {
            return None;
        }
        source
            .lines()
            .enumerate()
            .find(|(_, l)| l.trim() == text)
            .map(|(i, l)| (i + 1, l.trim().to_owned()))
    }

    fn take_lines(&self) -> Vec<Line> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// Runs one cell's source; never fails itself: a failing cell is a `CellRun` with `failure`.
    pub fn run_cell(&mut self, code: &str, timeout: Option<Duration>) -> CellRun {
        self.take_lines();
        let timed_out = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = timeout.map(|limit| {
            let handle = self.ctx.process_handle();
            let flag = timed_out.clone();
            std::thread::spawn(move || {
                if stop_rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                    flag.store(true, Ordering::SeqCst);
                    end_eval(&handle);
                }
            })
        });
        let result = self.ctx.execute(code);
        drop(stop_tx);
        if let Some(w) = watchdog {
            let _ = w.join();
        }
        let failed_hint = !matches!(result, Ok(_));
        let lines = self.settle(if failed_hint { 200 } else { 30 });
        let mut run = CellRun::default();
        let mut saw_panic = false;
        let mut saw_err = false;
        let mut exit_status = None;
        let mut stderr_since_mark: Vec<String> = Vec::new();
        for line in lines {
            match line {
                Line::Out(l) => {
                    if let Some(ev) = l.strip_prefix(EVENT_PREFIX) {
                        match ev {
                            "panic" => saw_panic = true,
                            "error" => saw_err = true,
                            other => {
                                if let Some(s) = other.strip_prefix("exit ") {
                                    exit_status = Some(s.to_owned());
                                }
                            }
                        }
                    } else if let Some(json) = l.strip_prefix(DISPLAY_PREFIX) {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
                            let mime = v["mime"].as_str().unwrap_or("text/plain").to_owned();
                            let data = v["data"].as_str().unwrap_or("").to_owned();
                            run.events.push(Event::Display { mime, data });
                        }
                    } else {
                        run.events.push(Event::Stdout(l));
                    }
                }
                Line::Err(l) => {
                    stderr_since_mark.push(l.clone());
                    run.events.push(Event::Stderr(l));
                }
            }
        }
        let stderr: Vec<&str> = stderr_since_mark.iter().map(String::as_str).collect();
        let timed_out = timed_out.load(Ordering::SeqCst);
        run.failure = match result {
            _ if timed_out => Some(Failure::Timeout { seconds: timeout.unwrap_or_default().as_secs_f64() }),
            Ok(out) => {
                run.result = out.content_by_mime_type.into_iter().collect();
                if saw_panic {
                    Some(Failure::Panic { message: panic_message(&stderr) })
                } else if saw_err {
                    let message = stderr.iter().rev().find(|l| !l.trim().is_empty()).unwrap_or(&"");
                    Some(Failure::Err { message: (*message).to_owned() })
                } else {
                    None
                }
            }
            Err(evcxr::Error::CompilationErrors(errors)) => Some(Failure::Compile {
                messages: errors.iter().map(compile_message).collect(),
            }),
            Err(evcxr::Error::SubprocessTerminated(msg)) => Some(Failure::Died {
                status: exit_status.unwrap_or_else(|| msg.lines().last().unwrap_or(msg.as_str()).to_owned()),
            }),
            Err(e) => Some(Failure::Evcxr { message: e.to_string() }),
        };
        run
    }

    /// Waits until no new line arrived for `quiet_ms` (at most 2 s), then takes the lines. evcxr
    /// returns when the cell's stdout is drained; its stderr travels on another pipe.
    fn settle(&self, quiet_ms: u64) -> Vec<Line> {
        let start = Instant::now();
        let mut last = self.lines.lock().unwrap().len();
        while start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(quiet_ms));
            let now = self.lines.lock().unwrap().len();
            if now == last {
                break;
            }
            last = now;
        }
        self.take_lines()
    }
}

impl Drop for Session {
    /// The session is over, so no build runs in its slot any more: it may be copied from now on
    /// (best effort: a slot that cannot be marked is only not copied).
    fn drop(&mut self) {
        let _ = self.slot.mark_warm();
    }
}

/// Removes the variables cargo sets for the package it builds or tests (CARGO_MANIFEST_DIR,
/// CARGO_PKG_*, ...), so evcxr's cargo, started from this process, does not inherit them when the
/// runner or kernel runs under `cargo test` or `cargo run`: build scripts of the support crate's
/// dependencies watch some of them (`rerun-if-env-changed`) and would run again, and the slot would
/// no longer be fresh for a kernel started by JupyterLab.
fn forget_cargo_package_env() {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_MANIFEST_LINKS", "CARGO_CRATE_NAME", "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR",
    ];
    const PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_CFG_"];
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if EXACT.contains(&k) || PREFIXES.iter().any(|p| k.starts_with(p)) {
            std::env::remove_var(k);
        }
    }
}

/// Drains one evcxr output channel into the shared line list. The lock is held across the
/// receive so that once evcxr reports the channel empty, taking the lock guarantees every
/// received line is already in the list.
fn spawn_drain(
    rx: crossbeam_channel::Receiver<String>,
    lines: Arc<Mutex<Vec<Line>>>,
    wrap: fn(String) -> Line,
    tap: Option<Tap>,
) {
    std::thread::spawn(move || loop {
        let mut guard = lines.lock().unwrap();
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(l) => {
                let line = wrap(l);
                if let Some(t) = &tap {
                    let _ = t.send(line.clone());
                }
                guard.push(line)
            }
            Err(e) if e.is_timeout() => {
                drop(guard);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => break,
        }
    });
}

fn compile_message(e: &evcxr::CompilationError) -> String {
    let rendered = e.rendered();
    if rendered.trim().is_empty() { e.message() } else { rendered }
}

/// Interrupts the cell running in an evaluation process (a session's [`Session::process_handle`]):
/// stops the cargo builds this process started and sends SIGINT to the proxy, which passes it on to
/// the runtime (see `proxy`).
pub fn interrupt_eval(process: &Mutex<std::process::Child>) {
    kill_child_builds();
    let pid = process.lock().map(|c| c.id()).unwrap_or(0);
    if pid > 0 {
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
    }
}

/// Ends an evaluation process and the cargo builds this process started (evcxr starts a new
/// evaluation process for the next cell; the variables are lost).
pub fn end_eval(process: &Mutex<std::process::Child>) {
    kill_child_builds();
    let _ = process.lock().map(|mut c| c.kill());
}

/// Kills the cargo builds this process started (children named `cargo`), so a timeout during a
/// long `:dep` build does not leave it running.
pub fn kill_child_builds() {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map(|x| x.1).unwrap_or("");
        let ppid = tail.split_whitespace().nth(1).unwrap_or("");
        if ppid == me && comm == "cargo" {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
