//! The JupyterLab kernel (`revmod --control_file FILE`): our own message loop around the runner's
//! evcxr [`Session`], instead of evcxr_jupyter's, so that a student is never locked out:
//!
//! - `kernel_info` is answered at once; the support crate (`init.evcxr`: `:dep revmod`, then
//!   `prelude.rs`) is loaded afterwards on the evaluation thread. A cell sent meanwhile waits for
//!   it and says so in its output. evcxr builds in a persistent, locked build slot
//!   (`exec::default_build_root()`, shared with `revmod run` and warmed by `revmod kernel install`),
//!   so a restart reuses what the previous session compiled; two notebooks get two slots.
//! - Errors are errors: a panic, an `Err` through `?`, a compile error or the death of the
//!   evaluation process is an `error` reply (with `ename`/`evalue`/`traceback`), detected by the
//!   runner's own failure detection; with `stop_on_error` the queued cells are aborted, so Run All
//!   stops there. Earlier variables survive (evcxr keeps them across a panic).
//! - Output streams to the cell while it runs (labeling and scoring print progress on stderr).
//! - `interrupt_request` sends SIGINT to the cell's process (the support crate's long steps stop
//!   at a clean point, see `revmod::interrupt`); a cell that ignores it is stopped after a grace
//!   period by ending the evaluation process (its variables are then lost, and the reply says so).
//! - A restart is fast: a kernel takes a warm spare session (see `spare`) when one is there, and
//!   once ready starts the next one, so the support crate's load happens before the restart.

pub mod spare;
pub mod wire;

use crate::runner::exec::{self, Line, Session};
use crate::runner::outputs::{self, CellRun, Event, Failure};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::{Message, Signer};
use zeromq::{Socket, SocketRecv, SocketSend};

/// Seconds a cell may ignore SIGINT before the kernel ends its process.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);
/// How long the kernel must have been idle before it starts the warm spare for the next start: its
/// load takes both cores of a small machine for half a minute, so it waits for the student's pause
/// rather than slowing the first cells.
const SPARE_AFTER_IDLE: Duration = Duration::from_secs(10);

/// The connection file Jupyter writes for the kernel.
struct ConnectionInfo {
    transport: String,
    ip: String,
    key: String,
    shell: u16,
    iopub: u16,
    stdin: u16,
    control: u16,
    hb: u16,
}

impl ConnectionInfo {
    fn read(path: &Path) -> Result<ConnectionInfo> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let port = |k: &str| -> Result<u16> {
            v[k].as_u64().and_then(|p| u16::try_from(p).ok()).with_context(|| format!("{}: no valid `{k}`", path.display()))
        };
        let s = |k: &str| -> Result<String> {
            v[k].as_str().map(str::to_owned).with_context(|| format!("{}: no `{k}`", path.display()))
        };
        Ok(ConnectionInfo {
            transport: s("transport")?,
            ip: s("ip")?,
            key: s("key")?,
            shell: port("shell_port")?,
            iopub: port("iopub_port")?,
            stdin: port("stdin_port")?,
            control: port("control_port")?,
            hb: port("hb_port")?,
        })
    }

    fn endpoint(&self, port: u16) -> String {
        format!("{}://{}:{}", self.transport, self.ip, port)
    }
}

/// State shared by the socket tasks and the evaluation thread.
struct Shared {
    rt: tokio::runtime::Handle,
    signer: Signer,
    iopub: tokio::sync::Mutex<zeromq::PubSocket>,
    shell_out: tokio::sync::Mutex<zeromq::RouterSendHalf>,
    /// The execute request whose output is streaming now.
    current: Mutex<Option<Message>>,
    /// Set once the support crate is loaded (or failed to load).
    ready: AtomicBool,
    /// A cell was sent while the support crate was still loading.
    waited: AtomicBool,
    started: Instant,
    /// Output of the start-up while no cell was running (shown in the first cell that waited).
    init_log: Mutex<Vec<String>>,
    /// The evaluation process, once evcxr runs.
    process: Mutex<Option<Process>>,
    /// msg_id of the running cell, for interrupts.
    running: Mutex<Option<String>>,
    interrupted: AtomicBool,
}

impl Shared {
    async fn publish_async(&self, m: &Message) {
        let mut s = self.iopub.lock().await;
        if let Err(e) = m.send(&mut *s, &self.signer).await {
            eprintln!("revmod kernel: iopub: {e:#}");
        }
    }

    /// Publishes on iopub from a plain thread.
    fn publish(&self, m: &Message) {
        self.rt.block_on(self.publish_async(m));
    }

    fn status(&self, parent: &Message, state: &str) {
        self.publish(&parent.child("status", json!({"execution_state": state})));
    }

    fn stream(&self, parent: &Message, name: &str, text: String) {
        self.publish(&parent.child("stream", json!({"name": name, "text": text})));
    }

    fn reply_shell(&self, m: &Message) {
        self.rt.block_on(async {
            let mut s = self.shell_out.lock().await;
            if let Err(e) = m.send(&mut *s, &self.signer).await {
                eprintln!("revmod kernel: shell reply: {e:#}");
            }
        });
    }
}

/// Where the cells run: evcxr in this process, or a claimed spare.
enum Backend {
    Local(Session),
    Remote(spare::Remote),
}

impl Backend {
    fn run_cell(&mut self, code: &str) -> CellRun {
        match self {
            Backend::Local(s) => s.run_cell(code, None),
            Backend::Remote(r) => r.run_cell(code),
        }
    }

    /// The cell line a panic points to (see `Session::panic_cell_line`).
    fn panic_cell_line(&self, message: &str, code: &str) -> Option<(usize, String)> {
        match self {
            Backend::Local(s) => s.panic_cell_line(message, code),
            Backend::Remote(r) => r.panic_cell_line(),
        }
    }

    fn build_dir(&self) -> String {
        match self {
            Backend::Local(s) => s.build_dir.display().to_string(),
            Backend::Remote(r) => format!("{} (a warm spare)", r.build_dir),
        }
    }
}

/// The running cell's process, for interrupts and shutdown.
#[derive(Clone)]
enum Process {
    Local(Arc<Mutex<std::process::Child>>),
    Remote(spare::Control),
}

impl Process {
    fn interrupt(&self) {
        match self {
            Process::Local(p) => exec::interrupt_eval(p),
            Process::Remote(c) => c.interrupt(),
        }
    }

    fn kill(&self) {
        match self {
            Process::Local(p) => exec::end_eval(p),
            Process::Remote(c) => c.kill(),
        }
    }
}

/// Work for the evaluation thread.
enum Job {
    Execute(Message),
}

/// Runs the kernel until Jupyter shuts it down.
pub fn main(connection_file: &Path) -> Result<()> {
    // Before any session changes this process's environment.
    let origin = if spare::enabled() {
        spare::Origin::current().map_err(|e| eprintln!("revmod kernel: no warm spares: {e:#}")).ok()
    } else {
        None
    };
    let info = ConnectionInfo::read(connection_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve(info, rt.handle().clone(), origin))
}

async fn bind<S: Socket>(info: &ConnectionInfo, port: u16) -> Result<S> {
    let mut s = S::new();
    s.bind(&info.endpoint(port)).await.with_context(|| format!("binding {}", info.endpoint(port)))?;
    Ok(s)
}

async fn serve(info: ConnectionInfo, rt: tokio::runtime::Handle, origin: Option<spare::Origin>) -> Result<()> {
    let signer = Signer::new(&info.key);
    let mut hb: zeromq::RepSocket = bind(&info, info.hb).await?;
    let shell: zeromq::RouterSocket = bind(&info, info.shell).await?;
    let mut control: zeromq::RouterSocket = bind(&info, info.control).await?;
    let _stdin: zeromq::RouterSocket = bind(&info, info.stdin).await?;
    let iopub: zeromq::PubSocket = bind(&info, info.iopub).await?;
    let (shell_out, mut shell_in) = shell.split();
    let shared = Arc::new(Shared {
        rt: rt.clone(),
        signer: signer.clone(),
        iopub: tokio::sync::Mutex::new(iopub),
        shell_out: tokio::sync::Mutex::new(shell_out),
        current: Mutex::new(None),
        ready: AtomicBool::new(false),
        waited: AtomicBool::new(false),
        started: Instant::now(),
        init_log: Mutex::new(Vec::new()),
        process: Mutex::new(None),
        running: Mutex::new(None),
        interrupted: AtomicBool::new(false),
    });

    tokio::spawn(async move {
        loop {
            match hb.recv().await {
                Ok(m) => {
                    if hb.send(m).await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });

    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
    let (tap_tx, tap_rx) = crossbeam_channel::unbounded::<Live>();
    {
        let shared = shared.clone();
        std::thread::Builder::new().name("revmod-stream".into()).spawn(move || forward_output(&shared, tap_rx))?;
    }
    {
        let shared = shared.clone();
        let jobs_rx = jobs_rx.clone();
        std::thread::Builder::new()
            .name("revmod-eval".into())
            .spawn(move || eval_thread(&shared, jobs_rx, tap_tx, origin.as_ref()))?;
    }

    {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                let m = match Message::read(&mut shell_in, &shared.signer).await {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("revmod kernel: shell: {e:#}");
                        continue;
                    }
                };
                handle_shell(&shared, m, &jobs_tx).await;
            }
        });
    }

    loop {
        let m = match Message::read(&mut control, &signer).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("revmod kernel: control: {e:#}");
                continue;
            }
        };
        match m.msg_type() {
            "kernel_info_request" => m.reply(kernel_info()).send(&mut control, &signer).await?,
            "shutdown_request" => {
                let restart = m.content["restart"].as_bool().unwrap_or(false);
                m.reply(json!({"status": "ok", "restart": restart})).send(&mut control, &signer).await?;
                shutdown(&shared);
            }
            "interrupt_request" => {
                m.reply(json!({"status": "ok"})).send(&mut control, &signer).await?;
                let shared = shared.clone();
                tokio::task::spawn_blocking(move || interrupt(&shared));
            }
            other => eprintln!("revmod kernel: unhandled control message {other}"),
        }
    }
}

/// Ends the evaluation process and any build, then the kernel.
fn shutdown(shared: &Shared) {
    exec::kill_child_builds();
    // A spare ends by itself when this process's socket to it closes.
    if let Some(p) = shared.process.lock().unwrap().as_ref() {
        p.kill();
    }
    std::process::exit(0)
}

/// Interrupts the running cell: stops a build, sends SIGINT to the evaluation process, and ends
/// that process if the cell is still running after [`INTERRUPT_GRACE`].
fn interrupt(shared: &Shared) {
    let Some(id) = shared.running.lock().unwrap().clone() else { return };
    shared.interrupted.store(true, Ordering::SeqCst);
    let process = shared.process.lock().unwrap().clone();
    let Some(process) = process else { return };
    process.interrupt();
    let until = Instant::now() + INTERRUPT_GRACE;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        if shared.running.lock().unwrap().as_deref() != Some(id.as_str()) {
            return;
        }
    }
    if shared.running.lock().unwrap().as_deref() == Some(id.as_str()) {
        eprintln!("revmod kernel: the cell ignored the interrupt for {INTERRUPT_GRACE:?}; ending its process");
        process.kill();
    }
}

/// Replies to a quick shell request between `busy` and `idle`, as the protocol asks.
async fn reply_busy_idle(shared: &Shared, m: &Message, content: Value) {
    shared.publish_async(&m.child("status", json!({"execution_state": "busy"}))).await;
    {
        let mut out = shared.shell_out.lock().await;
        if let Err(e) = m.reply(content).send(&mut *out, &shared.signer).await {
            eprintln!("revmod kernel: shell reply: {e:#}");
        }
    }
    shared.publish_async(&m.child("status", json!({"execution_state": "idle"}))).await;
}

async fn handle_shell(shared: &Arc<Shared>, m: Message, jobs: &crossbeam_channel::Sender<Job>) {
    match m.msg_type() {
        "kernel_info_request" => reply_busy_idle(shared, &m, kernel_info()).await,
        "execute_request" => {
            // Said once, in the first cell that has to wait (Run All queues the others behind it).
            if !shared.ready.load(Ordering::SeqCst) && !shared.waited.swap(true, Ordering::SeqCst) {
                let secs = shared.started.elapsed().as_secs();
                let text = format!(
                    "revmod kernel: loading the support crate (`:dep revmod` + prelude), started {secs} s ago; \
                     this cell runs as soon as it is ready (a warm start takes seconds, the first build minutes; \
                     `revmod kernel install` builds it ahead)\n"
                );
                shared.publish_async(&m.child("stream", json!({"name": "stderr", "text": text}))).await;
            }
            let _ = jobs.send(Job::Execute(m.clone()));
        }
        "is_complete_request" => reply_busy_idle(shared, &m, json!({"status": "complete"})).await,
        "complete_request" => {
            let pos = m.content["cursor_pos"].as_u64().unwrap_or(0);
            let c = json!({"status": "ok", "matches": [], "cursor_start": pos, "cursor_end": pos, "metadata": {}});
            reply_busy_idle(shared, &m, c).await
        }
        "inspect_request" => {
            reply_busy_idle(shared, &m, json!({"status": "ok", "found": false, "data": {}, "metadata": {}})).await
        }
        "history_request" => reply_busy_idle(shared, &m, json!({"status": "ok", "history": []})).await,
        "comm_info_request" => reply_busy_idle(shared, &m, json!({"status": "ok", "comms": {}})).await,
        "comm_open" => {
            let id = m.content["comm_id"].clone();
            shared.publish_async(&m.child("comm_close", json!({"comm_id": id, "data": {}}))).await;
        }
        "shutdown_request" => {
            let restart = m.content["restart"].as_bool().unwrap_or(false);
            reply_busy_idle(shared, &m, json!({"status": "ok", "restart": restart})).await;
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || shutdown(&shared));
        }
        other => eprintln!("revmod kernel: unhandled shell message {other}"),
    }
}

/// What the output thread receives: a line from the evaluation process, or a flush handshake.
enum Live {
    Line(Line),
    Flush(crossbeam_channel::Sender<()>),
}

/// Streams the evaluation process's output to the running cell, in batches of what arrived
/// within 30 ms. A panic's report is held back (the error reply carries it, shorter).
fn forward_output(shared: &Shared, rx: crossbeam_channel::Receiver<Live>) {
    let mut held_panic = false;
    let mut parent_id = String::new();
    loop {
        let Ok(first) = rx.recv() else { return };
        let mut batch = vec![first];
        let deadline = Instant::now() + Duration::from_millis(30);
        while let Ok(x) = rx.recv_deadline(deadline) {
            let flush = matches!(x, Live::Flush(_));
            batch.push(x);
            if flush {
                break;
            }
        }
        let current = shared.current.lock().unwrap().clone();
        let id = current.as_ref().map(|m| m.header["msg_id"].as_str().unwrap_or("").to_owned()).unwrap_or_default();
        if id != parent_id {
            parent_id = id;
            held_panic = false;
        }
        let (mut out, mut err) = (String::new(), String::new());
        let mut acks = Vec::new();
        for x in batch {
            match x {
                Live::Flush(ack) => acks.push(ack),
                Live::Line(l) if l.is_protocol() => {}
                Live::Line(Line::Out(s)) => {
                    out.push_str(&s);
                    out.push('\n');
                }
                Live::Line(Line::Err(s)) => {
                    // `thread 'name' panicked at ...` (newer toolchains: `thread 'name' (id) panicked at`)
                    if s.starts_with("thread '") && s.contains(" panicked at ") {
                        held_panic = true;
                    }
                    if !held_panic && !s.starts_with("note: run with `RUST_BACKTRACE=1`") {
                        err.push_str(&s);
                        err.push('\n');
                    }
                }
            }
        }
        match &current {
            Some(parent) => {
                if !out.is_empty() {
                    shared.stream(parent, "stdout", out);
                }
                if !err.is_empty() {
                    shared.stream(parent, "stderr", err);
                }
            }
            None => {
                let mut log = shared.init_log.lock().unwrap();
                log.extend(out.lines().chain(err.lines()).map(str::to_owned));
            }
        }
        for a in acks {
            let _ = a.send(());
        }
    }
}

/// Waits until every line sent so far is published.
fn flush(tap: &crossbeam_channel::Sender<Live>) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if tap.send(Live::Flush(tx)).is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
}

/// Takes a warm spare when one of this kernel's origin is there (waiting for it if it is still
/// loading), else starts evcxr in a build slot and loads the support crate and prelude here.
fn start_session(shared: &Shared, line_tap: &exec::Tap, origin: Option<&spare::Origin>) -> Result<Backend> {
    let backend = match origin.and_then(|o| o.claim(line_tap.clone())) {
        Some(mut remote) => {
            *shared.process.lock().unwrap() = Some(Process::Remote(remote.control()));
            match remote.wait_ready() {
                Ok(secs) => {
                    eprintln!("revmod kernel: took a warm spare (it loaded in {secs:.1} s)");
                    Some(Backend::Remote(remote))
                }
                Err(e) => {
                    eprintln!("revmod kernel: the warm spare failed ({e:#}); loading the support crate here");
                    None
                }
            }
        }
        None => None,
    };
    let backend = match backend {
        Some(b) => b,
        None => {
            let cwd = std::env::current_dir()?;
            let root = exec::default_build_root();
            let mut s = Session::start_bare(&cwd, &root, Some(line_tap.clone()))?;
            *shared.process.lock().unwrap() = Some(Process::Local(s.process_handle()));
            s.load_config()?;
            // init.evcxr has built the support crate: a second notebook may copy this slot while it is in use
            s.mark_slot_warm()?;
            Backend::Local(s)
        }
    };
    Ok(backend)
}

/// Starts the warm spare for the next kernel of this origin (unless one is waiting already).
fn start_spare(origin: &spare::Origin) {
    match origin.start_spare() {
        Ok(Some(sock)) => eprintln!("revmod kernel: loading a warm spare for the next start ({})", sock.display()),
        Ok(None) => {}
        Err(e) => eprintln!("revmod kernel: could not start a warm spare: {e:#}"),
    }
}

/// The evaluation thread: loads the support crate, then runs cells in order.
fn eval_thread(
    shared: &Shared,
    jobs: crossbeam_channel::Receiver<Job>,
    tap: crossbeam_channel::Sender<Live>,
    origin: Option<&spare::Origin>,
) {
    // Lines from evcxr go to the output thread through `tap`.
    let (line_tx, line_rx) = crossbeam_channel::unbounded::<Line>();
    {
        let tap = tap.clone();
        std::thread::spawn(move || {
            for l in line_rx {
                if tap.send(Live::Line(l)).is_err() {
                    break;
                }
            }
        });
    }
    let t0 = Instant::now();
    let mut session = start_session(shared, &line_tx, origin).map_err(|e| format!("{e:#}"));
    let init_secs = t0.elapsed().as_secs_f64();
    shared.ready.store(true, Ordering::SeqCst);
    eprintln!("revmod kernel: support crate loaded in {init_secs:.1} s ({})", match &session {
        Ok(s) => format!("build folder {}", s.build_dir()),
        Err(e) => format!("failed: {e}"),
    });
    let mut first = true;
    let mut count = 0u64;
    // The spare for the next start is loaded once this kernel has been idle for a while.
    let mut spare_due = origin.filter(|_| session.is_ok());
    loop {
        let job = match spare_due {
            Some(o) => match jobs.recv_timeout(SPARE_AFTER_IDLE) {
                Ok(j) => Ok(j),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    start_spare(o);
                    spare_due = None;
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(()),
            },
            None => jobs.recv().map_err(|_| ()),
        };
        let Ok(Job::Execute(req)) = job else { break };
        shared.status(&req, "busy");
        let code = req.content["code"].as_str().unwrap_or("").to_owned();
        let silent = req.content["silent"].as_bool().unwrap_or(false);
        let store = req.content["store_history"].as_bool().unwrap_or(!silent);
        if store {
            count += 1;
        }
        if !silent {
            shared.publish(&req.child("execute_input", json!({"code": code, "execution_count": count})));
        }
        *shared.current.lock().unwrap() = Some(req.clone());
        if first {
            first = false;
            let log = std::mem::take(&mut *shared.init_log.lock().unwrap());
            if shared.waited.load(Ordering::SeqCst) || session.is_err() {
                let mut text = format!("revmod kernel: support crate ready after {init_secs:.1} s\n");
                if session.is_err() {
                    text = log.join("\n") + "\n";
                }
                shared.stream(&req, "stderr", text);
            }
        }
        if session.is_err() {
            // Try again: the user may have fixed what broke (a build error, a missing toolchain).
            let t = Instant::now();
            shared.stream(&req, "stderr", "revmod kernel: loading the support crate again\n".into());
            session = start_session(shared, &line_tx, origin).map_err(|e| format!("{e:#}"));
            if session.is_ok() {
                spare_due = origin;
                shared.stream(&req, "stderr", format!("revmod kernel: support crate ready after {:.1} s\n", t.elapsed().as_secs_f64()));
            }
        }
        *shared.running.lock().unwrap() = Some(req.header["msg_id"].as_str().unwrap_or("").to_owned());
        shared.interrupted.store(false, Ordering::SeqCst);
        let run = match session.as_mut() {
            Ok(s) => s.run_cell(&code),
            Err(e) => CellRun {
                failure: Some(Failure::Evcxr { message: format!("the support crate could not be loaded: {e}") }),
                ..Default::default()
            },
        };
        *shared.running.lock().unwrap() = None;
        flush(&tap);
        *shared.current.lock().unwrap() = None;
        let interrupted = shared.interrupted.swap(false, Ordering::SeqCst);
        let panic_line = match (&run.failure, session.as_ref()) {
            (Some(Failure::Panic { message }), Ok(s)) => s.panic_cell_line(message, &code),
            _ => None,
        };
        let error = run.failure.as_ref().map(|f| error_content(f, &run, panic_line, interrupted));
        if matches!(&session, Ok(Backend::Remote(r)) if r.is_gone()) {
            session = Err("the spare session's process ended".into());
        }
        if !silent {
            publish_results(shared, &req, &run, count);
        }
        // Requests queued before this reply were sent before the client knew of the error (Run
        // All sends all cells at once): with stop_on_error they are aborted, as ipykernel does.
        let abort: Vec<Job> = if error.is_some() && req.content["stop_on_error"].as_bool().unwrap_or(true) {
            jobs.try_iter().collect()
        } else {
            Vec::new()
        };
        let reply = match &error {
            None => json!({"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []}),
            Some(e) => {
                shared.publish(&req.child("error", e.clone()));
                let mut r = e.clone();
                r["status"] = json!("error");
                r["execution_count"] = json!(count);
                r
            }
        };
        shared.reply_shell(&req.reply(reply));
        shared.status(&req, "idle");
        abort_queued(shared, abort);
    }
}

/// Answers execute requests with `aborted`, so that Run All stops at the failing cell.
fn abort_queued(shared: &Shared, jobs: Vec<Job>) {
    for Job::Execute(req) in jobs {
        shared.status(&req, "busy");
        shared.reply_shell(&req.reply(json!({"status": "aborted", "execution_count": null})));
        shared.status(&req, "idle");
    }
}

/// Publishes the cell's displays and result (streams went out while it ran).
fn publish_results(shared: &Shared, req: &Message, run: &CellRun, count: u64) {
    let ok_only = CellRun { events: run.events.clone(), result: run.result.clone(), failure: None };
    let outs = if run.failure.is_some() {
        // Displays shown before a failure stay; no result.
        let mut r = ok_only;
        r.result.clear();
        outputs::to_outputs(&r, count, 0)
    } else {
        outputs::to_outputs(&ok_only, count, 0)
    };
    for o in outs {
        match o["output_type"].as_str() {
            Some("display_data") => {
                shared.publish(&req.child("display_data", json!({"data": o["data"], "metadata": o["metadata"], "transient": {}})))
            }
            Some("execute_result") => shared.publish(&req.child(
                "execute_result",
                json!({"execution_count": count, "data": o["data"], "metadata": o["metadata"]}),
            )),
            _ => {}
        }
    }
}

/// The `error` message of a failed cell: short (`ename: evalue`, the cell line of a panic, the
/// panic or compile message); a backtrace only when RUST_BACKTRACE asked for one.
fn error_content(f: &Failure, run: &CellRun, panic_line: Option<(usize, String)>, interrupted: bool) -> Value {
    let stderr: Vec<&str> =
        run.events.iter().filter_map(|e| if let Event::Stderr(s) = e { Some(s.as_str()) } else { None }).collect();
    let (ename, evalue) = match f {
        _ if interrupted && matches!(f, Failure::Died { .. }) => (
            "Interrupted".to_owned(),
            "interrupted: the cell's process was stopped, so variables of earlier cells are lost \
             (steps that watch for interrupts, such as labeling, stop cleanly instead)"
                .to_owned(),
        ),
        _ if interrupted => ("Interrupted".to_owned(), f.evalue()),
        _ => (f.ename().to_owned(), f.evalue()),
    };
    let red = |s: &str| format!("\x1b[0;31m{s}\x1b[0m");
    let mut tb = vec![red(&format!("{ename}: {evalue}"))];
    match f {
        Failure::Panic { message } => {
            if let Some((n, line)) = panic_line {
                tb.push(format!("at cell line {n}: {line}"));
            }
            tb.extend(message.lines().map(str::to_owned));
            // evcxr starts the evaluation process with RUST_BACKTRACE=1 whatever the user set, so
            // the kernel's own environment (the user's) decides whether the backtrace is shown.
            let wanted = std::env::var("RUST_BACKTRACE").is_ok_and(|v| !v.is_empty() && v != "0");
            if let Some(start) = stderr.iter().position(|l| l.starts_with("stack backtrace:")).filter(|_| wanted) {
                tb.extend(stderr[start..].iter().take(200).map(|s| s.to_string()));
            }
        }
        Failure::Compile { .. } | Failure::Err { .. } | Failure::Evcxr { .. } => tb.extend(f.detail()),
        Failure::Died { .. } | Failure::Timeout { .. } => {}
    }
    json!({"ename": ename, "evalue": evalue, "traceback": tb})
}

/// See the messaging spec's kernel_info.
fn kernel_info() -> Value {
    json!({
        "status": "ok",
        "protocol_version": "5.3",
        "implementation": "revmod",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "Rust",
            "version": "",
            "mimetype": "text/rust",
            "file_extension": ".rs",
            "pygments_lexer": "rust",
            "codemirror_mode": "rust",
        },
        "banner": "revmod: Rust (evcxr) with the revmod support crate",
        "help_links": [{"text": "Rust std docs", "url": "https://doc.rust-lang.org/stable/std/"}],
    })
}
