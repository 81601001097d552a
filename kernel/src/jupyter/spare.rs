//! Warm spares: evcxr sessions that have already loaded the support crate, waiting in their own
//! processes for the next kernel, so that "Restart Kernel" gives a ready session in about a second.
//!
//! Why: most of a warm kernel start is not compiling (the build slot is fresh) but evcxr's
//! `:load_config`, whose rust-analyzer pass over the support crate's dependency graph takes 30-50 s
//! of CPU on 2 cores, and evcxr cannot skip it. A restart must give fresh variables, so the
//! session cannot be reused; a *new* one can be loaded ahead instead.
//!
//! How: once its own session is ready and it has been idle for a few seconds, a kernel starts a
//! spare (`revmod --kernel-spare SOCKET`, in its own process session, so Jupyter's kill of the kernel
//! does not reach it) with the kernel's environment and working folder. The spare takes a build slot
//! like any session, loads the support crate, runs one `let` (evcxr's first costs seconds of
//! analysis), and listens on `ROOT/spares/<key>-<id>.sock` (ROOT: the evcxr build root). The key
//! hashes what a session's behaviour depends on (the binary, the working folder, the environment
//! minus Jupyter's per-kernel `JPY_*` variables), so a kernel only takes a spare that is the session
//! it would have loaded itself. A kernel claims a spare by locking `<key>-<id>.claim`, connects, and
//! from then on runs its cells there over one socket (JSON lines: `run`, `signal` one way; `line`,
//! `ready`, `failed`, `done` the other). When the kernel ends (shutdown, restart, kill), the socket
//! closes and the spare ends its evaluation process and itself. A spare nobody claims ends after
//! `REVMOD_KERNEL_SPARE_IDLE_S` seconds (default 3600). `REVMOD_KERNEL_SPARE=0` turns spares off:
//! every kernel then loads its own session, as before.
//!
//! Cost: one more loaded session per kernel key (memory of an evcxr session plus its evaluation
//! process), and its load runs on the cores while the first kernel's cells run.

use crate::runner::exec::{self, Line, Session, Tap};
use crate::runner::outputs::{CellRun, Failure};
use anyhow::{anyhow, bail, Context, Result};
use revmod::output::{try_lock, FileLock};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The hidden command-line switch that starts a spare (see `cmd_kernel::early_hooks`).
pub const SPARE_ARG: &str = "--kernel-spare";

/// True unless `REVMOD_KERNEL_SPARE=0` turned spares off.
pub fn enabled() -> bool {
    std::env::var("REVMOD_KERNEL_SPARE").map_or(true, |v| v != "0")
}

/// What a kernel was started with: the environment and working folder a spare must share to be
/// interchangeable with the session the kernel would load itself. Taken before the kernel changes
/// its own environment (a session sets `EVCXR_TMPDIR` to its slot).
#[derive(Clone)]
pub struct Origin {
    env: Vec<(String, String)>,
    cwd: PathBuf,
    exe: PathBuf,
    /// The folder spares of this build root live in.
    dir: PathBuf,
    /// Hash of the above: spares are found by it.
    key: String,
}

impl Origin {
    /// The current process's environment, working folder and binary.
    pub fn current() -> Result<Origin> {
        let mut env: Vec<(String, String)> = std::env::vars().collect();
        env.sort();
        let cwd = std::env::current_dir().context("reading the working folder")?;
        let exe = std::env::current_exe().context("finding the kernel binary")?;
        let dir = exec::default_build_root().join("spares");
        let key = key(&exe, &build_stamp(&exe, &cwd, config_dir().as_deref()), &cwd, &env);
        Ok(Origin { env, cwd, exe, dir, key })
    }

    /// Starts a spare for this origin unless an unclaimed one is there already. Returns its socket
    /// path when one was started.
    pub fn start_spare(&self) -> Result<Option<PathBuf>> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        self.remove_stale();
        if self.unclaimed().next().is_some() {
            return Ok(None);
        }
        // Named by this kernel's pid and the time: unique, and known before the spare starts.
        let id = format!("{}-{}-{}", self.key, std::process::id(), nanos());
        let sock = self.dir.join(format!("{id}.sock"));
        let log = std::fs::File::create(self.dir.join(format!("{id}.log")))
            .with_context(|| format!("creating the spare's log in {}", self.dir.display()))?;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg(SPARE_ARG)
            .arg(&sock)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; the spare leaves the kernel's process group so that
        // Jupyter ending the kernel (a signal to its group) does not end the spare.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting a spare kernel session")?;
        // Reaped when it ends (it usually outlives this kernel, then init reaps it).
        std::thread::spawn(move || child.wait());
        Ok(Some(sock))
    }

    /// Sockets of spares with this key whose claim lock is free now.
    fn unclaimed(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.spares().into_iter().filter(|s| matches!(try_lock(&s.with_extension("claim")), Ok(Some(_))))
    }

    /// Removes what spares that were killed left behind: a claim file nobody holds and no socket
    /// beside it, with its log, once older than a minute (a spare just started has no socket yet).
    fn remove_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for claim in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "claim")) {
            let old = std::fs::metadata(&claim)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60));
            if old && !claim.with_extension("sock").exists() && matches!(try_lock(&claim), Ok(Some(_))) {
                remove_files(&claim, &["claim", "log"]);
            }
        }
    }

    fn spares(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut v: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "sock")
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{}-", self.key)))
            })
            .collect();
        v.sort();
        v
    }

    /// Claims a spare of this origin (ready or still loading) and connects to it; `None` when
    /// there is none (or none answers: a dead spare's files are removed).
    pub fn claim(&self, tap: Tap) -> Option<Remote> {
        for sock in self.spares() {
            let claim = sock.with_extension("claim");
            let Ok(Some(lock)) = try_lock(&claim) else { continue };
            match UnixStream::connect(&sock) {
                Ok(stream) => match Remote::attach(stream, lock, tap.clone()) {
                    Ok(r) => return Some(r),
                    Err(_) => continue,
                },
                Err(_) => {
                    // Nobody listens: the spare died (or ended idle between our listing and the lock).
                    remove_files(&sock, &["sock", "claim", "log"]);
                }
            }
        }
        None
    }
}

/// What a loaded session was built from, besides the environment: the binary's modification time, the
/// evcxr configuration (`init.evcxr`, `prelude.rs` in `EVCXR_CONFIG_DIR`) and, for every path
/// dependency it names (`path = "..."`, such as `:dep revmod`), the newest modification time and the
/// number of its source files. A spare loaded before the support crate was edited is not taken: the
/// kernel loads the edited crate itself, as without spares.
pub fn build_stamp(exe: &Path, cwd: &Path, config: Option<&Path>) -> String {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut stamp = format!("{:?}", mtime(exe));
    let Some(config) = config else { return stamp };
    let init = std::fs::read_to_string(config.join("init.evcxr")).unwrap_or_default();
    stamp.push_str(&init);
    stamp.push_str(&std::fs::read_to_string(config.join("prelude.rs")).unwrap_or_default());
    for dep in init.split("path").skip(1).filter_map(|rest| rest.split('"').nth(1)) {
        let root = cwd.join(dep);
        let (mut newest, mut files) = (None, 0usize);
        let mut todo = vec![root.join("src"), root.join("Cargo.toml"), root.join("build.rs")];
        while let Some(p) = todo.pop() {
            match std::fs::read_dir(&p) {
                Ok(entries) => todo.extend(entries.flatten().map(|e| e.path())),
                Err(_) => {
                    if let Some(t) = mtime(&p) {
                        newest = newest.max(Some(t));
                        files += 1;
                    }
                }
            }
            if files > 20_000 {
                break;
            }
        }
        stamp.push_str(&format!("\0{dep}: {newest:?} {files}"));
    }
    stamp
}

/// The evcxr configuration folder of this kernel (`EVCXR_CONFIG_DIR`, set by the kernelspec).
fn config_dir() -> Option<PathBuf> {
    std::env::var_os("EVCXR_CONFIG_DIR").map(PathBuf::from)
}

/// The key spares are found by: a hash of the binary's path, its [`build_stamp`], the working folder
/// and the environment, except Jupyter's own per-kernel variables (`JPY_PARENT_PID`, `JPY_SESSION_NAME`),
/// which differ at every start and do not change what a session does.
fn key(exe: &Path, stamp: &str, cwd: &Path, env: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}\0{stamp}\0{}\0", exe.display(), cwd.display()));
    for (k, v) in env {
        if !k.starts_with("JPY_") {
            h.update(format!("{k}={v}\0"));
        }
    }
    hex::encode(&h.finalize()[..8])
}

/// Removes a spare's files: `path` with each of the extensions (`sock`, `claim`, `log`).
fn remove_files(path: &Path, exts: &[&str]) {
    for ext in exts {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// What the kernel's evaluation thread receives from a spare.
enum Reply {
    Ready { build_dir: String, secs: f64 },
    Failed(String),
    Done { run: CellRun, panic_line: Option<(usize, String)> },
}

/// A claimed spare: the kernel's session, run in the spare's process.
pub struct Remote {
    writer: Arc<Mutex<UnixStream>>,
    replies: crossbeam_channel::Receiver<Reply>,
    last_panic_line: Option<(usize, String)>,
    gone: bool,
    /// The spare's build folder, once it is ready.
    pub build_dir: String,
    _claim: FileLock,
}

impl Remote {
    fn attach(stream: UnixStream, claim: FileLock, tap: Tap) -> Result<Remote> {
        let reader = BufReader::new(stream.try_clone()?);
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new().name("revmod-spare-in".into()).spawn(move || read_replies(reader, tap, tx))?;
        Ok(Remote { writer: Arc::new(Mutex::new(stream)), replies: rx, last_panic_line: None, gone: false, build_dir: String::new(), _claim: claim })
    }

    /// Waits until the spare has loaded the support crate (at once when it had); the seconds are
    /// the spare's own load time.
    pub fn wait_ready(&mut self) -> Result<f64> {
        match self.replies.recv() {
            Ok(Reply::Ready { build_dir, secs }) => {
                self.build_dir = build_dir;
                Ok(secs)
            }
            Ok(Reply::Failed(e)) => Err(anyhow!("{e}")),
            Ok(Reply::Done { .. }) => Err(anyhow!("the spare session answered out of turn")),
            Err(_) => Err(anyhow!("the spare session ended before it was ready")),
        }
    }

    /// A handle that interrupts or ends the spare's running cell from another thread.
    pub fn control(&self) -> Control {
        Control(self.writer.clone())
    }

    /// Runs a cell in the spare; a spare that died gives a `Died` failure.
    pub fn run_cell(&mut self, code: &str) -> CellRun {
        self.last_panic_line = None;
        if let Err(e) = send(&self.writer, &json!({"run": code})) {
            self.gone = true;
            return died(format!("the kernel's session process is gone ({e}); the next cell loads a new session"));
        }
        match self.replies.recv() {
            Ok(Reply::Done { run, panic_line }) => {
                self.last_panic_line = panic_line;
                run
            }
            Ok(_) => died("the kernel's session process answered out of turn".into()),
            Err(_) => {
                self.gone = true;
                died("the kernel's session process ended; the next cell loads a new session".into())
            }
        }
    }

    /// The cell line of the last cell's panic, as the spare found it in evcxr's generated crate.
    pub fn panic_cell_line(&self) -> Option<(usize, String)> {
        self.last_panic_line.clone()
    }

    /// True once the spare's process is gone (the socket closed): the kernel then loads a session
    /// of its own for the next cell.
    pub fn is_gone(&self) -> bool {
        self.gone
    }
}

fn died(status: String) -> CellRun {
    CellRun { failure: Some(Failure::Died { status }), ..Default::default() }
}

/// Interrupts (SIGINT) or ends the running cell's evaluation process in a claimed spare.
#[derive(Clone)]
pub struct Control(Arc<Mutex<UnixStream>>);

impl Control {
    /// Sends SIGINT to the cell's process and stops a running build.
    pub fn interrupt(&self) {
        let _ = send(&self.0, &json!({"signal": "int"}));
    }
    /// Ends the cell's evaluation process.
    pub fn kill(&self) {
        let _ = send(&self.0, &json!({"signal": "kill"}));
    }
}

fn send(w: &Mutex<UnixStream>, v: &Value) -> std::io::Result<()> {
    let mut w = w.lock().unwrap();
    let mut line = v.to_string();
    line.push('\n');
    w.write_all(line.as_bytes())?;
    w.flush()
}

/// The kernel side's reader: output lines go to the kernel's tap as they come (so they stream to
/// the cell), the rest to the evaluation thread, in the order the spare sent them.
fn read_replies(reader: BufReader<UnixStream>, tap: Tap, tx: crossbeam_channel::Sender<Reply>) {
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        let reply = if let Some(l) = v.get("line") {
            let line = match (l["out"].as_str(), l["err"].as_str()) {
                (Some(s), _) => Line::Out(s.to_owned()),
                (_, Some(s)) => Line::Err(s.to_owned()),
                _ => continue,
            };
            let _ = tap.send(line);
            continue;
        } else if let Some(r) = v.get("ready") {
            Reply::Ready {
                build_dir: r["build_dir"].as_str().unwrap_or("").to_owned(),
                secs: r["secs"].as_f64().unwrap_or(0.0),
            }
        } else if let Some(e) = v.get("failed") {
            Reply::Failed(e.as_str().unwrap_or("loading the support crate failed").to_owned())
        } else if let Some(d) = v.get("done") {
            let run = serde_json::from_value(d["run"].clone())
                .unwrap_or_else(|e| died(format!("unreadable cell result from the session process: {e}")));
            let panic_line = serde_json::from_value(d["panic_line"].clone()).ok().flatten();
            Reply::Done { run, panic_line }
        } else {
            continue;
        };
        if tx.send(reply).is_err() {
            break;
        }
    }
}

/// The cell a spare runs after loading (see `host`).
pub const WARM_CELL: &str = "let _revmod_warm: i32 = 0;";

/// Marks the end of a cell's output in the spare's line stream (never printed).
const FLUSH_MARK: &str = "\u{1}revmod-spare-flush";

/// The spare's process (`revmod --kernel-spare SOCKET`): loads a session, waits for one kernel,
/// serves it, ends with it. Never returns.
pub fn host_main(sock: &Path) -> ! {
    let code = match host(sock) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("revmod kernel spare: {e:#}");
            1
        }
    };
    // a failed spare keeps its log for the user to read
    remove_files(sock, if code == 0 { &["sock", "claim", "log"] } else { &["sock", "claim"] });
    exec::kill_child_builds();
    std::process::exit(code)
}

fn host(sock: &Path) -> Result<()> {
    // Says whose spare this is (tests and users find it by the kernelspec's config folder).
    eprintln!(
        "revmod kernel spare: pid {} for EVCXR_CONFIG_DIR={}",
        std::process::id(),
        std::env::var("EVCXR_CONFIG_DIR").unwrap_or_default()
    );
    let _ = std::fs::remove_file(sock);
    let listener = UnixListener::bind(sock).with_context(|| format!("listening on {}", sock.display()))?;
    let idle = std::env::var("REVMOD_KERNEL_SPARE_IDLE_S").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(3600);
    let (conn_tx, conn_rx) = crossbeam_channel::bounded::<UnixStream>(1);
    std::thread::spawn(move || {
        // One kernel only: the claim lock keeps others away, and the socket is gone once taken.
        if let Ok((s, _)) = listener.accept() {
            let _ = conn_tx.send(s);
        }
    });
    let (line_tx, line_rx) = crossbeam_channel::unbounded::<Line>();
    let t0 = Instant::now();
    let cwd = std::env::current_dir()?;
    // taken before the load: what the kernel that started this spare hashed into its key
    let built = build_stamp(&std::env::current_exe()?, &cwd, config_dir().as_deref());
    let loaded = (|| -> Result<Session> {
        let mut s = Session::start_bare(&cwd, &exec::default_build_root(), Some(line_tx.clone()))?;
        s.load_config()?;
        s.mark_slot_warm()?;
        // evcxr's first `let` in a session costs 12-14 s more than the next ones (rust-analyzer's
        // analysis for the type of a binding, measured on 2 cores): paid here, ahead. It leaves one
        // variable, `_revmod_warm`, in the session the kernel gets.
        let run = s.run_cell(WARM_CELL, None);
        if let Some(f) = run.failure {
            eprintln!("revmod kernel spare: the warm-up cell failed: {}: {}", f.ename(), f.evalue());
        }
        Ok(s)
    })();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("revmod kernel spare: loaded in {secs:.1} s: {}", match &loaded {
        Ok(s) => format!("build folder {}", s.build_dir.display()),
        Err(e) => format!("failed: {e:#}"),
    });
    // Waits for a kernel; ends after `idle` seconds, or as soon as this binary is rebuilt or the
    // support crate or the evcxr configuration changes (no kernel would take this spare then: the key
    // differs).
    let exe = std::env::current_exe()?;
    let stream = loop {
        match conn_rx.recv_timeout(Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if t0.elapsed() >= Duration::from_secs(idle) {
                    eprintln!("revmod kernel spare: no kernel came for {idle} s; ending");
                    return Ok(());
                }
                if build_stamp(&exe, &cwd, config_dir().as_deref()) != built {
                    eprintln!("revmod kernel spare: the binary, the support crate or the evcxr configuration changed; ending");
                    return Ok(());
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => bail!("the socket's listener ended"),
        }
    };
    let _ = std::fs::remove_file(sock);
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    // Output lines, in order, with the flush marks the cell loop waits on.
    let (flushed_tx, flushed_rx) = crossbeam_channel::unbounded::<()>();
    {
        let writer = writer.clone();
        std::thread::spawn(move || {
            for l in line_rx {
                let v = match l {
                    Line::Out(s) if s == FLUSH_MARK => {
                        let _ = flushed_tx.send(());
                        continue;
                    }
                    Line::Out(s) => json!({"line": {"out": s}}),
                    Line::Err(s) => json!({"line": {"err": s}}),
                };
                if send(&writer, &v).is_err() {
                    break;
                }
            }
        });
    }
    let flush = || {
        let _ = line_tx.send(Line::Out(FLUSH_MARK.to_owned()));
        let _ = flushed_rx.recv_timeout(Duration::from_secs(5));
    };
    let mut session = match loaded {
        Ok(s) => {
            flush();
            send(&writer, &json!({"ready": {"build_dir": s.build_dir.display().to_string(), "secs": secs}}))?;
            s
        }
        Err(e) => {
            flush();
            send(&writer, &json!({"failed": format!("{e:#}")}))?;
            bail!("loading the support crate failed: {e:#}");
        }
    };
    // Signals arrive while a cell runs, so requests are read on their own thread.
    let (run_tx, run_rx) = crossbeam_channel::unbounded::<String>();
    let process = session.process_handle();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if let Some(code) = v["run"].as_str() {
                let _ = run_tx.send(code.to_owned());
            } else if let Some(sig) = v["signal"].as_str() {
                if sig == "kill" {
                    exec::end_eval(&process);
                } else {
                    exec::interrupt_eval(&process);
                }
            }
        }
        // The kernel is gone (shutdown, restart or killed): so is this session.
        exec::end_eval(&process);
        drop(run_tx);
    });
    for code in run_rx {
        let run = session.run_cell(&code, None);
        flush();
        let panic_line = match &run.failure {
            Some(Failure::Panic { message }) => session.panic_cell_line(message, &code),
            _ => None,
        };
        send(&writer, &json!({"done": {"run": run, "panic_line": panic_line}}))
            .context("answering the kernel")?;
    }
    Ok(())
}

/// The socket path when this process was started as a spare (`revmod --kernel-spare SOCKET`).
pub fn is_spare_invocation() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    (args.next().as_deref() == Some(std::ffi::OsStr::new(SPARE_ARG))).then(|| args.next().map(PathBuf::from)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_key_ignores_jupyters_per_kernel_variables_only() {
        let (exe, cwd) = (Path::new("/bin/revmod"), Path::new("/home/u/nb"));
        let base = env(&[("EVCXR_CONFIG_DIR", "/k/evcxr"), ("PATH", "/bin")]);
        let k = key(exe, "t1", cwd, &base);
        let mut jpy = base.clone();
        jpy.push(("JPY_SESSION_NAME".into(), "/home/u/nb/a.ipynb".into()));
        jpy.push(("JPY_PARENT_PID".into(), "4242".into()));
        assert_eq!(key(exe, "t1", cwd, &jpy), k, "a restart (new JPY_* values) finds the spare");
        assert_ne!(key(exe, "t1", Path::new("/home/u/other"), &base), k, "another folder: relative paths differ");
        assert_ne!(key(exe, "t2", cwd, &base), k, "a rebuilt binary loads its own spare");
        let other = env(&[("EVCXR_CONFIG_DIR", "/k2/evcxr"), ("PATH", "/bin")]);
        assert_ne!(key(exe, "t1", cwd, &other), k, "another kernelspec");
        let extra = env(&[("EVCXR_CONFIG_DIR", "/k/evcxr"), ("PATH", "/bin"), ("RUST_BACKTRACE", "1")]);
        assert_ne!(key(exe, "t1", cwd, &extra), k, "a variable the session reads");
    }

    #[test]
    fn the_build_stamp_follows_the_config_and_the_path_crates_sources() {
        let d = std::env::temp_dir().join(format!("revmod-spare-stamp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let (config, krate) = (d.join("evcxr"), d.join("krate"));
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(krate.join("src/sub")).unwrap();
        std::fs::write(krate.join("Cargo.toml"), "[package]").unwrap();
        std::fs::write(krate.join("src/lib.rs"), "pub mod sub;").unwrap();
        std::fs::write(krate.join("src/sub/mod.rs"), "").unwrap();
        std::fs::write(config.join("init.evcxr"), ":dep krate = { path = \"krate\" }\n").unwrap();
        std::fs::write(config.join("prelude.rs"), "use krate::*;\n").unwrap();
        let exe = std::env::current_exe().unwrap();
        let a = build_stamp(&exe, &d, Some(&config));
        assert!(a.contains("krate: Some(") && a.ends_with(" 3"), "three files of the path crate: {a}");
        assert_eq!(build_stamp(&exe, &d, Some(&config)), a, "nothing changed");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(krate.join("src/sub/mod.rs"), "pub fn f() {}").unwrap();
        let b = build_stamp(&exe, &d, Some(&config));
        assert_ne!(b, a, "an edited source file of the support crate");
        std::fs::write(krate.join("src/sub/new.rs"), "").unwrap();
        let c = build_stamp(&exe, &d, Some(&config));
        assert_ne!(c, b, "a new source file");
        std::fs::write(config.join("prelude.rs"), "use krate::sub::*;\n").unwrap();
        assert_ne!(build_stamp(&exe, &d, Some(&config)), c, "an edited prelude");
        let _ = std::fs::remove_dir_all(&d);
    }
}
